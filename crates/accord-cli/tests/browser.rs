//! A real browser (headless Chromium) against the demo federation's web UI: search in Russian,
//! apply a facet, open a record, check what is shown, and save screenshots of the search,
//! record and overview pages (into `ACCORD_SCREENSHOTS` if set, else a temporary directory).
//! `.ci/run` installs Debian's `chromium` when it is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` consecutive free ports for `accord demo --port`; the search starts at an offset taken
/// from the process id, so that two test runs on one machine do not both pick the first block.
fn free_ports(n: u16) -> u16 {
    let offset = (std::process::id() % 250) as u16 * 37;
    for k in 0..270u16 {
        let start = 21000 + (offset + k * 37) % 9990;
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", start + i)).is_ok()) {
            return start;
        }
    }
    panic!("no free ports");
}

fn chromium() -> PathBuf {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return c.into();
        }
    }
    panic!("headless Chromium is needed for this test: apt-get install chromium (.ci/run does it)");
}

fn browser(profile: &Path, args: &[&str]) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--timeout=30000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn browser_searches_filters_opens_a_record_and_takes_screenshots() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_ports(3);
    let demo = Kill(
        Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(["demo", "--port", &port.to_string(), "--data"])
            .arg(tmp.path().join("demo"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if get(&format!("{base}/v1/records?limit=1")).is_some_and(|b| b.contains("\"total\":10")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not publish its samples in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let profile = tmp.path().join("profile");
    let shots = std::env::var_os("ACCORD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("shots"));
    std::fs::create_dir_all(&shots).unwrap();

    // Search in Russian (the word in another case than in the record).
    let q = "%D0%BF%D1%80%D0%B0%D0%B2%D0%B8%D1%82%D0%B5%D0%BB%D1%8C%D1%81%D1%82%D0%B2%D0%B0";
    let dom = browser(&profile, &["--dump-dom", &format!("{base}/?q={q}&lang=ru")]);
    assert!(dom.contains("Найдено записей"), "Russian interface:\n{dom}");
    assert!(dom.contains("/records/"), "results are listed");
    assert!(dom.contains("<b>"), "matched words are highlighted");
    // Apply a facet: only Kazakhstan's records remain.
    let dom = browser(
        &profile,
        &["--dump-dom", &format!("{base}/?q={q}&member=KZ&lang=ru")],
    );
    let results = dom.matches("class=\"result\"").count();
    assert!(results >= 1, "{dom}");
    let from_kz = dom
        .split("class=\"result\"")
        .skip(1)
        .filter(|r| {
            let card = r.split("</article>").next().unwrap_or("");
            card.contains("<abbr class=\"code\">KZ</abbr>")
        })
        .count();
    assert_eq!(from_kz, results, "every result is from KZ");
    let checked = dom.contains("value=\"KZ\" checked")
        || dom.contains("checked=\"\" value=\"KZ\"")
        || dom.contains("value=\"KZ\" checked=\"\"");
    assert!(checked, "the KZ box is ticked");
    // Open the first result.
    let start = dom.find("href=\"/records/").unwrap() + "href=\"".len();
    let href: String = dom[start..].chars().take_while(|c| *c != '"').collect();
    let record_url = format!("{base}{href}?lang=ru");
    let dom = browser(&profile, &["--dump-dom", &record_url]);
    assert!(dom.contains("Происхождение"), "provenance panel");
    assert!(dom.contains("Подпись действительна"));
    assert!(dom.contains("KZ development publisher"));
    assert!(dom.contains("accord verify"));
    // A sample's PDF travelled to this node and its words are searchable here; the record
    // page lists it as held, with a download.
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let v: Option<serde_json::Value> =
            get(&format!("{base}/v1/records?q=aurora")).and_then(|b| serde_json::from_str(&b).ok());
        // Exact matches rank first (similar spellings may follow them).
        if let Some(v) = v.filter(|v| {
            v["items"][0]["snippet"]
                .as_str()
                .is_some_and(|s| s.starts_with("📎 methodology.pdf"))
        }) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the demo's PDF is not searchable on the first node"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let pdf_id = found["items"][0]["id"].as_str().unwrap().to_string();
    assert!(
        found["items"][0]["snippet"]
            .as_str()
            .unwrap()
            .starts_with("📎 methodology.pdf"),
        "{found}"
    );
    let pdf_url = format!("{base}/records/{pdf_id}?lang=ru");
    let dom = browser(&profile, &["--dump-dom", &pdf_url]);
    assert!(
        dom.contains("methodology.pdf")
            && dom.contains("есть на этом узле")
            && dom.contains("/v1/blobs/"),
        "{dom}"
    );
    // The federation health page, once every demo node has heard every other's heartbeat
    // (every 10 s in the demo).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: Option<serde_json::Value> = get(&format!("{base}/v1/health/federation"))
            .and_then(|b| serde_json::from_str(&b).ok());
        let statuses: Vec<String> = v
            .iter()
            .flat_map(|v| v["members"].as_array().cloned().unwrap_or_default())
            .flat_map(|m| m["nodes"].as_array().cloned().unwrap_or_default())
            .map(|n| n["status"].as_str().unwrap_or("").to_string())
            .collect();
        if statuses.len() >= 3 && statuses.iter().all(|s| s == "up" || s == "self") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo nodes do not see each other up: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let dom = browser(&profile, &["--dump-dom", &format!("{base}/health?lang=ru")]);
    assert!(
        dom.contains("Состояние федерации") && dom.contains("на связи"),
        "{dom}"
    );
    // Screenshots, desktop and phone.
    for (name, url, size) in [
        ("health", format!("{base}/health?lang=ru"), "1280,1000"),
        ("record-attachment", pdf_url.clone(), "1280,1800"),
        ("search", format!("{base}/?q={q}&lang=ru"), "1280,1000"),
        ("record", record_url.clone(), "1280,1000"),
        ("overview", format!("{base}/overview?lang=ru"), "1280,1000"),
        ("search-phone", format!("{base}/?q={q}&lang=ru"), "390,844"),
        ("record-phone", record_url, "390,844"),
    ] {
        let file = shots.join(format!("{name}.png"));
        browser(
            &profile,
            &[
                &format!("--screenshot={}", file.display()),
                &format!("--window-size={size}"),
                &url,
            ],
        );
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{name} screenshot written ({size} bytes)");
    }
    // axe-core and layout checks of every page, both languages, desktop and phone widths,
    // with playwright-core (tests/browser/check.mjs).
    let checks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        checks.join("node_modules/playwright-core").is_dir()
            && checks.join("node_modules/axe-core").is_dir(),
        "the browser checks need their packages: npm ci --prefix tests/browser"
    );
    let paths = serde_json::json!([
        format!("/?q={q}"),
        "/",
        "/?q=zzzzqqq",
        href,
        "/overview",
        "/compare?member=KZ&member=BY",
        "/federation",
        "/network",
        "/health",
        format!("/records/{pdf_id}"),
    ]);
    let out = Command::new("node")
        .arg(checks.join("check.mjs"))
        .arg(&base)
        .arg(paths.to_string())
        .env("CHROMIUM", chromium())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "axe-core or layout checks failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("\"pages\": 40"), "{report}");
    drop(demo);
}
