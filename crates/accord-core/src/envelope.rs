//! The signed envelope: `[version, body_bytes, [[public_key, signature], ...]]`.
//!
//! The signing input is [`SIGNING_DOMAIN`] followed by `body_bytes`; the object id is
//! SHA-256 of `body_bytes`. Verifiers check the bytes they received and never re-encode the
//! body. The envelope itself must be in its one canonical encoding (definite lengths, shortest
//! heads), so that an object has exactly one byte form on the wire and in storage.

use ciborium::Value;
use serde_bytes::Bytes;

use crate::cbor::{self, ScanLimits};
use crate::error::DecodeError;
use crate::id::ObjectId;
use crate::keys::{PublicKey, SecretKey, Signature};

/// The envelope version this implementation writes and accepts.
pub const ENVELOPE_VERSION: u64 = 1;

/// Domain-separation prefix of every signing input.
pub const SIGNING_DOMAIN: &[u8] = b"accord/signed-object/v1\0";

/// A decoded envelope whose structure is sound. Signatures are *not* checked here: that is
/// the job of [`crate::validate`], the only way to obtain a [`crate::Verified`] object.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedObject {
    bytes: Vec<u8>,
    body: Vec<u8>,
    signatures: Vec<(PublicKey, Signature)>,
    id: ObjectId,
}

impl std::fmt::Debug for SignedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedObject")
            .field("id", &self.id)
            .field("size", &self.bytes.len())
            .field(
                "signers",
                &self.signatures.iter().map(|s| s.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The body bytes of an envelope, found without decoding anything else (no key or signature
/// is parsed): for computing an object id where only the id is needed (gossip message ids).
/// `None` unless `bytes` starts as a version-1 envelope does: a 3-element array, the version
/// and a definite-length byte string. The rest is not checked: validation does that.
pub fn body_of(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(&[0x83, ENVELOPE_VERSION as u8])?;
    let (&head, rest) = rest.split_first()?;
    if head >> 5 != 2 {
        return None;
    }
    let (len, rest) = match head & 0x1f {
        n @ 0..=23 => (u64::from(n), rest),
        24 => (u64::from(*rest.first()?), rest.get(1..)?),
        25 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            rest.get(2..)?,
        ),
        26 => (
            u64::from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)),
            rest.get(4..)?,
        ),
        27 => (
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?),
            rest.get(8..)?,
        ),
        _ => return None,
    };
    rest.get(..usize::try_from(len).ok()?)
}

/// The bytes a signer signs: the domain prefix followed by the body bytes.
pub fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
    v.extend_from_slice(SIGNING_DOMAIN);
    v.extend_from_slice(body);
    v
}

fn encode(body: &[u8], signatures: &[(PublicKey, Signature)]) -> Vec<u8> {
    let sigs: Vec<(&Bytes, &Bytes)> = signatures
        .iter()
        .map(|(k, s)| (Bytes::new(k.as_bytes()), Bytes::new(&s.0)))
        .collect();
    let mut out = Vec::with_capacity(body.len() + 16 + signatures.len() * 100);
    // Writing into a Vec cannot fail, and every part is a plain integer, byte string or array.
    if ciborium::into_writer(&(ENVELOPE_VERSION, Bytes::new(body), sigs), &mut out).is_err() {
        out.clear();
    }
    out
}

impl SignedObject {
    /// Signs `body` (the CBOR encoding of an object body) with one key.
    pub fn sign(body: Vec<u8>, key: &SecretKey) -> Self {
        let sig = key.sign(&signing_input(&body));
        let signatures = vec![(key.public_key(), sig)];
        let bytes = encode(&body, &signatures);
        let id = ObjectId::of_body(&body);
        SignedObject {
            bytes,
            body,
            signatures,
            id,
        }
    }

    /// Adds a signature by `key` (charter co-signing). The body and therefore the id do not
    /// change. Signing twice with the same key replaces nothing and returns `false`.
    pub fn add_signature(&mut self, key: &SecretKey) -> bool {
        let pk = key.public_key();
        if self.signatures.iter().any(|(k, _)| *k == pk) {
            return false;
        }
        self.signatures
            .push((pk, key.sign(&signing_input(&self.body))));
        self.bytes = encode(&self.body, &self.signatures);
        true
    }

    /// Decodes and structurally checks an envelope; `max_bytes`, `max_depth` and
    /// `max_entries` come from the federation's limits.
    pub fn decode(bytes: &[u8], max_bytes: usize, scan: ScanLimits) -> Result<Self, DecodeError> {
        Self::decode_inner(bytes, max_bytes, scan, false)
    }

    /// An envelope with no signatures yet: what `accord charter new` writes before the
    /// founding members sign. Validation never accepts one.
    pub fn unsigned(body: Vec<u8>) -> Self {
        let bytes = encode(&body, &[]);
        let id = ObjectId::of_body(&body);
        SignedObject {
            bytes,
            body,
            signatures: vec![],
            id,
        }
    }

    /// Like [`Self::decode`], but also accepts an envelope without signatures (for charter
    /// drafts that are still being signed).
    pub fn decode_draft(
        bytes: &[u8],
        max_bytes: usize,
        scan: ScanLimits,
    ) -> Result<Self, DecodeError> {
        Self::decode_inner(bytes, max_bytes, scan, true)
    }

    fn decode_inner(
        bytes: &[u8],
        max_bytes: usize,
        scan: ScanLimits,
        allow_unsigned: bool,
    ) -> Result<Self, DecodeError> {
        if bytes.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                limit: max_bytes,
            });
        }
        cbor::check_single(bytes, scan)?;
        let value: Value =
            ciborium::de::from_reader_with_recursion_limit(bytes, scan.max_depth + 2)
                .map_err(|e| DecodeError::Cbor(e.to_string()))?;
        let Value::Array(parts) = value else {
            return Err(DecodeError::Envelope("not a CBOR array".into()));
        };
        let [version, body, sigs] = <[Value; 3]>::try_from(parts).map_err(|p| {
            DecodeError::Envelope(format!("expected 3 elements, found {}", p.len()))
        })?;
        let version = match version {
            Value::Integer(i) => {
                u64::try_from(i).map_err(|_| DecodeError::Envelope("negative version".into()))?
            }
            _ => return Err(DecodeError::Envelope("version is not an integer".into())),
        };
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::Version(version));
        }
        let Value::Bytes(body) = body else {
            return Err(DecodeError::Envelope("body is not a byte string".into()));
        };
        let Value::Array(sigs) = sigs else {
            return Err(DecodeError::Envelope("signatures are not an array".into()));
        };
        if sigs.is_empty() && !allow_unsigned {
            return Err(DecodeError::Envelope("no signatures".into()));
        }
        let mut signatures = Vec::with_capacity(sigs.len());
        for (i, s) in sigs.into_iter().enumerate() {
            let pair = match s {
                Value::Array(p) if p.len() == 2 => p,
                _ => {
                    return Err(DecodeError::Envelope(format!(
                        "signature {i} is not a [key, signature] pair"
                    )));
                }
            };
            let (k, sig) = match (&pair[0], &pair[1]) {
                (Value::Bytes(k), Value::Bytes(s)) => (k, s),
                _ => {
                    return Err(DecodeError::Envelope(format!(
                        "signature {i}: key and signature must be byte strings"
                    )));
                }
            };
            let k: [u8; 32] = k.as_slice().try_into().map_err(|_| {
                DecodeError::Envelope(format!(
                    "signature {i}: public key is {} bytes, expected 32",
                    k.len()
                ))
            })?;
            let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| {
                DecodeError::Envelope(format!(
                    "signature {i}: signature is {} bytes, expected 64",
                    sig.len()
                ))
            })?;
            let pk = PublicKey::from_bytes(k)
                .map_err(|e| DecodeError::Envelope(format!("signature {i}: {e}")))?;
            if signatures.iter().any(|(other, _)| *other == pk) {
                return Err(DecodeError::Envelope(format!(
                    "signature {i}: key {pk} signs twice"
                )));
            }
            signatures.push((pk, Signature(sig)));
        }
        let canonical = encode(&body, &signatures);
        if canonical != bytes {
            return Err(DecodeError::Envelope(
                "not in canonical encoding (definite lengths, shortest heads)".into(),
            ));
        }
        let id = ObjectId::of_body(&body);
        Ok(SignedObject {
            bytes: canonical,
            body,
            signatures,
            id,
        })
    }

    /// The complete envelope bytes, as stored and sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The signed body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    pub fn signatures(&self) -> &[(PublicKey, Signature)] {
        &self.signatures
    }

    /// Checks every signature with `verify_strict`; returns the keys whose signature is bad.
    pub fn bad_signers(&self) -> Vec<PublicKey> {
        let input = signing_input(&self.body);
        self.signatures
            .iter()
            .filter(|(k, s)| !k.verify_strict(&input, s))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Like [`Self::bad_signers`], checking all signatures in one batch first.
    pub fn bad_signers_batch(&self) -> Vec<PublicKey> {
        let input = signing_input(&self.body);
        let items: Vec<(PublicKey, &[u8], Signature)> = self
            .signatures
            .iter()
            .map(|(k, s)| (*k, input.as_slice(), *s))
            .collect();
        crate::keys::verify_many(&items)
            .into_iter()
            .zip(&self.signatures)
            .filter(|(ok, _)| !ok)
            .map(|(_, (k, _))| *k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: ScanLimits = ScanLimits {
        max_depth: 16,
        max_entries: 1000,
    };

    #[test]
    fn body_of_finds_the_body_without_decoding() {
        let key = SecretKey::from_seed([9; 32]);
        for len in [0usize, 5, 23, 24, 255, 256, 70_000] {
            let body = vec![0xa0u8; len];
            let s = SignedObject::sign(body.clone(), &key);
            assert_eq!(body_of(s.as_bytes()), Some(body.as_slice()), "{len}");
        }
        assert_eq!(body_of(&[]), None);
        assert_eq!(body_of(&[0x83, 0x02, 0x41, 0]), None, "another version");
        assert_eq!(body_of(&[0x83, 0x01, 0x45, 0]), None, "truncated body");
        assert_eq!(body_of(&[0x83, 0x01, 0x5f]), None, "indefinite length");
    }

    #[test]
    fn sign_decode_roundtrip() {
        let k = SecretKey::from_seed([3; 32]);
        let obj = SignedObject::sign(vec![0xa0], &k);
        let back = SignedObject::decode(obj.as_bytes(), 1 << 20, L);
        assert_eq!(back.as_ref().ok(), Some(&obj));
        assert!(obj.bad_signers().is_empty());
        assert_eq!(obj.id(), ObjectId::of_body(&[0xa0]));
    }

    #[test]
    fn add_signature_keeps_id() {
        let mut obj = SignedObject::sign(vec![0xa0], &SecretKey::from_seed([3; 32]));
        let id = obj.id();
        assert!(obj.add_signature(&SecretKey::from_seed([4; 32])));
        assert!(!obj.add_signature(&SecretKey::from_seed([4; 32])));
        assert_eq!(obj.id(), id);
        assert_eq!(obj.signatures().len(), 2);
        assert!(obj.bad_signers_batch().is_empty());
    }

    #[test]
    fn envelope_errors() {
        let obj = SignedObject::sign(vec![0xa0], &SecretKey::from_seed([3; 32]));
        assert!(matches!(
            SignedObject::decode(obj.as_bytes(), 10, L),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            SignedObject::decode(&[0x01], 100, L),
            Err(DecodeError::Envelope(_))
        ));
        assert!(matches!(
            SignedObject::decode(&[0x83, 0x02, 0x40, 0x80], 100, L),
            Err(DecodeError::Version(2))
        ));
        assert!(matches!(
            SignedObject::decode(&[0x83, 0x01, 0x40, 0x80], 100, L),
            Err(DecodeError::Envelope(_))
        ));
        // version written with a non-minimal head (0x18 0x01) is not canonical
        let mut b = obj.as_bytes().to_vec();
        b.splice(1..2, [0x18, 0x01]);
        assert!(matches!(
            SignedObject::decode(&b, 1000, L),
            Err(DecodeError::Envelope(_))
        ));
    }
}
