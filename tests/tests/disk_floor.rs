//! A node whose disk falls below its free-space floor (`store.min_free_mb`): it refuses
//! submissions with an error naming the floor, lets gossip pass without blaming its sender,
//! keeps serving what it holds, and takes objects again by itself once space is freed, its
//! reconciliation fetching what it let pass. The free space is the test's figure
//! (`store.test_free_bytes`), so that the filling and the freeing are deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use accord_node::NodeHandle;
use accord_node::config::AdmissionMode;
use accord_tests::harness::{
    TestFed, admitted, admitted_pair, get_json, get_text, has, now, post_object, serve, wait_until,
};

const MIB: u64 = 1 << 20;

/// The sum of `accord_ingest_total` series carrying every one of `labels`.
async fn ingest_count(node: &NodeHandle, labels: &[&str]) -> f64 {
    node.metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("accord_ingest_total{") && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Two admitted nodes of `tf`; node 1's disk has `free` bytes free (the test's figure), and its
/// HTTP API is served at the returned base address.
async fn pair_with_disk(tf: &TestFed, free: &Arc<AtomicU64>) -> (NodeHandle, NodeHandle, String) {
    let (a, b) = admitted_pair(|i, bootstrap| {
        let mut cfg = tf.config(i, bootstrap, AdmissionMode::Members);
        if i == 1 {
            cfg.store.test_free_bytes = Some(free.clone());
        }
        cfg
    })
    .await;
    let base = serve(&b).await;
    (a, b, base)
}

/// `PUT /v1/blobs/{sha}` of `bytes`: the status and the answer's text.
async fn upload(client: &reqwest::Client, base: &str, sha: &str, bytes: Vec<u8>) -> (u16, String) {
    let r = client
        .put(format!("{base}/v1/blobs/{sha}"))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .expect("PUT /v1/blobs");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_its_disk_floor_a_node_takes_nothing_new_loses_nothing_and_resumes_by_itself() {
    let tf = TestFed::new(&["KZ", "BY"], 71).expect("federation");
    // Node 1's disk: 10 GiB free, then 100 MiB (below the default floor of 512 MiB), then
    // 10 GiB again.
    let free = Arc::new(AtomicU64::new(10 << 30));
    let (a, b, base) = pair_with_disk(&tf, &free).await;
    let client = accord_tests::http();
    let t = now();

    // Room: a submission is stored and searchable.
    let before = tf.fed.record(0, "Stored before the disk filled", t);
    let (status, body) = post_object(&base, before.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{body}");
    assert!(has(&b, before.id()).await);

    // The disk fills: within the guard's recheck (a second) the node says so, and refuses
    // submissions with an error that names the free space and the setting.
    free.store(100 * MIB, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(10), || async {
            b.status().await.is_ok_and(|s| s.disk.low)
        })
        .await,
        "the node sees its disk below the floor"
    );
    let refused = tf.fed.record(
        0,
        "Sent while the disk is full",
        accord_core::Timestamp(t.0 + 1),
    );
    let answer = post_object(&base, refused.as_bytes().to_vec()).await;
    assert_eq!(
        answer.0, 507,
        "a submission is refused once the disk is below the floor: {answer:?}"
    );
    assert!(
        answer.1.contains("100 MiB free") && answer.1.contains("store.min_free_mb = 512 MiB"),
        "the error names the free space and the floor: {}",
        answer.1
    );
    assert!(!has(&b, refused.id()).await, "nothing refused was stored");
    // Still ready to serve (analysts read on), not to take new objects: what routes
    // publishers' submissions asks `/readyz?writes=1`.
    let ready = |q: &'static str| {
        let base = base.clone();
        async move {
            let r = accord_tests::http_get(format!("{base}/readyz{q}"))
                .await
                .unwrap();
            let retry = r.headers().contains_key("retry-after");
            (
                r.status().as_u16(),
                r.text().await.unwrap_or_default(),
                retry,
            )
        }
    };
    assert_eq!(ready("").await.0, 200);
    let (status, text, retry) = ready("?writes=1").await;
    assert!(
        status == 503 && text.contains("min_free_mb"),
        "{status}: {text}"
    );
    // A full disk is not over in a few seconds: no `Retry-After` says it is.
    assert!(!retry, "Retry-After on a full disk's 503");
    assert_eq!(ready("?writes=yes").await.0, 400);
    assert!(
        ingest_count(
            &b,
            &[
                "source=\"local\"",
                "result=\"refused\"",
                "reason=\"disk-low\""
            ]
        )
        .await
            >= 1.0
    );

    // Status and metrics say so.
    let (_, status) = get_json(&base, "/v1/status").await;
    assert_eq!(status["disk"]["low"], true, "{status}");
    assert_eq!(status["disk"]["free_bytes"], 100 * MIB);
    assert_eq!(status["disk"]["min_free_bytes"], 512 * MIB);
    let metrics = b.metrics_text().await;
    assert!(metrics.contains("accord_disk_low 1"), "{metrics}");
    assert!(metrics.contains(&format!("accord_disk_free_bytes {}", 100 * MIB)));

    // The network page gives the figures.
    let page = get_text(&base, "/network?lang=en").await;
    assert!(
        page.contains("Free on disk: <strong>100 MB</strong> (<span title=\"store.min_free_mb\">floor 512 MB</span>)"),
        "{page}"
    );

    // A file upload is refused too, and nothing is kept of it.
    let file = b"an annex uploaded while the disk is full".to_vec();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&file))
    };
    let (status, _) = upload(&client, &base, &sha, file).await;
    assert_eq!(status, 507);
    let (code, _) = get_json(&base, &format!("/v1/blobs/{sha}")).await;
    assert_eq!(code, 404, "the refused file is not kept");

    // Every page of the web interface says it, in both languages.
    for (lang, words) in [
        (
            "en",
            "This node takes no new records: its disk has 100 MiB free, below the floor of 512 MiB",
        ),
        (
            "ru",
            "Этот узел не принимает новых записей: на его диске свободно 100 МиБ, меньше порога в 512 МиБ",
        ),
    ] {
        let page = get_text(&base, &format!("/?lang={lang}")).await;
        assert!(page.contains(words), "{lang}: {page}");
    }

    // Gossip from the other node is let pass, and its sender is not blamed: it stays admitted
    // and is not cut.
    let gossiped = tf.fed.record(
        0,
        "Gossiped while the disk is full",
        accord_core::Timestamp(t.0 + 2),
    );
    let r = a.submit(vec![gossiped.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(r[0].status, "accepted");
    assert!(
        wait_until(Duration::from_secs(20), || ingest_count_at_least(
            &b,
            &[
                "source=\"gossip\"",
                "result=\"refused\"",
                "reason=\"disk-low\""
            ],
            1.0
        ))
        .await,
        "node 1 receives the gossip and refuses it for its disk"
    );
    assert!(!has(&b, gossiped.id()).await);
    assert!(
        admitted(&a, 1).await && admitted(&b, 1).await,
        "both keep each other"
    );
    assert_eq!(
        accord_tests::harness::metric(&a, "accord_peers_cut_total").await,
        0.0,
        "the sender is not cut for a disk that is not its doing"
    );

    // What the node held before is still read and found.
    assert!(has(&b, before.id()).await);
    let found = b
        .search(accord_search::SearchQuery {
            text: Some("filled".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.total, 1,
        "the record stored before is still searchable"
    );

    // Space is freed: the node takes objects again by itself, and reconciliation brings what
    // gossip could not.
    free.store(10 << 30, Ordering::SeqCst);
    let answer = post_until(&base, refused.as_bytes(), 200).await;
    assert_eq!(
        answer.0, 200,
        "submissions are taken again once space is freed: {answer:?}"
    );
    assert!(has(&b, refused.id()).await);
    assert!(
        wait_until(Duration::from_secs(30), || has(&b, gossiped.id())).await,
        "reconciliation fetches the record gossip brought while the disk was full"
    );
    let metrics = b.metrics_text().await;
    assert!(metrics.contains("accord_disk_low 0"), "{metrics}");
    assert_eq!(ready("?writes=1").await.0, 200);
    let page = get_text(&base, "/?lang=en").await;
    assert!(
        !page.contains("takes no new records"),
        "the banner goes with the shortage"
    );

    a.shutdown().await;
    b.shutdown().await;
}

/// Posts `bytes` every 25 ms until the answer has status `want` (at most 10 s); the last answer.
async fn post_until(base: &str, bytes: &[u8], want: u16) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = post_object(base, bytes.to_vec()).await;
        if answer.0 == want || tokio::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn ingest_count_at_least(node: &NodeHandle, labels: &[&str], n: f64) -> bool {
    ingest_count(node, labels).await >= n
}

/// A floor above what any disk has refuses submissions at once; a floor of 0 is no floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_floor_refuses_and_no_floor_takes_everything() {
    let tf = TestFed::new(&["KZ"], 72).expect("federation");
    let mut cfg = tf.config(0, vec![], AdmissionMode::Members);
    // The real filesystem's free space, against a floor of 1 PiB.
    cfg.store.min_free_mb = 1 << 30;
    let node = accord_node::Node::spawn(cfg).await.expect("node starts");
    let rec = tf.fed.record(0, "Refused for the disk", now());
    match node.submit(vec![rec.as_bytes().to_vec()]).await {
        Err(accord_node::NodeError::DiskLow(low)) => {
            assert_eq!(low.min_free_bytes, 1 << 50);
            assert!(low.free_bytes < 1 << 50);
        }
        other => panic!("expected a refusal for the disk, got {other:?}"),
    }
    assert!(!has(&node, rec.id()).await);
    node.shutdown().await;

    let mut cfg = tf.config(0, vec![], AdmissionMode::Members);
    cfg.store.min_free_mb = 0;
    let node = accord_node::Node::spawn(cfg).await.expect("node starts");
    let r = node.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(r[0].status, "accepted");
    let status = node.status().await.unwrap();
    assert_eq!(status.disk.min_free_bytes, 0);
    assert!(!status.disk.low);
    assert!(
        status.disk.free_bytes.is_some_and(|f| f > 0),
        "the free space is shown without a floor too"
    );
    node.shutdown().await;
}

/// `n` bytes that do not repeat (a file of several chunks).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Above its floor by less than a file's size, a node neither fetches nor takes that file: the
/// fetch waits, counted, and an upload is refused before any of it is kept, naming the size,
/// the free space and the floor; records still flow, smaller files still fit, and once space is
/// freed the waiting file is fetched by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_written_only_with_room_for_all_of_it_above_the_floor() {
    let tf = TestFed::new(&["KZ", "BY"], 73).expect("federation");
    // Node 1's disk: 2 MiB above the default floor of 512 MiB, then 10 GiB.
    let free = Arc::new(AtomicU64::new(514 * MIB));
    let (a, b, base) = pair_with_disk(&tf, &free).await;
    let client = accord_tests::http();

    // A record with a file of 3 MiB, published on node 0.
    let file = noise(3 * MIB as usize);
    let att = accord_core::attachment::describe("annex.bin", &file);
    a.put_blob(att.sha256, file.clone()).await.unwrap();
    let mut body = tf.fed.record_body(0, "A record with a large annex", now());
    body.attachments = vec![att.clone()];
    let rec = accord_core::Object::Record(body).sign(&tf.fed.members[0].publisher);
    assert_eq!(
        a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );

    // Node 1 takes the record (its disk is above the floor) but puts the file off.
    assert!(
        wait_until(Duration::from_secs(20), || has(&b, rec.id())).await,
        "the record travels: the disk is above its floor"
    );
    assert!(
        wait_until(Duration::from_secs(20), || async {
            accord_tests::harness::metric(&b, "accord_attachments_deferred_for_disk_total").await
                >= 1.0
        })
        .await,
        "the fetch of a file that would cross the floor is put off and counted"
    );
    assert!(
        b.blob(att.sha256).await.is_none(),
        "the file is not fetched"
    );
    assert!(!b.status().await.unwrap().disk.low);
    // The record says why its file is not here, over the API and on its page.
    let (_, detail) = get_json(&base, &format!("/v1/records/{}", rec.id())).await;
    assert_eq!(
        detail["attachments"][0]["availability"], "waiting-for-disk",
        "{detail}"
    );
    for (lang, words) in [
        ("en", "waiting for disk space on this node"),
        ("ru", "ждёт места на диске этого узла"),
    ] {
        let page = get_text(&base, &format!("/records/{}?lang={lang}", rec.id())).await;
        assert!(page.contains(words), "{lang}: {page}");
    }

    // An upload of the same size is refused, naming the figures; the client reads the answer
    // (the node drops the body it sends) rather than a reset connection.
    let sha = att.sha256.to_string();
    let (status, text) = upload(&client, &base, &sha, file.clone()).await;
    assert_eq!(status, 507, "{text}");
    assert!(
        text.contains("no room for a file of 3 MiB")
            && text.contains("514 MiB free")
            && text.contains("store.min_free_mb = 512 MiB"),
        "{text}"
    );
    // Without an announced length (a chunked body) the node refuses it once read, keeping
    // nothing: over HTTP, and on the node's own interface.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        file.chunks(256 << 10).map(|c| Ok(c.to_vec())).collect();
    let r = client
        .put(format!("{base}/v1/blobs/{sha}"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("PUT /v1/blobs, chunked");
    assert_eq!(r.status().as_u16(), 507);
    let text = r.text().await.unwrap_or_default();
    assert!(text.contains("no room for a file of 3 MiB"), "{text}");
    match b.put_blob(att.sha256, file.clone()).await {
        Err(accord_node::NodeError::NoRoom(room)) => {
            assert_eq!(room.needed_bytes, 3 * MIB);
            assert_eq!(room.min_free_bytes, 512 * MIB);
        }
        other => panic!("expected no room for the file, got {other:?}"),
    }
    assert!(b.blob(att.sha256).await.is_none(), "nothing of it is kept");

    // A small file still fits, and records still flow.
    let small = b"a short note".to_vec();
    let small_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&small))
    };
    let (status, text) = upload(&client, &base, &small_sha, small).await;
    assert_eq!(status, 200, "{text}");
    let later = tf.fed.record(0, "Sent while a file waits", now());
    let (status, text) = post_object(&base, later.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{text}");

    // Space freed: the waiting file is fetched by itself, whole and verified.
    free.store(10 << 30, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(40), || async {
            b.blob(att.sha256).await.is_some()
        })
        .await,
        "the file is fetched once there is room"
    );
    let held = std::fs::read(b.blob(att.sha256).await.unwrap().path).unwrap();
    assert_eq!(held, file);
    let (_, detail) = get_json(&base, &format!("/v1/records/{}", rec.id())).await;
    assert_eq!(detail["attachments"][0]["availability"], "held", "{detail}");

    a.shutdown().await;
    b.shutdown().await;
}

/// Below its floor a node takes no new node certificate either (each is a member's to mint,
/// for any number of fresh peer ids, and used to be stored whatever the disk): a peer whose
/// certificate it does not hold is refused and nothing of it is stored, while a peer whose
/// certificate it holds is admitted as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_its_floor_a_node_takes_no_new_certificate_but_admits_known_peers() {
    use accord_core::SecretKey;
    use accord_tests::harness::{dial_addr, metric, raw_peer};
    let tf = TestFed::new(&["KZ", "BY"], 73).expect("federation");
    let mut cfg = tf.config(0, vec![], AdmissionMode::Members);
    cfg.store.min_free_mb = 1 << 30;
    let a = accord_node::Node::spawn(cfg).await.expect("node starts");
    let a_addr = dial_addr(&a).await.unwrap();
    let stranger = SecretKey::from_seed([74; 32]);
    let cert = tf.extra_node_cert(1, &stranger, "new node");
    let (_x, _events) = raw_peer(
        &stranger,
        &tf,
        Some(cert.as_bytes().to_vec()),
        vec![a_addr.clone()],
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            metric(&a, "accord_non_members_disconnected_total").await >= 1.0
        })
        .await,
        "the peer with a new certificate was not refused"
    );
    assert!(!has(&a, cert.id()).await, "the new certificate was stored");
    let b = tf.spawn(1, vec![a_addr]).await.unwrap();
    assert!(wait_until(Duration::from_secs(30), || admitted(&a, 1)).await);
    for n in [a, b] {
        n.shutdown().await;
    }
}
