//! The store itself: opening, trust rebuild, group-committed ingest, pending quarantine,
//! export and import.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;

use accord_core::cbor;
use accord_core::validate::KnownRecords;
use accord_core::{
    MemberCode, Missing, Object, ObjectId, ObjectType, PublicKey, Rejection, SignedObject,
    Timestamp, TrustView, Verdict, Verified, validate_envelope,
};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use crate::error::StoreError;
use crate::keys::{pair, prefixed, text_prefix, time_id};

/// The on-disk format version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;
/// Default sled page cache: 256 MiB (sled's own default is 1 GiB).
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;
/// Default capacity of the pending quarantine, in objects.
pub const DEFAULT_MAX_PENDING: usize = 10_000;
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

/// Opens the sled database. sled releases its file lock from a background thread shortly
/// after the last handle is dropped, so a store closed and reopened at once (a restart in
/// the same process) may find it still held: retry for a bounded time before failing.
fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(25);
    const LOCK_ATTEMPTS: u32 = 200; // 5 s
    let mut attempt = 0;
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
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
    pub max_pending: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_pending: DEFAULT_MAX_PENDING,
        }
    }
}

/// What happened to one submitted object.
#[allow(clippy::large_enum_variant)] // short-lived, matched right away
#[derive(Debug, Clone)]
pub enum IngestOutcome {
    /// Validated and durably stored.
    Accepted(Verified<Object>),
    /// Already stored (detected by id before any signature work).
    Duplicate(ObjectId),
    /// Valid so far but waiting for a prerequisite; kept in the quarantine.
    Pending(ObjectId, Missing),
    /// Refused. The id is known when the envelope could be decoded.
    Rejected(Option<ObjectId>, Rejection),
    /// Waiting for a prerequisite, but the quarantine is full: not kept.
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
const BY_MEMBER: usize = 3;
const BY_KIND: usize = 4;
const BY_DIRECTION: usize = 5;
const BY_AUTHOR: usize = 6;
const SUPERSEDES: usize = 7;
const RETRACTS: usize = 8;
const RECORD_META: usize = 9;
const PENDING: usize = 10;
const PENDING_WAIT: usize = 11;
const TREE_NAMES: [&str; 12] = [
    "objects",
    "by_time",
    "by_type",
    "by_member",
    "by_kind",
    "by_direction",
    "by_author",
    "supersedes",
    "retracts",
    "record_meta",
    "pending",
    "pending_wait",
];
pub(crate) const RETRACTS_TREE: usize = RETRACTS;
pub(crate) const SUPERSEDES_TREE: usize = SUPERSEDES;
pub(crate) const BY_MEMBER_TREE: usize = BY_MEMBER;
pub(crate) const BY_KIND_TREE: usize = BY_KIND;
pub(crate) const BY_DIRECTION_TREE: usize = BY_DIRECTION;
pub(crate) const BY_AUTHOR_TREE: usize = BY_AUTHOR;
pub(crate) const BY_TYPE_TREE: usize = BY_TYPE;
pub(crate) const BY_TIME_TREE: usize = BY_TIME;

/// Accord's storage facade. See the crate documentation.
#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    pub(crate) trees: Vec<Tree>,
    trust: TrustView,
    max_pending: usize,
    pending_count: usize,
}

/// One key/value to write into one tree.
type Entry = (usize, Vec<u8>, Vec<u8>);

/// Every index entry of an object (the same function serves writing and checking).
pub(crate) fn index_entries(id: &ObjectId, obj: &Object, author: &PublicKey) -> Vec<Entry> {
    let created = obj.created();
    let t = obj.object_type();
    let mut v: Vec<Entry> = vec![
        (BY_TIME, time_id(created, id).to_vec(), vec![t.code()]),
        (BY_TYPE, prefixed(&[t.code()], created, id), vec![]),
        (BY_AUTHOR, prefixed(author.as_bytes(), created, id), vec![]),
    ];
    if let Some(m) = obj.member() {
        v.push((
            BY_MEMBER,
            prefixed(m.as_str().as_bytes(), created, id),
            vec![],
        ));
    }
    match obj {
        Object::Record(r) => {
            v.push((
                BY_KIND,
                prefixed(&text_prefix(&r.kind), created, id),
                vec![],
            ));
            for d in &r.directions {
                v.push((BY_DIRECTION, prefixed(&text_prefix(d), created, id), vec![]));
            }
            if let Some(prev) = &r.supersedes {
                v.push((SUPERSEDES, pair(prev, id).to_vec(), vec![]));
            }
            let mut meta = r.member.as_str().as_bytes().to_vec();
            meta.extend_from_slice(author.as_bytes());
            v.push((RECORD_META, id.as_bytes().to_vec(), meta));
        }
        Object::Retraction(r) => v.push((RETRACTS, pair(&r.record, id).to_vec(), vec![])),
        _ => {}
    }
    v
}

/// The first byte of the wait key of an object waiting for a delegation or node certificate.
const TRUST_OBJECT_WAIT: u8 = b'T';

/// The key a pending object waits under: `D || publisher || member`, `R || record id` or
/// `T || delegation or node certificate id`.
fn wait_key(m: &Missing) -> Vec<u8> {
    match m {
        Missing::Delegation { publisher, member } => {
            let mut k = vec![b'D'];
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
        Object::Node(_) => vec![wait_key(&Missing::TrustObject(v.id()))],
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
        let v = self.trees[RECORD_META].get(id.as_bytes()).ok()??;
        let member = MemberCode::try_from(String::from_utf8(v.get(..2)?.to_vec()).ok()?).ok()?;
        let key = PublicKey::from_bytes(v.get(2..34)?.try_into().ok()?).ok()?;
        Some((member, key))
    }
}

/// A batch being assembled: accepted objects, quarantine changes.
#[derive(Default)]
struct Batch {
    accepted: Vec<Verified<Object>>,
    accepted_ids: BTreeSet<ObjectId>,
    records: BTreeMap<ObjectId, (MemberCode, PublicKey)>,
    /// New or updated quarantine entries: id → (received + bytes, wait key).
    pending_put: BTreeMap<ObjectId, (Vec<u8>, Vec<u8>)>,
    /// Quarantine entries to delete: id → old wait key.
    pending_del: BTreeMap<ObjectId, Vec<u8>>,
    unlocked: Vec<Vec<u8>>,
}

impl Batch {
    fn accept(&mut self, v: Verified<Object>, trust: &mut TrustView) {
        if v.object().object_type().is_trust() {
            trust.apply(&v);
        }
        if let Object::Record(r) = v.object() {
            self.records.insert(v.id(), (r.member.clone(), v.signer()));
        }
        self.unlocked.extend(unlocks(&v));
        self.accepted_ids.insert(v.id());
        self.accepted.push(v);
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` for the federation whose genesis charter is
    /// `genesis`. Refuses a newer schema or another federation's data.
    pub fn open(dir: &Path, genesis: &[u8], opts: StoreOptions) -> Result<Store, StoreError> {
        let (trust, genesis_v) = TrustView::from_genesis(genesis).map_err(StoreError::Genesis)?;
        let db = open_db(dir, opts.cache_bytes)?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema")? {
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
            }
            None => {
                meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())?;
            }
        }
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
        let pending_count = trees[PENDING].len();
        let mut store = Store {
            db,
            trees,
            trust,
            max_pending: opts.max_pending,
            pending_count,
        };
        if !store.contains(&genesis_v.id())? {
            store.write(&[genesis_v], &Batch::default())?;
        }
        store.rebuild_trust()?;
        Ok(store)
    }

    /// Re-derives the trust view from the stored trust objects: charters by version, then
    /// delegations, node certificates and revocations, each re-validated.
    fn rebuild_trust(&mut self) -> Result<(), StoreError> {
        let now = Timestamp::MAX;
        let mut charters = Vec::new();
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
                let bytes = self.get_bytes(&id)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("index names missing object {id}"))
                })?;
                if t == ObjectType::Charter {
                    charters.push(bytes);
                    continue;
                }
                if t == ObjectType::Delegation && !charters.is_empty() {
                    self.apply_charters(std::mem::take(&mut charters), now)?;
                }
                self.apply_stored(&bytes, now)?;
            }
        }
        if !charters.is_empty() {
            self.apply_charters(charters, now)?;
        }
        Ok(())
    }

    fn apply_charters(
        &mut self,
        mut charters: Vec<sled::IVec>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // Apply in version order: repeat passes until no charter is accepted any more.
        loop {
            let before = self.trust.charter_history().len();
            charters.retain(|b| !self.apply_stored(b, now).unwrap_or(false));
            if self.trust.charter_history().len() == before || charters.is_empty() {
                return Ok(());
            }
        }
    }

    /// Re-validates a stored trust object and applies it; `true` when it counted.
    fn apply_stored(&mut self, bytes: &[u8], now: Timestamp) -> Result<bool, StoreError> {
        let limits = *self.trust.limits();
        let signed = SignedObject::decode(bytes, limits.max_bytes(), limits.scan())
            .map_err(|e| StoreError::Corrupt(format!("stored object: {e}")))?;
        match validate_envelope(signed, &self.trust, self, now) {
            Verdict::Accepted(v) => {
                self.trust.apply(&v);
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

    pub fn contains(&self, id: &ObjectId) -> Result<bool, StoreError> {
        Ok(self.trees[OBJECTS].contains_key(id.as_bytes())?)
    }

    /// The exact signed bytes of an object.
    pub fn get_bytes(&self, id: &ObjectId) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.trees[OBJECTS].get(id.as_bytes())?)
    }

    /// An object, decoded.
    pub fn get(&self, id: &ObjectId) -> Result<Option<StoredObject>, StoreError> {
        let Some(bytes) = self.get_bytes(id)? else {
            return Ok(None);
        };
        self.decode_stored(&bytes).map(Some)
    }

    pub(crate) fn decode_stored(&self, bytes: &[u8]) -> Result<StoredObject, StoreError> {
        let limits = *self.trust.limits();
        let (signed, object) = accord_core::validate::decode(bytes, &limits)
            .map_err(|e| StoreError::Corrupt(format!("stored object does not decode: {e}")))?;
        Ok(StoredObject { signed, object })
    }

    /// Number of objects in the quarantine.
    pub fn pending_len(&self) -> usize {
        self.pending_count
    }

    /// Number of stored objects of each type.
    pub fn counts_by_type(&self) -> Result<BTreeMap<ObjectType, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for t in ObjectType::ALL {
            let n = self.trees[BY_TYPE].scan_prefix([t.code()]).keys().count() as u64;
            out.insert(t, n);
        }
        Ok(out)
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
    ) -> Result<(Vec<IngestOutcome>, Vec<Verified<Object>>), StoreError> {
        let snapshot = self.trust.clone();
        let result = self.ingest_inner(items, now);
        if result.is_err() {
            self.trust = snapshot;
        }
        result
    }

    fn ingest_inner(
        &mut self,
        items: &[&[u8]],
        now: Timestamp,
    ) -> Result<(Vec<IngestOutcome>, Vec<Verified<Object>>), StoreError> {
        let mut batch = Batch::default();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut released = Vec::new();
        let mut trust = self.trust.clone();
        for bytes in items {
            let limits = *trust.limits();
            let signed = match SignedObject::decode(bytes, limits.max_bytes(), limits.scan()) {
                Ok(s) => s,
                Err(e) => {
                    outcomes.push(IngestOutcome::Rejected(None, Rejection::Decode(e)));
                    continue;
                }
            };
            let id = signed.id();
            if batch.accepted_ids.contains(&id) || self.contains(&id)? {
                outcomes.push(IngestOutcome::Duplicate(id));
                continue;
            }
            let verdict = {
                let known = Known {
                    store: self,
                    batch: &batch.records,
                };
                validate_envelope(signed, &trust, &known, now)
            };
            match verdict {
                Verdict::Accepted(v) => {
                    // If it was quarantined earlier in this batch, that entry is void.
                    batch.pending_put.remove(&id);
                    let trust_object = v.object().object_type().is_trust();
                    batch.accept(v.clone(), &mut trust);
                    outcomes.push(IngestOutcome::Accepted(v));
                    // A revocation that waited for this trust object takes effect before the
                    // rest of the batch is judged.
                    if trust_object {
                        released.extend(self.release_pending(
                            &mut batch,
                            &mut trust,
                            now,
                            |k| k.first() == Some(&TRUST_OBJECT_WAIT),
                        )?);
                    }
                }
                Verdict::Pending(m) => {
                    let already = batch.pending_put.contains_key(&id)
                        || self.trees[PENDING].contains_key(id.as_bytes())?;
                    if !already && self.pending_count + batch.pending_put.len() >= self.max_pending
                    {
                        outcomes.push(IngestOutcome::QuarantineFull(id, m));
                        continue;
                    }
                    if !already {
                        let mut value = now.0.to_be_bytes().to_vec();
                        value.extend_from_slice(bytes);
                        batch.pending_put.insert(id, (value, wait_key(&m)));
                    }
                    outcomes.push(IngestOutcome::Pending(id, m));
                }
                Verdict::Rejected(r) => outcomes.push(IngestOutcome::Rejected(Some(id), r)),
            }
        }
        released.extend(self.release_pending(&mut batch, &mut trust, now, |_| true)?);
        self.write(&batch.accepted, &batch)?;
        self.pending_count = self.pending_count + batch.pending_put.len() - batch.pending_del.len();
        self.trust = trust;
        Ok((outcomes, released))
    }

    /// Re-validates quarantined objects waiting for what this batch accepted, under the wait
    /// keys that `pick` selects.
    fn release_pending(
        &self,
        batch: &mut Batch,
        trust: &mut TrustView,
        now: Timestamp,
        pick: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<Verified<Object>>, StoreError> {
        let mut released = Vec::new();
        while let Some(pos) = batch.unlocked.iter().rposition(|k| pick(k)) {
            let key = batch.unlocked.remove(pos);
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
            for (id, bytes) in waiting {
                if batch.accepted_ids.contains(&id) {
                    // Accepted directly in this batch (it came again with its prerequisite):
                    // its old quarantine entry goes.
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
                                let mut v = now.0.to_be_bytes().to_vec();
                                v.extend_from_slice(&bytes);
                                v
                            }
                        };
                        batch.pending_put.insert(id, (value, wait_key(&m)));
                    }
                    Verdict::Accepted(v) => {
                        if batch.pending_put.remove(&id).is_none() {
                            batch.pending_del.insert(id, key.clone());
                        }
                        released.push(v.clone());
                        batch.accept(v, trust);
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
        Ok(released)
    }

    /// Writes accepted objects and quarantine changes in one transaction, then flushes.
    fn write(&self, accepted: &[Verified<Object>], batch: &Batch) -> Result<(), StoreError> {
        let mut entries: Vec<Entry> = Vec::new();
        for v in accepted {
            entries.push((OBJECTS, v.id().as_bytes().to_vec(), v.bytes().to_vec()));
            entries.extend(index_entries(&v.id(), v.object(), &v.signer()));
        }
        let mut removals: Vec<(usize, Vec<u8>)> = Vec::new();
        for (id, wk) in &batch.pending_del {
            removals.push((PENDING, id.as_bytes().to_vec()));
            let mut k = wk.clone();
            k.extend_from_slice(id.as_bytes());
            removals.push((PENDING_WAIT, k));
        }
        for (id, (value, wk)) in &batch.pending_put {
            entries.push((PENDING, id.as_bytes().to_vec(), value.clone()));
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
        Ok(())
    }

    /// Writes every object as a CBOR sequence of envelopes (RFC 8742): charters by version,
    /// delegations, node certificates, records, retractions, and revocations last, each in
    /// creation order. Revocations come last so that an import re-validates every record
    /// against the trust it was accepted under, and a record whose signer was revoked later
    /// comes back with the same derived status. Returns the number of objects written.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        let mut n = 0;
        for t in EXPORT_ORDER {
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
            for (_, id) in items {
                let bytes = self
                    .get_bytes(&id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("missing object {id}")))?;
                out.write_all(&bytes)?;
                n += 1;
            }
        }
        out.flush()?;
        Ok(n)
    }

    /// Reads a CBOR sequence of envelopes and ingests them in batches, through validation.
    pub fn import(
        &mut self,
        input: &mut dyn Read,
        now: Timestamp,
    ) -> Result<ImportReport, StoreError> {
        let mut data = Vec::new();
        input.read_to_end(&mut data)?;
        let limits = *self.trust.limits();
        let items = cbor::split_sequence(&data, limits.scan())
            .map_err(|e| StoreError::Import(e.to_string()))?;
        let mut report = ImportReport::default();
        for chunk in items.chunks(IMPORT_BATCH) {
            let (outcomes, released) = self.ingest_batch(chunk, now)?;
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

    /// Flushes and reports the size of the database on disk, in bytes.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

/// The trees that hold index entries derived from the objects.
const INDEX_TREES: [usize; 9] = [
    BY_TIME,
    BY_TYPE,
    BY_MEMBER,
    BY_KIND,
    BY_DIRECTION,
    BY_AUTHOR,
    SUPERSEDES,
    RETRACTS,
    RECORD_META,
];

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
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.bad_objects.is_empty() && self.missing_entries == 0 && self.stray_entries == 0
    }
}

impl Store {
    /// Re-verifies every stored object (decoding, id, signatures) and checks every index entry
    /// against the objects, both ways.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        let mut expected: BTreeSet<(usize, Vec<u8>)> = BTreeSet::new();
        let limits = *self.trust.limits();
        for item in self.trees[OBJECTS].iter() {
            let (k, bytes) = item?;
            report.objects += 1;
            let Some(id) = ObjectId::from_slice(&k) else {
                report
                    .bad_objects
                    .push((ObjectId([0; 32]), "object key is not 32 bytes".into()));
                continue;
            };
            let (signed, obj) = match accord_core::validate::decode(&bytes, &limits) {
                Ok(x) => x,
                Err(e) => {
                    report
                        .bad_objects
                        .push((id, format!("does not decode: {e}")));
                    continue;
                }
            };
            if signed.id() != id {
                report.bad_objects.push((
                    id,
                    format!("stored under {id} but its body hashes to {}", signed.id()),
                ));
                continue;
            }
            if let Some(k) = signed.bad_signers().first() {
                report
                    .bad_objects
                    .push((id, format!("invalid signature by {k}")));
                continue;
            }
            for (tree, key, value) in index_entries(&id, &obj, &signed.signatures()[0].0) {
                match self.trees[tree].get(&key)? {
                    Some(v) if v.as_ref() == value.as_slice() => {}
                    _ => report.missing_entries += 1,
                }
                expected.insert((tree, key));
            }
        }
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
        for tree in INDEX_TREES {
            self.trees[tree].clear()?;
        }
        let limits = *self.trust.limits();
        for item in self.trees[OBJECTS].iter() {
            let (k, bytes) = item?;
            let Some(id) = ObjectId::from_slice(&k) else {
                continue;
            };
            if bad.contains(&id) {
                continue;
            }
            let Ok((signed, obj)) = accord_core::validate::decode(&bytes, &limits) else {
                continue;
            };
            for (tree, key, value) in index_entries(&id, &obj, &signed.signatures()[0].0) {
                self.trees[tree].insert(key, value)?;
            }
        }
        self.db.flush()?;
        Ok(report)
    }

    /// Test and tooling helper: removes one index entry of `id` (to exercise `check`).
    #[doc(hidden)]
    pub fn damage_index_for_tests(&mut self, id: &ObjectId) -> Result<bool, StoreError> {
        let Some(stored) = self.get(id)? else {
            return Ok(false);
        };
        let (tree, key, _) =
            index_entries(id, &stored.object, &stored.signed.signatures()[0].0).remove(0);
        self.trees[tree].remove(key)?;
        self.db.flush()?;
        Ok(true)
    }
}
