use accord_core::{ObjectId, Rejection};
use thiserror::Error;

/// Errors of the storage facade.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "the data directory has schema version {found}, newer than this build supports ({supported}); \
         run a newer accord or restore a backup into an empty directory"
    )]
    NewerSchema { found: u32, supported: u32 },
    #[error(
        "the data directory belongs to federation {found}, but the configured charter is federation {expected}; \
         use another data directory or the matching charter"
    )]
    OtherFederation { found: ObjectId, expected: ObjectId },
    #[error("the genesis charter is not valid: {0}")]
    Genesis(Rejection),
    #[error("corrupt store: {0}")]
    Corrupt(String),
    #[error(
        "the data directory {0} is in use by another process (is a node already running on it?)"
    )]
    Locked(String),
    #[error("import: {0}")]
    Import(String),
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}
