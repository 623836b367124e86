//! `accord-sync` owns Accord's set reconciliation: range-based reconciliation (negentropy,
//! protocol version 1) over the items `(creation time, object id)` of a node's store, as a
//! sans-I/O state machine. It consumes and produces messages; the node carries them over the
//! `/accord/<fed16>/sync/1` request-response protocol and stores what it fetches through the
//! ordinary ingest pipeline.
//!
//! - [`Snapshot`]: an immutable, sorted in-memory view of the items, shared by the sessions
//!   that use it; [`SyncIndex`] keeps one current as objects are added (a linear merge when a
//!   session asks, never a re-read of the store).
//! - [`Initiator`]: one reconciliation session with a peer, with a frame limit and a round
//!   limit so that a hostile peer can make it neither loop nor allocate without bound. Its
//!   messages are negentropy v1; which ranges it asks about follows the density of
//!   differences seen so far (`initiator.rs`).
//! - [`respond`]: the stateless responder step (the negentropy crate's reference one).
//! - [`Request`] / [`Response`]: the wire messages of the sync protocol (docs/PROTOCOL.md 9.3).

mod index;
mod initiator;
mod message;
mod session;

pub use index::{Snapshot, SyncIndex};
pub use initiator::{Initiator, MAX_STALLED};
pub use message::{MAX_FETCH_IDS, Request, Response, decode_objects, encode_objects};
pub use session::{
    FRAME_LIMIT, MAX_ROUNDS, MAX_SESSION_BYTES, Outcome, SessionStats, SyncError, respond,
};
