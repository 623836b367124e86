#![allow(clippy::unwrap_used)]
//! Integration tests of `accord_core::validate` and the trust view: genesis, charter
//! amendments, delegations, records, revocations, retractions, supersession and node
//! certificates, plus property tests of the envelope and of the decoder's robustness.
//!
//! Every test is deterministic: keys come from fixed seeds, the development federation from
//! `[7; 32]`, "now" is always passed explicitly and proptest runs from a fixed RNG seed.
//! Every negative test matches the exact `Verdict` / `Rejection` / `Missing` variant (and its
//! fields where they identify the rule), so removing the rule makes the test fail.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use accord_core::devnet::{DevFederation, member_name};
use accord_core::envelope::signing_input;
use accord_core::object::{LangMap, TargetType};
use accord_core::{
    Charter, DecodeError, Delegation, KnownRecords, MemberCode, MemberEntry, Missing, NodeCert,
    Object, ObjectId, ObjectType, PublicKey, Record, Rejection, Retraction, Revocation, SecretKey,
    Signature, SignedObject, Timestamp, TrustView, Verdict, Verified, validate, validate_envelope,
    validate_with,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// 2026-01-01T00:00:00Z: creation time of the development federation.
const T0: Timestamp = Timestamp(1_767_225_600_000);
const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
/// "Now" for most tests: one day after the federation was founded.
const NOW: Timestamp = Timestamp(T0.0 + DAY);
/// The default `max_future_skew_ms` (10 minutes).
const SKEW: u64 = 10 * MIN;

const KZ: usize = 0;
const BY: usize = 1;
const AM: usize = 2;

/// `T0 + ms`.
fn at(ms: u64) -> Timestamp {
    Timestamp(T0.0 + ms)
}

fn dev() -> DevFederation {
    DevFederation::new(&["KZ", "BY", "AM"], [7u8; 32], T0).expect("development federation")
}

/// The same federation under a charter that adopted the 1.3 refusals (`limits.rules` 3).
fn dev_1_3() -> DevFederation {
    DevFederation::with_limits(
        &["KZ", "BY", "AM"],
        [7u8; 32],
        T0,
        accord_core::Limits {
            rules: accord_core::object::RULES_1_3,
            ..Default::default()
        },
    )
    .expect("development federation")
}

fn code(s: &str) -> MemberCode {
    s.parse().unwrap()
}

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// The trust view right after genesis: no delegations, no node certificates.
fn genesis_trust(dev: &DevFederation) -> TrustView {
    TrustView::from_genesis(dev.genesis.as_bytes())
        .expect("genesis is valid")
        .0
}

/// The trust view with every member's delegation and node certificate applied.
fn full_trust(dev: &DevFederation) -> TrustView {
    let mut t = genesis_trust(dev);
    for o in dev.trust_objects() {
        accept_apply(&mut t, &o, NOW);
    }
    t
}

#[track_caller]
fn accepted(v: Verdict) -> Verified<Object> {
    match v {
        Verdict::Accepted(v) => v,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[track_caller]
fn accept_apply(trust: &mut TrustView, so: &SignedObject, now: Timestamp) -> Verified<Object> {
    let v = accepted(validate(so.as_bytes(), trust, now));
    trust.apply(&v);
    v
}

#[track_caller]
fn rejected(v: Verdict) -> Rejection {
    match v {
        Verdict::Rejected(r) => r,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

/// Asserts that a verdict is `Rejected` with a rejection matching the pattern.
macro_rules! assert_rejected {
    ($verdict:expr, $pat:pat $(if $guard:expr)? $(,)?) => {
        match $verdict {
            Verdict::Rejected($pat) $(if $guard)? => {}
            other => panic!(
                "expected Rejected({}), got {:?}",
                stringify!($pat $(if $guard)?),
                other
            ),
        }
    };
}

/// Asserts that a `from_genesis` result is an error matching the pattern.
macro_rules! assert_genesis_err {
    ($result:expr, $pat:pat $(if $guard:expr)? $(,)?) => {
        match $result {
            Err($pat) $(if $guard)? => {}
            Err(other) => panic!(
                "expected Err({}), got Err({:?})",
                stringify!($pat $(if $guard)?),
                other
            ),
            Ok((view, _)) => panic!(
                "expected Err({}), got a trust view for {}",
                stringify!($pat $(if $guard)?),
                view.federation()
            ),
        }
    };
}

fn langs(pairs: &[(&str, &str)]) -> LangMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Member `i`'s record body, changed by `f`.
fn record_body(
    dev: &DevFederation,
    i: usize,
    created: Timestamp,
    f: impl FnOnce(&mut Record),
) -> Record {
    let mut r = dev.record_body(i, "Open data regulation", created);
    f(&mut r);
    r
}

/// Member `i`'s record, changed by `f`, signed by member `i`'s development publisher.
fn record(
    dev: &DevFederation,
    i: usize,
    created: Timestamp,
    f: impl FnOnce(&mut Record),
) -> SignedObject {
    Object::Record(record_body(dev, i, created, f)).sign(&dev.members[i].publisher)
}

/// A delegation of `publisher` for member `i` (all kinds and directions, open window).
fn delegation_body(dev: &DevFederation, i: usize, publisher: PublicKey) -> Delegation {
    Delegation {
        object_type: ObjectType::Delegation,
        federation: dev.federation(),
        created: T0,
        member: dev.members[i].code.clone(),
        publisher,
        name: "Ministry of Digital Development".into(),
        kinds: None,
        directions: None,
        not_before: T0,
        not_after: None,
    }
}

fn revocation_body(
    dev: &DevFederation,
    i: usize,
    target_type: TargetType,
    target: ObjectId,
    effective: Timestamp,
) -> Revocation {
    Revocation {
        object_type: ObjectType::Revocation,
        federation: dev.federation(),
        created: at(2 * HOUR),
        member: dev.members[i].code.clone(),
        target_type,
        target,
        effective,
        reason: Some("key compromised".into()),
    }
}

fn key_target(k: &PublicKey) -> ObjectId {
    ObjectId(*k.as_bytes())
}

fn retraction_body(dev: &DevFederation, i: usize, record: ObjectId) -> Retraction {
    Retraction {
        object_type: ObjectType::Retraction,
        federation: dev.federation(),
        created: at(3 * HOUR),
        member: dev.members[i].code.clone(),
        record,
        reason: "Superseded by the 2026 edition".into(),
    }
}

/// A charter envelope signed by each key in order (add_signature refuses duplicates).
fn signed_charter(c: &Charter, signers: &[&SecretKey]) -> SignedObject {
    let mut s = SignedObject::unsigned(Object::Charter(c.clone()).encode_body());
    for k in signers {
        assert!(s.add_signature(k), "duplicate signer in fixture");
    }
    s
}

/// The next charter version: a copy of the current charter with federation, version,
/// previous and created set for an amendment.
fn amendment(trust: &TrustView) -> Charter {
    let mut c = trust.charter().clone();
    c.federation = Some(trust.federation());
    c.version = trust.charter_history().len() as u64 + 1;
    c.previous = Some(trust.charter_id());
    c.created = at(HOUR);
    c
}

fn add_member(c: &mut Charter, code_str: &str, root: &SecretKey) {
    c.members.push(MemberEntry {
        code: code(code_str),
        name: member_name(code_str),
        root_key: root.public_key(),
    });
}

/// The new member's root key in the amendment tests.
fn uz_root() -> SecretKey {
    key(21)
}

/// Records known to the validator (what the store provides in a node).
#[derive(Debug, Default)]
struct Known(BTreeMap<ObjectId, (MemberCode, PublicKey)>);

impl Known {
    fn with(id: ObjectId, member: &MemberCode, author: PublicKey) -> Self {
        Known(BTreeMap::from([(id, (member.clone(), author))]))
    }
}

impl KnownRecords for Known {
    fn record_meta(&self, id: &ObjectId) -> Option<(MemberCode, PublicKey)> {
        self.0.get(id).cloned()
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built envelopes: [1, bstr body, [[bstr32 key, bstr64 sig], ...]] in canonical CBOR.
// ---------------------------------------------------------------------------------------------

fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn raw_envelope(body: &[u8], sigs: &[(PublicKey, Signature)]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor_head(&mut out, 4, 3);
    cbor_head(&mut out, 0, 1);
    cbor_head(&mut out, 2, body.len() as u64);
    out.extend_from_slice(body);
    cbor_head(&mut out, 4, sigs.len() as u64);
    for (k, s) in sigs {
        cbor_head(&mut out, 4, 2);
        cbor_head(&mut out, 2, 32);
        out.extend_from_slice(k.as_bytes());
        cbor_head(&mut out, 2, 64);
        out.extend_from_slice(&s.0);
    }
    out
}

fn sig_by(k: &SecretKey, body: &[u8]) -> (PublicKey, Signature) {
    (k.public_key(), k.sign(&signing_input(body)))
}

#[test]
fn hand_built_envelope_matches_library_encoding() {
    let dev = dev();
    let body = Object::Charter(dev.charter.clone()).encode_body();
    let sigs: Vec<_> = dev.members.iter().map(|m| sig_by(&m.root, &body)).collect();
    assert_eq!(raw_envelope(&body, &sigs), dev.genesis.as_bytes());
    let rec = dev.record(KZ, "x", at(HOUR));
    assert_eq!(
        raw_envelope(rec.body(), rec.signatures()),
        rec.as_bytes(),
        "one-signature envelope"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Genesis
// ---------------------------------------------------------------------------------------------

#[test]
fn genesis_with_all_three_founders_is_accepted() {
    let dev = dev();
    let (view, verified) = TrustView::from_genesis(dev.genesis.as_bytes()).expect("genesis");
    assert_eq!(view.federation(), dev.genesis.id());
    assert_eq!(view.federation(), ObjectId::of_body(dev.genesis.body()));
    assert_eq!(view.charter_history(), &[dev.genesis.id()]);
    assert_eq!(view.charter_id(), dev.genesis.id());
    assert_eq!(view.charter(), &dev.charter);
    assert_eq!(verified.id(), dev.genesis.id());
    assert_eq!(verified.signers().count(), 3);
    for m in &dev.members {
        assert_eq!(view.root_key(&m.code), Some(m.root.public_key()));
    }
    assert_eq!(view.root_key(&code("UZ")), None);
    // Re-validating the genesis against its own view accepts it (and does not change trust).
    let again = accepted(validate(dev.genesis.as_bytes(), &view, NOW));
    assert_eq!(again.id(), dev.genesis.id());
}

#[test]
fn genesis_missing_one_founding_signature_is_genesis_unsigned() {
    let dev = dev();
    let two = signed_charter(
        &dev.charter,
        &[&dev.members[KZ].root, &dev.members[BY].root],
    );
    assert_genesis_err!(
        TrustView::from_genesis(two.as_bytes()),
        Rejection::GenesisUnsigned(m) if m == code("AM")
    );
    let one = signed_charter(&dev.charter, &[&dev.members[BY].root]);
    assert_genesis_err!(
        TrustView::from_genesis(one.as_bytes()),
        Rejection::GenesisUnsigned(m) if m == code("KZ")
    );
}

#[test]
fn genesis_signed_by_non_member_is_foreign_charter_signer() {
    let dev = dev();
    let outsider = key(99);
    let s = signed_charter(
        &dev.charter,
        &[
            &dev.members[KZ].root,
            &dev.members[BY].root,
            &dev.members[AM].root,
            &outsider,
        ],
    );
    assert_genesis_err!(
        TrustView::from_genesis(s.as_bytes()),
        Rejection::ForeignCharterSigner(k) if k == outsider.public_key()
    );
    // A publisher key of a member is not a root key either.
    let s = signed_charter(
        &dev.charter,
        &[
            &dev.members[KZ].root,
            &dev.members[BY].publisher,
            &dev.members[AM].root,
        ],
    );
    assert_genesis_err!(
        TrustView::from_genesis(s.as_bytes()),
        Rejection::ForeignCharterSigner(k) if k == dev.members[BY].publisher.public_key()
    );
}

#[test]
fn genesis_with_flipped_signature_byte_is_bad_signature() {
    let dev = dev();
    let body = dev.genesis.body().to_vec();
    // Flip bytes in R (index 3) and in S (index 40, 63) of each founder's signature in turn.
    for victim in 0..3 {
        for pos in [3usize, 40, 63] {
            let mut sigs = dev.genesis.signatures().to_vec();
            sigs[victim].1.0[pos] ^= 0x01;
            let bytes = raw_envelope(&body, &sigs);
            let expected = dev.members[victim].root.public_key();
            assert_genesis_err!(
                TrustView::from_genesis(&bytes),
                Rejection::BadSignature(k) if k == expected
            );
        }
    }
}

#[test]
fn genesis_threshold_zero_or_above_member_count_is_invalid_charter() {
    let dev = dev();
    let all: Vec<&SecretKey> = dev.members.iter().map(|m| &m.root).collect();
    for (threshold, ok) in [
        (0, false),
        (1, true),
        (3, true),
        (4, false),
        (u64::MAX, false),
    ] {
        let mut c = dev.charter.clone();
        c.threshold = threshold;
        let s = signed_charter(&c, &all);
        let r = TrustView::from_genesis(s.as_bytes());
        if ok {
            assert!(r.is_ok(), "threshold {threshold}: {:?}", r.err());
        } else {
            assert_genesis_err!(r, Rejection::InvalidCharter(msg) if msg.contains("threshold"));
        }
    }
}

#[test]
fn genesis_duplicate_member_code_is_invalid_charter() {
    let dev = dev();
    let mut c = dev.charter.clone();
    c.members[AM].code = code("KZ");
    let all: Vec<&SecretKey> = dev.members.iter().map(|m| &m.root).collect();
    let s = signed_charter(&c, &all);
    assert_genesis_err!(
        TrustView::from_genesis(s.as_bytes()),
        Rejection::InvalidCharter(msg) if msg.contains("KZ is listed twice")
    );
}

#[test]
fn genesis_same_root_key_for_two_members_is_invalid_charter() {
    let dev = dev();
    let mut c = dev.charter.clone();
    c.members[AM].root_key = dev.members[KZ].root.public_key();
    // Both distinct keys that appear sign, so only the duplicate-key rule can refuse it.
    let s = signed_charter(&c, &[&dev.members[KZ].root, &dev.members[BY].root]);
    assert_genesis_err!(
        TrustView::from_genesis(s.as_bytes()),
        Rejection::InvalidCharter(msg) if msg.contains("two members")
    );
}

#[test]
fn genesis_with_federation_or_wrong_version_is_invalid_charter() {
    let dev = dev();
    let all: Vec<&SecretKey> = dev.members.iter().map(|m| &m.root).collect();
    let mut c = dev.charter.clone();
    c.version = 2;
    assert_genesis_err!(
        TrustView::from_genesis(signed_charter(&c, &all).as_bytes()),
        Rejection::InvalidCharter(msg) if msg.contains("genesis")
    );
    let mut c = dev.charter.clone();
    c.federation = Some(ObjectId::of_body(b"elsewhere"));
    assert_genesis_err!(
        TrustView::from_genesis(signed_charter(&c, &all).as_bytes()),
        Rejection::InvalidCharter(msg) if msg.contains("genesis")
    );
    // A record is not a charter at all.
    assert_genesis_err!(
        TrustView::from_genesis(dev.record(KZ, "x", T0).as_bytes()),
        Rejection::InvalidCharter(msg) if msg.contains("expected a charter")
    );
}

#[test]
fn another_federations_genesis_is_foreign_genesis() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let other = DevFederation::new(&["KZ", "BY", "AM"], [8u8; 32], T0).unwrap();
    assert_rejected!(
        validate(other.genesis.as_bytes(), &trust, NOW),
        Rejection::ForeignGenesis(id) if id == other.genesis.id()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Charter amendments
// ---------------------------------------------------------------------------------------------

#[test]
fn amendment_with_threshold_signatures_is_accepted_and_applied() {
    let dev = dev();
    let mut trust = full_trust(&dev);
    assert_eq!(trust.charter().threshold, 2);
    let uz = uz_root();
    let mut c = amendment(&trust);
    add_member(&mut c, "UZ", &uz);
    // Exactly the threshold (2 of 3 current members) plus the new member's own key.
    let s = signed_charter(&c, &[&dev.members[KZ].root, &dev.members[AM].root, &uz]);
    let v = accepted(validate(s.as_bytes(), &trust, NOW));
    assert_eq!(v.id(), s.id());
    trust.apply(&v);
    assert_eq!(trust.charter_history(), &[dev.federation(), s.id()]);
    assert_eq!(trust.charter_id(), s.id());
    assert_eq!(
        trust.federation(),
        dev.federation(),
        "federation id never changes"
    );
    assert_eq!(trust.charter().version, 2);
    assert_eq!(trust.charter().members.len(), 4);
    assert_eq!(trust.root_key(&code("UZ")), Some(uz.public_key()));

    // Re-validating the applied amendment is idempotent, not a rollback.
    let again = accepted(validate(s.as_bytes(), &trust, NOW));
    trust.apply(&again);
    assert_eq!(trust.charter_history().len(), 2);

    // The new member can now delegate and its publisher can publish.
    let uz_pub = key(22);
    let d = Object::Delegation(Delegation {
        member: code("UZ"),
        ..delegation_body(&dev, KZ, uz_pub.public_key())
    })
    .sign(&uz);
    accept_apply(&mut trust, &d, NOW);
    let mut r = dev.record_body(KZ, "Raqamli hukumat", at(2 * HOUR));
    r.member = code("UZ");
    accepted(validate(
        Object::Record(r).sign(&uz_pub).as_bytes(),
        &trust,
        NOW,
    ));
}

/// A signature by `k` over `message` whose R carries a point of order 8: R = r·B + T and
/// s = r + H(R‖A‖M)·a. Ed25519's cofactored equation 8(s·B − R − H·A) = 0 holds for it, and an
/// implementation that checks that one (or a batch that multiplies out the cofactor, or draws
/// its random weights as multiples of 8) accepts it; the strict one, s·B − H·A = R, refuses it.
/// Only the key's holder can make one: a hostile co-signer of a charter.
fn mixed_order_signature(k: &SecretKey, message: &[u8]) -> Signature {
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::{Scalar, clamp_integer};
    use curve25519_dalek::traits::IsIdentity;
    use sha2::{Digest, Sha512};
    let wide = |parts: &[&[u8]]| {
        let mut h = Sha512::new();
        for p in parts {
            h.update(p);
        }
        let mut out = [0u8; 64];
        out.copy_from_slice(&h.finalize());
        Scalar::from_bytes_mod_order_wide(&out)
    };
    let seed = k.seed();
    let expanded = Sha512::digest(seed.as_slice());
    let mut lower = [0u8; 32];
    lower.copy_from_slice(&expanded[..32]);
    let a = Scalar::from_bytes_mod_order(clamp_integer(lower));
    let public = EdwardsPoint::mul_base(&a);
    assert_eq!(public.compress().as_bytes(), k.public_key().as_bytes());
    // A point of order 8 (one of the encodings every strict verifier lists).
    let mut t = [0u8; 32];
    t.copy_from_slice(
        &hex::decode("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05").unwrap(),
    );
    let torsion = CompressedEdwardsY(t).decompress().unwrap();
    assert!(torsion.is_small_order() && !torsion.is_identity());
    let r = wide(&[b"a hostile co-signer's nonce", message]);
    let big_r = (EdwardsPoint::mul_base(&r) + torsion).compress();
    let h = wide(&[big_r.as_bytes(), public.compress().as_bytes(), message]);
    let s = r + h * a;
    // The cofactored equation holds, the strict one does not: it is the signature meant.
    let r_point = big_r.decompress().unwrap();
    assert!(!r_point.is_small_order(), "R is of mixed order, not small");
    let lhs = EdwardsPoint::mul_base(&s) - r_point - h * public;
    assert!(!lhs.is_identity() && lhs.mul_by_cofactor().is_identity());
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    Signature(sig)
}

/// A member's root key co-signs an amendment with a signature only a cofactored check accepts
/// (see [`mixed_order_signature`]): the amendment is refused for that signature, as every strict
/// implementation refuses it, so a hostile co-signer cannot make two implementations disagree
/// about which charter is in force. A record signed so is refused the same way.
#[test]
fn a_co_signature_only_a_cofactored_check_accepts_is_refused() {
    let dev = dev();
    let trust = full_trust(&dev);
    let mut c = amendment(&trust);
    c.name = "Renamed federation".into();
    let body = Object::Charter(c).encode_body();
    let kz = sig_by(&dev.members[KZ].root, &body);
    let am = dev.members[AM].root.public_key();
    let forged = mixed_order_signature(&dev.members[AM].root, &signing_input(&body));
    assert!(!am.verify_strict(&signing_input(&body), &forged));
    assert_rejected!(
        validate(&raw_envelope(&body, &[kz, (am, forged)]), &trust, NOW),
        Rejection::BadSignature(k) if k == am
    );
    // Control: the same co-signer's ordinary signature reaches the threshold.
    accepted(validate(
        &raw_envelope(&body, &[kz, sig_by(&dev.members[AM].root, &body)]),
        &trust,
        NOW,
    ));
    // A record, through the precheck the node runs on its worker pool, and through validation.
    let publisher = &dev.members[KZ].publisher;
    let record = dev.record(KZ, "Mixed order", at(HOUR));
    let input = signing_input(record.body());
    let sig = mixed_order_signature(publisher, &input);
    let bytes = raw_envelope(record.body(), &[(publisher.public_key(), sig)]);
    assert_rejected!(
        validate(&bytes, &trust, NOW),
        Rejection::BadSignature(k) if k == publisher.public_key()
    );
    let decoded = SignedObject::decode(
        &bytes,
        1 << 20,
        accord_core::cbor::ScanLimits {
            max_depth: 16,
            max_entries: 10_000,
        },
    )
    .unwrap();
    assert!(matches!(
        accord_core::validate::precheck(decoded, trust.limits()),
        Err(Rejection::BadSignature(k)) if k == publisher.public_key()
    ));
}

#[test]
fn amendment_with_threshold_minus_one_is_threshold_not_met() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let uz = uz_root();
    let mut c = amendment(&trust);
    add_member(&mut c, "UZ", &uz);
    // One current member plus the new key: the new key does not count towards the threshold.
    let s = signed_charter(&c, &[&dev.members[BY].root, &uz]);
    assert_rejected!(
        validate(s.as_bytes(), &trust, NOW),
        Rejection::ThresholdNotMet {
            have: 1,
            need: 2,
            version: 1
        }
    );
    // Without a new member: a single member root is still one short.
    let mut c = amendment(&trust);
    c.name = "Renamed federation".into();
    let s = signed_charter(&c, &[&dev.members[AM].root]);
    assert_rejected!(
        validate(s.as_bytes(), &trust, NOW),
        Rejection::ThresholdNotMet {
            have: 1,
            need: 2,
            version: 1
        }
    );
}

#[test]
fn amendment_with_a_key_counted_twice_is_an_envelope_decode_error() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let mut c = amendment(&trust);
    c.name = "Renamed federation".into();
    let body = Object::Charter(c).encode_body();
    let kz = sig_by(&dev.members[KZ].root, &body);
    let by = sig_by(&dev.members[BY].root, &body);

    // Control: two distinct member keys reach the threshold.
    accepted(validate(&raw_envelope(&body, &[kz, by]), &trust, NOW));

    // The same key twice must not count as two members.
    for sigs in [vec![kz, kz], vec![kz, by, kz]] {
        let bytes = raw_envelope(&body, &sigs);
        assert_rejected!(
            validate(&bytes, &trust, NOW),
            Rejection::Decode(DecodeError::Envelope(msg)) if msg.contains("signs twice")
        );
    }
}

#[test]
fn amendment_skipping_a_version_is_charter_version_skip() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let mut c = amendment(&trust);
    c.version = 3;
    let s = signed_charter(
        &c,
        &[
            &dev.members[KZ].root,
            &dev.members[BY].root,
            &dev.members[AM].root,
        ],
    );
    assert_rejected!(
        validate(s.as_bytes(), &trust, NOW),
        Rejection::CharterVersionSkip {
            found: 3,
            expected: 2
        }
    );
}

#[test]
fn different_old_version_after_amendment_is_charter_rollback() {
    let dev = dev();
    let mut trust = genesis_trust(&dev);
    let roots = [&dev.members[KZ].root, &dev.members[BY].root];
    let mut v2 = amendment(&trust);
    v2.name = "Accord federation, second edition".into();
    let v2s = signed_charter(&v2, &roots);
    accept_apply(&mut trust, &v2s, NOW);
    assert_eq!(trust.charter_history().len(), 2);

    // A competing version 2 (same previous, different content).
    let mut other_v2 = v2.clone();
    other_v2.name = "A competing second edition".into();
    let s = signed_charter(&other_v2, &roots);
    assert_rejected!(
        validate(s.as_bytes(), &trust, NOW),
        Rejection::CharterRollback {
            found: 2,
            current: 2
        }
    );

    // A different version 1 (a re-founding with the federation field set).
    let mut other_v1 = dev.charter.clone();
    other_v1.federation = Some(dev.federation());
    other_v1.name = "Re-founded".into();
    let s = signed_charter(&other_v1, &roots);
    assert_rejected!(
        validate(s.as_bytes(), &trust, NOW),
        Rejection::CharterRollback {
            found: 1,
            current: 2
        }
    );

    // The applied version 2 itself is still accepted (it is known).
    accepted(validate(v2s.as_bytes(), &trust, NOW));
}

#[test]
fn new_root_key_without_its_signature_is_new_key_unsigned() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let uz = uz_root();
    let mut c = amendment(&trust);
    add_member(&mut c, "UZ", &uz);
    // All three current members sign, the new member does not.
    let all = [
        &dev.members[KZ].root,
        &dev.members[BY].root,
        &dev.members[AM].root,
    ];
    let s = signed_charter(&c, &all);
    assert_rejected!(
        validate(s.as_bytes(), &trust, NOW),
        Rejection::NewKeyUnsigned { member, key } if member == code("UZ") && key == uz.public_key()
    );

    // A replaced root key of an existing member is a new key too.
    let new_kz = key(50);
    let mut c = amendment(&trust);
    c.members[KZ].root_key = new_kz.public_key();
    let s = signed_charter(&c, &all);
    assert_rejected!(
        validate(s.as_bytes(), &trust, NOW),
        Rejection::NewKeyUnsigned { member, key } if member == code("KZ") && key == new_kz.public_key()
    );
    // ... and with its signature the rotation is accepted.
    let s = signed_charter(&c, &[&dev.members[KZ].root, &dev.members[BY].root, &new_kz]);
    accepted(validate(s.as_bytes(), &trust, NOW));
}

#[test]
fn amendment_signed_by_unknown_key_is_foreign_charter_signer() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let outsider = key(99);
    let mut c = amendment(&trust);
    c.name = "Renamed federation".into();
    let s = signed_charter(
        &c,
        &[&dev.members[KZ].root, &dev.members[BY].root, &outsider],
    );
    assert_rejected!(
        validate(s.as_bytes(), &trust, NOW),
        Rejection::ForeignCharterSigner(k) if k == outsider.public_key()
    );
}

#[test]
fn amendment_with_wrong_previous_is_charter_previous_mismatch() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let roots = [&dev.members[KZ].root, &dev.members[BY].root];
    let bogus = ObjectId::of_body(b"not the current charter");
    let mut c = amendment(&trust);
    c.previous = Some(bogus);
    assert_rejected!(
        validate(signed_charter(&c, &roots).as_bytes(), &trust, NOW),
        Rejection::CharterPreviousMismatch { expected, found }
            if expected == dev.federation() && found == bogus.to_string()
    );
    let mut c = amendment(&trust);
    c.previous = None;
    assert_rejected!(
        validate(signed_charter(&c, &roots).as_bytes(), &trust, NOW),
        Rejection::CharterPreviousMismatch { expected, found }
            if expected == dev.federation() && found == "nothing"
    );
}

#[test]
fn amendment_dropping_a_taxonomy_code_is_invalid_charter() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let roots = [&dev.members[KZ].root, &dev.members[BY].root];

    let mut c = amendment(&trust);
    c.taxonomy.kinds.retain(|k| k.code != "dataset");
    assert_rejected!(
        validate(signed_charter(&c, &roots).as_bytes(), &trust, NOW),
        Rejection::InvalidCharter(msg) if msg.contains("drops kind code \"dataset\"")
    );

    let mut c = amendment(&trust);
    c.taxonomy.directions.retain(|d| d.code != "e-government");
    assert_rejected!(
        validate(signed_charter(&c, &roots).as_bytes(), &trust, NOW),
        Rejection::InvalidCharter(msg) if msg.contains("drops direction code \"e-government\"")
    );

    // Control: adding a code is allowed.
    let mut c = amendment(&trust);
    let mut extra = c.taxonomy.kinds[0].clone();
    extra.code = "white-paper".into();
    c.taxonomy.kinds.push(extra);
    accepted(validate(signed_charter(&c, &roots).as_bytes(), &trust, NOW));
}

#[test]
fn amendment_older_than_current_charter_is_invalid_charter() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let mut c = amendment(&trust);
    c.created = Timestamp(T0.0 - 1);
    let s = signed_charter(&c, &[&dev.members[KZ].root, &dev.members[BY].root]);
    assert_rejected!(
        validate(s.as_bytes(), &trust, NOW),
        Rejection::InvalidCharter(msg) if msg.contains("older")
    );
}

#[test]
fn delegations_of_a_replaced_root_key_are_delegation_root_replaced() {
    let dev = dev();
    let mut trust = full_trust(&dev);
    let rec = dev.record(KZ, "Before rotation", at(2 * HOUR));
    accepted(validate(rec.as_bytes(), &trust, NOW));

    let new_kz = key(50);
    let mut c = amendment(&trust);
    c.members[KZ].root_key = new_kz.public_key();
    let s = signed_charter(&c, &[&dev.members[KZ].root, &dev.members[BY].root, &new_kz]);
    accept_apply(&mut trust, &s, NOW);

    let delegation_id = dev.delegation(KZ).id();
    assert_rejected!(
        validate(rec.as_bytes(), &trust, NOW),
        Rejection::DelegationRootReplaced { delegation, member }
            if delegation == delegation_id && member == code("KZ")
    );
    // The old root can no longer delegate; the new one can.
    let d = Object::Delegation(delegation_body(&dev, KZ, key(60).public_key()));
    assert_rejected!(
        validate(d.sign(&dev.members[KZ].root).as_bytes(), &trust, NOW),
        Rejection::NotSignedByRoot { .. }
    );
    accepted(validate(d.sign(&new_kz).as_bytes(), &trust, NOW));
}

// ---------------------------------------------------------------------------------------------
// 3. Delegations
// ---------------------------------------------------------------------------------------------

#[test]
fn delegation_not_signed_by_root_is_not_signed_by_root() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let d = Object::Delegation(delegation_body(&dev, KZ, key(30).public_key()));
    accepted(validate(
        d.sign(&dev.members[KZ].root).as_bytes(),
        &trust,
        NOW,
    ));
    // The member's own publisher key, and another member's root key, are not KZ's root.
    for signer in [&dev.members[KZ].publisher, &dev.members[BY].root] {
        assert_rejected!(
            validate(d.sign(signer).as_bytes(), &trust, NOW),
            Rejection::NotSignedByRoot { object_type: ObjectType::Delegation, member, signer: s }
                if member == code("KZ") && s == signer.public_key()
        );
    }
}

#[test]
fn delegation_for_unknown_member_is_unknown_member() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let d = Object::Delegation(Delegation {
        member: code("UZ"),
        ..delegation_body(&dev, KZ, key(30).public_key())
    });
    assert_rejected!(
        validate(d.sign(&uz_root()).as_bytes(), &trust, NOW),
        Rejection::UnknownMember(m) if m == code("UZ")
    );
    // Even a real member root cannot delegate for a member that does not exist.
    assert_rejected!(
        validate(d.sign(&dev.members[KZ].root).as_bytes(), &trust, NOW),
        Rejection::UnknownMember(m) if m == code("UZ")
    );
}

#[test]
fn delegation_with_unknown_kind_or_direction_is_refused() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let root = &dev.members[KZ].root;
    let base = delegation_body(&dev, KZ, key(30).public_key());
    let ok = Delegation {
        kinds: Some(vec!["regulatory-note".into(), "dataset".into()]),
        directions: Some(vec!["regulation".into()]),
        ..base.clone()
    };
    accepted(validate(
        Object::Delegation(ok.clone()).sign(root).as_bytes(),
        &trust,
        NOW,
    ));

    let bad_kind = Delegation {
        kinds: Some(vec!["regulatory-note".into(), "poem".into()]),
        ..ok.clone()
    };
    assert_rejected!(
        validate(Object::Delegation(bad_kind).sign(root).as_bytes(), &trust, NOW),
        Rejection::UnknownKind(k) if k == "poem"
    );
    let bad_dir = Delegation {
        directions: Some(vec!["space-travel".into()]),
        ..ok.clone()
    };
    assert_rejected!(
        validate(Object::Delegation(bad_dir).sign(root).as_bytes(), &trust, NOW),
        Rejection::UnknownDirection(d) if d == "space-travel"
    );
    let inverted = Delegation {
        not_before: at(2 * HOUR),
        not_after: Some(at(HOUR)),
        ..base
    };
    assert_rejected!(
        validate(
            Object::Delegation(inverted).sign(root).as_bytes(),
            &trust,
            NOW
        ),
        Rejection::InvalidField {
            field: "not_after",
            ..
        }
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Records
// ---------------------------------------------------------------------------------------------

#[test]
fn record_from_delegated_publisher_is_accepted() {
    let dev = dev();
    let trust = full_trust(&dev);
    for i in [KZ, BY, AM] {
        let rec = dev.record(i, "Open data regulation", at(HOUR));
        let v = accepted(validate(rec.as_bytes(), &trust, NOW));
        assert_eq!(v.id(), ObjectId::of_body(rec.body()));
        assert_eq!(v.signer(), dev.members[i].publisher.public_key());
        assert_eq!(v.bytes(), rec.as_bytes());
        match v.object() {
            Object::Record(r) => assert_eq!(r.member, dev.members[i].code),
            other => panic!("not a record: {other:?}"),
        }
    }
}

#[test]
fn record_without_delegation_is_pending_then_accepted() {
    let dev = dev();
    let mut trust = genesis_trust(&dev);
    let rec = dev.record(KZ, "Open data regulation", at(HOUR));
    match validate(rec.as_bytes(), &trust, NOW) {
        Verdict::Pending(Missing::Delegation { member, publisher }) => {
            assert_eq!(member, code("KZ"));
            assert_eq!(publisher, dev.members[KZ].publisher.public_key());
        }
        other => panic!("expected Pending(Missing::Delegation), got {other:?}"),
    }
    // Another member's delegation of the same key does not help KZ's record.
    let by_delegates_kz_key = Object::Delegation(Delegation {
        member: code("BY"),
        ..delegation_body(&dev, KZ, dev.members[KZ].publisher.public_key())
    })
    .sign(&dev.members[BY].root);
    accept_apply(&mut trust, &by_delegates_kz_key, NOW);
    assert!(matches!(
        validate(rec.as_bytes(), &trust, NOW),
        Verdict::Pending(Missing::Delegation { .. })
    ));
    // The delegation arrives: the very same bytes are now accepted.
    accept_apply(&mut trust, &dev.delegation(KZ), NOW);
    let v = accepted(validate(rec.as_bytes(), &trust, NOW));
    assert_eq!(v.id(), rec.id());
}

#[test]
fn record_outside_delegation_window_is_refused() {
    let dev = dev();
    let mut trust = genesis_trust(&dev);
    let d = Object::Delegation(Delegation {
        not_before: at(HOUR),
        not_after: Some(at(2 * HOUR)),
        ..delegation_body(&dev, KZ, dev.members[KZ].publisher.public_key())
    })
    .sign(&dev.members[KZ].root);
    let d_id = accept_apply(&mut trust, &d, NOW).id();

    for created in [at(30 * MIN), at(HOUR - 1), at(2 * HOUR + 1), at(3 * HOUR)] {
        assert_rejected!(
            validate(record(&dev, KZ, created, |_| {}).as_bytes(), &trust, NOW),
            Rejection::OutsideDelegationWindow { delegation, at: a, not_before, not_after }
                if delegation == d_id && a == created && not_before == at(HOUR)
                    && not_after == Some(at(2 * HOUR))
        );
    }
    // Both ends of the window are inclusive.
    for created in [at(HOUR), at(90 * MIN), at(2 * HOUR)] {
        accepted(validate(
            record(&dev, KZ, created, |_| {}).as_bytes(),
            &trust,
            NOW,
        ));
    }
}

#[test]
fn record_kind_outside_delegation_is_kind_out_of_scope() {
    let dev = dev();
    let mut trust = genesis_trust(&dev);
    let d = Object::Delegation(Delegation {
        kinds: Some(vec!["dataset".into()]),
        ..delegation_body(&dev, KZ, dev.members[KZ].publisher.public_key())
    })
    .sign(&dev.members[KZ].root);
    let d_id = accept_apply(&mut trust, &d, NOW).id();
    assert_rejected!(
        validate(record(&dev, KZ, at(HOUR), |_| {}).as_bytes(), &trust, NOW),
        Rejection::KindOutOfScope { delegation, kind } if delegation == d_id && kind == "regulatory-note"
    );
    let ok = record(&dev, KZ, at(HOUR), |r| r.kind = "dataset".into());
    accepted(validate(ok.as_bytes(), &trust, NOW));
}

#[test]
fn record_direction_outside_delegation_is_direction_out_of_scope() {
    let dev = dev();
    let mut trust = genesis_trust(&dev);
    let d = Object::Delegation(Delegation {
        directions: Some(vec!["education".into(), "digital-skills".into()]),
        ..delegation_body(&dev, KZ, dev.members[KZ].publisher.public_key())
    })
    .sign(&dev.members[KZ].root);
    let d_id = accept_apply(&mut trust, &d, NOW).id();
    let bad = record(&dev, KZ, at(HOUR), |r| {
        r.directions = vec!["education".into(), "regulation".into()];
    });
    assert_rejected!(
        validate(bad.as_bytes(), &trust, NOW),
        Rejection::DirectionOutOfScope { delegation, direction }
            if delegation == d_id && direction == "regulation"
    );
    let ok = record(&dev, KZ, at(HOUR), |r| {
        r.directions = vec!["digital-skills".into(), "education".into()];
    });
    accepted(validate(ok.as_bytes(), &trust, NOW));
}

#[test]
fn record_with_unknown_kind_is_unknown_kind() {
    let dev = dev();
    let trust = full_trust(&dev);
    let rec = record(&dev, KZ, at(HOUR), |r| r.kind = "poem".into());
    assert_rejected!(
        validate(rec.as_bytes(), &trust, NOW),
        Rejection::UnknownKind(k) if k == "poem"
    );
    let rec = record(&dev, KZ, at(HOUR), |r| {
        r.directions = vec!["astrology".into()]
    });
    assert_rejected!(
        validate(rec.as_bytes(), &trust, NOW),
        Rejection::UnknownDirection(d) if d == "astrology"
    );
}

#[test]
fn record_field_rules_are_invalid_field() {
    let dev = dev();
    let trust = full_trust(&dev);
    let check = |f: &dyn Fn(&mut Record), field_name: &'static str| {
        let rec = Object::Record(record_body(&dev, KZ, at(HOUR), |r| f(r)))
            .sign(&dev.members[KZ].publisher);
        assert_rejected!(
            validate(rec.as_bytes(), &trust, NOW),
            Rejection::InvalidField { field, .. } if field == field_name
        );
    };
    // Empty directions.
    check(&|r| r.directions.clear(), "directions");
    // The same direction twice.
    check(
        &|r| r.directions = vec!["regulation".into(), "regulation".into()],
        "directions",
    );
    // Title lacks the original language (the body has it, so only the title rule applies).
    check(
        &|r| {
            r.lang = "ru".into();
            r.title = langs(&[("en", "Open data")]);
            r.body = langs(&[("ru", "Открытые данные"), ("en", "Open data")]);
        },
        "title",
    );
    // Body lacks the original language.
    check(&|r| r.body = langs(&[("ru", "Открытые данные")]), "body");
    // Bad original-language tags.
    for bad in ["english", "e", "ru_RU", "", "r1", "en--US", "en-abcdefghi"] {
        let bad = bad.to_string();
        check(
            &move |r| {
                r.lang = bad.clone();
            },
            "lang",
        );
    }
    // A bad tag inside a language map, and empty text.
    check(
        &|r| {
            r.title.insert("not a tag".into(), "x".into());
        },
        "title",
    );
    check(
        &|r| {
            r.summary = langs(&[("en", "   ")]);
        },
        "summary",
    );
    check(&|r| r.tags = vec![" ".into()], "tags");
    check(&|r| r.tags = vec!["x".repeat(65)], "tags");
    check(
        &|r| r.effective_from = Some("2026-02-30".into()),
        "effective_from",
    );
    check(
        &|r| {
            r.effective_from = Some("2026-03-01".into());
            r.effective_until = Some("2026-02-01".into());
        },
        "effective_until",
    );
    // Controls at the boundaries are accepted.
    let ok = record(&dev, KZ, at(HOUR), |r| {
        r.lang = "sr-Latn-RS".into();
        r.title = langs(&[
            ("sr-Latn-RS", "Otvoreni podaci"),
            ("uz-Cyrl", "Очиқ маълумотлар"),
        ]);
        r.body = langs(&[("sr-Latn-RS", "Telo")]);
        r.tags = vec!["x".repeat(64)];
        r.effective_from = Some("2026-02-28".into());
        r.effective_until = Some("2026-02-28".into());
    });
    accepted(validate(ok.as_bytes(), &trust, NOW));
}

#[test]
fn record_created_beyond_skew_is_created_in_future() {
    let dev = dev();
    let trust = full_trust(&dev);
    assert_eq!(trust.limits().max_future_skew_ms, SKEW);
    let limit = Timestamp(NOW.0 + SKEW);
    // Exactly at the limit: accepted.
    accepted(validate(
        record(&dev, KZ, limit, |_| {}).as_bytes(),
        &trust,
        NOW,
    ));
    // One millisecond beyond: refused.
    let late = Timestamp(limit.0 + 1);
    assert_rejected!(
        validate(record(&dev, KZ, late, |_| {}).as_bytes(), &trust, NOW),
        Rejection::CreatedInFuture { created, now, skew_ms }
            if created == late && now == NOW && skew_ms == SKEW
    );
    // The same bytes are fine once the clock has caught up.
    accepted(validate(
        record(&dev, KZ, late, |_| {}).as_bytes(),
        &trust,
        Timestamp(NOW.0 + 1),
    ));
}

#[test]
fn record_of_another_federation_is_wrong_federation() {
    let dev = dev();
    let trust = full_trust(&dev);
    let other = ObjectId::of_body(b"another federation");
    let rec = record(&dev, KZ, at(HOUR), |r| r.federation = other);
    assert_rejected!(
        validate(rec.as_bytes(), &trust, NOW),
        Rejection::WrongFederation { expected, found }
            if expected == dev.federation() && found == other.to_string()
    );
}

#[test]
fn record_with_two_signatures_is_signature_count() {
    let dev = dev();
    let trust = full_trust(&dev);
    let mut rec = dev.record(KZ, "Co-signed", at(HOUR));
    assert!(rec.add_signature(&dev.members[KZ].root));
    assert_rejected!(
        validate(rec.as_bytes(), &trust, NOW),
        Rejection::SignatureCount {
            object_type: ObjectType::Record,
            found: 2
        }
    );
    // Also for other single-signer types.
    let mut d = dev.delegation(KZ);
    assert!(d.add_signature(&dev.members[BY].root));
    assert_rejected!(
        validate(d.as_bytes(), &trust, NOW),
        Rejection::SignatureCount {
            object_type: ObjectType::Delegation,
            found: 2
        }
    );
}

#[test]
fn record_with_bad_signature_is_bad_signature() {
    let dev = dev();
    let trust = full_trust(&dev);
    let rec = dev.record(KZ, "Tampered", at(HOUR));
    let mut sigs = rec.signatures().to_vec();
    sigs[0].1.0[7] ^= 0x80;
    assert_rejected!(
        validate(&raw_envelope(rec.body(), &sigs), &trust, NOW),
        Rejection::BadSignature(k) if k == dev.members[KZ].publisher.public_key()
    );
    // A valid signature by a different key than the one named: still a bad signature.
    let other = sig_by(&dev.members[BY].publisher, rec.body());
    let forged = [(dev.members[KZ].publisher.public_key(), other.1)];
    assert_rejected!(
        validate(&raw_envelope(rec.body(), &forged), &trust, NOW),
        Rejection::BadSignature(_)
    );
}

#[test]
fn record_with_kk_hy_be_uz_translations_is_accepted() {
    let dev = dev();
    let trust = full_trust(&dev);
    let rec = record(&dev, AM, at(HOUR), |r| {
        r.lang = "hy".into();
        r.title = langs(&[
            ("hy", "Թվային կառավարություն"),
            ("kk", "Цифрлық үкімет"),
            ("be", "Лічбавы ўрад"),
            ("uz", "Raqamli hukumat"),
            ("ru", "Цифровое правительство"),
        ]);
        r.summary = langs(&[("kk", "Қысқаша"), ("uz", "Qisqacha")]);
        r.body = langs(&[
            ("hy", "Մարմին"),
            ("kk", "Мәтін"),
            ("be", "Тэкст"),
            ("uz", "Matn"),
        ]);
    });
    let v = accepted(validate(rec.as_bytes(), &trust, NOW));
    match v.object() {
        Object::Record(r) => assert_eq!(r.languages(), ["be", "hy", "kk", "ru", "uz"]),
        other => panic!("not a record: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Revocations
// ---------------------------------------------------------------------------------------------

#[test]
fn delegation_revocation_refuses_records_from_its_effective_time() {
    let dev = dev();
    let mut trust = full_trust(&dev);
    let t = at(10 * HOUR);
    let before = record(&dev, KZ, Timestamp(t.0 - 1), |_| {});
    let at_t = record(&dev, KZ, t, |_| {});
    let after = record(&dev, KZ, at(20 * HOUR), |_| {});
    for r in [&before, &at_t, &after] {
        accepted(validate(r.as_bytes(), &trust, NOW));
    }

    let rev = Object::Revocation(revocation_body(
        &dev,
        KZ,
        TargetType::Delegation,
        dev.delegation(KZ).id(),
        t,
    ))
    .sign(&dev.members[KZ].root);
    accept_apply(&mut trust, &rev, NOW);

    let publisher = dev.members[KZ].publisher.public_key();
    for r in [&at_t, &after] {
        assert_rejected!(
            validate(r.as_bytes(), &trust, NOW),
            Rejection::SignerRevoked { key, since } if key == publisher && since == t
        );
    }
    accepted(validate(before.as_bytes(), &trust, NOW));
    // Other members are unaffected.
    accepted(validate(
        record(&dev, BY, at(20 * HOUR), |_| {}).as_bytes(),
        &trust,
        NOW,
    ));
}

#[test]
fn delegation_revocation_by_another_member_is_refused() {
    let dev = dev();
    let trust = full_trust(&dev);
    // A hostile member: BY's root "revokes" KZ's delegation on behalf of BY. Refused, so it is
    // never stored, never relayed, and KZ's publisher keeps publishing.
    let rev = Object::Revocation(revocation_body(
        &dev,
        BY,
        TargetType::Delegation,
        dev.delegation(KZ).id(),
        at(HOUR),
    ))
    .sign(&dev.members[BY].root);
    assert_rejected!(
        validate(rev.as_bytes(), &trust, NOW),
        Rejection::RevocationOtherMember { target, member, owner, .. }
            if target == dev.delegation(KZ).id() && member == code("BY") && owner == code("KZ")
    );
    accepted(validate(
        record(&dev, KZ, at(5 * HOUR), |_| {}).as_bytes(),
        &trust,
        NOW,
    ));
    // The same for KZ's node certificate, and a delegation named as a node certificate is
    // the wrong kind of target.
    let rev = Object::Revocation(revocation_body(
        &dev,
        BY,
        TargetType::Node,
        dev.node_cert(KZ).id(),
        at(HOUR),
    ))
    .sign(&dev.members[BY].root);
    assert_rejected!(
        validate(rev.as_bytes(), &trust, NOW),
        Rejection::RevocationOtherMember {
            kind: "node certificate",
            ..
        }
    );
    let rev = Object::Revocation(revocation_body(
        &dev,
        BY,
        TargetType::Node,
        dev.delegation(BY).id(),
        at(HOUR),
    ))
    .sign(&dev.members[BY].root);
    assert_rejected!(
        validate(rev.as_bytes(), &trust, NOW),
        Rejection::RevocationTargetKind {
            expected: "node certificate",
            found: "delegation",
            ..
        }
    );
    // A revocation of a delegation nobody knows yet waits for it.
    let unknown = ObjectId::of_body(b"a delegation not seen yet");
    let rev = Object::Revocation(revocation_body(
        &dev,
        BY,
        TargetType::Delegation,
        unknown,
        at(HOUR),
    ))
    .sign(&dev.members[BY].root);
    assert_eq!(
        validate(rev.as_bytes(), &trust, NOW),
        Verdict::Pending(Missing::TrustObject(unknown))
    );
    // Signed by KZ's root on behalf of BY is not authorised.
    let rev = Object::Revocation(revocation_body(
        &dev,
        BY,
        TargetType::Delegation,
        dev.delegation(BY).id(),
        at(HOUR),
    ))
    .sign(&dev.members[KZ].root);
    assert_rejected!(
        validate(rev.as_bytes(), &trust, NOW),
        Rejection::RevocationNotAuthorised { signer, member }
            if signer == dev.members[KZ].root.public_key() && member == code("BY")
    );
}

#[test]
fn key_revocation_by_the_key_itself_is_accepted_and_by_another_root_is_not_authorised() {
    let dev = dev();
    let mut trust = full_trust(&dev);
    let publisher = &dev.members[KZ].publisher;
    let t = at(10 * HOUR);
    let body = revocation_body(
        &dev,
        KZ,
        TargetType::Key,
        key_target(&publisher.public_key()),
        t,
    );

    // Another member's root may not revoke KZ's key for KZ.
    let by_other_root = Object::Revocation(body.clone()).sign(&dev.members[BY].root);
    assert_rejected!(
        validate(by_other_root.as_bytes(), &trust, NOW),
        Rejection::RevocationNotAuthorised { signer, member }
            if signer == dev.members[BY].root.public_key() && member == code("KZ")
    );
    // Neither may another (delegated) publisher key.
    let by_other_key = Object::Revocation(body.clone()).sign(&dev.members[BY].publisher);
    assert_rejected!(
        validate(by_other_key.as_bytes(), &trust, NOW),
        Rejection::RevocationNotAuthorised { .. }
    );

    // The key revokes itself.
    let by_itself = Object::Revocation(body).sign(publisher);
    accept_apply(&mut trust, &by_itself, NOW);
    assert_eq!(
        trust.key_revoked_since(&code("KZ"), &publisher.public_key()),
        Some(t)
    );
    assert_rejected!(
        validate(record(&dev, KZ, t, |_| {}).as_bytes(), &trust, NOW),
        Rejection::SignerRevoked { key, since } if key == publisher.public_key() && since == t
    );
    accepted(validate(
        record(&dev, KZ, Timestamp(t.0 - 1), |_| {}).as_bytes(),
        &trust,
        NOW,
    ));
}

/// A key with no delegation nor certificate of the member it names has nothing to revoke:
/// its self-revocation waits for a delegation of it (a fresh key per object cost nothing and
/// had every node store them all, in any member's name); once the key is delegated, the same
/// revocation is accepted.
#[test]
fn a_self_revocation_of_a_key_without_standing_waits_for_its_delegation() {
    // Under a charter that has not adopted the 1.3 rules, it is accepted, as 1.2 nodes do.
    let old = dev();
    let stranger = SecretKey::from_seed([0x5a; 32]);
    let rev = Object::Revocation(revocation_body(
        &old,
        KZ,
        TargetType::Key,
        key_target(&stranger.public_key()),
        at(HOUR),
    ))
    .sign(&stranger);
    accepted(validate(rev.as_bytes(), &full_trust(&old), NOW));
    let dev = dev_1_3();
    let trust = full_trust(&dev);
    let body = revocation_body(
        &dev,
        KZ,
        TargetType::Key,
        key_target(&stranger.public_key()),
        at(HOUR),
    );
    let rev = Object::Revocation(body).sign(&stranger);
    assert_eq!(
        validate(rev.as_bytes(), &trust, NOW),
        Verdict::Pending(Missing::Delegation {
            member: code("KZ"),
            publisher: stranger.public_key(),
        })
    );
    // Another member's publisher key has no standing in KZ either.
    let by_key = &dev.members[BY].publisher;
    let rev_by = Object::Revocation(revocation_body(
        &dev,
        KZ,
        TargetType::Key,
        key_target(&by_key.public_key()),
        at(HOUR),
    ))
    .sign(by_key);
    assert!(matches!(
        validate(rev_by.as_bytes(), &trust, NOW),
        Verdict::Pending(Missing::Delegation { .. })
    ));
    // Delegated by KZ's root: now it may revoke itself.
    let mut trust = trust;
    let del = Object::Delegation(Delegation {
        object_type: ObjectType::Delegation,
        federation: dev.federation(),
        created: T0,
        member: code("KZ"),
        publisher: stranger.public_key(),
        name: "A ministry".into(),
        kinds: None,
        directions: None,
        not_before: T0,
        not_after: None,
    })
    .sign(&dev.members[KZ].root);
    accept_apply(&mut trust, &del, NOW);
    accepted(validate(rev.as_bytes(), &trust, NOW));
}

/// A member's delegations and node certificates stay in every node's trust view: their names
/// are bounded (a member could give each a name of a mebibyte).
#[test]
fn trust_names_are_bounded_and_printable() {
    let dev = dev_1_3();
    let trust = full_trust(&dev);
    let key = SecretKey::from_seed([0x5b; 32]).public_key();
    let delegation = |name: String| {
        Object::Delegation(Delegation {
            object_type: ObjectType::Delegation,
            federation: dev.federation(),
            created: T0,
            member: code("KZ"),
            publisher: key,
            name,
            kinds: None,
            directions: None,
            not_before: T0,
            not_after: None,
        })
        .sign(&dev.members[KZ].root)
    };
    accepted(validate(
        delegation("М".repeat(256)).as_bytes(),
        &trust,
        NOW,
    ));
    for bad in ["М".repeat(257), "Ministry\n[store]".to_string()] {
        assert_rejected!(
            validate(delegation(bad).as_bytes(), &trust, NOW),
            Rejection::InvalidField { field: "name", .. }
        );
    }
    let cert = |label: &str| {
        Object::Node(NodeCert {
            object_type: ObjectType::Node,
            federation: dev.federation(),
            created: T0,
            member: code("KZ"),
            node_key: key,
            label: Some(label.to_string()),
        })
        .sign(&dev.members[KZ].root)
    };
    accepted(validate(cert("node 2").as_bytes(), &trust, NOW));
    assert_rejected!(
        validate(cert(&"x".repeat(500_000)).as_bytes(), &trust, NOW),
        Rejection::InvalidField { field: "label", .. }
    );
    // A charter that has not adopted the 1.3 rules takes them, as 1.2 nodes do.
    let old = crate::dev();
    let long = Object::Node(NodeCert {
        object_type: ObjectType::Node,
        federation: old.federation(),
        created: T0,
        member: code("KZ"),
        node_key: key,
        label: Some("x".repeat(1000)),
    })
    .sign(&old.members[KZ].root);
    accepted(validate(long.as_bytes(), &full_trust(&old), NOW));
}

/// A map with a key given twice — here a record's title in Russian twice, each copy a
/// different text — is refused (section 4): a decoder into a map keeps one copy silently, and
/// which one differs between implementations, so one signed record would read differently on
/// two nodes. A duplicate top-level field is refused alike.
#[test]
fn a_key_given_twice_in_any_map_is_refused() {
    use ciborium::Value;
    type Entries = Vec<(Value, Value)>;
    let dev = dev_1_3();
    let trust = full_trust(&dev);
    let signed_body = |edit: &dyn Fn(&mut Entries)| {
        let rec = record(&dev, KZ, at(HOUR), |_| {});
        let mut v: Value = ciborium::from_reader(rec.body()).unwrap();
        if let Value::Map(entries) = &mut v {
            edit(entries);
        }
        let mut body = Vec::new();
        ciborium::into_writer(&v, &mut body).unwrap();
        let mut signed = SignedObject::unsigned(body);
        assert!(signed.add_signature(&dev.members[KZ].publisher));
        signed
    };
    // Unchanged, it is accepted.
    accepted(validate(signed_body(&|_| {}).as_bytes(), &trust, NOW));
    let twice_in_title = signed_body(&|entries| {
        for (k, x) in entries.iter_mut() {
            if k.as_text() == Some("title")
                && let Value::Map(t) = x
            {
                let key = t[0].0.clone();
                t.push((key, Value::Text("Другой заголовок".into())));
            }
        }
    });
    assert_rejected!(
        validate(twice_in_title.as_bytes(), &trust, NOW),
        Rejection::InvalidField { field: "map", problem } if problem.contains("appears twice")
    );
    // The node's path (decoded and its signature checked on a pool of workers, judged on one
    // thread from what that one decoding found) refuses it alike.
    assert_rejected!(
        precheck_then_judge(twice_in_title.as_bytes(), &trust, NOW),
        Rejection::InvalidField { field: "map", problem } if problem.contains("appears twice")
    );
    let twice_at_top = signed_body(&|entries| {
        let kind = entries
            .iter()
            .find(|(k, _)| k.as_text() == Some("kind"))
            .cloned()
            .unwrap();
        entries.push(kind);
    });
    // A duplicate field of the body itself was always refused, by every charter.
    assert_rejected!(
        validate(twice_at_top.as_bytes(), &trust, NOW),
        Rejection::Decode(DecodeError::Body(m)) if m.contains("duplicate field `kind`")
    );
    // Under a charter that keeps the 1.2 rules, it is taken as 1.2 nodes take it (stored
    // objects keep reading as they always did).
    let old = crate::dev();
    let old_trust = full_trust(&old);
    let rec = record(&old, KZ, at(HOUR), |_| {});
    let mut v: Value = ciborium::from_reader(rec.body()).unwrap();
    if let Value::Map(entries) = &mut v {
        for (k, x) in entries.iter_mut() {
            if k.as_text() == Some("title")
                && let Value::Map(t) = x
            {
                let key = t[0].0.clone();
                t.push((key, Value::Text("Другой заголовок".into())));
            }
        }
    }
    let mut body = Vec::new();
    ciborium::into_writer(&v, &mut body).unwrap();
    let mut signed = SignedObject::unsigned(body);
    assert!(signed.add_signature(&old.members[KZ].publisher));
    accepted(validate(signed.as_bytes(), &old_trust, NOW));
    accepted(precheck_then_judge(signed.as_bytes(), &old_trust, NOW));
}

/// The 1.3 rules apply to objects created under the charter that adopted them, whichever
/// charter a node holds when an object arrives: a delegation created before the amendment is
/// judged by the rules it was made under, everywhere.
#[test]
fn the_rules_an_object_is_judged_by_are_those_of_its_creation_time() {
    let dev = dev();
    let mut trust = full_trust(&dev);
    let amended = {
        let mut c = dev.charter.clone();
        c.federation = Some(dev.federation());
        c.version = 2;
        c.previous = Some(dev.federation());
        c.created = at(2 * HOUR);
        c.limits.rules = accord_core::object::RULES_1_3;
        let mut s = SignedObject::unsigned(Object::Charter(c).encode_body());
        for m in &dev.members {
            s.add_signature(&m.root);
        }
        s
    };
    accept_apply(&mut trust, &amended, NOW);
    assert_eq!(trust.rules_at(at(HOUR)), 2);
    assert_eq!(trust.rules_at(at(2 * HOUR)), 3);
    let key = SecretKey::from_seed([0x5c; 32]).public_key();
    let delegation = |created: Timestamp| {
        Object::Delegation(Delegation {
            created,
            name: "x".repeat(300),
            ..delegation_body(&dev, KZ, key)
        })
        .sign(&dev.members[KZ].root)
    };
    accepted(validate(delegation(at(HOUR)).as_bytes(), &trust, NOW));
    assert_rejected!(
        validate(delegation(at(3 * HOUR)).as_bytes(), &trust, NOW),
        Rejection::InvalidField { field: "name", .. }
    );
}

#[test]
fn key_revocation_by_member_root_is_accepted() {
    let dev = dev();
    let mut trust = full_trust(&dev);
    let publisher = dev.members[BY].publisher.public_key();
    let rev = Object::Revocation(revocation_body(
        &dev,
        BY,
        TargetType::Key,
        key_target(&publisher),
        at(HOUR),
    ))
    .sign(&dev.members[BY].root);
    accept_apply(&mut trust, &rev, NOW);
    assert_rejected!(
        validate(record(&dev, BY, at(2 * HOUR), |_| {}).as_bytes(), &trust, NOW),
        Rejection::SignerRevoked { key, since } if key == publisher && since == at(HOUR)
    );
}

#[test]
fn key_revocation_with_invalid_key_target_is_invalid_field() {
    let dev = dev();
    let trust = full_trust(&dev);
    // All zeros is a weak (small-order) point, not a usable public key.
    let rev = Object::Revocation(revocation_body(
        &dev,
        KZ,
        TargetType::Key,
        ObjectId([0; 32]),
        at(HOUR),
    ))
    .sign(&dev.members[KZ].root);
    assert_rejected!(
        validate(rev.as_bytes(), &trust, NOW),
        Rejection::InvalidField {
            field: "target",
            ..
        }
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Retractions, 7. supersession
// ---------------------------------------------------------------------------------------------

#[test]
fn retraction_by_member_root_waits_for_the_record_and_must_be_its_member() {
    let dev = dev();
    let trust = full_trust(&dev);
    let rec = dev.record(KZ, "KZ's record", at(HOUR));
    // Unknown record: even the member's root waits (a retraction in advance proves nothing
    // about whose record it will be).
    let r = Object::Retraction(retraction_body(&dev, KZ, rec.id())).sign(&dev.members[KZ].root);
    assert_eq!(
        validate(r.as_bytes(), &trust, NOW),
        Verdict::Pending(Missing::Record(rec.id()))
    );
    let known = Known(BTreeMap::from([(
        rec.id(),
        (code("KZ"), dev.members[KZ].publisher.public_key()),
    )]));
    accepted(validate_with(r.as_bytes(), &trust, &known, NOW));
    // A hostile member: BY's root retracts KZ's record on behalf of BY.
    let hostile =
        Object::Retraction(retraction_body(&dev, BY, rec.id())).sign(&dev.members[BY].root);
    assert_eq!(
        validate(hostile.as_bytes(), &trust, NOW),
        Verdict::Pending(Missing::Record(rec.id())),
        "it waits for the record like any other"
    );
    assert_rejected!(
        validate_with(hostile.as_bytes(), &trust, &known, NOW),
        Rejection::RetractionOtherMember { record, member, owner }
            if record == rec.id() && member == code("BY") && owner == code("KZ")
    );
    // BY's root on behalf of KZ is neither the author nor KZ's root.
    let r = Object::Retraction(retraction_body(&dev, KZ, rec.id())).sign(&dev.members[BY].root);
    assert_rejected!(
        validate_with(r.as_bytes(), &trust, &known, NOW),
        Rejection::RetractionNotByAuthor { .. }
    );
}

#[test]
fn superseding_an_unknown_record_waits_for_it() {
    let dev = dev();
    let trust = full_trust(&dev);
    let old = dev.record(KZ, "First edition", at(HOUR));
    let newer = record(&dev, KZ, at(2 * HOUR), |r| r.supersedes = Some(old.id()));
    assert_eq!(
        validate(newer.as_bytes(), &trust, NOW),
        Verdict::Pending(Missing::Record(old.id()))
    );
}

#[test]
fn retraction_by_author_is_pending_until_the_record_is_known() {
    let dev = dev();
    let trust = full_trust(&dev);
    let rec = dev.record(KZ, "To be retracted", at(HOUR));
    let author = dev.members[KZ].publisher.public_key();
    let r =
        Object::Retraction(retraction_body(&dev, KZ, rec.id())).sign(&dev.members[KZ].publisher);

    assert_eq!(
        validate(r.as_bytes(), &trust, NOW),
        Verdict::Pending(Missing::Record(rec.id()))
    );
    let known = Known::with(rec.id(), &code("KZ"), author);
    accepted(validate_with(r.as_bytes(), &trust, &known, NOW));

    // An empty reason is refused even from the author.
    let mut body = retraction_body(&dev, KZ, rec.id());
    body.reason = "  ".into();
    let r = Object::Retraction(body).sign(&dev.members[KZ].publisher);
    assert_rejected!(
        validate_with(r.as_bytes(), &trust, &known, NOW),
        Rejection::InvalidField {
            field: "reason",
            ..
        }
    );
}

#[test]
fn retraction_by_another_publisher_of_the_same_member_is_not_by_author() {
    let dev = dev();
    let mut trust = full_trust(&dev);
    let colleague = key(40);
    let d = Object::Delegation(delegation_body(&dev, KZ, colleague.public_key()))
        .sign(&dev.members[KZ].root);
    accept_apply(&mut trust, &d, NOW);
    // The colleague is a genuine publisher of KZ ...
    accepted(validate(
        Object::Record(dev.record_body(KZ, "x", at(HOUR)))
            .sign(&colleague)
            .as_bytes(),
        &trust,
        NOW,
    ));

    let rec = dev.record(KZ, "Not yours", at(HOUR));
    let known = Known::with(
        rec.id(),
        &code("KZ"),
        dev.members[KZ].publisher.public_key(),
    );
    let r = Object::Retraction(retraction_body(&dev, KZ, rec.id())).sign(&colleague);
    // ... but not the author of this record.
    assert_rejected!(
        validate_with(r.as_bytes(), &trust, &known, NOW),
        Rejection::RetractionNotByAuthor { record, signer, member }
            if record == rec.id() && signer == colleague.public_key() && member == code("KZ")
    );
    // The author claiming the record for the wrong member is refused: the retraction must
    // name the record's own member, whoever signs it.
    let r =
        Object::Retraction(retraction_body(&dev, BY, rec.id())).sign(&dev.members[KZ].publisher);
    assert_rejected!(
        validate_with(r.as_bytes(), &trust, &known, NOW),
        Rejection::RetractionOtherMember { .. }
    );
}

#[test]
fn retraction_by_revoked_author_is_signer_revoked() {
    let dev = dev();
    let mut trust = full_trust(&dev);
    let rec = dev.record(KZ, "x", at(HOUR));
    let author = dev.members[KZ].publisher.public_key();
    let known = Known::with(rec.id(), &code("KZ"), author);
    let rev = Object::Revocation(revocation_body(
        &dev,
        KZ,
        TargetType::Key,
        key_target(&author),
        at(2 * HOUR),
    ))
    .sign(&dev.members[KZ].root);
    accept_apply(&mut trust, &rev, NOW);
    let r =
        Object::Retraction(retraction_body(&dev, KZ, rec.id())).sign(&dev.members[KZ].publisher);
    assert_rejected!(
        validate_with(r.as_bytes(), &trust, &known, NOW),
        Rejection::SignerRevoked { key, .. } if key == author
    );
    // The member root can still retract it.
    let r = Object::Retraction(retraction_body(&dev, KZ, rec.id())).sign(&dev.members[KZ].root);
    accepted(validate_with(r.as_bytes(), &trust, &known, NOW));
}

#[test]
fn superseding_a_record_of_another_member_is_supersedes_other_member() {
    let dev = dev();
    let trust = full_trust(&dev);
    let by_rec = dev.record(BY, "Belarusian record", at(HOUR));
    let kz_rec = dev.record(KZ, "Kazakh record", at(HOUR));
    let known = Known(BTreeMap::from([
        (
            by_rec.id(),
            (code("BY"), dev.members[BY].publisher.public_key()),
        ),
        (
            kz_rec.id(),
            (code("KZ"), dev.members[KZ].publisher.public_key()),
        ),
    ]));
    let bad = record(&dev, KZ, at(2 * HOUR), |r| r.supersedes = Some(by_rec.id()));
    assert_rejected!(
        validate_with(bad.as_bytes(), &trust, &known, NOW),
        Rejection::SupersedesOtherMember(id) if id == by_rec.id()
    );
    let ok = record(&dev, KZ, at(2 * HOUR), |r| r.supersedes = Some(kz_rec.id()));
    accepted(validate_with(ok.as_bytes(), &trust, &known, NOW));
}

// ---------------------------------------------------------------------------------------------
// 8. Node certificates
// ---------------------------------------------------------------------------------------------

#[test]
fn node_certificate_and_its_revocation() {
    let dev = dev();
    let mut trust = genesis_trust(&dev);
    let node_key = dev.members[BY].node.public_key();
    assert!(trust.node_member(&node_key, NOW).is_none());

    // Only the member's root may certify its nodes.
    assert_rejected!(
        validate(
            Object::Node(NodeCert {
                object_type: ObjectType::Node,
                federation: dev.federation(),
                created: T0,
                member: code("BY"),
                node_key,
                label: None,
            })
            .sign(&dev.members[BY].publisher)
            .as_bytes(),
            &trust,
            NOW
        ),
        Rejection::NotSignedByRoot {
            object_type: ObjectType::Node,
            ..
        }
    );

    let cert = dev.node_cert(BY);
    let v = accept_apply(&mut trust, &cert, NOW);
    let entry = trust
        .node_member(&node_key, NOW)
        .expect("node is certified");
    assert_eq!(
        trust.node_member_unanimous(&node_key, NOW).map(|n| n.id),
        Some(v.id())
    );
    // A second member certifying the same key (its own word, not the key's): no member is
    // named for it where nothing says which member the node claims.
    let mut claimed = trust.clone();
    let kz_claim = Object::Node(NodeCert {
        object_type: ObjectType::Node,
        federation: dev.federation(),
        created: at(HOUR),
        member: code("KZ"),
        node_key,
        label: Some("relabelled".into()),
    })
    .sign(&dev.members[KZ].root);
    accept_apply(&mut claimed, &kz_claim, NOW);
    assert!(claimed.node_member_unanimous(&node_key, NOW).is_none());
    assert_eq!(entry.cert.member, code("BY"));
    assert_eq!(entry.id, v.id());
    assert!(
        trust
            .node_member(&dev.members[KZ].node.public_key(), NOW)
            .is_none()
    );

    // A revocation effective in the future does not yet remove the node.
    let mut later = trust.clone();
    let rev = Object::Revocation(revocation_body(
        &dev,
        BY,
        TargetType::Node,
        cert.id(),
        Timestamp(NOW.0 + 1),
    ))
    .sign(&dev.members[BY].root);
    accept_apply(&mut later, &rev, NOW);
    assert!(later.node_member(&node_key, NOW).is_some());
    assert!(later.node_member(&node_key, Timestamp(NOW.0 + 1)).is_none());

    // Effective exactly now: the node is no longer the member's.
    let rev = Object::Revocation(revocation_body(&dev, BY, TargetType::Node, cert.id(), NOW))
        .sign(&dev.members[BY].root);
    accept_apply(&mut trust, &rev, NOW);
    assert!(trust.node_member(&node_key, NOW).is_none());
    assert!(trust.node_member_unanimous(&node_key, NOW).is_none());
}

// ---------------------------------------------------------------------------------------------
// Bugs found in src (see the report): these document the expected behaviour and fail today.
// ---------------------------------------------------------------------------------------------

#[test]
fn genesis_with_forged_signature_is_not_accepted_by_validate() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let mut sigs = dev.genesis.signatures().to_vec();
    sigs[0].1.0[10] ^= 0x01;
    let forged = raw_envelope(dev.genesis.body(), &sigs);
    // from_genesis refuses these bytes ...
    assert_genesis_err!(TrustView::from_genesis(&forged), Rejection::BadSignature(_));
    // ... and so must validate: a Verified<Object> promises its signatures were checked.
    assert_rejected!(validate(&forged, &trust, NOW), Rejection::BadSignature(_));
}

#[test]
fn validate_envelope_of_unsigned_charter_does_not_panic() {
    let dev = dev();
    let trust = genesis_trust(&dev);
    let mut c = amendment(&trust);
    c.name = "Draft".into();
    let draft = SignedObject::unsigned(Object::Charter(c).encode_body());
    // `SignedObject::unsigned` / `decode_draft` are public ways to get such an envelope.
    let r =
        std::panic::catch_unwind(|| validate_envelope(draft, &trust, &accord_core::NoRecords, NOW));
    match r {
        Ok(Verdict::Rejected(_)) => {}
        Ok(other) => panic!("expected Rejected, got {other:?}"),
        Err(_) => panic!("validate_envelope panicked on an unsigned charter"),
    }
}

#[test]
fn body_lists_over_max_list_len_are_refused() {
    let dev = dev();
    let trust = full_trust(&dev);
    let limit = trust.limits().max_list_len as usize;
    let rec = record(&dev, KZ, at(HOUR), |r| {
        r.tags = (0..limit + 1).map(|i| format!("t{i}")).collect();
    });
    assert!(rec.as_bytes().len() < trust.limits().max_bytes());
    assert_rejected!(
        validate(rec.as_bytes(), &trust, NOW),
        Rejection::Decode(DecodeError::ListTooLong { .. })
    );
}

#[test]
fn body_with_trailing_bytes_is_refused() {
    let dev = dev();
    let trust = full_trust(&dev);
    let mut body = Object::Record(dev.record_body(KZ, "x", at(HOUR))).encode_body();
    body.push(0x00);
    let rec = SignedObject::sign(body, &dev.members[KZ].publisher);
    assert_rejected!(validate(rec.as_bytes(), &trust, NOW), Rejection::Decode(_));
}

// ---------------------------------------------------------------------------------------------
// 10. Display texts of rejections
// ---------------------------------------------------------------------------------------------

fn variant_name(r: &Rejection) -> &'static str {
    match r {
        Rejection::Decode(_) => "Decode",
        Rejection::WrongFederation { .. } => "WrongFederation",
        Rejection::CreatedInFuture { .. } => "CreatedInFuture",
        Rejection::BadSignature(_) => "BadSignature",
        Rejection::SignatureCount { .. } => "SignatureCount",
        Rejection::UnknownMember(_) => "UnknownMember",
        Rejection::NotSignedByRoot { .. } => "NotSignedByRoot",
        Rejection::InvalidField { .. } => "InvalidField",
        Rejection::UnknownKind(_) => "UnknownKind",
        Rejection::UnknownDirection(_) => "UnknownDirection",
        Rejection::SignerRevoked { .. } => "SignerRevoked",
        Rejection::DelegationRootReplaced { .. } => "DelegationRootReplaced",
        Rejection::OutsideDelegationWindow { .. } => "OutsideDelegationWindow",
        Rejection::KindOutOfScope { .. } => "KindOutOfScope",
        Rejection::DirectionOutOfScope { .. } => "DirectionOutOfScope",
        Rejection::SupersedesOtherMember(_) => "SupersedesOtherMember",
        Rejection::RetractionNotByAuthor { .. } => "RetractionNotByAuthor",
        Rejection::RevocationNotAuthorised { .. } => "RevocationNotAuthorised",
        Rejection::ForeignGenesis(_) => "ForeignGenesis",
        Rejection::GenesisUnsigned(_) => "GenesisUnsigned",
        Rejection::ForeignCharterSigner(_) => "ForeignCharterSigner",
        Rejection::InvalidCharter(_) => "InvalidCharter",
        Rejection::CharterRollback { .. } => "CharterRollback",
        Rejection::CharterVersionSkip { .. } => "CharterVersionSkip",
        Rejection::CharterPreviousMismatch { .. } => "CharterPreviousMismatch",
        Rejection::ThresholdNotMet { .. } => "ThresholdNotMet",
        Rejection::NewKeyUnsigned { .. } => "NewKeyUnsigned",
        _ => "unlisted",
    }
}

/// One value of every `Rejection` variant, all built from the same placeholder values so that
/// only the variant's own wording can tell them apart.
fn one_of_each_rejection() -> Vec<Rejection> {
    let id = ObjectId::of_body(b"x");
    let pk = key(1).public_key();
    let m = code("KZ");
    let t = T0;
    vec![
        Rejection::Decode(DecodeError::Cbor("x".into())),
        Rejection::WrongFederation {
            expected: id,
            found: "x".into(),
        },
        Rejection::CreatedInFuture {
            created: t,
            now: t,
            skew_ms: 1,
        },
        Rejection::BadSignature(pk),
        Rejection::SignatureCount {
            object_type: ObjectType::Record,
            found: 1,
        },
        Rejection::UnknownMember(m.clone()),
        Rejection::NotSignedByRoot {
            object_type: ObjectType::Record,
            member: m.clone(),
            signer: pk,
        },
        Rejection::InvalidField {
            field: "x",
            problem: "x".into(),
        },
        Rejection::UnknownKind("x".into()),
        Rejection::UnknownDirection("x".into()),
        Rejection::SignerRevoked { key: pk, since: t },
        Rejection::DelegationRootReplaced {
            delegation: id,
            member: m.clone(),
        },
        Rejection::OutsideDelegationWindow {
            delegation: id,
            at: t,
            not_before: t,
            not_after: None,
        },
        Rejection::KindOutOfScope {
            delegation: id,
            kind: "x".into(),
        },
        Rejection::DirectionOutOfScope {
            delegation: id,
            direction: "x".into(),
        },
        Rejection::SupersedesOtherMember(id),
        Rejection::RetractionNotByAuthor {
            record: id,
            signer: pk,
            member: m.clone(),
        },
        Rejection::RevocationNotAuthorised {
            signer: pk,
            member: m.clone(),
        },
        Rejection::ForeignGenesis(id),
        Rejection::GenesisUnsigned(m.clone()),
        Rejection::ForeignCharterSigner(pk),
        Rejection::InvalidCharter("x".into()),
        Rejection::CharterRollback {
            found: 1,
            current: 1,
        },
        Rejection::CharterVersionSkip {
            found: 1,
            expected: 1,
        },
        Rejection::CharterPreviousMismatch {
            expected: id,
            found: "x".into(),
        },
        Rejection::ThresholdNotMet {
            have: 1,
            need: 1,
            version: 1,
        },
        Rejection::NewKeyUnsigned { member: m, key: pk },
    ]
}

/// Every reason an object is refused or held has a code listed in `accord_core::codes::CODES`
/// (and so in PROTOCOL.md), and every listed code is some reason's.
#[test]
fn every_reason_has_a_listed_code_and_every_listed_code_is_used() {
    let id = ObjectId::of_body(b"x");
    let pk = key(1).public_key();
    let m = code("KZ");
    let mut rejections = one_of_each_rejection();
    // The cross-object rules (provoked through the store's tests, not by `validate` alone).
    rejections.extend([
        Rejection::RetractionOtherMember {
            record: id,
            member: m.clone(),
            owner: code("BY"),
        },
        Rejection::RevocationOtherMember {
            target: id,
            kind: "delegation",
            member: m.clone(),
            owner: code("BY"),
        },
        Rejection::RevocationTargetKind {
            target: id,
            expected: "delegation",
            found: "node",
        },
    ]);
    let decode = [
        DecodeError::TooLarge { size: 2, limit: 1 },
        DecodeError::Cbor("x".into()),
        DecodeError::TooDeep(1),
        DecodeError::ListTooLong { len: 2, limit: 1 },
        DecodeError::TrailingBytes(1),
        DecodeError::Envelope("x".into()),
        DecodeError::Version(2),
        DecodeError::Body("x".into()),
        DecodeError::UnknownType("x".into()),
    ];
    let missing = [
        Missing::Delegation {
            member: m,
            publisher: pk,
        },
        Missing::Record(id),
        Missing::TrustObject(id),
    ];
    let used: BTreeSet<&str> = rejections
        .iter()
        .map(Rejection::code)
        .chain(decode.into_iter().map(|d| Rejection::Decode(d).code()))
        .chain(missing.iter().map(Missing::code))
        .collect();
    let listed: BTreeSet<&str> = accord_core::codes::CODES.iter().map(|c| c.0).collect();
    assert_eq!(used, listed);
}

#[test]
fn every_rejection_variant_has_a_distinct_non_empty_text() {
    let all = one_of_each_rejection();
    let names: BTreeSet<&str> = all.iter().map(variant_name).collect();
    assert!(!names.contains("unlisted"));
    assert_eq!(names.len(), all.len(), "each variant exactly once");
    let mut texts = BTreeSet::new();
    for r in &all {
        let text = r.to_string();
        assert!(
            !text.trim().is_empty(),
            "{} has an empty text",
            variant_name(r)
        );
        assert!(
            texts.insert(text.clone()),
            "{} repeats the text {text:?}",
            variant_name(r)
        );
    }
    // OutsideDelegationWindow renders both an open and a closed window.
    let closed = Rejection::OutsideDelegationWindow {
        delegation: ObjectId::of_body(b"x"),
        at: T0,
        not_before: T0,
        not_after: Some(T0),
    };
    assert!(closed.to_string().ends_with("to 2026-01-01T00:00:00.000Z)"));
    assert!(all[12].to_string().ends_with("to open)"));
    // Missing, too.
    let m1 = Missing::Record(ObjectId::of_body(b"x")).to_string();
    let m2 = Missing::Delegation {
        member: code("KZ"),
        publisher: key(1).public_key(),
    }
    .to_string();
    assert!(!m1.is_empty() && !m2.is_empty() && m1 != m2);
}

/// The rejections this suite actually provokes, one scenario per variant.
fn produced_rejections() -> Vec<Rejection> {
    let dev = dev();
    let g = genesis_trust(&dev);
    let f = full_trust(&dev);
    let roots: Vec<&SecretKey> = dev.members.iter().map(|m| &m.root).collect();
    let mut out = Vec::new();
    let mut push = |v: Verdict| out.push(rejected(v));

    push(validate(&[0x01], &g, NOW));
    push(validate(
        record(&dev, KZ, at(HOUR), |r| r.federation = ObjectId([1; 32])).as_bytes(),
        &f,
        NOW,
    ));
    push(validate(
        record(&dev, KZ, Timestamp(NOW.0 + SKEW + 1), |_| {}).as_bytes(),
        &f,
        NOW,
    ));
    let rec = dev.record(KZ, "x", at(HOUR));
    let mut sigs = rec.signatures().to_vec();
    sigs[0].1.0[0] ^= 1;
    push(validate(&raw_envelope(rec.body(), &sigs), &f, NOW));
    let mut two = rec.clone();
    two.add_signature(roots[0]);
    push(validate(two.as_bytes(), &f, NOW));
    let uz_del = Object::Delegation(Delegation {
        member: code("UZ"),
        ..delegation_body(&dev, KZ, key(30).public_key())
    });
    push(validate(uz_del.sign(&uz_root()).as_bytes(), &g, NOW));
    let d = Object::Delegation(delegation_body(&dev, KZ, key(30).public_key()));
    push(validate(
        d.sign(&dev.members[KZ].publisher).as_bytes(),
        &g,
        NOW,
    ));
    push(validate(
        record(&dev, KZ, at(HOUR), |r| r.directions.clear()).as_bytes(),
        &f,
        NOW,
    ));
    push(validate(
        record(&dev, KZ, at(HOUR), |r| r.kind = "poem".into()).as_bytes(),
        &f,
        NOW,
    ));
    push(validate(
        record(&dev, KZ, at(HOUR), |r| {
            r.directions = vec!["astrology".into()]
        })
        .as_bytes(),
        &f,
        NOW,
    ));
    let mut revoked = f.clone();
    let rev = Object::Revocation(revocation_body(
        &dev,
        KZ,
        TargetType::Delegation,
        dev.delegation(KZ).id(),
        T0,
    ))
    .sign(&dev.members[KZ].root);
    accept_apply(&mut revoked, &rev, NOW);
    push(validate(rec.as_bytes(), &revoked, NOW));
    let mut windowed = g.clone();
    accept_apply(
        &mut windowed,
        &Object::Delegation(Delegation {
            not_before: at(2 * HOUR),
            kinds: Some(vec!["dataset".into()]),
            ..delegation_body(&dev, KZ, dev.members[KZ].publisher.public_key())
        })
        .sign(roots[0]),
        NOW,
    );
    push(validate(rec.as_bytes(), &windowed, NOW));
    push(validate(
        record(&dev, KZ, at(3 * HOUR), |_| {}).as_bytes(),
        &windowed,
        NOW,
    ));
    let mut dir_scoped = g.clone();
    accept_apply(
        &mut dir_scoped,
        &Object::Delegation(Delegation {
            directions: Some(vec!["education".into()]),
            ..delegation_body(&dev, KZ, dev.members[KZ].publisher.public_key())
        })
        .sign(roots[0]),
        NOW,
    );
    push(validate(rec.as_bytes(), &dir_scoped, NOW));
    let by_rec = dev.record(BY, "y", at(HOUR));
    let known = Known::with(
        by_rec.id(),
        &code("BY"),
        dev.members[BY].publisher.public_key(),
    );
    push(validate_with(
        record(&dev, KZ, at(HOUR), |r| r.supersedes = Some(by_rec.id())).as_bytes(),
        &f,
        &known,
        NOW,
    ));
    push(validate_with(
        Object::Retraction(retraction_body(&dev, BY, by_rec.id()))
            .sign(&dev.members[KZ].publisher)
            .as_bytes(),
        &f,
        &known,
        NOW,
    ));
    push(validate(
        Object::Revocation(revocation_body(
            &dev,
            KZ,
            TargetType::Key,
            key_target(&key(3).public_key()),
            T0,
        ))
        .sign(roots[1])
        .as_bytes(),
        &f,
        NOW,
    ));
    let other = DevFederation::new(&["KZ"], [8u8; 32], T0).unwrap();
    push(validate(other.genesis.as_bytes(), &g, NOW));
    push(Verdict::Rejected(
        TrustView::from_genesis(signed_charter(&dev.charter, &roots[..2]).as_bytes())
            .err()
            .unwrap(),
    ));
    let mut c = amendment(&g);
    c.name = "n".into();
    push(validate(
        signed_charter(&c, &[roots[0], roots[1], &key(99)]).as_bytes(),
        &g,
        NOW,
    ));
    let mut c2 = amendment(&g);
    c2.taxonomy.kinds.pop();
    push(validate(
        signed_charter(&c2, &roots[..2]).as_bytes(),
        &g,
        NOW,
    ));
    let mut c3 = dev.charter.clone();
    c3.federation = Some(dev.federation());
    c3.name = "n".into();
    push(validate(
        signed_charter(&c3, &roots[..2]).as_bytes(),
        &g,
        NOW,
    ));
    let mut c4 = amendment(&g);
    c4.version = 3;
    push(validate(
        signed_charter(&c4, &roots[..2]).as_bytes(),
        &g,
        NOW,
    ));
    let mut c5 = amendment(&g);
    c5.previous = None;
    push(validate(
        signed_charter(&c5, &roots[..2]).as_bytes(),
        &g,
        NOW,
    ));
    push(validate(
        signed_charter(&c, &roots[..1]).as_bytes(),
        &g,
        NOW,
    ));
    let mut c6 = amendment(&g);
    add_member(&mut c6, "UZ", &uz_root());
    push(validate(
        signed_charter(&c6, &roots[..2]).as_bytes(),
        &g,
        NOW,
    ));
    let mut rotated = f.clone();
    let mut c7 = amendment(&f);
    c7.members[KZ].root_key = key(50).public_key();
    accept_apply(
        &mut rotated,
        &signed_charter(&c7, &[roots[0], roots[1], &key(50)]),
        NOW,
    );
    push(validate(rec.as_bytes(), &rotated, NOW));
    out
}

#[test]
fn produced_rejections_cover_every_variant_with_distinct_texts() {
    let produced = produced_rejections();
    let mut by_variant: BTreeMap<&str, String> = BTreeMap::new();
    for r in &produced {
        let text = r.to_string();
        assert!(!text.trim().is_empty(), "{r:?}");
        by_variant.entry(variant_name(r)).or_insert(text);
    }
    let expected: BTreeSet<&str> = one_of_each_rejection().iter().map(variant_name).collect();
    let got: BTreeSet<&str> = by_variant.keys().copied().collect();
    assert_eq!(got, expected, "every variant is provoked by some scenario");
    let distinct: BTreeSet<&String> = by_variant.values().collect();
    assert_eq!(
        distinct.len(),
        by_variant.len(),
        "texts of different variants differ: {by_variant:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Property tests
// ---------------------------------------------------------------------------------------------

struct Fixture {
    dev: DevFederation,
    trust: TrustView,
    /// One valid envelope of every type.
    samples: Vec<SignedObject>,
    known: Known,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dev = dev();
    let trust = full_trust(&dev);
    let rec = dev.record(KZ, "Sample", at(HOUR));
    let known = Known::with(
        rec.id(),
        &code("KZ"),
        dev.members[KZ].publisher.public_key(),
    );
    let mut c = amendment(&trust);
    add_member(&mut c, "UZ", &uz_root());
    let samples = vec![
        rec.clone(),
        dev.genesis.clone(),
        signed_charter(
            &c,
            &[&dev.members[KZ].root, &dev.members[BY].root, &uz_root()],
        ),
        dev.delegation(BY),
        dev.node_cert(AM),
        Object::Revocation(revocation_body(
            &dev,
            KZ,
            TargetType::Delegation,
            dev.delegation(KZ).id(),
            at(HOUR),
        ))
        .sign(&dev.members[KZ].root),
        Object::Retraction(retraction_body(&dev, KZ, rec.id())).sign(&dev.members[KZ].publisher),
    ];
    for s in &samples {
        accepted(validate_with(s.as_bytes(), &trust, &known, NOW));
    }
    Fixture {
        dev,
        trust,
        samples,
        known,
    }
});

fn prop_config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const LANGS: [&str; 6] = ["ru", "en", "kk", "hy", "be", "uz"];

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Zа-яА-ЯёӘәҚқҢңӨөҰұҮүҺһІіЎўԱ-Ֆա-ֆ0-9][a-zA-Zа-яА-ЯёӘәҚқҢңӨөҰұҮүҺһІіЎўԱ-Ֆա-ֆ0-9 .,:;!?()\n-]{0,80}"
}

fn lang_map() -> impl Strategy<Value = LangMap> {
    proptest::collection::btree_map(
        proptest::sample::select(LANGS.to_vec()).prop_map(String::from),
        text(),
        0..6,
    )
}

/// A record of member `member` with random text in random languages from [`LANGS`].
fn arb_record() -> impl Strategy<Value = (usize, Record)> {
    (
        0..3usize,
        proptest::sample::select(LANGS.to_vec()),
        text(),
        text(),
        lang_map(),
        lang_map(),
        lang_map(),
        proptest::collection::vec("[a-z][a-z0-9-]{0,20}", 0..5),
        0..DAY,
    )
        .prop_map(
            |(i, lang, title, body, mut titles, summary, mut bodies, tags, created)| {
                let dev = &FIXTURE.dev;
                titles.insert(lang.to_string(), title);
                bodies.insert(lang.to_string(), body);
                let mut r = dev.record_body(i, "x", at(created));
                r.lang = lang.to_string();
                r.title = titles;
                r.summary = summary;
                r.body = bodies;
                r.tags = tags;
                (i, r)
            },
        )
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(proptest::sample::Index, u8),
    Set(proptest::sample::Index, u8),
    Insert(proptest::sample::Index, u8),
    Remove(proptest::sample::Index),
    Truncate(proptest::sample::Index),
    Duplicate(proptest::sample::Index, proptest::sample::Index),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<proptest::sample::Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<proptest::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<proptest::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<proptest::sample::Index>().prop_map(Mutation::Remove),
        any::<proptest::sample::Index>().prop_map(Mutation::Truncate),
        (
            any::<proptest::sample::Index>(),
            any::<proptest::sample::Index>()
        )
            .prop_map(|(a, b)| Mutation::Duplicate(a, b)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        if let Mutation::Insert(_, b) = m {
            bytes.push(*b);
        }
        return;
    }
    match m {
        Mutation::Flip(i, mask) => {
            let i = i.index(bytes.len());
            bytes[i] ^= mask;
        }
        Mutation::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Insert(i, b) => {
            let i = i.index(bytes.len() + 1);
            bytes.insert(i, *b);
        }
        Mutation::Remove(i) => {
            let i = i.index(bytes.len());
            bytes.remove(i);
        }
        Mutation::Truncate(i) => {
            let i = i.index(bytes.len());
            bytes.truncate(i);
        }
        Mutation::Duplicate(a, b) => {
            let (a, b) = (a.index(bytes.len()), b.index(bytes.len()));
            let (lo, hi) = (a.min(b), a.max(b));
            let chunk = bytes[lo..=hi].to_vec();
            let at = hi + 1;
            bytes.splice(at..at, chunk);
        }
    }
}

/// Runs every public entry point that takes untrusted bytes; none may panic.
fn exercise(bytes: &[u8]) {
    let fx = &*FIXTURE;
    let limits = *fx.trust.limits();
    let _ = validate(bytes, &fx.trust, NOW);
    let _ = validate_with(bytes, &fx.trust, &fx.known, NOW);
    let _ = SignedObject::decode(bytes, limits.max_bytes(), limits.scan());
    if let Ok(draft) = SignedObject::decode_draft(bytes, limits.max_bytes(), limits.scan())
        && !draft.signatures().is_empty()
    {
        let _ = draft.bad_signers();
        let _ = draft.bad_signers_batch();
        let _ = validate_envelope(draft, &fx.trust, &fx.known, NOW);
    }
    let _ = accord_core::validate::decode(bytes, &limits);
    let _ = TrustView::from_genesis(bytes);
}

proptest! {
    #![proptest_config(prop_config(128, 0x00ac_c0de_0001))]

    /// (a) Sign → encode → decode → validate round trip, and the id is SHA-256 of the body.
    #[test]
    fn prop_record_roundtrip_is_accepted((i, rec) in arb_record()) {
        let fx = &*FIXTURE;
        let obj = Object::Record(rec.clone());
        let signed = obj.sign(&fx.dev.members[i].publisher);
        prop_assert_eq!(signed.id(), ObjectId::of_body(signed.body()));
        let encoded = obj.encode_body();
        prop_assert_eq!(signed.body(), encoded.as_slice());

        let limits = fx.trust.limits();
        let decoded = SignedObject::decode(signed.as_bytes(), limits.max_bytes(), limits.scan());
        prop_assert_eq!(decoded.as_ref().ok(), Some(&signed));
        let body = Object::decode_body(signed.body(), limits);
        prop_assert_eq!(body.ok(), Some(obj.clone()));

        match validate(signed.as_bytes(), &fx.trust, NOW) {
            Verdict::Accepted(v) => {
                prop_assert_eq!(v.id(), ObjectId::of_body(signed.body()));
                prop_assert_eq!(v.id().to_string().len(), 64);
                prop_assert_eq!(v.bytes(), signed.as_bytes());
                prop_assert_eq!(v.object(), &obj);
            }
            other => prop_assert!(false, "expected Accepted, got {:?}", other),
        }
    }

    /// (b) Any single flipped byte of a valid record envelope is rejected.
    #[test]
    fn prop_single_byte_flip_is_rejected(
        (i, rec) in arb_record(),
        idx in any::<proptest::sample::Index>(),
        mask in 1..=255u8,
    ) {
        let fx = &*FIXTURE;
        let signed = Object::Record(rec).sign(&fx.dev.members[i].publisher);
        let mut bytes = signed.as_bytes().to_vec();
        let pos = idx.index(bytes.len());
        bytes[pos] ^= mask;
        let verdict = validate(&bytes, &fx.trust, NOW);
        prop_assert!(
            matches!(verdict, Verdict::Rejected(_)),
            "flip at {} (mask {:#04x}) gave {:?}", pos, mask, verdict
        );
    }
}

proptest! {
    #![proptest_config(prop_config(256, 0x00ac_c0de_0002))]

    /// (c) Arbitrary bytes never panic the decoder or the validator.
    #[test]
    fn prop_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes);
    }

    /// (c) Random mutations of valid envelopes (of every type) never panic, and a mutation
    /// that changes the bytes is never accepted as the original object.
    #[test]
    fn prop_mutated_envelopes_never_panic(
        which in any::<proptest::sample::Index>(),
        mutations in proptest::collection::vec(arb_mutation(), 1..6),
    ) {
        let fx = &*FIXTURE;
        let original = which.get(&fx.samples);
        let mut bytes = original.as_bytes().to_vec();
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        exercise(&bytes);
        if bytes != original.as_bytes()
            && let Verdict::Accepted(v) = validate_with(&bytes, &fx.trust, &fx.known, NOW)
        {
            // The envelope is canonical and every byte is signed or a signature: no mutation
            // may yield an accepted object.
            prop_assert!(false, "mutated bytes accepted as {}: {:?}", v.id(), mutations);
        }
    }

    /// (c) Mutated bodies, re-signed by the right key, reach the body decoder and the trust
    /// rules; they must never panic either.
    #[test]
    fn prop_resigned_mutated_bodies_never_panic(
        which in any::<proptest::sample::Index>(),
        mutations in proptest::collection::vec(arb_mutation(), 1..6),
    ) {
        let fx = &*FIXTURE;
        let original = which.get(&fx.samples);
        let mut body = original.body().to_vec();
        for m in &mutations {
            mutate(&mut body, m);
        }
        let signer = fx
            .dev
            .members
            .iter()
            .flat_map(|m| [&m.root, &m.publisher])
            .find(|k| k.public_key() == original.signatures()[0].0)
            .unwrap_or(&fx.dev.members[KZ].publisher);
        let resigned = SignedObject::sign(body, signer);
        exercise(resigned.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Precheck then judge: the signature work on any thread, the rules on the writer
// ---------------------------------------------------------------------------------------------

/// Validates by precheck + judge, reporting the verdict as `validate` does.
fn precheck_then_judge(bytes: &[u8], trust: &TrustView, now: Timestamp) -> Verdict {
    let limits = *trust.limits();
    let signed = match SignedObject::decode(bytes, limits.max_bytes(), limits.scan()) {
        Ok(s) => s,
        Err(e) => return Verdict::Rejected(Rejection::Decode(e)),
    };
    match accord_core::precheck(signed, &limits) {
        Err(r) => Verdict::Rejected(r),
        Ok(p) => match p.judge(trust, &accord_core::NoRecords, now) {
            Ok(v) => Verdict::Accepted(v),
            Err((_, Ok(m))) => Verdict::Pending(m),
            Err((_, Err(r))) => Verdict::Rejected(r),
        },
    }
}

/// Over objects that are accepted, pending and refused for many reasons, the split pipeline
/// reaches the same verdict as `validate`, and checks each signature exactly once.
#[test]
fn precheck_and_judge_agree_with_validate_and_verify_once() {
    let dev = dev();
    let trust = full_trust(&dev);
    let other = DevFederation::new(&["KZ", "BY", "AM"], [8u8; 32], T0).unwrap();
    let stranger = key(91);
    let mut bad_sig = record(&dev, KZ, at(HOUR), |_| {}).into_bytes();
    let n = bad_sig.len();
    bad_sig[n - 3] ^= 0x40;
    // Objects that break two rules: the first step that fails names the reason, on both
    // paths (signatures are step 3, before federation and time).
    let forge = |mut b: Vec<u8>| {
        let n = b.len();
        b[n - 3] ^= 0x40;
        b
    };
    let foreign_forged = forge(
        Object::Record(other.record_body(KZ, "x", at(HOUR)))
            .sign(&other.members[KZ].publisher)
            .into_bytes(),
    );
    let future_forged = forge(record(&dev, KZ, Timestamp(NOW.0 + SKEW + MIN), |_| {}).into_bytes());
    for two in [&foreign_forged, &future_forged] {
        match validate(two, &trust, NOW) {
            Verdict::Rejected(r) => assert_eq!(r.code(), "signature-invalid"),
            other => panic!("{other:?}"),
        }
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("another federation, forged", foreign_forged.clone()),
        ("created in the future, forged", future_forged.clone()),
        (
            "valid record",
            record(&dev, KZ, at(HOUR), |_| {}).into_bytes(),
        ),
        ("bad signature", bad_sig),
        (
            "another federation",
            Object::Record(other.record_body(KZ, "x", at(HOUR)))
                .sign(&other.members[KZ].publisher)
                .into_bytes(),
        ),
        (
            "undelegated publisher",
            Object::Record(record_body(&dev, KZ, at(HOUR), |_| {}))
                .sign(&stranger)
                .into_bytes(),
        ),
        (
            "created in the future",
            record(&dev, KZ, Timestamp(NOW.0 + SKEW + MIN), |_| {}).into_bytes(),
        ),
        (
            "retraction of an unknown record",
            Object::Retraction(retraction_body(&dev, KZ, ObjectId::of_body(b"none")))
                .sign(&dev.members[KZ].root)
                .into_bytes(),
        ),
        ("delegation", dev.delegation(BY).into_bytes()),
        ("genesis", dev.genesis.as_bytes().to_vec()),
        ("not CBOR", vec![0xff, 0x00, 0x13]),
    ];
    for (what, bytes) in &cases {
        let expected = validate(bytes, &trust, NOW);
        let before = accord_core::keys::verifications_on_this_thread();
        let got = precheck_then_judge(bytes, &trust, NOW);
        let spent = accord_core::keys::verifications_on_this_thread() - before;
        assert_eq!(got, expected, "{what}");
        let signatures = SignedObject::decode(bytes, usize::MAX, trust.limits().scan())
            .map(|s| s.signatures().len() as u64)
            .unwrap_or(0);
        // The genesis charter's own rule checks its signatures again (it is judged rarely,
        // and only against itself); every other object costs one check per signature.
        if *what != "genesis" {
            assert_eq!(spent, signatures, "{what}: one verification per signature");
        }
    }
}

/// A prechecked object judged after the federation's limits changed (an amendment between the
/// precheck and the write) is validated again from its bytes, under the new limits.
#[test]
fn a_precheck_under_old_limits_is_redone_under_new_ones() {
    let dev = dev();
    let mut trust = full_trust(&dev);
    let rec = record(&dev, KZ, at(HOUR), |r| {
        r.body = langs(&[("en", &"x".repeat(4000))]);
    });
    let old_limits = *trust.limits();
    let pre = accord_core::precheck(
        SignedObject::decode(rec.as_bytes(), old_limits.max_bytes(), old_limits.scan()).unwrap(),
        &old_limits,
    )
    .unwrap();
    // An amendment halves the object size limit below this record's size.
    let mut c = amendment(&trust);
    c.limits.max_object_bytes = 2048;
    let roots: Vec<&SecretKey> = dev.members.iter().map(|m| &m.root).collect();
    let amended = signed_charter(&c, &roots);
    accept_apply(&mut trust, &amended, NOW);
    match pre.judge(&trust, &accord_core::NoRecords, NOW) {
        Err((_, Err(Rejection::Decode(DecodeError::TooLarge { .. })))) => {}
        other => panic!("expected TooLarge under the new limits, got {other:?}"),
    }
}

/// PROTOCOL.md §4: a receiver verifies the body bytes as received and checks neither the order
/// of a body's entries nor the width of its integer heads; unknown fields may hold any
/// well-formed CBOR (tags, floats, indefinite lengths), kept as they are.
#[test]
fn body_order_integer_width_and_unknown_field_contents_are_not_judged() {
    use ciborium::value::{Integer, Value};
    let dev = dev();
    let trust = full_trust(&dev);
    let body = record_body(&dev, KZ, at(HOUR), |_| {});
    let plain = Object::Record(body).encode_body();
    let Value::Map(mut entries) = ciborium::from_reader::<Value, _>(plain.as_slice()).unwrap()
    else {
        panic!("a body is a map")
    };
    // `created` first, `type` last.
    let at_created = entries
        .iter()
        .position(|(k, _)| k.as_text() == Some("created"))
        .unwrap();
    let created = entries.remove(at_created);
    let ty = entries.remove(0);
    entries.insert(0, created);
    entries.push(ty);
    // An unknown field holding a tag, a float and an indefinite-length array.
    entries.push((
        Value::Text("x-future".into()),
        Value::Array(vec![
            Value::Tag(1, Box::new(Value::Integer(Integer::from(5)))),
            Value::Float(1.5),
        ]),
    ));
    let mut reordered = Vec::new();
    ciborium::into_writer(&Value::Map(entries), &mut reordered).unwrap();
    // Make the unknown array indefinite-length, by hand: 0x82 → 0x9f … 0xff.
    let pos = reordered
        .windows(2)
        .position(|w| w == [0x82, 0xc1])
        .unwrap();
    reordered[pos] = 0x9f;
    // The unknown field is the map's last entry, so its array ends where the body does.
    reordered.push(0xff);
    let signed = SignedObject::sign(reordered, &dev.members[KZ].publisher);
    match validate(signed.as_bytes(), &trust, NOW) {
        Verdict::Accepted(v) => assert_eq!(v.bytes(), signed.as_bytes(), "kept byte for byte"),
        other => panic!("{other:?}"),
    }
    // A length written wider than it needs: the `directions` array's head with a one-byte
    // argument (0x98 0x01) instead of 0x81.
    let body = record_body(&dev, KZ, at(HOUR), |_| {});
    let mut wide = Object::Record(body).encode_body();
    let key = b"\x6adirections";
    let pos = wide.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(wide[pos] & 0xe0, 0x80, "an array head follows the key");
    let n = wide[pos] & 0x1f;
    wide.splice(pos..pos + 1, [0x98, n]);
    let signed = SignedObject::sign(wide, &dev.members[KZ].publisher);
    assert!(
        matches!(
            validate(signed.as_bytes(), &trust, NOW),
            Verdict::Accepted(_)
        ),
        "a non-shortest head inside a body is accepted"
    );
}

/// Protocol 1.1's `date` (the source document's date) is read leniently: a record whose `date`
/// is not a `YYYY-MM-DD` text (another type, another format) is accepted as a 1.0 node accepts
/// it and reads as having no date; a good date reads back.
#[test]
fn a_records_source_date_is_read_leniently() {
    use ciborium::Value;
    let dev = dev();
    let trust = full_trust(&dev);
    let base = Object::Record(record_body(&dev, KZ, NOW, |_| {})).encode_body();
    let with_date = |date: Value| -> SignedObject {
        let mut v: Value = ciborium::from_reader(base.as_slice()).unwrap();
        if let Value::Map(m) = &mut v {
            m.push((Value::Text("date".into()), date));
        }
        let mut body = Vec::new();
        ciborium::into_writer(&v, &mut body).unwrap();
        SignedObject::sign(body, &dev.members[KZ].publisher)
    };
    let date_of = |so: &SignedObject| match accepted(validate(so.as_bytes(), &trust, NOW)).object()
    {
        Object::Record(r) => r.date.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        date_of(&with_date(Value::Text("2025-03-01".into()))).as_deref(),
        Some("2025-03-01")
    );
    for odd in [
        Value::Integer(5.into()),
        Value::Text("yesterday".into()),
        Value::Text("2025-3-1".into()),
        Value::Array(vec![]),
        Value::Null,
    ] {
        assert_eq!(date_of(&with_date(odd.clone())), None, "{odd:?}");
    }
}

/// A key the taxonomy of a charter does not know (a later version's description of a
/// direction, say) is ignored and kept, as in every other map of a body (PROTOCOL.md §4): an
/// amendment that carries one is accepted, and the unknown key stays in the signed bytes.
#[test]
fn an_unknown_key_in_the_taxonomy_is_ignored_and_kept() {
    use ciborium::Value;
    let dev = dev();
    let trust = full_trust(&dev);
    let next = amendment(&trust);
    let mut v: Value = ciborium::from_reader(&Object::Charter(next).encode_body()[..]).unwrap();
    let mut added = 0;
    if let Value::Map(entries) = &mut v {
        for (k, x) in entries.iter_mut() {
            if k.as_text() == Some("taxonomy")
                && let Value::Map(t) = x
            {
                t.push((Value::Text("notes".into()), Value::Text("later".into())));
                added += 1;
                for (tk, list) in t.iter_mut() {
                    if tk.as_text() == Some("directions")
                        && let Value::Array(dirs) = list
                        && let Some(Value::Map(first)) = dirs.first_mut()
                    {
                        first.push((
                            Value::Text("description".into()),
                            Value::Text("Цифровая трансформация".into()),
                        ));
                        added += 1;
                    }
                }
            }
        }
    }
    assert_eq!(added, 2);
    let mut body = Vec::new();
    ciborium::into_writer(&v, &mut body).unwrap();
    let mut signed = SignedObject::unsigned(body);
    for m in &dev.members {
        assert!(signed.add_signature(&m.root));
    }
    let ok = accepted(validate(signed.as_bytes(), &trust, NOW));
    assert!(matches!(ok.object(), Object::Charter(c) if c.version == 2));
    assert!(
        String::from_utf8_lossy(signed.body()).contains("Цифровая трансформация"),
        "the unknown key stays in the signed bytes"
    );
}

/// A body of a type this release does not know, as a newer release would make.
fn newer_type_body(created: u64) -> Vec<u8> {
    use ciborium::Value;
    let body = Value::Map(vec![
        (Value::Text("type".into()), Value::Text("survey".into())),
        (Value::Text("member".into()), Value::Text("KZ".into())),
        (
            Value::Text("created".into()),
            Value::Integer(created.into()),
        ),
    ]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).unwrap();
    bytes
}

/// An object of a type this release does not know, every signature valid, is a newer
/// release's and blames nobody (`is_intrinsic` is false), whoever signed it (as a record whose
/// signer's delegation has not arrived blames nobody); only a key with standing (a current
/// root key, an unrevoked delegated publisher or certified node) makes it one to remember. A
/// bad signature is one, whatever the type.
#[test]
fn an_object_of_a_newer_type_blames_nobody_and_only_a_key_with_standing_is_remembered() {
    let dev = dev();
    let trust = full_trust(&dev);
    let limits = *trust.limits();
    let body = newer_type_body(NOW.0 - MIN);
    for signer in [&dev.members[KZ].root, &dev.members[KZ].publisher] {
        let so = SignedObject::sign(body.clone(), signer);
        let r = rejected(validate(so.as_bytes(), &trust, NOW));
        assert!(
            matches!(&r, Rejection::NewerType { object_type, created, .. } if object_type == "survey" && *created == NOW.0 - MIN),
            "{r:?}"
        );
        assert!(!r.is_intrinsic() && r.code() == "unknown-type");
    }
    let stranger = SignedObject::sign(body.clone(), &key(99));
    let r = rejected(validate(stranger.as_bytes(), &trust, NOW));
    assert!(matches!(&r, Rejection::NewerType { signer, .. } if *signer == key(99).public_key()));
    assert!(!r.is_intrinsic());
    // The precheck says the same.
    let pre = accord_core::precheck(stranger, &limits).err().unwrap();
    assert_eq!(pre, r);
    // Standing: current root keys, delegated publishers; not strangers, and not a publisher
    // before its delegation.
    assert!(trust.has_standing(&dev.members[KZ].root.public_key(), NOW));
    assert!(trust.has_standing(&dev.members[KZ].publisher.public_key(), NOW));
    assert!(!trust.has_standing(&key(99).public_key(), NOW));
    assert!(!genesis_trust(&dev).has_standing(&dev.members[KZ].publisher.public_key(), NOW));
    // Before its delegation's window opens, a publisher has none.
    assert!(!trust.has_standing(
        &dev.members[KZ].publisher.public_key(),
        Timestamp(dev.created.0 - 1)
    ));
    let publisher = dev.members[KZ].publisher.public_key();
    let mut revoked = trust.clone();
    let rev = Object::Revocation(revocation_body(
        &dev,
        KZ,
        TargetType::Key,
        key_target(&publisher),
        at(HOUR),
    ))
    .sign(&dev.members[KZ].root);
    accept_apply(&mut revoked, &rev, NOW);
    assert!(
        !revoked.has_standing(&publisher, NOW),
        "a revoked key has none"
    );
    // A signature that does not verify is one, known key or not.
    let mut bytes = SignedObject::sign(body, &dev.members[KZ].publisher).into_bytes();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    assert_rejected!(validate(&bytes, &trust, NOW), Rejection::BadSignature(_));
}
