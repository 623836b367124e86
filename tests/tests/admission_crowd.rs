//! A crowd of strangers that connect and never present a certificate cannot take the places
//! of members: at most `MAX_AWAITING_ADMISSION` wait at once, the longest waiting makes room,
//! and a member node connecting meanwhile is admitted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use accord_net::MAX_AWAITING_ADMISSION;
use accord_node::{AdmissionMode, Node};
use accord_tests::harness::{TestFed, admitted, dial_addr, wait_until};
use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, noise, ping, tcp, yamux};
use tokio::sync::mpsc;

/// What happened to silent peer `n`: connected (`true`) or gone (`false`).
type Report = (usize, bool);

/// A libp2p peer that speaks nothing Accord speaks: it connects and stays silent.
fn silent_peer(n: usize, addr: Multiaddr, tx: mpsc::Sender<Report>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seed = [0x5a; 32];
        seed[..8].copy_from_slice(&(n as u64).to_be_bytes());
        let key = libp2p::identity::Keypair::ed25519_from_bytes(seed).unwrap();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| ping::Behaviour::default())
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        swarm.dial(addr).unwrap();
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => {
                    let _ = tx.send((n, true)).await;
                }
                SwarmEvent::ConnectionClosed { .. }
                | SwarmEvent::OutgoingConnectionError { .. } => {
                    let _ = tx.send((n, false)).await;
                    return;
                }
                _ => {}
            }
        }
    })
}

async fn next(rx: &mut mpsc::Receiver<Report>) -> Report {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a silent peer reported within 30 s")
        .expect("the channel is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_awaiting_admission_cannot_crowd_out_a_member() {
    let tf = TestFed::new(&["KZ", "BY"], 19).unwrap();
    // Strangers are never timed out here, so only the cap can make room.
    let mut cfg = tf.config(0, vec![], AdmissionMode::Members);
    cfg.network.admission_timeout_secs = 600;
    let a = Node::spawn(cfg).await.unwrap();
    let addr: Multiaddr = dial_addr(&a).await.unwrap().parse().unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let mut crowd = Vec::new();
    // Fill every waiting place, one after the other.
    for n in 0..MAX_AWAITING_ADMISSION {
        crowd.push(silent_peer(n, addr.clone(), tx.clone()));
        assert_eq!(next(&mut rx).await, (n, true), "stranger {n} connected");
    }
    // One more: one of those waiting longest makes room (A orders them by when its side of
    // each connection was established, which can differ from the strangers' own order for two
    // that connected within a round trip of each other), never the newcomer.
    crowd.push(silent_peer(
        MAX_AWAITING_ADMISSION,
        addr.clone(),
        tx.clone(),
    ));
    let dropped = loop {
        match next(&mut rx).await {
            (n, false) => break n,
            (n, true) => assert_eq!(n, MAX_AWAITING_ADMISSION),
        }
    };
    assert!(
        dropped < MAX_AWAITING_ADMISSION / 2,
        "stranger {dropped} was dropped, not one of those waiting longest"
    );
    // A member's node arrives while more strangers keep coming: it is admitted.
    for n in MAX_AWAITING_ADMISSION + 1..MAX_AWAITING_ADMISSION + 10 {
        crowd.push(silent_peer(n, addr.clone(), tx.clone()));
    }
    let b = tf.spawn(1, vec![addr.to_string()]).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || admitted(&a, 1)).await,
        "the member's node was not admitted among the crowd"
    );
    // And the strangers never hold more than their places.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            a.peers()
                .await
                .unwrap()
                .iter()
                .filter(|p| !p.admitted)
                .count()
                <= MAX_AWAITING_ADMISSION
        })
        .await
    );
    for c in crowd {
        c.abort();
    }
    b.shutdown().await;
    a.shutdown().await;
}
