//! `accord-node` owns the orchestration of a running node: its configuration
//! ([`NodeConfig`]), the single ingest pipeline that every source goes through (local
//! submission, gossip, peers' certificates, preloaded files), and the lifecycle
//! ([`Node::spawn`] → [`NodeHandle`], graceful [`NodeHandle::shutdown`]).
//!
//! Pipeline: duplicate check by id → limits → signatures (the precheck, on a pool as wide as
//! the machine; each signature checked once; the node's own submissions of one or two small
//! objects are checked on the task that received them, their duplicates found by the store
//! thread) → trust → durable store write (group commit on
//! the store thread; the flush is the acknowledgement) → subscribers → gossip (for new local
//! objects); the search index follows on its own thread within 500 ms plus one index commit. Gossip messages
//! are reported to the network as accepted, ignored or rejected only after this pipeline has
//! judged them, so nothing invalid is forwarded.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod allocator;
mod attachments;
mod clock;
pub mod config;
mod disk;
mod health;
mod index;
pub mod metrics;
mod node;
mod priority;
mod sync;
mod worker;

pub use attachments::{
    AttachmentText, Availability, BlobCheck, BlobView, check_blobs, restore_blobs,
};
pub use clock::{CLOCK_WARN_MS, ClockOffset};
pub use config::{
    AdmissionMode, AttachmentsConfig, ConfigError, FetchPolicy, HealthConfig, NodeConfig,
    SyncConfig,
};
pub use disk::{DiskLow, DiskView, NoRoom, available_bytes};
pub use health::{
    Agreement, EvidenceItem, EvidenceSummary, FederationHealth, MAX_EVIDENCE,
    MAX_EVIDENCE_PER_SUBJECT, MAX_NEVER_SEEN_LISTED, MemberHealth, NodeHealth, PROTOCOL_VERSION,
};
pub use node::{
    Hold, Node, NodeHandle, NodeStatus, PeerView, SUBSCRIBER_CAPACITY, StoredView, SubmitOutcome,
};
pub use sync::{PeerSync, SyncProgress};
pub use worker::{
    INDEX_COMMIT_INTERVAL, INDEX_QUEUE_CAPACITY, INDEX_QUEUE_DOCS, IngestResult, MAX_GROUP_OBJECTS,
    STORE_QUEUE_CAPACITY,
};

use thiserror::Error;

/// The default log filter of a running node (`RUST_LOG` replaces it): `info` for Accord,
/// with libp2p's gossipsub at `error`, since under load it warns once per message whose
/// validation outlasted its message cache (the node counts what matters in its metrics).
pub const DEFAULT_LOG_FILTER: &str = "info,libp2p_gossipsub=error";

/// The wall clock as a protocol timestamp (the core takes time as an argument).
pub fn now() -> accord_core::Timestamp {
    accord_core::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

/// Where an object came from (for logs, metrics and the quarantine's per-source bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Local,
    /// Gossip, from the peer that forwarded it.
    Gossip(accord_net::Peer),
    /// A certificate a peer presented.
    Peer(accord_net::Peer),
    Preload,
    /// Reconciliation with a peer.
    Sync(accord_net::Peer),
    Import,
}

impl Source {
    /// The kind of source (a metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Gossip(_) => "gossip",
            Source::Peer(_) => "peer",
            Source::Preload => "preload",
            Source::Sync(_) => "sync",
            Source::Import => "import",
        }
    }

    /// Who the quarantine holds accountable: a peer (whatever the protocol it used), or the
    /// kind of local source.
    pub fn quarantine_source(self) -> String {
        match self {
            Source::Gossip(p) | Source::Peer(p) | Source::Sync(p) => format!("peer {p}"),
            other => other.as_str().to_string(),
        }
    }
}

/// Errors of the node.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("charter {path}: {message}")]
    Charter { path: String, message: String },
    #[error("node key {path}: {message}")]
    Key { path: String, message: String },
    #[error("file {path}: {message}")]
    File { path: String, message: String },
    #[error("store: {0}")]
    Store(String),
    #[error("network: {0}")]
    Net(#[from] accord_net::NetError),
    #[error("the node is shutting down")]
    Stopped,
    #[error(
        "the node's disk is nearly full ({} MiB free, below store.min_free_mb = {} MiB): it takes no new objects until space is freed",
        .0.free_bytes >> 20,
        .0.min_free_bytes >> 20
    )]
    DiskLow(DiskLow),
    #[error(
        "no room for a file of {} MiB on the node's disk: it has {} MiB free (less the files under way), and keeps store.min_free_mb = {} MiB free",
        .0.needed_bytes.div_ceil(1 << 20),
        .0.free_bytes >> 20,
        .0.min_free_bytes >> 20
    )]
    NoRoom(NoRoom),
    #[error("{0}")]
    BadQuery(String),
    /// Too much at once: the request waited its turn too long (try again shortly).
    #[error("{0}")]
    Busy(String),
}

/// The file `accord restore` keeps in a data directory until it has finished: a restore cut
/// short (killed, a power cut) leaves part of a store, which looks consistent to `accord
/// check` and whose records' files were never queued. A node does not start on it.
pub const RESTORE_UNFINISHED: &str = "RESTORE-UNFINISHED";

/// Refuses a data directory an unfinished restore left, naming it and what to do.
pub fn unfinished_restore(dir: &std::path::Path) -> Result<(), NodeError> {
    if dir.join(RESTORE_UNFINISHED).exists() {
        return Err(NodeError::File {
            path: dir.display().to_string(),
            message: format!(
                "an `accord restore` into this directory did not finish ({RESTORE_UNFINISHED} is there): empty the directory and run the restore again"
            ),
        });
    }
    Ok(())
}

/// What an operator can do about a data directory the system refused to open or write: files
/// of another user (a command run as root on the node's store) or a read-only filesystem. Empty
/// for any other error.
pub fn storage_hint(message: &str) -> &'static str {
    if message.contains("(os error 13)") {
        " — its files belong to another user (a command run as root?): give them to the node's user (`chown -R accord:accord` the data directory) or run as their owner"
    } else if message.contains("(os error 30)") {
        " — the filesystem is read-only: the node writes its data directory (under the systemd unit, only below /var/lib/accord, or where ReadWritePaths= allows)"
    } else {
        ""
    }
}

/// A data directory's part (`what`: the store, the search index) that could not be opened,
/// named with its path and, when the system refused it, what to do.
pub fn opening_error(dir: &std::path::Path, what: &str, e: impl std::fmt::Display) -> NodeError {
    let message = e.to_string();
    NodeError::File {
        path: dir.display().to_string(),
        message: format!(
            "cannot open the {what}: {message}{}",
            storage_hint(&message)
        ),
    }
}

/// Refuses the store in `dir` when an older release wrote it, for `command` (`check`,
/// `reindex`): a command run on a stopped node's data directory, which should only read the
/// store or rebuild what derives from it. Opening the store with [`accord_store::Store::open`]
/// upgrades its schema for good, and the older release could then no longer open it — what an
/// operator trying the new binary's command before switching to it, or keeping the old binary
/// to roll back to, would otherwise do. The node upgrades the store when it starts: that is
/// the step meant to, taken when the operator switches releases. Reading the schema opens
/// `dir` as a store: the commands first make sure there is one there.
pub fn refuse_older_store(dir: &std::path::Path, command: &str) -> Result<(), NodeError> {
    let found = accord_store::Store::schema_in(dir).map_err(|e| opening_error(dir, "store", e))?;
    if let Some(found) = found
        && found < accord_store::SCHEMA_VERSION
    {
        return Err(NodeError::Store(format!(
            "{}: the store is of schema {found}, written by an older release; `accord {command}` of this release ({}) would upgrade it to schema {} for good (the older release could no longer open it). Start the node with this release first, which upgrades it, then run `accord {command}` again; or keep the old binary and run its `accord {command}`",
            dir.display(),
            env!("CARGO_PKG_VERSION"),
            accord_store::SCHEMA_VERSION
        )));
    }
    Ok(())
}

/// Rebuilds the search index of a stopped node from its store; returns the number of records.
/// A store of an older release is refused ([`refuse_older_store`]): rebuilding the index is
/// no reason to upgrade it.
pub fn reindex(cfg: &NodeConfig) -> Result<u64, NodeError> {
    unfinished_restore(&cfg.data_dir)?;
    accord_store::unfinished_repair(&cfg.data_dir).map_err(|e| NodeError::Store(e.to_string()))?;
    refuse_older_store(&cfg.data_dir, "reindex")?;
    let genesis = std::fs::read(&cfg.charter).map_err(|e| NodeError::File {
        path: cfg.charter.display().to_string(),
        message: e.to_string(),
    })?;
    let store = accord_store::Store::open(&cfg.data_dir, &genesis, cfg.store.options())
        .map_err(|e| opening_error(&cfg.data_dir, "store", e))?;
    let search_dir = cfg.data_dir.join("search");
    let mut search =
        accord_search::SearchIndex::open_with(&search_dir, &cfg.search.index_options())
            .map_err(|e| opening_error(&search_dir, "search index", e))?;
    search.without_long_texts();
    index::rebuild_if_needed(&store, &mut search, true)
        .map_err(|e| opening_error(&search_dir, "search index", e))?;
    Ok(search.num_docs())
}

#[cfg(test)]
mod tests {
    /// A refusal by the system names what to do; other errors are left as they are.
    #[test]
    fn a_refused_data_directory_says_what_to_do() {
        let dir = std::path::Path::new("/var/lib/accord/data");
        let e = super::opening_error(dir, "store", "i/o: Permission denied (os error 13)");
        let msg = e.to_string();
        assert!(
            msg.contains("/var/lib/accord/data")
                && msg.contains("cannot open the store")
                && msg.contains("chown -R accord:accord"),
            "{msg}"
        );
        let e = super::opening_error(dir, "search index", "Read-only file system (os error 30)");
        assert!(e.to_string().contains("ReadWritePaths="), "{e}");
        assert!(
            !super::opening_error(dir, "store", "corrupt")
                .to_string()
                .contains(" — ")
        );
    }
}
