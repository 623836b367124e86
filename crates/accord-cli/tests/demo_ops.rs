//! `accord demo` end to end, and backup → restore → check on a real node process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` consecutive free ports at or above `from` (and below 32,000), for `accord demo --port`
/// and `devnet`, which take a first port. The search starts at an offset taken from the
/// process id, so that two test runs on one machine do not both pick the first free block.
/// The ports stay below Linux's ephemeral range (32768 up): a port found free there could be
/// given by the system to another test's outgoing connection before the node binds it.
fn free_ports(n: u16, from: u16) -> u16 {
    let span = 32_000 - from;
    let offset = (std::process::id() % 190) as u16 * 41;
    for k in 0..195u16 {
        let start = from + (offset + k * 41) % span;
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", start + i)).is_ok()) {
            return start;
        }
    }
    panic!("no free ports");
}

fn get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-f", "--max-time", "5", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node started with `accord run` on ports the system chose: the test learns its API
/// address from the node itself, so another process on this machine (a second test run, say)
/// can never be mistaken for it. Its standard error is kept in a file and shown when a wait on
/// it times out.
struct RunningNode {
    child: Kill,
    api: String,
    log: std::path::PathBuf,
}

impl RunningNode {
    /// Runs `accord run --config CONFIG` in `d` with the API and the peer port on port 0.
    fn start(d: &std::path::Path, config: &str, name: &str) -> RunningNode {
        let log = d.join(format!("{name}.log"));
        let child = accord()
            .current_dir(d)
            .args(["run", "--config", config])
            .env("ACCORD_API_LISTEN", "127.0.0.1:0")
            .env("ACCORD_NETWORK_LISTEN", "/ip4/127.0.0.1/tcp/0")
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        let mut node = RunningNode {
            child: Kill(child),
            api: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = node.log_text();
            if let Some(url) = text
                .split("API on ")
                .nth(1)
                // Only once the whole address is written (the line ends with "; Ctrl-C …").
                .and_then(|rest| rest.find(';').map(|end| &rest[..end]))
            {
                node.api = url.trim().to_string();
                return node;
            }
            if let Ok(Some(status)) = node.child.0.try_wait() {
                panic!("{name} stopped ({status}) before serving its API:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not serve its API in time:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The peer-to-peer address the node listens on, with its peer id: what another
    /// member's node is given as `--bootstrap`.
    fn peer_address(&self, peer_id: &str) -> String {
        let status = get(&format!("{}/v1/status", self.api)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&status).unwrap();
        let listen = v["listen"][0].as_str().unwrap();
        format!("{listen}/p2p/{peer_id}")
    }

    /// Waits until `f` holds, or fails showing the logs of `nodes`.
    fn wait_for(
        nodes: &[&RunningNode],
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !f() {
            if Instant::now() >= deadline {
                for n in nodes {
                    eprintln!("==== {}\n{}", n.log.display(), n.log_text());
                }
                panic!("timed out waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn accord() -> Command {
    Command::new(env!("CARGO_BIN_EXE_accord"))
}

#[test]
fn demo_serves_three_nodes_with_the_samples_and_stops_on_sigint() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_ports(3, 22000);
    let child = accord()
        .args(["demo", "--port", &port.to_string(), "--data"])
        .arg(tmp.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut demo = Kill(child);
    for i in 0..3 {
        let url = format!("http://127.0.0.1:{}/v1/status", port + i);
        wait_for(&url, Duration::from_secs(60), || get(&url).is_some());
    }
    let started = Instant::now();
    for i in 0..3 {
        let url = format!("http://127.0.0.1:{}/v1/records?limit=100", port + i);
        wait_for(
            "the ten samples on every node",
            // One budget for the three nodes: the demo's admission, publishing, gossip (or its
            // reconciliation) on a loaded machine.
            Duration::from_secs(90).saturating_sub(started.elapsed()),
            || get(&url).is_some_and(|b| b.contains("\"total\":10")),
        );
        let q = format!(
            "http://127.0.0.1:{}/v1/records?q=%D0%BF%D1%80%D0%B0%D0%B2%D0%B8%D1%82%D0%B5%D0%BB%D1%8C%D1%81%D1%82%D0%B2%D0%B0",
            port + i
        );
        assert!(
            !get(&q).unwrap().contains("\"total\":0"),
            "a Russian query finds records on node {i}"
        );
    }
    // A second demo on the same ports fails fast and names the port.
    let out = accord()
        .args(["demo", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("port {port}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SIGINT stops everything cleanly.
    assert!(
        Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = demo.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(demo.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("stopped"), "{err}");
    // It said where each member's keys are, and the files are there.
    let mut out = String::new();
    std::io::Read::read_to_string(demo.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    for m in ["KZ", "BY", "AM"] {
        let key = tmp.path().join("demo").join(m).join("publisher.key");
        assert!(
            out.contains(&format!("keys: {} (publisher)", key.display())),
            "{out}"
        );
        assert!(key.exists(), "{}", key.display());
    }
}

#[test]
fn backup_restore_and_check_keep_the_same_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let base = free_ports(2, 24000);
    assert!(
        accord()
            .current_dir(d)
            .args([
                "devnet",
                "--members",
                "KZ",
                "--out",
                "dev",
                "--base-port",
                &base.to_string()
            ])
            .status()
            .unwrap()
            .success()
    );
    let node = RunningNode::start(d, "dev/KZ/node.toml", "kz");
    let api = node.api.clone();
    RunningNode::wait_for(&[&node], "the node's API", Duration::from_secs(30), || {
        get(&format!("{api}/v1/status")).is_some()
    });
    let md = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/records/01-proactive-public-services.md"
    ))
    .unwrap();
    for i in 0..5 {
        let f = d.join(format!("r{i}.md"));
        std::fs::write(&f, md.replacen("title: \"", &format!("title: \"{i} "), 1)).unwrap();
        let out = accord()
            .current_dir(d)
            .args(["publish"])
            .arg(&f)
            .args(["--key", "dev/KZ/publisher.key", "--node", &api])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The analyst's commands: `query --sort oldest` lists the records oldest first with
    // short ids, and `show` takes such a short id and prints every language version.
    let query = ["query", "--node", &api, "--sort", "oldest", "--limit", "5"];
    wait_for(
        "the five records to be searchable",
        Duration::from_secs(30),
        || run_ok(d, &query).starts_with("5 records\n"),
    );
    let listed = run_ok(d, &query);
    // An English query lists the records by their English titles (the original is Russian),
    // as the web page does, under the English snippet.
    let english = run_ok(d, &["query", "proactive", "--node", &api, "--limit", "5"]);
    assert!(
        english.contains("Moving public services to a proactive format")
            && !english.contains("Порядок перевода"),
        "{english}"
    );
    // A page of the results says so on stderr, the CSV on stdout staying clean.
    let out = accord()
        .current_dir(d)
        .args(["query", "--node", &api, "--limit", "2", "--format", "csv"])
        .output()
        .unwrap();
    let (csv, err) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{err}");
    assert_eq!(csv.lines().count(), 3, "a heading and two records: {csv}");
    assert!(
        err.contains("showing 2 of 5 records:")
            && err.contains(
                "`accord export` and the same words and filters, adding `--format csv --out FILE`"
            )
            && !err.contains("  "),
        "{err}"
    );
    // A direction typed wrong finds nothing, and says why rather than "0 records".
    let out = accord()
        .current_dir(d)
        .args(["query", "--direction", "e-goverment", "--node", &api])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success()
            && err.contains("--direction \"e-goverment\": not a code of the federation's taxonomy")
            && err.contains("did you mean \"e-government\""),
        "{err}"
    );
    let titles: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(titles.len(), 5, "{listed}");
    assert!(
        titles[0].ends_with("0 Порядок перевода государственных услуг в проактивный формат"),
        "{listed}"
    );
    assert!(titles[4].contains(" 4 Порядок"), "{listed}");
    let short = titles[0].split_whitespace().next().unwrap();
    assert_eq!(short.len(), 12, "{listed}");
    let shown = run_ok(d, &["show", short, "--node", &api]);
    assert!(shown.contains(&format!("id        {short}")), "{shown}");
    assert!(
        shown.contains("directions regulation, e-government") && !shown.contains("directions ["),
        "the direction codes listed, not a JSON array: {shown}"
    );
    assert!(shown.contains("── ru (original) ──"), "{shown}");
    assert!(shown.contains("── en (translation) ──"), "{shown}");
    assert!(
        shown.contains("Moving public services to a proactive format"),
        "{shown}"
    );
    // The source document's date (front matter `date:`): shown, and a filter of its own.
    assert!(shown.contains("document  2025-02-10"), "{shown}");
    // The record page's offline check, as its command says: the signed record, the founding
    // charter and the page's proof.cbor.
    for (path, file) in [
        (format!("/records/{short}/object.cbor"), "record.cbor"),
        (format!("/records/{short}/proof.cbor"), "proof.cbor"),
    ] {
        let out = Command::new("curl")
            .args(["-s", "-f", "--max-time", "5", "-o"])
            .arg(d.join(file))
            .arg(format!("{api}{path}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{path}");
    }
    let checked = run_ok(
        d,
        &[
            "verify",
            "record.cbor",
            "--charter",
            "dev/charter.cbor",
            "--with",
            "proof.cbor",
        ],
    );
    assert!(checked.contains(short), "{checked}");
    let dated = run_ok(
        d,
        &[
            "query",
            "--node",
            &api,
            "--date-from",
            "2025-02-10",
            "--date-to",
            "2025-02-10",
        ],
    );
    assert!(dated.starts_with("5 records\n"), "{dated}");
    let before = run_ok(d, &["query", "--node", &api, "--date-to", "2025-02-09"]);
    assert!(before.starts_with("0 records\n"), "{before}");
    // A tag is matched whole, case aside: the records' `life-events`, not the word "life".
    let tagged = run_ok(d, &["query", "--node", &api, "--tag", "Life-Events"]);
    assert!(tagged.starts_with("5 records\n"), "{tagged}");
    let part = run_ok(d, &["query", "--node", &api, "--tag", "life"]);
    assert!(part.starts_with("0 records\n"), "{part}");
    let shown = run_ok(d, &["show", short, "--node", &api]);
    assert!(
        shown.contains("tags      proactive-services, life-events, data-exchange, consent"),
        "{shown}"
    );
    assert!(
        shown.contains("  received here     ") && shown.contains(" published through this node"),
        "{shown}"
    );
    // Too short, or matching nothing: an error that says so.
    let out = accord()
        .current_dir(d)
        .args(["show", &short[..6], "--node", &api])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 8"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = accord()
        .current_dir(d)
        .args(["show", "0123456789abcdef", "--node", &api])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no object stored on this node has an id starting with 0123456789abcdef"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = accord()
        .current_dir(d)
        .args(["backup", "--node", &api, "--out", "b.cbor"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = accord()
        .current_dir(d)
        .args(["restore", "b.cbor", "--data-dir", "restored"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = accord()
        .current_dir(d)
        .args(["restore", "b.cbor", "--data-dir", "restored"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    // The restored store holds exactly what the backup holds: verify both offline.
    let verify = |file: &str| {
        let out = accord()
            .current_dir(d)
            .args(["verify", file, "--charter", "dev/charter.cbor"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .collect();
        ids.sort();
        ids
    };
    let before = verify("b.cbor");
    assert_eq!(
        before.len(),
        1 + 2 + 5,
        "charter, delegation, node certificate and five records"
    );
    // A CBOR export of the records is self-contained: it verifies against the charter alone,
    // with the same objects as the backup.
    run_ok(
        d,
        &[
            "export", "--format", "cbor", "--out", "e.cbor", "--node", &api,
        ],
    );
    assert_eq!(verify("e.cbor"), before);
    // CSV for a spreadsheet: a byte-order mark, the record's page on the node, a title column
    // per language.
    run_ok(
        d,
        &[
            "export", "--format", "csv", "--bom", "--out", "e.csv", "--node", &api,
        ],
    );
    let csv = std::fs::read_to_string(d.join("e.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "\u{feff}id,created,date,member,kind,directions,languages,status,publisher,tags,title,url,attachments,title_en,title_kk,title_ru"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(rows[0].contains(&format!("{api}/records/")), "{csv}");
    assert!(
        rows[0].contains("Moving public services to a proactive format"),
        "{csv}"
    );
    let out = accord()
        .current_dir(d)
        .args([
            "export", "--format", "jsonl", "--bom", "--out", "x", "--node", &api,
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bom applies to --format csv only"));
    // Check and repair the restored directory through a config that points at it.
    let cfg = std::fs::read_to_string(d.join("dev/KZ/node.toml"))
        .unwrap()
        .replace(
            "data_dir = \"data\"",
            &format!("data_dir = \"{}\"", d.join("restored").display()),
        );
    std::fs::write(d.join("dev/KZ/restored.toml"), cfg).unwrap();
    let out = accord()
        .current_dir(d)
        .args(["check", "--config", "dev/KZ/restored.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("objects checked     8"));
    // The same through the node's own config and the data-directory override (the running
    // node holds `data`, so checking it instead would fail); another program's ACCORD_
    // variable is ignored.
    let out = accord()
        .current_dir(d)
        .env("ACCORD_DATA_DIR", d.join("restored"))
        .env("ACCORD_BIN", "/opt/accord/bin")
        .args(["check", "--config", "dev/KZ/node.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("objects checked     8"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ACCORD_BIN"),
        "the ignored variable is named: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = accord()
        .current_dir(d)
        .args(["check", "--config", "dev/KZ/restored.toml", "--repair"])
        .output()
        .unwrap();
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("search index rebuilt with 5 records"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A store an older release wrote is checked by that release: this one's check would
    // upgrade it for good, and says so instead.
    let set_schema = |n: u32| {
        let db = accord_store::open_db(&d.join("restored"), 1 << 20, false).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &n.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    };
    set_schema(accord_store::SCHEMA_VERSION - 1);
    let out = accord()
        .current_dir(d)
        .args(["check", "--config", "dev/KZ/restored.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("written by an older release")
            && err.contains("for good"),
        "{err}"
    );
    let db = accord_store::open_db(&d.join("restored"), 1 << 20, false).unwrap();
    let kept = db
        .open_tree("meta")
        .unwrap()
        .get("schema")
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.as_ref(),
        (accord_store::SCHEMA_VERSION - 1).to_be_bytes()
    );
    drop(db);
    set_schema(accord_store::SCHEMA_VERSION);
}

/// `accord reindex` on a store an older release wrote refuses, as `accord check` does: it
/// would upgrade the store for good, and the old binary (kept to roll back to) could no longer
/// open it. The refusal says to start the node with the new release first, or to keep the old
/// binary, and leaves the store's schema as it was; at this release's schema it rebuilds.
#[test]
fn reindex_refuses_a_store_of_an_older_release() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    run_ok(d, &["devnet", "--members", "KZ", "--out", "dev"]);
    let data = d.join("dev/KZ/data");
    let genesis = std::fs::read(d.join("dev/charter.cbor")).unwrap();
    drop(
        accord_store::Store::open(&data, &genesis, accord_store::StoreOptions::default()).unwrap(),
    );
    let set_schema = |n: u32| {
        let db = accord_store::open_db(&data, 1 << 20, false).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &n.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    };
    let schema = || {
        let db = accord_store::open_db(&data, 1 << 20, false).unwrap();
        db.open_tree("meta")
            .unwrap()
            .get("schema")
            .unwrap()
            .unwrap()
            .to_vec()
    };
    let older = accord_store::SCHEMA_VERSION - 1;
    set_schema(older);
    let out = accord()
        .current_dir(d)
        .args(["reindex", "--config", "dev/KZ/node.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(&format!("the store is of schema {older}"))
            && err.contains("written by an older release")
            && err.contains("for good")
            && err.contains("Start the node with this release first, which upgrades it")
            && err.contains("keep the old binary"),
        "{err}"
    );
    assert_eq!(schema(), older.to_be_bytes());
    set_schema(accord_store::SCHEMA_VERSION);
    let said = run_ok(d, &["reindex", "--config", "dev/KZ/node.toml"]);
    assert!(said.contains("search index rebuilt"), "{said}");
    assert_eq!(schema(), accord_store::SCHEMA_VERSION.to_be_bytes());
}

/// A ministry publishes a record with two files (one by `--attach`, one by a front-matter
/// `path`); the analyst sees them and finds a word inside one; the operator backs them up,
/// restores them, and `accord check` finds a damaged one and repairs it.
#[test]
fn attachments_are_published_found_backed_up_restored_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    run_ok(d, &["devnet", "--members", "KZ", "--out", "dev"]);
    // A node key every user may read is worth a warning; the start line names the data
    // directory in use (an environment variable may have chosen it over node.toml).
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("dev/KZ/node.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let node = RunningNode::start(d, "dev/KZ/node.toml", "kz");
    let api = node.api.clone();
    RunningNode::wait_for(&[&node], "the node's API", Duration::from_secs(30), || {
        get(&format!("{api}/v1/status")).is_some()
    });
    let started = node.log_text();
    assert!(
        started.contains("the node key is readable by every user of this machine")
            && started.contains("running; data in "),
        "{started}"
    );
    std::fs::create_dir_all(d.join("files")).unwrap();
    std::fs::write(
        d.join("files/annex.md"),
        "# Annex\n\nThe interoperability sandbox opens to every agency.\n",
    )
    .unwrap();
    std::fs::write(d.join("plan.txt"), "Rollout plan: twelve regions.\n").unwrap();
    let md = "---\nmember: KZ\nkind: regulatory-note\ndirections: [e-government]\nlang: en\ntitle: \"Sandbox rules\"\nattachments:\n  - path: files/annex.md\n---\nSee the annex.\n";
    std::fs::write(d.join("note.md"), md).unwrap();
    let out = accord()
        .current_dir(d)
        .args(["publish", "note.md", "--attach", "plan.txt"])
        .args(["--key", "dev/KZ/publisher.key", "--node", &api])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("uploaded files/annex.md") && err.contains("uploaded plan.txt"),
        "{err}"
    );
    // A word only in the annex finds the record; `show` lists both files as held here.
    let query = ["query", "interoperability", "--node", &api];
    wait_for(
        "the annex to be searchable",
        Duration::from_secs(30),
        || run_ok(d, &query).starts_with("1 record\n"),
    );
    let listed = run_ok(d, &query);
    let id = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|w| w.len() == 12 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no record id in {listed}"))
        .to_string();
    let shown = run_ok(d, &["show", &id, "--node", &api]);
    assert!(
        shown.contains("annex.md  text/markdown") && shown.contains("held"),
        "{shown}"
    );
    // Publishing the note again (a retry of a publish that seemed to fail) is refused, naming
    // the record it would stand beside and how to replace it.
    let out = accord()
        .current_dir(d)
        .args(["publish", "note.md", "--attach", "plan.txt"])
        .args(["--key", "dev/KZ/publisher.key", "--node", &api])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(
                "this publisher of KZ already has an active record titled \"Sandbox rules\": "
            )
            && err.contains("add `supersedes: ")
            && err.contains("add --again"),
        "{err}"
    );
    // Another ministry of the same member may use the same title: no refusal, and no advice to
    // supersede the first ministry's record.
    run_ok(d, &["key", "new", "--out", "other.key"]);
    run_ok(
        d,
        &[
            "delegate",
            "--charter",
            "dev/charter.cbor",
            "--member",
            "KZ",
            "--root-key",
            "dev/KZ/root.key",
            "--publisher",
            "other.key",
            "--name",
            "Ministry of Justice",
            "--out",
            "other-delegation.cbor",
        ],
    );
    run_ok(d, &["submit", "other-delegation.cbor", "--node", &api]);
    std::fs::write(
        d.join("other.md"),
        "---\nmember: KZ\nkind: regulatory-note\ndirections: [e-government]\nlang: en\ntitle: \"Sandbox rules\"\n---\nThe justice ministry's own rules.\n",
    )
    .unwrap();
    run_ok(
        d,
        &["publish", "other.md", "--key", "other.key", "--node", &api],
    );
    // Run again at once, it is refused: publish answers once its record is searchable.
    let out = accord()
        .current_dir(d)
        .args(["publish", "other.md", "--key", "other.key", "--node", &api])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already has an active record titled"),
        "{err}"
    );
    assert!(shown.contains("plan.txt  text/plain"), "{shown}");
    // Signing offline refuses a file that is not there, naming it.
    let out = accord()
        .current_dir(d)
        .args(["sign", "note.md", "--attach", "nowhere.pdf"])
        .args([
            "--key",
            "dev/KZ/publisher.key",
            "--charter",
            "dev/charter.cbor",
        ])
        .args(["--out", "x.cbor"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere.pdf"));
    // Submitting a record signed offline checks the files given against the files it names:
    // one missing (and not held by the node), or one no record names, is refused by name
    // before anything is sent; the right one is taken.
    std::fs::write(d.join("budget.txt"), "Budget: 40 million.\n").unwrap();
    std::fs::write(
        d.join("note2.md"),
        md.replace("Sandbox rules", "Sandbox budget")
            .replace("files/annex.md", "budget.txt"),
    )
    .unwrap();
    run_ok(
        d,
        &[
            "sign",
            "note2.md",
            "--key",
            "dev/KZ/publisher.key",
            "--charter",
            "dev/charter.cbor",
            "--out",
            "note2.cbor",
        ],
    );
    let submit = |attach: &[&str]| {
        let mut c = accord();
        c.current_dir(d)
            .args(["submit", "note2.cbor", "--node", &api]);
        for a in attach {
            c.args(["--attach", a]);
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, err) = submit(&[]);
    assert!(
        !ok && err.contains("\"budget.txt\"") && err.contains("add --attach"),
        "{err}"
    );
    let (ok, err) = submit(&["plan.txt"]);
    assert!(
        !ok && err.contains("--attach plan.txt: no record being submitted names this file"),
        "{err}"
    );
    let (ok, err) = submit(&["budget.txt"]);
    assert!(ok, "{err}");
    // A record whose files the node holds already is submitted again without them.
    let (ok, err) = submit(&[]);
    assert!(ok, "{err}");
    // Backup with the files, restore with them.
    run_ok(
        d,
        &[
            "backup", "--node", &api, "--out", "b.cbor", "--blobs", "b-files",
        ],
    );
    assert_eq!(std::fs::read_dir(d.join("b-files")).unwrap().count(), 3);
    // A mistyped directory of files is refused before anything is written (it used to restore
    // with "0 restored from the backup" and exit 0).
    let out = accord()
        .current_dir(d)
        .args([
            "restore",
            "b.cbor",
            "--data-dir",
            "restored",
            "--blobs",
            "b-flies",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("--blobs b-flies")
            && err.contains("nothing was restored"),
        "{err}"
    );
    assert!(!d.join("restored").exists());
    let restored = run_ok(
        d,
        &[
            "restore",
            "b.cbor",
            "--data-dir",
            "restored",
            "--blobs",
            "b-files",
        ],
    );
    assert!(
        restored.contains("attachments: 3 restored from the backup, 0 to be fetched"),
        "{restored}"
    );
    let cfg = std::fs::read_to_string(d.join("dev/KZ/node.toml"))
        .unwrap()
        .replace(
            "data_dir = \"data\"",
            &format!("data_dir = \"{}\"", d.join("restored").display()),
        );
    std::fs::write(d.join("dev/KZ/restored.toml"), cfg).unwrap();
    let checked = run_ok(d, &["check", "--config", "dev/KZ/restored.toml"]);
    assert!(
        checked.contains("attachments checked 3") && checked.contains("bad attachments     0"),
        "{checked}"
    );
    // One file rots on disk: check names it and fails; --repair removes it and queues it to
    // be fetched again.
    let blob_dir = d.join("restored/blobs");
    let victim = std::fs::read_dir(&blob_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_none())
        .unwrap();
    std::fs::write(&victim, b"rotten").unwrap();
    let out = accord()
        .current_dir(d)
        .args(["check", "--config", "dev/KZ/restored.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&name));
    let repaired = run_ok(
        d,
        &["check", "--config", "dev/KZ/restored.toml", "--repair"],
    );
    assert!(
        repaired.contains("1 queued to be fetched again"),
        "{repaired}"
    );
    assert!(!victim.exists() && blob_dir.join(format!("{name}.want")).exists());
    // A file the running node no longer holds is named by the backup, and fails it only with
    // --require-blobs (a scheduled backup that must hold every file).
    let budget = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"Budget: 40 million.\n"))
    };
    std::fs::remove_file(d.join("dev/KZ/data/blobs").join(&budget)).unwrap();
    let backup = |require: bool| {
        let mut c = accord();
        c.current_dir(d).args([
            "backup", "--node", &api, "--out", "b2.cbor", "--blobs", "b2-files",
        ]);
        if require {
            c.arg("--require-blobs");
        }
        c.output().unwrap()
    };
    let out = backup(true);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success()
            && err.contains("not in the backup: budget.txt")
            && err.contains("--require-blobs"),
        "{err}"
    );
    let out = backup(false);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success() && err.contains("not in the backup: budget.txt"),
        "{err}"
    );
}

fn run_ok(d: &std::path::Path, args: &[&str]) -> String {
    let out = accord().current_dir(d).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "accord {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn documented_admission_flow_joins_a_new_member() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let kz_root = run_ok(d, &["key", "new", "--out", "kz-root.key"])
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let by_root = run_ok(d, &["key", "new", "--out", "by-root.key"])
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let ministry = run_ok(d, &["key", "new", "--out", "ministry.key"])
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    run_ok(
        d,
        &[
            "charter",
            "new",
            "--name",
            "Test federation",
            "--threshold",
            "1",
            "--out",
            "charter.cbor",
            "--member",
            &format!("KZ=Kazakhstan={kz_root}"),
            "--member",
            &format!("BY=Belarus={by_root}"),
        ],
    );
    run_ok(
        d,
        &["charter", "sign", "charter.cbor", "--key", "kz-root.key"],
    );
    run_ok(
        d,
        &["charter", "sign", "charter.cbor", "--key", "by-root.key"],
    );
    // Kazakhstan prepares its node, has it certified with the printed command, and starts it.
    let kz_peer_id = init_and_certify(d, "KZ", "kz-root.key", "kz", None);
    run_ok(
        d,
        &[
            "delegate",
            "--charter",
            "charter.cbor",
            "--member",
            "KZ",
            "--root-key",
            "kz-root.key",
            "--publisher",
            &ministry,
            "--name",
            "Ministry of Digital Development",
            "--out",
            "delegation.cbor",
        ],
    );
    let kz = RunningNode::start(d, "kz/node.toml", "kz");
    RunningNode::wait_for(&[&kz], "KZ's API", Duration::from_secs(30), || {
        get(&format!("{}/v1/status", kz.api)).is_some()
    });
    run_ok(d, &["submit", "delegation.cbor", "--node", &kz.api]);
    std::fs::write(d.join("note.md"), "---\nmember: KZ\nkind: regulatory-note\ndirections: [regulation]\nlang: en\ntitle: \"Joining test\"\n---\nA record published after the federation was founded.\n").unwrap();
    run_ok(
        d,
        &[
            "publish",
            "note.md",
            "--key",
            "ministry.key",
            "--node",
            &kz.api,
        ],
    );
    // Belarus joins with Kazakhstan's node as its bootstrap: its node is admitted and
    // receives the delegation and the record.
    let kz_address = kz.peer_address(&kz_peer_id);
    init_and_certify(d, "BY", "by-root.key", "by", Some(&kz_address));
    let by = RunningNode::start(d, "by/node.toml", "by");
    RunningNode::wait_for(
        &[&kz, &by],
        "BY admitted and holding the record",
        Duration::from_secs(30),
        || {
            get(&format!("{}/v1/status", by.api))
                .is_some_and(|s| s.contains("\"record\":1") && s.contains("\"peers_admitted\":1"))
        },
    );
    RunningNode::wait_for(&[&kz, &by], "BY ready", Duration::from_secs(10), || {
        get(&format!("{}/readyz", by.api)).is_some()
    });
}

/// `accord init` for one member's node (the documented flow: port 0 lets the system choose),
/// then `accord cert node` with the command init printed. Returns the node's peer id.
fn init_and_certify(
    d: &std::path::Path,
    code: &str,
    root_key: &str,
    dir: &str,
    bootstrap: Option<&str>,
) -> String {
    let mut args = vec![
        "init",
        "--charter",
        "charter.cbor",
        "--member",
        code,
        "--data-dir",
        dir,
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
    ];
    if let Some(b) = bootstrap {
        args.extend(["--bootstrap", b]);
    }
    let out = run_ok(d, &args);
    let peer_id = out
        .lines()
        .find_map(|l| l.strip_prefix("peer id"))
        .unwrap()
        .trim()
        .to_string();
    let cmd = out
        .lines()
        .find(|l| l.trim_start().starts_with("accord cert node"))
        .unwrap();
    let node_key = cmd
        .split_whitespace()
        .skip_while(|w| *w != "--node-key")
        .nth(1)
        .unwrap()
        .to_string();
    run_ok(
        d,
        &[
            "cert",
            "node",
            "--charter",
            "charter.cbor",
            "--member",
            code,
            "--root-key",
            root_key,
            "--node-key",
            &node_key,
            "--out",
            &format!("{dir}/node-cert.cbor"),
        ],
    );
    peer_id
}

/// A hostile member attaches a PDF that overflows the PDF parser's stack (a few hundred
/// kilobytes of nested arrays). Its text is read in a child process: the child dies, the node
/// does not; the record and its other file stay searchable, and the record's detail says the
/// file's text could not be read, with the reason.
#[test]
fn a_hostile_attachment_ends_the_extraction_child_not_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let node = kz_node(d);
    let api = node.api.clone();
    std::fs::create_dir_all(d.join("files")).unwrap();
    std::fs::write(
        d.join("files/deep.pdf"),
        accord_search::extract::nested_arrays_pdf(100_000),
    )
    .unwrap();
    std::fs::write(
        d.join("files/plan.txt"),
        "Rollout of the quokka registry.\n",
    )
    .unwrap();
    let md = "---\nmember: KZ\nkind: regulatory-note\ndirections: [e-government]\nlang: en\ntitle: \"Registry rules\"\nattachments:\n  - path: files/deep.pdf\n  - path: files/plan.txt\n---\nSee the files.\n";
    std::fs::write(d.join("note.md"), md).unwrap();
    run_ok(
        d,
        &[
            "publish",
            "note.md",
            "--key",
            "dev/KZ/publisher.key",
            "--node",
            &api,
        ],
    );
    // The other file's word finds the record.
    let found = || -> Option<String> {
        let v: serde_json::Value =
            serde_json::from_str(&get(&format!("{api}/v1/records?q=quokka"))?).ok()?;
        v["items"][0]["id"].as_str().map(str::to_string)
    };
    RunningNode::wait_for(
        &[&node],
        "the plan's text to be searchable",
        Duration::from_secs(60),
        || found().is_some(),
    );
    let id = found().unwrap();
    // The hostile file: held, its text unreadable, the reason given.
    let deep = || attachment(&api, &id, "deep.pdf");
    RunningNode::wait_for(
        &[&node],
        "the PDF's text to be judged unreadable",
        Duration::from_secs(60),
        || deep().is_some_and(|a| a["text"] == "unreadable"),
    );
    let a = deep().unwrap();
    assert_eq!(a["availability"], "held", "{a}");
    let why = a["text_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("the extraction process failed") && why.contains("overflowed its stack"),
        "{a}"
    );
    // The record page says so too.
    let page = get(&format!("{api}/records/{id}?lang=en")).unwrap();
    assert!(
        page.contains("its text could not be read: search does not find words in it"),
        "{page}"
    );
    // The node is alive and healthy, and logged the crash once.
    assert!(get(&format!("{api}/healthz")).is_some());
    assert_eq!(
        node.log_text()
            .matches("attachment text extraction crashed")
            .count(),
        1,
        "{}",
        node.log_text()
    );
    // The plan's text, read by a child of its own, is unaffected.
    let plan = attachment(&api, &id, "plan.txt").unwrap();
    assert_eq!(plan["text"], "searchable", "{plan}");
}

/// A devnet of one member, KZ, in `d`, and KZ's node started with `accord run` (on ports the
/// system gives: the devnet's are not used).
fn kz_node(d: &std::path::Path) -> RunningNode {
    run_ok(d, &["devnet", "--members", "KZ", "--out", "dev"]);
    RunningNode::start(d, "dev/KZ/node.toml", "kz")
}

/// The attachment `name` of record `id` as the node's API details it.
fn attachment(api: &str, id: &str, name: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&get(&format!("{api}/v1/records/{id}"))?).ok()?;
    v["attachments"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == name)
        .cloned()
}

/// An amendment drafted from the charter in force at a running node, signed and submitted
/// there, is in force; the next one is drafted on top of it (version 3, naming version 2).
/// With the same node: `status` names the store schema and protocol, and a query value the
/// node refuses is named by its flag.
#[test]
fn an_amendment_drafted_from_the_node_is_taken_and_the_next_builds_on_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let base = free_ports(2, 24600);
    run_ok(
        d,
        &[
            "devnet",
            "--members",
            "KZ",
            "--out",
            "dev",
            "--base-port",
            &base.to_string(),
        ],
    );
    let node = RunningNode::start(d, "dev/KZ/node.toml", "kz");
    let api = node.api.clone();
    RunningNode::wait_for(&[&node], "the node's API", Duration::from_secs(30), || {
        get(&format!("{api}/v1/status")).is_some()
    });
    let out = run_ok(
        d,
        &[
            "charter",
            "amend",
            "--node",
            &api,
            "--name",
            "Renamed once",
            "--out",
            "v2.cbor",
        ],
    );
    assert!(out.contains("amendment id: "), "{out}");
    run_ok(
        d,
        &["charter", "sign", "v2.cbor", "--key", "dev/KZ/root.key"],
    );
    run_ok(d, &["submit", "v2.cbor", "--node", &api]);
    let f = get(&format!("{api}/v1/federation")).unwrap_or_default();
    assert!(f.contains("Renamed once"), "{f}");
    run_ok(
        d,
        &[
            "charter",
            "amend",
            "--node",
            &api,
            "--name",
            "Renamed twice",
            "--out",
            "v3.cbor",
        ],
    );
    let shown = run_ok(d, &["charter", "show", "v3.cbor"]);
    assert!(shown.contains("version:     3"), "{shown}");
    // Drafting on the genesis once version 2 is in force is refused before any signature is
    // gathered (every node would refuse the result as a rollback).
    let out = accord()
        .current_dir(d)
        .args([
            "charter",
            "amend",
            "--from",
            "dev/charter.cbor",
            "--name",
            "Stale",
            "--out",
            "stale.cbor",
            "--node",
            &api,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("is version 1 of the charter")
            && err.contains("has version 2 in force"),
        "{err}"
    );
    // What the node runs, for the upgrade notes (docs/OPERATIONS.md, "Upgrading").
    let status = run_ok(d, &["status", "--node", &api]);
    assert!(
        status.contains("(store schema 6, protocol 1.3)"),
        "{status}"
    );
    // A value the node refuses is named by the flag that set it.
    for (flag, value) in [("--date-from", "yesterday"), ("--limit", "100000")] {
        let out = accord()
            .current_dir(d)
            .args(["query", flag, value, "--node", &api])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(&format!("{flag}:")),
            "{err}"
        );
    }
    // A direction added by amendment: `publish` reads the charter in force from the node (its
    // versions walked back by id), and `sign` knows it when given the amendments, in any order.
    let mut taxonomy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/taxonomy.toml"),
    )
    .unwrap();
    taxonomy.push_str(
        "\n[[directions]]\ncode = \"space-data\"\nnames = { ru = \"Космические данные\", en = \"Space data\" }\n",
    );
    std::fs::write(d.join("taxonomy3.toml"), taxonomy).unwrap();
    run_ok(
        d,
        &[
            "charter",
            "amend",
            "--node",
            &api,
            "--taxonomy",
            "taxonomy3.toml",
            "--out",
            "v3t.cbor",
        ],
    );
    run_ok(
        d,
        &["charter", "sign", "v3t.cbor", "--key", "dev/KZ/root.key"],
    );
    run_ok(d, &["submit", "v3t.cbor", "--node", &api]);
    std::fs::write(
        d.join("space.md"),
        "---\nmember: KZ\nkind: regulatory-note\ndirections: [space-data]\nlang: en\ntitle: \"Satellite data for agriculture\"\n---\nOpen data from orbit.\n",
    )
    .unwrap();
    let sign = |with: &[&str]| {
        let mut c = accord();
        c.current_dir(d).args([
            "sign",
            "space.md",
            "--key",
            "dev/KZ/publisher.key",
            "--charter",
            "dev/charter.cbor",
            "--out",
            "space.cbor",
        ]);
        for w in with {
            c.args(["--with", w]);
        }
        c.output().unwrap()
    };
    let out = sign(&[]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("space-data"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sign(&["v3t.cbor", "v2.cbor", "dev/KZ/delegation.cbor"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published = run_ok(
        d,
        &[
            "publish",
            "space.md",
            "--key",
            "dev/KZ/publisher.key",
            "--node",
            &api,
        ],
    );
    assert!(published.contains("accepted"), "{published}");
}
