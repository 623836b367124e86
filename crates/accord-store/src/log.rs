//! The object log: every stored object's signed bytes, appended once to one file beside sled.
//!
//! sled keeps only where an object's bytes are (a [`Locator`] under its id in the `objects`
//! tree); the bytes themselves are written once, in arrival order, as `length (u32, big-endian)
//! || bytes`. Objects are never changed or deleted, so the file only grows.
//!
//! Durability and atomicity: a group commit writes its objects at the log's committed end and
//! syncs the file, then one sled transaction records the locators together with the new end
//! (`meta/log_end`) and sled is flushed. A crash before the transaction leaves bytes past the
//! committed end that nothing references; they are cut off when the store opens. A log shorter
//! than its committed end means data the store acknowledged is gone, and opening refuses.
//!
//! Why not in sled: sled rewrites a page whenever an entry on it changes, so 2 KB values cost
//! 3.6 times their size on disk uncompressed, and with sled's compression a third of bulk
//! ingest (a zstd context per page fragment). An append-only file costs the bytes once.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::StoreError;

/// The log's file name inside the data directory.
pub(crate) const LOG_FILE: &str = "objects.log";
/// The bytes of an encoded [`Locator`]. A signed envelope is never this short (it holds at
/// least a 32-byte key and a 64-byte signature), which tells a migrated entry of the
/// `objects` tree from one that still holds an object's bytes.
pub(crate) const LOCATOR_LEN: usize = 12;
/// The bytes of an object's receipt after its locator (schema 4): when it was taken (ms, 8)
/// and its source's number (4). 24 bytes in all is still shorter than any signed envelope.
pub(crate) const RECEIPT_LEN: usize = 12;
/// The length prefix before each object's bytes.
const HEADER_LEN: usize = 4;
/// The largest entry a reader will allocate for. Charters bound objects far below this (1 MiB
/// by default); a locator claiming more is damage, reported instead of allocated.
const MAX_ENTRY_BYTES: u32 = 256 << 20;

/// Where an object's bytes are in the log: the offset of its length prefix and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Locator {
    pub offset: u64,
    pub len: u32,
}

impl Locator {
    pub fn encode(&self) -> [u8; LOCATOR_LEN] {
        let mut out = [0u8; LOCATOR_LEN];
        out[..8].copy_from_slice(&self.offset.to_be_bytes());
        out[8..].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    /// `None` when `v` is not a locator (an object's bytes stored by schema 2 or earlier). An
    /// entry of schema 4 may carry its object's receipt after the locator
    /// ([`RECEIPT_LEN`] bytes).
    pub fn decode(v: &[u8]) -> Option<Locator> {
        if v.len() != LOCATOR_LEN && v.len() != LOCATOR_LEN + RECEIPT_LEN {
            return None;
        }
        let offset = u64::from_be_bytes(v[..8].try_into().ok()?);
        let len = u32::from_be_bytes(v[8..LOCATOR_LEN].try_into().ok()?);
        Some(Locator { offset, len })
    }

    /// The bytes this entry takes in the log, prefix included.
    pub fn span(&self) -> u64 {
        (HEADER_LEN as u64) + u64::from(self.len)
    }
}

/// Reads objects from the log; cheap to clone, usable from any thread while the writer
/// appends (a locator is only visible once its bytes are written).
#[derive(Debug, Clone)]
pub(crate) struct LogReader {
    file: Arc<File>,
    path: Arc<PathBuf>,
}

impl LogReader {
    /// The bytes `loc` points at, checked against their length prefix.
    pub fn read(&self, loc: Locator) -> Result<Vec<u8>, StoreError> {
        if loc.len > MAX_ENTRY_BYTES {
            return Err(StoreError::Corrupt(format!(
                "{}: a locator claims an object of {} bytes at offset {}",
                self.path.display(),
                loc.len,
                loc.offset
            )));
        }
        let mut buf = vec![0u8; HEADER_LEN + loc.len as usize];
        self.file.read_exact_at(&mut buf, loc.offset).map_err(|e| {
            StoreError::Corrupt(format!(
                "{} has no object of {} bytes at offset {}: {e}",
                self.path.display(),
                loc.len,
                loc.offset
            ))
        })?;
        let prefix = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if prefix != loc.len {
            return Err(StoreError::Corrupt(format!(
                "{} at offset {}: length prefix {prefix}, the index says {}",
                self.path.display(),
                loc.offset,
                loc.len
            )));
        }
        buf.drain(..HEADER_LEN);
        Ok(buf)
    }
}

/// The writer's side of the log (only the store's writer appends).
#[derive(Debug)]
pub(crate) struct ObjectLog {
    file: File,
    /// The committed end: everything before it is referenced by sled.
    end: u64,
    reader: LogReader,
    /// The bytes of the last write, kept for the next one (see [`SCRATCH_KEEP_BYTES`]).
    scratch: Vec<u8>,
}

/// Largest write buffer kept between writes. A group commit of 512 typical records writes
/// ~1.3 MB; building it in a new buffer each time (grown by doubling, its pages given back to
/// the system when freed and faulted in again) was a fifth of the store thread's time in a bulk
/// ingest. A write of rare large objects is not kept.
const SCRATCH_KEEP_BYTES: usize = 4 << 20;

impl ObjectLog {
    /// [`Self::open_with`], refusing a log shorter than its committed end.
    #[cfg(test)]
    pub fn open(dir: &Path, committed_end: u64) -> Result<ObjectLog, StoreError> {
        Self::open_with(dir, committed_end, false)
    }

    /// Opens (or creates) the log in `dir`, whose committed end sled recorded as
    /// `committed_end`: bytes past it are an interrupted write and are cut off. A log shorter
    /// than that (its tail lost to a failing disk or a careless copy) is refused, unless
    /// `truncated_ok`: it is then opened as ending where it ends, the objects past it no longer
    /// read, and a repair drops them (`Store::open_for_repair`).
    pub fn open_with(
        dir: &Path,
        committed_end: u64,
        truncated_ok: bool,
    ) -> Result<ObjectLog, StoreError> {
        let path = dir.join(LOG_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if !existed {
            // Make the new file's name durable before anything refers to it.
            crate::blobs::sync_dir(dir)?;
        }
        let len = file.metadata()?.len();
        if !existed && committed_end > 0 {
            // Gone, not cut short (a copy that missed it): a repair would drop every object.
            let _ = std::fs::remove_file(&path);
            return Err(StoreError::Corrupt(format!(
                "{} is missing, but the store has written {committed_end} bytes to it: restore \
                 the data directory from a backup (or copy the file back)",
                path.display()
            )));
        }
        // The end the log is opened at: the committed one, or, for a repair, where a log whose
        // tail was lost ends.
        let end = if len < committed_end {
            if !truncated_ok {
                return Err(StoreError::Corrupt(format!(
                    "{} is {len} bytes, but the store has written {committed_end}: the file was \
                     truncated or replaced. Restore the data directory from a backup, or run \
                     `accord check --repair` to drop the objects past its end (peers send them \
                     again)",
                    path.display()
                )));
            }
            tracing::warn!(
                bytes = committed_end - len,
                "object log: shorter than the store wrote; the objects past its end are dropped"
            );
            len
        } else {
            if len > committed_end {
                file.set_len(committed_end)?;
                file.sync_all()?;
                tracing::info!(
                    bytes = len - committed_end,
                    "object log: cut off the tail of a write that was interrupted before it was committed"
                );
            }
            committed_end
        };
        let reader = LogReader {
            file: Arc::new(File::open(&path)?),
            path: Arc::new(path),
        };
        Ok(ObjectLog {
            file,
            end,
            reader,
            scratch: Vec::new(),
        })
    }

    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// The committed end.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Writes `objects` after the committed end and syncs them; returns their locators and
    /// the end the caller commits with them (then [`ObjectLog::advance`]). Until then the
    /// committed end is unchanged, so a failed commit is overwritten by the next write.
    pub fn write<'a>(
        &mut self,
        objects: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(Vec<Locator>, u64), StoreError> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let written = self.write_with(objects, &mut buf);
        if buf.capacity() <= SCRATCH_KEEP_BYTES {
            self.scratch = buf;
        }
        written
    }

    /// [`Self::write`], building the bytes in `buf` (empty).
    fn write_with<'a>(
        &self,
        objects: impl Iterator<Item = &'a [u8]>,
        buf: &mut Vec<u8>,
    ) -> Result<(Vec<Locator>, u64), StoreError> {
        let mut locs = Vec::with_capacity(objects.size_hint().0);
        for bytes in objects {
            let len = u32::try_from(bytes.len())
                .map_err(|_| StoreError::Corrupt(format!("an object of {} bytes", bytes.len())))?;
            locs.push(Locator {
                offset: self.end + buf.len() as u64,
                len,
            });
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(bytes);
        }
        if buf.is_empty() {
            return Ok((locs, self.end));
        }
        self.file.write_all_at(buf, self.end)?;
        self.file.sync_data()?;
        Ok((locs, self.end + buf.len() as u64))
    }

    /// Makes `end` the committed end, once sled has recorded it.
    pub fn advance(&mut self, end: u64) {
        self.end = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_objects_read_back_and_an_uncommitted_tail_is_cut_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ObjectLog::open(dir.path(), 0).unwrap();
        let (locs, end) = log
            .write([b"first object".as_slice(), b"second".as_slice()].into_iter())
            .unwrap();
        log.advance(end);
        assert_eq!(end, (4 + 12) + (4 + 6));
        assert_eq!(locs[1].offset, 16);
        let r = log.reader();
        assert_eq!(r.read(locs[0]).unwrap(), b"first object");
        assert_eq!(r.read(locs[1]).unwrap(), b"second");
        assert_eq!(Locator::decode(&locs[1].encode()), Some(locs[1]));
        // A write that was never committed.
        let (_, longer) = log.write([b"lost".as_slice()].into_iter()).unwrap();
        assert!(longer > end);
        drop(log);
        let log = ObjectLog::open(dir.path(), end).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len(),
            end
        );
        assert_eq!(log.reader().read(locs[0]).unwrap(), b"first object");
        // A wrong locator is an error that names the file, never other bytes.
        let wrong = Locator {
            offset: locs[0].offset,
            len: 6,
        };
        let e = log.reader().read(wrong).unwrap_err().to_string();
        assert!(e.contains(LOG_FILE) && e.contains("length prefix"), "{e}");
        let beyond = Locator {
            offset: end,
            len: 6,
        };
        assert!(log.reader().read(beyond).is_err());
        // A damaged locator claiming gigabytes is an error, not an allocation.
        let huge = Locator {
            offset: 0,
            len: u32::MAX,
        };
        let e = log.reader().read(huge).unwrap_err().to_string();
        assert!(e.contains("claims an object of"), "{e}");
    }

    #[test]
    fn each_write_has_only_its_own_bytes_whatever_the_writes_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ObjectLog::open(dir.path(), 0).unwrap();
        // A long write that is never committed, then a short one over it: nothing of the
        // first may follow the second's bytes into the file.
        let long = vec![7u8; 64 * 1024];
        let (_, not_committed) = log.write([long.as_slice(); 3].into_iter()).unwrap();
        let (locs, end) = log.write([b"short".as_slice()].into_iter()).unwrap();
        assert!(end < not_committed);
        log.advance(end);
        assert_eq!(log.reader().read(locs[0]).unwrap(), b"short");
        // A write larger than the buffer kept between writes, then small ones after it.
        let large = vec![9u8; SCRATCH_KEEP_BYTES + 1];
        let (big, end) = log.write([large.as_slice()].into_iter()).unwrap();
        log.advance(end);
        let (small, end) = log
            .write([b"one".as_slice(), b"two".as_slice()].into_iter())
            .unwrap();
        log.advance(end);
        let r = log.reader();
        assert_eq!(r.read(big[0]).unwrap(), large);
        assert_eq!(r.read(small[0]).unwrap(), b"one");
        assert_eq!(r.read(small[1]).unwrap(), b"two");
        drop(log);
        let log = ObjectLog::open(dir.path(), end).unwrap();
        assert_eq!(log.reader().read(small[1]).unwrap(), b"two");
    }

    #[test]
    fn a_log_shorter_than_its_committed_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ObjectLog::open(dir.path(), 0).unwrap();
        let (_, end) = log.write([b"acknowledged".as_slice()].into_iter()).unwrap();
        log.advance(end);
        drop(log);
        let e = ObjectLog::open(dir.path(), end + 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated or replaced"), "{e}");
    }
}
