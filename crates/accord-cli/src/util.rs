//! Small helpers shared by the commands: files, keys, charters, time.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use accord_core::cbor;
use accord_core::validate::{KnownRecords, validate_with};
use accord_core::{
    Limits, MemberCode, Object, ObjectId, PublicKey, Rejection, SecretKey, SignedObject, Timestamp,
    TrustView, Verdict, Verified,
};
use anyhow::{Context, Result, anyhow, bail};

/// `n` and the noun in its number: "1 record", "5 records", "0 records".
/// A size in bytes as read: "1.05 MiB", "420 KiB", "312 bytes".
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.2} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.0} KiB", b / KIB)
    } else {
        count(bytes, "byte", "bytes")
    }
}

pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The current time as a [`Timestamp`].
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Parses a `--created`/`--until`-style time argument.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    let t = s.trim().parse::<Timestamp>()?;
    // Bare digits are Unix milliseconds to the parser: a date typed without its dashes
    // ("20261201") would become a moment of 1970 and, on a revocation, revoke everything the key
    // ever signed. Milliseconds of this century are still taken (scripts pass them).
    if s.trim().bytes().all(|c| c.is_ascii_digit())
        && t < Timestamp::from_date(MS_FROM).unwrap_or(Timestamp(0))
    {
        return Err(format!(
            "{s:?} would be read as Unix milliseconds ({t}); write a date as YYYY-MM-DD or a time as YYYY-MM-DDTHH:MM:SSZ"
        ));
    }
    Ok(t)
}

/// The first day bare Unix milliseconds are taken for (earlier ones are refused as a date typed
/// without its dashes).
const MS_FROM: &str = "2000-01-01";

/// [`parse_time`] for the end of a period: a plain date means the end of that day (UTC), as
/// `accord query --until` reads it, so `--until 2027-12-31` covers the whole of the 31st.
pub fn parse_end_time(s: &str) -> Result<Timestamp, String> {
    let t = parse_time(s)?;
    Ok(if s.trim().len() == 10 {
        Timestamp(t.0 + 86_400_000 - 1)
    } else {
        t
    })
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{} is not UTF-8 text (byte {} is not valid UTF-8): save it as UTF-8 (it may be in Windows-1251 or another legacy encoding)",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// A file written whole or not at all: the bytes go to a temporary file beside it, which
/// replaces the file only at [`AtomicFile::commit`]; dropped before that (an error half-way),
/// the temporary file is removed and whatever was at the path stays as it was. The temporary
/// file is always created anew (`O_EXCL`): whatever was left at its name — a file of another
/// mode, a symbolic link planted in a shared directory — is removed, never written through, so
/// a secret key never lands in a file it did not create.
pub struct AtomicFile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    file: Option<std::io::BufWriter<fs::File>>,
}

/// Syncs the directory that holds `path`, so that a file created, renamed or removed there
/// stays so after a power cut.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // As the store syncs its own (a filesystem that cannot sync a directory at all is taken as
    // it is).
    accord_store::sync_dir(dir)
        .with_context(|| format!("cannot sync the directory {}", dir.display()))
}

impl AtomicFile {
    pub fn create(path: &Path, mode: u32) -> Result<AtomicFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| anyhow!("{} is not a file path", path.display()))?;
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        let create = || {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&tmp)
        };
        let f = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Left by an interrupted write, or planted: removed (a link itself, not what
                // it points to), then created anew.
                fs::remove_file(&tmp)
                    .with_context(|| format!("cannot remove {}", tmp.display()))?;
                create()
            }
            other => other,
        }
        .with_context(|| format!("cannot write {}", tmp.display()))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            file: Some(std::io::BufWriter::new(f)),
        })
    }

    /// What has been written so far, to be read back (checked) before [`AtomicFile::commit`].
    pub fn written(&mut self) -> Result<fs::File> {
        if let Some(f) = &mut self.file {
            f.flush()
                .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        }
        fs::File::open(&self.tmp).with_context(|| format!("cannot read {}", self.tmp.display()))
    }

    /// Syncs the temporary file and puts it in the file's place.
    pub fn commit(mut self) -> Result<()> {
        let Some(f) = self.file.take() else {
            bail!("{} was already written", self.path.display());
        };
        let f = f
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all().map(|_| f))
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        drop(f);
        fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        // The new name reaches the disk too: after a power cut the file is there, as the
        // command said it was.
        sync_parent(&self.path)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Refuses a data directory that holds no store, for the commands that work on a stopped
/// node's store (`check`, `reindex`): opening one would create an empty store there and report
/// it consistent — what a shell without the service's `ACCORD_DATA_DIR` would see.
pub fn existing_store(dir: &Path) -> Result<()> {
    accord_node::unfinished_restore(dir)?;
    if dir.join("conf").is_file() && dir.join("db").is_file() {
        return Ok(());
    }
    bail!(
        "{}: no store here. Is this the node's data_dir? The node's service may set it apart \
         from node.toml (the systemd unit sets ACCORD_DATA_DIR=/var/lib/accord/data): give it \
         the same way, e.g. `ACCORD_DATA_DIR=/var/lib/accord/data accord check --config …`",
        dir.display()
    )
}

/// Writes a file atomically ([`AtomicFile`]) with the given mode.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = AtomicFile::create(path, mode)?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.commit()
}

/// Writes a signed object file: [`write_file`], refusing to replace a file that is not itself
/// signed objects (`--out note.md` would otherwise destroy the Markdown it was signed from) or
/// that is one of the `sources` just read.
pub fn write_signed(path: &Path, bytes: &[u8], sources: &[&Path]) -> Result<()> {
    check_signed_out(path, sources)?;
    write_file(path, bytes, 0o644)
}

/// The check of [`write_signed`], to run before any work whose result it would refuse.
pub fn check_signed_out(path: &Path, sources: &[&Path]) -> Result<()> {
    if let Ok(existing) = fs::read(path) {
        let same = |p: &&Path| matches!((fs::canonicalize(p), fs::canonicalize(path)), (Ok(a), Ok(b)) if a == b);
        if sources.iter().any(same) {
            bail!(
                "--out {} is also an input of this command (the file being signed, the charter, a --with file or a key); name another file (e.g. {}.cbor)",
                path.display(),
                path.with_extension("").display()
            );
        }
        if is_key_file(&existing) {
            bail!(
                "--out {} is a key file; refusing to overwrite it (name another file)",
                path.display()
            );
        }
        if !existing.is_empty() && !is_signed_object_file(&existing) {
            bail!(
                "--out {} exists and is not a signed object file; refusing to overwrite it (remove it first, or name another file)",
                path.display()
            );
        }
    }
    Ok(())
}

/// Refuses to let an output (`--out` of a backup or an export) replace a key file: a PEM
/// file there is almost surely a slip of the operator's hand, and a lost root key takes a
/// threshold of members to replace. Reads only the file's first 4 KiB.
pub fn refuse_to_replace_key(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut head = Vec::new();
    if let Ok(f) = fs::File::open(path) {
        let _ = f.take(4096).read_to_end(&mut head);
    }
    if is_key_file(&head) {
        bail!(
            "--out {} is a key file; refusing to overwrite it (name another file)",
            path.display()
        );
    }
    Ok(())
}

/// Whether `bytes` look like a PEM file (a secret or public key): text with a `-----BEGIN`
/// line. Checked before anything else, because PEM text is often well-formed CBOR too.
fn is_key_file(bytes: &[u8]) -> bool {
    bytes
        .windows(b"-----BEGIN ".len())
        .any(|w| w == b"-----BEGIN ")
}

/// Whether every item of `bytes` is a signed object's envelope (a charter draft's too):
/// well-formed CBOR alone is not enough, since most printable text is CBOR of some kind.
fn is_signed_object_file(bytes: &[u8]) -> bool {
    let limits = Limits::default();
    split_objects(bytes).is_ok_and(|items| {
        !items.is_empty()
            && items
                .iter()
                .all(|item| SignedObject::decode_draft(item, usize::MAX, limits.scan()).is_ok())
    })
}

/// Writes a secret key as PKCS#8 PEM, mode 0600; refuses to overwrite unless `force`.
pub fn write_secret_key(
    path: &Path,
    key: &SecretKey,
    notice: Option<&str>,
    force: bool,
) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; refusing to overwrite a key (move it away first; `accord keys generate` replaces one with --force)",
            path.display()
        );
    }
    let pem = key.to_pem()?;
    let mut text = String::new();
    if let Some(n) = notice {
        text.push_str(n);
        text.push('\n');
    }
    text.push_str(&pem);
    write_file(path, text.as_bytes(), 0o600)
}

pub fn load_secret_key(path: &Path) -> Result<SecretKey> {
    let text = read_text(path)?;
    SecretKey::from_pem(&text)
        .with_context(|| format!("{} is not an ed25519 private key", path.display()))
}

/// A public key given as `ed25519:<hex>` text, or as a path to a private or public key file.
pub fn public_key_arg(s: &str) -> Result<PublicKey> {
    if s.starts_with("ed25519:") {
        return s.parse::<PublicKey>().map_err(|e| anyhow!("{e}"));
    }
    let p = Path::new(s);
    if p.exists() {
        let text = read_text(p)?;
        if let Ok(k) = text.trim().parse::<PublicKey>() {
            return Ok(k);
        }
        return Ok(SecretKey::from_pem(&text)
            .with_context(|| format!("{s} holds no key"))?
            .public_key());
    }
    bail!("{s:?} is neither a public key (ed25519:<64 hex>) nor a key file")
}

/// Loads the genesis charter (the federation's trust anchor) and builds the trust view.
pub fn load_charter(path: &Path) -> Result<(TrustView, SignedObject)> {
    let bytes = read(path)?;
    let (trust, v) = TrustView::from_genesis(&bytes)
        .map_err(|e| anyhow!("{} is not a valid genesis charter: {e}", path.display()))?;
    Ok((trust, v.signed().clone()))
}

/// Records accepted so far, by id, with their member and signer: what a retraction or a new
/// edition among the same files is checked against.
#[derive(Debug, Default)]
pub struct Accepted {
    records: std::collections::HashMap<ObjectId, (MemberCode, PublicKey)>,
    /// Delegations among them: a signing tool given none cannot judge a publisher key.
    pub delegations: usize,
}

impl Accepted {
    /// Notes `v` if it is a record (or counts it if it is a delegation).
    pub fn note(&mut self, v: &Verified<Object>) {
        match v.object() {
            Object::Record(r) => {
                self.records.insert(v.id(), (r.member.clone(), v.signer()));
            }
            Object::Delegation(_) => self.delegations += 1,
            _ => {}
        }
    }
}

impl KnownRecords for Accepted {
    fn record_meta(&self, id: &ObjectId) -> Option<(MemberCode, PublicKey)> {
        self.records.get(id).cloned()
    }
}

/// An object read from a file, named for messages (`file` or `file#N` in a sequence).
pub struct Named {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Every object of `files`, named.
pub fn read_objects(files: &[PathBuf]) -> Result<Vec<Named>> {
    let mut items = Vec::new();
    for p in files {
        let data = read(p)?;
        let parts = split_objects(&data).map_err(|e| anyhow!("{}: {e}", p.display()))?;
        let many = parts.len() > 1;
        for (i, part) in parts.into_iter().enumerate() {
            let name = if many {
                format!("{}#{}", p.display(), i + 1)
            } else {
                p.display().to_string()
            };
            items.push(Named {
                name,
                bytes: part.to_vec(),
            });
        }
    }
    Ok(items)
}

/// What [`settle`] made of one object: accepted (with the line `describe` wrote for it when it
/// was, against the trust view of that moment), or why not.
pub type Settled = Result<(Verified<Object>, String), String>;

/// Validates `items` against `trust` at `now`, applying each accepted object (a charter
/// amendment or a delegation grows the view, a record becomes known to later retractions and
/// editions) and retrying the others while anything new is accepted: files may come in any
/// order, charter versions too (a version that skips ahead waits for the one before it). The
/// charter versions are settled first, so that everything else is judged by the charter in
/// force at the end, never by a version a later one among the files replaces. `describe`
/// writes an accepted object's line at the moment it is accepted. Each item's outcome, in the
/// order they were decided; an item left waiting says what it waits for.
pub fn settle(
    trust: &mut TrustView,
    known: &mut Accepted,
    items: Vec<Named>,
    now: Timestamp,
    describe: &dyn Fn(&Verified<Object>, &TrustView) -> String,
) -> Vec<(String, Settled)> {
    let limits = Limits::default();
    let is_charter = |n: &Named| {
        SignedObject::decode_draft(&n.bytes, usize::MAX, limits.scan())
            .ok()
            .and_then(|s| Object::decode_body(s.body(), &limits).ok())
            .is_some_and(|o| o.object_type() == accord_core::ObjectType::Charter)
    };
    let (charters, others): (Vec<Named>, Vec<Named>) = items.into_iter().partition(is_charter);
    let mut results = settle_pass(trust, known, charters, now, describe);
    results.extend(settle_pass(trust, known, others, now, describe));
    results
}

/// One round of [`settle`] over `items`.
fn settle_pass(
    trust: &mut TrustView,
    known: &mut Accepted,
    items: Vec<Named>,
    now: Timestamp,
    describe: &dyn Fn(&Verified<Object>, &TrustView) -> String,
) -> Vec<(String, Settled)> {
    let mut results = Vec::new();
    let mut todo = items;
    loop {
        let mut progress = false;
        let mut waiting = Vec::new();
        for item in todo {
            match validate_with(&item.bytes, trust, &*known, now) {
                Verdict::Accepted(v) => {
                    trust.apply(&v);
                    known.note(&v);
                    let line = describe(&v, trust);
                    results.push((item.name, Ok((v, line))));
                    progress = true;
                }
                Verdict::Pending(_) | Verdict::Rejected(Rejection::CharterVersionSkip { .. }) => {
                    waiting.push(item)
                }
                Verdict::Rejected(r) => results.push((item.name, Err(format!("invalid: {r}")))),
            }
        }
        todo = waiting;
        if !progress || todo.is_empty() {
            break;
        }
    }
    for item in todo {
        let reason = match validate_with(&item.bytes, trust, &*known, now) {
            Verdict::Pending(m) => format!("not verifiable: {m} (pass it with --with FILE)"),
            Verdict::Rejected(r) => format!("invalid: {r}"),
            Verdict::Accepted(_) => "accepted only after the others were settled".to_string(),
        };
        results.push((item.name, Err(reason)));
    }
    results
}

/// `--charter` and `--with`: the federation's rules a signing tool checks what it signs
/// against.
#[derive(clap::Args, Debug, Clone)]
pub struct CharterArgs {
    /// The federation's genesis charter (charter.cbor).
    #[arg(long)]
    pub charter: PathBuf,
    /// A charter amendment adopted since the genesis, or a delegation (repeat for each, any
    /// order): without the amendments, a member added, a root key replaced or a direction added
    /// since the genesis is unknown here.
    #[arg(long = "with", value_name = "FILE")]
    pub with: Vec<PathBuf>,
}

impl CharterArgs {
    /// The files given: the charter, then each `--with`.
    pub fn paths(&self) -> Vec<&Path> {
        std::iter::once(self.charter.as_path())
            .chain(self.with.iter().map(PathBuf::as_path))
            .collect()
    }

    /// [`load_trust`] of these files.
    pub fn load(&self) -> Result<(TrustView, Accepted)> {
        load_trust(&self.charter, &self.with)
    }
}

/// The trust view of the genesis charter at `charter` grown by the objects of `with`: the
/// charter amendments the federation adopted since (a member added, a root key replaced, a
/// direction added to the taxonomy) and any delegations. Signing tools check what they sign
/// against it, so they follow the charter in force rather than the genesis alone.
pub fn load_trust(charter: &Path, with: &[PathBuf]) -> Result<(TrustView, Accepted)> {
    let (mut trust, _) = load_charter(charter)?;
    let mut known = Accepted::default();
    let items = read_objects(with)?;
    for (name, r) in settle(&mut trust, &mut known, items, now(), &|_, _| String::new()) {
        if let Err(e) = r {
            bail!("--with {name}: {e}");
        }
    }
    Ok((trust, known))
}

/// Splits a file into its objects: a single envelope or a CBOR sequence of them.
pub fn split_objects(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let limits = Limits::default();
    cbor::split_sequence(bytes, limits.scan()).map_err(|e| anyhow!("not a CBOR object file: {e}"))
}

/// Comma-separated values, trimmed, empties dropped.
pub fn list(s: &[String]) -> Vec<String> {
    s.iter()
        .flat_map(|x| x.split(','))
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signed object never replaces the Markdown it came from, nor any file that is not
    /// signed objects; it does replace an earlier signed file.
    #[test]
    fn a_signed_object_replaces_only_a_signed_object_file() -> Result<()> {
        let d = tempfile::tempdir()?;
        let note = d.path().join("note.md");
        fs::write(&note, "---\nkind: x\n---\nbody")?;
        let e = write_signed(&note, b"\xa0", &[&note])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is also an input of this command"), "{e}");
        let other = d.path().join("other.md");
        fs::write(&other, "# notes")?;
        let e = write_signed(&other, b"\xa0", &[&note])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a signed object file"), "{e}");
        assert_eq!(fs::read_to_string(&note)?, "---\nkind: x\n---\nbody");
        assert_eq!(fs::read_to_string(&other)?, "# notes");
        let out = d.path().join("note.cbor");
        let first = SignedObject::unsigned(b"\xa0".to_vec());
        let second = SignedObject::unsigned(b"\xa1\x01\x02".to_vec());
        write_signed(&out, first.as_bytes(), &[&note])?;
        write_signed(&out, second.as_bytes(), &[&note])?;
        assert_eq!(fs::read(&out)?, second.as_bytes());
        // Well-formed CBOR that is not an envelope is not a signed object file.
        let cbor = d.path().join("map.cbor");
        fs::write(&cbor, b"\xa0")?;
        let e = write_signed(&cbor, first.as_bytes(), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a signed object file"), "{e}");
        Ok(())
    }

    /// A key file is never replaced by a signed object, a backup or an export, whatever its
    /// bytes happen to read as (PEM text is well-formed CBOR for about half of all keys).
    #[test]
    fn a_key_file_is_never_replaced_by_an_output() -> Result<()> {
        let d = tempfile::tempdir()?;
        let signed = SignedObject::unsigned(b"\xa0".to_vec());
        for seed in 0..64u8 {
            let key = d.path().join(format!("k{seed}.key"));
            let notice = (seed % 2 == 0).then_some("# development key: never use in production");
            write_secret_key(&key, &SecretKey::from_seed([seed; 32]), notice, false)?;
            let pem = fs::read(&key)?;
            let e = write_signed(&key, signed.as_bytes(), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains("is a key file"), "seed {seed}: {e}");
            let e = refuse_to_replace_key(&key).unwrap_err().to_string();
            assert!(e.contains("is a key file"), "seed {seed}: {e}");
            assert_eq!(fs::read(&key)?, pem, "seed {seed}");
        }
        // Outputs that are not keys, or not there yet, are fine.
        refuse_to_replace_key(&d.path().join("absent.cbor"))?;
        let old = d.path().join("old-backup.cbor");
        fs::write(&old, signed.as_bytes())?;
        refuse_to_replace_key(&old)?;
        Ok(())
    }

    /// A date typed without its dashes is refused, naming what it would have meant; a
    /// millisecond time of this century is taken; a plain date as an end covers its whole day.
    #[test]
    fn dates_without_dashes_are_refused_and_an_end_date_covers_its_day() {
        let e = parse_time("20261201").unwrap_err();
        assert!(
            e.contains("Unix milliseconds") && e.contains("1970-01-01"),
            "{e}"
        );
        assert!(e.contains("YYYY-MM-DD"), "{e}");
        assert_eq!(
            parse_time("1798761600000").map(|t| t.to_string()),
            Ok("2027-01-01T00:00:00.000Z".to_string())
        );
        assert_eq!(
            parse_end_time("2027-12-31").map(|t| t.to_string()),
            Ok("2027-12-31T23:59:59.999Z".to_string())
        );
        assert_eq!(
            parse_end_time("2027-12-31T12:00:00Z").map(|t| t.to_string()),
            Ok("2027-12-31T12:00:00.000Z".to_string())
        );
        assert!(parse_end_time("31.12.2027").is_err());
    }

    /// A link planted at the temporary file's name is replaced, not written through, and the
    /// file gets its own mode.
    #[test]
    fn a_planted_link_does_not_receive_the_file() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir()?;
        let elsewhere = d.path().join("readable-by-all");
        fs::write(&elsewhere, b"public")?;
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o644))?;
        std::os::unix::fs::symlink(&elsewhere, d.path().join(".node.key.tmp"))?;
        let key = d.path().join("node.key");
        write_file(&key, b"secret", 0o600)?;
        assert_eq!(fs::read(&elsewhere)?, b"public");
        assert_eq!(fs::read(&key)?, b"secret");
        assert_eq!(fs::metadata(&key)?.permissions().mode() & 0o777, 0o600);
        assert!(!d.path().join(".node.key.tmp").exists());
        // A stale temporary file of another mode: replaced too.
        fs::write(d.path().join(".node.key.tmp"), b"old")?;
        fs::set_permissions(
            d.path().join(".node.key.tmp"),
            fs::Permissions::from_mode(0o666),
        )?;
        write_file(&key, b"again", 0o600)?;
        assert_eq!(fs::metadata(&key)?.permissions().mode() & 0o777, 0o600);
        Ok(())
    }
}
