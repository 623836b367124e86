#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One signature check per object per node, end to end: records submitted to one node and
//! gossiped to another are verified exactly once on each (the precheck before the store
//! thread; the store judges without checking again; gossip messages carry no second
//! signature). This binary holds only this test, because the count is process-wide.

use std::time::Duration;

use accord_core::Timestamp;
use accord_node::AdmissionMode;
use accord_tests::harness::{TestFed, admitted_pair, has, now, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_verifies_each_record_once() {
    let tf = TestFed::new(&["KZ", "BY"], 61).unwrap();
    // Only the session at admission runs, so reconciliation cannot fetch (and verify) what
    // gossip is delivering at the same time.
    let config = |i: usize, bootstrap: Vec<String>| {
        let mut cfg = tf.config(i, bootstrap, AdmissionMode::Members);
        cfg.sync.interval_secs = 3600;
        // No heartbeat (a signed object, verified too) within the test, however slow the run.
        cfg.health.heartbeat_secs = 3600;
        cfg.health.ttl_secs = 7200;
        cfg.health.silent_peer_secs = 0;
        cfg
    };
    let (a, b) = admitted_pair(config).await;
    // Both admission sessions ended.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            [&a, &b].iter().all(|n| {
                n.sync_stats()
                    .iter()
                    .all(|(_, s)| s.running.is_none() && s.sessions > 0)
            })
        })
        .await
    );
    let n = 200u64;
    let recs: Vec<_> = (0..n)
        .map(|i| {
            tf.fed
                .record(0, &format!("once {i}"), Timestamp(now().0 - 10_000 + i))
        })
        .collect();
    let before = accord_core::keys::verifications();
    let out = a
        .submit(recs.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");
    assert!(
        wait_until(Duration::from_secs(60), || async {
            for r in &recs {
                if !has(&b, r.id()).await {
                    return false;
                }
            }
            true
        })
        .await,
        "B holds every record"
    );
    let spent = accord_core::keys::verifications() - before;
    assert_eq!(
        spent,
        2 * n,
        "one verification per record on A and one on B"
    );
    // Submitting the same records again costs nothing: duplicates are found by id first.
    let before = accord_core::keys::verifications();
    let again = a
        .submit(recs.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    assert!(again.iter().all(|o| o.status == "duplicate"));
    assert_eq!(accord_core::keys::verifications() - before, 0);
    // A single record is checked where it arrives, without reading the store there: sent
    // again, it costs its one check and the store thread finds it held.
    let before = accord_core::keys::verifications();
    let one = a.submit(vec![recs[0].as_bytes().to_vec()]).await.unwrap();
    assert_eq!(one[0].status, "duplicate", "{one:?}");
    assert_eq!(accord_core::keys::verifications() - before, 1);
    a.shutdown().await;
    b.shutdown().await;
}
