//! Keeping the search index derived from the store: the documents each group commit changes
//! (new records, and records whose status changed) go to the indexer thread, each index commit
//! marked with the store's sequence number; after a crash it catches up on what followed its mark, and it is rebuilt
//! from scratch only when it is missing, unreadable or inconsistent. The index stores no
//! record's body: its hits read it from the store ([`StoredTexts`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use accord_core::{Object, ObjectId, ObjectType, RevocationTarget};
use accord_search::{Presence, RecordDoc, SearchIndex};
use accord_store::{Filter, IngestOutcome, Order, Page, Store, StoredObject};
use tracing::{info, warn};

/// The name under which the record's author publishes (from its delegation).
fn publisher_name(
    store: &Store,
    member: &accord_core::MemberCode,
    author: &accord_core::PublicKey,
) -> String {
    store
        .trust()
        .delegations_of(author)
        .iter()
        .find(|d| &d.delegation.member == member)
        .map(|d| d.delegation.name.clone())
        .unwrap_or_default()
}

/// The search document of a stored record, with its current status.
pub(crate) fn record_doc(store: &Store, id: &ObjectId) -> Option<RecordDoc> {
    let StoredObject {
        signed,
        object: Object::Record(r),
    } = store.get(id).ok()??
    else {
        return None;
    };
    let status = store.record_status(id).ok()??;
    let author = signed.signatures().first()?.0;
    let mut doc = RecordDoc::of(
        *id,
        &r,
        status.as_str(),
        &publisher_name(store, &r.member, &author),
    );
    doc.attachments = attachment_texts(store, &r);
    Some(doc)
}

/// The extracted text of each of a record's attachments this node holds.
fn attachment_texts(store: &Store, r: &accord_core::Record) -> Vec<accord_search::AttachmentText> {
    if r.attachments.is_empty() {
        return Vec::new();
    }
    texts_of(&crate::attachments::blob_store_at(store.dir()), r)
}

/// Characters of attachment text one record's document holds, over all its files (two files'
/// worth of the extraction's 200,000): a record may name any file a node holds, and one that
/// names the same large file a thousand times must not carry a thousand copies. A document
/// then holds at most about as much as a record's own body may (1 MiB).
pub(crate) const MAX_RECORD_ATTACHMENT_CHARS: usize = 400_000;

/// The extracted text of each of `r`'s attachments held in `blobs`: each file once (by its
/// SHA-256), at most [`MAX_RECORD_ATTACHMENT_CHARS`] in all.
fn texts_of(
    blobs: &accord_store::BlobStore,
    r: &accord_core::Record,
) -> Vec<accord_search::AttachmentText> {
    let mut seen = std::collections::HashSet::new();
    let mut left = MAX_RECORD_ATTACHMENT_CHARS;
    let mut out = Vec::new();
    for a in &r.attachments {
        if left == 0 {
            break;
        }
        if !seen.insert(a.sha256) {
            continue;
        }
        let Some(mut text) = blobs.text(&a.sha256) else {
            continue;
        };
        if let Some((cut, _)) = text.char_indices().nth(left) {
            text.truncate(cut);
        }
        left -= text.chars().count();
        out.push(accord_search::AttachmentText {
            name: a.name.clone(),
            text,
        });
    }
    out
}

/// The long texts of indexed records, read from the store for the hits of a query: the index
/// does not store them ([`SearchIndex::without_long_texts`]). Reads beside the store thread
/// (the object log and sled are safe to read from any thread), so queries never queue behind
/// ingest.
pub(crate) struct StoredTexts {
    /// The node's reader of stored objects, taken at shutdown (it holds the database open):
    /// then hits keep what the index stored.
    objects: Arc<Mutex<Option<accord_store::ObjectReader>>>,
    blobs: accord_store::BlobStore,
    /// The node's trust view, for the limits stored objects decode under (as the store's own
    /// reads do).
    shared: Arc<crate::worker::Shared>,
}

impl StoredTexts {
    pub(crate) fn new(
        objects: Arc<Mutex<Option<accord_store::ObjectReader>>>,
        blobs: accord_store::BlobStore,
        shared: Arc<crate::worker::Shared>,
    ) -> Self {
        StoredTexts {
            objects,
            blobs,
            shared,
        }
    }
}

impl accord_search::TextSource for StoredTexts {
    fn long_texts(&self, id: &ObjectId) -> Option<accord_search::LongTexts> {
        let reader = self.objects.lock().ok()?.clone()?;
        let bytes = match reader.try_get(id) {
            Ok(b) => b?,
            Err(e) => {
                if damaged_hit_warning_due() {
                    warn!(record = %id, error = %e, "cannot read a search hit's record; run `accord check --repair` (at most one such line a minute)");
                }
                return None;
            }
        };
        // Read with the widest bounds, as everything stored is: a charter limit lowered since
        // the record was accepted does not make its hit unreadable.
        let limits = self.shared.trust().limits().for_stored();
        // The body alone: the envelope was checked when the record was accepted, and its
        // signers' keys (a point decompression each) are not needed here.
        let Some(body) = accord_core::envelope::body_of(&bytes) else {
            if damaged_hit_warning_due() {
                warn!(record = %id, "a search hit's stored record is not an envelope; run `accord check --repair` (at most one such line a minute)");
            }
            return None;
        };
        let r = match Object::decode_body(body, &limits) {
            Ok(Object::Record(r)) => r,
            Ok(_) => return None,
            Err(e) => {
                if damaged_hit_warning_due() {
                    warn!(record = %id, error = %e, "a search hit's stored record does not decode; run `accord check --repair` (at most one such line a minute)");
                }
                return None;
            }
        };
        let attachments = texts_of(&self.blobs, &r);
        Some(accord_search::LongTexts {
            body: r.body,
            attachments,
        })
    }
}

/// Whether a damaged record met by a search may be logged now: a record damaged on disk is met
/// by every query that finds it, and is named at most once a minute.
fn damaged_hit_warning_due() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    now.saturating_sub(last) >= 60
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// Every record id of the store of `member` (all members if `None`), in creation order.
fn all_records(store: &Store, member: Option<&accord_core::MemberCode>) -> Vec<ObjectId> {
    if member.is_some() {
        return records_by(store, member, None);
    }
    // From the type index alone: a record whose bytes no longer read is listed too (and left
    // out where it is read, said there), instead of ending the listing of those after it.
    store.ids_of_type(ObjectType::Record).unwrap_or_else(|e| {
        warn!(error = %e, "the store's type index could not be read whole; run `accord check`");
        Vec::new()
    })
}

/// The stored records of `member` (all members if `None`) signed by `author` (anyone's if
/// `None`).
fn records_by(
    store: &Store,
    member: Option<&accord_core::MemberCode>,
    author: Option<accord_core::PublicKey>,
) -> Vec<ObjectId> {
    let filter = Filter {
        types: vec![ObjectType::Record],
        members: member.into_iter().cloned().collect(),
        authors: author.into_iter().collect(),
        ..Default::default()
    };
    let mut out = Vec::new();
    each_stored(store, &filter, |o| out.push(o.signed.id()));
    out
}

/// Calls `f` with every stored object `filter` matches, oldest first, a page at a time.
fn each_stored(store: &Store, filter: &Filter, mut f: impl FnMut(&accord_store::StoredObject)) {
    let mut after = None;
    loop {
        let page = match store.query(
            filter,
            Page {
                limit: 1000,
                after,
                order: Order::OldestFirst,
            },
        ) {
            Ok(page) => page,
            Err(e) => {
                // A stored object that no longer reads ends the scan: what follows it is not
                // seen, and the operator is told how to find and drop the damaged one.
                warn!(error = %e, "a stored object could not be read; run `accord check --repair`");
                break;
            }
        };
        for (o, _) in &page.items {
            f(o);
        }
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
}

/// What bringing the index in step with the store took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Catchup {
    /// It was in step.
    InStep,
    /// It caught up on this many objects stored after its mark.
    Caught(usize),
    /// It was rebuilt from scratch.
    Rebuilt,
}

/// Brings the index in step with the store: nothing when its mark is the store's sequence
/// number; only the objects after its mark when it is behind (a crash between a group commit
/// and the index commit); a full rebuild when it has no mark and a different count (missing,
/// reset, or written by an older version), is ahead of the store (a restored backup), is still
/// inconsistent after catching up, or `force` is set.
pub(crate) fn rebuild_if_needed(
    store: &Store,
    index: &mut SearchIndex,
    force: bool,
) -> Result<Catchup, accord_search::SearchError> {
    let records = store
        .counts_by_type()
        .ok()
        .and_then(|c| c.get(&ObjectType::Record).copied())
        .unwrap_or(0);
    let seq = store.seq();
    let analysis = index.analysis_version();
    let reanalyse = index.num_docs() > 0 && analysis != accord_search::ANALYSIS_VERSION;
    if reanalyse {
        info!(
            from = analysis,
            to = accord_search::ANALYSIS_VERSION,
            "the search index was written by another version of text analysis"
        );
    }
    if !force && !reanalyse {
        match index.mark() {
            Some(m) if m == seq && index.num_docs() == records => return Ok(Catchup::InStep),
            None if index.num_docs() == records => {
                // An index from before marks: in step by count; mark it.
                index.commit_at(seq)?;
                return Ok(Catchup::InStep);
            }
            Some(m) if m < seq => {
                let ids = store.ids_since(m).unwrap_or_default();
                let objects: Vec<(ObjectId, Object)> = ids
                    .iter()
                    .filter_map(|id| store.get(id).ok().flatten().map(|s| (*id, s.object)))
                    .collect();
                let touched = touched_by(store, None, objects.iter().map(|(id, o)| (*id, o)));
                let docs: Vec<RecordDoc> = touched
                    .iter()
                    .filter_map(|id| record_doc(store, id))
                    .collect();
                index.upsert(&docs)?;
                index.commit_at(seq)?;
                if index.num_docs() == records {
                    info!(
                        objects = ids.len(),
                        records = docs.len(),
                        "search index caught up with the store"
                    );
                    return Ok(Catchup::Caught(ids.len()));
                }
                warn!(
                    indexed = index.num_docs(),
                    records, "search index still differs from the store after catching up"
                );
            }
            _ => {}
        }
    }
    info!(
        indexed = index.num_docs(),
        records, "rebuilding the search index from the store"
    );
    index.clear()?;
    let ids = all_records(store, None);
    let mut unreadable: Vec<ObjectId> = Vec::new();
    for chunk in ids.chunks(1000) {
        let docs: Vec<RecordDoc> = chunk
            .iter()
            .filter_map(|id| {
                let doc = record_doc(store, id);
                if doc.is_none() {
                    unreadable.push(*id);
                }
                doc
            })
            .collect();
        // The index was just cleared: every document is new to it.
        index.apply(docs.iter().map(|d| (d, Presence::New)))?;
    }
    index.commit_at(seq)?;
    if let Some(first) = unreadable.first() {
        // Damaged bytes (bit rot): the others are indexed all the same; the repair drops the
        // damaged ones, and reconciliation fetches a good copy from a peer.
        warn!(
            count = unreadable.len(),
            first = %first,
            "stored records could not be read and are missing from search; run `accord check --repair`"
        );
    }
    info!(
        records = ids.len() - unreadable.len(),
        "search index rebuilt"
    );
    Ok(Catchup::Rebuilt)
}

/// The records whose search document the given newly stored objects change: new records, the
/// records they supersede or retract, and the records signed by a key whose delegation (or the
/// key itself) a revocation touches, whose delegating root key a charter amendment replaced,
/// or that a delegation covers again. A key that never had a delegation of the revocation's
/// member signed none of its records: its revocation (anyone may revoke their own key, and a
/// throwaway key's self-revocation costs nothing to make) touches no record at all.
///
/// `before` is the trust view before these objects (a group commit's; `None` when catching up
/// at start). With it, only the records a change can reach are read: a revocation moves a
/// key's status from its new effective time to the earlier one's (a member revoking a key
/// again, each time a millisecond earlier, costs the records of that millisecond, not all of
/// the key's); a delegation reaches its own window, and only of a key that lost another; an
/// amendment only the keys whose root it replaced or brought back.
fn touched_by<'a>(
    store: &Store,
    before: Option<&accord_core::TrustView>,
    objects: impl Iterator<Item = (ObjectId, &'a Object)>,
) -> BTreeSet<ObjectId> {
    use accord_core::{MemberCode, PublicKey, Timestamp};
    let mut touched: BTreeSet<ObjectId> = BTreeSet::new();
    // The (member, key) pairs whose records this commit may change, each with the windows of
    // creation times reached (from, until), read at the end, however many objects name them.
    let mut revoked: BTreeMap<(MemberCode, PublicKey), Vec<Window>> = BTreeMap::new();
    let whole = (Timestamp(0), None);
    for (id, obj) in objects {
        match obj {
            Object::Record(r) => {
                touched.insert(id);
                if let Some(prev) = r.supersedes {
                    touched.insert(prev);
                }
            }
            Object::Retraction(r) => {
                touched.insert(r.record);
                // A retracted successor no longer supersedes what it named.
                if let Some(prev) = supersedes_of(store, &r.record) {
                    touched.insert(prev);
                }
            }
            Object::Revocation(r) => {
                let trust = store.trust();
                // From its effective time up to the earlier revocation's, if one was in force
                // before: a revocation whose target was already revoked from an earlier time
                // changes nothing, and a member repeating its revocations costs no scan.
                let window = |earlier: Option<Timestamp>| {
                    earlier
                        .is_none_or(|t| t > r.effective)
                        .then_some((r.effective, earlier))
                };
                match r.target() {
                    Some(RevocationTarget::Key(key)) => {
                        let delegated = trust
                            .delegations_of(&key)
                            .iter()
                            .any(|d| d.delegation.member == r.member);
                        let earlier = match before {
                            Some(b) => b.key_revoked_since(&r.member, &key),
                            // Without the view before, the revocation in force is taken as
                            // the first: its whole window from its effective time.
                            None => trust
                                .key_revoked_since(&r.member, &key)
                                .filter(|t| *t < r.effective),
                        };
                        if let (true, Some(w)) = (delegated, window(earlier)) {
                            revoked.entry((r.member.clone(), key)).or_default().push(w);
                        }
                    }
                    Some(RevocationTarget::Delegation(target)) => {
                        let earlier = match before {
                            Some(b) => b.object_revoked_since(&target, &r.member),
                            None => trust
                                .object_revoked_since(&target, &r.member)
                                .filter(|t| *t < r.effective),
                        };
                        if let Some(w) = window(earlier)
                            && let Some(d) = trust
                                .delegation(&target)
                                .filter(|d| d.delegation.member == r.member)
                        {
                            revoked
                                .entry((r.member.clone(), d.delegation.publisher))
                                .or_default()
                                .push(w);
                        }
                    }
                    _ => {}
                }
            }
            // A charter amendment that replaced a member's root key makes the records of the
            // publishers the old key delegated read "signer revoked" (and one that brings a key
            // back, "active" again); the index shows what the record page shows. Only the keys
            // whose root changed: an amendment that keeps the roots (a new taxonomy term)
            // reaches no record.
            Object::Charter(_) => {
                let trust = store.trust();
                for d in trust.delegations() {
                    let member = &d.delegation.member;
                    let rooted = trust.root_key(member) == Some(d.signer);
                    let changed = match before {
                        Some(b) => (b.root_key(member) == Some(d.signer)) != rooted,
                        // Catching up at start, the view before is not known: an amendment may
                        // have replaced a root or brought one back, so every key (rare).
                        None => true,
                    };
                    if changed {
                        revoked
                            .entry((member.clone(), d.delegation.publisher))
                            .or_default()
                            .push(whole);
                    }
                }
            }
            // A key delegated again (by a new root key, say) may cover records that read
            // "signer revoked" until now: those of its window, and only if another delegation
            // of the key was revoked or its root replaced (otherwise no record of the key reads
            // "signer revoked"). A key's first delegation covers no stored record: its records
            // waited for it, and come now as new ones.
            Object::Delegation(d) => {
                let trust = before.unwrap_or(store.trust());
                let lost_one = trust
                    .delegations_of(&d.publisher)
                    .iter()
                    .filter(|e| e.delegation.member == d.member && e.id != id)
                    .any(|e| {
                        trust.root_key(&d.member) != Some(e.signer)
                            || trust.object_revoked_since(&e.id, &d.member).is_some()
                    });
                if lost_one {
                    let until = d.not_after.map(|t| Timestamp(t.0.saturating_add(1)));
                    revoked
                        .entry((d.member.clone(), d.publisher))
                        .or_default()
                        .push((d.not_before, until));
                }
            }
            _ => {}
        }
    }
    // Each key's own records in the windows reached, from the store's index by signer: the
    // work is that of the records whose status may change, not of every record the node holds.
    for ((member, key), windows) in revoked {
        for (from, until) in merged_windows(windows) {
            let ids = store
                .records_signed_between(&member, &key, from, until)
                .unwrap_or_else(|e| {
                    warn!(error = %e, member = %member, "records of a revoked or re-delegated key not read; their search status may be stale until the index is rebuilt");
                    Vec::new()
                });
            for id in ids {
                touched.insert(id);
                // Its status may have changed what it supersedes.
                if let Some(prev) = supersedes_of(store, &id) {
                    touched.insert(prev);
                }
            }
        }
    }
    touched
}

/// A window of creation times `[from, until)` (`None`: no end).
type Window = (accord_core::Timestamp, Option<accord_core::Timestamp>);

/// Windows of creation times, overlapping or adjacent ones
/// joined, in order: each record is read once.
fn merged_windows(mut windows: Vec<Window>) -> Vec<Window> {
    windows.sort_by_key(|(from, _)| *from);
    let mut out: Vec<Window> = Vec::new();
    for (from, until) in windows {
        match out.last_mut() {
            Some((_, last_until)) if last_until.is_none_or(|u| from <= u) => {
                *last_until = match (*last_until, until) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            _ => out.push((from, until)),
        }
    }
    out
}

/// The record `id` supersedes, if it is a stored record that supersedes one.
fn supersedes_of(store: &Store, id: &ObjectId) -> Option<ObjectId> {
    match store.get(id).ok()??.object {
        Object::Record(r) => r.supersedes,
        _ => None,
    }
}

/// The documents a group commit changed: new records, and the records whose derived status
/// an accepted retraction, superseding record or revocation may have changed. Built on the
/// store thread (they read the store); the indexer thread applies them.
pub(crate) fn docs_for(
    store: &Store,
    before: &accord_core::TrustView,
    accepted: &[std::sync::Arc<accord_core::Verified<Object>>],
) -> Vec<(RecordDoc, Presence)> {
    let touched = touched_by(
        store,
        Some(before),
        accepted.iter().map(|v| (v.id(), v.object())),
    );
    // Records stored by this commit are at hand, decoded: their documents are built from
    // them; only older records whose status changed are read back from the store.
    let at_hand: std::collections::BTreeMap<ObjectId, &accord_core::Verified<Object>> =
        accepted.iter().map(|v| (v.id(), &**v)).collect();
    // Those stored by this commit cannot be in the index yet: they are only added (a
    // replacement costs a lookup in every segment); the others replace what is there.
    touched
        .iter()
        .filter_map(|id| match at_hand.get(id) {
            Some(v) => doc_of(store, v).map(|d| (d, Presence::New)),
            None => record_doc(store, id).map(|d| (d, Presence::Maybe)),
        })
        .collect()
}

/// The objects an ingest stored: those accepted, then those it released from the quarantine.
pub(crate) fn stored<'a>(
    outcomes: &'a [IngestOutcome],
    released: &'a [std::sync::Arc<accord_core::Verified<Object>>],
) -> impl Iterator<Item = &'a std::sync::Arc<accord_core::Verified<Object>>> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            IngestOutcome::Accepted(v) => Some(v),
            _ => None,
        })
        .chain(released)
}

/// [`stored`], shared (not copied) for the indexer.
pub(crate) fn accepted_of(
    outcomes: &[IngestOutcome],
    released: &[std::sync::Arc<accord_core::Verified<Object>>],
) -> Vec<std::sync::Arc<accord_core::Verified<Object>>> {
    stored(outcomes, released).cloned().collect()
}

/// The search document of a record just stored, with its current status.
fn doc_of(store: &Store, v: &accord_core::Verified<Object>) -> Option<RecordDoc> {
    let Object::Record(r) = v.object() else {
        return None;
    };
    let author = v.signer();
    let status = store.status_of_record(&v.id(), r, &author).ok()?;
    let mut doc = RecordDoc::of(
        v.id(),
        r,
        status.as_str(),
        &publisher_name(store, &r.member, &author),
    );
    doc.attachments = attachment_texts(store, r);
    Some(doc)
}

/// Applies the documents of a group commit and commits the index at the store's sequence
/// number (what the indexer thread does, at once).
#[cfg(test)]
fn update(
    store: &Store,
    before: &accord_core::TrustView,
    index: &mut SearchIndex,
    outcomes: &[IngestOutcome],
    released: &[std::sync::Arc<accord_core::Verified<Object>>],
) {
    let docs = docs_for(store, before, &accepted_of(outcomes, released));
    if let Err(e) = index
        .apply(docs.iter().map(|(d, p)| (d, *p)))
        .and_then(|_| index.commit_at(store.seq()))
    {
        warn!(error = %e, "search index update failed");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use accord_core::devnet::DevFederation;
    use accord_core::{Retraction, Timestamp};
    use accord_search::SearchQuery;
    use accord_store::StoreOptions;

    const T0: Timestamp = Timestamp(1_750_000_000_000);

    fn statuses(index: &SearchIndex) -> std::collections::BTreeMap<String, u64> {
        let q = SearchQuery {
            statuses: vec!["active".into(), "retracted".into()],
            limit: 1,
            ..Default::default()
        };
        let r = index.searcher().search(&q).unwrap();
        r.facets.get("status").cloned().unwrap_or_default()
    }

    fn ingest(store: &mut Store, objs: &[Vec<u8>]) -> accord_store::Ingested {
        let items: Vec<&[u8]> = objs.iter().map(Vec::as_slice).collect();
        store
            .ingest_batch(&items, Timestamp(T0.0 + 3_600_000))
            .unwrap()
    }

    /// A record damaged on disk (bit rot in the object log) is left out of a rebuilt index, and
    /// only it: the records after it are indexed all the same, not cut off with it.
    #[test]
    fn a_damaged_record_is_left_out_of_a_rebuild_and_only_it() {
        let fed = DevFederation::new(&["KZ"], [4; 32], T0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let objs: Vec<Vec<u8>> = std::iter::once(fed.delegation(0).into_bytes())
            .chain((0..12).map(|n| {
                fed.record(0, &format!("kept {n}"), Timestamp(T0.0 + n))
                    .into_bytes()
            }))
            .collect();
        {
            let mut store =
                Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()).unwrap();
            let (out, _) = ingest(&mut store, &objs);
            assert!(out.iter().all(|o| o.status() == "accepted"), "{out:?}");
        }
        // The second record's first byte (its envelope's header) damaged: its bytes no longer
        // decode.
        let log = dir.path().join("objects.log");
        let mut bytes = std::fs::read(&log).unwrap();
        let victim = &objs[2];
        let at = bytes
            .windows(victim.len())
            .position(|w| w == victim.as_slice())
            .unwrap();
        bytes[at] = 0xff;
        std::fs::write(&log, &bytes).unwrap();
        let store =
            Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()).unwrap();
        let mut index = SearchIndex::open(&dir.path().join("search")).unwrap();
        assert_eq!(
            rebuild_if_needed(&store, &mut index, true).unwrap(),
            Catchup::Rebuilt
        );
        assert_eq!(index.num_docs(), 11, "every record but the damaged one");
    }

    /// A crash between a group commit and the index commit: at the next start the index takes
    /// only what it missed (new records and a status change), not a rebuild.
    #[test]
    fn after_a_crash_the_index_catches_up_on_what_it_missed() {
        let fed = DevFederation::new(&["KZ", "BY"], [3; 32], T0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let search_dir = dir.path().join("search");
        let first: Vec<Vec<u8>> = std::iter::once(fed.delegation(0).into_bytes())
            .chain((0..20).map(|n| {
                fed.record(0, &format!("first {n}"), Timestamp(T0.0 + n))
                    .into_bytes()
            }))
            .collect();
        let retracted = accord_core::SignedObject::decode_draft(
            &first[1],
            usize::MAX,
            accord_core::Limits::default().scan(),
        )
        .unwrap()
        .id();
        {
            let mut store =
                Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()).unwrap();
            let mut index = SearchIndex::open(&search_dir).unwrap();
            assert_eq!(
                rebuild_if_needed(&store, &mut index, false).unwrap(),
                Catchup::InStep
            );
            let before = store.trust_shared();
            let (out, rel) = ingest(&mut store, &first);
            update(&store, &before, &mut index, &out, &rel);
            assert_eq!(index.mark(), Some(store.seq()));
            // The next group is stored, and the process dies before the index commits it.
            let retraction = Object::Retraction(Retraction {
                object_type: ObjectType::Retraction,
                federation: fed.federation(),
                created: Timestamp(T0.0 + 100),
                member: fed.members[0].code.clone(),
                record: retracted,
                reason: "withdrawn".into(),
            })
            .sign(&fed.members[0].root);
            let second: Vec<Vec<u8>> = (0..5)
                .map(|n| {
                    fed.record(0, &format!("second {n}"), Timestamp(T0.0 + 50 + n))
                        .into_bytes()
                })
                .chain(std::iter::once(retraction.into_bytes()))
                .collect();
            let (out, _) = ingest(&mut store, &second);
            assert!(out.iter().all(|o| o.status() == "accepted"), "{out:?}");
        }
        let store =
            Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()).unwrap();
        let mut index = SearchIndex::open(&search_dir).unwrap();
        assert_eq!(index.num_docs(), 20);
        assert_eq!(
            rebuild_if_needed(&store, &mut index, false).unwrap(),
            Catchup::Caught(6),
            "only the six objects after the mark"
        );
        assert_eq!(index.num_docs(), 25);
        assert_eq!(index.mark(), Some(store.seq()));
        let s = statuses(&index);
        assert_eq!(
            (s.get("active"), s.get("retracted")),
            (Some(&24), Some(&1)),
            "{s:?}"
        );
        // In step now: nothing to do; a forced rebuild still rebuilds.
        assert_eq!(
            rebuild_if_needed(&store, &mut index, false).unwrap(),
            Catchup::InStep
        );
        assert_eq!(
            rebuild_if_needed(&store, &mut index, true).unwrap(),
            Catchup::Rebuilt
        );
        // An index written by an older analysis is rebuilt, whether it wrote its version or
        // not; then it is in step.
        for (analysis, read) in [(None, 1), (Some(2), 2)] {
            index.commit_by_analysis(store.seq(), analysis).unwrap();
            assert_eq!(index.analysis_version(), read);
            assert_eq!(
                rebuild_if_needed(&store, &mut index, false).unwrap(),
                Catchup::Rebuilt
            );
            assert_eq!(index.analysis_version(), accord_search::ANALYSIS_VERSION);
            assert_eq!(index.num_docs(), 25);
            assert_eq!(
                rebuild_if_needed(&store, &mut index, false).unwrap(),
                Catchup::InStep
            );
        }
        // An index that lost its files is rebuilt.
        drop(index);
        std::fs::remove_dir_all(&search_dir).unwrap();
        let mut index = SearchIndex::open(&search_dir).unwrap();
        assert_eq!(
            rebuild_if_needed(&store, &mut index, false).unwrap(),
            Catchup::Rebuilt
        );
        assert_eq!(index.num_docs(), 25);
    }

    /// An amendment replacing a member's root key re-indexes the records of the publishers the
    /// old key delegated (they read "signer revoked" on the record page, and read "active" in
    /// search), and the same publisher delegated again by the new key re-indexes them back.
    #[test]
    fn a_replaced_root_key_and_a_new_delegation_change_the_records_search_status() {
        let fed = DevFederation::new(&["KZ", "BY"], [5; 32], T0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()).unwrap();
        let mut index = SearchIndex::open(&dir.path().join("search")).unwrap();
        let first: Vec<Vec<u8>> = std::iter::once(fed.delegation(1).into_bytes())
            .chain((0..3).map(|n| {
                fed.record(1, &format!("BY {n}"), Timestamp(T0.0 + 10 + n))
                    .into_bytes()
            }))
            .collect();
        let before = store.trust_shared();
        let (out, rel) = ingest(&mut store, &first);
        update(&store, &before, &mut index, &out, &rel);
        let all = |index: &SearchIndex| {
            let q = SearchQuery {
                statuses: vec!["active".into(), "signer-revoked".into()],
                limit: 1,
                ..Default::default()
            };
            let r = index.searcher().search(&q).unwrap();
            r.facets.get("status").cloned().unwrap_or_default()
        };
        assert_eq!(all(&index).get("active"), Some(&3));
        // BY's root key is replaced.
        let new_root = accord_core::SecretKey::from_seed([55; 32]);
        let mut c = store.trust().charter().clone();
        c.federation = Some(store.trust().federation());
        c.version += 1;
        c.previous = Some(store.trust().charter_id());
        c.created = Timestamp(T0.0 + 100);
        if let Some(m) = c.members.iter_mut().find(|m| m.code.as_str() == "BY") {
            m.root_key = new_root.public_key();
        }
        let mut amendment = accord_core::SignedObject::unsigned(Object::Charter(c).encode_body());
        for k in [&fed.members[0].root, &fed.members[1].root, &new_root] {
            assert!(amendment.add_signature(k));
        }
        let before = store.trust_shared();
        let (out, rel) = ingest(&mut store, &[amendment.into_bytes()]);
        assert!(out.iter().all(|o| o.status() == "accepted"), "{out:?}");
        update(&store, &before, &mut index, &out, &rel);
        assert_eq!(
            all(&index).get("signer-revoked"),
            Some(&3),
            "{:?}",
            all(&index)
        );
        // The new root key delegates the same publisher again: active again.
        let again =
            match Object::decode_body(fed.delegation(1).body(), &accord_core::Limits::default()) {
                Ok(Object::Delegation(mut d)) => {
                    d.created = Timestamp(T0.0 + 200);
                    Object::Delegation(d).sign(&new_root)
                }
                other => panic!("{other:?}"),
            };
        let before = store.trust_shared();
        let (out, rel) = ingest(&mut store, &[again.into_bytes()]);
        assert!(out.iter().all(|o| o.status() == "accepted"), "{out:?}");
        update(&store, &before, &mut index, &out, &rel);
        assert_eq!(all(&index).get("active"), Some(&3), "{:?}", all(&index));
    }

    /// A revocation re-indexes the records its key signed from its effective time (those before
    /// it keep their status), and nothing for a key that never had a delegation of the member:
    /// a throwaway key's self-revocation (valid from anyone) must not make the node rebuild a
    /// member's whole share. A hostile member revoking its key again, each time a millisecond
    /// earlier, or delegating a live key again and again, costs the records that change, not
    /// all of the key's at every object.
    #[test]
    fn a_revocation_touches_only_the_records_of_the_key_it_revokes() {
        use accord_core::object::TargetType;
        use accord_core::{ObjectId, Revocation, SecretKey};
        let fed = DevFederation::new(&["KZ", "BY"], [4; 32], T0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()).unwrap();
        let objs: Vec<Vec<u8>> = [
            fed.delegation(0).into_bytes(),
            fed.delegation(1).into_bytes(),
        ]
        .into_iter()
        .chain((0..30).map(|n| {
            fed.record(0, &format!("kz {n}"), Timestamp(T0.0 + n))
                .into_bytes()
        }))
        .chain((0..5).map(|n| {
            fed.record(1, &format!("by {n}"), Timestamp(T0.0 + n))
                .into_bytes()
        }))
        .collect();
        let (out, _) = ingest(&mut store, &objs);
        assert!(out.iter().all(|o| o.status() == "accepted"), "{out:?}");
        let revocation_from = |key: accord_core::PublicKey, by: &SecretKey, from: u64| {
            Object::Revocation(Revocation {
                object_type: ObjectType::Revocation,
                federation: fed.federation(),
                created: Timestamp(T0.0 + 100 + from),
                member: fed.members[0].code.clone(),
                target_type: TargetType::Key,
                target: ObjectId(*key.as_bytes()),
                effective: Timestamp(T0.0 + from),
                reason: None,
            })
            .sign(by)
        };
        // Indexed again by one commit of `objects`: the titles of the documents.
        let reindexed = |store: &mut Store, objects: &[Vec<u8>]| -> Vec<String> {
            let before = store.trust_shared();
            let (out, rel) = ingest(store, objects);
            assert!(out.iter().all(|o| o.status() == "accepted"), "{out:?}");
            let mut titles: Vec<String> = docs_for(store, &before, &accepted_of(&out, &rel))
                .into_iter()
                .map(|(d, _)| d.title.values().cloned().collect())
                .collect();
            titles.sort();
            titles
        };
        let kz = |from: u64, to: u64| -> Vec<String> {
            let mut v: Vec<String> = (from..to).map(|n| format!("kz {n}")).collect();
            v.sort();
            v
        };
        let throwaway = SecretKey::from_seed([9; 32]);
        let own = revocation_from(throwaway.public_key(), &throwaway, 10);
        assert!(reindexed(&mut store, &[own.into_bytes()]).is_empty());
        let publisher = fed.members[0].publisher.public_key();
        let root = &fed.members[0].root;
        // Revoked from the 20th record: the ten from it on change, the twenty before do not.
        let first = revocation_from(publisher, root, 20);
        assert_eq!(reindexed(&mut store, &[first.into_bytes()]), kz(20, 30));
        // The same key revoked again from a later time changes nothing, and is not a scan.
        let later = revocation_from(publisher, root, 25);
        assert!(reindexed(&mut store, &[later.into_bytes()]).is_empty());
        // A millisecond earlier: that millisecond's record only.
        let earlier = revocation_from(publisher, root, 19);
        assert_eq!(reindexed(&mut store, &[earlier.into_bytes()]), kz(19, 20));
        // Two in one commit: from the earliest up to the revocation in force before.
        let two = [
            revocation_from(publisher, root, 17).into_bytes(),
            revocation_from(publisher, root, 15).into_bytes(),
        ];
        assert_eq!(reindexed(&mut store, &two), kz(15, 19));
        // The key delegated again while its delegation stands: no record of it changes.
        let again =
            match Object::decode_body(fed.delegation(1).body(), &accord_core::Limits::default()) {
                Ok(Object::Delegation(mut d)) => {
                    d.created = Timestamp(T0.0 + 300);
                    Object::Delegation(d).sign(&fed.members[1].root)
                }
                other => panic!("{other:?}"),
            };
        assert!(reindexed(&mut store, &[again.into_bytes()]).is_empty());
        // BY's first delegation revoked from its third record: those from it on change.
        let by = |from: u64, to: u64| -> Vec<String> {
            let mut v: Vec<String> = (from..to).map(|n| format!("by {n}")).collect();
            v.sort();
            v
        };
        let revoke_delegation = Object::Revocation(Revocation {
            object_type: ObjectType::Revocation,
            federation: fed.federation(),
            created: Timestamp(T0.0 + 500),
            member: fed.members[1].code.clone(),
            target_type: TargetType::Delegation,
            target: fed.delegation(1).id(),
            effective: Timestamp(T0.0 + 2),
            reason: None,
        })
        .sign(&fed.members[1].root);
        assert_eq!(
            reindexed(&mut store, &[revoke_delegation.into_bytes()]),
            by(2, 5)
        );
        // The key delegated again now that a delegation of it was revoked: its window's
        // records may read "active" again.
        let renewed =
            match Object::decode_body(fed.delegation(1).body(), &accord_core::Limits::default()) {
                Ok(Object::Delegation(mut d)) => {
                    d.created = Timestamp(T0.0 + 600);
                    Object::Delegation(d).sign(&fed.members[1].root)
                }
                other => panic!("{other:?}"),
            };
        assert_eq!(reindexed(&mut store, &[renewed.into_bytes()]), by(0, 5));
    }

    /// A record that names one held file a thousand times carries its text once, and a record
    /// of many large files at most MAX_RECORD_ATTACHMENT_CHARS in all.
    #[test]
    fn a_records_attachment_text_is_each_file_once_within_a_bound() {
        let fed = DevFederation::new(&["KZ"], [5; 32], T0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let blobs = accord_store::BlobStore::open(dir.path()).unwrap();
        let files: Vec<accord_core::object::Attachment> = (0..10u8)
            .map(|i| {
                let bytes = vec![i; 100];
                let a = accord_core::attachment::describe(&format!("f{i}.txt"), &bytes);
                blobs.put(&a.sha256, &bytes).unwrap();
                blobs.write_text(&a.sha256, &"ж".repeat(200_000)).unwrap();
                a
            })
            .collect();
        let mut r = fed.record_body(0, "many references", T0);
        r.attachments = vec![files[0].clone(); 1024];
        let texts = texts_of(&blobs, &r);
        assert_eq!(texts.len(), 1);
        assert_eq!(texts[0].text.chars().count(), 200_000);
        r.attachments = files;
        let texts = texts_of(&blobs, &r);
        let total: usize = texts.iter().map(|t| t.text.chars().count()).sum();
        assert_eq!(total, MAX_RECORD_ATTACHMENT_CHARS);
        assert_eq!(texts.len(), 2);
    }
}
