//! Reconciliation on loopback with real libp2p: nodes converge whatever gossip missed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use accord_core::{ObjectType, SecretKey, SignedObject, Timestamp};
use accord_net::NetworkEvent;
use accord_node::{AdmissionMode, Node, NodeHandle};
use accord_tests::harness::{TestFed, admitted, dial_addr, has, now, raw_peer, wait_until};

async fn records(node: &NodeHandle) -> u64 {
    node.status()
        .await
        .map(|s| s.counts.get(&ObjectType::Record).copied().unwrap_or(0))
        .unwrap_or(0)
}

fn batch(tf: &TestFed, member: usize, n: usize, tag: &str) -> Vec<SignedObject> {
    let t = now().0 - 60_000;
    (0..n)
        .map(|i| {
            tf.fed
                .record(member, &format!("{tag} {i}"), Timestamp(t + i as u64))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_catches_up_on_a_thousand_records() {
    let tf = TestFed::new(&["KZ", "BY"], 21).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let b = tf.spawn(1, vec![a_addr.clone()]).await.unwrap();
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    b.shutdown().await;

    let recs = batch(&tf, 0, 1000, "while B was down");
    for chunk in recs.chunks(250) {
        let out = a
            .submit(chunk.iter().map(|r| r.as_bytes().to_vec()).collect())
            .await
            .unwrap();
        assert!(out.iter().all(|o| o.status == "accepted"));
    }
    let restarted = Instant::now();
    // Only the session started on admission runs (no periodic ones), so the figures read
    // below are that session's and no later one can replace them.
    let mut cfg = tf.config(1, vec![a_addr], AdmissionMode::Members);
    cfg.sync.interval_secs = 3600;
    let b = Node::spawn(cfg).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            records(&b).await == 1000
        })
        .await,
        "B holds all 1000 records within 30 s of restarting (has {})",
        records(&b).await
    );
    eprintln!("caught up on 1000 records in {:?}", restarted.elapsed());
    for r in recs.iter().step_by(97) {
        assert!(has(&b, r.id()).await);
    }
    // The contract operators rely on: the session that brought the records is visible by the
    // time the records are, with what it found missing (running, or already ended cleanly).
    let stats = b.sync_stats();
    assert!(
        stats.iter().any(|(_, s)| match &s.running {
            Some(r) => r.missing >= 1000,
            None => s.missing >= 1000 && s.error.is_none(),
        }),
        "the catch-up session is published when its records are visible: {stats:?}"
    );
    // Then it ends, cleanly, having fetched what it found missing.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            b.sync_stats().iter().any(|(_, s)| {
                s.running.is_none()
                    && s.sessions >= 1
                    && s.fetched_total >= 1000
                    && s.error.is_none()
            })
        })
        .await,
        "the catch-up session ends: {:?}",
        b.sync_stats()
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_halves_of_a_six_node_devnet_converge_after_a_partition() {
    let codes = ["KZ", "BY", "AM", "KG", "UZ", "TJ"];
    let tf = TestFed::new(&codes, 22).unwrap();
    // Two halves, each a chain of three, not connected to each other.
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for i in 0..6 {
        let bootstrap = if i % 3 == 0 {
            vec![]
        } else {
            vec![dial_addr(&nodes[i - 1]).await.unwrap()]
        };
        nodes.push(tf.spawn(i, bootstrap).await.unwrap());
    }
    for (i, n) in nodes.iter().enumerate() {
        let want = if i % 3 == 1 { 2 } else { 1 };
        assert!(
            wait_until(Duration::from_secs(20), || admitted(n, want)).await,
            "node {i}"
        );
    }
    let left = batch(&tf, 0, 40, "left");
    let right = batch(&tf, 3, 40, "right");
    nodes[0]
        .submit(left.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    nodes[3]
        .submit(right.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    // Each half converges on its own records by gossip.
    for (i, n) in nodes.iter().enumerate() {
        let n = n.clone();
        assert!(
            wait_until(Duration::from_secs(20), || {
                let n = n.clone();
                async move { records(&n).await == 40 }
            })
            .await,
            "half of node {i}"
        );
    }
    // Join the halves with one connection: reconciliation brings everyone to the union.
    let joined = Instant::now();
    nodes[2]
        .network()
        .dial(dial_addr(&nodes[3]).await.unwrap().parse().unwrap())
        .await
        .unwrap();
    for (i, n) in nodes.iter().enumerate() {
        let n = n.clone();
        assert!(
            wait_until(Duration::from_secs(60), || {
                let n = n.clone();
                async move { records(&n).await == 80 }
            })
            .await,
            "node {i} reached the union (has {})",
            records(&nodes[i]).await
        );
    }
    eprintln!(
        "six nodes converged {:?} after the halves were joined",
        joined.elapsed()
    );
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_node_receives_the_whole_history_with_its_trust_objects() {
    let tf = TestFed::new(&["KZ", "BY", "AM"], 23).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let recs: Vec<SignedObject> = (0..3).flat_map(|m| batch(&tf, m, 30, "history")).collect();
    let out = a
        .submit(recs.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");
    // The newcomer knows only the charter and its own certificate: no delegation at all.
    let mut cfg = tf.config(
        2,
        vec![dial_addr(&a).await.unwrap()],
        accord_node::AdmissionMode::Members,
    );
    cfg.preload.clear();
    let c = Node::spawn(cfg).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            records(&c).await == 90
        })
        .await,
        "the newcomer has every record (has {})",
        records(&c).await
    );
    let s = c.status().await.unwrap();
    assert_eq!(
        s.counts[&ObjectType::Delegation],
        3,
        "it fetched the delegations the records depend on"
    );
    assert_eq!(s.pending, 0, "nothing is left waiting");
    // What A served the newcomer is counted on A (it counted only the sessions A ran, so a
    // node serving a newcomer's whole catch-up looked idle).
    let served = |node: NodeHandle, direction: &'static str| async move {
        accord_tests::harness::metric(
            &node,
            &format!("accord_sync_served_bytes_total{{direction=\"{direction}\"}}"),
        )
        .await
    };
    let history: usize = recs.iter().map(|r| r.as_bytes().len()).sum();
    assert!(served(a.clone(), "out").await >= history as f64);
    assert!(served(a.clone(), "in").await > 0.0);
    a.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_answering_garbage_is_cut_off_and_the_node_stays_healthy() {
    let tf = TestFed::new(&["KZ", "BY"], 24).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    // A certified peer that answers every sync request with garbage.
    let key = SecretKey::from_seed([90; 32]);
    let cert = tf.extra_node_cert(1, &key, "garbage");
    let (handle, mut events) =
        raw_peer(&key, &tf, Some(cert.into_bytes()), vec![a_addr.clone()]).await;
    let cut_off = tokio::time::timeout(Duration::from_secs(30), async {
        let mut answered = 0;
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::SyncRequest { request_id, .. } => {
                    answered += 1;
                    // Looks like a reconcile answer, is nonsense.
                    let _ = handle
                        .respond(request_id, vec![0x01, 0x61, 0xff, 0xfe, 0x13, 0x37])
                        .await;
                }
                NetworkEvent::PeerDisconnected { .. } => return answered,
                _ => {}
            }
        }
        answered
    })
    .await
    .expect("the garbage peer was cut off");
    assert!(cut_off >= 1, "A asked the peer to reconcile");
    // A is healthy: it still stores and serves.
    let rec = tf.fed.record(0, "after the garbage peer", now());
    assert_eq!(
        a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );
    assert!(has(&a, rec.id()).await);
    let stats = a.sync_stats();
    assert!(stats.iter().any(|(_, s)| s.error.is_some()), "{stats:?}");
    handle.shutdown().await;
    a.shutdown().await;
}

/// A certified peer reconciles correctly, then answers the fetch of what it offered with one
/// more object, which it never offered: the answer is refused whole (nothing of it stored, the
/// object it was not asked for least of all), the peer is cut off, and the session's error
/// says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_what_it_was_not_asked_for_is_cut_off_and_nothing_of_that_answer_kept() {
    let tf = TestFed::new(&["KZ", "BY"], 25).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let t = now().0 - 60_000;
    let offered: Vec<SignedObject> = (0..5)
        .map(|i| tf.fed.record(1, &format!("offered {i}"), Timestamp(t + i)))
        .collect();
    let pushed = tf.fed.record(1, "never offered", Timestamp(t + 100));
    let snapshot = snapshot_of(&offered, t);
    let key = SecretKey::from_seed([91; 32]);
    let cert = tf.extra_node_cert(1, &key, "pusher");
    let (handle, mut events) = raw_peer(&key, &tf, Some(cert.into_bytes()), vec![a_addr]).await;
    let fetches = serve_sync_until_cut(&handle, &mut events, &snapshot, |ids| {
        let mut objects: Vec<Vec<u8>> = offered
            .iter()
            .filter(|o| ids.contains(&o.id()))
            .map(|o| o.as_bytes().to_vec())
            .collect();
        objects.push(pushed.as_bytes().to_vec());
        objects
    })
    .await;
    let asked: Vec<_> = fetches.concat();
    let mut offered_ids: Vec<_> = offered.iter().map(|o| o.id()).collect();
    offered_ids.sort();
    let mut asked_ids = asked.clone();
    asked_ids.sort();
    assert_eq!(asked_ids, offered_ids, "A asked for what the peer offered");
    assert!(
        !has(&a, pushed.id()).await,
        "the object not asked for was stored"
    );
    for o in &offered {
        assert!(
            !has(&a, o.id()).await,
            "an object of the refused answer was stored"
        );
    }
    let stats = a.sync_stats();
    assert!(
        stats.iter().any(|(_, s)| s
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not asked for"))),
        "{stats:?}"
    );
    handle.shutdown().await;
    a.shutdown().await;
}

/// A certified peer offers objects in reconciliation and serves them with broken signatures
/// (each hashes to the id it offered): what no honest peer serves, since it checked them
/// before storing them. It is penalised and cut off, rather than having them fetched and
/// checked again at every session; nothing of them is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_invalid_objects_in_reconciliation_is_cut_off() {
    let tf = TestFed::new(&["KZ", "BY"], 26).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let t = now().0 - 60_000;
    let offered: Vec<SignedObject> = (0..4)
        .map(|i| tf.fed.record(1, &format!("broken {i}"), Timestamp(t + i)))
        .collect();
    let snapshot = snapshot_of(&offered, t);
    let key = SecretKey::from_seed([92; 32]);
    let cert = tf.extra_node_cert(1, &key, "breaker");
    let (handle, mut events) = raw_peer(&key, &tf, Some(cert.into_bytes()), vec![a_addr]).await;
    // The envelope ends with the signature: its last byte flipped.
    let fetches = serve_sync_until_cut(&handle, &mut events, &snapshot, |ids| {
        offered
            .iter()
            .filter(|o| ids.contains(&o.id()))
            .map(|o| {
                let mut b = o.as_bytes().to_vec();
                if let Some(last) = b.last_mut() {
                    *last ^= 1;
                }
                b
            })
            .collect()
    })
    .await;
    assert_eq!(
        fetches.len(),
        1,
        "cut after the first answer of invalid objects"
    );
    for o in &offered {
        assert!(!has(&a, o.id()).await, "an invalid object was stored");
    }
    handle.shutdown().await;
    a.shutdown().await;
}

/// A peer that has not admitted us yet refuses our session, and its three quick retries. The
/// session runs again as soon as that peer's own reconciliation reaches us (proof that it has
/// admitted us now), not at our next periodic session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_peer_refused_runs_again_when_the_peer_asks_us() {
    let tf = TestFed::new(&["KZ", "BY"], 23).unwrap();
    // A reconciles on admission and otherwise only hourly; heartbeats (which also call for
    // sessions) come after the test's deadline.
    let a_cfg = |bootstrap: Vec<String>| {
        let mut c = tf.config(0, bootstrap, AdmissionMode::Members);
        c.sync.interval_secs = 3600;
        c
    };
    // Each holds a record the other lacks before they meet (so gossip cannot carry them).
    let a = Node::spawn(a_cfg(vec![])).await.unwrap();
    let ra = tf.fed.record(0, "Held by A", now());
    a.submit(vec![ra.as_bytes().to_vec()]).await.unwrap();
    a.shutdown().await;
    drop(a);
    let mut b_cfg = tf.config(1, vec![], AdmissionMode::Members);
    b_cfg.sync.interval_secs = 3;
    // A's session on admission and its three retries are refused.
    b_cfg.sync.refuse_first_requests = 4;
    let b = Node::spawn(b_cfg).await.unwrap();
    let rb = tf.fed.record(1, "Held by B", now());
    b.submit(vec![rb.as_bytes().to_vec()]).await.unwrap();

    let a = Node::spawn(a_cfg(vec![dial_addr(&b).await.unwrap()]))
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    assert!(
        wait_until(Duration::from_secs(20), || has(&b, ra.id())).await,
        "B's own session fetched A's record"
    );
    assert!(
        wait_until(Duration::from_secs(20), || has(&a, rb.id())).await,
        "A reconciled with B again once B asked it: {:?}",
        a.sync_stats()
    );
    let stats = a.sync_stats();
    let (_, s) = &stats[0];
    assert!(
        s.sessions >= 2 || s.running.is_some(),
        "the first session failed and another ran: {stats:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// The adversary of the test above: a certified peer that refuses every session of ours and
/// floods us with requests of its own. Each of its requests may restart our session with it,
/// but one at a time, and only while it keeps asking: our requests to it stay a handful, stop
/// when its flood stops, and the node stays healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_refuses_our_sessions_and_floods_us_gets_one_session_at_a_time() {
    let tf = TestFed::new(&["KZ", "BY"], 25).unwrap();
    let mut cfg = tf.config(0, vec![], AdmissionMode::Members);
    cfg.sync.interval_secs = 3600;
    let a = Node::spawn(cfg).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let key = SecretKey::from_seed([91; 32]);
    let cert = tf.extra_node_cert(1, &key, "refuser");
    let (handle, mut events) =
        raw_peer(&key, &tf, Some(cert.into_bytes()), vec![a_addr.clone()]).await;
    let a_peer: libp2p::PeerId = a.peer_id().parse().unwrap();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // When the flood began and when its last request was answered: each request A answers
    // after a session of its own ended may start one more, so the bound grows with the flood's
    // length (on a loaded machine 100 requests can take seconds).
    let flood_done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood_span = std::sync::Arc::new(std::sync::Mutex::new(None::<(Instant, Option<Instant>)>));
    let refuse = {
        let (handle, asked, flood_done, flood_span) = (
            handle.clone(),
            asked.clone(),
            flood_done.clone(),
            flood_span.clone(),
        );
        tokio::spawn(async move {
            let mut flooded = false;
            while let Some(ev) = events.recv().await {
                if let NetworkEvent::SyncRequest { request_id, .. } = ev {
                    asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let no = accord_sync::Response::Refused("not admitted".into()).encode();
                    let _ = handle.respond(request_id, no).await;
                    // Once refused, a flood of 100 requests of its own.
                    if !flooded {
                        flooded = true;
                        *flood_span.lock().unwrap() = Some((Instant::now(), None));
                        for i in 0..100u32 {
                            let (h, done, span) =
                                (handle.clone(), flood_done.clone(), flood_span.clone());
                            tokio::spawn(async move {
                                let id = accord_core::ObjectId::of_body(&i.to_le_bytes());
                                let req = accord_sync::Request::Fetch(vec![id]).encode();
                                let _ = h.sync_request(a_peer, req).await;
                                if done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 99
                                    && let Some((_, end)) = span.lock().unwrap().as_mut()
                                {
                                    *end = Some(Instant::now());
                                }
                            });
                        }
                    }
                }
            }
        })
    };
    assert!(
        wait_until(Duration::from_secs(20), || async {
            asked.load(std::sync::atomic::Ordering::SeqCst) >= 1
        })
        .await,
        "A asked the peer to reconcile"
    );
    // A's session on admission (four attempts in 1.8 s) and the few its flood may restart, one
    // after another; then nothing more, however long we wait.
    let settled = async {
        let mut last = asked.load(std::sync::atomic::Ordering::SeqCst);
        loop {
            tokio::time::sleep(Duration::from_secs(4)).await;
            let now = asked.load(std::sync::atomic::Ordering::SeqCst);
            if now == last {
                return now;
            }
            last = now;
        }
    };
    let total = tokio::time::timeout(Duration::from_secs(60), settled)
        .await
        .expect("A's requests to the refusing peer stop");
    // A session is four attempts in about 1.8 s.
    let span = flood_span
        .lock()
        .unwrap()
        .map(|(start, end)| end.unwrap_or_else(Instant::now) - start)
        .expect("the flood began")
        // A flood request never answered must not widen the bound without end.
        .min(Duration::from_secs(30));
    let bound = 16.max(4 * (2 + (span.as_secs_f64() / 1.8).ceil() as usize));
    eprintln!("A asked the refusing peer {total} times; the flood took {span:?}");
    assert!(
        (4..=bound).contains(&total),
        "A asked the refusing peer {total} times for a flood of 100 requests over {span:?}"
    );
    let rec = tf.fed.record(0, "after the refusing peer", now());
    assert_eq!(
        a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );
    assert!(has(&a, rec.id()).await);
    refuse.abort();
    handle.shutdown().await;
    a.shutdown().await;
}

/// A peer that answers every fetch with one object (just before the timeout, say) is not asked
/// again within the session: only a full answer is followed by another request, so such a
/// peer cannot hold a chunk of ids, and other sessions away from them, for hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_answers_fetches_one_object_at_a_time_is_asked_once_a_session() {
    let tf = TestFed::new(&["KZ", "BY"], 83).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    // X: a certified BY node holding ten records A lacks.
    let key = SecretKey::from_seed([84; 32]);
    let cert = tf.extra_node_cert(1, &key, "stalling");
    let t = now().0 - 60_000;
    let held: Vec<SignedObject> = (0..10u64)
        .map(|i| {
            tf.fed
                .record(1, &format!("held back {i}"), Timestamp(t + i))
        })
        .collect();
    let mut index = accord_sync::SyncIndex::new(
        held.iter()
            .enumerate()
            .map(|(i, r)| (Timestamp(t + i as u64), r.id())),
    );
    let snapshot = index.snapshot();
    let (x, mut events) = raw_peer(&key, &tf, Some(cert.as_bytes().to_vec()), vec![a_addr]).await;
    // X answers reconciliation from its snapshot, and each fetch with the first object asked
    // for alone. The requests it receives, in order: R (reconcile) or F (fetch).
    let mut seen = String::new();
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(ev) = events.recv().await {
            let NetworkEvent::SyncRequest {
                request_id, data, ..
            } = ev
            else {
                continue;
            };
            let answer = match accord_sync::Request::decode(&data).unwrap() {
                accord_sync::Request::Reconcile(m) => {
                    seen.push('R');
                    accord_sync::Response::Reconcile(
                        accord_sync::respond(snapshot.clone(), &m).unwrap(),
                    )
                }
                accord_sync::Request::Fetch(ids) => {
                    seen.push('F');
                    let first = held.iter().find(|r| r.id() == ids[0]).unwrap();
                    accord_sync::Response::Objects(vec![first.as_bytes().to_vec()])
                }
            };
            x.respond(request_id, answer.encode()).await.unwrap();
            // Two sessions have fetched.
            if seen.matches('F').count() >= 2 && seen.ends_with('R') {
                return;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "requests seen: {seen}");
    assert!(
        !seen.contains("FF"),
        "asked again after a one-object answer: {seen}"
    );
    assert!(wait_until(Duration::from_secs(30), || async { records(&a).await >= 2 }).await);
    x.shutdown().await;
    a.shutdown().await;
}

/// A fetch that names one object a thousand times gets it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_naming_one_object_many_times_gets_it_once() {
    let tf = TestFed::new(&["KZ", "BY"], 85).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let rec = tf.fed.record(0, "asked for a thousand times", now());
    let out = a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "accepted");
    let key = SecretKey::from_seed([86; 32]);
    let cert = tf.extra_node_cert(1, &key, "greedy");
    let (x, _events) = raw_peer(&key, &tf, Some(cert.as_bytes().to_vec()), vec![a_addr]).await;
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    let a_peer: accord_net::Peer = a.peer_id().parse().unwrap();
    let ask = accord_sync::Request::Fetch(vec![rec.id(); accord_sync::MAX_FETCH_IDS]).encode();
    let raw = x.sync_request(a_peer, ask).await.unwrap();
    match accord_sync::Response::decode(&raw, accord_core::Limits::default().scan()).unwrap() {
        accord_sync::Response::Objects(o) => assert_eq!(o, vec![rec.as_bytes().to_vec()]),
        other => panic!("{other:?}"),
    }
    x.shutdown().await;
    a.shutdown().await;
}

/// The ids `peer` holds, by a reconciliation session from an empty view, run by hand.
async fn ids_held_by(
    x: &accord_net::NetworkHandle,
    peer: accord_net::Peer,
) -> Vec<accord_core::ObjectId> {
    let empty = accord_sync::SyncIndex::new(Vec::new()).snapshot();
    let (mut session, mut msg) = accord_sync::Initiator::start(empty).unwrap();
    let scan = accord_core::Limits::default().scan();
    loop {
        let raw = x
            .sync_request(peer, accord_sync::Request::Reconcile(msg).encode())
            .await
            .unwrap();
        let accord_sync::Response::Reconcile(answer) =
            accord_sync::Response::decode(&raw, scan).unwrap()
        else {
            panic!("not a reconcile answer");
        };
        match session.on_message(&answer).unwrap() {
            accord_sync::Outcome::Send(next) => msg = next,
            accord_sync::Outcome::Done { need, .. } => return need,
        }
    }
}

/// A reconcile request is answered from a view of the store that holds everything stored
/// before it arrived, however soon after the view the previous request was answered from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_request_sees_everything_stored_before_it() {
    let tf = TestFed::new(&["KZ", "BY"], 87).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let key = SecretKey::from_seed([88; 32]);
    let cert = tf.extra_node_cert(1, &key, "asking");
    let (x, _events) = raw_peer(&key, &tf, Some(cert.as_bytes().to_vec()), vec![a_addr]).await;
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    let a_peer: accord_net::Peer = a.peer_id().parse().unwrap();
    let before = ids_held_by(&x, a_peer).await;
    for n in 0..5 {
        let rec = tf.fed.record(0, &format!("stored just before {n}"), now());
        let out = a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
        assert_eq!(out[0].status, "accepted");
        let held = ids_held_by(&x, a_peer).await;
        assert!(
            held.contains(&rec.id()),
            "round {n}: the view missed what was just stored"
        );
        assert_eq!(held.len(), before.len() + n + 1);
    }
    x.shutdown().await;
    a.shutdown().await;
}

/// Plays a peer's side of reconciliation with `snapshot` until it is disconnected (or 30 s
/// pass): reconcile rounds answered honestly, each fetch with `answer(ids asked)`. Returns the
/// fetches it was asked, in order.
async fn serve_sync_until_cut(
    handle: &accord_net::NetworkHandle,
    events: &mut accord_net::NetworkEvents,
    snapshot: &std::sync::Arc<accord_sync::Snapshot>,
    answer: impl Fn(&[accord_core::ObjectId]) -> Vec<Vec<u8>>,
) -> Vec<Vec<accord_core::ObjectId>> {
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut fetches = Vec::new();
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::SyncRequest {
                    request_id, data, ..
                } => {
                    let reply = match accord_sync::Request::decode(&data).unwrap() {
                        accord_sync::Request::Reconcile(msg) => accord_sync::Response::Reconcile(
                            accord_sync::respond(snapshot.clone(), &msg).unwrap(),
                        ),
                        accord_sync::Request::Fetch(ids) => {
                            let objects = answer(&ids);
                            fetches.push(ids);
                            accord_sync::Response::Objects(objects)
                        }
                    };
                    let _ = handle.respond(request_id, reply.encode()).await;
                }
                NetworkEvent::PeerDisconnected { .. } => return fetches,
                _ => {}
            }
        }
        fetches
    })
    .await
    .expect("the peer was cut off")
}

/// A charter allows objects above a reconciliation response's usual 8 MiB: a node that missed
/// such a record (it was not connected when it was gossiped) fetches it by reconciliation. It
/// used to be cut from every answer, so only gossip could ever carry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_larger_than_a_usual_response_is_reconciled() {
    let tf = TestFed::with_limits(
        &["KZ", "BY"],
        27,
        accord_core::Limits {
            max_object_bytes: 12 << 20,
            ..accord_core::Limits::default()
        },
    )
    .unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let mut body = tf.fed.record_body(0, "a very long report", now());
    body.body.insert("en".into(), "report ".repeat(1_300_000));
    let big = accord_core::Object::Record(body).sign(&tf.fed.members[0].publisher);
    assert!(big.as_bytes().len() > accord_net::MAX_SYNC_RESPONSE);
    let small = tf.fed.record(0, "a short note", now());
    a.submit(vec![big.as_bytes().to_vec(), small.as_bytes().to_vec()])
        .await
        .unwrap();
    let b = tf
        .spawn(1, vec![dial_addr(&a).await.unwrap()])
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || async {
            has(&b, big.id()).await && has(&b, small.id()).await
        })
        .await,
        "B did not reconcile the large record: {:?}",
        b.sync_stats()
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// A reconciliation snapshot of `offered`, the i-th created at `t + i`.
fn snapshot_of(offered: &[SignedObject], t: u64) -> std::sync::Arc<accord_sync::Snapshot> {
    accord_sync::SyncIndex::new(
        offered
            .iter()
            .enumerate()
            .map(|(i, o)| (Timestamp(t + i as u64), o.id())),
    )
    .snapshot()
}
