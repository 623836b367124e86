//! A node whose store refuses a write (a failing disk, or a full one the free-space floor did
//! not see coming): it acknowledges nothing of the failed write, writes nothing more until it
//! restarts (nor answers anything "duplicate"), keeps serving what it holds, and says it must be restarted — `/readyz` answers 503 with the reason, `/v1/status` has it
//! in `restart_needed`, and `accord_store_write_errors_total` counts the failures — instead of
//! staying "ready" while it stores nothing. The failure is the kernel's own: this test process's
//! file-size limit (`RLIMIT_FSIZE`) is cut to one byte, so every write of a file fails with
//! EFBIG (nextest runs each test in a process of its own).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use accord_node::Node;
use accord_node::config::AdmissionMode;
use accord_tests::harness::{
    TestFed, get_json, has, metric, now, post_object as post, records, serve, wait_until,
};

/// `/readyz`: its status and text.
async fn readyz(base: &str) -> (u16, String) {
    let r = accord_tests::http_get(format!("{base}/readyz"))
        .await
        .expect("GET /readyz");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// While it lives, every write of a regular file by this process fails with EFBIG: the
/// file-size limit is one byte, and SIGXFSZ, which would end the process, is caught (tokio's
/// handler replaces its default action). Dropped, even by a failing assertion, it lifts the
/// limit: the test harness's own output may be a regular file (a CI log), which it must write.
struct FileWritesRefused {
    _caught: tokio::signal::unix::Signal,
}

impl FileWritesRefused {
    fn new() -> FileWritesRefused {
        let caught =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ))
                .expect("catch SIGXFSZ");
        rlimit::setrlimit(rlimit::Resource::FSIZE, 1, rlimit::INFINITY)
            .expect("cut the file-size limit");
        FileWritesRefused { _caught: caught }
    }
}

impl Drop for FileWritesRefused {
    fn drop(&mut self) {
        let _ = rlimit::setrlimit(rlimit::Resource::FSIZE, rlimit::INFINITY, rlimit::INFINITY);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_a_write_makes_the_node_unready_and_says_restart() {
    let tf = TestFed::new(&["KZ"], 73).expect("federation");
    let node = Node::spawn(tf.config(0, Vec::new(), AdmissionMode::Members))
        .await
        .expect("node");
    let base = serve(&node).await;
    let recs = records(&tf, "fault", now(), 3);
    let ids: Vec<_> = recs
        .iter()
        .map(|b| {
            accord_core::SignedObject::decode(b, 1 << 20, accord_core::Limits::default().scan())
                .expect("record")
                .id()
        })
        .collect();
    // Stored and searchable before the limit is cut: the indexer has nothing left to commit, so
    // only the store's write meets the limit (an index commit of this record falling in the
    // window would make search fail too, and the test would read a fault it did not play).
    let (out, searchable) = node
        .submit_searchable(vec![recs[0].clone()], Duration::from_secs(30))
        .await
        .expect("submit");
    assert_eq!(out[0].status, "accepted", "{out:?}");
    assert!(searchable);
    assert_eq!(readyz(&base).await.0, 200);
    assert_eq!(metric(&node, "accord_store_write_errors_total").await, 0.0);
    assert!(
        node.metrics_text()
            .await
            .contains(r#"accord_restart_needed{reason="store"} 0"#)
    );

    // Only the write of this record meets the limit; it is lifted before anything is said.
    let refused = FileWritesRefused::new();
    let (status, text) = post(&base, recs[1].clone()).await;
    drop(refused);
    assert!(
        status >= 500,
        "a write the store refused was answered {status}: {text}"
    );
    let (status, text) = readyz(&base).await;
    assert_eq!(status, 503, "{text}");
    assert!(
        text.contains("a store write failed") && text.contains("restart the node"),
        "{text}"
    );
    let (_, s) = get_json(&base, "/v1/status").await;
    assert!(
        s["restart_needed"]
            .as_str()
            .is_some_and(|r| r.contains("a store write failed")),
        "{s}"
    );
    assert!(metric(&node, "accord_store_write_errors_total").await >= 1.0);
    assert_eq!(
        metric(&node, r#"accord_restart_needed{reason="store"}"#).await,
        1.0
    );
    assert_eq!(
        metric(&node, r#"accord_restart_needed{reason="search"}"#).await,
        0.0
    );
    // What was stored before is still served; what failed was not acknowledged nor kept.
    assert!(has(&node, ids[0]).await);
    assert!(!has(&node, ids[1]).await);
    // The fault stays until a restart, and the store is not written again although the disk
    // would take it now (a write that failed half-way may have left entries past the log's
    // end).
    let (status, text) = post(&base, recs[2].clone()).await;
    assert!(
        status >= 500 && text.contains("a store write failed"),
        "{status}: {text}"
    );
    assert!(!has(&node, ids[2]).await);
    // Nor is an object answered "duplicate": after a write that failed half-way, what sled holds
    // in memory may never reach the disk, and a client told "duplicate" would not send it again.
    // (Three at once: a batch that large has its duplicates found before the store thread.)
    let again = node.submit(vec![recs[0].clone(); 3]).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.to_string().contains("a store write failed")),
        "{again:?}"
    );
    assert!(
        wait_until(Duration::from_secs(2), || async {
            readyz(&base).await.0 == 503
        })
        .await
    );
}

/// A read of the store that panics (a bug in one request's handler) ends that request only: the
/// store thread goes on storing, and the node stays ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_panics_leaves_the_store_thread_going_on() {
    let tf = TestFed::new(&["KZ"], 74).expect("federation");
    let node = Node::spawn(tf.config(0, Vec::new(), AdmissionMode::Members))
        .await
        .expect("node");
    let base = serve(&node).await;
    let recs = records(&tf, "read-panic", now(), 2);
    let (status, text) = post(&base, recs[0].clone()).await;
    assert_eq!(status, 200, "{text}");
    let read = node
        .read(|_| -> u64 { panic!("a read of the store panics (the test's own)") })
        .await;
    // Said as what it is, not as a node shutting down.
    assert!(
        read.as_ref()
            .is_err_and(|e| e.to_string().contains("a read that failed")),
        "{read:?}"
    );
    // Before, the store thread ended with the panic: every later write was "the node is
    // shutting down", while `/readyz` still said ready.
    let (status, text) = post(&base, recs[1].clone()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(readyz(&base).await.0, 200);
    assert!(node.fault().is_none(), "{:?}", node.fault());
}

/// A part of the node that ends while the node is not stopping (here the network, as a panic
/// in it would end it) leaves a node that looks alive and cannot gossip nor reconcile: it is
/// not ready and says which part ended and that it must be restarted. It still stores what
/// its API is given (a restarted node reconciles it to its peers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_of_the_node_that_ended_makes_it_unready_and_says_restart() {
    let tf = TestFed::new(&["KZ"], 75).expect("federation");
    let node = Node::spawn(tf.config(0, Vec::new(), AdmissionMode::Members))
        .await
        .expect("node");
    let base = serve(&node).await;
    assert_eq!(readyz(&base).await.0, 200);
    assert_eq!(
        metric(&node, r#"accord_restart_needed{reason="part-stopped"}"#).await,
        0.0
    );
    node.network().shutdown().await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            readyz(&base).await.0 == 503
        })
        .await,
        "the node stayed ready with its network ended"
    );
    let (_, text) = readyz(&base).await;
    assert!(
        text.contains("ended unexpectedly") && text.contains("restart the node"),
        "{text}"
    );
    assert_eq!(
        metric(&node, r#"accord_restart_needed{reason="part-stopped"}"#).await,
        1.0
    );
    let (status, text) = post(&base, records(&tf, "after", now(), 1)[0].clone()).await;
    assert_eq!(status, 200, "{text}");
    // A stop asked for is not a fault.
    node.shutdown().await;
    assert!(node.fault().is_none(), "{:?}", node.fault());
}
