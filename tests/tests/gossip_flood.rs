#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A peer floods a node with gossip faster than the node takes it in. The node's swarm never
//! blocks: what does not fit in the bounded gossip queue is counted with its sender, and the
//! control events (here a reconciliation request from the same peer) still arrive, on their
//! own queue. Before the queues were split, the request was dropped with the gossip.

use std::time::Duration;

use accord_core::SecretKey;
use accord_net::{GOSSIP_CHANNEL_CAPACITY, NetworkEvent};
use accord_tests::harness::{TestFed, raw_peer};

/// The address a peer dials to reach `l`, once `l` listens.
async fn dial_addr_of(l: &accord_net::NetworkHandle) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = l.listen_addrs().await.unwrap().first() {
            break format!("{a}/p2p/{}", l.local_peer_id());
        }
        assert!(tokio::time::Instant::now() < deadline, "L listens");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossip_flood_is_counted_and_cannot_crowd_out_control_events() {
    let tf = TestFed::new(&["KZ"], 71).unwrap();
    let l_key = SecretKey::from_seed([72; 32]);
    let s_key = SecretKey::from_seed([73; 32]);
    let (l, l_events) = raw_peer(&l_key, &tf, None, vec![]).await;
    // L takes its control events and never its gossip: the slowest possible node.
    let (mut l_control, gossip) = l_events.split();
    let l_addr = dial_addr_of(&l).await;
    let (s, mut s_events) = raw_peer(&s_key, &tf, None, vec![l_addr]).await;
    let s_peer = s.local_peer_id();
    let l_peer = l.local_peer_id();
    // Both sides admit each other (open admission: on connection).
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut seen = (false, false);
        while seen != (true, true) {
            tokio::select! {
                Some(ev) = l_control.recv() => {
                    if matches!(ev, NetworkEvent::PeerAdmitted { peer } if peer == s_peer) {
                        seen.0 = true;
                    }
                }
                Some(ev) = s_events.recv() => {
                    if matches!(ev, NetworkEvent::PeerAdmitted { peer } if peer == l_peer) {
                        seen.1 = true;
                    }
                }
            }
        }
    })
    .await
    .expect("both admitted");
    // S's first message goes out once S knows L's subscription.
    tokio::time::timeout(Duration::from_secs(30), async {
        while s.publish(b"flood 0".to_vec()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("gossip reaches L");
    // More than L's gossip queue holds, until L has counted messages it could not take.
    let mut n = 1usize;
    let flooded = tokio::time::timeout(Duration::from_secs(120), async {
        while l.missed_gossip().count() == 0 {
            for _ in 0..500 {
                let _ = s.publish(format!("flood {n}").into_bytes()).await;
                n += 1;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(flooded.is_ok(), "{n} messages published, none missed by L");
    assert!(n > GOSSIP_CHANNEL_CAPACITY);
    assert_eq!(
        gossip.backlog(),
        GOSSIP_CHANNEL_CAPACITY,
        "the gossip queue is full and bounded"
    );
    assert_eq!(
        l.missed_gossip().take_peers(),
        vec![s_peer],
        "the sender is known"
    );
    // With the gossip queue full, S's reconciliation request still reaches L.
    let request = tokio::spawn({
        let s = s.clone();
        async move { s.sync_request(l_peer, b"are you there".to_vec()).await }
    });
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = l_control.recv().await {
            if let NetworkEvent::SyncRequest {
                peer,
                request_id,
                data,
            } = ev
            {
                assert_eq!(peer, s_peer);
                l.respond(request_id, data).await.unwrap();
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "the control event arrived during the flood");
    let answer = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .expect("answered")
        .unwrap()
        .unwrap();
    assert_eq!(answer, b"are you there");
    drop(gossip);
    s.shutdown().await;
    l.shutdown().await;
}

/// The gossip queue is bounded in bytes too (`network.gossip_queue_mb`): a node given a small
/// byte bound holds at most that much of a flood of large messages, however few they are, and
/// counts the rest with their sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gossip_queue_is_bounded_in_bytes_as_configured() {
    use accord_tests::harness::{raw_peer_config, start_raw_peer};
    let tf = TestFed::new(&["KZ"], 74).unwrap();
    let l_key = SecretKey::from_seed([75; 32]);
    let s_key = SecretKey::from_seed([76; 32]);
    const BOUND: usize = 64 * 1024;
    const SIZE: usize = 4 * 1024;
    let mut cfg = raw_peer_config(&l_key, &tf, None, vec![]);
    cfg.gossip_queue_bytes = BOUND;
    let (l, l_events) = start_raw_peer(cfg);
    let (mut l_control, gossip) = l_events.split();
    let l_addr = dial_addr_of(&l).await;
    let (s, _s_events) = raw_peer(&s_key, &tf, None, vec![l_addr]).await;
    let s_peer = s.local_peer_id();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = l_control.recv().await {
            if matches!(ev, NetworkEvent::PeerAdmitted { peer } if peer == s_peer) {
                break;
            }
        }
    })
    .await
    .expect("S admitted by L");
    // Distinct messages of 4 KiB (gossipsub drops repeats), until L has counted one it could
    // not take: far fewer than the messages the queue would hold by count.
    let message = |n: usize| {
        let mut m = format!("large {n} ").into_bytes();
        m.resize(SIZE, b'.');
        m
    };
    let mut n = 0usize;
    let flooded = tokio::time::timeout(Duration::from_secs(60), async {
        while l.missed_gossip().count() == 0 {
            if s.publish(message(n)).await.is_ok() {
                n += 1;
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
    .await;
    assert!(flooded.is_ok(), "{n} messages published, none missed by L");
    assert!(n < accord_net::GOSSIP_CHANNEL_CAPACITY, "{n} messages");
    assert!(
        gossip.backlog_bytes() <= BOUND,
        "{} bytes queued",
        gossip.backlog_bytes()
    );
    assert!(
        gossip.backlog() <= BOUND / SIZE && gossip.backlog() >= BOUND / SIZE - 1,
        "{} messages queued",
        gossip.backlog()
    );
    assert_eq!(l.missed_gossip().take_peers(), vec![s_peer]);
    drop(gossip);
    s.shutdown().await;
    l.shutdown().await;
}
