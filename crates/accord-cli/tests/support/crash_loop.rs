//! The crash loop, shared by the test (`tests/crash.rs`, 20 cycles) and the example program
//! (`examples/crash_loop.rs`, as many cycles as asked): a real `accord run` process takes
//! records over HTTP and is SIGKILLed at a random moment (seeded) of each cycle; after every
//! restart every acknowledged id must be there, and at the end `accord check` must be clean.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use accord_core::object::LangMap;
use accord_core::{Object, ObjectId, ObjectType, Record, SecretKey, SignedObject, Timestamp};

/// How long a node may take to come up.
const UP_DEADLINE: Duration = Duration::from_secs(60);
/// Records per HTTP request.
const BATCH: usize = 8;

/// What a crash loop did.
#[derive(Debug, Default)]
pub struct Report {
    pub cycles: usize,
    pub acknowledged: usize,
    pub check: String,
}

/// A small deterministic generator (xorshift), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn accord(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("ACCORD_") {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG");
    c
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http() -> (tokio::runtime::Runtime, reqwest::Client) {
    (
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("runtime: {e}")),
        {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
        }
        // Generous: a node just started on a loaded machine can take seconds to answer.
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|e| panic!("client: {e}")),
    )
}

fn start(bin: &Path, config: &Path, log: &Path) -> Proc {
    let dir = config.parent().unwrap_or(Path::new("."));
    let mut c = accord(bin, dir);
    c.arg("run")
        .arg("--config")
        .arg(config)
        // Ports the system gives at each start; `wait_up` reads the API's from the log. A
        // port picked by the test and released could be taken by another test's connection
        // before the node binds it (seen once in CI: "address in use").
        .env("ACCORD_API_LISTEN", "127.0.0.1:0")
        .env("ACCORD_NETWORK_LISTEN", "/ip4/127.0.0.1/tcp/0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display())));
    Proc(
        c.spawn()
            .unwrap_or_else(|e| panic!("spawn accord run: {e}")),
    )
}

/// Every id the node holds, from its export.
fn stored_ids(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    api: &str,
) -> Option<BTreeSet<ObjectId>> {
    let bytes = rt.block_on(async {
        let r = client.get(format!("{api}/v1/export")).send().await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.bytes().await.ok()
    })?;
    let scan = accord_core::Limits::default().scan();
    let items = accord_core::cbor::split_sequence(&bytes, scan).ok()?;
    Some(
        items
            .iter()
            .filter_map(|b| SignedObject::decode_draft(b, usize::MAX, scan).ok())
            .map(|s| s.id())
            .collect(),
    )
}

/// [`stored_ids`], asked again until [`UP_DEADLINE`] passes (a request can time out on a
/// loaded machine).
fn export(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    api: &str,
) -> Option<BTreeSet<ObjectId>> {
    let end = Instant::now() + UP_DEADLINE;
    loop {
        let ids = stored_ids(rt, client, api);
        if ids.is_some() || Instant::now() >= end {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The API's address as the node printed it at start ("API on http://127.0.0.1:PORT;").
fn api_in_log(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    let rest = &text[text.find("API on ")? + "API on ".len()..];
    Some(rest[..rest.find(';')?].to_string())
}

/// Waits until the node answers, and returns its API's base address.
fn wait_up(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    node: &mut Proc,
    log: &Path,
) -> String {
    let end = Instant::now() + UP_DEADLINE;
    loop {
        if let Ok(Some(st)) = node.0.try_wait() {
            panic!(
                "the node exited ({st}) before answering; log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        let Some(api) = api_in_log(log) else {
            assert!(
                Instant::now() < end,
                "the node did not print its API address within {UP_DEADLINE:?}; log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let up = rt.block_on(async {
            client
                .get(format!("{api}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        });
        if up {
            return api;
        }
        assert!(
            Instant::now() < end,
            "the node did not answer within {UP_DEADLINE:?}; log:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `cycles` kill-and-restart cycles of the `accord` binary `bin` in `dir`.
pub fn crash_loop(bin: &Path, dir: &Path, cycles: usize, seed: u64) -> Report {
    let (rt, client) = http();
    let out = accord(bin, dir)
        // The devnet's ports are not used: `start` gives the node port 0.
        .args([
            "devnet",
            "--members",
            "KZ",
            "--out",
            "dev",
            "--base-port",
            "40000",
        ])
        .output()
        .unwrap_or_else(|e| panic!("accord devnet: {e}"));
    assert!(
        out.status.success(),
        "accord devnet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fed = dir.join("dev");
    let config = fed.join("KZ/node.toml");
    let key = Arc::new(
        SecretKey::from_pem(&fs::read_to_string(fed.join("KZ/publisher.key")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("publisher key: {e}")),
    );
    let charter = fs::read(fed.join("charter.cbor")).unwrap_or_default();
    let federation =
        SignedObject::decode_draft(&charter, usize::MAX, accord_core::Limits::default().scan())
            .unwrap_or_else(|e| panic!("charter: {e}"))
            .id();
    let counter = Arc::new(AtomicUsize::new(0));
    let record = {
        let counter = counter.clone();
        move || -> Vec<u8> {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let en = |s: String| LangMap::from([("en".to_string(), s)]);
            Object::Record(Record {
                object_type: ObjectType::Record,
                federation,
                created: Timestamp(now),
                member: "KZ".parse().unwrap_or_else(|e| panic!("{e:?}")),
                kind: "regulatory-note".into(),
                directions: vec!["regulation".into()],
                lang: "en".into(),
                title: en(format!("Crash loop record {n}")),
                summary: LangMap::new(),
                body: en(format!(
                    "Body of crash loop record {n}, written while the node may die."
                )),
                tags: vec![],
                references: vec![],
                supersedes: None,
                links: vec![],
                attachments: vec![],
                effective_from: None,
                effective_until: None,
                date: None,
            })
            .sign(&key)
            .into_bytes()
        }
    };
    let mut rng = Rng(seed | 1);
    let mut acked_all: BTreeSet<ObjectId> = BTreeSet::new();
    let mut report = Report::default();
    for cycle in 0..cycles {
        let log = dir.join(format!("run-{cycle}.log"));
        let mut node = start(bin, &config, &log);
        let api = wait_up(&rt, &client, &mut node, &log);
        // Every id acknowledged so far is there after the restart.
        let held = export(&rt, &client, &api).unwrap_or_else(|| panic!("cycle {cycle}: no export"));
        let lost: Vec<&ObjectId> = acked_all.difference(&held).collect();
        assert!(
            lost.is_empty(),
            "cycle {cycle} (seed {seed}): {} of {} acknowledged objects lost, e.g. {:?}",
            lost.len(),
            acked_all.len(),
            lost.first()
        );
        // A submitter posts batches until told to stop or the node dies.
        let acked = Arc::new(Mutex::new(Vec::<ObjectId>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let submitter = {
            let (acked, stop, api, record) =
                (acked.clone(), stop.clone(), api.clone(), record.clone());
            std::thread::spawn(move || {
                let (rt, client) = http();
                while !stop.load(Ordering::SeqCst) {
                    let mut body = vec![0x80 | BATCH as u8];
                    for _ in 0..BATCH {
                        body.extend(record());
                    }
                    let r = rt.block_on(async {
                        let resp = client
                            .post(format!("{api}/v1/objects"))
                            .header("content-type", "application/cbor")
                            .body(body)
                            .send()
                            .await?;
                        resp.json::<serde_json::Value>().await
                    });
                    // A failed batch was not acknowledged; the node may be dying or slow: try
                    // again until told to stop.
                    let Ok(v) = r else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    for res in v["results"].as_array().into_iter().flatten() {
                        if res["status"] == "accepted"
                            && let Some(id) = res["id"].as_str().and_then(|s| s.parse().ok())
                        {
                            acked.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                        }
                    }
                }
            })
        };
        // Let it ingest for a random while, then kill it without warning.
        let first_ack = Instant::now() + UP_DEADLINE;
        while acked.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
            && Instant::now() < first_ack
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.next() % 400));
        let _ = node.0.kill(); // SIGKILL
        let _ = node.0.wait();
        stop.store(true, Ordering::SeqCst);
        let _ = submitter.join();
        let got = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(
            !got.is_empty(),
            "cycle {cycle}: nothing was acknowledged; log:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        acked_all.extend(got);
        report.cycles += 1;
    }
    // A last start: everything acknowledged is there, then a clean stop and a clean check.
    let log = dir.join("final.log");
    let mut node = start(bin, &config, &log);
    let api = wait_up(&rt, &client, &mut node, &log);
    let held = export(&rt, &client, &api).unwrap_or_default();
    let lost = acked_all.difference(&held).count();
    assert_eq!(
        lost,
        0,
        "after the last cycle {lost} of {} acknowledged objects are lost",
        acked_all.len()
    );
    let _ = Command::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status();
    let _ = node.0.wait();
    let out = accord(bin, dir)
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap_or_else(|e| panic!("accord check: {e}"));
    let check = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && check.contains("store is consistent"),
        "accord check after the crash loop is not clean:\n{check}"
    );
    report.acknowledged = acked_all.len();
    report.check = check;
    report
}

/// The path of the `accord` binary next to the running example (target/<profile>/accord).
#[allow(dead_code)] // the example's, not the test's
pub fn sibling_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("accord")))
        .unwrap_or_else(|| PathBuf::from("accord"))
}
