//! The blob store: attachment files by SHA-256, beside the object store
//! (`<data_dir>/blobs/`).
//!
//! A complete blob is the file `<hex>`, written under a temporary name, synced and renamed, so
//! that a blob under its final name is always whole and verified. A download in progress is
//! `<hex>.part` (the verified chunks so far, in order) with its checked chunk list in
//! `<hex>.list`, so that a transfer interrupted by a restart resumes after its last whole
//! chunk. `<hex>.json` is the sidecar: the file name and media type records give it and the
//! records that name it (for serving and garbage collection); `<hex>.txt` the text extracted
//! for search. Blocking I/O: call from the blocking pool, never from an async worker.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use accord_core::ObjectId;
use accord_core::attachment::CHUNK_SIZE;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What records say about a blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    pub name: String,
    pub media_type: String,
    pub size: u64,
    /// Ids (hex) of the records that name it: at most [`MAX_REFERENCES`] (see [`Self::refer`]).
    pub records: BTreeSet<String>,
    /// Why text could not be extracted, if it could not.
    #[serde(default)]
    pub extract_error: Option<String>,
    /// More records name it than `records` lists: it is kept for good (no garbage collection
    /// can tell that none of them is live).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

/// The records a sidecar lists at most. The sidecar is written again for every record added
/// to it: without a bound, a member naming one file from many records made every node write
/// O(n²) bytes (and sync them); past the bound a record only marks the file as named by more.
pub const MAX_REFERENCES: usize = 1024;

impl BlobMeta {
    /// Adds `record` to the records that name the blob; whether the sidecar changed (and so
    /// must be written).
    pub fn refer(&mut self, record: &ObjectId) -> bool {
        let id = record.to_string();
        if self.records.contains(&id) {
            return false;
        }
        if self.records.len() < MAX_REFERENCES {
            self.records.insert(id)
        } else {
            !std::mem::replace(&mut self.more, true)
        }
    }
}

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file's SHA-256 is {got}, not {want}")]
    Mismatch { want: ObjectId, got: ObjectId },
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

/// Syncs a directory, so that a file created, renamed or removed in it stays so after a power
/// cut; an error is the caller's (the write is not durable). A filesystem that cannot sync a
/// directory at all (some network filesystems answer EINVAL or ENOTSUP) is taken as it is.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match fs::File::open(dir)?.sync_all() {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

impl BlobStore {
    /// Opens (creating) the store in `dir` and removes temporary files a crash left.
    pub fn open(dir: &Path) -> Result<BlobStore, BlobError> {
        fs::create_dir_all(dir)?;
        for e in fs::read_dir(dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                let _ = fs::remove_file(&p);
            }
        }
        Ok(BlobStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The store in `dir` without touching the disk (for readers; [`BlobStore::open`]
    /// creates it).
    pub fn at(dir: &Path) -> BlobStore {
        BlobStore {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, hash: &ObjectId, suffix: &str) -> PathBuf {
        self.dir.join(format!("{hash}{suffix}"))
    }

    /// The path of a complete blob.
    pub fn path(&self, hash: &ObjectId) -> PathBuf {
        self.file(hash, "")
    }

    pub fn has(&self, hash: &ObjectId) -> bool {
        self.path(hash).is_file()
    }

    /// Writes `bytes` to `path` whole or not at all: through a temporary file of its own (two
    /// writers of one file at once, such as an upload and its client's retry, never truncate
    /// each other's, and a reader never sees a partial file under the final name).
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!(
            "{}{}-{n}.tmp",
            path.extension()
                .map(|e| format!("{}.", e.to_string_lossy()))
                .unwrap_or_default(),
            std::process::id()
        ));
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// Stores a whole file after checking its SHA-256 (deduplicated: an existing blob is kept).
    pub fn put(&self, hash: &ObjectId, bytes: &[u8]) -> Result<(), BlobError> {
        let got = ObjectId(Sha256::digest(bytes).into());
        if got != *hash {
            return Err(BlobError::Mismatch { want: *hash, got });
        }
        if !self.has(hash) {
            self.write_atomic(&self.path(hash), bytes)?;
        }
        Ok(())
    }

    /// Chunk `index` of a complete blob (`None` when the blob or the chunk is not held).
    pub fn read_chunk(&self, hash: &ObjectId, index: u64) -> std::io::Result<Option<Vec<u8>>> {
        let mut f = match fs::File::open(self.path(hash)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let start = index.saturating_mul(CHUNK_SIZE as u64);
        if start >= len {
            return Ok(None);
        }
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity(CHUNK_SIZE.min((len - start) as usize));
        f.take(CHUNK_SIZE as u64).read_to_end(&mut buf)?;
        Ok(Some(buf))
    }

    /// The chunk list of a complete blob: kept beside it (`<hex>.list`) once computed, so that
    /// peers asking for it again cost a small read, not a re-hash of the file.
    pub fn chunk_list(&self, hash: &ObjectId) -> std::io::Result<Option<Vec<u8>>> {
        let Ok(size) = fs::metadata(self.path(hash)).map(|m| m.len()) else {
            return Ok(None);
        };
        let want = accord_core::attachment::chunk_count(size) * 32;
        if let Some(l) = self.saved_list(hash).filter(|l| l.len() as u64 == want) {
            return Ok(Some(l));
        }
        let list = self.compute_chunk_list(hash)?;
        if let Some(l) = &list {
            let _ = self.save_list(hash, l);
        }
        Ok(list)
    }

    fn compute_chunk_list(&self, hash: &ObjectId) -> std::io::Result<Option<Vec<u8>>> {
        let mut f = match fs::File::open(self.path(hash)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut list = Vec::new();
        let mut buf = vec![0u8; CHUNK_SIZE];
        loop {
            let n = read_full(&mut f, &mut buf)?;
            if n == 0 {
                break;
            }
            list.extend_from_slice(&Sha256::digest(&buf[..n]));
            if n < CHUNK_SIZE {
                break;
            }
        }
        Ok(Some(list))
    }

    /// The checked chunk list of a download in progress, if saved.
    pub fn saved_list(&self, hash: &ObjectId) -> Option<Vec<u8>> {
        fs::read(self.file(hash, ".list")).ok()
    }

    pub fn save_list(&self, hash: &ObjectId, list: &[u8]) -> std::io::Result<()> {
        self.write_atomic(&self.file(hash, ".list"), list)
    }

    /// Bytes of verified chunks downloaded so far (a torn last write is cut back to whole
    /// chunks).
    pub fn partial_len(&self, hash: &ObjectId) -> std::io::Result<u64> {
        let p = self.file(hash, ".part");
        let len = match fs::metadata(&p) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let whole = len - len % CHUNK_SIZE as u64;
        if whole != len {
            fs::OpenOptions::new()
                .write(true)
                .open(&p)?
                .set_len(whole)?;
        }
        Ok(whole)
    }

    /// Appends a verified chunk to the download of `hash` (synced before it counts).
    pub fn append_chunk(&self, hash: &ObjectId, chunk: &[u8]) -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.file(hash, ".part"))?;
        f.write_all(chunk)?;
        f.sync_data()
    }

    /// Completes a download: checks the whole file's SHA-256 and moves it into place.
    pub fn finish(&self, hash: &ObjectId) -> Result<(), BlobError> {
        let part = self.file(hash, ".part");
        let mut h = Sha256::new();
        let mut f = fs::File::open(&part)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let got = ObjectId(h.finalize().into());
        if got != *hash {
            self.discard_partial(hash);
            return Err(BlobError::Mismatch { want: *hash, got });
        }
        f.sync_all()?;
        fs::rename(&part, self.path(hash))?;
        // The checked chunk list stays beside the file: what peers ask for first.
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// Drops a download in progress.
    pub fn discard_partial(&self, hash: &ObjectId) {
        let _ = fs::remove_file(self.file(hash, ".part"));
        let _ = fs::remove_file(self.file(hash, ".list"));
    }

    pub fn meta(&self, hash: &ObjectId) -> Option<BlobMeta> {
        fs::read(self.file(hash, ".json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    pub fn write_meta(&self, hash: &ObjectId, meta: &BlobMeta) -> std::io::Result<()> {
        let b = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
        self.write_atomic(&self.file(hash, ".json"), &b)
    }

    /// Writes a sidecar `<hex><suffix>` atomically (the node's fetch queue uses `.want`).
    pub fn write_sidecar(
        &self,
        hash: &ObjectId,
        suffix: &str,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        self.write_atomic(&self.file(hash, suffix), bytes)
    }

    /// Writes a file of the blob directory's own, `name` (no blob's name), atomically.
    pub fn write_sidecar_file(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.write_atomic(&self.dir.join(name), bytes)
    }

    /// The text extracted from a blob, if any.
    pub fn text(&self, hash: &ObjectId) -> Option<String> {
        fs::read_to_string(self.file(hash, ".txt")).ok()
    }

    /// Whether the text of a held blob was extracted (without reading it).
    pub fn has_text(&self, hash: &ObjectId) -> bool {
        self.file(hash, ".txt").exists()
    }

    /// When the text of a held blob was written (`None`: not extracted).
    pub fn text_written(&self, hash: &ObjectId) -> Option<std::time::SystemTime> {
        fs::metadata(self.file(hash, ".txt"))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Notes, durably and before its text is written, that the records of a blob are to be
    /// indexed again with that text: the note stays until an index commit holds them
    /// ([`Self::clear_reindex`]), so that a node stopped in between does it at its next start.
    pub fn mark_reindex(&self, hash: &ObjectId) -> std::io::Result<()> {
        self.write_atomic(&self.file(hash, ".reindex"), b"")
    }

    /// The blobs whose records are still to be indexed again ([`Self::mark_reindex`]).
    pub fn reindex_pending(&self) -> std::io::Result<Vec<ObjectId>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let name = e?.file_name();
            if let Some(h) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".reindex"))
                .and_then(|n| n.parse::<ObjectId>().ok())
            {
                out.push(h);
            }
        }
        out.sort();
        Ok(out)
    }

    /// An index commit holds the records of this blob with its text.
    pub fn clear_reindex(&self, hash: &ObjectId) -> std::io::Result<()> {
        match fs::remove_file(self.file(hash, ".reindex")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn write_text(&self, hash: &ObjectId, text: &str) -> std::io::Result<()> {
        self.write_atomic(&self.file(hash, ".txt"), text.as_bytes())
    }

    /// Every complete blob.
    pub fn list(&self) -> std::io::Result<Vec<ObjectId>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let name = e?.file_name();
            if let Some(h) = name.to_str().and_then(|n| n.parse::<ObjectId>().ok()) {
                out.push(h);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a blob and everything beside it.
    pub fn remove(&self, hash: &ObjectId) -> std::io::Result<()> {
        for suffix in ["", ".json", ".txt", ".part", ".list", ".want", ".reindex"] {
            match fs::remove_file(self.file(hash, suffix)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Re-hashes every complete blob: the ones whose content no longer matches their name.
    pub fn verify_all(&self) -> std::io::Result<(usize, Vec<ObjectId>)> {
        let mut bad = Vec::new();
        let all = self.list()?;
        for h in &all {
            let mut f = fs::File::open(self.path(h))?;
            let mut s = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                s.update(&buf[..n]);
            }
            if ObjectId(s.finalize().into()) != *h {
                bad.push(*h);
            }
        }
        Ok((all.len(), bad))
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_core::attachment::{check_chunk, chunk_list, describe};

    #[test]
    fn a_sidecar_lists_at_most_its_bound_of_records_and_marks_the_rest() {
        let mut meta = BlobMeta::default();
        let id = |i: usize| ObjectId::from_slice(&Sha256::digest(i.to_be_bytes())).unwrap();
        for i in 0..MAX_REFERENCES {
            assert!(meta.refer(&id(i)));
            assert!(!meta.refer(&id(i)), "a record named twice changes nothing");
        }
        assert!(!meta.more);
        // Past the bound: the sidecar changes once (it is marked), then not again.
        assert!(meta.refer(&id(MAX_REFERENCES)));
        assert!(meta.more);
        assert!(!meta.refer(&id(MAX_REFERENCES + 1)));
        assert_eq!(meta.records.len(), MAX_REFERENCES);
        // The mark is kept through the sidecar's JSON, and absent from one without it.
        let back: BlobMeta = serde_json::from_slice(&serde_json::to_vec(&meta).unwrap()).unwrap();
        assert!(back.more);
        let plain = serde_json::to_string(&BlobMeta::default()).unwrap();
        assert!(!plain.contains("more"), "{plain}");
    }

    /// Writers of one file at once (an upload and its client's retry) each write their own
    /// temporary file: every one succeeds, the file is whole, and no temporary file is left.
    #[test]
    fn one_file_put_by_several_writers_at_once_lands_whole() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(BlobStore::open(dir.path()).unwrap());
        let bytes: std::sync::Arc<Vec<u8>> =
            std::sync::Arc::new((0..4u32 << 20).map(|i| (i % 251) as u8).collect());
        let hash = ObjectId(Sha256::digest(&bytes[..]).into());
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (s, bytes) = (s.clone(), bytes.clone());
                std::thread::spawn(move || {
                    // Each writer as if the file were not there yet (`put` skips a held one).
                    s.write_atomic(&s.path(&hash), &bytes)
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap().unwrap();
        }
        assert_eq!(fs::read(s.path(&hash)).unwrap(), *bytes);
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn a_download_resumes_after_its_last_whole_chunk_and_only_a_verified_file_lands() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let bytes: Vec<u8> = (0..(CHUNK_SIZE * 2 + 100))
            .map(|i| (i % 253) as u8)
            .collect();
        let a = describe("plan.pdf", &bytes);
        let list = chunk_list(&bytes);
        s.save_list(&a.sha256, &list).unwrap();
        s.append_chunk(&a.sha256, &bytes[..CHUNK_SIZE]).unwrap();
        // A torn write of the second chunk (the process died mid-append).
        s.append_chunk(&a.sha256, &bytes[CHUNK_SIZE..CHUNK_SIZE + 10])
            .unwrap();
        // "Restart": reopen; the download resumes at chunk 1.
        let s = BlobStore::open(dir.path()).unwrap();
        assert_eq!(s.saved_list(&a.sha256).unwrap(), list);
        assert_eq!(s.partial_len(&a.sha256).unwrap(), CHUNK_SIZE as u64);
        assert!(!s.has(&a.sha256));
        for (i, c) in bytes.chunks(CHUNK_SIZE).enumerate().skip(1) {
            check_chunk(&list, a.size, i as u64, c).unwrap();
            s.append_chunk(&a.sha256, c).unwrap();
        }
        s.finish(&a.sha256).unwrap();
        assert!(s.has(&a.sha256));
        assert_eq!(fs::read(s.path(&a.sha256)).unwrap(), bytes);
        assert_eq!(s.chunk_list(&a.sha256).unwrap().unwrap(), list);
        assert_eq!(
            s.read_chunk(&a.sha256, 2).unwrap().unwrap(),
            &bytes[2 * CHUNK_SIZE..]
        );
        assert!(s.read_chunk(&a.sha256, 3).unwrap().is_none());
        assert_eq!(s.list().unwrap(), vec![a.sha256]);
        // A wrong file never lands under the name.
        let other = ObjectId([7; 32]);
        assert!(s.put(&other, b"not it").is_err());
        assert!(!s.has(&other));
        // Bit rot is found by verify_all.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(s.path(&a.sha256))
            .unwrap();
        f.write_all(b"X").unwrap();
        assert_eq!(s.verify_all().unwrap(), (1, vec![a.sha256]));
        s.remove(&a.sha256).unwrap();
        assert!(s.list().unwrap().is_empty());
    }
}
