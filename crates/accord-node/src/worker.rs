//! The write path behind the node's handle, in three stages on their own threads:
//!
//! 1. **Precheck** ([`prepare`]), on a pool as wide as the machine: envelope decode, duplicate
//!    check by id against the store (sled reads are safe from any thread), body decode and the
//!    signatures, which need no state. Each signature is checked here once.
//! 2. **The store thread** ([`run`]) owns the [`Store`]: async code never calls sled; it sends
//!    jobs over a bounded channel and awaits a oneshot reply. Ingest jobs queued together are
//!    judged against the trust view and written as one group commit (one transaction, one
//!    flush): that flush is the acknowledgement.
//! 3. **The indexer thread** ([`index_loop`]) owns the search index: the store thread hands it
//!    the documents each commit changed; it commits them at most every
//!    [`INDEX_COMMIT_INTERVAL`], so a record is searchable within that bound (plus the commit)
//!    of being stored, and a burst of commits costs one index commit.
//!
//! The store thread also publishes what status, health and metrics need ([`Shared`]), so
//! that reading them costs no store round trip.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use accord_core::{
    Limits, Object, ObjectId, ObjectType, Rejection, SignedObject, TrustView, Verified,
};
use accord_search::{Presence, RecordDoc, SearchIndex};
use accord_store::{Incoming, IngestOutcome, ObjectReader, Store};
use accord_sync::{Snapshot, SyncIndex};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::metrics::Metrics;
use crate::{NodeError, Source, now};

/// Capacity of the job queue into the store thread.
pub const STORE_QUEUE_CAPACITY: usize = 1024;
/// Most objects in one group commit.
pub const MAX_GROUP_OBJECTS: usize = 512;
/// Most documents queued for the indexer thread and not yet taken by it; the store thread waits
/// before queueing a group commit's documents that would pass it (unless nothing is queued).
/// Two full group commits: the index is never more than about that behind the store, so a
/// record is searchable within [`INDEX_COMMIT_INTERVAL`] plus the indexing of what was queued
/// before it. (With 64 group commits of up to 512, a store faster than the indexer queued
/// ~30,000 documents in a bulk ingest and "accepted → searchable" grew to 4 s:
/// docs/BENCHMARKS.md, "The object log".)
pub const INDEX_QUEUE_DOCS: usize = 2 * MAX_GROUP_OBJECTS;
/// Capacity of the queue of index updates (one per group commit that stored anything). Bounded
/// by documents above, not by updates: at light load every group commit holds a record or two,
/// and while the indexer commits (tens of milliseconds) a queue of two updates filled and made
/// the store thread — and so every POST's acknowledgement — wait for the index commit.
pub const INDEX_QUEUE_CAPACITY: usize = 1024;
/// The indexer commits at most this often, and at once when it was idle longer: a record is
/// searchable at most this long (plus one index commit) after it is stored, under any load.
/// An index commit costs the same whatever it holds — it ends a segment per indexing thread
/// (a dozen files, a term table, later a merge) and reopens the searcher — and at 200 ms that
/// cost was a third of the machine's work with five nodes at 50 records/s each, 6–11 % at 250
/// (docs/BENCHMARKS.md, "Index commits under load"). 500 ms is the bound the ingest issue asks
/// for.
pub const INDEX_COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// Documents the indexer gathers before handing them to the index writer between commits. A
/// batch goes to one indexing thread whole, and every thread that took a batch ends a segment at
/// the next commit, whose cost is mostly fixed (a term table, a term dictionary, a dozen files,
/// later a merge). So a commit's documents go to as few threads as keeps them busy: one batch
/// when the node takes fewer than ~2,000 records a second (a gossip receiver of a busy
/// federation), batches from [`INDEX_BATCH_MIN_DOCS`] as they come when it takes more (bulk
/// ingest, catch-up; see `hand_over_now`). With batches of 256 at every rate, five nodes
/// receiving 20,000 records by gossip spent 17 % more CPU, each commit's few hundred documents
/// making two small segments (docs/BENCHMARKS.md, "One segment per commit, smaller merge
/// levels").
const INDEX_BATCH_DOCS: usize = 1024;
/// The smallest batch handed over before a commit, when documents come fast enough that the
/// commit will hold [`INDEX_BATCH_DOCS`] or more (see `hand_over_now`): at bulk rates the writer
/// gets work as it comes (with 1,024 at every rate, bulk ingest of 100,000 was ~7 % slower).
const INDEX_BATCH_MIN_DOCS: usize = 256;
/// How often the store thread refreshes the store's size on disk for status and metrics.
const DISK_SIZE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the store thread logs a summary of what it ingested (when it ingested anything).
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);
/// Objects per precheck task: batches are split so that every core verifies.
const PRECHECK_CHUNK: usize = 64;

/// The result of ingesting a list of objects.
#[derive(Debug, Clone)]
pub struct IngestResult {
    /// One outcome per submitted object, in order.
    pub outcomes: Vec<IngestOutcome>,
    /// Quarantined objects accepted because a prerequisite arrived in this commit.
    pub released: Vec<Arc<Verified<Object>>>,
    /// The store's sequence number after the commit that judged these objects (see
    /// [`crate::NodeHandle::wait_searchable`]).
    pub seq: u64,
}

/// What the store thread publishes for readers that must not queue behind ingest.
#[derive(Debug)]
pub(crate) struct Shared {
    trust: RwLock<Arc<TrustView>>,
    counts: Mutex<BTreeMap<ObjectType, u64>>,
    pending: AtomicU64,
    seq: AtomicU64,
    store_bytes: AtomicU64,
    /// The store sequence number whose records are all searchable.
    searchable: watch::Sender<u64>,
    /// The failures that leave the node unable to go on until a restart, as operators read
    /// them: the first of the store's (a write refused), and the first of search's (the
    /// indexer gone, the index not written).
    fault: Mutex<Faults>,
}

/// See [`Shared::fault`].
#[derive(Debug, Default)]
struct Faults {
    store: Option<String>,
    search: Option<String>,
}

impl Shared {
    pub(crate) fn new(store: &Store) -> Shared {
        Shared {
            trust: RwLock::new(store.trust_shared()),
            counts: Mutex::new(store.counts_by_type().unwrap_or_default()),
            pending: AtomicU64::new(store.pending_len() as u64),
            seq: AtomicU64::new(store.seq()),
            store_bytes: AtomicU64::new(store.size_on_disk().unwrap_or(0)),
            searchable: watch::Sender::new(store.seq()),
            fault: Mutex::new(Faults::default()),
        }
    }

    /// Why the node cannot go on until it restarts, if something made it so: a store write
    /// refused before anything of search (the disk that failed the one often fails the other
    /// too, and a refused write is the graver: nothing more is stored).
    pub(crate) fn fault(&self) -> Option<String> {
        let f = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        f.store.clone().or_else(|| f.search.clone())
    }

    /// Whether the store, and whether the search index, failed a write (the node must restart).
    pub(crate) fn faulted(&self) -> (bool, bool) {
        let f = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        (f.store.is_some(), f.search.is_some())
    }

    /// Notes `why` as the store's fault unless an earlier one is noted (the first cause is the
    /// one to read).
    fn set_fault(&self, why: String) {
        let mut f = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        f.store.get_or_insert(why);
    }

    /// Notes `why` as search's fault unless an earlier one is noted.
    fn set_search_fault(&self, why: String) {
        let mut f = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        f.search.get_or_insert(why);
    }

    /// The trust view as of the last group commit.
    pub(crate) fn trust(&self) -> Arc<TrustView> {
        self.trust
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub(crate) fn counts(&self) -> BTreeMap<ObjectType, u64> {
        self.counts
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed) as usize
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    pub(crate) fn store_bytes(&self) -> u64 {
        self.store_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn searchable(&self) -> watch::Receiver<u64> {
        self.searchable.subscribe()
    }

    fn publish(&self, store: &Store, trust_changed: bool) {
        if trust_changed && let Ok(mut t) = self.trust.write() {
            *t = store.trust_shared();
        }
        if let Ok(mut c) = self.counts.lock() {
            *c = store.counts_by_type().unwrap_or_default();
        }
        self.pending
            .store(store.pending_len() as u64, Ordering::Relaxed);
        self.seq.store(store.seq(), Ordering::Relaxed);
    }
}

/// One object after the precheck stage.
// `Ready` is the common case, and boxing it would add an allocation per object; `Done` is the
// small one (a verified object inside it is shared, a pointer).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Prepared {
    /// Signatures checked; the store thread judges it against the trust view.
    Ready(accord_core::Prechecked),
    /// Decided without the store thread (a duplicate, or refused on its own).
    Done(IngestOutcome),
}

/// Precheck of one object: decode, duplicate check by id, body and signatures.
fn prepare_one(bytes: &[u8], limits: &Limits, objects: &ObjectReader) -> Prepared {
    precheck_unless(bytes, limits, |id| objects.contains(id).unwrap_or(false))
}

/// Precheck of one object without the duplicate check (the store thread makes it).
fn precheck_one(bytes: &[u8], limits: &Limits) -> Prepared {
    precheck_unless(bytes, limits, |_| false)
}

/// Decodes `bytes`; unless `held` says the store has the object, checks its body and
/// signatures.
fn precheck_unless(bytes: &[u8], limits: &Limits, held: impl Fn(&ObjectId) -> bool) -> Prepared {
    let signed = match SignedObject::decode(bytes, limits.max_bytes(), limits.scan()) {
        Ok(s) => s,
        Err(e) => return Prepared::Done(IngestOutcome::Rejected(None, Rejection::Decode(e))),
    };
    let id = signed.id();
    if held(&id) {
        return Prepared::Done(IngestOutcome::Duplicate(id));
    }
    match accord_core::precheck(signed, limits) {
        Ok(p) => Prepared::Ready(p),
        Err(r) => Prepared::Done(IngestOutcome::Rejected(Some(id), r)),
    }
}

/// The most objects, and bytes, of a submission checked on the task that received it (see
/// [`prepare`]): at most two signature checks (~50 µs each) and the decoding of 64 KiB.
pub(crate) const INLINE_PRECHECK_OBJECTS: usize = 2;
pub(crate) const INLINE_PRECHECK_BYTES: usize = 64 * 1024;

/// Whether a submission is small enough to be checked where it was received.
fn checked_inline(items: &[Vec<u8>]) -> bool {
    items.len() <= INLINE_PRECHECK_OBJECTS
        && items.iter().map(Vec::len).sum::<usize>() <= INLINE_PRECHECK_BYTES
}

/// The precheck stage: runs [`prepare_one`] over `items` on the blocking pool, in chunks of
/// [`PRECHECK_CHUNK`], at most `slots` chunks at once (one per core). Order is kept.
///
/// With `inline`, a submission of at most [`INLINE_PRECHECK_OBJECTS`] objects and
/// [`INLINE_PRECHECK_BYTES`] is decoded and its signatures checked on the calling task instead:
/// handing one record to the blocking pool and back cost more than checking it, and under load
/// the hand-over waited milliseconds for a thread (a single-record POST's acknowledgement).
/// Its duplicate check is left to the store thread, which makes it in any case: no storage is
/// read on an async worker. The node asks for this for its own submissions only, where a
/// duplicate is rare; what peers send keeps the check that spares a duplicate its signature
/// work.
pub(crate) async fn prepare(
    items: Vec<Vec<u8>>,
    limits: Limits,
    objects: &ObjectReader,
    slots: &Arc<tokio::sync::Semaphore>,
    inline: bool,
) -> Result<Vec<Prepared>, NodeError> {
    if inline && checked_inline(&items) {
        return Ok(items.iter().map(|b| precheck_one(b, &limits)).collect());
    }
    let mut tasks = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<Vec<u8>> = items.by_ref().take(PRECHECK_CHUNK).collect();
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| NodeError::Stopped)?;
        let objects = objects.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let out: Vec<Prepared> = chunk
                .iter()
                .map(|b| prepare_one(b, &limits, &objects))
                .collect();
            drop(permit);
            out
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.map_err(|e| NodeError::Store(e.to_string()))?);
    }
    Ok(out)
}

type ReadFn = Box<dyn FnOnce(&Store) + Send>;

pub(crate) enum Job {
    Ingest {
        items: Vec<Prepared>,
        source: Source,
        reply: oneshot::Sender<Result<IngestResult, NodeError>>,
    },
    Read(ReadFn),
    /// The current reconciliation snapshot.
    Snapshot(oneshot::Sender<Arc<Snapshot>>),
    /// Rebuilds the search documents of these records (an attachment's text arrived); the
    /// reply is the sequence number to wait for with `wait_searchable`.
    /// Records to index again; the sender is answered once an index commit holds them (and
    /// dropped unanswered if none can: the index failed or stopped).
    Reindex(Vec<accord_core::ObjectId>, oneshot::Sender<()>),
    Shutdown,
}

/// The store thread's end of the index queue: updates bounded in number by the channel and in
/// documents by [`INDEX_QUEUE_DOCS`].
struct IndexQueue {
    tx: std::sync::mpsc::SyncSender<IndexUpdate>,
    backlog: Arc<Backlog>,
}

impl IndexQueue {
    /// Queues an update, first waiting while its documents would pass [`INDEX_QUEUE_DOCS`].
    /// False when the indexer has stopped.
    fn send(&self, update: IndexUpdate) -> bool {
        self.backlog.reserve(update.docs.len());
        self.tx.send(update).is_ok()
    }
}

/// Documents queued for the indexer and not yet taken.
#[derive(Default)]
struct Backlog {
    /// Queued documents, and whether the indexer has stopped (then nobody waits).
    state: Mutex<(usize, bool)>,
    taken: std::sync::Condvar,
}

impl Backlog {
    fn reserve(&self, docs: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.0 > 0 && state.0 + docs > INDEX_QUEUE_DOCS && !state.1 {
            state = self.taken.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.0 += docs;
    }

    fn release(&self, docs: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(docs);
        self.taken.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.taken.notify_all();
    }
}

/// Closes the backlog when the indexer thread ends, however it ends, so that the store thread
/// never waits for an indexer that is gone.
struct CloseOnDrop(Arc<Backlog>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Documents a group commit changed, for the indexer.
struct IndexUpdate {
    docs: Vec<(RecordDoc, Presence)>,
    /// The store's sequence number after the commit.
    seq: u64,
    stored_at: Instant,
    /// Answered once an index commit holds `docs` (a reindex waits for it).
    done: Option<oneshot::Sender<()>>,
}

/// Counts for the periodic summary line.
#[derive(Default)]
struct Summary {
    by_source: BTreeMap<&'static str, [u64; 5]>,
    since: Option<Instant>,
}

impl Summary {
    fn add(&mut self, source: Source, o: &IngestOutcome) {
        let i = match o {
            IngestOutcome::Accepted(_) => 0,
            IngestOutcome::Duplicate(_) => 1,
            IngestOutcome::Pending(..) => 2,
            IngestOutcome::QuarantineFull(..) => 3,
            IngestOutcome::Rejected(..) => 4,
        };
        self.by_source.entry(source.as_str()).or_default()[i] += 1;
        self.since.get_or_insert_with(Instant::now);
    }

    fn flush_if_due(&mut self, force: bool) {
        let Some(since) = self.since else {
            return;
        };
        if !force && since.elapsed() < SUMMARY_INTERVAL {
            return;
        }
        let parts: Vec<String> = self
            .by_source
            .iter()
            .map(|(s, [a, d, p, q, r])| {
                format!("{s}: {a} accepted, {d} duplicate, {p} pending, {q} no room, {r} rejected")
            })
            .collect();
        info!(
            seconds = since.elapsed().as_secs(),
            "ingested {}",
            parts.join("; ")
        );
        *self = Summary::default();
    }
}

/// Runs the store thread until a `Shutdown` job (or every sender is gone). Every job queued
/// before the shutdown is finished first; the indexer then commits what it holds and stops.
pub(crate) fn run(
    mut store: Store,
    search: SearchIndex,
    warm: accord_search::Searcher,
    index_nice: u8,
    mut rx: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
) {
    let mut index = match store.time_ids() {
        Ok(items) => SyncIndex::new(items),
        Err(e) => {
            error!(error = %e, "cannot read the store's time index: reconciliation starts empty");
            SyncIndex::default()
        }
    };
    let (tx, index_rx) = std::sync::mpsc::sync_channel(INDEX_QUEUE_CAPACITY);
    let backlog = Arc::new(Backlog::default());
    let index_tx = IndexQueue {
        tx,
        backlog: backlog.clone(),
    };
    let indexer = {
        let shared = shared.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("accord-index".into())
            .spawn(move || {
                // Its commits start tantivy's indexing threads, which inherit this priority.
                crate::priority::lower_this_thread_or_warn(index_nice, "index");
                index_loop(search, warm, index_rx, backlog, shared, metrics)
            })
    };
    let indexer = match indexer {
        Ok(t) => Some(t),
        Err(e) => {
            error!(error = %e, "cannot start the indexer thread: search is not updated");
            None
        }
    };
    let mut summary = Summary::default();
    let mut disk_checked = Instant::now();
    let mut carry: Option<Job> = None;
    loop {
        let job = match carry.take() {
            Some(j) => j,
            None => match rx.blocking_recv() {
                Some(j) => j,
                None => break,
            },
        };
        match job {
            Job::Shutdown => break,
            // A read cannot change the store, so one that panics (its caller then sees the
            // node as stopped for that request) leaves the thread going on with the rest.
            Job::Read(f) => {
                let read = std::panic::AssertUnwindSafe(|| f(&store));
                if std::panic::catch_unwind(read).is_err() {
                    error!("a read of the store panicked; the store thread goes on");
                }
            }
            Job::Snapshot(reply) => {
                let _ = reply.send(index.snapshot());
            }
            Job::Reindex(ids, reply) => {
                let docs: Vec<(RecordDoc, Presence)> = ids
                    .iter()
                    .filter_map(|id| crate::index::record_doc(&store, id))
                    .map(|d| (d, Presence::Maybe))
                    .collect();
                // Marked with the current sequence number: the indexer commits it like any
                // update, and a waiter on that number sees the new text.
                let seq = store.seq();
                let update = IndexUpdate {
                    docs,
                    seq,
                    stored_at: Instant::now(),
                    done: Some(reply),
                };
                if !index_tx.send(update) {
                    indexer_gone(&shared);
                }
            }
            Job::Ingest {
                items,
                source,
                reply,
            } => {
                let mut group = vec![(items, source, reply)];
                let mut count = group[0].0.len();
                // Group commit: take the ingest jobs already waiting.
                while count < MAX_GROUP_OBJECTS {
                    match rx.try_recv() {
                        Ok(Job::Ingest {
                            items,
                            source,
                            reply,
                        }) => {
                            count += items.len();
                            group.push((items, source, reply));
                        }
                        Ok(other) => {
                            carry = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let ctx = GroupContext {
                    shared: &shared,
                    metrics: &metrics,
                    index_tx: &index_tx,
                    summary: &mut summary,
                };
                ingest_group(&mut store, &mut index, ctx, group);
                if disk_checked.elapsed() >= DISK_SIZE_INTERVAL {
                    disk_checked = Instant::now();
                    shared
                        .store_bytes
                        .store(store.size_on_disk().unwrap_or(0), Ordering::Relaxed);
                }
                summary.flush_if_due(false);
            }
        }
    }
    summary.flush_if_due(true);
    drop(index_tx);
    if let Some(t) = indexer {
        let _ = t.join();
    }
    // Remaining jobs after a shutdown request are answered as stopped by dropping them.
    info!("store worker stopped");
}

type Group = Vec<(
    Vec<Prepared>,
    Source,
    oneshot::Sender<Result<IngestResult, NodeError>>,
)>;

struct GroupContext<'a> {
    shared: &'a Shared,
    metrics: &'a Metrics,
    index_tx: &'a IndexQueue,
    summary: &'a mut Summary,
}

/// Seconds since the epoch of the last warning about objects of a newer release (one a
/// minute at most).
static NEWER_TYPE_WARNED: AtomicU64 = AtomicU64::new(0);

/// An object of a type this release does not know, its signature valid (the precheck's
/// [`Rejection::NewerType`]), from `source`: remembered as refused ([`Store::note_refused`]);
/// when its signer has standing, the operator is told, at most once a minute, that a newer
/// release is in use in the federation.
fn newer_type(store: &mut Store, id: accord_core::ObjectId, r: &Rejection, source: &str) {
    if let Rejection::NewerType {
        object_type,
        signer,
        ..
    } = r
        && store.note_refused(id, r, source, now())
    {
        let minute = now().0 / 60_000;
        if NEWER_TYPE_WARNED.swap(minute, Ordering::Relaxed) != minute {
            warn!(object = %id, %object_type, %signer, "an object of a type this release does not know, signed by a key of the federation: a newer release of accord is in use; upgrade this node to hold such objects (until then they are refused without blaming the peers that send them)");
        }
    }
}

fn ingest_group(store: &mut Store, index: &mut SyncIndex, ctx: GroupContext<'_>, group: Group) {
    let sources: Vec<String> = group
        .iter()
        .map(|(_, source, _)| source.quarantine_source())
        .collect();
    // Objects decided in the precheck stay in their jobs; the rest go to the store.
    let mut ready: Vec<(Incoming<'_>, &str)> = Vec::new();
    let mut group: Vec<(Vec<Option<IngestOutcome>>, Source, _)> = group
        .into_iter()
        .zip(&sources)
        .map(|((items, source, reply), qs)| {
            let slots = items
                .into_iter()
                .map(|p| match p {
                    Prepared::Ready(p) => {
                        ready.push((Incoming::Prechecked(p), qs.as_str()));
                        None
                    }
                    Prepared::Done(IngestOutcome::Rejected(
                        Some(id),
                        r @ Rejection::NewerType { .. },
                    )) => {
                        newer_type(store, id, &r, qs);
                        Some(IngestOutcome::Rejected(Some(id), r))
                    }
                    Prepared::Done(o) => Some(o),
                })
                .collect();
            (slots, source, reply)
        })
        .collect();
    let started = Instant::now();
    let seq_before = store.seq();
    // After a failed write the store is not written again until the node restarts: a write
    // that failed half-way (the log synced, sled's flush refused) can leave entries pointing past
    // the log's committed end, where the next write would put other bytes. Nor is anything
    // answered "duplicate": the object a failed write left in sled's memory reads as held, but
    // may never reach the disk, and a client told "duplicate" would not send it again.
    if ctx.metrics.store_write_errors.get() > 0
        && let Some(fault) = ctx.shared.fault()
    {
        for (_, _, reply) in group {
            let _ = reply.send(Err(NodeError::Store(fault.clone())));
        }
        return;
    }
    // The trust view before this commit (shared, no copy): what the index compares the
    // commit's trust objects with, to re-index only the records they reach.
    let trust_before = store.trust_shared();
    let result = if ready.is_empty() {
        Ok((Vec::new(), Vec::new()))
    } else {
        store.ingest_incoming(ready, now())
    };
    match result {
        Ok((outcomes, released)) => {
            let written = store.seq() != seq_before;
            if written {
                ctx.metrics
                    .commit_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            let mut trust_changed = false;
            for v in crate::index::stored(&outcomes, &released) {
                index.insert(v.object().created(), v.id());
                trust_changed |= v.object().object_type().is_trust();
            }
            ctx.shared.publish(store, trust_changed);
            // What the index needs of this commit, taken before the outcomes go to their
            // callers: the group is acknowledged as soon as it is durable, and its search
            // documents are built and queued after (the queue may make this thread wait for the
            // indexer; an acknowledgement never does).
            let stored = written.then(|| {
                (
                    crate::index::accepted_of(&outcomes, &released),
                    Instant::now(),
                )
            });
            let seq = store.seq();
            let mut outcomes = outcomes.into_iter();
            let mut released = Some(released);
            for (slots, source, reply) in group.drain(..) {
                let mine: Vec<IngestOutcome> = slots
                    .into_iter()
                    .filter_map(|slot| slot.or_else(|| outcomes.next()))
                    .collect();
                for o in &mine {
                    ctx.summary.add(source, o);
                    log_outcome(o, source);
                }
                // Released objects are reported to the first job of the group.
                let rel = released.take().unwrap_or_default();
                for v in &rel {
                    info!(object = %v.id(), "pending object accepted: its prerequisite arrived");
                }
                let _ = reply.send(Ok(IngestResult {
                    outcomes: mine,
                    released: rel,
                    seq,
                }));
            }
            if let Some((stored, stored_at)) = stored {
                let update = IndexUpdate {
                    docs: crate::index::docs_for(store, &trust_before, &stored),
                    seq,
                    stored_at,
                    done: None,
                };
                if !ctx.index_tx.send(update) {
                    indexer_gone(ctx.shared);
                }
            }
        }
        Err(e) => {
            if ctx.metrics.store_write_errors.get() == 0 {
                error!(error = %e, "store write failed; nothing in this group was acknowledged; restart the node");
            } else {
                debug!(error = %e, "store write failed again");
            }
            ctx.metrics.store_write_errors.inc();
            ctx.shared.set_fault(format!(
                "a store write failed ({e}); nothing since was stored: restart the node (after freeing disk space if it is full)"
            ));
            let msg = e.to_string();
            for (_, _, reply) in group {
                let _ = reply.send(Err(NodeError::Store(msg.clone())));
            }
        }
    }
}

/// The indexer thread is gone (it panicked): noted as the node's fault, logged once.
fn indexer_gone(shared: &Shared) {
    if shared.fault().is_none() {
        error!("the search indexer has stopped; search shows nothing new until the node restarts");
    }
    shared.set_search_fault(
        "the search indexer stopped: search shows nothing new until the node restarts".into(),
    );
}

fn log_outcome(o: &IngestOutcome, source: Source) {
    match o {
        // One line per object would be thousands a second at line rate: the periodic summary
        // and the metrics count them.
        IngestOutcome::Accepted(v) => {
            debug!(object = %v.id(), kind = %v.object().object_type(), source = source.as_str(), "accepted")
        }
        // What the operator submitted is worth a line; what peers send is counted, so that a
        // hostile peer cannot fill the log.
        IngestOutcome::Rejected(id, r) if source == Source::Local => warn!(
            object = %id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            source = source.as_str(),
            reason = %r,
            "rejected"
        ),
        IngestOutcome::Rejected(id, r) => debug!(
            object = %id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            source = %source.quarantine_source(),
            reason = %r,
            "rejected"
        ),
        IngestOutcome::Pending(id, m) => {
            debug!(object = %id, source = %source.quarantine_source(), waiting_for = %m, "pending")
        }
        IngestOutcome::QuarantineFull(id, m) => {
            debug!(object = %id, source = %source.quarantine_source(), waiting_for = %m, "no room in the quarantine for this source: not kept")
        }
        IngestOutcome::Duplicate(_) => {}
    }
}

/// The indexer thread: applies the documents of each group commit and commits the index at
/// most every [`INDEX_COMMIT_INTERVAL`] (at once when it was idle longer), marking each
/// commit with the store's sequence number. Stops when the store thread drops its sender,
/// after committing what it holds.
fn index_loop(
    search: SearchIndex,
    warm: accord_search::Searcher,
    rx: std::sync::mpsc::Receiver<IndexUpdate>,
    backlog: Arc<Backlog>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let _close = CloseOnDrop(backlog.clone());
    let committed = search.mark().unwrap_or(0);
    metrics.search_docs.set(search.num_docs() as i64);
    if let Err(e) = warm.warm() {
        debug!(error = %e, "could not count the index's segments ahead");
    }
    let mut ix = Indexer {
        search,
        warm,
        batch: Vec::new(),
        committed,
        target: committed,
        oldest: None,
        last_commit: None,
        window: None,
        failed: None,
        waiting: Vec::new(),
        shared,
        metrics,
    };
    loop {
        // Something to commit: a newer store sequence, or documents applied at the same one
        // (a reindex after an attachment's text arrived).
        let update = if ix.target > ix.committed || ix.oldest.is_some() {
            let due = ix
                .last_commit
                .map_or(Instant::now(), |t| t + INDEX_COMMIT_INTERVAL);
            let wait = due.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                ix.commit();
                continue;
            }
            match rx.recv_timeout(wait) {
                Ok(u) => u,
                Err(RecvTimeoutError::Timeout) => {
                    ix.commit();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    ix.commit();
                    break;
                }
            }
        } else {
            match rx.recv() {
                Ok(u) => u,
                Err(_) => break,
            }
        };
        backlog.release(update.docs.len());
        ix.take(update, Instant::now());
    }
    let waited = Instant::now();
    if let Err(e) = ix.search.close() {
        warn!(error = %e, "search index merges ended with an error");
    }
    info!(
        merges_waited_ms = waited.elapsed().as_millis() as u64,
        "indexer stopped"
    );
}

/// Whether documents gathered between two commits go to the index writer now: a full batch
/// always; [`INDEX_BATCH_MIN_DOCS`] or more when, at the rate they came since the window began
/// (`window_docs` in `elapsed`), the commit will hold a full batch or more — bulk ingest and
/// catch-up keep both indexing threads busy, while a node taking a few hundred records between
/// commits hands them over whole, one segment a commit.
fn hand_over_now(gathered: usize, window_docs: usize, elapsed: Duration) -> bool {
    if gathered >= INDEX_BATCH_DOCS {
        return true;
    }
    if gathered < INDEX_BATCH_MIN_DOCS {
        return false;
    }
    let expected = window_docs as u128 * INDEX_COMMIT_INTERVAL.as_micros();
    expected >= INDEX_BATCH_DOCS as u128 * elapsed.as_micros().max(1)
}

/// The indexer thread's state.
struct Indexer {
    search: SearchIndex,
    /// A clone of the node's searcher, sharing its cache: see [`accord_search::Searcher::warm`].
    warm: accord_search::Searcher,
    /// Documents received and not yet handed to the index writer: handed over as one batch
    /// when a commit is due or earlier as `hand_over_now` says (see `SearchIndex::upsert`).
    batch: Vec<(RecordDoc, Presence)>,
    /// The store sequence number of the last index commit.
    committed: u64,
    /// The store sequence number the documents applied so far reflect.
    target: u64,
    /// The oldest `stored_at` among documents applied but not committed.
    oldest: Option<Instant>,
    last_commit: Option<Instant>,
    /// When the first document since the last commit came, and how many came since.
    window: Option<(Instant, usize)>,
    /// Why the index could not be written, once it could not ([`Indexer::fail`]).
    failed: Option<String>,
    /// Waiters on documents taken and not yet committed: answered by the next commit.
    waiting: Vec<oneshot::Sender<()>>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
}

impl Indexer {
    /// Takes an update the store thread sent, received at `now`.
    fn take(&mut self, update: IndexUpdate, now: Instant) {
        if let Some(done) = update.done {
            if update.docs.is_empty() {
                // Nothing to commit for it.
                let _ = done.send(());
            } else {
                self.waiting.push(done);
            }
        }
        if !update.docs.is_empty() {
            self.metrics
                .search_docs_built
                .inc_by(update.docs.len() as u64);
            let (start, docs) = self.window.get_or_insert((now, 0));
            *docs += update.docs.len();
            let (start, docs) = (*start, *docs);
            self.batch.extend(update.docs);
            if hand_over_now(self.batch.len(), docs, now.saturating_duration_since(start)) {
                self.flush();
            }
            self.oldest.get_or_insert(update.stored_at);
        }
        self.target = update.seq;
        if self.oldest.is_none() && self.failed.is_none() {
            // Nothing searchable changed (no record touched): visible at once; the mark on
            // disk follows with the next commit.
            self.shared.searchable.send_replace(self.target);
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if self.failed.is_none()
            && let Err(e) = self.search.apply(self.batch.iter().map(|(d, p)| (d, *p)))
        {
            self.fail("update", &e);
        }
        self.batch.clear();
    }

    /// The index could not be written (a disk full or failing under a merge or a commit): the
    /// documents the writer held are lost to it, so no later commit may move the searchable
    /// mark past them. The mark stays where the last good commit left it (on disk too, so the
    /// next start indexes everything since), and the node is not ready until it restarts.
    fn fail(&mut self, what: &str, e: &accord_search::SearchError) {
        error!(error = %e, "search index {what} failed; search shows nothing new until the node restarts");
        self.shared.set_search_fault(format!(
            "the search index could not be written ({e}): search shows nothing new until the node restarts (after freeing disk space if it is full), which indexes what it missed"
        ));
        self.failed = Some(e.to_string());
    }

    /// Hands over what is gathered and commits the index at `target`.
    fn commit(&mut self) {
        self.flush();
        if self.failed.is_some() {
            // Nothing is committed after a failure: what the writer lost would be skipped.
            // Its waiters are dropped unanswered (what they wait for is done at the restart).
            self.waiting.clear();
            self.oldest = None;
            self.window = None;
            self.last_commit = Some(Instant::now());
            return;
        }
        if let Err(e) = self.search.commit_at(self.target) {
            self.fail("commit", &e);
            self.waiting.clear();
            self.oldest = None;
            self.window = None;
            self.last_commit = Some(Instant::now());
            return;
        }
        if let Some(t) = self.oldest.take() {
            self.metrics
                .searchable_lag_seconds
                .observe(t.elapsed().as_secs_f64());
        }
        self.last_commit = Some(Instant::now());
        self.window = None;
        self.metrics.search_docs.set(self.search.num_docs() as i64);
        self.shared.searchable.send_replace(self.target);
        self.committed = self.target;
        for done in self.waiting.drain(..) {
            let _ = done.send(());
        }
        // After the records are searchable: what the unfiltered view needs from the new
        // segments, so that its first run (and a filter's that keeps whole segments) finds it.
        if let Err(e) = self.warm.warm() {
            debug!(error = %e, "could not count the new segments ahead");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc::{TryRecvError, channel};

    /// Reserves `docs` on another thread, which says when it got through.
    fn reserve_on_a_thread(
        backlog: &Arc<Backlog>,
        docs: usize,
    ) -> (std::thread::JoinHandle<()>, std::sync::mpsc::Receiver<()>) {
        let (done_tx, done_rx) = channel();
        let backlog = backlog.clone();
        let waiter = std::thread::spawn(move || {
            backlog.reserve(docs);
            done_tx.send(()).unwrap();
        });
        (waiter, done_rx)
    }

    /// An indexer over an empty index in memory, as the indexer thread builds it.
    fn indexer(dir: &std::path::Path) -> Indexer {
        let fed = accord_core::devnet::DevFederation::new(&["KZ"], [5; 32], T0).unwrap();
        let store = Store::open(
            dir,
            fed.genesis.as_bytes(),
            accord_store::StoreOptions::default(),
        )
        .unwrap();
        let search = SearchIndex::in_memory().unwrap();
        Indexer {
            warm: search.searcher(),
            search,
            batch: Vec::new(),
            committed: 0,
            target: 0,
            oldest: None,
            last_commit: None,
            window: None,
            failed: None,
            waiting: Vec::new(),
            shared: Arc::new(Shared::new(&store)),
            metrics: Arc::new(Metrics::new(
                prometheus_client::registry::Registry::default(),
            )),
        }
    }

    const T0: accord_core::Timestamp = accord_core::Timestamp(1_750_000_000_000);

    /// `n` new records' documents, numbered from `from`.
    fn docs(from: u64, n: u64) -> Vec<(RecordDoc, Presence)> {
        let fed = accord_core::devnet::DevFederation::new(&["KZ"], [5; 32], T0).unwrap();
        (from..from + n)
            .map(|i| {
                let created = accord_core::Timestamp(T0.0 + i);
                let title = format!("record {i}");
                let id = fed.record(0, &title, created).id();
                let body = fed.record_body(0, &title, created);
                (
                    RecordDoc::of(id, &body, "active", "ministry"),
                    Presence::New,
                )
            })
            .collect()
    }

    /// Takes `updates` as the indexer thread does, one every `apart`.
    fn take_all(ix: &mut Indexer, updates: Vec<Vec<(RecordDoc, Presence)>>, apart: Duration) {
        let start = Instant::now();
        for (i, docs) in updates.into_iter().enumerate() {
            let update = IndexUpdate {
                docs,
                seq: ix.target + 1,
                stored_at: start,
                done: None,
            };
            ix.take(update, start + apart * i as u32);
        }
    }

    /// The few hundred documents a gossip receiver stores between two index commits, in many
    /// small group commits, go to the index writer whole at the commit and make one segment
    /// whatever the number of indexing threads (each segment costs a term table, a term
    /// dictionary and a merge); a burst goes to the writer as it comes, so that every indexing
    /// thread works on it before the commit.
    #[test]
    fn a_commit_of_a_few_hundred_documents_makes_one_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = indexer(dir.path());
        // 30 group commits of 10 documents in 435 ms (~700 records a second), as gossip
        // batches arrive.
        let updates: Vec<_> = (0..30).map(|g| docs(g * 10, 10)).collect();
        take_all(&mut ix, updates, Duration::from_millis(15));
        assert_eq!(ix.batch.len(), 300, "handed over before the commit");
        ix.commit();
        assert_eq!(ix.search.num_docs(), 300);
        assert_eq!(
            ix.search.segment_count(),
            1,
            "one commit's documents were spread over several indexing threads"
        );
        assert_eq!(*ix.shared.searchable.borrow(), 30);
        // A burst: group commits of 512 a millisecond apart go to the writer as they come.
        let updates: Vec<_> = (0..3).map(|g| docs(1_000 + g * 512, 512)).collect();
        take_all(&mut ix, updates, Duration::from_millis(1));
        assert!(ix.batch.is_empty(), "a burst waited for the commit");
        ix.commit();
        assert_eq!(ix.search.num_docs(), 300 + 3 * 512);
        assert_eq!(*ix.shared.searchable.borrow(), 33);
    }

    /// An index that cannot be written (its disk gone under it) moves the searchable mark no
    /// further: the records it lost are not said to be searchable (a `wait=searchable`
    /// submission is told they are not), the node notes the fault (not ready until a
    /// restart), and the mark on disk stays at the last good commit for the next start to
    /// index from.
    #[test]
    fn a_failed_index_write_moves_the_searchable_mark_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = indexer(&dir.path().join("store"));
        let index_dir = dir.path().join("search");
        ix.search = SearchIndex::open(&index_dir).unwrap();
        take_all(&mut ix, vec![docs(0, 10)], Duration::from_millis(1));
        ix.commit();
        assert_eq!(*ix.shared.searchable.borrow(), 1);
        assert!(ix.shared.fault().is_none());
        // The index's directory goes (a disk failing under it): the next commit fails.
        std::fs::remove_dir_all(&index_dir).unwrap();
        take_all(&mut ix, vec![docs(100, 10)], Duration::from_millis(1));
        ix.commit();
        assert_eq!(
            *ix.shared.searchable.borrow(),
            1,
            "lost records said searchable"
        );
        let fault = ix.shared.fault().expect("the failure is the node's fault");
        assert!(
            fault.contains("the search index could not be written"),
            "{fault}"
        );
        // Later updates, with documents or without, move it no further either.
        take_all(
            &mut ix,
            vec![docs(200, 3), Vec::new()],
            Duration::from_millis(1),
        );
        ix.commit();
        assert_eq!(*ix.shared.searchable.borrow(), 1);
        assert_eq!(ix.committed, 1);
    }

    /// A refused store write is the fault read first, even when the search index failed
    /// before it (a failing disk fails both, in either order; the store's is the graver).
    #[test]
    fn a_store_fault_is_read_before_a_search_fault() {
        let dir = tempfile::tempdir().unwrap();
        let ix = indexer(dir.path());
        ix.shared.set_search_fault("search first".into());
        assert_eq!(ix.shared.fault().as_deref(), Some("search first"));
        ix.shared.set_fault("store".into());
        ix.shared.set_fault("store again".into());
        assert_eq!(ix.shared.fault().as_deref(), Some("store"));
    }

    /// The rule itself: a full batch always goes; less than the smallest batch waits for the
    /// commit; in between, it goes when the window's rate fills a batch by the commit.
    #[test]
    fn documents_go_to_the_writer_early_only_at_bulk_rates() {
        let ms = Duration::from_millis;
        assert!(hand_over_now(INDEX_BATCH_DOCS, INDEX_BATCH_DOCS, ms(499)));
        assert!(!hand_over_now(INDEX_BATCH_MIN_DOCS - 1, 5_000, ms(1)));
        // 512 in the first 10 ms: ~25,000 by the commit.
        assert!(hand_over_now(512, 512, ms(10)));
        assert!(hand_over_now(512, 512, Duration::ZERO));
        // 400 in 400 ms: 500 by the commit.
        assert!(!hand_over_now(400, 400, ms(400)));
        // 2,000 a second exactly fills a batch by the commit.
        assert!(hand_over_now(300, 1_024, ms(500)));
        assert!(!hand_over_now(300, 1_023, ms(500)));
    }

    /// A group is acknowledged once it is durable: its search documents are queued after the
    /// replies, so an indexer that has fallen behind (its queue full) holds up the store
    /// thread's next group, never the acknowledgement of this one.
    #[test]
    fn a_group_is_acknowledged_before_its_documents_wait_for_the_indexer() {
        let dir = tempfile::tempdir().unwrap();
        let fed = accord_core::devnet::DevFederation::new(&["KZ"], [5; 32], T0).unwrap();
        let mut store = Store::open(
            dir.path(),
            fed.genesis.as_bytes(),
            accord_store::StoreOptions::default(),
        )
        .unwrap();
        let delegation = fed.delegation(0).into_bytes();
        store
            .ingest_batch(
                &[delegation.as_slice()],
                accord_core::Timestamp(T0.0 + 1_000),
            )
            .unwrap();
        let limits = *store.trust().limits();
        let items: Vec<Prepared> = (0..3)
            .map(|i| {
                let r = fed.record(0, &format!("record {i}"), accord_core::Timestamp(T0.0 + i));
                precheck_one(r.as_bytes(), &limits)
            })
            .collect();
        let shared = Shared::new(&store);
        let metrics = Metrics::new(prometheus_client::registry::Registry::default());
        let (tx, index_rx) = std::sync::mpsc::sync_channel(INDEX_QUEUE_CAPACITY);
        let backlog = Arc::new(Backlog::default());
        // An indexer that has taken nothing of a full queue.
        backlog.reserve(INDEX_QUEUE_DOCS);
        let index_tx = IndexQueue {
            tx,
            backlog: backlog.clone(),
        };
        let (reply, reply_rx) = oneshot::channel();
        let (done_tx, done_rx) = channel();
        let worker = std::thread::spawn(move || {
            let ctx = GroupContext {
                shared: &shared,
                metrics: &metrics,
                index_tx: &index_tx,
                summary: &mut Summary::default(),
            };
            ingest_group(
                &mut store,
                &mut SyncIndex::default(),
                ctx,
                vec![(items, Source::Local, reply)],
            );
            done_tx.send(()).unwrap();
        });
        let (replied_tx, replied_rx) = channel();
        std::thread::spawn(move || replied_tx.send(reply_rx.blocking_recv()));
        let result = replied_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("no acknowledgement while the index queue was full")
            .unwrap()
            .unwrap();
        assert_eq!(
            result
                .outcomes
                .iter()
                .filter(|o| o.status() == "accepted")
                .count(),
            3,
            "{:?}",
            result.outcomes
        );
        assert_eq!(
            done_rx.try_recv(),
            Err(TryRecvError::Empty),
            "the documents were queued past a full queue"
        );
        // The indexer catches up: the documents follow, marked with the group's number.
        backlog.release(INDEX_QUEUE_DOCS);
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let update = index_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(update.docs.len(), 3);
        assert_eq!(update.seq, result.seq);
        worker.join().unwrap();
    }

    /// Submissions of one or two small objects are checked where they arrive; larger ones go
    /// to the blocking pool.
    #[test]
    fn only_small_submissions_are_checked_inline() {
        assert!(checked_inline(&[vec![0; 2_000]]));
        assert!(checked_inline(&[vec![0; 2_000], vec![0; 2_000]]));
        assert!(!checked_inline(&[vec![0; 10], vec![0; 10], vec![0; 10]]));
        assert!(!checked_inline(&[vec![0; INLINE_PRECHECK_BYTES + 1]]));
        assert!(checked_inline(&[vec![0; INLINE_PRECHECK_BYTES]]));
    }

    /// The store thread waits only when queued documents would pass the bound: single-record
    /// group commits never wait behind each other, a group larger than the bound goes through
    /// when nothing is queued, and a stopped indexer never leaves it waiting.
    #[test]
    fn the_index_queue_is_bounded_by_documents_not_by_updates() {
        let backlog = Arc::new(Backlog::default());
        // A thousand one-document updates: none waits.
        for _ in 0..1000 {
            backlog.reserve(1);
        }
        backlog.release(1000);
        // An update larger than the bound passes when nothing is queued.
        backlog.reserve(INDEX_QUEUE_DOCS + 10);
        // The next one waits until the indexer takes the first.
        let (waiter, done_rx) = reserve_on_a_thread(&backlog, 1);
        assert_eq!(
            done_rx.recv_timeout(Duration::from_millis(100)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout),
            "it went through while the bound was passed"
        );
        backlog.release(INDEX_QUEUE_DOCS + 10);
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
        backlog.release(1);
        // Full again; an indexer that stops releases every waiter.
        backlog.reserve(INDEX_QUEUE_DOCS);
        let (waiter, done_rx) = reserve_on_a_thread(&backlog, 5);
        assert_eq!(done_rx.try_recv(), Err(TryRecvError::Empty));
        drop(CloseOnDrop(backlog.clone()));
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }
}
