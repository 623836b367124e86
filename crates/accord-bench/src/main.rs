//! `accord-bench`: the project's benchmark program. It generates independently signed
//! records (~2 KB, Russian and English), starts real nodes (the node's own code, libp2p on
//! loopback, the HTTP API) in one process and measures:
//!
//! - `ingest`: bulk ingest into one node over HTTP, until every record is stored and
//!   searchable, against one core's `verify_strict` rate measured in the same run; then the
//!   cost of the status, health and metrics endpoints at that size;
//! - `cluster`: the same records posted to one of several nodes, until all of them hold all;
//!   gossip events not handed over, reconciliation duplicates and signature checks per record;
//! - `latency`: single-record POSTs at a fixed rate; POST acknowledgement and propagation to
//!   the farthest node, p50/p99/max, and the receiving node's own mean time per object from
//!   validation to durable commit and per group commit (`receiver`);
//! - `footprint` and `catchup`: memory, disk, queries and checking at size; catching up;
//! - `scale`: many nodes over simulated links (see `scale.rs`).
//!
//! Each run prints a Markdown table and one JSON line (appended to `--out` when given). The
//! figures are measurements of this machine, never assertions; docs/BENCHMARKS.md records them.

mod scale;

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_core::envelope::signing_input;
use accord_core::{Object, ObjectId, SignedObject, Timestamp};
use accord_node::{AdmissionMode, Node, NodeHandle, SyncConfig};
use accord_tests::harness::{TestFed, dial_addr, now, record_count, serve};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(
    name = "accord-bench",
    about = "Benchmarks of real Accord nodes on loopback"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Append the JSON result line to this file.
    #[arg(long, global = true)]
    out: Option<std::path::PathBuf>,
    /// Copy the nodes' log (default level) to this file.
    #[arg(long, global = true)]
    keep_log: Option<std::path::PathBuf>,
    /// The nodes create compressed stores (`store.compression = true`; sled's zstd on its
    /// indexes).
    #[arg(long, global = true)]
    compressed: bool,
    /// sled's page cache of every node of the run (`store.cache_mb`); the node's default when
    /// not given.
    #[arg(long, global = true)]
    cache_mb: Option<u64>,
    /// The search index's indexing memory of every node of the run (`search.index_heap_mb`);
    /// the node's default when not given.
    #[arg(long, global = true)]
    index_heap_mb: Option<u64>,
    /// How many nice steps below the node's other threads the search index's threads of every
    /// node of the run run (`search.index_nice`); the node's default when not given.
    #[arg(long, global = true)]
    index_nice: Option<u8>,
    /// The gossip queue of every node of the run, in MiB (`network.gossip_queue_mb`); the
    /// node's default when not given.
    #[arg(long, global = true)]
    gossip_queue_mb: Option<u64>,
    /// The gossip queue of every node of the run, in messages
    /// (`network.gossip_queue_messages`); the node's default when not given.
    #[arg(long, global = true)]
    gossip_queue_messages: Option<usize>,
}

/// The node settings a run changes from the defaults (`--compressed`, `--cache-mb`,
/// `--index-heap-mb`, `--index-nice`, `--gossip-queue-mb`, `--gossip-queue-messages`).
#[derive(Debug, Default, Clone, Copy)]
struct Overrides {
    compressed: bool,
    cache_mb: Option<u64>,
    index_heap_mb: Option<u64>,
    index_nice: Option<u8>,
    gossip_queue_mb: Option<u64>,
    gossip_queue_messages: Option<usize>,
}

impl Overrides {
    fn apply(&self, cfg: &mut accord_node::NodeConfig) {
        cfg.store.compression = self.compressed;
        if let Some(mb) = self.cache_mb {
            cfg.store.cache_mb = mb;
        }
        if let Some(mb) = self.index_heap_mb {
            cfg.search.index_heap_mb = mb;
        }
        if let Some(n) = self.index_nice {
            cfg.search.index_nice = n;
        }
        if let Some(mb) = self.gossip_queue_mb {
            cfg.network.gossip_queue_mb = mb;
        }
        if let Some(n) = self.gossip_queue_messages {
            cfg.network.gossip_queue_messages = n;
        }
    }
}

/// The live stream `ingest` holds open while it posts.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum StreamMode {
    /// No stream.
    None,
    /// A stream with no filter: every record is sent.
    All,
    /// A stream of a word every record's title holds: every record is analysed and sent.
    Text,
}

impl StreamMode {
    /// The stream's query, when there is one.
    fn query(self) -> Option<&'static str> {
        match self {
            StreamMode::None => None,
            StreamMode::All => Some(""),
            // "цифровым", a word of every generated record's Russian title.
            StreamMode::Text => Some("?q=%D1%86%D0%B8%D1%84%D1%80%D0%BE%D0%B2%D1%8B%D0%BC"),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Bulk ingest into one node over HTTP until stored and searchable.
    Ingest {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// Records per HTTP request.
        #[arg(long, default_value_t = 512)]
        batch: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// A live stream (`/v1/stream`) open during the ingest, as an analyst's open search
        /// page holds one.
        #[arg(long, value_enum, default_value_t = StreamMode::None)]
        stream: StreamMode,
    },
    /// Records posted to one of `nodes` nodes until every node holds all of them.
    Cluster {
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 512)]
        batch: usize,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// One node: memory and disk after ingesting `records` (generated batch by batch, so the
    /// process holds little besides the node), then query latency at that size.
    Footprint {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// Move the node's data directory here at the end (to inspect it).
        #[arg(long)]
        keep_data: Option<std::path::PathBuf>,
    },
    /// Query latency on the data directory a `footprint --keep-data DIR` run left, idle and
    /// while taking 1,000 POSTs a second (no ingest first: for stores of a million records).
    Query {
        #[arg(long)]
        data: std::path::PathBuf,
    },
    /// Three nodes; one is stopped while another receives `records`; time for the restarted
    /// node to hold them all, the bytes it received and the duplicates it fetched.
    Catchup {
        #[arg(long, default_value_t = 10_000)]
        records: usize,
    },
    /// Many nodes over simulated links (delay, loss, partitions): propagation, duplicates,
    /// bytes per record, convergence after a partition heals and after restarts.
    Scale(scale::Scale),
    /// One record with a file of `size_mb` MiB posted to one of `nodes` nodes: time until
    /// every other node holds the file, verified chunk by chunk, and until its text is found.
    Attachments {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 50)]
        size_mb: usize,
        /// No bandwidth bound (the defaults are 32 MiB/s in all, 16 MiB/s per peer).
        #[arg(long)]
        unbounded: bool,
    },
    /// Single-record POSTs at a fixed rate; acknowledgement and propagation latency.
    Latency {
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Records per second.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        #[arg(long, default_value_t = 20)]
        seconds: u32,
    },
}

const CODES: [&str; 10] = ["KZ", "BY", "AM", "KG", "RU", "TJ", "UZ", "AZ", "MD", "TM"];

/// The allocator the `accord` binary uses, so that footprints are the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // The nodes run in this process: they get the allocator's settings `accord run` has (set
    // one in the environment to measure another value; each line records them).
    if let Some(e) = accord_node::allocator::exec_with_allocator_env() {
        eprintln!("warning: cannot start again with the allocator's settings: {e}");
    }
    let cli = Cli::parse();
    let _ = OVERRIDES.set(Overrides {
        compressed: cli.compressed,
        cache_mb: cli.cache_mb,
        index_heap_mb: cli.index_heap_mb,
        index_nice: cli.index_nice,
        gossip_queue_mb: cli.gossip_queue_mb,
        gossip_queue_messages: cli.gossip_queue_messages,
    });
    let work = tempfile_dir()?;
    let log_path = work.join("bench.log");
    let log = std::fs::File::create(&log_path).context("creating the log file")?;
    // The nodes log at the default level of `accord run`, into a file whose lines we count.
    tracing_subscriber::fmt()
        .with_env_filter(
            // ACCORD_BENCH_LOG (a tracing filter) overrides, to look into a run.
            tracing_subscriber::EnvFilter::try_from_env("ACCORD_BENCH_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(accord_node::DEFAULT_LOG_FILTER)
            }),
        )
        .with_writer(Mutex::new(log))
        .with_ansi(false)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut result = rt.block_on(async {
        match cli.cmd {
            Cmd::Ingest {
                records,
                batch,
                concurrency,
                stream,
            } => ingest(records, batch, concurrency, stream).await,
            Cmd::Cluster {
                nodes,
                records,
                batch,
                concurrency,
            } => cluster(nodes, records, batch, concurrency).await,
            Cmd::Latency {
                nodes,
                rate,
                seconds,
            } => latency(nodes, rate, seconds).await,
            Cmd::Footprint { records, keep_data } => footprint(records, keep_data).await,
            Cmd::Catchup { records } => catchup(records).await,
            Cmd::Query { data } => query(data).await,
            Cmd::Scale(settings) => scale::scale(settings).await,
            Cmd::Attachments {
                nodes,
                size_mb,
                unbounded,
            } => attachments(nodes, size_mb, unbounded).await,
        }
    })?;
    let (lines, longest) = log_lines(&log_path);
    let secs = started.elapsed().as_secs_f64();
    let nodes = result["nodes"].as_u64().unwrap_or(1).max(1) as f64;
    result["log"] = json!({
        "lines": lines,
        "lines_per_node_per_s": round(lines as f64 / nodes / secs, 3),
        "longest_line": longest,
    });
    if let Some(mb) = cli.cache_mb {
        result["cache_mb"] = json!(mb);
    }
    if let Some(mb) = cli.index_heap_mb {
        result["index_heap_mb"] = json!(mb);
    }
    if let Some(n) = cli.index_nice {
        result["index_nice"] = json!(n);
    }
    if let Some(mb) = cli.gossip_queue_mb {
        result["gossip_queue_mb"] = json!(mb);
    }
    if let Some(n) = cli.gossip_queue_messages {
        result["gossip_queue_messages"] = json!(n);
    }
    result["allocator"] = json!(accord_node::allocator::allocator_env_in_effect());
    result["load_average"] = json!(load_average());
    result["date"] = json!(date());
    print_table(&result);
    let line = serde_json::to_string(&result)?;
    println!("{line}");
    if let Some(out) = &cli.out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .with_context(|| format!("opening {}", out.display()))?;
        writeln!(f, "{line}")?;
    }
    if let Some(keep) = cli.keep_log {
        std::fs::copy(&log_path, &keep)
            .with_context(|| format!("copying the log to {}", keep.display()))?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("accord-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn log_lines(path: &std::path::Path) -> (u64, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines = text.lines().count() as u64;
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    (lines, longest)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Timestamp(secs).to_string()
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const RU: &str = "Министерство цифрового развития публикует методические рекомендации по \
    внедрению электронных государственных услуг, обмену данными между ведомствами и защите \
    персональных данных граждан. Документ описывает требования к совместимости платформ, \
    порядок подготовки специалистов и программы повышения квалификации.";
const EN: &str = "The ministry of digital development publishes guidance on rolling out \
    electronic government services, inter-agency data exchange and the protection of \
    citizens' personal data. The note sets out platform interoperability requirements, \
    the training of specialists and continuing education programmes.";

/// Words the generated prose is drawn from: the two texts above plus more of the field's words.
const RU_WORDS: &[&str] = &[
    "министерство",
    "цифрового",
    "развития",
    "публикует",
    "методические",
    "рекомендации",
    "внедрению",
    "электронных",
    "государственных",
    "услуг",
    "обмену",
    "данными",
    "между",
    "ведомствами",
    "защите",
    "персональных",
    "данных",
    "граждан",
    "документ",
    "описывает",
    "требования",
    "совместимости",
    "платформ",
    "порядок",
    "подготовки",
    "специалистов",
    "программы",
    "повышения",
    "квалификации",
    "республика",
    "агентство",
    "информационной",
    "безопасности",
    "инфраструктуры",
    "региональных",
    "органов",
    "власти",
    "предприятий",
    "сельских",
    "районов",
    "школ",
    "университетов",
    "обучения",
    "навыков",
    "опыт",
    "проект",
    "реестр",
    "система",
    "межведомственного",
    "взаимодействия",
    "портал",
    "заявлений",
    "оплаты",
    "налогов",
    "здравоохранения",
    "образования",
    "транспорта",
    "таможни",
    "лицензий",
    "идентификации",
    "подписи",
    "сертификатов",
    "облачных",
    "вычислений",
    "центров",
    "обработки",
    "широкополосного",
    "доступа",
    "связи",
    "спутниковой",
    "тарифов",
    "стандартов",
    "аудита",
    "отчёт",
    "показатели",
    "мониторинг",
    "оценка",
    "эффективности",
    "бюджета",
    "закупок",
    "контрактов",
    "поставщиков",
    "разработки",
    "программного",
    "обеспечения",
    "открытого",
    "кода",
    "архитектуры",
    "интеграции",
    "шлюза",
    "сервисов",
    "уведомлений",
    "обращений",
    "жалоб",
    "сроки",
    "этапы",
    "пилотный",
    "запуск",
    "году",
    "месяцев",
    "тысяч",
    "пользователей",
    "процентов",
    "охват",
    "населения",
    "грамотности",
    "кибербезопасности",
    "инцидентов",
    "реагирования",
    "угроз",
    "учений",
    "партнёров",
    "соглашения",
    "государств",
    "участников",
    "содружества",
    "направлений",
    "таксономии",
];
const EN_WORDS: &[&str] = &[
    "the",
    "ministry",
    "of",
    "digital",
    "development",
    "publishes",
    "guidance",
    "on",
    "rolling",
    "out",
    "electronic",
    "government",
    "services",
    "inter-agency",
    "data",
    "exchange",
    "and",
    "protection",
    "citizens",
    "personal",
    "note",
    "sets",
    "platform",
    "interoperability",
    "requirements",
    "training",
    "specialists",
    "continuing",
    "education",
    "programmes",
    "republic",
    "agency",
    "information",
    "security",
    "infrastructure",
    "regional",
    "authorities",
    "enterprises",
    "rural",
    "districts",
    "schools",
    "universities",
    "skills",
    "experience",
    "project",
    "registry",
    "system",
    "portal",
    "applications",
    "payment",
    "taxes",
    "healthcare",
    "transport",
    "customs",
    "licences",
    "identity",
    "signature",
    "certificates",
    "cloud",
    "computing",
    "centres",
    "processing",
    "broadband",
    "access",
    "connectivity",
    "satellite",
    "tariffs",
    "standards",
    "audit",
    "report",
    "indicators",
    "monitoring",
    "assessment",
    "effectiveness",
    "budget",
    "procurement",
    "contracts",
    "suppliers",
    "software",
    "open",
    "source",
    "architecture",
    "integration",
    "gateway",
    "notifications",
    "requests",
    "complaints",
    "deadlines",
    "stages",
    "pilot",
    "launch",
    "year",
    "months",
    "thousand",
    "users",
    "percent",
    "coverage",
    "population",
    "literacy",
    "cybersecurity",
    "incidents",
    "response",
    "threats",
    "exercises",
    "partners",
    "agreement",
    "states",
    "members",
    "commonwealth",
    "directions",
    "taxonomy",
    "for",
    "with",
    "in",
    "by",
    "to",
    "a",
    "is",
    "are",
    "was",
    "new",
    "national",
    "public",
    "local",
];

/// About `words` words of prose for record `seed`: sentences of 6 to 15 words, drawn uniformly
/// from `vocabulary` and from words made of its words' parts, with numbers. Real prose names
/// more distinct words than a short list holds; `compressibility` compares the two.
fn prose(vocabulary: &[&str], seed: u64, words: usize) -> String {
    // SplitMix64: deterministic per record, no dependency.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut out = String::new();
    let mut written = 0;
    while written < words {
        let len = 6 + (next() % 10) as usize;
        for w in 0..len {
            let r = next();
            let word = match r % 8 {
                0 => (r % 1_000_000).to_string(),
                1..=5 => {
                    let a = vocabulary[(r as usize / 8) % vocabulary.len()];
                    let b = vocabulary[(r as usize / 1024) % vocabulary.len()];
                    let head: String = a.chars().take(4).collect();
                    let tail: String = b.chars().skip(b.chars().count() / 2).collect();
                    head + &tail
                }
                _ => vocabulary[(r as usize / 8) % vocabulary.len()].to_string(),
            };
            if w == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
            } else {
                out.push(' ');
                out.push_str(&word);
            }
        }
        out.push_str(". ");
        written += len;
    }
    out.truncate(out.trim_end().len());
    out
}

/// How well zstd (sled's level) compresses the hand-written prose above and prose generated at
/// the same length: the generated bodies should not compress much better than real text, or
/// the footprint would flatter the store.
fn compressibility() -> Value {
    let ratio = |text: &str| {
        let packed = zstd::encode_all(text.as_bytes(), 3)
            .map(|p| p.len())
            .unwrap_or(0);
        round(text.len() as f64 / packed.max(1) as f64, 2)
    };
    let real = format!("{RU} {EN}");
    let ru_words = RU.split_whitespace().count();
    let en_words = EN.split_whitespace().count();
    let generated: Vec<f64> = (0..20u64)
        .map(|i| {
            ratio(&format!(
                "{} {}",
                prose(RU_WORDS, i, ru_words),
                prose(EN_WORDS, i, en_words)
            ))
        })
        .collect();
    json!({
        "real_prose": ratio(&real),
        "generated_mean": round(generated.iter().sum::<f64>() / generated.len() as f64, 2),
    })
}

/// `n` independently signed records of member 0, about 2 KB each, Russian with an English
/// translation, signed on both cores.
fn records(tf: &TestFed, n: usize) -> Vec<Vec<u8>> {
    records_range(tf, 0, n)
}

/// Records `from..to` of the sequence [`records`] makes.
fn records_range(tf: &TestFed, from: usize, to: usize) -> Vec<Vec<u8>> {
    let base = now_ms() - 3_600_000;
    let threads = 2;
    let per = (to - from).div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let start = from + t * per;
                    let end = (start + per).min(to);
                    (start..end)
                        .map(|i| record(tf, i, Timestamp(base + i as u64)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_default())
            .collect()
    })
}

fn record(tf: &TestFed, i: usize, created: Timestamp) -> Vec<u8> {
    let mut body = tf.fed.record_body(0, &format!("Record {i}"), created);
    body.lang = "ru".into();
    body.title = [
        (
            "ru".to_string(),
            format!("Рекомендации № {i} по цифровым услугам"),
        ),
        (
            "en".to_string(),
            format!("Guidance no. {i} on digital services"),
        ),
    ]
    .into();
    body.body = [
        ("ru".to_string(), prose(RU_WORDS, i as u64, 75)),
        ("en".to_string(), prose(EN_WORDS, i as u64, 80)),
    ]
    .into();
    Object::Record(body)
        .sign(&tf.fed.members[0].publisher)
        .into_bytes()
}

/// One core's `verify_strict` rate on the given envelopes (records per second).
fn verify_rate(items: &[Vec<u8>]) -> f64 {
    let decoded: Vec<SignedObject> = items
        .iter()
        .filter_map(|b| {
            SignedObject::decode_draft(b, usize::MAX, accord_core::Limits::default().scan()).ok()
        })
        .collect();
    let inputs: Vec<Vec<u8>> = decoded.iter().map(|s| signing_input(s.body())).collect();
    let t = Instant::now();
    let mut ok = 0usize;
    for (s, input) in decoded.iter().zip(&inputs) {
        let (k, sig) = s.signatures()[0];
        if k.verify_strict(input, &sig) {
            ok += 1;
        }
    }
    let rate = ok as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(ok);
    rate
}

/// When each node accepted each object: (node index, instant).
type Arrivals = HashMap<ObjectId, Vec<(usize, Instant)>>;

/// Records, from each node's broadcast, when it accepted each object.
fn record_arrivals<'a>(
    nodes: impl Iterator<Item = (usize, &'a NodeHandle)>,
) -> Arc<Mutex<Arrivals>> {
    let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
    for (i, node) in nodes {
        let mut rx = node.subscribe();
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Ok(v) = rx.recv().await {
                let now = Instant::now();
                if let Ok(mut a) = arrivals.lock() {
                    a.entry(v.id()).or_default().push((i, now));
                }
            }
        });
    }
    arrivals
}

/// The node settings of this run, set once from the command line.
static OVERRIDES: std::sync::OnceLock<Overrides> = std::sync::OnceLock::new();

/// Member `i`'s node config for a run: loopback, the production sync interval, the run's
/// store compression and cache.
fn bench_config(tf: &TestFed, i: usize, bootstrap: Vec<String>) -> accord_node::NodeConfig {
    let mut cfg = tf.config(i, bootstrap, AdmissionMode::Members);
    cfg.sync = SyncConfig::default();
    OVERRIDES.get().copied().unwrap_or_default().apply(&mut cfg);
    if UNBOUNDED.load(std::sync::atomic::Ordering::Relaxed) {
        cfg.attachments.max_bytes_per_sec = 0;
        cfg.attachments.max_bytes_per_sec_per_peer = 0;
    }
    cfg
}

/// Spawns member `i`'s node with the run's config.
async fn spawn(tf: &TestFed, i: usize, bootstrap: Vec<String>) -> Result<NodeHandle> {
    Ok(Node::spawn(bench_config(tf, i, bootstrap)).await?)
}

/// A CBOR array of envelopes: one submission of a batch.
fn batch_body(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(Vec::len).sum::<usize>() + 9);
    let n = items.len() as u64;
    match n {
        0..=23 => out.push(0x80 | n as u8),
        24..=0xff => out.extend_from_slice(&[0x98, n as u8]),
        0x100..=0xffff => {
            out.push(0x99);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0x9a);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<()> {
    let r = client
        .post(format!("{url}/v1/objects"))
        .header("content-type", "application/cbor")
        .body(body)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("POST /v1/objects: {} {}", r.status(), r.text().await?);
    }
    Ok(())
}

/// Posts every record in batches with `concurrency` requests in flight.
async fn post_all(url: &str, recs: &[Vec<u8>], batch: usize, concurrency: usize) -> Result<()> {
    use futures::StreamExt;
    let client = http();
    let bodies: Vec<Vec<u8>> = recs.chunks(batch.max(1)).map(batch_body).collect();
    let mut s = futures::stream::iter(bodies)
        .map(|b| {
            let client = client.clone();
            async move { post(&client, url, b).await }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = s.next().await {
        r?;
    }
    Ok(())
}

/// Counts records a node accepts, from its broadcast of accepted objects (no store reads).
fn count_accepted(node: &NodeHandle) -> Arc<std::sync::atomic::AtomicU64> {
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = counter.clone();
    let mut rx = node.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(v) => {
                    if matches!(v.object(), Object::Record(_)) {
                        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                // Lagging subscribers missed the notification, not the record: every
                // broadcast object was accepted (only records are posted in these runs).
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    c.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
                Err(_) => break,
            }
        }
    });
    counter
}

async fn searchable(node: &NodeHandle) -> usize {
    node.search(accord_search_query())
        .await
        .map(|r| r.total)
        .unwrap_or(0)
}

fn accord_search_query() -> accord_search::SearchQuery {
    accord_search::SearchQuery {
        limit: 1,
        ..Default::default()
    }
}

/// Waits (polling at `every`) until `cond` holds; fails after `timeout`.
async fn wait_for<F, Fut>(what: &str, timeout: Duration, every: Duration, mut cond: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !cond().await {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
    Ok(())
}

/// Percentile of sorted durations, in ms.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    round(sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0, 2)
}

/// Timing of `calls` GETs of `path` (p50 and max, ms).
async fn endpoint_cost(url: &str, path: &str, calls: usize) -> Value {
    let client = http();
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let ok = client
            .get(format!("{url}{path}"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ok {
            times.push(t.elapsed());
        }
    }
    times.sort();
    json!({"p50_ms": pct(&times, 0.5), "max_ms": pct(&times, 1.0), "ok": times.len()})
}

/// The value of a metric (summed over its label sets) in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (key, value) = line.rsplit_once(' ')?;
        let base = key.split('{').next().unwrap_or(key);
        if base == name {
            let v: f64 = value.parse().ok()?;
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// The mean of a histogram, in ms, from its `_sum` and `_count`.
fn mean_ms(text: &str, name: &str) -> Option<f64> {
    let sum = metric(text, &format!("{name}_sum"))?;
    let count = metric(text, &format!("{name}_count"))?;
    (count > 0.0).then(|| round(sum / count * 1000.0, 2))
}

/// What a live stream received: records, and records it was told it missed (`lagged`).
#[derive(Default)]
struct StreamSeen {
    records: std::sync::atomic::AtomicU64,
    missed: std::sync::atomic::AtomicU64,
}

impl StreamSeen {
    fn records(&self) -> u64 {
        self.records.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn missed(&self) -> u64 {
        self.missed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Opens the node's live stream with `query` (subscribed once the response's head arrives)
/// and counts its events on a task until the response ends.
async fn open_stream(url: &str, query: &str) -> Result<Arc<StreamSeen>> {
    use futures::StreamExt;
    let resp = http()
        .get(format!("{url}/v1/stream{query}"))
        .send()
        .await
        .context("opening the live stream")?;
    if !resp.status().is_success() {
        let status = resp.status();
        bail!(
            "opening the live stream: {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    let seen = Arc::new(StreamSeen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut line = Vec::new();
        let mut event = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            for &b in chunk.iter() {
                if b != b'\n' {
                    line.push(b);
                    continue;
                }
                let text = String::from_utf8_lossy(&line);
                if let Some(name) = text.strip_prefix("event:") {
                    event = name.trim().to_string();
                    if event == "record" {
                        counts
                            .records
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                } else if let Some(data) = text.strip_prefix("data:")
                    && event == "lagged"
                {
                    let missed = serde_json::from_str::<Value>(data.trim())
                        .ok()
                        .and_then(|v| v["missed"].as_u64())
                        .unwrap_or(0);
                    counts
                        .missed
                        .fetch_add(missed, std::sync::atomic::Ordering::Relaxed);
                }
                line.clear();
            }
        }
    });
    Ok(seen)
}

async fn single_node_ingest(
    tf: &TestFed,
    recs: &[Vec<u8>],
    batch: usize,
    concurrency: usize,
) -> Result<(NodeHandle, String, Duration, Duration)> {
    let (node, url, stored, searchable) =
        single_node_ingest_streamed(tf, recs, batch, concurrency, StreamMode::None).await?;
    Ok((node, url, stored, searchable.0))
}

/// [`single_node_ingest`] with a live stream open (when `stream` asks for one); also returns
/// what the stream received.
async fn single_node_ingest_streamed(
    tf: &TestFed,
    recs: &[Vec<u8>],
    batch: usize,
    concurrency: usize,
    stream: StreamMode,
) -> Result<(
    NodeHandle,
    String,
    Duration,
    (Duration, Option<Arc<StreamSeen>>),
)> {
    let node = spawn(tf, 0, vec![]).await?;
    let url = serve(&node).await;
    let seen = match stream.query() {
        Some(q) => Some(open_stream(&url, q).await?),
        None => None,
    };
    let n = recs.len();
    let t = Instant::now();
    post_all(&url, recs, batch, concurrency).await?;
    let stored = t.elapsed();
    wait_for(
        "every record to be searchable",
        Duration::from_secs(600),
        Duration::from_millis(10),
        || async { searchable(&node).await >= n },
    )
    .await?;
    Ok((node, url, stored, (t.elapsed(), seen)))
}

/// CPU seconds (user + system) this process has used so far, from /proc/self/stat (clock ticks
/// of 1/100 s, as Linux reports them to user space); 0 where it can't be read.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces): utime
    // and stime are the 12th and 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    ticks.iter().sum::<f64>() / 100.0
}

/// An HTTP client. reqwest is built with rustls and no default TLS provider (the `accord` tool
/// installs ring): one is installed before any client is made.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn rss_mib() -> (f64, f64) {
    (status_mib("VmRSS:"), status_mib("VmHWM:"))
}

/// One memory field of /proc/self/status, in MiB (0 where it can't be read).
fn status_mib(name: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| round(kb / 1024.0, 1))
}

/// Resident memory split into anonymous (heap, caches) and file-backed (the search index's
/// memory-mapped segments, which the kernel can drop and re-read), in MiB.
fn rss_split() -> Value {
    json!({"anon": status_mib("RssAnon:"), "file": status_mib("RssFile:")})
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// p50/p99 of `runs` searches of each query (ms), over all runs and over the repeated ones
/// (the first run of each query is the only one whose results no cache of the node holds; its
/// times are also given alone).
async fn query_times(
    node: &NodeHandle,
    queries: &[accord_search::SearchQuery],
    runs: usize,
    at_least: Duration,
) -> Value {
    let mut first = Vec::new();
    let mut repeated = Vec::new();
    let started = Instant::now();
    let mut pass = 0;
    while pass < runs || started.elapsed() < at_least {
        pass += 1;
        for q in queries {
            let t = Instant::now();
            let _ = node.search(q.clone()).await;
            if pass == 1 {
                first.push(t.elapsed());
            } else {
                repeated.push(t.elapsed());
            }
        }
    }
    let first_max = first.iter().max().copied().unwrap_or_default();
    let first_ms: Vec<f64> = first
        .iter()
        .map(|d| round(d.as_secs_f64() * 1e3, 2))
        .collect();
    let mut times = first;
    times.extend(repeated.iter().copied());
    times.sort();
    repeated.sort();
    json!({
        "p50_ms": pct(&times, 0.5),
        "p99_ms": pct(&times, 0.99),
        "queries": times.len(),
        "repeated_p50_ms": pct(&repeated, 0.5),
        "repeated_p99_ms": pct(&repeated, 0.99),
        "first_ms": first_ms,
        "first_max_ms": round(first_max.as_secs_f64() * 1e3, 2),
    })
}

async fn footprint(n: usize, keep_data: Option<std::path::PathBuf>) -> Result<Value> {
    let tf = TestFed::new(&CODES[..2], 47)?;
    let cfg = bench_config(&tf, 0, vec![]);
    let cache = cfg.store.cache_mb;
    let node = Node::spawn(cfg).await?;
    let url = serve(&node).await;
    let (rss_empty, _) = rss_mib();
    let mut signed = 0usize;
    let step = 512 * 8;
    let t = Instant::now();
    for from in (0..n).step_by(step) {
        let recs = records_range(&tf, from, (from + step).min(n));
        signed += recs.iter().map(Vec::len).sum::<usize>();
        post_all(&url, &recs, 512, 4).await?;
    }
    wait_for(
        "every record to be searchable",
        Duration::from_secs(900),
        Duration::from_millis(20),
        || async { searchable(&node).await >= n },
    )
    .await?;
    let took = t.elapsed();
    let (rss_loaded, peak) = rss_mib();
    let data = tf.dir.path().join(CODES[0]).join("data");
    let search_bytes = dir_bytes(&data.join("search"));
    let store_bytes = dir_bytes(&data) - search_bytes;
    let queries = query_phase(&tf, &node, &url, n).await?;
    let (rss_after_queries, peak_after) = rss_mib();
    let split_after_queries = rss_split();
    let backup = backup_and_restore(&url, tf.dir.path()).await;
    node.shutdown().await;
    // `accord check` on the stopped node's store: every object decoded, hashed, its signature
    // verified and its index entries looked up.
    let check = {
        let data = data.clone();
        let genesis = tf.fed.genesis.as_bytes().to_vec();
        tokio::task::spawn_blocking(move || -> Result<(f64, bool)> {
            let store = accord_store::Store::open(&data, &genesis, Default::default())?;
            let t = Instant::now();
            let report = store.check()?;
            Ok((t.elapsed().as_secs_f64(), report.is_clean()))
        })
        .await??
    };
    if let Some(keep) = keep_data {
        std::fs::rename(&data, &keep)
            .with_context(|| format!("moving the data directory to {}", keep.display()))?;
    }
    Ok(json!({
        "bench": "footprint",
        "nodes": 1,
        "cache_mb": cache,
        "zstd_ratio": compressibility(),
        "records": n,
        "ingest_s": round(took.as_secs_f64(), 2),
        "signed_bytes": signed,
        "rss_mib": {"empty": rss_empty, "loaded": rss_loaded, "after_queries": rss_after_queries, "peak": peak.max(peak_after), "after_queries_split": split_after_queries},
        "store_bytes": store_bytes,
        "store_ratio": round(store_bytes as f64 / signed as f64, 2),
        "search_bytes": search_bytes,
        "search_ratio": round(search_bytes as f64 / signed as f64, 2),
        "query_idle": queries["query_idle"],
        "query_loaded": queries["query_loaded"],
        "check_s": round(check.0, 2),
        "check_clean": check.1,
        "backup": backup,
    }))
}

/// `accord backup` of the running node and `accord restore` of that file, each as its own
/// process under `/usr/bin/time`: peak RSS and seconds. Skipped (null) when the `accord`
/// binary is not beside this one or `/usr/bin/time` is missing.
async fn backup_and_restore(url: &str, dir: &std::path::Path) -> Value {
    let Some(accord) = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join("accord")))
        .filter(|p| p.exists())
    else {
        return Value::Null;
    };
    let file = dir.join("backup.cbor");
    let restored = dir.join("restored");
    let timed = |args: Vec<std::ffi::OsString>| {
        let accord = accord.clone();
        async move {
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("/usr/bin/time")
                    .arg("-f")
                    .arg("accord-time %M %e")
                    .arg(&accord)
                    .args(&args)
                    .output()
            })
            .await
            .ok()?
            .ok()?;
            let err = String::from_utf8_lossy(&out.stderr);
            let line = err.lines().find_map(|l| l.strip_prefix("accord-time "))?;
            let mut parts = line.split_whitespace();
            let kib: f64 = parts.next()?.parse().ok()?;
            let secs: f64 = parts.next()?.parse().ok()?;
            out.status
                .success()
                .then(|| json!({"rss_mib": round(kib / 1024.0, 1), "s": secs}))
        }
    };
    let backup = timed(vec![
        "backup".into(),
        "--node".into(),
        url.into(),
        "--out".into(),
        file.clone().into(),
    ])
    .await;
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let restore = timed(vec![
        "restore".into(),
        file.clone().into(),
        "--data-dir".into(),
        restored.clone().into(),
    ])
    .await;
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&restored);
    json!({"file_bytes": bytes, "backup": backup, "restore": restore})
}

/// Query latency on a node holding `n` records (member 0's records `0..n`): full-text and
/// filter queries idle, then while the node takes 1,000 single-record POSTs a second.
async fn query_phase(tf: &TestFed, node: &NodeHandle, url: &str, n: usize) -> Result<Value> {
    let text = |t: &str| accord_search::SearchQuery {
        text: Some(t.to_string()),
        limit: 20,
        ..Default::default()
    };
    let filter = |member: &str, lang: &str| accord_search::SearchQuery {
        members: vec![member.to_string()],
        langs: vec![lang.to_string()],
        limit: 20,
        ..Default::default()
    };
    let full_text = [
        text("цифровых услуг"),
        text("guidance digital services"),
        text("персональных данных граждан"),
        text("interoperability"),
    ];
    let filters = [filter("KZ", "ru"), filter("KZ", "en"), filter("BY", "ru")];
    let idle_text = query_times(node, &full_text, 50, Duration::ZERO).await;
    let idle_filter = query_times(node, &filters, 50, Duration::ZERO).await;
    // What a node holding `n` records takes once it has answered queries, before the load.
    let rss_after_idle_queries = rss_mib().0;
    let split_after_idle_queries = rss_split();
    // The same queries while the node takes 1,000 single-record POSTs a second.
    let load: Vec<Vec<u8>> = records_range(tf, n, n + 20_000);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loader = {
        let url = url.to_string();
        let stop = stop.clone();
        tokio::spawn(async move {
            let client = http();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut posted = 0usize;
            for r in load {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let client = client.clone();
                let url = url.to_string();
                tokio::spawn(async move { post(&client, &url, batch_body(&[r])).await });
                posted += 1;
            }
            posted
        })
    };
    // Let the load settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started_loaded = Instant::now();
    // Each for at least 8 s, so that the load is measured over many index commits.
    let loaded_text = query_times(node, &full_text, 25, Duration::from_secs(8)).await;
    let loaded_filter = query_times(node, &filters, 25, Duration::from_secs(8)).await;
    let loaded_secs = started_loaded.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let posted = loader.await?;
    Ok(json!({
        "query_idle": {"full_text": idle_text, "filter": idle_filter, "rss_mib_after": rss_after_idle_queries, "rss_split_after": split_after_idle_queries},
        "query_loaded": {"full_text": loaded_text, "filter": loaded_filter, "posts_per_s_target": 1000, "posted": posted, "measured_s": round(loaded_secs, 2)},
    }))
}

/// Queries on a data directory that `footprint --keep-data` left (no ingest first).
async fn query(data: std::path::PathBuf) -> Result<Value> {
    // The same seeded federation as `footprint`, so the kept store is this federation's.
    let tf = TestFed::new(&CODES[..2], 47)?;
    let mut cfg = bench_config(&tf, 0, vec![]);
    cfg.data_dir = data;
    let node = Node::spawn(cfg).await?;
    let url = serve(&node).await;
    let n = record_count(&node).await as usize;
    // The indexer counts every segment once at start (`Searcher::warm`); first runs are
    // measured once it has, so that they are what an analyst's first query of each kind costs
    // on a running node, not one racing the start.
    let visits = || async {
        metric(
            &node.metrics_text().await,
            "accord_search_cache_segment_visits_total",
        )
    };
    let started = Instant::now();
    let mut seen = visits().await;
    let mut still = 0;
    while still < 5 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = visits().await;
        still = if now == seen && now.unwrap_or(0.0) > 0.0 {
            still + 1
        } else {
            0
        };
        seen = now;
    }
    let (rss_open, _) = rss_mib();
    let mut result = query_phase(&tf, &node, &url, n).await?;
    node.shutdown().await;
    result["bench"] = json!("query");
    result["nodes"] = json!(1);
    result["records"] = json!(n);
    result["rss_mib_after_open"] = json!(rss_open);
    Ok(result)
}

async fn catchup(n: usize) -> Result<Value> {
    let tf = TestFed::new(&CODES[..3], 48)?;
    let recs = records(&tf, n);
    let missing_bytes: usize = recs.iter().map(Vec::len).sum();
    let all = start_cluster(&tf, 3).await?;
    let url = serve(&all[0]).await;
    warm_up(&tf, &all, &url).await?;
    let mut all = all.into_iter();
    let (a, b, c) = match (all.next(), all.next(), all.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => bail!("three nodes expected"),
    };
    b.shutdown().await;
    drop(b);
    post_all(&url, &recs, 512, 4).await?;
    // The records and the warm-up record.
    let with_warm_up = n as u64 + 1;
    for node in [&a, &c] {
        wait_for(
            "the two running nodes to hold every record",
            Duration::from_secs(600),
            Duration::from_millis(50),
            || async { record_count(node).await >= with_warm_up },
        )
        .await?;
    }
    // The catch-up starts from peers at rest: every record searchable on both, so that their
    // indexing of the setup does not share the machine with it.
    for node in [&a, &c] {
        wait_for(
            "the two running nodes to make every record searchable",
            Duration::from_secs(600),
            Duration::from_millis(50),
            || async { searchable(node).await as u64 >= with_warm_up },
        )
        .await?;
    }
    let addr = dial_addr(&a).await.context("no listen address")?;
    let cpu_before = cpu_seconds();
    let t = Instant::now();
    let b = spawn(&tf, 1, vec![addr]).await?;
    let spawned = t.elapsed();
    // When the first missing record was stored: what came before is starting, connecting,
    // admission and the first reconciliation rounds.
    let first_record = std::sync::Mutex::new(None);
    wait_for(
        "the restarted node to catch up",
        Duration::from_secs(600),
        Duration::from_millis(10),
        || async {
            let held = record_count(&b).await;
            let mut first = first_record.lock().unwrap_or_else(|e| e.into_inner());
            if first.is_none() && held > 1 {
                *first = Some(t.elapsed());
            }
            held >= with_warm_up
        },
    )
    .await?;
    let took = t.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    // Held is not yet searchable: the index may still be working through what was stored.
    wait_for(
        "the restarted node to make every record searchable",
        Duration::from_secs(600),
        Duration::from_millis(10),
        || async { searchable(&b).await as u64 >= with_warm_up },
    )
    .await?;
    let searchable_after = t.elapsed();
    let first_record = first_record
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(took);
    // Sessions may still be ending: their figures are read once none runs.
    wait_for(
        "the sessions to end",
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async { b.sync_stats().iter().all(|(_, s)| s.running.is_none()) },
    )
    .await?;
    let stats = b.sync_stats();
    // Every session's bytes (a peer's stats show its last session only).
    let text = b.metrics_text().await;
    let bytes_in = text
        .lines()
        .filter(|l| l.starts_with("accord_sync_bytes_total{") && l.contains("direction=\"in\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64;
    let fetched: Vec<u64> = stats.iter().map(|(_, s)| s.fetched_total).collect();
    for node in [&a, &b, &c] {
        node.shutdown().await;
    }
    Ok(json!({
        "bench": "catchup",
        "nodes": 3,
        "records": n,
        "caught_up_s": round(took.as_secs_f64(), 3),
        "searchable_s": round(searchable_after.as_secs_f64(), 3),
        "started_s": round(spawned.as_secs_f64(), 3),
        "first_record_s": round(first_record.as_secs_f64(), 3),
        "records_per_s": round(n as f64 / took.as_secs_f64(), 0),
        // CPU of all three nodes until the restarted one held every record, and the cores it
        // kept busy on average (the machine has two).
        "cpu_s": round(cpu, 2),
        "cores_busy": round(cpu / took.as_secs_f64(), 2),
        "missing_bytes": missing_bytes,
        "bytes_received": bytes_in,
        "received_ratio": round(bytes_in as f64 / missing_bytes as f64, 3),
        "fetched_per_peer": fetched,
        "duplicates": metric(&text, "accord_sync_duplicates_total"),
    }))
}

async fn ingest(n: usize, batch: usize, concurrency: usize, stream: StreamMode) -> Result<Value> {
    let tf = TestFed::new(&CODES[..2], 41)?;
    let recs = records(&tf, n);
    let bytes: usize = recs.iter().map(Vec::len).sum();
    let verify = verify_rate(&recs[..n.min(20_000)]);
    let verified_before = accord_core::keys::verifications();
    let cpu_before = cpu_seconds();
    let (node, url, stored, (searchable_after, seen)) =
        single_node_ingest_streamed(&tf, &recs, batch, concurrency, stream).await?;
    let cpu = cpu_seconds() - cpu_before;
    // What the stream received (outside the timing): every record, as an event or as missed.
    if let Some(seen) = &seen {
        let _ = wait_for(
            "the live stream to receive or be told of every record",
            Duration::from_secs(120),
            Duration::from_millis(20),
            || async { seen.records() + seen.missed() >= n as u64 },
        )
        .await;
    }
    let verified = accord_core::keys::verifications() - verified_before;
    let rate = n as f64 / searchable_after.as_secs_f64();
    let status = endpoint_cost(&url, "/v1/status", 50).await;
    let readyz = endpoint_cost(&url, "/readyz", 50).await;
    let metrics = endpoint_cost(&url, "/metrics", 50).await;
    let text = node.metrics_text().await;
    node.shutdown().await;
    Ok(json!({
        "bench": "ingest",
        "nodes": 1,
        "records": n,
        "signed_bytes": bytes,
        "batch": batch,
        "concurrency": concurrency,
        "stored_s": round(stored.as_secs_f64(), 3),
        "searchable_s": round(searchable_after.as_secs_f64(), 3),
        "records_per_s": round(rate, 0),
        "verify_strict_per_s_one_core": round(verify, 0),
        "share_of_verify_rate": round(rate / verify, 3),
        // CPU of the node and of the client posting to it (one process) until every record was
        // searchable, and the cores kept busy on average (the machine has two).
        "cpu_s": round(cpu, 2),
        "cores_busy": round(cpu / searchable_after.as_secs_f64(), 2),
        "verifications_per_record": round(verified as f64 / n as f64, 3),
        "stream": format!("{stream:?}").to_lowercase(),
        "stream_records": seen.as_ref().map(|s| s.records()),
        "stream_missed": seen.as_ref().map(|s| s.missed()),
        "commit_ms_mean": mean_ms(&text, "accord_store_commit_duration_seconds"),
        "searchable_lag_ms_mean": mean_ms(&text, "accord_search_visibility_lag_seconds"),
        "status": status,
        "readyz": readyz,
        "metrics": metrics,
    }))
}

async fn start_cluster(tf: &TestFed, nodes: usize) -> Result<Vec<NodeHandle>> {
    let first = spawn(tf, 0, vec![]).await?;
    let addr = dial_addr(&first).await.context("no listen address")?;
    let mut all = vec![first];
    for i in 1..nodes {
        all.push(spawn(tf, i, vec![addr.clone()]).await?);
    }
    // Every node admitted by at least one peer, and node 0 by everyone.
    for n in &all {
        let want = if std::ptr::eq(n, &all[0]) {
            nodes - 1
        } else {
            1
        };
        wait_for(
            "admission",
            Duration::from_secs(60),
            Duration::from_millis(50),
            || async {
                n.peers()
                    .await
                    .map(|p| p.iter().filter(|p| p.admitted).count() >= want)
                    .unwrap_or(false)
            },
        )
        .await?;
    }
    Ok(all)
}

static UNBOUNDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A file of `size` bytes that does not compress, with a word to search for in front.
fn bench_file(size: usize) -> Vec<u8> {
    let mut out = b"Annex of the methodology: quasarbench reference data.\n".to_vec();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

async fn attachments(nodes: usize, size_mb: usize, unbounded: bool) -> Result<Value> {
    UNBOUNDED.store(unbounded, std::sync::atomic::Ordering::Relaxed);
    let tf = TestFed::new(&CODES[..nodes], 91)?;
    let all = start_cluster(&tf, nodes).await?;
    let file = bench_file(size_mb << 20);
    let a = accord_core::attachment::describe("annex.txt", &file);
    let mut body = tf.fed.record_body(0, "Record with an annex", now());
    body.attachments = vec![a.clone()];
    let rec = accord_core::Object::Record(body).sign(&tf.fed.members[0].publisher);
    let t = Instant::now();
    all[0].put_blob(a.sha256, file).await?;
    let uploaded = t.elapsed();
    all[0].submit(vec![rec.as_bytes().to_vec()]).await?;
    let started = Instant::now();
    let mut held = Vec::new();
    for n in &all[1..] {
        wait_for(
            "the file on every node",
            Duration::from_secs(600),
            Duration::from_millis(20),
            || async { n.blob(a.sha256).await.is_some() },
        )
        .await?;
        held.push(started.elapsed().as_secs_f64());
    }
    let last = held.iter().copied().fold(0.0, f64::max);
    let q = accord_search::SearchQuery {
        text: Some("quasarbench".into()),
        limit: 1,
        ..Default::default()
    };
    for n in &all {
        wait_for(
            "the file's text to be searchable",
            Duration::from_secs(120),
            Duration::from_millis(20),
            || async { n.search(q.clone()).await.is_ok_and(|r| r.total == 1) },
        )
        .await?;
    }
    let searchable = started.elapsed().as_secs_f64();
    let mib = size_mb as f64;
    for n in &all {
        n.shutdown().await;
    }
    Ok(json!({
        "bench": "attachments",
        "nodes": nodes,
        "file_mib": size_mb,
        "bandwidth_bound": !unbounded,
        "upload_s": round(uploaded.as_secs_f64(), 3),
        "held_by_each_s": held.iter().map(|h| round(*h, 3)).collect::<Vec<_>>(),
        "held_by_all_s": round(last, 3),
        "mib_per_s_to_all": round(mib * (nodes - 1) as f64 / last.max(1e-9), 1),
        "searchable_everywhere_s": round(searchable, 3),
    }))
}

/// Posts one record to node 0 and waits until every node holds it (the gossip mesh works).
async fn warm_up(tf: &TestFed, all: &[NodeHandle], url: &str) -> Result<()> {
    let rec = record(tf, usize::MAX, Timestamp(now_ms() - 3_600_000));
    let id =
        SignedObject::decode_draft(&rec, usize::MAX, accord_core::Limits::default().scan())?.id();
    post(&http(), url, batch_body(&[rec])).await?;
    for n in all {
        wait_for(
            "the warm-up record on every node",
            Duration::from_secs(60),
            Duration::from_millis(20),
            || async { n.get(id).await.ok().flatten().is_some() },
        )
        .await?;
    }
    Ok(())
}

async fn cluster(nodes: usize, n: usize, batch: usize, concurrency: usize) -> Result<Value> {
    if !(2..=CODES.len()).contains(&nodes) {
        bail!("--nodes must be between 2 and {}", CODES.len());
    }
    let tf = TestFed::new(&CODES[..nodes], 43)?;
    let recs = records(&tf, n);
    // The single-node time with the same records, for the ratio.
    let single = {
        let solo = TestFed::new(&CODES[..nodes], 44)?;
        let recs = records(&solo, n);
        let (node, _, _, took) = single_node_ingest(&solo, &recs, batch, concurrency).await?;
        node.shutdown().await;
        took
    };
    let all = start_cluster(&tf, nodes).await?;
    let url = serve(&all[0]).await;
    warm_up(&tf, &all, &url).await?;
    let counters: Vec<_> = all.iter().map(count_accepted).collect();
    let verified_before = accord_core::keys::verifications();
    let t = Instant::now();
    post_all(&url, &recs, batch, concurrency).await?;
    let mut done_at = vec![Duration::ZERO; nodes];
    for (i, c) in counters.iter().enumerate() {
        wait_for(
            "every node to hold every record",
            Duration::from_secs(1800),
            Duration::from_millis(10),
            || async { c.load(std::sync::atomic::Ordering::Relaxed) >= n as u64 },
        )
        .await?;
        done_at[i] = t.elapsed();
    }
    let all_time = done_at.iter().max().copied().unwrap_or_default();
    let verified = accord_core::keys::verifications() - verified_before;
    let mut per_node = Vec::new();
    for (i, node) in all.iter().enumerate() {
        let text = node.metrics_text().await;
        let stats = node.sync_stats();
        let fetched: u64 = stats.iter().map(|(_, s)| s.fetched_total).sum();
        per_node.push(json!({
            "member": CODES[i],
            "done_s": round(done_at[i].as_secs_f64(), 3),
            "gossip_not_handed_over": metric(&text, "accord_gossip_events_not_handed_over_total"),
            "gossip_not_sent": metric(&text, "accord_gossip_messages_not_sent_total"),
            "silent_peer_resets": metric(&text, "accord_silent_peer_resets_total"),
            "gossip_accepted": metric(&text, "accord_gossip_messages_total"),
            "sync_fetched": fetched,
            "sync_duplicates": metric(&text, "accord_sync_duplicates_total"),
        }));
    }
    for node in &all {
        node.shutdown().await;
    }
    Ok(json!({
        "bench": "cluster",
        "nodes": nodes,
        "records": n,
        "single_node_s": round(single.as_secs_f64(), 3),
        "all_nodes_s": round(all_time.as_secs_f64(), 3),
        "ratio_to_single": round(all_time.as_secs_f64() / single.as_secs_f64(), 3),
        "records_per_s": round(n as f64 / all_time.as_secs_f64(), 0),
        // Every node of the run is in this process: the count is theirs together.
        "verifications_per_record_per_node": round(verified as f64 / (n as f64 * nodes as f64), 3),
        "per_node": per_node,
    }))
}

async fn latency(nodes: usize, rate: u32, seconds: u32) -> Result<Value> {
    if !(2..=CODES.len()).contains(&nodes) {
        bail!("--nodes must be between 2 and {}", CODES.len());
    }
    let tf = TestFed::new(&CODES[..nodes], 45)?;
    let total = (rate * seconds) as usize;
    let recs = records(&tf, total);
    let all = start_cluster(&tf, nodes).await?;
    let url = serve(&all[0]).await;
    warm_up(&tf, &all, &url).await?;
    let arrivals = record_arrivals(all.iter().enumerate());
    let ids: Vec<ObjectId> = recs
        .iter()
        .filter_map(|r| {
            SignedObject::decode_draft(r, usize::MAX, accord_core::Limits::default().scan()).ok()
        })
        .map(|s| s.id())
        .collect();
    let client = http();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut posts = tokio::task::JoinSet::new();
    let mut sent_at = Vec::with_capacity(total);
    for (i, r) in recs.into_iter().enumerate() {
        tick.tick().await;
        let client = client.clone();
        let url = url.clone();
        let t = Instant::now();
        sent_at.push(t);
        posts.spawn(async move {
            // A node that cannot take more connections answers 503 at once or drops the
            // connection (it sheds load): counted, and the record left out of the arrival times.
            let Ok(r) = client
                .post(format!("{url}/v1/objects"))
                .header("content-type", "application/cbor")
                .body(batch_body(&[r]))
                .send()
                .await
            else {
                return Ok((i, None));
            };
            match r.status() {
                s if s.is_success() => Ok::<_, anyhow::Error>((i, Some(t.elapsed()))),
                reqwest::StatusCode::SERVICE_UNAVAILABLE => Ok((i, None)),
                s => bail!("POST /v1/objects: {s} {}", r.text().await?),
            }
        });
    }
    let mut acks = Vec::with_capacity(total);
    let mut shed = std::collections::HashSet::new();
    while let Some(r) = posts.join_next().await {
        match r?? {
            (_, Some(t)) => acks.push(t),
            (i, None) => {
                shed.insert(i);
            }
        }
    }
    let ids: Vec<ObjectId> = ids
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !shed.contains(i))
        .map(|(_, id)| id)
        .collect();
    let sent_at: Vec<Instant> = sent_at
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !shed.contains(i))
        .map(|(_, t)| t)
        .collect();
    let full = |a: &Arrivals| {
        ids.iter()
            .all(|id| a.get(id).is_some_and(|v| v.len() >= nodes))
    };
    wait_for(
        "every record on every node",
        Duration::from_secs(120),
        Duration::from_millis(20),
        || {
            let done = arrivals.lock().map(|a| full(&a)).unwrap_or(false);
            async move { done }
        },
    )
    .await?;
    let mut farthest: Vec<Duration> = {
        let a = arrivals
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned lock"))?;
        ids.iter()
            .zip(&sent_at)
            .filter_map(|(id, sent)| {
                a.get(id)
                    .and_then(|v| v.iter().map(|(_, at)| at).max())
                    .map(|last| last.duration_since(*sent))
            })
            .collect()
    };
    farthest.sort();
    acks.sort();
    // The receiving node's own view: validation and durable commit, per object, and the
    // store's group commits (the rest of a POST's time is HTTP, the client and the hand-over
    // to gossip).
    let text = all[0].metrics_text().await;
    let receiver = json!({
        "ingest_ms_mean": mean_ms(&text, "accord_ingest_duration_seconds"),
        "commit_ms_mean": mean_ms(&text, "accord_store_commit_duration_seconds"),
    });
    for node in &all {
        node.shutdown().await;
    }
    Ok(json!({
        "bench": "latency",
        "receiver": receiver,
        "nodes": nodes,
        "rate_per_s": rate,
        "records": total,
        "shed": shed.len(),
        "post_ack_ms": {"p50": pct(&acks, 0.5), "p99": pct(&acks, 0.99), "max": pct(&acks, 1.0)},
        "farthest_node_ms": {"p50": pct(&farthest, 0.5), "p99": pct(&farthest, 0.99), "max": pct(&farthest, 1.0)},
    }))
}

fn print_table(v: &Value) {
    println!("| measure | value |\n|---|---|");
    fn walk(prefix: &str, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, x);
                }
            }
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), x);
                }
            }
            other => println!("| {prefix} | {other} |"),
        }
    }
    walk("", v);
}
