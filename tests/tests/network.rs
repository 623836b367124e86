//! Multi-node tests on loopback with real libp2p: gossip across a line of nodes, refusal of
//! invalid objects at submit and in gossip, admission of members only, restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use accord_core::object::TargetType;
use accord_core::{Object, ObjectId, ObjectType, Revocation, SecretKey, SignedObject, Timestamp};
use accord_net::NetworkEvent;
use accord_tests::harness::{
    TestFed, admitted, dial_addr, disconnected, gossips_to, has, now, raw_peer, wait_until,
};

/// Logs to the test output when RUST_LOG is set (per-node fields carry the member and peer).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Waits until `rx` yields the object `id`.
async fn receives(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<accord_core::Verified<Object>>>,
    id: ObjectId,
    timeout: Duration,
) -> bool {
    tokio::time::timeout(timeout, async {
        loop {
            match rx.recv().await {
                Ok(v) if v.id() == id => return true,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_reaches_five_nodes_in_a_line() {
    logs();
    let codes = ["KZ", "BY", "AM", "KG", "UZ"];
    let tf = TestFed::new(&codes, 11).unwrap();
    let mut nodes = Vec::new();
    for i in 0..codes.len() {
        // Each node knows only its left neighbour.
        let bootstrap = match nodes.last() {
            Some(prev) => vec![dial_addr(prev).await.expect("listen address")],
            None => vec![],
        };
        nodes.push(tf.spawn(i, bootstrap).await.unwrap());
    }
    for (i, n) in nodes.iter().enumerate() {
        let want = if i == 0 || i == codes.len() - 1 { 1 } else { 2 };
        assert!(
            wait_until(Duration::from_secs(20), || admitted(n, want)).await,
            "node {i} admitted its neighbours"
        );
    }
    let mut subs: Vec<_> = nodes.iter().map(|n| n.subscribe()).collect();
    let rec = tf.fed.record(0, "Line test", now());
    let started = Instant::now();
    let out = nodes[0]
        .submit(vec![rec.as_bytes().to_vec()])
        .await
        .unwrap();
    assert_eq!(out[0].status, "accepted");
    for (i, sub) in subs.iter_mut().enumerate().skip(1) {
        assert!(
            receives(sub, rec.id(), Duration::from_secs(30)).await,
            "node {i} received the record"
        );
        assert!(has(&nodes[i], rec.id()).await);
    }
    eprintln!(
        "record stored by all five nodes after {:?}",
        started.elapsed()
    );
    // Each node says when and from where it took the record: the first, from its publisher;
    // each other, from another of the five (peers also learn of each other beyond the line).
    let id = rec.id();
    let got = |n: accord_node::NodeHandle| async move {
        n.read(move |s| s.received(&id).unwrap())
            .await
            .unwrap()
            .unwrap()
    };
    let (_, source) = got(nodes[0].clone()).await;
    assert_eq!(source, "local");
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let (at, source) = got(node.clone()).await;
        let from = (0..codes.len())
            .find(|j| source == format!("peer {}", tf.fed.members[*j].node.public_key().peer_id()));
        assert!(from.is_some_and(|j| j != i), "node {i}: {source}");
        assert!(at >= rec_created(&rec) && at <= now(), "node {i}: {at}");
    }
    // The record's page data names that node's member and label.
    let base = accord_tests::harness::serve(&nodes[2]).await;
    let (_, detail) = accord_tests::harness::get_json(&base, &format!("/v1/records/{id}")).await;
    let received = &detail["provenance"]["received"];
    assert_eq!(received["source"], "peer", "{detail}");
    let from = tf
        .fed
        .members
        .iter()
        .find(|m| received["peer"] == m.node.public_key().peer_id())
        .unwrap_or_else(|| panic!("{detail}"));
    assert_eq!(received["member"], from.code.as_str(), "{detail}");
    assert_eq!(
        received["node_label"],
        format!("{} development node", from.code),
        "{detail}"
    );
    for n in &nodes {
        n.shutdown().await;
    }
}

/// The creation time a record says.
fn rec_created(rec: &SignedObject) -> Timestamp {
    match Object::decode_body(rec.body(), &accord_core::Limits::default()) {
        Ok(o) => o.created(),
        Err(e) => panic!("{e}"),
    }
}

/// Four kinds of invalid object, each with the reason a node must give.
fn invalid_objects(tf: &TestFed) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let t = now();
    let mut bad_sig = tf.fed.record(0, "tampered", t).into_bytes();
    let n = bad_sig.len();
    bad_sig[n - 3] ^= 0x40; // inside the signature
    let stranger = SecretKey::from_seed([99; 32]);
    let undelegated = Object::Record(tf.fed.record_body(0, "no delegation", t))
        .sign(&stranger)
        .into_bytes();
    let revoked = tf.fed.record(1, "after revocation", t).into_bytes();
    vec![
        ("bad signature", bad_sig, "invalid signature"),
        ("undelegated key", undelegated, "no delegation"),
        ("revoked key", revoked, "revoked since"),
        ("malformed", vec![0x83, 0x01, 0xff, 0x00], "malformed"),
    ]
}

/// A revocation of member 1's publisher key, effective from `since`.
fn revoke_publisher(tf: &TestFed, since: Timestamp) -> SignedObject {
    let m = &tf.fed.members[1];
    Object::Revocation(Revocation {
        object_type: ObjectType::Revocation,
        federation: tf.fed.federation(),
        created: since,
        member: m.code.clone(),
        target_type: TargetType::Key,
        target: ObjectId(*m.publisher.public_key().as_bytes()),
        effective: since,
        reason: Some("test".into()),
    })
    .sign(&m.root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_are_refused_at_submit_and_in_gossip() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 12).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let rev = revoke_publisher(&tf, Timestamp(now().0 - 60_000));
    assert_eq!(
        a.submit(vec![rev.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );

    // At submit: each refused with its reason, nothing stored.
    let invalid = invalid_objects(&tf);
    for (what, bytes, reason) in &invalid {
        let out = a.submit(vec![bytes.clone()]).await.unwrap();
        assert!(
            matches!(out[0].status, "rejected" | "pending"),
            "{what}: {:?}",
            out[0]
        );
        let r = out[0].reason.clone().unwrap_or_default();
        assert!(
            r.contains(reason),
            "{what}: reason {r:?} should mention {reason:?}"
        );
        if let Some(id) = out[0].id {
            assert!(!has(&a, id).await, "{what} stored");
        }
    }

    // In gossip: a certified raw peer S injects them; a certified raw peer L listens on the
    // other side of A. A stores none, forwards none, and S's score drops.
    let s_key = SecretKey::from_seed([61; 32]);
    let l_key = SecretKey::from_seed([62; 32]);
    for k in [&s_key, &l_key] {
        let cert = tf.extra_node_cert(2, k, "test peer");
        assert_eq!(
            a.submit(vec![cert.as_bytes().to_vec()]).await.unwrap()[0].status,
            "accepted"
        );
    }
    let (s, _s_events) = raw_peer(
        &s_key,
        &tf,
        Some(tf.extra_node_cert(2, &s_key, "test peer").into_bytes()),
        vec![a_addr.clone()],
    )
    .await;
    let (_l, mut l_events) = raw_peer(
        &l_key,
        &tf,
        Some(tf.extra_node_cert(2, &l_key, "test peer").into_bytes()),
        vec![a_addr],
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(20), || admitted(&a, 2)).await,
        "A admitted both raw peers"
    );
    // Give gossipsub one heartbeat to graft the newly admitted peers into the mesh.
    assert!(
        wait_until(Duration::from_secs(20), || gossips_to(&s, &a)).await,
        "S can gossip to A"
    );
    let mut a_sub = a.subscribe();
    let ok_first = tf.fed.record(0, "mesh warm-up", now());
    s.publish(ok_first.as_bytes().to_vec()).await.unwrap();
    assert!(
        receives(&mut a_sub, ok_first.id(), Duration::from_secs(10)).await,
        "A hears S"
    );

    let s_peer = accord_net::peer_id_of(&s_key.public_key())
        .unwrap()
        .to_string();
    let s_score = |a: accord_node::NodeHandle, s_peer: String| async move {
        a.peers()
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.peer_id == s_peer)
            .and_then(|p| p.gossip_score)
    };
    let injected_ids: Vec<Option<ObjectId>> = invalid
        .iter()
        .map(|(_, b, _)| {
            SignedObject::decode_draft(b, usize::MAX, accord_core::Limits::default().scan())
                .ok()
                .map(|o| o.id())
        })
        .collect();
    // One invalid object: S's score on A turns negative (S stays connected).
    s.publish(invalid[0].1.clone()).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (a, p) = (a.clone(), s_peer.clone());
            async move { s_score(a, p).await.is_some_and(|x| x < 0.0) }
        })
        .await,
        "S's gossip score dropped below zero after one invalid object"
    );
    // The others: S keeps going and is disconnected. The record of a revoked key and the
    // undelegated one are dropped without blame (an honest node that had not yet the
    // revocation, or held the delegation, forwards them in good faith: PROTOCOL.md §9.1), so S
    // is cut for the objects bad in themselves: a second tampered record and a second
    // malformed message follow.
    let mut tampered = tf.fed.record(0, "tampered again", now()).into_bytes();
    let n = tampered.len();
    tampered[n - 5] ^= 0x40;
    for bytes in invalid[1..]
        .iter()
        .map(|(_, b, _)| b.clone())
        .chain([tampered, vec![0x83, 0x01, 0xfe, 0x00]])
    {
        s.publish(bytes).await.unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (a, p) = (a.clone(), s_peer.clone());
            async move { !a.peers().await.unwrap().iter().any(|x| x.peer_id == p) }
        })
        .await,
        "A disconnected S after repeated invalid objects"
    );
    // A valid record from A now: once L hears it, L would have heard anything A forwarded
    // before on the same connection.
    // Only what reaches L from A counts: S and L may also find each other (both are open raw
    // peers), and what S sends L directly says nothing about A.
    let a_peer = a.status().await.unwrap().peer_id;
    let valid = tf.fed.record(0, "valid after invalid", now());
    a.submit(vec![valid.as_bytes().to_vec()]).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(15), async {
        let mut heard = Vec::new();
        while let Some(ev) = l_events.recv().await {
            if let NetworkEvent::Gossip { data, source, .. } = ev
                && source.to_string() == a_peer
            {
                let done = data == valid.as_bytes();
                heard.push(data);
                if done {
                    break;
                }
            }
        }
        heard
    })
    .await
    .expect("L heard the valid record from A");
    for (what, bytes, _) in &invalid {
        assert!(!heard.contains(bytes), "{what} was forwarded by A");
    }
    for id in injected_ids.into_iter().flatten() {
        assert!(!has(&a, id).await, "an injected invalid object was stored");
    }
    s.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_cannot_stay_connected_and_receives_nothing() {
    let tf = TestFed::new(&["KZ", "BY"], 13).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let before = tf.fed.record(0, "before the stranger", now());
    a.submit(vec![before.as_bytes().to_vec()]).await.unwrap();

    // No certificate at all.
    let stranger = SecretKey::from_seed([77; 32]);
    let (x, mut events) = raw_peer(&stranger, &tf, None, vec![a_addr.clone()]).await;
    let mut published = false;
    let mut gossip = 0;
    let cut = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::PeerConnected { .. } if !published => {
                    published = true;
                    let during = tf.fed.record(0, "while the stranger is connected", now());
                    a.submit(vec![during.as_bytes().to_vec()]).await.unwrap();
                }
                NetworkEvent::Gossip { .. } => gossip += 1,
                NetworkEvent::PeerDisconnected { .. } => return true,
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(cut, "the stranger was disconnected");
    assert_eq!(gossip, 0, "the stranger received gossip");
    x.shutdown().await;

    // A certificate for another key is not enough either.
    let other = SecretKey::from_seed([78; 32]);
    let wrong_cert = tf
        .extra_node_cert(1, &SecretKey::from_seed([79; 32]), "test peer")
        .into_bytes();
    let (y, mut events) = raw_peer(&other, &tf, Some(wrong_cert), vec![a_addr]).await;
    assert!(
        disconnected(&mut events, Duration::from_secs(20)).await,
        "a peer presenting someone else's certificate was disconnected"
    );
    // The stranger saw the connection close; A forgets it when its side closes too.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            a.peers().await.unwrap().is_empty()
        })
        .await,
        "A still lists the peer with someone else's certificate: {:?}",
        a.peers().await.unwrap()
    );
    y.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_every_object() {
    let tf = TestFed::new(&["KZ"], 14).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let t = now();
    let recs: Vec<SignedObject> = (0..50)
        .map(|i| {
            tf.fed
                .record(0, &format!("record {i}"), Timestamp(t.0 - 1000 + i))
        })
        .collect();
    let out = a
        .submit(recs.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"));
    let counts_before = a.status().await.unwrap().counts;
    a.shutdown().await;
    let b = tf.spawn(0, vec![]).await.unwrap();
    assert_eq!(b.status().await.unwrap().counts, counts_before);
    assert_eq!(counts_before[&ObjectType::Record], 50);
    for r in &recs {
        assert!(has(&b, r.id()).await);
    }
    b.shutdown().await;
}

/// The value of a counter (or the sum of its labelled series) in a node's metrics text.
/// A second node given the port another node listens on is refused at start, naming the
/// address (libp2p's listeners share ports, so it used to start and the kernel split the
/// peers' connections between the two nodes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_a_taken_peer_port_is_refused_at_start() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 68).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let taken = a.listen_addrs().await.unwrap()[0].clone();
    let mut cfg = tf.config(1, vec![], accord_node::AdmissionMode::default());
    cfg.network.listen = vec![taken.to_string()];
    let Err(err) = accord_node::Node::spawn(cfg).await else {
        panic!("a second node on the port started");
    };
    let msg = err.to_string();
    assert!(
        msg.contains("network.listen")
            && msg.contains(&taken.to_string())
            && msg.contains("in use by another process"),
        "{msg}"
    );
    a.shutdown().await;
    // One port on IPv4 and IPv6 at once is no clash with itself (the check of the IPv6 address
    // must not take the node's own IPv4 listener for another process).
    let free = std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    if std::net::TcpListener::bind("[::]:0").is_err() {
        eprintln!("no IPv6 on this machine: the dual-stack case is not played");
        return;
    }
    let mut cfg = tf.config(1, vec![], accord_node::AdmissionMode::default());
    cfg.network.listen = vec![
        format!("/ip4/0.0.0.0/tcp/{free}"),
        format!("/ip6/::/tcp/{free}"),
    ];
    let both = accord_node::Node::spawn(cfg)
        .await
        .unwrap_or_else(|e| panic!("IPv4 and IPv6 on port {free}: {e}"));
    both.shutdown().await;
}

async fn metric(node: &accord_node::NodeHandle, name: &str) -> f64 {
    node.metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_node_is_cut_off_at_once_and_refused_afterwards() {
    logs();
    let tf = TestFed::new(&["KZ", "AM"], 15).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let b = tf.spawn(1, vec![a_addr.clone()]).await.unwrap();
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    let b_peer = b.status().await.unwrap().peer_id;
    let refusals = "accord_non_members_disconnected_total";
    let refused_before = metric(&a, refusals).await;

    // AM's root revokes its node's certificate (the node was compromised, say).
    let m = &tf.fed.members[1];
    let rev = Object::Revocation(Revocation {
        object_type: ObjectType::Revocation,
        federation: tf.fed.federation(),
        created: now(),
        member: m.code.clone(),
        target_type: TargetType::Node,
        target: tf.fed.node_cert(1).id(),
        effective: Timestamp(now().0 - 1_000),
        reason: Some("node compromised".into()),
    })
    .sign(&m.root);
    let revoked = Instant::now();
    assert_eq!(
        a.submit(vec![rev.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );
    let lists_b = |a: accord_node::NodeHandle, b_peer: String| async move {
        a.peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer_id == b_peer && p.admitted)
    };
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (a, p) = (a.clone(), b_peer.clone());
            async move { !lists_b(a, p).await }
        })
        .await,
        "A still admits the revoked node"
    );
    eprintln!(
        "revoked node cut off {:?} after the revocation was accepted",
        revoked.elapsed()
    );
    // The refusal is counted by the node's event loop, just after the network task acted.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            metric(&a, refusals).await > refused_before
        })
        .await,
        "the refusal of the revoked node was not counted"
    );

    // The revoked node comes back: it is refused again.
    let refused_once = metric(&a, refusals).await;
    b.network().dial(a_addr.parse().unwrap()).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || async {
            metric(&a, refusals).await > refused_once
        })
        .await,
        "the revoked node was not refused when it came back"
    );
    assert!(!lists_b(a.clone(), b_peer.clone()).await);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_member_cannot_act_for_another_member_over_gossip() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 17).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let b = tf.spawn(1, vec![a_addr.clone()]).await.unwrap();
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    // KZ's record, everywhere.
    let rec = tf.fed.record(0, "KZ's own record", now());
    assert_eq!(
        a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );
    assert!(wait_until(Duration::from_secs(10), || has(&b, rec.id())).await);

    // BY's root certifies a node of its own (legitimately), which then turns against KZ.
    let h_key = SecretKey::from_seed([63; 32]);
    let h_cert = tf.extra_node_cert(1, &h_key, "test peer");
    assert_eq!(
        a.submit(vec![h_cert.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );
    let (h, mut h_events) =
        raw_peer(&h_key, &tf, Some(h_cert.into_bytes()), vec![a_addr.clone()]).await;
    assert!(
        wait_until(Duration::from_secs(20), || admitted(&a, 2)).await,
        "A admitted H"
    );
    let by = &tf.fed.members[1];
    let t = now();
    let retract_as_by = Object::Retraction(accord_core::Retraction {
        object_type: ObjectType::Retraction,
        federation: tf.fed.federation(),
        created: t,
        member: by.code.clone(),
        record: rec.id(),
        reason: "hostile".into(),
    })
    .sign(&by.root);
    let retract_as_kz = Object::Retraction(accord_core::Retraction {
        object_type: ObjectType::Retraction,
        federation: tf.fed.federation(),
        created: t,
        member: tf.fed.members[0].code.clone(),
        record: rec.id(),
        reason: "hostile".into(),
    })
    .sign(&by.root);
    let revoke_kz = Object::Revocation(Revocation {
        object_type: ObjectType::Revocation,
        federation: tf.fed.federation(),
        created: t,
        member: by.code.clone(),
        target_type: TargetType::Delegation,
        target: tf.fed.delegation(0).id(),
        effective: Timestamp(t.0 - 3_600_000),
        reason: Some("hostile".into()),
    })
    .sign(&by.root);
    let mut supersede = tf.fed.record_body(1, "BY replaces KZ's record", t);
    supersede.supersedes = Some(rec.id());
    let supersede = Object::Record(supersede).sign(&by.publisher);
    let hostile = [retract_as_by, retract_as_kz, revoke_kz, supersede];
    // H's messages reach A once H has admitted A and heard its subscriptions.
    assert!(
        wait_until(Duration::from_secs(20), || gossips_to(&h, &a)).await,
        "H can gossip to A"
    );
    for o in &hostile {
        h.publish(o.as_bytes().to_vec()).await.unwrap();
    }
    // H ends below the graylist and is cut off.
    let h_peer = accord_net::peer_id_of(&h_key.public_key())
        .unwrap()
        .to_string();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let (a, p) = (a.clone(), h_peer.clone());
            async move { !a.peers().await.unwrap().iter().any(|x| x.peer_id == p) }
        })
        .await,
        "A still keeps the hostile member's node"
    );
    // H dials A again a second later (its bootstrap redial), with its certificate still valid
    // and its score soon decayed: A cuts it at once rather than admitting it again.
    let a_peer = a.peer_id();
    let returned_and_cut = tokio::time::timeout(Duration::from_secs(30), async {
        let (mut connects, mut cuts) = (0, 0);
        while let Some(ev) = h_events.recv().await {
            match ev {
                NetworkEvent::PeerConnected { peer, .. } if peer.to_string() == a_peer => {
                    connects += 1
                }
                NetworkEvent::PeerDisconnected { peer } if peer.to_string() == a_peer => {
                    cuts += 1;
                    if connects >= 2 && cuts >= 2 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(returned_and_cut, "H came back and A kept it");
    assert!(
        !a.peers().await.unwrap().iter().any(|x| x.peer_id == h_peer),
        "A lists H after cutting it again"
    );
    // The operator sees both cuts in the metrics: one for the invalid objects, then one (or
    // more, as H keeps dialling) for coming back.
    let cut = |reason: &'static str| {
        let a = a.clone();
        async move {
            metric(
                &a,
                &format!("accord_peers_cut_total{{reason=\"{reason}\"}}"),
            )
            .await
        }
    };
    assert!(
        wait_until(Duration::from_secs(10), || async {
            cut("came-back").await >= 1.0
        })
        .await,
        "A's metrics do not count H's return"
    );
    assert_eq!(cut("invalid-objects").await, 1.0);
    assert_eq!(cut("bad-data").await, 0.0);
    // Nothing of it is stored, and KZ's record and publisher are untouched.
    for o in &hostile {
        assert!(!has(&a, o.id()).await, "a hostile object was stored");
        assert!(!has(&b, o.id()).await, "a hostile object reached B");
    }
    let status = a
        .read(move |s| s.record_status(&rec.id()).unwrap())
        .await
        .unwrap();
    assert_eq!(status.map(|s| s.as_str()), Some("active"));
    let later = tf.fed.record(0, "KZ publishes on", now());
    assert_eq!(
        a.submit(vec![later.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );
    // Honest records still flow both ways.
    assert!(wait_until(Duration::from_secs(10), || has(&b, later.id())).await);
    let from_b = tf.fed.record(1, "BY's honest record", now());
    assert_eq!(
        b.submit(vec![from_b.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );
    assert!(wait_until(Duration::from_secs(10), || has(&a, from_b.id())).await);
    h.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_gets_no_reconciliation() {
    let tf = TestFed::new(&["KZ"], 18).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let rec = tf.fed.record(0, "not for outsiders", now());
    a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    let stranger = SecretKey::from_seed([79; 32]);
    let (x, mut events) = raw_peer(&stranger, &tf, None, vec![a_addr]).await;
    // As soon as it is connected (before A has judged it), it asks for the record.
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = events.recv().await {
            if let NetworkEvent::PeerConnected { peer, .. } = ev {
                let req = accord_sync::Request::Fetch(vec![rec.id()]).encode();
                return Some(x.sync_request(peer, req).await);
            }
        }
        None
    })
    .await
    .expect("the stranger connected")
    .expect("an answer or an error");
    // Refused (the request fails), or at most an empty answer: never the record.
    if let Ok(raw) = answer
        && let Ok(accord_sync::Response::Objects(o)) =
            accord_sync::Response::decode(&raw, accord_core::Limits::default().scan())
    {
        assert!(
            o.is_empty(),
            "an outsider received objects by reconciliation"
        );
    }
    x.shutdown().await;
    a.shutdown().await;
}

/// The node's gossipsub mesh size on the objects topic, from its metrics.
async fn mesh_peers(node: &accord_node::NodeHandle) -> f64 {
    node.metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("libp2p_gossipsub_router_mesh_peer_counts{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Admitted peers join gossipsub's mesh, so that a node forwards each object to its mesh and
/// not to every peer (the first release made every admitted peer an explicit peer, and the
/// mesh never formed: at fifty nodes each node then received each object ~40 times).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admitted_peers_form_a_gossip_mesh() {
    logs();
    let codes = ["KZ", "BY", "AM", "KG"];
    let tf = TestFed::new(&codes, 12).unwrap();
    let first = tf.spawn(0, vec![]).await.unwrap();
    let addr = dial_addr(&first).await.expect("listen address");
    let mut nodes = vec![first];
    for i in 1..codes.len() {
        nodes.push(tf.spawn(i, vec![addr.clone()]).await.unwrap());
    }
    // Four nodes: each ends up with the three others as peers (Kademlia finds them), fewer
    // than the mesh's lower bound (4), so all three are in its mesh.
    for (i, n) in nodes.iter().enumerate() {
        assert!(
            wait_until(Duration::from_secs(20), || admitted(n, 3)).await,
            "node {i} admitted the three others"
        );
        // Within a few prune backoffs (5 s): a GRAFT that reached a peer before it had
        // admitted its sender is pruned once.
        assert!(
            wait_until(Duration::from_secs(30), || async {
                mesh_peers(n).await >= 3.0
            })
            .await,
            "node {i} has its three peers in its gossip mesh (it has {})",
            mesh_peers(n).await
        );
    }
    for n in &nodes {
        n.shutdown().await;
    }
}

/// A node certificate presented to one node is gossiped by it at once (PROTOCOL.md 9.2), so
/// the rest of the federation learns it without waiting for reconciliation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presented_certificate_is_gossiped_to_the_federation() {
    let tf = TestFed::new(&["KZ", "BY", "AM"], 61).unwrap();
    // KZ and BY do not know AM's node certificate beforehand, and reconcile only hourly.
    let without_am_cert = |i: usize, bootstrap: Vec<String>| {
        let mut cfg = tf.config(i, bootstrap, accord_node::AdmissionMode::Members);
        cfg.preload.retain(|p| !p.ends_with("AM/node-cert.cbor"));
        cfg.sync.interval_secs = 3600;
        cfg
    };
    let a = accord_node::Node::spawn(without_am_cert(0, vec![]))
        .await
        .unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let b = accord_node::Node::spawn(without_am_cert(1, vec![a_addr.clone()]))
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(30), || admitted(&a, 1)).await);
    assert!(wait_until(Duration::from_secs(30), || admitted(&b, 1)).await);
    let published = "accord_gossip_messages_total{direction=\"out\",verdict=\"published\"}";
    let before = metric(&a, published).await;
    // AM's node presents its certificate to KZ's only.
    let c = tf.spawn(2, vec![a_addr]).await.unwrap();
    let cert = tf.fed.node_cert(2).id();
    assert!(wait_until(Duration::from_secs(30), || has(&a, cert)).await);
    assert!(
        wait_until(Duration::from_secs(30), || async {
            metric(&a, published).await >= before + 1.0
        })
        .await,
        "KZ's node gossiped AM's new certificate"
    );
    assert!(
        wait_until(Duration::from_secs(30), || has(&b, cert)).await,
        "BY's node learnt it"
    );
    // A certificate it already held is not gossiped again when its holder reconnects.
    let after = metric(&a, published).await;
    c.shutdown().await;
    let _c = tf
        .spawn(2, vec![dial_addr(&a).await.unwrap()])
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(30), || admitted(&a, 2)).await);
    assert_eq!(metric(&a, published).await, after);
    a.shutdown().await;
    b.shutdown().await;
}

/// A peer named by a host name (`/dns4/<name>/tcp/<port>/p2p/<id>`) is dialled through the
/// system resolver (here `localhost` from /etc/hosts), admitted, and records flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_named_by_a_dns_name_is_dialled_and_admitted() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 71).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let numeric = dial_addr(&a).await.unwrap();
    assert!(numeric.starts_with("/ip4/127.0.0.1/tcp/"), "{numeric}");
    let named = numeric.replacen("/ip4/127.0.0.1/", "/dns4/localhost/", 1);
    let b = tf.spawn(1, vec![named.clone()]).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || admitted(&b, 1)).await,
        "{named} was not dialled"
    );
    let rec = Object::Record(tf.fed.record_body(1, "Named peer", now()))
        .sign(&tf.fed.members[1].publisher);
    b.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert!(wait_until(Duration::from_secs(15), || has(&a, rec.id())).await);
    a.shutdown().await;
    b.shutdown().await;
}

/// A stranger may hand a node exactly one kind of object before it is admitted: its own node
/// certificate, signed by a member's root key. Anything else presented as its "certificate" —
/// a self-revocation (valid from anyone), a record by an undelegated key (which would wait in
/// the quarantine), a certificate it signed itself, a member's certificate for another key —
/// is refused without being stored, and the stranger is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_store_objects_by_presenting_them_as_its_certificate() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 73).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let before = a.status().await.unwrap();
    let t = now();
    let stranger = SecretKey::from_seed([74; 32]);
    let self_revocation = Object::Revocation(Revocation {
        object_type: ObjectType::Revocation,
        federation: tf.fed.federation(),
        created: t,
        member: tf.fed.members[1].code.clone(),
        target_type: TargetType::Key,
        target: ObjectId(*stranger.public_key().as_bytes()),
        effective: t,
        reason: Some("x".repeat(10_000)),
    })
    .sign(&stranger);
    let undelegated = Object::Record(tf.fed.record_body(0, "no delegation", t)).sign(&stranger);
    let self_signed = Object::Node(accord_core::NodeCert {
        object_type: ObjectType::Node,
        federation: tf.fed.federation(),
        created: t,
        member: tf.fed.members[1].code.clone(),
        node_key: stranger.public_key(),
        label: None,
    })
    .sign(&stranger);
    let elsewhere = tf.extra_node_cert(1, &SecretKey::from_seed([75; 32]), "another node");
    for (what, presented) in [
        ("a self-revocation", self_revocation),
        ("a record by an undelegated key", undelegated),
        ("a certificate it signed itself", self_signed),
        ("a member's certificate for another key", elsewhere),
    ] {
        let (x, mut events) = raw_peer(
            &stranger,
            &tf,
            Some(presented.as_bytes().to_vec()),
            vec![a_addr.clone()],
        )
        .await;
        assert!(
            disconnected(&mut events, Duration::from_secs(30)).await,
            "{what}: the stranger was not cut"
        );
        assert!(!has(&a, presented.id()).await, "{what} was stored");
        let now = a.status().await.unwrap();
        assert_eq!(now.counts, before.counts, "{what}: the store changed");
        assert_eq!(now.pending, 0, "{what}: something waits in the quarantine");
        x.shutdown().await;
    }
    a.shutdown().await;
}

/// A careless operator: a node that other nodes would refuse to admit does not start, and says
/// which setting is wrong (it used to start and be cut by every peer, with nothing said on its
/// own side): no certificate in `members` admission, a certificate of another node's key, one
/// by another member for this key. In `open` admission no certificate is needed.
#[tokio::test]
async fn a_node_others_would_not_admit_refuses_to_start_naming_node_cert() {
    let tf = TestFed::new(&["KZ", "BY"], 61).expect("federation");
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.node_cert = None;
    let e = start_error(cfg).await;
    assert!(
        e.starts_with("config field node_cert: network.admission = \"members\" needs")
            && e.contains("--node-key ed25519:")
            && !e.contains("ed25519:ed25519:"),
        "{e}"
    );

    // Named in the config (as `accord init` writes it) but not there yet.
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.node_cert = Some(tf.dir.path().join("KZ").join("not-yet.cbor"));
    let e = start_error(cfg).await;
    assert!(
        e.starts_with("config field node_cert: ")
            && e.contains("not-yet.cbor")
            && e.contains("accord cert node --charter charter.cbor --member KZ")
            && e.contains("--node-key ed25519:")
            && !e.contains("ed25519:ed25519:"),
        "{e}"
    );

    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.node_cert = Some(tf.dir.path().join("BY").join("node-cert.cbor"));
    let e = start_error(cfg).await;
    assert!(
        e.starts_with("config field node_cert: ") && e.contains("certificate is for peer"),
        "{e}"
    );

    let by_for_kz = tf.dir.path().join("by-for-kz.cbor");
    let cert = tf.extra_node_cert(1, &tf.fed.members[0].node, "KZ's node, certified by BY");
    std::fs::write(&by_for_kz, cert.as_bytes()).expect("write");
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.node_cert = Some(by_for_kz);
    let e = start_error(cfg).await;
    assert!(
        e.contains("the certificate is of member BY, and this node is configured as member KZ"),
        "{e}"
    );

    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Open);
    cfg.node_cert = None;
    assert_eq!(
        start_error(cfg).await,
        "",
        "open admission needs no certificate"
    );
    assert_eq!(
        start_error(tf.config(0, vec![], accord_node::AdmissionMode::Members)).await,
        "",
        "its own certificate starts it"
    );

    // Its node key revoked (the revocation taken at one start, from `preload`): the next start
    // is refused, naming the revocation, instead of a node every peer would refuse.
    let m = &tf.fed.members[0];
    let revocation = accord_core::Object::Revocation(accord_core::Revocation {
        object_type: accord_core::ObjectType::Revocation,
        federation: tf.fed.federation(),
        created: now(),
        member: m.code.clone(),
        target_type: accord_core::object::TargetType::Key,
        target: accord_core::ObjectId(*m.node.public_key().as_bytes()),
        effective: now(),
        reason: Some("machine retired".into()),
    })
    .sign(&m.root);
    let revocation_file = tf.dir.path().join("kz-node-revoked.cbor");
    std::fs::write(&revocation_file, revocation.as_bytes()).expect("write");
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.preload.push(revocation_file);
    assert_eq!(start_error(cfg.clone()).await, "", "taken while starting");
    let e = start_error(cfg).await;
    assert!(
        e.starts_with("config field node_cert: ")
            && e.contains("is revoked since")
            && e.contains("accord cert node"),
        "{e}"
    );
}

/// A restore cut short (killed, a power cut) leaves part of a store that looks consistent: the
/// node refuses to start on it, naming the directory and what to do; and so for an index repair
/// cut short.
#[tokio::test]
async fn a_data_directory_an_unfinished_restore_left_is_refused() {
    let tf = TestFed::new(&["KZ"], 62).expect("federation");
    let cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    std::fs::create_dir_all(&cfg.data_dir).expect("mkdir");
    std::fs::write(cfg.data_dir.join(accord_node::RESTORE_UNFINISHED), b"").expect("mark");
    let e = start_error(cfg.clone()).await;
    assert!(
        e.contains("an `accord restore` into this directory did not finish"),
        "{e}"
    );
    // So is one an index repair cut short left (its indexes half rebuilt).
    std::fs::remove_file(cfg.data_dir.join(accord_node::RESTORE_UNFINISHED)).expect("unmark");
    std::fs::write(cfg.data_dir.join(accord_store::REPAIR_UNFINISHED), b"").expect("mark");
    let e = start_error(cfg).await;
    assert!(
        e.contains("did not finish") && e.contains("run `accord check --repair` again"),
        "{e}"
    );
}

/// An operator moves a running node's data directory aside and restores into its path (the
/// store's lock moved with the old directory, so the restore succeeded): the node, which writes
/// on into the old directory, says so and is not ready until restarted.
#[tokio::test]
async fn a_data_directory_moved_under_a_running_node_makes_it_unready() {
    let tf = TestFed::new(&["KZ"], 69).expect("federation");
    let cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    let node = accord_node::Node::spawn(cfg.clone()).await.expect("node");
    assert_eq!(node.fault(), None);
    let aside = cfg.data_dir.with_extension("old");
    std::fs::rename(&cfg.data_dir, &aside).expect("move aside");
    std::fs::create_dir_all(&cfg.data_dir).expect("a new directory at the path");
    // The disk's watching thread sees it at its next reading (within a second); until then
    // the fault may be the index's, which the move broke too.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            node.fault().is_some_and(|f| f.contains("was moved"))
        })
        .await,
        "not told: {:?}",
        node.fault()
    );
    let fault = node.fault().expect("not told");
    assert!(
        fault.contains("was moved or replaced while the node ran")
            && fault.contains(&cfg.data_dir.display().to_string()),
        "{fault}"
    );
    assert_eq!(node.restart_needed(), Some(fault));
    node.shutdown().await;
}

/// A member's root key is replaced by amendment and its node certified by the new key: on a
/// store that knows only the genesis the certificate cannot be judged, so the node refuses to
/// start and says to preload the amendment; with the amendment preloaded it starts.
#[tokio::test]
async fn a_node_certified_by_a_replaced_root_starts_with_the_amendment_preloaded() {
    let tf = TestFed::new(&["KZ", "BY"], 63).expect("federation");
    let new_root = SecretKey::from_seed([64; 32]);
    let amendment = tf.amendment(
        |c| c.members[1].root_key = new_root.public_key(),
        Some(&new_root),
    );
    let cert = Object::Node(accord_core::NodeCert {
        object_type: ObjectType::Node,
        federation: tf.fed.federation(),
        created: Timestamp(tf.fed.created.0 + 7_200_000),
        member: tf.fed.members[1].code.clone(),
        node_key: tf.fed.members[1].node.public_key(),
        label: None,
    })
    .sign(&new_root);
    let dir = tf.dir.path();
    std::fs::write(dir.join("amendment.cbor"), amendment.as_bytes()).expect("write");
    std::fs::write(dir.join("by-new-cert.cbor"), cert.as_bytes()).expect("write");
    let config = |preload: Vec<std::path::PathBuf>| {
        let mut cfg = tf.config(1, vec![], accord_node::AdmissionMode::Members);
        cfg.node_cert = Some(dir.join("by-new-cert.cbor"));
        cfg.preload = preload;
        cfg
    };
    let e = start_error(config(vec![])).await;
    assert!(
        e.contains("not signed by the root key of member BY")
            && e.contains("put the amendment's file in `preload`"),
        "{e}"
    );
    let node = accord_node::Node::spawn(config(vec![dir.join("amendment.cbor")]))
        .await
        .expect("starts with the amendment preloaded");
    assert_eq!(node.trust().charter().version, 2);
    node.shutdown().await;
}

/// A member added by amendment runs its first node: on a store that knows only the genesis it
/// is no member, and the node says to preload the amendment; with the amendment preloaded it
/// starts as that member.
#[tokio::test]
async fn a_node_of_a_member_added_by_amendment_starts_with_the_amendment_preloaded() {
    let tf = TestFed::new(&["KZ", "BY"], 65).expect("federation");
    let uz_root = SecretKey::from_seed([66; 32]);
    let uz_node = SecretKey::from_seed([67; 32]);
    let uz: accord_core::MemberCode = "UZ".to_string().try_into().expect("code");
    let amendment = tf.amendment(
        |c| {
            c.members.push(accord_core::object::MemberEntry {
                code: uz.clone(),
                name: [("en".to_string(), "Uzbekistan".to_string())].into(),
                root_key: uz_root.public_key(),
            })
        },
        Some(&uz_root),
    );
    let cert = Object::Node(accord_core::NodeCert {
        object_type: ObjectType::Node,
        federation: tf.fed.federation(),
        created: Timestamp(tf.fed.created.0 + 7_200_000),
        member: uz,
        node_key: uz_node.public_key(),
        label: None,
    })
    .sign(&uz_root);
    let dir = tf.dir.path().join("UZ");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("amendment.cbor"), amendment.as_bytes()).expect("write");
    std::fs::write(dir.join("node-cert.cbor"), cert.as_bytes()).expect("write");
    std::fs::write(dir.join("node.key"), &*uz_node.to_pem().expect("pem")).expect("write");
    let config = |preload: Vec<std::path::PathBuf>| {
        let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
        cfg.member = "UZ".into();
        cfg.node_key = dir.join("node.key");
        cfg.node_cert = Some(dir.join("node-cert.cbor"));
        cfg.data_dir = dir.join("data");
        cfg.preload = preload;
        cfg
    };
    let e = start_error(config(vec![])).await;
    assert!(
        e.contains("UZ is not a member") && e.contains("put the amendment's file in `preload`"),
        "{e}"
    );
    let node = accord_node::Node::spawn(config(vec![dir.join("amendment.cbor")]))
        .await
        .expect("starts with the amendment preloaded");
    assert_eq!(node.trust().charter().version, 2);
    assert_eq!(node.status().await.expect("status").member, "UZ");
    node.shutdown().await;
}

/// An amendment raises `max_object_bytes`: the node takes it, but its network was set up for
/// the old bound, so it says it must restart (status and log) until it does.
#[tokio::test]
async fn an_amendment_raising_max_object_bytes_asks_for_a_restart_until_one() {
    let tf = TestFed::new(&["KZ", "BY"], 68).expect("federation");
    let amendment = tf.amendment(|c| c.limits.max_object_bytes = 4 << 20, None);
    let cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    let node = accord_node::Node::spawn(cfg.clone()).await.expect("spawn");
    assert_eq!(node.status().await.expect("status").restart_needed, None);
    let out = node
        .submit(vec![amendment.as_bytes().to_vec()])
        .await
        .expect("submit");
    assert_eq!(out[0].status, "accepted", "{out:?}");
    let why = node.status().await.expect("status").restart_needed;
    assert!(
        why.as_deref().is_some_and(|w| w.contains("4194304 bytes")
            && w.contains("carries at most 1048576 until it restarts")),
        "{why:?}"
    );
    node.shutdown().await;
    let node = accord_node::Node::spawn(cfg).await.expect("restart");
    assert_eq!(node.trust().charter().version, 2);
    assert_eq!(node.status().await.expect("status").restart_needed, None);
    node.shutdown().await;
}

/// Starts a node on `cfg` and stops it: the error it refused to start with, or "" if it started.
async fn start_error(cfg: accord_node::NodeConfig) -> String {
    match accord_node::Node::spawn(cfg).await {
        Ok(node) => {
            node.shutdown().await;
            String::new()
        }
        Err(e) => e.to_string(),
    }
}
