//! Object bodies: the six types that travel in a signed envelope.
//!
//! Every body is a CBOR map whose first entries are `type`, `federation` (absent only in a
//! genesis charter) and `created`, followed by the type's own fields in the order declared
//! here. Fields this version does not know are ignored when decoding and kept in the stored
//! bytes, so they are relayed unchanged (the stored bytes are the signed bytes).

use std::collections::BTreeMap;
use std::fmt;

use ciborium::Value;
use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::id::ObjectId;
use crate::keys::PublicKey;
use crate::taxonomy::Taxonomy;
use crate::time::Timestamp;

/// Text per BCP 47 language tag.
pub type LangMap = BTreeMap<String, String>;

/// The type tag of an object body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    Charter,
    Delegation,
    Node,
    Revocation,
    Record,
    Retraction,
}

impl ObjectType {
    pub const ALL: [ObjectType; 6] = [
        ObjectType::Charter,
        ObjectType::Delegation,
        ObjectType::Node,
        ObjectType::Revocation,
        ObjectType::Record,
        ObjectType::Retraction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Charter => "charter",
            ObjectType::Delegation => "delegation",
            ObjectType::Node => "node",
            ObjectType::Revocation => "revocation",
            ObjectType::Record => "record",
            ObjectType::Retraction => "retraction",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Stable one-byte code used by storage indexes.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_code(c: u8) -> Option<Self> {
        Self::ALL.get(usize::from(c).checked_sub(1)?).copied()
    }

    /// Trust objects change the trust view when accepted.
    pub fn is_trust(self) -> bool {
        !matches!(self, ObjectType::Record | ObjectType::Retraction)
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ISO 3166-1 alpha-2 member code: exactly two ASCII capital letters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemberCode(String);

impl MemberCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MemberCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 2 && s.bytes().all(|c| c.is_ascii_uppercase()) {
            Ok(MemberCode(s))
        } else {
            // The two mistakes that look right on screen: a Cyrillic letter typed for its Latin
            // twin (К for K), and lower case.
            let hint = if let Some(c) = s.chars().find(|c| !c.is_ascii()) {
                format!(
                    "; {c:?} (U+{:04X}) is not a Latin letter: type the code with the Latin keyboard layout",
                    c as u32
                )
            } else if s.len() == 2 && s.bytes().all(|c| c.is_ascii_alphabetic()) {
                format!("; write it in capitals: {}", s.to_ascii_uppercase())
            } else {
                String::new()
            };
            Err(format!(
                "member code {s:?} must be two capital Latin letters (ISO 3166-1 alpha-2){hint}"
            ))
        }
    }
}

impl std::str::FromStr for MemberCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        MemberCode::try_from(s.to_string())
    }
}

impl From<MemberCode> for String {
    fn from(m: MemberCode) -> String {
        m.0
    }
}

impl fmt::Display for MemberCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Protocol limits, carried by the charter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest envelope, in bytes.
    pub max_object_bytes: u64,
    /// Deepest CBOR nesting inside an envelope.
    pub max_depth: u64,
    /// Most entries in any CBOR array or map.
    pub max_list_len: u64,
    /// How far in the future `created` may lie, in milliseconds.
    pub max_future_skew_ms: u64,
    /// Largest attachment a record may name, in bytes (protocol 1.2; *opt*, default 50 MiB).
    #[serde(
        default = "default_max_attachment_bytes",
        skip_serializing_if = "is_default_max_attachment_bytes"
    )]
    pub max_attachment_bytes: u64,
    /// Most bytes of attachments one record may name in all (protocol 1.2; *opt*, default
    /// 200 MiB).
    #[serde(
        default = "default_max_record_attachment_bytes",
        skip_serializing_if = "is_default_max_record_attachment_bytes"
    )]
    pub max_record_attachment_bytes: u64,
    /// The 1.x minor version whose refusal rules the federation has adopted (protocol 1.3;
    /// *opt*, default 2): a rule that refuses what older nodes accept applies only from the
    /// charter that raises this, so that nodes of every version agree on what is stored
    /// (PROTOCOL.md §10). 3 adds the bound on trust names and the standing a key needs to
    /// revoke itself.
    #[serde(default = "default_rules", skip_serializing_if = "is_default_rules")]
    pub rules: u64,
}

/// [`Limits::rules`] of a charter that says nothing.
pub const DEFAULT_RULES: u64 = 2;
/// [`Limits::rules`] from which the 1.3 refusals apply.
pub const RULES_1_3: u64 = 3;
/// The newest [`Limits::rules`] this release implements. A charter that adopts newer rules is
/// valid (a newer release wrote it), but this release judges objects by its own newest rules
/// only, and may store what upgraded nodes refuse: the node says it must be upgraded.
pub const MAX_RULES: u64 = RULES_1_3;

fn default_rules() -> u64 {
    DEFAULT_RULES
}
fn is_default_rules(v: &u64) -> bool {
    *v == DEFAULT_RULES
}

const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 50 << 20;
const DEFAULT_MAX_RECORD_ATTACHMENT_BYTES: u64 = 200 << 20;

fn default_max_attachment_bytes() -> u64 {
    DEFAULT_MAX_ATTACHMENT_BYTES
}
fn default_max_record_attachment_bytes() -> u64 {
    DEFAULT_MAX_RECORD_ATTACHMENT_BYTES
}
fn is_default_max_attachment_bytes(v: &u64) -> bool {
    *v == DEFAULT_MAX_ATTACHMENT_BYTES
}
fn is_default_max_record_attachment_bytes(v: &u64) -> bool {
    *v == DEFAULT_MAX_RECORD_ATTACHMENT_BYTES
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_bytes: 1 << 20,
            max_depth: 16,
            max_list_len: 1024,
            max_future_skew_ms: 10 * 60 * 1000,
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            max_record_attachment_bytes: DEFAULT_MAX_RECORD_ATTACHMENT_BYTES,
            rules: DEFAULT_RULES,
        }
    }
}

impl Limits {
    pub fn scan(&self) -> crate::cbor::ScanLimits {
        crate::cbor::ScanLimits {
            max_depth: usize::try_from(self.max_depth)
                .unwrap_or(usize::MAX)
                .min(64),
            max_entries: self.max_list_len,
        }
    }

    pub fn max_bytes(&self) -> usize {
        usize::try_from(self.max_object_bytes).unwrap_or(usize::MAX)
    }

    /// The bounds an object already stored is read with: these limits widened to the
    /// protocol's (the object log's largest item, the deepest nesting a charter may set, any
    /// number of entries — scanning costs the bytes present). A stored object was judged when
    /// it was accepted, under the limits in force then; an amendment that lowers one since
    /// must not make it unreadable (the node could not start, its records could not be shown,
    /// and `check --repair` would drop them from the indexes).
    pub fn for_stored(&self) -> Limits {
        Limits {
            max_object_bytes: crate::cbor::MAX_SEQUENCE_ITEM as u64,
            max_depth: crate::cbor::SEQUENCE_SCAN.max_depth as u64,
            max_list_len: u64::MAX,
            ..*self
        }
    }
}

/// A federation member in a charter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub code: MemberCode,
    /// The member's name by language tag.
    pub name: LangMap,
    pub root_key: PublicKey,
}

/// The federation's constitution. Version 1 is the genesis: its id is the federation id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charter {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<ObjectId>,
    pub created: Timestamp,
    pub name: String,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<ObjectId>,
    pub members: Vec<MemberEntry>,
    pub threshold: u64,
    pub taxonomy: Taxonomy,
    pub limits: Limits,
}

impl Charter {
    pub fn member(&self, code: &MemberCode) -> Option<&MemberEntry> {
        self.members.iter().find(|m| &m.code == code)
    }

    pub fn member_by_root(&self, key: &PublicKey) -> Option<&MemberEntry> {
        self.members.iter().find(|m| &m.root_key == key)
    }
}

/// A member root key lets a publisher key publish for the member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    pub federation: ObjectId,
    pub created: Timestamp,
    pub member: MemberCode,
    pub publisher: PublicKey,
    /// Human name of the publisher, e.g. "Ministry of Digital Development".
    pub name: String,
    /// Kinds the publisher may use; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// Directions the publisher may use; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directions: Option<Vec<String>>,
    pub not_before: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Timestamp>,
}

/// A member root key certifies a libp2p node (its ed25519 identity key) as the member's node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCert {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    pub federation: ObjectId,
    pub created: Timestamp,
    pub member: MemberCode,
    pub node_key: PublicKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What a revocation revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// A delegation, by object id.
    Delegation,
    /// A node certificate, by object id.
    Node,
    /// A publisher or node key: every delegation and node certificate of it for the member.
    Key,
}

/// The decoded target of a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RevocationTarget {
    Delegation(ObjectId),
    Node(ObjectId),
    Key(PublicKey),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    pub federation: ObjectId,
    pub created: Timestamp,
    pub member: MemberCode,
    pub target_type: TargetType,
    /// An object id, or the 32 bytes of a public key when `target_type` is `key`.
    pub target: ObjectId,
    /// From when the target no longer counts (objects created at or after it are refused).
    pub effective: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Revocation {
    /// `None` when a key target is not a valid public key.
    pub fn target(&self) -> Option<RevocationTarget> {
        Some(match self.target_type {
            TargetType::Delegation => RevocationTarget::Delegation(self.target),
            TargetType::Node => RevocationTarget::Node(self.target),
            TargetType::Key => RevocationTarget::Key(PublicKey::from_bytes(self.target.0).ok()?),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// An attachment, referenced by hash (the content travels separately, docs/PROTOCOL.md §12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub media_type: String,
    pub size: u64,
    /// SHA-256 of the whole file: its name in every blob store.
    pub sha256: ObjectId,
    /// The hash of the file's chunk list (protocol 1.2, *opt*; see
    /// [`crate::attachment::chunk_list_hash`]): with it a receiver checks every chunk as it
    /// arrives; without it, only the whole file at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<ObjectId>,
}

/// An experience-sharing record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    pub federation: ObjectId,
    pub created: Timestamp,
    pub member: MemberCode,
    pub kind: String,
    pub directions: Vec<String>,
    /// The original language (BCP 47); `title` and `body` must have it.
    pub lang: String,
    pub title: LangMap,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub summary: LangMap,
    pub body: LangMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// `YYYY-MM-DD`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<String>,
    /// `YYYY-MM-DD`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_until: Option<String>,
    /// The date of the source document (adopted or published), `YYYY-MM-DD` (protocol 1.1).
    /// Read leniently: a value that is not such a date is kept in the signed bytes but read as
    /// absent, so a 1.1 node accepts every record a 1.0 node accepts (PROTOCOL.md §10).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_date"
    )]
    pub date: Option<String>,
}

/// `Some(date)` for a `YYYY-MM-DD` text, `None` for anything else (any CBOR value).
fn lenient_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Text(t) if crate::time::parse_date(&t).is_some() && t.len() == 10 => Some(t),
        _ => None,
    })
}

impl Record {
    /// Languages present in title, summary or body, sorted.
    pub fn languages(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .title
            .keys()
            .chain(self.summary.keys())
            .chain(self.body.keys())
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The title in `lang`, else in the original language.
    pub fn title_in(&self, lang: &str) -> &str {
        self.title
            .get(lang)
            .or_else(|| self.title.get(&self.lang))
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// Withdraws a record, with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retraction {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    pub federation: ObjectId,
    pub created: Timestamp,
    pub member: MemberCode,
    pub record: ObjectId,
    pub reason: String,
}

/// A decoded body of any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    Charter(Charter),
    Delegation(Delegation),
    Node(NodeCert),
    Revocation(Revocation),
    Record(Record),
    Retraction(Retraction),
}

/// Refuses a body with a map that has a key given twice, at any depth (section 4: "MUST
/// refuse a duplicate key in any map"; applied under the 1.3 rules, `limits.rules` ≥ 3). A
/// decoder into a map type keeps one of the values silently, and another implementation may
/// keep the other: one signed object would read differently on two nodes. Objects stored
/// before are read as they always were.
fn unique_keys_of(value: &Value) -> Result<(), crate::Rejection> {
    unique_keys(value).map_err(|e| crate::Rejection::InvalidField {
        field: "map",
        problem: match e {
            DecodeError::Body(m) => m,
            other => other.to_string(),
        },
    })
}

fn unique_keys(v: &Value) -> Result<(), DecodeError> {
    match v {
        Value::Map(entries) => {
            let mut texts: std::collections::HashSet<&str> =
                std::collections::HashSet::with_capacity(entries.len());
            let mut others: Vec<&Value> = Vec::new();
            for (k, _) in entries {
                let fresh = match k.as_text() {
                    Some(t) => texts.insert(t),
                    None if others.contains(&k) => false,
                    None => {
                        others.push(k);
                        true
                    }
                };
                if !fresh {
                    return Err(DecodeError::Body(match k.as_text() {
                        Some(t) => format!("the key {t:?} appears twice in one map"),
                        None => "a key appears twice in one map".into(),
                    }));
                }
            }
            for (k, x) in entries {
                unique_keys(k)?;
                unique_keys(x)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(unique_keys),
        Value::Tag(_, inner) => unique_keys(inner),
        _ => Ok(()),
    }
}

impl Object {
    pub fn object_type(&self) -> ObjectType {
        match self {
            Object::Charter(_) => ObjectType::Charter,
            Object::Delegation(_) => ObjectType::Delegation,
            Object::Node(_) => ObjectType::Node,
            Object::Revocation(_) => ObjectType::Revocation,
            Object::Record(_) => ObjectType::Record,
            Object::Retraction(_) => ObjectType::Retraction,
        }
    }

    pub fn created(&self) -> Timestamp {
        match self {
            Object::Charter(o) => o.created,
            Object::Delegation(o) => o.created,
            Object::Node(o) => o.created,
            Object::Revocation(o) => o.created,
            Object::Record(o) => o.created,
            Object::Retraction(o) => o.created,
        }
    }

    /// The federation the object belongs to; `None` for a genesis charter.
    pub fn federation(&self) -> Option<ObjectId> {
        match self {
            Object::Charter(o) => o.federation,
            Object::Delegation(o) => Some(o.federation),
            Object::Node(o) => Some(o.federation),
            Object::Revocation(o) => Some(o.federation),
            Object::Record(o) => Some(o.federation),
            Object::Retraction(o) => Some(o.federation),
        }
    }

    /// The member the object speaks for (none for charters).
    pub fn member(&self) -> Option<&MemberCode> {
        match self {
            Object::Charter(_) => None,
            Object::Delegation(o) => Some(&o.member),
            Object::Node(o) => Some(&o.member),
            Object::Revocation(o) => Some(&o.member),
            Object::Record(o) => Some(&o.member),
            Object::Retraction(o) => Some(&o.member),
        }
    }

    /// Decodes body bytes into a typed object. The body must be exactly one CBOR item within
    /// the federation's depth and list limits (checked by the scanner before decoding).
    pub fn decode_body(body: &[u8], limits: &Limits) -> Result<Object, DecodeError> {
        Object::of_value(&Object::body_value(body, limits)?)
    }

    /// [`Object::decode_body`], and what [`unique_keys_of`] says of the same body, read from
    /// the one decoding: whether it applies depends on the rules in force when the object was
    /// created, judged later (the node decodes on a pool of workers and judges on one thread,
    /// which so never decodes a body a second time).
    pub(crate) fn decode_body_and_keys(
        body: &[u8],
        limits: &Limits,
    ) -> Result<(Object, Result<(), crate::Rejection>), DecodeError> {
        let value = Object::body_value(body, limits)?;
        let object = Object::of_value(&value)?;
        Ok((object, unique_keys_of(&value)))
    }

    /// A body's CBOR: one item, within the scan limits.
    fn body_value(body: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
        crate::cbor::check_single(body, limits.scan()).map_err(|e| match e {
            DecodeError::Cbor(m) => DecodeError::Body(m),
            DecodeError::TrailingBytes(n) => {
                DecodeError::Body(format!("{n} bytes after the body's CBOR map"))
            }
            other => other,
        })?;
        ciborium::de::from_reader_with_recursion_limit(body, limits.scan().max_depth + 2)
            .map_err(|e| DecodeError::Body(e.to_string()))
    }

    /// The object a body's CBOR holds.
    fn of_value(value: &Value) -> Result<Object, DecodeError> {
        let Value::Map(entries) = &value else {
            return Err(DecodeError::Body("not a CBOR map".into()));
        };
        let ty = entries
            .iter()
            .find(|(k, _)| k.as_text() == Some("type"))
            .map(|(_, v)| v)
            .ok_or_else(|| DecodeError::Body("missing field \"type\"".into()))?;
        let ty = ty
            .as_text()
            .ok_or_else(|| DecodeError::Body("field \"type\" is not text".into()))?;
        let t = ObjectType::parse(ty).ok_or_else(|| DecodeError::UnknownType(ty.to_string()))?;
        let body_err = |e: ciborium::value::Error| DecodeError::Body(format!("{t}: {e}"));
        Ok(match t {
            ObjectType::Charter => Object::Charter(value.deserialized().map_err(body_err)?),
            ObjectType::Delegation => Object::Delegation(value.deserialized().map_err(body_err)?),
            ObjectType::Node => Object::Node(value.deserialized().map_err(body_err)?),
            ObjectType::Revocation => Object::Revocation(value.deserialized().map_err(body_err)?),
            ObjectType::Record => Object::Record(value.deserialized().map_err(body_err)?),
            ObjectType::Retraction => Object::Retraction(value.deserialized().map_err(body_err)?),
        })
    }

    /// Encodes the body to CBOR (fields in declaration order).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let r = match self {
            Object::Charter(o) => ciborium::into_writer(o, &mut out),
            Object::Delegation(o) => ciborium::into_writer(o, &mut out),
            Object::Node(o) => ciborium::into_writer(o, &mut out),
            Object::Revocation(o) => ciborium::into_writer(o, &mut out),
            Object::Record(o) => ciborium::into_writer(o, &mut out),
            Object::Retraction(o) => ciborium::into_writer(o, &mut out),
        };
        // Serialising plain structs of strings, integers and byte strings into a Vec cannot fail.
        debug_assert!(r.is_ok());
        out
    }
}

/// Converts any CBOR value to JSON for display: byte strings become lowercase hex, and keys
/// that are not text are shown in their debug form.
pub fn cbor_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Integer(i) => {
            let n: i128 = (*i).into();
            if let Ok(u) = u64::try_from(n) {
                J::from(u)
            } else if let Ok(s) = i64::try_from(n) {
                J::from(s)
            } else {
                J::String(n.to_string())
            }
        }
        Value::Bytes(b) => J::String(hex::encode(b)),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or(J::Null),
        Value::Text(s) => J::String(s.clone()),
        Value::Bool(b) => J::Bool(*b),
        Value::Null => J::Null,
        Value::Tag(t, inner) => serde_json::json!({ "tag": t, "value": cbor_to_json(inner) }),
        Value::Array(a) => J::Array(a.iter().map(cbor_to_json).collect()),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_text()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("{k:?}")),
                        cbor_to_json(v),
                    )
                })
                .collect(),
        ),
        _ => J::Null,
    }
}

impl Object {
    /// Encodes the body and signs it with one key.
    pub fn sign(&self, key: &crate::keys::SecretKey) -> crate::envelope::SignedObject {
        crate::envelope::SignedObject::sign(self.encode_body(), key)
    }
}

macro_rules! object_from {
    ($($v:ident($t:ty)),*) => {$(
        impl From<$t> for Object {
            fn from(o: $t) -> Object {
                Object::$v(o)
            }
        }
    )*};
}
object_from!(
    Charter(Charter),
    Delegation(Delegation),
    Node(NodeCert),
    Revocation(Revocation),
    Record(Record),
    Retraction(Retraction)
);

/// Decodes body bytes generically (any CBOR, unknown fields included) and shows them as JSON.
pub fn body_json(body: &[u8]) -> Result<serde_json::Value, DecodeError> {
    let v: Value = ciborium::de::from_reader_with_recursion_limit(body, 66)
        .map_err(|e| DecodeError::Body(e.to_string()))?;
    Ok(cbor_to_json(&v))
}
