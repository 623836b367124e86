//! The HTTP API against hostile clients: web pages of other origins, wrong content types,
//! oversized batches, bodies that never arrive, and connections held open to exhaust it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use accord_api::HttpOptions;
use accord_node::NodeHandle;
use accord_tests::harness::{TestFed, now, wait_until};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves `node` with `opts` on an ephemeral port; returns `host:port`.
async fn serve_with(node: &NodeHandle, opts: HttpOptions) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(accord_api::serve(
        node.clone(),
        listener,
        opts,
        std::future::pending(),
    ));
    addr
}

async fn post(
    addr: &str,
    content_type: Option<&str>,
    origin: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = accord_tests::http()
        .post(format!("http://{addr}/v1/objects"))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Reads from `s` until the server closes the connection (or `limit` passes); the bytes read.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_origins_options_and_error_bodies() {
    let tf = TestFed::new(&["KZ"], 51).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let addr = serve_with(
        &node,
        HttpOptions {
            cors_origins: vec!["https://portal.example.gov".into()],
            ..HttpOptions::default()
        },
    )
    .await;
    let rec = |n: u64| {
        tf.fed
            .record(0, &format!("http {n}"), accord_core::Timestamp(now().0 - n))
    };

    // No Content-Type (what a web page's "simple" request may send) and near misses: 415.
    for ct in [
        None,
        Some("application/cborx"),
        Some("text/plain"),
        Some("application/json"),
    ] {
        let (status, body) = post(&addr, ct, None, rec(1).into_bytes()).await;
        assert_eq!(status, 415, "{ct:?}");
        assert!(
            body["error"].as_str().unwrap().contains("application/cbor"),
            "{body}"
        );
    }
    // The exact type in any case, with parameters: accepted.
    for (n, ct) in [
        "application/cbor",
        "APPLICATION/CBOR",
        "Application/Cbor; charset=binary",
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = post(&addr, Some(ct), None, rec(10 + n as u64).into_bytes()).await;
        assert_eq!(status, 200, "{ct}: {body}");
        assert_eq!(body["results"][0]["status"], "accepted");
    }

    // A page of another origin may not write, whatever it sends; no CORS grant is given.
    let (status, body) = post(
        &addr,
        Some("application/cbor"),
        Some("https://evil.example"),
        rec(20).into_bytes(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("https://evil.example")
    );
    let client = accord_tests::http();
    let pre = client
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{addr}/v1/objects"),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    assert!(pre.headers().get("allow").is_some());
    assert!(pre.headers().get("access-control-allow-origin").is_none());
    // The configured origin gets its grant, on the preflight and on the answer.
    let pre = client
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{addr}/v1/records"),
        )
        .header("origin", "https://portal.example.gov")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://portal.example.gov"
    );
    // Its attachment uploads (PUT) are granted too.
    let pre = client
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{addr}/v1/blobs/{}", "0".repeat(64)),
        )
        .header("origin", "https://portal.example.gov")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    let granted = pre.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(granted.split(", ").any(|m| m == "PUT"), "{granted}");
    assert!(pre.headers()["allow"].to_str().unwrap().contains("PUT"));
    let r = client
        .get(format!("http://{addr}/v1/status"))
        .header("origin", "https://portal.example.gov")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://portal.example.gov"
    );
    let (status, _) = post(
        &addr,
        Some("application/cbor"),
        Some("https://portal.example.gov"),
        rec(21).into_bytes(),
    )
    .await;
    assert_eq!(status, 200);

    // Too many envelopes: 413 naming the limit, nothing stored.
    let one = rec(30).into_bytes();
    let mut batch = vec![0x99, 0x04, 0x01]; // array of 1025
    for _ in 0..1025 {
        batch.extend_from_slice(&one);
    }
    let (status, body) = post(&addr, Some("application/cbor"), None, batch).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("1024"), "{body}");
    // A body over the size limit: 413 naming it, as JSON.
    let (status, body) = post(
        &addr,
        Some("application/cbor"),
        None,
        vec![0u8; accord_api::MAX_SUBMIT_BYTES + 1],
    )
    .await;
    assert_eq!(status, 413);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains(&accord_api::MAX_SUBMIT_BYTES.to_string()),
        "{body}"
    );
    // Every error is JSON: an unknown endpoint, a wrong method.
    let r = client
        .get(format!("http://{addr}/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("/v1/nothing-here"),
        "{body}"
    );
    let r = client
        .delete(format!("http://{addr}/v1/objects"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("DELETE"), "{body}");
    // The methods named are the route's own: a search is read, never posted to.
    let r = client
        .post(format!("http://{addr}/v1/records"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let allow = r.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && !allow.contains("POST"), "{allow}");
    let body: Value = r.json().await.unwrap();
    let e = body["error"].as_str().unwrap();
    assert!(
        e.contains("method POST is not allowed on /v1/records"),
        "{e}"
    );
    assert!(!e.contains("allowed: GET, HEAD, POST"), "{e}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_and_promising_clients_cannot_exhaust_the_api() {
    let tf = TestFed::new(&["KZ"], 52).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let addr = serve_with(
        &node,
        HttpOptions {
            max_connections: 8,
            // Long enough that the eight held connections still hold when the probe comes on a
            // loaded machine (the test then waits for them to be closed).
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            ..HttpOptions::default()
        },
    )
    .await;

    // A Content-Length that promises more than is sent: 408 once the body timeout passes.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /v1/objects HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/cbor\r\ncontent-length: 1000\r\n\r\nabc")
        .await
        .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(30))
        .await
        .expect("answered");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("api.body_timeout_secs"), "{text}");
    drop(s);

    // A request head larger than the node reads (hyper's default was about 400 KiB a
    // connection, 200 MB over the connection cap): refused with 431, the connection closed.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let mut head = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n".to_vec();
    // Three times the bound, in 60 headers (within the count hyper takes).
    while head.len() <= 3 * accord_api::MAX_HEAD_BYTES {
        head.extend_from_slice(
            format!("x-filler-{}: {}\r\n", head.len(), "y".repeat(4096)).as_bytes(),
        );
    }
    head.extend_from_slice(b"\r\n");
    let _ = s.write_all(&head).await;
    let answer = read_until_closed(&mut s, Duration::from_secs(30))
        .await
        .expect("answered");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    drop(s);

    // Eight clients hold the connections: four idle, four in the middle of their headers.
    let mut held = Vec::new();
    for i in 0..8 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost: sl")
                .await
                .unwrap();
        }
        held.push(s);
    }
    // Wait until the server has taken all eight (a ninth is then refused with a clear 503).
    let mut refused = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until_closed(&mut s, Duration::from_secs(5))
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&answer).to_string();
        if text.starts_with("HTTP/1.1 503") {
            refused = Some(text);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused.expect("a connection over the cap is refused");
    assert!(refused.contains("api.max_connections"), "{refused}");
    // The server closes the idle and slow ones after the header timeout ...
    for s in &mut held {
        assert!(
            read_until_closed(s, Duration::from_secs(30))
                .await
                .is_some(),
            "a held connection was not closed"
        );
    }
    // ... and answers again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut healthy = false;
    while Instant::now() < deadline && !healthy {
        healthy = accord_tests::http_get(format!("http://{addr}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if !healthy {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        healthy,
        "the API answers again once the held connections are gone"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_streamed_and_equals_the_store_export() {
    let tf = TestFed::new(&["KZ", "BY"], 53).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let addr = serve_with(&node, HttpOptions::default()).await;
    let t = now().0 - 1_000_000;
    let recs: Vec<Vec<u8>> = (0..900)
        .map(|n| {
            tf.fed
                .record(
                    n % 2,
                    &format!("export {n} {}", "x".repeat(300)),
                    accord_core::Timestamp(t + n as u64),
                )
                .into_bytes()
        })
        .collect();
    for chunk in recs.chunks(300) {
        let out = node.submit(chunk.to_vec()).await.unwrap();
        assert!(out.iter().all(|o| o.status == "accepted"));
    }
    let expected = node
        .read(|s| {
            let mut v = Vec::new();
            s.export(&mut v).unwrap();
            v
        })
        .await
        .unwrap();
    assert!(
        expected.len() > 3 * 256 * 1024,
        "several chunks: {}",
        expected.len()
    );
    let got = accord_tests::http_get(format!("http://{addr}/v1/export"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "the streamed export differs from the store's"
    );
    node.shutdown().await;
}

/// 24 records of 900 KB: an export of more than a connection's socket buffers hold.
fn large_records(tf: &TestFed) -> Vec<Vec<u8>> {
    let t = now();
    (0..24u64)
        .map(|i| {
            let mut body =
                tf.fed
                    .record_body(0, &format!("large {i}"), accord_core::Timestamp(t.0 - i));
            body.body = std::collections::BTreeMap::from([(
                "en".to_string(),
                format!("{i} ")
                    .repeat(300_000)
                    .chars()
                    .take(900_000)
                    .collect(),
            )]);
            accord_core::Object::Record(body)
                .sign(&tf.fed.members[0].publisher)
                .into_bytes()
        })
        .collect()
}

/// A KZ node (federation seeded `seed`) served with `opts`, holding the large records searchable;
/// the federation (which holds the node's directory), the node and the API's address.
async fn serving_large_records(seed: u8, opts: HttpOptions) -> (TestFed, NodeHandle, String) {
    let tf = TestFed::new(&["KZ"], seed).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let addr = serve_with(&node, opts).await;
    let (out, searchable) = node
        .submit_searchable(large_records(&tf), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted") && searchable);
    (tf, node, addr)
}

/// Two clients that start exports and then read nothing keep their slots only for the idle
/// time: then a third export (a backup, say) is served. (They held both slots for as long as
/// they stayed connected, and every export and backup was refused meanwhile.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_whose_clients_stop_reading_give_their_slots_back() {
    let (_tf, node, addr) = serving_large_records(
        79,
        HttpOptions {
            export_idle_timeout: Duration::from_secs(1),
            ..HttpOptions::default()
        },
    )
    .await;
    let stalled = stall_both_exports(&addr).await;
    // Both slots are taken now; within seconds of the clients' silence they are given back.
    let served = an_export_is_served(&addr).await;
    assert!(
        served,
        "an export was refused while two clients read nothing"
    );
    drop(stalled);
    node.shutdown().await;
}

/// Takes both export slots with clients that read the status line and then nothing.
async fn stall_both_exports(addr: &str) -> Vec<TcpStream> {
    let mut stalled = Vec::new();
    for path in ["/v1/export", "/export.cbor?member=KZ"] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut first = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut first))
            .await
            .unwrap()
            .unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &first[..n]);
        stalled.push(s);
    }
    stalled
}

/// Whether another export is served within 30 s (an export slot came back).
async fn an_export_is_served(addr: &str) -> bool {
    wait_until(Duration::from_secs(30), || async {
        accord_tests::http_get(format!("http://{addr}/v1/export"))
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await
}

/// A client that asks for an export and then takes no byte loses its connection after the send
/// timeout, with the export's slot and what its response held, even when the export's own idle
/// watchdog would wait ten minutes (it looks only when the client reads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_take_no_byte_lose_the_connection_after_the_send_timeout() {
    let (_tf, node, addr) = serving_large_records(
        77,
        HttpOptions {
            export_idle_timeout: Duration::from_secs(600),
            send_timeout: Duration::from_secs(1),
            ..HttpOptions::default()
        },
    )
    .await;
    let whole = accord_tests::http_get(format!("http://{addr}/v1/export"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let stalled = stall_both_exports(&addr).await;
    let served = an_export_is_served(&addr).await;
    assert!(
        served,
        "an export was refused while two clients took no byte"
    );
    // Their connections were closed: what the socket buffers held, then the end, short of the
    // whole export.
    for mut s in stalled {
        let got = read_until_closed(&mut s, Duration::from_secs(30))
            .await
            .expect("the stalled connection is closed");
        assert!(got.len() + 64 < whole, "{} of {whole} bytes", got.len());
    }
    node.shutdown().await;
}

/// Clients that ask for a large file or an export and never read hold no thread of the node:
/// with a blocking pool of four threads, eight such clients leave a ninth download, a third
/// export's refusal and the node's own work (checking a submitted record) unhindered.
#[test]
fn clients_that_never_read_hold_no_thread_of_the_node() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tf = TestFed::new(&["KZ"], 78).unwrap();
        let node = tf.spawn(0, vec![]).await.unwrap();
        // The stalled exports keep their slots for the whole test (see the test after).
        let addr = serve_with(
            &node,
            HttpOptions {
                export_idle_timeout: Duration::from_secs(600),
                ..HttpOptions::default()
            },
        )
        .await;
        // 40 MiB: far more than a connection's socket buffers hold.
        let file: Vec<u8> = (0..40u32 << 20).map(|i| (i % 251) as u8).collect();
        let a = accord_core::attachment::describe("big.bin", &file);
        node.put_blob(a.sha256, file.clone()).await.unwrap();
        // And 24 records of 900 KB: an export of more than socket buffers hold.
        let big = large_records(&tf);
        // Searchable before the exports begin: the web page's export is of a search.
        let (out, searchable) = node
            .submit_searchable(big, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");
        assert!(searchable);
        let mut stalled = Vec::new();
        for i in 0..8 {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            // The node's export and a search's signed records (the web page's export) share
            // the export slots.
            let path = if i == 0 {
                "/v1/export".to_string()
            } else if i == 1 {
                "/export.cbor?member=KZ".to_string()
            } else {
                format!("/v1/blobs/{}", a.sha256)
            };
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
                .await
                .unwrap();
            // The answer has begun (its status line and the first bytes), then nothing more
            // is read.
            let mut first = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut first))
                .await
                .unwrap()
                .unwrap();
            assert!(first[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &first[..n]);
            stalled.push(s);
        }
        // The whole file, on a ninth connection.
        let got = tokio::time::timeout(Duration::from_secs(60), async {
            accord_tests::http_get(format!("http://{addr}/v1/blobs/{}", a.sha256))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        })
        .await
        .expect("a download waited behind clients that do not read");
        assert!(got.len() == file.len() && got[..] == file[..]);
        // A third export while two are open is told to come back, whichever kind it is.
        for path in [
            "/v1/export",
            "/export.csv?member=KZ",
            "/export.jsonl",
            "/export.cbor",
        ] {
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                accord_tests::http_get(format!("http://{addr}{path}")),
            )
            .await
            .unwrap()
            .unwrap();
            assert_eq!(r.status().as_u16(), 503, "{path}");
            assert!(r.headers().contains_key("retry-after"), "{path}");
        }
        // A reader who clicked an export link on the Russian page is told so in Russian, on
        // a page with the way back (not the API's English JSON).
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            accord_tests::http()
                .get(format!("http://{addr}/export.csv?member=KZ"))
                .header("accept-language", "ru")
                .send(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(r.status().as_u16(), 503);
        let page = r.text().await.unwrap();
        assert!(
            page.contains("Узел уже готовит две выгрузки") && page.contains("href=\"/\""),
            "{page}"
        );
        // The node's own blocking work goes on.
        let rec = tf.fed.record(0, "while clients stall", now());
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            node.submit(vec![rec.as_bytes().to_vec()]),
        )
        .await
        .expect("checking a record waited behind clients that do not read")
        .unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
        drop(stalled);
        node.shutdown().await;
    });
}

/// Submissions are read within a budget of bytes at once, counted as they arrive: a client
/// that announces 900 KB and stalls holds room only for the bytes it sent, so a whole 900 KB
/// submission still fits a budget of 1 MiB beside it; two bodies that do not fit together
/// are not both held: the one whose bytes find no room is answered 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_read_within_a_budget_of_the_bytes_that_arrived() {
    let tf = TestFed::new(&["KZ"], 54).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let addr = serve_with(
        &node,
        HttpOptions {
            body_timeout: Duration::from_secs(8),
            submit_bytes_at_once: 1 << 20,
            ..HttpOptions::default()
        },
    )
    .await;
    let head = |len: usize| {
        format!(
            "POST /v1/objects HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/cbor\r\ncontent-length: {len}\r\nexpect: 100-continue\r\n\r\n"
        )
    };
    // The first announces 900 KB, is asked for its body, sends 3 bytes and stalls.
    let mut holder = TcpStream::connect(&addr).await.unwrap();
    holder.write_all(head(900_000).as_bytes()).await.unwrap();
    let answer = read_until(&mut holder, "100 Continue", Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 100 Continue"), "{answer:?}");
    holder.write_all(b"abc").await.unwrap();
    // A whole submission of 900 KB beside it is read and judged (here: not an object).
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        accord_tests::http()
            .post(format!("http://{addr}/v1/objects"))
            .header("content-type", "application/cbor")
            .body(vec![0x41u8; 900_000])
            .send(),
    )
    .await
    .expect("a submission waited behind one that sent nothing")
    .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "rejected", "{body}");
    // And a record goes through.
    let rec = tf.fed.record(0, "beside the stall", now());
    let r = accord_tests::http()
        .post(format!("http://{addr}/v1/objects"))
        .header("content-type", "application/cbor")
        .body(rec.as_bytes().to_vec())
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    let answer = read_until(&mut holder, "}", Duration::from_secs(60)).await;
    assert!(answer.contains("HTTP/1.1 408"), "{answer}");
    node.shutdown().await;
}

/// A record of about `size` bytes, signed by member 0's publisher.
fn record_of(tf: &TestFed, title: &str, size: usize) -> accord_core::SignedObject {
    let mut body = tf.fed.record_body(0, title, now());
    body.body = std::collections::BTreeMap::from([("en".to_string(), "word ".repeat(size / 5))]);
    accord_core::Object::Record(body).sign(&tf.fed.members[0].publisher)
}

/// A client that sends a submission and goes away while it waits for the store keeps its room
/// in the submission budget until the submission is stored (the store stage runs on without
/// it): it gave the room back at once, so clients doing that over and over held submissions in
/// memory beyond the budget. Played with the store thread held busy and a budget of 64 KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitter_gone_while_its_objects_wait_keeps_their_room_in_the_budget() {
    let tf = TestFed::new(&["KZ"], 71).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let addr = serve_with(
        &node,
        HttpOptions {
            submit_bytes_at_once: 64 << 10,
            ..HttpOptions::default()
        },
    )
    .await;
    let first = record_of(&tf, "first", 40_000);
    let first_id = first.id();
    let (first, second) = (
        first.into_bytes(),
        record_of(&tf, "second", 40_000).into_bytes(),
    );
    let (gate, busy) = accord_tests::harness::hold_store_thread(&node).await;
    let mut gone = TcpStream::connect(&addr).await.unwrap();
    gone.write_all(
        format!(
            "POST /v1/objects HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\n\r\n",
            first.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    gone.write_all(&first).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || async {
            node.store_jobs_waiting() == 1
        })
        .await,
        "the first submission never reached the store's queue"
    );
    drop(gone);
    // For as long as the first waits, a second that needs its room is turned away.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            accord_tests::http()
                .post(format!("http://{addr}/v1/objects"))
                .header("content-type", "application/cbor")
                .body(second.clone())
                .send(),
        )
        .await
        .expect("the second submission was taken in while the first still waited")
        .unwrap();
        assert_eq!(r.status().as_u16(), 503);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gate.send(()).unwrap();
    assert!(busy.await.unwrap().unwrap());
    assert!(
        wait_until(Duration::from_secs(10), || async {
            node.get(first_id).await.is_ok_and(|v| v.is_some())
        })
        .await,
        "the gone client's record was not stored"
    );
    let r = accord_tests::http()
        .post(format!("http://{addr}/v1/objects"))
        .header("content-type", "application/cbor")
        .body(second)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    node.shutdown().await;
}

/// Sends the head of a file upload that announces `len` bytes and asks to be told to go on
/// (`Expect: 100-continue`): the node answers `100 Continue` when it starts reading the body,
/// which it does only once the upload holds one of its two slots.
async fn upload_head(addr: &str, len: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let hash = "ab".repeat(32);
    s.write_all(
        format!(
            "PUT /v1/blobs/{hash} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\ncontent-length: {len}\r\nexpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s
}

/// Reads what the node sends on `s` until `pattern` is in it, the connection closes or `limit`
/// passes; everything read.
async fn read_until(s: &mut TcpStream, pattern: &str, limit: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(limit, async {
        while !String::from_utf8_lossy(&out).contains(pattern) {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).to_string()
}

/// Uploads that stall cannot keep the node's two upload slots: each is answered 408 once an
/// upload's time (20 × the body timeout) has passed, and frees its slot. Uploads that find
/// both slots taken wait their turn for as long, and are then answered 503 with `Retry-After`
/// rather than held; once the slots are free, an upload goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_are_answered_and_free_their_slots() {
    let tf = TestFed::new(&["KZ"], 53).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    // An upload may take 20 × 250 ms = 5 s: long enough that the waiters below reach the node
    // while both slots are still held, however busy the machine.
    let addr = serve_with(
        &node,
        HttpOptions {
            body_timeout: Duration::from_millis(250),
            ..HttpOptions::default()
        },
    )
    .await;
    assert_eq!(accord_api::UPLOADS_AT_ONCE, 2);
    // Two uploads take the two slots (the node asks for their bodies), send 3 bytes of 1,000
    // and stall.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = upload_head(&addr, 1000).await;
        let answer = read_until(&mut s, "100 Continue", Duration::from_secs(30)).await;
        assert!(answer.starts_with("HTTP/1.1 100 Continue"), "{answer:?}");
        s.write_all(b"abc").await.unwrap();
        holders.push(s);
    }
    // Nine more come while both slots are held, and stall too if they get one: eight wait,
    // the ninth is turned away at once (the queue is bounded: each holds a connection).
    assert_eq!(accord_api::UPLOADS_WAITING, 8);
    let mut waiters = Vec::new();
    for _ in 0..9 {
        waiters.push(tokio::spawn({
            let addr = addr.clone();
            async move {
                let mut s = upload_head(&addr, 1000).await;
                let first = read_until(&mut s, "\r\n\r\n", Duration::from_secs(60)).await;
                if first.starts_with("HTTP/1.1 100 Continue") {
                    s.write_all(b"abc").await.unwrap();
                    read_until(&mut s, "}", Duration::from_secs(60)).await
                } else {
                    first + &read_until(&mut s, "}", Duration::from_secs(60)).await
                }
            }
        }));
    }
    // The stalled holders are answered, not kept.
    for s in &mut holders {
        let answer = read_until(s, "}", Duration::from_secs(60)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains("did not arrive within 5 s (20 × api.body_timeout_secs)"),
            "{answer}"
        );
    }
    // Two slots freed once, each held again for an upload's time, while each waiter waits at
    // most that long: at least one of the three is turned away, and the others took a freed
    // slot (the node asked for their bodies) and were answered 408 in turn.
    let mut turned_away = 0;
    let mut queue_full = 0;
    let mut served = 0;
    for w in waiters {
        let answer = w.await.unwrap();
        if answer.contains("2 uploads are being received and 8 wait: try again shortly") {
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            queue_full += 1;
        } else if answer.starts_with("HTTP/1.1 503") {
            turned_away += 1;
            assert!(
                answer.to_lowercase().contains("retry-after: 10"),
                "{answer}"
            );
            assert!(
                answer.contains("2 uploads are being received: try again when one has ended"),
                "{answer}"
            );
        } else {
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
            served += 1;
        }
    }
    assert_eq!(queue_full, 1, "the ninth waiter was queued");
    assert!(turned_away >= 1, "a third waiter cannot have had a slot");
    assert!(
        served >= 1,
        "no waiter took a slot the stalled uploads freed"
    );
    // The slots are free again: a whole file goes through.
    let file = b"a file that arrives whole".to_vec();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&file));
    let r = accord_tests::http()
        .put(format!("http://{addr}/v1/blobs/{sha}"))
        .body(file.clone())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["size"], file.len(), "{body}");
    node.shutdown().await;
}

/// `GET http://{addr}{path}` with `headers`: the status and the answer's headers.
async fn get_with(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap) {
    let mut req = accord_tests::http().get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.headers().clone())
}

/// What a browser sends along (Chromium's and Firefox's user agents begin so).
const BROWSER: (&str, &str) = ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0");

/// A hostile page whose own name its DNS points at the machine of a node bound to loopback
/// (DNS rebinding) reads nothing: a request for a name not in `api.hosts` is 421, whatever it
/// says of itself (a page served over plain HTTP gets no `Sec-Fetch-*` headers, and a script
/// may set its `User-Agent`), while addresses, `localhost`, the names listed, the CLI (a `Sec-`
/// header no script may set) and the probes (`/healthz`, `/readyz`, `/metrics`) are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_a_name_the_node_was_not_given_is_refused() {
    let tf = TestFed::new(&["KZ"], 52).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let addr = serve_with(
        &node,
        HttpOptions {
            hosts: vec!["accord.mfa.example.gov.".into()],
            ..HttpOptions::default()
        },
    )
    .await;
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    let evil = format!("rebind.evil.example:{port}");
    let under_localhost = format!("x.localhost:{port}");
    let not_v6 = format!("[evil.example]:{port}");
    for path in ["/v1/export", "/v1/status", "/v1/records?q=x", "/"] {
        for headers in [
            vec![BROWSER, ("host", under_localhost.as_str())],
            vec![BROWSER, ("host", not_v6.as_str())],
            vec![BROWSER, ("host", evil.as_str())],
            vec![("host", evil.as_str()), ("user-agent", "x")],
            vec![("host", evil.as_str())],
        ] {
            let (status, _) = get_with(&addr, path, &headers).await;
            assert_eq!(status, 421, "{path} answered a rebound page: {headers:?}");
        }
    }
    let (status, h) = get_with(
        &addr,
        "/",
        &[BROWSER, ("host", &evil), ("accept", "text/html")],
    )
    .await;
    assert_eq!(status, 421);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("[fe80::1%25eth0]:{port}"),
        "ACCORD.mfa.example.gov".to_string(),
        format!("accord.mfa.example.gov.:{port}"),
    ] {
        let (status, _) = get_with(&addr, "/v1/status", &[BROWSER, ("host", &host)]).await;
        assert_eq!(status, 200, "a browser's request for {host}");
    }
    // The CLI, by whatever name its operator gave it; probes by any name.
    let (status, _) = get_with(
        &addr,
        "/v1/status",
        &[("host", &evil), (accord_api::CLIENT_HEADER, "cli")],
    )
    .await;
    assert_eq!(status, 200);
    for probe in ["/healthz", "/readyz", "/metrics"] {
        let (status, _) = get_with(&addr, probe, &[("host", &evil)]).await;
        assert_eq!(status, 200, "{probe}");
    }
}

/// Another site's page may link to the node, but not frame it, load its files as images or
/// scripts, or read it with a fetch (which could hold both export slots, or tell what the node
/// holds by what loads); a portal in `api.cors_origins` still may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sites_page_may_link_to_the_node_but_not_embed_it() {
    let tf = TestFed::new(&["KZ"], 53).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let addr = serve_with(
        &node,
        HttpOptions {
            cors_origins: vec!["https://portal.example.gov".into()],
            ..HttpOptions::default()
        },
    )
    .await;
    let cross = ("sec-fetch-site", "cross-site");
    for (mode, dest) in [
        ("navigate", "iframe"),
        ("no-cors", "image"),
        ("no-cors", "script"),
        ("cors", "empty"),
    ] {
        let (status, _) = get_with(
            &addr,
            "/v1/export",
            &[
                BROWSER,
                cross,
                ("sec-fetch-mode", mode),
                ("sec-fetch-dest", dest),
            ],
        )
        .await;
        assert_eq!(status, 403, "another site's {dest} was answered");
    }
    let navigate = [
        BROWSER,
        cross,
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
    ];
    assert_eq!(get_with(&addr, "/", &navigate).await.0, 200);
    let (status, _) = get_with(
        &addr,
        "/v1/status",
        &[
            BROWSER,
            cross,
            ("sec-fetch-mode", "cors"),
            ("sec-fetch-dest", "empty"),
            ("origin", "https://portal.example.gov"),
        ],
    )
    .await;
    assert_eq!(status, 200, "the configured portal was refused");
}

/// Every answer asks the browser for its protections: pages a policy that runs only the node's
/// own script and may not be framed; no sniffing, no referrer to other sites, nothing kept by
/// a shared cache. A handler's own stricter header (an attachment's sandbox) is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_the_browsers_protections() {
    let tf = TestFed::new(&["KZ"], 54).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let addr = serve_with(&node, HttpOptions::default()).await;
    let (status, h) = get_with(&addr, "/", &[BROWSER]).await;
    assert_eq!(status, 200);
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    for path in ["/", "/v1/status", "/static/app.js"] {
        let (_, h) = get_with(&addr, path, &[]).await;
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["cross-origin-resource-policy"], "same-origin", "{path}");
    }
    let (_, h) = get_with(&addr, "/v1/status", &[]).await;
    assert_eq!(h["cache-control"], "private, no-cache");
    // The script is no page: it takes no page policy.
    let (_, h) = get_with(&addr, "/static/app.js", &[]).await;
    assert!(h.get("content-security-policy").is_none());
}

/// A stop of the server ends its open live streams cleanly (each browser's EventSource comes
/// back to the restarted node) instead of holding the stop for its whole grace and then cutting
/// them off mid-response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_ends_its_live_streams_cleanly() {
    let tf = TestFed::new(&["KZ"], 55).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(accord_api::serve(
        node.clone(),
        listener,
        HttpOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut resp = accord_tests::http()
        .get(format!("http://{addr}/v1/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    stop.send(()).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match resp.chunk().await {
                Ok(Some(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
    })
    .await
    .expect("the stream never ended");
    assert!(end.is_ok(), "the stream was cut off, not ended: {end:?}");
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("the server never stopped")
        .unwrap()
        .unwrap();
}
