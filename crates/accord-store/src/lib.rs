//! `accord-store` owns Accord's local storage: a small synchronous facade over sled 0.34.
//!
//! It keeps the signed objects (the exact verified bytes, appended once to the object log,
//! `objects.log`, beside sled), where each object is, their secondary indexes, the bounded
//! quarantine of pending objects, and a meta tree (schema version, federation id, the log's
//! committed end). At open it rebuilds the [`TrustView`] from the genesis charter and the
//! stored trust objects. Every write appends and syncs the objects' bytes, then is one sled
//! transaction over all trees, flushed before the call returns; [`Store::ingest_incoming`] (and [`Store::ingest_batch`] for raw bytes)
//! judges many objects and writes them with one transaction and one flush (group commit).
//!
//! The API is blocking. The node drives it from a dedicated thread, never from an async
//! worker.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod blobs;
mod declined;
mod error;
mod keys;
mod log;
mod quarantine;
mod query;
mod store;

pub use blobs::{BlobError, BlobMeta, BlobStore, sync_dir};
pub use declined::DECLINED_KEPT;
pub use error::StoreError;
pub use quarantine::QuarantineLimits;
pub use query::{Cursor, Filter, HISTORY_SHOWN, Order, Page, QueryPage, RecordStatus};
pub use store::{
    CheckReport, DEFAULT_CACHE_BYTES, DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_PER_MEMBER,
    DEFAULT_MAX_PENDING_PER_SOURCE, DEFAULT_PENDING_TTL_MS, ImportReport, Incoming, IngestOutcome,
    Ingested, LOCAL_SOURCE, ObjectReader, REPAIR_UNFINISHED, SCHEMA_VERSION, Store, StoreOptions,
    StoredObject, open_db, unfinished_repair,
};

pub use accord_core::TrustView;
