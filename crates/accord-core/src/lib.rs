//! `accord-core` owns everything about Accord objects that can be decided without I/O:
//! identifiers and keys, the signed envelope and its signing rules, the six object types and
//! their CBOR bodies, the federation taxonomy, the trust view derived from a charter and the
//! trust objects accepted so far, and the one validation function that turns bytes into a
//! [`Verified`] object (or says why not).
//!
//! The crate is pure: no tokio, no sockets, no files, no clocks. Time is always an argument
//! ([`Timestamp`]), randomness comes from the caller (see [`SecretKey::from_seed`]).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod attachment;
pub mod cbor;
pub mod codes;
pub mod devnet;
pub mod envelope;
pub mod error;
pub mod health;
pub mod id;
pub mod keys;
pub mod object;
pub mod record_input;
pub mod taxonomy;
pub mod time;
pub mod trust;
pub mod validate;

pub use envelope::{ENVELOPE_VERSION, SIGNING_DOMAIN, SignedObject};
pub use error::{DecodeError, KeyError};
pub use id::ObjectId;
pub use keys::{PublicKey, SecretKey, Signature};
pub use object::{
    Charter, Delegation, Limits, MemberCode, MemberEntry, NodeCert, Object, ObjectType, Record,
    Retraction, Revocation, RevocationTarget,
};
pub use taxonomy::Taxonomy;
pub use time::Timestamp;
pub use trust::TrustView;
pub use validate::{
    KnownRecords, Missing, NoRecords, Prechecked, Rejection, Verdict, Verified, newer_type,
    precheck, validate, validate_envelope, validate_with,
};
