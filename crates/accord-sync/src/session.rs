//! Reconciliation sessions: the initiator's state machine and the responder's step.

use std::sync::Arc;

use accord_core::ObjectId;
use negentropy::{Id, Negentropy};
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

/// One reconciliation session, from our side.
pub struct Initiator {
    neg: Negentropy<'static, Shared>,
    have: Vec<Id>,
    need: Vec<Id>,
    stats: SessionStats,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("stats", &self.stats)
            .finish()
    }
}

fn ids(v: Vec<Id>) -> Vec<ObjectId> {
    v.into_iter().map(|i| ObjectId(*i)).collect()
}

impl Initiator {
    /// Starts a session over `snapshot`; returns it and the first message.
    pub fn start(snapshot: Arc<Snapshot>) -> Result<(Initiator, Vec<u8>), SyncError> {
        let mut neg = Negentropy::owned(Shared(snapshot), FRAME_LIMIT).map_err(protocol)?;
        let first = neg.initiate().map_err(protocol)?;
        let stats = SessionStats {
            rounds: 1,
            bytes_out: first.len() as u64,
            bytes_in: 0,
        };
        Ok((
            Initiator {
                neg,
                have: Vec::new(),
                need: Vec::new(),
                stats,
            },
            first,
        ))
    }

    /// Consumes the peer's answer.
    pub fn on_message(&mut self, msg: &[u8]) -> Result<Outcome, SyncError> {
        self.stats.bytes_in += msg.len() as u64;
        if self.stats.bytes_in > MAX_SESSION_BYTES {
            return Err(SyncError::Protocol(format!(
                "the session received more than {MAX_SESSION_BYTES} bytes"
            )));
        }
        if msg.len() as u64 > FRAME_LIMIT * 2 {
            return Err(SyncError::Protocol(format!(
                "answer of {} bytes exceeds the frame limit",
                msg.len()
            )));
        }
        match self
            .neg
            .reconcile_with_ids(msg, &mut self.have, &mut self.need)
            .map_err(protocol)?
        {
            Some(next) => {
                if self.stats.rounds >= MAX_ROUNDS {
                    return Err(SyncError::TooManyRounds);
                }
                self.stats.rounds += 1;
                self.stats.bytes_out += next.len() as u64;
                Ok(Outcome::Send(next))
            }
            None => Ok(Outcome::Done {
                have: ids(std::mem::take(&mut self.have)),
                need: ids(std::mem::take(&mut self.need)),
            }),
        }
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }
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
