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
    pub links: Vec<Link>,
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
                "date: {d:?} is not a YYYY-MM-DD date (the date the source document was adopted or published)"
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
        let mut title = LangMap::new();
        let mut summary = LangMap::new();
        let mut bodies = LangMap::new();
        title.insert(self.lang.clone(), self.title);
        if let Some(s) = self.summary {
            summary.insert(self.lang.clone(), s);
        }
        bodies.insert(self.lang.clone(), body);
        for (tag, t) in self.translations {
            if tag == self.lang {
                return Err(format!("translations.{tag}: is the original language"));
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
            lang: self.lang,
            title,
            summary,
            body: bodies,
            tags: self.tags,
            references,
            supersedes,
            links: self.links,
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
}
