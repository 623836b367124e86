#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A node that cannot keep up with gossip loses nothing: one peer publishes a burst larger
//! than the other's gossip queue; the receiver counts what it could not take in and reconciles
//! with the sender as soon as its backlog drains, not at the next periodic session (which in
//! this test is an hour away).

use std::time::Duration;

use accord_core::Timestamp;
use accord_node::{AdmissionMode, Node};
use accord_tests::harness::{TestFed, admitted, dial_addr, now, record_count, records, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_misses_gossip_reconciles_at_once() {
    let tf = TestFed::new(&["KZ", "BY"], 81).unwrap();
    let config = |i: usize, bootstrap: Vec<String>| {
        let mut cfg = tf.config(i, bootstrap, AdmissionMode::Members);
        cfg.sync.interval_secs = 3600;
        cfg
    };
    let publisher = Node::spawn(config(0, vec![])).await.unwrap();
    // The receiver's gossip queue holds 64 messages (32,768 by default), so that a burst
    // overflows it whatever the two nodes' relative speed: the publisher gossips each group
    // commit of up to 512 records at once.
    let mut receiver_cfg = config(1, vec![dial_addr(&publisher).await.unwrap()]);
    receiver_cfg.network.gossip_queue_messages = 64;
    let receiver = Node::spawn(receiver_cfg).await.unwrap();
    assert!(wait_until(Duration::from_secs(30), || admitted(&receiver, 1)).await);
    assert!(wait_until(Duration::from_secs(30), || admitted(&publisher, 1)).await);
    // The sessions started on admission have ended: only a new one can fetch what follows.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            receiver
                .sync_stats()
                .iter()
                .any(|(_, s)| s.sessions > 0 && s.running.is_none())
        })
        .await
    );
    let sessions_before: u64 = receiver.sync_stats().iter().map(|(_, s)| s.sessions).sum();
    // Far more than the receiver's gossip queue plus what it judges at once (256), in one
    // burst: the publisher gossips each batch as soon as it is stored.
    let n = 15_000u64;
    let recs = records(&tf, "burst", Timestamp(now().0 - 100_000), n);
    let out = publisher.submit(recs).await.unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"));
    assert!(
        wait_until(Duration::from_secs(180), || async {
            record_count(&receiver).await >= n
        })
        .await,
        "the receiver holds every record ({} of {n})",
        record_count(&receiver).await
    );
    // The figures of a session are final once it has ended.
    assert!(
        wait_until(Duration::from_secs(60), || async {
            receiver
                .sync_stats()
                .iter()
                .all(|(_, s)| s.running.is_none())
        })
        .await
    );
    let missed = receiver.network().missed_gossip().count();
    assert!(
        missed > 0,
        "the burst overflowed the receiver's gossip queue"
    );
    let stats = receiver.sync_stats();
    let sessions_after: u64 = stats.iter().map(|(_, s)| s.sessions).sum();
    let fetched: u64 = stats.iter().map(|(_, s)| s.fetched_total).sum();
    assert!(
        sessions_after > sessions_before,
        "a session ran for the missed gossip: {stats:?}"
    );
    // Each missed message is a distinct record that gossip will not deliver again.
    assert!(
        fetched >= missed,
        "it fetched what gossip missed: fetched {fetched}, missed {missed}"
    );
    publisher.shutdown().await;
    receiver.shutdown().await;
}
