//! The store itself: opening, trust rebuild, group-committed ingest, pending quarantine,
//! export and import.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use accord_core::cbor;
use accord_core::validate::KnownRecords;
use accord_core::{
    MemberCode, Missing, Object, ObjectId, ObjectType, PublicKey, Rejection, SignedObject,
    Timestamp, TrustView, Verdict, Verified, validate_envelope,
};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use crate::declined::{DECLINED_KEPT, Declined, NEWER_DECLINED_KEPT};
use crate::error::StoreError;
use crate::keys::{pair, prefixed, time_id};
use crate::log::{Locator, LogReader, ObjectLog};
use crate::quarantine::{Quarantine, QuarantineLimits, Room, UNKNOWN_SOURCE};

/// The on-disk format version this build writes and understands. Schema 6 has no new data:
/// it marks the stores whose upgrades say when they are under way (`UPGRADING_FROM`), so that
/// a build of schema 5, which does not look for that mark, refuses a store an upgrade left
/// half done rather than taking it as finished.
pub const SCHEMA_VERSION: u32 = 6;
/// Default sled page cache: 4 MiB (sled's own default is 1 GiB). sled holds the indexes and
/// where each object is (the objects themselves are in the object log). What sled keeps in
/// memory is three to four times what it counts against this budget (its pages' in-memory
/// form, and its collector's copies): at 100,000 records a 16 MiB cache made the node ~50 MiB
/// larger than 4 MiB did, at the same ingest rate and query latency (docs/BENCHMARKS.md,
/// "Footprint"). Reads of objects are point lookups and the search index answers queries, so
/// a larger cache buys little.
pub const DEFAULT_CACHE_BYTES: u64 = 4 << 20;
/// Default capacity of the pending quarantine, in objects.
pub const DEFAULT_MAX_PENDING: usize = 10_000;
/// Default share of the quarantine one source (a peer, the local API, an import) may hold.
pub const DEFAULT_MAX_PENDING_PER_SOURCE: usize = 2_500;
/// Default share of the quarantine the objects claiming one member may hold.
pub const DEFAULT_MAX_PENDING_PER_MEMBER: usize = 5_000;
/// Default time an object may wait in the quarantine: 24 hours.
pub const DEFAULT_PENDING_TTL_MS: u64 = 24 * 60 * 60 * 1000;
/// How often ingest sweeps expired quarantine entries.
const EXPIRY_INTERVAL_MS: u64 = 60_000;
/// The source of objects ingested without one (see [`Store::ingest_from`]).
pub const LOCAL_SOURCE: &str = "local";
/// The source of objects read by [`Store::import`].
const IMPORT_SOURCE: &str = "import";
/// The order of object types in an export.
const EXPORT_ORDER: [ObjectType; 6] = [
    ObjectType::Charter,
    ObjectType::Delegation,
    ObjectType::Node,
    ObjectType::Record,
    ObjectType::Retraction,
    ObjectType::Revocation,
];
/// Objects per transaction when importing a file.
const IMPORT_BATCH: usize = 512;

/// zstd level for sled's compression of what it writes (the level barely changes the CPU cost,
/// which is mostly sled making a compression context per write; docs/BENCHMARKS.md, "Footprint").
const COMPRESSION_LEVEL: i32 = 3;

/// Whether the database in `dir` is compressed: what its sled configuration says, or `new`
/// for a database not created yet. sled cannot change this across restarts, so a store keeps
/// what it was created with (an export and import into a fresh data directory changes it).
fn uses_compression(dir: &Path, new: bool) -> bool {
    // sled's conf file is text followed by a binary checksum.
    match std::fs::read(dir.join("conf")) {
        Ok(conf) => String::from_utf8_lossy(&conf)
            .lines()
            .filter_map(|line| line.split_once(':'))
            .any(|(k, v)| k.trim() == "use_compression" && v.trim() == "true"),
        Err(_) => new,
    }
}

/// Opens the sled database in `dir` as it is (compressed or not), without the store's checks:
/// for offline tools and tests that look at the raw trees. sled releases its file lock from a
/// background thread shortly after the last handle is dropped, so a store closed and reopened
/// at once (a restart in the same process) may find it still held: retry for a bounded time
/// before failing.
pub fn open_db(dir: &Path, cache_bytes: u64, compress_new: bool) -> Result<sled::Db, StoreError> {
    const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(25);
    const LOCK_ATTEMPTS: u32 = 200; // 5 s
    let compressed = uses_compression(dir, compress_new);
    let mut attempt = 0;
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .use_compression(compressed)
            .compression_factor(COMPRESSION_LEVEL)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && attempt < LOCK_ATTEMPTS =>
            {
                attempt += 1;
                std::thread::sleep(LOCK_RETRY);
            }
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                return Err(StoreError::Locked(dir.display().to_string()));
            }
            other => return Ok(other?),
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub cache_bytes: u64,
    /// Compress a store created now (sled's zstd, on sled's indexes only: the object log
    /// keeps the signed bytes as they are). At 100,000 records 1.20 instead of 1.31 times the
    /// signed bytes on disk, for about 30 % less bulk-ingest speed. An existing store keeps
    /// what it was created with.
    pub compress: bool,
    /// Objects in the quarantine in all.
    pub max_pending: usize,
    /// Objects in the quarantine from one source.
    pub max_pending_per_source: usize,
    /// Objects in the quarantine claiming one member.
    pub max_pending_per_member: usize,
    /// How long an object may wait in the quarantine, in milliseconds.
    pub pending_ttl_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: DEFAULT_CACHE_BYTES,
            compress: false,
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_per_source: DEFAULT_MAX_PENDING_PER_SOURCE,
            max_pending_per_member: DEFAULT_MAX_PENDING_PER_MEMBER,
            pending_ttl_ms: DEFAULT_PENDING_TTL_MS,
        }
    }
}

impl StoreOptions {
    fn quarantine(&self) -> QuarantineLimits {
        QuarantineLimits {
            max: self.max_pending,
            per_source: self.max_pending_per_source,
            per_member: self.max_pending_per_member,
            ttl_ms: self.pending_ttl_ms,
        }
    }
}

/// What an ingest did: one outcome per submitted object, in order, and the objects it
/// released from the quarantine (their prerequisite arrived).
pub type Ingested = (Vec<IngestOutcome>, Vec<Arc<Verified<Object>>>);

/// What happened to one submitted object.
#[allow(clippy::large_enum_variant)] // short-lived, matched right away
#[derive(Debug, Clone)]
pub enum IngestOutcome {
    /// Validated and durably stored. Shared: the node hands the same object to its readers,
    /// its index and its peers without copying it.
    Accepted(Arc<Verified<Object>>),
    /// Already stored (detected by id; before any signature work, unless the caller checked
    /// signatures before handing the object over).
    Duplicate(ObjectId),
    /// Valid so far but waiting for a prerequisite; kept in the quarantine.
    Pending(ObjectId, Missing),
    /// Refused. The id is known when the envelope could be decoded.
    Rejected(Option<ObjectId>, Rejection),
    /// Waiting for a prerequisite, but its source already holds its share of the quarantine
    /// (or the quarantine is full of entries of sources that hold less): not kept.
    QuarantineFull(ObjectId, Missing),
}

impl IngestOutcome {
    /// `accepted`, `duplicate`, `pending`, `rejected` or `quarantine-full`.
    pub fn status(&self) -> &'static str {
        match self {
            IngestOutcome::Accepted(_) => "accepted",
            IngestOutcome::Duplicate(_) => "duplicate",
            IngestOutcome::Pending(..) => "pending",
            IngestOutcome::Rejected(..) => "rejected",
            IngestOutcome::QuarantineFull(..) => "quarantine-full",
        }
    }

    pub fn id(&self) -> Option<ObjectId> {
        match self {
            IngestOutcome::Accepted(v) => Some(v.id()),
            IngestOutcome::Duplicate(id)
            | IngestOutcome::Pending(id, _)
            | IngestOutcome::QuarantineFull(id, _) => Some(*id),
            IngestOutcome::Rejected(id, _) => *id,
        }
    }

    /// The reason, for pending and rejected objects.
    /// The stable code of a refusal or hold (docs/PROTOCOL.md §5, "Reason codes").
    pub fn code(&self) -> Option<&'static str> {
        match self {
            IngestOutcome::Pending(_, m) | IngestOutcome::QuarantineFull(_, m) => Some(m.code()),
            IngestOutcome::Rejected(_, r) => Some(r.code()),
            _ => None,
        }
    }

    pub fn reason(&self) -> Option<String> {
        match self {
            IngestOutcome::Pending(_, m) | IngestOutcome::QuarantineFull(_, m) => {
                Some(m.to_string())
            }
            IngestOutcome::Rejected(_, r) => Some(r.to_string()),
            _ => None,
        }
    }
}

/// Counts from an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub accepted: usize,
    pub duplicate: usize,
    pub pending: usize,
    pub rejected: usize,
    /// Pending objects released because their prerequisite arrived during the import.
    pub released: usize,
}

/// A stored object, decoded.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub signed: SignedObject,
    pub object: Object,
}

// Tree indexes inside `Store::trees`, in the order they are opened.
const OBJECTS: usize = 0;
const BY_TIME: usize = 1;
const BY_TYPE: usize = 2;
const SUPERSEDES: usize = 3;
const RETRACTS: usize = 4;
const PENDING: usize = 5;
const PENDING_WAIT: usize = 6;
const PENDING_SOURCE: usize = 7;
const BY_SEQ: usize = 8;
const META: usize = 9;
/// The sources objects were taken from, numbered: number (4 bytes big-endian) → the source as
/// the quarantine names it ("peer <id>", "local", "preload", "import"). Each `objects` entry
/// written since schema 4 ends with when the object was taken and its source's number.
const SOURCES: usize = 10;
/// Records by signer (schema 5): member code, the signing key, the record's creation time and
/// id → nothing (in creation order within a key, so that a group commit's new records touch the
/// end of their key's range, not a page per record).
/// A revocation, a delegation given again or a charter amendment that changes the status of a
/// key's records finds them here; it used to decode every record the node held, on the store
/// thread, for each such object a member signed.
const BY_SIGNER: usize = 11;
const TREE_NAMES: [&str; 12] = [
    "objects",
    "by_time",
    "by_type",
    "supersedes",
    "retracts",
    "pending",
    "pending_wait",
    "pending_source",
    "by_seq",
    "meta",
    "sources",
    "by_signer",
];
/// The key in `meta` of the object log's committed end (see [`crate::log`]).
const LOG_END: &[u8] = b"log_end";
/// The schema an upgrade under way started from (`meta`), present until every step is done.
/// Meanwhile `schema` already says the new version, so that an older release refuses the
/// half-converted store (`NewerSchema`) instead of reading it as its own.
const UPGRADING_FROM: &[u8] = b"upgrading_from";
/// The key in `meta` of the sequence number a repair found before it dropped objects: numbers
/// are never given again, though the objects that had the last ones are gone (the marks of
/// derived state, the search index's and the attachments', have passed them).
const SEQ_FLOOR: &[u8] = b"seq_floor";
use crate::blobs::sync_dir;
/// The key in `meta` of the log bytes given up by index repairs: every byte of the log no kept
/// object takes (those of damaged objects a repair dropped stay in the log, accounted for,
/// until the log is rewritten); a repair derives it afresh.
const LOG_ABANDONED: &[u8] = b"log_abandoned";
/// The file an index repair keeps in the data directory until it has finished: one cut short
/// (killed, a power cut, a disk full) leaves indexes half rebuilt, which the node must not run
/// on (trust objects missing from the type index go missing from the trust view, exports and
/// backups leave objects out). Only a repair opens such a store (and finishes the job).
pub const REPAIR_UNFINISHED: &str = "REPAIR-UNFINISHED";

/// Refuses a data directory an unfinished index repair left, naming it and what to do.
pub fn unfinished_repair(dir: &Path) -> Result<(), StoreError> {
    if dir.join(REPAIR_UNFINISHED).exists() {
        return Err(StoreError::Corrupt(format!(
            "an `accord check --repair` of this store did not finish ({REPAIR_UNFINISHED} is in {}): its indexes are half rebuilt; run `accord check --repair` again",
            dir.display()
        )));
    }
    Ok(())
}

/// Objects moved into the object log per transaction when a schema-2 store is upgraded.
const MIGRATE_BATCH: usize = 512;
pub(crate) const RETRACTS_TREE: usize = RETRACTS;
pub(crate) const SUPERSEDES_TREE: usize = SUPERSEDES;
/// Trees of schema 1 that schema 2 no longer keeps: store-side filters by member, kind,
/// direction and author (analysts' filters run on the search index; the store's own filtered
/// queries scan by type and time), and each record's member and author (read from the record
/// itself when a retraction or a successor needs them). Dropped when a schema-1 store is
/// opened.
const DROPPED_IN_SCHEMA_2: [&str; 5] = [
    "by_member",
    "by_kind",
    "by_direction",
    "by_author",
    "record_meta",
];
pub(crate) const BY_TYPE_TREE: usize = BY_TYPE;
pub(crate) const BY_TIME_TREE: usize = BY_TIME;

/// Reads stored objects' bytes; see [`Store::object_reader`].
#[derive(Debug, Clone)]
pub struct ObjectReader {
    objects: Tree,
    log: LogReader,
}

impl ObjectReader {
    /// Whether the object is stored (any thread may ask while the writer writes).
    pub fn contains(&self, id: &ObjectId) -> Result<bool, StoreError> {
        Ok(self.objects.contains_key(id.as_bytes())?)
    }

    /// The exact signed bytes of a stored object, or `None` if it is not stored.
    pub fn try_get(&self, id: &ObjectId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(v) = self.objects.get(id.as_bytes())? else {
            return Ok(None);
        };
        self.bytes_of(id, &v).map(Some)
    }

    /// The exact signed bytes of a stored object; an error if it is not stored.
    pub fn get(&self, id: &ObjectId) -> Result<Vec<u8>, StoreError> {
        self.try_get(id)?
            .ok_or_else(|| StoreError::Corrupt(format!("missing object {id}")))
    }

    /// The bytes an `objects` entry stands for.
    fn bytes_of(&self, id: &ObjectId, entry: &[u8]) -> Result<Vec<u8>, StoreError> {
        let loc = Locator::decode(entry).ok_or_else(|| {
            StoreError::Corrupt(format!("object {id}: its index entry is not a locator"))
        })?;
        self.log.read(loc)
    }
}

/// Accord's storage facade. See the crate documentation.
#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    pub(crate) trees: Vec<Tree>,
    /// The objects' bytes (sled's `objects` tree holds where they are).
    log: ObjectLog,
    reader: ObjectReader,
    trust: Arc<TrustView>,
    quarantine: Quarantine,
    /// Objects refused and remembered (see [`crate::declined`]).
    declined: Declined,
    /// Copies refused for a signer that once had authority, or waiting for the delegation of
    /// a publisher only such a key delegated, remembered for the source that gave them (see
    /// [`Store::received_from_peer_not_held`]).
    signer_declined: Declined,
    /// Objects of a type this release does not know, signed by a key without standing,
    /// remembered for the peer that gave them ([`Store::note_refused`]): apart from the other
    /// memories, so that keys anyone can make fill only this one.
    newer_declined: Declined,
    /// The numbers of the sources in the `sources` tree, and their names by number.
    source_numbers: HashMap<String, u32>,
    source_names: HashMap<u32, String>,
    /// The number the next new source gets (one past the highest in the tree).
    next_source: u32,
    /// Every root key any charter version held, per member: a refusal for such a key, not the
    /// root key in force, may be history rather than a forgery.
    roots_ever: HashSet<(MemberCode, PublicKey)>,
    /// Publishers of delegations refused as signed by a root key since replaced, with the
    /// member that root key was of (at most [`DECLINED_KEPT`]): only that member's records
    /// signed by them may be history.
    historic_delegates: HashSet<(MemberCode, PublicKey)>,
    /// Publisher keys whose new delegation could change a verdict in `signer_declined` (at
    /// most [`DECLINED_KEPT`]; past it, any delegation accepted forgets them all).
    signer_keys: HashSet<PublicKey>,
    /// When ingest last swept expired quarantine entries.
    last_expiry: u64,
    /// The sequence number of the last object written (0: none yet).
    seq: u64,
    /// Stored objects per type (see [`Store::counts_by_type`]).
    counts: BTreeMap<ObjectType, u64>,
    /// The data directory.
    dir: std::path::PathBuf,
}

/// One object handed to [`Store::ingest_incoming`].
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved once into the store's loop, never stored
pub enum Incoming<'a> {
    /// Raw envelope bytes: decoded, checked for duplicates, then fully validated.
    Bytes(&'a [u8]),
    /// An object whose signatures were checked by [`accord_core::precheck`]: checked for
    /// duplicates, then judged against the trust view only.
    Prechecked(accord_core::Prechecked),
}

/// One key/value to write into one tree.
type Entry = (usize, Vec<u8>, Vec<u8>);

/// Every index entry of an object (the same function serves writing and checking).
pub(crate) fn index_entries(id: &ObjectId, obj: &Object, signer: Option<&PublicKey>) -> Vec<Entry> {
    let created = obj.created();
    let t = obj.object_type();
    let mut v: Vec<Entry> = vec![
        (BY_TIME, time_id(created, id).to_vec(), vec![t.code()]),
        (BY_TYPE, prefixed(&[t.code()], created, id), vec![]),
    ];
    match obj {
        Object::Record(r) => {
            if let Some(prev) = &r.supersedes {
                v.push((SUPERSEDES, pair(prev, id).to_vec(), vec![]));
            }
            if let Some(key) = signer {
                let mut k = signer_key(&r.member, key);
                k.extend_from_slice(&time_id(created, id));
                v.push((BY_SIGNER, k, vec![]));
            }
        }
        Object::Retraction(r) => v.push((RETRACTS, pair(&r.record, id).to_vec(), vec![])),
        _ => {}
    }
    v
}

/// The prefix of a key of [`BY_SIGNER`]: the member's code and the signing key (then come the
/// record's creation time and id).
fn signer_key(member: &MemberCode, key: &PublicKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + 1 + 32 + 8 + 32);
    k.extend_from_slice(member.as_str().as_bytes());
    // A separator: member codes are two letters today, and a longer one cannot run into a key.
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("by_seq key".into()))
}

/// The member an object claims (for the quarantine's per-member bound) and its creation
/// time, if it decodes (else none, and 0).
fn claimed(bytes: &[u8], limits: &accord_core::Limits) -> (Option<String>, u64) {
    match accord_core::validate::decode(bytes, limits) {
        Ok((_, obj)) => (
            obj.member().map(|m| m.as_str().to_string()),
            obj.created().0,
        ),
        Err(_) => (None, 0),
    }
}

/// The first byte of the wait key of an object waiting for a delegation or node certificate.
const TRUST_OBJECT_WAIT: u8 = b'T';
/// The first byte of the wait key of an object waiting for its signer's delegation (records,
/// and a key's self-revocation waiting for its standing).
const DELEGATION_WAIT: u8 = b'D';

/// The key a pending object waits under: `D || publisher || member`, `R || record id` or
/// `T || delegation or node certificate id`.
fn wait_key(m: &Missing) -> Vec<u8> {
    match m {
        Missing::Delegation { publisher, member } => {
            let mut k = vec![DELEGATION_WAIT];
            k.extend_from_slice(publisher.as_bytes());
            k.extend_from_slice(member.as_str().as_bytes());
            k
        }
        Missing::Record(id) => {
            let mut k = vec![b'R'];
            k.extend_from_slice(id.as_bytes());
            k
        }
        Missing::TrustObject(id) => {
            let mut k = vec![TRUST_OBJECT_WAIT];
            k.extend_from_slice(id.as_bytes());
            k
        }
        // `Missing` is non-exhaustive for other crates only; this arm keeps future kinds apart.
        #[allow(unreachable_patterns)]
        _ => vec![b'?'],
    }
}

/// The wait keys an accepted object may unlock.
fn unlocks(v: &Verified<Object>) -> Vec<Vec<u8>> {
    match v.object() {
        Object::Delegation(d) => vec![
            wait_key(&Missing::Delegation {
                member: d.member.clone(),
                publisher: d.publisher,
            }),
            wait_key(&Missing::TrustObject(v.id())),
        ],
        // A node key's self-revocation waits for standing as a delegation would give it.
        Object::Node(n) => vec![
            wait_key(&Missing::TrustObject(v.id())),
            wait_key(&Missing::Delegation {
                member: n.member.clone(),
                publisher: n.node_key,
            }),
        ],
        Object::Record(_) => vec![wait_key(&Missing::Record(v.id()))],
        _ => vec![],
    }
}

/// Known records: the store plus the records accepted earlier in the same batch.
struct Known<'a> {
    store: &'a Store,
    batch: &'a BTreeMap<ObjectId, (MemberCode, PublicKey)>,
}

impl KnownRecords for Known<'_> {
    fn record_meta(&self, id: &ObjectId) -> Option<(MemberCode, PublicKey)> {
        self.batch
            .get(id)
            .cloned()
            .or_else(|| self.store.record_meta(id))
    }
}

impl KnownRecords for Store {
    fn record_meta(&self, id: &ObjectId) -> Option<(MemberCode, PublicKey)> {
        // Asked only when a retraction or a successor names the record: read it.
        let stored = self.get(id).ok()??;
        let Object::Record(r) = stored.object else {
            return None;
        };
        Some((r.member, stored.signed.signatures().first()?.0))
    }
}

/// A batch being assembled: accepted objects, quarantine changes.
#[derive(Default)]
struct Batch {
    accepted: Vec<Arc<Verified<Object>>>,
    /// For each of `accepted`: when it was received (ms) and from which source.
    received: Vec<(u64, String)>,
    accepted_ids: BTreeSet<ObjectId>,
    records: BTreeMap<ObjectId, (MemberCode, PublicKey)>,
    /// New or updated quarantine entries: id → (received + bytes, wait key).
    pending_put: BTreeMap<ObjectId, (Vec<u8>, Vec<u8>)>,
    /// Quarantine entries to delete: id → old wait key.
    pending_del: BTreeMap<ObjectId, Vec<u8>>,
    /// Entries added to the quarantine index during this batch.
    pending_new: Vec<ObjectId>,
    unlocked: Vec<Vec<u8>>,
    /// Delegation waits whose revocations were released early in this batch.
    early_released: BTreeSet<Vec<u8>>,
}

impl Batch {
    fn accept(
        &mut self,
        v: Arc<Verified<Object>>,
        trust: &mut Arc<TrustView>,
        received: u64,
        source: &str,
    ) {
        if v.object().object_type().is_trust() {
            // Copied only here, when the batch changes trust: a batch of records shares the
            // view the store and its readers hold (a member's hundreds of delegations are
            // not copied for every group commit).
            Arc::make_mut(trust).apply(&v);
        }
        if let Object::Record(r) = v.object() {
            self.records.insert(v.id(), (r.member.clone(), v.signer()));
        }
        self.unlocked.extend(unlocks(&v));
        self.accepted_ids.insert(v.id());
        self.accepted.push(v);
        self.received.push((received, source.to_string()));
    }
}

impl Store {
    /// The data directory the store lives in (the blob store is its `blobs/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The schema of the store in `dir`, read without upgrading it (`None`: no store there
    /// yet). Opening with [`Store::open`] upgrades an older schema, which the release before
    /// cannot read back.
    pub fn schema_in(dir: &Path) -> Result<Option<u32>, StoreError> {
        let db = open_db(dir, DEFAULT_CACHE_BYTES, false)?;
        let found = db.open_tree("meta")?.get("schema")?;
        found
            .map(|v| {
                v.as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("schema version is not 4 bytes".into()))
            })
            .transpose()
    }

    /// Opens (or creates) the store in `dir` for the federation whose genesis charter is
    /// `genesis`. Refuses a newer schema or another federation's data.
    pub fn open(dir: &Path, genesis: &[u8], opts: StoreOptions) -> Result<Store, StoreError> {
        Self::open_with(dir, genesis, opts, false)
    }

    /// [`Self::open`] for [`Self::repair_indexes`]: an object log shorter than the store
    /// wrote (its tail lost) is opened as it is, and the objects past its end, which no longer
    /// read, are then dropped by the repair (reconciliation fetches them again from peers).
    pub fn open_for_repair(
        dir: &Path,
        genesis: &[u8],
        opts: StoreOptions,
    ) -> Result<Store, StoreError> {
        Self::open_with(dir, genesis, opts, true)
    }

    fn open_with(
        dir: &Path,
        genesis: &[u8],
        opts: StoreOptions,
        truncated_ok: bool,
    ) -> Result<Store, StoreError> {
        let (trust, genesis_v) = TrustView::from_genesis(genesis).map_err(StoreError::Genesis)?;
        let db = open_db(dir, opts.cache_bytes, opts.compress)?;
        let meta = db.open_tree("meta")?;
        let found = match meta.get("schema")? {
            Some(v) => {
                let found =
                    u32::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                        StoreError::Corrupt("schema version is not 4 bytes".into())
                    })?);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                // An upgrade cut short resumes from where it started (each step is safe to
                // repeat).
                match meta.get(UPGRADING_FROM)? {
                    Some(from) => u32::from_be_bytes(from.as_ref().try_into().map_err(|_| {
                        StoreError::Corrupt("the schema being upgraded from is not 4 bytes".into())
                    })?),
                    None => found,
                }
            }
            None => {
                meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())?;
                SCHEMA_VERSION
            }
        };
        match meta.get("federation")? {
            Some(v) => {
                let found = ObjectId::from_slice(&v)
                    .ok_or_else(|| StoreError::Corrupt("federation id".into()))?;
                if found != trust.federation() {
                    return Err(StoreError::OtherFederation {
                        found,
                        expected: trust.federation(),
                    });
                }
            }
            None => {
                meta.insert("federation", trust.federation().as_bytes())?;
            }
        }
        let trees = TREE_NAMES
            .iter()
            .map(|n| db.open_tree(n))
            .collect::<Result<Vec<_>, _>>()?;
        let committed_end =
            match meta.get(LOG_END)? {
                Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                    StoreError::Corrupt("the object log's end is not 8 bytes".into())
                })?),
                None => 0,
            };
        let log = ObjectLog::open_with(dir, committed_end, truncated_ok)?;
        // The store is this federation's and its log opens: an upgrade may begin.
        if found < SCHEMA_VERSION {
            // Marked before the first step changes anything: from here on an older release
            // sees a newer schema and refuses, rather than misreading entries a step has
            // converted.
            meta.insert(UPGRADING_FROM, &found.to_be_bytes())?;
            meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())?;
            db.flush()?;
        }
        if found < 2 {
            // Schema 1 → 2: drop the store-side filter indexes.
            for name in DROPPED_IN_SCHEMA_2 {
                db.drop_tree(name)?;
            }
            db.flush()?;
            tracing::info!(
                "store upgrade: dropped the member, kind, direction, author and record-meta indexes"
            );
        }
        let reader = ObjectReader {
            objects: trees[OBJECTS].clone(),
            log: log.reader(),
        };
        let mut store = Store {
            dir: dir.to_path_buf(),
            db,
            trees,
            log,
            reader,
            trust: Arc::new(trust),
            quarantine: Quarantine::new(opts.quarantine()),
            declined: Declined::new(DECLINED_KEPT),
            signer_declined: Declined::new(DECLINED_KEPT),
            newer_declined: Declined::new(NEWER_DECLINED_KEPT),
            source_numbers: HashMap::new(),
            source_names: HashMap::new(),
            next_source: 0,
            roots_ever: HashSet::new(),
            historic_delegates: HashSet::new(),
            signer_keys: HashSet::new(),
            last_expiry: 0,
            seq: 0,
            counts: BTreeMap::new(),
        };
        if found < 3 {
            tracing::info!(
                objects = store.trees[OBJECTS].len(),
                "store upgrade: moving the objects' bytes from sled into the object log (once)"
            );
            store.move_objects_into_log()?;
            store.db.flush()?;
            tracing::info!(
                from = found,
                "store upgrade: object bytes moved from sled into the object log"
            );
        }
        if found == 3 {
            // Schema 3 → 4: `objects` entries written from now on also say when and from where
            // the object was taken; those before stay as they are. (Development builds between
            // two releases kept receipts in a `received` tree of their own: dropped.)
            store.db.drop_tree("received")?;
            tracing::info!(
                "store upgrade: receipt times kept for objects taken from now on (schema 4)"
            );
        }
        if found < 5 {
            // Schema 4 → 5: records indexed by signer. The upgrade is marked done only once
            // every step is: one interrupted is done again at the next start (each step is
            // safe to repeat).
            store.index_by_signer()?;
        }
        // Schema 5 → 6: nothing to convert (see `SCHEMA_VERSION`).
        if found < SCHEMA_VERSION {
            meta.remove(UPGRADING_FROM)?;
            store.db.flush()?;
            tracing::info!(from = found, to = SCHEMA_VERSION, "store upgraded");
        }
        store.load_sources()?;
        store.load_quarantine()?;
        store.load_seq()?;
        if !store.contains(&genesis_v.id())? {
            store.write(&[Arc::new(genesis_v)], &Batch::default())?;
            store.seq += 1;
        }
        store.rebuild_trust()?;
        store.load_counts()?;
        let trust = store.trust.clone();
        store.note_roots(&trust);
        Ok(store)
    }

    /// Schema 4 → 5: indexes every stored record by its signer ([`BY_SIGNER`]).
    fn index_by_signer(&mut self) -> Result<(), StoreError> {
        let limits = self.trust.limits().for_stored();
        let records = self.trees[BY_TYPE].len();
        tracing::info!(
            objects = records,
            "store upgrade: indexing records by signer (once)"
        );
        let mut batch = sled::Batch::default();
        let mut n = 0usize;
        for item in self.trees[BY_TYPE].scan_prefix([ObjectType::Record.code()]) {
            let (k, _) = item?;
            let Some(id) = k
                .get(k.len().saturating_sub(32)..)
                .and_then(ObjectId::from_slice)
            else {
                continue;
            };
            let Ok(Some(bytes)) = self.reader.try_get(&id) else {
                continue;
            };
            let Ok((signed, obj)) = accord_core::validate::decode(&bytes, &limits) else {
                continue;
            };
            let signer = signed.signatures().first().map(|(k, _)| *k);
            if let Some((_, key, _)) = index_entries(&id, &obj, signer.as_ref())
                .into_iter()
                .find(|(t, _, _)| *t == BY_SIGNER)
            {
                batch.insert(key, vec![]);
                n += 1;
                if n.is_multiple_of(4096) {
                    self.trees[BY_SIGNER].apply_batch(std::mem::take(&mut batch))?;
                }
            }
        }
        self.trees[BY_SIGNER].apply_batch(batch)?;
        Ok(())
    }

    /// The stored records `member`'s key `key` signed.
    pub fn records_signed_by(
        &self,
        member: &MemberCode,
        key: &PublicKey,
    ) -> Result<Vec<ObjectId>, StoreError> {
        self.records_signed_between(member, key, Timestamp(0), None)
    }

    /// The stored records `member`'s key `key` signed with a creation time from `from` and
    /// before `until` (no end: `None`). The index sorts a key's records by creation time, so
    /// the work is that of the records in the window.
    pub fn records_signed_between(
        &self,
        member: &MemberCode,
        key: &PublicKey,
        from: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<Vec<ObjectId>, StoreError> {
        if until.is_some_and(|t| t <= from) {
            return Ok(Vec::new());
        }
        let prefix = signer_key(member, key);
        let mut start = prefix.clone();
        start.extend_from_slice(&from.0.to_be_bytes());
        let end = match until {
            Some(t) => {
                let mut end = prefix.clone();
                end.extend_from_slice(&t.0.to_be_bytes());
                std::ops::Bound::Excluded(end)
            }
            None => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in self.trees[BY_SIGNER]
            .range((std::ops::Bound::Included(start), end))
            .take_while(|item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
        {
            let (k, _) = item?;
            out.push(
                k.get(prefix.len() + 8..)
                    .and_then(ObjectId::from_slice)
                    .ok_or_else(|| StoreError::Corrupt("by_signer key".into()))?,
            );
        }
        Ok(out)
    }

    /// Schema 2 → 3: moves the objects' bytes from sled's `objects` tree into the object log,
    /// a batch per transaction. An upgrade interrupted by a crash resumes where it stopped:
    /// entries already moved hold a locator and are skipped.
    fn move_objects_into_log(&mut self) -> Result<(), StoreError> {
        let mut after: Option<sled::IVec> = None;
        let mut moved = 0u64;
        loop {
            let range = match &after {
                Some(k) => self.trees[OBJECTS].range::<&[u8], _>((
                    std::ops::Bound::Excluded(k.as_ref()),
                    std::ops::Bound::Unbounded,
                )),
                None => self.trees[OBJECTS].iter(),
            };
            let mut chunk: Vec<(sled::IVec, sled::IVec)> = Vec::with_capacity(MIGRATE_BATCH);
            for item in range {
                chunk.push(item?);
                if chunk.len() == MIGRATE_BATCH {
                    break;
                }
            }
            let Some((last, _)) = chunk.last() else {
                break;
            };
            after = Some(last.clone());
            let inline: Vec<&(sled::IVec, sled::IVec)> = chunk
                .iter()
                .filter(|(_, v)| Locator::decode(v).is_none())
                .collect();
            let (locs, end) = self.log.write(inline.iter().map(|(_, v)| v.as_ref()))?;
            let objects = &self.trees[OBJECTS];
            let meta = &self.trees[META];
            (objects, meta).transaction(|(objects, meta)| {
                for ((k, _), loc) in inline.iter().zip(&locs) {
                    objects.insert(k.as_ref(), loc.encode().as_slice())?;
                }
                meta.insert(LOG_END, end.to_be_bytes().as_slice())?;
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })?;
            self.db.flush()?;
            self.log.advance(end);
            moved += inline.len() as u64;
        }
        if moved > 0 {
            tracing::info!(objects = moved, "moved object bytes into the object log");
        }
        Ok(())
    }

    /// Finds the last sequence number; a store written before objects were numbered gets its
    /// objects numbered once, in id order.
    fn load_seq(&mut self) -> Result<(), StoreError> {
        let floor = match self.trees[META].get(SEQ_FLOOR)? {
            Some(v) => seq_of(&v)?,
            None => 0,
        };
        if let Some((k, _)) = self.trees[BY_SEQ].last()? {
            self.seq = seq_of(&k)?.max(floor);
            return Ok(());
        }
        if floor > 0 {
            self.seq = floor;
            return Ok(());
        }
        let mut seq = 0u64;
        let mut batch = sled::Batch::default();
        for item in self.trees[OBJECTS].iter() {
            let (k, _) = item?;
            seq += 1;
            batch.insert(&seq.to_be_bytes(), k);
        }
        if seq > 0 {
            self.trees[BY_SEQ].apply_batch(batch)?;
            self.db.flush()?;
            tracing::info!(
                objects = seq,
                "numbered the stored objects in arrival sequence"
            );
        }
        self.seq = seq;
        Ok(())
    }

    /// The sequence number of the last object written: every object gets the next number when
    /// it is stored, so whatever follows a derived index's mark is what that index missed.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The ids of the objects written after sequence number `seq`, in the order they were.
    pub fn ids_since(&self, seq: u64) -> Result<Vec<ObjectId>, StoreError> {
        let from = seq.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for item in self.trees[BY_SEQ].range(from..) {
            let (_, v) = item?;
            out.push(ObjectId::from_slice(&v).ok_or_else(|| StoreError::Corrupt("by_seq".into()))?);
        }
        Ok(out)
    }

    /// At most `limit` of the objects written after sequence number `seq`, with their
    /// sequence numbers, in the order they were.
    pub fn seqs_since(&self, seq: u64, limit: usize) -> Result<Vec<(u64, ObjectId)>, StoreError> {
        let from = seq.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for item in self.trees[BY_SEQ].range(from..).take(limit) {
            let (k, v) = item?;
            let n = <[u8; 8]>::try_from(&*k)
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("by_seq key".into()))?;
            let id =
                ObjectId::from_slice(&v).ok_or_else(|| StoreError::Corrupt("by_seq".into()))?;
            out.push((n, id));
        }
        Ok(out)
    }

    /// Rebuilds the quarantine index from the `pending` trees.
    fn load_quarantine(&mut self) -> Result<(), StoreError> {
        let mut q = Quarantine::new(self.quarantine.limits);
        let mut waits: BTreeMap<ObjectId, Vec<u8>> = BTreeMap::new();
        for item in self.trees[PENDING_WAIT].iter() {
            let (k, _) = item?;
            let split = k.len().saturating_sub(32);
            if let Some(id) = ObjectId::from_slice(&k[split..]) {
                waits.insert(id, k[..split].to_vec());
            }
        }
        let limits = *self.trust.limits();
        for item in self.trees[PENDING].iter() {
            let (k, v) = item?;
            let id = ObjectId::from_slice(&k)
                .ok_or_else(|| StoreError::Corrupt("pending key".into()))?;
            let received = v
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt("pending entry".into()))?;
            let source = match self.trees[PENDING_SOURCE].get(&k)? {
                Some(s) => String::from_utf8_lossy(&s).into_owned(),
                None => UNKNOWN_SOURCE.to_string(),
            };
            let (member, created) = claimed(v.get(8..).unwrap_or_default(), &limits);
            q.insert(
                id,
                crate::quarantine::Entry {
                    received,
                    created,
                    source,
                    member,
                    wait: waits.remove(&id).unwrap_or_default(),
                },
            );
        }
        self.quarantine = q;
        Ok(())
    }

    /// Objects in the quarantine per source, largest first.
    pub fn pending_sources(&self) -> Vec<(String, usize)> {
        self.quarantine.sources()
    }

    /// Removes the quarantine entries older than the time-to-live; returns how many.
    pub fn expire_pending(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        let before = self.quarantine.len();
        self.last_expiry = 0;
        self.ingest_from(&[], now)?;
        Ok(before.saturating_sub(self.quarantine.len()))
    }

    /// Re-derives the trust view from the stored trust objects: charters by version, then
    /// delegations, node certificates and revocations, each re-validated.
    fn rebuild_trust(&mut self) -> Result<(), StoreError> {
        let now = Timestamp::MAX;
        let mut charters = Vec::new();
        // The trust view after each charter version, charters alone: a delegation or node
        // certificate stored while an earlier charter was in force (signed by a root key a
        // later amendment replaced, or by a member since removed) was valid when it was
        // accepted, and counts as it did then — so that its records read "root replaced"
        // after a restart exactly as before it, not "active".
        let mut eras: Vec<Arc<TrustView>> = Vec::new();
        // Stored revocations that do not validate under the charter in force (signed by a root
        // key since replaced): judged again below, under the earlier charters.
        let mut earlier_revocations: Vec<Vec<u8>> = Vec::new();
        for t in [
            ObjectType::Charter,
            ObjectType::Delegation,
            ObjectType::Node,
            ObjectType::Revocation,
        ] {
            for item in self.trees[BY_TYPE].scan_prefix([t.code()]) {
                let (k, _) = item?;
                let (_, id) = crate::keys::split_suffix(&k)
                    .ok_or_else(|| StoreError::Corrupt("by_type key".into()))?;
                // A trust object that cannot be read (bit rot in the log) counts for nothing,
                // loudly: refusing to open would keep `accord check --repair`, which drops it
                // for the good copy to be fetched again, from running at all.
                let bytes = match self.get_bytes(&id) {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        tracing::error!(object = %id, "a trust object the type index names is not stored: run `accord check --repair`");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(object = %id, error = %e, "a stored trust object cannot be read; it does not count: run `accord check --repair`");
                        continue;
                    }
                };
                if t == ObjectType::Charter {
                    charters.push(bytes);
                    continue;
                }
                if t == ObjectType::Delegation && !charters.is_empty() {
                    eras = self.apply_charters(std::mem::take(&mut charters), now)?;
                }
                if !self.apply_stored(&bytes, now)? {
                    match t {
                        ObjectType::Delegation | ObjectType::Node => {
                            self.apply_from_an_earlier_era(&bytes, &eras, now)?;
                        }
                        ObjectType::Revocation => earlier_revocations.push(bytes),
                        _ => {}
                    }
                }
            }
        }
        if !charters.is_empty() {
            self.apply_charters(charters, now)?;
        }
        self.apply_revocations_from_earlier_eras(earlier_revocations, &eras, now)
    }

    /// Applies stored revocations that validate under the charter of an earlier version (the
    /// latest such), though not under the current one: a revocation by a member's root key that
    /// a later amendment replaced was valid when it was accepted and counted from then on, so
    /// it counts after a restart as it did before. Each earlier era is judged with the stored
    /// delegations and node certificates that validate under it (a revocation may name one);
    /// this is done only when such a revocation exists.
    fn apply_revocations_from_earlier_eras(
        &mut self,
        mut revocations: Vec<Vec<u8>>,
        eras: &[Arc<TrustView>],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if revocations.is_empty() || eras.len() < 2 {
            return Ok(());
        }
        let mut trust_objects = Vec::new();
        for t in [ObjectType::Delegation, ObjectType::Node] {
            for item in self.trees[BY_TYPE].scan_prefix([t.code()]) {
                let (k, _) = item?;
                let (_, id) = crate::keys::split_suffix(&k)
                    .ok_or_else(|| StoreError::Corrupt("by_type key".into()))?;
                if let Some(b) = self.get_bytes(&id)? {
                    trust_objects.push(b);
                }
            }
        }
        let judge = |bytes: &[u8], view: &TrustView, known: &Store| {
            let limits = view.limits().for_stored();
            match SignedObject::decode(bytes, limits.max_bytes(), limits.scan()) {
                Ok(signed) => match validate_envelope(signed, view, known, now) {
                    Verdict::Accepted(v) => Some(v),
                    _ => None,
                },
                Err(_) => None,
            }
        };
        for era in eras.iter().rev().skip(1) {
            let mut view = TrustView::clone(era);
            for b in &trust_objects {
                if let Some(v) = judge(b, &view, self) {
                    view.apply(&v);
                }
            }
            let mut still = Vec::new();
            for b in revocations {
                match judge(&b, &view, self) {
                    Some(v) => Arc::make_mut(&mut self.trust).apply(&v),
                    None => still.push(b),
                }
            }
            revocations = still;
            if revocations.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Applies a stored delegation or node certificate that validates under the charters of an
    /// earlier version (the latest such), though not under the current one.
    fn apply_from_an_earlier_era(
        &mut self,
        bytes: &[u8],
        eras: &[Arc<TrustView>],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let limits = self.trust.limits().for_stored();
        for era in eras.iter().rev().skip(1) {
            let Ok(signed) = SignedObject::decode(bytes, limits.max_bytes(), limits.scan()) else {
                return Ok(false);
            };
            if let Verdict::Accepted(v) = validate_envelope(signed, era, self, now) {
                Arc::make_mut(&mut self.trust).apply(&v);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Applies charters in version order; returns the trust view after each version (the
    /// genesis first, the current last).
    fn apply_charters(
        &mut self,
        mut charters: Vec<Vec<u8>>,
        now: Timestamp,
    ) -> Result<Vec<Arc<TrustView>>, StoreError> {
        let mut eras = vec![self.trust.clone()];
        // Apply in version order: repeat passes until no charter is accepted any more.
        loop {
            let before = self.trust.charter_history().len();
            let mut i = 0;
            while i < charters.len() {
                if self.apply_stored(&charters[i], now).unwrap_or(false) {
                    charters.remove(i);
                    eras.push(self.trust.clone());
                } else {
                    i += 1;
                }
            }
            if self.trust.charter_history().len() == before || charters.is_empty() {
                return Ok(eras);
            }
        }
    }

    /// Re-validates a stored trust object and applies it; `true` when it counted.
    fn apply_stored(&mut self, bytes: &[u8], now: Timestamp) -> Result<bool, StoreError> {
        let limits = self.trust.limits().for_stored();
        let signed = match SignedObject::decode(bytes, limits.max_bytes(), limits.scan()) {
            Ok(s) => s,
            Err(e) => {
                // Damaged where it lies: it counts for nothing (see `rebuild_trust`).
                tracing::error!(error = %e, "a stored trust object does not decode; it does not count: run `accord check --repair`");
                return Ok(false);
            }
        };
        match validate_envelope(signed, &self.trust, self, now) {
            Verdict::Accepted(v) => {
                Arc::make_mut(&mut self.trust).apply(&v);
                Ok(true)
            }
            // A stored trust object that no longer validates (for instance a delegation by
            // a root key that a later amendment replaced) simply does not count.
            _ => Ok(false),
        }
    }

    /// The current trust view.
    pub fn trust(&self) -> &TrustView {
        &self.trust
    }

    /// The current trust view, shared (no copy): what the store's readers are handed after a
    /// group commit.
    pub fn trust_shared(&self) -> Arc<TrustView> {
        Arc::clone(&self.trust)
    }

    pub fn contains(&self, id: &ObjectId) -> Result<bool, StoreError> {
        Ok(self.trees[OBJECTS].contains_key(id.as_bytes())?)
    }

    /// The ids of stored objects whose hex form starts with `prefix` (lower or upper case
    /// hex digits), at most `max` of them: for short, git-style ids typed by people.
    pub fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<ObjectId>, StoreError> {
        let prefix = prefix.to_ascii_lowercase();
        if prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Vec::new());
        }
        // Whole bytes narrow the scan; an odd last digit is matched on the hex form.
        let whole: Vec<u8> = (0..prefix.len() / 2)
            .filter_map(|i| u8::from_str_radix(&prefix[2 * i..2 * i + 2], 16).ok())
            .collect();
        let mut out = Vec::new();
        for key in self.trees[OBJECTS].scan_prefix(&whole).keys() {
            let key = key?;
            let Some(id) = ObjectId::from_slice(&key) else {
                continue;
            };
            if id.to_string().starts_with(&prefix) {
                out.push(id);
                if out.len() >= max {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The exact signed bytes of an object.
    pub fn get_bytes(&self, id: &ObjectId) -> Result<Option<Vec<u8>>, StoreError> {
        self.reader.try_get(id)
    }

    /// An object, decoded.
    pub fn get(&self, id: &ObjectId) -> Result<Option<StoredObject>, StoreError> {
        let Some(bytes) = self.get_bytes(id)? else {
            return Ok(None);
        };
        self.decode_stored(&bytes).map(Some)
    }

    pub(crate) fn decode_stored(&self, bytes: &[u8]) -> Result<StoredObject, StoreError> {
        let limits = self.trust.limits().for_stored();
        let (signed, object) = accord_core::validate::decode(bytes, &limits)
            .map_err(|e| StoreError::Corrupt(format!("stored object does not decode: {e}")))?;
        Ok(StoredObject { signed, object })
    }

    /// An object of a type this release does not know ([`Rejection::NewerType`], refused by
    /// the precheck or by the store), remembered as the store remembers its own refusals (see
    /// [`crate::declined`]): by id when its signer has standing in the trust view at `now`
    /// ([`accord_core::TrustView::has_standing`]), so that reconciliation does not fetch it
    /// again from any peer and a peer that holds it is not read as withholding it; otherwise
    /// (a stranger's or a revoked key, which anyone can make, and which could fill the other
    /// memories and push real refusals out) in a memory of its own ([`NEWER_DECLINED_KEPT`]),
    /// for the peer that gave it alone: that peer is not asked for it again at every session.
    /// Whether it was remembered by id; other refusals are left alone.
    pub fn note_refused(
        &mut self,
        id: ObjectId,
        r: &Rejection,
        source: &str,
        now: Timestamp,
    ) -> bool {
        let Rejection::NewerType {
            created, signer, ..
        } = r
        else {
            return false;
        };
        if *created == 0 {
            return false;
        }
        if self.trust.has_standing(signer, now) {
            self.declined.insert(id, *created);
            true
        } else {
            // Only what reconciliation asks about: a peer's copies.
            if source.starts_with("peer ") {
                self.newer_declined
                    .insert(Declined::of_source(&id, source), *created);
            }
            false
        }
    }

    /// Of `ids`, those this store received and does not hold for what their bodies say, so
    /// that any copy of the same id would fare alike (see [`crate::declined`]): refused and
    /// remembered, or waiting in the quarantine for a record or trust object the body names
    /// (not for the delegation of its signer: a copy signed by another key may be the one
    /// that counts), with their creation times. Reconciliation does not fetch them again, and
    /// a peer that holds them is not read as withholding them.
    pub fn received_not_held(&self, ids: &[ObjectId]) -> Vec<(Timestamp, ObjectId)> {
        ids.iter()
            .filter_map(|id| {
                self.declined
                    .get(id)
                    .or_else(|| {
                        self.quarantine
                            .get(id)
                            .filter(|e| matches!(e.wait.first(), Some(&b'R' | &TRUST_OBJECT_WAIT)))
                            .map(|e| e.created)
                    })
                    .filter(|c| *c > 0)
                    .map(|c| (Timestamp(c), *id))
            })
            .collect()
    }

    /// [`Store::received_not_held`], and also, of the copies `source` (a peer, as the
    /// quarantine names it) gave, those refused for a signer that once had authority (see
    /// [`Store::could_be_history`]) or waiting for the delegation of a publisher only a
    /// since-replaced root key delegated, with their creation times. Not another source's copy,
    /// which may be signed by the key that counts (see [`crate::declined`]). Those for the signer
    /// are forgotten when a charter version or a delegation is accepted, since either can
    /// change them.
    pub fn received_not_held_from(
        &self,
        ids: &[ObjectId],
        source: &str,
    ) -> Vec<(Timestamp, ObjectId)> {
        let mut found = self.received_not_held(ids);
        if self.signer_declined.is_empty() && self.newer_declined.is_empty() {
            return found;
        }
        let named: HashSet<ObjectId> = found.iter().map(|(_, id)| *id).collect();
        found.extend(
            ids.iter()
                .filter(|id| !named.contains(id))
                .filter_map(|id| {
                    let key = Declined::of_source(id, source);
                    self.signer_declined
                        .get(&key)
                        .or_else(|| self.newer_declined.get(&key))
                        .filter(|c| *c > 0)
                        .map(|c| (Timestamp(c), *id))
                }),
        );
        found
    }

    /// Whether a refusal for the signer may be history an honest peer keeps (it took the copy
    /// before this node's trust view changed), not a copy any key could sign: the signer's key
    /// revoked since, or its delegation's root key replaced, or a signature by a root key the
    /// member held in an earlier charter version. (A holder of such a key can still make
    /// copies that read so: the node then fetches the object from its other peers.)
    fn could_be_history(&self, r: &Rejection) -> bool {
        match r {
            // Outside a delegation's window or scope is no history: every node judges a
            // record by the same delegations, and a key with a narrow delegation could sign
            // copies of any of its member's records that read so.
            Rejection::SignerRevoked { .. } | Rejection::DelegationRootReplaced { .. } => true,
            Rejection::NotSignedByRoot { member, signer, .. }
            | Rejection::RevocationNotAuthorised { member, signer } => {
                self.roots_ever.contains(&(member.clone(), *signer))
            }
            // A retraction is judged by the author of the copy of the record this node stored:
            // a member whose two publisher keys signed one body may have had the other copy
            // stored elsewhere, where the same retraction is its author's. A retraction by a
            // publisher the member delegated is so named for its source: the peer is not read
            // as withholding it, and it is not fetched from it again and again.
            Rejection::RetractionNotByAuthor { member, signer, .. } => {
                self.roots_ever.contains(&(member.clone(), *signer))
                    || !matches!(
                        self.trust
                            .check_publisher(member, signer, Timestamp::MAX, None),
                        accord_core::trust::PublisherCheck::Unknown
                    )
            }
            _ => false,
        }
    }

    /// Adds the root keys of every charter version `trust` knows to [`Self::roots_ever`].
    fn note_roots(&mut self, trust: &TrustView) {
        for m in &trust.charter().members {
            self.roots_ever.insert((m.code.clone(), m.root_key));
        }
        for id in trust.charter_history() {
            if let Ok(Some(StoredObject {
                object: Object::Charter(c),
                ..
            })) = self.get(id)
            {
                for m in &c.members {
                    self.roots_ever.insert((m.code.clone(), m.root_key));
                }
            }
        }
    }

    /// When this store took the object `id` and from which source ("peer <peer id>",
    /// "local", "preload", "import"): `None` for an object taken before this was kept, or not
    /// held.
    pub fn received(&self, id: &ObjectId) -> Result<Option<(Timestamp, String)>, StoreError> {
        Ok(self.trees[OBJECTS].get(id.as_bytes())?.and_then(|v| {
            let receipt = v.get(crate::log::LOCATOR_LEN..)?;
            let at = u64::from_be_bytes(receipt.get(..8)?.try_into().ok()?);
            let number = u32::from_be_bytes(receipt.get(8..12)?.try_into().ok()?);
            let source = self.source_names.get(&number)?.clone();
            Some((Timestamp(at), source))
        }))
    }

    /// Number of objects in the quarantine.
    pub fn pending_len(&self) -> usize {
        self.quarantine.len()
    }

    /// Number of stored objects of each type: counted once when the store opens, then kept
    /// up to date by every write, so that asking costs nothing at any size.
    pub fn counts_by_type(&self) -> Result<BTreeMap<ObjectType, u64>, StoreError> {
        Ok(self.counts.clone())
    }

    /// Counts the objects of each type from the type index.
    fn load_counts(&mut self) -> Result<(), StoreError> {
        let mut out = BTreeMap::new();
        for t in ObjectType::ALL {
            let mut n = 0u64;
            for k in self.trees[BY_TYPE].scan_prefix([t.code()]).keys() {
                k?;
                n += 1;
            }
            out.insert(t, n);
        }
        self.counts = out;
        Ok(())
    }

    /// Validates and stores one object (see [`Store::ingest_batch`]).
    pub fn ingest(&mut self, bytes: &[u8], now: Timestamp) -> Result<IngestOutcome, StoreError> {
        let (mut out, _) = self.ingest_batch(&[bytes], now)?;
        out.pop()
            .ok_or_else(|| StoreError::Corrupt("empty ingest result".into()))
    }

    /// The single ingest path: for each object, duplicate check by id, then validation
    /// against the trust view (updated as trust objects in the batch are accepted), then one
    /// transaction for everything accepted, flushed before returning. Pending objects whose
    /// prerequisite arrived are re-validated and returned as the second value.
    pub fn ingest_batch(
        &mut self,
        items: &[&[u8]],
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        let items: Vec<(&[u8], &str)> = items.iter().map(|b| (*b, LOCAL_SOURCE)).collect();
        self.ingest_from(&items, now)
    }

    /// [`Store::ingest_batch`] with the source of each object (a peer, the local API, an
    /// import): the quarantine bounds what one source may hold.
    pub fn ingest_from(
        &mut self,
        items: &[(&[u8], &str)],
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        let items = items
            .iter()
            .map(|(b, source)| (Incoming::Bytes(b), *source))
            .collect();
        self.ingest_incoming(items, now)
    }

    /// [`Store::ingest_from`] for objects that may already have passed
    /// [`accord_core::precheck`] on another thread: those are judged without checking their
    /// signatures again (see [`Incoming`]).
    pub fn ingest_incoming(
        &mut self,
        items: Vec<(Incoming<'_>, &str)>,
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        let snapshot = self.trust.clone();
        let result = self.ingest_inner(items, now);
        if result.is_err() {
            self.trust = snapshot;
            self.load_quarantine()?;
        }
        result
    }

    fn ingest_inner(
        &mut self,
        items: Vec<(Incoming<'_>, &str)>,
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        let mut batch = Batch::default();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut released = Vec::new();
        let mut refused = Vec::new();
        let mut signer_refused = Vec::new();
        let mut trust = self.trust.clone();
        // A clock stepped back (it ran ahead, then was corrected) starts the interval again
        // rather than leaving the waiting objects unexpired until it catches up.
        if now.0 >= self.last_expiry.saturating_add(EXPIRY_INTERVAL_MS) || now.0 < self.last_expiry
        {
            self.last_expiry = now.0;
            let expired = self.quarantine.expired(now.0);
            if !expired.is_empty() {
                tracing::info!(
                    count = expired.len(),
                    "quarantine entries expired (waited longer than the time-to-live)"
                );
            }
            for (id, wait) in expired {
                self.quarantine.remove(&id);
                batch.pending_del.insert(id, wait);
            }
        }
        for (input, source) in items {
            let limits = *trust.limits();
            let raw = match &input {
                Incoming::Bytes(b) => Some(*b),
                Incoming::Prechecked(_) => None,
            };
            let input = match input {
                Incoming::Bytes(bytes) => {
                    match SignedObject::decode(bytes, limits.max_bytes(), limits.scan()) {
                        Ok(s) => Ok(s),
                        Err(e) => {
                            outcomes.push(IngestOutcome::Rejected(None, Rejection::Decode(e)));
                            continue;
                        }
                    }
                }
                Incoming::Prechecked(p) => Err(p),
            };
            let id = match &input {
                Ok(signed) => signed.id(),
                Err(p) => p.id(),
            };
            if batch.accepted_ids.contains(&id) || self.contains(&id)? {
                outcomes.push(IngestOutcome::Duplicate(id));
                continue;
            }
            // A prechecked object comes back when it is not accepted: its bytes may be kept.
            let mut back = None;
            let verdict = {
                let known = Known {
                    store: self,
                    batch: &batch.records,
                };
                match input {
                    Ok(signed) => validate_envelope(signed, &trust, &known, now),
                    Err(p) => match p.judge(&trust, &known, now) {
                        Ok(v) => Verdict::Accepted(v),
                        Err((p, judged)) => {
                            back = Some(p);
                            match judged {
                                Ok(m) => Verdict::Pending(m),
                                Err(r) => Verdict::Rejected(r),
                            }
                        }
                    },
                }
            };
            let bytes: &[u8] = raw.or(back.as_ref().map(|p| p.bytes())).unwrap_or_default();
            match verdict {
                Verdict::Accepted(v) => {
                    let v = Arc::new(v);
                    // A refusal is remembered while what judged it stands: what it depends on
                    // (members, taxonomy, limits) changes only with the charter.
                    if v.object().object_type() == ObjectType::Charter {
                        self.declined.clear();
                        refused.clear();
                    }
                    // If it was quarantined earlier in this batch, that entry is void; so is a
                    // copy quarantined in an earlier batch (the same body signed by another
                    // key, whose delegation has not come): the store keeps the envelope it
                    // took first, and the waiting copy must never be released over it.
                    batch.pending_put.remove(&id);
                    if let Some(e) = self.quarantine.get(&id) {
                        batch.pending_del.insert(id, e.wait.clone());
                    }
                    let trust_object = v.object().object_type().is_trust();
                    batch.accept(v.clone(), &mut trust, now.0, source);
                    outcomes.push(IngestOutcome::Accepted(v));
                    // A revocation that waited for this trust object (or for the standing a
                    // delegation gives its key) takes effect before the rest of the batch is
                    // judged; the objects waiting with it are released with it.
                    if trust_object {
                        released.extend(self.release_pending(&mut batch, &mut trust, now, true)?);
                    }
                }
                Verdict::Pending(m) => {
                    // A record of a publisher only a since-replaced root key delegated waits for
                    // a delegation this node will not take: remembered for the source that gave
                    // this copy (whether or not the quarantine keeps it).
                    if let Missing::Delegation { member, publisher } = &m
                        && self
                            .historic_delegates
                            .contains(&(member.clone(), *publisher))
                    {
                        let created = claimed(bytes, &limits).1;
                        if created > 0 {
                            signer_refused.push((
                                Declined::of_source(&id, source),
                                created,
                                Some(*publisher),
                            ));
                        }
                    }
                    if !self.quarantine.contains(&id) {
                        let (member, created) = claimed(bytes, &limits);
                        match self.quarantine.make_room(source, member.as_deref()) {
                            Room::Refused => {
                                outcomes.push(IngestOutcome::QuarantineFull(id, m));
                                continue;
                            }
                            Room::Made(evicted) => {
                                for (old, wait) in evicted {
                                    tracing::debug!(object = %old, "quarantine entry evicted to make room for a lighter source");
                                    if batch.pending_put.remove(&old).is_none() {
                                        batch.pending_del.insert(old, wait);
                                    }
                                }
                            }
                        }
                        let mut value = now.0.to_be_bytes().to_vec();
                        value.extend_from_slice(bytes);
                        let wait = wait_key(&m);
                        batch.pending_put.insert(id, (value, wait.clone()));
                        batch.pending_new.push(id);
                        self.quarantine.insert(
                            id,
                            crate::quarantine::Entry {
                                received: now.0,
                                created,
                                source: source.to_string(),
                                member,
                                wait,
                            },
                        );
                    }
                    outcomes.push(IngestOutcome::Pending(id, m));
                }
                Verdict::Rejected(r) => {
                    // A type this release does not know, signed by a key with standing: every
                    // copy of the body is one (see `Store::note_refused`).
                    let remembered = Declined::remembers(&r)
                        || matches!(&r, Rejection::NewerType { signer, .. } if trust.has_standing(signer, now));
                    // One of a key without standing: remembered for the source that gave it,
                    // as refusals for the signer are (see `Store::note_refused`).
                    let historic = !remembered && self.could_be_history(&r);
                    if !remembered && matches!(r, Rejection::NewerType { .. }) {
                        self.note_refused(id, &r, source, now);
                    }
                    if remembered || historic {
                        let created = match (&r, &back) {
                            (Rejection::NewerType { created, .. }, _) => *created,
                            (_, Some(p)) => p.object().created().0,
                            (_, None) => claimed(bytes, &limits).1,
                        };
                        // 0: the body did not decode under these limits (no time to order by).
                        if created > 0 && remembered {
                            refused.push((id, created));
                        } else if created > 0 {
                            // The publisher whose next delegation could change this verdict.
                            let key = match &r {
                                Rejection::SignerRevoked { key, .. } => Some(*key),
                                Rejection::DelegationRootReplaced { .. } => {
                                    SignedObject::decode(bytes, limits.max_bytes(), limits.scan())
                                        .ok()
                                        .and_then(|s| s.signatures().first().map(|(k, _)| *k))
                                }
                                _ => None,
                            };
                            signer_refused.push((Declined::of_source(&id, source), created, key));
                        }
                    }
                    // A delegation a since-replaced root key signed: its publisher's records
                    // will wait for a delegation, and may be history too.
                    if historic
                        && matches!(
                            r,
                            Rejection::NotSignedByRoot {
                                object_type: ObjectType::Delegation,
                                ..
                            }
                        )
                        && let Some(Object::Delegation(d)) = match &back {
                            Some(p) => Some(p.object().clone()),
                            None => SignedObject::decode(bytes, limits.max_bytes(), limits.scan())
                                .ok()
                                .and_then(|s| Object::decode_body(s.body(), &limits).ok()),
                        }
                        && self.historic_delegates.len() < DECLINED_KEPT
                    {
                        self.historic_delegates
                            .insert((d.member.clone(), d.publisher));
                    }
                    outcomes.push(IngestOutcome::Rejected(Some(id), r));
                }
            }
        }
        released.extend(self.release_pending(&mut batch, &mut trust, now, false)?);
        self.write(&batch.accepted, &batch)?;
        self.seq += batch.accepted.len() as u64;
        for v in &batch.accepted {
            *self.counts.entry(v.object().object_type()).or_default() += 1;
        }
        // The index follows what was written: entries released, rejected or accepted in this
        // batch go, and entries now waiting for something else change their wait key.
        for id in batch.pending_del.keys() {
            if !batch.pending_put.contains_key(id) {
                self.quarantine.remove(id);
            }
        }
        for id in &batch.pending_new {
            if !batch.pending_put.contains_key(id) {
                self.quarantine.remove(id);
            }
        }
        for (id, (_, wait)) in &batch.pending_put {
            if let Some(e) = self.quarantine.get(id)
                && e.wait != *wait
            {
                let mut e = e.clone();
                e.wait = wait.clone();
                self.quarantine.insert(*id, e);
            }
        }
        for (id, created) in refused {
            self.declined.insert(id, created);
        }
        if batch
            .accepted
            .iter()
            .any(|v| v.object().object_type() == ObjectType::Charter)
        {
            self.note_roots(&trust);
        }
        // A charter version, or a delegation of a publisher whose records they name (judged in
        // this batch or released from the quarantine by it), can change a refusal for the
        // signer: all are forgotten, this batch's too (forgetting costs one more fetch, never a
        // wrong verdict).
        for (_, _, key) in &signer_refused {
            if let Some(k) = key
                && self.signer_keys.len() < DECLINED_KEPT
            {
                self.signer_keys.insert(*k);
            }
        }
        let full = self.signer_keys.len() >= DECLINED_KEPT;
        let trust_changed = batch.accepted.iter().any(|v| match v.object() {
            Object::Charter(_) => true,
            Object::Delegation(d) => full || self.signer_keys.contains(&d.publisher),
            _ => false,
        });
        if trust_changed {
            self.signer_declined.clear();
            self.signer_keys.clear();
        } else {
            for (id, created, _) in signer_refused {
                self.signer_declined.insert(id, created);
            }
        }
        self.trust = trust;
        Ok((outcomes, released))
    }

    /// Re-validates quarantined objects waiting for what this batch accepted, under the wait
    /// keys that `pick` selects.
    fn release_pending(
        &self,
        batch: &mut Batch,
        trust: &mut Arc<TrustView>,
        now: Timestamp,
        early: bool,
    ) -> Result<Vec<Arc<Verified<Object>>>, StoreError> {
        let mut released = Vec::new();
        // Delegation waits judged early for their revocations alone: the rest waits for the
        // end of the batch (a record that comes again in the batch is then accepted as
        // itself, not released and then a duplicate).
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let pick = |k: &Vec<u8>, done: &BTreeSet<Vec<u8>>| {
            !early
                || k.first() == Some(&TRUST_OBJECT_WAIT)
                || (k.first() == Some(&DELEGATION_WAIT) && !done.contains(k))
        };
        while let Some(pos) = batch
            .unlocked
            .iter()
            .rposition(|k| pick(k, &batch.early_released))
        {
            let key = batch.unlocked.remove(pos);
            let revocations_only = early && key.first() == Some(&DELEGATION_WAIT);
            if revocations_only {
                batch.early_released.insert(key.clone());
                kept.push(key.clone());
            }
            // Waiting entries: in the store, and those added earlier in this batch.
            let mut waiting: Vec<(ObjectId, Vec<u8>)> = Vec::new();
            for item in self.trees[PENDING_WAIT].scan_prefix(&key) {
                let (k, _) = item?;
                let id = ObjectId::from_slice(&k[key.len()..])
                    .ok_or_else(|| StoreError::Corrupt("pending_wait key".into()))?;
                if batch.pending_del.contains_key(&id) {
                    continue;
                }
                if let Some(v) = self.trees[PENDING].get(id.as_bytes())? {
                    waiting.push((id, v.get(8..).unwrap_or_default().to_vec()));
                }
            }
            for (id, (v, wk)) in &batch.pending_put {
                if *wk == key {
                    waiting.push((*id, v.get(8..).unwrap_or_default().to_vec()));
                }
            }
            // (At the end of a batch, a key whose revocations went early holds none.)
            if key.first() == Some(&DELEGATION_WAIT)
                && (revocations_only || !batch.early_released.contains(&key))
            {
                // A key's self-revocation waits for its standing under the same key as the
                // key's records: it is judged first, so that a record signed after the time it
                // names is refused whatever the order they came in.
                let limits = *trust.limits();
                let is_revocation = |bytes: &[u8]| {
                    SignedObject::decode(bytes, limits.max_bytes(), limits.scan())
                        .ok()
                        .and_then(|s| Object::decode_body(s.body(), &limits).ok())
                        .is_some_and(|o| matches!(o, Object::Revocation(_)))
                };
                let (mut first, rest): (Vec<_>, Vec<_>) =
                    waiting.into_iter().partition(|(_, b)| is_revocation(b));
                if !revocations_only {
                    first.extend(rest);
                }
                waiting = first;
            }
            for (id, bytes) in waiting {
                if batch.accepted_ids.contains(&id) || self.contains(&id)? {
                    // Accepted directly in this batch (it came again with its prerequisite),
                    // or stored already (another copy of the same body): its old quarantine
                    // entry goes, never accepted a second time.
                    if batch.pending_put.remove(&id).is_none() {
                        batch.pending_del.insert(id, key.clone());
                    }
                    continue;
                }
                let limits = *trust.limits();
                let verdict = match SignedObject::decode(&bytes, limits.max_bytes(), limits.scan())
                {
                    Ok(signed) => {
                        let known = Known {
                            store: self,
                            batch: &batch.records,
                        };
                        validate_envelope(signed, trust, &known, now)
                    }
                    Err(e) => Verdict::Rejected(Rejection::Decode(e)),
                };
                match verdict {
                    Verdict::Pending(m) if wait_key(&m) == key => continue,
                    Verdict::Pending(m) => {
                        // Now waiting for something else: move it under its new key.
                        let value = match batch.pending_put.remove(&id) {
                            Some((v, _)) => v,
                            None => {
                                batch.pending_del.insert(id, key.clone());
                                // Still received when it entered the quarantine (its time to
                                // live, and the record's receipt once accepted, count from it).
                                let received =
                                    self.quarantine.get(&id).map_or(now.0, |e| e.received);
                                let mut v = received.to_be_bytes().to_vec();
                                v.extend_from_slice(&bytes);
                                v
                            }
                        };
                        batch.pending_put.insert(id, (value, wait_key(&m)));
                    }
                    Verdict::Accepted(v) => {
                        let v = Arc::new(v);
                        if batch.pending_put.remove(&id).is_none() {
                            batch.pending_del.insert(id, key.clone());
                        }
                        released.push(v.clone());
                        // Received when it entered the quarantine, from whoever gave it.
                        let (at, from) = self
                            .quarantine
                            .get(&id)
                            .map_or((now.0, UNKNOWN_SOURCE), |e| (e.received, e.source.as_str()));
                        let from = from.to_string();
                        batch.accept(v, trust, at, &from);
                    }
                    Verdict::Rejected(r) => {
                        tracing::info!(object = %id, reason = %r, "pending object rejected on re-validation");
                        if batch.pending_put.remove(&id).is_none() {
                            batch.pending_del.insert(id, key.clone());
                        }
                    }
                }
            }
        }
        batch.unlocked.extend(kept);
        Ok(released)
    }

    /// Writes accepted objects and quarantine changes in one transaction, then flushes.
    /// Objects get the sequence numbers after [`Store::seq`], in order; the caller advances
    /// it once the write succeeded.
    fn write(
        &mut self,
        accepted: &[Arc<Verified<Object>>],
        batch: &Batch,
    ) -> Result<(), StoreError> {
        let mut entries: Vec<Entry> = Vec::new();
        // Sources this write numbers for the first time (kept once the write succeeded).
        let mut new_sources: Vec<String> = Vec::new();
        // The bytes first, synced; sled then records where they are and the log's new end.
        let (locs, log_end) = self.log.write(accepted.iter().map(|v| v.bytes()))?;
        if !accepted.is_empty() {
            entries.push((META, LOG_END.to_vec(), log_end.to_be_bytes().to_vec()));
        }
        for ((n, v), loc) in accepted.iter().enumerate().zip(&locs) {
            let seq = self.seq + 1 + n as u64;
            entries.push((
                BY_SEQ,
                seq.to_be_bytes().to_vec(),
                v.id().as_bytes().to_vec(),
            ));
            let mut value = loc.encode().to_vec();
            if let Some((at, source)) = batch.received.get(n) {
                let number = match self.source_numbers.get(source.as_str()) {
                    Some(k) => *k,
                    None => match new_sources.iter().position(|s| s == source) {
                        Some(i) => self.next_source.saturating_add(i as u32),
                        None => {
                            let k = self.next_source.saturating_add(new_sources.len() as u32);
                            entries.push((
                                SOURCES,
                                k.to_be_bytes().to_vec(),
                                source.as_bytes().to_vec(),
                            ));
                            new_sources.push(source.clone());
                            k
                        }
                    },
                };
                value.extend_from_slice(&at.to_be_bytes());
                value.extend_from_slice(&number.to_be_bytes());
            }
            entries.push((OBJECTS, v.id().as_bytes().to_vec(), value));
            entries.extend(index_entries(&v.id(), v.object(), Some(&v.signer())));
        }
        let mut removals: Vec<(usize, Vec<u8>)> = Vec::new();
        for (id, wk) in &batch.pending_del {
            removals.push((PENDING, id.as_bytes().to_vec()));
            removals.push((PENDING_SOURCE, id.as_bytes().to_vec()));
            let mut k = wk.clone();
            k.extend_from_slice(id.as_bytes());
            removals.push((PENDING_WAIT, k));
        }
        for (id, (value, wk)) in &batch.pending_put {
            entries.push((PENDING, id.as_bytes().to_vec(), value.clone()));
            let source = self
                .quarantine
                .get(id)
                .map_or(UNKNOWN_SOURCE, |e| e.source.as_str());
            entries.push((
                PENDING_SOURCE,
                id.as_bytes().to_vec(),
                source.as_bytes().to_vec(),
            ));
            let mut k = wk.clone();
            k.extend_from_slice(id.as_bytes());
            entries.push((PENDING_WAIT, k, vec![]));
        }
        if entries.is_empty() && removals.is_empty() {
            return Ok(());
        }
        let trees: &[Tree] = &self.trees;
        trees.transaction(|tx: &Vec<TransactionalTree>| {
            for (t, k) in &removals {
                tx[*t].remove(k.as_slice())?;
            }
            for (t, k, v) in &entries {
                tx[*t].insert(k.as_slice(), v.as_slice())?;
            }
            Ok::<(), ConflictableTransactionError<StoreError>>(())
        })?;
        self.db.flush()?;
        self.log.advance(log_end);
        for source in new_sources {
            let k = self.next_source;
            self.next_source = k.saturating_add(1);
            self.source_numbers.insert(source.clone(), k);
            self.source_names.insert(k, source);
        }
        Ok(())
    }

    /// Reads the numbered sources (see [`SOURCES`]). A damaged entry is skipped with a warning
    /// (a receipt naming it then shows none): receipts inform, they decide nothing, and must not
    /// keep the node or `accord check` from starting.
    fn load_sources(&mut self) -> Result<(), StoreError> {
        for item in self.trees[SOURCES].iter() {
            let (k, v) = item?;
            let Ok(number) = <[u8; 4]>::try_from(k.as_ref()).map(u32::from_be_bytes) else {
                tracing::warn!("store: a damaged entry of the sources tree skipped");
                continue;
            };
            let name = String::from_utf8_lossy(&v).into_owned();
            self.source_numbers.insert(name.clone(), number);
            self.source_names.insert(number, name);
            self.next_source = self.next_source.max(number.saturating_add(1));
        }
        Ok(())
    }

    /// Writes every object as a CBOR sequence of envelopes (RFC 8742): charters by version,
    /// delegations, node certificates, records, retractions, and revocations last, each in
    /// creation order. Revocations come last so that an import re-validates every record
    /// against the trust it was accepted under, and a record whose signer was revoked later
    /// comes back with the same derived status. Returns the number of objects written.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        let reader = self.object_reader();
        let mut n = 0;
        for id in self.export_ids()? {
            out.write_all(&reader.get(&id)?)?;
            n += 1;
        }
        out.flush()?;
        Ok(n)
    }

    /// The ids of every object in export order (see [`Store::export`]): taken at once, so
    /// that an export streamed afterwards through an [`ObjectReader`] is the store as it was.
    pub fn export_ids(&self) -> Result<Vec<ObjectId>, StoreError> {
        self.export_ids_of(&EXPORT_ORDER)
    }

    /// [`Store::export_ids`] restricted to the objects of `types` (still in export order).
    pub fn export_ids_of(&self, types: &[ObjectType]) -> Result<Vec<ObjectId>, StoreError> {
        let mut ids = Vec::new();
        for t in EXPORT_ORDER.into_iter().filter(|t| types.contains(t)) {
            let mut items: Vec<(u64, ObjectId)> = Vec::new();
            for item in self.trees[BY_TYPE].scan_prefix([t.code()]) {
                let (k, _) = item?;
                let (_, id) = crate::keys::split_suffix(&k)
                    .ok_or_else(|| StoreError::Corrupt("by_type key".into()))?;
                items.push((0, id));
            }
            if t == ObjectType::Charter {
                for it in &mut items {
                    if let Some(StoredObject {
                        object: Object::Charter(c),
                        ..
                    }) = self.get(&it.1)?
                    {
                        it.0 = c.version;
                    }
                }
                items.sort();
            }
            ids.extend(items.into_iter().map(|(_, id)| id));
        }
        Ok(ids)
    }

    /// A handle that reads stored objects from any thread (objects are never changed once
    /// written), for streaming an export without holding the store.
    pub fn object_reader(&self) -> ObjectReader {
        self.reader.clone()
    }

    /// Reads a CBOR sequence of envelopes and ingests them in batches, through validation.
    /// The input is read twice, an item at a time: first its framing is checked whole (a
    /// damaged file is refused before anything of it is taken), then it is ingested; memory
    /// is one batch, whatever the file's size.
    pub fn import<R: Read + Seek>(
        &mut self,
        input: &mut R,
        now: Timestamp,
    ) -> Result<ImportReport, StoreError> {
        // Framing only: each object's own limits are those of the charter in force when it
        // is judged, which an amendment among the objects may raise.
        let start = input.stream_position()?;
        let mut framing =
            cbor::SequenceReader::new(&mut *input, cbor::MAX_SEQUENCE_ITEM, cbor::SEQUENCE_SCAN);
        while framing
            .next_item()
            .map_err(|e| StoreError::Import(e.to_string()))?
            .is_some()
        {}
        drop(framing);
        input.seek(std::io::SeekFrom::Start(start))?;
        self.import_framed(input, now)
    }

    /// [`Store::import`] of a sequence whose framing the caller has already checked whole (as
    /// `accord restore` does before it writes anything): read once, a batch at a time. A
    /// damaged item still stops it, after the batches before it.
    pub fn import_framed(
        &mut self,
        input: &mut dyn Read,
        now: Timestamp,
    ) -> Result<ImportReport, StoreError> {
        let mut items =
            cbor::SequenceReader::new(&mut *input, cbor::MAX_SEQUENCE_ITEM, cbor::SEQUENCE_SCAN);
        let mut report = ImportReport::default();
        loop {
            let mut batch = Vec::with_capacity(IMPORT_BATCH);
            while batch.len() < IMPORT_BATCH {
                match items
                    .next_item()
                    .map_err(|e| StoreError::Import(e.to_string()))?
                {
                    Some(item) => batch.push(item),
                    None => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            let chunk: Vec<(&[u8], &str)> = batch
                .iter()
                .map(|b| (b.as_slice(), IMPORT_SOURCE))
                .collect();
            let (outcomes, released) = self.ingest_from(&chunk, now)?;
            for o in outcomes {
                match o {
                    IngestOutcome::Accepted(_) => report.accepted += 1,
                    IngestOutcome::Duplicate(_) => report.duplicate += 1,
                    IngestOutcome::Pending(..) | IngestOutcome::QuarantineFull(..) => {
                        report.pending += 1
                    }
                    IngestOutcome::Rejected(..) => report.rejected += 1,
                }
            }
            report.released += released.len();
        }
        report.pending = report.pending.saturating_sub(report.released);
        Ok(report)
    }

    /// Every stored object's `(created, id)`, in that order (for the reconciliation index).
    pub fn time_ids(&self) -> Result<Vec<(Timestamp, ObjectId)>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees[BY_TIME].iter() {
            let (k, _) = item?;
            out.push(
                crate::keys::split_suffix(&k)
                    .ok_or_else(|| StoreError::Corrupt("by_time key".into()))?,
            );
        }
        Ok(out)
    }

    /// The size of the store on disk, in bytes: sled's files and the object log.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()? + self.log.end())
    }
}

/// The trees that hold index entries derived from the objects.
const INDEX_TREES: [usize; 5] = [BY_TIME, BY_TYPE, SUPERSEDES, RETRACTS, BY_SIGNER];

/// What [`Store::check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub objects: u64,
    /// Objects whose bytes do not decode, whose id does not match, or whose signatures fail.
    pub bad_objects: Vec<(ObjectId, String)>,
    /// Index entries an object should have but that are missing.
    pub missing_entries: u64,
    /// Index entries that name no object, or disagree with it.
    pub stray_entries: u64,
    /// Bytes of the object log that no object accounts for (the objects' entries should
    /// cover the log exactly, with neither gaps nor overlaps).
    pub unaccounted_log_bytes: u64,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.bad_objects.is_empty()
            && self.missing_entries == 0
            && self.stray_entries == 0
            && self.unaccounted_log_bytes == 0
    }
}

impl Store {
    /// Re-verifies every stored object (decoding, id, signatures) and checks every index entry
    /// against the objects, both ways.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        /// Objects per unit of work handed to a checking thread.
        const CHUNK: usize = 256;
        type Part = (CheckReport, Vec<(usize, Vec<u8>)>);
        let limits = self.trust.limits().for_stored();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(sled::IVec, sled::IVec)>>(threads * 2);
        let rx = std::sync::Mutex::new(rx);
        let mut logged = 0u64;
        // Reading, decoding, hashing and signature checks run on every core; this thread
        // walks the index.
        let check_one = |k: &[u8], entry: &[u8], part: &mut Part| -> Result<(), StoreError> {
            let (report, expected) = part;
            report.objects += 1;
            let Some(id) = ObjectId::from_slice(k) else {
                report
                    .bad_objects
                    .push((ObjectId([0; 32]), "object key is not 32 bytes".into()));
                return Ok(());
            };
            let bytes = match self.reader.bytes_of(&id, entry) {
                Ok(b) => b,
                Err(e) => {
                    report.bad_objects.push((id, e.to_string()));
                    return Ok(());
                }
            };
            let (signed, obj) = match accord_core::validate::decode(&bytes, &limits) {
                Ok(x) => x,
                Err(e) => {
                    report
                        .bad_objects
                        .push((id, format!("does not decode: {e}")));
                    return Ok(());
                }
            };
            if signed.id() != id {
                report.bad_objects.push((
                    id,
                    format!("stored under {id} but its body hashes to {}", signed.id()),
                ));
                return Ok(());
            }
            if let Some(k) = signed.bad_signers().first() {
                report
                    .bad_objects
                    .push((id, format!("invalid signature by {k}")));
                return Ok(());
            }
            let signer = signed.signatures().first().map(|(k, _)| *k);
            for (tree, key, value) in index_entries(&id, &obj, signer.as_ref()) {
                match self.trees[tree].get(&key)? {
                    Some(v) if v.as_ref() == value.as_slice() => {}
                    _ => report.missing_entries += 1,
                }
                expected.push((tree, key));
            }
            Ok(())
        };
        let parts: Vec<Result<Part, StoreError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| -> Result<Part, StoreError> {
                        let mut part: Part = (CheckReport::default(), Vec::new());
                        let mut failed = None;
                        loop {
                            let chunk = match rx.lock() {
                                Ok(r) => r.recv(),
                                Err(_) => break,
                            };
                            let Ok(chunk) = chunk else { break };
                            // After a read error, keep taking chunks (so that the reader
                            // never waits on a full queue) but check nothing more.
                            for (k, bytes) in &chunk {
                                if failed.is_none()
                                    && let Err(e) = check_one(k, bytes, &mut part)
                                {
                                    failed = Some(e);
                                }
                            }
                        }
                        match failed {
                            Some(e) => Err(e),
                            None => Ok(part),
                        }
                    })
                })
                .collect();
            let mut read: Result<(), StoreError> = Ok(());
            let mut chunk = Vec::with_capacity(CHUNK);
            for item in self.trees[OBJECTS].iter() {
                match item {
                    Ok(kv) => {
                        logged += Locator::decode(&kv.1).map_or(0, |l| l.span());
                        chunk.push(kv)
                    }
                    Err(e) => {
                        read = Err(e.into());
                        break;
                    }
                }
                if chunk.len() == CHUNK
                    && tx
                        .send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                        .is_err()
                {
                    break;
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            drop(tx);
            let mut out: Vec<Result<Part, StoreError>> = workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(StoreError::Corrupt("a checking thread panicked".into()))
                    })
                })
                .collect();
            if let Err(e) = read {
                out.push(Err(e));
            }
            out
        });
        let mut report = CheckReport::default();
        let mut expected: BTreeSet<(usize, Vec<u8>)> = BTreeSet::new();
        for part in parts {
            let (r, keys) = part?;
            report.objects += r.objects;
            report.bad_objects.extend(r.bad_objects);
            report.missing_entries += r.missing_entries;
            expected.extend(keys);
        }
        report.bad_objects.sort_by_key(|b| b.0);
        report.unaccounted_log_bytes = self
            .log
            .end()
            .abs_diff(logged + self.abandoned_log_bytes()?);
        for tree in INDEX_TREES {
            for item in self.trees[tree].iter() {
                let (k, _) = item?;
                if !expected.contains(&(tree, k.to_vec())) {
                    report.stray_entries += 1;
                }
            }
        }
        Ok(report)
    }

    /// Rebuilds every index from the objects (in one transaction per tree pass), then flushes.
    /// Objects that do not verify are left out of the indexes and reported.
    pub fn repair_indexes(&mut self) -> Result<CheckReport, StoreError> {
        let report = self.check()?;
        let bad: BTreeSet<ObjectId> = report.bad_objects.iter().map(|(id, _)| *id).collect();
        // Marked unfinished before anything is cleared, unmarked once all is durable.
        let marker = self.dir.join(REPAIR_UNFINISHED);
        {
            let f = std::fs::File::create(&marker)?;
            f.sync_all()?;
            sync_dir(&self.dir)?;
        }
        // A damaged object is dropped, entry and number: kept, it would make the good copy a
        // peer offers a duplicate for ever. Its bytes stay in the log, counted as given up.
        // Keys that are no object id (reported as the zero id) go with them. One transaction:
        // a repair cut between the removals and the count would lose or double the count.
        // The log's end as it is: lower than the store wrote when its tail was lost.
        let end = self.log.end();
        let mut dropped: Vec<sled::IVec> = Vec::new();
        for item in self.trees[OBJECTS].iter() {
            let (k, _) = item?;
            if ObjectId::from_slice(&k).is_none_or(|id| bad.contains(&id)) {
                dropped.push(k);
            }
        }
        if !dropped.is_empty() {
            let dropped_ids: BTreeSet<Vec<u8>> = dropped.iter().map(|k| k.to_vec()).collect();
            let mut numbers = Vec::new();
            for item in self.trees[BY_SEQ].iter() {
                let (k, v) = item?;
                if dropped_ids.contains(v.as_ref()) {
                    numbers.push(k);
                }
            }
            let floor = self.seq;
            let (objects, by_seq, meta) =
                (&self.trees[OBJECTS], &self.trees[BY_SEQ], &self.trees[META]);
            (objects, by_seq, meta).transaction(|(objects, by_seq, meta)| {
                for k in &dropped {
                    objects.remove(k)?;
                }
                for k in &numbers {
                    by_seq.remove(k)?;
                }
                meta.insert(SEQ_FLOOR, floor.to_be_bytes().as_slice())?;
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })?;
        }
        for tree in INDEX_TREES {
            self.trees[tree].clear()?;
        }
        let limits = self.trust.limits().for_stored();
        for item in self.trees[OBJECTS].iter() {
            let (k, entry) = item?;
            let Some(id) = ObjectId::from_slice(&k) else {
                continue;
            };
            if bad.contains(&id) {
                continue;
            }
            let Ok(bytes) = self.reader.bytes_of(&id, &entry) else {
                continue;
            };
            let Ok((signed, obj)) = accord_core::validate::decode(&bytes, &limits) else {
                continue;
            };
            let signer = signed.signatures().first().map(|(k, _)| *k);
            for (tree, key, value) in index_entries(&id, &obj, signer.as_ref()) {
                self.trees[tree].insert(key, value)?;
            }
        }
        // Every byte of the log is a kept object's or given up: given up is what the kept
        // ones do not take (derived, not added to: a lost tail may have held bytes an earlier
        // repair gave up, and a repair cut short and run again counts nothing twice).
        let mut kept = 0u64;
        for item in self.trees[OBJECTS].iter() {
            let (_, entry) = item?;
            kept += Locator::decode(&entry).map_or(0, |l| l.span());
        }
        let abandoned = end.saturating_sub(kept);
        self.trees[META].insert(LOG_ABANDONED, abandoned.to_be_bytes().as_slice())?;
        // The log's end as it is (lower than the store wrote when its tail was lost): the
        // next write goes there.
        self.trees[META].insert(LOG_END, end.to_be_bytes().as_slice())?;
        self.db.flush()?;
        self.load_counts()?;
        std::fs::remove_file(&marker)?;
        sync_dir(&self.dir)?;
        Ok(report)
    }

    /// Log bytes given up by index repairs ([`LOG_ABANDONED`]).
    fn abandoned_log_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.trees[META]
            .get(LOG_ABANDONED)?
            .and_then(|v| Some(u64::from_be_bytes(v.as_ref().try_into().ok()?)))
            .unwrap_or(0))
    }

    /// Test and tooling helper: removes one index entry of `id` (to exercise `check`).
    #[doc(hidden)]
    pub fn damage_index_for_tests(&mut self, id: &ObjectId) -> Result<bool, StoreError> {
        let Some(stored) = self.get(id)? else {
            return Ok(false);
        };
        let signer = stored.signed.signatures().first().map(|(k, _)| *k);
        let (tree, key, _) = index_entries(id, &stored.object, signer.as_ref()).remove(0);
        self.trees[tree].remove(key)?;
        self.db.flush()?;
        Ok(true)
    }
}
