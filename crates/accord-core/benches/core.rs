//! Signature verification (single strict vs batch), envelope encode/decode, validation.

#![allow(clippy::unwrap_used, missing_docs)]

use accord_core::devnet::DevFederation;
use accord_core::envelope::signing_input;
use accord_core::keys::verify_many;
use accord_core::{
    Limits, Object, PublicKey, SecretKey, Signature, SignedObject, Timestamp, validate,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn signatures(c: &mut Criterion) {
    let n = 64;
    let keys: Vec<SecretKey> = (0..n)
        .map(|i| SecretKey::from_seed([i as u8; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| signing_input(format!("message {i}").as_bytes()))
        .collect();
    let items: Vec<(PublicKey, &[u8], Signature)> = keys
        .iter()
        .zip(&msgs)
        .map(|(k, m)| (k.public_key(), m.as_slice(), k.sign(m)))
        .collect();
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("single_strict", n), |b| {
        b.iter(|| items.iter().all(|(k, m, s)| k.verify_strict(m, s)))
    });
    g.bench_function(BenchmarkId::new("batch", n), |b| {
        b.iter(|| verify_many(&items))
    });
    g.finish();
}

/// A ~7 KiB bilingual record of `fed`'s first member.
fn bilingual_record(fed: &DevFederation) -> Object {
    let mut body = fed.record_body(
        0,
        "A regulatory note on proactive e-government services",
        Timestamp(1_700_000_001_000),
    );
    body.body
        .insert("en".into(), "Lorem ipsum dolor sit amet. ".repeat(80));
    body.body.insert(
        "ru".into(),
        "Электронное правительство и цифровые навыки. ".repeat(60),
    );
    body.title
        .insert("ru".into(), "Записка о проактивных услугах".into());
    Object::Record(body)
}

fn envelope(c: &mut Criterion) {
    let fed =
        DevFederation::new(&["KZ", "BY", "AM"], [7; 32], Timestamp(1_700_000_000_000)).unwrap();
    let obj = bilingual_record(&fed);
    let signed = obj.sign(&fed.members[0].publisher);
    let bytes = signed.as_bytes().to_vec();
    let limits = Limits::default();
    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode_and_sign", |b| {
        b.iter(|| obj.sign(&fed.members[0].publisher))
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let s = SignedObject::decode(&bytes, limits.max_bytes(), limits.scan()).unwrap();
            Object::decode_body(s.body(), &accord_core::Limits::default()).unwrap()
        })
    });
    let (mut trust, _) = accord_core::TrustView::from_genesis(fed.genesis.as_bytes()).unwrap();
    if let accord_core::Verdict::Accepted(v) =
        validate(fed.delegation(0).as_bytes(), &trust, Timestamp::MAX)
    {
        trust.apply(&v);
    }
    g.bench_function("validate_record", |b| {
        b.iter(|| {
            assert!(matches!(
                validate(&bytes, &trust, Timestamp::MAX),
                accord_core::Verdict::Accepted(_)
            ))
        })
    });
    g.finish();
}

/// The part of validation the node's one store thread does for every record: judging a
/// prechecked record (decoded, signature checked) against the trust view, under the 1.3 rules,
/// which refuse a key given twice in any of the body's maps.
fn judge(c: &mut Criterion) {
    let limits = Limits {
        rules: accord_core::object::RULES_1_3,
        ..Limits::default()
    };
    let fed = DevFederation::with_limits(
        &["KZ", "BY", "AM"],
        [7; 32],
        Timestamp(1_700_000_000_000),
        limits,
    )
    .unwrap();
    let bytes = bilingual_record(&fed)
        .sign(&fed.members[0].publisher)
        .as_bytes()
        .to_vec();
    let (mut trust, _) = accord_core::TrustView::from_genesis(fed.genesis.as_bytes()).unwrap();
    if let accord_core::Verdict::Accepted(v) =
        validate(fed.delegation(0).as_bytes(), &trust, Timestamp::MAX)
    {
        trust.apply(&v);
    }
    let mut g = c.benchmark_group("judge");
    g.bench_function("prechecked_record_rules_1_3", |b| {
        b.iter_batched(
            || {
                let s = SignedObject::decode(&bytes, limits.max_bytes(), limits.scan()).unwrap();
                accord_core::precheck(s, &limits).unwrap()
            },
            |p| {
                assert!(
                    p.judge(&trust, &accord_core::NoRecords, Timestamp::MAX)
                        .is_ok()
                )
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// What a group commit holding one trust object pays for the trust view: a copy of the view
/// (the readers share the one in force) and the object folded into it, with a member that has
/// issued `n` delegations (delegating a key costs a member nothing but a signature).
fn trust_copy(c: &mut Criterion) {
    use accord_core::object::{Delegation, ObjectType};
    let fed = DevFederation::new(&["KZ", "BY"], [8; 32], Timestamp(1_700_000_000_000)).unwrap();
    let (genesis, _) = accord_core::TrustView::from_genesis(fed.genesis.as_bytes()).unwrap();
    // `one_key`: every delegation names the same publisher key (their names differ), as a
    // member issuing delegation after delegation of one key would.
    let delegation = |i: u64, one_key: bool| {
        let key = accord_core::SecretKey::from_seed({
            let mut seed = [0u8; 32];
            if !one_key {
                seed[..8].copy_from_slice(&i.to_le_bytes());
            }
            seed[31] = 1;
            seed
        });
        Object::Delegation(Delegation {
            object_type: ObjectType::Delegation,
            federation: fed.federation(),
            created: fed.created,
            member: fed.members[0].code.clone(),
            publisher: key.public_key(),
            name: format!("publisher number {i} of a member that delegates without end"),
            kinds: None,
            directions: None,
            not_before: fed.created,
            not_after: None,
        })
        .sign(&fed.members[0].root)
    };
    let verified = |trust: &accord_core::TrustView, i: u64, one_key: bool| match validate(
        delegation(i, one_key).as_bytes(),
        trust,
        Timestamp::MAX,
    ) {
        accord_core::Verdict::Accepted(v) => v,
        other => panic!("{other:?}"),
    };
    let mut g = c.benchmark_group("trust_copy");
    g.sample_size(20);
    for (name, one_key, sizes) in [
        ("copy_and_apply", false, &[1_000u64, 20_000, 100_000][..]),
        ("copy_and_apply_one_key", true, &[1_000u64, 10_000][..]),
    ] {
        let mut trust = genesis.clone();
        let mut held = 0u64;
        for &n in sizes {
            while held < n {
                let v = verified(&trust, held, one_key);
                trust.apply(&v);
                held += 1;
            }
            let next = verified(&trust, u64::MAX - n, one_key);
            let shared = std::sync::Arc::new(trust.clone());
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    let mut view = shared.clone();
                    std::sync::Arc::make_mut(&mut view).apply(&next);
                    view
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, signatures, envelope, judge, trust_copy);
criterion_main!(benches);
