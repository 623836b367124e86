//! Keeping the search index derived from the store: rebuilt when missing or stale, updated
//! after every group commit (new records, and records whose status changed).

use std::collections::BTreeSet;

use accord_core::{Object, ObjectId, ObjectType, RevocationTarget};
use accord_search::{RecordDoc, SearchIndex};
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
    Some(RecordDoc::of(
        *id,
        &r,
        status.as_str(),
        &publisher_name(store, &r.member, &author),
    ))
}

/// Every record id of the store (in creation order).
fn all_records(store: &Store, member: Option<&accord_core::MemberCode>) -> Vec<ObjectId> {
    let filter = Filter {
        types: vec![ObjectType::Record],
        members: member.into_iter().cloned().collect(),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let Ok(page) = store.query(
            &filter,
            Page {
                limit: 1000,
                after,
                order: Order::OldestFirst,
            },
        ) else {
            break;
        };
        out.extend(page.items.iter().map(|(o, _)| o.signed.id()));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    out
}

/// Rebuilds the index from the store when its document count differs from the store's record
/// count (missing, stale or reset index), or when `force` is set.
pub(crate) fn rebuild_if_needed(
    store: &Store,
    index: &mut SearchIndex,
    force: bool,
) -> Result<bool, accord_search::SearchError> {
    let records = store
        .counts_by_type()
        .ok()
        .and_then(|c| c.get(&ObjectType::Record).copied())
        .unwrap_or(0);
    if !force && index.num_docs() == records {
        return Ok(false);
    }
    info!(
        indexed = index.num_docs(),
        records, "rebuilding the search index from the store"
    );
    index.clear()?;
    let ids = all_records(store, None);
    for chunk in ids.chunks(1000) {
        let docs: Vec<RecordDoc> = chunk
            .iter()
            .filter_map(|id| record_doc(store, id))
            .collect();
        index.upsert(&docs)?;
    }
    index.commit()?;
    info!(records = ids.len(), "search index rebuilt");
    Ok(true)
}

/// Updates the index after a group commit: new records, and the records whose derived status
/// an accepted retraction, superseding record or revocation may have changed.
pub(crate) fn update(
    store: &Store,
    index: &mut SearchIndex,
    outcomes: &[IngestOutcome],
    released: &[accord_core::Verified<Object>],
) {
    let accepted = outcomes.iter().filter_map(|o| match o {
        IngestOutcome::Accepted(v) => Some(v),
        _ => None,
    });
    let mut touched: BTreeSet<ObjectId> = BTreeSet::new();
    for v in accepted.chain(released.iter()) {
        match v.object() {
            Object::Record(r) => {
                touched.insert(v.id());
                if let Some(prev) = r.supersedes {
                    touched.insert(prev);
                }
            }
            Object::Retraction(r) => {
                touched.insert(r.record);
            }
            Object::Revocation(r) => {
                if matches!(
                    r.target(),
                    Some(RevocationTarget::Delegation(_) | RevocationTarget::Key(_))
                ) {
                    touched.extend(all_records(store, Some(&r.member)));
                }
            }
            _ => {}
        }
    }
    if touched.is_empty() {
        return;
    }
    let docs: Vec<RecordDoc> = touched
        .iter()
        .filter_map(|id| record_doc(store, id))
        .collect();
    if let Err(e) = index.upsert(&docs).and_then(|_| index.commit()) {
        warn!(error = %e, "search index update failed; it will be rebuilt at the next start");
    }
}
