//! Small helpers shared by the commands: files, keys, charters, time.

use std::fs;
use std::io::Write;
use std::path::Path;

use accord_core::cbor;
use accord_core::{Limits, PublicKey, SecretKey, SignedObject, Timestamp, TrustView};
use anyhow::{Context, Result, anyhow, bail};

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
    s.parse::<Timestamp>()
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))
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
        Ok(())
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

/// Writes a secret key as PKCS#8 PEM, mode 0600; refuses to overwrite unless `force`.
pub fn write_secret_key(
    path: &Path,
    key: &SecretKey,
    notice: Option<&str>,
    force: bool,
) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; refusing to overwrite a key (use --force to replace it)",
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
