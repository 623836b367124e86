//! The bilingual glossary that carries a query across languages: groups of equivalent terms
//! (e-government / электронное правительство …) from `configs/glossary.toml`, an operator's own
//! files, and the taxonomy's names of each direction in every language.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::SearchError;

/// The glossary shipped with Accord (`configs/glossary.toml`).
pub const DEFAULT_GLOSSARY: &str = include_str!("../../../configs/glossary.toml");

/// Most terms in one glossary (all files together), so that a hostile or careless file cannot
/// make every query expensive.
pub const MAX_TERMS: usize = 20_000;
/// Most words in one term.
pub const MAX_TERM_WORDS: usize = 6;

/// One group of equivalent terms: language tag → its terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub terms: BTreeMap<String, Vec<String>>,
}

/// A direction of the taxonomy with its names per language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionNames {
    pub code: String,
    pub names: BTreeMap<String, String>,
}

/// Everyday names of the CIS states by ISO code, besides the formal ones a charter gives
/// ("Беларусь" and "Белоруссия" for «Республика Беларусь», "Kyrgyzstan" for "Kyrgyz Republic"):
/// what analysts type, in Russian, English and the state's own languages (a charter may give
/// only the first two, and «Қазақстан», "Oʻzbekiston" or "Azərbaycan" fold to no form of
/// them). Language tag and name; a name is folded as a query word is when it is read, so it
/// is written as the state writes it.
pub fn member_short_names(code: &str) -> &'static [(&'static str, &'static str)] {
    match code {
        "AM" => &[("en", "Armenia"), ("ru", "Армения"), ("hy", "Հայաստան")],
        "AZ" => &[
            ("en", "Azerbaijan"),
            ("ru", "Азербайджан"),
            ("az", "Azərbaycan"),
        ],
        "BY" => &[
            ("en", "Belarus"),
            ("ru", "Беларусь"),
            ("ru", "Белоруссия"),
            ("be", "Беларусь"),
        ],
        "KZ" => &[
            ("en", "Kazakhstan"),
            ("ru", "Казахстан"),
            ("kk", "Қазақстан"),
            ("kk", "Qazaqstan"),
        ],
        "KG" => &[
            ("en", "Kyrgyzstan"),
            ("ru", "Кыргызстан"),
            ("ru", "Киргизия"),
            ("ky", "Кыргызстан"),
            ("ky", "Кыргыз Республикасы"),
        ],
        "MD" => &[
            ("en", "Moldova"),
            ("ru", "Молдова"),
            ("ru", "Молдавия"),
            ("ro", "Moldova"),
        ],
        "RU" => &[("en", "Russia"), ("ru", "Россия")],
        "TJ" => &[
            ("en", "Tajikistan"),
            ("ru", "Таджикистан"),
            ("tg", "Тоҷикистон"),
        ],
        "TM" => &[
            ("en", "Turkmenistan"),
            ("ru", "Туркменистан"),
            ("tk", "Türkmenistan"),
        ],
        "UZ" => &[
            ("en", "Uzbekistan"),
            ("ru", "Узбекистан"),
            ("uz", "Oʻzbekiston"),
            ("uz", "Ўзбекистон"),
        ],
        _ => &[],
    }
}

/// Everything that expands a query across languages.
#[derive(Debug, Clone, Default)]
pub struct Glossary {
    pub entries: Vec<Entry>,
    pub directions: Vec<DirectionNames>,
    /// The federation's members with their names per language (the charter's): a query word
    /// that names one member (and no other) also finds that member's records.
    pub members: Vec<DirectionNames>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    terms: Vec<BTreeMap<String, Vec<String>>>,
}

impl Glossary {
    /// The shipped glossary.
    pub fn builtin() -> Glossary {
        let mut g = Glossary::default();
        // The shipped file is checked by this crate's tests; a failure here is a build defect.
        if let Err(e) = g.add_toml(DEFAULT_GLOSSARY, "configs/glossary.toml") {
            tracing::error!(error = %e, "the built-in glossary is invalid");
        }
        g
    }

    /// Adds the entries of a glossary file (TOML: `[[terms]]` tables of language → terms).
    /// `origin` names the file in errors.
    pub fn add_toml(&mut self, text: &str, origin: &str) -> Result<(), SearchError> {
        let bad = |m: String| SearchError::Glossary(format!("{origin}: {m}"));
        let file: File = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        for (n, terms) in file.terms.into_iter().enumerate() {
            let n = n + 1;
            if terms.len() < 2 && terms.values().map(Vec::len).sum::<usize>() < 2 {
                return Err(bad(format!(
                    "entry {n} has fewer than two terms: nothing to expand to"
                )));
            }
            for (lang, list) in &terms {
                if lang.is_empty() || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(bad(format!("entry {n}: {lang:?} is not a language tag")));
                }
                for t in list {
                    let words = crate::analysis::words(t).len();
                    if words == 0 || words > MAX_TERM_WORDS {
                        return Err(bad(format!(
                            "entry {n}: term {t:?} must have 1 to {MAX_TERM_WORDS} words"
                        )));
                    }
                }
            }
            self.entries.push(Entry { terms });
        }
        let total: usize = self
            .entries
            .iter()
            .map(|e| e.terms.values().map(Vec::len).sum::<usize>())
            .sum();
        if total > MAX_TERMS {
            return Err(bad(format!(
                "the glossary has {total} terms; at most {MAX_TERMS} are allowed"
            )));
        }
        Ok(())
    }

    /// Sets the taxonomy's directions (from the charter).
    pub fn set_directions(&mut self, directions: Vec<DirectionNames>) {
        self.directions = directions;
    }

    /// Sets the members' names (from the charter): code, and name per language; the everyday
    /// names of a CIS state ([`member_short_names`]) are added to its own.
    pub fn set_members(&mut self, members: Vec<DirectionNames>) {
        let short: Vec<DirectionNames> = members
            .iter()
            .flat_map(|m| {
                member_short_names(&m.code)
                    .iter()
                    .map(|(lang, name)| DirectionNames {
                        code: m.code.clone(),
                        names: BTreeMap::from([(lang.to_string(), name.to_string())]),
                    })
            })
            .collect();
        self.members = members;
        self.members.extend(short);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_glossary_is_valid() {
        let mut g = Glossary::default();
        g.add_toml(DEFAULT_GLOSSARY, "configs/glossary.toml")
            .unwrap();
        assert!(g.entries.len() >= 40, "{}", g.entries.len());
        assert!(
            g.entries
                .iter()
                .all(|e| e.terms.contains_key("en") && e.terms.contains_key("ru"))
        );
    }

    #[test]
    fn a_bad_glossary_file_is_refused_with_the_problem_named() {
        let mut g = Glossary::default();
        let e = g
            .add_toml("[[terms]]\nen = [\"alone\"]\n", "mine.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mine.toml") && e.contains("entry 1"), "{e}");
        let e = g
            .add_toml("[[term]]\nen = [\"a\"]\n", "mine.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
        let e = g
            .add_toml("[[terms]]\nen = [\"a b c d e f g\"]\nru = [\"x\"]\n", "m")
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 to 6 words"), "{e}");
    }

    /// A member's own name for its state, as its people type it, names that member and no
    /// other, read as a query word is read against the words of each member's names
    /// (`plan::names_member`): «Қазақстан» folds to «казакстан», one letter from
    /// «казахстан», and "Oʻzbekiston" or "Azərbaycan" to no form of the English names.
    #[test]
    fn members_own_names_for_their_state_name_them() {
        use crate::analysis::{fold_word, words};
        const CODES: [&str; 10] = ["AM", "AZ", "BY", "KG", "KZ", "MD", "RU", "TJ", "TM", "UZ"];
        let named = |typed: &str| -> Vec<&'static str> {
            let query: Vec<String> = words(typed)
                .into_iter()
                .map(|(_, _, w)| fold_word(&w))
                .collect();
            CODES
                .into_iter()
                .filter(|code| {
                    member_short_names(code)
                        .iter()
                        .flat_map(|(_, name)| words(name))
                        .any(|(_, _, n)| {
                            let n = fold_word(&n);
                            query.iter().any(|q| crate::plan::names_member(q, &n))
                        })
                })
                .collect()
        };
        for (typed, code) in [
            ("Қазақстан", "KZ"),
            ("Қазақстанда", "KZ"),
            ("Qazaqstan", "KZ"),
            ("Oʻzbekiston", "UZ"),
            ("O'zbekiston", "UZ"),
            ("Ўзбекистон", "UZ"),
            ("Тоҷикистон", "TJ"),
            ("Azərbaycan", "AZ"),
            ("Հայաստան", "AM"),
            ("Հայաստանի", "AM"),
            ("Кыргызстан", "KG"),
            ("Кыргыз", "KG"),
            ("Беларусь", "BY"),
            ("Беларусі", "BY"),
            ("Türkmenistan", "TM"),
            ("Moldova", "MD"),
        ] {
            assert_eq!(named(typed), [code], "{typed}");
        }
    }
}
