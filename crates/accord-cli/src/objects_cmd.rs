//! Commands that make and sign objects offline: `delegate`, `cert node`, `revoke`,
//! `retract` and `sign` (records from Markdown or JSON).

use std::path::{Path, PathBuf};

use accord_core::object::TargetType;
use accord_core::record_input::{AttachmentInput, RecordInput, split_front_matter};
use accord_core::validate::check_record_fields;
use accord_core::{
    Delegation, MemberCode, NodeCert, Object, ObjectId, ObjectType, Retraction, Revocation,
    SecretKey, Timestamp, TrustView, Verdict, validate_with,
};
use anyhow::{Context, Result, anyhow, bail};

use crate::util;

/// Signs `obj` and checks it against the trust view before writing it, so that a mistake
/// (wrong root key, unknown member, bad scope) is caught here and not by every node.
///
/// `sources` are the files the command read (the charter, `--with`, the key, a public key
/// given as a file): `--out` never replaces one of them.
fn sign_checked(
    obj: Object,
    key: &SecretKey,
    (trust, known): (&TrustView, &util::Accepted),
    out: &Path,
    sources: &[&Path],
) -> Result<ObjectId> {
    let signed = obj.sign(key);
    match validate_with(signed.as_bytes(), trust, known, util::now()) {
        Verdict::Accepted(_) | Verdict::Pending(_) => {}
        Verdict::Rejected(r) => bail!("the {} would be refused: {r}", obj.object_type()),
    }
    util::write_signed(out, signed.as_bytes(), sources)?;
    println!("{}", signed.id());
    eprintln!("wrote {} {}", obj.object_type(), out.display());
    Ok(signed.id())
}

fn member(code: &str) -> Result<MemberCode> {
    MemberCode::try_from(code.to_string()).map_err(|e| anyhow!("--member: {e}"))
}

#[allow(clippy::too_many_arguments)]
pub fn delegate(
    charter: &util::CharterArgs,
    code: &str,
    root_key: &Path,
    publisher: &str,
    name: &str,
    kinds: &[String],
    directions: &[String],
    from: Option<Timestamp>,
    until: Option<Timestamp>,
    out: &Path,
) -> Result<()> {
    let sources = [charter.paths(), vec![root_key, Path::new(publisher)]].concat();
    util::check_signed_out(out, &sources)?;
    let (trust, known) = charter.load()?;
    let key = util::load_secret_key(root_key)?;
    let publisher = util::public_key_arg(publisher).context("--publisher")?;
    let now = util::now();
    let kinds = util::list(kinds);
    let directions = util::list(directions);
    let d = Delegation {
        object_type: ObjectType::Delegation,
        federation: trust.federation(),
        created: now,
        member: member(code)?,
        publisher,
        name: name.to_string(),
        kinds: (!kinds.is_empty()).then_some(kinds),
        directions: (!directions.is_empty()).then_some(directions),
        not_before: from.unwrap_or(now),
        not_after: until,
    };
    sign_checked(Object::Delegation(d), &key, (&trust, &known), out, &sources)?;
    Ok(())
}

pub fn cert_node(
    charter: &util::CharterArgs,
    code: &str,
    root_key: &Path,
    node_key: &str,
    label: Option<String>,
    out: &Path,
) -> Result<()> {
    let sources = [charter.paths(), vec![root_key, Path::new(node_key)]].concat();
    util::check_signed_out(out, &sources)?;
    let (trust, known) = charter.load()?;
    let key = util::load_secret_key(root_key)?;
    let node_key = util::public_key_arg(node_key).context("--node-key")?;
    let n = NodeCert {
        object_type: ObjectType::Node,
        federation: trust.federation(),
        created: util::now(),
        member: member(code)?,
        node_key,
        label,
    };
    sign_checked(Object::Node(n), &key, (&trust, &known), out, &sources)?;
    eprintln!("certified peer id {}", node_key.peer_id());
    Ok(())
}

/// What `accord revoke` revokes.
#[derive(Debug)]
pub enum RevokeTarget {
    Delegation(ObjectId),
    NodeCert(ObjectId),
    Key(String),
}

pub fn revoke(
    charter: &util::CharterArgs,
    code: &str,
    key: &Path,
    target: RevokeTarget,
    effective: Option<Timestamp>,
    reason: Option<String>,
    out: &Path,
) -> Result<()> {
    let mut sources = [charter.paths(), vec![key]].concat();
    if let RevokeTarget::Key(k) = &target {
        sources.push(Path::new(k));
    }
    util::check_signed_out(out, &sources)?;
    let (trust, known) = charter.load()?;
    let key = util::load_secret_key(key)?;
    let now = util::now();
    let (target_type, target) = match &target {
        RevokeTarget::Delegation(id) => (TargetType::Delegation, *id),
        RevokeTarget::NodeCert(id) => (TargetType::Node, *id),
        RevokeTarget::Key(k) => (
            TargetType::Key,
            ObjectId(*util::public_key_arg(k)?.as_bytes()),
        ),
    };
    let r = Revocation {
        object_type: ObjectType::Revocation,
        federation: trust.federation(),
        created: now,
        member: member(code)?,
        target_type,
        target,
        effective: effective.unwrap_or(now),
        reason,
    };
    sign_checked(Object::Revocation(r), &key, (&trust, &known), out, &sources)?;
    Ok(())
}

pub fn retract(
    charter: &util::CharterArgs,
    code: &str,
    key: &Path,
    record: ObjectId,
    reason: &str,
    out: &Path,
) -> Result<()> {
    let sources = [charter.paths(), vec![key]].concat();
    util::check_signed_out(out, &sources)?;
    let (trust, known) = charter.load()?;
    let key = util::load_secret_key(key)?;
    let r = Retraction {
        object_type: ObjectType::Retraction,
        federation: trust.federation(),
        created: util::now(),
        member: member(code)?,
        record,
        reason: reason.to_string(),
    };
    sign_checked(Object::Retraction(r), &key, (&trust, &known), out, &sources)?;
    Ok(())
}

/// Parses a record input text; `name` is used in error messages.
pub fn parse_record_input(name: &str, text: &str) -> Result<(RecordInput, Option<String>)> {
    // A byte-order mark (Windows editors and PowerShell write one) is no part of the document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        let input: RecordInput = serde_json::from_str(text).map_err(|e| anyhow!("{name}: {e}"))?;
        return Ok((input, None));
    }
    let Some((yaml, body)) = split_front_matter(text) else {
        bail!(
            "{name}: expected Markdown starting with a '---' front matter block (or a JSON document)"
        );
    };
    if let Some((line, value, kept)) = text_cut_by_a_comment(yaml) {
        bail!(
            "{name}: front matter line {line}: YAML reads \" #\" as the start of a comment, so \"{value}\" would be signed as \"{kept}\": put the value in double quotes"
        );
    }
    let input: RecordInput = serde_norway::from_str(yaml).map_err(|e| {
        // The YAML parser counts from the line after the opening `---`: say the file's line.
        let mut msg = e.to_string();
        if let Some(at) = e.location() {
            msg = msg.replace(
                &format!("line {} column {}", at.line(), at.column()),
                &format!("line {} column {}", at.line() + 1, at.column()),
            );
        }
        // The quoting hint for what the YAML scanner could not read, not for a field's
        // value or name (those messages say what is wrong already).
        let data = [
            "missing field",
            "unknown field",
            "duplicate field",
            "invalid type",
            "invalid value",
            "invalid length",
            "unknown variant",
        ];
        // A value YAML read as a list, a map or a tag where text belongs (`title: [Проект]`)
        // is a quoting matter all the same.
        if data.iter().any(|d| msg.contains(d)) && !msg.contains("expected a string") {
            anyhow!("{name}: front matter: {msg}")
        } else {
            anyhow!("{name}: front matter: {msg} ({QUOTING_HINT})")
        }
    })?;
    Ok((input, Some(body.to_string())))
}

/// What a YAML parse error most often comes from in a record's front matter.
const QUOTING_HINT: &str = "a value holding \": \" or \" #\", or starting with one of @ ` - \" ' [ { * & ! | > %, goes in double quotes, a double quote inside it written \\\"";

/// Keys whose values are text a reader sees, where an unquoted ` #` silently cuts the text
/// (YAML reads it as a comment): a record would be signed, for good, as `Закон` for
/// `title: Закон #5 о данных`.
const TEXT_KEYS: [&str; 5] = ["title", "summary", "name", "reason", "body"];

/// The first line (the file's line number, counting the opening `---`) whose text value —
/// of a [`TEXT_KEYS`] key or an item of `tags:` — is unquoted and holds ` #` (or a tab and
/// `#`), with the value as written and what YAML would keep of it. Block scalars (`body: |`)
/// and quoted values are text as written and are skipped; a comment on a line of its own or
/// after a code or an id (`date: 2025-01-01 # decree`, `- e-government # 3`) is left alone.
fn text_cut_by_a_comment(yaml: &str) -> Option<(usize, String, String)> {
    // The column of the key whose block scalar the following deeper lines belong to.
    let mut block: Option<usize> = None;
    // Inside a double-quoted value that runs over several lines.
    let mut quoted = false;
    // The key owning the block sequence (`tags:` then `- item` lines), with its column.
    let mut owner: Option<(usize, String)> = None;
    // The column of a text key whose plain value goes on (or starts) on deeper lines.
    let mut text_at: Option<usize> = None;
    for (i, line) in yaml.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let content = line.trim();
        if quoted {
            quoted = !closes_quote(content);
            continue;
        }
        if let Some(b) = block {
            if content.is_empty() || indent > b {
                continue;
            }
            block = None;
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        match text_at {
            // A deeper line of a plain text value: text as a whole.
            Some(c) if indent > c => {
                if let Some(at) = content.find(" #").or_else(|| content.find("\t#")) {
                    return Some((
                        i + 2,
                        content.to_string(),
                        content[..at].trim_end().to_string(),
                    ));
                }
                continue;
            }
            Some(_) => text_at = None,
            None => {}
        }
        let item = content
            .strip_prefix('-')
            .filter(|r| r.is_empty() || r.starts_with([' ', '\t']));
        let (entry, column) = match item {
            Some(rest) => (
                rest.trim_start(),
                indent + (content.len() - rest.trim_start().len()),
            ),
            None => (content, indent),
        };
        if item.is_none() && owner.as_ref().is_some_and(|(c, _)| indent <= *c) {
            owner = None;
        }
        let (value, text) = match entry
            .split_once(':')
            .filter(|(k, v)| !k.contains(' ') && (v.is_empty() || v.starts_with([' ', '\t'])))
        {
            // No value on the line (or only a comment): items or text follow on deeper lines.
            Some((key, v)) if v.trim().is_empty() || v.trim().starts_with('#') => {
                owner = Some((column, key.to_string()));
                if TEXT_KEYS.contains(&key) {
                    text_at = Some(column);
                }
                continue;
            }
            Some((key, v)) => (v.trim(), TEXT_KEYS.contains(&key)),
            // A list item of its own: text under `tags:`, a code or an id elsewhere.
            None => (
                entry,
                item.is_some() && owner.as_ref().is_some_and(|(_, k)| k == "tags"),
            ),
        };
        if value.starts_with(['|', '>']) {
            block = Some(column);
            continue;
        }
        if let Some(rest) = value.strip_prefix('"') {
            quoted = !closes_quote(rest);
            continue;
        }
        if !text || value.starts_with(['\'', '[', '{']) {
            continue;
        }
        if let Some(at) = value.find(" #").or_else(|| value.find("\t#")) {
            return Some((i + 2, value.to_string(), value[..at].trim_end().to_string()));
        }
        if item.is_none() {
            // A plain value may go on over the next, deeper lines.
            text_at = Some(column);
        }
    }
    None
}

/// Whether a double-quoted value's text (after its opening quote) closes on this line.
fn closes_quote(rest: &str) -> bool {
    let mut escaped = false;
    for c in rest.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return true,
            _ => escaped = false,
        }
    }
    false
}

/// A file a record attaches: its SHA-256 and where it is read from (to upload it with the
/// record).
pub type AttachedFile = (ObjectId, PathBuf);

/// Builds and checks a record from an input file with the files it attaches (`attachments:`
/// entries with `path` in the front matter, relative to the file, and `attach`); used by
/// `sign` and by `publish`.
pub fn build_record(
    input: &Path,
    attach: &[PathBuf],
    trust: &TrustView,
    created: Timestamp,
) -> Result<(Object, Vec<AttachedFile>)> {
    let text = util::read_text(input)?;
    build_record_from_text(input, &text, attach, trust, created)
}

/// For a direction or kind the charter does not have: the closest code it has, and where the
/// list is (a ministry types the code from memory; `accord charter show` lists them).
fn taxonomy_hint(e: &accord_core::Rejection, charter: &accord_core::Charter) -> String {
    let (wrong, codes): (&str, Vec<&str>) = match e {
        accord_core::Rejection::UnknownDirection(d) => (
            d,
            charter
                .taxonomy
                .directions
                .iter()
                .map(|x| x.code.as_str())
                .collect(),
        ),
        accord_core::Rejection::UnknownKind(k) => (
            k,
            charter
                .taxonomy
                .kinds
                .iter()
                .map(|x| x.code.as_str())
                .collect(),
        ),
        _ => return String::new(),
    };
    code_hint(wrong, &codes)
}

/// The closest of `codes` to `wrong` (a code typed from memory), and the whole list.
pub fn code_hint(wrong: &str, codes: &[&str]) -> String {
    let closest = codes
        .iter()
        .map(|c| (edit_distance(wrong, c), *c))
        .min()
        .filter(|(d, c)| *d <= 3.max(c.len() / 3))
        .map(|(_, c)| format!(" — did you mean \"{c}\"?"))
        .unwrap_or_else(|| ".".into());
    format!(
        "{closest} The charter's codes: {} (`accord charter show` names each)",
        codes.join(", ")
    )
}

/// Levenshtein distance between two short codes.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// A file the record's own text names, which must lie in the record's directory or below it:
/// a hostile or careless record file (`path: ../../home/me/ministry.key`, an absolute path, a
/// symbolic link leading out) would otherwise have `accord publish` sign, upload and so send
/// to the whole federation any file its user can read. Files from elsewhere are attached with
/// `--attach`, on the command line, where the user names them.
fn within(base: &Path, p: &str) -> Result<PathBuf> {
    let rel = Path::new(p);
    if rel.is_absolute()
        || rel.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
    {
        bail!(
            "a record's file may name only files in its own directory or below (no absolute path, no \"..\"); attach others with --attach"
        );
    }
    let path = base.join(rel);
    let dir = std::fs::canonicalize(if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    })
    .with_context(|| format!("cannot read {}", base.display()))?;
    let real = std::fs::canonicalize(&path)
        .with_context(|| format!("cannot read attachment {}", path.display()))?;
    if !real.starts_with(&dir) {
        bail!(
            "{} leads outside the record's directory (a symbolic link to {}); attach it with --attach if it is meant",
            path.display(),
            real.display()
        );
    }
    Ok(path)
}

/// Reads every file the record attaches, checks it against the charter's limits and fills in
/// its description (name, media type, size, SHA-256, chunk list hash).
fn resolve_attachments(
    input: &Path,
    ri: &mut RecordInput,
    attach: &[PathBuf],
    limits: &accord_core::Limits,
) -> Result<Vec<AttachedFile>> {
    let base = input.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    let mut inputs = std::mem::take(&mut ri.attachments);
    for p in attach {
        inputs.push(AttachmentInput {
            path: Some(p.display().to_string()),
            name: None,
            media_type: None,
            size: None,
            sha256: None,
            chunks: None,
        });
    }
    for mut a in inputs {
        if let Some(p) = a.path.take() {
            let path = if attach.iter().any(|x| x.display().to_string() == p) {
                PathBuf::from(&p)
            } else {
                within(base, &p)
                    .with_context(|| format!("{}: attachment {p:?}", input.display()))?
            };
            let size = std::fs::metadata(&path)
                .with_context(|| format!("cannot read attachment {}", path.display()))?
                .len();
            if size > limits.max_attachment_bytes {
                bail!(
                    "{}: {size} bytes, over the charter's limit of {} bytes per attached file",
                    path.display(),
                    limits.max_attachment_bytes
                );
            }
            let bytes = util::read(&path)?;
            let name = match a.name.clone() {
                Some(n) => typed_name(n, &path),
                None => path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "attachment".into()),
            };
            let mut d = accord_core::attachment::describe(&name, &bytes);
            if let Some(m) = &a.media_type {
                d.media_type = m.clone();
            }
            files.push((d.sha256, path));
            a = AttachmentInput::of(&d);
        }
        ri.attachments.push(a);
    }
    Ok(files)
}

/// An attachment's display name (`name:` beside `path:`) with the file's extension when it
/// names no type of its own: the type is read from the name, so "Методика оценки" for
/// `report.pdf` was signed as `application/octet-stream` — never searched, shown or saved as a
/// PDF. It becomes "Методика оценки.pdf".
fn typed_name(name: String, path: &Path) -> String {
    use accord_core::attachment::media_type_for;
    let unknown = "application/octet-stream";
    let file = path.to_string_lossy();
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if media_type_for(&name) == unknown && media_type_for(&file) != unknown => {
            format!("{name}.{}", ext.to_ascii_lowercase())
        }
        _ => name,
    }
}

/// Builds and checks a record from input text (Markdown with front matter, or JSON).
pub fn build_record_from_text(
    input: &Path,
    text: &str,
    attach: &[PathBuf],
    trust: &TrustView,
    created: Timestamp,
) -> Result<(Object, Vec<AttachedFile>)> {
    let (mut ri, body) = parse_record_input(&input.display().to_string(), text)?;
    let files = resolve_attachments(input, &mut ri, attach, trust.limits())?;
    let rec = ri
        .into_record(trust.federation(), created, body.as_deref())
        .map_err(|e| anyhow!("{}: {e}", input.display()))?;
    check_record_fields(&rec, trust.charter()).map_err(|e| {
        anyhow!(
            "{}: {e}{}",
            input.display(),
            taxonomy_hint(&e, trust.charter())
        )
    })?;
    if trust.charter().member(&rec.member).is_none() {
        bail!(
            "{}: member: {} is not a member of this federation",
            input.display(),
            rec.member
        );
    }
    Ok((Object::Record(rec), files))
}

pub fn sign(
    input: &Path,
    attach: &[PathBuf],
    key: &Path,
    charter: &util::CharterArgs,
    created: Option<Timestamp>,
    out: &Path,
) -> Result<()> {
    let sources: Vec<&Path> = std::iter::once(input)
        .chain(attach.iter().map(PathBuf::as_path))
        .chain(charter.paths())
        .chain([key])
        .collect();
    util::check_signed_out(out, &sources)?;
    let (trust, known) = charter.load()?;
    let key = util::load_secret_key(key)?;
    let (obj, files) = build_record(input, attach, &trust, created.unwrap_or_else(util::now))?;
    let delegated = |member: &MemberCode| {
        matches!(
            trust.check_publisher(member, &key.public_key(), util::now(), None),
            accord_core::trust::PublisherCheck::Ok(_)
        )
    };
    if let Some(m) = trust.charter().member_by_root(&key.public_key())
        && !delegated(&m.code)
    {
        bail!(
            "--key is the root key of member {}: a record is signed by a publisher key the root key delegated (`accord delegate --publisher …`), never by the root key itself",
            m.code
        );
    }
    let signed = obj.sign(&key);
    // Checked as the node will check it, as far as the files given allow: with the key's
    // delegation among `--with`, a key of another member, a delegation expired or out of
    // scope, a body over the charter's bound, a time in the future are all named here.
    match validate_with(signed.as_bytes(), &trust, &known, util::now()) {
        Verdict::Rejected(accord_core::Rejection::Decode(accord_core::DecodeError::TooLarge {
            size,
            limit,
        })) => bail!(
            "{}: the record would be refused: it is {} bytes signed ({}), over the charter's {} bytes ({}) for one object; move long text into an attached file (`attachments:` in the front matter)",
            input.display(),
            size,
            util::size(size as u64),
            limit,
            util::size(limit as u64)
        ),
        Verdict::Rejected(r) => bail!("{}: the record would be refused: {r}", input.display()),
        Verdict::Pending(m @ accord_core::Missing::Delegation { .. }) if known.delegations > 0 => {
            bail!(
                "{}: the record would wait at the node: {m}; is --key the publisher key a delegation among --with names?",
                input.display()
            )
        }
        Verdict::Pending(m) => {
            eprintln!("not checked offline: {m} (pass it with --with FILE to check it here)")
        }
        Verdict::Accepted(_) => {}
    }
    util::write_signed(out, signed.as_bytes(), &sources)?;
    println!("{}", signed.id());
    eprintln!(
        "signed {} → {} ({} bytes)",
        input.display(),
        out.display(),
        signed.as_bytes().len()
    );
    for (hash, path) in &files {
        eprintln!("attaches {}  sha256 {hash}", path.display());
    }
    if !files.is_empty() {
        let list: Vec<String> = files
            .iter()
            .map(|(_, p)| format!("--attach {}", p.display()))
            .collect();
        eprintln!(
            "submit the files with the record: accord submit {} {}",
            out.display(),
            list.join(" ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// A display name without a type takes the file's extension; one with a type, or for a
    /// file of no known type, is kept as written.
    #[test]
    fn a_display_name_without_a_type_takes_the_files_extension() {
        let pdf = Path::new("files/report.PDF");
        assert_eq!(
            typed_name("Методика оценки".into(), pdf),
            "Методика оценки.pdf"
        );
        assert_eq!(typed_name("Report v1.2".into(), pdf), "Report v1.2.pdf");
        assert_eq!(typed_name("Annex.docx".into(), pdf), "Annex.docx");
        assert_eq!(
            typed_name("Data".into(), Path::new("files/data.bin")),
            "Data"
        );
        assert_eq!(typed_name("Data".into(), Path::new("files/data")), "Data");
        assert_eq!(
            accord_core::attachment::media_type_for(&typed_name("Методика".into(), pdf)),
            "application/pdf"
        );
    }

    /// An unquoted ` #` in a text value is refused, naming the line and what would be kept;
    /// quoted, in a block scalar, on a line of its own or after a code it is not.
    #[test]
    fn a_text_value_a_comment_would_cut_is_named() {
        let yaml = "member: KZ\ntitle: Закон #5 о данных\n";
        assert_eq!(
            text_cut_by_a_comment(yaml),
            Some((3, "Закон #5 о данных".into(), "Закон".into()))
        );
        let yaml = "member: KZ\ntags:\n  - egov\n  - law #5\n";
        assert_eq!(
            text_cut_by_a_comment(yaml),
            Some((5, "law #5".into(), "law".into()))
        );
        let yaml = "translations:\n  en:\n    summary: Rule #5 applies\n";
        assert_eq!(text_cut_by_a_comment(yaml).map(|c| c.0), Some(4));
        let yaml = "attachments:\n  - path: a.pdf\n    name: Annex #2\n";
        assert_eq!(text_cut_by_a_comment(yaml).map(|c| c.0), Some(4));
        let yaml = "tags:\n- law\t#5\n";
        assert_eq!(text_cut_by_a_comment(yaml).map(|c| c.0), Some(3));
        // A sibling key after an item's block scalar is read again.
        let yaml =
            "attachments:\n  - name: |\n      Annex\n    path: a #b.pdf\n    name: Plan #2\n";
        assert_eq!(text_cut_by_a_comment(yaml).map(|c| c.0), Some(6));
        // A title or summary on the next line, or going on over several.
        let yaml = "title:\n  Закон #5 о данных\nkind: law\n";
        assert_eq!(text_cut_by_a_comment(yaml).map(|c| c.0), Some(3));
        let yaml = "summary: A long summary\n  that goes on #5 here\nkind: law\n";
        assert_eq!(text_cut_by_a_comment(yaml).map(|c| c.0), Some(3));
        let yaml = "tags: # topics\n  - law #5\n";
        assert_eq!(text_cut_by_a_comment(yaml).map(|c| c.0), Some(3));
        for fine in [
            "summary: A long summary\n  that goes on\nkind: law # a code\n",
            "directions:\n  - e-government  # 3\n  - regulation\n",
            "references:\n  - 3f2a9b  # the 2023 decree\ntags: [a]\n",
            "tags:\n  - law\ndirections:\n  - regulation # old code\n",
            "summary: \"A long summary\n  - with a line # that looks like an item\"\ntitle: Fine\n",
            "links:\n  - url: https://example.org/page#section\n    title: \"Page\"\n",
            "title: \"Закон #5 о данных\"\n",
            "title: 'Rule #5'\n",
            "# a comment of its own\ntitle: Plain\n",
            "date: 2025-01-01 # the decree's date\nkind: regulatory-note # a code\n",
            "body: |\n  ## Heading #1\n  text # more\ntitle: After\n",
            "translations:\n  en:\n    body: >\n      a #b\n    title: Ok\n",
            "tags: [egov, law]\n",
            "title: C#\n",
        ] {
            assert_eq!(text_cut_by_a_comment(fine), None, "{fine}");
        }
    }

    /// The hint reads as sentences whether or not a code is close to the one typed.
    #[test]
    fn a_code_hint_is_punctuated_with_or_without_a_suggestion() {
        let codes = ["e-government", "regulation"];
        assert_eq!(
            code_hint("e-goverment", &codes),
            " — did you mean \"e-government\"? The charter's codes: e-government, regulation (`accord charter show` names each)"
        );
        assert!(
            code_hint("zzzzzzzzzzzzzzzzzzzz", &codes).starts_with(". The charter's codes: "),
            "{}",
            code_hint("zzzzzzzzzzzzzzzzzzzz", &codes)
        );
    }
    use super::*;

    /// A record file names its attachments relative to itself; one that reaches out of its
    /// directory — by `..`, an absolute path or a symbolic link — is refused before any file is
    /// read, so a hostile note cannot have `accord publish` upload the user's key.
    #[test]
    fn a_wrong_direction_gets_the_closest_code_and_the_list() {
        let charter =
            accord_core::devnet::DevFederation::new(&["KZ"], [1; 32], accord_core::Timestamp(1))
                .unwrap()
                .charter;
        let hint = taxonomy_hint(
            &accord_core::Rejection::UnknownDirection("e-goverment".into()),
            &charter,
        );
        assert!(hint.contains("did you mean \"e-government\"?"), "{hint}");
        assert!(
            hint.contains("digital-skills") && hint.contains("accord charter show"),
            "{hint}"
        );
        let hint = taxonomy_hint(&accord_core::Rejection::UnknownKind("zzz".into()), &charter);
        assert!(
            !hint.contains("did you mean") && hint.contains("regulatory-note"),
            "{hint}"
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn a_records_file_cannot_attach_files_outside_its_directory() {
        let root = tempfile::tempdir().unwrap();
        let notes = root.path().join("notes");
        std::fs::create_dir_all(notes.join("annex")).unwrap();
        std::fs::write(root.path().join("ministry.key"), b"secret").unwrap();
        std::fs::write(notes.join("annex/plan.pdf"), b"%PDF").unwrap();
        std::os::unix::fs::symlink(root.path().join("ministry.key"), notes.join("annex.pdf"))
            .unwrap();
        assert_eq!(
            within(&notes, "annex/plan.pdf").unwrap(),
            notes.join("annex/plan.pdf")
        );
        assert!(within(&notes, "./annex/plan.pdf").is_ok());
        for bad in [
            "../ministry.key",
            "annex/../../ministry.key",
            root.path().join("ministry.key").to_str().unwrap(),
        ] {
            let e = within(&notes, bad).unwrap_err().to_string();
            assert!(e.contains("only files in its own directory"), "{bad}: {e}");
        }
        let e = within(&notes, "annex.pdf").unwrap_err().to_string();
        assert!(e.contains("leads outside the record's directory"), "{e}");
    }
}
