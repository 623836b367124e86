//! Cross-crate integration and end-to-end tests of Accord live in `tests/tests/`. This
//! library holds what they share: the protocol test-vector inputs of docs/PROTOCOL.md.

use std::collections::BTreeMap;

use accord_core::taxonomy::TaxonEntry;
use accord_core::{
    Charter, Delegation, Limits, MemberCode, MemberEntry, Object, ObjectType, Record, SecretKey,
    SignedObject, Taxonomy, Timestamp,
};

/// The objects of the test vectors, built exactly as docs/PROTOCOL.md describes them.
#[derive(Debug)]
pub struct Vectors {
    pub root: SecretKey,
    pub publisher: SecretKey,
    pub charter: SignedObject,
    pub delegation: SignedObject,
    pub record: SignedObject,
}

fn one(lang: &str, text: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(lang.to_string(), text.to_string())])
}

/// Builds the test vectors of docs/PROTOCOL.md.
pub fn vectors() -> Result<Vectors, String> {
    let root = SecretKey::from_seed([0x01; 32]);
    let publisher = SecretKey::from_seed([0x02; 32]);
    let kz = MemberCode::try_from("KZ".to_string())?;
    let charter = Charter {
        object_type: ObjectType::Charter,
        federation: None,
        created: Timestamp(1_700_000_000_000),
        name: "Vector federation".into(),
        version: 1,
        previous: None,
        members: vec![MemberEntry {
            code: kz.clone(),
            name: one("en", "Kazakhstan"),
            root_key: root.public_key(),
        }],
        threshold: 1,
        taxonomy: Taxonomy {
            directions: vec![TaxonEntry {
                code: "regulation".into(),
                names: one("en", "Regulation"),
            }],
            kinds: vec![TaxonEntry {
                code: "regulatory-note".into(),
                names: one("en", "Regulatory note"),
            }],
        },
        limits: Limits::default(),
    };
    let charter = Object::Charter(charter).sign(&root);
    let delegation = Object::Delegation(Delegation {
        object_type: ObjectType::Delegation,
        federation: charter.id(),
        created: Timestamp(1_700_000_000_000),
        member: kz.clone(),
        publisher: publisher.public_key(),
        name: "Ministry".into(),
        kinds: None,
        directions: None,
        not_before: Timestamp(1_700_000_000_000),
        not_after: None,
    })
    .sign(&root);
    let record = Object::Record(Record {
        object_type: ObjectType::Record,
        federation: charter.id(),
        created: Timestamp(1_700_000_001_000),
        member: kz,
        kind: "regulatory-note".into(),
        directions: vec!["regulation".into()],
        lang: "en".into(),
        title: one("en", "Test vector"),
        summary: BTreeMap::new(),
        body: one("en", "Hello"),
        tags: vec![],
        references: vec![],
        supersedes: None,
        links: vec![],
        attachments: vec![],
        effective_from: None,
        effective_until: None,
    })
    .sign(&publisher);
    Ok(Vectors {
        root,
        publisher,
        charter,
        delegation,
        record,
    })
}
