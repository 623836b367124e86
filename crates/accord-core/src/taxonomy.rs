//! The federation's taxonomy: directions of cooperation and record kinds, each with a stable
//! code and names per language. A charter carries its own taxonomy; the CIS agreement's
//! eleven directions (shipped in `configs/taxonomy.toml`) are the default for new charters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One direction or kind: a stable code and its names by language tag.
///
/// Read from a charter, keys it does not know are ignored (they stay in the signed bytes), as
/// in every map of a body (PROTOCOL.md §4); read from an operator's TOML file
/// ([`Taxonomy::from_toml`]) they are refused, so that a misspelt key is not silently lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxonEntry {
    pub code: String,
    pub names: BTreeMap<String, String>,
}

/// Directions and kinds of a federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxonomy {
    pub directions: Vec<TaxonEntry>,
    pub kinds: Vec<TaxonEntry>,
}

/// [`TaxonEntry`] as an operator's file gives it: every key known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictEntry {
    code: String,
    names: BTreeMap<String, String>,
}

/// [`Taxonomy`] as an operator's file gives it: every key known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictTaxonomy {
    directions: Vec<StrictEntry>,
    kinds: Vec<StrictEntry>,
}

/// The default taxonomy text (CIS agreement), as shipped in `configs/taxonomy.toml`.
pub const DEFAULT_TAXONOMY_TOML: &str = include_str!("../../../configs/taxonomy.toml");

impl Taxonomy {
    /// Parses a taxonomy from TOML and checks it ([`Taxonomy::check`]).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let strict: StrictTaxonomy = toml::from_str(text).map_err(|e| e.to_string())?;
        let entries = |list: Vec<StrictEntry>| {
            list.into_iter()
                .map(|e| TaxonEntry {
                    code: e.code,
                    names: e.names,
                })
                .collect()
        };
        let t = Taxonomy {
            directions: entries(strict.directions),
            kinds: entries(strict.kinds),
        };
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

    /// An operator's taxonomy file with a misspelt key is refused by name (a charter's
    /// taxonomy ignores keys it does not know; a file typed by hand does not).
    #[test]
    fn a_taxonomy_file_with_an_unknown_key_is_refused() {
        let typo = "[[directions]]\ncode = \"e-government\"\nnames = { en = \"E-government\" }\n\n[[kinds]]\ncode = \"case\"\nname = { en = \"Case\" }\n";
        let e = Taxonomy::from_toml(typo).unwrap_err();
        assert!(e.contains("unknown field `name`"), "{e}");
        let fixed = typo.replace("name =", "names =");
        assert!(Taxonomy::from_toml(&fixed).is_ok());
    }
}
