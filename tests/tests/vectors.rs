//! docs/PROTOCOL.md's test vectors are true: the code produces exactly the bytes, ids and
//! signatures printed there, and validates them. Run with `ACCORD_PRINT_VECTORS=1` and
//! `--nocapture` to print the current values.

#![allow(clippy::unwrap_used)]

use accord_core::envelope::signing_input;
use accord_core::{Timestamp, TrustView, Verdict, validate};
use sha2::{Digest, Sha256};

/// Extracts the hex block that follows the marker line `<!-- vector: NAME -->`.
fn doc_vector(doc: &str, name: &str) -> String {
    let marker = format!("<!-- vector: {name} -->");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no vector {name}"));
    let rest = &doc[start + marker.len()..];
    let open = rest.find("```").unwrap();
    let after = &rest[open + 3..];
    let body_start = after.find('\n').unwrap() + 1;
    let end = after[body_start..].find("```").unwrap();
    after[body_start..body_start + end]
        .split_whitespace()
        .collect()
}

#[test]
fn protocol_md_vectors_match_the_code() {
    let v = accord_tests::vectors().unwrap();
    let items = [
        (
            "root-public-key",
            hex::encode(v.root.public_key().as_bytes()),
        ),
        (
            "publisher-public-key",
            hex::encode(v.publisher.public_key().as_bytes()),
        ),
        ("charter-envelope", hex::encode(v.charter.as_bytes())),
        ("charter-id", v.charter.id().to_string()),
        ("delegation-envelope", hex::encode(v.delegation.as_bytes())),
        ("record-body", hex::encode(v.record.body())),
        (
            "record-signing-input",
            hex::encode(signing_input(v.record.body())),
        ),
        (
            "record-signature",
            hex::encode(v.record.signatures()[0].1.0),
        ),
        ("record-envelope", hex::encode(v.record.as_bytes())),
        ("record-id", v.record.id().to_string()),
    ];
    if std::env::var_os("ACCORD_PRINT_VECTORS").is_some() {
        for (name, value) in &items {
            println!("{name}\n{value}\n");
        }
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .unwrap();
    for (name, value) in &items {
        assert_eq!(
            &doc_vector(&doc, name),
            value,
            "vector {name} in docs/PROTOCOL.md"
        );
    }
    // The id is plain SHA-256 of the body bytes.
    assert_eq!(
        hex::encode(Sha256::digest(v.record.body())),
        v.record.id().to_string()
    );
    // And the vectors validate.
    let (mut trust, _) = TrustView::from_genesis(v.charter.as_bytes()).unwrap();
    let now = Timestamp(1_700_000_002_000);
    match validate(v.delegation.as_bytes(), &trust, now) {
        Verdict::Accepted(d) => trust.apply(&d),
        other => panic!("delegation: {other:?}"),
    }
    assert!(matches!(
        validate(v.record.as_bytes(), &trust, now),
        Verdict::Accepted(_)
    ));
}
