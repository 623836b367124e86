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

const IGNORED: &str = "accord_gossip_messages_total{direction=\"in\",verdict=\"ignore\"}";
const REJECTED: &str = "accord_gossip_messages_total{direction=\"in\",verdict=\"reject\"}";

/// A raw peer with a node certificate of `tf`'s first member (key seeded `seed`), connected to
/// `b`, admitted and in its gossip mesh.
async fn forwarder(
    tf: &TestFed,
    b: &accord_node::NodeHandle,
    seed: u8,
) -> (accord_net::NetworkHandle, accord_net::NetworkEvents) {
    let b_addr = dial_addr(b).await.unwrap();
    let f_key = SecretKey::from_seed([seed; 32]);
    let cert = tf.extra_node_cert(0, &f_key, "forwarder");
    let (f, events) = raw_peer(&f_key, tf, Some(cert.as_bytes().to_vec()), vec![b_addr]).await;
    assert!(wait_until(Duration::from_secs(30), || admitted(b, 1)).await);
    assert!(wait_until(Duration::from_secs(30), || gossips_to(&f, b)).await);
    (f, events)
}

/// `f` publishes the objects `make` makes (numbered from 1), ten at a time, until `b` has judged
/// `judged` gossip messages in all (ignored or rejected): more than enough refusals to cut a
/// peer that sent as many invalid messages. None may be rejected.
async fn forward_until_judged(
    f: &accord_net::NetworkHandle,
    b: &accord_node::NodeHandle,
    judged: f64,
    mut make: impl FnMut(u64) -> Vec<u8>,
) {
    let mut i = 0u64;
    assert!(
        wait_until(Duration::from_secs(60), || {
            let batch: Vec<Vec<u8>> = (0..10)
                .map(|_| {
                    i += 1;
                    make(i)
                })
                .collect();
            let (f, b) = (f.clone(), b.clone());
            async move {
                for m in batch {
                    let _ = f.publish(m).await;
                }
                metric(&b, IGNORED).await + metric(&b, REJECTED).await >= judged
            }
        })
        .await,
        "B did not judge the forwarded objects: {} ignored, {} rejected",
        metric(b, IGNORED).await,
        metric(b, REJECTED).await
    );
    assert_eq!(metric(b, REJECTED).await, 0.0);
}

/// `f` is still connected to `b` and admitted (not cut for what it forwarded).
async fn still_admitted(f: &accord_net::NetworkHandle, b: &accord_node::NodeHandle) {
    let f_id = f.local_peer_id().to_string();
    let peers = b.peers().await.unwrap();
    assert!(
        peers.iter().any(|p| p.peer_id == f_id && p.admitted),
        "the forwarder was cut: {peers:?}"
    );
}

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
    let (f, _events) = forwarder(&tf, &b, 55).await;
    // Records signed by the revoked key, as a node that accepted them forwards them: more than
    // enough refusals to cut a peer that sent as many invalid messages.
    forward_until_judged(&f, &b, 40.0, |i| {
        tf.fed
            .record(0, &format!("forwarded {i}"), Timestamp(t - 10_000 + i))
            .into_bytes()
    })
    .await;
    still_admitted(&f, &b).await;
    b.shutdown().await;
}

/// A body of a type this release does not know (as a newer release would make), from member
/// `m` of `tf`, signed by `key`.
fn newer_object(tf: &TestFed, key: &SecretKey, created: u64, n: u64) -> Vec<u8> {
    use ciborium::Value;
    let body = Value::Map(vec![
        (Value::Text("type".into()), Value::Text("survey".into())),
        (
            Value::Text("federation".into()),
            Value::Text(tf.fed.genesis.id().to_string()),
        ),
        (Value::Text("member".into()), Value::Text("KZ".into())),
        (
            Value::Text("created".into()),
            Value::Integer(created.into()),
        ),
        (
            Value::Text("question".into()),
            Value::Text(format!("survey {n}")),
        ),
    ]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).unwrap();
    accord_core::SignedObject::sign(bytes, key).into_bytes()
}

/// A newer release adds an object type. A node of this release refuses such objects, but a
/// peer that forwards them is not blamed (it was cut after a few, and honest nodes of a
/// federation upgrading one at a time cut each other); a refusal of one signed by a key with
/// standing is remembered so that reconciliation does not fetch it again, one signed by a
/// stranger's key is only dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_of_objects_of_a_newer_release_is_not_blamed() {
    let tf = TestFed::new(&["KZ", "BY"], 56).unwrap();
    let b = tf.spawn(1, vec![]).await.unwrap();
    let t = now().0;
    // Submitted directly: refused with the code of an unknown type, and a reason that says why.
    let one = newer_object(&tf, &tf.fed.members[0].publisher, t - 20_000, 0);
    let one_id = accord_core::ObjectId::of_body(
        accord_core::SignedObject::decode(&one, usize::MAX, accord_core::Limits::default().scan())
            .unwrap()
            .body(),
    );
    let out = b.submit(vec![one]).await.unwrap();
    assert_eq!(out[0].status, "rejected", "{out:?}");
    assert_eq!(out[0].code, Some("unknown-type"), "{out:?}");
    assert!(
        out[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("a newer release"),
        "{out:?}"
    );
    // Remembered as refused for what its body is: reconciliation does not fetch it again,
    // and a peer holding it is not read as withholding it.
    let remembered = b
        .read(move |s| s.received_not_held(&[one_id]))
        .await
        .unwrap();
    assert_eq!(remembered, vec![(Timestamp(t - 20_000), one_id)]);
    let (f, _events) = forwarder(&tf, &b, 57).await;
    forward_until_judged(&f, &b, 40.0, |i| {
        newer_object(&tf, &tf.fed.members[0].publisher, t - 10_000 + i, i)
    })
    .await;
    still_admitted(&f, &b).await;
    // Signed by a stranger's key: dropped without blame too (as a record whose signer this
    // node does not know waits, unblamed), and not remembered (a stranger's keys could fill
    // that memory).
    let stranger = SecretKey::from_seed([58; 32]);
    let judged = metric(&b, IGNORED).await + 40.0;
    forward_until_judged(&f, &b, judged, |i| {
        newer_object(&tf, &stranger, t - 5_000 + i, i)
    })
    .await;
    still_admitted(&f, &b).await;
    // Not remembered by id (keys anyone can make would fill that memory), but for the peer
    // that gave them, apart: that peer is not asked for them again at every session.
    let id_of = |bytes: &[u8]| {
        accord_core::ObjectId::of_body(
            accord_core::SignedObject::decode(
                bytes,
                usize::MAX,
                accord_core::Limits::default().scan(),
            )
            .unwrap()
            .body(),
        )
    };
    let forwarded: Vec<accord_core::ObjectId> = (1..=10)
        .map(|i| id_of(&newer_object(&tf, &stranger, t - 5_000 + i, i)))
        .collect();
    let from = format!("peer {}", f.local_peer_id());
    let (by_id, from_forwarder) = b
        .read(move |s| {
            (
                s.received_not_held(&forwarded),
                s.received_not_held_from(&forwarded, &from),
            )
        })
        .await
        .unwrap();
    assert!(by_id.is_empty(), "{by_id:?}");
    assert!(
        !from_forwarder.is_empty(),
        "none of the first ten remembered for the forwarder"
    );
    // Submitted through the API it is refused the same way (reconciliation never asks the API).
    let theirs = newer_object(&tf, &stranger, t - 1_000, 0);
    let out = b.submit(vec![theirs]).await.unwrap();
    assert_eq!(out[0].code, Some("unknown-type"), "{out:?}");
    b.shutdown().await;
}
