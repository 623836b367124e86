//! The free space of the filesystem that holds the data directory, and the floor under which
//! the node takes nothing new (`store.min_free_mb`).
//!
//! A full disk would fail a store write in the middle of a group commit (and sled refuses every
//! later write until a restart), an index commit, or a file being fetched. Long before that the
//! node stops taking objects: a submission gets an error naming the free space and the floor
//! (HTTP 507), gossip is let pass without a verdict against its sender, reconciliation sessions
//! and attachment fetches wait. What the node holds stays readable, searchable and served to
//! peers. Once space is freed it takes objects again by itself, and its next reconciliation
//! fetches what it let pass.
//!
//! Files are larger than objects (up to the charter's per-file limit), so a file is written
//! only with room for all of it above the floor: a fetch or an upload first reserves its size
//! ([`DiskGuard::reserve`]), and the reservations of files under way count as used until they
//! end. A file that does not fit waits (a fetch) or is refused with 507 (an upload).
//!
//! The filesystem is read by a thread of its own ([`DiskGuard::watch`]), never by a check: a
//! check takes the last reading, so a filesystem that hangs (a network filesystem whose
//! server went away) holds up that thread only, not a submission or an async worker.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tracing::{info, warn};

/// How often the watching thread reads the free space (and sooner when a file under way
/// ends): one `statvfs` a second at most, whatever the rate of submissions.
const RECHECK: Duration = Duration::from_secs(1);
/// Once low, the node takes objects again only when the free space is this share of the floor
/// above it (at least [`MIN_RESUME_MARGIN`]), so that it does not flap at the floor.
const RESUME_MARGIN_DIVISOR: u64 = 10;
const MIN_RESUME_MARGIN: u64 = 16 << 20;

/// Reads the bytes available to the node on the filesystem holding a path.
pub(crate) type Probe = Box<dyn Fn(&Path) -> std::io::Result<u64> + Send + Sync>;

/// The bytes available to unprivileged users on the filesystem holding `path`; an error when
/// it cannot be read or the filesystem reports no size.
pub fn available_bytes(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    // Some filesystems (pseudo and some network ones) report no size at all: their "0 free"
    // means unknown, not full, and the floor does not apply to them.
    if s.f_blocks == 0 {
        return Err(std::io::Error::other(
            "the filesystem does not report its size",
        ));
    }
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Free space below the floor: what a refused submission is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLow {
    pub free_bytes: u64,
    pub min_free_bytes: u64,
}

/// Room refused for a file: writing `needed_bytes` would leave less than the floor free
/// (`free_bytes` is what the filesystem has less the files already under way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom {
    pub needed_bytes: u64,
    pub free_bytes: u64,
    pub min_free_bytes: u64,
}

/// Why a file may not be written now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The disk is below its floor: nothing new at all.
    Low(DiskLow),
    /// The disk is above its floor, but not by this file's size.
    NoRoom(NoRoom),
}

/// What the node shows of its disk (`GET /v1/status`, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskView {
    /// `None` until the free space could be read.
    pub free_bytes: Option<u64>,
    pub min_free_bytes: u64,
    pub low: bool,
}

#[derive(Debug, Default)]
struct Reading {
    free: Option<u64>,
    low: bool,
    /// Bytes of the files under way (their reservations).
    reserved: u64,
    /// Bytes of files that ended since the reading began: written, perhaps not yet in the
    /// reading; counted as used until a reading that began after they ended.
    settling: u64,
    /// Why the node must restart, when its data directory was moved (see [`DiskGuard::moved`]).
    moved: Option<String>,
}

/// The guard: every new object asks it first.
pub(crate) struct DiskGuard {
    dir: PathBuf,
    min_free: u64,
    probe: Probe,
    reading: Mutex<Reading>,
    /// The data directory's device and inode at start (see [`DiskGuard::moved`]).
    identity: Option<(u64, u64)>,
    /// Wakes the watching thread for a reading now (a file under way ended).
    wake: SyncSender<()>,
    /// The watching thread's end of `wake`, until [`DiskGuard::watch`] starts it.
    woken: Mutex<Option<Receiver<()>>>,
}

/// A directory's device and inode: what stays the same while it is the same directory.
fn identity_of(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

impl std::fmt::Debug for DiskGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskGuard")
            .field("dir", &self.dir)
            .field("min_free", &self.min_free)
            .finish()
    }
}

impl DiskGuard {
    /// A guard of `dir`'s filesystem with a floor of `min_free` bytes (0: no floor).
    pub(crate) fn new(dir: &Path, min_free: u64) -> DiskGuard {
        DiskGuard::with_probe(dir, min_free, Box::new(available_bytes))
    }

    pub(crate) fn with_probe(dir: &Path, min_free: u64, probe: Probe) -> DiskGuard {
        // One wake-up pending is enough: the reading it asks for reads everything.
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        DiskGuard {
            dir: dir.to_path_buf(),
            min_free,
            probe,
            reading: Mutex::new(Reading::default()),
            identity: identity_of(dir),
            wake,
            woken: Mutex::new(Some(woken)),
        }
    }

    /// Reads the disk once now (so that a disk already below its floor is in the log at once),
    /// then starts the thread that reads it every [`RECHECK`], and as soon as a file under way
    /// ends. The thread ends with the guard. A second call starts nothing.
    pub(crate) fn watch(self: &Arc<Self>) -> std::io::Result<()> {
        let Some(woken) = self.woken.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        self.refresh();
        let guard: Weak<DiskGuard> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("accord-disk".into())
            .spawn(move || {
                loop {
                    match woken.recv_timeout(RECHECK) {
                        Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    match guard.upgrade() {
                        Some(g) => g.refresh(),
                        None => return,
                    }
                }
            })
            .map(drop)
    }

    /// Reads the filesystem (free space, and whether the data directory was moved) and
    /// updates what the checks answer. The probe runs without the lock held.
    pub(crate) fn refresh(&self) {
        // Files that ended before this reading begins are in it.
        let settled = self
            .reading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .settling;
        let read = (self.probe)(&self.dir);
        let moved = self.moved_now();
        let mut r = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        // Also when the filesystem could not say: files would otherwise stay counted for as
        // long as it cannot, against a reading that no longer changes.
        r.settling = r.settling.saturating_sub(settled);
        if r.moved.is_none()
            && let Some(why) = &moved
        {
            tracing::error!("{why}");
        }
        r.moved = moved;
        match read {
            Ok(free) => {
                r.free = Some(free);
                let resume = self
                    .min_free
                    .saturating_add((self.min_free / RESUME_MARGIN_DIVISOR).max(MIN_RESUME_MARGIN));
                // With no floor (0) the free space is still read, for status and metrics.
                if !r.low && free < self.min_free {
                    r.low = true;
                    warn!(
                        free_mb = free >> 20,
                        min_free_mb = self.min_free >> 20,
                        dir = %self.dir.display(),
                        "the data directory's disk is nearly full: the node takes no new objects until space is freed (store.min_free_mb)"
                    );
                } else if r.low && free >= resume {
                    r.low = false;
                    info!(
                        free_mb = free >> 20,
                        "space freed on the data directory's disk: the node takes objects again"
                    );
                }
            }
            // A filesystem that cannot say (some network filesystems): no floor applies, as
            // before the floor existed; the last reading stays.
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the free space of the data directory")
            }
        }
    }

    /// Why the node must restart when its data directory's path no longer leads to the
    /// directory it opened: moved aside (`mv data data.old`) and perhaps replaced by a restore
    /// while the node ran. The node writes on into the old one — everything it takes until a
    /// restart is there, not where the operator looks — and a restore into the path succeeded
    /// because the store's lock moved with the old directory. As of the last reading; logged
    /// once.
    pub(crate) fn moved(&self) -> Option<String> {
        self.reading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .moved
            .clone()
    }

    /// One `stat` of the data directory's path.
    fn moved_now(&self) -> Option<String> {
        let started = self.identity?;
        match std::fs::metadata(&self.dir) {
            Ok(m) => {
                use std::os::unix::fs::MetadataExt;
                if (m.dev(), m.ino()) == started {
                    return None;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Another failure (a permission taken away, an I/O error) says nothing of a move.
            Err(_) => return None,
        }
        Some(format!(
            "the data directory {} was moved or replaced while the node ran (a restore into its path?): the node still writes into the directory it opened; stop it, put the right directory at that path, and start it",
            self.dir.display()
        ))
    }

    /// `Err` while the free space is below the floor, as of the last reading.
    pub(crate) fn check(&self) -> Result<(), DiskLow> {
        let r = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        match (r.low, r.free) {
            (true, Some(free)) => Err(DiskLow {
                free_bytes: free,
                min_free_bytes: self.min_free,
            }),
            _ => Ok(()),
        }
    }

    /// Room for a file of `bytes`: refused below the floor, or when the free space less the
    /// files already under way and this one would fall below it. The reservation counts the
    /// file as used until it is dropped (the file written or given up); then the disk is read
    /// again at the next check. With no floor, or a filesystem that cannot say, every file fits.
    ///
    /// Conservative on purpose: a fetch resumed half way reserves the whole file, and the
    /// reading of the last second may already hold part of a file under way.
    pub(crate) fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, Refused> {
        self.check().map_err(Refused::Low)?;
        let mut r = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        self.room(&r, bytes)?;
        r.reserved = r.reserved.saturating_add(bytes);
        Ok(Reservation {
            guard: self.clone(),
            bytes,
        })
    }

    /// Whether a file of `bytes` would fit now, without reserving (an upload's announced
    /// length, checked before any of its body is kept).
    pub(crate) fn would_fit(&self, bytes: u64) -> Result<(), Refused> {
        self.check().map_err(Refused::Low)?;
        let r = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        self.room(&r, bytes)
    }

    fn room(&self, r: &Reading, bytes: u64) -> Result<(), Refused> {
        if let (Some(free), true) = (r.free, self.min_free > 0) {
            let left = free.saturating_sub(r.reserved).saturating_sub(r.settling);
            if left < self.min_free.saturating_add(bytes) {
                return Err(Refused::NoRoom(NoRoom {
                    needed_bytes: bytes,
                    free_bytes: left,
                    min_free_bytes: self.min_free,
                }));
            }
        }
        Ok(())
    }

    fn release(&self, bytes: u64) {
        let mut r = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        r.reserved = r.reserved.saturating_sub(bytes);
        // Used until the disk is read again: the reading of the last second may not hold it.
        r.settling = r.settling.saturating_add(bytes);
        drop(r);
        // What was written now shows in the filesystem's figure: read it again now. Full means
        // a reading is already asked for; disconnected, that no thread watches (tests).
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }

    /// The last reading.
    pub(crate) fn view(&self) -> DiskView {
        let r = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        DiskView {
            free_bytes: r.free,
            min_free_bytes: self.min_free,
            low: r.low,
        }
    }
}

/// Room held for a file under way; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    guard: Arc<DiskGuard>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.guard.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    const MB: u64 = 1 << 20;

    /// A guard whose probe answers `free` and counts its calls.
    fn guard(min: u64, free: &Arc<AtomicU64>, calls: &Arc<AtomicUsize>) -> DiskGuard {
        let (free, calls) = (free.clone(), calls.clone());
        DiskGuard::with_probe(
            Path::new("."),
            min,
            Box::new(move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(free.load(Ordering::SeqCst))
            }),
        )
    }

    /// Below the floor the guard refuses, with the figures; a check never reads the disk
    /// itself (the last reading stands); it takes objects again only with the margin above
    /// the floor.
    #[test]
    fn refuses_below_the_floor_checks_the_last_reading_and_resumes_above_the_margin() {
        let free = Arc::new(AtomicU64::new(600 * MB));
        let calls = Arc::new(AtomicUsize::new(0));
        let g = guard(512 * MB, &free, &calls);
        g.refresh();
        assert_eq!(g.check(), Ok(()));
        free.store(100 * MB, Ordering::SeqCst);
        // Until the next reading, the last one stands: no read by the check.
        assert_eq!(g.check(), Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let low = DiskLow {
            free_bytes: 100 * MB,
            min_free_bytes: 512 * MB,
        };
        g.refresh();
        assert_eq!(g.check(), Err(low));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Just above the floor is not enough to resume (margin: a tenth of 512 MiB).
        free.store(520 * MB, Ordering::SeqCst);
        g.refresh();
        assert_eq!(
            g.check(),
            Err(DiskLow {
                free_bytes: 520 * MB,
                min_free_bytes: 512 * MB
            })
        );
        free.store(580 * MB, Ordering::SeqCst);
        g.refresh();
        assert_eq!(g.check(), Ok(()));
        let v = g.view();
        assert!(!v.low);
        assert_eq!(v.min_free_bytes, 512 * MB);
        // Dropping below again refuses again.
        free.store(511 * MB, Ordering::SeqCst);
        g.refresh();
        assert!(g.check().is_err());
    }

    /// A floor of 0 never refuses, even with no space left, and still shows the free space; a
    /// probe that fails leaves the guard as it was.
    #[test]
    fn no_floor_never_refuses_and_an_unreadable_disk_keeps_the_last_reading() {
        let free = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let g = guard(0, &free, &calls);
        g.refresh();
        assert_eq!(g.check(), Ok(()));
        let v = g.view();
        assert_eq!((v.free_bytes, v.low), (Some(0), false));

        let failing = DiskGuard::with_probe(
            Path::new("."),
            512 * MB,
            Box::new(|_| Err(std::io::Error::other("not supported"))),
        );
        failing.refresh();
        assert_eq!(failing.check(), Ok(()));
        assert_eq!(failing.view().free_bytes, None);
    }

    /// A file is given room only with all of it above the floor, the files under way counted
    /// as used until their reservations end; then the disk is read again.
    #[test]
    fn files_reserve_their_size_above_the_floor_and_give_it_back() {
        let free = Arc::new(AtomicU64::new(520 * MB));
        let calls = Arc::new(AtomicUsize::new(0));
        let g = Arc::new(guard(512 * MB, &free, &calls));
        g.refresh();
        let first = g
            .reserve(5 * MB)
            .expect("5 MiB fit in 8 MiB above the floor");
        // 3 MiB are left above the floor: a second file of 4 MiB does not fit, one of 3 does.
        let refused = NoRoom {
            needed_bytes: 4 * MB,
            free_bytes: 515 * MB,
            min_free_bytes: 512 * MB,
        };
        assert_eq!(g.would_fit(4 * MB), Err(Refused::NoRoom(refused)));
        assert_eq!(g.reserve(4 * MB).map(drop), Err(Refused::NoRoom(refused)));
        let second = g.reserve(3 * MB).expect("exactly the room left");
        assert!(g.would_fit(1).is_err());
        // The node itself is not below its floor: objects are still taken.
        assert_eq!(g.check(), Ok(()));
        assert!(!g.view().low);
        drop(first);
        drop(second);
        // Given back, the files' bytes still count as used until the disk is read again (the
        // reading of before may not hold them): the next file does not pass the floor for them.
        assert!(g.would_fit(MB).is_err());
        free.store(511 * MB, Ordering::SeqCst);
        g.refresh();
        assert_eq!(
            g.would_fit(MB),
            Err(Refused::Low(DiskLow {
                free_bytes: 511 * MB,
                min_free_bytes: 512 * MB
            }))
        );
        // Freed: a large file fits again once the disk is read again.
        free.store(600 * MB, Ordering::SeqCst);
        g.refresh();
        assert!(g.reserve(80 * MB).is_ok());
    }

    /// The watching thread reads the disk by itself, and again as soon as a file under way
    /// ends; while the filesystem hangs (a network filesystem's server gone), checks, room for
    /// files and views answer at once from the last reading.
    #[test]
    fn a_hanging_filesystem_holds_up_only_the_watching_thread() {
        let free = Arc::new(AtomicU64::new(600 * MB));
        // The probe answers at once while `hang` is false; then it waits until it is let go.
        let hang = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let (f, h, c) = (free.clone(), hang.clone(), calls.clone());
        let g = Arc::new(DiskGuard::with_probe(
            Path::new("."),
            512 * MB,
            Box::new(move |_| {
                let (lock, cv) = &*h;
                let mut hanging = lock.lock().unwrap_or_else(|e| e.into_inner());
                while *hanging {
                    hanging = cv.wait(hanging).unwrap_or_else(|e| e.into_inner());
                }
                c.fetch_add(1, Ordering::SeqCst);
                Ok(f.load(Ordering::SeqCst))
            }),
        ));
        g.watch().expect("the watching thread starts");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "read once at the start");
        // A file that ends wakes the thread for a reading now, well before RECHECK.
        free.store(100 * MB, Ordering::SeqCst);
        drop(g.reserve(MB).expect("room before the disk filled"));
        let waited = std::time::Instant::now();
        while g.check().is_ok() {
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "the thread read the disk again"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // The filesystem hangs: the thread's next reading waits, the guard still answers.
        *hang.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        let before = calls.load(Ordering::SeqCst);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let g2 = g.clone();
        std::thread::spawn(move || {
            for _ in 0..3 {
                drop(g2.reserve(MB));
                let _ = (g2.check(), g2.would_fit(MB), g2.view(), g2.moved());
                // Past a reading's due time: the old guard read the disk in the check here.
                std::thread::sleep(RECHECK / 2);
            }
            let _ = done_tx.send(g2.check());
        });
        let answered = done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the guard answered while its filesystem hung");
        assert_eq!(
            answered,
            Err(DiskLow {
                free_bytes: 100 * MB,
                min_free_bytes: 512 * MB
            })
        );
        assert_eq!(calls.load(Ordering::SeqCst), before, "no reading finished");
        // The filesystem answers again, with room: the node takes objects again by itself.
        free.store(700 * MB, Ordering::SeqCst);
        *hang.0.lock().unwrap_or_else(|e| e.into_inner()) = false;
        hang.1.notify_all();
        let waited = std::time::Instant::now();
        while g.check().is_err() {
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "read again once the filesystem answers"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// With no floor every file fits, whatever the disk says.
    #[test]
    fn without_a_floor_every_file_fits() {
        let free = Arc::new(AtomicU64::new(MB));
        let calls = Arc::new(AtomicUsize::new(0));
        let g = Arc::new(guard(0, &free, &calls));
        let r = g.reserve(50 * MB).expect("no floor");
        assert!(g.would_fit(50 * MB).is_ok());
        drop(r);
    }

    /// The real probe reads the temporary directory's filesystem.
    #[test]
    fn the_free_space_of_a_real_directory_is_read() {
        let dir = std::env::temp_dir();
        let free = available_bytes(&dir).expect("statvfs of the temporary directory");
        assert!(free > 0, "a writable temporary directory has free space");
    }

    /// A filesystem that reports no size (Linux's `/proc`) is unknown, not full.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_filesystem_without_a_size_is_unknown_not_full() {
        assert!(available_bytes(Path::new("/proc")).is_err());
        let g = DiskGuard::new(Path::new("/proc"), 512 * MB);
        g.refresh();
        assert_eq!(g.check(), Ok(()));
        assert_eq!(g.view().free_bytes, None);
    }
}
