//! Index build time, size on disk, and query latency (p50/p99) for filter-only and full-text
//! queries over N synthetic multilingual records (default 100,000).
//! Run: `cargo run --release -p accord-search --example search_bench [N]`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use accord_core::{ObjectId, Timestamp};
use accord_search::{RecordDoc, SearchIndex, SearchQuery};

const RU: &[&str] = &[
    "электронное",
    "правительство",
    "цифровые",
    "навыки",
    "платформа",
    "услуги",
    "регулирование",
    "данные",
    "безопасность",
    "образование",
    "инфраструктура",
    "государственных",
    "системы",
    "граждан",
    "обмен",
    "опыт",
];
const EN: &[&str] = &[
    "electronic",
    "government",
    "digital",
    "skills",
    "platform",
    "services",
    "regulation",
    "data",
    "security",
    "education",
    "infrastructure",
    "programmes",
    "public",
    "citizens",
    "exchange",
    "experience",
];
const MEMBERS: &[&str] = &["KZ", "BY", "AM", "KG", "UZ", "TJ", "RU", "AZ"];
const KINDS: &[&str] = &[
    "regulatory-note",
    "skills-programme",
    "platform-case-study",
    "research-programme",
    "event-report",
    "dataset",
    "standard",
    "other",
];
const DIRS: &[&str] = &[
    "regulation",
    "digital-space-security",
    "digital-economy",
    "infrastructure",
    "education",
    "ict-science",
    "research-support",
    "e-government",
    "ict-access",
    "digital-divide",
    "digital-skills",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
    fn words(&mut self, v: &[&str], n: usize) -> String {
        (0..n).map(|_| self.pick(v)).collect::<Vec<_>>().join(" ")
    }
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let mut idx = SearchIndex::open(dir.path()).unwrap();
    let mut rng = Rng(7);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(5000);
    for i in 0..n {
        let ru = i % 2 == 0;
        let (lang, vocab) = if ru { ("ru", RU) } else { ("en", EN) };
        let title = BTreeMap::from([(lang.to_string(), rng.words(vocab, 6))]);
        let text = BTreeMap::from([(lang.to_string(), rng.words(vocab, 120))]);
        let member = rng.pick(MEMBERS);
        batch.push(RecordDoc {
            id: ObjectId::of_body(&(i as u64).to_le_bytes()),
            created: Timestamp(1_600_000_000_000 + rng.next() % 150_000_000_000),
            member: member.into(),
            kind: rng.pick(KINDS).into(),
            directions: vec![rng.pick(DIRS).into(), rng.pick(DIRS).into()],
            lang: lang.into(),
            languages: vec![lang.into()],
            title,
            summary: BTreeMap::new(),
            body: text,
            tags: Vec::new(),
            date: None,
            status: if i % 10 == 0 {
                "superseded".into()
            } else {
                "active".into()
            },
            publisher: format!("{member} ministry"),
            attachments: Vec::new(),
            files: Vec::new(),
            files_more: 0,
        });
        if batch.len() == 5000 {
            idx.upsert(&batch).unwrap();
            batch.clear();
        }
    }
    idx.upsert(&batch).unwrap();
    idx.commit().unwrap();
    let build = started.elapsed();
    println!("records: {n}");
    println!(
        "index build: {:.1} s ({:.0} records/s)",
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64()
    );
    println!(
        "index size on disk: {:.1} MiB",
        dir_size(dir.path()) as f64 / 1048576.0
    );
    let s = idx.searcher();
    let runs = 200;
    let filter_queries: Vec<SearchQuery> = (0..runs)
        .map(|_| SearchQuery {
            members: vec![rng.pick(MEMBERS).into()],
            kinds: vec![rng.pick(KINDS).into()],
            limit: 20,
            ..Default::default()
        })
        .collect();
    let text_queries: Vec<SearchQuery> = (0..runs)
        .map(|i| {
            let vocab = if i % 2 == 0 { RU } else { EN };
            SearchQuery {
                text: Some(rng.words(vocab, 2)),
                directions: if i % 3 == 0 {
                    vec![rng.pick(DIRS).into()]
                } else {
                    vec![]
                },
                limit: 20,
                ..Default::default()
            }
        })
        .collect();
    for (name, qs) in [
        (
            "filter-only (member + kind, facets, newest first)",
            filter_queries,
        ),
        ("full-text (2 words, facets, snippets)", text_queries),
    ] {
        let mut times = Vec::with_capacity(qs.len());
        for q in &qs {
            let t = Instant::now();
            let r = s.search(q).unwrap();
            times.push(t.elapsed());
            std::hint::black_box(r);
        }
        println!(
            "{name}: p50 {:.2} ms, p99 {:.2} ms",
            pct(times.clone(), 0.5).as_secs_f64() * 1000.0,
            pct(times, 0.99).as_secs_f64() * 1000.0
        );
    }
}
