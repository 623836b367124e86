//! Attachments: the files records name, fetched from peers chunk by chunk, kept in the blob
//! store, served to peers and to the API, read for search, and collected when no live record
//! needs them (docs/PROTOCOL.md §12, docs/OPERATIONS.md "Attachments").
//!
//! The queue of files to fetch is the blob store's `<hash>.want` files, so that a restart
//! resumes it (and each transfer resumes after its last verified chunk). Transfers are bounded
//! in number (in all and per peer) and in bandwidth (in all and per peer); a peer that serves
//! a chunk that does not match the record's chunk list is penalised like an invalid gossip
//! sender and the chunk is fetched from another peer.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use accord_core::attachment::{CHUNK_SIZE, check_chunk, check_list, chunk_count};
use accord_core::object::Attachment;
use accord_core::{MemberCode, Object, ObjectId};
use accord_net::Peer;
use accord_store::{BlobMeta, BlobStore, RecordStatus};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tokio::sync::{Notify, Semaphore};
use tracing::{debug, info, warn};

use crate::NodeError;
use crate::config::{AttachmentsConfig, FetchPolicy};
use crate::node::NodeHandle;

/// How long a file no peer could give waits before it is asked for again, after its first
/// failure; each further failure doubles it, [`MAX_BACKOFF_DOUBLINGS`] times at most (64 min).
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Doublings of [`RETRY_AFTER`] for a file that keeps failing.
const MAX_BACKOFF_DOUBLINGS: u32 = 7;
/// The longest a transfer waits for a busy peer's slot while it holds one of the overall ones.
const PEER_SLOT_WAIT: Duration = Duration::from_secs(30);
/// A peer that takes longer than this for one chunk (1 MiB: under 70 KiB/s) is left for
/// another after that chunk, what it sent kept: a peer answering each chunk just before the
/// request timeout would otherwise hold a transfer slot for most of an hour per file.
const SLOW_CHUNK: Duration = Duration::from_secs(15);
/// How often the fetcher looks at its queue without being woken.
const FETCH_TICK: Duration = Duration::from_secs(5);
/// How long a file that did not fit above the disk's floor waits before it is tried again
/// (the fetcher's next tick after it).
const ROOM_RETRY: Duration = FETCH_TICK;
/// An uploaded file no record names is removed after this long.
const ORPHAN_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The blob store of the data directory `dir` (no I/O).
pub(crate) fn blob_store_at(dir: &Path) -> BlobStore {
    BlobStore::at(&dir.join("blobs"))
}

/// A file to fetch, as saved in `<hash>.want`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Want {
    record: ObjectId,
    attachment: Attachment,
    /// Other records that name the same SHA-256 with another size or chunk list: one of the
    /// claims is wrong (a hostile member can name another member's file with a false size or
    /// chunk list), and only the file's hash settles which. A peer's chunk list is checked
    /// against each claim; the one it matches is fetched, and the file is kept for every
    /// record that names it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    others: Vec<(ObjectId, Attachment)>,
    /// Further records that name the file with a claim already held (up to
    /// [`MAX_NAMED_BY`]): the file is kept for them too once held, so that retracting the
    /// records whose claims were kept cannot leave theirs without it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    named_by: std::collections::BTreeSet<ObjectId>,
    /// The member of the first record: its queue the file counts against
    /// (`attachments.max_waiting_per_member`). Absent in a file an older release wrote, or
    /// one a restore or a repair queued: counted against no member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member: Option<MemberCode>,
    /// Named by more records than `named_by` keeps: once held, the file is kept for good (its
    /// sidecar says so too), as a file whose sidecar is full is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    more: bool,
}

/// A record's id, its member, and the files it names.
pub(crate) type Named = (ObjectId, MemberCode, Vec<Attachment>);

/// What settling records' files did ([`Attachments::settle_files`]).
#[derive(Debug, Default)]
struct Settled {
    /// Held files, each once, with the records just referred to them (a record may list a
    /// file more than once).
    held: BTreeMap<ObjectId, BTreeSet<ObjectId>>,
    /// A reference or `.want` file could not be written.
    failed: bool,
    /// Files put off: their member's queue was full.
    put_off: u64,
}

/// A pass queueing put-off files under way: when it ends, another may start.
struct Requeueing(Arc<Attachments>);

impl Drop for Requeueing {
    fn drop(&mut self) {
        self.0.queue().requeueing = false;
        self.0.wake.notify_one();
    }
}

/// Records read at a time when files put off are queued again.
const PUT_OFF_PAGE: usize = 1024;

/// Records remembered, beyond the claims, as naming a file that waits.
const MAX_NAMED_BY: usize = 256;

/// Different claims (size and chunk list) about one file kept while it waits: the first
/// record's and this many others.
const MAX_OTHER_CLAIMS: usize = 4;

impl Want {
    fn new(record: ObjectId, attachment: Attachment) -> Want {
        Want {
            record,
            attachment,
            others: Vec::new(),
            named_by: std::collections::BTreeSet::new(),
            member: None,
            more: false,
        }
    }

    fn of(mut self, member: MemberCode) -> Want {
        self.member = Some(member);
        self
    }

    /// Adds another record's claim about the same file; whether the want changed.
    fn add_claim(&mut self, record: ObjectId, a: &Attachment) -> bool {
        let same = |b: &Attachment| b.size == a.size && b.chunks == a.chunks;
        if record == self.record || self.others.iter().any(|(r, _)| *r == record) {
            return false;
        }
        if same(&self.attachment)
            || self.others.iter().any(|(_, b)| same(b))
            || self.others.len() >= MAX_OTHER_CLAIMS
        {
            if self.named_by.len() < MAX_NAMED_BY {
                return self.named_by.insert(record);
            }
            return !std::mem::replace(&mut self.more, true);
        }
        self.others.push((record, a.clone()));
        true
    }

    /// Every claim, the first record's first.
    fn claims(&self) -> impl Iterator<Item = (ObjectId, &Attachment)> {
        std::iter::once((self.record, &self.attachment))
            .chain(self.others.iter().map(|(r, a)| (*r, a)))
    }

    /// Every record known to name the file: the claims', then the others (under the first
    /// claim's description, which only the file's name and type are read from).
    fn records(&self) -> impl Iterator<Item = (ObjectId, &Attachment)> {
        self.claims()
            .chain(self.named_by.iter().map(|r| (*r, &self.attachment)))
    }

    /// The claim a chunk list agrees with, if any: one that commits to the list's hash first
    /// (a claim without one agrees with any list of its length, a false size included).
    fn claim_of(&self, list: &[u8]) -> Result<&Attachment, String> {
        let mut first_error = None;
        let committed = self.claims().filter(|(_, a)| a.chunks.is_some());
        let uncommitted = self.claims().filter(|(_, a)| a.chunks.is_none());
        for (_, a) in committed.chain(uncommitted) {
            match check_list(a, list) {
                Ok(()) => return Ok(a),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_default())
    }
}

/// The state of the attachments of a node.
#[derive(Debug)]
pub(crate) struct Attachments {
    pub(crate) blobs: BlobStore,
    cfg: AttachmentsConfig,
    queue: Mutex<Queue>,
    wake: Notify,
    slots: Arc<Semaphore>,
    peer_slots: Mutex<HashMap<Peer, Arc<Semaphore>>>,
    /// Peers admitted and not yet disconnected: a slot or rate bucket of any other peer goes
    /// when its last transfer ends ([`Attachments::transfer_ended`]), so that the maps hold
    /// connected peers only (and the peers of transfers still running).
    connected: Mutex<HashSet<Peer>>,
    rate: Mutex<Buckets>,
    max_file: u64,
    /// Requests each peer may make of this node per minute.
    served: crate::sync::RequestBudget,
    /// Held while a file's sidecar (`<hash>.json`, the records naming it) is read, changed and
    /// written: two records naming one file at once, or an extraction verdict written while a
    /// record is added, would otherwise each write back what they read and lose the other's.
    meta_lock: Mutex<()>,
    /// The peer that served each saved chunk list, while this node runs: a peer is judged
    /// against a list only it served; a list another peer served (or one saved before a
    /// restart) may be a hostile record's, which an honest holder's chunks do not match.
    list_sources: Mutex<HashMap<ObjectId, Peer>>,
    /// Ingests whose accepted records' files are not yet referenced or queued (see [`Settle`]).
    settling: Mutex<Settling>,
    /// Held while the settled mark is written (the periodic save and the one at shutdown).
    settle_saving: Mutex<()>,
    /// One save of the put-off members at a time ([`PUT_OFF_FILE`]).
    put_off_saving: Mutex<()>,
}

/// The file in the data directory naming the store sequence number up to which every accepted
/// record's files were referenced (held) or queued (`.want`).
pub(crate) const SETTLED_FILE: &str = "attachments-settled";

/// The members whose files were put off, with the store's sequence number their records are
/// read again from (`{"KZ": 1234}`), in the blob directory: kept across restarts, so that the
/// settled mark moves on past records whose files were put off.
const PUT_OFF_FILE: &str = "put-off";

/// How often the settled mark is saved when it moved: after a crash, the records stored since
/// it (a few seconds' worth, and those in flight) have their files referenced or queued again.
pub(crate) const SETTLED_SAVE_INTERVAL: Duration = Duration::from_secs(2);

/// Ingests in flight, each with the store sequence number before it (its records come after).
#[derive(Debug, Default)]
struct Settling {
    next: u64,
    in_flight: BTreeMap<u64, u64>,
    saved: Option<u64>,
    /// The last save failed (said once, not every two seconds).
    failing: bool,
    /// Below the records of an ingest whose references or `.want` files could not be written:
    /// the mark stays there for this run, so the next start settles them again.
    floor: Option<u64>,
}

/// An ingest whose accepted records' files are being referenced or queued: until it is
/// dropped, the settled mark stays before its records. A node killed between a group commit
/// and that step (or, before, a client gone meanwhile) left a held file unreferenced — deleted
/// as an orphan a day later — and a missing one never fetched; the records stored after the
/// saved mark are settled again at start.
pub(crate) struct Settle {
    att: Arc<Attachments>,
    token: u64,
}

impl Settle {
    /// The store's sequence number this ingest's records were stored after.
    fn after(&self) -> u64 {
        let s = self.att.settling.lock().unwrap_or_else(|e| e.into_inner());
        s.in_flight.get(&self.token).copied().unwrap_or(0)
    }

    /// A reference or `.want` file of this ingest's records could not be written.
    pub(crate) fn failed(&self) {
        let mut s = self.att.settling.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(low) = s.in_flight.get(&self.token).copied() {
            s.floor = Some(s.floor.map_or(low, |f| f.min(low)));
        }
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        self.att
            .settling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_flight
            .remove(&self.token);
    }
}

/// Chunk lists whose source is remembered; beyond it the memory starts again (a list of
/// unknown source only costs a fresh start, never a penalty).
const LIST_SOURCES: usize = 4096;

#[derive(Debug, Default)]
struct Queue {
    waiting: BTreeMap<ObjectId, Want>,
    running: HashSet<ObjectId>,
    retry_at: HashMap<ObjectId, Instant>,
    /// Fetches of each waiting file that found no peer to give it. Files that failed less go
    /// first (then by hash): files no peer holds — a hostile record can name any number — would
    /// otherwise, being picked in hash order, keep every transfer slot busy and real files
    /// waiting for ever.
    failures: HashMap<ObjectId, u32>,
    /// Waiting files last put off because they would not fit above the disk's floor.
    no_room: HashSet<ObjectId>,
    /// When a peer was last admitted: a fetch that fails soon after may have asked it before it
    /// admitted this node, and is tried again after [`RETRY_AFTER`], not after a doubled wait.
    peer_arrived: Option<Instant>,
    /// Files waiting, per member of the record that queued them ([`Want::member`]).
    per_member: HashMap<MemberCode, usize>,
    /// Members whose files were put off (their queue was full), with the store's sequence
    /// number after which records with such files were stored: queued again from there as
    /// the member's queue drains ([`NodeHandle::queue_put_off`]).
    put_off: BTreeMap<MemberCode, u64>,
    /// A pass queueing put-off files is under way.
    requeueing: bool,
    /// A pass that failed (a store read, a `.want` file not written) is tried again after
    /// [`RETRY_AFTER`], not at once.
    requeue_after: Option<Instant>,
}

impl Queue {
    /// Queues a file to fetch.
    fn add(&mut self, w: Want) {
        let member = w.member.clone();
        if self.waiting.insert(w.attachment.sha256, w).is_none()
            && let Some(m) = member
        {
            *self.per_member.entry(m).or_default() += 1;
        }
    }

    /// Takes a file out of the queue (held, or no longer wanted).
    fn take(&mut self, hash: &ObjectId) -> Option<Want> {
        let w = self.waiting.remove(hash)?;
        if let Some(m) = &w.member
            && let Some(n) = self.per_member.get_mut(m)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_member.remove(m);
            }
        }
        Some(w)
    }

    /// Files of `member` waiting.
    fn waiting_of(&self, member: &MemberCode) -> usize {
        self.per_member.get(member).copied().unwrap_or(0)
    }

    /// A member whose put-off files may be queued now: its queue drained to half its bound.
    fn requeue_due(&self, bound: usize, now: Instant) -> Option<(MemberCode, u64)> {
        if self.requeueing || self.requeue_after.is_some_and(|t| now < t) {
            return None;
        }
        self.put_off
            .iter()
            .find(|(m, _)| self.waiting_of(m) <= bound / 2)
            .map(|(m, seq)| (m.clone(), *seq))
    }

    /// The next file to fetch at `now`: not being fetched, its retry time passed, the one that
    /// failed least (then the lowest hash).
    fn next(&self, now: Instant) -> Option<ObjectId> {
        self.waiting
            .keys()
            .filter(|h| {
                !self.running.contains(*h) && self.retry_at.get(*h).is_none_or(|t| *t <= now)
            })
            .min_by_key(|h| (self.failures.get(*h).copied().unwrap_or(0), **h))
            .copied()
    }

    /// Notes a fetch of `hash` that did not get the file: it waits [`RETRY_AFTER`], doubled
    /// for each failure before.
    fn failed(&mut self, hash: ObjectId, now: Instant) {
        let n = self.failures.entry(hash).or_default();
        *n = n.saturating_add(1);
        let arrived_lately = self
            .peer_arrived
            .is_some_and(|t| now.saturating_duration_since(t) < RETRY_AFTER);
        let wait = if arrived_lately {
            RETRY_AFTER
        } else {
            RETRY_AFTER * 2u32.pow((*n - 1).min(MAX_BACKOFF_DOUBLINGS))
        };
        self.retry_at.insert(hash, now + wait);
    }

    /// `hash` is held, or no longer wanted.
    fn forget(&mut self, hash: &ObjectId) {
        self.retry_at.remove(hash);
        self.failures.remove(hash);
        self.no_room.remove(hash);
    }
}

/// Token buckets: bytes allowed per second, in all and per peer.
#[derive(Debug, Default)]
struct Buckets {
    all: Bucket,
    peers: HashMap<Peer, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            tokens: 0.0,
            at: Instant::now(),
        }
    }
}

impl Bucket {
    /// Takes `n` bytes at `rate` per second (burst: one second); how long to wait first.
    fn take(&mut self, n: u64, rate: u64) -> Duration {
        if rate == 0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let rate = rate as f64;
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * rate).min(rate);
        self.at = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

/// What a request on `/accord/<fed16>/blob/1` asks (docs/PROTOCOL.md §12).
#[derive(Debug, Serialize, Deserialize)]
struct BlobRequest(u8, ByteBuf, u64);

/// The answer: `(0, bytes)` or `(1, reason)` when the file or chunk is not held.
#[derive(Debug, Serialize, Deserialize)]
struct BlobAnswer(u8, ByteBuf);

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = ciborium::into_writer(v, &mut out);
    out
}

/// How one transfer from one peer ended.
enum Transfer {
    Done,
    /// The peer does not hold it (or did not answer): ask another.
    Elsewhere(String),
    /// The peer's chunk list agrees with no record's claim: either may be wrong (a record can
    /// name another member's file with a false size or list), so the peer is not blamed; ask
    /// another.
    Disagrees(String),
    /// The peer served data that does not match the list it served (or the file's hash): a
    /// lie only the peer can have told. Penalise it, ask another.
    Bad(String),
    /// This node's own disk failed (writing a chunk, reading the file back, putting it in
    /// place): no peer is blamed, and no other is asked now; the file waits and is fetched
    /// again later.
    Local(String),
}

impl Attachments {
    /// Opens the blob store of `data_dir` and reads the queue saved in it. Blocking.
    pub(crate) fn open(
        data_dir: &Path,
        cfg: AttachmentsConfig,
        max_file: u64,
    ) -> Result<Attachments, NodeError> {
        let dir = data_dir.join("blobs");
        let blobs = BlobStore::open(&dir).map_err(|e| NodeError::File {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let mut queue = Queue::default();
        // Files held whose `.want` is still there: fetched, but the process stopped (or a
        // sidecar write failed) before the records naming them were written beside them.
        let mut held = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_none_or(|x| x != "want") {
                    continue;
                }
                match std::fs::read(&p)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Want>(&b).map_err(|e| e.to_string()))
                {
                    Ok(w) if blobs.has(&w.attachment.sha256) => held.push(w),
                    Ok(w) => queue.add(w),
                    Err(e) => {
                        warn!(file = %p.display(), error = %e, "a file waiting to be fetched cannot be read; it is fetched again when a record names it again")
                    }
                }
            }
        }
        if !queue.waiting.is_empty() {
            info!(files = queue.waiting.len(), "resuming attachment downloads");
        }
        if let Ok(b) = std::fs::read(dir.join(PUT_OFF_FILE)) {
            match serde_json::from_slice::<BTreeMap<MemberCode, u64>>(&b) {
                Ok(m) => queue.put_off = m,
                Err(e) => {
                    warn!(file = PUT_OFF_FILE, error = %e, "the members whose files were put off cannot be read; their records' files are queued again only when named again")
                }
            }
        }
        let att = Attachments {
            blobs,
            slots: Arc::new(Semaphore::new(cfg.max_parallel)),
            cfg,
            queue: Mutex::new(queue),
            wake: Notify::new(),
            peer_slots: Mutex::new(HashMap::new()),
            connected: Mutex::new(HashSet::new()),
            rate: Mutex::new(Buckets::default()),
            max_file,
            served: crate::sync::RequestBudget::default(),
            meta_lock: Mutex::new(()),
            list_sources: Mutex::new(HashMap::new()),
            settling: Mutex::default(),
            settle_saving: Mutex::new(()),
            put_off_saving: Mutex::new(()),
        };
        let settled = held.iter().filter(|w| att.settle_held(w)).count();
        if settled > 0 {
            info!(
                files = settled,
                "files fetched before the last stop are now referred to by their records"
            );
        }
        Ok(att)
    }

    /// An ingest about to go to the store, whose sequence number is `seq` now.
    pub(crate) fn settle_begin(self: &Arc<Self>, seq: u64) -> Settle {
        let mut s = self.settling.lock().unwrap_or_else(|e| e.into_inner());
        s.next += 1;
        let token = s.next;
        s.in_flight.insert(token, seq);
        Settle {
            att: self.clone(),
            token,
        }
    }

    /// The settled mark given the store's sequence number read before this call: every record
    /// up to it had its files settled (the ingests in flight came after what they saw).
    fn settled_mark(&self, seq_before: u64) -> u64 {
        let s = self.settling.lock().unwrap_or_else(|e| e.into_inner());
        s.in_flight
            .values()
            .chain(s.floor.as_ref())
            .min()
            .map_or(seq_before, |low| (*low).min(seq_before))
    }

    /// Saves the settled mark in `data_dir` if it moved, durably (the file and the directory
    /// synced: after a power cut it is the old mark or the new, never an empty file), one save
    /// at a time. Blocking.
    pub(crate) fn save_settled(&self, data_dir: &Path, seq_before: u64) -> std::io::Result<()> {
        let _one = self.settle_saving.lock().unwrap_or_else(|e| e.into_inner());
        let mark = self.settled_mark(seq_before);
        if self
            .settling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saved
            == Some(mark)
        {
            return Ok(());
        }
        let tmp = data_dir.join(format!("{SETTLED_FILE}.tmp"));
        let written = (|| {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(mark.to_string().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, data_dir.join(SETTLED_FILE))?;
            accord_store::sync_dir(data_dir)
        })();
        let mut s = self.settling.lock().unwrap_or_else(|e| e.into_inner());
        match written {
            Ok(()) => {
                s.saved = Some(s.saved.map_or(mark, |m| m.max(mark)));
                s.failing = false;
                Ok(())
            }
            Err(_) if s.failing => Ok(()),
            Err(e) => {
                s.failing = true;
                Err(e)
            }
        }
    }

    /// Remembers (or, with `None`, forgets) which peer served `hash`'s saved chunk list.
    fn set_list_source(&self, hash: ObjectId, peer: Option<Peer>) {
        let mut m = self.list_sources.lock().unwrap_or_else(|e| e.into_inner());
        match peer {
            Some(p) => {
                if m.len() >= LIST_SOURCES {
                    m.clear();
                }
                m.insert(hash, p);
            }
            None => {
                m.remove(&hash);
            }
        }
    }

    /// Whether `peer` served `hash`'s saved chunk list.
    fn list_served_by(&self, hash: &ObjectId, peer: Peer) -> bool {
        let m = self.list_sources.lock().unwrap_or_else(|e| e.into_inner());
        m.get(hash) == Some(&peer)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A peer was admitted: it may hold what no peer had, so every file is asked for again
    /// (those that failed least first: the failures are kept).
    pub(crate) fn peer_arrived(&self, peer: &Peer) {
        self.connected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*peer);
        let mut q = self.queue();
        q.retry_at.clear();
        q.peer_arrived = Some(Instant::now());
        drop(q);
        self.wake.notify_one();
    }

    /// Files known and not yet held.
    pub(crate) fn backlog(&self) -> u64 {
        self.queue().waiting.len() as u64
    }

    fn wants(&self, a: &Attachment) -> bool {
        match self.cfg.fetch {
            FetchPolicy::None => false,
            FetchPolicy::All => {
                a.size <= self.max_file
                    && (self.cfg.fetch_max_bytes == 0 || a.size <= self.cfg.fetch_max_bytes)
            }
        }
    }

    fn want_path(&self, hash: &ObjectId) -> std::path::PathBuf {
        self.blobs.dir().join(format!("{hash}.want"))
    }

    /// Adds `record` to the sidecar of a held blob (name and media type from the first record
    /// that names it); whether the sidecar changed or the file's text is still to be read (the
    /// record is then indexed again once it is). Blocking.
    fn add_ref(&self, record: ObjectId, a: &Attachment) -> std::io::Result<bool> {
        let _sidecar = self.meta_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut meta = self.blobs.meta(&a.sha256).unwrap_or_else(|| BlobMeta {
            name: a.name.clone(),
            media_type: a.media_type.clone(),
            size: a.size,
            ..BlobMeta::default()
        });
        if meta.refer(&record) {
            self.blobs.write_meta(&a.sha256, &meta)?;
            return Ok(true);
        }
        // Referred to already (by `reference_local`, say), but the file's text is still to
        // be read: the caller reads it.
        Ok(meta.extract_error.is_none() && !self.blobs.has_text(&a.sha256))
    }

    /// A file of `w` now held: every record that named it is referred to in its sidecar, and
    /// only then is its `.want` removed. A sidecar not written (a full disk, no inodes) keeps
    /// the `.want`, which the next start settles again ([`Self::open`]): without either, the
    /// file would be taken for an orphan and deleted, though live records name it. Blocking.
    fn settle_held(&self, w: &Want) -> bool {
        let mut failed = None;
        for (record, attachment) in w.records() {
            if let Err(e) = self.add_ref(record, attachment) {
                failed.get_or_insert(e);
            }
        }
        if w.more && failed.is_none() {
            let _sidecar = self.meta_lock.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut meta) = self.blobs.meta(&w.attachment.sha256)
                && !std::mem::replace(&mut meta.more, true)
                && let Err(e) = self.blobs.write_meta(&w.attachment.sha256, &meta)
            {
                failed = Some(e);
            }
        }
        let hash = &w.attachment.sha256;
        match failed {
            None => {
                let _ = std::fs::remove_file(self.want_path(hash));
                true
            }
            Some(e) => {
                warn!(file = %hash, error = %e, "the records naming a file just held could not be written beside it; kept waiting to be settled at the next start");
                false
            }
        }
    }

    /// References the held files `records` name and queues the others; each record was
    /// stored after the sequence number given with it. A file not yet waiting whose member
    /// has `attachments.max_waiting_per_member` waiting is put off: the member's mark is set
    /// before its record, and the files of its records from there are queued as its queue
    /// drains ([`Self::queue_put_off`]). Blocking.
    /// `stored_now`: the records were just stored (an ingest, or those a start settles again),
    /// so each naming a held file is indexed again (its document may have been built just
    /// before the file's text was written); otherwise (a pass over put-off records) only those
    /// newly referred to, or whose file's text is still to be read.
    fn settle_files(
        &self,
        records: impl IntoIterator<Item = (u64, Named)>,
        stored_now: bool,
    ) -> Settled {
        let bound = self.cfg.max_waiting_per_member;
        let mut done = Settled::default();
        let mut put_off_moved = false;
        let failed = |done: &mut Settled, e: &dyn std::fmt::Display| {
            warn!(error = %e, "attachment sidecar not written");
            done.failed = true;
        };
        for (after, (record, member, list)) in records {
            for a in list {
                if self.blobs.has(&a.sha256) {
                    // A pass over records stored long ago indexes again only those newly
                    // referred to (or whose file is still to be read).
                    match self.add_ref(record, &a) {
                        Ok(again) if again || stored_now => {
                            done.held.entry(a.sha256).or_default().insert(record);
                        }
                        Ok(_) => {}
                        Err(e) => failed(&mut done, &e),
                    }
                } else if self.wants(&a) {
                    // A file already waiting keeps its first claim; another record's
                    // different claim is added to it, never put in its place.
                    let saved = {
                        let mut q = self.queue();
                        if self.blobs.has(&a.sha256) {
                            // Fetched since it was looked for: held, so referred to.
                            drop(q);
                            match self.add_ref(record, &a) {
                                Ok(again) if again || stored_now => {
                                    done.held.entry(a.sha256).or_default().insert(record);
                                }
                                Ok(_) => {}
                                Err(e) => failed(&mut done, &e),
                            }
                            continue;
                        }
                        let full = q.waiting_of(&member) >= bound;
                        match q.waiting.get_mut(&a.sha256) {
                            Some(w) => w.add_claim(record, &a).then(|| w.clone()),
                            None if full => {
                                done.put_off += 1;
                                match q.put_off.get_mut(&member) {
                                    Some(at) if *at <= after => {}
                                    Some(at) => {
                                        *at = after;
                                        put_off_moved = true;
                                    }
                                    None => {
                                        q.put_off.insert(member.clone(), after);
                                        put_off_moved = true;
                                        warn!(member = %member, waiting = bound, "a member's records name more files than may wait to be fetched at once (attachments.max_waiting_per_member); the rest are put off and queued as its queue drains");
                                    }
                                }
                                None
                            }
                            None => {
                                let w = Want::new(record, a.clone()).of(member.clone());
                                q.add(w.clone());
                                Some(w)
                            }
                        }
                    };
                    if let Some(w) = saved
                        && let Ok(b) = serde_json::to_vec(&w)
                        && let Err(e) = self.blobs.write_sidecar(&a.sha256, ".want", &b)
                    {
                        // Not kept in the queue either: queued again when read again (the
                        // settled mark or the member's put-off entry stays before it).
                        if w.record == record {
                            self.queue().take(&a.sha256);
                        }
                        failed(&mut done, &e);
                    }
                }
            }
        }
        if put_off_moved && let Err(e) = self.save_put_off() {
            // The settled mark stays before these records (the caller's settle fails).
            warn!(error = %e, "the members whose files were put off not saved");
            done.failed = true;
        }
        done
    }

    /// Saves the members whose files were put off ([`PUT_OFF_FILE`]), atomically. Blocking.
    fn save_put_off(&self) -> std::io::Result<()> {
        let _one = self
            .put_off_saving
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let map = self.queue().put_off.clone();
        let b = serde_json::to_vec(&map).map_err(std::io::Error::other)?;
        self.blobs.write_sidecar_file(PUT_OFF_FILE, &b)
    }

    async fn throttle(&self, peer: Peer, n: u64) {
        let wait = {
            let mut r = self.rate.lock().unwrap_or_else(|e| e.into_inner());
            let all = r.all.take(n, self.cfg.max_bytes_per_sec);
            let one = r
                .peers
                .entry(peer)
                .or_default()
                .take(n, self.cfg.max_bytes_per_sec_per_peer);
            all.max(one)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// A peer disconnected: its slot (unless a transfer still holds it), its rate bucket and
    /// the request windows whose minute is over go, so that these maps hold connected peers
    /// only (peer ids are as many as a member mints certificates).
    pub(crate) fn peer_left(&self, peer: &Peer) {
        self.served.expire();
        self.connected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(peer);
        self.transfer_ended(peer);
    }

    /// A transfer from `peer` ended, or was not begun (its slot let go, or never taken): a peer
    /// not connected loses its slot and rate bucket once no transfer holds the slot, so that a
    /// transfer cut by a disconnection, or one begun from a list of peers taken before the peer
    /// left, leaves nothing behind. Called on every way out of a transfer, and by
    /// [`Attachments::peer_left`].
    fn transfer_ended(&self, peer: &Peer) {
        let connected = self.connected.lock().unwrap_or_else(|e| e.into_inner());
        if connected.contains(peer) {
            return;
        }
        let mut slots = self.peer_slots.lock().unwrap_or_else(|e| e.into_inner());
        // Only this map holds an idle slot; a busy one goes when its last transfer ends here.
        if slots.get(peer).is_some_and(|s| Arc::strong_count(s) > 1) {
            return;
        }
        slots.remove(peer);
        // Under the same locks: a peer admitted again meanwhile keeps the bucket its next
        // transfer fills.
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .peers
            .remove(peer);
        drop((slots, connected));
    }

    fn peer_slot(&self, peer: Peer) -> Arc<Semaphore> {
        self.peer_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(peer)
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.max_parallel_per_peer)))
            .clone()
    }
}

/// What the API shows and serves of an attachment.
#[derive(Debug, Clone)]
pub struct BlobView {
    pub path: std::path::PathBuf,
    pub meta: Option<BlobMeta>,
    pub size: u64,
}

/// Whether this node holds an attachment, is fetching it, waits for disk space to fetch it,
/// or will not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Held,
    Fetching,
    /// Queued, but the disk is below its floor or the file would not fit above it.
    WaitingForDisk,
    NotFetched,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Held => "held",
            Availability::Fetching => "fetching",
            Availability::WaitingForDisk => "waiting-for-disk",
            Availability::NotFetched => "not-fetched",
        }
    }
}

/// Whether the text of a held attachment is in search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentText {
    /// Extracted and indexed with the records naming the file.
    Searchable,
    /// Not read yet.
    Pending,
    /// Could not be read (an unsupported type, a malformed or hostile file): the reason.
    Unreadable(String),
}

impl AttachmentText {
    pub fn as_str(&self) -> &'static str {
        match self {
            AttachmentText::Searchable => "searchable",
            AttachmentText::Pending => "pending",
            AttachmentText::Unreadable(_) => "unreadable",
        }
    }
}

impl NodeHandle {
    /// Whether the text of a held attachment is in search (`None`: not held).
    pub async fn attachment_text(&self, hash: ObjectId) -> Option<AttachmentText> {
        let att = self.attachments().clone();
        tokio::task::spawn_blocking(move || {
            let meta = att.blobs.meta(&hash)?;
            Some(if att.blobs.has_text(&hash) {
                AttachmentText::Searchable
            } else if let Some(e) = meta.extract_error {
                AttachmentText::Unreadable(e)
            } else {
                AttachmentText::Pending
            })
        })
        .await
        .ok()
        .flatten()
    }

    /// Records this node's own publisher just submitted: every file they name is referenced
    /// now, held or not, before the submission is answered. The publisher uploads its files
    /// to this node (before or after the record), and a file no sidecar names is collected
    /// as an orphan after a day: without this, a file uploaded after its record on a node
    /// that fetches nothing (or not that size), or uploaded before it with the node stopped
    /// between the answer and the reference, was deleted, and it may have been the only copy.
    pub(crate) async fn reference_local(&self, records: Vec<Named>) {
        if records.is_empty() {
            return;
        }
        let att = self.attachments().clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (record, _, list) in records {
                for a in list {
                    if let Err(e) = att.add_ref(record, &a) {
                        warn!(error = %e, "attachment sidecar not written");
                    }
                }
            }
        })
        .await;
    }

    /// Stored records submitted again by this node's operator: the files they name that are
    /// held are referenced for them (the first submission's references may have been lost
    /// with its answer). Blocking reads, off the async workers.
    pub(crate) async fn reference_held(&self, records: Vec<ObjectId>) {
        if records.is_empty() {
            return;
        }
        let Ok(reader) = self.object_reader() else {
            return;
        };
        let limits = self.trust().limits().for_stored();
        let att = self.attachments().clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in records {
                let Ok(Some(bytes)) = reader.try_get(&id) else {
                    continue;
                };
                let Some(body) = accord_core::envelope::body_of(&bytes) else {
                    continue;
                };
                let Ok(Object::Record(r)) = Object::decode_body(body, &limits) else {
                    continue;
                };
                for a in &r.attachments {
                    if att.blobs.has(&a.sha256)
                        && let Err(e) = att.add_ref(id, a)
                    {
                        warn!(error = %e, "attachment sidecar not written");
                    }
                }
            }
        })
        .await;
    }

    /// Records just accepted: the files they name are referenced if held, else queued. The
    /// ingest's `settle` is dropped once that is written (stored after `settle`'s sequence
    /// number, from which files put off are queued again).
    pub(crate) fn attachments_arrived(&self, records: Vec<Named>, settle: Option<Settle>) {
        if records.is_empty() {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let att = node.attachments().clone();
            let held = tokio::task::spawn_blocking(move || {
                // Released once the references and `.want` files are written (not after the
                // texts are read, which may take an extraction's time limit per file); one that
                // could not be written keeps the mark before these records for the next start.
                // (Files put off are kept in PUT_OFF_FILE: the mark moves on.)
                let settle = settle;
                let after = settle.as_ref().map_or(0, Settle::after);
                let keep_mark = || {
                    if let Some(s) = &settle {
                        s.failed();
                    }
                };
                let done = att.settle_files(records.into_iter().map(|n| (after, n)), true);
                if done.failed {
                    keep_mark();
                }
                done
            })
            .await
            .unwrap_or_default();
            node.metrics().attachments_put_off.inc_by(held.put_off);
            node.attachments().wake.notify_one();
            node.read_held(held.held).await;
        });
    }

    /// Reads the text of held files just referred to by records (see [`Self::read_attachment`]).
    async fn read_held(&self, held: BTreeMap<ObjectId, BTreeSet<ObjectId>>) {
        for (hash, records) in held {
            self.read_attachment(hash, records.into_iter().collect())
                .await;
        }
    }

    /// Queues again the files of `member`'s records stored after `after` that were put off
    /// (its queue was full), page by page, until its queue is full again (the mark is then
    /// set anew) or every record is seen.
    async fn queue_put_off(&self, member: MemberCode, after: u64) {
        let mut from = after;
        // A pass that failed leaves the member put off from where it got, and is tried again
        // after a while (a disk refusing writes would otherwise be tried in a loop).
        let failed = |e: &dyn std::fmt::Display| {
            warn!(error = %e, member = %member, "files put off not queued again for now");
            self.attachments().queue().requeue_after = Some(Instant::now() + RETRY_AFTER);
        };
        // The member's entry moves on with the pass (saved), unless something else moved it.
        let moved_on = |from: u64, to: Option<u64>| {
            let mut q = self.attachments().queue();
            if q.put_off.get(&member) == Some(&from) {
                match to {
                    Some(to) => {
                        q.put_off.insert(member.clone(), to);
                    }
                    None => {
                        q.put_off.remove(&member);
                    }
                }
            }
        };
        loop {
            let page = self.read(move |s| s.seqs_since(from, PUT_OFF_PAGE)).await;
            let page = match page
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                Ok(page) => page,
                Err(e) => return failed(&e),
            };
            let last = page.last().map(|(seq, _)| *seq);
            if last.is_some() {
                let Ok(reader) = self.object_reader() else {
                    return failed(&"the object log cannot be read");
                };
                let limits = self.trust().limits().for_stored();
                let att = self.attachments().clone();
                let m = member.clone();
                let done = tokio::task::spawn_blocking(move || {
                    let named = page.into_iter().filter_map(|(seq, id)| {
                        let bytes = reader.try_get(&id).ok().flatten()?;
                        let body = accord_core::envelope::body_of(&bytes)?;
                        match Object::decode_body(body, &limits) {
                            Ok(Object::Record(r)) if r.member == m && !r.attachments.is_empty() => {
                                Some((seq - 1, (id, r.member, r.attachments)))
                            }
                            _ => None,
                        }
                    });
                    att.settle_files(named, false)
                })
                .await;
                let Ok(done) = done else {
                    return failed(&"the pass's reading task ended early");
                };
                self.metrics().attachments_put_off.inc_by(done.put_off);
                self.attachments().wake.notify_one();
                self.read_held(done.held).await;
                if done.put_off > 0 {
                    // Full again: the member stays put off from this page.
                    return;
                }
                if done.failed {
                    return failed(&"a reference or `.want` file not written");
                }
            }
            moved_on(from, last);
            let att = self.attachments().clone();
            match tokio::task::spawn_blocking(move || att.save_put_off()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return failed(&e),
                Err(e) => return failed(&e),
            }
            match last {
                Some(last) => from = last,
                // Every record seen: the member is put off no more.
                None => return,
            }
        }
    }

    /// Reads the text of every held file that has neither text nor a recorded failure, after
    /// indexing again the records of files whose text no index commit holds yet (the node
    /// stopped in between): run once at start, one file after another.
    pub(crate) async fn read_unread_attachments(self, index_committed_at: Option<SystemTime>) {
        let att = self.attachments().clone();
        let (unread, uncommitted, marked) = tokio::task::spawn_blocking(move || {
            let held = att.blobs.list().unwrap_or_default();
            let unread: Vec<ObjectId> = held
                .iter()
                .filter(|h| {
                    !att.blobs.has_text(h)
                        && att.blobs.meta(h).is_some_and(|m| m.extract_error.is_none())
                })
                .copied()
                .collect();
            // A text written whose records no index commit holds yet (marked before the text
            // was written, cleared after the commit): its records are indexed again, or the
            // words only the file holds would never be found.
            let marked = att.blobs.reindex_pending().unwrap_or_else(|e| {
                warn!(error = %e, "the files whose records are to be indexed again cannot be listed");
                Vec::new()
            });
            // A text written at or after the index's last commit before this start, by a
            // release that did not note it first, is taken as uncommitted too.
            let newer = |h: &ObjectId| {
                index_committed_at
                    .is_some_and(|at| att.blobs.text_written(h).is_some_and(|t| t >= at))
            };
            let uncommitted: Vec<ObjectId> = held
                .iter()
                .filter(|h| marked.binary_search(h).is_ok() || newer(h))
                .filter_map(|h| att.blobs.meta(h))
                .flat_map(|m| m.records.into_iter().filter_map(|r| r.parse().ok()))
                .collect();
            (unread, uncommitted, marked)
        })
        .await
        .unwrap_or_default();
        if !uncommitted.is_empty() || !marked.is_empty() {
            info!(
                records = uncommitted.len(),
                "indexing again the records of files whose text the search index never committed"
            );
            if self.reindex(uncommitted).await {
                self.clear_reindex(marked).await;
            }
        }
        for hash in unread {
            self.read_attachment(hash, Vec::new()).await;
        }
    }

    /// Extracts the text of a held blob (once; bounded) and re-indexes the records naming it.
    /// A file whose text was read before (or could not be) re-indexes only `fresh`, the
    /// records just referred to it: their documents were built with the text if it was there
    /// when they were stored, and this covers one stored while it was being written. Every
    /// record the sidecar lists was re-indexed when its text was written (records past its
    /// bound, named before the text was, are not: `accord check --repair` rebuilds them);
    /// doing it again for each new record cost a member naming one file from n records n²
    /// documents.
    pub(crate) async fn read_attachment(&self, hash: ObjectId, fresh: Vec<ObjectId>) {
        let att = self.attachments().clone();
        let timeout = Duration::from_secs(att.cfg.extract_timeout_secs);
        let (records, marked) = tokio::task::spawn_blocking(move || -> (Vec<ObjectId>, bool) {
            let Some(meta) = att.blobs.meta(&hash) else {
                return (Vec::new(), false);
            };
            if att.blobs.has_text(&hash) || meta.extract_error.is_some() {
                return (fresh, false);
            }
            // Every record the sidecar lists, and those just referred to (past the sidecar's
            // bound of MAX_REFERENCES, a record is listed nowhere else).
            let mut ids: Vec<ObjectId> =
                meta.records.iter().filter_map(|r| r.parse().ok()).collect();
            ids.extend(fresh.iter().filter(|r| !meta.records.contains(&r.to_string())));
            let Ok(bytes) = std::fs::read(att.blobs.path(&hash)) else {
                return (ids, false);
            };
            let limits = accord_search::extract::ExtractLimits {
                timeout,
                ..Default::default()
            };
            let bytes = Arc::new(bytes);
            let extracted = match &att.cfg.extractor {
                Some(program) => accord_search::extract::extract_in_child(
                    program,
                    &meta.media_type,
                    &meta.name,
                    bytes,
                    &limits,
                ),
                None => accord_search::extract::extract_bounded(
                    &meta.media_type,
                    &meta.name,
                    bytes,
                    limits,
                ),
            };
            let mut marked = false;
            match extracted {
                Ok(text) => {
                    // Noted before the text is written, cleared once an index commit holds the
                    // records with it: a node stopped in between indexes them at its start.
                    if let Err(e) = att.blobs.mark_reindex(&hash) {
                        warn!(file = %meta.name, sha256 = %hash, error = %e, "attachment text not written; read again at the next start");
                        return (ids, false);
                    }
                    marked = true;
                    if let Err(e) = att.blobs.write_text(&hash, &text) {
                        // Read again at the next start (its text is still missing).
                        warn!(file = %meta.name, sha256 = %hash, error = %e, "attachment text not written; read again at the next start");
                    }
                }
                Err(e) if e.is_transient() => {
                    // Not the file's fault: tried again at the next start.
                    warn!(file = %meta.name, error = %e, "attachment text not extracted");
                }
                Err(e) => {
                    if matches!(e, accord_search::extract::ExtractError::Crashed(_)) {
                        // Once per file (the outcome is kept): a parser that crashed on it
                        // may have met a hostile file; the node itself is unaffected.
                        warn!(file = %meta.name, sha256 = %hash, error = %e, "attachment text extraction crashed; the file is kept, its text is not searchable");
                    } else {
                        debug!(file = %meta.name, error = %e, "no text from attachment");
                    }
                    // Read again under the lock: records added while the file was read stay.
                    let _sidecar = att.meta_lock.lock().unwrap_or_else(|e| e.into_inner());
                    let mut now = att.blobs.meta(&hash).unwrap_or(meta);
                    now.extract_error = Some(e.to_string());
                    if let Err(e) = att.blobs.write_meta(&hash, &now) {
                        warn!(file = %now.name, sha256 = %hash, error = %e, "the outcome of reading an attachment not written; read again at the next start");
                    }
                }
            }
            (ids, marked)
        })
        .await
        .unwrap_or_default();
        // Only the note this reading wrote is cleared: another reading's may wait for a
        // commit this one does not hold.
        let indexed = records.is_empty() || self.reindex(records).await;
        if marked && indexed {
            self.clear_reindex(vec![hash]).await;
        }
    }

    /// Indexes `records` again (their files' text changed); whether an index commit holds
    /// them now (not when the index failed or the node stops first).
    async fn reindex(&self, records: Vec<ObjectId>) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.store_tx()
            .send(crate::worker::Job::Reindex(records, tx))
            .await
            .is_ok()
            && rx.await.is_ok()
    }

    /// The records of these files are indexed with their text: the notes saying they were to
    /// be go ([`BlobStore::mark_reindex`]).
    async fn clear_reindex(&self, hashes: Vec<ObjectId>) {
        let att = self.attachments().clone();
        let _ = tokio::task::spawn_blocking(move || {
            for h in hashes {
                if let Err(e) = att.blobs.clear_reindex(&h) {
                    warn!(sha256 = %h, error = %e, "a note of records to index again was not removed; they are indexed again at the next start");
                }
            }
        })
        .await;
    }

    /// The fetcher: takes files from the queue while transfer slots are free.
    pub(crate) async fn run_fetcher(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let att = self.attachments().clone();
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = att.wake.notified() => {}
                _ = tokio::time::sleep(FETCH_TICK) => {}
            }
            loop {
                // Files wait in the queue while the disk is below its floor.
                if self.disk_check().is_err() {
                    break;
                }
                let Ok(permit) = att.slots.clone().try_acquire_owned() else {
                    break;
                };
                let next = {
                    let mut q = att.queue();
                    let now = Instant::now();
                    let pick = q
                        .next(now)
                        .and_then(|h| q.waiting.get(&h).map(|w| (h, w.clone())));
                    if let Some((h, _)) = &pick {
                        q.running.insert(*h);
                    }
                    pick
                };
                let Some((hash, want)) = next else {
                    break;
                };
                // Only a file with room for all of it above the floor is fetched; one that
                // does not fit now waits its retry time while smaller ones go ahead.
                let room = match self.disk_reserve(want.attachment.size) {
                    Ok(room) => {
                        att.queue().no_room.remove(&hash);
                        room
                    }
                    Err(e) => {
                        let mut q = att.queue();
                        q.running.remove(&hash);
                        q.retry_at.insert(hash, Instant::now() + ROOM_RETRY);
                        // Counted once per file while it waits, not at every look.
                        let first = q.no_room.insert(hash);
                        drop(q);
                        if first {
                            self.metrics().attachments_deferred_for_disk.inc();
                            debug!(file = %want.attachment.name, size = want.attachment.size, error = %e, "attachment waits for room on the disk");
                        }
                        continue;
                    }
                };
                let node = self.clone();
                tokio::spawn(async move {
                    node.fetch(hash, want).await;
                    drop(room);
                    drop(permit);
                    node.attachments().wake.notify_one();
                });
            }
            // A member whose files were put off, its queue drained to half: one pass at a
            // time queues them.
            let due = {
                let mut q = att.queue();
                let due = q.requeue_due(att.cfg.max_waiting_per_member, Instant::now());
                if due.is_some() {
                    // The member stays put off (on disk too) until the pass has seen every
                    // record: a node stopped during a pass starts it again from where it got.
                    q.requeueing = true;
                }
                due
            };
            if let Some((member, after)) = due {
                let node = self.clone();
                tokio::spawn(async move {
                    // Cleared however the pass ends (a panic included), or no member would be
                    // queued again.
                    let _pass = Requeueing(node.attachments().clone());
                    node.queue_put_off(member, after).await;
                });
            }
        }
    }

    /// Fetches one file from the first admitted peer that has it.
    async fn fetch(&self, hash: ObjectId, want: Want) {
        let att = self.attachments().clone();
        let mut peers: Vec<Peer> = self
            .network()
            .peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.admitted)
            .map(|p| p.peer)
            .collect();
        // Not always the same peer first: files start at different peers (by their hash).
        if !peers.is_empty() {
            let n = hash.0[0] as usize % peers.len();
            peers.rotate_left(n);
        }
        let mut done = false;
        // Peers with a free transfer slot first; then those that were busy, each waited for at
        // most PEER_SLOT_WAIT (this task holds one of the overall slots meanwhile: a peer that
        // keeps its slots busy, slowly, must not hold every transfer back).
        let mut order: Vec<(Peer, bool)> = peers.iter().map(|p| (*p, false)).collect();
        order.extend(peers.iter().map(|p| (*p, true)));
        let mut tried: HashSet<Peer> = HashSet::new();
        for (peer, wait) in order {
            if tried.contains(&peer) {
                continue;
            }
            let slot = att.peer_slot(peer);
            let permit = if wait {
                tokio::time::timeout(PEER_SLOT_WAIT, slot.acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            } else {
                slot.try_acquire_owned().ok()
            };
            let Some(permit) = permit else {
                // The slot's handle is gone with the failed acquisition: a peer that left
                // meanwhile loses it here, if no one else holds it.
                att.transfer_ended(&peer);
                continue;
            };
            tried.insert(peer);
            // A slow peer is left for another only when there is another to try.
            let others = peers.iter().any(|p| !tried.contains(p));
            let outcome = self.fetch_from(peer, &want, false, others).await;
            drop(permit);
            att.transfer_ended(&peer);
            match outcome {
                Transfer::Done => {
                    done = true;
                    break;
                }
                Transfer::Elsewhere(why) => {
                    debug!(%peer, file = %want.attachment.name, %why, "attachment not fetched from this peer")
                }
                Transfer::Disagrees(why) => {
                    self.metrics().attachment_claims_disagree.inc();
                    debug!(%peer, file = %want.attachment.name, %why, "the peer's chunk list agrees with no record naming this file: not fetched from it")
                }
                Transfer::Bad(why) => {
                    self.metrics().attachment_bad_data.inc();
                    let _ = self
                        .network()
                        .penalize(peer, format!("attachment {}: {why}", want.attachment.name))
                        .await;
                }
                Transfer::Local(why) => {
                    self.metrics().attachment_local_write_errors.inc();
                    warn!(file = %want.attachment.name, %why, "an attachment could not be written on this node's disk; fetched again later");
                    break;
                }
            }
        }
        // The queue's own entry, not the copy the fetch began with: records that named the file
        // while it was fetched were added there.
        let finished = {
            let mut q = att.queue();
            q.running.remove(&hash);
            if done {
                q.forget(&hash);
                q.take(&hash)
            } else {
                q.failed(hash, Instant::now());
                None
            }
        };
        if done {
            let a = att.clone();
            let w = finished.unwrap_or_else(|| want.clone());
            // The file is what its hash says: every record that names it refers to it.
            let _ = tokio::task::spawn_blocking(move || a.settle_held(&w)).await;
            self.metrics().attachments_fetched.inc();
            info!(file = %want.attachment.name, size = want.attachment.size, "attachment fetched");
            self.read_attachment(hash, Vec::new()).await;
        }
    }

    async fn blob_ask(&self, peer: Peer, req: BlobRequest) -> Result<Vec<u8>, Transfer> {
        let raw = self
            .network()
            .blob_request(peer, encode(&req))
            .await
            .map_err(|e| Transfer::Elsewhere(e.to_string()))?;
        match ciborium::from_reader::<BlobAnswer, _>(&raw[..]) {
            Ok(BlobAnswer(0, b)) => Ok(b.into_vec()),
            Ok(BlobAnswer(_, why)) => Err(Transfer::Elsewhere(
                String::from_utf8_lossy(&why).into_owned(),
            )),
            Err(e) => Err(Transfer::Bad(format!("malformed answer: {e}"))),
        }
    }

    /// Fetches the file from `peer`. `again`: this is the second try, after a kept chunk list
    /// another peer served turned out not to be this peer's. `others`: another peer remains to
    /// be tried, so a slow one may be left.
    async fn fetch_from(&self, peer: Peer, want: &Want, again: bool, others: bool) -> Transfer {
        let att = self.attachments().clone();
        let hash = want.attachment.sha256;
        // The chunk list: saved by an earlier attempt, else asked for and checked against
        // the record.
        let saved = {
            let att = att.clone();
            tokio::task::spawn_blocking(move || att.blobs.saved_list(&hash))
                .await
                .ok()
                .flatten()
        };
        let (list, mut a) =
            // A saved list counts only for a claim that commits to it: a list without that was
            // another peer's word, and this peer is not judged against it.
            match saved.and_then(|l| {
                want.claim_of(&l)
                    .ok()
                    .filter(|a| a.chunks.is_some())
                    .cloned()
                    .map(|a| (l, a))
            }) {
                Some(kept) => kept,
                None => {
                    let l = match self
                        .blob_ask(peer, BlobRequest(0, ByteBuf::from(hash.0.to_vec()), 0))
                        .await
                    {
                        Ok(l) => l,
                        Err(t) => return t,
                    };
                    let a = match want.claim_of(&l) {
                        Ok(a) => a.clone(),
                        Err(e) => return Transfer::Disagrees(e),
                    };
                    let (att2, l2) = (att.clone(), l.clone());
                    let _ = tokio::task::spawn_blocking(move || {
                        // A partial download of another claim's list is not this one's.
                        att2.blobs.discard_partial(&hash);
                        att2.blobs.save_list(&hash, &l2)
                    })
                    .await;
                    att.set_list_source(hash, Some(peer));
                    (l, a)
                }
            };
        let have = {
            let att = att.clone();
            tokio::task::spawn_blocking(move || att.blobs.partial_len(&hash))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0)
        };
        let n = chunk_count(a.size);
        for index in have / CHUNK_SIZE as u64..n {
            let len = if index + 1 == n {
                a.size - index * CHUNK_SIZE as u64
            } else {
                CHUNK_SIZE as u64
            };
            att.throttle(peer, len).await;
            let asked = Instant::now();
            let chunk = match self
                .blob_ask(peer, BlobRequest(1, ByteBuf::from(hash.0.to_vec()), index))
                .await
            {
                Ok(c) => c,
                Err(t) => return t,
            };
            let took = asked.elapsed();
            // Caught at this chunk: nothing unverified is written.
            if let Err(e) = check_chunk(&list, a.size, index, &chunk) {
                if !accord_core::attachment::listed(&list, index, &chunk)
                    && !att.list_served_by(&hash, peer)
                {
                    // The list was kept from another peer (or from before a restart), and a
                    // hostile record may commit to a false list its own node served: this peer
                    // is judged only against its own list.
                    let theirs = match self
                        .blob_ask(peer, BlobRequest(0, ByteBuf::from(hash.0.to_vec()), 0))
                        .await
                    {
                        Ok(l) => l,
                        Err(t) => return t,
                    };
                    if theirs == list {
                        // The same list: its chunk contradicts its own word (below). What was
                        // verified before stays.
                        att.set_list_source(hash, Some(peer));
                    } else if want.claim_of(&theirs).is_err() {
                        // A list no record's claim agrees with: this peer's word is worth
                        // nothing here, and what other peers gave is kept.
                        return Transfer::Disagrees(format!(
                            "{e}, and the peer's own chunk list agrees with no record naming the file"
                        ));
                    } else {
                        // Another list: the kept one and what came with it go, and this peer's
                        // is taken, once.
                        att.set_list_source(hash, None);
                        let att = att.clone();
                        let _ =
                            tokio::task::spawn_blocking(move || att.blobs.discard_partial(&hash))
                                .await;
                        debug!(%peer, file = %hash, error = %e, "a chunk list another peer served is not this peer's: taking its own");
                        if again {
                            return Transfer::Disagrees(format!(
                                "{e}, against a kept chunk list that could not be replaced"
                            ));
                        }
                        return Box::pin(self.fetch_from(peer, want, true, others)).await;
                    }
                }
                if !accord_core::attachment::listed(&list, index, &chunk) {
                    if a.chunks.is_none() {
                        // Without a committed list the list itself may be the lie: start over.
                        let att = att.clone();
                        let _ =
                            tokio::task::spawn_blocking(move || att.blobs.discard_partial(&hash))
                                .await;
                    }
                    return Transfer::Bad(e);
                }
                // The chunk is the one the peer's own list names, of another length than the
                // claim says: the claim's size is what is false (a hostile record naming this
                // file), not the peer. Another record's claim may fit.
                match want.claims().map(|(_, b)| b).find(|b| {
                    check_list(b, &list).is_ok()
                        && check_chunk(&list, b.size, index, &chunk).is_ok()
                }) {
                    Some(b) => a = b.clone(),
                    None => {
                        if a.chunks.is_none() {
                            // The list was this peer's word only: neither it nor what came
                            // with it is kept for the next peer.
                            let att = att.clone();
                            let _ = tokio::task::spawn_blocking(move || {
                                att.blobs.discard_partial(&hash)
                            })
                            .await;
                        }
                        return Transfer::Disagrees(format!(
                            "{e}, as the peer's own chunk list says: no record's size fits the file"
                        ));
                    }
                }
            }
            let att2 = att.clone();
            let written =
                tokio::task::spawn_blocking(move || att2.blobs.append_chunk(&hash, &chunk)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Transfer::Local(format!("writing a chunk: {e}")),
                Err(e) => return Transfer::Elsewhere(e.to_string()),
            }
            self.metrics().attachment_chunks.inc();
            // Only where what it sent is kept for the next: a claim that commits to its chunk
            // list (without one, a next attempt starts over).
            if took > SLOW_CHUNK && others && a.chunks.is_some() && index + 1 < n {
                // Kept: the next peer (or this one, at the next attempt) goes on from here.
                return Transfer::Elsewhere(format!(
                    "{} s for one chunk (at most {} s): too slow, another peer goes on",
                    took.as_secs(),
                    SLOW_CHUNK.as_secs()
                ));
            }
        }
        let att2 = att.clone();
        match tokio::task::spawn_blocking(move || att2.blobs.finish(&hash)).await {
            Ok(Ok(())) => Transfer::Done,
            // The file is not what its hash says: only the peer can have sent that.
            Ok(Err(e @ accord_store::BlobError::Mismatch { .. })) => Transfer::Bad(e.to_string()),
            // Reading the file back or putting it in place failed here.
            Ok(Err(e)) => Transfer::Local(e.to_string()),
            Err(e) => Transfer::Elsewhere(e.to_string()),
        }
    }

    /// Answers a peer's attachments request from the blob store.
    pub(crate) async fn serve_blob(&self, peer: Peer, request_id: u64, data: Vec<u8>) {
        let att = self.attachments().clone();
        let corrupt = att.cfg.corrupt_served;
        if !att.served.spend(peer, att.cfg.serve_requests_per_minute) {
            debug!(%peer, "attachment request over the per-peer budget: refused");
            let answer = BlobAnswer(
                1,
                ByteBuf::from(b"rate limited: too many requests this minute".to_vec()),
            );
            let _ = self.network().respond(request_id, encode(&answer)).await;
            return;
        }
        let answer = tokio::task::spawn_blocking(move || {
            let Ok(BlobRequest(kind, hash, index)) = ciborium::from_reader(&data[..]) else {
                return BlobAnswer(1, ByteBuf::from(b"malformed request".to_vec()));
            };
            let Some(hash) = ObjectId::from_slice(&hash) else {
                return BlobAnswer(1, ByteBuf::from(b"malformed hash".to_vec()));
            };
            let r = match kind {
                0 => att.blobs.chunk_list(&hash),
                1 => att.blobs.read_chunk(&hash, index).map(|c| {
                    c.map(|mut c| {
                        if corrupt && !c.is_empty() {
                            c[0] ^= 0xff;
                        }
                        c
                    })
                }),
                _ => return BlobAnswer(1, ByteBuf::from(b"unknown request".to_vec())),
            };
            match r {
                Ok(Some(b)) => BlobAnswer(0, ByteBuf::from(b)),
                _ => BlobAnswer(1, ByteBuf::from(b"not held".to_vec())),
            }
        })
        .await
        .unwrap_or_else(|_| BlobAnswer(1, ByteBuf::from(b"failed".to_vec())));
        debug!(%peer, "attachment request answered");
        let _ = self.network().respond(request_id, encode(&answer)).await;
    }

    /// A held blob, for the API.
    pub async fn blob(&self, hash: ObjectId) -> Option<BlobView> {
        let att = self.attachments().clone();
        tokio::task::spawn_blocking(move || {
            let path = att.blobs.path(&hash);
            let size = std::fs::metadata(&path).ok()?.len();
            Some(BlobView {
                meta: att.blobs.meta(&hash),
                path,
                size,
            })
        })
        .await
        .ok()
        .flatten()
    }

    /// Whether this node holds, is fetching or will not fetch an attachment.
    pub async fn availability(&self, hash: ObjectId) -> Availability {
        let att = self.attachments().clone();
        let (waiting, no_room) = {
            let q = att.queue();
            (q.waiting.contains_key(&hash), q.no_room.contains(&hash))
        };
        if waiting {
            if no_room || self.disk_check().is_err() {
                return Availability::WaitingForDisk;
            }
            return Availability::Fetching;
        }
        let held = tokio::task::spawn_blocking(move || att.blobs.has(&hash))
            .await
            .unwrap_or(false);
        if held {
            Availability::Held
        } else {
            Availability::NotFetched
        }
    }

    /// Stores a file uploaded by this node's publisher (checked against its SHA-256). If a
    /// stored record names it, it is referenced and read at once.
    pub async fn put_blob(&self, hash: ObjectId, bytes: Vec<u8>) -> Result<(), NodeError> {
        let att = self.attachments().clone();
        if bytes.len() as u64 > att.max_file {
            return Err(NodeError::BadQuery(format!(
                "the file is {} bytes, over the charter's limit of {}",
                bytes.len(),
                att.max_file
            )));
        }
        let room = self.disk_reserve(bytes.len() as u64)?;
        let a2 = att.clone();
        let waiting = tokio::task::spawn_blocking(move || -> Result<Option<Want>, NodeError> {
            a2.blobs
                .put(&hash, &bytes)
                .map_err(|e| NodeError::BadQuery(e.to_string()))?;
            let w = {
                let mut q = a2.queue();
                q.forget(&hash);
                q.take(&hash)
            };
            if let Some(w) = &w {
                a2.settle_held(w);
            }
            Ok(w)
        })
        .await
        .map_err(|e| NodeError::Store(e.to_string()))??;
        drop(room);
        // A file its record named before it came (see `reference_local`) is read now too.
        let att = self.attachments().clone();
        let named = waiting.is_some()
            || tokio::task::spawn_blocking(move || {
                att.blobs.meta(&hash).is_some_and(|m| !m.records.is_empty())
            })
            .await
            .unwrap_or(false);
        if named {
            self.read_attachment(hash, Vec::new()).await;
        }
        Ok(())
    }

    /// Removes every blob no live record needs: all the records naming it were retracted
    /// (or are not stored), or, for a file uploaded but never named, after a day. Superseded
    /// records keep their files (they are history). Returns the number removed.
    pub async fn collect_attachments(&self) -> Result<usize, NodeError> {
        let att = self.attachments().clone();
        let a2 = att.clone();
        let blobs: Vec<(ObjectId, Option<BlobMeta>, Option<std::time::SystemTime>)> =
            tokio::task::spawn_blocking(move || {
                let mut found: Vec<_> = a2
                    .blobs
                    .list()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|h| {
                        let modified = std::fs::metadata(a2.blobs.path(&h))
                            .and_then(|m| m.modified())
                            .ok();
                        let meta = a2.blobs.meta(&h);
                        let sidecar = a2.blobs.dir().join(format!("{h}.json"));
                        if meta.is_none() && sidecar.exists() {
                            // A sidecar that does not read (damaged on disk) lists records
                            // that may be live: the file is kept, not taken for an orphan.
                            warn!(file = %sidecar.display(), "the records naming a held file cannot be read; the file is kept");
                            return None;
                        }
                        if a2.want_path(&h).exists() {
                            // Fetched, its records not yet all written beside it (`settle_held`
                            // failed part-way, or the node stopped first): settled at the next
                            // start, whatever its sidecar lists meanwhile.
                            return None;
                        }
                        Some((h, meta, modified))
                    })
                    .collect();
                // The references of files never held nor waited for (named by this node's
                // publisher's records, `reference_local`, and never uploaded): they go with
                // their records, like a file.
                let unheld = std::fs::read_dir(a2.blobs.dir())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name();
                        let h: ObjectId = name.to_str()?.strip_suffix(".json")?.parse().ok()?;
                        let waiting = a2.want_path(&h).exists();
                        (!a2.blobs.has(&h) && !waiting).then_some(h)
                    })
                    .filter_map(|h| Some((h, Some(a2.blobs.meta(&h)?), None)))
                    .collect::<Vec<_>>();
                found.extend(unheld);
                found
            })
            .await
            .map_err(|e| NodeError::Store(e.to_string()))?;
        let mut dead = Vec::new();
        for (hash, meta, modified) in blobs {
            let Some(meta) = meta else {
                let old = modified
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > ORPHAN_GRACE);
                if old {
                    dead.push(hash);
                }
                continue;
            };
            if meta.more {
                // Named by more records than its sidecar lists (held or not): kept for good.
                continue;
            }
            let ids: Vec<ObjectId> = meta.records.iter().filter_map(|r| r.parse().ok()).collect();
            let live = self
                .read(move |s| {
                    ids.iter().any(|id| {
                        matches!(
                            s.record_status(id),
                            Ok(Some(st)) if st != RecordStatus::Retracted
                        )
                    })
                })
                .await?;
            if !live {
                dead.push(hash);
            }
        }
        let n = dead.len();
        if n > 0 {
            let att = att.clone();
            tokio::task::spawn_blocking(move || {
                for h in dead {
                    if let Err(e) = att.blobs.remove(&h) {
                        warn!(blob = %h, error = %e, "attachment not removed");
                    }
                }
            })
            .await
            .map_err(|e| NodeError::Store(e.to_string()))?;
            info!(removed = n, "attachments no live record needs were removed");
        }
        // Files waited for that no live record names any more (each record naming them is
        // retracted) are no longer fetched: a record naming files no peer holds leaves nothing
        // behind once retracted (its wants were kept, and asked for, for ever).
        let wants: Vec<(ObjectId, Vec<ObjectId>)> = {
            let q = att.queue();
            q.waiting
                .iter()
                .filter(|(h, _)| !q.running.contains(*h))
                // Named by more records than it lists: waited for while any may live.
                .filter(|(_, w)| !w.more)
                .map(|(h, w)| (*h, w.records().map(|(r, _)| r).collect()))
                .collect()
        };
        let mut unwanted = Vec::new();
        for (hash, ids) in wants {
            let live = self
                .read(move |s| {
                    ids.iter()
                        .any(|id| !matches!(s.record_status(id), Ok(Some(RecordStatus::Retracted))))
                })
                .await?;
            if !live {
                unwanted.push(hash);
            }
        }
        if !unwanted.is_empty() {
            let dropped: Vec<ObjectId> = {
                let mut q = att.queue();
                let mut dropped = Vec::new();
                for h in unwanted {
                    if !q.running.contains(&h) && q.take(&h).is_some() {
                        q.forget(&h);
                        dropped.push(h);
                    }
                }
                dropped
            };
            let count = dropped.len();
            let backlog = att.clone();
            tokio::task::spawn_blocking(move || {
                for h in dropped {
                    let _ = std::fs::remove_file(att.want_path(&h));
                    att.blobs.discard_partial(&h);
                }
            })
            .await
            .map_err(|e| NodeError::Store(e.to_string()))?;
            info!(
                dropped = count,
                "attachments waited for that only retracted records named are no longer fetched"
            );
            self.metrics()
                .attachments_backlog
                .set(backlog.backlog() as i64);
        }
        Ok(n)
    }
}

/// The attachments of the accepted records among `objects`.
pub(crate) fn of_records<'a>(
    objects: impl Iterator<Item = &'a accord_core::Verified<Object>>,
) -> Vec<Named> {
    objects
        .filter_map(|v| match v.object() {
            Object::Record(r) if !r.attachments.is_empty() => {
                Some((v.id(), r.member.clone(), r.attachments.clone()))
            }
            _ => None,
        })
        .collect()
}

/// What `accord check` found in the blob store.
#[derive(Debug, Clone, Default)]
pub struct BlobCheck {
    pub checked: usize,
    /// Files whose content no longer matches their SHA-256.
    pub bad: Vec<ObjectId>,
    /// Of those, removed and queued to be fetched again (`--repair`).
    pub requeued: usize,
}

/// Re-hashes every attachment file of the data directory `data_dir` (the node stopped); with
/// `repair`, removes the bad ones and queues them to be fetched again from peers. Blocking.
pub fn check_blobs(data_dir: &Path, repair: bool) -> Result<BlobCheck, NodeError> {
    let blobs = blob_store_at(data_dir);
    if !blobs.dir().is_dir() {
        return Ok(BlobCheck::default());
    }
    let io = |e: std::io::Error| NodeError::File {
        path: blobs.dir().display().to_string(),
        message: e.to_string(),
    };
    let (checked, bad) = blobs.verify_all().map_err(io)?;
    let mut requeued = 0;
    if repair {
        for h in &bad {
            let meta = blobs.meta(h);
            blobs.remove(h).map_err(io)?;
            let Some(m) = meta else { continue };
            let mut records = m.records.iter().filter_map(|r| r.parse::<ObjectId>().ok());
            if let Some(record) = records.next() {
                let attachment = Attachment {
                    name: m.name.clone(),
                    media_type: m.media_type.clone(),
                    size: m.size,
                    sha256: *h,
                    chunks: None,
                };
                // Every record the sidecar listed waits for the file, not the first alone:
                // retracting that one must not let the file fetched again go while the others
                // live.
                let mut want = Want::new(record, attachment.clone());
                for r in records {
                    want.add_claim(r, &attachment);
                }
                // Named by more than the sidecar listed: kept for good once fetched again.
                want.more |= m.more;
                let b = serde_json::to_vec(&want).map_err(|e| io(std::io::Error::other(e)))?;
                blobs.write_sidecar(h, ".want", &b).map_err(io)?;
                requeued += 1;
            }
        }
    }
    Ok(BlobCheck {
        checked,
        bad,
        requeued,
    })
}

/// At start (blocking): the settled mark saved in `data_dir`, the records stored after it with
/// the files they name, and whether they could be read — their files may never have been referenced or queued (the node
/// stopped between a group commit and that step). Without the file (a store an older release
/// ran, a restore) nothing is settled again, and the mark starts at the store's sequence.
pub(crate) fn unsettled(store: &accord_store::Store, data_dir: &Path) -> (u64, Vec<Named>, bool) {
    let mark = match std::fs::read_to_string(data_dir.join(SETTLED_FILE)) {
        Err(_) => return (store.seq(), Vec::new(), true),
        Ok(t) => t.trim().parse::<u64>().unwrap_or_else(|_| {
            warn!(
                file = SETTLED_FILE,
                "the settled mark of attachments cannot be read: every record's files are settled again"
            );
            0
        }),
    };
    if mark >= store.seq() {
        return (store.seq(), Vec::new(), true);
    }
    let ids = match store.ids_since(mark) {
        Ok(ids) => ids,
        Err(e) => {
            // The mark stays where it is (the caller's settle is kept for this run).
            warn!(error = %e, "records after the settled mark of attachments not read");
            return (mark, Vec::new(), false);
        }
    };
    let limits = store.trust().limits().for_stored();
    let mut out = Vec::new();
    for id in ids {
        let Ok(Some(bytes)) = store.get_bytes(&id) else {
            continue;
        };
        let Some(body) = accord_core::envelope::body_of(&bytes) else {
            continue;
        };
        if let Ok(Object::Record(r)) = Object::decode_body(body, &limits)
            && !r.attachments.is_empty()
        {
            out.push((id, r.member, r.attachments));
        }
    }
    if !out.is_empty() {
        info!(
            records = out.len(),
            "settling again the files of records stored after the last saved mark"
        );
    }
    (mark, out, true)
}

/// A backup's copy of a file of `size` bytes, if it is a regular file of exactly that size:
/// a symbolic link (to `/dev/zero`, say), a pipe, a device or a file of another size in the
/// backup's directory is left alone (the file is then fetched from peers), never read whole.
fn read_backup_file(path: &Path, size: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Not through a link; a pipe opens without waiting for a writer.
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() != size {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).ok()?);
    file.take(size.saturating_add(1))
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 == size).then_some(bytes)
}

/// After a restore into `data_dir`: the files of `records` are copied from `from` (a
/// directory of files named by their SHA-256, as `accord backup --blobs` writes) when there
/// and intact, and queued to be fetched from peers otherwise. Returns (copied, queued).
/// Blocking.
pub fn restore_blobs(
    data_dir: &Path,
    records: &[(ObjectId, Vec<Attachment>)],
    from: Option<&Path>,
) -> Result<(usize, usize), NodeError> {
    let dir = data_dir.join("blobs");
    let io = |e: std::io::Error| NodeError::File {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    let blobs = BlobStore::open(&dir).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let (mut copied, mut queued) = (0, 0);
    for (record, list) in records {
        for a in list {
            let from_backup = from
                .and_then(|d| read_backup_file(&d.join(a.sha256.to_string()), a.size))
                .filter(|b| blobs.put(&a.sha256, b).is_ok());
            if from_backup.is_some() || blobs.has(&a.sha256) {
                let mut meta = blobs.meta(&a.sha256).unwrap_or_else(|| BlobMeta {
                    name: a.name.clone(),
                    media_type: a.media_type.clone(),
                    size: a.size,
                    ..BlobMeta::default()
                });
                if meta.refer(record) {
                    blobs.write_meta(&a.sha256, &meta).map_err(io)?;
                }
                if from_backup.is_some() {
                    copied += 1;
                }
            } else {
                // A file several restored records name waits for all of them (the `.want` an
                // earlier record of this restore wrote is added to, not replaced).
                let earlier = std::fs::read(dir.join(format!("{}.want", a.sha256)))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Want>(&b).ok());
                let want = match earlier {
                    Some(mut w) => {
                        if !w.add_claim(*record, a) {
                            continue; // nothing to write again
                        }
                        w
                    }
                    None => {
                        queued += 1;
                        Want::new(*record, a.clone())
                    }
                };
                let b = serde_json::to_vec(&want).map_err(|e| io(std::io::Error::other(e)))?;
                blobs.write_sidecar(&a.sha256, ".want", &b).map_err(io)?;
            }
        }
    }
    Ok((copied, queued))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> Want {
        Want::new(
            ObjectId([0; 32]),
            accord_core::attachment::describe("x.txt", b"x"),
        )
    }

    /// Files count against the queue of their first record's member while they wait, and a
    /// member whose files were put off is due to have them queued once its queue drains to
    /// half its bound, one pass at a time.
    #[test]
    fn a_members_waiting_files_are_counted_until_taken() {
        let mut q = Queue::default();
        let t = Instant::now();
        let kz: MemberCode = "KZ".parse().unwrap();
        let am: MemberCode = "AM".parse().unwrap();
        let file = |i: u8, m: &MemberCode| {
            let mut w = want().of(m.clone());
            w.attachment.sha256 = ObjectId([i; 32]);
            w
        };
        for i in 0..4 {
            q.add(file(i, &kz));
        }
        // The same file queued again (a restart's pass) is not counted twice.
        q.add(file(0, &kz));
        q.add(file(9, &am));
        q.add(want());
        assert_eq!((q.waiting_of(&kz), q.waiting_of(&am)), (4, 1));
        q.put_off.insert(kz.clone(), 17);
        assert_eq!(q.requeue_due(4, t), None, "four of four wait");
        assert!(q.take(&ObjectId([0; 32])).is_some());
        assert!(q.take(&ObjectId([0; 32])).is_none());
        assert_eq!(q.requeue_due(4, t), None, "three of four wait");
        q.take(&ObjectId([1; 32]));
        assert_eq!(q.requeue_due(4, t), Some((kz.clone(), 17)));
        q.requeueing = true;
        assert_eq!(q.requeue_due(4, t), None, "one pass at a time");
        q.requeueing = false;
        // A pass that failed is tried again after a while, not at once.
        q.requeue_after = Some(t + RETRY_AFTER);
        assert_eq!(q.requeue_due(4, t), None);
        assert!(q.requeue_due(4, t + RETRY_AFTER).is_some());
        q.take(&ObjectId([2; 32]));
        q.take(&ObjectId([3; 32]));
        assert!(!q.per_member.contains_key(&kz));
        assert_eq!(q.waiting.len(), 2);
    }

    /// Every record that names a file waits for it after a restore or a repair, not the first
    /// or the last alone: retracting that one must not let the file go while others live.
    #[test]
    fn a_restore_and_a_repair_keep_every_record_that_names_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = accord_core::attachment::describe("shared.txt", b"shared text");
        let (r1, r2) = (ObjectId([1; 32]), ObjectId([2; 32]));
        let (copied, queued) = restore_blobs(
            dir.path(),
            &[(r1, vec![a.clone()]), (r2, vec![a.clone()])],
            None,
        )
        .unwrap();
        assert_eq!((copied, queued), (0, 1), "one file to fetch");
        let blobs = blob_store_at(dir.path());
        let want: Want = serde_json::from_slice(
            &std::fs::read(blobs.dir().join(format!("{}.want", a.sha256))).unwrap(),
        )
        .unwrap();
        let named: Vec<ObjectId> = want.records().map(|(r, _)| r).collect();
        assert!(named.contains(&r1) && named.contains(&r2), "{named:?}");

        // Held, named by both, then damaged on disk: the repair queues it for both.
        std::fs::remove_file(blobs.dir().join(format!("{}.want", a.sha256))).unwrap();
        blobs.put(&a.sha256, b"shared text").unwrap();
        let mut meta = BlobMeta::default();
        meta.refer(&r1);
        meta.refer(&r2);
        // Named by more records than the sidecar lists, too.
        meta.more = true;
        blobs.write_meta(&a.sha256, &meta).unwrap();
        std::fs::write(blobs.path(&a.sha256), b"rotted text").unwrap();
        let report = check_blobs(dir.path(), true).unwrap();
        assert_eq!(report.requeued, 1, "{report:?}");
        let want: Want = serde_json::from_slice(
            &std::fs::read(blobs.dir().join(format!("{}.want", a.sha256))).unwrap(),
        )
        .unwrap();
        let named: Vec<ObjectId> = want.records().map(|(r, _)| r).collect();
        assert!(named.contains(&r1) && named.contains(&r2), "{named:?}");
        assert!(want.more);
        // Fetched again: its sidecar lists both and says it is named by more (kept for good).
        let att = Attachments::open(dir.path(), AttachmentsConfig::default(), 1 << 20).unwrap();
        att.blobs.put(&a.sha256, b"shared text").unwrap();
        assert!(att.settle_held(&want));
        let meta = att.blobs.meta(&a.sha256).unwrap();
        assert!(meta.more && meta.records.len() == 2, "{meta:?}");
        assert!(!att.want_path(&a.sha256).exists());
    }

    /// A peer that disconnects while files are fetched from it leaves no slot and no rate
    /// bucket behind once the transfers end (peer ids are as many as a member mints
    /// certificates); one that came back keeps them.
    #[tokio::test]
    async fn a_peer_gone_mid_transfer_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let att = Attachments::open(dir.path(), AttachmentsConfig::default(), 1 << 20).unwrap();
        let held = |att: &Attachments, p: &Peer| {
            (
                att.peer_slots.lock().unwrap().contains_key(p),
                att.rate.lock().unwrap().peers.contains_key(p),
            )
        };
        let peer = Peer::random();
        att.peer_arrived(&peer);
        // Two transfers from it; it leaves; they go on reading chunks.
        let (slot1, slot2) = (att.peer_slot(peer), att.peer_slot(peer));
        let (a, b) = (
            slot1.clone().try_acquire_owned().unwrap(),
            slot2.clone().try_acquire_owned().unwrap(),
        );
        att.throttle(peer, 1).await;
        att.peer_left(&peer);
        att.throttle(peer, 1).await;
        assert_eq!(held(&att, &peer), (true, true));
        // The first ends: the second still holds the slot.
        drop((a, slot1));
        att.transfer_ended(&peer);
        assert_eq!(held(&att, &peer), (true, true));
        drop((b, slot2));
        att.transfer_ended(&peer);
        assert_eq!(held(&att, &peer), (false, false));
        assert!(att.connected.lock().unwrap().is_empty());

        // A transfer begun from a list of peers taken before the peer left (or whose wait for
        // the slot timed out) leaves nothing either.
        let late = Peer::random();
        let slot = att.peer_slot(late);
        drop(slot);
        att.transfer_ended(&late);
        assert_eq!(held(&att, &late), (false, false));
        // A connected peer's idle slot stays for its next transfer.
        let here = Peer::random();
        att.peer_arrived(&here);
        drop(att.peer_slot(here));
        att.transfer_ended(&here);
        assert!(held(&att, &here).0);

        // Gone and back before its transfer ends: it keeps them.
        let back = Peer::random();
        att.peer_arrived(&back);
        let slot = att.peer_slot(back);
        let permit = slot.clone().try_acquire_owned().unwrap();
        att.peer_left(&back);
        att.peer_arrived(&back);
        att.throttle(back, 1).await;
        drop((permit, slot));
        att.transfer_ended(&back);
        assert_eq!(held(&att, &back), (true, true));
        // An idle slot goes at once.
        att.peer_left(&back);
        assert_eq!(held(&att, &back), (false, false));
    }

    /// A file fetched just before the process stopped, before the records naming it were
    /// written beside it: its `.want` is still there, and the next start writes them, so that
    /// the collector does not take the file for an orphan.
    #[test]
    fn a_file_held_with_its_want_still_there_is_referred_to_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let w = want();
        let hash = w.attachment.sha256;
        {
            let att = Attachments::open(dir.path(), AttachmentsConfig::default(), 1 << 20).unwrap();
            att.blobs.put(&hash, b"x").unwrap();
            std::fs::write(att.want_path(&hash), serde_json::to_vec(&w).unwrap()).unwrap();
            assert!(att.blobs.meta(&hash).is_none());
        }
        let att = Attachments::open(dir.path(), AttachmentsConfig::default(), 1 << 20).unwrap();
        let meta = att
            .blobs
            .meta(&hash)
            .expect("the sidecar written at the start");
        assert!(meta.records.contains(&w.record.to_string()), "{meta:?}");
        assert!(!att.want_path(&hash).exists());
        assert!(
            att.queue().waiting.is_empty(),
            "a file held is not fetched again"
        );
    }

    /// The settled mark stays before every ingest in flight, moves on as they end, and is
    /// saved as a number in the data directory.
    #[test]
    fn the_settled_mark_stays_before_ingests_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let att =
            Arc::new(Attachments::open(dir.path(), AttachmentsConfig::default(), 1 << 20).unwrap());
        assert_eq!(att.settled_mark(7), 7);
        let first = att.settle_begin(10);
        let second = att.settle_begin(12);
        assert_eq!(att.settled_mark(15), 10);
        drop(first);
        assert_eq!(att.settled_mark(15), 12);
        att.save_settled(dir.path(), 15).unwrap();
        let saved = || std::fs::read_to_string(dir.path().join(SETTLED_FILE)).unwrap();
        assert_eq!(saved(), "12");
        drop(second);
        att.save_settled(dir.path(), 15).unwrap();
        assert_eq!(saved(), "15");
        // An ingest whose files could not be written keeps the mark before it for this run.
        let third = att.settle_begin(20);
        third.failed();
        drop(third);
        assert_eq!(att.settled_mark(30), 20);
    }

    /// Files no peer holds (a hostile record naming many, all of low hashes) do not keep the
    /// real ones waiting: a file that failed less goes first whatever its hash, and a file that
    /// keeps failing waits twice as long each time, up to about an hour.
    #[test]
    fn files_that_keep_failing_go_last_and_wait_longer() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        let fake = |i: u8| {
            let mut h = [0u8; 32];
            h[31] = i;
            ObjectId(h)
        };
        for i in 0..16 {
            q.waiting.insert(fake(i), want());
        }
        // Each fake fails once: each waits 30 s, and none is asked before then.
        for _ in 0..16 {
            let h = q.next(t0).unwrap();
            q.failed(h, t0);
        }
        assert_eq!(q.next(t0), None);
        let real = ObjectId([0xff; 32]);
        q.waiting.insert(real, want());
        assert_eq!(q.next(t0), Some(real));
        // A peer arrives: every timer is cleared, the real file still goes first.
        q.retry_at.clear();
        assert_eq!(q.next(t0), Some(real));
        q.running.insert(real);
        assert_eq!(q.next(t0), Some(fake(0)));
        // Backoff: 30 s, 60 s, 120 s … at most 64 min.
        let h = fake(3);
        let mut waits = Vec::new();
        for _ in 0..10 {
            q.failed(h, t0);
            waits.push(q.retry_at[&h] - t0);
        }
        assert_eq!(waits[0], RETRY_AFTER * 2); // its second failure
        assert_eq!(waits[1], RETRY_AFTER * 4);
        assert_eq!(*waits.last().unwrap(), RETRY_AFTER * 128);
        // Soon after a peer arrived, a failure may be its admission still under way: the base
        // wait, not a doubled one.
        q.peer_arrived = Some(t0);
        q.failed(h, t0 + Duration::from_secs(5));
        assert_eq!(q.retry_at[&h] - t0, Duration::from_secs(5) + RETRY_AFTER);
        q.failed(h, t0 + RETRY_AFTER);
        assert_eq!(q.retry_at[&h] - t0, RETRY_AFTER + RETRY_AFTER * 128);
        q.forget(&h);
        assert!(!q.failures.contains_key(&h) && !q.retry_at.contains_key(&h));
    }
}
