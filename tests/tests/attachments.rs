//! Attachments over real libp2p on loopback: files travel with records between nodes,
//! checked chunk by chunk; a peer serving a tampered chunk is refused and penalised; a
//! transfer interrupted by a restart resumes; files no live record needs are collected; a
//! word only inside a PDF finds the record; hostile files neither crash nor hang the node.
//! Every file is made by the test itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::Duration;

use accord_core::attachment::{CHUNK_SIZE, describe};
use accord_core::object::Attachment;
use accord_core::{Object, ObjectId, SignedObject, Timestamp};
use accord_node::{AdmissionMode, Node, NodeConfig, NodeHandle};
use accord_tests::harness::{TestFed, admitted, dial_addr, has, metric, now, serve, wait_until};

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A DOCX with `text` in its document and `padding` bytes of incompressible media (so that it
/// spans several chunks).
fn docx(text: &str, padding: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("[Content_Types].xml", stored).unwrap();
    w.write_all(b"<Types/>").unwrap();
    w.start_file("word/document.xml", stored).unwrap();
    write!(
        w,
        r#"<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"#
    )
    .unwrap();
    w.start_file("word/media/image1.bin", stored).unwrap();
    // A simple generator: no two chunks alike, nothing to compress.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..padding)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    w.write_all(&noise).unwrap();
    w.finish().unwrap().into_inner()
}

/// A record of member `i` attaching `files`.
fn record_with(tf: &TestFed, i: usize, title: &str, files: &[Attachment]) -> SignedObject {
    let mut body = tf.fed.record_body(i, title, now());
    body.attachments = files.to_vec();
    Object::Record(body).sign(&tf.fed.members[i].publisher)
}

fn config(tf: &TestFed, i: usize, bootstrap: Vec<String>) -> NodeConfig {
    tf.config(i, bootstrap, AdmissionMode::Members)
}

/// The gossip score `node` gives `peer`, if connected.
async fn score_at(node: &NodeHandle, peer: &str) -> Option<f64> {
    node.peers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.peer_id == peer)
        .and_then(|p| p.gossip_score)
}

/// A node started with `cfg` holding plan.docx, whose only words are "quokka registry rollout",
/// and its description.
async fn holding_the_plan(cfg: NodeConfig) -> (NodeHandle, Attachment) {
    let a = Node::spawn(cfg).await.unwrap();
    let doc = docx("quokka registry rollout", 0);
    let da = describe("plan.docx", &doc);
    a.put_blob(da.sha256, doc).await.unwrap();
    (a, da)
}

/// The records `node`'s sidecar of the file `hash` lists (none when it has no sidecar).
async fn named_by(node: &NodeHandle, hash: ObjectId) -> std::collections::BTreeSet<String> {
    node.blob(hash)
        .await
        .and_then(|v| v.meta)
        .map(|m| m.records)
        .unwrap_or_default()
}

async fn holds(node: &NodeHandle, a: &Attachment) -> bool {
    node.blob(a.sha256).await.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_and_a_docx_travel_between_three_nodes_and_the_pdf_is_searchable() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 61).unwrap();
    let a = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let b = Node::spawn(config(&tf, 1, vec![a_addr.clone()]))
        .await
        .unwrap();
    let c = Node::spawn(config(&tf, 2, vec![a_addr])).await.unwrap();
    for n in [&a, &b, &c] {
        assert!(wait_until(Duration::from_secs(20), || admitted(n, 1)).await);
    }
    let pdf = accord_search::extract::sample_pdf(&[
        "Methodology of teleradiology for district hospitals",
        "Reading rooms staffed around the clock",
    ]);
    let doc = docx(
        "Curriculum of the digital skills academy",
        2 * CHUNK_SIZE + 4321,
    );
    let (pa, da) = (
        describe("method.pdf", &pdf),
        describe("Учебный план.docx", &doc),
    );
    assert_eq!(accord_core::attachment::chunk_count(da.size), 3);
    let rec = record_with(&tf, 0, "Telemedicine pilot", &[pa.clone(), da.clone()]);
    // The publisher's node gets the files, then the record (what `accord publish` does).
    a.put_blob(pa.sha256, pdf.clone()).await.unwrap();
    a.put_blob(da.sha256, doc.clone()).await.unwrap();
    let out = a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    for (name, n) in [("B", &b), ("C", &c)] {
        assert!(
            wait_until(Duration::from_secs(40), || async {
                holds(n, &pa).await && holds(n, &da).await
            })
            .await,
            "{name} did not fetch both files"
        );
        let got = std::fs::read(n.blob(da.sha256).await.unwrap().path).unwrap();
        assert_eq!(got, doc, "{name}: the DOCX differs");
        assert_eq!(
            std::fs::read(n.blob(pa.sha256).await.unwrap().path).unwrap(),
            pdf
        );
    }
    // A word only inside the PDF finds the record on C, with a snippet naming the file.
    let q = |text: &str| accord_search::SearchQuery {
        text: Some(text.into()),
        limit: 10,
        ..Default::default()
    };
    assert!(
        wait_until(Duration::from_secs(20), || async {
            c.search(q("teleradiology"))
                .await
                .is_ok_and(|r| r.total == 1)
        })
        .await,
        "the PDF's words are not searchable on C"
    );
    let r = c.search(q("teleradiology")).await.unwrap();
    assert_eq!(r.hits[0].doc.id, rec.id());
    assert!(
        r.hits[0].snippet.starts_with("📎 method.pdf: "),
        "{}",
        r.hits[0].snippet
    );
    assert!(
        wait_until(Duration::from_secs(20), || async {
            c.search(q("academy")).await.is_ok_and(|r| r.total == 1)
        })
        .await,
        "the DOCX's words are not searchable on C"
    );
    // Served by C's API as a download, whole and by range.
    let base = serve(&c).await;
    let http = accord_tests::http();
    let url = format!("{base}/v1/blobs/{}", pa.sha256);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    // The file's own sandbox, not the pages' policy; kept by the reader's browser alone.
    assert_eq!(h["content-security-policy"], "sandbox; default-src 'none'");
    assert!(
        h["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private, ")
    );
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"method.pdf\"")
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), pdf);
    let r = http
        .get(&url)
        .header("range", "bytes=0-7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 0-7/{}", pdf.len())
    );
    assert_eq!(&r.bytes().await.unwrap()[..], &pdf[..8]);
    let r = http
        .get(&url)
        .header("range", format!("bytes={}-", pdf.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 416);
    let unknown = http
        .get(format!("{base}/v1/blobs/{}", ObjectId([3; 32])))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    // The record page lists both with their availability and a download link.
    let page = http
        .get(format!("{base}/records/{}?lang=en", rec.id()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("on this node") && page.contains(&format!("/v1/blobs/{}", da.sha256)));
    assert!(page.contains("Учебный план.docx"));
    let v: serde_json::Value = http
        .get(format!("{base}/v1/records/{}", rec.id()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["attachments"][0]["availability"], "held", "{v}");
    // An upload larger than an object submission (16 MiB) is taken whole.
    let big = docx("large annex", 17 << 20);
    let big_hash = describe("big.docx", &big).sha256;
    let r = http
        .put(format!("{base}/v1/blobs/{big_hash}"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert_eq!(c.blob(big_hash).await.unwrap().size, big.len() as u64);
    // An upload that does not hash to its name is refused.
    let r = http
        .put(format!("{base}/v1/blobs/{}", pa.sha256))
        .body(b"something else".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

/// A hostile member names another member's file (its SHA-256) with a false size and chunk
/// list. The fetching node neither loses the honest claim nor blames the honest holder: the
/// holder's list is checked against every record's claim, the one it matches is fetched, and a
/// list that agrees with no claim is not a penalty (the record may be the liar).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_claim_about_another_members_file_neither_hides_it_nor_blames_its_holder() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 63).unwrap();
    let doc = docx("the honest plan", CHUNK_SIZE + 77);
    let other = docx("a file only a hostile record names", CHUNK_SIZE + 5);
    let honest = describe("plan.docx", &doc);
    let lie = |a: &Attachment| Attachment {
        size: a.size + CHUNK_SIZE as u64,
        chunks: Some(ObjectId([7; 32])),
        ..a.clone()
    };
    let honest_rec = record_with(&tf, 0, "The plan", std::slice::from_ref(&honest));
    let hostile_rec = record_with(&tf, 1, "Not the plan", &[lie(&honest)]);
    let only_hostile = describe("other.docx", &other);
    let hostile_only_rec = record_with(&tf, 1, "Only a lie", &[lie(&only_hostile)]);
    // C, on its own, learns the honest record first and then the false claims: with no peer
    // to fetch from, both wait.
    judged_without_blame(
        &tf,
        [&honest_rec, &hostile_rec, &hostile_only_rec],
        (&honest, &doc),
        (&only_hostile, &other),
        "the false claim",
    )
    .await;
}

/// C learns `records` in this order with no peer to fetch from; then A, holding the honest
/// file and a file only a false claim names, connects. C fetches the honest file whole and
/// leaves the other, counts the disagreement, and does not blame A.
async fn judged_without_blame(
    tf: &TestFed,
    records: [&SignedObject; 3],
    (honest, doc): (&Attachment, &[u8]),
    (only_hostile, other): (&Attachment, &[u8]),
    what: &str,
) {
    let c = Node::spawn(config(tf, 2, vec![])).await.unwrap();
    for rec in records {
        let out = c.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
    }
    // A holds both files (the second for a record C never sees), then connects to C.
    let a = Node::spawn(config(tf, 0, vec![])).await.unwrap();
    a.put_blob(honest.sha256, doc.to_vec()).await.unwrap();
    a.put_blob(only_hostile.sha256, other.to_vec())
        .await
        .unwrap();
    a.shutdown().await;
    let a = Node::spawn(config(tf, 0, vec![dial_addr(&c).await.unwrap()]))
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(30), || admitted(&c, 1)).await);
    assert!(
        wait_until(Duration::from_secs(60), || holds(&c, honest)).await,
        "{what} hid the file"
    );
    assert_eq!(
        std::fs::read(c.blob(honest.sha256).await.unwrap().path).unwrap(),
        doc
    );
    // The file that only a false claim names is not fetched, and its holder is not blamed.
    assert!(
        wait_until(Duration::from_secs(60), || async {
            metric(&c, "accord_attachment_claims_disagree_total").await >= 1.0
        })
        .await,
        "A's list was not checked against {what}"
    );
    assert!(!holds(&c, only_hostile).await);
    assert_eq!(metric(&c, "accord_attachment_bad_data_total").await, 0.0);
    let a_peer = a.peer_id();
    let score = score_at(&c, &a_peer).await;
    assert!(score.is_some_and(|s| s > -1.0), "A's score at C: {score:?}");
    for n in [a, c] {
        n.shutdown().await;
    }
}

/// The same, with claims that commit to no chunk list (the field is optional): a hostile
/// record names the file one byte short and is learnt first. Its size agrees with the holder's
/// list (the same number of chunks), so only the last chunk shows it false — and that chunk is
/// the one the holder's own list names, so the holder is not blamed: the claim that fits is
/// taken, or, with none, the file is left without a penalty (it blamed and cut every honest
/// holder, for a day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_size_without_a_chunk_list_does_not_blame_the_holder() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 64).unwrap();
    let doc = docx("the honest plan", CHUNK_SIZE + 77);
    let other = docx("a file only a hostile record names", CHUNK_SIZE + 5);
    let uncommitted = |a: Attachment| Attachment { chunks: None, ..a };
    let short = |a: &Attachment| Attachment {
        size: a.size - 1,
        ..a.clone()
    };
    let honest = uncommitted(describe("plan.docx", &doc));
    let only_hostile = uncommitted(describe("other.docx", &other));
    let hostile_rec = record_with(&tf, 1, "Not the plan", &[short(&honest)]);
    let honest_rec = record_with(&tf, 0, "The plan", std::slice::from_ref(&honest));
    let hostile_only_rec = record_with(&tf, 1, "Only a lie", &[short(&only_hostile)]);
    judged_without_blame(
        &tf,
        [&hostile_rec, &honest_rec, &hostile_only_rec],
        (&honest, &doc),
        (&only_hostile, &other),
        "the false size",
    )
    .await;
}

/// A hostile member names another member's file with the very same claim and has its record
/// learnt first, then retracts it: the file, fetched for both records, stays for the honest
/// one (it was kept for the first record alone, and the collection of files no live record
/// needs removed it, for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_waiting_for_two_records_is_kept_for_the_one_not_retracted() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 65).unwrap();
    let doc = docx("the plan both records name", CHUNK_SIZE / 2);
    let a = describe("plan.docx", &doc);
    let hostile_rec = record_with(&tf, 1, "Also the plan", std::slice::from_ref(&a));
    let honest_rec = record_with(&tf, 0, "The plan", std::slice::from_ref(&a));
    let c = Node::spawn(config(&tf, 2, vec![])).await.unwrap();
    for rec in [&hostile_rec, &honest_rec] {
        let out = c.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
    }
    let holder = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    holder.put_blob(a.sha256, doc.clone()).await.unwrap();
    holder.shutdown().await;
    let holder = Node::spawn(config(&tf, 0, vec![dial_addr(&c).await.unwrap()]))
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(60), || holds(&c, &a)).await);
    let retraction = tf.retraction(1, hostile_rec.id(), now(), "withdrawn");
    let out = c
        .submit(vec![retraction.as_bytes().to_vec()])
        .await
        .unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    assert_eq!(c.collect_attachments().await.unwrap(), 0);
    assert!(holds(&c, &a).await, "the honest record's file was removed");
    for n in [holder, c] {
        n.shutdown().await;
    }
}

/// A member's records may name any number of files no peer holds: at most
/// `attachments.max_waiting_per_member` of its files wait to be fetched at once (each costs
/// memory and a `.want` file), and the rest are put off, not forgotten: queued as its queue
/// drains, so that every file is held in the end. Played with a bound of two and five files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_past_a_members_waiting_bound_are_put_off_and_fetched_later() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 69).unwrap();
    let docs: Vec<Vec<u8>> = (0..5)
        .map(|i| docx(&format!("part {i} of the plan"), 100))
        .collect();
    let files: Vec<Attachment> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| describe(&format!("part{i}.docx"), d))
        .collect();
    let rec = record_with(&tf, 0, "The plan in five parts", &files);
    let mut cfg = config(&tf, 1, vec![]);
    cfg.attachments.max_waiting_per_member = 2;
    let c = Node::spawn(cfg).await.unwrap();
    let out = c.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    assert!(
        wait_until(Duration::from_secs(30), || async {
            metric(&c, "accord_attachments_put_off_total").await >= 3.0
        })
        .await
    );
    assert_eq!(metric(&c, "accord_attachments_backlog").await, 2.0);
    // Stopped and started again: the settled mark moved on past the record (a start does not
    // settle it again), and the files put off are remembered on their own.
    c.shutdown().await;
    let data = tf.dir.path().join("BY").join("data");
    let mark: u64 = std::fs::read_to_string(data.join("attachments-settled"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let put_off: std::collections::BTreeMap<String, u64> =
        serde_json::from_slice(&std::fs::read(data.join("blobs").join("put-off")).unwrap())
            .unwrap();
    assert!(put_off["KZ"] < mark, "{put_off:?}, mark {mark}");
    let mut cfg = config(&tf, 1, vec![]);
    cfg.attachments.max_waiting_per_member = 2;
    let c = Node::spawn(cfg).await.unwrap();
    assert_eq!(metric(&c, "accord_attachments_backlog").await, 2.0);
    let holder = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    for (d, a) in docs.iter().zip(&files) {
        holder.put_blob(a.sha256, d.clone()).await.unwrap();
    }
    holder.shutdown().await;
    let holder = Node::spawn(config(&tf, 0, vec![dial_addr(&c).await.unwrap()]))
        .await
        .unwrap();
    for a in &files {
        assert!(
            wait_until(Duration::from_secs(60), || holds(&c, a)).await,
            "{} was never fetched",
            a.name
        );
        let named = named_by(&c, a.sha256).await;
        assert!(named.contains(&rec.id().to_string()), "{named:?}");
    }
    // The last pass saw every record: the member is put off no more.
    let put_off = data.join("blobs").join("put-off");
    assert!(
        wait_until(Duration::from_secs(30), || async {
            std::fs::read_to_string(&put_off).is_ok_and(|t| !t.contains("KZ"))
        })
        .await
    );
    for n in [holder, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_chunk_is_refused_and_its_sender_penalised() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 62).unwrap();
    // X serves every chunk with a byte changed.
    let mut xc = config(&tf, 0, vec![]);
    xc.attachments.corrupt_served = true;
    let x = Node::spawn(xc).await.unwrap();
    let x_addr = dial_addr(&x).await.unwrap();
    let c = Node::spawn(config(&tf, 2, vec![x_addr])).await.unwrap();
    assert!(wait_until(Duration::from_secs(20), || admitted(&c, 1)).await);
    let doc = docx("tampered in transit", CHUNK_SIZE + 10);
    let da = describe("plan.docx", &doc);
    x.put_blob(da.sha256, doc.clone()).await.unwrap();
    let rec = record_with(&tf, 0, "A plan", std::slice::from_ref(&da));
    x.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert!(wait_until(Duration::from_secs(20), || has(&c, rec.id())).await);
    // C asks X, catches the first chunk as bad, writes nothing and penalises X.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            metric(&c, "accord_attachment_bad_data_total").await >= 1.0
        })
        .await,
        "the bad chunk was not caught"
    );
    assert!(!holds(&c, &da).await);
    let x_peer = x.peer_id();
    let score = score_at(&c, &x_peer).await;
    // The penalty is -40 of application score; the rest of the score (time in mesh, first
    // deliveries) is a fraction of a point.
    assert!(
        score.is_some_and(|s| s < -35.0),
        "X's score at C: {score:?}"
    );
    // An honest holder arrives: C gets the file from it, intact.
    let a = Node::spawn(config(&tf, 1, vec![dial_addr(&c).await.unwrap()]))
        .await
        .unwrap();
    a.put_blob(da.sha256, doc.clone()).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(40), || holds(&c, &da)).await,
        "C did not get the file from the honest node"
    );
    assert_eq!(
        std::fs::read(c.blob(da.sha256).await.unwrap().path).unwrap(),
        doc
    );
    for n in [a, c, x] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_interrupted_by_a_restart_resumes_after_its_last_chunk() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 63).unwrap();
    let a = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    // B fetches at one chunk a second, so that it can be stopped half-way.
    let mut bc = config(&tf, 1, vec![a_addr.clone()]);
    bc.attachments.max_bytes_per_sec_per_peer = CHUNK_SIZE as u64;
    let b = Node::spawn(bc).await.unwrap();
    assert!(wait_until(Duration::from_secs(20), || admitted(&b, 1)).await);
    let chunks = 6;
    let doc = docx("resumable", chunks * CHUNK_SIZE - 2000);
    let da = describe("big.docx", &doc);
    assert_eq!(accord_core::attachment::chunk_count(da.size), chunks as u64);
    a.put_blob(da.sha256, doc.clone()).await.unwrap();
    let rec = record_with(&tf, 0, "Large annex", std::slice::from_ref(&da));
    a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    let part = tf
        .dir
        .path()
        .join("BY")
        .join("data")
        .join("blobs")
        .join(format!("{}.part", da.sha256));
    assert!(
        wait_until(Duration::from_secs(30), || async {
            std::fs::metadata(&part).is_ok_and(|m| m.len() >= 2 * CHUNK_SIZE as u64)
        })
        .await,
        "B did not start the transfer"
    );
    b.shutdown().await;
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept < doc.len() as u64, "B finished before it was stopped");
    // Restarted (at full speed), B resumes: it fetches only the chunks it lacked.
    let b = Node::spawn(config(&tf, 1, vec![a_addr])).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(40), || holds(&b, &da)).await,
        "B did not finish after its restart"
    );
    assert_eq!(
        std::fs::read(b.blob(da.sha256).await.unwrap().path).unwrap(),
        doc
    );
    let fetched = metric(&b, "accord_attachment_chunks_fetched_total").await;
    let resumed_at = kept / CHUNK_SIZE as u64;
    assert_eq!(
        fetched as u64,
        chunks as u64 - resumed_at,
        "the restarted node fetched {fetched} chunks, having kept {resumed_at} of {chunks}"
    );
    for n in [a, b] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_retracted_records_are_collected_and_hostile_files_are_kept_unread() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 64).unwrap();
    // Extraction may take 3 s per file at most here (20 s by default).
    let quick = |i: usize, bootstrap: Vec<String>| {
        let mut c = config(&tf, i, bootstrap);
        c.attachments.extract_timeout_secs = 3;
        c
    };
    let a = Node::spawn(quick(0, vec![])).await.unwrap();
    let b = Node::spawn(quick(1, vec![dial_addr(&a).await.unwrap()]))
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || admitted(&b, 1)).await);
    // A zip bomb dressed as a DOCX (200 MB of zeros in a few hundred kilobytes) and a PDF
    // that is not one.
    let bomb = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true),
        )
        .unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..200 {
            w.write_all(&zeros).unwrap();
        }
        w.finish().unwrap().into_inner()
    };
    let broken_pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\nxref\n0 9999999\ntrailer << /Size 3 /Root 1 0 R >>\nstartxref\n9\n%%EOF".to_vec();
    let (ba, pa) = (
        describe("bomb.docx", &bomb),
        describe("broken.pdf", &broken_pdf),
    );
    let keep = docx("kept text", 100);
    let ka = describe("kept.docx", &keep);
    let hostile = record_with(&tf, 0, "Hostile files", &[ba.clone(), pa.clone()]);
    let kept_rec = record_with(&tf, 0, "Kept", std::slice::from_ref(&ka));
    for (h, bytes) in [
        (ba.sha256, &bomb),
        (pa.sha256, &broken_pdf),
        (ka.sha256, &keep),
    ] {
        a.put_blob(h, bytes.clone()).await.unwrap();
    }
    a.submit(vec![
        hostile.as_bytes().to_vec(),
        kept_rec.as_bytes().to_vec(),
    ])
    .await
    .unwrap();
    // B fetches and serves them all; their text could not be read, which is said, and the
    // node goes on (its search answers).
    assert!(
        wait_until(Duration::from_secs(40), || async {
            holds(&b, &ba).await && holds(&b, &pa).await && holds(&b, &ka).await
        })
        .await
    );
    for h in [ba.sha256, pa.sha256] {
        assert!(
            wait_until(Duration::from_secs(30), || async {
                b.blob(h)
                    .await
                    .and_then(|v| v.meta)
                    .is_some_and(|m| m.extract_error.is_some())
            })
            .await,
            "no extraction verdict for {h}"
        );
    }
    assert!(
        wait_until(Duration::from_secs(20), || async {
            b.search(accord_search::SearchQuery {
                text: Some("kept text".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .is_ok_and(|r| r.total >= 1)
        })
        .await,
        "the node stopped answering searches, or the good file's text was not indexed"
    );
    // The hostile record is retracted: its files go at the next collection, on both nodes;
    // the other record's file stays.
    let retraction = tf.retraction(0, hostile.id(), Timestamp(now().0 + 1), "hostile files");
    a.submit(vec![retraction.as_bytes().to_vec()])
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || has(&b, retraction.id())).await);
    for n in [&a, &b] {
        assert_eq!(n.collect_attachments().await.unwrap(), 2);
        assert!(!holds(n, &ba).await && !holds(n, &pa).await);
        assert!(holds(n, &ka).await);
        assert_eq!(n.collect_attachments().await.unwrap(), 0);
    }
    for n in [a, b] {
        n.shutdown().await;
    }
}

/// A peer's attachment requests that are garbage, or ask for what the node does not hold, get
/// an answer that says so, and the node goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_attachment_requests_are_answered_and_change_nothing() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 65).unwrap();
    let a = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let doc = docx("served", 10);
    let da = describe("served.docx", &doc);
    a.put_blob(da.sha256, doc.clone()).await.unwrap();
    // A certified peer driven by hand.
    let key = accord_core::SecretKey::from_seed([66; 32]);
    let cert = tf.extra_node_cert(1, &key, "hand");
    let (x, _events) =
        accord_tests::harness::raw_peer(&key, &tf, Some(cert.as_bytes().to_vec()), vec![a_addr])
            .await;
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    let a_peer: accord_net::Peer = a.peer_id().parse().unwrap();
    let ask = |body: Vec<u8>| {
        let x = x.clone();
        async move {
            let raw = x.blob_request(a_peer, body).await.unwrap();
            let v: ciborium::Value = ciborium::from_reader(&raw[..]).unwrap();
            v
        }
    };
    let cbor = |v: ciborium::Value| {
        let mut out = Vec::new();
        ciborium::into_writer(&v, &mut out).unwrap();
        out
    };
    let code = |v: &ciborium::Value| v.as_array().and_then(|a| a[0].as_integer()).map(i128::from);
    use ciborium::Value as V;
    // Garbage, a short hash, an unknown kind, a file not held, a chunk past the end.
    for (body, what) in [
        (b"\xff\x00garbage".to_vec(), "garbage"),
        (
            cbor(V::Array(vec![
                V::from(1u8),
                V::Bytes(vec![1, 2, 3]),
                V::from(0u8),
            ])),
            "short hash",
        ),
        (
            cbor(V::Array(vec![
                V::from(7u8),
                V::Bytes(da.sha256.0.to_vec()),
                V::from(0u8),
            ])),
            "unknown kind",
        ),
        (
            cbor(V::Array(vec![
                V::from(1u8),
                V::Bytes(vec![9; 32]),
                V::from(0u8),
            ])),
            "not held",
        ),
        (
            cbor(V::Array(vec![
                V::from(1u8),
                V::Bytes(da.sha256.0.to_vec()),
                V::from(5u8),
            ])),
            "past the end",
        ),
    ] {
        let answer = ask(body).await;
        assert_eq!(code(&answer), Some(1), "{what}: {answer:?}");
    }
    // The real thing still works.
    let list = ask(cbor(V::Array(vec![
        V::from(0u8),
        V::Bytes(da.sha256.0.to_vec()),
        V::from(0u8),
    ])))
    .await;
    assert_eq!(code(&list), Some(0));
    let chunk = ask(cbor(V::Array(vec![
        V::from(1u8),
        V::Bytes(da.sha256.0.to_vec()),
        V::from(0u8),
    ])))
    .await;
    assert_eq!(chunk.as_array().unwrap()[1].as_bytes().unwrap(), &doc);
    x.shutdown().await;
    a.shutdown().await;
}

/// A file left unread because the extraction could not be started (the node's fault, not the
/// file's: the program replaced during an upgrade) is not marked unreadable, and is read at the
/// node's next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_unread_by_a_missing_extractor_is_read_at_the_next_start() {
    logs();
    let tf = TestFed::new(&["KZ"], 64).unwrap();
    let mut cfg = config(&tf, 0, vec![]);
    cfg.attachments.extractor = Some("/nonexistent/accord".into());
    let (a, da) = holding_the_plan(cfg).await;
    let rec = record_with(&tf, 0, "A plan", std::slice::from_ref(&da));
    let (out, searchable) = a
        .submit_searchable(vec![rec.as_bytes().to_vec()], Duration::from_secs(60))
        .await
        .unwrap();
    assert!(out[0].status == "accepted" && searchable, "{out:?}");
    let q = |text: &str| accord_search::SearchQuery {
        text: Some(text.into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        a.attachment_text(da.sha256).await,
        Some(accord_node::AttachmentText::Pending)
    );
    assert_eq!(a.search(q("quokka")).await.unwrap().total, 0);
    a.shutdown().await;
    // Started again with a working extractor (here: in process), the file is read.
    let a = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            a.search(q("quokka")).await.is_ok_and(|r| r.total == 1)
        })
        .await,
        "the file was not read at the next start: {:?}",
        a.attachment_text(da.sha256).await
    );
    assert_eq!(
        a.attachment_text(da.sha256).await,
        Some(accord_node::AttachmentText::Searchable)
    );
    a.shutdown().await;
}

/// A member naming one held file, its text already read, from many records (each listing it
/// twice) makes the node build two search documents per record: the record's own, and one
/// more in case the text was written while it was stored. The node used to re-index every
/// record that ever named the file for each new one, once per listing: n records cost n²
/// documents on the store thread, and a few hundred such records stalled every ingest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_naming_a_file_already_read_re_index_only_themselves() {
    logs();
    let tf = TestFed::new(&["KZ"], 68).unwrap();
    let (a, da) = holding_the_plan(config(&tf, 0, vec![])).await;
    let q = || accord_search::SearchQuery {
        text: Some("quokka".into()),
        limit: 10,
        ..Default::default()
    };
    let found = |n: usize| {
        let a = a.clone();
        async move { a.search(q()).await.is_ok_and(|r| r.total == n) }
    };
    let first = record_with(&tf, 0, "A plan", std::slice::from_ref(&da));
    let out = a.submit(vec![first.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    assert!(wait_until(Duration::from_secs(30), || found(1)).await);
    let built = || metric(&a, "accord_search_documents_built_total");
    let before = built().await;
    const N: usize = 30;
    for i in 0..N {
        let rec = record_with(&tf, 0, &format!("Plan {i}"), &[da.clone(), da.clone()]);
        let out = a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
    }
    // Every record is found by the file's word, and each one's second document is built.
    assert!(wait_until(Duration::from_secs(60), || found(N + 1)).await);
    assert!(
        wait_until(Duration::from_secs(60), || async {
            built().await - before >= (2 * N) as f64
        })
        .await
    );
    let docs = built().await - before;
    assert!(
        docs <= (3 * N) as f64,
        "{docs} documents built for {N} records naming one file (N² would be {})",
        N * N
    );
    a.shutdown().await;
}

/// A file's text written just before the node stopped, which the search index never
/// committed (the node killed within the index's commit interval), is indexed at the next
/// start: the start used to find the text written and the index in step with the store, and
/// the words only the file holds were never found. Played by writing the text anew while the
/// node is stopped, as the extraction would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_files_text_the_index_never_committed_is_indexed_at_the_next_start() {
    logs();
    let tf = TestFed::new(&["KZ"], 67).unwrap();
    let (a, da) = holding_the_plan(config(&tf, 0, vec![])).await;
    let rec = record_with(&tf, 0, "A plan", std::slice::from_ref(&da));
    let (out, _) = a
        .submit_searchable(vec![rec.as_bytes().to_vec()], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    let q = |text: &str| accord_search::SearchQuery {
        text: Some(text.into()),
        limit: 10,
        ..Default::default()
    };
    assert!(
        wait_until(Duration::from_secs(30), || async {
            a.search(q("quokka")).await.is_ok_and(|r| r.total == 1)
        })
        .await
    );
    a.shutdown().await;
    let text = tf
        .dir
        .path()
        .join("KZ")
        .join("data")
        .join("blobs")
        .join(format!("{}.txt", da.sha256));
    assert!(text.exists());
    std::fs::write(&text, "platypus registry rollout").unwrap();
    let a = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            a.search(q("platypus")).await.is_ok_and(|r| r.total == 1)
        })
        .await,
        "the text written after the index's last commit was not indexed at the start"
    );
    a.shutdown().await;
}

/// A ministry's file uploaded after its record, to a node that fetches no attachments, is
/// the record's file: it is referenced, read and kept when orphans are collected. It used to
/// have no sidecar (nothing was waiting for it), so collection deleted it after a day, and
/// the publisher's node may hold the only copy. A file uploaded first keeps its reference
/// too, written before the submission is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_after_its_record_is_kept_on_a_node_that_fetches_nothing() {
    logs();
    let tf = TestFed::new(&["KZ"], 65).unwrap();
    let mut cfg = config(&tf, 0, vec![]);
    cfg.attachments.fetch = accord_node::FetchPolicy::None;
    cfg.attachments.extract_timeout_secs = 5;
    let node = Node::spawn(cfg).await.unwrap();
    let late = docx("uploaded afterwards", 100);
    let early = docx("uploaded beforehand", 100);
    let (la, ea) = (describe("late.docx", &late), describe("early.docx", &early));
    let late_rec = record_with(&tf, 0, "File after record", std::slice::from_ref(&la));
    let early_rec = record_with(&tf, 0, "File before record", std::slice::from_ref(&ea));
    node.put_blob(ea.sha256, early.clone()).await.unwrap();
    node.submit(vec![
        late_rec.as_bytes().to_vec(),
        early_rec.as_bytes().to_vec(),
    ])
    .await
    .unwrap();
    // Referenced when the submission is answered, not some time later.
    assert!(
        named_by(&node, ea.sha256)
            .await
            .contains(&early_rec.id().to_string())
    );
    node.put_blob(la.sha256, late.clone()).await.unwrap();
    assert!(
        named_by(&node, la.sha256)
            .await
            .contains(&late_rec.id().to_string())
    );
    // Both files are older than the orphans' day of grace: neither is an orphan.
    let blobs = tf.dir.path().join("KZ").join("data").join("blobs");
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    for a in [&la, &ea] {
        std::fs::File::options()
            .write(true)
            .open(blobs.join(a.sha256.to_string()))
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    }
    assert_eq!(node.collect_attachments().await.unwrap(), 0);
    assert!(holds(&node, &la).await && holds(&node, &ea).await);
    // The late file's text was read when it came.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            node.search(accord_search::SearchQuery {
                text: Some("uploaded afterwards".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .is_ok_and(|r| r.total >= 1)
        })
        .await,
        "the late file's text was not read"
    );
    // A record whose file never comes: its reference stays while the record lives and goes
    // with it (it is not left behind for ever).
    let never = describe("never.docx", &docx("never uploaded", 10));
    let never_rec = record_with(&tf, 0, "File never uploaded", std::slice::from_ref(&never));
    node.submit(vec![never_rec.as_bytes().to_vec()])
        .await
        .unwrap();
    let sidecar = blobs.join(format!("{}.json", never.sha256));
    assert!(sidecar.exists());
    assert_eq!(node.collect_attachments().await.unwrap(), 0);
    assert!(sidecar.exists(), "kept while its record lives");
    let retraction = tf.retraction(0, never_rec.id(), Timestamp(now().0 + 1), "withdrawn");
    node.submit(vec![retraction.as_bytes().to_vec()])
        .await
        .unwrap();
    assert_eq!(node.collect_attachments().await.unwrap(), 1);
    assert!(!sidecar.exists(), "gone with its record");
    assert!(holds(&node, &la).await && holds(&node, &ea).await);
    node.shutdown().await;
}

/// A file's text written, then the node stopped before an index commit held its records with
/// it (an unrelated commit or a merge may have come in between, so the index's files are newer
/// than the text): the note written before the text makes the next start index them again, and
/// the words only the file holds are found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_written_before_a_stop_is_indexed_at_the_next_start() {
    logs();
    let tf = TestFed::new(&["KZ"], 67).unwrap();
    let mut cfg = config(&tf, 0, vec![]);
    cfg.attachments.fetch = accord_node::FetchPolicy::None;
    let file = docx("the file itself", 100);
    let a = describe("late.docx", &file);
    let rec = record_with(&tf, 0, "A record with a file", std::slice::from_ref(&a));
    let found = |node: NodeHandle, words: &'static str| async move {
        node.search(accord_search::SearchQuery {
            text: Some(words.into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .is_ok_and(|r| r.total >= 1)
    };
    let node = Node::spawn(cfg.clone()).await.unwrap();
    let (out, searchable) = node
        .submit_searchable(vec![rec.as_bytes().to_vec()], Duration::from_secs(30))
        .await
        .unwrap();
    assert!(out[0].status == "accepted" && searchable, "{out:?}");
    node.shutdown().await;
    // What the stopped node left: the file held, its text written and noted, an hour before the
    // index's last commit.
    let blobs = accord_store::BlobStore::open(&cfg.data_dir.join("blobs")).unwrap();
    blobs.put(&a.sha256, &file).unwrap();
    blobs.mark_reindex(&a.sha256).unwrap();
    let text = blobs.dir().join(format!("{}.txt", a.sha256));
    std::fs::write(&text, "quokkas and wombats").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&text)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let node = Node::spawn(cfg).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || found(node.clone(), "wombats")).await,
        "the file's text was never indexed"
    );
    assert!(
        wait_until(Duration::from_secs(10), || async {
            blobs.reindex_pending().unwrap().is_empty()
        })
        .await,
        "the note stays once the records are indexed"
    );
    node.shutdown().await;
}

/// A record stored whose file lost its reference (the node killed between the store's commit
/// and the sidecar's write, or the submitting client gone at that moment) is put right the way
/// an operator would try: submitting the record again (a duplicate now) references the held
/// file again, so it is not collected as an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitting_a_stored_record_again_references_its_held_file_again() {
    logs();
    let tf = TestFed::new(&["KZ"], 66).unwrap();
    let mut cfg = config(&tf, 0, vec![]);
    cfg.attachments.fetch = accord_node::FetchPolicy::None;
    let node = Node::spawn(cfg).await.unwrap();
    let file = docx("the only copy", 100);
    let a = describe("only.docx", &file);
    let rec = record_with(&tf, 0, "The only copy", std::slice::from_ref(&a));
    node.put_blob(a.sha256, file.clone()).await.unwrap();
    let out = node.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    let blobs = tf.dir.path().join("KZ").join("data").join("blobs");
    let sidecar = blobs.join(format!("{}.json", a.sha256));
    assert!(sidecar.exists());
    let age = |when: std::time::SystemTime| {
        std::fs::File::options()
            .write(true)
            .open(blobs.join(a.sha256.to_string()))
            .unwrap()
            .set_modified(when)
            .unwrap();
    };
    age(std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600));
    // A sidecar damaged on disk lists records that may be live: the file is no orphan.
    let listed = std::fs::read(&sidecar).unwrap();
    std::fs::write(&sidecar, &listed[..listed.len() / 2]).unwrap();
    assert_eq!(node.collect_attachments().await.unwrap(), 0);
    assert!(
        holds(&node, &a).await,
        "a file whose sidecar is damaged was collected"
    );
    // The reference is lost; the file is older than the orphans' day of grace.
    std::fs::remove_file(&sidecar).unwrap();
    let out = node.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "duplicate", "{out:?}");
    let named = named_by(&node, a.sha256).await;
    assert!(named.contains(&rec.id().to_string()), "{named:?}");
    assert_eq!(node.collect_attachments().await.unwrap(), 0);
    assert!(holds(&node, &a).await, "the only copy was collected");
    node.shutdown().await;
}

/// A submitting client that goes away while its records wait for the group commit (hyper
/// drops its handler's future) cuts short nothing that follows the commit: the held file is
/// referenced for the record (not collected as an orphan a day later), the missing one is
/// queued for fetching, and live subscribers hear of the record. The store thread is held
/// busy so that the submission is certainly queued when its caller is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitter_gone_during_the_commit_cuts_short_nothing_after_it() {
    logs();
    let tf = TestFed::new(&["KZ"], 67).unwrap();
    let node = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    let held_file = docx("uploaded before its record", 100);
    let held = describe("held.docx", &held_file);
    let missing = describe("missing.docx", &docx("held by no one yet", 200));
    let rec = record_with(&tf, 0, "Gone client", &[held.clone(), missing.clone()]);
    node.put_blob(held.sha256, held_file).await.unwrap();
    let mut live = node.subscribe();
    // The store thread waits on `gate` until the submission is queued behind it.
    let (gate, busy) = accord_tests::harness::hold_store_thread(&node).await;
    let submit = tokio::spawn({
        let node = node.clone();
        let bytes = rec.as_bytes().to_vec();
        async move { node.submit(vec![bytes]).await }
    });
    assert!(
        wait_until(Duration::from_secs(10), || async {
            node.store_jobs_waiting() == 1
        })
        .await,
        "the submission never reached the store's queue"
    );
    submit.abort();
    assert!(submit.await.unwrap_err().is_cancelled());
    gate.send(()).unwrap();
    assert!(busy.await.unwrap().unwrap());
    let heard = tokio::time::timeout(Duration::from_secs(10), live.recv())
        .await
        .expect("no live event for the record")
        .unwrap();
    assert_eq!(heard.id(), rec.id());
    let blobs = tf.dir.path().join("KZ").join("data").join("blobs");
    let reference = blobs.join(format!("{}.json", held.sha256));
    let want = blobs.join(format!("{}.want", missing.sha256));
    assert!(
        wait_until(Duration::from_secs(10), || async {
            reference.exists() && want.exists()
        })
        .await,
        "reference written: {}, file queued: {}",
        reference.exists(),
        want.exists()
    );
    let named = named_by(&node, held.sha256).await;
    assert!(named.contains(&rec.id().to_string()), "{named:?}");
    node.shutdown().await;
}

/// A node killed after the group commit of a record but before its files were referenced or
/// queued (their sidecar and `.want` never written) settles them at its next start: the
/// records stored after the last saved settled mark have their files referenced (a held file
/// is no orphan to be deleted a day later) and queued (a missing one is fetched). Played by
/// taking away, after a clean stop, what the step wrote and setting the mark back before the
/// record, which is what such a node leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_records_stored_just_before_a_crash_are_settled_at_the_next_start() {
    logs();
    let tf = TestFed::new(&["KZ"], 70).unwrap();
    let cfg = config(&tf, 0, vec![]);
    let node = Node::spawn(cfg.clone()).await.unwrap();
    let held_file = docx("held when the node died", 100);
    let held = describe("held.docx", &held_file);
    let missing = describe("missing.docx", &docx("not held yet", 200));
    let rec = record_with(
        &tf,
        0,
        "Stored before the crash",
        &[held.clone(), missing.clone()],
    );
    node.put_blob(held.sha256, held_file).await.unwrap();
    let out = node.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    let blobs = cfg.data_dir.join("blobs");
    let reference = blobs.join(format!("{}.json", held.sha256));
    let want = blobs.join(format!("{}.want", missing.sha256));
    let names_record = |node: NodeHandle| {
        let (id, sha) = (rec.id().to_string(), held.sha256);
        async move {
            node.blob(sha)
                .await
                .and_then(|v| v.meta)
                .is_some_and(|m| m.records.contains(&id))
        }
    };
    assert!(
        wait_until(Duration::from_secs(10), || async {
            want.exists() && names_record(node.clone()).await
        })
        .await
    );
    let seq = node.seq();
    node.shutdown().await;
    let mark = cfg.data_dir.join("attachments-settled");
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), seq.to_string());
    // What a node killed right after the commit leaves: no reference, no want, the mark before.
    std::fs::remove_file(&reference).unwrap();
    std::fs::remove_file(&want).unwrap();
    std::fs::write(&mark, (seq - 1).to_string()).unwrap();
    let node = Node::spawn(cfg.clone()).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || async {
            want.exists() && names_record(node.clone()).await
        })
        .await,
        "file queued again: {}, reference written again: {}",
        want.exists(),
        names_record(node.clone()).await
    );
    assert!(
        wait_until(Duration::from_secs(10), || async {
            std::fs::read_to_string(&mark).is_ok_and(|m| m == seq.to_string())
        })
        .await,
        "the mark moves on"
    );
    node.shutdown().await;
}

/// A hostile record commits to a false chunk list of another member's file, and C kept that
/// list from an earlier attempt (served by the hostile member's node, say, before a restart).
/// The honest holder's chunks do not match it: the holder is not judged against a list it
/// never served — no penalty, no bad data counted — the list is asked for again, and C gets
/// the file from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_list_another_peer_served_is_not_held_against_an_honest_holder() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 66).unwrap();
    let doc = docx("the honest plan", CHUNK_SIZE + 77);
    let honest = describe("plan.docx", &doc);
    // A false list of the same length: other chunks' hashes.
    let fake_list = accord_core::attachment::chunk_list(&vec![0x5a; doc.len()]);
    let lie = Attachment {
        chunks: Some(accord_core::attachment::chunk_list_hash(&fake_list)),
        ..honest.clone()
    };
    let hostile_rec = record_with(&tf, 1, "Not the plan", &[lie]);
    let honest_rec = record_with(&tf, 0, "The plan", std::slice::from_ref(&honest));
    let c_config = config(&tf, 2, vec![]);
    let c = Node::spawn(c_config.clone()).await.unwrap();
    for rec in [&hostile_rec, &honest_rec] {
        let out = c.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
    }
    c.shutdown().await;
    std::fs::write(
        c_config
            .data_dir
            .join("blobs")
            .join(format!("{}.list", honest.sha256)),
        &fake_list,
    )
    .unwrap();
    let c = Node::spawn(c_config).await.unwrap();
    let a = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    a.put_blob(honest.sha256, doc.clone()).await.unwrap();
    a.shutdown().await;
    let a = Node::spawn(config(&tf, 0, vec![dial_addr(&c).await.unwrap()]))
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(30), || admitted(&c, 1)).await);
    assert!(
        wait_until(Duration::from_secs(60), || holds(&c, &honest)).await,
        "the kept false list hid the file"
    );
    assert_eq!(
        std::fs::read(c.blob(honest.sha256).await.unwrap().path).unwrap(),
        doc
    );
    assert_eq!(metric(&c, "accord_attachment_bad_data_total").await, 0.0);
    let a_peer = a.peer_id();
    let score = score_at(&c, &a_peer).await;
    assert!(score.is_some_and(|s| s > -1.0), "A's score at C: {score:?}");
    for n in [a, c] {
        n.shutdown().await;
    }
}

/// A member names files no peer holds, then retracts its record: the files are no longer
/// waited for (they were kept and asked for again for ever, taking transfer slots from real
/// files); a file an unretracted record names is still waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_only_retracted_records_name_are_no_longer_waited_for() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 66).unwrap();
    let fake = |n: u8| describe(&format!("missing-{n}.txt"), &[n; 100]);
    let hostile_rec = record_with(&tf, 1, "Files nobody has", &[fake(1), fake(2), fake(3)]);
    let honest_rec = record_with(&tf, 0, "A file on its way", &[fake(4)]);
    let c = Node::spawn(config(&tf, 0, vec![])).await.unwrap();
    for rec in [&hostile_rec, &honest_rec] {
        let out = c.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
    }
    let backlog = || async { metric(&c, "accord_attachments_backlog").await };
    assert!(wait_until(Duration::from_secs(30), || async { backlog().await == 4.0 }).await);
    let retraction = tf.retraction(1, hostile_rec.id(), now(), "withdrawn");
    let out = c
        .submit(vec![retraction.as_bytes().to_vec()])
        .await
        .unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    c.collect_attachments().await.unwrap();
    assert_eq!(backlog().await, 1.0);
    c.shutdown().await;
}

/// A hostile member that names a file first (a document others will attach) cannot name it
/// for every member's readers: a record's page downloads the file under the name that record
/// gives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_downloads_under_the_name_its_record_gives_it() {
    let tf = TestFed::new(&["KZ", "BY"], 69).unwrap();
    let (a, plan) = holding_the_plan(config(&tf, 0, vec![])).await;
    let mut hostile = plan.clone();
    hostile.name = "do-not-open.docx".into();
    let first = record_with(&tf, 1, "Named first", &[hostile]);
    let second = record_with(&tf, 0, "The plan", std::slice::from_ref(&plan));
    for r in [&first, &second] {
        let out = a.submit(vec![r.as_bytes().to_vec()]).await.unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
    }
    let base = serve(&a).await;
    let (_, detail) =
        accord_tests::harness::get_json(&base, &format!("/v1/records/{}", second.id())).await;
    let url = detail["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.contains(&format!("record={}", second.id())), "{url}");
    let disposition = |url: String| {
        let url = format!("{base}{url}");
        async move {
            let r = accord_tests::http_get(url).await.unwrap();
            (
                r.status().as_u16(),
                r.headers()
                    .get("content-disposition")
                    .map(|h| h.to_str().unwrap().to_string())
                    .unwrap_or_default(),
            )
        }
    };
    let (status, d) = disposition(url).await;
    assert_eq!(status, 200);
    assert!(d.contains("filename=\"plan.docx\""), "{d}");
    let (status, d) = disposition(format!("/v1/blobs/{}?record={}", plan.sha256, first.id())).await;
    assert_eq!(status, 200);
    assert!(d.contains("do-not-open.docx"), "{d}");
    // A record that names no such file is no name for it.
    let other = record_with(&tf, 0, "No files", &[]);
    a.submit(vec![other.as_bytes().to_vec()]).await.unwrap();
    let (status, _) = disposition(format!("/v1/blobs/{}?record={}", plan.sha256, other.id())).await;
    assert_eq!(status, 400);
    a.shutdown().await;
}
