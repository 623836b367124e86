//! A development federation built from one seed: every member's root, publisher and node keys,
//! the genesis charter signed by all, a delegation and a node certificate per member.
//!
//! `accord devnet` writes one to disk (with a random seed), the test suites build them in
//! memory (with fixed seeds), so both exercise exactly the same objects.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::envelope::SignedObject;
use crate::id::ObjectId;
use crate::keys::SecretKey;
use crate::object::{
    Charter, Delegation, Limits, MemberCode, MemberEntry, NodeCert, Object, ObjectType, Record,
};
use crate::taxonomy::Taxonomy;
use crate::time::Timestamp;

/// One member of a development federation. The keys are development keys.
#[derive(Debug)]
pub struct DevMember {
    pub code: MemberCode,
    pub root: SecretKey,
    pub publisher: SecretKey,
    pub node: SecretKey,
}

/// A development federation. See the module documentation.
#[derive(Debug)]
pub struct DevFederation {
    pub members: Vec<DevMember>,
    pub charter: Charter,
    pub genesis: SignedObject,
    pub created: Timestamp,
}

/// Derives a key for `(member, role)` from the seed: SHA-256(seed || code || role).
pub fn derive_key(seed: &[u8; 32], code: &str, role: &str) -> SecretKey {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(code.as_bytes());
    h.update([0]);
    h.update(role.as_bytes());
    SecretKey::from_seed(h.finalize().into())
}

/// English names of a few member states, for charters made by `accord devnet`.
pub fn member_name(code: &str) -> BTreeMap<String, String> {
    let (en, ru) = match code {
        "AM" => ("Republic of Armenia", "Республика Армения"),
        "AZ" => ("Republic of Azerbaijan", "Азербайджанская Республика"),
        "BY" => ("Republic of Belarus", "Республика Беларусь"),
        "KZ" => ("Republic of Kazakhstan", "Республика Казахстан"),
        "KG" => ("Kyrgyz Republic", "Кыргызская Республика"),
        "MD" => ("Republic of Moldova", "Республика Молдова"),
        "RU" => ("Russian Federation", "Российская Федерация"),
        "TJ" => ("Republic of Tajikistan", "Республика Таджикистан"),
        "TM" => ("Turkmenistan", "Туркменистан"),
        "UZ" => ("Republic of Uzbekistan", "Республика Узбекистан"),
        other => (other, other),
    };
    BTreeMap::from([
        ("en".to_string(), en.to_string()),
        ("ru".to_string(), ru.to_string()),
    ])
}

impl DevFederation {
    /// Builds the federation: threshold is a simple majority of the members.
    pub fn new(codes: &[&str], seed: [u8; 32], created: Timestamp) -> Result<Self, String> {
        Self::with_limits(codes, seed, created, Limits::default())
    }

    /// [`DevFederation::new`] with the charter's limits given.
    pub fn with_limits(
        codes: &[&str],
        seed: [u8; 32],
        created: Timestamp,
        limits: Limits,
    ) -> Result<Self, String> {
        let mut members = Vec::new();
        for c in codes {
            let code = MemberCode::try_from(c.to_string())?;
            if members.iter().any(|m: &DevMember| m.code == code) {
                return Err(format!("member {code} is listed twice"));
            }
            members.push(DevMember {
                root: derive_key(&seed, c, "root"),
                publisher: derive_key(&seed, c, "publisher"),
                node: derive_key(&seed, c, "node"),
                code,
            });
        }
        if members.is_empty() {
            return Err("a federation needs at least one member".into());
        }
        let charter = Charter {
            object_type: ObjectType::Charter,
            federation: None,
            created,
            name: "Accord development federation".into(),
            version: 1,
            previous: None,
            members: members
                .iter()
                .map(|m| MemberEntry {
                    code: m.code.clone(),
                    name: member_name(m.code.as_str()),
                    root_key: m.root.public_key(),
                })
                .collect(),
            threshold: members.len() as u64 / 2 + 1,
            taxonomy: Taxonomy::cis_default(),
            limits,
        };
        let mut genesis = SignedObject::unsigned(Object::Charter(charter.clone()).encode_body());
        for m in &members {
            genesis.add_signature(&m.root);
        }
        Ok(DevFederation {
            members,
            charter,
            genesis,
            created,
        })
    }

    pub fn federation(&self) -> ObjectId {
        self.genesis.id()
    }

    pub fn member(&self, code: &str) -> Option<&DevMember> {
        self.members.iter().find(|m| m.code.as_str() == code)
    }

    /// The delegation of member `i`'s publisher key (all kinds and directions, no end).
    pub fn delegation(&self, i: usize) -> SignedObject {
        let m = &self.members[i];
        Object::Delegation(Delegation {
            object_type: ObjectType::Delegation,
            federation: self.federation(),
            created: self.created,
            member: m.code.clone(),
            publisher: m.publisher.public_key(),
            name: format!("{} development publisher", m.code),
            kinds: None,
            directions: None,
            not_before: self.created,
            not_after: None,
        })
        .sign(&m.root)
    }

    /// The node certificate of member `i`'s node key.
    pub fn node_cert(&self, i: usize) -> SignedObject {
        let m = &self.members[i];
        Object::Node(NodeCert {
            object_type: ObjectType::Node,
            federation: self.federation(),
            created: self.created,
            member: m.code.clone(),
            node_key: m.node.public_key(),
            label: Some(format!("{} development node", m.code)),
        })
        .sign(&m.root)
    }

    /// Every member's delegation and node certificate.
    pub fn trust_objects(&self) -> Vec<SignedObject> {
        (0..self.members.len())
            .flat_map(|i| [self.delegation(i), self.node_cert(i)])
            .collect()
    }

    /// A small English record by member `i`'s publisher.
    pub fn record(&self, i: usize, title: &str, created: Timestamp) -> SignedObject {
        Object::Record(self.record_body(i, title, created)).sign(&self.members[i].publisher)
    }

    /// The unsigned body of [`Self::record`], for tests that change a field first.
    pub fn record_body(&self, i: usize, title: &str, created: Timestamp) -> Record {
        let m = &self.members[i];
        let en = |s: &str| BTreeMap::from([("en".to_string(), s.to_string())]);
        Record {
            object_type: ObjectType::Record,
            federation: self.federation(),
            created,
            member: m.code.clone(),
            kind: "regulatory-note".into(),
            directions: vec!["regulation".into()],
            lang: "en".into(),
            title: en(title),
            summary: BTreeMap::new(),
            body: en(&format!("Body of {title}.")),
            tags: vec![],
            references: vec![],
            supersedes: None,
            links: vec![],
            attachments: vec![],
            effective_from: None,
            effective_until: None,
            date: None,
        }
    }
}
