//! Federation health over real libp2p on loopback: signed heartbeats on their own topic, a
//! withholding node flagged divergent by every other node with signed evidence, a stopped
//! node shown down, forged heartbeats refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use accord_core::health::{Checkpoint, Heartbeat, open_evidence, sign_heartbeat};
use accord_core::object::TargetType;
use accord_core::{Object, ObjectType, Revocation, SecretKey, Timestamp};
use accord_node::{HealthConfig, Node, NodeHandle, NodeHealth};
use accord_tests::harness::{
    TestFed, admitted, dial_addr, get_json, get_text, has, metric, now, raw_peer, serve, wait_until,
};

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Heartbeats every second with the watermark at the period boundary, so that a test sees
/// several in a few seconds.
fn fast_health() -> HealthConfig {
    HealthConfig {
        heartbeat_secs: 1,
        watermark_delay_secs: 0,
        ttl_secs: 120,
        ..HealthConfig::default()
    }
}

/// How `observer` sees the node of member `code`.
fn view_of(observer: &NodeHandle, code: &str) -> Option<NodeHealth> {
    observer
        .federation_health()
        .members
        .into_iter()
        .flat_map(|m| m.nodes)
        .find(|n| n.member == code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withholding_node_is_flagged_divergent_by_the_others_and_a_stopped_one_goes_down() {
    logs();
    let codes = ["KZ", "BY", "AM", "KG", "UZ"];
    let tf = TestFed::new(&codes, 41).unwrap();
    // UZ (node 4) will hold three records of its own that it never gives to anyone: it
    // stores them, counts them in its checkpoints, but neither gossips nor serves them.
    let old = Timestamp(now().0 - 30_000);
    let withheld: Vec<_> = (0..3)
        .map(|i| tf.fed.record(4, &format!("withheld {i}"), old))
        .collect();
    let mut nodes: Vec<NodeHandle> = Vec::new();
    let mut addrs: Vec<String> = Vec::new();
    for i in 0..codes.len() {
        let mut cfg = tf.config(i, addrs.clone(), accord_node::AdmissionMode::Members);
        cfg.health = fast_health();
        if i == 4 {
            cfg.sync.withhold = withheld.iter().map(|r| r.id()).collect();
        }
        let n = Node::spawn(cfg).await.unwrap();
        addrs.push(dial_addr(&n).await.unwrap());
        nodes.push(n);
    }
    for (i, n) in nodes.iter().enumerate() {
        assert!(
            wait_until(Duration::from_secs(30), || admitted(n, codes.len() - 1)).await,
            "node {i} admitted every other node"
        );
    }
    // Every node sees every other node up from its heartbeats.
    for (i, n) in nodes.iter().enumerate() {
        assert!(
            wait_until(Duration::from_secs(20), || async {
                n.federation_health()
                    .members
                    .iter()
                    .flat_map(|m| &m.nodes)
                    .all(|x| x.status == "up" || x.status == "self")
            })
            .await,
            "node {i} does not see every node up: {:?}",
            n.federation_health().members
        );
    }
    // A shared record reaches everyone; UZ takes its withheld ones.
    let shared = tf.fed.record(0, "shared", old);
    nodes[0]
        .submit(vec![shared.as_bytes().to_vec()])
        .await
        .unwrap();
    let out = nodes[4]
        .submit(withheld.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");

    // Every other node reconciles with UZ, still lacks what UZ claims, and flags it.
    for (i, n) in nodes.iter().enumerate().take(4) {
        assert!(
            wait_until(Duration::from_secs(40), || async {
                view_of(n, "UZ").is_some_and(|v| v.divergent)
            })
            .await,
            "node {i} did not flag the withholding node: {:?}",
            view_of(n, "UZ")
        );
        assert!(has(n, shared.id()).await);
        for r in &withheld {
            assert!(!has(n, r.id()).await, "node {i} got a withheld record");
        }
    }
    // Honest nodes agree with each other and none of them is flagged by anyone (UZ, which
    // holds more than they do, sees them behind, not divergent).
    for (i, n) in nodes.iter().enumerate() {
        for code in &codes[..4] {
            let v = view_of(n, code).unwrap();
            assert!(
                !v.divergent && !v.equivocated,
                "node {i} flags {code}: {v:?}"
            );
        }
    }
    let uz_view = view_of(&nodes[4], "KZ").unwrap();
    assert_eq!(
        uz_view.agreement,
        accord_node::Agreement::Behind,
        "{uz_view:?}"
    );

    // The evidence: signed by the observer, holding UZ's own signed heartbeats that claim
    // more than the observer holds after reconciling with it.
    let observer = &nodes[1];
    let summary = observer
        .federation_health()
        .evidence
        .into_iter()
        .find(|e| e.subject_member == "UZ" && e.kind == "divergent")
        .expect("evidence kept");
    let item = observer.health_evidence(summary.number).unwrap();
    let (e, heartbeats) = open_evidence(&item.bytes).unwrap();
    assert_eq!(e.observer, tf.fed.members[1].node.public_key());
    assert_eq!(e.subject, tf.fed.members[4].node.public_key());
    assert!(e.reconciled_at.is_some());
    assert_eq!(heartbeats.len(), 2);
    let observed: Checkpoint = e.observed.unwrap();
    let last = heartbeats[1].heartbeat();
    assert_eq!(observed.watermark, last.checkpoint.watermark);
    assert!(last.checkpoint.count >= observed.count + 3, "{e:?}");
    assert!(last.issued > e.reconciled_at.unwrap());

    // Kept on disk, so that a restart does not lose it.
    let kept = tf.dir.path().join("BY").join("data").join("evidence");
    assert!(
        wait_until(Duration::from_secs(10), || async {
            std::fs::read(kept.join(format!("{}.cbor", summary.number)))
                .is_ok_and(|b| b == item.bytes)
        })
        .await,
        "evidence bundle {} not written to {}",
        summary.number,
        kept.display()
    );

    // The same through the API, the page and the metrics.
    let base = serve(observer).await;
    let v: serde_json::Value = accord_tests::http_get(format!("{base}/v1/health/federation"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uz = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["code"] == "UZ")
        .unwrap();
    assert_eq!(uz["nodes"][0]["divergent"], true, "{uz}");
    let bundles = accord_tests::http_get(format!("{base}/v1/health/evidence"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let items =
        accord_core::cbor::split_sequence(&bundles, accord_core::Limits::default().scan()).unwrap();
    assert!(!items.is_empty());
    for b in items {
        open_evidence(b).unwrap();
    }
    let page = accord_tests::http_get(format!("{base}/health?lang=en"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Federation health") && page.contains("divergent"));
    // The evidence in the reader's words, from its figures (the signed explanation is the
    // bundle's English, kept as the line's title).
    assert!(
        page.contains("objects created before") && page.contains("this node holds"),
        "{page}"
    );
    let page_ru = accord_tests::http_get(format!("{base}/health?lang=ru"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page_ru.contains("заявлено объектов, созданных до") && page_ru.contains("у этого узла:"),
        "{page_ru}"
    );
    // On a phone each node is a card, every value under its column's name; the menu names the
    // charter page by what it shows.
    assert!(
        page.contains("<table class=\"stack\">")
            && page.contains("<td data-label=\"Status\">")
            && page.contains("<a href=\"/federation\">Charter</a>"),
        "{page}"
    );
    let metrics = observer.metrics_text().await;
    let uz_peer = tf.fed.members[4].node.public_key().peer_id();
    assert!(
        metrics.contains(&format!(
            "accord_federation_node_divergent{{member=\"UZ\",node=\"{uz_peer}\"}} 1"
        )),
        "{metrics}"
    );

    // KG (node 3) stops: every other node shows it down.
    let kg = nodes.remove(3);
    let stopped = Instant::now();
    kg.shutdown().await;
    for (i, n) in nodes.iter().enumerate() {
        assert!(
            wait_until(Duration::from_secs(20), || async {
                view_of(n, "KG").is_some_and(|v| v.status == "down")
            })
            .await,
            "node {i} does not show the stopped node down: {:?}",
            view_of(n, "KG")
        );
    }
    eprintln!(
        "stopped node shown down everywhere {:?} after its shutdown began (heartbeat 1 s)",
        stopped.elapsed()
    );
    let kg_peer = tf.fed.members[3].node.public_key().peer_id();
    assert!(nodes[0].metrics_text().await.contains(&format!(
        "accord_federation_node_up{{member=\"KG\",node=\"{kg_peer}\"}} 0"
    )));
    for n in nodes {
        n.shutdown().await;
    }
}

/// Two nodes, X and B, keep records from one peer, A, and from it alone: B got them from X
/// and both give them to everyone but A. (With a single withholding node, A would get them
/// from any honest node, and there would be nothing to flag.) A flags both; X and B see A
/// behind, the victim, and never flag it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_withholding_from_one_peer_are_flagged_by_it_and_the_victim_is_not() {
    logs();
    let tf = TestFed::new(&["KZ", "UZ", "BY"], 49).unwrap();
    let old = Timestamp(now().0 - 30_000);
    let withheld: Vec<_> = (0..2)
        .map(|i| tf.fed.record(1, &format!("kept from KZ {i}"), old))
        .collect();
    let a_peer = tf.fed.members[0].node.public_key().peer_id();
    let config = |i: usize, bootstrap: Vec<String>, withhold: bool| {
        let mut cfg = tf.config(i, bootstrap, accord_node::AdmissionMode::Members);
        cfg.health = fast_health();
        if withhold {
            cfg.sync.withhold = withheld.iter().map(|r| r.id()).collect();
            cfg.sync.withhold_from = vec![a_peer.clone()];
        }
        cfg
    };
    let x = Node::spawn(config(1, vec![], true)).await.unwrap();
    let x_addr = dial_addr(&x).await.unwrap();
    let b = Node::spawn(config(2, vec![x_addr.clone()], true))
        .await
        .unwrap();
    let b_addr = dial_addr(&b).await.unwrap();
    let a = Node::spawn(config(0, vec![x_addr, b_addr], false))
        .await
        .unwrap();
    for n in [&a, &b, &x] {
        assert!(wait_until(Duration::from_secs(20), || admitted(n, 2)).await);
    }
    let out = x
        .submit(withheld.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");
    // B reconciles with X and gets them; A flags both.
    assert!(
        wait_until(Duration::from_secs(40), || async {
            has(&b, withheld[0].id()).await && has(&b, withheld[1].id()).await
        })
        .await,
        "B did not get the records from X"
    );
    for code in ["UZ", "BY"] {
        assert!(
            wait_until(Duration::from_secs(40), || async {
                view_of(&a, code).is_some_and(|v| v.divergent)
            })
            .await,
            "A did not flag {code}: {:?}",
            view_of(&a, code)
        );
    }
    assert!(!has(&a, withheld[0].id()).await);
    // The victim is behind in the others' eyes, never divergent; they agree with each other.
    for (name, n) in [("X", &x), ("B", &b)] {
        let v = view_of(n, "KZ").unwrap();
        assert_eq!(v.agreement, accord_node::Agreement::Behind, "{name}: {v:?}");
        assert!(v.behind >= 2 && !v.divergent, "{name}: {v:?}");
    }
    assert!(!view_of(&b, "UZ").unwrap().divergent);
    assert!(!view_of(&x, "BY").unwrap().divergent);
    for n in [a, b, x] {
        n.shutdown().await;
    }
}

/// A node that starts after a member's removal refuses that member's objects, which a node
/// of the federation from before keeps. It is not withholding them: it gave them when asked.
/// The newcomer reads it as agreeing but for what it refused, does not fetch them again at
/// every session, and flags nobody; a record the older node then really withholds is still
/// flagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_holding_what_a_newcomer_refuses_is_not_flagged_but_a_withheld_record_is() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 57).unwrap();
    let old = Timestamp(now().0 - 30_000);
    let am_records: Vec<_> = (0..3)
        .map(|i| tf.fed.record(2, &format!("AM before its removal {i}"), old))
        .collect();
    let withheld = tf.fed.record(0, "kept from everyone", old);
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.health = fast_health();
    cfg.sync.withhold = vec![withheld.id()];
    let kz = Node::spawn(cfg).await.unwrap();
    let out = kz
        .submit(am_records.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");
    // The federation removes AM; KZ keeps what AM published before.
    let removal = tf.amendment(|c| c.members.retain(|m| m.code.as_str() != "AM"), None);
    let out = kz.submit(vec![removal.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    assert!(has(&kz, am_records[0].id()).await);

    // BY starts empty afterwards, knowing the amendment and the remaining members' objects.
    let dir = tf.dir.path();
    std::fs::write(dir.join("removal.cbor"), removal.as_bytes()).unwrap();
    let mut cfg = tf.config(
        1,
        vec![dial_addr(&kz).await.unwrap()],
        accord_node::AdmissionMode::Members,
    );
    cfg.health = fast_health();
    cfg.preload = std::iter::once(dir.join("removal.cbor"))
        .chain(["KZ", "BY"].iter().flat_map(|c| {
            [
                dir.join(c).join("delegation.cbor"),
                dir.join(c).join("node-cert.cbor"),
            ]
        }))
        .collect();
    let by = Node::spawn(cfg).await.unwrap();
    assert_eq!(by.trust().charter().version, 2);
    for n in [&kz, &by] {
        assert!(wait_until(Duration::from_secs(20), || admitted(n, 1)).await);
    }
    // AM's delegation, node certificate and three records: refused by BY, held by KZ.
    let refused = 5;
    assert!(
        wait_until(Duration::from_secs(40), || async {
            view_of(&by, "KZ").is_some_and(|v| {
                v.agreement == accord_node::Agreement::HoldsRefused && v.held_refused == refused
            })
        })
        .await,
        "BY does not read KZ as holding what it refused: {:?}",
        view_of(&by, "KZ")
    );
    for r in &am_records {
        assert!(!has(&by, r.id()).await, "BY took a removed member's record");
    }
    // Later sessions list them and fetch none of them again; nobody is flagged.
    let kz_peer = tf.fed.members[0].node.public_key().peer_id();
    let stats = |n: &NodeHandle| {
        n.sync_stats()
            .into_iter()
            .find(|(p, _)| *p == kz_peer)
            .map(|(_, s)| s)
            .unwrap_or_default()
    };
    let sessions = stats(&by).sessions;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            stats(&by).sessions >= sessions + 2
        })
        .await,
        "no further sessions: {:?}",
        stats(&by)
    );
    let last = stats(&by);
    assert_eq!((last.missing, last.refused), (0, refused), "{last:?}");
    let v = view_of(&by, "KZ").unwrap();
    assert!(!v.divergent && v.held_refused == refused, "{v:?}");
    assert!(by.federation_health().evidence.is_empty());
    assert!(!view_of(&kz, "BY").unwrap().divergent);
    let base = serve(&by).await;
    let page = get_text(&base, "/health?lang=en").await;
    assert!(
        page.contains("agrees, but for objects this node refused"),
        "{page}"
    );
    let metrics = get_text(&base, "/metrics").await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("accord_federation_node_held_refused_objects{")
                && l.contains("member=\"KZ\"")
                && l.ends_with(" 5")
        ),
        "{metrics}"
    );
    let (_, sync) = get_json(&base, "/v1/sync").await;
    let listed = sync["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["peer_id"] == kz_peer.as_str()))
        .map(|p| p["refused"].clone());
    assert_eq!(listed, Some(serde_json::json!(refused)), "{sync}");

    // Now KZ takes a record of its own and gives it to nobody: BY flags it.
    let out = kz.submit(vec![withheld.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    assert!(
        wait_until(Duration::from_secs(40), || async {
            view_of(&by, "KZ").is_some_and(|v| v.divergent)
        })
        .await,
        "BY did not flag KZ withholding a record besides what BY refused: {:?}",
        view_of(&by, "KZ")
    );
    assert!(!has(&by, withheld.id()).await);
    for n in [by, kz] {
        n.shutdown().await;
    }
}

/// A member's root key is replaced by amendment. The nodes of the federation from before keep
/// what the old key signed — the member's delegation and node certificate — and the records of
/// the publisher it delegated; a node that starts afterwards refuses the old key's objects for
/// their signer, and keeps the records waiting for a delegation it will not take. The older
/// nodes gave them when asked: the newcomer reads each as agreeing but for what it refused, and
/// does not fetch them from it again at every session. (A copy of the same body signed by a key
/// of the sender's own excuses nothing: see the store's
/// `a_copy_refused_for_a_signer_that_had_authority_is_named_for_its_source_a_forgery_is_not`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_holding_what_a_replaced_root_signed_are_not_flagged_by_a_newcomer() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM", "KG"], 61).unwrap();
    let old = Timestamp(now().0 - 30_000);
    let am_records: Vec<_> = (0..2)
        .map(|i| {
            tf.fed
                .record(2, &format!("AM under its first root key {i}"), old)
        })
        .collect();
    // AM's root key is replaced; KZ and KG keep what the old one signed and what it delegated.
    let new_root = SecretKey::from_seed([62; 32]);
    let replacement = tf.amendment(
        |c| {
            if let Some(m) = c.members.iter_mut().find(|m| m.code.as_str() == "AM") {
                m.root_key = new_root.public_key();
            }
        },
        Some(&new_root),
    );
    let mut older = Vec::new();
    for (i, bootstrap) in [(0, None), (3, Some(0))] {
        let peers = match bootstrap {
            Some(j) => vec![dial_addr(&older[j]).await.unwrap()],
            None => vec![],
        };
        let mut cfg = tf.config(i, peers, accord_node::AdmissionMode::Members);
        cfg.health = fast_health();
        let n = Node::spawn(cfg).await.unwrap();
        let out = n
            .submit(am_records.iter().map(|r| r.as_bytes().to_vec()).collect())
            .await
            .unwrap();
        assert!(
            out.iter()
                .all(|o| o.status == "accepted" || o.status == "duplicate"),
            "{out:?}"
        );
        let out = n
            .submit(vec![replacement.as_bytes().to_vec()])
            .await
            .unwrap();
        assert!(matches!(out[0].status, "accepted" | "duplicate"), "{out:?}");
        older.push(n);
    }

    // BY starts empty afterwards, knowing the amendment and the other members' objects.
    let dir = tf.dir.path();
    std::fs::write(dir.join("replacement.cbor"), replacement.as_bytes()).unwrap();
    let mut cfg = tf.config(
        1,
        vec![
            dial_addr(&older[0]).await.unwrap(),
            dial_addr(&older[1]).await.unwrap(),
        ],
        accord_node::AdmissionMode::Members,
    );
    cfg.health = fast_health();
    cfg.preload = std::iter::once(dir.join("replacement.cbor"))
        .chain(["KZ", "BY", "KG"].iter().flat_map(|c| {
            [
                dir.join(c).join("delegation.cbor"),
                dir.join(c).join("node-cert.cbor"),
            ]
        }))
        .collect();
    let by = Node::spawn(cfg).await.unwrap();
    assert_eq!(by.trust().charter().version, 2);
    assert!(wait_until(Duration::from_secs(20), || admitted(&by, 2)).await);
    // AM's delegation and node certificate (refused for their signer) and its two records
    // (waiting for a delegation): not taken by BY, held by KZ and KG.
    let refused = 4;
    for code in ["KZ", "KG"] {
        assert!(
            wait_until(Duration::from_secs(40), || async {
                view_of(&by, code).is_some_and(|v| {
                    v.agreement == accord_node::Agreement::HoldsRefused && v.held_refused == refused
                })
            })
            .await,
            "BY does not read {code} as holding what it refused: {:?}",
            view_of(&by, code)
        );
    }
    for r in &am_records {
        assert!(
            !has(&by, r.id()).await,
            "BY took a record of a replaced root's publisher"
        );
    }
    // Later sessions list them and fetch none of them again; nobody is flagged.
    for (i, code) in [(0, "KZ"), (3, "KG")] {
        let peer = tf.fed.members[i].node.public_key().peer_id();
        let stats = |n: &NodeHandle| {
            n.sync_stats()
                .into_iter()
                .find(|(p, _)| *p == peer)
                .map(|(_, s)| s)
                .unwrap_or_default()
        };
        let sessions = stats(&by).sessions;
        assert!(
            wait_until(Duration::from_secs(40), || async {
                stats(&by).sessions >= sessions + 2
            })
            .await,
            "no further sessions with {code}: {:?}",
            stats(&by)
        );
        let last = stats(&by);
        assert_eq!(
            (last.missing, last.refused),
            (0, refused),
            "{code}: {last:?}"
        );
        let v = view_of(&by, code).unwrap();
        assert!(!v.divergent && v.held_refused == refused, "{v:?}");
    }
    assert!(by.federation_health().evidence.is_empty());
    for n in &older {
        assert!(!view_of(n, "BY").unwrap().divergent);
    }
    by.shutdown().await;
    for n in older {
        n.shutdown().await;
    }
}

/// A heartbeat of `key` claiming to be member `code`'s node.
fn heartbeat(tf: &TestFed, code: &str, key: &SecretKey, issued: Timestamp) -> Heartbeat {
    Heartbeat {
        federation: tf.fed.federation(),
        member: code.into(),
        node: key.public_key(),
        issued,
        period_secs: 1,
        software: "accord/forged".into(),
        protocol: "1.2".into(),
        charter_version: 1,
        uptime_secs: 1,
        counts: BTreeMap::new(),
        checkpoint: accord_core::health::checkpoint_hasher().finish(Timestamp(0)),
        reconciled: vec![],
        attachment_backlog: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_heartbeats_are_refused() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 43).unwrap();
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.health = fast_health();
    let a = Node::spawn(cfg).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();

    // A retired node key of AM: certified, then revoked.
    let retired = SecretKey::from_seed([44; 32]);
    let am = &tf.fed.members[2];
    let cert = tf.extra_node_cert(2, &retired, "retired");
    let revocation = Object::Revocation(Revocation {
        object_type: ObjectType::Revocation,
        federation: tf.fed.federation(),
        created: now(),
        member: am.code.clone(),
        target_type: TargetType::Node,
        target: cert.id(),
        effective: Timestamp(now().0 - 1_000),
        reason: Some("retired".into()),
    })
    .sign(&am.root);
    let out = a
        .submit(vec![
            cert.as_bytes().to_vec(),
            revocation.as_bytes().to_vec(),
        ])
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");

    // A hostile peer with a valid certificate of its own (a second KZ node) sends them.
    let hostile = SecretKey::from_seed([45; 32]);
    let hostile_cert = tf.extra_node_cert(0, &hostile, "hostile");
    let (x, _events) = raw_peer(
        &hostile,
        &tf,
        Some(hostile_cert.as_bytes().to_vec()),
        vec![a_addr],
    )
    .await;
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);

    // First, a certified node that signs two different heartbeats for the same time (it
    // shows different statements to different peers): equivocation, with both kept as
    // evidence that anyone can verify.
    let mut turn = 0u64;
    assert!(
        wait_until(Duration::from_secs(30), || {
            // A new pair each turn: a message gossipsub has seen is not sent again.
            turn += 1;
            let t = Timestamp(now().0 + turn);
            let one = sign_heartbeat(heartbeat(&tf, "KZ", &hostile, t), &hostile).unwrap();
            let mut other = heartbeat(&tf, "KZ", &hostile, t);
            other.uptime_secs = 2;
            let two = sign_heartbeat(other, &hostile).unwrap();
            let (x, a) = (x.clone(), a.clone());
            async move {
                let _ = x.publish_heartbeat(one.bytes().to_vec()).await;
                let _ = x.publish_heartbeat(two.bytes().to_vec()).await;
                a.federation_health()
                    .evidence
                    .iter()
                    .any(|e| e.kind == "equivocation")
            }
        })
        .await,
        "the equivocation was not caught"
    );
    let summary = a.federation_health().evidence[0].clone();
    let (e, both) = open_evidence(&a.health_evidence(summary.number).unwrap().bytes).unwrap();
    assert_eq!(e.subject, hostile.public_key());
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].heartbeat().issued, both[1].heartbeat().issued);
    assert_ne!(both[0].bytes(), both[1].bytes());
    assert!(
        a.federation_health()
            .members
            .iter()
            .flat_map(|m| &m.nodes)
            .any(|n| n.node_key == hostile.public_key().to_string() && n.equivocated)
    );
    // More statements for that same time prove nothing more: they make no new bundle (each
    // cost every node a signature and a file written to disk, and 64 of them pushed every
    // other bundle out) and are not forwarded.
    let received = |a: NodeHandle| async move {
        a.metrics_text()
            .await
            .lines()
            .filter(|l| l.starts_with("accord_heartbeats_received_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<f64>().ok())
            .sum::<f64>()
    };
    let before = received(a.clone()).await;
    let issued = both[0].heartbeat().issued;
    const MORE: u64 = 100;
    for i in 0..MORE {
        let mut h = heartbeat(&tf, "KZ", &hostile, issued);
        h.uptime_secs = 10 + i;
        let b = sign_heartbeat(h, &hostile).unwrap();
        x.publish_heartbeat(b.bytes().to_vec()).await.unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(30), || {
            let a = a.clone();
            async move { received(a).await >= before + MORE as f64 }
        })
        .await,
        "the node did not receive the further statements"
    );
    let about_it: Vec<_> = a
        .federation_health()
        .evidence
        .iter()
        .filter(|e| e.subject == hostile.public_key().to_string())
        .map(|e| e.number)
        .collect();
    let at_that_time = about_it
        .iter()
        .filter(|n| {
            let (_, hb) = open_evidence(&a.health_evidence(**n).unwrap().bytes).unwrap();
            hb[0].heartbeat().issued == issued
        })
        .count();
    assert_eq!(
        at_that_time, 1,
        "bundles about one equivocation: {about_it:?}"
    );
    assert!(about_it.len() <= accord_node::MAX_EVIDENCE_PER_SUBJECT);

    let by_key = tf.fed.members[1].node.public_key();
    let refused = |a: NodeHandle| async move {
        let r = a.federation_health().refused;
        (
            r.get("bad-signature").copied().unwrap_or(0),
            r.get("not-certified").copied().unwrap_or(0),
            r.get("wrong-member").copied().unwrap_or(0),
        )
    };
    let mut n = 0u64;
    assert!(
        wait_until(Duration::from_secs(30), || {
            // Published again each turn (with a new time, so a new message) until the mesh
            // carries them.
            n += 1;
            let t = Timestamp(now().0 + n);
            // 1. BY's node key named, signed by the hostile key: a wrong key.
            let mut wrong = heartbeat(&tf, "BY", &hostile, t);
            wrong.node = by_key;
            let forged = forge(&wrong, &hostile);
            // 2. Signed by AM's revoked node key.
            let revoked = sign_heartbeat(heartbeat(&tf, "AM", &retired, t), &retired)
                .unwrap()
                .bytes()
                .to_vec();
            // 3. The hostile node's own key, valid for KZ, claiming to be BY's node.
            let other_member = sign_heartbeat(heartbeat(&tf, "BY", &hostile, t), &hostile)
                .unwrap()
                .bytes()
                .to_vec();
            let (x, a) = (x.clone(), a.clone());
            async move {
                for b in [forged, revoked, other_member] {
                    let _ = x.publish_heartbeat(b).await;
                }
                let (bad, revoked, member) = refused(a).await;
                bad > 0 && revoked > 0 && member > 0
            }
        })
        .await,
        "the forged heartbeats were not all refused: {:?}",
        a.federation_health().refused
    );
    // None of them shows up as a node of the federation.
    let view = a.federation_health();
    let listed: Vec<_> = view.members.iter().flat_map(|m| &m.nodes).collect();
    // BY's node never ran: nothing forged in its name was taken.
    let by = listed
        .iter()
        .find(|n| n.node_key == by_key.to_string())
        .unwrap();
    assert_eq!(by.status, "never-seen", "{by:?}");
    assert!(
        listed
            .iter()
            .all(|n| n.node_key != retired.public_key().to_string())
    );
    let metrics = a.metrics_text().await;
    let bad: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("accord_heartbeats_received_total{result=\"bad-signature\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(bad >= 1.0, "{metrics}");
    x.shutdown().await;
    a.shutdown().await;
}

/// A certified node that signs heartbeats as fast as it can, each with a new watermark (each a
/// checkpoint of everything below it for every receiver to compute), declaring a period of one
/// second, is heard at most twice in the receiver's own period (an hour here: once in the
/// test: one checkpoint computed), while the heartbeats between still keep it up; a watermark
/// no honest node signs — after the heartbeat's own time, or off its period — is refused as
/// hostile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_beating_fast_with_new_watermarks_is_heard_at_most_twice_a_receivers_period() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 48).unwrap();
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.health = HealthConfig {
        // This node's own heartbeats stay out of the count below.
        heartbeat_secs: 3_600,
        ..fast_health()
    };
    let a = Node::spawn(cfg).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let hostile = SecretKey::from_seed([49; 32]);
    let cert = tf.extra_node_cert(0, &hostile, "fast");
    let (x, _events) = raw_peer(&hostile, &tf, Some(cert.as_bytes().to_vec()), vec![a_addr]).await;
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    let received = |a: NodeHandle, result: &'static str| async move {
        a.metrics_text()
            .await
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "accord_heartbeats_received_total{{result=\"{result}\"}} "
                ))
            })
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Bursts of valid heartbeats sent a millisecond apart, issued a second apart, whose
    // watermarks all differ, until a hundred have been judged.
    let started = Instant::now();
    let mut turn = 0u64;
    assert!(
        wait_until(Duration::from_secs(30), || {
            turn += 1;
            let base = now().0 - now().0 % 1_000 + turn * 100;
            let messages: Vec<Vec<u8>> = (0..50u64)
                .map(|i| {
                    // A second apart in their own time: each past the one-second floor.
                    let mut hb = heartbeat(&tf, "KZ", &hostile, Timestamp(base + i * 1_000));
                    hb.checkpoint.watermark = Timestamp(base - base % 1_000 - i * 1_000);
                    sign_heartbeat(hb, &hostile).unwrap().bytes().to_vec()
                })
                .collect();
            let (x, a) = (x.clone(), a.clone());
            async move {
                for m in messages {
                    let _ = x.publish_heartbeat(m).await;
                }
                received(a, "ignored").await >= 100.0
            }
        })
        .await,
        "the bursts were not judged"
    );
    let heard = received(a.clone(), "accepted").await;
    let computed = metric(&a, "accord_health_checkpoints_computed_total").await;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{turn} bursts in {seconds:.1} s: {heard} heard, {computed} checkpoints computed");
    assert!(heard >= 1.0);
    assert!(
        heard <= 1.0 && computed <= 2.0,
        "{heard} heartbeats heard and {computed} checkpoints computed in {seconds:.1} s"
    );
    // Not judged within the receiver's period, but heard: a node beating every second is up
    // while it beats, down once it stops (its liveness counts in its own periods).
    let fast = |a: &NodeHandle| {
        a.federation_health()
            .members
            .into_iter()
            .flat_map(|m| m.nodes)
            .find(|n| n.member == "KZ" && n.status != "self")
    };
    assert!(
        wait_until(Duration::from_secs(30), || async {
            fast(&a).is_some_and(|v| v.status == "down")
        })
        .await,
        "{:?}",
        fast(&a)
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            let (x, a) = (x.clone(), a.clone());
            // Issued after every burst's heartbeat (the bursts' last were issued up to a
            // minute ahead, and the receiver judges heartbeats concurrently: which of a burst
            // it heard first, and so measures the next ones against, depends on the load),
            // within the charter's ten minutes of future skew.
            let hb = heartbeat(&tf, "KZ", &hostile, Timestamp(now().0 + 180_000));
            let bytes = sign_heartbeat(hb, &hostile).unwrap().bytes().to_vec();
            async move {
                let _ = x.publish_heartbeat(bytes).await;
                fast(&a).is_some_and(|v| v.status == "up")
            }
        })
        .await,
        "a node heard but not judged was left down: {:?}",
        fast(&a)
    );
    // Watermarks no honest node signs: refused as hostile (and the sender penalised).
    let mut turn = 0u64;
    assert!(
        wait_until(Duration::from_secs(30), || {
            turn += 1;
            let base = now().0 + 10_000 + turn * 2_000;
            let mut ahead = heartbeat(&tf, "KZ", &hostile, Timestamp(base));
            ahead.checkpoint.watermark = Timestamp(base - base % 1_000 + 1_000);
            let mut off = heartbeat(&tf, "KZ", &hostile, Timestamp(base + 1_500));
            off.checkpoint.watermark = Timestamp(base - base % 1_000 - 500);
            let messages: Vec<Vec<u8>> = [ahead, off]
                .into_iter()
                .map(|hb| sign_heartbeat(hb, &hostile).unwrap().bytes().to_vec())
                .collect();
            let (x, a) = (x.clone(), a.clone());
            async move {
                for m in messages {
                    let _ = x.publish_heartbeat(m).await;
                }
                a.federation_health()
                    .refused
                    .get("bad-watermark")
                    .is_some_and(|n| *n >= 2)
            }
        })
        .await,
        "{:?}",
        a.federation_health().refused
    );
    x.shutdown().await;
    a.shutdown().await;
}

/// A heartbeat naming one key but signed by another: built by hand, since the signing API
/// refuses to do it.
fn forge(hb: &Heartbeat, key: &SecretKey) -> Vec<u8> {
    let mut body = Vec::new();
    ciborium::into_writer(hb, &mut body).unwrap();
    let mut input = accord_core::health::HEARTBEAT_DOMAIN.to_vec();
    input.extend_from_slice(&body);
    let sig = key.sign(&input);
    let mut out = Vec::new();
    ciborium::into_writer(
        &(
            1u64,
            serde_bytes::Bytes::new(&body),
            serde_bytes::Bytes::new(&sig.0),
        ),
        &mut out,
    )
    .unwrap();
    out
}

/// Every `accord_*` metric the alerting rules (deploy/alerts.yml) name is one a node exports,
/// and every rule has the fields an operator reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerting_rules_name_metrics_the_node_exports() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/alerts.yml"))
            .unwrap();
    let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
    let tf = TestFed::new(&["KZ"], 47).unwrap();
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.health = fast_health();
    let a = Node::spawn(cfg).await.unwrap();
    // Its own first heartbeat fills the per-node series.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            a.metrics_text()
                .await
                .contains("accord_federation_node_info{")
        })
        .await
    );
    let metrics = a.metrics_text().await;
    let exported: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut named = 0;
    for group in doc["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            for field in ["expr", "for"] {
                assert!(rule.get(field).is_some(), "{name}: no {field}");
            }
            assert!(
                rule["labels"]["severity"].is_string(),
                "{name}: no severity"
            );
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{name}: no summary"
            );
            assert!(rule["annotations"]["description"].is_string(), "{name}");
            let expr = rule["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !word.starts_with("accord_") {
                    continue;
                }
                named += 1;
                // Counters are exported as `<name>_total` under `# TYPE <name>`, histograms as
                // `<name>_bucket`, `_count` and `_sum`.
                let base = ["_total", "_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s))
                    .unwrap_or(word);
                assert!(
                    exported.contains(&base),
                    "{name} names {word}, which the node does not export: {exported:?}"
                );
            }
        }
    }
    assert!(named >= 6, "{named} metric names found in the rules");
    a.shutdown().await;
}

/// A connection that stays open but carries no heartbeat is reset: a certified peer that is
/// subscribed to heartbeats and never sends one (as a connection looks once gossipsub gave up
/// on it) is disconnected, dialled again and admitted afresh, again after a longer wait while
/// it stays silent; a peer whose heartbeats arrive is never touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_heartbeats_stop_reaching_the_node_is_reset() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 48).unwrap();
    let health = HealthConfig {
        // Ten heartbeats missed in a row before a reset: B, heard every second, is never reset
        // by a busy moment of the test machine.
        silent_peer_secs: 10,
        ..fast_health()
    };
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.health = health.clone();
    let a = Node::spawn(cfg).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let mut cfg = tf.config(1, vec![a_addr.clone()], accord_node::AdmissionMode::Members);
    cfg.health = health;
    let b = Node::spawn(cfg).await.unwrap();
    // A second KZ node, certified, that never signs a heartbeat.
    let silent = SecretKey::from_seed([49; 32]);
    let cert = tf.extra_node_cert(0, &silent, "silent");
    let silent_id = accord_net::peer_id_of(&silent.public_key())
        .unwrap()
        .to_string();
    let b_id = b.peer_id().to_string();
    let (_x, _events) = raw_peer(&silent, &tf, Some(cert.as_bytes().to_vec()), vec![a_addr]).await;
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 2)).await);
    let since = |id: String| {
        let a = a.clone();
        async move {
            a.peers()
                .await
                .unwrap()
                .into_iter()
                .find(|p| p.peer_id == id && p.admitted)
                .map(|p| p.connected_since)
        }
    };
    let b_since = since(b_id.clone()).await.expect("B admitted");
    let x_since = since(silent_id.clone())
        .await
        .expect("the silent peer admitted");

    // Reset once (no heartbeat for three periods), then admitted again over a new connection.
    assert!(
        wait_until(Duration::from_secs(60), || async {
            metric(&a, "accord_silent_peer_resets_total").await >= 1.0
                && since(silent_id.clone()).await.is_some_and(|s| s > x_since)
        })
        .await,
        "the silent peer was reset and admitted again: {} resets, {:?}",
        metric(&a, "accord_silent_peer_resets_total").await,
        a.peers().await.unwrap()
    );
    // Still silent on its new connection: reset again.
    assert!(
        wait_until(Duration::from_secs(60), || async {
            metric(&a, "accord_silent_peer_resets_total").await >= 2.0
        })
        .await,
        "the peer that stays silent is reset again"
    );
    // B, whose heartbeats arrive every second, kept its connection all along.
    assert_eq!(since(b_id).await, Some(b_since), "B's connection was reset");
    a.shutdown().await;
    b.shutdown().await;
}

/// A node whose clock is an hour behind the federation's refuses every peer's heartbeat "from
/// the future" (and their fresh records), and used to say nothing of its own clock: every other
/// member looked down. The heartbeats' signed times are read before they are judged, so the
/// node names its offset — the median of the nodes heard — in its status and metrics (and
/// warns in its log). Played here by two certified nodes of two members whose heartbeats are
/// issued an hour ahead of the node's clock, which is as the node sees it when its own clock
/// is an hour slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_is_an_hour_slow_names_its_offset() {
    logs();
    let tf = TestFed::new(&["KZ", "BY", "AM"], 46).unwrap();
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.health = fast_health();
    let a = Node::spawn(cfg).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let (by_key, am_key) = (
        SecretKey::from_seed([47; 32]),
        SecretKey::from_seed([48; 32]),
    );
    let by_cert = tf.extra_node_cert(1, &by_key, "by-2");
    let am_cert = tf.extra_node_cert(2, &am_key, "am-2");
    let out = a
        .submit(vec![
            by_cert.as_bytes().to_vec(),
            am_cert.as_bytes().to_vec(),
        ])
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");
    let (x, _events) = raw_peer(
        &by_key,
        &tf,
        Some(by_cert.as_bytes().to_vec()),
        vec![a_addr],
    )
    .await;
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    assert_eq!(a.clock_offset(), None, "nothing heard yet");
    const HOUR_MS: u64 = 3_600_000;
    let mut turn = 0u64;
    let heard = wait_until(Duration::from_secs(30), || {
        turn += 1;
        let t = Timestamp(now().0 + HOUR_MS + turn);
        let beats = [("BY", &by_key), ("AM", &am_key)].map(|(code, key)| {
            sign_heartbeat(heartbeat(&tf, code, key, t), key)
                .unwrap()
                .bytes()
                .to_vec()
        });
        let (x, a) = (x.clone(), a.clone());
        async move {
            for b in beats {
                let _ = x.publish_heartbeat(b).await;
            }
            a.clock_offset().is_some_and(|c| c.nodes == 2)
        }
    })
    .await;
    assert!(
        heard,
        "the heartbeats were not read: {:?}",
        a.clock_offset()
    );
    let offset = a.clock_offset().unwrap();
    assert!(
        offset.offset_ms.abs_diff(HOUR_MS as i64) < 60_000 && offset.is_off(),
        "{offset:?}"
    );
    // Refused for their time all the same: the node's rule does not bend to them.
    assert!(
        metric(
            &a,
            "accord_heartbeats_received_total{result=\"from-the-future\"}"
        )
        .await
            >= 2.0
    );
    let clock = a.status().await.unwrap().clock.unwrap();
    assert!(
        clock.nodes == 2 && clock.offset_ms.abs_diff(HOUR_MS as i64) < 60_000,
        "{clock:?}"
    );
    let seconds = metric(&a, "accord_clock_offset_seconds").await;
    assert!((seconds - 3_600.0).abs() < 60.0, "{seconds}");
    assert_eq!(metric(&a, "accord_clock_offset_nodes").await, 2.0);
    a.shutdown().await;
}

/// A node whose clock ran ahead and is then corrected (stepped back) stays up for its peers:
/// its next heartbeats are dated just after its last one, not before it, until the clock has
/// caught up. Its peers take only a heartbeat later than the last they heard, so before, it
/// read "down" on every peer for as long as its clock had been ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_is_stepped_back_stays_up_for_its_peers() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 52).unwrap();
    let ahead = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(60_000));
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.health = HealthConfig {
        test_clock_offset_ms: Some(ahead.clone()),
        ..fast_health()
    };
    let kz = Node::spawn(cfg).await.unwrap();
    let mut cfg = tf.config(
        1,
        vec![dial_addr(&kz).await.unwrap()],
        accord_node::AdmissionMode::Members,
    );
    cfg.health = fast_health();
    let by = Node::spawn(cfg).await.unwrap();
    assert!(wait_until(Duration::from_secs(20), || admitted(&by, 1)).await);
    // BY hears KZ's heartbeats, dated a minute ahead.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            view_of(&by, "KZ").is_some_and(|n| n.status == "up")
        })
        .await,
        "BY does not see KZ up: {:?}",
        view_of(&by, "KZ")
    );
    // The clock is corrected.
    ahead.store(0, std::sync::atomic::Ordering::SeqCst);
    let corrected = now();
    // Heard again well after the correction (a heartbeat dated before it could still be on its
    // way for a period): KZ's heartbeats after the step are taken.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            view_of(&by, "KZ")
                .and_then(|n| n.last_seen)
                .is_some_and(|t| t.0 > corrected.0 + 3_000)
        })
        .await,
        "KZ's heartbeats after its clock was stepped back are not heard: {:?}",
        view_of(&by, "KZ")
    );
    assert_eq!(view_of(&by, "KZ").map(|n| n.status), Some("up"));
    by.shutdown().await;
    kz.shutdown().await;
}

/// A member that certifies node keys by the thousand (they need no machine) does not make
/// every other node list them all in its health view, nor export a series for each: the nodes
/// never heard from are listed up to a bound per member, and counted beyond it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_certifying_many_silent_nodes_is_listed_within_a_bound() {
    logs();
    let tf = TestFed::new(&["KZ", "BY"], 53).unwrap();
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    cfg.health = fast_health();
    let kz = Node::spawn(cfg).await.unwrap();
    let extra = accord_node::MAX_NEVER_SEEN_LISTED + 5;
    let certs: Vec<Vec<u8>> = (0..extra)
        .map(|i| {
            let key = SecretKey::from_seed([120 + i as u8; 32]);
            tf.extra_node_cert(1, &key, &format!("silent {i}"))
                .as_bytes()
                .to_vec()
        })
        .collect();
    let out = kz.submit(certs).await.unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");
    let by = kz
        .federation_health()
        .members
        .into_iter()
        .find(|m| m.code == "BY")
        .unwrap();
    // BY's own node is never seen too: one more than the extra ones.
    assert_eq!(by.nodes.len(), accord_node::MAX_NEVER_SEEN_LISTED);
    assert!(by.nodes.iter().all(|n| n.status == "never-seen"));
    assert_eq!(
        by.never_seen_more as usize,
        extra + 1 - accord_node::MAX_NEVER_SEEN_LISTED
    );
    let series = kz
        .metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("accord_federation_node_up{") && l.contains("member=\"BY\""))
        .count();
    assert_eq!(series, accord_node::MAX_NEVER_SEEN_LISTED);
    // The health page lists as many, and says how many more there are.
    let base = serve(&kz).await;
    let page = get_text(&base, "/health?lang=en").await;
    assert_eq!(
        page.matches("never seen</span>").count(),
        accord_node::MAX_NEVER_SEEN_LISTED,
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "More certified nodes never seen, not listed here: {}",
            extra + 1 - accord_node::MAX_NEVER_SEEN_LISTED
        )),
        "{page}"
    );
    kz.shutdown().await;
}
