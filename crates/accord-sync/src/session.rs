//! Reconciliation sessions: the initiator's state machine and the responder's step.

use std::sync::Arc;

use accord_core::ObjectId;
use negentropy::Negentropy;
use thiserror::Error;

use crate::index::{Shared, Snapshot};

/// Largest negentropy message either side produces: half the 256 KiB request frame.
pub const FRAME_LIMIT: u64 = 128 * 1024;
/// Most rounds in one session. A frame carries about 4,000 ids, so even 100,000 differences
/// need well under this; a peer that needs more is made to stop.
pub const MAX_ROUNDS: u32 = 512;
/// Most bytes one session may receive (all rounds together).
pub const MAX_SESSION_BYTES: u64 = 256 * 1024 * 1024;

/// Reconciliation errors.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    #[error("malformed sync message: {0}")]
    Malformed(String),
    #[error("reconciliation: {0}")]
    Protocol(String),
    #[error("the peer needed more than {MAX_ROUNDS} rounds")]
    TooManyRounds,
    #[error("the peer refused: {0}")]
    Refused(String),
}

fn protocol(e: negentropy::Error) -> SyncError {
    SyncError::Protocol(e.to_string())
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub rounds: u32,
    pub bytes_out: u64,
    pub bytes_in: u64,
}

/// What the initiator does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send this negentropy message (wrap it in [`crate::Request::Reconcile`]).
    Send(Vec<u8>),
    /// Finished: the ids only we have and the ids only the peer has.
    Done {
        have: Vec<ObjectId>,
        need: Vec<ObjectId>,
    },
}

/// The responder's answer to one negentropy message, over its current snapshot.
pub fn respond(snapshot: Arc<Snapshot>, msg: &[u8]) -> Result<Vec<u8>, SyncError> {
    if msg.len() as u64 > FRAME_LIMIT * 2 {
        return Err(SyncError::Protocol(format!(
            "query of {} bytes exceeds the frame limit",
            msg.len()
        )));
    }
    let mut neg = Negentropy::owned(Shared(snapshot), FRAME_LIMIT).map_err(protocol)?;
    neg.reconcile(msg).map_err(protocol)
}
