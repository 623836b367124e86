//! The human input form of a record: what a ministry writes (Markdown with a YAML front
//! matter, or a JSON document with the same fields) before it is signed.
//!
//! Parsing the YAML itself is the caller's business (the CLI does it); this module defines
//! the fields, splits a Markdown file into front matter and body, and turns an input into a
//! [`Record`] body.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::id::ObjectId;
use crate::object::{Attachment, LangMap, Link, MemberCode, ObjectType, Record};
use crate::time::Timestamp;

/// Another language version of a record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Translation {
    pub title: String,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

/// An attachment as written by hand: the hash as 64 hex characters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    /// A file to attach, relative to the record file: the signing tool fills in every other
    /// field from it (`accord sign`/`publish`). Without it, all of `name`, `media_type`, `size`
    /// and `sha256` must be given.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub sha256: Option<String>,
    /// The chunk list hash (hex), see `accord_core::attachment`.
    #[serde(default)]
    pub chunks: Option<String>,
}

impl AttachmentInput {
    /// The input describing `a` (what a signing tool writes after reading a file).
    pub fn of(a: &Attachment) -> AttachmentInput {
        AttachmentInput {
            path: None,
            name: Some(a.name.clone()),
            media_type: Some(a.media_type.clone()),
            size: Some(a.size),
            sha256: Some(a.sha256.to_string()),
            chunks: a.chunks.map(|c| c.to_string()),
        }
    }
}

/// A link as written by hand: a misspelt key (`titel:`) is an error that names it, as in the
/// rest of the front matter, instead of a link signed without its title.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    pub url: String,
    #[serde(default)]
    pub title: Option<String>,
}

/// The fields a publisher writes. Unknown fields are an error that names them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    pub member: String,
    pub kind: String,
    pub directions: Vec<String>,
    pub lang: String,
    pub title: String,
    #[serde(default)]
    pub summary: Option<String>,
    /// In JSON input; for Markdown the body is the text after the front matter.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub supersedes: Option<String>,
    #[serde(default)]
    pub links: Vec<LinkInput>,
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    #[serde(default)]
    pub effective_from: Option<String>,
    /// The date of the source document (adopted or published), `YYYY-MM-DD`.
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub effective_until: Option<String>,
    /// Other language versions, by BCP 47 tag.
    #[serde(default)]
    pub translations: BTreeMap<String, Translation>,
}

/// Splits `---\n<yaml>\n---\n<markdown>` into its two parts.
pub fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            let yaml = &rest[..offset];
            let body = &rest[offset + line.len()..];
            return Some((yaml, body));
        }
        offset += line.len();
    }
    None
}

/// Country codes of the federation's members written where a language tag belongs, and the
/// language meant: none of them is a language code, so a record tagged so would be found by no
/// language filter or analyser.
const COUNTRY_NOT_LANGUAGE: [(&str, &str); 6] = [
    ("kz", "kk (Kazakh) or ru"),
    ("by", "be (Belarusian) or ru"),
    ("tj", "tg (Tajik) or ru"),
    ("ua", "uk (Ukrainian)"),
    ("ge", "ka (Georgian)"),
    ("md", "ro (Romanian) or ru"),
];

/// A BCP 47 language tag in its canonical case: the language lower case (`ru`), a script title
/// case (`uz-Latn`), a region upper case (`ru-KZ`). A tag of the wrong shape, or a member's
/// country code in place of a language (`kz`), is refused, naming the tag meant.
pub fn canonical_language_tag(tag: &str) -> Result<String, String> {
    let tag = tag.trim();
    if !crate::validate::is_language_tag(tag) {
        return Err(format!(
            "{tag:?} is not a language tag (write ru, en, kk, uz-Latn, …)"
        ));
    }
    let mut out = Vec::new();
    // Extensions and private use (after a one-letter singleton: `en-u-ca-gregory`, `x-ab`) are
    // lower case whatever their length.
    let mut extension = false;
    for (i, part) in tag.split('-').enumerate() {
        extension |= part.len() == 1;
        out.push(match (i, part.len()) {
            _ if extension => part.to_ascii_lowercase(),
            (0, _) => part.to_ascii_lowercase(),
            (_, 4) if part.bytes().all(|c| c.is_ascii_alphabetic()) => {
                let lower = part.to_ascii_lowercase();
                lower[..1].to_ascii_uppercase() + &lower[1..]
            }
            (_, 2) => part.to_ascii_uppercase(),
            _ => part.to_ascii_lowercase(),
        });
    }
    if let Some((code, meant)) = COUNTRY_NOT_LANGUAGE.iter().find(|(c, _)| *c == out[0]) {
        return Err(format!(
            "{tag:?} is a country code, not a language: write {meant} (\"{code}\" names no language)"
        ));
    }
    Ok(out.join("-"))
}

impl RecordInput {
    /// Builds the record body. `markdown_body` is the Markdown after the front matter, if
    /// the input came from a Markdown file. Errors name the field.
    pub fn into_record(
        self,
        federation: ObjectId,
        created: Timestamp,
        markdown_body: Option<&str>,
    ) -> Result<Record, String> {
        let member = MemberCode::try_from(self.member).map_err(|e| format!("member: {e}"))?;
        if let Some(d) = &self.date
            && (d.len() != 10 || crate::time::parse_date(d).is_none())
        {
            return Err(format!(
                "date: {} (the date the source document was adopted or published)",
                crate::time::not_a_date(d)
            ));
        }
        let body = match (
            markdown_body.map(str::trim).filter(|b| !b.is_empty()),
            self.body,
        ) {
            (Some(_), Some(_)) => {
                return Err("body: given both in the front matter and after it".into());
            }
            (Some(b), None) => b.to_string(),
            (None, Some(b)) => b,
            (None, None) => {
                return Err(
                    "body: missing (write it after the front matter, or as \"body\" in JSON)"
                        .into(),
                );
            }
        };
        let lang = canonical_language_tag(&self.lang).map_err(|e| format!("lang: {e}"))?;
        let mut title = LangMap::new();
        let mut summary = LangMap::new();
        let mut bodies = LangMap::new();
        title.insert(lang.clone(), self.title);
        if let Some(s) = self.summary {
            summary.insert(lang.clone(), s);
        }
        bodies.insert(lang.clone(), body);
        for (written, t) in self.translations {
            let tag = canonical_language_tag(&written)
                .map_err(|e| format!("translations.{written}: {e}"))?;
            if tag == lang {
                return Err(format!(
                    "translations.{written}: is the original language ({lang})"
                ));
            }
            if title.contains_key(&tag) {
                return Err(format!("translations.{written}: {tag} is given twice"));
            }
            title.insert(tag.clone(), t.title);
            if let Some(s) = t.summary {
                summary.insert(tag.clone(), s);
            }
            if let Some(b) = t.body {
                bodies.insert(tag.clone(), b);
            }
        }
        let parse_id = |field: &str, s: &str| -> Result<ObjectId, String> {
            s.parse::<ObjectId>()
                .map_err(|_| format!("{field}: {s:?} is not a 64-hex-character object id"))
        };
        let references = self
            .references
            .iter()
            .map(|r| parse_id("references", r))
            .collect::<Result<Vec<_>, _>>()?;
        let supersedes = self
            .supersedes
            .as_deref()
            .map(|s| parse_id("supersedes", s))
            .transpose()?;
        let attachments = self
            .attachments
            .into_iter()
            .map(|a| {
                if let Some(p) = &a.path {
                    return Err(format!(
                        "attachments: the file {p:?} was not read (sign with `accord sign`, which reads `path` entries)"
                    ));
                }
                let need = |f: &str| format!("attachments.{f}: required without `path`");
                let sha256 = parse_id(
                    "attachments.sha256",
                    a.sha256.as_deref().ok_or_else(|| need("sha256"))?,
                )?;
                let (name, media_type, size) = (
                    a.name.clone().ok_or_else(|| need("name"))?,
                    a.media_type.clone().ok_or_else(|| need("media_type"))?,
                    a.size.ok_or_else(|| need("size"))?,
                );
                let chunks = a
                    .chunks
                    .as_deref()
                    .map(|c| parse_id("attachments.chunks", c))
                    .transpose()?;
                Ok(Attachment {
                    name,
                    media_type,
                    size,
                    sha256,
                    chunks,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Record {
            object_type: ObjectType::Record,
            federation,
            created,
            member,
            kind: self.kind,
            directions: self.directions,
            lang,
            title,
            summary,
            body: bodies,
            tags: self.tags,
            references,
            supersedes,
            links: self
                .links
                .into_iter()
                .map(|l| Link {
                    url: l.url,
                    title: l.title,
                })
                .collect(),
            attachments,
            effective_from: self.effective_from,
            effective_until: self.effective_until,
            date: self.date,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_split() {
        let (y, b) = split_front_matter("---\nkind: x\n---\n# Body\n").unwrap_or(("", ""));
        assert_eq!(y, "kind: x\n");
        assert_eq!(b, "# Body\n");
        assert!(split_front_matter("no front matter").is_none());
        assert!(split_front_matter("---\nunterminated\n").is_none());
    }

    #[test]
    fn a_malformed_source_date_is_refused_when_signing() {
        let input = |date: &str| RecordInput {
            member: "KZ".into(),
            kind: "regulatory-note".into(),
            directions: vec!["regulation".into()],
            lang: "en".into(),
            title: "T".into(),
            summary: None,
            body: Some("B".into()),
            tags: vec![],
            references: vec![],
            supersedes: None,
            links: vec![],
            attachments: vec![],
            effective_from: None,
            date: Some(date.into()),
            effective_until: None,
            translations: BTreeMap::new(),
        };
        let fed = ObjectId::of_body(b"f");
        let ok = input("2025-03-01").into_record(fed, Timestamp(0), None);
        assert_eq!(ok.map(|r| r.date), Ok(Some("2025-03-01".to_string())));
        for bad in ["2025-3-1", "01.03.2025", "yesterday", "2025-02-30"] {
            let e = input(bad).into_record(fed, Timestamp(0), None).unwrap_err();
            assert!(e.starts_with("date:"), "{bad}: {e}");
        }
    }

    /// Language tags are signed in their canonical case, a member's country code in place of a
    /// language is refused naming the language meant, and a translation that repeats the
    /// original language under another case is refused.
    #[test]
    fn language_tags_are_signed_canonical_and_country_codes_refused() {
        for (written, canonical) in [
            ("RU", "ru"),
            ("uz-latn", "uz-Latn"),
            ("ru-kz", "ru-KZ"),
            ("EN", "en"),
            ("en-u-ca-gregory", "en-u-ca-gregory"),
            ("EN-x-AB", "en-x-ab"),
        ] {
            assert_eq!(
                canonical_language_tag(written).as_deref(),
                Ok(canonical),
                "{written}"
            );
        }
        for (bad, meant) in [("kz", "kk"), ("BY", "be"), ("tj", "tg")] {
            let e = canonical_language_tag(bad).unwrap_err();
            assert!(
                e.contains("country code") && e.contains(meant),
                "{bad}: {e}"
            );
        }
        assert!(canonical_language_tag("russian").is_err());
        let json = |lang: &str, tr: &str| -> RecordInput {
            serde_json::from_str(&format!(
                r#"{{"member":"KZ","kind":"k","directions":["d"],"lang":"{lang}","title":"T","body":"B","translations":{{"{tr}":{{"title":"T2"}}}}}}"#
            ))
            .expect("input")
        };
        let fed = ObjectId::of_body(b"f");
        let r = json("RU", "En")
            .into_record(fed, Timestamp(0), None)
            .expect("record");
        assert_eq!(r.lang, "ru");
        assert_eq!(
            r.title.keys().map(String::as_str).collect::<Vec<_>>(),
            ["en", "ru"]
        );
        let e = json("ru", "RU")
            .into_record(fed, Timestamp(0), None)
            .unwrap_err();
        assert!(e.contains("original language"), "{e}");
        let e = json("kz", "en")
            .into_record(fed, Timestamp(0), None)
            .unwrap_err();
        assert!(e.starts_with("lang:") && e.contains("kk"), "{e}");
    }

    /// A misspelt key of a link names itself instead of signing a link without its title.
    #[test]
    fn a_misspelt_link_key_is_named() {
        let e = serde_json::from_str::<RecordInput>(
            r#"{"member":"KZ","kind":"k","directions":["d"],"lang":"ru","title":"T","body":"B","links":[{"url":"https://x","titel":"Закон"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("titel"), "{e}");
    }
}
