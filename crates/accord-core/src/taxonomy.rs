//! The federation's taxonomy: directions of cooperation and record kinds, each with a stable
//! code and names per language. A charter carries its own taxonomy; the CIS agreement's
//! eleven directions (shipped in `configs/taxonomy.toml`) are the default for new charters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One direction or kind: a stable code and its names by language tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxonEntry {
    pub code: String,
    pub names: BTreeMap<String, String>,
}

/// Directions and kinds of a federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    pub directions: Vec<TaxonEntry>,
    pub kinds: Vec<TaxonEntry>,
}

/// The default taxonomy text (CIS agreement), as shipped in `configs/taxonomy.toml`.
pub const DEFAULT_TAXONOMY_TOML: &str = include_str!("../../../configs/taxonomy.toml");

impl Taxonomy {
    /// Parses a taxonomy from TOML and checks it ([`Taxonomy::check`]).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let t: Taxonomy = toml::from_str(text).map_err(|e| e.to_string())?;
        t.check()?;
        Ok(t)
    }

    /// The CIS default taxonomy.
    pub fn cis_default() -> Self {
        // The embedded file is checked by a unit test; an empty taxonomy would make every
        // record invalid rather than crash.
        Self::from_toml(DEFAULT_TAXONOMY_TOML).unwrap_or(Taxonomy {
            directions: vec![],
            kinds: vec![],
        })
    }

    pub fn has_direction(&self, code: &str) -> bool {
        self.directions.iter().any(|d| d.code == code)
    }

    pub fn has_kind(&self, code: &str) -> bool {
        self.kinds.iter().any(|d| d.code == code)
    }

    /// Codes are `[a-z0-9-]`, 1 to 64 characters, unique within their list, and each entry
    /// has at least one name.
    pub fn check(&self) -> Result<(), String> {
        for (what, list) in [("direction", &self.directions), ("kind", &self.kinds)] {
            if list.is_empty() {
                return Err(format!("taxonomy has no {what}s"));
            }
            let mut seen = std::collections::BTreeSet::new();
            for e in list {
                if !is_code(&e.code) {
                    return Err(format!(
                        "{what} code {:?} must be 1-64 characters of a-z, 0-9 and -",
                        e.code
                    ));
                }
                if !seen.insert(e.code.as_str()) {
                    return Err(format!("{what} code {:?} appears twice", e.code));
                }
                if e.names.is_empty() || e.names.values().any(|n| n.trim().is_empty()) {
                    return Err(format!("{what} {:?} needs a non-empty name", e.code));
                }
            }
        }
        Ok(())
    }

    /// An amendment may add codes but never drop one (codes are never reused).
    pub fn check_extends(&self, previous: &Taxonomy) -> Result<(), String> {
        for (what, old, new) in [
            ("direction", &previous.directions, &self.directions),
            ("kind", &previous.kinds, &self.kinds),
        ] {
            for e in old {
                if !new.iter().any(|n| n.code == e.code) {
                    return Err(format!("amendment drops {what} code {:?}", e.code));
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_taxonomy_is_the_cis_agreement() {
        let t = Taxonomy::from_toml(DEFAULT_TAXONOMY_TOML);
        let t = match t {
            Ok(t) => t,
            Err(e) => panic!("configs/taxonomy.toml: {e}"),
        };
        assert_eq!(t.directions.len(), 11);
        for code in [
            "regulation",
            "e-government",
            "digital-skills",
            "digital-divide",
            "education",
        ] {
            assert!(t.has_direction(code), "{code}");
        }
        for code in [
            "regulatory-note",
            "skills-programme",
            "platform-case-study",
            "other",
        ] {
            assert!(t.has_kind(code), "{code}");
        }
        for e in t.directions.iter().chain(&t.kinds) {
            assert!(
                e.names.contains_key("ru") && e.names.contains_key("en"),
                "{}",
                e.code
            );
        }
    }

    #[test]
    fn bad_taxonomies() {
        let t = Taxonomy::cis_default();
        let mut dup = t.clone();
        dup.kinds.push(dup.kinds[0].clone());
        assert!(dup.check().unwrap_err().contains("twice"));
        let mut bad = t.clone();
        bad.directions[0].code = "Bad Code".into();
        assert!(bad.check().is_err());
        let mut fewer = t.clone();
        fewer.directions.pop();
        assert!(fewer.check_extends(&t).unwrap_err().contains("drops"));
        assert!(t.check_extends(&fewer).is_ok());
    }
}
