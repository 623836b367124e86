//! Validation: the one pure function that decides what a node accepts.
//!
//! `(bytes, &TrustView, now) → Accepted(Verified<Object>) | Pending(Missing) | Rejected(Rejection)`.
//! The steps are always: size and CBOR limits → envelope → body decode → federation and
//! time → signatures → the type's trust rules. [`Verified`] can only be built here.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::envelope::SignedObject;
use crate::error::DecodeError;
use crate::id::ObjectId;
use crate::keys::PublicKey;
use crate::object::{Charter, Limits, MemberCode, Object, ObjectType, Record, RevocationTarget};
use crate::taxonomy::is_code;
use crate::time::{Timestamp, parse_date};
use crate::trust::{PublisherCheck, TrustView};

/// An object that passed validation. Only this module can build one, so holding a
/// `Verified<Object>` proves that its signatures and trust rules were checked.
///
/// Immutable and shared: a clone is a reference count, not a copy of the object and its
/// bytes (the store keeps one for its batch, the reply, the index and the broadcast each).
#[derive(Debug, PartialEq, Eq)]
pub struct Verified<T> {
    shared: std::sync::Arc<Parts<T>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Parts<T> {
    inner: T,
    signed: SignedObject,
}

impl<T> Clone for Verified<T> {
    fn clone(&self) -> Self {
        Verified {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Verified<T> {
    fn new(inner: T, signed: SignedObject) -> Verified<T> {
        Verified {
            shared: std::sync::Arc::new(Parts { inner, signed }),
        }
    }

    pub fn object(&self) -> &T {
        &self.shared.inner
    }

    pub fn id(&self) -> ObjectId {
        self.shared.signed.id()
    }

    /// The exact envelope bytes that were verified.
    pub fn bytes(&self) -> &[u8] {
        self.shared.signed.as_bytes()
    }

    pub fn signed(&self) -> &SignedObject {
        &self.shared.signed
    }

    /// The first (for every type but charters, the only) signer.
    pub fn signer(&self) -> PublicKey {
        self.shared.signed.signatures()[0].0
    }

    pub fn signers(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.shared.signed.signatures().iter().map(|(k, _)| *k)
    }
}

/// What a pending object waits for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Error)]
#[non_exhaustive]
pub enum Missing {
    #[error("no delegation yet for publisher {publisher} of member {member}")]
    Delegation {
        member: MemberCode,
        publisher: PublicKey,
    },
    #[error("record {0} is not known yet")]
    Record(ObjectId),
    #[error("delegation or node certificate {0} is not known yet")]
    TrustObject(ObjectId),
}

/// Why an object was refused. Every variant reads as one human sentence.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Rejection {
    #[error("malformed: {0}")]
    Decode(#[from] DecodeError),
    #[error("belongs to federation {found}, not {expected}")]
    WrongFederation { expected: ObjectId, found: String },
    #[error("created {created} is more than {skew_ms} ms ahead of now ({now})")]
    CreatedInFuture {
        created: Timestamp,
        now: Timestamp,
        skew_ms: u64,
    },
    #[error("invalid signature by {0}")]
    BadSignature(PublicKey),
    #[error("a {object_type} must carry exactly one signature, found {found}")]
    SignatureCount {
        object_type: ObjectType,
        found: usize,
    },
    #[error("unknown member {0}")]
    UnknownMember(MemberCode),
    #[error(
        "{object_type} for member {member} is signed by {signer}, not by the member's root key"
    )]
    NotSignedByRoot {
        object_type: ObjectType,
        member: MemberCode,
        signer: PublicKey,
    },
    #[error("field {field}: {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
    #[error("kind {0:?} is not in the federation's taxonomy")]
    UnknownKind(String),
    #[error("direction {0:?} is not in the federation's taxonomy")]
    UnknownDirection(String),
    #[error("signer {key} is revoked since {since}")]
    SignerRevoked { key: PublicKey, since: Timestamp },
    #[error(
        "delegation {delegation} was signed by a root key that member {member} no longer holds"
    )]
    DelegationRootReplaced {
        delegation: ObjectId,
        member: MemberCode,
    },
    #[error("created {at} is outside delegation {delegation}'s window ({not_before} to {})", not_after.map(|t| t.to_string()).unwrap_or_else(|| "open".into()))]
    OutsideDelegationWindow {
        delegation: ObjectId,
        at: Timestamp,
        not_before: Timestamp,
        not_after: Option<Timestamp>,
    },
    #[error("kind {kind:?} is outside delegation {delegation}'s scope")]
    KindOutOfScope { delegation: ObjectId, kind: String },
    #[error("direction {direction:?} is outside delegation {delegation}'s scope")]
    DirectionOutOfScope {
        delegation: ObjectId,
        direction: String,
    },
    #[error("supersedes record {0} of another member")]
    SupersedesOtherMember(ObjectId),
    #[error("retraction names member {member}, but record {record} belongs to member {owner}")]
    RetractionOtherMember {
        record: ObjectId,
        member: MemberCode,
        owner: MemberCode,
    },
    #[error("revocation by member {member} names {target}, which is a {kind} of member {owner}")]
    RevocationOtherMember {
        target: ObjectId,
        kind: &'static str,
        member: MemberCode,
        owner: MemberCode,
    },
    #[error("revocation names {target} as a {expected}, but it is a {found}")]
    RevocationTargetKind {
        target: ObjectId,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "retraction of record {record} is signed by {signer}, neither its author nor member {member}'s root key"
    )]
    RetractionNotByAuthor {
        record: ObjectId,
        signer: PublicKey,
        member: MemberCode,
    },
    #[error(
        "revocation signed by {signer} is by neither member {member}'s root key nor the revoked key"
    )]
    RevocationNotAuthorised {
        signer: PublicKey,
        member: MemberCode,
    },
    #[error("this is the genesis charter of another federation ({0})")]
    ForeignGenesis(ObjectId),
    #[error("genesis charter lacks the signature of founding member {0}")]
    GenesisUnsigned(MemberCode),
    #[error("charter is signed by {0}, which is not a member root key")]
    ForeignCharterSigner(PublicKey),
    #[error("charter: {0}")]
    InvalidCharter(String),
    #[error("charter version {found} would roll back the current version {current}")]
    CharterRollback { found: u64, current: u64 },
    #[error("charter version {found} skips ahead: the next version is {expected}")]
    CharterVersionSkip { found: u64, expected: u64 },
    #[error("charter amendment names previous {found}, but the current charter is {expected}")]
    CharterPreviousMismatch { expected: ObjectId, found: String },
    #[error("charter amendment has {have} signatures of version {version}'s members, needs {need}")]
    ThresholdNotMet {
        have: usize,
        need: u64,
        version: u64,
    },
    #[error("charter amendment introduces root key {key} for {member} without its signature")]
    NewKeyUnsigned { member: MemberCode, key: PublicKey },
    /// An object of a type this release does not know, its first signature valid (see
    /// [`newer_type`]): a newer release may have made it, and a peer that forwards it is not to
    /// blame, as for a record whose signer's delegation has not arrived. Code `unknown-type`, as
    /// the malformed case. Remembered as refused by id only when its signer has standing
    /// ([`TrustView::has_standing`]); otherwise for the peer that gave it, apart (the store's
    /// memories of refusals).
    #[error(
        "an object of type {object_type:?}, which this release of accord does not know, signed by {signer}: a newer release made it; upgrade this node to read it"
    )]
    NewerType {
        object_type: String,
        signer: PublicKey,
        /// The body's `created`, where it has one (0 otherwise): what the memory of refused
        /// objects orders by.
        created: u64,
    },
}

/// An object whose body names a type this release does not know (`object_type`): its first
/// signature is checked (one `verify_strict`, as for a record, however many signatures the
/// envelope carries: this release does not know how many the type takes), and if it holds it
/// is [`Rejection::NewerType`], which blames nobody. A bad one is [`Rejection::BadSignature`],
/// as for any type. Stateless: the precheck's.
pub fn newer_type(signed: &SignedObject, object_type: String, limits: &Limits) -> Rejection {
    let Some((signer, sig)) = signed.signatures().first() else {
        return DecodeError::UnknownType(object_type).into();
    };
    if !signer.verify_strict(&crate::envelope::signing_input(signed.body()), sig) {
        return Rejection::BadSignature(*signer);
    }
    // `created`, read from the body as a map of any type (its decoding passed the scan limits).
    let created = ciborium::de::from_reader_with_recursion_limit::<ciborium::Value, _>(
        signed.body(),
        limits.scan().max_depth + 2,
    )
    .ok()
    .and_then(|v| match v {
        ciborium::Value::Map(entries) => entries
            .into_iter()
            .find(|(k, _)| k.as_text() == Some("created"))
            .and_then(|(_, v)| v.as_integer())
            .and_then(|i| u64::try_from(i).ok()),
        _ => None,
    })
    .unwrap_or(0);
    Rejection::NewerType {
        object_type,
        signer: *signer,
        created,
    }
}

/// The outcome of validation. It lives only until the caller matches on it, so the size
/// difference between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted(Verified<Object>),
    Pending(Missing),
    Rejected(Rejection),
}

/// What the validator needs to know about records already accepted (retractions and
/// supersession refer to them). The store implements it; [`NoRecords`] knows none.
pub trait KnownRecords {
    /// The member and author (signer) of an accepted record.
    fn record_meta(&self, id: &ObjectId) -> Option<(MemberCode, PublicKey)>;
}

/// Knows no records: retractions by authors stay pending.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecords;

impl KnownRecords for NoRecords {
    fn record_meta(&self, _: &ObjectId) -> Option<(MemberCode, PublicKey)> {
        None
    }
}

/// Validates `bytes` against the trust view at time `now`, knowing no records.
pub fn validate(bytes: &[u8], trust: &TrustView, now: Timestamp) -> Verdict {
    validate_with(bytes, trust, &NoRecords, now)
}

/// Validates `bytes` against the trust view at time `now`, with access to known records.
pub fn validate_with(
    bytes: &[u8],
    trust: &TrustView,
    known: &dyn KnownRecords,
    now: Timestamp,
) -> Verdict {
    let limits = trust.limits();
    match SignedObject::decode(bytes, limits.max_bytes(), limits.scan()) {
        Ok(signed) => validate_envelope(signed, trust, known, now),
        Err(e) => Verdict::Rejected(Rejection::Decode(e)),
    }
}

/// Validates an envelope already decoded with [`SignedObject::decode`] (so that a caller
/// can look its id up for duplicates before any signature work).
pub fn validate_envelope(
    signed: SignedObject,
    trust: &TrustView,
    known: &dyn KnownRecords,
    now: Timestamp,
) -> Verdict {
    match check(signed, trust, known, now) {
        Ok(Ok(v)) => Verdict::Accepted(v),
        Ok(Err(m)) => Verdict::Pending(m),
        Err(r) => Verdict::Rejected(r),
    }
}

/// Decodes an envelope and its body under the given limits, without checking signatures.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<(SignedObject, Object), DecodeError> {
    let signed = SignedObject::decode(bytes, limits.max_bytes(), limits.scan())?;
    let obj = Object::decode_body(signed.body(), limits)?;
    Ok((signed, obj))
}

type Checked = Result<Result<Verified<Object>, Missing>, Rejection>;

fn check(
    signed: SignedObject,
    trust: &TrustView,
    known: &dyn KnownRecords,
    now: Timestamp,
) -> Checked {
    let limits = *trust.limits();
    let (obj, keys) = match Object::decode_body_and_keys(signed.body(), &limits) {
        Ok(x) => x,
        Err(DecodeError::UnknownType(t)) => return Err(newer_type(&signed, t, &limits)),
        Err(e) => return Err(e.into()),
    };
    let checked = Checks {
        signatures: false,
        unique_keys: keys.as_ref().err(),
    };
    Ok(match rules(&signed, &obj, trust, known, now, checked)? {
        None => Ok(Verified::new(obj, signed)),
        Some(m) => Err(m),
    })
}

/// An envelope whose body decoded and whose signatures all verified (`verify_strict`; a
/// charter's in one batch), under the limits it was decoded with, but not yet judged against
/// the trust view. Only [`precheck`] builds one, so that the signature work, which needs no
/// state, can run on any thread before the one writer judges the object with
/// [`Prechecked::judge`] without checking its signatures again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prechecked {
    signed: SignedObject,
    object: Object,
    limits: Limits,
    /// A key given twice in one of the body's maps, found while decoding it; refused if the
    /// rules in force when the object was created say so.
    duplicate_key: Option<Box<Rejection>>,
}

impl Prechecked {
    pub fn id(&self) -> ObjectId {
        self.signed.id()
    }

    /// The exact envelope bytes.
    pub fn bytes(&self) -> &[u8] {
        self.signed.as_bytes()
    }

    pub fn object(&self) -> &Object {
        &self.object
    }

    /// Judges the object against the trust view at time `now`, as [`validate_envelope`]
    /// does, without checking its signatures again. If the federation's limits changed since
    /// the precheck (a charter amendment in between), it is validated again from its bytes.
    /// An object that is not accepted is handed back with what it waits for or why it is
    /// refused.
    #[allow(clippy::result_large_err)] // handed straight back to the caller's match
    pub fn judge(
        self,
        trust: &TrustView,
        known: &dyn KnownRecords,
        now: Timestamp,
    ) -> Result<Verified<Object>, (Prechecked, Result<Missing, Rejection>)> {
        if self.limits != *trust.limits() {
            // From the bytes: the size and depth limits are checked when the envelope decodes.
            return match validate_with(self.signed.as_bytes(), trust, known, now) {
                Verdict::Accepted(v) => Ok(v),
                Verdict::Pending(m) => Err((self, Ok(m))),
                Verdict::Rejected(r) => Err((self, Err(r))),
            };
        }
        let checked = Checks {
            signatures: true,
            unique_keys: self.duplicate_key.as_deref(),
        };
        match rules(&self.signed, &self.object, trust, known, now, checked) {
            Ok(None) => Ok(Verified::new(self.object, self.signed)),
            Ok(Some(m)) => Err((self, Ok(m))),
            Err(r) => Err((self, Err(r))),
        }
    }
}

/// The stateless part of validation: the body decodes under `limits`, the type has the
/// number of signatures it must have, and every signature verifies. Costs one `verify_strict`
/// per signature; everything else is left to [`Prechecked::judge`].
pub fn precheck(signed: SignedObject, limits: &Limits) -> Result<Prechecked, Rejection> {
    let (object, keys) = match Object::decode_body_and_keys(signed.body(), limits) {
        Ok(x) => x,
        Err(DecodeError::UnknownType(t)) => return Err(newer_type(&signed, t, limits)),
        Err(e) => return Err(e.into()),
    };
    check_signatures(&signed, object.object_type())?;
    Ok(Prechecked {
        signed,
        object,
        limits: *limits,
        duplicate_key: keys.err().map(Box::new),
    })
}

fn check_signatures(signed: &SignedObject, t: ObjectType) -> Result<(), Rejection> {
    let count = signed.signatures().len();
    if count == 0 || (t != ObjectType::Charter && count != 1) {
        return Err(Rejection::SignatureCount {
            object_type: t,
            found: count,
        });
    }
    // Strictly, one by one, charters too: a batch may accept a signature with a mixed-order R
    // that strict verification refuses, and a hostile co-signer could so make nodes of this
    // implementation and of a strict one disagree about the charter.
    match signed.bad_signers().first() {
        Some(k) => Err(Rejection::BadSignature(*k)),
        None => Ok(()),
    }
}

/// What was found of an object before [`rules`] judge it.
struct Checks<'a> {
    /// Its signatures were checked ([`precheck`]).
    signatures: bool,
    /// A key given twice in one of its body's maps, found while decoding it.
    unique_keys: Option<&'a Rejection>,
}

/// Every rule but the body's decoding: `Ok(None)` accepts, `Ok(Some(_))` waits. The
/// signatures are checked here unless `checked` says [`precheck`] did it.
fn rules(
    signed: &SignedObject,
    obj: &Object,
    trust: &TrustView,
    known: &dyn KnownRecords,
    now: Timestamp,
    checked: Checks<'_>,
) -> Result<Option<Missing>, Rejection> {
    let limits = *trust.limits();
    let fed = trust.federation();
    let t = obj.object_type();
    // Signatures come right after decoding (PROTOCOL.md §5, step 3), as in the node's
    // pipeline, where [`precheck`] checks them on a worker pool before the trust rules: the
    // same object gets the same reason code on either path.
    if !checked.signatures {
        check_signatures(signed, t)?;
    }
    match obj.federation() {
        Some(f) if f == fed => {}
        Some(f) => {
            return Err(Rejection::WrongFederation {
                expected: fed,
                found: f.to_string(),
            });
        }
        None => {
            // Only a genesis charter has no federation field: it must be ours, and it is
            // checked by the same rules as when the trust view was built from it.
            if signed.id() != fed {
                return Err(Rejection::ForeignGenesis(signed.id()));
            }
            let Object::Charter(c) = obj else {
                return Err(invalid("federation", "missing"));
            };
            check_genesis(signed, c)?;
            return Ok(None);
        }
    }
    let created = obj.created();
    if created > now.saturating_add_ms(limits.max_future_skew_ms) {
        return Err(Rejection::CreatedInFuture {
            created,
            now,
            skew_ms: limits.max_future_skew_ms,
        });
    }
    let signer = signed.signatures()[0].0;
    let charter = trust.charter();
    // The refusal rules of the charter in force when the object was created (PROTOCOL.md §10).
    let rules_1_3 = trust.rules_at(created) >= crate::object::RULES_1_3;
    if rules_1_3 && let Some(r) = checked.unique_keys {
        return Err(r.clone());
    }
    if let Some(member) = obj.member()
        && charter.member(member).is_none()
    {
        return Err(Rejection::UnknownMember(member.clone()));
    }
    let root_signed = |member: &MemberCode| trust.root_key(member) == Some(signer);
    match obj {
        Object::Charter(c) => {
            check_amendment(c, signed, trust)?;
        }
        Object::Delegation(d) => {
            if !root_signed(&d.member) {
                return Err(Rejection::NotSignedByRoot {
                    object_type: t,
                    member: d.member.clone(),
                    signer,
                });
            }
            non_empty("name", &d.name)?;
            if rules_1_3 {
                trust_name("name", &d.name)?;
            }
            if let Some(kinds) = &d.kinds {
                for k in kinds {
                    if !charter.taxonomy.has_kind(k) {
                        return Err(Rejection::UnknownKind(k.clone()));
                    }
                }
            }
            if let Some(dirs) = &d.directions {
                for x in dirs {
                    if !charter.taxonomy.has_direction(x) {
                        return Err(Rejection::UnknownDirection(x.clone()));
                    }
                }
            }
            if d.not_after.is_some_and(|na| na < d.not_before) {
                return Err(invalid("not_after", "is before not_before"));
            }
        }
        Object::Node(n) => {
            if !root_signed(&n.member) {
                return Err(Rejection::NotSignedByRoot {
                    object_type: t,
                    member: n.member.clone(),
                    signer,
                });
            }
            if let Some(label) = &n.label
                && rules_1_3
            {
                trust_name("label", label)?;
            }
        }
        Object::Revocation(r) => {
            let target = r
                .target()
                .ok_or_else(|| invalid("target", "is not a valid ed25519 public key"))?;
            let self_revocation = target == RevocationTarget::Key(signer);
            if !root_signed(&r.member) && !self_revocation {
                return Err(Rejection::RevocationNotAuthorised {
                    signer,
                    member: r.member.clone(),
                });
            }
            // A key revokes itself only with standing in its member: a delegation or a node
            // certificate of that member naming it. A key with none has nothing to revoke,
            // and any fresh key could otherwise have any number of objects stored everywhere
            // in a member's name: it waits, as a record of an undelegated key does.
            if self_revocation && !root_signed(&r.member) && rules_1_3 {
                let standing = trust
                    .delegations_of(&signer)
                    .iter()
                    .any(|d| d.delegation.member == r.member)
                    || trust
                        .node_certs_of(&signer)
                        .iter()
                        .any(|n| n.cert.member == r.member);
                if !standing {
                    return Ok(Some(Missing::Delegation {
                        member: r.member.clone(),
                        publisher: signer,
                    }));
                }
            }
            // A delegation or node certificate may be revoked only by its own member, and
            // only once it is known: until then the revocation waits for it.
            let named = match target {
                RevocationTarget::Delegation(id) => Some((id, "delegation")),
                RevocationTarget::Node(id) => Some((id, "node certificate")),
                RevocationTarget::Key(_) => None,
            };
            if let Some((id, expected)) = named {
                match trust.trust_object(&id) {
                    None => return Ok(Some(Missing::TrustObject(id))),
                    Some((found, _)) if found != expected => {
                        return Err(Rejection::RevocationTargetKind {
                            target: id,
                            expected,
                            found,
                        });
                    }
                    Some((kind, owner)) if *owner != r.member => {
                        return Err(Rejection::RevocationOtherMember {
                            target: id,
                            kind,
                            member: r.member.clone(),
                            owner: owner.clone(),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        Object::Record(rec) => {
            check_record_fields(rec, charter)?;
            // A record may supersede only a record of its own member, judged once that
            // record is known: until then it waits for it.
            if let Some(prev) = &rec.supersedes {
                match known.record_meta(prev) {
                    None => return Ok(Some(Missing::Record(*prev))),
                    Some((member, _)) if member != rec.member => {
                        return Err(Rejection::SupersedesOtherMember(*prev));
                    }
                    Some(_) => {}
                }
            }
            match trust.check_publisher(
                &rec.member,
                &signer,
                rec.created,
                Some((&rec.kind, &rec.directions)),
            ) {
                PublisherCheck::Ok(_) => {}
                PublisherCheck::Unknown => {
                    return Ok(Some(Missing::Delegation {
                        member: rec.member.clone(),
                        publisher: signer,
                    }));
                }
                PublisherCheck::Refused(r) => return Err(r),
            }
        }
        Object::Retraction(r) => {
            non_empty("reason", &r.reason)?;
            // Judged against the record it retracts, whoever signed it: until the record is
            // known the retraction waits for it, and it must name the record's own member.
            let author = match known.record_meta(&r.record) {
                None => return Ok(Some(Missing::Record(r.record))),
                Some((owner, _)) if owner != r.member => {
                    return Err(Rejection::RetractionOtherMember {
                        record: r.record,
                        member: r.member.clone(),
                        owner,
                    });
                }
                Some((_, author)) => author,
            };
            if !root_signed(&r.member) {
                if author != signer {
                    return Err(Rejection::RetractionNotByAuthor {
                        record: r.record,
                        signer,
                        member: r.member.clone(),
                    });
                }
                match trust.check_publisher(&r.member, &signer, r.created, None) {
                    PublisherCheck::Ok(_) => {}
                    PublisherCheck::Unknown => {
                        return Ok(Some(Missing::Delegation {
                            member: r.member.clone(),
                            publisher: signer,
                        }));
                    }
                    PublisherCheck::Refused(x) => return Err(x),
                }
            }
        }
    }
    Ok(None)
}

fn invalid(field: &'static str, problem: impl Into<String>) -> Rejection {
    Rejection::InvalidField {
        field,
        problem: problem.into(),
    }
}

/// Longest publisher name of a delegation, or label of a node certificate, in characters. Both
/// live in every node's trust view for good (a name of a mebibyte, hundreds of times, was
/// memory every node held and copied); 256 is ten times the longest ministry name.
pub const MAX_TRUST_NAME_CHARS: usize = 256;

/// A name kept in the trust view: at most [`MAX_TRUST_NAME_CHARS`], no control characters.
fn trust_name(field: &'static str, s: &str) -> Result<(), Rejection> {
    if s.chars().count() > MAX_TRUST_NAME_CHARS {
        return Err(invalid(
            field,
            format!("is longer than {MAX_TRUST_NAME_CHARS} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains a control character"));
    }
    Ok(())
}

fn non_empty(field: &'static str, s: &str) -> Result<(), Rejection> {
    if s.trim().is_empty() {
        Err(invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// A BCP 47 language tag in the common form: a 2-3 letter primary subtag followed by
/// alphanumeric subtags of 1-8 characters (`ru`, `en`, `kk`, `hy`, `be`, `uz-Cyrl`, `sr-Latn-RS`).
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let Some(primary) = parts.next() else {
        return false;
    };
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_alphanumeric()))
}

fn check_lang_map(field: &'static str, m: &crate::object::LangMap) -> Result<(), Rejection> {
    for (tag, text) in m {
        if !is_language_tag(tag) {
            return Err(invalid(
                field,
                format!("{tag:?} is not a BCP 47 language tag"),
            ));
        }
        if text.trim().is_empty() {
            return Err(invalid(field, format!("the {tag} text is empty")));
        }
    }
    Ok(())
}

/// The field rules of a record against a charter's taxonomy (no signature or trust checks).
pub fn check_record_fields(rec: &Record, charter: &Charter) -> Result<(), Rejection> {
    if !charter.taxonomy.has_kind(&rec.kind) {
        return Err(Rejection::UnknownKind(rec.kind.clone()));
    }
    if rec.directions.is_empty() {
        return Err(invalid("directions", "at least one direction is required"));
    }
    let mut seen = BTreeSet::new();
    for d in &rec.directions {
        if !charter.taxonomy.has_direction(d) {
            return Err(Rejection::UnknownDirection(d.clone()));
        }
        if !seen.insert(d) {
            return Err(invalid("directions", format!("{d:?} is listed twice")));
        }
    }
    if !is_language_tag(&rec.lang) {
        return Err(invalid(
            "lang",
            format!("{:?} is not a BCP 47 language tag", rec.lang),
        ));
    }
    check_lang_map("title", &rec.title)?;
    check_lang_map("summary", &rec.summary)?;
    check_lang_map("body", &rec.body)?;
    if !rec.title.contains_key(&rec.lang) {
        return Err(invalid(
            "title",
            format!("no title in the original language {:?}", rec.lang),
        ));
    }
    if !rec.body.contains_key(&rec.lang) {
        return Err(invalid(
            "body",
            format!("no body in the original language {:?}", rec.lang),
        ));
    }
    for t in &rec.tags {
        if t.trim().is_empty() || t.chars().count() > 64 {
            return Err(invalid(
                "tags",
                format!("tag {t:?} must be 1-64 characters"),
            ));
        }
    }
    for l in &rec.links {
        if !(l.url.starts_with("https://") || l.url.starts_with("http://")) || l.url.len() > 2048 {
            return Err(invalid(
                "links",
                format!("{:?} is not an http(s) URL", l.url),
            ));
        }
    }
    let limits = &charter.limits;
    let mut total: u64 = 0;
    for a in &rec.attachments {
        non_empty("attachments.name", &a.name)?;
        if a.name.contains(['/', '\\', '\0']) || a.name.chars().any(char::is_control) {
            return Err(invalid(
                "attachments.name",
                format!("{:?} must be a plain file name", a.name),
            ));
        }
        if !a.media_type.contains('/') {
            return Err(invalid(
                "attachments.media_type",
                format!("{:?} is not a media type", a.media_type),
            ));
        }
        if a.size > limits.max_attachment_bytes {
            return Err(invalid(
                "attachments.size",
                format!(
                    "{} is {} bytes, over the charter's limit of {} per file",
                    a.name, a.size, limits.max_attachment_bytes
                ),
            ));
        }
        total = total.saturating_add(a.size);
    }
    if total > limits.max_record_attachment_bytes {
        return Err(invalid(
            "attachments.size",
            format!(
                "the attachments are {total} bytes in all, over the charter's limit of {} per record",
                limits.max_record_attachment_bytes
            ),
        ));
    }
    for (field, d) in [
        ("effective_from", &rec.effective_from),
        ("effective_until", &rec.effective_until),
    ] {
        if let Some(d) = d
            && parse_date(d).is_none()
        {
            return Err(invalid(field, crate::time::not_a_date(d)));
        }
    }
    if let (Some(a), Some(b)) = (&rec.effective_from, &rec.effective_until)
        && b < a
    {
        return Err(invalid("effective_until", "is before effective_from"));
    }
    Ok(())
}

/// Structural checks every charter version must pass.
fn check_charter_shape(c: &Charter) -> Result<(), Rejection> {
    non_empty("name", &c.name)
        .map_err(|_| Rejection::InvalidCharter("name must not be empty".into()))?;
    if c.members.is_empty() {
        return Err(Rejection::InvalidCharter("no members".into()));
    }
    let mut codes = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for m in &c.members {
        if !codes.insert(&m.code) {
            return Err(Rejection::InvalidCharter(format!(
                "member {} is listed twice",
                m.code
            )));
        }
        if !keys.insert(m.root_key) {
            return Err(Rejection::InvalidCharter(format!(
                "root key {} is listed for two members (each key counts once)",
                m.root_key
            )));
        }
        if m.name.is_empty() {
            return Err(Rejection::InvalidCharter(format!(
                "member {} has no name",
                m.code
            )));
        }
    }
    if c.threshold == 0 || c.threshold > c.members.len() as u64 {
        return Err(Rejection::InvalidCharter(format!(
            "threshold {} must be between 1 and the number of members ({})",
            c.threshold,
            c.members.len()
        )));
    }
    c.taxonomy.check().map_err(Rejection::InvalidCharter)?;
    for e in c.taxonomy.directions.iter().chain(&c.taxonomy.kinds) {
        if !is_code(&e.code) {
            return Err(Rejection::InvalidCharter(format!(
                "bad taxonomy code {:?}",
                e.code
            )));
        }
    }
    let l = &c.limits;
    if l.max_object_bytes < 1024 || l.max_depth < 4 || l.max_depth > 64 || l.max_list_len < 16 {
        return Err(Rejection::InvalidCharter(
            "limits too small or too deep (need max_object_bytes ≥ 1024, 4 ≤ max_depth ≤ 64, max_list_len ≥ 16)".into(),
        ));
    }
    Ok(())
}

fn check_amendment(c: &Charter, signed: &SignedObject, trust: &TrustView) -> Result<(), Rejection> {
    let cur = trust.charter();
    let history = trust.charter_history();
    let current_version = history.len() as u64;
    if c.version <= current_version {
        let known = usize::try_from(c.version)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .and_then(|i| history.get(i));
        return if known == Some(&signed.id()) {
            Ok(())
        } else {
            Err(Rejection::CharterRollback {
                found: c.version,
                current: current_version,
            })
        };
    }
    if c.version != current_version + 1 {
        return Err(Rejection::CharterVersionSkip {
            found: c.version,
            expected: current_version + 1,
        });
    }
    if c.previous != Some(trust.charter_id()) {
        return Err(Rejection::CharterPreviousMismatch {
            expected: trust.charter_id(),
            found: c
                .previous
                .map(|p| p.to_string())
                .unwrap_or_else(|| "nothing".into()),
        });
    }
    check_charter_shape(c)?;
    c.taxonomy
        .check_extends(&cur.taxonomy)
        .map_err(Rejection::InvalidCharter)?;
    if c.created < cur.created {
        return Err(Rejection::InvalidCharter(
            "amendment is older than the charter it amends".into(),
        ));
    }
    let signers: BTreeSet<PublicKey> = signed.signatures().iter().map(|(k, _)| *k).collect();
    for k in &signers {
        if cur.member_by_root(k).is_none() && c.member_by_root(k).is_none() {
            return Err(Rejection::ForeignCharterSigner(*k));
        }
    }
    let have = cur
        .members
        .iter()
        .filter(|m| signers.contains(&m.root_key))
        .count();
    if (have as u64) < cur.threshold {
        return Err(Rejection::ThresholdNotMet {
            have,
            need: cur.threshold,
            version: current_version,
        });
    }
    for m in &c.members {
        let is_new = cur.member_by_root(&m.root_key).is_none();
        if is_new && !signers.contains(&m.root_key) {
            return Err(Rejection::NewKeyUnsigned {
                member: m.code.clone(),
                key: m.root_key,
            });
        }
    }
    Ok(())
}

/// The genesis rules: version 1 without `federation`/`previous`, structurally valid, signed
/// validly by every founding member and by nobody else.
fn check_genesis(signed: &SignedObject, c: &Charter) -> Result<(), Rejection> {
    if c.version != 1 || c.federation.is_some() || c.previous.is_some() {
        return Err(Rejection::InvalidCharter(
            "a genesis charter has version 1 and no federation or previous field".into(),
        ));
    }
    check_charter_shape(c)?;
    if let Some(k) = signed.bad_signers().first() {
        return Err(Rejection::BadSignature(*k));
    }
    for (k, _) in signed.signatures() {
        if c.member_by_root(k).is_none() {
            return Err(Rejection::ForeignCharterSigner(*k));
        }
    }
    for m in &c.members {
        if !signed.signatures().iter().any(|(k, _)| *k == m.root_key) {
            return Err(Rejection::GenesisUnsigned(m.code.clone()));
        }
    }
    Ok(())
}

impl TrustView {
    /// Builds the trust view from the genesis charter, the federation's trust anchor. The
    /// genesis must be a version-1 charter without `federation`/`previous`, validly signed by
    /// every founding member and by nobody else.
    pub fn from_genesis(bytes: &[u8]) -> Result<(TrustView, Verified<Object>), Rejection> {
        // A draft without signatures decodes too, so that the answer names who must sign.
        let limits = Limits::default();
        let signed = SignedObject::decode_draft(bytes, limits.max_bytes(), limits.scan())?;
        let obj = Object::decode_body(signed.body(), &limits)?;
        let Object::Charter(c) = &obj else {
            return Err(Rejection::InvalidCharter(format!(
                "expected a charter, found a {}",
                obj.object_type()
            )));
        };
        check_genesis(&signed, c)?;
        let view = TrustView::new(signed.id(), c.clone());
        Ok((view, Verified::new(obj, signed)))
    }

    /// Checks a charter's structure (members, threshold, taxonomy, limits) without any
    /// signature: what `accord charter new` and `show` use before anyone has signed.
    pub fn check_charter(c: &Charter) -> Result<(), Rejection> {
        check_charter_shape(c)
    }
}
