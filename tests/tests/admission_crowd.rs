//! A crowd of strangers that connect and never present a certificate cannot take the places
//! of members: at most `MAX_AWAITING_ADMISSION` wait at once, the longest waiting makes room,
//! and a member node connecting meanwhile is admitted. Nor can a stranger store anything in a
//! node's Kademlia.

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

/// A stranger's Kademlia swarm (client mode, the federation's Kademlia protocol) connected to
/// `addr` (node `peer`), driven by `drive` until it returns `Some`.
async fn with_kad_stranger<T>(
    seed: u8,
    fed: &accord_core::ObjectId,
    peer: libp2p::PeerId,
    addr: Multiaddr,
    mut drive: impl FnMut(
        &mut libp2p::Swarm<libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>>,
        SwarmEvent<libp2p::kad::Event>,
    ) -> Option<T>,
) -> (
    T,
    libp2p::Swarm<libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>>,
) {
    use libp2p::kad;
    let key = libp2p::identity::Keypair::ed25519_from_bytes([seed; 32]).unwrap();
    let local = key.public().to_peer_id();
    let protocol = accord_net::kad_protocol(fed);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            kad::Behaviour::with_config(
                local,
                kad::store::MemoryStore::new(local),
                kad::Config::new(protocol),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.behaviour_mut().set_mode(Some(kad::Mode::Client));
    swarm.behaviour_mut().add_address(&peer, addr.clone());
    swarm.dial(addr).unwrap();
    let t = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let ev = swarm.select_next_some().await;
            if let Some(t) = drive(&mut swarm, ev) {
                return t;
            }
        }
    })
    .await
    .expect("the stranger's Kademlia exchange ended within 30 s");
    (t, swarm)
}

/// Kademlia only finds the federation's nodes: a stranger that connects (never admitted) can
/// store neither a record nor a provider entry in a node, so another stranger asking for them
/// finds nothing. (With libp2p's defaults a node kept 1,024 records and 1,024 × 20 provider
/// entries for anyone until it restarted, and replicated the records to the members.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_store_nothing_in_a_nodes_kademlia() {
    use libp2p::kad::{self, QueryResult};
    let tf = TestFed::new(&["KZ", "BY"], 23).unwrap();
    let a = Node::spawn(tf.config(0, vec![], AdmissionMode::Members))
        .await
        .unwrap();
    let fed = tf.fed.federation();
    let addr: Multiaddr = dial_addr(&a).await.unwrap().parse().unwrap();
    let peer: libp2p::PeerId = a.peer_id().parse().unwrap();
    let record_key = kad::RecordKey::new(&b"planted record");
    let provided = kad::RecordKey::new(&b"planted provider");
    // The first stranger stores a record of 15 KB and announces itself as a provider; the node
    // answers both as Kademlia says (it is one of the closest), and keeps neither.
    let (mut put, mut provide) = (None, None);
    let (mut put_done, mut provide_done) = (false, false);
    let (_, mut first) = with_kad_stranger(0x71, &fed, peer, addr.clone(), |swarm, ev| {
        match ev {
            SwarmEvent::ConnectionEstablished { .. } if put.is_none() => {
                let k = swarm.behaviour_mut();
                let record = kad::Record::new(record_key.clone(), vec![7; 15_000]);
                put = Some(k.put_record(record, kad::Quorum::One).unwrap());
                provide = Some(k.start_providing(provided.clone()).unwrap());
            }
            SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                id,
                result: QueryResult::PutRecord(r),
                ..
            }) if Some(id) == put => {
                r.expect("the node answered the PUT_VALUE");
                put_done = true;
                if provide_done {
                    return Some(());
                }
            }
            SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                id,
                result: QueryResult::StartProviding(r),
                ..
            }) if Some(id) == provide => {
                r.expect("the ADD_PROVIDER was sent");
                provide_done = true;
                if put_done {
                    return Some(());
                }
            }
            _ => {}
        }
        None
    })
    .await;
    // The first stranger stays connected (its messages all delivered) while the second asks.
    let first = tokio::spawn(async move {
        loop {
            first.select_next_some().await;
        }
    });
    // A second stranger asks the node for both: nothing.
    let (mut get, mut providers) = (None, None);
    let mut found: Vec<String> = Vec::new();
    let mut done = 0;
    let _ = with_kad_stranger(0x72, &fed, peer, addr, |swarm, ev| {
        match ev {
            SwarmEvent::ConnectionEstablished { .. } if get.is_none() => {
                let k = swarm.behaviour_mut();
                get = Some(k.get_record(record_key.clone()));
                providers = Some(k.get_providers(provided.clone()));
            }
            SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            }) if Some(id) == get || Some(id) == providers => {
                match result {
                    QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(r))) => {
                        found.push(format!("record of {} bytes", r.record.value.len()))
                    }
                    QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                        providers,
                        ..
                    })) if !providers.is_empty() => found.push(format!("providers {providers:?}")),
                    _ => {}
                }
                if step.last {
                    done += 1;
                    if done == 2 {
                        return Some(());
                    }
                }
            }
            _ => {}
        }
        None
    })
    .await;
    assert!(
        found.is_empty(),
        "the node gave out what a stranger stored: {found:?}"
    );
    first.abort();
    a.shutdown().await;
}
