#![allow(clippy::unwrap_used)]
//! Integration tests of the storage facade: open/reopen, idempotent and group-committed
//! ingest, the pending quarantine, derived record status, queries with stable pagination,
//! export/import, and index atomicity.
//!
//! Everything is deterministic: one fixed-seed development federation, temp dirs, explicit
//! `now` timestamps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use accord_core::devnet::DevFederation;
use accord_core::object::TargetType;
use accord_core::{
    MemberCode, Missing, Object, ObjectId, ObjectType, PublicKey, Rejection, Retraction,
    Revocation, SignedObject, Timestamp,
};
use accord_store::{
    Cursor, Filter, IngestOutcome, Order, Page, RecordStatus, SCHEMA_VERSION, Store, StoreError,
    StoreOptions,
};

const BASE: u64 = 1_700_000_000_000;
const MINUTE: u64 = 60_000;
/// "Now" for every ingest: thirty days after the federation was founded.
const NOW: Timestamp = Timestamp(BASE + 30 * 24 * 60 * MINUTE);

// ---------------------------------------------------------------------------------------------
// helpers

fn fed() -> DevFederation {
    DevFederation::new(&["KZ", "BY", "AM"], [7u8; 32], Timestamp(BASE)).unwrap()
}

fn other_fed() -> DevFederation {
    DevFederation::new(&["KZ", "BY", "AM"], [8u8; 32], Timestamp(BASE)).unwrap()
}

fn open(dir: &Path, fed: &DevFederation) -> Store {
    Store::open(dir, fed.genesis.as_bytes(), StoreOptions::default()).unwrap()
}

fn kinds(fed: &DevFederation) -> Vec<String> {
    fed.charter
        .taxonomy
        .kinds
        .iter()
        .map(|k| k.code.clone())
        .collect()
}

fn directions(fed: &DevFederation) -> Vec<String> {
    fed.charter
        .taxonomy
        .directions
        .iter()
        .map(|d| d.code.clone())
        .collect()
}

/// Ingests `objs` in one batch; returns the outcomes and the ids of released objects.
fn batch(store: &mut Store, objs: &[&SignedObject]) -> (Vec<IngestOutcome>, Vec<ObjectId>) {
    let items: Vec<&[u8]> = objs.iter().map(|o| o.as_bytes()).collect();
    let (out, released) = store.ingest_batch(&items, NOW).unwrap();
    assert_eq!(out.len(), objs.len(), "one outcome per item");
    (out, released.iter().map(|v| v.id()).collect())
}

fn ingest(store: &mut Store, obj: &SignedObject) -> IngestOutcome {
    store.ingest(obj.as_bytes(), NOW).unwrap()
}

#[track_caller]
fn assert_accepted(o: &IngestOutcome, expected: &SignedObject) {
    match o {
        IngestOutcome::Accepted(v) => {
            assert_eq!(v.id(), expected.id());
            assert_eq!(v.bytes(), expected.as_bytes());
        }
        other => panic!("expected Accepted({}), got {other:?}", expected.id()),
    }
}

#[track_caller]
fn assert_all_accepted(out: &[IngestOutcome], objs: &[&SignedObject]) {
    for (o, s) in out.iter().zip(objs) {
        assert_accepted(o, s);
    }
}

/// A record of member `i` with the given kind, directions and optional supersession.
fn record_with(
    fed: &DevFederation,
    i: usize,
    title: &str,
    created: u64,
    kind: &str,
    dirs: &[&str],
    supersedes: Option<ObjectId>,
) -> SignedObject {
    let mut body = fed.record_body(i, title, Timestamp(created));
    body.kind = kind.to_string();
    body.directions = dirs.iter().map(|d| d.to_string()).collect();
    body.supersedes = supersedes;
    Object::Record(body).sign(&fed.members[i].publisher)
}

/// A retraction of `record` for member `i`, by the member root or by the publisher (author).
fn retraction(
    fed: &DevFederation,
    i: usize,
    record: ObjectId,
    created: u64,
    by_root: bool,
) -> SignedObject {
    let r = Retraction {
        object_type: ObjectType::Retraction,
        federation: fed.federation(),
        created: Timestamp(created),
        member: fed.members[i].code.clone(),
        record,
        reason: "withdrawn for the test".into(),
    };
    let key = if by_root {
        &fed.members[i].root
    } else {
        &fed.members[i].publisher
    };
    Object::Retraction(r).sign(key)
}

/// A revocation by member `i`'s root of a delegation or node certificate.
fn revocation(
    fed: &DevFederation,
    i: usize,
    target_type: TargetType,
    target: ObjectId,
    effective: u64,
    created: u64,
) -> SignedObject {
    Object::Revocation(Revocation {
        object_type: ObjectType::Revocation,
        federation: fed.federation(),
        created: Timestamp(created),
        member: fed.members[i].code.clone(),
        target_type,
        target,
        effective: Timestamp(effective),
        reason: Some("key compromised".into()),
    })
    .sign(&fed.members[i].root)
}

/// The charter version after the store's current one, as `edit` changes it, signed by `keys`.
fn next_charter(
    store: &Store,
    created: Timestamp,
    edit: impl FnOnce(&mut accord_core::Charter),
    keys: &[&accord_core::SecretKey],
) -> SignedObject {
    let trust = store.trust();
    let mut c = trust.charter().clone();
    c.federation = Some(trust.federation());
    c.version = trust.charter().version + 1;
    c.previous = Some(trust.charter_id());
    c.created = created;
    edit(&mut c);
    let mut amendment = SignedObject::unsigned(Object::Charter(c).encode_body());
    for k in keys {
        assert!(amendment.add_signature(k));
    }
    amendment
}

/// Every `(created, id)` a filter returns, following `next` cursors to the end.
fn scan(store: &Store, filter: &Filter, order: Order, limit: usize) -> Vec<(Timestamp, ObjectId)> {
    let mut out = Vec::new();
    let mut after = None;
    for _ in 0..10_000 {
        let page = store
            .query(
                filter,
                Page {
                    limit,
                    after,
                    order,
                },
            )
            .unwrap();
        assert!(page.items.len() <= limit, "page larger than its limit");
        for (s, _) in &page.items {
            out.push((s.object.created(), s.signed.id()));
        }
        match page.next {
            Some(c) => {
                let last = out.last().copied();
                assert_eq!(
                    Some((c.created, c.id)),
                    last,
                    "the cursor names the last item returned"
                );
                after = Some(c);
            }
            None => return out,
        }
    }
    panic!("pagination did not terminate");
}

fn scan_ids(store: &Store, filter: &Filter) -> BTreeSet<ObjectId> {
    scan(store, filter, Order::OldestFirst, 1000)
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

#[track_caller]
fn assert_strictly_monotonic(items: &[(Timestamp, ObjectId)], order: Order) {
    for w in items.windows(2) {
        match order {
            Order::OldestFirst => assert!(w[0] < w[1], "not ascending: {:?} then {:?}", w[0], w[1]),
            Order::NewestFirst => {
                assert!(w[0] > w[1], "not descending: {:?} then {:?}", w[0], w[1])
            }
        }
    }
}

/// Every stored object id, through the creation-time index.
fn all_ids(store: &Store) -> BTreeSet<ObjectId> {
    scan_ids(store, &Filter::default())
}

/// What the test knows about an object, independently of the store.
#[derive(Debug, Clone)]
struct Model {
    id: ObjectId,
    ty: ObjectType,
    member: Option<MemberCode>,
    author: PublicKey,
    created: Timestamp,
    kind: Option<String>,
    directions: Vec<String>,
    status: Option<RecordStatus>,
}

fn model(s: &SignedObject) -> Model {
    let obj = Object::decode_body(s.body(), &accord_core::Limits::default()).unwrap();
    let (kind, directions, status) = match &obj {
        Object::Record(r) => (
            Some(r.kind.clone()),
            r.directions.clone(),
            Some(RecordStatus::Active),
        ),
        _ => (None, vec![], None),
    };
    Model {
        id: s.id(),
        ty: obj.object_type(),
        member: obj.member().cloned(),
        author: s.signatures()[0].0,
        created: obj.created(),
        kind,
        directions,
        status,
    }
}

/// The filter semantics as documented on `Filter`, applied naively.
fn naive_matches(f: &Filter, m: &Model) -> bool {
    (f.types.is_empty() || f.types.contains(&m.ty))
        && (f.members.is_empty() || m.member.as_ref().is_some_and(|x| f.members.contains(x)))
        && (f.authors.is_empty() || f.authors.contains(&m.author))
        && (f.kinds.is_empty() || m.kind.as_ref().is_some_and(|k| f.kinds.contains(k)))
        && (f.directions.is_empty()
            || (m.ty == ObjectType::Record
                && m.directions.iter().any(|d| f.directions.contains(d))))
        && (f.statuses.is_empty() || m.status.is_some_and(|s| f.statuses.contains(&s)))
        && f.since.is_none_or(|t| m.created >= t)
        && f.until.is_none_or(|t| m.created < t)
}

fn naive(models: &[Model], f: &Filter) -> Vec<(Timestamp, ObjectId)> {
    let mut v: Vec<_> = models
        .iter()
        .filter(|m| naive_matches(f, m))
        .map(|m| (m.created, m.id))
        .collect();
    v.sort();
    v
}

/// Tiny deterministic generator (an LCG), so the data set is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// The 200-record data set used by the query tests.
#[derive(Debug)]
struct QuerySet {
    store: Store,
    models: Vec<Model>,
    records: Vec<ObjectId>,
}

/// Builds a store with the 3 delegations, 200 records of varied member, kind, directions and
/// (partly colliding) creation times, some superseded records and some root retractions.
fn build_query_set(dir: &Path, fed: &DevFederation) -> QuerySet {
    let kinds = kinds(fed);
    let dirs = directions(fed);
    assert_eq!(kinds.len(), 8);
    assert_eq!(dirs.len(), 11);
    let mut rng = Lcg(42);
    let mut objs: Vec<SignedObject> = (0..3).map(|i| fed.delegation(i)).collect();
    let mut records = Vec::new();
    let mut retracted = BTreeSet::new();
    let mut superseded = BTreeSet::new();
    let mut retractions = Vec::new();
    for n in 0..200usize {
        let i = n % 3;
        let r = rng.next_u64();
        let kind = &kinds[(r % 8) as usize];
        let ndirs = 1 + (r >> 3) as usize % 3;
        let d0 = (r >> 5) as usize % 11;
        let step = 1 + (r >> 9) as usize % 5;
        let ds: Vec<&str> = (0..ndirs)
            .map(|k| dirs[(d0 + k * step) % 11].as_str())
            .collect();
        // 60 distinct minutes for 200 records: many share a creation time.
        let created = BASE + 1 + (r >> 12) % 60 * MINUTE;
        let supersedes = (n >= 30 && n % 10 == 0).then(|| records[n - 3]);
        let rec = record_with(
            fed,
            i,
            &format!("record {n}"),
            created,
            kind,
            &ds,
            supersedes,
        );
        let is_retracted = n % 13 == 4;
        // A retracted successor supersedes nothing (record 30, say).
        if let Some(old) = supersedes
            && !is_retracted
        {
            superseded.insert(old);
        }
        if is_retracted {
            retracted.insert(rec.id());
            retractions.push(retraction(fed, i, rec.id(), created + 1, true));
        }
        records.push(rec.id());
        objs.push(rec);
    }
    objs.extend(retractions);
    let mut store = open(dir, fed);
    let refs: Vec<&SignedObject> = objs.iter().collect();
    let (out, released) = batch(&mut store, &refs);
    assert_all_accepted(&out, &refs);
    assert!(released.is_empty());
    let mut models: Vec<Model> = std::iter::once(&fed.genesis)
        .chain(&objs)
        .map(model)
        .collect();
    for m in &mut models {
        if m.ty == ObjectType::Record {
            m.status = Some(if retracted.contains(&m.id) {
                RecordStatus::Retracted
            } else if superseded.contains(&m.id) {
                RecordStatus::Superseded
            } else {
                RecordStatus::Active
            });
        }
    }
    QuerySet {
        store,
        models,
        records,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. open, create, reopen

#[test]
fn open_creates_store_with_genesis_charter() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &fed);
    let counts = store.counts_by_type().unwrap();
    assert_eq!(counts.len(), 6, "every type is listed");
    assert_eq!(counts[&ObjectType::Charter], 1);
    for t in ObjectType::ALL
        .into_iter()
        .filter(|t| *t != ObjectType::Charter)
    {
        assert_eq!(counts[&t], 0, "{t}");
    }
    let gid = fed.genesis.id();
    assert!(store.contains(&gid).unwrap());
    assert_eq!(
        store.get_bytes(&gid).unwrap().unwrap().as_slice(),
        fed.genesis.as_bytes()
    );
    let stored = store.get(&gid).unwrap().unwrap();
    assert!(matches!(stored.object, Object::Charter(ref c) if c.version == 1));
    assert_eq!(store.trust().federation(), gid);
    assert_eq!(store.pending_len(), 0);
    assert_eq!(all_ids(&store), BTreeSet::from([gid]));
    // The genesis is not a record: it has no status.
    assert_eq!(store.record_status(&gid).unwrap(), None);
    // Reopening a fresh store does not store the genesis twice.
    drop(store);
    let store = open(dir.path(), &fed);
    assert_eq!(store.counts_by_type().unwrap()[&ObjectType::Charter], 1);
}

#[test]
fn reopen_keeps_everything_and_rebuilds_trust() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let (del, cert) = (fed.delegation(0), fed.node_cert(0));
    let records: Vec<SignedObject> = (0..20)
        .map(|n| fed.record(0, &format!("record {n}"), Timestamp(BASE + 1 + n * MINUTE)))
        .collect();
    let (counts, ids) = {
        let mut store = open(dir.path(), &fed);
        let (out, _) = batch(&mut store, &[&del, &cert]);
        assert_all_accepted(&out, &[&del, &cert]);
        let refs: Vec<&SignedObject> = records.iter().collect();
        let (out, _) = batch(&mut store, &refs);
        assert_all_accepted(&out, &refs);
        (store.counts_by_type().unwrap(), all_ids(&store))
    };
    assert_eq!(counts[&ObjectType::Record], 20);
    assert_eq!(ids.len(), 23);

    let mut store = open(dir.path(), &fed);
    assert_eq!(store.counts_by_type().unwrap(), counts);
    assert_eq!(all_ids(&store), ids);
    for o in records.iter().chain([&del, &cert, &fed.genesis]) {
        assert_eq!(
            store.get_bytes(&o.id()).unwrap().unwrap().as_slice(),
            o.as_bytes()
        );
    }
    for r in &records {
        assert_eq!(
            store.record_status(&r.id()).unwrap(),
            Some(RecordStatus::Active)
        );
    }
    let kz = Filter {
        members: vec![fed.members[0].code.clone()],
        ..Filter::default()
    };
    assert_eq!(
        store.count(&kz).unwrap(),
        22,
        "delegation, node cert, 20 records"
    );

    // The trust view was rebuilt from the stored trust objects.
    assert_eq!(store.trust().delegations().count(), 1);
    assert_eq!(store.trust().node_certs().count(), 1);
    assert!(
        store
            .trust()
            .node_member(&fed.members[0].node.public_key(), NOW)
            .is_some()
    );
    // A new record by the delegated publisher is accepted at once (not pending) ...
    let fresh = fed.record(0, "after reopen", Timestamp(BASE + 100 * MINUTE));
    assert_accepted(&ingest(&mut store, &fresh), &fresh);
    // ... while a publisher without a delegation still waits.
    let other = fed.record(1, "no delegation", Timestamp(BASE + 100 * MINUTE));
    assert!(matches!(
        ingest(&mut store, &other),
        IngestOutcome::Pending(_, Missing::Delegation { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// 2. refusals at open

#[test]
fn open_refuses_another_federations_directory() {
    let fed = fed();
    let other = other_fed();
    assert_ne!(fed.federation(), other.federation());
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), &fed));
    // A store of an older schema: refused for another federation's charter, it is not marked
    // as being upgraded (its own release still opens it).
    {
        let db = raw_db(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &(SCHEMA_VERSION - 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match Store::open(
        dir.path(),
        other.genesis.as_bytes(),
        StoreOptions::default(),
    ) {
        Err(StoreError::OtherFederation { found, expected }) => {
            assert_eq!(found, fed.federation());
            assert_eq!(expected, other.federation());
        }
        other => panic!("expected OtherFederation, got {other:?}"),
    }
    {
        let db = raw_db(dir.path());
        let meta = db.open_tree("meta").unwrap();
        assert_eq!(
            meta.get("schema").unwrap().as_deref(),
            Some((SCHEMA_VERSION - 1).to_be_bytes().as_slice())
        );
        assert_eq!(meta.get("upgrading_from").unwrap(), None);
    }
    // The refusal changed nothing: the right charter still opens it.
    let store = open(dir.path(), &fed);
    assert_eq!(all_ids(&store), BTreeSet::from([fed.federation()]));
}

/// The store's sled database opened directly. sled releases the lock of a dropped store from
/// a background thread: wait for it, as the store itself does when it is reopened.
fn raw_db(dir: &Path) -> sled::Db {
    accord_store::open_db(dir, 1 << 20, true).unwrap()
}

#[track_caller]
fn assert_schema_is_current(db: &sled::Db) {
    let meta = db.open_tree("meta").unwrap();
    let schema = meta.get("schema").unwrap();
    assert_eq!(
        schema.as_deref(),
        Some(SCHEMA_VERSION.to_be_bytes().as_slice())
    );
    assert_eq!(
        meta.get("upgrading_from").unwrap(),
        None,
        "the upgrade is done"
    );
}

#[test]
fn open_refuses_newer_schema() {
    let fed = fed();
    let set_schema_99 = |dir: &Path| {
        let db = raw_db(dir);
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema", &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    };
    let expect_newer =
        |dir: &Path| match Store::open(dir, fed.genesis.as_bytes(), StoreOptions::default()) {
            Err(StoreError::NewerSchema { found, supported }) => {
                assert_eq!(found, 99);
                assert_eq!(supported, SCHEMA_VERSION);
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        };
    // A directory that only has the newer meta tree.
    let dir = tempfile::tempdir().unwrap();
    set_schema_99(dir.path());
    expect_newer(dir.path());
    // An existing store whose schema a newer build bumped.
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), &fed));
    set_schema_99(dir.path());
    expect_newer(dir.path());
}

/// A store written by schema 1 (with the member, kind, direction and author indexes) opens
/// under the current schema: those trees are dropped, the schema is bumped, and every object, count and
/// query answer is the same as before.
#[test]
fn a_schema_1_store_is_upgraded_in_place() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let del = fed.delegation(0);
    let recs: Vec<SignedObject> = (0..5)
        .map(|i| fed.record(0, &format!("r{i}"), Timestamp(BASE + i * MINUTE)))
        .collect();
    let (ids, counts) = {
        let mut store = open(dir.path(), &fed);
        assert_accepted(&ingest(&mut store, &del), &del);
        for r in &recs {
            assert_accepted(&ingest(&mut store, r), r);
        }
        (all_ids(&store), store.counts_by_type().unwrap())
    };
    // Make it look like schema 1: the old trees with entries, the old version number.
    let db = raw_db(dir.path());
    for name in [
        "by_member",
        "by_kind",
        "by_direction",
        "by_author",
        "record_meta",
    ] {
        db.open_tree(name)
            .unwrap()
            .insert(b"old-entry", b"")
            .unwrap();
    }
    db.open_tree("meta")
        .unwrap()
        .insert("schema", &1u32.to_be_bytes())
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let store = open(dir.path(), &fed);
    assert_eq!(all_ids(&store), ids);
    assert_eq!(store.counts_by_type().unwrap(), counts);
    assert!(
        store.check().unwrap().is_clean(),
        "indexes consistent after the upgrade"
    );
    drop(store);
    let db = raw_db(dir.path());
    let names: Vec<String> = db
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    for gone in [
        "by_member",
        "by_kind",
        "by_direction",
        "by_author",
        "record_meta",
    ] {
        assert!(
            !names.contains(&gone.to_string()),
            "{gone} dropped: {names:?}"
        );
    }
    assert_schema_is_current(&db);
}

// ---------------------------------------------------------------------------------------------
// 3. idempotent put

#[test]
fn ingesting_the_same_bytes_twice_is_a_duplicate() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let del = fed.delegation(0);
    let rec = fed.record(0, "once", Timestamp(BASE + MINUTE));
    assert_accepted(&ingest(&mut store, &del), &del);
    assert_accepted(&ingest(&mut store, &rec), &rec);
    let counts = store.counts_by_type().unwrap();
    let ids = all_ids(&store);
    for o in [&del, &rec, &fed.genesis] {
        match ingest(&mut store, o) {
            IngestOutcome::Duplicate(id) => assert_eq!(id, o.id()),
            other => panic!("expected Duplicate, got {other:?}"),
        }
    }
    // The same object twice inside one batch: the second one is a duplicate too.
    let rec2 = fed.record(0, "twice in a batch", Timestamp(BASE + 2 * MINUTE));
    let (out, _) = batch(&mut store, &[&rec2, &rec2]);
    assert_accepted(&out[0], &rec2);
    assert!(matches!(out[1], IngestOutcome::Duplicate(id) if id == rec2.id()));
    let mut expected = counts.clone();
    *expected.get_mut(&ObjectType::Record).unwrap() += 1;
    assert_eq!(store.counts_by_type().unwrap(), expected);
    let mut expected_ids = ids;
    expected_ids.insert(rec2.id());
    assert_eq!(
        all_ids(&store),
        expected_ids,
        "no index entry was written twice"
    );
    let by_kind = Filter {
        kinds: vec!["regulatory-note".into()],
        ..Filter::default()
    };
    assert_eq!(store.count(&by_kind).unwrap(), 2);
}

/// The store keeps when and from which source it took each object: a record released from
/// the quarantine was received when it entered it, from whoever gave it; objects read from a
/// backup say so.
#[test]
fn when_and_from_where_each_object_was_taken_is_kept() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let early = Timestamp(NOW.0 - 5 * MINUTE);
    let rec = fed.record(0, "before its delegation", Timestamp(BASE + MINUTE));
    let (out, _) = store
        .ingest_from(&[(rec.as_bytes(), "peer P")], early)
        .unwrap();
    assert!(matches!(out[0], IngestOutcome::Pending(..)));
    assert_eq!(store.received(&rec.id()).unwrap(), None, "not held yet");
    let del = fed.delegation(0);
    let (out, released) = store
        .ingest_from(&[(del.as_bytes(), "local")], NOW)
        .unwrap();
    assert_accepted(&out[0], &del);
    assert_eq!(released.len(), 1);
    assert_eq!(
        store.received(&del.id()).unwrap(),
        Some((NOW, "local".to_string()))
    );
    assert_eq!(
        store.received(&rec.id()).unwrap(),
        Some((early, "peer P".to_string()))
    );
    // Kept across a restart.
    drop(store);
    let store = open(dir.path(), &fed);
    assert_eq!(
        store.received(&rec.id()).unwrap(),
        Some((early, "peer P".to_string()))
    );
    // A store restored from a backup says so.
    let mut backup = Vec::new();
    for o in [&del, &rec] {
        backup.extend_from_slice(o.as_bytes());
    }
    drop(store);
    let dir2 = tempfile::tempdir().unwrap();
    let mut restored = open(dir2.path(), &fed);
    restored
        .import(&mut std::io::Cursor::new(backup), NOW)
        .unwrap();
    assert_eq!(
        restored.received(&rec.id()).unwrap(),
        Some((NOW, "import".to_string()))
    );
}

/// A copy refused for a signer that once had authority — a delegation a since-replaced root
/// key signed, a revoked publisher's record — or waiting for the delegation of a publisher only
/// such a key delegated, is history an honest peer keeps: it is named for the source that gave
/// that copy, each source for its own. A copy anyone could make (a body signed again by a key of
/// one's own) is named for nobody, so a peer cannot excuse withholding with it. A charter
/// version, or a delegation of a publisher they name, accepted forgets them.
#[test]
fn a_copy_refused_for_a_signer_that_had_authority_is_named_for_its_source_a_forgery_is_not() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let t = |m: u64| Timestamp(BASE + m * MINUTE);
    let (p, q, h) = ("peer P", "peer Q", "peer H");
    let from = |store: &mut Store, o: &SignedObject, source: &str| {
        let (mut out, _) = store.ingest_from(&[(o.as_bytes(), source)], NOW).unwrap();
        out.remove(0)
    };
    // KZ's publisher is revoked: its later record is refused for its signer.
    let del = fed.delegation(0);
    assert_accepted(&ingest(&mut store, &del), &del);
    let rev = revocation(
        &fed,
        0,
        TargetType::Delegation,
        del.id(),
        BASE + MINUTE,
        BASE + 2 * MINUTE,
    );
    assert_accepted(&ingest(&mut store, &rev), &rev);
    let late = fed.record(0, "after the revocation", t(3));
    // BY's root key is replaced: what the old one signed, and the records of the publisher it
    // delegated, are history on the nodes that took them before.
    let new_root = accord_core::SecretKey::from_seed([91; 32]);
    let mut keys: Vec<&accord_core::SecretKey> = fed.members.iter().map(|m| &m.root).collect();
    keys.push(&new_root);
    let amendment = next_charter(
        &store,
        t(4),
        |c| {
            if let Some(m) = c.members.iter_mut().find(|m| m.code.as_str() == "BY") {
                m.root_key = new_root.public_key();
            }
        },
        &keys,
    );
    assert_accepted(&ingest(&mut store, &amendment), &amendment);
    let old_del = fed.delegation(1);
    let old_rec = fed.record(1, "under BY's first root key", t(5));
    // Forgeries: the same bodies signed by a stranger's key.
    let stranger = accord_core::SecretKey::from_seed([92; 32]);
    let resign =
        |o: &SignedObject| match Object::decode_body(o.body(), &accord_core::Limits::default()) {
            Ok(body) => body.sign(&stranger),
            Err(e) => panic!("{e}"),
        };
    let (forged_del, forged_rec) = (
        resign(&old_del),
        resign(&fed.record(0, "a KZ record", t(6))),
    );
    assert_eq!(forged_del.id(), old_del.id());
    assert!(matches!(
        from(&mut store, &forged_del, h),
        IngestOutcome::Rejected(Some(_), Rejection::NotSignedByRoot { .. })
    ));
    assert!(matches!(
        from(&mut store, &forged_rec, h),
        IngestOutcome::Pending(_, Missing::Delegation { .. })
    ));
    assert!(matches!(
        from(&mut store, &old_del, p),
        IngestOutcome::Rejected(Some(_), Rejection::NotSignedByRoot { .. })
    ));
    for source in [p, q] {
        assert!(matches!(
            from(&mut store, &old_rec, source),
            IngestOutcome::Pending(_, Missing::Delegation { .. })
        ));
    }
    // The same publisher key signing another member's record is no history: BY's old root
    // key delegated it for BY alone.
    let other = Object::Record(fed.record_body(2, "AM's, by BY's publisher", t(5)))
        .sign(&fed.members[1].publisher);
    assert!(matches!(
        from(&mut store, &other, p),
        IngestOutcome::Pending(_, Missing::Delegation { .. })
    ));
    assert!(store.received_not_held_from(&[other.id()], p).is_empty());
    assert!(matches!(
        from(&mut store, &late, p),
        IngestOutcome::Rejected(Some(_), Rejection::SignerRevoked { .. })
    ));
    let ids = [
        old_del.id(),
        old_rec.id(),
        late.id(),
        forged_rec.id(),
        ObjectId([7; 32]),
    ];
    assert_eq!(
        store.received_not_held_from(&ids, p),
        vec![
            (t(0), old_del.id()),
            (t(5), old_rec.id()),
            (t(3), late.id())
        ]
    );
    // Q gave only the record (the quarantine keeps P's copy; Q's is named for Q all the same).
    assert_eq!(
        store.received_not_held_from(&ids, q),
        vec![(t(5), old_rec.id())]
    );
    // H gave forgeries: nothing of it is named, so H would still be read as withholding.
    assert!(store.received_not_held_from(&ids, h).is_empty());
    assert!(store.received_not_held(&ids).is_empty());
    // A delegation of another publisher changes none of them; one of a publisher they name
    // (BY's, by its new root key) forgets them all, and releases that publisher's record.
    let del2 = fed.delegation(2);
    assert_accepted(&ingest(&mut store, &del2), &del2);
    assert_eq!(store.received_not_held_from(&ids, p).len(), 3);
    let by_again = match Object::decode_body(old_del.body(), &accord_core::Limits::default()) {
        Ok(body) => body.sign(&new_root),
        Err(e) => panic!("{e}"),
    };
    let (out, released) = batch(&mut store, &[&by_again]);
    assert_accepted(&out[0], &by_again);
    assert_eq!(released, vec![old_rec.id()]);
    assert!(store.received_not_held_from(&ids, p).is_empty());
    // Refused again, named again; a charter version forgets it too.
    assert!(matches!(
        from(&mut store, &late, p),
        IngestOutcome::Rejected(..)
    ));
    assert_eq!(
        store.received_not_held_from(&ids, p),
        vec![(t(3), late.id())]
    );
    let v3 = next_charter(
        &store,
        t(7),
        |c| c.name = format!("{} (amended)", c.name),
        &fed.members
            .iter()
            .filter(|m| m.code.as_str() != "BY")
            .map(|m| &m.root)
            .chain([&new_root])
            .collect::<Vec<_>>(),
    );
    assert_accepted(&ingest(&mut store, &v3), &v3);
    assert!(store.received_not_held_from(&ids, p).is_empty());
}

/// What the store received and does not hold for what its body says is named with its
/// creation time: an object refused for its member, its taxonomy or another member's record
/// it names; one waiting for a record or trust object its body names. Not what any other copy
/// of the same body could fare otherwise with (an id covers the body, not the signatures): a
/// refusal for the signer, a wait for the signer's delegation, a refusal for the clock. The
/// refusals are forgotten when a charter version is accepted (what they depend on changes
/// only with the charter); delegations and revocations keep them.
#[test]
fn objects_refused_or_waiting_for_what_their_bodies_say_are_named_until_the_charter_changes() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let del = fed.delegation(0);
    let other = fed.record(1, "BY's own record", Timestamp(BASE + MINUTE));
    assert_accepted(&ingest(&mut store, &del), &del);
    assert_accepted(&ingest(&mut store, &fed.delegation(1)), &fed.delegation(1));
    assert_accepted(&ingest(&mut store, &other), &other);
    let publisher = &fed.members[0].publisher;
    let signed = |mut r: accord_core::Record, edit: &dyn Fn(&mut accord_core::Record)| {
        edit(&mut r);
        Object::Record(r).sign(publisher)
    };
    let t = |m: u64| Timestamp(BASE + m * MINUTE);
    let stranger = signed(fed.record_body(0, "of no member", t(3)), &|r| {
        r.member = "ZZ".parse().unwrap();
    });
    let off_taxonomy = signed(fed.record_body(0, "of no direction", t(4)), &|r| {
        r.directions = vec!["astrology".into()];
    });
    let successor = signed(fed.record_body(0, "a new edition", t(5)), &|r| {
        r.supersedes = Some(ObjectId([9; 32]));
    });
    // KZ's root key retracts BY's record: refused for the record it names.
    let foreign_retraction = Object::Retraction(Retraction {
        object_type: ObjectType::Retraction,
        federation: fed.federation(),
        created: t(6),
        member: fed.members[0].code.clone(),
        record: other.id(),
        reason: "not ours".into(),
    })
    .sign(&fed.members[0].root);
    // KZ's root key revokes a delegation not known yet: waits for it.
    let early_revocation = revocation(
        &fed,
        0,
        TargetType::Delegation,
        ObjectId([8; 32]),
        BASE + 7 * MINUTE,
        BASE + 7 * MINUTE,
    );
    let rev = revocation(
        &fed,
        0,
        TargetType::Delegation,
        del.id(),
        BASE + 8 * MINUTE,
        BASE + 9 * MINUTE,
    );
    assert_accepted(&ingest(&mut store, &rev), &rev);
    let late = fed.record(0, "after the revocation", t(10));
    let ahead = fed.record(0, "from the future", Timestamp(NOW.0 + 60 * MINUTE));
    let undelegated = fed.record(2, "before its delegation", t(11));
    let all = [
        &stranger,
        &off_taxonomy,
        &successor,
        &foreign_retraction,
        &early_revocation,
        &late,
        &ahead,
        &undelegated,
    ];
    let (out, _) = batch(&mut store, &all);
    assert!(matches!(
        out[0],
        IngestOutcome::Rejected(Some(_), Rejection::UnknownMember(_))
    ));
    assert!(matches!(
        out[1],
        IngestOutcome::Rejected(Some(_), Rejection::UnknownDirection(_))
    ));
    assert!(matches!(
        out[2],
        IngestOutcome::Pending(_, Missing::Record(_))
    ));
    assert!(matches!(
        out[3],
        IngestOutcome::Rejected(Some(_), Rejection::RetractionOtherMember { .. })
    ));
    assert!(matches!(
        out[4],
        IngestOutcome::Pending(_, Missing::TrustObject(_))
    ));
    assert!(matches!(
        out[5],
        IngestOutcome::Rejected(Some(_), Rejection::SignerRevoked { .. })
    ));
    assert!(matches!(
        out[6],
        IngestOutcome::Rejected(Some(_), Rejection::CreatedInFuture { .. })
    ));
    assert!(matches!(
        out[7],
        IngestOutcome::Pending(_, Missing::Delegation { .. })
    ));
    let ids: Vec<ObjectId> = all
        .iter()
        .map(|o| o.id())
        .chain([del.id(), ObjectId([7; 32])])
        .collect();
    let body_said = vec![
        (t(3), stranger.id()),
        (t(4), off_taxonomy.id()),
        (t(5), successor.id()),
        (t(6), foreign_retraction.id()),
        (t(7), early_revocation.id()),
    ];
    assert_eq!(store.received_not_held(&ids), body_said);
    // A copy of a delegation's body signed by another key is refused for its signer, and not
    // named: the copy signed by the member's root key is still taken.
    let del2 = fed.delegation(2);
    let forged = match Object::decode_body(del2.body(), &accord_core::Limits::default()) {
        Ok(body) => body.sign(&accord_core::SecretKey::from_seed([77; 32])),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(forged.id(), del2.id());
    assert!(matches!(
        ingest(&mut store, &forged),
        IngestOutcome::Rejected(Some(_), Rejection::NotSignedByRoot { .. })
    ));
    assert!(store.received_not_held(&[del2.id()]).is_empty());
    // Delegations and revocations change none of the verdicts: the names stay.
    let (out, released) = batch(&mut store, &[&del2]);
    assert_accepted(&out[0], &del2);
    assert_eq!(released, vec![undelegated.id()]);
    let rev2 = revocation(
        &fed,
        0,
        TargetType::Key,
        ObjectId(*fed.members[0].node.public_key().as_bytes()),
        BASE + 12 * MINUTE,
        BASE + 12 * MINUTE,
    );
    assert_accepted(&ingest(&mut store, &rev2), &rev2);
    assert_eq!(store.received_not_held(&ids), body_said);
    // A charter version forgets the refusals; what waits in the quarantine stays named.
    let amendment = next_charter(
        &store,
        t(13),
        |c| c.name = format!("{} (amended)", c.name),
        &fed.members.iter().map(|m| &m.root).collect::<Vec<_>>(),
    );
    assert_accepted(&ingest(&mut store, &amendment), &amendment);
    assert_eq!(
        store.received_not_held(&ids),
        vec![(t(5), successor.id()), (t(7), early_revocation.id())]
    );
    // Judged again, refused again, named again.
    assert!(matches!(
        ingest(&mut store, &stranger),
        IngestOutcome::Rejected(..)
    ));
    assert_eq!(
        store.received_not_held(&ids),
        vec![
            (t(3), stranger.id()),
            (t(5), successor.id()),
            (t(7), early_revocation.id())
        ]
    );
    // In one batch: a refusal judged before a charter version is forgotten with it, one
    // judged after it is kept.
    let v3 = next_charter(
        &store,
        t(16),
        |c| c.name = format!("{} again", c.name),
        &fed.members.iter().map(|m| &m.root).collect::<Vec<_>>(),
    );
    let before = signed(fed.record_body(0, "refused before v3", t(14)), &|r| {
        r.member = "ZZ".parse().unwrap();
    });
    let after = signed(fed.record_body(0, "refused after v3", t(15)), &|r| {
        r.member = "ZZ".parse().unwrap();
    });
    let (out, _) = batch(&mut store, &[&before, &v3, &after]);
    assert!(matches!(
        out[0],
        IngestOutcome::Rejected(Some(_), Rejection::UnknownMember(_))
    ));
    assert_accepted(&out[1], &v3);
    assert!(matches!(
        out[2],
        IngestOutcome::Rejected(Some(_), Rejection::UnknownMember(_))
    ));
    assert_eq!(
        store.received_not_held(&[before.id(), after.id()]),
        vec![(t(15), after.id())]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. batches (group commit)

#[test]
fn batch_applies_trust_objects_to_later_items_of_the_same_batch() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let del = fed.delegation(1);
    let rec = fed.record(1, "in the same batch", Timestamp(BASE + MINUTE));
    let (out, released) = batch(&mut store, &[&del, &rec]);
    assert_all_accepted(&out, &[&del, &rec]);
    assert!(released.is_empty(), "nothing was pending");
    assert_eq!(store.pending_len(), 0);
    assert!(store.contains(&del.id()).unwrap());
    assert!(store.contains(&rec.id()).unwrap());
    assert_eq!(store.trust().delegations().count(), 1);

    // The order matters: a record before its delegation in a batch waits, and the
    // delegation later in the same batch releases it.
    let rec2 = fed.record(2, "before its delegation", Timestamp(BASE + MINUTE));
    let del2 = fed.delegation(2);
    let (out, released) = batch(&mut store, &[&rec2, &del2]);
    assert!(
        matches!(out[0], IngestOutcome::Pending(id, Missing::Delegation { .. }) if id == rec2.id())
    );
    assert_accepted(&out[1], &del2);
    assert_eq!(released, vec![rec2.id()]);
    assert!(store.contains(&rec2.id()).unwrap());
    assert_eq!(store.pending_len(), 0);
}

#[test]
fn batch_with_a_malformed_item_keeps_the_valid_ones() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let del = fed.delegation(0);
    let r1 = fed.record(0, "first", Timestamp(BASE + MINUTE));
    let r2 = fed.record(0, "second", Timestamp(BASE + 2 * MINUTE));
    // A record with a broken signature (the envelope framing stays intact).
    let mut forged = fed
        .record(0, "forged", Timestamp(BASE + 3 * MINUTE))
        .into_bytes();
    *forged.last_mut().unwrap() ^= 0x01;
    // A record of another federation.
    let foreign = other_fed().record(0, "foreign", Timestamp(BASE + MINUTE));
    let garbage: &[u8] = b"\xa1this is not an envelope";
    let items: Vec<&[u8]> = vec![
        del.as_bytes(),
        garbage,
        r1.as_bytes(),
        &forged,
        foreign.as_bytes(),
        r2.as_bytes(),
    ];
    let (out, released) = store.ingest_batch(&items, NOW).unwrap();
    assert!(released.is_empty());
    assert_eq!(out.len(), 6);
    assert_accepted(&out[0], &del);
    assert!(
        matches!(out[1], IngestOutcome::Rejected(None, Rejection::Decode(_))),
        "{:?}",
        out[1]
    );
    assert_accepted(&out[2], &r1);
    assert!(
        matches!(out[3], IngestOutcome::Rejected(Some(_), Rejection::BadSignature(k)) if k == fed.members[0].publisher.public_key()),
        "{:?}",
        out[3]
    );
    assert!(
        matches!(
            out[4],
            IngestOutcome::Rejected(Some(_), Rejection::WrongFederation { .. })
        ),
        "{:?}",
        out[4]
    );
    assert_accepted(&out[5], &r2);
    assert_eq!(out[1].status(), "rejected");
    assert!(out[1].reason().is_some());
    let counts = store.counts_by_type().unwrap();
    assert_eq!(counts[&ObjectType::Delegation], 1);
    assert_eq!(counts[&ObjectType::Record], 2);
    assert_eq!(
        all_ids(&store),
        BTreeSet::from([fed.federation(), del.id(), r1.id(), r2.id()])
    );
    assert_eq!(
        store.pending_len(),
        0,
        "rejected objects are not quarantined"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. pending quarantine

#[test]
fn record_before_its_delegation_waits_and_is_released() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let rec = fed.record(0, "early", Timestamp(BASE + MINUTE));
    match ingest(&mut store, &rec) {
        IngestOutcome::Pending(id, Missing::Delegation { member, publisher }) => {
            assert_eq!(id, rec.id());
            assert_eq!(member, fed.members[0].code);
            assert_eq!(publisher, fed.members[0].publisher.public_key());
        }
        other => panic!("expected Pending(Delegation), got {other:?}"),
    }
    assert_eq!(store.pending_len(), 1);
    assert!(!store.contains(&rec.id()).unwrap(), "never accepted early");
    assert_eq!(store.record_status(&rec.id()).unwrap(), None);
    assert_eq!(store.counts_by_type().unwrap()[&ObjectType::Record], 0);
    // Submitting it again keeps one quarantine entry.
    assert!(matches!(
        ingest(&mut store, &rec),
        IngestOutcome::Pending(..)
    ));
    assert_eq!(store.pending_len(), 1);
    // Another member's delegation does not release it.
    let (_, released) = batch(&mut store, &[&fed.delegation(1)]);
    assert!(released.is_empty());
    assert_eq!(store.pending_len(), 1);

    let del = fed.delegation(0);
    let (out, released) = batch(&mut store, &[&del]);
    assert_accepted(&out[0], &del);
    assert_eq!(released, vec![rec.id()]);
    assert!(store.contains(&rec.id()).unwrap());
    assert_eq!(store.pending_len(), 0);
    assert_eq!(
        store.get_bytes(&rec.id()).unwrap().unwrap().as_slice(),
        rec.as_bytes()
    );
    assert_eq!(
        store.record_status(&rec.id()).unwrap(),
        Some(RecordStatus::Active)
    );
    let kz_records = Filter {
        members: vec![fed.members[0].code.clone()],
        types: vec![ObjectType::Record],
        ..Filter::default()
    };
    assert_eq!(scan_ids(&store, &kz_records), BTreeSet::from([rec.id()]));
    // After release it is an ordinary stored object: a resubmission is a duplicate.
    assert!(matches!(
        ingest(&mut store, &rec),
        IngestOutcome::Duplicate(_)
    ));
    drop(store);
    assert_eq!(open(dir.path(), &fed).pending_len(), 0);
}

#[test]
fn quarantine_survives_reopen() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let rec = fed.record(2, "waits across a restart", Timestamp(BASE + MINUTE));
    {
        let mut store = open(dir.path(), &fed);
        assert!(matches!(
            ingest(&mut store, &rec),
            IngestOutcome::Pending(_, Missing::Delegation { .. })
        ));
        assert_eq!(store.pending_len(), 1);
    }
    let mut store = open(dir.path(), &fed);
    assert_eq!(store.pending_len(), 1);
    assert!(!store.contains(&rec.id()).unwrap());
    let del = fed.delegation(2);
    let (out, released) = batch(&mut store, &[&del]);
    assert_accepted(&out[0], &del);
    assert_eq!(released, vec![rec.id()]);
    assert!(store.contains(&rec.id()).unwrap());
    assert_eq!(store.pending_len(), 0);
    drop(store);
    let store = open(dir.path(), &fed);
    assert_eq!(store.pending_len(), 0);
    assert!(store.contains(&rec.id()).unwrap());
}

#[test]
fn quarantine_is_bounded() {
    let fed = fed();
    let opts = StoreOptions {
        max_pending: 3,
        ..StoreOptions::default()
    };
    let recs: Vec<SignedObject> = (0..5)
        .map(|n| fed.record(0, &format!("pending {n}"), Timestamp(BASE + 1 + n * MINUTE)))
        .collect();

    // One at a time.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), fed.genesis.as_bytes(), opts.clone()).unwrap();
    for r in &recs[..3] {
        assert!(matches!(ingest(&mut store, r), IngestOutcome::Pending(..)));
    }
    assert_eq!(store.pending_len(), 3);
    match ingest(&mut store, &recs[3]) {
        IngestOutcome::QuarantineFull(id, Missing::Delegation { .. }) => {
            assert_eq!(id, recs[3].id())
        }
        other => panic!("expected QuarantineFull, got {other:?}"),
    }
    assert_eq!(store.pending_len(), 3);
    // An object already in the quarantine is not refused when it comes again.
    assert!(matches!(
        ingest(&mut store, &recs[0]),
        IngestOutcome::Pending(..)
    ));
    // The delegation releases the three kept ones, not the refused one.
    let (_, released) = batch(&mut store, &[&fed.delegation(0)]);
    let released: BTreeSet<ObjectId> = released.into_iter().collect();
    assert_eq!(
        released,
        recs[..3].iter().map(|r| r.id()).collect::<BTreeSet<_>>()
    );
    assert!(!store.contains(&recs[3].id()).unwrap());
    assert_eq!(store.pending_len(), 0);
    // Room again: the refused one can now be submitted and is accepted.
    assert_accepted(&ingest(&mut store, &recs[3]), &recs[3]);
    drop(store);

    // All in one batch: the bound counts objects quarantined earlier in the same batch.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), fed.genesis.as_bytes(), opts).unwrap();
    let refs: Vec<&SignedObject> = recs.iter().collect();
    let (out, _) = batch(&mut store, &refs);
    let statuses: Vec<&str> = out.iter().map(IngestOutcome::status).collect();
    assert_eq!(
        statuses,
        [
            "pending",
            "pending",
            "pending",
            "quarantine-full",
            "quarantine-full"
        ]
    );
    assert_eq!(store.pending_len(), 3);
    drop(store);
    let store = Store::open(
        dir.path(),
        fed.genesis.as_bytes(),
        StoreOptions {
            max_pending: 3,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    assert_eq!(store.pending_len(), 3);
}

/// Records of member `i` signed by fresh keys nobody delegated (they can only wait).
fn flood(fed: &DevFederation, i: usize, from: u32, n: u32) -> Vec<SignedObject> {
    (from..from + n)
        .map(|k| {
            let mut seed = [0xee; 32];
            seed[..4].copy_from_slice(&k.to_be_bytes());
            let key = accord_core::SecretKey::from_seed(seed);
            Object::Record(fed.record_body(i, &format!("flood {k}"), Timestamp(BASE + MINUTE)))
                .sign(&key)
        })
        .collect()
}

fn ingest_as(store: &mut Store, objs: &[SignedObject], source: &str) -> Vec<IngestOutcome> {
    let items: Vec<(&[u8], &str)> = objs.iter().map(|o| (o.as_bytes(), source)).collect();
    store.ingest_from(&items, NOW).unwrap().0
}

/// An outsider floods the quarantine with records of fresh keys from one source; a legitimate
/// record that arrives afterwards, before its delegation, from another source still gets in,
/// stays however long the flood goes on, and is stored once its delegation arrives.
#[test]
fn a_flood_from_one_source_cannot_keep_out_a_legitimate_early_arrival() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        max_pending: 100,
        max_pending_per_source: 60,
        max_pending_per_member: 80,
        ..StoreOptions::default()
    };
    let mut store = Store::open(dir.path(), fed.genesis.as_bytes(), opts.clone()).unwrap();
    // One source: only its share is kept, the rest is refused at once.
    let out = ingest_as(&mut store, &flood(&fed, 0, 0, 200), "peer evil");
    let pending = out.iter().filter(|o| o.status() == "pending").count();
    let full = out
        .iter()
        .filter(|o| o.status() == "quarantine-full")
        .count();
    assert_eq!((pending, full), (60, 140));
    // A second hostile source, claiming the same member: bounded by the member's share.
    let out = ingest_as(&mut store, &flood(&fed, 0, 1000, 200), "peer evil-2");
    assert!(out.iter().any(|o| o.status() == "pending"));
    assert_eq!(store.pending_len(), 80, "member 0's share");
    // The legitimate record of member 0, from an honest peer, before its delegation.
    let rec = fed.record(0, "early but honest", Timestamp(BASE + 2 * MINUTE));
    let out = ingest_as(&mut store, std::slice::from_ref(&rec), "peer honest");
    assert_eq!(out[0].status(), "pending", "{:?}", out[0]);
    // The flood goes on from both hostile sources, for this member and another one.
    for (k, source) in [
        (2000, "peer evil"),
        (3000, "peer evil-2"),
        (4000, "peer evil"),
    ] {
        ingest_as(&mut store, &flood(&fed, 0, k, 300), source);
        ingest_as(&mut store, &flood(&fed, 1, k + 500, 300), source);
    }
    assert!(store.pending_len() <= 100);
    // Across a restart, too.
    drop(store);
    let mut store = Store::open(dir.path(), fed.genesis.as_bytes(), opts).unwrap();
    let sources = store.pending_sources();
    assert!(
        sources.iter().any(|(s, n)| s == "peer honest" && *n == 1),
        "{sources:?}"
    );
    let (_, released) = batch(&mut store, &[&fed.delegation(0)]);
    assert!(released.contains(&rec.id()));
    assert!(store.contains(&rec.id()).unwrap());
}

/// Entries expire after the time-to-live, counted from when they arrived, across restarts.
#[test]
fn quarantine_entries_expire_across_a_restart() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        pending_ttl_ms: 60 * MINUTE,
        ..StoreOptions::default()
    };
    let mut store = Store::open(dir.path(), fed.genesis.as_bytes(), opts.clone()).unwrap();
    let old = fed.record(2, "waits too long", Timestamp(BASE + MINUTE));
    let items: Vec<(&[u8], &str)> = vec![(old.as_bytes(), "peer a")];
    store.ingest_from(&items, NOW).unwrap();
    let young = fed.record(2, "waits briefly", Timestamp(BASE + 2 * MINUTE));
    let later = Timestamp(NOW.0 + 30 * MINUTE);
    let items: Vec<(&[u8], &str)> = vec![(young.as_bytes(), "peer a")];
    store.ingest_from(&items, later).unwrap();
    assert_eq!(store.pending_len(), 2);
    drop(store);
    let mut store = Store::open(dir.path(), fed.genesis.as_bytes(), opts.clone()).unwrap();
    assert_eq!(store.pending_len(), 2);
    // 61 minutes after the first arrived: it goes, the younger one stays.
    assert_eq!(
        store
            .expire_pending(Timestamp(NOW.0 + 61 * MINUTE))
            .unwrap(),
        1
    );
    drop(store);
    let mut store = Store::open(dir.path(), fed.genesis.as_bytes(), opts).unwrap();
    assert_eq!(store.pending_len(), 1);
    // Its delegation releases only the one still waiting.
    let (_, released) = batch(&mut store, &[&fed.delegation(2)]);
    assert_eq!(released, vec![young.id()]);
    assert!(!store.contains(&old.id()).unwrap());
}

/// A clock that ran ahead and was corrected (stepped back) does not stop the expiry: objects
/// that arrive after the correction expire after the time-to-live, not once the clock has
/// caught up with the time it had shown (a month here).
#[test]
fn quarantine_entries_expire_after_the_clock_is_stepped_back() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        pending_ttl_ms: 60 * MINUTE,
        ..StoreOptions::default()
    };
    let mut store = Store::open(dir.path(), fed.genesis.as_bytes(), opts).unwrap();
    // Something stored while the clock read a month ahead.
    let month_ahead = Timestamp(NOW.0 + 30 * 24 * 60 * MINUTE);
    let (out, _) = store
        .ingest_batch(&[fed.delegation(0).as_bytes()], month_ahead)
        .unwrap();
    assert_eq!(out[0].status(), "accepted", "{out:?}");
    // The clock is corrected; an object waits for its delegation from then on.
    let waits = fed.record(2, "waits too long", Timestamp(BASE + MINUTE));
    let items: Vec<(&[u8], &str)> = vec![(waits.as_bytes(), "peer a")];
    store.ingest_from(&items, NOW).unwrap();
    assert_eq!(store.pending_len(), 1);
    // Past its time-to-live, the next commit expires it.
    let later = fed.record(0, "a later record", Timestamp(BASE + 3 * MINUTE));
    let items: Vec<(&[u8], &str)> = vec![(later.as_bytes(), "peer a")];
    store
        .ingest_from(&items, Timestamp(NOW.0 + 61 * MINUTE))
        .unwrap();
    assert_eq!(store.pending_len(), 0, "expired after the time-to-live");
}

// ---------------------------------------------------------------------------------------------
// 6. retraction before its record

#[test]
fn author_retraction_before_its_record_waits_for_the_record() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    assert_accepted(&ingest(&mut store, &fed.delegation(0)), &fed.delegation(0));
    let rec = fed.record(0, "to be withdrawn", Timestamp(BASE + MINUTE));
    let ret = retraction(&fed, 0, rec.id(), BASE + 2 * MINUTE, false);
    match ingest(&mut store, &ret) {
        IngestOutcome::Pending(id, Missing::Record(r)) => {
            assert_eq!(id, ret.id());
            assert_eq!(r, rec.id());
        }
        other => panic!("expected Pending(Record), got {other:?}"),
    }
    assert_eq!(store.pending_len(), 1);
    assert!(!store.contains(&ret.id()).unwrap());

    let (out, released) = batch(&mut store, &[&rec]);
    assert_accepted(&out[0], &rec);
    assert_eq!(released, vec![ret.id()]);
    assert!(store.contains(&ret.id()).unwrap());
    assert_eq!(store.pending_len(), 0);
    assert_eq!(
        store.record_status(&rec.id()).unwrap(),
        Some(RecordStatus::Retracted)
    );
    assert_eq!(store.history(&rec.id()).unwrap(), (vec![ret.id()], vec![]));
    assert_eq!(store.counts_by_type().unwrap()[&ObjectType::Retraction], 1);
}

#[test]
fn chained_release_record_then_its_retraction() {
    // The retraction waits for the record, which waits for its delegation: one delegation
    // releases both, in order.
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let rec = fed.record(1, "chained", Timestamp(BASE + MINUTE));
    let ret = retraction(&fed, 1, rec.id(), BASE + 2 * MINUTE, false);
    assert!(matches!(
        ingest(&mut store, &ret),
        IngestOutcome::Pending(_, Missing::Record(_))
    ));
    assert!(matches!(
        ingest(&mut store, &rec),
        IngestOutcome::Pending(_, Missing::Delegation { .. })
    ));
    assert_eq!(store.pending_len(), 2);
    let (_, released) = batch(&mut store, &[&fed.delegation(1)]);
    assert_eq!(released, vec![rec.id(), ret.id()]);
    assert_eq!(store.pending_len(), 0);
    assert_eq!(
        store.record_status(&rec.id()).unwrap(),
        Some(RecordStatus::Retracted)
    );
    drop(store);
    assert_eq!(open(dir.path(), &fed).pending_len(), 0);
}

/// A hostile member (a valid root key) retracts another member's record, before and after it
/// arrives: never stored, never counted, and the record stays active. The owner's own root
/// retraction sent in advance waits and takes effect when the record arrives.
#[test]
fn a_member_cannot_retract_another_members_record_even_in_advance() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    assert_accepted(&ingest(&mut store, &fed.delegation(0)), &fed.delegation(0));
    let rec = fed.record(0, "KZ's record", Timestamp(BASE + MINUTE));
    // member 1's root, naming itself as the member, for member 0's record not yet known.
    let hostile = retraction(&fed, 1, rec.id(), BASE + 2 * MINUTE, true);
    assert!(matches!(
        ingest(&mut store, &hostile),
        IngestOutcome::Pending(_, Missing::Record(r)) if r == rec.id()
    ));
    let (out, released) = batch(&mut store, &[&rec]);
    assert_accepted(&out[0], &rec);
    assert!(released.is_empty(), "the hostile retraction was released");
    assert!(!store.contains(&hostile.id()).unwrap());
    assert_eq!(
        store.pending_len(),
        0,
        "judged and dropped from the quarantine"
    );
    // Now that the record is known it is refused at once.
    match ingest(&mut store, &hostile) {
        IngestOutcome::Rejected(_, Rejection::RetractionOtherMember { record, .. }) => {
            assert_eq!(record, rec.id())
        }
        other => panic!("expected RetractionOtherMember, got {other:?}"),
    }
    assert_eq!(
        store.record_status(&rec.id()).unwrap(),
        Some(RecordStatus::Active)
    );
    assert_eq!(store.history(&rec.id()).unwrap(), (vec![], vec![]));

    // The owner's root retracts a record of its own in advance: it waits, then counts.
    let later = fed.record(0, "KZ's second record", Timestamp(BASE + 3 * MINUTE));
    let own = retraction(&fed, 0, later.id(), BASE + 4 * MINUTE, true);
    assert!(matches!(
        ingest(&mut store, &own),
        IngestOutcome::Pending(..)
    ));
    let (_, released) = batch(&mut store, &[&later]);
    assert_eq!(released, vec![own.id()]);
    assert_eq!(
        store.record_status(&later.id()).unwrap(),
        Some(RecordStatus::Retracted)
    );
}

/// A revocation that arrived before the delegation it revokes waits for it, and takes effect
/// before the rest of the batch that brings the delegation is judged.
#[test]
fn a_revocation_waiting_for_its_delegation_applies_within_the_same_batch() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let del = fed.delegation(0);
    let rev = revocation(
        &fed,
        0,
        TargetType::Delegation,
        del.id(),
        BASE + 2 * MINUTE,
        BASE + 3 * MINUTE,
    );
    assert!(matches!(
        ingest(&mut store, &rev),
        IngestOutcome::Pending(_, Missing::TrustObject(d)) if d == del.id()
    ));
    let before = fed.record(0, "before the revocation", Timestamp(BASE + MINUTE));
    let after = fed.record(0, "after the revocation", Timestamp(BASE + 5 * MINUTE));
    let (out, released) = batch(&mut store, &[&del, &after, &before]);
    assert_accepted(&out[0], &del);
    assert_eq!(released, vec![rev.id()]);
    assert!(
        matches!(
            &out[1],
            IngestOutcome::Rejected(_, Rejection::SignerRevoked { .. })
        ),
        "{:?}",
        out[1]
    );
    assert_accepted(&out[2], &before);
    // Member 1's root cannot revoke member 0's delegation.
    let hostile = revocation(
        &fed,
        1,
        TargetType::Delegation,
        del.id(),
        BASE,
        BASE + 3 * MINUTE,
    );
    assert!(matches!(
        ingest(&mut store, &hostile),
        IngestOutcome::Rejected(_, Rejection::RevocationOtherMember { .. })
    ));
}

/// An object that is in the quarantine and is submitted again in the same batch as its
/// prerequisite is accepted directly; its quarantine entry must go away too.
#[test]
fn quarantine_entry_is_removed_when_the_object_arrives_again_with_its_prerequisite() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let rec = fed.record(0, "gossiped early", Timestamp(BASE + MINUTE));
    assert!(matches!(
        ingest(&mut store, &rec),
        IngestOutcome::Pending(..)
    ));
    assert_eq!(store.pending_len(), 1);
    // Reconciliation later fetches the delegation and the record together.
    let del = fed.delegation(0);
    let (out, _) = batch(&mut store, &[&del, &rec]);
    assert_all_accepted(&out, &[&del, &rec]);
    assert!(store.contains(&rec.id()).unwrap());
    assert_eq!(
        store.pending_len(),
        0,
        "the record is stored, yet its quarantine entry remains"
    );
    drop(store);
    assert_eq!(open(dir.path(), &fed).pending_len(), 0);
}

// ---------------------------------------------------------------------------------------------
// 7. derived status

#[test]
fn derived_record_status() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let del = fed.delegation(0);
    assert_accepted(&ingest(&mut store, &del), &del);

    // Active by default.
    let r1 = fed.record(0, "original", Timestamp(BASE + MINUTE));
    assert_accepted(&ingest(&mut store, &r1), &r1);
    assert_eq!(
        store.record_status(&r1.id()).unwrap(),
        Some(RecordStatus::Active)
    );
    assert_eq!(store.history(&r1.id()).unwrap(), (vec![], vec![]));

    // Superseded by a newer record of the same member.
    let r2 = record_with(
        &fed,
        0,
        "revised",
        BASE + 2 * MINUTE,
        "regulatory-note",
        &["regulation"],
        Some(r1.id()),
    );
    assert_accepted(&ingest(&mut store, &r2), &r2);
    assert_eq!(
        store.record_status(&r1.id()).unwrap(),
        Some(RecordStatus::Superseded)
    );
    assert_eq!(
        store.record_status(&r2.id()).unwrap(),
        Some(RecordStatus::Active)
    );
    assert_eq!(store.history(&r1.id()).unwrap(), (vec![], vec![r2.id()]));

    // Retracted by the member root (no delegation needed for that).
    let r3 = fed.record(0, "withdrawn", Timestamp(BASE + 3 * MINUTE));
    assert_accepted(&ingest(&mut store, &r3), &r3);
    let ret = retraction(&fed, 0, r3.id(), BASE + 4 * MINUTE, true);
    assert_accepted(&ingest(&mut store, &ret), &ret);
    assert_eq!(
        store.record_status(&r3.id()).unwrap(),
        Some(RecordStatus::Retracted)
    );
    assert_eq!(store.history(&r3.id()).unwrap(), (vec![ret.id()], vec![]));
    // Retraction wins over supersession.
    let ret1 = retraction(&fed, 0, r1.id(), BASE + 4 * MINUTE, true);
    assert_accepted(&ingest(&mut store, &ret1), &ret1);
    assert_eq!(
        store.record_status(&r1.id()).unwrap(),
        Some(RecordStatus::Retracted)
    );
    assert_eq!(
        store.history(&r1.id()).unwrap(),
        (vec![ret1.id()], vec![r2.id()])
    );

    // Signer revoked: the record arrives first, then a revocation of its delegation that
    // is effective before the record was created.
    let r_before = fed.record(0, "before the revocation", Timestamp(BASE + 5 * MINUTE));
    let r_after = fed.record(0, "after the revocation", Timestamp(BASE + 10 * MINUTE));
    let (out, _) = batch(&mut store, &[&r_before, &r_after]);
    assert_all_accepted(&out, &[&r_before, &r_after]);
    let rev = revocation(
        &fed,
        0,
        TargetType::Delegation,
        del.id(),
        BASE + 8 * MINUTE,
        BASE + 20 * MINUTE,
    );
    assert_accepted(&ingest(&mut store, &rev), &rev);
    assert_eq!(
        store.record_status(&r_after.id()).unwrap(),
        Some(RecordStatus::SignerRevoked)
    );
    assert_eq!(
        store.record_status(&r_before.id()).unwrap(),
        Some(RecordStatus::Active),
        "records created before the effective time keep their status"
    );
    assert_eq!(
        store.record_status(&r2.id()).unwrap(),
        Some(RecordStatus::Active)
    );
    // New records by the revoked delegation are refused.
    let late = fed.record(0, "too late", Timestamp(BASE + 30 * MINUTE));
    assert!(matches!(
        ingest(&mut store, &late),
        IngestOutcome::Rejected(Some(_), Rejection::SignerRevoked { .. })
    ));

    // Status is derived on reopen too (trust rebuilt with the revocation).
    drop(store);
    let store = open(dir.path(), &fed);
    let expect = [
        (r1.id(), RecordStatus::Retracted),
        (r2.id(), RecordStatus::Active),
        (r3.id(), RecordStatus::Retracted),
        (r_before.id(), RecordStatus::Active),
        (r_after.id(), RecordStatus::SignerRevoked),
    ];
    for (id, s) in expect {
        assert_eq!(store.record_status(&id).unwrap(), Some(s), "{id}");
    }
    // And the status filter agrees.
    for s in RecordStatus::ALL {
        let f = Filter {
            statuses: vec![s],
            ..Filter::default()
        };
        let want: BTreeSet<ObjectId> = expect
            .iter()
            .filter(|(_, x)| *x == s)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(scan_ids(&store, &f), want, "status {s}");
    }
    // Not records: no status.
    assert_eq!(store.record_status(&ret.id()).unwrap(), None);
    assert_eq!(store.record_status(&del.id()).unwrap(), None);
    assert_eq!(store.record_status(&late.id()).unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// 8. queries and pagination

#[test]
fn query_filters_match_a_naive_count() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let QuerySet { store, models, .. } = build_query_set(dir.path(), &fed);
    let total = models.len();
    let code = |i: usize| fed.members[i].code.clone();
    let t = |minute: u64| Some(Timestamp(BASE + 1 + minute * MINUTE));
    let filters: Vec<(&str, Filter)> = vec![
        (
            "one member",
            Filter {
                members: vec![code(0)],
                ..Filter::default()
            },
        ),
        (
            "one member, records",
            Filter {
                members: vec![code(1)],
                types: vec![ObjectType::Record],
                ..Filter::default()
            },
        ),
        (
            "kind",
            Filter {
                kinds: vec!["skills-programme".into()],
                ..Filter::default()
            },
        ),
        (
            "two kinds",
            Filter {
                kinds: vec!["dataset".into(), "standard".into()],
                ..Filter::default()
            },
        ),
        (
            "direction",
            Filter {
                directions: vec!["education".into()],
                ..Filter::default()
            },
        ),
        (
            "two directions",
            Filter {
                directions: vec!["e-government".into(), "digital-skills".into()],
                ..Filter::default()
            },
        ),
        (
            "two members",
            Filter {
                members: vec![code(0), code(2)],
                ..Filter::default()
            },
        ),
        (
            "member and kind",
            Filter {
                members: vec![code(1)],
                kinds: vec!["regulatory-note".into()],
                ..Filter::default()
            },
        ),
        (
            "two kinds and a direction",
            Filter {
                kinds: vec!["event-report".into(), "other".into()],
                directions: vec!["regulation".into()],
                ..Filter::default()
            },
        ),
        (
            "since",
            Filter {
                since: t(20),
                ..Filter::default()
            },
        ),
        (
            "until",
            Filter {
                until: t(20),
                ..Filter::default()
            },
        ),
        (
            "since and until",
            Filter {
                since: t(10),
                until: t(40),
                ..Filter::default()
            },
        ),
        (
            "member, since and until",
            Filter {
                members: vec![code(2)],
                since: t(5),
                until: t(25),
                ..Filter::default()
            },
        ),
        (
            "direction, since",
            Filter {
                directions: vec!["infrastructure".into()],
                since: t(30),
                ..Filter::default()
            },
        ),
        (
            "retracted",
            Filter {
                statuses: vec![RecordStatus::Retracted],
                ..Filter::default()
            },
        ),
        (
            "superseded",
            Filter {
                statuses: vec![RecordStatus::Superseded],
                ..Filter::default()
            },
        ),
        (
            "active or superseded, one member",
            Filter {
                statuses: vec![RecordStatus::Active, RecordStatus::Superseded],
                members: vec![code(0)],
                ..Filter::default()
            },
        ),
        (
            "author",
            Filter {
                authors: vec![fed.members[2].publisher.public_key()],
                ..Filter::default()
            },
        ),
        (
            "root authors (retractions, delegations)",
            Filter {
                authors: vec![
                    fed.members[0].root.public_key(),
                    fed.members[1].root.public_key(),
                ],
                ..Filter::default()
            },
        ),
        (
            "retractions",
            Filter {
                types: vec![ObjectType::Retraction],
                ..Filter::default()
            },
        ),
        (
            "records and delegations",
            Filter {
                types: vec![ObjectType::Record, ObjectType::Delegation],
                ..Filter::default()
            },
        ),
    ];
    // The whole set first.
    let everything = naive(&models, &Filter::default());
    assert_eq!(everything.len(), total);
    assert_eq!(
        scan(&store, &Filter::default(), Order::OldestFirst, 1000),
        everything
    );
    assert_eq!(store.count(&Filter::default()).unwrap(), total as u64);
    let records = Filter {
        types: vec![ObjectType::Record],
        ..Filter::default()
    };
    assert_eq!(store.count(&records).unwrap(), 200);

    for (name, f) in &filters {
        let want = naive(&models, f);
        assert!(
            !want.is_empty() && want.len() < total,
            "{name}: the data set should make this filter selective ({} of {total})",
            want.len()
        );
        let got = scan(&store, f, Order::OldestFirst, 1000);
        assert_eq!(got, want, "{name}: oldest first");
        let mut got_new = scan(&store, f, Order::NewestFirst, 1000);
        got_new.reverse();
        assert_eq!(got_new, want, "{name}: newest first");
        assert_eq!(store.count(f).unwrap(), want.len() as u64, "{name}: count");
        // Statuses reported with the items agree with the model.
        let page = store
            .query(
                f,
                Page {
                    limit: 1000,
                    after: None,
                    order: Order::OldestFirst,
                },
            )
            .unwrap();
        let by_id: BTreeMap<ObjectId, &Model> = models.iter().map(|m| (m.id, m)).collect();
        for (s, status) in &page.items {
            assert_eq!(*status, by_id[&s.signed.id()].status, "{name}");
        }
    }
    // An empty range.
    let empty = Filter {
        since: t(40),
        until: t(10),
        ..Filter::default()
    };
    assert_eq!(store.count(&empty).unwrap(), 0);
}

#[test]
fn pagination_returns_each_match_once_in_order() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let QuerySet { store, models, .. } = build_query_set(dir.path(), &fed);
    let filters = [
        Filter::default(),
        Filter {
            types: vec![ObjectType::Record],
            ..Filter::default()
        },
        Filter {
            members: vec![fed.members[1].code.clone()],
            ..Filter::default()
        },
        Filter {
            directions: vec!["digital-economy".into()],
            since: Some(Timestamp(BASE + 1 + 15 * MINUTE)),
            until: Some(Timestamp(BASE + 1 + 45 * MINUTE)),
            ..Filter::default()
        },
        Filter {
            statuses: vec![RecordStatus::Active],
            members: vec![fed.members[0].code.clone(), fed.members[2].code.clone()],
            ..Filter::default()
        },
    ];
    for f in &filters {
        let want = naive(&models, f);
        for order in [Order::OldestFirst, Order::NewestFirst] {
            let got = scan(&store, f, order, 7);
            assert_strictly_monotonic(&got, order);
            let ids: BTreeSet<ObjectId> = got.iter().map(|(_, id)| *id).collect();
            assert_eq!(ids.len(), got.len(), "{f:?} {order:?}: duplicates");
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(sorted, want, "{f:?} {order:?}");
        }
    }
    // The first page has exactly `limit` items and a cursor on its last item.
    let page = store
        .query(
            &Filter::default(),
            Page {
                limit: 7,
                after: None,
                order: Order::NewestFirst,
            },
        )
        .unwrap();
    assert_eq!(page.items.len(), 7);
    let all = naive(&models, &Filter::default());
    assert_eq!(
        page.next.map(|c| (c.created, c.id)),
        Some(all[all.len() - 7])
    );
}

#[test]
fn pagination_is_stable_under_concurrent_inserts() {
    let fed = fed();
    for order in [Order::OldestFirst, Order::NewestFirst] {
        let dir = tempfile::tempdir().unwrap();
        let QuerySet {
            mut store, records, ..
        } = build_query_set(dir.path(), &fed);
        let f = Filter {
            types: vec![ObjectType::Record],
            ..Filter::default()
        };
        let mut seen: Vec<(Timestamp, ObjectId)> = Vec::new();
        let mut after = None;
        let mut inserted: Vec<(Timestamp, ObjectId)> = Vec::new();
        let mut cursor_at_insert = None;
        for page_no in 0.. {
            let page = store
                .query(
                    &f,
                    Page {
                        limit: 7,
                        after,
                        order,
                    },
                )
                .unwrap();
            seen.extend(
                page.items
                    .iter()
                    .map(|(s, _)| (s.object.created(), s.signed.id())),
            );
            let Some(next) = page.next else { break };
            // Between the third and the fourth page, other records arrive: before, at and
            // after the cursor position.
            if page_no == 2 {
                cursor_at_insert = Some((next.created, next.id));
                let mut new = vec![
                    fed.record(1, "at the cursor time", next.created),
                    fed.record(2, "a millisecond later", Timestamp(next.created.0 + 1)),
                    fed.record(0, "a millisecond earlier", Timestamp(next.created.0 - 1)),
                ];
                for k in 0..12u64 {
                    new.push(fed.record(
                        (k % 3) as usize,
                        &format!("inserted {k}"),
                        Timestamp(BASE + 1 + (k * 5) * MINUTE),
                    ));
                }
                let refs: Vec<&SignedObject> = new.iter().collect();
                let (out, _) = batch(&mut store, &refs);
                assert_all_accepted(&out, &refs);
                inserted = new.iter().map(|s| (model(s).created, s.id())).collect();
            }
            after = Some(next);
        }
        assert_strictly_monotonic(&seen, order);
        let ids: BTreeSet<ObjectId> = seen.iter().map(|(_, id)| *id).collect();
        assert_eq!(
            ids.len(),
            seen.len(),
            "{order:?}: an item was returned twice"
        );
        for r in &records {
            assert!(
                ids.contains(r),
                "{order:?}: original record {r} was skipped"
            );
        }
        // New records still ahead of the scan are returned; those behind it are not.
        let cursor = cursor_at_insert.unwrap();
        assert_eq!(inserted.len(), 15);
        for item in &inserted {
            let ahead = match order {
                Order::OldestFirst => *item > cursor,
                Order::NewestFirst => *item < cursor,
            };
            assert_eq!(ids.contains(&item.1), ahead, "{order:?}: inserted {item:?}");
        }
        assert!(
            inserted.iter().any(|i| ids.contains(&i.1))
                && inserted.iter().any(|i| !ids.contains(&i.1)),
            "the inserts fall on both sides of the cursor"
        );
    }
}

#[test]
fn cursor_text_round_trip() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let QuerySet { store, .. } = build_query_set(dir.path(), &fed);
    let page = store
        .query(
            &Filter::default(),
            Page {
                limit: 7,
                after: None,
                order: Order::OldestFirst,
            },
        )
        .unwrap();
    let c = page.next.unwrap();
    let text = c.to_string();
    assert_eq!(text.len(), 80);
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let parsed: Cursor = text.parse().unwrap();
    assert_eq!(parsed, c);
    // A parsed cursor continues the scan exactly like the original.
    let a = store
        .query(
            &Filter::default(),
            Page {
                limit: 7,
                after: Some(c),
                order: Order::OldestFirst,
            },
        )
        .unwrap();
    let b = store
        .query(
            &Filter::default(),
            Page {
                limit: 7,
                after: Some(parsed),
                order: Order::OldestFirst,
            },
        )
        .unwrap();
    let ids = |p: &accord_store::QueryPage| -> Vec<ObjectId> {
        p.items.iter().map(|(s, _)| s.signed.id()).collect()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.items.len(), 7);
    // Extreme values round-trip too.
    for c in [
        Cursor {
            created: Timestamp(0),
            id: ObjectId([0; 32]),
        },
        Cursor {
            created: Timestamp::MAX,
            id: ObjectId([0xff; 32]),
        },
    ] {
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
    }
    for bad in [
        "".to_string(),
        "not a cursor".to_string(),
        "00".repeat(39),
        "00".repeat(41),
        "0".repeat(79),
        "g".repeat(80),
        format!("{text} "),
        text[..78].to_string(),
    ] {
        assert!(bad.parse::<Cursor>().is_err(), "{bad:?} parsed");
    }
}

// ---------------------------------------------------------------------------------------------
// 9. export and import

/// A store with trust objects of every kind, records, supersession and retractions.
fn build_export_store(dir: &Path, fed: &DevFederation) -> (Store, Vec<SignedObject>) {
    let mut store = open(dir, fed);
    let mut objs: Vec<SignedObject> = fed.trust_objects();
    let mut recs = Vec::new();
    for n in 0..30u64 {
        let i = (n % 3) as usize;
        recs.push(fed.record(i, &format!("export {n}"), Timestamp(BASE + 1 + n * MINUTE)));
    }
    let sup = record_with(
        fed,
        0,
        "revision",
        BASE + 40 * MINUTE,
        "standard",
        &["ict-science", "education"],
        Some(recs[0].id()),
    );
    let ret_author = retraction(fed, 1, recs[1].id(), BASE + 41 * MINUTE, false);
    let ret_root = retraction(fed, 2, recs[2].id(), BASE + 42 * MINUTE, true);
    // A node certificate revocation (does not affect any record).
    let node_rev = revocation(
        fed,
        2,
        TargetType::Node,
        fed.node_cert(2).id(),
        BASE + 43 * MINUTE,
        BASE + 43 * MINUTE,
    );
    objs.extend(recs);
    objs.extend([sup, ret_author, ret_root, node_rev]);
    let refs: Vec<&SignedObject> = objs.iter().collect();
    let (out, _) = batch(&mut store, &refs);
    assert_all_accepted(&out, &refs);
    (store, objs)
}

#[test]
fn export_import_round_trip() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let (store, objs) = build_export_store(dir.path(), &fed);
    let mut file = Vec::new();
    let n = store.export(&mut file).unwrap();
    let counts = store.counts_by_type().unwrap();
    assert_eq!(n, counts.values().sum::<u64>());
    assert_eq!(n as usize, objs.len() + 1, "every object and the genesis");
    // The file is a CBOR sequence of the exact stored envelopes, trust objects first.
    let limits = *store.trust().limits();
    let items = accord_core::cbor::split_sequence(&file, limits.scan()).unwrap();
    assert_eq!(items.len() as u64, n);
    assert_eq!(items[0], fed.genesis.as_bytes(), "the genesis comes first");
    let types: Vec<ObjectType> = items
        .iter()
        .map(|b| model(&SignedObject::decode(b, limits.max_bytes(), limits.scan()).unwrap()).ty)
        .collect();
    // Export order: charters, delegations, node certificates, records, retractions, and
    // revocations last (so that records are re-validated under the trust they were accepted in).
    let rank = |t: &ObjectType| match t {
        ObjectType::Charter => 0,
        ObjectType::Delegation => 1,
        ObjectType::Node => 2,
        ObjectType::Record => 3,
        ObjectType::Retraction => 4,
        ObjectType::Revocation => 5,
    };
    let mut sorted = types.clone();
    sorted.sort_by_key(rank);
    assert_eq!(types, sorted, "grouped by type in export order");

    let dir2 = tempfile::tempdir().unwrap();
    let mut fresh = open(dir2.path(), &fed);
    let report = fresh.import(&mut std::io::Cursor::new(&file), NOW).unwrap();
    assert_eq!(report.accepted as u64, n - 1);
    assert_eq!(report.duplicate, 1, "the genesis");
    assert_eq!(report.rejected, 0);
    assert_eq!(report.pending, 0);
    assert_eq!(report.released, 0);
    assert_eq!(fresh.counts_by_type().unwrap(), counts);
    let ids = all_ids(&store);
    assert_eq!(all_ids(&fresh), ids);
    for id in &ids {
        assert_eq!(
            fresh.get_bytes(id).unwrap().unwrap(),
            store.get_bytes(id).unwrap().unwrap(),
            "{id}"
        );
        assert_eq!(
            fresh.record_status(id).unwrap(),
            store.record_status(id).unwrap(),
            "{id}"
        );
    }
    assert_eq!(fresh.trust().delegations().count(), 3);
    // Importing the same file again changes nothing.
    let again = fresh.import(&mut std::io::Cursor::new(&file), NOW).unwrap();
    assert_eq!(again.duplicate as u64, n);
    assert_eq!(again.accepted, 0);
    assert_eq!(fresh.counts_by_type().unwrap(), counts);
}

#[test]
fn import_skips_a_corrupted_object_and_keeps_the_rest() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let (store, objs) = build_export_store(dir.path(), &fed);
    let mut file = Vec::new();
    let n = store.export(&mut file).unwrap();
    let limits = *store.trust().limits();
    // A record in the middle that nothing refers to: "export 15".
    let victim = objs
        .iter()
        .find(|o| {
            matches!(Object::decode_body(o.body(), &accord_core::Limits::default()).unwrap(),
                Object::Record(r) if r.title["en"] == "export 15")
        })
        .unwrap();
    let items = accord_core::cbor::split_sequence(&file, limits.scan()).unwrap();
    let pos = items.iter().position(|b| *b == victim.as_bytes()).unwrap();
    assert!(
        pos > 0 && pos + 1 < items.len(),
        "in the middle of the file"
    );
    let mut corrupted = Vec::new();
    for (k, b) in items.iter().enumerate() {
        let start = corrupted.len();
        corrupted.extend_from_slice(b);
        if k == pos {
            // The last byte belongs to the signature: the CBOR framing stays intact.
            *corrupted.last_mut().unwrap() ^= 0x40;
            assert_ne!(&corrupted[start..], *b);
        }
    }
    assert_eq!(corrupted.len(), file.len());

    let dir2 = tempfile::tempdir().unwrap();
    let mut fresh = open(dir2.path(), &fed);
    let report = fresh
        .import(&mut std::io::Cursor::new(&corrupted), NOW)
        .unwrap();
    assert_eq!(report.rejected, 1);
    assert_eq!(report.duplicate, 1);
    assert_eq!(report.pending, 0);
    assert_eq!(report.accepted as u64, n - 2);
    assert!(!fresh.contains(&victim.id()).unwrap());
    let mut want = all_ids(&store);
    want.remove(&victim.id());
    assert_eq!(all_ids(&fresh), want);
    let mut counts = store.counts_by_type().unwrap();
    *counts.get_mut(&ObjectType::Record).unwrap() -= 1;
    assert_eq!(fresh.counts_by_type().unwrap(), counts);

    // A file whose framing is broken is refused as a whole, with an import error.
    let mut truncated = file.clone();
    truncated.truncate(file.len() - 10);
    let dir3 = tempfile::tempdir().unwrap();
    let mut fresh = open(dir3.path(), &fed);
    assert!(matches!(
        fresh.import(&mut std::io::Cursor::new(&truncated), NOW),
        Err(StoreError::Import(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// 10. atomicity of the indexes

#[test]
fn accepted_objects_are_visible_through_every_index() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let kinds = kinds(&fed);
    let dirs = directions(&fed);
    let mut objs: Vec<SignedObject> = fed.trust_objects();
    for n in 0..40usize {
        let i = n % 3;
        let ds = [dirs[n % 11].as_str(), dirs[(n + 4) % 11].as_str()];
        objs.push(record_with(
            &fed,
            i,
            &format!("atomic {n}"),
            BASE + 1 + (n as u64 % 7) * MINUTE,
            &kinds[n % 8],
            &ds[..1 + n % 2],
            None,
        ));
    }
    let first_record = objs[6].id();
    objs.push(retraction(&fed, 0, first_record, BASE + 10 * MINUTE, false));
    let refs: Vec<&SignedObject> = objs.iter().collect();
    let (out, _) = batch(&mut store, &refs);
    assert_all_accepted(&out, &refs);

    let by_type: BTreeMap<ObjectType, BTreeSet<ObjectId>> = ObjectType::ALL
        .into_iter()
        .map(|t| {
            (
                t,
                scan_ids(
                    &store,
                    &Filter {
                        types: vec![t],
                        ..Filter::default()
                    },
                ),
            )
        })
        .collect();
    let everything = all_ids(&store);
    let mut cache: BTreeMap<String, BTreeSet<ObjectId>> = BTreeMap::new();
    let mut lookup = |key: String, f: Filter| -> BTreeSet<ObjectId> {
        cache
            .entry(key)
            .or_insert_with(|| scan_ids(&store, &f))
            .clone()
    };
    for o in &objs {
        let m = model(o);
        let id = o.id();
        assert_eq!(
            store.get_bytes(&id).unwrap().unwrap().as_slice(),
            o.as_bytes()
        );
        assert!(everything.contains(&id), "time index: {id}");
        assert!(by_type[&m.ty].contains(&id), "type index: {id}");
        let author = lookup(
            format!("author {}", m.author),
            Filter {
                authors: vec![m.author],
                ..Filter::default()
            },
        );
        assert!(author.contains(&id), "author index: {id}");
        let member = m.member.clone().unwrap();
        let by_member = lookup(
            format!("member {member}"),
            Filter {
                members: vec![member.clone()],
                ..Filter::default()
            },
        );
        assert!(by_member.contains(&id), "member index: {id}");
        if let Some(kind) = &m.kind {
            let by_kind = lookup(
                format!("kind {kind}"),
                Filter {
                    kinds: vec![kind.clone()],
                    ..Filter::default()
                },
            );
            assert!(by_kind.contains(&id), "kind index: {id}");
            for d in &m.directions {
                let by_dir = lookup(
                    format!("direction {d}"),
                    Filter {
                        directions: vec![d.clone()],
                        ..Filter::default()
                    },
                );
                assert!(by_dir.contains(&id), "direction index {d}: {id}");
            }
            // Each record's author query finds it (the single-author index drives the scan).
            assert!(
                scan_ids(
                    &store,
                    &Filter {
                        authors: vec![m.author],
                        types: vec![ObjectType::Record],
                        ..Filter::default()
                    }
                )
                .contains(&id)
            );
        }
    }
    assert_eq!(by_type[&ObjectType::Record].len(), 40);
    assert_eq!(by_type[&ObjectType::Delegation].len(), 3);
    assert_eq!(by_type[&ObjectType::Node].len(), 3);
    assert_eq!(by_type[&ObjectType::Retraction].len(), 1);
    assert_eq!(everything.len(), objs.len() + 1);
    assert_eq!(
        store.record_status(&first_record).unwrap(),
        Some(RecordStatus::Retracted)
    );
    assert_eq!(store.history(&first_record).unwrap().0.len(), 1);
}

/// Backup and restore must not lose records: a record accepted before its signer's
/// delegation was revoked (with an effective time before the record's creation) stays stored
/// with the derived status `signer-revoked`. Exporting and importing into a fresh store must
/// keep it.
#[test]
fn export_import_keeps_records_of_a_later_revoked_signer() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let del = fed.delegation(0);
    let rec = fed.record(
        0,
        "signed before the revocation arrived",
        Timestamp(BASE + 10 * MINUTE),
    );
    let (out, _) = batch(&mut store, &[&del, &rec]);
    assert_all_accepted(&out, &[&del, &rec]);
    let rev = revocation(
        &fed,
        0,
        TargetType::Delegation,
        del.id(),
        BASE + 5 * MINUTE,
        BASE + 20 * MINUTE,
    );
    assert_accepted(&ingest(&mut store, &rev), &rev);
    assert_eq!(
        store.record_status(&rec.id()).unwrap(),
        Some(RecordStatus::SignerRevoked)
    );
    let mut file = Vec::new();
    let n = store.export(&mut file).unwrap();
    assert_eq!(n, 4);

    let dir2 = tempfile::tempdir().unwrap();
    let mut fresh = open(dir2.path(), &fed);
    let report = fresh.import(&mut std::io::Cursor::new(&file), NOW).unwrap();
    assert_eq!(
        (report.accepted, report.rejected),
        (3, 0),
        "the restored store lost the signer-revoked record: {report:?}"
    );
    assert_eq!(
        fresh.record_status(&rec.id()).unwrap(),
        Some(RecordStatus::SignerRevoked)
    );
}

#[test]
fn check_finds_a_damaged_index_entry_and_repair_fixes_it() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let del = fed.delegation(0);
    let recs: Vec<SignedObject> = (0..10)
        .map(|i| fed.record(0, &format!("check {i}"), Timestamp(BASE + i)))
        .collect();
    let mut all: Vec<&[u8]> = vec![del.as_bytes()];
    all.extend(recs.iter().map(|r| r.as_bytes()));
    store.ingest_batch(&all, NOW).unwrap();
    let clean = store.check().unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!(clean.objects, 12, "genesis, delegation and ten records");
    assert!(store.damage_index_for_tests(&recs[3].id()).unwrap());
    let damaged = store.check().unwrap();
    assert_eq!(damaged.missing_entries, 1, "{damaged:?}");
    assert!(!damaged.is_clean());
    store.repair_indexes().unwrap();
    let repaired = store.check().unwrap();
    assert!(repaired.is_clean(), "{repaired:?}");
    let by_time = store
        .query(
            &Filter {
                types: vec![ObjectType::Record],
                ..Default::default()
            },
            Page {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(by_time.items.len(), 10);
}

/// The counts by type are kept by every write, not recounted when asked: after ingest,
/// import and an index repair they agree with a recount from the type index (a fresh open).
#[test]
fn counts_kept_by_writes_agree_with_a_recount() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let del = fed.delegation(0);
    assert_accepted(&ingest(&mut store, &del), &del);
    let recs: Vec<SignedObject> = (0..7)
        .map(|i| fed.record(0, &format!("c{i}"), Timestamp(BASE + i * MINUTE)))
        .collect();
    for r in &recs[..4] {
        assert_accepted(&ingest(&mut store, r), r);
    }
    let mut file = Vec::new();
    for r in &recs {
        file.extend_from_slice(r.as_bytes());
    }
    let report = store.import(&mut std::io::Cursor::new(&file), NOW).unwrap();
    assert_eq!((report.accepted, report.duplicate), (3, 4));
    let kept = store.counts_by_type().unwrap();
    assert_eq!(kept.get(&ObjectType::Record), Some(&7));
    assert_eq!(kept.get(&ObjectType::Delegation), Some(&1));
    store.repair_indexes().unwrap();
    assert_eq!(store.counts_by_type().unwrap(), kept);
    drop(store);
    assert_eq!(open(dir.path(), &fed).counts_by_type().unwrap(), kept);
}

#[test]
fn compression_is_the_operators_choice_and_a_store_keeps_what_it_was_created_with() {
    let fed = fed();
    let conf =
        |dir: &Path| String::from_utf8_lossy(&std::fs::read(dir.join("conf")).unwrap()).to_string();
    // A new store is not compressed: its objects are in the object log, and compressing
    // sled's small index entries costs more ingest than it saves disk.
    let fresh = tempfile::tempdir().unwrap();
    drop(open(fresh.path(), &fed));
    assert!(
        conf(fresh.path()).contains("use_compression: false"),
        "{}",
        conf(fresh.path())
    );
    // Unless the operator asks for it (store.compression = true).
    let packed = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        compress: true,
        ..StoreOptions::default()
    };
    drop(Store::open(packed.path(), fed.genesis.as_bytes(), opts).unwrap());
    assert!(
        conf(packed.path()).contains("use_compression: true"),
        "{}",
        conf(packed.path())
    );
    // A store created compressed (by the previous release's default) opens with the default
    // options, takes objects and reopens, still compressed: sled cannot change this across
    // restarts.
    let old = tempfile::tempdir().unwrap();
    drop(
        sled::Config::new()
            .path(old.path())
            .use_compression(true)
            .open()
            .unwrap(),
    );
    let del = fed.delegation(0);
    let rec = fed.record(0, "r", Timestamp(BASE + MINUTE));
    {
        let mut store = open(old.path(), &fed);
        assert_accepted(&ingest(&mut store, &del), &del);
        assert_accepted(&ingest(&mut store, &rec), &rec);
    }
    let store = open(old.path(), &fed);
    assert!(all_ids(&store).contains(&rec.id()));
    assert!(store.check().unwrap().is_clean());
    assert!(
        conf(old.path()).contains("use_compression: true"),
        "{}",
        conf(old.path())
    );
}

// ---------------------------------------------------------------------------------------------
// the object log (schema 3)

/// A store with a delegation and five records; returns every stored object's bytes by id.
fn store_with_records(dir: &Path, fed: &DevFederation) -> BTreeMap<ObjectId, Vec<u8>> {
    let mut store = open(dir, fed);
    let del = fed.delegation(0);
    assert_accepted(&ingest(&mut store, &del), &del);
    for i in 0..5 {
        let r = fed.record(0, &format!("log {i}"), Timestamp(BASE + (i + 1) * MINUTE));
        assert_accepted(&ingest(&mut store, &r), &r);
    }
    all_ids(&store)
        .into_iter()
        .map(|id| (id, store.get_bytes(&id).unwrap().unwrap()))
        .collect()
}

fn log_path(dir: &Path) -> std::path::PathBuf {
    dir.join("objects.log")
}

#[test]
fn objects_are_stored_once_in_the_object_log_and_sled_holds_where() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let objects = store_with_records(dir.path(), &fed);
    // The log holds each object's exact bytes once, each after a 4-byte length.
    let log = std::fs::read(log_path(dir.path())).unwrap();
    let expected: usize = objects.values().map(|b| 4 + b.len()).sum();
    assert_eq!(log.len(), expected);
    for bytes in objects.values() {
        assert_eq!(
            log.windows(bytes.len()).filter(|w| w == bytes).count(),
            1,
            "each object once"
        );
    }
    // sled's objects tree holds 12-byte locators, not the bytes, each followed by its 12-byte
    // receipt (when and from where), but the genesis's, written when the store was created.
    let db = raw_db(dir.path());
    let tree = db.open_tree("objects").unwrap();
    assert_eq!(tree.len(), objects.len());
    let genesis = fed.genesis.id();
    for item in tree.iter() {
        let (k, v) = item.unwrap();
        let expected = if k.as_ref() == genesis.as_bytes() {
            12
        } else {
            24
        };
        assert_eq!(v.len(), expected);
    }
}

/// A schema-4 store (no index of records by signer) is opened as schema 5: every record is
/// indexed by its member and signing key, the check finds the index whole, and a record taken
/// afterwards is indexed as it is written. The index is what a revocation's re-indexing reads
/// instead of decoding every record held.
#[test]
fn a_schema_4_store_indexes_its_records_by_signer_on_upgrade() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let objects = store_with_records(dir.path(), &fed);
    let member = fed.members[0].code.clone();
    let key = fed.members[0].publisher.public_key();
    let signed_by_publisher = |store: &Store| -> BTreeSet<ObjectId> {
        store
            .records_signed_by(&member, &key)
            .unwrap()
            .into_iter()
            .collect()
    };
    let records: BTreeSet<ObjectId> = {
        let store = open(dir.path(), &fed);
        let ids = signed_by_publisher(&store);
        assert_eq!(ids.len(), 5);
        ids
    };
    {
        let db = raw_db(dir.path());
        db.drop_tree("by_signer").unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &4u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let mut store = open(dir.path(), &fed);
    assert_eq!(signed_by_publisher(&store), records);
    assert!(records.iter().all(|id| objects.contains_key(id)));
    // Another member's key, or this key under another member, signed none of them.
    let other = fed.members[1].code.clone();
    assert!(store.records_signed_by(&other, &key).unwrap().is_empty());
    assert!(
        store
            .records_signed_by(&member, &fed.members[1].publisher.public_key())
            .unwrap()
            .is_empty()
    );
    assert!(store.check().unwrap().is_clean());
    let rec = fed.record(0, "after the upgrade", Timestamp(BASE + 9 * MINUTE));
    assert_accepted(&ingest(&mut store, &rec), &rec);
    assert!(signed_by_publisher(&store).contains(&rec.id()));
    drop(store);
    assert_schema_is_current(&raw_db(dir.path()));
}

/// An upgrade cut short (the process killed, the disk full) leaves `schema` at the new version,
/// so that an older release refuses the half-converted store, and `upgrading_from` at the old
/// one: the next start does every step again from there.
#[test]
fn an_upgrade_cut_short_is_resumed_from_where_it_started() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    store_with_records(dir.path(), &fed);
    let member = fed.members[0].code.clone();
    let key = fed.members[0].publisher.public_key();
    {
        // What a 4 → 5 upgrade leaves when it stops before indexing by signer.
        let db = raw_db(dir.path());
        db.drop_tree("by_signer").unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())
            .unwrap();
        meta.insert("upgrading_from", &4u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path(), &fed);
    assert_eq!(store.records_signed_by(&member, &key).unwrap().len(), 5);
    assert!(store.check().unwrap().is_clean());
    drop(store);
    assert_schema_is_current(&raw_db(dir.path()));
}

/// A schema-3 store is opened as schema 4 with nothing converted: its objects have no receipt,
/// objects taken afterwards do, and the source numbers survive a restart.
#[test]
fn a_schema_3_store_keeps_its_objects_and_receipts_start_with_the_upgrade() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let objects = store_with_records(dir.path(), &fed);
    {
        let db = raw_db(dir.path());
        let tree = db.open_tree("objects").unwrap();
        for item in tree.iter() {
            let (k, v) = item.unwrap();
            tree.insert(k, &v[..12]).unwrap();
        }
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &3u32.to_be_bytes())
            .unwrap();
        db.drop_tree("sources").unwrap();
        // What a development build kept in a tree of its own goes with the upgrade.
        db.open_tree("received")
            .unwrap()
            .insert(b"x", b"y")
            .unwrap();
        db.flush().unwrap();
    }
    let mut store = open(dir.path(), &fed);
    for (id, bytes) in &objects {
        assert_eq!(&store.get_bytes(id).unwrap().unwrap(), bytes);
        assert_eq!(store.received(id).unwrap(), None);
    }
    assert!(store.check().unwrap().is_clean());
    let rec = fed.record(0, "after the upgrade", Timestamp(BASE + 9 * MINUTE));
    let (out, _) = store
        .ingest_from(&[(rec.as_bytes(), "peer P")], NOW)
        .unwrap();
    assert_accepted(&out[0], &rec);
    drop(store);
    let db = raw_db(dir.path());
    assert_schema_is_current(&db);
    assert!(!db.tree_names().iter().any(|n| n.as_ref() == b"received"));
    // A damaged entry of the numbered sources keeps nothing from opening.
    db.open_tree("sources")
        .unwrap()
        .insert(b"bad", b"?")
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let store = open(dir.path(), &fed);
    assert_eq!(
        store.received(&rec.id()).unwrap(),
        Some((NOW, "peer P".to_string()))
    );
}

#[test]
fn a_schema_2_store_moves_its_objects_into_the_log_on_upgrade() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let objects = store_with_records(dir.path(), &fed);
    let counts = open(dir.path(), &fed).counts_by_type().unwrap();
    // Make it a schema-2 store: the bytes in sled's objects tree, no log. A log file left by
    // an upgrade that crashed before its first commit holds bytes nothing references.
    {
        let db = raw_db(dir.path());
        let tree = db.open_tree("objects").unwrap();
        for (id, bytes) in &objects {
            tree.insert(id.as_bytes(), bytes.as_slice()).unwrap();
        }
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema", &2u32.to_be_bytes()).unwrap();
        meta.remove("log_end").unwrap();
        db.flush().unwrap();
    }
    std::fs::write(log_path(dir.path()), b"an interrupted first batch").unwrap();
    let store = open(dir.path(), &fed);
    assert_eq!(all_ids(&store), objects.keys().copied().collect());
    for (id, bytes) in &objects {
        assert_eq!(&store.get_bytes(id).unwrap().unwrap(), bytes, "{id}");
    }
    assert_eq!(store.counts_by_type().unwrap(), counts);
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{report:?}");
    let expected: u64 = objects.values().map(|b| 4 + b.len() as u64).sum();
    assert_eq!(
        std::fs::metadata(log_path(dir.path())).unwrap().len(),
        expected
    );
    drop(store);
    let db = raw_db(dir.path());
    assert_schema_is_current(&db);
    for item in db.open_tree("objects").unwrap().iter() {
        assert_eq!(item.unwrap().1.len(), 12, "every object moved");
    }
}

#[test]
fn bytes_of_an_interrupted_write_are_cut_off_and_acknowledged_objects_kept() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let objects = store_with_records(dir.path(), &fed);
    let committed = std::fs::metadata(log_path(dir.path())).unwrap().len();
    // A crash after the log was written but before sled recorded it.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(log_path(dir.path()))
            .unwrap();
        f.write_all(&[0x00, 0x00, 0x08, 0x00, 0x83, 0x58]).unwrap();
    }
    let mut store = open(dir.path(), &fed);
    assert_eq!(
        std::fs::metadata(log_path(dir.path())).unwrap().len(),
        committed
    );
    for (id, bytes) in &objects {
        assert_eq!(&store.get_bytes(id).unwrap().unwrap(), bytes);
    }
    let later = fed.record(0, "after the crash", Timestamp(BASE + 10 * MINUTE));
    assert_accepted(&ingest(&mut store, &later), &later);
    assert!(store.check().unwrap().is_clean());
    drop(store);
    let store = open(dir.path(), &fed);
    assert_eq!(
        store.get_bytes(&later.id()).unwrap().unwrap(),
        later.as_bytes()
    );
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn a_truncated_object_log_is_refused_and_a_damaged_one_is_reported_by_check() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let objects = store_with_records(dir.path(), &fed);
    let path = log_path(dir.path());
    let full = std::fs::read(&path).unwrap();
    // Truncated: acknowledged bytes are gone, and opening says so instead of serving less.
    std::fs::write(&path, &full[..full.len() - 10]).unwrap();
    match Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()) {
        Err(StoreError::Corrupt(why)) => {
            assert!(
                why.contains("objects.log")
                    && why.contains("truncated")
                    && why.contains("accord check --repair"),
                "{why}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Damaged in place: one byte of one record flipped.
    let victim = objects
        .iter()
        .find(|(_, b)| String::from_utf8_lossy(b).contains("log 3"))
        .map(|(id, b)| (*id, b.clone()))
        .unwrap();
    let at = full
        .windows(victim.1.len())
        .position(|w| w == victim.1.as_slice())
        .unwrap();
    let mut damaged = full.clone();
    damaged[at + victim.1.len() - 80] ^= 0x01;
    std::fs::write(&path, &damaged).unwrap();
    let store = open(dir.path(), &fed);
    let report = store.check().unwrap();
    assert_eq!(report.objects, objects.len() as u64);
    assert_eq!(
        report.bad_objects.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![victim.0],
        "{report:?}"
    );
    assert_eq!(report.unaccounted_log_bytes, 0);
    // The repair drops the damaged object (its bytes stay in the log, counted as given up):
    // the store is clean again, and the good copy a peer offers is taken, not a duplicate.
    let mut store = store;
    store.repair_indexes().unwrap();
    assert!(!dir.path().join(accord_store::REPAIR_UNFINISHED).exists());
    let after = store.check().unwrap();
    assert!(after.is_clean(), "{after:?}");
    assert_eq!(after.objects, objects.len() as u64 - 1);
    let out = store.ingest_batch(&[victim.1.as_slice()], NOW).unwrap();
    assert!(
        matches!(out.0[0], IngestOutcome::Accepted(_)),
        "{:?}",
        out.0[0]
    );
    assert_eq!(store.get_bytes(&victim.0).unwrap().unwrap(), victim.1);
    assert!(store.check().unwrap().is_clean());
    drop(store);
    let reopened = open(dir.path(), &fed);
    assert!(reopened.check().unwrap().is_clean());
    assert_eq!(reopened.get_bytes(&victim.0).unwrap().unwrap(), victim.1);
}

/// An object log whose tail was lost (a failing disk, a careless copy) is refused by a start,
/// which names the repair; the repair opens it as it is and drops the objects whose bytes were
/// lost: the store opens again, is clean, and takes a lost object again when a peer sends it.
#[test]
fn a_truncated_object_log_is_repaired_by_dropping_what_it_lost() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let objects = store_with_records(dir.path(), &fed);
    let path = log_path(dir.path());
    let full = std::fs::read(&path).unwrap();
    let seq_before = open(dir.path(), &fed).seq();
    // A log that is gone is no tail lost: the repair refuses it rather than drop every object.
    std::fs::remove_file(&path).unwrap();
    let gone = Store::open_for_repair(dir.path(), fed.genesis.as_bytes(), StoreOptions::default());
    assert!(
        matches!(&gone, Err(StoreError::Corrupt(why)) if why.contains("missing")),
        "{gone:?}"
    );
    assert!(!path.exists());
    std::fs::write(&path, &full[..full.len() - 10]).unwrap();
    assert!(Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()).is_err());
    let mut store =
        Store::open_for_repair(dir.path(), fed.genesis.as_bytes(), StoreOptions::default())
            .unwrap();
    let report = store.repair_indexes().unwrap();
    assert_eq!(report.bad_objects.len(), 1, "{report:?}");
    let lost = report.bad_objects[0].0;
    drop(store);
    let mut store = open(dir.path(), &fed);
    // The numbers the lost object had are not given again (derived marks have passed them).
    assert_eq!(store.seq(), seq_before);
    let after = store.check().unwrap();
    assert!(after.is_clean(), "{after:?}");
    assert_eq!(after.objects, objects.len() as u64 - 1);
    let bytes = objects[&lost].clone();
    let out = store.ingest_batch(&[bytes.as_slice()], NOW).unwrap();
    assert!(
        matches!(out.0[0], IngestOutcome::Accepted(_)),
        "{:?}",
        out.0[0]
    );
    assert_eq!(store.get_bytes(&lost).unwrap().unwrap(), bytes);
    assert!(store.check().unwrap().is_clean());
    drop(store);
    let reopened = open(dir.path(), &fed);
    assert!(reopened.check().unwrap().is_clean());
    assert_eq!(reopened.get_bytes(&lost).unwrap().unwrap(), bytes);
    assert_eq!(reopened.seq(), seq_before + 1);
    drop(reopened);

    // Bytes an earlier repair gave up, at the log's end, lost in their turn: the count of
    // bytes given up follows, and the store is clean again.
    let full = std::fs::read(&path).unwrap();
    let mut damaged = full.clone();
    let at = full
        .windows(bytes.len())
        .rposition(|w| w == bytes.as_slice())
        .unwrap();
    damaged[at] = 0xff;
    std::fs::write(&path, &damaged).unwrap();
    let mut store = open(dir.path(), &fed);
    assert_eq!(store.repair_indexes().unwrap().bad_objects.len(), 1);
    assert!(store.check().unwrap().is_clean());
    drop(store);
    std::fs::write(&path, &damaged[..damaged.len() - 10]).unwrap();
    let mut store =
        Store::open_for_repair(dir.path(), fed.genesis.as_bytes(), StoreOptions::default())
            .unwrap();
    assert!(store.repair_indexes().unwrap().bad_objects.is_empty());
    drop(store);
    let store = open(dir.path(), &fed);
    let after = store.check().unwrap();
    assert!(after.is_clean(), "{after:?}");
}

/// A delegation damaged in the log (bit rot in its CBOR) no longer keeps the store from
/// opening, and so `accord check` and `--repair` from running: it counts for nothing, `check`
/// names it, the repair drops it, and the good copy a peer offers is taken again.
#[test]
fn a_damaged_trust_object_is_named_and_repaired_not_a_store_that_cannot_open() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let objects = store_with_records(dir.path(), &fed);
    let del = fed.delegation(0);
    let path = log_path(dir.path());
    let mut log = std::fs::read(&path).unwrap();
    let at = log
        .windows(del.as_bytes().len())
        .position(|w| w == del.as_bytes())
        .unwrap();
    // Its first byte, the envelope's array head, turned into a CBOR "break".
    log[at] = 0xff;
    std::fs::write(&path, &log).unwrap();
    let mut store = open(dir.path(), &fed);
    let report = store.check().unwrap();
    assert_eq!(
        report.bad_objects.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![del.id()],
        "{report:?}"
    );
    store.repair_indexes().unwrap();
    assert!(store.check().unwrap().is_clean());
    let out = store.ingest_batch(&[del.as_bytes()], NOW).unwrap();
    assert!(
        matches!(out.0[0], IngestOutcome::Accepted(_)),
        "{:?}",
        out.0[0]
    );
    drop(store);
    let store = open(dir.path(), &fed);
    assert!(store.check().unwrap().is_clean());
    assert_eq!(store.check().unwrap().objects, objects.len() as u64);
}

/// An index repair cut short (killed, a power cut, a disk full) leaves its mark: the store is
/// refused for anything but another repair, which finishes the job and removes the mark.
#[test]
fn an_index_repair_cut_short_is_refused_until_a_repair_finishes() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let objects = store_with_records(dir.path(), &fed);
    // As a repair killed after clearing the indexes leaves it.
    std::fs::write(dir.path().join(accord_store::REPAIR_UNFINISHED), b"").unwrap();
    let e = accord_store::unfinished_repair(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains("did not finish") && e.to_string().contains("check --repair"),
        "{e}"
    );
    let mut store = open(dir.path(), &fed);
    assert!(store.repair_indexes().unwrap().is_clean());
    assert!(accord_store::unfinished_repair(dir.path()).is_ok());
    assert_eq!(store.check().unwrap().objects, objects.len() as u64);
}

/// A member may retract its own record any number of times: the history lists the first
/// `HISTORY_SHOWN` retractions, and the status needs only one.
#[test]
fn many_retractions_of_one_record_are_listed_up_to_a_bound() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    assert_accepted(&ingest(&mut store, &fed.delegation(0)), &fed.delegation(0));
    let rec = fed.record(0, "withdrawn again and again", Timestamp(BASE + MINUTE));
    assert_accepted(&ingest(&mut store, &rec), &rec);
    let many = accord_store::HISTORY_SHOWN + 36;
    for n in 0..many as u64 {
        let ret = retraction(&fed, 0, rec.id(), BASE + 2 * MINUTE + n, n % 2 == 0);
        assert_accepted(&ingest(&mut store, &ret), &ret);
    }
    assert_eq!(
        store.counts_by_type().unwrap()[&ObjectType::Retraction],
        many as u64
    );
    let (retractions, superseding) = store.history(&rec.id()).unwrap();
    assert_eq!(retractions.len(), accord_store::HISTORY_SHOWN);
    assert!(superseding.is_empty());
    assert_eq!(
        store.record_status(&rec.id()).unwrap(),
        Some(RecordStatus::Retracted)
    );
}

/// A member's root key replaced by an amendment: the records signed under its old root's
/// delegation read "signer revoked" (root replaced), before a restart and after it alike.
#[test]
fn records_under_a_replaced_root_keep_their_status_across_a_restart() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let rec = fed.record(0, "signed under the old root", Timestamp(BASE + MINUTE));
    let rec_id = rec.id();
    {
        let mut store = open(dir.path(), &fed);
        assert_accepted(&ingest(&mut store, &fed.delegation(0)), &fed.delegation(0));
        assert_accepted(&ingest(&mut store, &rec), &rec);
        assert_eq!(
            store.record_status(&rec_id).unwrap(),
            Some(RecordStatus::Active)
        );
        let new_root = accord_core::SecretKey::from_seed([90; 32]);
        let amendment = next_charter(
            &store,
            Timestamp(BASE + 2 * MINUTE),
            |c| c.members[0].root_key = new_root.public_key(),
            &[&fed.members[0].root, &fed.members[1].root, &new_root],
        );
        assert_accepted(&ingest(&mut store, &amendment), &amendment);
        assert_eq!(
            store.record_status(&rec_id).unwrap(),
            Some(RecordStatus::SignerRevoked)
        );
    }
    let store = open(dir.path(), &fed);
    assert_eq!(
        store.record_status(&rec_id).unwrap(),
        Some(RecordStatus::SignerRevoked),
        "after a restart"
    );
}

/// Under the 1.3 rules a node key revokes itself only once a certificate of its member names
/// it: a self-revocation that arrives first waits, and the certificate's arrival releases it.
#[test]
fn a_node_keys_self_revocation_waits_for_its_certificate() {
    let fed = DevFederation::with_limits(
        &["KZ", "BY", "AM"],
        [7u8; 32],
        Timestamp(BASE),
        accord_core::Limits {
            rules: accord_core::object::RULES_1_3,
            ..Default::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let node = &fed.members[0].node;
    let rev = Object::Revocation(Revocation {
        object_type: ObjectType::Revocation,
        federation: fed.federation(),
        created: Timestamp(BASE + MINUTE),
        member: fed.members[0].code.clone(),
        target_type: TargetType::Key,
        target: ObjectId(*node.public_key().as_bytes()),
        effective: Timestamp(BASE + MINUTE),
        reason: Some("node key leaked".into()),
    })
    .sign(node);
    assert!(
        matches!(ingest(&mut store, &rev), IngestOutcome::Pending(..)),
        "a key without standing waits"
    );
    let (out, released) = batch(&mut store, &[&fed.node_cert(0)]);
    assert_accepted(&out[0], &fed.node_cert(0));
    assert_eq!(released, vec![rev.id()], "the certificate releases it");
}

/// A key and a delegation revoked by a member's root key that an amendment later replaced stay
/// revoked across a restart, as before it: the revocations were valid when they were accepted,
/// and the trust view rebuilt at start judges them by the charter then in force, with the
/// delegations valid under it (as it does delegations).
#[test]
fn what_a_since_replaced_root_revoked_stays_revoked_across_a_restart() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let kz = fed.members[0].code.clone();
    let key = fed.members[0].publisher.public_key();
    // And a second delegation of KZ, revoked by the old root key too.
    let second = accord_core::SecretKey::from_seed([92; 32]);
    let del2 = Object::Delegation(accord_core::Delegation {
        object_type: ObjectType::Delegation,
        federation: fed.federation(),
        created: Timestamp(BASE),
        member: kz.clone(),
        publisher: second.public_key(),
        name: "KZ second publisher".into(),
        kinds: None,
        directions: None,
        not_before: Timestamp(BASE),
        not_after: None,
    })
    .sign(&fed.members[0].root);
    {
        let mut store = open(dir.path(), &fed);
        assert_accepted(&ingest(&mut store, &fed.delegation(0)), &fed.delegation(0));
        assert_accepted(&ingest(&mut store, &del2), &del2);
        let rev = revocation(
            &fed,
            0,
            TargetType::Key,
            ObjectId(*key.as_bytes()),
            BASE + MINUTE,
            BASE + MINUTE,
        );
        assert_accepted(&ingest(&mut store, &rev), &rev);
        let rev2 = revocation(
            &fed,
            0,
            TargetType::Delegation,
            del2.id(),
            BASE + MINUTE,
            BASE + MINUTE,
        );
        assert_accepted(&ingest(&mut store, &rev2), &rev2);
        let new_root = accord_core::SecretKey::from_seed([91; 32]);
        let amendment = next_charter(
            &store,
            Timestamp(BASE + 2 * MINUTE),
            |c| c.members[0].root_key = new_root.public_key(),
            &[&fed.members[0].root, &fed.members[1].root, &new_root],
        );
        assert_accepted(&ingest(&mut store, &amendment), &amendment);
        assert_eq!(
            store.trust().key_revoked_since(&kz, &key),
            Some(Timestamp(BASE + MINUTE))
        );
        assert_eq!(
            store.trust().object_revoked_since(&del2.id(), &kz),
            Some(Timestamp(BASE + MINUTE))
        );
    }
    let store = open(dir.path(), &fed);
    assert_eq!(store.trust().charter().version, 2);
    assert_eq!(
        store.trust().key_revoked_since(&kz, &key),
        Some(Timestamp(BASE + MINUTE)),
        "the key's revocation still counts after a restart"
    );
    assert_eq!(
        store.trust().object_revoked_since(&del2.id(), &kz),
        Some(Timestamp(BASE + MINUTE)),
        "the delegation's revocation still counts after a restart"
    );
}

/// An amendment raised `max_object_bytes` to 4 MiB and a record of 2 MiB was stored: the
/// export imports whole into an empty store (the import is not bounded by the genesis's 1 MiB,
/// which it used to apply to every object of the file).
#[test]
fn an_export_with_objects_larger_than_the_genesis_allows_imports_whole() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let amendment = next_charter(
        &store,
        Timestamp(BASE + MINUTE),
        |c| c.limits.max_object_bytes = 4 << 20,
        &[&fed.members[0].root, &fed.members[1].root],
    );
    assert_accepted(&ingest(&mut store, &amendment), &amendment);
    assert_accepted(&ingest(&mut store, &fed.delegation(0)), &fed.delegation(0));
    let mut body = fed.record_body(0, "a long report", Timestamp(BASE + 2 * MINUTE));
    body.body.insert("en".into(), "word ".repeat(500_000));
    let big = Object::Record(body).sign(&fed.members[0].publisher);
    assert!(big.as_bytes().len() > 2 << 20);
    assert_accepted(&ingest(&mut store, &big), &big);
    let mut file = Vec::new();
    store.export(&mut file).unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let mut fresh = open(dir2.path(), &fed);
    let report = fresh.import(&mut std::io::Cursor::new(&file), NOW).unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
    assert!(fresh.contains(&big.id()).unwrap());
}

/// A successor that does not stand does not supersede: a stolen key's "new edition" of another
/// ministry's record, once the key is revoked from before it was made, and a successor the
/// member retracted, leave the record they named active.
#[test]
fn a_revoked_or_retracted_successor_supersedes_nothing() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let stolen = accord_core::SecretKey::from_seed([77; 32]);
    let del2 = Object::Delegation(accord_core::Delegation {
        object_type: ObjectType::Delegation,
        federation: fed.federation(),
        created: fed.created,
        member: fed.members[0].code.clone(),
        publisher: stolen.public_key(),
        name: "a key later stolen".into(),
        kinds: None,
        directions: None,
        not_before: fed.created,
        not_after: None,
    })
    .sign(&fed.members[0].root);
    let del = fed.delegation(0);
    let r1 = fed.record(0, "original", Timestamp(BASE + MINUTE));
    let mut body = fed.record_body(0, "forged edition", Timestamp(BASE + 10 * MINUTE));
    body.supersedes = Some(r1.id());
    let forged = Object::Record(body).sign(&stolen);
    let (out, _) = batch(&mut store, &[&del, &del2, &r1, &forged]);
    assert_all_accepted(&out, &[&del, &del2, &r1, &forged]);
    assert_eq!(
        store.record_status(&r1.id()).unwrap(),
        Some(RecordStatus::Superseded)
    );
    let rev = revocation(
        &fed,
        0,
        TargetType::Delegation,
        del2.id(),
        BASE + 5 * MINUTE,
        BASE + 20 * MINUTE,
    );
    assert_accepted(&ingest(&mut store, &rev), &rev);
    assert_eq!(
        store.record_status(&forged.id()).unwrap(),
        Some(RecordStatus::SignerRevoked)
    );
    assert_eq!(
        store.record_status(&r1.id()).unwrap(),
        Some(RecordStatus::Active),
        "a revoked key's edition hides nothing"
    );
    // A standing edition supersedes; retracted, it no longer does.
    let r3 = record_with(
        &fed,
        0,
        "revised",
        BASE + 30 * MINUTE,
        "regulatory-note",
        &["regulation"],
        Some(r1.id()),
    );
    assert_accepted(&ingest(&mut store, &r3), &r3);
    assert_eq!(
        store.record_status(&r1.id()).unwrap(),
        Some(RecordStatus::Superseded)
    );
    let ret = retraction(&fed, 0, r3.id(), BASE + 40 * MINUTE, true);
    assert_accepted(&ingest(&mut store, &ret), &ret);
    assert_eq!(
        store.record_status(&r1.id()).unwrap(),
        Some(RecordStatus::Active),
        "a retracted edition hides nothing"
    );
}

/// Under the 1.3 rules a stolen publisher key's self-revocation waits for the key's
/// delegation, under the same wait as the key's records. Whether the delegation then comes
/// alone (releasing the waiting records with the revocation) or in one batch with more records,
/// the revocation applies first: no record signed after the time it names is stored, whatever
/// the order (before, those released or judged first were accepted, by object id order).
#[test]
fn a_self_revocation_waiting_with_its_keys_records_applies_before_them() {
    let rules3 = || {
        DevFederation::with_limits(
            &["KZ", "BY", "AM"],
            [8u8; 32],
            Timestamp(BASE),
            accord_core::Limits {
                rules: accord_core::object::RULES_1_3,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let fed = rules3();
    let key = &fed.members[0].publisher;
    let self_revocation = Object::Revocation(Revocation {
        object_type: ObjectType::Revocation,
        federation: fed.federation(),
        created: Timestamp(BASE + 10 * MINUTE),
        member: fed.members[0].code.clone(),
        target_type: TargetType::Key,
        target: ObjectId(*key.public_key().as_bytes()),
        effective: Timestamp(BASE + 5 * MINUTE),
        reason: Some("key stolen".into()),
    })
    .sign(key);
    let before = fed.record(0, "signed before", Timestamp(BASE + MINUTE));
    let after: Vec<SignedObject> = (0..8)
        .map(|n| {
            fed.record(
                0,
                &format!("signed after {n}"),
                Timestamp(BASE + 6 * MINUTE + n),
            )
        })
        .collect();
    let later = fed.record(
        0,
        "signed after, with the delegation",
        Timestamp(BASE + 7 * MINUTE),
    );
    for with_delegation in [vec![], vec![&later]] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), &fed);
        for o in std::iter::once(&self_revocation)
            .chain(&after)
            .chain([&before])
        {
            assert!(
                matches!(ingest(&mut store, o), IngestOutcome::Pending(..)),
                "waits for the delegation"
            );
        }
        let del = fed.delegation(0);
        let objs: Vec<&SignedObject> = std::iter::once(&del).chain(with_delegation).collect();
        let (out, released) = batch(&mut store, &objs);
        assert_accepted(&out[0], &del);
        assert!(released.contains(&self_revocation.id()), "{released:?}");
        assert!(released.contains(&before.id()), "{released:?}");
        for r in after.iter().chain([&later]) {
            assert!(
                !store.contains(&r.id()).unwrap(),
                "a record signed after the revocation's time was stored"
            );
        }
    }
}

/// A second publisher key of KZ (from `seed`) and its delegation by KZ's root, all kinds and
/// directions, named `name`.
fn second_publisher(
    fed: &DevFederation,
    seed: u8,
    name: impl Into<String>,
) -> (accord_core::SecretKey, SignedObject) {
    let p2 = accord_core::SecretKey::from_seed([seed; 32]);
    let del2 = Object::Delegation(accord_core::Delegation {
        object_type: ObjectType::Delegation,
        federation: fed.federation(),
        created: Timestamp(BASE + MINUTE),
        member: fed.members[0].code.clone(),
        publisher: p2.public_key(),
        name: name.into(),
        kinds: None,
        directions: None,
        not_before: Timestamp(BASE),
        not_after: None,
    })
    .sign(&fed.members[0].root);
    (p2, del2)
}

/// A hostile member signs one record body with two of its publisher keys: the copy whose
/// delegation has not come waits in the quarantine, the other is accepted. When the first key's
/// delegation comes, the waiting copy is dropped, never accepted a second time over the stored
/// one: the store keeps the envelope it took first, counts the record once and stays
/// consistent (it was written twice: a second sequence entry, the count raised by two, log
/// bytes no index accounted for, and a second search document).
#[test]
fn a_waiting_copy_of_a_stored_body_is_dropped_not_accepted_again() {
    let dir = tempfile::tempdir().unwrap();
    let fed = fed();
    let mut store = open(dir.path(), &fed);
    // A second publisher key of KZ, delegated now; the usual one is delegated later.
    let (p2, del2) = second_publisher(&fed, 93, "KZ second publisher");
    assert_accepted(&ingest(&mut store, &del2), &del2);
    let c1 = fed.record(0, "one body, two signers", Timestamp(BASE + 2 * MINUTE));
    let c2 = SignedObject::sign(c1.body().to_vec(), &p2);
    assert_eq!(c1.id(), c2.id());
    assert!(matches!(
        ingest(&mut store, &c1),
        IngestOutcome::Pending(_, Missing::Delegation { .. })
    ));
    assert_eq!(store.pending_len(), 1);
    assert_accepted(&ingest(&mut store, &c2), &c2);
    // The waiting copy is void at once, not only when its delegation comes.
    assert_eq!(store.pending_len(), 0);
    let (out, released) = batch(&mut store, &[&fed.delegation(0)]);
    assert_accepted(&out[0], &fed.delegation(0));
    assert!(
        !released.contains(&c1.id()),
        "the waiting copy was accepted again"
    );
    assert_eq!(
        store.get(&c1.id()).unwrap().unwrap().signed.as_bytes(),
        c2.as_bytes()
    );
    assert_eq!(store.counts_by_type().unwrap()[&ObjectType::Record], 1);
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{report:?}");
    // And after a restart.
    drop(store);
    let store = open(dir.path(), &fed);
    assert_eq!(store.pending_len(), 0);
    assert_eq!(store.counts_by_type().unwrap()[&ObjectType::Record], 1);
    assert!(store.check().unwrap().is_clean());
}

/// The same within one batch: the first copy waits, the other is accepted after it, and the
/// first key's delegation comes last; the release at the batch's end drops the waiting copy.
#[test]
fn a_released_copy_of_a_stored_body_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let fed = fed();
    let mut store = open(dir.path(), &fed);
    let (p2, del2) = second_publisher(&fed, 94, "KZ second publisher");
    let c1 = fed.record(0, "one body, two signers", Timestamp(BASE + 2 * MINUTE));
    let c2 = SignedObject::sign(c1.body().to_vec(), &p2);
    let (out, released) = batch(&mut store, &[&c1, &del2, &c2, &fed.delegation(0)]);
    assert!(matches!(out[0], IngestOutcome::Pending(..)), "{:?}", out[0]);
    assert_accepted(&out[2], &c2);
    assert!(!released.contains(&c1.id()));
    assert_eq!(
        store.get(&c1.id()).unwrap().unwrap().signed.as_bytes(),
        c2.as_bytes()
    );
    assert_eq!(store.counts_by_type().unwrap()[&ObjectType::Record], 1);
    assert_eq!(store.pending_len(), 0);
    assert!(store.check().unwrap().is_clean());
}

/// An amendment that lowers the limits (object size, list length) leaves what was accepted
/// under the earlier ones readable: the store opens again (its trust view is rebuilt from a
/// delegation now over the size bound), the record over the list bound is read and checked
/// clean, and its publisher still counts. (The store read stored objects with the limits in
/// force: it could not open, and `check --repair` would have dropped the record.)
#[test]
fn lowering_a_limit_leaves_what_was_accepted_readable() {
    let dir = tempfile::tempdir().unwrap();
    let fed = fed();
    let mut store = open(dir.path(), &fed);
    let p2 = accord_core::SecretKey::from_seed([95; 32]);
    let del2 = Object::Delegation(accord_core::Delegation {
        object_type: ObjectType::Delegation,
        federation: fed.federation(),
        created: Timestamp(BASE + MINUTE),
        member: fed.members[0].code.clone(),
        publisher: p2.public_key(),
        // A long name (the 1.2 rules bound none): the envelope is over 3 KB.
        name: "Ministry of digital development ".repeat(100),
        kinds: None,
        directions: None,
        not_before: Timestamp(BASE),
        not_after: None,
    })
    .sign(&fed.members[0].root);
    assert!(del2.as_bytes().len() > 3000);
    let mut body = fed.record_body(0, "twenty tags", Timestamp(BASE + 2 * MINUTE));
    body.tags = (0..20).map(|i| format!("tag{i}")).collect();
    let rec = Object::Record(body).sign(&p2);
    let (out, _) = batch(&mut store, &[&del2, &rec]);
    assert_all_accepted(&out, &[&del2, &rec]);
    let lower = next_charter(
        &store,
        Timestamp(BASE + 3 * MINUTE),
        |c| {
            c.limits.max_object_bytes = 2048;
            c.limits.max_list_len = 16;
        },
        &[&fed.members[0].root, &fed.members[1].root],
    );
    assert_accepted(&ingest(&mut store, &lower), &lower);
    // What came before is still read, and checked clean.
    assert!(store.get(&rec.id()).unwrap().is_some());
    assert!(store.check().unwrap().is_clean(), "{:?}", store.check());
    // A new record over the lowered bound is refused.
    let mut body = fed.record_body(0, "twenty tags, later", Timestamp(BASE + 4 * MINUTE));
    body.tags = (0..20).map(|i| format!("tag{i}")).collect();
    let late = Object::Record(body).sign(&p2);
    assert!(matches!(
        ingest(&mut store, &late),
        IngestOutcome::Rejected(..)
    ));
    // After a restart: the store opens, and the delegation still counts.
    drop(store);
    let store = Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default())
        .expect("the store opens after the limits were lowered");
    assert!(store.get(&rec.id()).unwrap().is_some());
    assert!(matches!(
        store.trust().check_publisher(
            &fed.members[0].code,
            &p2.public_key(),
            Timestamp(BASE + 5 * MINUTE),
            None
        ),
        accord_core::trust::PublisherCheck::Ok(_)
    ));
    assert!(store.check().unwrap().is_clean());
}

/// A member's two publisher keys sign one record body; one node stores one copy, another the
/// other. A retraction by the first key is its author's on the first node and refused on the
/// second: there it is named for the peer that gave it (that peer is not read as withholding
/// it, nor is it fetched from it again at every session), as a copy refused for a signer that
/// had authority is.
#[test]
fn a_retraction_refused_for_the_copy_this_node_stored_is_named_for_its_source() {
    let fed = fed();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut n1, mut n2) = (open(d1.path(), &fed), open(d2.path(), &fed));
    let (p2, del2) = second_publisher(&fed, 96, "KZ second publisher");
    let c1 = fed.record(0, "one body, two signers", Timestamp(BASE + 2 * MINUTE));
    let c2 = SignedObject::sign(c1.body().to_vec(), &p2);
    for n in [&mut n1, &mut n2] {
        let (out, _) = batch(n, &[&fed.delegation(0), &del2]);
        assert_all_accepted(&out, &[&fed.delegation(0), &del2]);
    }
    assert_accepted(&ingest(&mut n1, &c1), &c1);
    assert_accepted(&ingest(&mut n2, &c2), &c2);
    let y = retraction(&fed, 0, c1.id(), BASE + 3 * MINUTE, false);
    assert_accepted(&ingest(&mut n1, &y), &y);
    let (out, _) = n2.ingest_from(&[(y.as_bytes(), "peer 1")], NOW).unwrap();
    assert!(
        matches!(
            out[0],
            IngestOutcome::Rejected(_, Rejection::RetractionNotByAuthor { .. })
        ),
        "{:?}",
        out[0]
    );
    assert_eq!(
        n2.received_not_held_from(&[y.id()], "peer 1"),
        vec![(Timestamp(BASE + 3 * MINUTE), y.id())]
    );
    // A retraction by a key the member never delegated is a forgery: not named.
    let stranger = accord_core::SecretKey::from_seed([97; 32]);
    let forged = match Object::decode_body(y.body(), &accord_core::Limits::default()) {
        Ok(mut body) => {
            if let Object::Retraction(r) = &mut body {
                r.reason = "forged".into();
            }
            body.sign(&stranger)
        }
        Err(e) => panic!("{e}"),
    };
    let (out, _) = n2
        .ingest_from(&[(forged.as_bytes(), "peer 1")], NOW)
        .unwrap();
    assert!(
        matches!(out[0], IngestOutcome::Rejected(..)),
        "{:?}",
        out[0]
    );
    assert!(
        n2.received_not_held_from(&[forged.id()], "peer 1")
            .is_empty()
    );
}

/// A key holds two delegations of its member: a wide one and a narrower one. The wide one is
/// revoked from before a record that only it covered: the record reads "signer revoked" —
/// the narrower delegation, out of the record's scope, does not hide it (it read "active":
/// the status took the closest refusal, out of scope, over the revocation).
#[test]
fn a_narrower_delegation_does_not_hide_that_the_covering_one_was_revoked() {
    let fed = fed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), &fed);
    let wide = fed.delegation(0);
    let key = &fed.members[0].publisher;
    let narrow = Object::Delegation(accord_core::Delegation {
        object_type: ObjectType::Delegation,
        federation: fed.federation(),
        created: Timestamp(BASE + MINUTE),
        member: fed.members[0].code.clone(),
        publisher: key.public_key(),
        name: "KZ publisher, one kind".into(),
        kinds: Some(vec![kinds(&fed)[1].clone()]),
        directions: None,
        not_before: Timestamp(BASE),
        not_after: None,
    })
    .sign(&fed.members[0].root);
    let (out, _) = batch(&mut store, &[&wide, &narrow]);
    assert_all_accepted(&out, &[&wide, &narrow]);
    let kind0 = kinds(&fed)[0].clone();
    assert_ne!(kind0, kinds(&fed)[1]);
    let rec = record_with(
        &fed,
        0,
        "of the wide scope",
        BASE + 10 * MINUTE,
        &kind0,
        &[&directions(&fed)[0]],
        None,
    );
    let in_narrow = record_with(
        &fed,
        0,
        "of the narrow scope",
        BASE + 10 * MINUTE,
        &kinds(&fed)[1],
        &[&directions(&fed)[0]],
        None,
    );
    let (out, _) = batch(&mut store, &[&rec, &in_narrow]);
    assert_all_accepted(&out, &[&rec, &in_narrow]);
    let rev = revocation(
        &fed,
        0,
        TargetType::Delegation,
        wide.id(),
        BASE + 5 * MINUTE,
        BASE + 20 * MINUTE,
    );
    assert_accepted(&ingest(&mut store, &rev), &rev);
    assert_eq!(
        store.record_status(&rec.id()).unwrap(),
        Some(RecordStatus::SignerRevoked)
    );
    // The narrower delegation still covers the other record.
    assert_eq!(
        store.record_status(&in_narrow.id()).unwrap(),
        Some(RecordStatus::Active)
    );
}
