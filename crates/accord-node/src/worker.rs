//! The store worker: a dedicated OS thread that owns the [`Store`]. Async code never calls
//! sled; it sends jobs over a bounded channel and awaits a oneshot reply. Ingest jobs that are
//! queued together are validated and written as one group commit (one transaction, one flush).

use std::sync::Arc;

use accord_core::{Object, Verified};
use accord_search::SearchIndex;
use accord_store::{IngestOutcome, Store};
use accord_sync::{Snapshot, SyncIndex};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::{NodeError, Source, now};

/// Capacity of the job queue into the store thread.
pub const STORE_QUEUE_CAPACITY: usize = 1024;
/// Most objects in one group commit.
pub const MAX_GROUP_OBJECTS: usize = 512;

/// The result of ingesting a list of objects.
#[derive(Debug, Clone)]
pub struct IngestResult {
    /// One outcome per submitted object, in order.
    pub outcomes: Vec<IngestOutcome>,
    /// Quarantined objects accepted because a prerequisite arrived in this commit.
    pub released: Vec<Verified<Object>>,
}

type ReadFn = Box<dyn FnOnce(&Store) + Send>;

pub(crate) enum Job {
    Ingest {
        items: Vec<Vec<u8>>,
        source: Source,
        reply: oneshot::Sender<Result<IngestResult, NodeError>>,
    },
    Read(ReadFn),
    /// The current reconciliation snapshot.
    Snapshot(oneshot::Sender<Arc<Snapshot>>),
    Shutdown,
}

/// Runs the worker until a `Shutdown` job (or every sender is gone). Every job queued before
/// the shutdown is finished first.
pub(crate) fn run(mut store: Store, mut search: SearchIndex, mut rx: mpsc::Receiver<Job>) {
    let mut index = match store.time_ids() {
        Ok(items) => SyncIndex::new(items),
        Err(e) => {
            error!(error = %e, "cannot read the store's time index: reconciliation starts empty");
            SyncIndex::default()
        }
    };
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
            Job::Read(f) => f(&store),
            Job::Snapshot(reply) => {
                let _ = reply.send(index.snapshot());
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
                ingest_group(&mut store, &mut index, &mut search, group);
            }
        }
    }
    // Remaining jobs after a shutdown request are answered as stopped by dropping them.
    info!("store worker stopped");
}

type Group = Vec<(
    Vec<Vec<u8>>,
    Source,
    oneshot::Sender<Result<IngestResult, NodeError>>,
)>;

fn ingest_group(store: &mut Store, index: &mut SyncIndex, search: &mut SearchIndex, group: Group) {
    let sources: Vec<String> = group
        .iter()
        .map(|(_, source, _)| source.quarantine_source())
        .collect();
    let all: Vec<(&[u8], &str)> = group
        .iter()
        .zip(&sources)
        .flat_map(|((items, _, _), source)| {
            items.iter().map(move |i| (i.as_slice(), source.as_str()))
        })
        .collect();
    match store.ingest_from(&all, now()) {
        Ok((outcomes, released)) => {
            for o in &outcomes {
                if let IngestOutcome::Accepted(v) = o {
                    index.insert(v.object().created(), v.id());
                }
            }
            for v in &released {
                index.insert(v.object().created(), v.id());
            }
            crate::index::update(store, search, &outcomes, &released);
            let mut outcomes = outcomes.into_iter();
            let mut released = Some(released);
            for (items, source, reply) in group {
                let mine: Vec<IngestOutcome> = outcomes.by_ref().take(items.len()).collect();
                for o in &mine {
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
                }));
            }
        }
        Err(e) => {
            error!(error = %e, "store write failed; nothing in this group was acknowledged");
            let msg = e.to_string();
            for (_, _, reply) in group {
                let _ = reply.send(Err(NodeError::Store(msg.clone())));
            }
        }
    }
}

fn log_outcome(o: &IngestOutcome, source: Source) {
    match o {
        IngestOutcome::Accepted(v) => {
            info!(object = %v.id(), kind = %v.object().object_type(), source = source.as_str(), "accepted")
        }
        IngestOutcome::Rejected(id, r) => warn!(
            object = %id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            source = source.as_str(),
            reason = %r,
            "rejected"
        ),
        // Counted in the metrics; one line each would let a flood fill the log.
        IngestOutcome::Pending(id, m) => {
            debug!(object = %id, source = %source.quarantine_source(), waiting_for = %m, "pending")
        }
        IngestOutcome::QuarantineFull(id, m) => {
            debug!(object = %id, source = %source.quarantine_source(), waiting_for = %m, "no room in the quarantine for this source: not kept")
        }
        IngestOutcome::Duplicate(_) => {}
    }
}
