//! The conformance corpus (`tests/conformance/manifest.json`): language-neutral cases that an
//! independent implementation runs against its own validator. Each case gives a genesis
//! charter, the objects accepted before (its trust context), the object under test, the time,
//! and the expected verdict with its reason code (docs/PROTOCOL.md §5). [`build`] makes the
//! corpus from seeded keys, so it is the same bytes on every run; the suite checks that the
//! committed file is what [`build`] makes, and that this implementation agrees with every case.

use std::collections::BTreeMap;

use accord_core::devnet::DevFederation;
use accord_core::validate::KnownRecords;
use accord_core::{
    Delegation, MemberCode, Object, ObjectId, ObjectType, PublicKey, Retraction, Revocation,
    SecretKey, SignedObject, Timestamp, TrustView, Verdict, validate_with,
};
use serde_json::{Value, json};

/// The manifest's format version.
pub const FORMAT: u64 = 1;
const T0: u64 = 1_760_000_000_000;
const HOUR: u64 = 3_600_000;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd hex length {}", s.len()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

struct Case {
    name: &'static str,
    rule: &'static str,
    genesis: Vec<u8>,
    context: Vec<Vec<u8>>,
    object: Vec<u8>,
    now: u64,
    verdict: &'static str,
    code: Option<&'static str>,
}

fn case(
    name: &'static str,
    rule: &'static str,
    genesis: &SignedObject,
    context: &[&SignedObject],
    object: Vec<u8>,
    verdict: &'static str,
    code: Option<&'static str>,
) -> Case {
    Case {
        name,
        rule,
        genesis: genesis.as_bytes().to_vec(),
        context: context.iter().map(|o| o.as_bytes().to_vec()).collect(),
        object,
        now: T0 + 24 * HOUR,
        verdict,
        code,
    }
}

/// The last signature byte flipped: the envelope stays canonical, the signature fails.
fn forged(o: &SignedObject) -> Vec<u8> {
    let mut b = o.as_bytes().to_vec();
    let n = b.len();
    b[n - 3] ^= 0x40;
    b
}

/// Builds the corpus.
pub fn build() -> Result<Value, String> {
    let v = crate::vectors()?;
    let dev = DevFederation::new(&["KZ", "BY", "AM"], [0x5c; 32], Timestamp(T0))?;
    let other = DevFederation::new(&["KZ", "BY", "AM"], [0x5d; 32], Timestamp(T0))?;
    let g = &dev.genesis;
    let kz = 0;
    let del = dev.delegation(kz);
    let at = |h: u64| Timestamp(T0 + h * HOUR);
    let rec = dev.record(kz, "A record", at(1));
    let del_body = match Object::decode_body(del.body(), &Default::default()) {
        Ok(Object::Delegation(d)) => d,
        _ => return Err("the dev delegation decodes".into()),
    };
    let sign_record = |f: &dyn Fn(&mut accord_core::Record)| {
        let mut r = dev.record_body(kz, "A record", at(1));
        f(&mut r);
        Object::Record(r).sign(&dev.members[kz].publisher)
    };
    let retraction = |signer: &SecretKey, member: &str| -> Result<SignedObject, String> {
        Ok(Object::Retraction(Retraction {
            object_type: ObjectType::Retraction,
            federation: dev.federation(),
            created: at(2),
            member: MemberCode::try_from(member.to_string())?,
            record: rec.id(),
            reason: "withdrawn".into(),
        })
        .sign(signer))
    };
    let revoke_publisher = Object::Revocation(Revocation {
        object_type: ObjectType::Revocation,
        federation: dev.federation(),
        created: at(1),
        member: dev.members[kz].code.clone(),
        target_type: accord_core::object::TargetType::Key,
        target: ObjectId(*dev.members[kz].publisher.public_key().as_bytes()),
        effective: at(1),
        reason: None,
    })
    .sign(&dev.members[kz].root);
    let scoped = Object::Delegation(Delegation {
        kinds: Some(vec![dev.charter.taxonomy.kinds[0].code.clone()]),
        ..del_body.clone()
    })
    .sign(&dev.members[kz].root);
    let other_kind = dev.charter.taxonomy.kinds[1].code.clone();
    let mut trailing = rec.as_bytes().to_vec();
    trailing.push(0x00);
    let mut version_2 = rec.as_bytes().to_vec();
    version_2[1] = 0x02; // [1, …] → [2, …]
    let deep = {
        // An unknown field nested 17 arrays deep: the innermost integer is at depth 18 > 16.
        let mut body = Object::Record(dev.record_body(kz, "Deep", at(1))).encode_body();
        body[0] += 1; // one more map entry
        body.extend_from_slice(&[0x64, b'x', b'-', b'd', b'p']);
        body.extend(std::iter::repeat_n(0x81, 17));
        body.push(0x01);
        SignedObject::sign(body, &dev.members[kz].publisher)
    };
    let by_rec = dev.record(1, "BY's record", at(1));
    let twice = {
        let mut o = rec.clone();
        o.add_signature(&dev.members[1].publisher);
        o
    };
    let late_delegation = Object::Delegation(Delegation {
        not_before: at(5),
        ..del_body.clone()
    })
    .sign(&dev.members[kz].root);
    let by_publisher_delegates = Object::Delegation(Delegation {
        publisher: SecretKey::from_seed([0x77; 32]).public_key(),
        ..del_body.clone()
    })
    .sign(&dev.members[kz].publisher);
    let revocation = |target_type, target: ObjectId, signer: &SecretKey| {
        Object::Revocation(Revocation {
            object_type: ObjectType::Revocation,
            federation: dev.federation(),
            created: at(1),
            member: dev.members[kz].code.clone(),
            target_type,
            target,
            effective: at(1),
            reason: None,
        })
        .sign(signer)
    };
    let many_directions = {
        let mut body = Object::Record(dev.record_body(kz, "Many", at(1))).encode_body();
        // Replace the directions array by one of 1025 entries (the limit is 1024).
        let key = b"\x6adirections";
        let pos = body
            .windows(key.len())
            .position(|w| w == key)
            .ok_or("directions key")?
            + key.len();
        let n = (body[pos] & 0x1f) as usize;
        let mut list = vec![0x99, 0x04, 0x01];
        for _ in 0..1025 {
            list.extend_from_slice(&[0x61, b'x']);
        }
        let old_len = 1
            + (0..n).try_fold(0usize, |at, _| {
                let l = (body[pos + 1 + at] & 0x1f) as usize;
                Ok::<usize, String>(at + 1 + l)
            })?;
        body.splice(pos..pos + old_len, list);
        SignedObject::sign(body, &dev.members[kz].publisher)
    };
    let body_without = |drop_key: &str, set_type: Option<&str>| -> Result<SignedObject, String> {
        use ciborium::value::Value as Cbor;
        let plain = Object::Record(dev.record_body(kz, "A record", at(1))).encode_body();
        let Ok(Cbor::Map(mut entries)) = ciborium::from_reader::<Cbor, _>(plain.as_slice()) else {
            return Err("a body is a map".into());
        };
        entries.retain(|(k, _)| k.as_text() != Some(drop_key));
        if let Some(t) = set_type {
            for (k, v) in &mut entries {
                if k.as_text() == Some("type") {
                    *v = Cbor::Text(t.into());
                }
            }
        }
        let mut out = Vec::new();
        ciborium::into_writer(&Cbor::Map(entries), &mut out).map_err(|e| e.to_string())?;
        Ok(SignedObject::sign(out, &dev.members[kz].publisher))
    };
    let by = 1;
    let revocation_by = |member: usize, target_type, target: ObjectId| {
        Object::Revocation(Revocation {
            object_type: ObjectType::Revocation,
            federation: dev.federation(),
            created: at(1),
            member: dev.members[member].code.clone(),
            target_type,
            target,
            effective: at(1),
            reason: None,
        })
        .sign(&dev.members[member].root)
    };
    let genesis_one_signature = SignedObject::sign(g.body().to_vec(), &dev.members[kz].root);
    // Charter amendments (version 2 of the dev charter; the threshold is 2 of 3).
    let amend = |f: &dyn Fn(&mut accord_core::Charter), signers: &[&SecretKey]| {
        let mut c = dev.charter.clone();
        c.federation = Some(dev.federation());
        c.previous = Some(dev.federation());
        c.version = 2;
        c.created = at(1);
        f(&mut c);
        let mut o = Object::Charter(c).sign(signers[0]);
        for k in &signers[1..] {
            o.add_signature(k);
        }
        o
    };
    let roots: Vec<&SecretKey> = dev.members.iter().map(|m| &m.root).collect();
    let new_kz_root = SecretKey::from_seed([0x6b; 32]);
    let replace_kz_root = |c: &mut accord_core::Charter| {
        c.members[0].root_key = new_kz_root.public_key();
    };
    let rotated = amend(&replace_kz_root, &[roots[0], roots[1], &new_kz_root]);
    let small_limits = amend(
        &|c: &mut accord_core::Charter| c.limits.max_object_bytes = 2048,
        &[roots[0], roots[1]],
    );
    let big_record = sign_record(&|r| {
        r.body.insert(r.lang.clone(), "слово ".repeat(400));
    });
    let stranger = SecretKey::from_seed([0x6c; 32]);
    let cases = vec![
        case(
            "a node certificate by the member root",
            "5 node",
            g,
            &[],
            dev.node_cert(kz).as_bytes().to_vec(),
            "accepted",
            None,
        ),
        case(
            "a revocation of a publisher key by its member root",
            "5 revocation",
            g,
            &[&del],
            revoke_publisher.as_bytes().to_vec(),
            "accepted",
            None,
        ),
        case(
            "an amendment signed by the threshold",
            "5 amendment",
            g,
            &[],
            amend(&|_| {}, &[roots[0], roots[1]]).as_bytes().to_vec(),
            "accepted",
            None,
        ),
        case(
            "an amendment below the threshold",
            "5 amendment",
            g,
            &[],
            amend(&|_| {}, &[roots[0]]).as_bytes().to_vec(),
            "rejected",
            Some("threshold-not-met"),
        ),
        case(
            "an amendment that skips a version",
            "5 amendment",
            g,
            &[],
            amend(&|c| c.version = 3, &[roots[0], roots[1]])
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("charter-version-skip"),
        ),
        case(
            "another charter of version 1",
            "5 amendment",
            g,
            &[],
            amend(
                &|c| {
                    c.version = 1;
                    c.previous = None;
                    c.name = "Rewritten".into();
                },
                &[roots[0], roots[1], roots[2]],
            )
            .as_bytes()
            .to_vec(),
            "rejected",
            Some("charter-rollback"),
        ),
        case(
            "an amendment naming the wrong previous",
            "5 amendment",
            g,
            &[],
            amend(
                &|c| c.previous = Some(ObjectId([7; 32])),
                &[roots[0], roots[1]],
            )
            .as_bytes()
            .to_vec(),
            "rejected",
            Some("charter-previous-mismatch"),
        ),
        case(
            "an amendment also signed by an outsider",
            "5 amendment",
            g,
            &[],
            amend(&|_| {}, &[roots[0], roots[1], &stranger])
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("charter-foreign-signer"),
        ),
        case(
            "a new root key that did not sign",
            "5 amendment",
            g,
            &[],
            amend(&replace_kz_root, &[roots[0], roots[1]])
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("new-key-unsigned"),
        ),
        case(
            "an amendment that drops a kind",
            "5 amendment",
            g,
            &[],
            amend(
                &|c| {
                    c.taxonomy.kinds.pop();
                },
                &[roots[0], roots[1]],
            )
            .as_bytes()
            .to_vec(),
            "rejected",
            Some("charter-invalid"),
        ),
        case(
            "a delegation by a root key since replaced",
            "5 record",
            g,
            &[&del, &rotated],
            rec.as_bytes().to_vec(),
            "rejected",
            Some("delegation-root-replaced"),
        ),
        case(
            "an object over the charter's max_object_bytes",
            "3",
            g,
            &[&del, &small_limits],
            big_record.as_bytes().to_vec(),
            "rejected",
            Some("too-large"),
        ),
        case(
            "a record without a title",
            "4.5",
            g,
            &[&del],
            body_without("title", None)?.as_bytes().to_vec(),
            "rejected",
            Some("malformed-body"),
        ),
        case(
            "an object type this version does not know",
            "4",
            g,
            &[&del],
            body_without("none", Some("memo"))?.as_bytes().to_vec(),
            "rejected",
            Some("unknown-type"),
        ),
        case(
            "a retraction naming another member than the record's",
            "5 retraction",
            g,
            &[&del, &dev.delegation(by), &rec],
            retraction(&dev.members[by].root, "BY")?.as_bytes().to_vec(),
            "rejected",
            Some("retraction-other-member"),
        ),
        case(
            "revoking another member's delegation",
            "5 revocation",
            g,
            &[&del, &dev.delegation(by)],
            revocation_by(
                kz,
                accord_core::object::TargetType::Delegation,
                dev.delegation(by).id(),
            )
            .as_bytes()
            .to_vec(),
            "rejected",
            Some("revocation-other-member"),
        ),
        case(
            "revoking a node certificate as a delegation",
            "5 revocation",
            g,
            &[&del, &dev.node_cert(kz)],
            revocation_by(
                kz,
                accord_core::object::TargetType::Delegation,
                dev.node_cert(kz).id(),
            )
            .as_bytes()
            .to_vec(),
            "rejected",
            Some("revocation-target-kind"),
        ),
        case(
            "the genesis charter with one founder's signature",
            "5 genesis",
            g,
            &[],
            genesis_one_signature.as_bytes().to_vec(),
            "rejected",
            Some("genesis-unsigned"),
        ),
        case(
            "a record with two signatures",
            "2",
            g,
            &[&del, &dev.delegation(1)],
            twice.as_bytes().to_vec(),
            "rejected",
            Some("signature-count"),
        ),
        case(
            "a member the charter does not have",
            "5 step 6",
            g,
            &[&del],
            sign_record(&|r| r.member = "UZ".parse().unwrap_or_else(|_| r.member.clone()))
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("unknown-member"),
        ),
        case(
            "a delegation signed by a publisher key",
            "5 delegation",
            g,
            &[&del],
            by_publisher_delegates.as_bytes().to_vec(),
            "rejected",
            Some("not-signed-by-root"),
        ),
        case(
            "a record before its delegation's window",
            "5 record",
            g,
            &[&late_delegation],
            rec.as_bytes().to_vec(),
            "rejected",
            Some("outside-delegation-window"),
        ),
        case(
            "superseding another member's record",
            "5 record",
            g,
            &[&del, &dev.delegation(1), &by_rec],
            sign_record(&|r| r.supersedes = Some(by_rec.id()))
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("supersedes-other-member"),
        ),
        case(
            "the genesis charter of another federation",
            "5 genesis",
            g,
            &[],
            other.genesis.as_bytes().to_vec(),
            "rejected",
            Some("foreign-genesis"),
        ),
        case(
            "a tag of 65 characters",
            "4.5",
            g,
            &[&del],
            sign_record(&|r| r.tags = vec!["x".repeat(65)])
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("invalid-field"),
        ),
        case(
            "a list over max_list_len",
            "3",
            g,
            &[&del],
            many_directions.as_bytes().to_vec(),
            "rejected",
            Some("list-too-long"),
        ),
        case(
            "revoking a delegation not known yet",
            "5 revocation",
            g,
            &[&del],
            revocation(
                accord_core::object::TargetType::Delegation,
                ObjectId([9; 32]),
                &dev.members[kz].root,
            )
            .as_bytes()
            .to_vec(),
            "pending",
            Some("awaiting-trust-object"),
        ),
        case(
            "a revocation signed by a publisher key",
            "5 revocation",
            g,
            &[&del],
            revocation(
                accord_core::object::TargetType::Delegation,
                del.id(),
                &dev.members[kz].publisher,
            )
            .as_bytes()
            .to_vec(),
            "rejected",
            Some("revocation-not-authorised"),
        ),
        case(
            "vector genesis charter",
            "7",
            &v.charter,
            &[],
            v.charter.as_bytes().to_vec(),
            "accepted",
            None,
        ),
        case(
            "vector delegation",
            "7",
            &v.charter,
            &[],
            v.delegation.as_bytes().to_vec(),
            "accepted",
            None,
        ),
        case(
            "vector record",
            "7",
            &v.charter,
            &[&v.delegation],
            v.record.as_bytes().to_vec(),
            "accepted",
            None,
        ),
        case(
            "genesis charter",
            "5 genesis",
            g,
            &[],
            g.as_bytes().to_vec(),
            "accepted",
            None,
        ),
        case(
            "delegation by the member root",
            "5 delegation",
            g,
            &[],
            del.as_bytes().to_vec(),
            "accepted",
            None,
        ),
        case(
            "record of a delegated publisher",
            "5 record",
            g,
            &[&del],
            rec.as_bytes().to_vec(),
            "accepted",
            None,
        ),
        case(
            "record before its delegation",
            "5 pending",
            g,
            &[],
            rec.as_bytes().to_vec(),
            "pending",
            Some("awaiting-delegation"),
        ),
        case(
            "forged signature",
            "5 step 3",
            g,
            &[&del],
            forged(&rec),
            "rejected",
            Some("signature-invalid"),
        ),
        case(
            "forged and of another federation: signatures come first",
            "5 order",
            g,
            &[&del],
            forged(&other.record(kz, "x", at(1))),
            "rejected",
            Some("signature-invalid"),
        ),
        case(
            "another federation",
            "5 step 4",
            g,
            &[&del],
            other.record(kz, "x", at(1)).as_bytes().to_vec(),
            "rejected",
            Some("wrong-federation"),
        ),
        case(
            "created too far ahead",
            "5 step 5",
            g,
            &[&del],
            dev.record(kz, "later", at(48)).as_bytes().to_vec(),
            "rejected",
            Some("created-in-future"),
        ),
        case(
            "kind outside the taxonomy",
            "5 record",
            g,
            &[&del],
            sign_record(&|r| r.kind = "no-such-kind".into())
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("unknown-kind"),
        ),
        case(
            "direction outside the taxonomy",
            "5 record",
            g,
            &[&del],
            sign_record(&|r| r.directions = vec!["no-such-direction".into()])
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("unknown-direction"),
        ),
        case(
            "kind outside the delegation's scope",
            "5 record",
            g,
            &[&scoped],
            sign_record(&|r| r.kind = other_kind.clone())
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("outside-delegation-scope"),
        ),
        case(
            "publisher key revoked",
            "5 revocation",
            g,
            &[&del, &revoke_publisher],
            dev.record(kz, "after", at(2)).as_bytes().to_vec(),
            "rejected",
            Some("signer-revoked"),
        ),
        case(
            "retraction by the author",
            "5 retraction",
            g,
            &[&del, &rec],
            retraction(&dev.members[kz].publisher, "KZ")?
                .as_bytes()
                .to_vec(),
            "accepted",
            None,
        ),
        case(
            "retraction of an unknown record",
            "5 retraction",
            g,
            &[&del],
            retraction(&dev.members[kz].publisher, "KZ")?
                .as_bytes()
                .to_vec(),
            "pending",
            Some("awaiting-record"),
        ),
        case(
            "retraction by another member's publisher",
            "5 retraction",
            g,
            &[&del, &dev.delegation(1), &rec],
            retraction(&dev.members[1].publisher, "KZ")?
                .as_bytes()
                .to_vec(),
            "rejected",
            Some("retraction-not-by-author"),
        ),
        case(
            "not CBOR",
            "3",
            g,
            &[],
            vec![0xff, 0x00],
            "rejected",
            Some("malformed-cbor"),
        ),
        case(
            "bytes after the envelope",
            "3",
            g,
            &[&del],
            trailing,
            "rejected",
            Some("trailing-bytes"),
        ),
        case(
            "an empty array",
            "2",
            g,
            &[],
            vec![0x80],
            "rejected",
            Some("malformed-envelope"),
        ),
        case(
            "envelope version 2",
            "2",
            g,
            &[&del],
            version_2,
            "rejected",
            Some("unsupported-version"),
        ),
        case(
            "body nested too deep",
            "3 depth",
            g,
            &[&del],
            deep.as_bytes().to_vec(),
            "rejected",
            Some("depth-exceeded"),
        ),
    ];
    let cases: Vec<Value> = cases
        .into_iter()
        .map(|c| {
            json!({
                "name": c.name,
                "rule": format!("PROTOCOL.md §{}", c.rule),
                "genesis": hex(&c.genesis),
                "context": c.context.iter().map(|b| hex(b)).collect::<Vec<_>>(),
                "object": hex(&c.object),
                "now": c.now,
                "expect": {"verdict": c.verdict, "code": c.code},
            })
        })
        .collect();
    Ok(json!({
        "format": FORMAT,
        "about": "Accord conformance corpus: for each case, build the trust view from `genesis`, validate and apply each `context` object in order at `now` (each is accepted), then validate `object` at `now` and compare the verdict and reason code with `expect`. Bytes are hex. See tests/conformance/README.md.",
        "cases": cases,
    }))
}

/// Records accepted in a case's context, for retractions and successors.
#[derive(Default)]
struct Known(BTreeMap<ObjectId, (MemberCode, PublicKey)>);

impl KnownRecords for Known {
    fn record_meta(&self, id: &ObjectId) -> Option<(MemberCode, PublicKey)> {
        self.0.get(id).cloned()
    }
}

/// Runs one case of a manifest through this implementation: `Ok(())` when it agrees.
pub fn run_case(c: &Value) -> Result<(), String> {
    let field = |k: &str| {
        c[k].as_str()
            .ok_or_else(|| format!("case field {k} missing"))
            .and_then(unhex)
    };
    let now = Timestamp(c["now"].as_u64().ok_or("case field now missing")?);
    let (mut trust, _) = TrustView::from_genesis(&field("genesis")?).map_err(|e| e.to_string())?;
    let mut known = Known::default();
    for (i, ctx) in c["context"].as_array().into_iter().flatten().enumerate() {
        let bytes = unhex(ctx.as_str().ok_or("context entries are hex")?)?;
        match validate_with(&bytes, &trust, &known, now) {
            Verdict::Accepted(v) => {
                if v.object().object_type().is_trust() {
                    trust.apply(&v);
                }
                if let Object::Record(r) = v.object() {
                    known.0.insert(v.id(), (r.member.clone(), v.signer()));
                }
            }
            other => return Err(format!("context object {i} was not accepted: {other:?}")),
        }
    }
    let (verdict, code) = match validate_with(&field("object")?, &trust, &known, now) {
        Verdict::Accepted(_) => ("accepted", None),
        Verdict::Pending(m) => ("pending", Some(m.code())),
        Verdict::Rejected(r) => ("rejected", Some(r.code())),
    };
    let want = &c["expect"];
    if want["verdict"].as_str() != Some(verdict) || want["code"].as_str() != code {
        return Err(format!(
            "expected {} {}, got {verdict} {}",
            want["verdict"],
            want["code"],
            code.unwrap_or("-")
        ));
    }
    Ok(())
}
