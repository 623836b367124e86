//! Indexing cost: bilingual records (Russian with an English translation, ~2 KB of text each)
//! added to an index in memory and committed, as the node's indexer thread does. The text is
//! drawn from fixed word lists with a seeded generator, so every run indexes the same documents.
//! Also the first run of a ranked query over an index of such records (`first_query`), and the
//! live stream's analysis of the same records' words, each text in its language's family
//! (`doc_words`).

use std::collections::BTreeMap;

use accord_core::{ObjectId, Timestamp};
use accord_search::{Presence, RecordDoc, SearchIndex};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Records per measured run.
const RECORDS: usize = 2_000;

const RU: &[&str] = &[
    "цифровой",
    "цифровых",
    "цифровая",
    "цифровизации",
    "государственных",
    "государственные",
    "услуг",
    "услуги",
    "услугам",
    "граждан",
    "гражданам",
    "гражданина",
    "персональных",
    "персональные",
    "данных",
    "данные",
    "данными",
    "защиты",
    "защита",
    "защите",
    "обмена",
    "обмен",
    "обменом",
    "информационного",
    "информационной",
    "информационные",
    "систем",
    "системы",
    "системам",
    "платформы",
    "платформа",
    "платформе",
    "министерство",
    "министерства",
    "развития",
    "развитие",
    "развитию",
    "общества",
    "общество",
    "соглашения",
    "соглашение",
    "сотрудничества",
    "сотрудничество",
    "государств",
    "участников",
    "участники",
    "опыт",
    "опыта",
    "опытом",
    "обучения",
    "обучение",
    "навыков",
    "навыки",
    "программы",
    "программа",
    "программе",
    "подготовки",
    "специалистов",
    "специалисты",
    "электронного",
    "электронное",
    "электронной",
    "правительства",
    "правительство",
    "регулирования",
    "регулирование",
    "нормативных",
    "нормативные",
    "актов",
    "акты",
    "требований",
    "требования",
    "безопасности",
    "безопасность",
    "инфраструктуры",
    "инфраструктура",
    "сети",
    "сетей",
    "связи",
    "доступа",
    "доступ",
    "интероперабельности",
    "совместимости",
    "стандартов",
    "стандарты",
    "реестра",
    "реестр",
    "подписи",
    "подпись",
    "удостоверения",
    "идентификации",
    "внедрения",
    "внедрение",
    "проекта",
    "проект",
    "проектов",
    "результаты",
    "результатов",
    "года",
    "году",
    "в",
    "и",
    "на",
    "для",
    "по",
    "с",
    "о",
    "при",
    "из",
    "к",
    "не",
    "что",
    "как",
    "также",
    "между",
    "через",
    "его",
    "их",
    "этом",
    "рамках",
    "основе",
    "области",
    "сфере",
    "целях",
    "порядке",
    "работы",
    "работа",
    "центра",
    "центр",
    "национального",
    "национальной",
    "национальные",
    "предоставления",
    "предоставление",
    "мобильного",
    "мобильное",
    "приложения",
    "портала",
    "портал",
    "муниципальных",
    "региональных",
    "органов",
    "власти",
    "организаций",
];

const EN: &[&str] = &[
    "digital",
    "government",
    "services",
    "service",
    "citizens",
    "citizen",
    "personal",
    "data",
    "protection",
    "exchange",
    "information",
    "systems",
    "system",
    "platform",
    "platforms",
    "ministry",
    "development",
    "society",
    "agreement",
    "cooperation",
    "member",
    "states",
    "experience",
    "training",
    "skills",
    "programme",
    "programmes",
    "specialists",
    "electronic",
    "regulation",
    "regulatory",
    "requirements",
    "security",
    "infrastructure",
    "networks",
    "access",
    "interoperability",
    "standards",
    "registry",
    "signature",
    "identification",
    "implementation",
    "project",
    "projects",
    "results",
    "year",
    "the",
    "and",
    "of",
    "to",
    "in",
    "for",
    "on",
    "with",
    "by",
    "as",
    "is",
    "are",
    "was",
    "were",
    "its",
    "their",
    "this",
    "that",
    "between",
    "through",
    "within",
    "framework",
    "based",
    "area",
    "field",
    "purposes",
    "procedure",
    "work",
    "centre",
    "national",
    "provision",
    "mobile",
    "application",
    "portal",
    "municipal",
    "regional",
    "authorities",
    "organisations",
    "guidance",
    "case",
    "study",
    "studies",
    "lessons",
    "learned",
    "adoption",
    "providers",
    "public",
    "sector",
    "open",
    "shared",
    "federated",
    "trust",
    "keys",
    "records",
    "publishing",
    "analysts",
    "search",
    "reports",
    "reporting",
    "statistics",
    "monitoring",
    "evaluation",
    "pilot",
    "rollout",
];

/// A seeded xorshift: the same words for every run.
struct Words(u64);

impl Words {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn text(&mut self, list: &[&str], words: usize) -> String {
        let mut out = String::new();
        for i in 0..words {
            if i > 0 {
                out.push_str(if i % 12 == 0 { ". " } else { " " });
            }
            out.push_str(list[self.next(list.len())]);
        }
        out
    }
}

fn record(i: usize, w: &mut Words) -> RecordDoc {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
    let both =
        |ru: String, en: String| BTreeMap::from([("ru".to_string(), ru), ("en".to_string(), en)]);
    RecordDoc {
        id: ObjectId(id),
        created: Timestamp(1_764_000_000_000 + i as u64 * 1_000),
        member: ["KZ", "BY", "AM", "KG", "UZ"][i % 5].into(),
        kind: ["case-study", "regulatory-note", "training-programme"][i % 3].into(),
        directions: vec![format!("d{}", i % 11 + 1)],
        lang: "ru".into(),
        languages: vec!["ru".into(), "en".into()],
        title: both(w.text(RU, 8), w.text(EN, 8)),
        summary: both(w.text(RU, 25), w.text(EN, 25)),
        body: both(w.text(RU, 150), w.text(EN, 140)),
        tags: vec!["e-government".into(), "data-exchange".into()],
        date: Some("2026-11-01".into()),
        status: "active".into(),
        publisher: format!("ministry-{}", i % 7),
        attachments: Vec::new(),
        files: Vec::new(),
        files_more: 0,
    }
}

fn index(c: &mut Criterion) {
    let mut w = Words(0x9E37_79B9_7F4A_7C15);
    let docs: Vec<RecordDoc> = (0..RECORDS).map(|i| record(i, &mut w)).collect();
    let mut g = c.benchmark_group("index");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(10));
    g.throughput(Throughput::Elements(RECORDS as u64));
    // Committed once; then committed every 250 records, as the node's indexer does at about
    // 500 records a second (a commit every half second): many small segments, each with new
    // copies of the fields' analysers.
    for (name, commit_every) in [
        ("2000 bilingual records, in memory, committed", RECORDS),
        (
            "2000 bilingual records, in memory, committed every 250",
            250,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    // As the node's index: long texts indexed, not stored.
                    let mut index = SearchIndex::in_memory().expect("index");
                    index.without_long_texts();
                    index
                },
                |mut index| {
                    for part in docs.chunks(commit_every) {
                        // Stored just now: only added, as the node's indexer adds new records.
                        for batch in part.chunks(256) {
                            index
                                .apply(batch.iter().map(|d| (d, Presence::New)))
                                .expect("apply");
                        }
                        index.commit().expect("commit");
                    }
                    index
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

/// Records of the index the first-run benchmark queries.
const QUERIED: usize = 200_000;

/// The first run of a ranked query over [`QUERIED`] records in 20 segments: a searcher as the
/// node's, its cache filled by `warm` as the node's indexer fills it after a commit (not
/// timed), then the query asked once. Every record holds the words, so the query's count and
/// facets come from what it leaves out of each segment (nothing); with a filter keeping a
/// third of the records, from the values of the third it keeps.
fn first_query(c: &mut Criterion) {
    let mut w = Words(0x9E37_79B9_7F4A_7C15);
    let mut index = SearchIndex::in_memory().expect("index");
    index.without_long_texts();
    for part in 0..20 {
        let docs: Vec<RecordDoc> = (part * QUERIED / 20..(part + 1) * QUERIED / 20)
            .map(|i| record(i, &mut w))
            .collect();
        for batch in docs.chunks(1_000) {
            index
                .apply(batch.iter().map(|d| (d, Presence::New)))
                .expect("apply");
        }
        index.commit().expect("commit");
    }
    let mut g = c.benchmark_group("first_query");
    g.sample_size(20);
    let text = accord_search::SearchQuery {
        text: Some("цифровых услуг".into()),
        limit: 20,
        ..Default::default()
    };
    let third = accord_search::SearchQuery {
        kinds: vec!["case-study".into()],
        ..text.clone()
    };
    for (name, q) in [
        ("a word in every record, 200000 records", &text),
        ("the same, a filter keeping a third", &third),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let searcher = index.searcher();
                    searcher.warm().expect("warm");
                    searcher
                },
                |searcher| searcher.search(q).expect("search").total,
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

/// The live stream's analysis of a record while a stream of text is open
/// ([`accord_search::DocWords::of_with`]: each text in its language's family), over the records
/// `index` indexes: its cost per record against indexing's.
fn doc_words(c: &mut Criterion) {
    let mut w = Words(0x9E37_79B9_7F4A_7C15);
    let docs: Vec<RecordDoc> = (0..RECORDS).map(|i| record(i, &mut w)).collect();
    let mut g = c.benchmark_group("doc_words");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RECORDS as u64));
    // As the live stream's feed: one set of analysers kept for every record.
    let mut analyzers = accord_search::DocAnalyzers::default();
    g.bench_function("2000 bilingual records", |b| {
        b.iter(|| {
            docs.iter()
                .map(|d| accord_search::DocWords::of_with(&mut analyzers, d).len())
                .sum::<usize>()
        });
    });
    g.finish();
}

criterion_group!(benches, index, first_query, doc_words);
criterion_main!(benches);
