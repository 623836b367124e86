//! Heartbeats and divergence evidence: what a node says about itself, signed with its
//! certified node key, and what an observer says about a node whose statements disagree with
//! what it holds (docs/PROTOCOL.md §11).
//!
//! Neither is an object: they are not stored in the object log, not reconciled and not
//! signed by a member's root or publisher key. A heartbeat is checked against the trust view
//! (the signer must hold a valid, unrevoked node certificate of the member it names) and is
//! kept by receivers only as the latest per node, with a time to live.
//!
//! Both travel as `[1, body_bytes, signature]`: the body is a CBOR map, the signature is
//! ed25519 by the key the body names, over a domain prefix followed by the body bytes. The
//! domains differ from each other and from the object envelope's, so that no signature can be
//! taken for another kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::{ByteBuf, Bytes};
use thiserror::Error;

use crate::cbor::{self, ScanLimits};
use crate::id::ObjectId;
use crate::keys::{PublicKey, SecretKey, Signature};
use crate::time::Timestamp;
use crate::trust::TrustView;

/// Domain prefix of a heartbeat's signing input.
pub const HEARTBEAT_DOMAIN: &[u8] = b"accord/heartbeat/v1\0";
/// Domain prefix of an evidence bundle's signing input.
pub const EVIDENCE_DOMAIN: &[u8] = b"accord/divergence-evidence/v1\0";
/// Domain prefix of a checkpoint fingerprint (see [`checkpoint_hasher`]).
pub const CHECKPOINT_DOMAIN: &[u8] = b"accord/checkpoint/v1\0";
/// The framing version of heartbeats and evidence bundles.
pub const HEALTH_VERSION: u64 = 1;
/// Largest heartbeat accepted, in bytes.
pub const MAX_HEARTBEAT_BYTES: usize = 16 * 1024;
/// Most entries in a heartbeat's `reconciled` list.
pub const MAX_RECONCILED: usize = 64;
/// Most entries in a heartbeat's `counts` map.
pub const MAX_COUNTS: usize = 16;
/// Largest evidence bundle accepted, in bytes.
pub const MAX_EVIDENCE_BYTES: usize = 256 * 1024;

const SCAN: ScanLimits = ScanLimits {
    max_depth: 8,
    max_entries: 256,
};

/// The count and fingerprint of every `(created, id)` a node holds with `created` before the
/// watermark. Honest nodes that have reconciled hold the same set below a watermark a few
/// minutes in the past, so their checkpoints at the same watermark are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub watermark: Timestamp,
    pub count: u64,
    /// SHA-256 of [`CHECKPOINT_DOMAIN`] followed by, for each item in `(created, id)` order,
    /// `created` as 8 big-endian bytes and the 32 bytes of the id.
    pub fingerprint: ObjectId,
}

/// Incremental computation of a checkpoint fingerprint: feed the items in order.
pub fn checkpoint_hasher() -> CheckpointHasher {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(CHECKPOINT_DOMAIN);
    CheckpointHasher { h, count: 0 }
}

/// See [`checkpoint_hasher`].
#[derive(Debug)]
pub struct CheckpointHasher {
    h: sha2::Sha256,
    count: u64,
}

impl CheckpointHasher {
    /// Adds one item; items must come in `(created, id)` order.
    pub fn add(&mut self, created: u64, id: &[u8; 32]) {
        use sha2::Digest;
        self.h.update(created.to_be_bytes());
        self.h.update(id);
        self.count += 1;
    }

    pub fn finish(self, watermark: Timestamp) -> Checkpoint {
        use sha2::Digest;
        Checkpoint {
            watermark,
            count: self.count,
            fingerprint: ObjectId(self.h.finalize().into()),
        }
    }
}

/// The last completed reconciliation with one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    /// The peer's libp2p peer id.
    pub peer: String,
    pub at: Timestamp,
}

/// A node's signed statement of its health. Fields a later version adds are ignored by
/// this one (docs/PROTOCOL.md §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub federation: ObjectId,
    pub member: String,
    /// The node key that signs: it must hold a node certificate of `member`.
    pub node: PublicKey,
    /// When it was signed; also its sequence: two different heartbeats of one node with the
    /// same `issued` are an equivocation.
    pub issued: Timestamp,
    /// The sender's heartbeat period: it is considered down after 1.5 periods of silence.
    pub period_secs: u64,
    /// `accord/<version>`.
    pub software: String,
    /// The protocol version, e.g. `1.2`.
    pub protocol: String,
    /// The number of charters in force so far (1 = the genesis).
    pub charter_version: u64,
    pub uptime_secs: u64,
    /// Stored objects per type.
    pub counts: BTreeMap<String, u64>,
    pub checkpoint: Checkpoint,
    /// Its last completed reconciliation with each peer (at most [`MAX_RECONCILED`]).
    pub reconciled: Vec<Reconciled>,
    /// Attachments it knows of but does not hold yet.
    pub attachment_backlog: u64,
}

/// Why a heartbeat or an evidence bundle is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HealthError {
    #[error("too large: {0} bytes (at most {1})")]
    TooLarge(usize, usize),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("for federation {0}, not this one")]
    WrongFederation(ObjectId),
    #[error("bad signature by {0}")]
    BadSignature(String),
    #[error("node key {0} holds no valid, unrevoked node certificate")]
    NotCertified(String),
    #[error("node key {key} is certified for {certified}, but the heartbeat names {claimed}")]
    WrongMember {
        key: String,
        certified: String,
        claimed: String,
    },
    #[error("issued {0} ms in the future")]
    FromTheFuture(u64),
    #[error("older than its time to live")]
    Stale,
    /// A checkpoint no honest node signs: its watermark after the heartbeat's own time, or not
    /// a multiple of the heartbeat's period (every node rounds it down to its period).
    #[error("checkpoint watermark {watermark} {why}")]
    BadWatermark { watermark: u64, why: &'static str },
}

impl HealthError {
    /// Stable kebab-case code, for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            HealthError::TooLarge(..) => "too-large",
            HealthError::Malformed(_) => "malformed",
            HealthError::WrongFederation(_) => "wrong-federation",
            HealthError::BadSignature(_) => "bad-signature",
            HealthError::NotCertified(_) => "not-certified",
            HealthError::WrongMember { .. } => "wrong-member",
            HealthError::FromTheFuture(_) => "from-the-future",
            HealthError::Stale => "stale",
            HealthError::BadWatermark { .. } => "bad-watermark",
        }
    }

    /// Whether the peer that forwarded such a message should be penalised: only for what no
    /// honest node forwards whatever its clock or trust view (a bad signature, malformed
    /// bytes, another federation, a node claiming another member). A stale heartbeat, one
    /// from the future or one whose certificate the forwarder did not yet know revoked is
    /// refused without a penalty.
    pub fn is_hostile(&self) -> bool {
        matches!(
            self,
            HealthError::TooLarge(..)
                | HealthError::Malformed(_)
                | HealthError::WrongFederation(_)
                | HealthError::BadSignature(_)
                | HealthError::BadWatermark { .. }
        )
    }
}

/// A heartbeat whose signature and certificate were checked ([`check_heartbeat`]) or that
/// this node signed ([`sign_heartbeat`]). No other constructor exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeartbeat {
    bytes: Vec<u8>,
    heartbeat: Heartbeat,
}

impl SignedHeartbeat {
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// The exact signed bytes, as they travel.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn seal<T: Serialize>(domain: &[u8], body: &T, key: &SecretKey) -> Result<Vec<u8>, HealthError> {
    let mut b = Vec::new();
    ciborium::into_writer(body, &mut b).map_err(|e| HealthError::Malformed(e.to_string()))?;
    let mut input = domain.to_vec();
    input.extend_from_slice(&b);
    let sig = key.sign(&input);
    let mut out = Vec::with_capacity(b.len() + 80);
    ciborium::into_writer(
        &(HEALTH_VERSION, Bytes::new(&b), Bytes::new(&sig.0)),
        &mut out,
    )
    .map_err(|e| HealthError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Splits `[1, body, signature]`, decodes the body and checks the signature by the key
/// `key_of` finds in it.
fn open<T: serde::de::DeserializeOwned>(
    domain: &[u8],
    bytes: &[u8],
    max: usize,
    key_of: impl Fn(&T) -> PublicKey,
) -> Result<T, HealthError> {
    open_checked(domain, bytes, max, key_of, |_| Ok(()))
}

/// [`open`], with `before` run on the decoded statement before its signature is checked: what
/// is cheap to refuse (a key no member certified) costs no signature check.
fn open_checked<T: serde::de::DeserializeOwned>(
    domain: &[u8],
    bytes: &[u8],
    max: usize,
    key_of: impl Fn(&T) -> PublicKey,
    before: impl FnOnce(&T) -> Result<(), HealthError>,
) -> Result<T, HealthError> {
    if bytes.len() > max {
        return Err(HealthError::TooLarge(bytes.len(), max));
    }
    cbor::check_single(bytes, SCAN).map_err(|e| HealthError::Malformed(e.to_string()))?;
    let (v, body, sig): (u64, ByteBuf, ByteBuf) =
        ciborium::de::from_reader_with_recursion_limit(bytes, SCAN.max_depth + 2)
            .map_err(|e| HealthError::Malformed(format!("framing: {e}")))?;
    if v != HEALTH_VERSION {
        return Err(HealthError::Malformed(format!("unknown version {v}")));
    }
    cbor::check_single(&body, SCAN).map_err(|e| HealthError::Malformed(e.to_string()))?;
    let decoded: T = ciborium::de::from_reader_with_recursion_limit(&body[..], SCAN.max_depth + 2)
        .map_err(|e| HealthError::Malformed(format!("body: {e}")))?;
    let sig: [u8; 64] = sig
        .as_slice()
        .try_into()
        .map_err(|_| HealthError::Malformed("signature is not 64 bytes".into()))?;
    before(&decoded)?;
    let key = key_of(&decoded);
    let mut input = domain.to_vec();
    input.extend_from_slice(&body);
    if !key.verify_strict(&input, &Signature(sig)) {
        return Err(HealthError::BadSignature(key.short()));
    }
    Ok(decoded)
}

/// Signs `hb` with the node key (which must be the key `hb.node` names).
pub fn sign_heartbeat(hb: Heartbeat, key: &SecretKey) -> Result<SignedHeartbeat, HealthError> {
    if key.public_key() != hb.node {
        return Err(HealthError::Malformed(
            "the heartbeat names another node key than the one signing it".into(),
        ));
    }
    let bytes = seal(HEARTBEAT_DOMAIN, &hb, key)?;
    if bytes.len() > MAX_HEARTBEAT_BYTES {
        return Err(HealthError::TooLarge(bytes.len(), MAX_HEARTBEAT_BYTES));
    }
    Ok(SignedHeartbeat {
        bytes,
        heartbeat: hb,
    })
}

/// Decodes and checks a heartbeat's signature only: for evidence, where the heartbeat is
/// history and its certificate may since have been revoked.
pub fn open_heartbeat(bytes: &[u8]) -> Result<SignedHeartbeat, HealthError> {
    open_heartbeat_checked(bytes, |_| Ok(()))
}

fn open_heartbeat_checked(
    bytes: &[u8],
    before: impl FnOnce(&Heartbeat) -> Result<(), HealthError>,
) -> Result<SignedHeartbeat, HealthError> {
    let heartbeat: Heartbeat = open_checked(
        HEARTBEAT_DOMAIN,
        bytes,
        MAX_HEARTBEAT_BYTES,
        |h: &Heartbeat| h.node,
        before,
    )?;
    if heartbeat.reconciled.len() > MAX_RECONCILED || heartbeat.counts.len() > MAX_COUNTS {
        return Err(HealthError::Malformed("too many entries".into()));
    }
    Ok(SignedHeartbeat {
        bytes: bytes.to_vec(),
        heartbeat,
    })
}

/// Checks a received heartbeat: size, framing, signature by the node key it names, this
/// federation, a valid and unrevoked node certificate of the member it names, issued at most
/// the charter's `max_future_skew_ms` ahead of `now` (the bound objects are held to: a node
/// whose clock runs fast by less has its objects taken, and must not be shown silent and reset
/// for its heartbeats) and at most `ttl_ms` before it.
pub fn check_heartbeat(
    bytes: &[u8],
    trust: &TrustView,
    now: Timestamp,
    ttl_ms: u64,
) -> Result<SignedHeartbeat, HealthError> {
    let s = check_heartbeat_signed(bytes, trust, now)?;
    check_heartbeat_time(&s, trust, now, ttl_ms)?;
    Ok(s)
}

/// [`check_heartbeat`] but for its issue time: what a heartbeat shows of its sender's clock
/// is read between the two (a node whose own clock is wrong refuses every peer's heartbeat for
/// its time, and can still learn that it is its own clock that is off).
pub fn check_heartbeat_signed(
    bytes: &[u8],
    trust: &TrustView,
    now: Timestamp,
) -> Result<SignedHeartbeat, HealthError> {
    // The federation and the certificate are judged before the signature: a flood of
    // heartbeats from keys no member certified costs a decoding each, not a signature check.
    let s = open_heartbeat_checked(bytes, |hb| {
        if hb.federation != trust.federation() {
            return Err(HealthError::WrongFederation(hb.federation));
        }
        // The member the heartbeat names must have certified the key; a certificate of the
        // same key by another member does not stand in for it (nor take it away).
        if trust.node_member_as(&hb.node, &hb.member, now).is_none() {
            return Err(match trust.node_member(&hb.node, now) {
                Some(entry) => HealthError::WrongMember {
                    key: hb.node.short(),
                    certified: entry.cert.member.to_string(),
                    claimed: hb.member.clone(),
                },
                None => HealthError::NotCertified(hb.node.short()),
            });
        }
        Ok(())
    })?;
    let hb = &s.heartbeat;
    let watermark = hb.checkpoint.watermark.0;
    if watermark > hb.issued.0 {
        return Err(HealthError::BadWatermark {
            watermark,
            why: "is after the heartbeat was issued",
        });
    }
    let period_ms = hb.period_secs.saturating_mul(1000);
    if period_ms > 0 && watermark % period_ms != 0 {
        return Err(HealthError::BadWatermark {
            watermark,
            why: "is not a multiple of the heartbeat's period",
        });
    }
    Ok(s)
}

/// The time rule of [`check_heartbeat`]: issued at most the charter's `max_future_skew_ms`
/// ahead of `now` and at most `ttl_ms` before it.
pub fn check_heartbeat_time(
    s: &SignedHeartbeat,
    trust: &TrustView,
    now: Timestamp,
    ttl_ms: u64,
) -> Result<(), HealthError> {
    let issued = s.heartbeat.issued.0;
    if issued > now.0.saturating_add(trust.limits().max_future_skew_ms) {
        return Err(HealthError::FromTheFuture(issued - now.0));
    }
    if issued.saturating_add(ttl_ms) < now.0 {
        return Err(HealthError::Stale);
    }
    Ok(())
}

/// What an observer found: a node's signed checkpoints disagree with what the observer
/// holds after reconciling with it (`divergent`), or the node signed two different
/// heartbeats with the same `issued` (`equivocation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub federation: ObjectId,
    /// The observer's node key (it signs the bundle) and member.
    pub observer: PublicKey,
    pub observer_member: String,
    pub created: Timestamp,
    pub kind: String,
    /// The node it is about, and its member.
    pub subject: PublicKey,
    pub subject_member: String,
    /// The subject's signed heartbeats, as received (each verifiable on its own).
    pub heartbeats: Vec<ByteBuf>,
    /// The observer's own checkpoint at the watermark of the last heartbeat.
    pub observed: Option<Checkpoint>,
    /// When the observer last completed a reconciliation with the subject.
    pub reconciled_at: Option<Timestamp>,
    pub explanation: String,
}

/// Signs an evidence bundle with the observer's node key.
pub fn sign_evidence(e: &Evidence, key: &SecretKey) -> Result<Vec<u8>, HealthError> {
    if key.public_key() != e.observer {
        return Err(HealthError::Malformed(
            "the bundle names another observer key than the one signing it".into(),
        ));
    }
    seal(EVIDENCE_DOMAIN, e, key)
}

/// Opens an evidence bundle: checks the observer's signature and that every heartbeat in it
/// is signed by the subject's key. Whether the observer and subject were certified is for the
/// reader to judge against its trust view.
pub fn open_evidence(bytes: &[u8]) -> Result<(Evidence, Vec<SignedHeartbeat>), HealthError> {
    let e: Evidence = open(
        EVIDENCE_DOMAIN,
        bytes,
        MAX_EVIDENCE_BYTES,
        |e: &Evidence| e.observer,
    )?;
    let mut hbs = Vec::with_capacity(e.heartbeats.len());
    for b in &e.heartbeats {
        let h = open_heartbeat(b)?;
        if h.heartbeat.node != e.subject {
            return Err(HealthError::Malformed(
                "a heartbeat in the bundle is not the subject's".into(),
            ));
        }
        hbs.push(h);
    }
    Ok((e, hbs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnet::DevFederation;
    use crate::object::{Object, ObjectType, Revocation, TargetType};

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    fn trust(dev: &DevFederation, extra: &[crate::SignedObject]) -> TrustView {
        let (mut t, _) = TrustView::from_genesis(dev.genesis.as_bytes()).unwrap();
        for o in dev.trust_objects().iter().chain(extra) {
            match crate::validate(o.as_bytes(), &t, T0) {
                crate::Verdict::Accepted(v) => t.apply(&v),
                other => panic!("{other:?}"),
            }
        }
        t
    }

    fn heartbeat(dev: &DevFederation, i: usize, issued: Timestamp) -> Heartbeat {
        let m = &dev.members[i];
        Heartbeat {
            federation: dev.federation(),
            member: m.code.to_string(),
            node: m.node.public_key(),
            issued,
            period_secs: 60,
            software: "accord/test".into(),
            protocol: "1.2".into(),
            charter_version: 1,
            uptime_secs: 5,
            counts: BTreeMap::from([("record".into(), 3)]),
            checkpoint: checkpoint_hasher().finish(Timestamp(0)),
            reconciled: vec![Reconciled {
                peer: "12D3KooW".into(),
                at: issued,
            }],
            attachment_backlog: 0,
        }
    }

    fn dev() -> DevFederation {
        DevFederation::new(&["AM", "BY", "KZ"], [7; 32], T0).unwrap()
    }

    #[test]
    fn a_heartbeat_signed_by_a_certified_node_is_accepted_and_round_trips() {
        let dev = dev();
        let t = trust(&dev, &[]);
        let hb = heartbeat(&dev, 1, T0);
        let s = sign_heartbeat(hb.clone(), &dev.members[1].node).unwrap();
        let back = check_heartbeat(s.bytes(), &t, T0, 60_000).unwrap();
        assert_eq!(back.heartbeat(), &hb);
        assert_eq!(back, s);
    }

    /// A hostile member certifies another member's node key, dated earlier (so that a view
    /// rebuilt in creation order holds it first): the node's heartbeats still count for its
    /// own member, and the squatter's name on the key is refused.
    #[test]
    fn another_members_certificate_of_a_node_key_does_not_take_it_over() {
        let dev = dev();
        let by_node = dev.members[1].node.public_key();
        let squat = Object::Node(crate::object::NodeCert {
            object_type: ObjectType::Node,
            federation: dev.federation(),
            created: Timestamp(T0.0 - 1_000),
            member: dev.members[2].code.clone(),
            node_key: by_node,
            label: Some("taken".into()),
        })
        .sign(&dev.members[2].root);
        let (mut t, _) = TrustView::from_genesis(dev.genesis.as_bytes()).unwrap();
        for o in std::iter::once(&squat).chain(dev.trust_objects().iter()) {
            match crate::validate(o.as_bytes(), &t, T0) {
                crate::Verdict::Accepted(v) => t.apply(&v),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            t.node_member(&by_node, T0).unwrap().cert.member.as_str(),
            "KZ"
        );
        let s = sign_heartbeat(heartbeat(&dev, 1, T0), &dev.members[1].node).unwrap();
        assert!(check_heartbeat(s.bytes(), &t, T0, 60_000).is_ok());
        assert!(t.node_member_as(&by_node, "BY", T0).is_some());
        // Heartbeats naming the squatter are the squatter's word on a key it does not hold.
        let mut hb = heartbeat(&dev, 1, T0);
        hb.member = "AM".into();
        let s = sign_heartbeat(hb, &dev.members[1].node).unwrap();
        assert_eq!(
            check_heartbeat(s.bytes(), &t, T0, 60_000)
                .unwrap_err()
                .code(),
            "wrong-member"
        );
    }

    #[test]
    fn forged_heartbeats_are_refused_with_the_reason() {
        let dev = dev();
        let t = trust(&dev, &[]);
        // Signed by another member's node key while naming BY's key.
        let hb = heartbeat(&dev, 1, T0);
        let forged = seal(HEARTBEAT_DOMAIN, &hb, &dev.members[0].node).unwrap();
        assert_eq!(
            check_heartbeat(&forged, &t, T0, 60_000).unwrap_err().code(),
            "bad-signature"
        );
        // A key with no certificate at all.
        let stranger = SecretKey::from_seed([9; 32]);
        let mut hb = heartbeat(&dev, 1, T0);
        hb.node = stranger.public_key();
        let s = sign_heartbeat(hb, &stranger).unwrap();
        assert_eq!(
            check_heartbeat(s.bytes(), &t, T0, 60_000)
                .unwrap_err()
                .code(),
            "not-certified"
        );
        // A key no member certified is refused before its signature is checked (a flood of
        // them costs a decoding each): a bad signature there reads as not certified.
        let mut forged = s.bytes().to_vec();
        let n = forged.len();
        forged[n - 1] ^= 0x01;
        assert_eq!(
            check_heartbeat(&forged, &t, T0, 60_000).unwrap_err().code(),
            "not-certified"
        );
        // A certified node claiming to be another member's.
        let mut hb = heartbeat(&dev, 1, T0);
        hb.member = "KZ".into();
        let s = sign_heartbeat(hb, &dev.members[1].node).unwrap();
        assert_eq!(
            check_heartbeat(s.bytes(), &t, T0, 60_000)
                .unwrap_err()
                .code(),
            "wrong-member"
        );
        // Another federation.
        let mut hb = heartbeat(&dev, 1, T0);
        hb.federation = ObjectId([1; 32]);
        let s = sign_heartbeat(hb, &dev.members[1].node).unwrap();
        assert_eq!(
            check_heartbeat(s.bytes(), &t, T0, 60_000)
                .unwrap_err()
                .code(),
            "wrong-federation"
        );
        // Too far ahead, too old.
        let s = sign_heartbeat(
            heartbeat(
                &dev,
                1,
                T0.saturating_add_ms(t.limits().max_future_skew_ms + 1),
            ),
            &dev.members[1].node,
        )
        .unwrap();
        assert_eq!(
            check_heartbeat(s.bytes(), &t, T0, 60_000)
                .unwrap_err()
                .code(),
            "from-the-future"
        );
        // Six minutes ahead: a clock an object created then is taken from, so is its heartbeat
        // (it used to be refused beyond five, and the node shown silent and reset).
        let s = sign_heartbeat(
            heartbeat(&dev, 1, T0.saturating_add_ms(6 * 60 * 1000)),
            &dev.members[1].node,
        )
        .unwrap();
        assert!(check_heartbeat(s.bytes(), &t, T0, 60_000).is_ok());
        let s = sign_heartbeat(heartbeat(&dev, 1, T0), &dev.members[1].node).unwrap();
        let e = check_heartbeat(s.bytes(), &t, T0.saturating_add_ms(60_001), 60_000).unwrap_err();
        assert_eq!(e.code(), "stale");
        assert!(!e.is_hostile());
        // Tampered bytes, garbage, oversize.
        let mut bad = s.bytes().to_vec();
        let n = bad.len();
        bad[n - 70] ^= 1;
        assert!(check_heartbeat(&bad, &t, T0, 60_000).is_err());
        assert_eq!(
            check_heartbeat(&[0xff, 0x00], &t, T0, 60_000)
                .unwrap_err()
                .code(),
            "malformed"
        );
        let big = vec![0u8; MAX_HEARTBEAT_BYTES + 1];
        assert_eq!(
            check_heartbeat(&big, &t, T0, 60_000).unwrap_err().code(),
            "too-large"
        );
        // An object signature is not a heartbeat signature (domains differ).
        let obj = dev.record(1, "x", T0);
        assert!(check_heartbeat(obj.as_bytes(), &t, T0, 60_000).is_err());
    }

    #[test]
    fn a_heartbeat_of_a_revoked_node_certificate_is_refused() {
        let dev = dev();
        let cert = dev.node_cert(1);
        let revocation = Object::Revocation(Revocation {
            object_type: ObjectType::Revocation,
            federation: dev.federation(),
            created: T0,
            member: dev.members[1].code.clone(),
            target_type: TargetType::Node,
            target: cert.id(),
            effective: T0,
            reason: Some("node decommissioned".into()),
        })
        .sign(&dev.members[1].root);
        let t = trust(&dev, &[revocation]);
        let s = sign_heartbeat(heartbeat(&dev, 1, T0), &dev.members[1].node).unwrap();
        assert_eq!(
            check_heartbeat(s.bytes(), &t, T0.saturating_add_ms(1), 60_000)
                .unwrap_err()
                .code(),
            "not-certified"
        );
    }

    #[test]
    fn an_evidence_bundle_verifies_and_tampering_is_caught() {
        let dev = dev();
        let h1 = sign_heartbeat(heartbeat(&dev, 1, T0), &dev.members[1].node).unwrap();
        let e = Evidence {
            federation: dev.federation(),
            observer: dev.members[0].node.public_key(),
            observer_member: "AM".into(),
            created: T0,
            kind: "divergent".into(),
            subject: dev.members[1].node.public_key(),
            subject_member: "BY".into(),
            heartbeats: vec![ByteBuf::from(h1.bytes().to_vec())],
            observed: Some(checkpoint_hasher().finish(Timestamp(0))),
            reconciled_at: Some(T0),
            explanation: "test".into(),
        };
        let b = sign_evidence(&e, &dev.members[0].node).unwrap();
        let (back, hbs) = open_evidence(&b).unwrap();
        assert_eq!(back, e);
        assert_eq!(hbs[0], h1);
        // A heartbeat of someone else inside is refused; so is another signer.
        let mut other = e.clone();
        other.subject = dev.members[2].node.public_key();
        let b = sign_evidence(&other, &dev.members[0].node).unwrap();
        assert!(open_evidence(&b).is_err());
        assert!(sign_evidence(&e, &dev.members[2].node).is_err());
        let forged = seal(EVIDENCE_DOMAIN, &e, &dev.members[2].node).unwrap();
        assert_eq!(open_evidence(&forged).unwrap_err().code(), "bad-signature");
    }

    #[test]
    fn checkpoints_depend_on_every_item_and_its_order() {
        let mut a = checkpoint_hasher();
        a.add(1, &[1; 32]);
        a.add(2, &[2; 32]);
        let mut b = checkpoint_hasher();
        b.add(1, &[1; 32]);
        b.add(2, &[3; 32]);
        let (a, b) = (a.finish(Timestamp(5)), b.finish(Timestamp(5)));
        assert_eq!(a.count, 2);
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_ne!(checkpoint_hasher().finish(Timestamp(5)), a);
    }
}
