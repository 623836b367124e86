//! End-to-end tests of running nodes: the built `accord` binary is started as real processes
//! (`accord devnet` then `accord run`) on free loopback ports in temporary directories, and
//! driven through its CLI and HTTP API. Every child process is killed by a guard when a test
//! ends, whatever happens; every wait is a polling loop with a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a node may take to come up, peer, converge or stop.
const DEADLINE: Duration = Duration::from_secs(30);
/// Interval of every polling loop.
const POLL: Duration = Duration::from_millis(100);

const CBOR: &str = "application/cbor";

// ---------------------------------------------------------------------------------------------
// Processes

/// `accord` with a working directory and without any `ACCORD_*` or `MIMALLOC_*` variable of the
/// caller's environment (so that a developer's shell cannot change what the tests run).
fn accord(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_accord"));
    c.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("ACCORD_") || k.starts_with("MIMALLOC_") {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG");
    c
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a short command to completion (killed and failed after `DEADLINE`).
fn run(mut cmd: Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    let mut child = Proc(cmd.spawn().unwrap());
    let status = child.wait_deadline(DEADLINE).unwrap_or_else(|| {
        panic!(
            "{cmd:?} still running after {DEADLINE:?}; stderr:\n{}",
            fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    Output {
        status,
        stdout: fs::read(&out_path).unwrap(),
        stderr: fs::read(&err_path).unwrap(),
    }
}

fn run_ok(cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let out = run(cmd);
    assert!(out.status.success(), "{what} failed: {}", describe(&out));
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the process to exit, up to `limit`.
    fn wait_deadline(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn sigterm(pid: u32) {
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -TERM {pid}: {st}");
}

// ---------------------------------------------------------------------------------------------
// Ports

/// Base ports handed out in this test process, so that parallel tests never share one.
static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A base port `b` in 20000..32000 such that `b..b+6` are all free on 127.0.0.1 now.
fn free_base_port() -> u16 {
    const N: u16 = 6;
    for _ in 0..1000 {
        // Below Linux's ephemeral range (32768 up, by default): a port found free here could
        // otherwise be given by the system to another test's connection before the node binds
        // it.
        let base = 20_000 + (random_u64() % 12_000) as u16;
        let mut taken = TAKEN.lock().unwrap();
        if taken.iter().any(|t| t.abs_diff(base) < N) {
            continue;
        }
        let ok = (0..N).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if ok {
            taken.push(base);
            return base;
        }
    }
    panic!("no 6 consecutive free ports found in 20000..32006");
}

// ---------------------------------------------------------------------------------------------
// HTTP (async reqwest on a small runtime of the test's own)

struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Http {
        Http {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: {
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder()
            }
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        }
    }

    /// GET; `Err` when the node cannot be reached.
    fn get(&self, url: &str, accept: Option<&str>) -> Result<(u16, Vec<u8>), String> {
        self.rt.block_on(async {
            let mut req = self.client.get(url);
            if let Some(a) = accept {
                req = req.header("accept", a);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(|e| e.to_string())?;
            Ok((status, body.to_vec()))
        })
    }

    fn status(&self, api: &str) -> Result<Value, String> {
        let (code, body) = self.get(&format!("{api}/v1/status"), None)?;
        if code != 200 {
            return Err(format!("status {code}"));
        }
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }
}

fn record_count(status: &Value) -> u64 {
    status["counts"]["record"].as_u64().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// A running `accord run`, killed when dropped; its stderr goes to a log file.
struct Node {
    proc: Proc,
    api: String,
    log: PathBuf,
}

impl Node {
    fn start(config: &Path, api_port: u16, log: &Path) -> Node {
        Node::start_with_env(config, api_port, log, &[])
    }

    fn start_with_env(config: &Path, api_port: u16, log: &Path, env: &[(&str, &str)]) -> Node {
        let dir = config.parent().unwrap();
        let mut cmd = accord(dir);
        cmd.envs(env.iter().copied());
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(File::create(log.with_extension("out")).unwrap())
            .stderr(File::create(log).unwrap());
        Node {
            proc: Proc(cmd.spawn().unwrap()),
            api: format!("http://127.0.0.1:{api_port}"),
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/v1/status` until `ok` holds for it; fails if the node exits or the deadline
    /// passes.
    fn wait_status(&mut self, http: &Http, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.proc.exited() {
                panic!(
                    "node {} exited ({st}) while waiting for {what}; log:\n{}",
                    self.api,
                    self.log()
                );
            }
            let last = match http.status(&self.api) {
                Ok(s) if ok(&s) => return s,
                Ok(s) => s.to_string(),
                Err(e) => e,
            };
            if Instant::now() >= end {
                panic!(
                    "node {}: no {what} within {DEADLINE:?}; last status: {last}\nlog:\n{}",
                    self.api,
                    self.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    fn wait_up(&mut self, http: &Http) -> Value {
        self.wait_status(http, "answer on /v1/status", |_| true)
    }

    /// SIGTERM, then waits for the exit; returns the status and the log.
    fn stop(&mut self) -> (ExitStatus, String) {
        sigterm(self.proc.pid());
        let st = self.proc.wait_deadline(DEADLINE).unwrap_or_else(|| {
            panic!(
                "node {} did not exit within {DEADLINE:?} of SIGTERM; log:\n{}",
                self.api,
                self.log()
            )
        });
        (st, self.log())
    }
}

/// `accord devnet` into `dir/dev` with the given members; returns the federation directory.
fn devnet(dir: &Path, members: &str, base: u16) -> PathBuf {
    let mut c = accord(dir);
    c.args([
        "devnet",
        "--members",
        members,
        "--out",
        "dev",
        "--base-port",
    ])
    .arg(base.to_string());
    run_ok(c);
    dir.join("dev")
}

fn records_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/records"
    ))
}

/// The sample record whose file name starts with `prefix`, checking its member.
fn sample(prefix: &str, member: &str) -> PathBuf {
    let p = fs::read_dir(records_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".md"))
        })
        .min()
        .unwrap_or_else(|| panic!("no configs/records/{prefix}*.md"));
    let text = fs::read_to_string(&p).unwrap();
    assert!(
        text.lines()
            .any(|l| l.trim() == format!("member: {member}")),
        "{} is not a record of {member}",
        p.display()
    );
    p
}

/// Copies of a sample record with the top-level title changed to `<title> #i`, written into
/// `out`, for i in `range`.
fn record_copies(sample: &Path, out: &Path, range: std::ops::Range<usize>) -> Vec<PathBuf> {
    let text = fs::read_to_string(sample).unwrap();
    assert!(text.lines().any(|l| l.starts_with("title:")));
    fs::create_dir_all(out).unwrap();
    range
        .map(|i| {
            let mut body = String::with_capacity(text.len() + 32);
            for l in text.lines() {
                if l.starts_with("title:") {
                    body.push_str(&format!("title: \"Test record #{i}\""));
                } else {
                    body.push_str(l);
                }
                body.push('\n');
            }
            let p = out.join(format!("rec-{i:04}.md"));
            fs::write(&p, body).unwrap();
            p
        })
        .collect()
}

/// Signs each Markdown file with `key` (`accord sign`, a few processes at a time); returns
/// (object file, id) in order.
fn sign_all(dir: &Path, fed: &Path, key: &Path, inputs: &[PathBuf]) -> Vec<(PathBuf, String)> {
    const AT_ONCE: usize = 8;
    let mut out = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(AT_ONCE) {
        let mut running = Vec::new();
        for input in chunk {
            let obj = input.with_extension("cbor");
            let mut c = accord(dir);
            c.arg("sign")
                .arg(input)
                .arg("--key")
                .arg(key)
                .arg("--charter")
                .arg(fed.join("charter.cbor"))
                .arg("--out")
                .arg(&obj)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            running.push((obj, c.spawn().unwrap()));
        }
        for (obj, child) in running {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "accord sign: {}", describe(&o));
            let id = stdout(&o).trim().to_string();
            assert_eq!(id.len(), 64, "accord sign printed {id:?}");
            out.push((obj, id));
        }
    }
    out
}

/// The id printed by `accord publish`/`submit` as `accepted <id>`.
fn accepted_id(out: &Output) -> String {
    let text = stdout(out);
    let mut words = text.split_whitespace();
    assert_eq!(words.next(), Some("accepted"), "{}", describe(out));
    let id = words.next().unwrap().to_string();
    assert_eq!(id.len(), 64, "{}", describe(out));
    id
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn three_processes_publish_and_status() {
    let t = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let fed = devnet(t.path(), "KZ,BY,AM", base);
    let http = Http::new();
    // AM's operator chose their own purge delay, BY's too under mimalloc's former name and in
    // lower case (mimalloc reads both); KZ runs as from a shell, with nothing set.
    let mut nodes: Vec<Node> = ["KZ", "BY", "AM"]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let env: &[(&str, &str)] = match *m {
                "AM" => &[("MIMALLOC_PURGE_DELAY", "10")],
                "BY" => &[("mimalloc_reset_delay", "5")],
                _ => &[],
            };
            Node::start_with_env(
                &fed.join(m).join("node.toml"),
                base + 2 * i as u16 + 1,
                &t.path().join(format!("{m}.log")),
                env,
            )
        })
        .collect();
    let started = Instant::now();
    for n in &mut nodes {
        n.wait_status(&http, "2 admitted peers", |s| {
            s["peers_admitted"].as_u64().unwrap_or(0) >= 2
        });
    }
    eprintln!("three nodes admitted each other in {:?}", started.elapsed());

    // Each process started itself again with the allocator's settings it lacked (same process
    // id), keeping the one AM's operator set; mimalloc then turned transparent huge pages off
    // for the process, and the start line says what the node runs with.
    let settings = [
        ("MIMALLOC_PURGE_DELAY=0", "0"),
        ("mimalloc_reset_delay=5", "5"),
        ("MIMALLOC_PURGE_DELAY=10", "10"),
    ];
    for (n, (purge_var, purge)) in nodes.iter().zip(settings) {
        let pid = n.proc.pid();
        let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
        let vars: Vec<String> = environ
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|v| v.to_ascii_uppercase().starts_with("MIMALLOC_"))
            .collect();
        let mut expected = vec![purge_var.to_owned(), "MIMALLOC_ALLOW_THP=0".to_owned()];
        let mut got = vars.clone();
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{}: the process's allocator settings", n.api);
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        if let Some(thp) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
            assert_eq!(
                thp.split_whitespace().nth(1),
                Some("0"),
                "{}: transparent huge pages still allowed for the process",
                n.api
            );
        }
        let started_line = n
            .log()
            .lines()
            .find(|l| l.contains("node started"))
            .map(str::to_owned)
            .unwrap_or_default();
        assert!(
            started_line.contains(&format!(
                "allocator=MIMALLOC_PURGE_DELAY={purge} MIMALLOC_ALLOW_THP=0"
            )),
            "{}: the start line does not give the allocator's settings: {started_line}",
            n.api
        );
    }
    let (kz, by, am) = (&nodes[0].api, &nodes[1].api, &nodes[2].api);

    let mut c = accord(t.path());
    c.arg("publish")
        .arg(sample("02-", "BY"))
        .arg("--key")
        .arg(fed.join("BY/publisher.key"))
        .args(["--node", by]);
    let id = accepted_id(&run_ok(c));
    let published = Instant::now();

    // The other members' nodes get it (gossip, or reconciliation).
    for api in [kz, am] {
        let end = Instant::now() + DEADLINE;
        loop {
            let mut c = accord(t.path());
            c.args(["status", "--node", api]);
            let out = run_ok(c);
            let text = stdout(&out);
            // `objects     delegation 3, node 3, record 1`
            let has = text.lines().any(|l| {
                l.strip_prefix("objects")
                    .is_some_and(|rest| rest.split(',').any(|p| p.trim() == "record 1"))
            });
            if has {
                break;
            }
            assert!(
                Instant::now() < end,
                "{api} never showed `record 1`; last status:\n{text}\nlogs:\n{}\n{}\n{}",
                nodes[0].log(),
                nodes[1].log(),
                nodes[2].log()
            );
            std::thread::sleep(POLL);
        }
        eprintln!(
            "{api} has the record {:?} after publishing",
            published.elapsed()
        );
    }

    let (code_by, bytes_by) = http
        .get(&format!("{by}/v1/objects/{id}"), Some(CBOR))
        .unwrap();
    let (code_kz, bytes_kz) = http
        .get(&format!("{kz}/v1/objects/{id}"), Some(CBOR))
        .unwrap();
    assert_eq!((code_by, code_kz), (200, 200));
    assert!(!bytes_by.is_empty());
    assert_eq!(
        bytes_kz, bytes_by,
        "KZ and BY serve different bytes for {id}"
    );
    let unknown = "0".repeat(64);
    let (code, _) = http
        .get(&format!("{kz}/v1/objects/{unknown}"), Some(CBOR))
        .unwrap();
    assert_eq!(code, 404);
}

#[test]
fn restart_keeps_every_object() {
    let t = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let fed = devnet(t.path(), "KZ", base);
    let config = fed.join("KZ/node.toml");
    let http = Http::new();
    let mut node = Node::start(&config, base + 1, &t.path().join("run1.log"));
    node.wait_up(&http);

    let mds = record_copies(&sample("01-", "KZ"), &t.path().join("records"), 0..20);
    let signed = sign_all(t.path(), &fed, &fed.join("KZ/publisher.key"), &mds);
    let mut c = accord(t.path());
    c.arg("submit")
        .args(signed.iter().map(|(p, _)| p))
        .args(["--node", &node.api]);
    let out = run_ok(c);
    let text = stdout(&out);
    for (_, id) in &signed {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().eq(["accepted", id.as_str()])),
            "{id} not accepted: {text}"
        );
    }
    node.wait_status(&http, "20 records", |s| record_count(s) == 20);

    let (st, log) = node.stop();
    assert!(st.success(), "node exited with {st}; log:\n{log}");
    assert!(log.contains("stopped"), "no `stopped` in the log:\n{log}");
    drop(node);

    let mut node = Node::start(&config, base + 1, &t.path().join("run2.log"));
    let s = node.wait_up(&http);
    assert_eq!(record_count(&s), 20, "after restart: {s}");
    for (file, id) in &signed {
        let (code, bytes) = http
            .get(&format!("{}/v1/objects/{id}", node.api), Some(CBOR))
            .unwrap();
        assert_eq!(code, 200, "{id} missing after restart");
        assert_eq!(bytes, fs::read(file).unwrap(), "{id} changed after restart");
    }
}

/// A stop that waits (here for a request whose body never comes, which the API lets finish for
/// its grace) ends at once on a second signal, saying so, and the next start has everything.
#[test]
fn a_second_signal_ends_a_waiting_stop_at_once() {
    use std::io::Write;
    let t = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let fed = devnet(t.path(), "KZ", base);
    let config = fed.join("KZ/node.toml");
    let http = Http::new();
    let mut node = Node::start(&config, base + 1, &t.path().join("run1.log"));
    node.wait_up(&http);
    // A submission whose body never arrives: the stop waits for it.
    let mut held = std::net::TcpStream::connect(("127.0.0.1", base + 1)).unwrap();
    held.write_all(
        b"POST /v1/objects HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/cbor\r\ncontent-length: 1000\r\n\r\n",
    )
    .unwrap();
    sigterm(node.proc.pid());
    let end = Instant::now() + DEADLINE;
    while !node.log().contains("stopping") {
        assert!(
            Instant::now() < end,
            "no `stopping` in the log:\n{}",
            node.log()
        );
        std::thread::sleep(POLL);
    }
    assert!(
        node.proc.exited().is_none(),
        "the stop did not wait:\n{}",
        node.log()
    );
    sigterm(node.proc.pid());
    let st = node
        .proc
        .wait_deadline(DEADLINE)
        .expect("no exit after the second signal");
    assert_eq!(st.code(), Some(130), "{}", node.log());
    assert!(node.log().contains("stopped at once"), "{}", node.log());
    drop(held);
    drop(node);
    let mut node = Node::start(&config, base + 1, &t.path().join("run2.log"));
    node.wait_up(&http);
    let (st, log) = node.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn sigterm_during_ingest_loses_no_acknowledged_object() {
    const RECORDS: usize = 300;
    const ACKED_BEFORE_TERM: usize = 50;
    let t = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let fed = devnet(t.path(), "KZ", base);
    let config = fed.join("KZ/node.toml");
    let http = Http::new();
    let mut node = Node::start(&config, base + 1, &t.path().join("run1.log"));

    let mds = record_copies(&sample("04-", "KZ"), &t.path().join("records"), 0..RECORDS);
    let objects: Vec<Vec<u8>> = sign_all(t.path(), &fed, &fed.join("KZ/publisher.key"), &mds)
        .into_iter()
        .map(|(p, _)| fs::read(p).unwrap())
        .collect();
    node.wait_up(&http);

    // The submitter: one object per request, until the node stops answering.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let submitter = {
        let (acked, count, api) = (acked.clone(), count.clone(), node.api.clone());
        std::thread::spawn(move || -> (usize, String) {
            let http = Http::new();
            let url = format!("{api}/v1/objects");
            for (i, obj) in objects.into_iter().enumerate() {
                let r = http.rt.block_on(async {
                    let resp = http
                        .client
                        .post(&url)
                        .header("content-type", CBOR)
                        .body(obj)
                        .send()
                        .await?;
                    let code = resp.status().as_u16();
                    let body = resp.bytes().await?;
                    Ok::<_, reqwest::Error>((code, body))
                });
                match r {
                    Err(e) => return (i, format!("stopped at object {i}: {e}")),
                    Ok((200, body)) => {
                        let v: Value = serde_json::from_slice(&body).unwrap();
                        for res in v["results"].as_array().unwrap() {
                            if res["status"] == "accepted" {
                                acked
                                    .lock()
                                    .unwrap()
                                    .push(res["id"].as_str().unwrap().to_string());
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                    // Refused while stopping (e.g. 503): not acknowledged, keep going.
                    Ok(_) => {}
                }
            }
            (RECORDS, "submitted everything".to_string())
        })
    };

    let end = Instant::now() + DEADLINE;
    while count.load(Ordering::SeqCst) < ACKED_BEFORE_TERM {
        assert!(
            !submitter.is_finished(),
            "the submitter ended before {ACKED_BEFORE_TERM} acknowledgements; log:\n{}",
            node.log()
        );
        assert!(
            Instant::now() < end,
            "fewer than {ACKED_BEFORE_TERM} acknowledgements in {DEADLINE:?}; log:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (st, log) = node.stop();
    let (sent, how) = submitter.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{} acknowledged, {sent} sent; submitter: {how}; node exit {st}",
        acked.len()
    );
    assert!(st.success(), "node exited with {st}; log:\n{log}");
    assert!(acked.len() >= ACKED_BEFORE_TERM);
    drop(node);

    let mut node = Node::start(&config, base + 1, &t.path().join("run2.log"));
    let s = node.wait_up(&http);
    let mut missing = Vec::new();
    for id in &acked {
        let (code, _) = http
            .get(&format!("{}/v1/objects/{id}", node.api), Some(CBOR))
            .unwrap();
        if code != 200 {
            missing.push((id.clone(), code));
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged objects lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    assert!(
        record_count(&s) >= acked.len() as u64,
        "status counts {} records, {} were acknowledged",
        record_count(&s),
        acked.len()
    );
}

#[test]
fn bad_config_is_one_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let fed = devnet(t.path(), "KZ", base);
    let good = fed.join("KZ/node.toml");
    let text = fs::read_to_string(&good).unwrap();

    let check = |config: &Path, env: Option<(&str, &str)>, needle: &str| {
        let mut c = accord(t.path());
        c.arg("run").arg("--config").arg(config);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = run(c);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "started anyway: {}", describe(&out));
        assert!(
            err.contains(needle),
            "stderr does not mention {needle:?}: {err}"
        );
        let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "not one error line: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };

    // An unknown field (top level, before any table).
    let unknown = fed.join("KZ/unknown-field.toml");
    fs::write(&unknown, format!("colour = \"blue\"\n{text}")).unwrap();
    check(&unknown, None, "colour");

    // The API port is taken.
    let holder = TcpListener::bind(("127.0.0.1", base + 1)).unwrap();
    check(&good, None, "api.listen");
    drop(holder);

    // An environment override with a bad value.
    check(
        &good,
        Some(("ACCORD_NETWORK_ADMISSION", "everyone")),
        "admission",
    );
}

#[test]
fn submit_reports_each_verdict() {
    let t = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let fed = devnet(t.path(), "KZ", base);
    let http = Http::new();
    let mut node = Node::start(
        &fed.join("KZ/node.toml"),
        base + 1,
        &t.path().join("run.log"),
    );

    let mds = record_copies(&sample("08-", "KZ"), &t.path().join("records"), 0..2);
    let signed = sign_all(t.path(), &fed, &fed.join("KZ/publisher.key"), &mds);
    let (valid, valid_id) = &signed[0];
    // A byte of the signature (the envelope's last bytes) flipped, on a record the node has
    // not seen: a stored id would be reported as a duplicate before any signature check.
    let mut bad = fs::read(&signed[1].0).unwrap();
    *bad.last_mut().unwrap() ^= 0x01;
    let bad_file = t.path().join("bad-signature.cbor");
    fs::write(&bad_file, &bad).unwrap();
    // A key without any delegation.
    let mut c = accord(t.path());
    c.args(["key", "new", "--out", "stranger.key"]);
    run_ok(c);
    let stranger = record_copies(&sample("01-", "KZ"), &t.path().join("stranger"), 7..8);
    let pending = sign_all(t.path(), &fed, &t.path().join("stranger.key"), &stranger);
    node.wait_up(&http);

    let submit = |file: &Path| {
        let mut c = accord(t.path());
        c.arg("submit").arg(file).args(["--node", &node.api]);
        run(c)
    };

    let out = submit(valid);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(&accepted_id(&out), valid_id);

    let out = submit(valid);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out)
            .split_whitespace()
            .eq(["duplicate", valid_id.as_str()]),
        "{}",
        describe(&out)
    );

    let out = submit(&bad_file);
    assert!(!out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.starts_with("rejected"), "{}", describe(&out));
    assert!(
        text.contains("[signature-invalid] invalid signature"),
        "{}",
        describe(&out)
    );

    let out = submit(&pending[0].0);
    assert!(!out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.starts_with("pending"), "{}", describe(&out));
    assert!(text.contains(&pending[0].1), "{}", describe(&out));
    assert!(text.contains("[awaiting-"), "{}", describe(&out));

    let s = node.wait_up(&http);
    assert_eq!(record_count(&s), 1, "{s}");
    assert_eq!(s["pending"].as_u64(), Some(1), "{s}");
}
