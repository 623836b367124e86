#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Honest nodes do not hold the same trust view at the same instant: a revocation reaches some
//! before others, a charter amendment too, and clocks differ by a little. An object one node
//! refuses for what it holds, another may have accepted and forwarded in good faith. A hostile
//! member that sends its records to some nodes and the revocation of its own key to others
//! used to have every honest forwarder penalised by the nodes holding the revocation (each
//! refusal counted as an invalid message) until they cut it; now only an object that is bad
//! for what it is blames its forwarder.

use std::time::Duration;

use accord_core::{SecretKey, Timestamp};
use accord_tests::harness::{
    TestFed, admitted, dial_addr, gossips_to, metric, now, raw_peer, wait_until,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_of_objects_refused_by_anothers_trust_view_is_not_blamed() {
    let tf = TestFed::new(&["KZ", "BY"], 54).unwrap();
    let b = tf.spawn(1, vec![]).await.unwrap();
    let t = now().0;
    // B holds KZ's revocation of its publisher key; the forwarder has not heard of it.
    let revocation = tf.revoke_publisher_key(0, Timestamp(t - 600_000));
    let out = b
        .submit(vec![revocation.as_bytes().to_vec()])
        .await
        .unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    let b_addr = dial_addr(&b).await.unwrap();
    let f_key = SecretKey::from_seed([55; 32]);
    let cert = tf.extra_node_cert(0, &f_key, "forwarder");
    let (f, _events) = raw_peer(&f_key, &tf, Some(cert.as_bytes().to_vec()), vec![b_addr]).await;
    assert!(wait_until(Duration::from_secs(30), || admitted(&b, 1)).await);
    assert!(wait_until(Duration::from_secs(30), || gossips_to(&f, &b)).await);
    // Records signed by the revoked key, as a node that accepted them forwards them: more than
    // enough refusals to cut a peer that sent as many invalid messages.
    let ignored = "accord_gossip_messages_total{direction=\"in\",verdict=\"ignore\"}";
    let rejected = "accord_gossip_messages_total{direction=\"in\",verdict=\"reject\"}";
    let mut i = 0u64;
    assert!(
        wait_until(Duration::from_secs(60), || {
            let batch: Vec<Vec<u8>> = (0..10)
                .map(|_| {
                    i += 1;
                    tf.fed
                        .record(0, &format!("forwarded {i}"), Timestamp(t - 10_000 + i))
                        .into_bytes()
                })
                .collect();
            let (f, b) = (f.clone(), b.clone());
            async move {
                for m in batch {
                    let _ = f.publish(m).await;
                }
                metric(&b, ignored).await + metric(&b, rejected).await >= 40.0
            }
        })
        .await,
        "B did not judge the forwarded records: {} ignored, {} rejected",
        metric(&b, ignored).await,
        metric(&b, rejected).await
    );
    assert_eq!(metric(&b, rejected).await, 0.0);
    let f_id = f.local_peer_id().to_string();
    let peers = b.peers().await.unwrap();
    assert!(
        peers.iter().any(|p| p.peer_id == f_id && p.admitted),
        "the forwarder was cut: {peers:?}"
    );
    b.shutdown().await;
}
