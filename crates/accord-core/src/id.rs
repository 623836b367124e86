//! Object identifiers: SHA-256 of an object's signed body bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::KeyError;

/// The id of a signed object: SHA-256 of its `body_bytes`, shown as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// The id of the given body bytes.
    pub fn of_body(body_bytes: &[u8]) -> Self {
        ObjectId(Sha256::digest(body_bytes).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses from a 32-byte slice.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(ObjectId)
    }

    /// A short form (first 12 hex characters) for logs and tables.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self)
    }
}

impl FromStr for ObjectId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s.trim())
            .map(ObjectId)
            .ok_or_else(|| KeyError::BadId(s.to_string()))
    }
}

pub(crate) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Serde helper shared by ids and keys: byte string in binary formats (CBOR), text elsewhere.
pub(crate) mod bytes32 {
    use super::*;
    use serde::de::{self, Visitor};

    pub fn serialize<S: Serializer>(
        b: &[u8; 32],
        text: impl FnOnce() -> String,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&text())
        } else {
            s.serialize_bytes(b)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
        parse_text: fn(&str) -> Option<[u8; 32]>,
        what: &'static str,
    ) -> Result<[u8; 32], D::Error> {
        struct V(fn(&str) -> Option<[u8; 32]>, &'static str);
        impl<'de> Visitor<'de> for V {
            type Value = [u8; 32];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}: a 32-byte string", self.1)
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                <[u8; 32]>::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                (self.0)(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V(parse_text, what))
        } else {
            d.deserialize_bytes(V(parse_text, what))
        }
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        bytes32::serialize(&self.0, || self.to_string(), s)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bytes32::deserialize(d, parse_hex32, "object id").map(ObjectId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_sha256_of_body() {
        // SHA-256("abc"), a FIPS 180-2 test vector.
        assert_eq!(
            ObjectId::of_body(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parse_roundtrip_and_errors() {
        let id = ObjectId::of_body(b"x");
        assert_eq!(id.to_string().parse::<ObjectId>().ok(), Some(id));
        assert!("abc".parse::<ObjectId>().is_err());
        assert!("zz".repeat(32).parse::<ObjectId>().is_err());
    }
}
