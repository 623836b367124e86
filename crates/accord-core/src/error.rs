//! Error types of the core crate.

use thiserror::Error;

/// Problems with keys, ids and their text or file forms.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("not a public key: {0:?} (expected ed25519:<64 hex characters>)")]
    BadPublicKey(String),
    #[error("not an object id: {0:?} (expected 64 hex characters)")]
    BadId(String),
    #[error("public key is not a valid ed25519 point")]
    InvalidPoint,
    #[error("public key is a weak (small-order) ed25519 key")]
    WeakKey,
    #[error("not an ed25519 PKCS#8 PEM private key: {0}")]
    Pem(String),
}

/// Why bytes could not be decoded as a signed object.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("object is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed CBOR: {0}")]
    Cbor(String),
    #[error("CBOR nesting deeper than {0}")]
    TooDeep(usize),
    #[error("a CBOR list or map has {len} entries, over the limit of {limit}")]
    ListTooLong { len: u64, limit: u64 },
    #[error("{0} trailing bytes after the object")]
    TrailingBytes(usize),
    #[error("envelope: {0}")]
    Envelope(String),
    #[error("unsupported envelope version {0}")]
    Version(u64),
    #[error("body: {0}")]
    Body(String),
    #[error("unknown object type {0:?}")]
    UnknownType(String),
}
