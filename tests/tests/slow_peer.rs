#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A peer that reads more slowly than gossip comes: the receiver's links hold every byte sent
//! to it (a machine too busy to read), so the publisher's gossipsub queue for it fills and drops
//! messages. The publisher counts them (`accord_gossip_messages_not_sent_total`). Once the
//! receiver reads again it ends with every record: what is still in the publisher's gossip
//! queue and cache by gossip, the rest by reconciliation, which the publisher's heartbeats call
//! for (the periodic session is an hour away here). When the stall lasts long enough for
//! gossipsub to give up on the connection (its streams failed to open five times: it happened
//! on a loaded machine), no heartbeat comes over it any more; the receiver then resets the
//! connection (`health.silent_peer_secs`), and the new one is reconciled when admitted.

use std::time::Duration;

use accord_core::Timestamp;
use accord_net::sim::SimNet;
use accord_node::{AdmissionMode, NodeHandle};
use accord_tests::harness::{TestFed, admitted_pair, now, record_count, records, wait_until};

/// Records the publisher stores while the receiver is stalled: more than gossipsub queues for
/// one peer (5,000 messages) plus what the connection's windows hold.
const N: u64 = 7_000;

/// Two admitted nodes over simulated links; the receiver (node 1) stalls, the publisher
/// stores [`N`] records, and the publisher counts gossip it could not send.
async fn stall_and_publish(tf: &TestFed, net: &std::sync::Arc<SimNet>) -> (NodeHandle, NodeHandle) {
    let config = |i: usize, bootstrap: Vec<String>| {
        let mut cfg = tf.config(i, bootstrap, AdmissionMode::Members);
        cfg.sync.interval_secs = 3600;
        cfg.health.heartbeat_secs = 1;
        cfg.health.silent_peer_secs = 10;
        cfg.network.sim = Some(net.link(i as u16));
        cfg
    };
    let (publisher, receiver) = admitted_pair(config).await;
    net.stall(1, true);
    // Created two hours ago: below the watermark of every heartbeat (300 s in the past), so the
    // publisher's heartbeats show the receiver what it lacks.
    let recs = records(tf, "slow", Timestamp(now().0 - 7_200_000), N);
    let out = publisher.submit(recs).await.unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"));
    let unsent = publisher.network().unsent_gossip().clone();
    assert!(
        wait_until(Duration::from_secs(60), || {
            let unsent = unsent.clone();
            async move { unsent.count() > 0 }
        })
        .await,
        "the publisher counted the gossip it could not send"
    );
    (publisher, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_not_sent_to_a_slow_peer_is_counted() {
    let tf = TestFed::new(&["KZ", "BY"], 83).unwrap();
    let net = SimNet::new(2, 7, Duration::ZERO, Duration::ZERO, 0.0);
    let (publisher, receiver) = stall_and_publish(&tf, &net).await;
    let metrics = publisher.metrics_text().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("accord_gossip_messages_not_sent_total"))
        .expect("the counter is exported");
    let exported: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(exported > 0.0, "{line}");
    net.stall(1, false);
    publisher.shutdown().await;
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_peer_ends_with_every_record() {
    // Shown when it fails: what the two nodes did (gossipsub's line per unsent message aside).
    let filter = tracing_subscriber::EnvFilter::try_from_env("ACCORD_TEST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    let tf = TestFed::new(&["KZ", "BY"], 84).unwrap();
    let net = SimNet::new(2, 7, Duration::ZERO, Duration::ZERO, 0.0);
    let (publisher, receiver) = stall_and_publish(&tf, &net).await;
    net.stall(1, false);
    assert!(
        wait_until(Duration::from_secs(180), || async {
            record_count(&receiver).await >= N
        })
        .await,
        "the receiver holds every record ({} of {N})",
        record_count(&receiver).await
    );
    publisher.shutdown().await;
    receiver.shutdown().await;
}
