//! Stable, machine-readable codes for every reason an object is refused or held back
//! (docs/PROTOCOL.md §5, "Reason codes"). The human sentence of a [`Rejection`] may change between releases;
//! its code does not: integrators match on codes, and metrics count by them.

use crate::error::DecodeError;
use crate::validate::{Missing, Rejection};

/// Every code with its meaning, in the order PROTOCOL.md lists them.
pub const CODES: &[(&str, &str)] = &[
    (
        "too-large",
        "the envelope is over the federation's max_object_bytes",
    ),
    (
        "malformed-cbor",
        "not well-formed CBOR, or lengths beyond the bytes present",
    ),
    ("depth-exceeded", "CBOR nesting deeper than max_depth"),
    (
        "list-too-long",
        "a CBOR array or map with more entries than max_list_len",
    ),
    ("trailing-bytes", "bytes after the envelope"),
    (
        "malformed-envelope",
        "not a canonical [version, body, signatures] envelope",
    ),
    (
        "unsupported-version",
        "an envelope version this implementation does not know",
    ),
    (
        "malformed-body",
        "the body is not a valid body of its type (missing or mistyped field, duplicate key)",
    ),
    (
        "unknown-type",
        "an object type this implementation does not know",
    ),
    ("wrong-federation", "the body names another federation"),
    (
        "created-in-future",
        "created further ahead of the receiver's clock than max_future_skew_ms",
    ),
    ("signature-invalid", "a signature does not verify"),
    (
        "signature-count",
        "an object other than a charter without exactly one signature",
    ),
    ("unknown-member", "the member is not in the current charter"),
    (
        "not-signed-by-root",
        "a delegation or node certificate not signed by its member's root key",
    ),
    (
        "invalid-field",
        "a field breaks a rule of section 4 (length, format, reference)",
    ),
    ("unknown-kind", "the kind is not in the charter's taxonomy"),
    (
        "unknown-direction",
        "a direction is not in the charter's taxonomy",
    ),
    (
        "signer-revoked",
        "the signing key was revoked before the object was created",
    ),
    (
        "delegation-root-replaced",
        "the publisher's delegation was signed by a root key the member no longer holds",
    ),
    (
        "outside-delegation-window",
        "created outside the delegation's not_before/not_after",
    ),
    (
        "outside-delegation-scope",
        "a kind or direction the delegation does not cover",
    ),
    (
        "supersedes-other-member",
        "a record superseding a record of another member",
    ),
    (
        "retraction-other-member",
        "a retraction naming a member other than the record's",
    ),
    (
        "revocation-other-member",
        "a revocation aimed at another member's delegation or certificate",
    ),
    (
        "revocation-target-kind",
        "a revocation whose target is not of the kind it names",
    ),
    (
        "retraction-not-by-author",
        "a retraction signed by neither the record's author nor its member's root key",
    ),
    (
        "revocation-not-authorised",
        "a revocation signed by neither the member's root key nor the revoked key",
    ),
    (
        "foreign-genesis",
        "the genesis charter of another federation",
    ),
    (
        "genesis-unsigned",
        "a genesis charter some founding member has not signed",
    ),
    (
        "charter-foreign-signer",
        "a charter signed by a key that is no member's root key",
    ),
    (
        "charter-invalid",
        "a charter that breaks a rule of section 4.1",
    ),
    (
        "charter-rollback",
        "a charter version older than the current one",
    ),
    (
        "charter-version-skip",
        "a charter version that is not the next one",
    ),
    (
        "charter-previous-mismatch",
        "an amendment that does not name the current charter as previous",
    ),
    (
        "threshold-not-met",
        "an amendment with fewer member signatures than the threshold",
    ),
    (
        "new-key-unsigned",
        "an amendment that introduces a root key without that key's signature",
    ),
    (
        "awaiting-delegation",
        "pending: the publisher's delegation is not known yet",
    ),
    (
        "awaiting-record",
        "pending: the record it refers to is not known yet",
    ),
    (
        "awaiting-trust-object",
        "pending: the delegation or node certificate it revokes is not known yet",
    ),
];

impl DecodeError {
    /// The stable code (see [`CODES`]).
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too-large",
            DecodeError::Cbor(_) => "malformed-cbor",
            DecodeError::TooDeep(_) => "depth-exceeded",
            DecodeError::ListTooLong { .. } => "list-too-long",
            DecodeError::TrailingBytes(_) => "trailing-bytes",
            DecodeError::Envelope(_) => "malformed-envelope",
            DecodeError::Version(_) => "unsupported-version",
            DecodeError::Body(_) => "malformed-body",
            DecodeError::UnknownType(_) => "unknown-type",
        }
    }
}

impl Rejection {
    /// The stable code (see [`CODES`]).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Decode(e) => e.code(),
            Rejection::WrongFederation { .. } => "wrong-federation",
            Rejection::CreatedInFuture { .. } => "created-in-future",
            Rejection::BadSignature(_) => "signature-invalid",
            Rejection::SignatureCount { .. } => "signature-count",
            Rejection::UnknownMember(_) => "unknown-member",
            Rejection::NotSignedByRoot { .. } => "not-signed-by-root",
            Rejection::InvalidField { .. } => "invalid-field",
            Rejection::UnknownKind(_) => "unknown-kind",
            Rejection::UnknownDirection(_) => "unknown-direction",
            Rejection::SignerRevoked { .. } => "signer-revoked",
            Rejection::DelegationRootReplaced { .. } => "delegation-root-replaced",
            Rejection::OutsideDelegationWindow { .. } => "outside-delegation-window",
            Rejection::KindOutOfScope { .. } | Rejection::DirectionOutOfScope { .. } => {
                "outside-delegation-scope"
            }
            Rejection::SupersedesOtherMember(_) => "supersedes-other-member",
            Rejection::RetractionOtherMember { .. } => "retraction-other-member",
            Rejection::RevocationOtherMember { .. } => "revocation-other-member",
            Rejection::RevocationTargetKind { .. } => "revocation-target-kind",
            Rejection::RetractionNotByAuthor { .. } => "retraction-not-by-author",
            Rejection::RevocationNotAuthorised { .. } => "revocation-not-authorised",
            Rejection::ForeignGenesis(_) => "foreign-genesis",
            Rejection::GenesisUnsigned(_) => "genesis-unsigned",
            Rejection::ForeignCharterSigner(_) => "charter-foreign-signer",
            Rejection::InvalidCharter(_) => "charter-invalid",
            Rejection::CharterRollback { .. } => "charter-rollback",
            Rejection::CharterVersionSkip { .. } => "charter-version-skip",
            Rejection::CharterPreviousMismatch { .. } => "charter-previous-mismatch",
            Rejection::ThresholdNotMet { .. } => "threshold-not-met",
            Rejection::NewKeyUnsigned { .. } => "new-key-unsigned",
            Rejection::NewerType { .. } => "unknown-type",
        }
    }
}

impl Rejection {
    /// Whether every node that can judge the object at all refuses it, whatever else it holds
    /// and whenever: it does not decode, a signature fails, a field breaks the format, it names
    /// another federation, or it acts on another member's record or trust object (judged only
    /// once that target is known, and a target's member never changes), so no honest node
    /// accepts and forwards it. Other refusals depend on what the judge holds and its clock (a
    /// revocation it has and a forwarder had not yet, a charter amendment that replaced a root
    /// key or added a direction, a creation time a second ahead, which delegations cover a
    /// record), so an honest node may forward such an object in good faith: a node drops it
    /// without blaming the peer that forwarded it (PROTOCOL.md §9.1).
    pub fn is_intrinsic(&self) -> bool {
        // What depends on the charter (a trust name's bound and unique keys from the charter
        // that adopts them, `limits.rules`; the size limits, which an amendment may raise) is
        // not the object's alone.
        match self {
            Rejection::InvalidField { field, .. } => {
                return !matches!(*field, "name" | "label" | "map" | "attachments.size");
            }
            Rejection::Decode(
                DecodeError::TooLarge { .. }
                | DecodeError::TooDeep(_)
                | DecodeError::ListTooLong { .. },
            ) => return false,
            _ => {}
        }
        matches!(
            self,
            Rejection::Decode(_)
                | Rejection::WrongFederation { .. }
                | Rejection::BadSignature(_)
                | Rejection::SignatureCount { .. }
                | Rejection::ForeignGenesis(_)
                | Rejection::GenesisUnsigned(_)
                | Rejection::InvalidCharter(_)
                | Rejection::SupersedesOtherMember(_)
                | Rejection::RetractionOtherMember { .. }
                | Rejection::RevocationOtherMember { .. }
                | Rejection::RevocationTargetKind { .. }
        )
    }
}

impl Missing {
    /// The stable code of what a pending object waits for (see [`CODES`]).
    pub fn code(&self) -> &'static str {
        match self {
            Missing::Delegation { .. } => "awaiting-delegation",
            Missing::Record(_) => "awaiting-record",
            Missing::TrustObject(_) => "awaiting-trust-object",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // That every reason has a listed code is tested with one value of each variant in
    // tests/validation.rs (`every_reason_has_a_listed_code_and_every_listed_code_is_used`).

    #[test]
    fn codes_are_distinct_kebab_case_with_a_meaning() {
        let listed: std::collections::BTreeSet<&str> = CODES.iter().map(|c| c.0).collect();
        assert_eq!(listed.len(), CODES.len(), "no code listed twice");
        for (code, meaning) in CODES {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') && !meaning.is_empty(),
                "{code}"
            );
        }
    }

    #[test]
    fn protocol_md_lists_every_code() {
        let doc = include_str!("../../../docs/PROTOCOL.md");
        for (code, _) in CODES {
            assert!(
                doc.contains(&format!("| `{code}` |")),
                "PROTOCOL.md, Reason codes, lacks {code}"
            );
        }
    }
}
