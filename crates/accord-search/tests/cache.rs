//! The per-segment result cache: a searcher that has answered many queries gives exactly what a
//! new one gives, as records arrive, are superseded and segments merge; a repeated query visits
//! only the segments written since; ranked pages survive commits while the rounded statistics
//! hold.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use accord_core::{ObjectId, Timestamp};
use accord_search::{RecordDoc, SearchIndex, SearchQuery, SearchResult, Searcher, Sort};

const MEMBERS: [&str; 4] = ["KZ", "BY", "UZ", "KG"];
const WORDS: [&str; 12] = [
    "цифровых",
    "услуг",
    "платформа",
    "данных",
    "граждан",
    "регулирование",
    "digital",
    "services",
    "platform",
    "interoperability",
    "skills",
    "guidance",
];

/// Record `n` (deterministic): a member, two directions, and text drawn from [`WORDS`] so that
/// words match different shares of the records, in varied lengths.
fn doc(n: u64, status: &str) -> RecordDoc {
    let pick = |i: u64| WORDS[((n * 7 + i * 13 + n / 5) % WORDS.len() as u64) as usize];
    let len = 3 + (n % 11);
    let text: Vec<&str> = (0..len).map(pick).collect();
    let lang = if n.is_multiple_of(3) { "en" } else { "ru" };
    let m = |s: String| BTreeMap::from([(lang.to_string(), s)]);
    RecordDoc {
        id: ObjectId::of_body(&n.to_le_bytes()),
        // Several records share a second, so ties are broken by position.
        created: Timestamp(1_700_000_000_000 + (n / 3) * 1000),
        member: MEMBERS[(n % 4) as usize].into(),
        kind: "case-study".into(),
        directions: vec![format!("d{}", n % 5)],
        lang: lang.into(),
        languages: vec![lang.into()],
        title: m(format!("{} {}", pick(100), pick(101))),
        summary: BTreeMap::new(),
        body: m(text.join(" ")),
        tags: Vec::new(),
        date: None,
        status: status.into(),
        publisher: format!("{} ministry", MEMBERS[(n % 4) as usize]),
        attachments: Vec::new(),
        files: Vec::new(),
        files_more: 0,
    }
}

fn queries() -> Vec<SearchQuery> {
    let text = |t: &str, offset: usize| SearchQuery {
        text: Some(t.into()),
        limit: 10,
        offset,
        ..Default::default()
    };
    let mut out = vec![
        text("цифровых услуг", 0),
        text("цифровых услуг", 30),
        text("digital platform", 0),
        text("interoperability", 5),
        text("гражданам", 0),
    ];
    for sort in [Sort::Newest, Sort::Oldest] {
        out.push(SearchQuery {
            members: vec!["KZ".into(), "UZ".into()],
            limit: 10,
            sort: Some(sort),
            ..Default::default()
        });
        out.push(SearchQuery {
            statuses: vec!["superseded".into()],
            limit: 5,
            offset: 3,
            sort: Some(sort),
            ..Default::default()
        });
    }
    out.push(SearchQuery {
        text: Some("skills".into()),
        directions: vec!["d2".into()],
        sort: Some(Sort::Newest),
        limit: 7,
        ..Default::default()
    });
    out
}

/// Records `0..parts * size` made by `make`, upserted and committed `size` at a time (a segment
/// each); the records of each commit.
fn commit_parts(
    idx: &mut SearchIndex,
    parts: u64,
    size: u64,
    make: impl Fn(u64) -> RecordDoc,
) -> Vec<Vec<RecordDoc>> {
    (0..parts)
        .map(|part| {
            let docs: Vec<RecordDoc> = (part * size..(part + 1) * size).map(&make).collect();
            idx.upsert(&docs).unwrap();
            idx.commit().unwrap();
            docs
        })
        .collect()
}

/// What a result shows an analyst, in order.
fn shown(r: &SearchResult) -> (usize, Vec<ObjectId>, String, Option<usize>) {
    (
        r.total,
        r.hits.iter().map(|h| h.doc.id).collect(),
        serde_json::to_string(&r.facets).unwrap(),
        r.next_offset,
    )
}

/// Every query on the long-lived searcher (twice: the second from the cache) gives what a new
/// searcher gives. The long-lived one is first filled as the node's indexer fills it after a
/// commit, so that it makes counts from what queries leave out; the new one reads every match.
fn agree(long_lived: &Searcher, idx: &SearchIndex) {
    long_lived.warm().unwrap();
    for q in queries() {
        let fresh = shown(&idx.searcher().search(&q).unwrap());
        let first = shown(&long_lived.search(&q).unwrap());
        let again = shown(&long_lived.search(&q).unwrap());
        assert_eq!(first, fresh, "query {q:?}");
        assert_eq!(again, fresh, "query {q:?}, repeated");
    }
}

#[test]
fn a_searcher_that_remembers_answers_as_a_new_one_does_while_the_index_changes() {
    let mut idx = SearchIndex::in_memory().unwrap();
    // 3,000 records in six commits: more than the 1,024 below which statistics are exact.
    commit_parts(&mut idx, 6, 500, |n| doc(n, "active"));
    let long_lived = idx.searcher();
    agree(&long_lived, &idx);
    let before = long_lived.cache_stats();
    assert!(before.visits > 0);

    // A repeated query visits no segment at all.
    let q = &queries()[0];
    long_lived.search(q).unwrap();
    let after = long_lived.cache_stats();
    assert_eq!(
        after.visits, before.visits,
        "a repeated query visited a segment"
    );
    assert!(after.hits > before.hits);

    // Records superseded in old segments (their documents deleted and indexed again), new
    // records, and a merge of everything: each step, the long-lived searcher still agrees.
    let superseded: Vec<RecordDoc> = (0..3000).step_by(7).map(|n| doc(n, "superseded")).collect();
    idx.upsert(&superseded).unwrap();
    idx.commit().unwrap();
    agree(&long_lived, &idx);
    let r = long_lived
        .search(&SearchQuery {
            statuses: vec!["superseded".into()],
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.total, superseded.len());

    let more: Vec<RecordDoc> = (3000..3100).map(|n| doc(n, "active")).collect();
    idx.upsert(&more).unwrap();
    idx.commit().unwrap();
    agree(&long_lived, &idx);

    idx.merge_all().unwrap();
    agree(&long_lived, &idx);
    let r = long_lived
        .search(&SearchQuery {
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.total, 3100 - superseded.len());
}

#[test]
fn ranked_pages_survive_a_commit_of_records_like_those_held() {
    let mut idx = SearchIndex::in_memory().unwrap();
    // Two commits of 1,500 (a segment per indexing thread each): few enough segments that the
    // merge policy leaves them alone.
    commit_parts(&mut idx, 2, 1500, |n| doc(n, "active"));
    let searcher = idx.searcher();
    let q = SearchQuery {
        text: Some("цифровых услуг".into()),
        limit: 10,
        ..Default::default()
    };
    searcher.search(&q).unwrap();
    let segments = idx.segment_count();
    let before = searcher.cache_stats();
    // Twelve more records of the same kind: the rounded statistics do not move, so only the new
    // segments (one per indexing thread that got some) are visited.
    let more: Vec<RecordDoc> = (4000..4012).map(|n| doc(n, "active")).collect();
    idx.upsert(&more).unwrap();
    idx.commit().unwrap();
    let added = idx.segment_count() - segments;
    assert!((1..=2).contains(&added), "{added} segments added");
    let cached = shown(&searcher.search(&q).unwrap());
    let after = searcher.cache_stats();
    assert_eq!(
        after.visits - before.visits,
        added as u64,
        "only new segments visited"
    );
    assert_eq!(after.hits - before.hits, segments as u64);
    assert_eq!(cached, shown(&idx.searcher().search(&q).unwrap()));
}

#[test]
fn one_upsert_makes_one_segment_whatever_the_indexing_threads() {
    let mut idx = SearchIndex::in_memory().unwrap();
    for round in 0..5u64 {
        let before = idx.segment_count();
        let docs: Vec<RecordDoc> = (round * 40..(round + 1) * 40)
            .map(|n| doc(n, "active"))
            .collect();
        idx.upsert(&docs).unwrap();
        idx.commit().unwrap();
        // The merge policy leaves fewer than eight small segments alone.
        assert_eq!(idx.segment_count(), before + 1, "round {round}");
    }
}

#[test]
fn an_offset_beyond_every_record_gives_an_empty_page_not_a_panic() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let docs: Vec<RecordDoc> = (0..30).map(|n| doc(n, "active")).collect();
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    for text in [None, Some("digital")] {
        for offset in [31, 100_000, usize::MAX - 5, usize::MAX] {
            let r = idx
                .searcher()
                .search(&SearchQuery {
                    text: text.map(str::to_string),
                    offset,
                    limit: 10,
                    ..Default::default()
                })
                .unwrap();
            assert!(r.hits.is_empty(), "offset {offset}");
            assert!(r.total > 0);
            assert_eq!(r.next_offset, None);
        }
    }
}

/// What a date-ordered query without text shows, read from the records themselves: the total,
/// the page's ids and the facet counts.
fn expected(
    records: &BTreeMap<ObjectId, RecordDoc>,
    q: &SearchQuery,
) -> (
    usize,
    Vec<ObjectId>,
    BTreeMap<String, BTreeMap<String, u64>>,
) {
    let statuses = if q.statuses.is_empty() {
        vec!["active".to_string()]
    } else {
        q.statuses.clone()
    };
    let keep = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    let mut hits: Vec<&RecordDoc> = records
        .values()
        .filter(|d| keep(&q.members, &d.member) && keep(&q.kinds, &d.kind))
        .filter(|d| statuses.contains(&d.status))
        .collect();
    hits.sort_by_key(|d| d.created.0);
    if q.sort != Some(Sort::Oldest) {
        hits.reverse();
    }
    let mut facets: BTreeMap<String, BTreeMap<String, u64>> = accord_search::FACETS
        .iter()
        .map(|f| (f.to_string(), BTreeMap::new()))
        .collect();
    for d in &hits {
        let date = d.created.date();
        let mut values = vec![
            ("member", d.member.clone()),
            ("kind", d.kind.clone()),
            ("status", d.status.clone()),
            ("publisher", d.publisher.clone()),
            ("year", date[..4].to_string()),
            ("month", date[..7].to_string()),
        ];
        values.extend(d.directions.iter().map(|x| ("direction", x.clone())));
        values.extend(d.languages.iter().map(|x| ("lang", x.clone())));
        for (facet, value) in values {
            *facets.get_mut(facet).unwrap().entry(value).or_default() += 1;
        }
    }
    let page = hits
        .iter()
        .skip(q.offset)
        .take(q.limit)
        .map(|d| d.id)
        .collect();
    (hits.len(), page, facets)
}

/// A filter that every record of a segment meets takes that segment's count, facets and page
/// from the entry of every document, which `warm` fills after a commit: its first run visits
/// only the segments it cuts, and still shows exactly what the records say, as records are
/// superseded in a segment that was whole.
#[test]
fn filters_that_keep_whole_segments_visit_only_the_others_and_show_what_the_records_say() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let mut records: BTreeMap<ObjectId, RecordDoc> = BTreeMap::new();
    let record = |n: u64, member: &str, status: &str| {
        let mut d = doc(n, status);
        d.member = member.into();
        d.publisher = format!("{member} ministry");
        // One record a minute from the end of 2025: distinct times, two years, several months.
        d.created = Timestamp(1_767_100_000_000 + n * 60_000);
        d
    };
    // Segment 1: every record from KZ; segment 2: every member.
    let kz: Vec<RecordDoc> = (0..400).map(|n| record(n, "KZ", "active")).collect();
    let mixed: Vec<RecordDoc> = (400..800)
        .map(|n| record(n, MEMBERS[(n % 4) as usize], "active"))
        .collect();
    for part in [&kz, &mixed] {
        idx.upsert(part).unwrap();
        idx.commit().unwrap();
        records.extend(part.iter().map(|d| (d.id, d.clone())));
    }
    let page = |q: SearchQuery| SearchQuery { limit: 20, ..q };
    let queries = [
        page(SearchQuery {
            members: vec!["KZ".into()],
            ..Default::default()
        }),
        page(SearchQuery {
            members: vec!["KZ".into(), "BY".into()],
            sort: Some(Sort::Oldest),
            offset: 390,
            ..Default::default()
        }),
        page(SearchQuery {
            kinds: vec!["case-study".into()],
            ..Default::default()
        }),
        page(SearchQuery {
            statuses: vec!["active".into(), "superseded".into()],
            members: vec!["KZ".into()],
            offset: 7,
            ..Default::default()
        }),
        page(SearchQuery::default()),
    ];
    // Segments each query visits on its first run after `warm`, before and after records of
    // the whole segment are superseded. A segment kept whole is visited only for a page that
    // `warm` did not make (another order or length: its count and facets are not counted
    // again); one the filter cuts is visited; the unfiltered view visits none.
    let visits = [[1, 2, 0, 2, 0], [2, 3, 1, 3, 0]];
    for (round, visits) in visits.iter().enumerate() {
        if round == 1 {
            // Every fifth KZ record superseded: deleted from segment 1, indexed again in a new
            // segment, so segment 1 is no longer whole for "active", nor the new one for "KZ".
            let superseded: Vec<RecordDoc> = (0..400)
                .step_by(5)
                .map(|n| record(n, "KZ", "superseded"))
                .collect();
            let mut other = superseded.clone();
            other.push(record(800, "UZ", "active"));
            idx.upsert(&other).unwrap();
            idx.commit().unwrap();
            records.extend(other.iter().map(|d| (d.id, d.clone())));
        }
        let searcher = idx.searcher();
        searcher.warm().unwrap();
        for (q, want) in queries.iter().zip(visits) {
            let before = searcher.cache_stats().visits;
            let r = searcher.search(q).unwrap();
            let shown = (
                r.total,
                r.hits.iter().map(|h| h.doc.id).collect::<Vec<_>>(),
                r.facets.clone(),
            );
            assert_eq!(shown, expected(&records, q), "round {round}, query {q:?}");
            let visited = searcher.cache_stats().visits - before;
            assert_eq!(visited, *want, "round {round}, segments visited by {q:?}");
        }
    }
}

/// A query's count and facets, made from what it leaves out of a segment when it matches most
/// of it, are what the records say, and what a searcher reading every match gives; the facet
/// values read are those of the smaller side of each segment (none where the query matches
/// every live record); a filter does not change the order of the records it keeps.
#[test]
fn counts_made_from_what_a_query_leaves_out_are_what_the_records_say() {
    let mut idx = SearchIndex::in_memory().unwrap();
    // Made-up words, so that which records hold them is plain: "quasarall" in every record,
    // "quasarmost" in nine of ten, "quasarthird" in one of three.
    let record = |n: u64, status: &str| {
        let mut d = doc(n, status);
        // KG rare (one record in twenty), so that a filter on it would weigh differently.
        if d.member == "KG" && n % 20 != 3 {
            d.member = "UZ".into();
            d.publisher = "UZ ministry".into();
        }
        for body in d.body.values_mut() {
            body.push_str(" quasarall");
            if !n.is_multiple_of(10) {
                body.push_str(" quasarmost");
            }
            if n.is_multiple_of(3) {
                body.push_str(" quasarthird");
            }
        }
        d
    };
    // Three segments; then a fourth holding every seventh record of the first two superseded
    // (deleted there: live records the default filter leaves out, in a segment that is not whole).
    let mut segments = commit_parts(&mut idx, 3, 300, |n| record(n, "active"));
    let superseded: Vec<RecordDoc> = (0..600)
        .step_by(7)
        .map(|n| record(n, "superseded"))
        .collect();
    idx.upsert(&superseded).unwrap();
    idx.commit().unwrap();
    let gone: std::collections::BTreeSet<ObjectId> = superseded.iter().map(|d| d.id).collect();
    for seg in &mut segments[..2] {
        seg.retain(|d| !gone.contains(&d.id));
    }
    segments.push(superseded);
    assert_eq!(idx.segment_count(), 4);
    let records: BTreeMap<ObjectId, RecordDoc> = segments
        .iter()
        .flatten()
        .map(|d| (d.id, d.clone()))
        .collect();

    let holds = |d: &RecordDoc, word: &str| d.body.values().any(|b| b.contains(word));
    let query = |word: &str, members: &[&str], offset: usize| SearchQuery {
        text: Some(word.into()),
        members: members.iter().map(|m| m.to_string()).collect(),
        limit: 10,
        offset,
        ..Default::default()
    };
    let queries = [
        query("quasarall", &[], 0),
        query("quasarall", &["KZ", "BY"], 5),
        query("quasarmost", &[], 20),
        query("quasarmost", &["UZ"], 0),
        query("quasarthird", &[], 0),
    ];
    let warmed = idx.searcher();
    warmed.warm().unwrap();
    for q in &queries {
        let word = q.text.clone().unwrap();
        let keep = |d: &RecordDoc| {
            d.status == "active"
                && holds(d, &word)
                && (q.members.is_empty() || q.members.contains(&d.member))
        };
        // What the records say: the total and the facets (`expected` reads the filters; the
        // text is applied here first).
        let matching: BTreeMap<ObjectId, RecordDoc> = records
            .iter()
            .filter(|(_, d)| keep(d))
            .map(|(id, d)| (*id, d.clone()))
            .collect();
        let (total, _, facets) = expected(
            &matching,
            &SearchQuery {
                text: None,
                ..q.clone()
            },
        );
        // The facet values each way reads: every match, or per segment the smaller side.
        let mut direct = 0;
        let mut smaller = 0;
        for seg in &segments {
            let live = seg.len() as u64;
            let matched = seg.iter().filter(|d| keep(d)).count() as u64;
            direct += matched;
            smaller += if 2 * matched > live {
                live - matched
            } else {
                matched
            };
        }
        let cold = idx.searcher();
        for (searcher, reads) in [(&warmed, smaller), (&cold, direct)] {
            let before = searcher.cache_stats().facet_reads;
            let r = searcher.search(q).unwrap();
            assert_eq!(r.total, total, "{q:?}");
            assert_eq!(r.facets, facets, "{q:?}");
            let read = searcher.cache_stats().facet_reads - before;
            assert_eq!(read, reads, "facet values read for {q:?}");
        }
        assert_eq!(
            shown(&warmed.search(q).unwrap()),
            shown(&idx.searcher().search(q).unwrap()),
            "{q:?}"
        );
    }
    // Where a query matches every live record of a segment (the three first, less what was
    // superseded there), nothing is read there: only the fourth segment's matches are.
    let before = idx.searcher();
    before.warm().unwrap();
    let reads = before.cache_stats().facet_reads;
    before.search(&queries[0]).unwrap();
    assert_eq!(before.cache_stats().facet_reads - reads, 0);

    // A filter keeps records and does not reorder them: the ranked page of a text with a
    // filter is the unfiltered ranking with the other records taken out.
    let all = SearchQuery {
        text: Some("quasarthird цифровых".into()),
        limit: 100,
        ..Default::default()
    };
    let ranked = warmed.search(&all).unwrap();
    assert!(ranked.total > 40, "{}", ranked.total);
    let filtered = warmed
        .search(&SearchQuery {
            members: vec!["KZ".into(), "KG".into()],
            ..all.clone()
        })
        .unwrap();
    let kept: Vec<ObjectId> = ranked
        .hits
        .iter()
        .filter(|h| ["KZ", "KG"].contains(&h.doc.member.as_str()))
        .map(|h| h.doc.id)
        .collect();
    // The unfiltered page holds the best 100; the filtered one starts with those of them it
    // keeps, in their order.
    assert!(kept.len() > 20 && kept.len() < filtered.hits.len());
    let shown_ids: Vec<ObjectId> = filtered.hits.iter().map(|h| h.doc.id).collect();
    assert_eq!(shown_ids[..kept.len()], kept[..]);
}

/// Closing the index waits for the merge its last commit started and keeps what it merged; a
/// dropped writer lets the merge run on into the directory and throws its result away.
#[test]
fn closing_the_index_waits_for_the_merges_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = SearchIndex::open(dir.path()).unwrap();
    // Eight small segments: the merge policy merges a level of eight into one.
    commit_parts(&mut idx, 8, 50, |n| doc(n, "active"));
    idx.close().unwrap();
    let reopened = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(reopened.num_docs(), 400);
    assert_eq!(
        reopened.segment_count(),
        1,
        "the merge the last commit started was not kept"
    );
}
