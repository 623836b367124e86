//! Search that forgives and explains: typos with a correction, folded letters, word beginnings,
//! queries across languages, snippets and ranking. Each test would fail if its feature broke.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use accord_core::{ObjectId, Timestamp};
use accord_search::{RecordDoc, SearchIndex, SearchQuery, SearchResult, Sort};

struct R<'a> {
    n: u64,
    lang: &'a str,
    title: &'a str,
    summary: &'a str,
    body: &'a str,
    tags: &'a [&'a str],
}

fn doc(r: R<'_>) -> RecordDoc {
    let m = |s: &str| {
        if s.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::from([(r.lang.to_string(), s.to_string())])
        }
    };
    RecordDoc {
        id: ObjectId::of_body(&r.n.to_le_bytes()),
        created: Timestamp(1_700_000_000_000 + r.n * 86_400_000),
        member: "KZ".into(),
        kind: "platform-case-study".into(),
        directions: vec!["e-government".into()],
        lang: r.lang.into(),
        languages: vec![r.lang.into()],
        title: m(r.title),
        summary: m(r.summary),
        body: m(r.body),
        tags: r.tags.iter().map(|t| t.to_string()).collect(),
        date: None,
        status: "active".into(),
        publisher: "KZ ministry".into(),
        attachments: Vec::new(),
        files: Vec::new(),
        files_more: 0,
    }
}

fn index(docs: Vec<RecordDoc>) -> SearchIndex {
    let mut idx = SearchIndex::in_memory().unwrap();
    idx.upsert(&docs).unwrap();
    idx.commit().unwrap();
    idx
}

fn search(idx: &SearchIndex, q: &str) -> SearchResult {
    idx.searcher()
        .search(&SearchQuery {
            text: Some(q.into()),
            limit: 20,
            ..Default::default()
        })
        .unwrap()
}

fn order(r: &SearchResult) -> Vec<u64> {
    r.hits
        .iter()
        .map(|h| {
            (0..100u64)
                .find(|n| ObjectId::of_body(&n.to_le_bytes()) == h.doc.id)
                .unwrap()
        })
        .collect()
}

fn corpus() -> SearchIndex {
    index(vec![
        doc(R {
            n: 1,
            lang: "ru",
            title: "Центр кибербезопасности в Өскемене",
            summary: "Как региональный центр реагирует на инциденты информационной безопасности.",
            body: "## Задачи\n\nЦентр **кибербезопасности** круглосуточно следит за сетями школ и больниц.",
            tags: &["incident-response"],
        }),
        doc(R {
            n: 2,
            lang: "en",
            title: "Government portal for small business",
            summary: "A single window for registering a company online.",
            body: "## Results\n\nThe government portal cut registration time to one day.",
            tags: &["one-stop-shop"],
        }),
        doc(R {
            n: 3,
            lang: "ru",
            title: "Цифровая грамотность пенсионеров",
            summary: "Курсы для людей старшего возраста в сельских библиотеках.",
            body: "Пенсионеры учатся пользоваться порталом государственных услуг и электронной подписью.",
            tags: &[],
        }),
        doc(R {
            n: 4,
            lang: "ru",
            title: "Оскемен: новая библиотека",
            summary: "Городская библиотека открыла зал для онлайн-курсов.",
            body: "Библиотека работает с 9 до 18.",
            tags: &[],
        }),
        doc(R {
            n: 5,
            lang: "ru",
            title: "Межведомственная система Түндүк",
            summary: "Обмен данными между ведомствами Кыргызстана.",
            body: "Система Түндүк связывает более ста государственных органов.",
            tags: &[],
        }),
        doc(R {
            n: 6,
            lang: "uz",
            title: "Oʻzbekiston elektron hukumat portali",
            summary: "Yagona interaktiv davlat xizmatlari portali.",
            body: "Portal orqali 300 dan ortiq xizmat.",
            tags: &[],
        }),
        doc(R {
            n: 7,
            lang: "en",
            title: "Governance of telecom operators",
            summary: "Licensing rules.",
            body: "Governors and regulators met in Minsk.",
            tags: &[],
        }),
    ])
}

#[test]
fn a_typo_still_finds_the_record_and_offers_a_correction() {
    let idx = corpus();
    let r = search(&idx, "кибербезапасность");
    assert_eq!(order(&r).first(), Some(&1), "{r:?}");
    assert!(r.reading.approximate);
    // One edit from the glossary's word beats two from the record's inflected form.
    assert_eq!(r.did_you_mean.as_deref(), Some("кибербезопасность"));

    let r = search(&idx, "goverment portal");
    assert_eq!(order(&r).first(), Some(&2));
    assert_eq!(r.did_you_mean.as_deref(), Some("government portal"));

    // A correct query is not approximate and offers nothing.
    let r = search(&idx, "кибербезопасность");
    assert!(!r.reading.approximate && r.did_you_mean.is_none());
    // A word within one edit of no word of the index is not corrected.
    let r = search(&idx, "xyzq");
    assert!(r.hits.is_empty() && r.did_you_mean.is_none());
}

/// Words of four letters are read with a typo too ("dtaa" is *data*, "сетт" *сеть*), never a
/// four-letter word the records hold, nor a word of three letters (within one edit of too many
/// others).
#[test]
fn a_four_letter_word_typed_wrong_is_corrected_a_three_letter_one_is_not() {
    let idx = index(vec![
        doc(R {
            n: 1,
            lang: "en",
            title: "Open data portal",
            summary: "",
            body: "Data of the ministries.",
            tags: &[],
        }),
        doc(R {
            n: 2,
            lang: "ru",
            title: "Сеть центров доступа",
            summary: "",
            body: "Сеть охватывает сёла.",
            tags: &[],
        }),
        doc(R {
            n: 3,
            lang: "en",
            title: "Date of the census",
            summary: "",
            body: "The census date.",
            tags: &[],
        }),
    ]);
    let r = search(&idx, "dtaa");
    assert_eq!(r.did_you_mean.as_deref(), Some("data"), "{r:?}");
    assert_eq!(order(&r), vec![1]);
    assert!(r.reading.approximate);
    let r = search(&idx, "сетт");
    assert_eq!(r.did_you_mean.as_deref(), Some("сеть"), "{r:?}");
    assert_eq!(order(&r), vec![2]);
    // A word the records hold is no typo: "date" finds its record, offers nothing, and does
    // not bring in its neighbour "data"; nor does "сеть" bring in «сёла», whose stem is one
    // edit from its own.
    let r = search(&idx, "date");
    assert_eq!(r.did_you_mean, None);
    assert_eq!(order(&r), vec![3]);
    let r = search(&idx, "сеть");
    assert_eq!(order(&r), vec![2]);
    assert!(!r.hits[0].snippet.contains("<b>сёла</b>"), "{r:?}");
    // Three letters: not read as a typo.
    let r = search(&idx, "dta");
    assert!(r.hits.is_empty() && r.did_you_mean.is_none(), "{r:?}");
}

#[test]
fn exact_and_stemmed_matches_rank_above_similar_spellings() {
    let idx = index(vec![
        doc(R {
            n: 1,
            lang: "en",
            title: "Notes",
            summary: "",
            body: "portals portals portals portals portals",
            tags: &[],
        }),
        doc(R {
            n: 2,
            lang: "en",
            title: "Postal reform",
            summary: "postal",
            body: "postal",
            tags: &[],
        }),
    ]);
    // "postal" has one exact match, so similar spellings ("portal") join, ranked after it,
    // although record 1 repeats its word five times.
    let r = search(&idx, "postal");
    assert_eq!(order(&r), vec![2, 1]);
    assert!(r.reading.approximate);
}

#[test]
fn members_letters_fold_and_the_exact_form_ranks_first() {
    let idx = corpus();
    // Typed with plain Russian letters.
    assert!(order(&search(&idx, "Тундук")).contains(&5));
    assert!(order(&search(&idx, "оскемене")).contains(&1));
    // Both spellings of one name in otherwise equal records: a query with the Kazakh letters
    // finds both, the exact form first (although the other record is newer); a plain-letter
    // query finds both too.
    let same = |n, title| {
        doc(R {
            n,
            lang: "ru",
            title,
            summary: "Новая библиотека.",
            body: "Открыта в мае.",
            tags: &[],
        })
    };
    let names = index(vec![same(1, "Өскемен"), same(2, "Оскемен")]);
    assert_eq!(order(&search(&names, "Өскемен ")), vec![1, 2]);
    assert_eq!(order(&search(&names, "Оскемен ")).len(), 2);
    // Uzbek apostrophe variants.
    for q in ["O'zbekiston", "Ozbekiston", "O‘zbekiston"] {
        assert_eq!(order(&search(&idx, q)), vec![6], "{q}");
    }
    // Armenian with and without the ligature և and a question mark over a vowel; a Latin ə
    // and a Cyrillic ә, each typed in a word of the other script; ǵ typed as g. Found as typed,
    // not as similar spellings.
    let spelt = index(vec![
        same(1, "Երևան"),
        same(2, "Ինչպե՞ս"),
        same(3, "Azərbaycan"),
        same(4, "Мәселе"),
        same(5, "Ǵárezsizlik"),
    ]);
    for (q, n) in [
        ("Երեւան ", 1),
        ("Ինչպես ", 2),
        ("Azәrbaycan ", 3),
        ("мəселе ", 4),
        ("garezsizlik ", 5),
    ] {
        let r = search(&spelt, q);
        assert_eq!(order(&r), vec![n], "{q}");
        assert!(!r.reading.approximate, "{q}");
    }
}

/// Function words of the members' languages need not be found, as Russian and English ones
/// need not: «цифрлық сауаттылық және зейнеткерлер» finds a text without «және»; a query of
/// them only looks for them, as one of «и» does.
#[test]
fn function_words_of_the_members_languages_need_not_be_found() {
    let rec = |n, lang, title, body| {
        doc(R {
            n,
            lang,
            title,
            summary: "",
            body,
            tags: &[],
        })
    };
    let idx = index(vec![
        rec(
            1,
            "kk",
            "Зейнеткерлердің цифрлық сауаттылығы",
            "Зейнеткерлер цифрлық сауаттылық курстарынан өтті.",
        ),
        rec(2, "kk", "Ауыл және қала", "Ауыл және қала тұрғындары."),
        rec(
            3,
            "uz",
            "Pensionerlar uchun raqamli savodxonlik",
            "Raqamli savodxonlik kurslari.",
        ),
    ]);
    assert_eq!(
        order(&search(&idx, "цифрлық сауаттылық және зейнеткерлер ")),
        vec![1]
    );
    assert_eq!(
        order(&search(&idx, "raqamli savodxonlik va pensionerlar ")),
        vec![3]
    );
    assert_eq!(order(&search(&idx, "және ")), vec![2]);
    // The live stream reads them the same way.
    let one = rec(
        1,
        "kk",
        "Зейнеткерлердің цифрлық сауаттылығы",
        "Зейнеткерлер цифрлық сауаттылық курстарынан өтті.",
    );
    assert!(accord_search::doc_matches_text(
        &one,
        "цифрлық сауаттылық және зейнеткерлер"
    ));
}

#[test]
fn the_last_word_matches_as_a_beginning() {
    let idx = corpus();
    let r = search(&idx, "межведомственная сист");
    assert_eq!(order(&r), vec![5]);
    assert!(
        !r.reading.approximate,
        "a beginning of the last word is not approximate"
    );
    // A complete short word followed by a space is not a beginning; without the space it is.
    assert!(search(&idx, "сис ").hits.is_empty());
    assert_eq!(order(&search(&idx, "сис")), vec![5]);
    // A word of 4+ letters that finds nothing is read as a beginning, wherever it stands.
    let r = search(&idx, "сист межведомственная");
    assert_eq!(order(&r), vec![5]);
    assert!(r.reading.approximate);
    // A beginning typed past the stem.
    assert!(order(&search(&idx, "governm")).contains(&2));
    assert!(order(&search(&idx, "кибер")).contains(&1));
}

#[test]
fn a_query_crosses_languages_through_the_glossary() {
    let idx = corpus();
    // English query, the record exists only in Russian.
    let r = search(&idx, "digital literacy");
    assert_eq!(order(&r), vec![3]);
    assert!(
        r.reading.also.iter().any(|t| t == "цифровая грамотность"),
        "{:?}",
        r.reading
    );
    // Russian query, English record.
    let r = search(&idx, "малый бизнес");
    assert_eq!(order(&r).first(), Some(&2));
    // The snippet shows the matched Russian words highlighted.
    let r = search(&idx, "digital literacy pensioners");
    assert_eq!(order(&r), vec![3]);
    assert!(r.hits[0].snippet.contains("<b>"), "{}", r.hits[0].snippet);
}

#[test]
fn snippets_are_plain_text_in_the_querys_language_never_the_title() {
    let mut bilingual = doc(R {
        n: 1,
        lang: "ru",
        title: "Портал государственных услуг",
        summary: "Единое окно для граждан.",
        body: "## Итоги\n\n- **портал** обслужил миллион заявлений;\n- [подробнее](https://example.org)",
        tags: &["one-stop-shop"],
    });
    bilingual
        .title
        .insert("en".into(), "Public services portal".into());
    bilingual
        .summary
        .insert("en".into(), "A single window for citizens.".into());
    bilingual.body.insert(
        "en".into(),
        "## Results\n\nThe **portal** served a million applications.".into(),
    );
    bilingual.languages = vec!["en".into(), "ru".into()];
    let idx = index(vec![bilingual]);

    let ru = &search(&idx, "портал").hits[0].snippet;
    assert!(ru.contains("<b>портал</b> обслужил"), "{ru}");
    for bad in [
        "##",
        "**",
        "one-stop-shop",
        "Портал государственных услуг",
        "https://",
    ] {
        assert!(!ru.contains(bad), "{bad:?} in {ru}");
    }
    let en = &search(&idx, "portal").hits[0].snippet;
    assert!(en.contains("<b>portal</b> served"), "{en}");

    // Without a query: the summary.
    let r = idx
        .searcher()
        .search(&SearchQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.hits[0].snippet, "Единое окно для граждан.");
}

#[test]
fn title_and_summary_weigh_more_than_the_body_and_newer_breaks_ties() {
    let idx = index(vec![
        doc(R {
            n: 1,
            lang: "en",
            title: "Annual report",
            summary: "Figures of the year.",
            body: "It mentions telemedicine once among many other things of the year.",
            tags: &[],
        }),
        doc(R {
            n: 2,
            lang: "en",
            title: "Telemedicine in rural clinics",
            summary: "Figures of the year.",
            body: "It covers many other things of the year in rural areas of the country.",
            tags: &[],
        }),
        doc(R {
            n: 3,
            lang: "en",
            title: "Same words",
            summary: "identical text",
            body: "identical text",
            tags: &[],
        }),
        doc(R {
            n: 4,
            lang: "en",
            title: "Same words",
            summary: "identical text",
            body: "identical text",
            tags: &[],
        }),
    ]);
    assert_eq!(order(&search(&idx, "telemedicine")), vec![2, 1]);
    // Records 3 and 4 score the same; the newer (4) comes first.
    assert_eq!(order(&search(&idx, "identical")), vec![4, 3]);
    let oldest = idx
        .searcher()
        .search(&SearchQuery {
            text: Some("identical".into()),
            sort: Some(Sort::Oldest),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(order(&oldest), vec![3, 4]);
}

#[test]
fn completions_come_from_titles_tags_and_the_taxonomy() {
    let idx = corpus();
    let c = idx.searcher().suggest("кибербез").unwrap();
    assert!(
        c.iter()
            .any(|c| c.kind == "word" && c.text == "кибербезопасности"),
        "{c:?}"
    );
    assert!(
        c.iter()
            .any(|c| c.kind == "title" && c.text.starts_with("Центр"))
    );
    // Completions keep the letters as written in the records.
    let c = idx.searcher().suggest("оскем").unwrap();
    assert!(
        c.iter()
            .any(|c| c.text == "өскемене" || c.text == "оскемен"),
        "{c:?}"
    );
    // A hostile length is refused.
    assert!(idx.searcher().suggest(&"я".repeat(600)).is_err());
}

#[test]
fn the_live_stream_reads_text_as_the_index_does() {
    let d = doc(R {
        n: 1,
        lang: "ru",
        title: "Электронное правительство в Өскемене",
        summary: "Проактивные услуги.",
        body: "Портал работает круглосуточно.",
        tags: &["one-stop-shop"],
    });
    for q in [
        "электронного правительства",
        "Оскемене",
        "проактивная услуга",
        "порт",
        "услуги для",
    ] {
        assert!(accord_search::doc_matches_text(&d, q), "{q}");
    }
    for q in ["налоговая служба", "порт ", "правительство Минск"]
    {
        assert!(!accord_search::doc_matches_text(&d, q), "{q}");
    }
    // As the search page: a last word of two letters is no beginning ("AI" and "aims").
    let aims = doc(R {
        n: 2,
        lang: "en",
        title: "The project aims to aid airports",
        summary: "",
        body: "",
        tags: &[],
    });
    assert!(!accord_search::doc_matches_text(&aims, "AI"));
    assert!(accord_search::doc_matches_text(&aims, "aim"));
    // Nor is a function word typed alone ("the" is not the beginning of "theory").
    let theory = doc(R {
        n: 3,
        lang: "en",
        title: "A theory of platforms",
        summary: "",
        body: "",
        tags: &[],
    });
    assert!(!accord_search::doc_matches_text(&theory, "the"));
}

#[test]
fn a_query_that_finds_nothing_shows_what_its_correction_finds() {
    let idx = corpus();
    // An English typo of a glossary word whose only record is Russian: the index has no such
    // English word to correct it with, the glossary has; the corrected query crosses languages.
    let r = search(&idx, "pensionres");
    assert_eq!(r.did_you_mean.as_deref(), Some("pensioners"));
    assert_eq!(r.reading.showing_for.as_deref(), Some("pensioners"));
    assert_eq!(order(&r), vec![3]);
    // A query that finds something as typed is not replaced.
    let r = search(&idx, "кибербезапасность");
    assert!(r.reading.showing_for.is_none() && !r.hits.is_empty());
}

/// A word found only inside an attached file finds the record, and the snippet names the file.
#[test]
fn a_word_only_inside_an_attachment_finds_the_record_and_the_snippet_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = SearchIndex::open(dir.path()).unwrap();
    let mut with = doc(R {
        n: 1,
        lang: "en",
        title: "Telemedicine pilot",
        summary: "A pilot in rural clinics.",
        body: "See the attached methodology.",
        tags: &[],
    });
    with.attachments = vec![accord_search::AttachmentText {
        name: "method <v2>.pdf".into(),
        text: "Chapter 3. Teleradiology reading rooms are staffed around the clock.".into(),
    }];
    let without = doc(R {
        n: 2,
        lang: "en",
        title: "Another pilot",
        summary: "Nothing attached.",
        body: "Plain text.",
        tags: &[],
    });
    idx.upsert(&[with, without]).unwrap();
    idx.commit().unwrap();
    let r = idx
        .searcher()
        .search(&SearchQuery {
            text: Some("teleradiology".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.total, 1, "{r:?}");
    let snippet = &r.hits[0].snippet;
    assert!(
        snippet.starts_with("📎 method &lt;v2&gt;.pdf: "),
        "{snippet}"
    );
    assert!(snippet.contains("<b>Teleradiology</b>"), "{snippet}");
}

/// A correctly spelt word that no record holds but the glossary knows (it is carried to its
/// English term, which finds the record) is not offered as its own correction.
#[test]
fn a_glossary_word_no_record_holds_is_not_offered_as_its_own_correction() {
    let idx = index(vec![doc(R {
        n: 1,
        lang: "en",
        title: "National standard for interoperability",
        summary: "",
        body: "Formats and registries.",
        tags: &[],
    })]);
    let r = search(&idx, "интероперабельность");
    assert_eq!(order(&r), vec![1], "found through the glossary: {r:?}");
    assert_eq!(r.did_you_mean, None, "{r:?}");
}

/// A query with nothing to search for (an emoji, punctuation) is left aside and said so; an
/// empty query is not a query at all, and a word is read as usual.
#[test]
fn a_query_without_letters_or_digits_is_left_aside_and_said_so() {
    let idx = corpus();
    let all = search(&idx, "");
    assert!(!all.reading.no_words && all.total > 1);
    for q in ["🙂", "!!! ?", "🇰🇿 — ☺"] {
        let r = search(&idx, q);
        assert!(r.reading.no_words, "{q}");
        assert_eq!(r.total, all.total, "{q}");
        assert!(r.did_you_mean.is_none(), "{q}");
    }
    let r = search(&idx, "🙂 кибербезопасность");
    assert!(!r.reading.no_words && r.total < all.total);
    let json = serde_json::to_value(search(&idx, "🙂").reading).unwrap();
    assert_eq!(json["no_words"], true);
    let json = serde_json::to_value(search(&idx, "кибербезопасность").reading).unwrap();
    assert!(json.get("no_words").is_none(), "{json}");
}

/// A word too long to be a word of the index (a hash or an id pasted whole) finds nothing and
/// says so, alone or beside words that would find something: it is neither dropped (the rest
/// searched as if it had not been typed) nor read as no query (every record shown).
#[test]
fn a_word_too_long_to_index_finds_nothing_and_says_so() {
    let idx = corpus();
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    for q in [hash.to_string(), format!("кибербезопасность {hash}")] {
        let r = search(&idx, &q);
        assert_eq!(r.total, 0, "{q}");
        assert!(r.reading.long_words && !r.reading.no_words, "{q}");
    }
    // 31 Cyrillic letters (62 bytes) are a word; 32 are not.
    assert!(!search(&idx, &"ж".repeat(31)).reading.long_words);
    assert!(search(&idx, &"ж".repeat(32)).reading.long_words);
    // Indexed folded: 64 bytes as written, 32 folded, a word of the index.
    assert!(!search(&idx, &"ü".repeat(32)).reading.long_words);
    let json = serde_json::to_value(search(&idx, "кибербезопасность").reading).unwrap();
    assert!(json.get("long_words").is_none(), "{json}");
}

/// A beginning typed in Russian letters is completed with Russian words before Belarusian
/// ones, even when the Belarusian word is more frequent; a Belarusian letter typed asks for
/// Belarusian words.
#[test]
fn a_russian_beginning_is_completed_with_russian_words_first() {
    let mut docs = Vec::new();
    for n in 1..=3 {
        docs.push(doc(R {
            n,
            lang: "be",
            title: "Развіцце лічбавай эканомікі",
            summary: "Праграма развіцця",
            body: "",
            tags: &[],
        }));
    }
    docs.push(doc(R {
        n: 4,
        lang: "ru",
        title: "Развитие цифровой экономики",
        summary: "",
        body: "",
        tags: &[],
    }));
    let idx = index(docs);
    let words = |q: &str| -> Vec<String> {
        idx.searcher()
            .suggest(q)
            .unwrap()
            .into_iter()
            .filter(|c| c.kind == "word")
            .map(|c| c.text)
            .collect()
    };
    let c = words("разв");
    assert_eq!(c.first().map(String::as_str), Some("развитие"), "{c:?}");
    assert!(c.iter().any(|w| w.starts_with("развіцц")), "{c:?}");
    let c = words("разві");
    assert!(c.first().is_some_and(|w| w.starts_with("развіцц")), "{c:?}");
}

/// A beginning the stemmer cuts short ("правит" → "прав") finds the words it begins, not those
/// of the stem it was cut to; a misspelt word found through its stem's beginnings still gets
/// its correction offered.
#[test]
fn a_beginning_finds_the_words_it_begins_and_a_misspelling_is_corrected_even_when_found() {
    let ru = |n: u64, title: &'static str| {
        doc(R {
            n,
            lang: "ru",
            title,
            summary: "",
            body: "",
            tags: &[],
        })
    };
    let en = |n: u64, title: &'static str| {
        doc(R {
            n,
            lang: "en",
            title,
            summary: "",
            body: "",
            tags: &[],
        })
    };
    let idx = index(vec![
        ru(1, "Электронное правительство"),
        ru(2, "Решение правительства"),
        ru(3, "Правовой режим данных"),
        ru(4, "Новые правила"),
        ru(5, "Право на доступ"),
        en(6, "Digital government services"),
        en(7, "Government portals"),
        en(8, "Local government reform"),
    ]);
    // The records of the words it begins first; those of its stem ("прав") after them.
    for q in ["правит", "правите"] {
        let r = search(&idx, q);
        assert_eq!(order(&r)[..2], [2, 1], "{q}: {:?}", order(&r));
        assert!(
            order(&r)[2..].iter().all(|n| [3, 4, 5].contains(n)),
            "{q}: {:?}",
            order(&r)
        );
    }
    assert_eq!(order(&search(&idx, "правительс")), vec![2, 1]);
    // A word the records hold as written keeps its stem at full weight, even when longer
    // words begin with it.
    let idx2 = index(vec![
        en(11, "Digital services"),
        en(12, "Digital skills"),
        en(13, "Digitalisation of archives"),
        ru(14, "Проект новых правил"),
        ru(15, "Правильный выбор"),
        ru(16, "Правила перевозок"),
    ]);
    let r = search(&idx2, "digital");
    assert_eq!(r.total, 3, "{:?}", order(&r));
    // "правил" is written in record 14: its stem finds "правила" (16) too.
    let r = search(&idx2, "правил");
    assert!(
        order(&r).contains(&14) && order(&r).contains(&16),
        "{:?}",
        order(&r)
    );
    // Found through its stem's beginnings ("gover" begins "govern"), and corrected too.
    let r = search(&idx, "goverment");
    assert_eq!(r.total, 3);
    assert_eq!(r.did_you_mean.as_deref(), Some("government"));
    // A word spelt right gets no correction.
    assert!(search(&idx, "government").did_you_mean.is_none());
}

/// A query typed with the other keyboard layout — a Russian word on Latin keys, an English one
/// on Cyrillic keys, a letter that sits on a punctuation key («объявление» as "j,]zdktybt") —
/// finds what the meant words find, and says which words it searched for. Text that finds
/// something as typed is never swapped.
#[test]
fn a_query_typed_on_the_other_keyboard_layout_is_read_as_meant() {
    let idx = index(vec![
        doc(R {
            n: 1,
            lang: "ru",
            title: "Электронное правительство",
            summary: "Объявление о проактивных услугах",
            body: "Опыт правительства. Стратегия цифровизации.",
            tags: &[],
        }),
        doc(R {
            n: 2,
            lang: "en",
            title: "Open government data",
            summary: "Datasets",
            body: "The government portal.",
            tags: &[],
        }),
    ]);
    let r = search(&idx, "ghfdbntkmcndj");
    assert_eq!(order(&r), vec![1]);
    assert_eq!(r.reading.showing_for.as_deref(), Some("правительство"));
    let r = search(&idx, "пщмуктьуте");
    assert_eq!(order(&r), vec![2]);
    assert_eq!(r.reading.showing_for.as_deref(), Some("government"));
    let r = search(&idx, "J,]zdktybt");
    assert_eq!(order(&r), vec![1]);
    assert_eq!(r.reading.showing_for.as_deref(), Some("объявление"));
    // A short code missing from the index is not read as the beginning of another word
    // ("CN" would be «ст…», the start of «Электронное»'s neighbours and many more).
    let r = search(&idx, "CN");
    assert_eq!(r.reading.showing_for, None);
    let r = search(&idx, "Lfnf"); // «Дата»: not a whole word of these records
    assert_eq!(r.reading.showing_for, None);
    // Found as typed: left alone.
    let r = search(&idx, "government");
    assert_eq!(order(&r), vec![2]);
    assert_eq!(r.reading.showing_for, None);
    assert_eq!(
        accord_search::swap_layout("ghbdtn vbh"),
        Some("привет мир".into())
    );
    assert_eq!(accord_search::swap_layout("rfr ltkf? 2026"), None);
    assert_eq!(accord_search::swap_layout("mixed слово"), None);
}

/// Text decomposed (NFD: a PDF's text, a Mac keyboard's) or hyphenated for print is found by
/// the words as typed, and a query typed decomposed finds composed text.
#[test]
fn decomposed_and_soft_hyphenated_text_is_found_by_words_as_typed() {
    let idx = index(vec![
        doc(R {
            n: 11,
            lang: "ru",
            // "Сельский район" with й as и + U+0306, ё as е + U+0308.
            title: "Сельски\u{0438}\u{0306} ра\u{0438}\u{0306}он: е\u{0308}мкие сети",
            summary: "",
            body: "Инфор\u{00AD}мационная безопас\u{00AD}ность школ.",
            tags: &[],
        }),
        doc(R {
            n: 12,
            lang: "ru",
            title: "Городской район",
            summary: "",
            body: "Портал услуг.",
            tags: &[],
        }),
    ]);
    for q in ["сельский район", "ёмкие", "информационная безопасность"]
    {
        assert_eq!(order(&search(&idx, q)), vec![11], "{q}");
    }
    let nfd = search(&idx, "городско\u{0438}\u{0306} ра\u{0438}\u{0306}он");
    assert_eq!(order(&nfd), vec![12]);
    assert_eq!(nfd.did_you_mean, None);
}

/// A two-letter abbreviation is a word of its own: "ИИ" is not cut to the conjunction "и", and
/// "AI" typed last does not also read as the beginning of "aims" or "aid". The glossary
/// translates each into the other.
#[test]
fn a_two_letter_abbreviation_finds_only_what_names_it() {
    let idx = index(vec![
        doc(R {
            n: 21,
            lang: "ru",
            title: "Пилот ИИ в поликлиниках",
            summary: "",
            body: "Модель читает снимки.",
            tags: &[],
        }),
        doc(R {
            n: 22,
            lang: "ru",
            title: "Цифровизация и развитие информационных систем",
            summary: "",
            body: "Ведомства и министерства и их порталы.",
            tags: &[],
        }),
        doc(R {
            n: 23,
            lang: "en",
            title: "AI in clinics",
            summary: "",
            body: "Models read scans.",
            tags: &[],
        }),
        doc(R {
            n: 24,
            lang: "en",
            title: "The project aims to aid airports",
            summary: "",
            body: "It aims high.",
            tags: &[],
        }),
    ]);
    // The glossary makes each the other's translation; the record in the query's language
    // comes first.
    assert_eq!(order(&search(&idx, "ИИ")), vec![21, 23]);
    assert_eq!(order(&search(&idx, "AI")), vec![23, 21]);
    // Latin look-alikes typed inside a Cyrillic word find it, and the reverse.
    let idx = index(vec![doc(R {
        n: 25,
        lang: "ru",
        title: "Таможенный союз EAЭС",
        summary: "",
        body: "",
        tags: &[],
    })]);
    assert_eq!(order(&search(&idx, "ЕАЭС")), vec![25]);
    assert_eq!(order(&search(&idx, "EAЭС")), vec![25]);
    // Cyrillic look-alikes typed inside an English word (a keyboard switched for one letter)
    // find it: "dаta" and "signаtures" with a Cyrillic а, "АI" with a Cyrillic А.
    let idx = index(vec![doc(R {
        n: 26,
        lang: "en",
        title: "Open data and electronic signatures",
        summary: "",
        body: "",
        tags: &[],
    })]);
    assert_eq!(order(&search(&idx, "dаta")), vec![26]);
    assert_eq!(order(&search(&idx, "signаtures")), vec![26]);
    assert_eq!(order(&search(&idx, "оpen")), vec![26]);
}

/// The short form of e-government analysts type ("eGov") finds it in either spelling and across
/// languages, through the glossary. ("e-gov" is not a glossary term: without word positions it
/// would read as "e" and "gov" anywhere in a record, an e-mail address beside a gov.kz link.)
#[test]
fn e_gov_in_any_spelling_finds_e_government() {
    let idx = index(vec![
        doc(R {
            n: 31,
            lang: "en",
            title: "eGov Mobile reaches every district",
            summary: "",
            body: "",
            tags: &[],
        }),
        doc(R {
            n: 32,
            lang: "ru",
            title: "Электронное правительство в сёлах",
            summary: "",
            body: "",
            tags: &[],
        }),
        doc(R {
            n: 33,
            lang: "en",
            title: "E-government services for business",
            summary: "",
            body: "",
            tags: &[],
        }),
    ]);
    for q in ["egov", "eGov", "e-government"] {
        let mut found = order(&search(&idx, q));
        found.sort_unstable();
        assert_eq!(found, vec![31, 32, 33], "{q}");
    }
}

/// A record `n` in `lang` with a title only.
fn titled(n: u64, lang: &str, title: &str) -> RecordDoc {
    doc(R {
        n,
        lang,
        title,
        summary: "",
        body: "",
        tags: &[],
    })
}

/// A word the Russian stemmer cuts below three letters ("обьём" and "оба" both to "об") is no
/// beginning or spelling to widen: it used to find every record with a word beginning "об"
/// (*область*, *общества*, *обращение*) or one edit from it. The typo is still corrected to the
/// word the records hold.
#[test]
fn a_word_whose_stem_is_shorter_than_three_letters_widens_to_nothing() {
    let r = |n: u64, title: &'static str, body: &'static str| {
        doc(R {
            n,
            lang: "ru",
            title,
            summary: "",
            body,
            tags: &[],
        })
    };
    let idx = index(vec![
        r(1, "Объём цифровых услуг", "Объём вырос вдвое."),
        r(
            2,
            "Развитие общества",
            "Область применения и обращение граждан.",
        ),
        r(3, "Об услугах", "Обучение служащих в области связи."),
        r(4, "Платформа", "Сведения об обращениях."),
    ]);
    let typo = search(&idx, "обьём");
    assert_eq!(order(&typo), vec![1], "{:?}", typo.reading);
    assert_eq!(typo.did_you_mean.as_deref(), Some("объем"));
    // "оба" is read as its stem "об" (the preposition's too, a stemmer's conflation), but no
    // longer as the beginning of every word after it: *область*, *общества*, *обращение*.
    let both = search(&idx, "оба");
    assert!(!order(&both).contains(&2), "{:?}", order(&both));
}

/// A Russian typo is corrected to the Russian word, not to a Belarusian one as close and more
/// frequent: «програмы» is one edit from the Russian «программы» and from the Belarusian
/// «праграмы».
#[test]
fn a_russian_typo_is_corrected_to_a_word_of_russian_text() {
    let r = titled;
    let idx = index(vec![
        r(1, "ru", "Программы развития"),
        r(2, "be", "Праграмы развіцця"),
        r(3, "be", "Дзяржаўныя праграмы"),
        r(4, "be", "Праграмы навучання"),
    ]);
    let typo = search(&idx, "програмы развития");
    assert_eq!(
        typo.did_you_mean.as_deref(),
        Some("программы развития"),
        "{:?}",
        order(&typo)
    );
}

/// Another form of a word typed right is no correction of it: «цифровизации» found only in
/// texts of a language the index does not stem (here Kazakh's Russian loanword) is not "did
/// you mean «цифровизация»?".
#[test]
fn another_form_of_the_word_typed_is_no_correction() {
    let r = titled;
    let idx = index(vec![
        r(1, "kk", "Цифровизация қызметтері"),
        r(2, "kk", "Цифровизация бағдарламасы"),
    ]);
    let typed = search(&idx, "цифровизации");
    assert_eq!(typed.did_you_mean, None, "{:?}", order(&typed));
}

/// A word found only in a record's summary is marked in the snippet (cut from the summary),
/// not left plain: the snippet's marks were built from the bodies' words alone.
#[test]
fn a_word_only_a_summary_holds_is_marked_in_the_snippet() {
    let idx = index(vec![doc(R {
        n: 1,
        lang: "ru",
        title: "Проактивные услуги",
        summary: "Разъяснение порядка оказания услуг без заявления.",
        body: "Услуги оказываются по событиям жизни гражданина.",
        tags: &[],
    })]);
    let r = search(&idx, "разъяснение");
    assert_eq!(r.total, 1);
    assert!(
        r.hits[0].snippet.contains("<b>Разъяснение</b>"),
        "{}",
        r.hits[0].snippet
    );
}

/// One Russian record on e-government and three English ones.
fn e_government_titles() -> SearchIndex {
    let r = titled;
    index(vec![
        r(1, "ru", "Электронное правительство Казахстана"),
        r(2, "en", "E-government services for citizens"),
        r(3, "en", "Lessons of e-government portals"),
        r(4, "en", "E-government in rural areas"),
    ])
}

/// A misspelt word loses what the word brings besides itself (its glossary terms in other
/// languages, its direction): when the correction, read strictly, finds more than the
/// approximate reading of the typo, its results are shown, and said so.
#[test]
fn a_correction_that_finds_more_is_shown_with_what_the_word_brings() {
    let idx = e_government_titles();
    let right = search(&idx, "электронное правительство");
    assert_eq!(right.total, 4, "{:?}", right.reading);
    let typo = search(&idx, "электронное правителство");
    assert_eq!(typo.total, 4, "{:?}", typo.reading);
    assert_eq!(
        typo.reading.showing_for.as_deref(),
        Some("электронное правительство")
    );
}

/// A reader who meant the words as typed ("search instead for" under a corrected query) gets
/// what they find, the correction only offered: a typo, a query on the other layout, and a typo
/// whose correction finds more.
#[test]
fn a_query_searched_as_typed_is_not_replaced_by_its_correction() {
    let as_typed = |idx: &SearchIndex, q: &str| {
        idx.searcher()
            .search(&SearchQuery {
                text: Some(q.into()),
                limit: 20,
                as_typed: true,
                ..Default::default()
            })
            .unwrap()
    };
    let idx = corpus();
    let r = as_typed(&idx, "pensionres");
    assert_eq!(r.reading.showing_for, None);
    assert_eq!(r.total, 0, "{:?}", r.reading);
    assert_eq!(r.did_you_mean.as_deref(), Some("pensioners"));

    let idx = e_government_titles();
    let typo = as_typed(&idx, "электронное правителство");
    assert_eq!(typo.reading.showing_for, None);
    // What the typed words find (approximately: the misspelt word's similar spellings), not
    // the correction's four.
    assert!(typo.total < 4, "{} {:?}", typo.total, typo.reading);
    assert_eq!(
        typo.did_you_mean.as_deref(),
        Some("электронное правительство")
    );
    let swapped = as_typed(&idx, "ghfdbntkmcndj");
    assert_eq!(swapped.reading.showing_for, None);
    assert_eq!(swapped.total, 0);
    assert_eq!(swapped.did_you_mean.as_deref(), Some("правительство"));
    // As typed or not, a query that finds what it says is read the same.
    let plain = as_typed(&idx, "правительство");
    assert_eq!(plain.total, search(&idx, "правительство").total);
    assert_eq!(plain.did_you_mean, None);
}

/// A query whose layout was switched in the middle ("правительство ghfdbntkmcndj") finds what
/// it meant: each word that finds nothing but reads, on the other layout, as a word that does
/// is read so, and the page says what was searched.
#[test]
fn a_query_with_one_word_on_the_other_layout_is_read_as_meant() {
    let idx = index(vec![doc(R {
        n: 1,
        lang: "ru",
        title: "Электронное правительство",
        summary: "Правительство открыло порталы.",
        body: "",
        tags: &[],
    })]);
    let r = search(&idx, "электронное ghfdbntkmcndj");
    assert_eq!(r.total, 1, "{:?}", r.reading);
    assert_eq!(
        r.reading.showing_for.as_deref(),
        Some("электронное правительство")
    );
}

/// A real word whose stem is short ("going" → "go") is searched by its stem in the bodies as
/// any word is, and is not "corrected" to another ("doing").
#[test]
fn a_real_word_with_a_short_stem_is_searched_by_it() {
    let idx = index(vec![
        doc(R {
            n: 1,
            lang: "en",
            title: "Digital services",
            summary: "",
            body: "The programme is going well in the regions.",
            tags: &[],
        }),
        doc(R {
            n: 2,
            lang: "en",
            title: "Doing business online",
            summary: "",
            body: "Doing business online is easier.",
            tags: &[],
        }),
    ]);
    let r = search(&idx, "going");
    assert_eq!(order(&r), vec![1], "{:?}", r.reading);
    assert_eq!(r.did_you_mean, None);
}

/// Kazakh text about public services, most records with the query's own form «қызметтер».
fn kazakh_services() -> SearchIndex {
    let r = titled;
    index(vec![
        r(1, "kk", "Мемлекеттік қызметтер көрсету"),
        r(2, "kk", "Электрондық қызметтер тізімі"),
        r(3, "kk", "Ауылдағы қызметтер сапасы"),
        // Other forms of the word, in newer records (which would come first on a tie).
        r(4, "kk", "Мемлекеттік қызметтерді көрсету"),
        r(5, "kk", "Мемлекеттік қызметін көрсету"),
        // Records of other words.
        r(6, "kk", "Цифрлық сауаттылық курстары"),
        r(7, "kk", "Ауыл мектептеріндегі интернет"),
        r(8, "kk", "Денсаулық сақтау жүйесі"),
        r(9, "kk", "Ашық деректер порталы"),
        r(10, "kk", "Электрондық үкімет"),
    ])
}

/// The languages Accord does not stem (Kazakh here) match other forms of a word: «қызметтер»
/// finds «қызметтерді» and «қызметін», ranked after the records with the form typed, although
/// three of those are found, so no approximate reading would have added them; and the words
/// of a longer query are all still required.
#[test]
fn a_kazakh_word_finds_its_other_forms_the_form_typed_first() {
    let idx = kazakh_services();
    let r = search(&idx, "қызметтер ");
    let found = order(&r);
    assert_eq!(found.len(), 5, "{found:?}");
    let (mut typed, mut other) = (found[..3].to_vec(), found[3..].to_vec());
    typed.sort_unstable();
    other.sort_unstable();
    assert_eq!((typed, other), (vec![1, 2, 3], vec![4, 5]), "{found:?}");
    assert!(!r.reading.approximate);

    let r = search(&idx, "мемлекеттік қызметтер көрсету ");
    let found = order(&r);
    assert_eq!(found.first(), Some(&1), "{found:?}");
    let mut all = found.clone();
    all.sort_unstable();
    assert_eq!(all, vec![1, 4, 5]);
    assert!(!r.reading.approximate, "{:?}", r.reading);

    // The live stream reads the query the same way.
    assert!(accord_search::doc_matches_text(
        &titled(4, "kk", "Мемлекеттік қызметтерді көрсету"),
        "мемлекеттік қызметтер көрсету "
    ));
    assert!(!accord_search::doc_matches_text(
        &titled(6, "kk", "Цифрлық сауаттылық курстары"),
        "қызметтер "
    ));
}

/// A word in the plural finds the possessive of its singular («бағдарламалар» →
/// «бағдарламасы»), and the form found is marked in the snippet.
#[test]
fn a_kazakh_plural_finds_the_possessive_and_marks_it() {
    let r = titled;
    let idx = index(vec![
        r(1, "kk", "Цифрлық білім беру бағдарламасы"),
        r(2, "kk", "Ауыл шаруашылығы"),
        r(3, "kk", "Ашық деректер порталы"),
    ]);
    let found = search(&idx, "бағдарламалар ");
    assert_eq!(order(&found), vec![1], "{:?}", found.reading);

    let idx = index(vec![doc(R {
        n: 1,
        lang: "kk",
        title: "Халыққа арналған портал",
        summary: "Мемлекеттік қызметін көрсету тәртібі.",
        body: "",
        tags: &[],
    })]);
    let r = search(&idx, "қызметтер ");
    assert_eq!(r.total, 1, "{:?}", r.reading);
    assert!(
        r.hits[0].snippet.contains("<b>қызметін</b>"),
        "{}",
        r.hits[0].snippet
    );
}

/// Uzbek and Azerbaijani (Latin) words find their other forms too ("xizmatlar" finds
/// "xizmatlari" and "xizmati", "xidmətlər" finds "xidmətləri" and "xidmətin"), and another
/// form of the word is not offered as its correction.
#[test]
fn uzbek_and_azerbaijani_words_find_their_other_forms() {
    let r = titled;
    let idx = index(vec![
        r(1, "uz", "Davlat xizmatlari portali"),
        r(2, "uz", "Elektron davlat xizmati"),
        r(3, "az", "Dövlət xidmətləri portalı"),
        r(4, "az", "Elektron xidmətin keyfiyyəti"),
    ]);
    for (q, want) in [("xizmatlar ", vec![1, 2]), ("xidmətlər ", vec![3, 4])] {
        let r = search(&idx, q);
        let mut found = order(&r);
        found.sort_unstable();
        assert_eq!(found, want, "{q}");
        assert_eq!(r.did_you_mean, None, "{q}");
    }
}

/// Russian is stemmed, not read with the members' endings: «компьютеры» (stem «компьютер»)
/// finds the records of its stem only, not «компьютеризация» or «компьютерные», which the
/// beginning «компью» its Turkic reading would make of it begins.
#[test]
fn russian_records_gain_no_matches_from_the_members_endings() {
    let r = titled;
    let idx = index(vec![
        r(1, "ru", "Компьютеры в школах"),
        r(2, "ru", "Новые компьютеры для библиотек"),
        r(3, "ru", "Компьютеры и планшеты"),
        r(4, "ru", "Компьютеризация больниц"),
        r(5, "ru", "Компьютерные классы"),
    ]);
    let r = search(&idx, "компьютеры ");
    let mut found = order(&r);
    found.sort_unstable();
    assert_eq!(found, vec![1, 2, 3], "{:?}", r.reading);
    assert_eq!(r.total, 3);
    assert!(!r.reading.approximate);
}
