//! Morphology, filters, facets and pagination of the search index.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use accord_core::{ObjectId, Timestamp};
use accord_search::{Presence, RecordDoc, SearchIndex, SearchQuery, Sort};

#[allow(clippy::too_many_arguments)]
fn doc(
    n: u64,
    member: &str,
    kind: &str,
    dirs: &[&str],
    lang: &str,
    title: &str,
    text: &str,
    status: &str,
) -> RecordDoc {
    let m = |s: &str| BTreeMap::from([(lang.to_string(), s.to_string())]);
    RecordDoc {
        id: ObjectId::of_body(&n.to_le_bytes()),
        created: Timestamp(1_700_000_000_000 + n * 3_600_000),
        member: member.into(),
        kind: kind.into(),
        directions: dirs.iter().map(|d| d.to_string()).collect(),
        lang: lang.into(),
        languages: vec![lang.into()],
        title: m(title),
        summary: BTreeMap::new(),
        body: m(text),
        tags: Vec::new(),
        date: None,
        status: status.into(),
        publisher: format!("{member} ministry"),
        attachments: Vec::new(),
        files: Vec::new(),
        files_more: 0,
    }
}

fn ids(idx: &SearchIndex, text: &str) -> BTreeSet<ObjectId> {
    let q = SearchQuery {
        text: Some(text.into()),
        limit: 100,
        ..Default::default()
    };
    idx.searcher()
        .search(&q)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.doc.id)
        .collect()
}

fn morphology_index() -> (SearchIndex, [ObjectId; 5]) {
    let mut idx = SearchIndex::in_memory().unwrap();
    let docs = vec![
        doc(
            1,
            "KZ",
            "regulatory-note",
            &["e-government"],
            "ru",
            "Электронное правительство",
            "Опыт внедрения системы электронное правительство в регионах.",
            "active",
        ),
        doc(
            2,
            "BY",
            "skills-programme",
            &["digital-skills"],
            "en",
            "Digital skills programmes",
            "National skills programmes for civil servants.",
            "active",
        ),
        doc(
            3,
            "KZ",
            "other",
            &["digital-divide"],
            "kk",
            "Цифрлық теңсіздік",
            "Ауылдық жерлерде интернетке қолжетімділік.",
            "active",
        ),
        doc(
            4,
            "AM",
            "dataset",
            &["infrastructure"],
            "hy",
            "Լայնաշերտ կապի տվյալներ",
            "Բաց տվյալներ համայնքների ծածկույթի մասին։",
            "active",
        ),
        doc(
            5,
            "BY",
            "standard",
            &["ict-science"],
            "be",
            "Стандарт абмену дадзенымі",
            "Міжведамасны абмен дадзенымі.",
            "active",
        ),
    ];
    let out = [docs[0].id, docs[1].id, docs[2].id, docs[3].id, docs[4].id];
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    (idx, out)
}

#[test]
fn russian_morphology() {
    let (idx, id) = morphology_index();
    assert!(ids(&idx, "электронного правительства").contains(&id[0]));
    assert!(ids(&idx, "правительство").contains(&id[0]));
    assert!(ids(&idx, "правительству").contains(&id[0]));
    assert!(!ids(&idx, "правительство").contains(&id[1]));
}

#[test]
fn english_morphology() {
    let (idx, id) = morphology_index();
    assert!(ids(&idx, "skill programme").contains(&id[1]));
    assert!(ids(&idx, "servant").contains(&id[1]));
    assert!(!ids(&idx, "skill programme").contains(&id[0]));
}

#[test]
fn other_languages_by_exact_words() {
    let (idx, id) = morphology_index();
    assert!(ids(&idx, "теңсіздік").contains(&id[2]), "Kazakh");
    assert!(ids(&idx, "տվյալներ").contains(&id[3]), "Armenian");
    assert!(ids(&idx, "дадзенымі").contains(&id[4]), "Belarusian");
    assert!(ids(&idx, "несуществующееслово").is_empty());
}

#[test]
fn hostile_query_text_is_just_words() {
    let (idx, _) = morphology_index();
    for q in [
        "",
        "\"unbalanced",
        "title_ru:(",
        "a AND OR NOT",
        "*:*",
        "[1 TO",
        "\\",
        "((((((",
        "😀",
    ] {
        let r = idx.searcher().search(&SearchQuery {
            text: Some(q.into()),
            limit: 10,
            ..Default::default()
        });
        assert!(r.is_ok(), "{q:?}: {r:?}");
    }
    let long = "а".repeat(600);
    assert!(
        idx.searcher()
            .search(&SearchQuery {
                text: Some(long),
                limit: 10,
                ..Default::default()
            })
            .is_err()
    );
}

#[test]
fn filters_facets_and_pagination() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let members = ["KZ", "BY", "AM", "KG", "UZ"];
    let kinds = [
        "regulatory-note",
        "skills-programme",
        "platform-case-study",
        "dataset",
    ];
    let dirs = ["regulation", "e-government", "digital-skills"];
    let statuses = ["active", "active", "active", "superseded", "retracted"];
    let docs: Vec<RecordDoc> = (0..300u64)
        .map(|n| {
            let (m, k, d, s) = (
                members[n as usize % 5],
                kinds[n as usize % 4],
                dirs[n as usize % 3],
                statuses[n as usize % 5],
            );
            let mut r = doc(
                n,
                m,
                k,
                &[d],
                if n % 2 == 0 { "en" } else { "ru" },
                &format!("record {n}"),
                "shared text about platforms",
                s,
            );
            if n % 7 == 0 {
                r.directions.push("regulation".into());
                r.directions.dedup();
            }
            r
        })
        .collect();
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    let s = idx.searcher();
    let naive = |f: &dyn Fn(&RecordDoc) -> bool| docs.iter().filter(|d| f(d)).count();
    let run = |q: SearchQuery| s.search(&SearchQuery { limit: 100, ..q }).unwrap();

    // Default: active only.
    let all = run(SearchQuery::default());
    assert_eq!(all.total, naive(&|d| d.status == "active"));
    // OR within a field, AND across fields.
    let r = run(SearchQuery {
        members: vec!["KZ".into(), "BY".into()],
        kinds: vec!["dataset".into()],
        ..Default::default()
    });
    assert_eq!(
        r.total,
        naive(&|d| d.status == "active"
            && (d.member == "KZ" || d.member == "BY")
            && d.kind == "dataset")
    );
    let r = run(SearchQuery {
        directions: vec!["regulation".into()],
        statuses: vec!["superseded".into(), "retracted".into()],
        ..Default::default()
    });
    assert_eq!(
        r.total,
        naive(&|d| d.status != "active" && d.directions.contains(&"regulation".to_string()))
    );
    let r = run(SearchQuery {
        langs: vec!["ru".into()],
        since: Some(Timestamp(1_700_000_000_000 + 100 * 3_600_000)),
        until: Some(Timestamp(1_700_000_000_000 + 200 * 3_600_000)),
        ..Default::default()
    });
    assert_eq!(
        r.total,
        naive(&|d| d.status == "active"
            && d.lang == "ru"
            && (100..200).contains(&((d.created.0 - 1_700_000_000_000) / 3_600_000)))
    );
    // Facet counts over the result set.
    let r = run(SearchQuery {
        kinds: vec!["dataset".into()],
        ..Default::default()
    });
    for m in members {
        let want = naive(&|d| d.status == "active" && d.kind == "dataset" && d.member == m) as u64;
        assert_eq!(
            r.facets["member"].get(m).copied().unwrap_or(0),
            want,
            "member facet {m}"
        );
    }
    assert_eq!(
        r.facets["kind"].get("dataset").copied(),
        Some(r.total as u64)
    );
    // Pagination: every record exactly once, in both date orders and by relevance.
    for sort in [Sort::Newest, Sort::Oldest, Sort::Relevance] {
        let mut seen = BTreeSet::new();
        let mut offset = 0;
        let text = (sort == Sort::Relevance).then(|| "platforms".to_string());
        loop {
            let page = s
                .search(&SearchQuery {
                    text: text.clone(),
                    statuses: vec!["active".into(), "superseded".into(), "retracted".into()],
                    sort: Some(sort),
                    limit: 7,
                    offset,
                    ..Default::default()
                })
                .unwrap();
            for h in &page.hits {
                assert!(seen.insert(h.doc.id), "{sort:?}: {} twice", h.doc.id);
            }
            match page.next_offset {
                Some(o) => offset = o,
                None => break,
            }
        }
        assert_eq!(seen.len(), 300, "{sort:?}");
    }
    // Newest first really is newest first.
    let r = run(SearchQuery {
        sort: Some(Sort::Newest),
        ..Default::default()
    });
    assert!(
        r.hits
            .windows(2)
            .all(|w| w[0].doc.created >= w[1].doc.created)
    );
}

/// `Presence::New` only adds (no delete by id: the saving), `Presence::Maybe` replaces,
/// also a new document added earlier in the same uncommitted batch of work.
#[test]
fn new_documents_are_only_added_and_the_others_replace() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let one = doc(
        1,
        "KZ",
        "other",
        &["regulation"],
        "en",
        "One",
        "first body",
        "active",
    );
    let two = doc(
        2,
        "KZ",
        "other",
        &["regulation"],
        "en",
        "Two",
        "second body",
        "active",
    );
    idx.apply([(&one, Presence::New), (&two, Presence::New)])
        .unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.num_docs(), 2);
    // Marking a document new that the index holds leaves two: the caller's promise matters.
    idx.apply([(&one, Presence::New)]).unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.num_docs(), 3);
    // A replacement removes every earlier copy, committed or not.
    let three = doc(
        3,
        "BY",
        "other",
        &["regulation"],
        "ru",
        "Три",
        "третий",
        "active",
    );
    let mut retracted = one.clone();
    retracted.status = "retracted".into();
    idx.apply([(&three, Presence::New)]).unwrap();
    idx.apply([(&retracted, Presence::Maybe)]).unwrap();
    let mut three_superseded = three.clone();
    three_superseded.status = "superseded".into();
    idx.apply([(&three_superseded, Presence::Maybe)]).unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.num_docs(), 3, "one, two and three, once each");
    let active = idx
        .searcher()
        .search(&SearchQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let ids: Vec<ObjectId> = active.hits.iter().map(|h| h.doc.id).collect();
    assert_eq!(ids, vec![two.id], "only two is still current");
}

#[test]
fn upsert_replaces_and_snippets_are_escaped() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let mut d = doc(
        1,
        "KZ",
        "other",
        &["regulation"],
        "en",
        "Title",
        "Platforms <script>alert(1)</script> and more",
        "active",
    );
    idx.upsert(std::slice::from_ref(&d)).unwrap();
    idx.commit().unwrap();
    let r = idx
        .searcher()
        .search(&SearchQuery {
            text: Some("platforms".into()),
            limit: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.total, 1);
    assert!(
        r.hits[0].snippet.contains("<b>Platforms</b>"),
        "{}",
        r.hits[0].snippet
    );
    assert!(
        !r.hits[0].snippet.contains("<script>"),
        "{}",
        r.hits[0].snippet
    );
    d.status = "retracted".into();
    idx.upsert(&[d]).unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.num_docs(), 1);
    assert_eq!(
        idx.searcher()
            .search(&SearchQuery {
                limit: 5,
                ..Default::default()
            })
            .unwrap()
            .total,
        0
    );
    let r = idx
        .searcher()
        .search(&SearchQuery {
            statuses: vec!["retracted".into()],
            limit: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.total, 1);
}

/// An index written with another schema (an earlier release stored the text fields too) is
/// recreated empty when opened, so the node rebuilds it from the store; the new one keeps the
/// text only once, in the stored document, and cuts snippets from it.
#[test]
fn an_index_of_another_schema_is_recreated_and_snippets_come_from_the_stored_document() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut b = tantivy::schema::Schema::builder();
        b.add_text_field("title_ru", tantivy::schema::TEXT | tantivy::schema::STORED);
        let old = tantivy::Index::create_in_dir(dir.path(), b.build()).unwrap();
        let mut w: tantivy::IndexWriter = old.writer(15_000_000).unwrap();
        w.commit().unwrap();
    }
    let mut idx = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(idx.num_docs(), 0);
    idx.upsert(&[doc(
        1,
        "KZ",
        "regulatory-note",
        &["e-government"],
        "ru",
        "Проактивные услуги",
        "Государственные услуги оказываются без заявления гражданина.",
        "active",
    )])
    .unwrap();
    idx.commit().unwrap();
    let r = search_text(&idx, "заявления");
    assert_eq!(r.total, 1);
    assert!(
        r.hits[0].snippet.contains("<b>заявления</b>"),
        "{}",
        r.hits[0].snippet
    );
    drop(idx);
    // Reopened with the same schema, it is kept.
    assert_eq!(SearchIndex::open(dir.path()).unwrap().num_docs(), 1);
}

/// A segment file missing or cut short (a data directory copied while the node ran, a damaged
/// disk) makes the index unusable as a damaged `meta.json` does: it is recreated empty, for the
/// node to rebuild from its store, instead of keeping the node (and `accord reindex`) from
/// starting.
/// An index directory the process may not write (files a command run as root left, a
/// read-only filesystem) is refused with the system's reason, not wiped as if damaged and
/// rebuilt. Played (the tests run as root, whom permissions do not stop) by a directory in the
/// place of the file the index's open writes to check that it may.
#[test]
fn an_index_the_process_may_not_write_is_refused_not_wiped() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = SearchIndex::open(dir.path()).unwrap();
    idx.upsert(&[doc(
        1,
        "KZ",
        "regulatory-note",
        &[],
        "en",
        "Kept",
        "Kept whole.",
        "active",
    )])
    .unwrap();
    idx.commit().unwrap();
    drop(idx);
    let files = |d: &std::path::Path| std::fs::read_dir(d).unwrap().count();
    let before = files(dir.path());
    std::fs::create_dir(dir.path().join(".accord-write-check")).unwrap();
    let Err(err) = SearchIndex::open(dir.path()) else {
        panic!("opened an index it cannot write");
    };
    assert!(
        err.to_string().contains(".accord-write-check")
            || err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert_eq!(files(dir.path()), before + 1, "the index was touched");
    std::fs::remove_dir(dir.path().join(".accord-write-check")).unwrap();
    assert_eq!(SearchIndex::open(dir.path()).unwrap().num_docs(), 1);
}

#[test]
fn an_index_missing_a_segment_file_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = SearchIndex::open(dir.path()).unwrap();
    idx.upsert(&[doc(
        1,
        "KZ",
        "regulatory-note",
        &["e-government"],
        "ru",
        "Проактивные услуги",
        "Государственные услуги оказываются без заявления гражданина.",
        "active",
    )])
    .unwrap();
    idx.commit().unwrap();
    drop(idx);
    let segment_files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "term" || x == "store"))
        .collect();
    assert!(!segment_files.is_empty());
    for p in &segment_files {
        std::fs::remove_file(p).unwrap();
    }
    let mut idx = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(idx.num_docs(), 0);
    idx.upsert(&[doc(
        2,
        "KZ",
        "regulatory-note",
        &["e-government"],
        "ru",
        "Снова",
        "Государственные услуги оказываются без заявления гражданина.",
        "active",
    )])
    .unwrap();
    idx.commit().unwrap();
    assert_eq!(search_text(&idx, "заявления").total, 1);
}

/// A full-text search of `text` in `idx`.
fn search_text(idx: &SearchIndex, text: &str) -> accord_search::SearchResult {
    idx.searcher()
        .search(&SearchQuery {
            text: Some(text.into()),
            ..SearchQuery::default()
        })
        .unwrap()
}

#[test]
fn the_indexing_memory_is_an_option_and_too_little_is_refused_without_touching_the_index() {
    use accord_search::IndexOptions;
    let dir = tempfile::tempdir().unwrap();
    let small = IndexOptions {
        writer_heap_bytes: 15 << 20,
    };
    let mut idx = SearchIndex::open_with(dir.path(), &small).unwrap();
    let docs: Vec<_> = (0..300u64)
        .map(|i| {
            doc(
                i + 1,
                "KZ",
                "regulatory-note",
                &["e-government"],
                "ru",
                &format!("Проактивные услуги {i}"),
                "Государственные услуги оказываются без заявления гражданина.",
                "active",
            )
        })
        .collect();
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    assert_eq!(idx.num_docs(), 300);
    drop(idx);
    // Less than tantivy's least for one indexing thread: an error, not a wiped index.
    let tiny = IndexOptions {
        writer_heap_bytes: 1 << 20,
    };
    let err = SearchIndex::open_with(dir.path(), &tiny).unwrap_err();
    assert!(err.to_string().contains("memory"), "{err}");
    let idx = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(idx.num_docs(), 300);
    let r = search_text(&idx, "заявления");
    assert_eq!(r.total, 300);
}

/// Texts an index without long texts reads from: what a node's store gives.
struct Texts(BTreeMap<ObjectId, accord_search::LongTexts>);

impl accord_search::TextSource for Texts {
    fn long_texts(&self, id: &ObjectId) -> Option<accord_search::LongTexts> {
        self.0.get(id).cloned()
    }
}

#[test]
fn an_index_without_long_texts_indexes_them_and_hits_read_them_from_the_source() {
    let mut idx = SearchIndex::in_memory().unwrap();
    idx.without_long_texts();
    let mut d = doc(
        1,
        "KZ",
        "platform-case-study",
        &["e-government"],
        "en",
        "Regional health pilots",
        "Clinics in three regions began teleconsultation with the capital.",
        "active",
    );
    d.summary = BTreeMap::from([("en".into(), "Pilots in three regions.".into())]);
    d.tags = vec!["telemedicine".into()];
    d.date = Some("2026-03-01".into());
    d.attachments = vec![accord_search::AttachmentText {
        name: "report.pdf".into(),
        text: "Bandwidth of rural links was measured weekly.".into(),
    }];
    idx.upsert(std::slice::from_ref(&d)).unwrap();
    idx.commit().unwrap();
    let q = |text: &str| SearchQuery {
        text: Some(text.into()),
        limit: 10,
        ..Default::default()
    };

    // Without a source: found by body and attachment words, but the stored document has
    // neither; everything else is there as given.
    let bare = idx.searcher();
    for word in ["teleconsultation", "bandwidth"] {
        let r = bare.search(&q(word)).unwrap();
        assert_eq!(r.total, 1, "{word}");
        let mut expected = d.clone();
        expected.body.clear();
        expected.attachments.clear();
        assert_eq!(r.hits[0].doc, expected);
    }
    let r = bare.search(&q("teleconsultation")).unwrap();
    assert_eq!(r.hits[0].snippet, "Pilots in three regions.");

    // With one: the snippet is cut from the body, or from the file, and the hit keeps the
    // head only (its long texts served the snippet; no answer shows them).
    let source = Texts(BTreeMap::from([(
        d.id,
        accord_search::LongTexts {
            body: d.body.clone(),
            attachments: d.attachments.clone(),
        },
    )]));
    let s = idx.searcher().with_texts(std::sync::Arc::new(source));
    let r = s.search(&q("teleconsultation")).unwrap();
    assert_eq!(r.hits[0].doc, expected_head(&d));
    assert!(
        r.hits[0].snippet.contains("<b>teleconsultation</b>"),
        "{}",
        r.hits[0].snippet
    );
    let r = s.search(&q("bandwidth")).unwrap();
    assert!(
        r.hits[0]
            .snippet
            .starts_with("📎 report.pdf: <b>Bandwidth</b>"),
        "{}",
        r.hits[0].snippet
    );

    // A record the source does not hold keeps what the index stored.
    let s = idx
        .searcher()
        .with_texts(std::sync::Arc::new(Texts(BTreeMap::new())));
    let r = s.search(&q("teleconsultation")).unwrap();
    assert_eq!(r.total, 1);
    assert!(r.hits[0].doc.body.is_empty());
}

#[test]
fn an_index_with_long_texts_stores_them() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let d = doc(
        1,
        "KZ",
        "regulatory-note",
        &["regulation"],
        "en",
        "Open data",
        "Portals publish datasets under open licences.",
        "active",
    );
    idx.upsert(std::slice::from_ref(&d)).unwrap();
    idx.commit().unwrap();
    let r = idx
        .searcher()
        .search(&SearchQuery {
            text: Some("licences".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.hits[0].doc, expected_head(&d));
    assert!(r.hits[0].snippet.contains("<b>licences</b>"));
}

/// What a hit carries of `d`: everything but its long texts.
fn expected_head(d: &RecordDoc) -> RecordDoc {
    let mut head = d.clone();
    head.body.clear();
    head.attachments.clear();
    head
}

/// A query asked for the first time over enough documents visits the segments on several
/// threads (docs/SEARCH.md, "Speed"): the count, the facet counts and the page are exactly those
/// of the documents, in every order, and the same when asked again from the cache.
#[test]
fn a_first_query_over_many_segments_visited_in_parallel_is_exact() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let members = ["KZ", "BY", "AM", "RU"];
    let kinds = ["case", "note", "skills"];
    let n = 24_000u64;
    let docs: Vec<RecordDoc> = (0..n)
        .map(|i| {
            let mut d = doc(
                i,
                members[(i % 4) as usize],
                kinds[(i % 3) as usize],
                &[["d1", "d2", "d3", "d4", "d5"][(i % 5) as usize]],
                if i % 2 == 0 { "ru" } else { "en" },
                "platform",
                if i % 7 == 0 {
                    "registry interoperability"
                } else {
                    "registry"
                },
                "active",
            );
            // Creation times out of insertion order, so that no segment holds the newest alone.
            d.created = Timestamp(1_700_000_000_000 + (i * 7_919) % n * 1_000);
            d
        })
        .collect();
    for chunk in docs.chunks(3_000) {
        idx.upsert(chunk).unwrap();
        idx.commit().unwrap();
    }
    assert!(idx.segment_count() >= 3, "{} segments", idx.segment_count());
    let kz = |d: &&RecordDoc| d.member == "KZ";
    for (sort, text) in [
        (Sort::Newest, None),
        (Sort::Oldest, None),
        (Sort::Newest, Some("interoperability")),
    ] {
        let q = SearchQuery {
            members: vec!["KZ".into()],
            text: text.map(str::to_string),
            sort: Some(sort),
            limit: 20,
            ..Default::default()
        };
        let matching: Vec<&RecordDoc> = docs
            .iter()
            .filter(kz)
            .filter(|d| text.is_none() || d.body.values().any(|b| b.contains("interop")))
            .collect();
        let mut by_time: Vec<&&RecordDoc> = matching.iter().collect();
        by_time.sort_by_key(|d| d.created);
        if sort == Sort::Newest {
            by_time.reverse();
        }
        let want_page: Vec<ObjectId> = by_time.iter().take(20).map(|d| d.id).collect();
        let mut want_kinds: BTreeMap<String, u64> = BTreeMap::new();
        for d in &matching {
            *want_kinds.entry(d.kind.clone()).or_default() += 1;
        }
        let searcher = idx.searcher();
        for round in ["first", "cached"] {
            let r = searcher.search(&q).unwrap();
            assert_eq!(r.total, matching.len(), "{round} {sort:?} {text:?}");
            let page: Vec<ObjectId> = r.hits.iter().map(|h| h.doc.id).collect();
            assert_eq!(page, want_page, "{round} {sort:?} {text:?}");
            assert_eq!(r.facets["kind"], want_kinds, "{round} {sort:?} {text:?}");
            assert_eq!(r.facets["member"].get("KZ"), Some(&(matching.len() as u64)));
        }
        assert!(searcher.cache_stats().hits > 0);
    }
}

/// A hostile member's record, within the charter's limits, makes a document of bounded size
/// with nothing hidden in what it shows: a title of 100,000 control characters, a thousand
/// languages (some not even shaped like one), a thousand long tags, a file named to read
/// backwards, and a body of 50,000 distinct words for the live stream.
#[test]
fn a_hostile_records_document_is_bounded_and_hides_nothing() {
    let t0 = Timestamp(1_700_000_000_000);
    let fed = accord_core::devnet::DevFederation::new(&["KZ"], [3; 32], t0).unwrap();
    let mut r = fed.record_body(0, "unused", Timestamp(t0.0 + 1_000));
    let lang = r.lang.clone();
    r.title.insert(
        lang.clone(),
        format!("{}Title\u{202E}cod.exe", "\u{1}".repeat(100_000)),
    );
    for i in 0..1000 {
        r.title.insert(format!("zz-a{i:04}"), "t".into());
    }
    r.title.insert("not a <tag>".into(), "t".into());
    r.tags = (0..1000)
        .map(|i| format!("{}{i}", "t".repeat(200)))
        .collect();
    let words: String = (0..50_000u32)
        .map(|i| {
            let mut w = String::from("q");
            let mut n = i;
            for _ in 0..4 {
                w.push(char::from(b'a' + (n % 26) as u8));
                n /= 26;
            }
            w + " "
        })
        .collect();
    r.body.insert(lang.clone(), words);
    r.attachments = vec![accord_core::attachment::describe(
        "invoice\u{202E}fdp.exe",
        b"a file",
    )];
    let d = RecordDoc::of(ObjectId::of_body(b"hostile"), &r, "active", "Ministry");
    assert_eq!(
        d.title[&lang], "Titlecod.exe",
        "controls and overrides taken out"
    );
    assert!(d.languages.len() <= accord_search::DOC_LANGUAGES);
    assert!(d.languages.contains(&lang));
    assert!(!d.title.contains_key("not a <tag>"));
    assert!(d.title.len() <= accord_search::DOC_LANGUAGES);
    assert_eq!(d.tags.len(), accord_search::DOC_TAGS);
    assert!(d.tags.iter().all(|t| t.chars().count() <= 65));
    assert_eq!(d.files[0].name, "invoicefdp.exe");
    let json = serde_json::to_string(&d.title).unwrap();
    assert!(json.len() < 64 * 1024, "{} bytes of titles", json.len());
    let dw = accord_search::DocWords::of(&d);
    assert!(dw.len() <= 3 * accord_search::MAX_DOC_WORDS, "{}", dw.len());
    // A thousand files of long names: the first 64 listed, the rest counted (a hit was a
    // megabyte of file names).
    r.attachments = (0..1_000u32)
        .map(|i| {
            accord_core::attachment::describe(&format!("{i} {}", "n".repeat(600)), &i.to_le_bytes())
        })
        .collect();
    let d = RecordDoc::of(ObjectId::of_body(b"hostile"), &r, "active", "Ministry");
    assert_eq!(d.files.len(), accord_search::DOC_FILES);
    assert_eq!(d.files_more, 1_000 - accord_search::DOC_FILES as u64);
    assert!(serde_json::to_string(&d.files).unwrap().len() < 64 * 1024);
}

/// A title signed on two lines shows its words apart on one line (they ran together), and a
/// title or publisher's name holding noncharacters (U+FFFF, which no XML document may hold)
/// shows without them.
#[test]
fn titles_and_names_show_on_one_line_without_noncharacters() {
    assert_eq!(
        accord_search::display_line("Quokka rules for\ncross-border\r\ndata\n"),
        "Quokka rules for cross-border  data"
    );
    assert_eq!(
        accord_search::display_line("Wombat\u{FFFF} notice\u{FDD0}\u{10FFFE}"),
        "Wombat notice"
    );
    let t0 = Timestamp(1_700_000_000_000);
    let fed = accord_core::devnet::DevFederation::new(&["KZ"], [3; 32], t0).unwrap();
    let mut r = fed.record_body(0, "unused", Timestamp(t0.0 + 1_000));
    let lang = r.lang.clone();
    r.title.insert(lang.clone(), "Two\nlines".into());
    let d = RecordDoc::of(
        ObjectId::of_body(b"lines"),
        &r,
        "active",
        "Ministry\u{FFFF}\u{202E}",
    );
    assert_eq!(d.title[&lang], "Two lines");
    assert_eq!(d.publisher, "Ministry");
}

/// A hit's snippet is looked for in the first 64 KiB of a body's Markdown, cut before it is
/// parsed: a hostile body of nested quotes (`>>>>…`) cost a tenth of a second per mebibyte to
/// parse, for every hit on every page that showed it. Here the word after 70,000 `>` is found
/// (the index reads the whole body) but not shown; a word within the first 64 KiB is.
#[test]
fn a_snippet_parses_at_most_the_first_64_kib_of_a_bodys_markdown() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let deep = format!("{} telescope quasar", ">".repeat(70_000));
    let near = format!("{} telescope nebula", "> ".repeat(1_000));
    idx.upsert(&[
        doc(
            1,
            "KZ",
            "case-study",
            &[],
            "en",
            "Deep quotes",
            &deep,
            "active",
        ),
        doc(
            2,
            "KZ",
            "case-study",
            &[],
            "en",
            "Near quotes",
            &near,
            "active",
        ),
    ])
    .unwrap();
    idx.commit().unwrap();
    let q = SearchQuery {
        text: Some("telescope".into()),
        limit: 10,
        ..Default::default()
    };
    let r = idx.searcher().search(&q).unwrap();
    assert_eq!(r.total, 2);
    let snippet = |title: &str| {
        r.hits
            .iter()
            .find(|h| h.doc.title["en"] == title)
            .map(|h| h.snippet.clone())
            .unwrap()
    };
    assert!(
        snippet("Near quotes").contains("<b>telescope</b>"),
        "{}",
        snippet("Near quotes")
    );
    assert!(
        !snippet("Deep quotes").contains("telescope"),
        "{}",
        snippet("Deep quotes")
    );
}

/// A query reads at most 16 words, the last always among them, and a word given twice once:
/// the 15 absent words in the middle of this 31-word query are not read, so it finds the
/// record by its 15 first words and its last.
#[test]
fn a_query_reads_at_most_sixteen_words() {
    let present = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar",
    ];
    let absent: Vec<String> = (0..15u8)
        .map(|i| format!("qzx{}qzx", char::from(b'a' + i)))
        .collect();
    let mut idx = SearchIndex::in_memory().unwrap();
    let d = doc(
        1,
        "KZ",
        "regulatory-note",
        &[],
        "en",
        "A long note",
        &format!("{} papa", present.join(" ")),
        "active",
    );
    idx.upsert(std::slice::from_ref(&d)).unwrap();
    idx.commit().unwrap();
    // "alpha" twice: read once, in its last place.
    let query = format!("alpha {} {} papa", present.join(" "), absent.join(" "));
    let r = search_text(&idx, &query);
    assert_eq!(r.total, 1, "{:?}", r.reading);
    assert!(r.reading.showing_for.is_none(), "{:?}", r.reading);
}

/// An answer lists at most 100 values of a filter, the most frequent: records in 150
/// languages do not make every search page list 150 checkboxes.
#[test]
fn an_answer_lists_the_most_frequent_hundred_values_of_a_filter() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let mut docs: Vec<RecordDoc> = (0..150u64)
        .map(|i| {
            doc(
                i + 1,
                "KZ",
                "regulatory-note",
                &[],
                &format!("x-a{i:03}"),
                "t",
                "text",
                "active",
            )
        })
        .collect();
    // One language in three records: the most frequent, listed first in counts.
    for n in [1001, 1002] {
        docs.push(doc(
            n,
            "KZ",
            "regulatory-note",
            &[],
            "x-a149",
            "t",
            "text",
            "active",
        ));
    }
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    let r = idx.searcher().search(&SearchQuery::default()).unwrap();
    assert_eq!(r.total, 152);
    let langs = &r.facets["lang"];
    assert_eq!(langs.len(), accord_search::MAX_FACET_VALUES);
    assert_eq!(langs.get("x-a149"), Some(&3));
}

/// A hit's snippet is looked for in the first 64 KiB of each text: a word found further on in
/// a long record gives its summary as the snippet (a hundred mebibyte records are not each
/// tokenized whole), and a word near the start is highlighted as ever.
#[test]
fn a_snippet_is_looked_for_in_the_beginning_of_a_long_text() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let body = format!("needle {} farawayword", "filler ".repeat(30_000));
    let d = doc(
        1,
        "KZ",
        "regulatory-note",
        &[],
        "en",
        "Long",
        &body,
        "active",
    );
    idx.upsert(std::slice::from_ref(&d)).unwrap();
    idx.commit().unwrap();
    let near = search_text(&idx, "needle");
    assert_eq!(near.total, 1);
    assert!(
        near.hits[0].snippet.contains("<b>needle</b>"),
        "{}",
        near.hits[0].snippet
    );
    let far = search_text(&idx, "farawayword");
    assert_eq!(far.total, 1, "still found");
    assert!(
        !far.hits[0].snippet.contains("<b>"),
        "{}",
        far.hits[0].snippet
    );
}

/// A page of record heads (exports, feeds) may hold up to 10,000 hits, so that an export is one
/// search; a page with bodies and snippets stays at 100.
#[test]
fn a_page_of_heads_holds_an_export_a_page_of_hits_a_hundred() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let docs: Vec<RecordDoc> = (0..300u64)
        .map(|i| {
            doc(
                i + 1,
                "KZ",
                "regulatory-note",
                &[],
                "en",
                "t",
                "text",
                "active",
            )
        })
        .collect();
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    let ask = |heads_only: bool| {
        idx.searcher()
            .search(&SearchQuery {
                limit: 250,
                heads_only,
                ..SearchQuery::default()
            })
            .unwrap()
    };
    let heads = ask(true);
    assert_eq!(heads.hits.len(), 250);
    assert_eq!(heads.next_offset, Some(250));
    assert!(heads.hits.iter().all(|h| h.doc.body.is_empty()));
    let full = ask(false);
    assert_eq!(full.hits.len(), accord_search::MAX_LIMIT);
}

#[test]
fn a_tag_filter_matches_whole_tags_whatever_their_case_and_spacing() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let tagged = |n: u64, tags: &[&str]| {
        let mut d = doc(
            n,
            "KZ",
            "regulatory-note",
            &["regulation"],
            "en",
            &format!("Record {n}"),
            "A note on the digital government of the region.",
            "active",
        );
        d.tags = tags.iter().map(|t| t.to_string()).collect();
        d
    };
    let docs = [
        tagged(1, &["E-Government", "pilot"]),
        tagged(2, &["e-government  services"]),
        tagged(3, &["government"]),
        tagged(4, &[]),
        tagged(5, &["Цифровые навыки"]),
        // Decomposed (NFD) and with a zero-width space: as pages show them, "край" and "egov".
        tagged(6, &["Краи\u{0306}", "e\u{200B}gov"]),
        // Case folding beyond lower case, compatibility forms, ё.
        tagged(7, &["Straße", "ﬁnance", "Объём"]),
        tagged(8, &["İnformasiya", "ΟΔΟΣ"]),
        tagged(9, &["ＡＩ", "m²"]),
    ];
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    let with = |tags: &[&str], text: Option<&str>| -> Vec<u64> {
        let q = SearchQuery {
            text: text.map(str::to_string),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            limit: 100,
            ..Default::default()
        };
        let r = idx.searcher().search(&q).unwrap();
        assert_eq!(r.total, r.hits.len());
        let mut n: Vec<u64> = r
            .hits
            .iter()
            .map(|h| docs.iter().position(|d| d.id == h.doc.id).unwrap() as u64 + 1)
            .collect();
        n.sort();
        n
    };
    // Whole tags, case and runs of spaces aside: "government" is not "e-government".
    assert_eq!(with(&["e-government"], None), [1]);
    assert_eq!(with(&[" E-GOVERNMENT "], None), [1]);
    assert_eq!(with(&["E-Government Services"], None), [2]);
    assert_eq!(with(&["government"], None), [3]);
    assert_eq!(with(&["цифровые  НАВЫКИ"], None), [5]);
    // Several tags: any of them; with words: both.
    assert_eq!(with(&["pilot", "government"], None), [1, 3]);
    assert_eq!(with(&["pilot", "government"], Some("record 3")), [3]);
    assert_eq!(with(&["nothing-like-it"], None), Vec::<u64>::new());
    assert_eq!(with(&["край"], None), [6]);
    assert_eq!(with(&["EGOV"], None), [6]);
    assert_eq!(with(&["STRASSE"], None), [7]);
    assert_eq!(with(&["strasse"], None), [7]);
    assert_eq!(with(&["FINANCE"], None), [7]);
    assert_eq!(with(&["объем"], None), [7]);
    assert_eq!(with(&["ОБЪЁМ"], None), [7]);
    // Azerbaijani's dotted capital I is "i"; a final sigma is a sigma.
    assert_eq!(with(&["informasiya"], None), [8]);
    assert_eq!(with(&["οδος"], None), [8]);
    assert_eq!(with(&["οδoς"], None), Vec::<u64>::new());
    // Full-width letters read plain; a superscript stays one ("m²" is not "m2").
    assert_eq!(with(&["ai"], None), [9]);
    assert_eq!(with(&["M²"], None), [9]);
    assert_eq!(with(&["m2"], None), Vec::<u64>::new());
    // The text search still finds words inside tags.
    assert_eq!(with(&[], Some("pilot")), [1]);
}

/// A member's name in a query ("цифровые навыки Беларуси", "Belarus digital skills") finds that
/// member's records, whose text rarely names their own country, as well as records whose
/// text names it; a word every member's formal name holds ("республика") names none.
#[test]
fn a_member_named_in_a_query_finds_its_records() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let docs = vec![
        doc(
            1,
            "BY",
            "skills-programme",
            &[],
            "ru",
            "Цифровые навыки госслужащих",
            "Программа цифровых навыков.",
            "active",
        ),
        doc(
            2,
            "KZ",
            "skills-programme",
            &[],
            "ru",
            "Цифровые навыки учителей",
            "Программа цифровых навыков, перенятая у Беларуси.",
            "active",
        ),
        doc(
            3,
            "KZ",
            "skills-programme",
            &[],
            "en",
            "Digital skills for teachers",
            "A programme of digital skills.",
            "active",
        ),
        doc(
            4,
            "BY",
            "skills-programme",
            &[],
            "en",
            "Digital skills of civil servants",
            "A programme.",
            "active",
        ),
    ];
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    let mut g = accord_search::Glossary::builtin();
    g.set_members(
        ["BY", "KZ"]
            .iter()
            .map(|c| accord_search::DirectionNames {
                code: c.to_string(),
                names: accord_core::devnet::member_name(c),
            })
            .collect(),
    );
    let searcher = idx.searcher_with(std::sync::Arc::new(g));
    let found = |text: &str| -> (BTreeSet<ObjectId>, Vec<String>) {
        let r = searcher
            .search(&SearchQuery {
                text: Some(text.into()),
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        (
            r.hits.into_iter().map(|h| h.doc.id).collect(),
            r.reading.members,
        )
    };
    let id = |i: usize| docs[i].id;
    // BY's records in either language (the glossary reads "цифровые навыки" as "digital
    // skills"), and KZ's record whose text names Belarus; not KZ's other one.
    assert_eq!(
        found("цифровые навыки Беларуси"),
        (
            BTreeSet::from([id(0), id(1), id(3)]),
            vec!["BY".to_string()]
        )
    );
    assert_eq!(
        found("Belarus digital skills").0,
        BTreeSet::from([id(0), id(3)])
    );
    let (by, members) = found("Белоруссия");
    assert!(
        by.contains(&id(0)) && by.contains(&id(3)) && !by.contains(&id(2)),
        "{by:?}"
    );
    assert_eq!(members, vec!["BY".to_string()]);
    assert_eq!(
        found("digital skills Kazakhstan"),
        (BTreeSet::from([id(1), id(2)]), vec!["KZ".to_string()])
    );
    // "Республика" is in both members' names: it names neither.
    assert_eq!(found("республика навыки"), (BTreeSet::new(), vec![]));
    // Names in members' own languages: a word of a state's name in any of them names no one
    // ("Republica", "Respublikasi"), the distinctive word does in any form.
    let mut g = accord_search::Glossary::builtin();
    g.set_members(vec![
        accord_search::DirectionNames {
            code: "MD".into(),
            names: BTreeMap::from([("ro".to_string(), "Republica Moldova".to_string())]),
        },
        accord_search::DirectionNames {
            code: "UZ".into(),
            names: BTreeMap::from([("uz".to_string(), "Oʻzbekiston Respublikasi".to_string())]),
        },
    ]);
    let searcher = idx.searcher_with(std::sync::Arc::new(g));
    let members = |text: &str| {
        searcher
            .search(&SearchQuery {
                text: Some(text.into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .reading
            .members
    };
    assert!(members("republican budget").is_empty());
    assert!(members("республиканский бюджет").is_empty());
    assert_eq!(members("Молдове"), vec!["MD".to_string()]);
    assert_eq!(members("Uzbekistan"), vec!["UZ".to_string()]);
}

/// A member's own name for its state («Қазақстан», "Oʻzbekiston", "Azərbaycan", «Հայաստան»),
/// which folds to no form of the Russian and English names a charter gives, names that member
/// as «Казахстан» does and finds its records; the Belarusian «Рэспубліка», like «республика»,
/// names no one.
#[test]
fn a_members_own_name_for_its_state_names_it() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let docs = vec![doc(
        1,
        "KZ",
        "skills-programme",
        &[],
        "kk",
        "Цифрлық сауаттылық",
        "Бағдарлама.",
        "active",
    )];
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    let mut names: Vec<accord_search::DirectionNames> =
        ["AM", "AZ", "BY", "KG", "KZ", "MD", "RU", "TJ", "TM", "UZ"]
            .iter()
            .map(|c| accord_search::DirectionNames {
                code: c.to_string(),
                names: accord_core::devnet::member_name(c),
            })
            .collect();
    // A charter that gives Belarus's name in Belarusian too.
    for m in names.iter_mut().filter(|m| m.code == "BY") {
        m.names
            .insert("be".to_string(), "Рэспубліка Беларусь".to_string());
    }
    let mut g = accord_search::Glossary::builtin();
    g.set_members(names);
    let searcher = idx.searcher_with(std::sync::Arc::new(g));
    let found = |text: &str| {
        let r = searcher
            .search(&SearchQuery {
                text: Some(text.into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        (
            r.hits.into_iter().map(|h| h.doc.id).collect::<Vec<_>>(),
            r.reading.members,
        )
    };
    for (typed, code) in [
        ("Қазақстан", "KZ"),
        ("Qazaqstan", "KZ"),
        ("Oʻzbekiston", "UZ"),
        ("O'zbekiston", "UZ"),
        ("Ўзбекистон", "UZ"),
        ("Тоҷикистон", "TJ"),
        ("Azərbaycan", "AZ"),
        ("Հայաստան", "AM"),
        ("Кыргыз Республикасы", "KG"),
        ("Кыргызстан", "KG"),
        ("Рэспубліка Беларусь", "BY"),
        ("Беларусі", "BY"),
        ("Türkmenistan", "TM"),
    ] {
        assert_eq!(found(typed).1, vec![code.to_string()], "{typed}");
    }
    // The member's records are found, though their text does not name it.
    assert_eq!(found("Қазақстан").0, vec![docs[0].id]);
    assert_eq!(found("Qazaqstan").0, vec![docs[0].id]);
    assert_eq!(found("Рэспубліка").1, Vec::<String>::new());
}

/// An analyst orders by the source document's date (when a law was adopted, not when its record
/// was shared): latest or earliest first, records without a date after all that have one,
/// across segments and with words alike, and the same again from the cache.
#[test]
fn records_are_ordered_by_their_documents_date_with_undated_ones_last() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let n = 60u64;
    let docs: Vec<RecordDoc> = (0..n)
        .map(|i| {
            let mut d = doc(
                i,
                "KZ",
                "case",
                &["d1"],
                "en",
                "registry",
                "a registry of laws",
                "active",
            );
            // Shared in one order, dated in another; every fifth has no date.
            d.created = Timestamp(1_700_000_000_000 + i * 1_000);
            if i % 5 != 0 {
                let day = (i * 37) % 28 + 1;
                let month = (i * 11) % 12 + 1;
                d.date = Some(format!("20{:02}-{month:02}-{day:02}", 10 + i % 15));
            }
            d
        })
        .collect();
    for chunk in docs.chunks(20) {
        idx.upsert(chunk).unwrap();
        idx.commit().unwrap();
    }
    let day = |d: &RecordDoc| {
        d.date
            .as_deref()
            .and_then(accord_core::Timestamp::from_date)
            .map(|t| t.0)
    };
    for (sort, text) in [
        (Sort::DocumentNewest, None),
        (Sort::DocumentOldest, None),
        (Sort::DocumentNewest, Some("laws")),
    ] {
        let mut dated: Vec<&RecordDoc> = docs.iter().filter(|d| day(d).is_some()).collect();
        let mut undated: Vec<&RecordDoc> = docs.iter().filter(|d| day(d).is_none()).collect();
        // Among equal dates (and among the undated) newer records first.
        dated.sort_by_key(|d| (std::cmp::Reverse(day(d)), std::cmp::Reverse(d.created)));
        if sort == Sort::DocumentOldest {
            dated.sort_by_key(|d| (day(d), std::cmp::Reverse(d.created)));
        }
        undated.sort_by_key(|d| std::cmp::Reverse(d.created));
        let want: Vec<ObjectId> = dated.iter().chain(&undated).map(|d| d.id).collect();
        let searcher = idx.searcher();
        for round in ["first", "cached"] {
            let mut got = Vec::new();
            for offset in [0, 25, 50] {
                let r = searcher
                    .search(&SearchQuery {
                        text: text.map(str::to_string),
                        sort: Some(sort),
                        limit: 25,
                        offset,
                        ..Default::default()
                    })
                    .unwrap();
                assert_eq!(r.total, n as usize);
                got.extend(r.hits.iter().map(|h| h.doc.id));
            }
            assert_eq!(got, want, "{round} {sort:?} {text:?}");
        }
    }
}

/// Running text (a summary, a body) keeps its lines and the joiners its scripts and emoji
/// need, and loses what would reorder the page around it.
#[test]
fn running_text_shows_its_lines_and_joiners_without_direction_controls() {
    let text = "Итоги\n\u{202E}вохинрап\u{202C} \u{2067}x\u{2069}\u{200F} 👩\u{200D}💻 می\u{200C}خواهم\u{FFFF}\u{7}";
    assert_eq!(
        accord_search::display_text(text),
        "Итоги\nвохинрап x 👩\u{200D}💻 می\u{200C}خواهم"
    );
}

/// A snippet is about as many characters long in Russian or Armenian as in English: the
/// generator counts bytes, and a Cyrillic or Armenian letter takes two of them (a Russian
/// passage was half as long as an English one).
#[test]
fn a_snippet_is_as_long_in_any_script() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let words = |w: &str| {
        (0..120)
            .map(|i| format!("{w}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let texts = [
        (1u64, "en", "keyword", words("word")),
        (2, "ru", "ключевое", words("слово")),
        (3, "hy", "բանալի", words("բառ")),
    ];
    let docs: Vec<_> = texts
        .iter()
        .map(|(n, lang, key, filler)| {
            doc(
                *n,
                "KZ",
                "other",
                &["regulation"],
                lang,
                "Title",
                &format!("{filler} {key} {filler}"),
                "active",
            )
        })
        .collect();
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    let mut lengths = Vec::new();
    for (_, _, key, _) in &texts {
        let r = idx
            .searcher()
            .search(&SearchQuery {
                text: Some((*key).into()),
                limit: 5,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(r.total, 1, "{key}");
        let snippet = &r.hits[0].snippet;
        assert!(snippet.contains("<b>"), "{snippet}");
        let plain = snippet.replace("<b>", "").replace("</b>", "");
        lengths.push(plain.chars().count());
    }
    // Each within a fifth of the English one (words end where they end).
    for n in &lengths[1..] {
        assert!(
            n * 5 >= lengths[0] * 4 && n * 4 <= lengths[0] * 5,
            "snippet lengths in characters, en / ru / hy: {lengths:?}"
        );
    }
}

/// An analyst asking for Uzbek means both of its scripts: a bare language filter also takes the
/// tags of that language with a script or region (`uz-Latn`, `uz-Cyrl`), and not another
/// language that begins alike; a tagged filter stays exact.
#[test]
fn a_bare_language_filter_takes_its_scripts() {
    let mut idx = SearchIndex::in_memory().unwrap();
    let docs = [
        (1u64, "uz-Latn", "Raqamli xizmatlar"),
        (2, "uz-Cyrl", "Рақамли хизматлар"),
        (3, "uz", "Raqamli ko'nikmalar"),
        (4, "ru", "Цифровые услуги"),
        (5, "uzb", "Not a tag of Uzbek"),
    ]
    .map(|(n, lang, title)| {
        doc(
            n,
            "UZ",
            "other",
            &["regulation"],
            lang,
            title,
            title,
            "active",
        )
    });
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    let found = |langs: &[&str]| {
        let r = idx
            .searcher()
            .search(&SearchQuery {
                langs: langs.iter().map(|l| l.to_string()).collect(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        let mut titles: Vec<String> = r
            .hits
            .iter()
            .flat_map(|h| h.doc.title.values().cloned())
            .collect();
        titles.sort();
        titles
    };
    assert_eq!(
        found(&["uz"]),
        [
            "Raqamli ko'nikmalar",
            "Raqamli xizmatlar",
            "Рақамли хизматлар"
        ]
    );
    assert_eq!(found(&["uz-Latn"]), ["Raqamli xizmatlar"]);
    assert_eq!(
        found(&["uz-Cyrl", "ru"]),
        ["Рақамли хизматлар", "Цифровые услуги"]
    );
    for (filter, tag, takes) in [
        ("uz", "uz-Latn", true),
        ("uz", "uz", true),
        ("uz", "uzb", false),
        ("uz-Latn", "uz", false),
        ("uz-Latn", "uz-Cyrl", false),
    ] {
        assert_eq!(
            accord_search::lang_filter_matches(filter, tag),
            takes,
            "{filter} {tag}"
        );
    }
}
