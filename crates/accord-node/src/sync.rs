//! Reconciliation in the node: sessions we start (on admission and periodically), requests we
//! serve (to admitted peers, within a per-peer budget), and per-peer statistics.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_core::{Limits, ObjectId, SignedObject, Timestamp};
use accord_net::Peer;
use accord_store::IngestOutcome;
use accord_sync::{Initiator, Outcome, Request, Response, SyncError, respond};
use tracing::{debug, info, warn};

use crate::IngestResult;
use crate::node::NodeHandle;
use crate::now;
use crate::worker::Job;
use crate::{NodeError, Source};

/// Retries of a session that failed for a reason that is not the peer's fault.
const SESSION_RETRIES: u32 = 3;
const RETRY_DELAY: Duration = Duration::from_millis(300);
/// Most bytes of objects in one fetch response (the frame limit is 8 MiB).
const MAX_FETCH_RESPONSE_BYTES: usize = accord_net::MAX_SYNC_RESPONSE - 64 * 1024;

/// Peers whose reconciliation figures are kept (`GET /v1/status`, the Connections page).
pub const SYNC_STATS_KEPT: usize = 256;

/// Reconciliation with a peer: the last session that ended, and the one running now.
///
/// A running session publishes its figures as it goes (`running`), so that whoever reads them
/// right after a catch-up sees the session that did it: `missing` (with `rounds` and the bytes
/// so far) is there when the reconciliation rounds end, before the first fetched object is
/// stored, and `fetched` grows after each fetched batch is stored. When the session ends its
/// figures move to the fields of the last session and `running` is cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerSync {
    pub member: Option<String>,
    /// When the last session ended.
    pub last: Option<Timestamp>,
    pub rounds: u32,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Objects the peer had and we did not.
    pub missing: u64,
    /// Objects fetched and accepted (or pending) in the last session.
    pub fetched: u64,
    /// Sessions that ended (with or without an error).
    pub sessions: u64,
    /// Objects fetched and accepted (or pending) over all ended sessions with this peer.
    pub fetched_total: u64,
    /// Objects the peer listed in the last session that this node received (from it or
    /// another, before the session or fetched in it) and refused, or keeps waiting in its
    /// quarantine, for what their bodies say, or that this peer served before and its copy was
    /// refused or left waiting for a signer that once had authority
    /// (`Store::received_not_held_from`): those it had before the session were not fetched
    /// again, and none is read as withheld (docs/PROTOCOL.md §11.3).
    pub refused: u64,
    /// The error that ended the last session, if any.
    pub error: Option<String>,
    /// The session in progress, if one is: its figures so far.
    pub running: Option<SyncProgress>,
}

/// The figures of a session in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncProgress {
    pub rounds: u32,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub missing: u64,
    pub fetched: u64,
}

/// Objects a peer's last session listed that this node refuses or keeps waiting, with their
/// creation times; `generation` tells one session's list from another's.
#[derive(Debug)]
pub(crate) struct Listed {
    pub generation: u64,
    pub items: Vec<(Timestamp, ObjectId)>,
}

/// A peer's place among the running sessions, given up when dropped (see
/// [`NodeHandle::sync_with`]).
struct RunningSession<'a> {
    state: &'a SyncState,
    peer: Peer,
}

impl Drop for RunningSession<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.state.running.lock() {
            running.remove(&self.peer);
        }
    }
}

#[derive(Default)]
pub(crate) struct SyncState {
    stats: Mutex<HashMap<String, PeerSync>>,
    running: Mutex<HashSet<Peer>>,
    /// Peers whose running session is to be followed by another.
    again: Mutex<HashSet<Peer>>,
    /// Ids some session is fetching now: another session does not fetch them too.
    fetching: Mutex<HashSet<ObjectId>>,
    /// Per connected peer, what its last completed session listed that this node refuses or
    /// keeps waiting, with creation times (see [`PeerSync::refused`]).
    refused: Mutex<HashMap<Peer, Arc<Listed>>>,
    /// The generation of the next list in `refused`.
    listed: std::sync::atomic::AtomicU64,
    /// Peers our last session with failed for a reason that was not their fault (most often:
    /// they had not admitted us yet). The next reconciliation request such a peer sends us
    /// shows it has admitted us, and starts our session with it again at once rather than at
    /// the next periodic one.
    unfinished: Mutex<HashSet<Peer>>,
    /// The snapshot reconciliation requests are answered from: when it was asked for, the
    /// store's sequence then, and the snapshot (see `served_snapshot`).
    served: Mutex<Option<(Instant, u64, Arc<accord_sync::Snapshot>)>>,
    /// Held while a served snapshot is chosen or taken: one taken at a time.
    serving: tokio::sync::Mutex<()>,
    /// Test-only refusals left (`SyncConfig::refuse_first_requests`).
    refusals_left: std::sync::atomic::AtomicU32,
    budget: RequestBudget,
    /// Peers disconnected since they were last admitted (at most [`DEPARTED_KEPT`]): a session
    /// with one that ends after it left keeps nothing about it (what it listed as refused, a
    /// session owed), which `forget` could not remove — a peer leaving right after its last
    /// answer left that behind, up to megabytes per peer id.
    departed: Mutex<HashSet<Peer>>,
}

/// Departed peers remembered (see [`SyncState::departed`]); past it the memory starts again.
const DEPARTED_KEPT: usize = 4096;

/// Requests each peer may make per minute (reconciliation, attachments): a window per peer.
#[derive(Debug, Default)]
pub(crate) struct RequestBudget {
    windows: Mutex<HashMap<Peer, (Instant, u32)>>,
}

impl RequestBudget {
    /// Counts a request of `peer`; `false` once it has made `per_minute` this minute.
    pub(crate) fn spend(&self, peer: Peer, per_minute: u32) -> bool {
        let Ok(mut b) = self.windows.lock() else {
            return false;
        };
        let now = Instant::now();
        let e = b.entry(peer).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= per_minute
    }

    /// Called when a peer disconnects. Its window stays until its minute is over: reconnecting (one
    /// certificate round trip for an admitted peer) must not refill its budget. Windows whose
    /// minute is over are dropped here, so the map holds only the peers of the last minute.
    pub(crate) fn expire(&self) {
        if let Ok(mut b) = self.windows.lock() {
            let now = Instant::now();
            b.retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(60));
        }
    }
}

impl SyncState {
    pub(crate) fn new(cfg: &crate::config::SyncConfig) -> SyncState {
        SyncState {
            refusals_left: cfg.refuse_first_requests.into(),
            ..SyncState::default()
        }
    }

    /// Whether a test asked this node to refuse this request (see `refusals_left`).
    fn refuse_for_test(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.refusals_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Whether `peer` disconnected since it was last admitted.
    fn departed(&self, peer: &Peer) -> bool {
        self.departed.lock().is_ok_and(|d| d.contains(peer))
    }

    /// Called when a peer is admitted: what its sessions find is kept again.
    pub(crate) fn arrived(&self, peer: &Peer) {
        if let Ok(mut d) = self.departed.lock() {
            d.remove(peer);
        }
    }

    /// Marks (or clears) `peer` as owed a session once it shows it has admitted us.
    fn set_unfinished(&self, peer: Peer, unfinished: bool) {
        if unfinished && self.departed(&peer) {
            return;
        }
        if let Ok(mut u) = self.unfinished.lock() {
            if unfinished {
                u.insert(peer);
            } else {
                u.remove(&peer);
            }
        }
    }

    /// Whether `peer` was owed a session (no longer, once asked). Not while a session with it
    /// runs: that one is still retrying, and now that the peer asks us its next attempt is
    /// served (another session after it would only repeat it).
    fn take_unfinished(&self, peer: &Peer) -> bool {
        if self
            .running
            .lock()
            .map(|r| r.contains(peer))
            .unwrap_or(true)
        {
            return false;
        }
        self.unfinished
            .lock()
            .map(|mut u| u.remove(peer))
            .unwrap_or(false)
    }

    pub(crate) fn snapshot(&self) -> Vec<(String, PeerSync)> {
        let mut v: Vec<_> = self
            .stats
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Counts a request against the peer's budget; `false` once it is spent for this minute.
    fn spend(&self, peer: Peer, per_minute: u32) -> bool {
        self.budget.spend(peer, per_minute)
    }

    /// Publishes the figures of a running session.
    fn progress(&self, peer: Peer, st: &PeerSync) {
        if let Ok(mut m) = self.stats.lock() {
            m.entry(peer.to_string()).or_default().running = Some(SyncProgress {
                rounds: st.rounds,
                bytes_out: st.bytes_out,
                bytes_in: st.bytes_in,
                missing: st.missing,
                fetched: st.fetched,
            });
        }
    }

    /// Records the end of a session: its figures become the last session's. At most
    /// [`SYNC_STATS_KEPT`] peers are remembered: the one whose last session ended longest ago
    /// (none running) makes room, so peer ids that come and go do not grow the table.
    fn finish(&self, peer: Peer, mut st: PeerSync) -> PeerSync {
        st.running = None;
        if let Ok(mut m) = self.stats.lock() {
            let e = m.entry(peer.to_string()).or_default();
            st.sessions = e.sessions + 1;
            st.fetched_total = e.fetched_total + st.fetched;
            *e = st.clone();
            if m.len() > SYNC_STATS_KEPT {
                let oldest = m
                    .iter()
                    .filter(|(_, v)| v.running.is_none())
                    .min_by_key(|(_, v)| v.last)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    m.remove(&k);
                }
            }
        }
        st
    }

    /// Claims the ids no other session is fetching; they are released when the claim drops.
    fn claim(self: &Arc<Self>, ids: &[ObjectId]) -> Claim {
        let mut mine = Vec::new();
        if let Ok(mut f) = self.fetching.lock() {
            for id in ids {
                if f.insert(*id) {
                    mine.push(*id);
                }
            }
        }
        Claim {
            state: self.clone(),
            ids: mine,
        }
    }

    pub(crate) fn forget(&self, peer: &Peer) {
        if let Ok(mut d) = self.departed.lock() {
            if d.len() >= DEPARTED_KEPT {
                d.clear();
            }
            d.insert(*peer);
        }
        self.budget.expire();
        self.set_unfinished(*peer, false);
        if let Ok(mut r) = self.refused.lock() {
            r.remove(peer);
        }
    }

    /// What the last completed session with `peer` listed that this node refuses or keeps
    /// waiting (none while it is not connected).
    pub(crate) fn refused_by(&self, peer: &Peer) -> Option<Arc<Listed>> {
        self.refused.lock().ok()?.get(peer).cloned()
    }

    fn set_refused(&self, peer: Peer, items: Vec<(Timestamp, ObjectId)>) {
        if !items.is_empty() && self.departed(&peer) {
            return;
        }
        let generation = self
            .listed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut r) = self.refused.lock() {
            if items.is_empty() {
                r.remove(&peer);
            } else {
                r.insert(peer, Arc::new(Listed { generation, items }));
            }
        }
    }
}

/// Ids one session is fetching (see [`SyncState::claim`]).
struct Claim {
    state: Arc<SyncState>,
    ids: Vec<ObjectId>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut f) = self.state.fetching.lock() {
            for id in &self.ids {
                f.remove(id);
            }
        }
    }
}

/// The least time between two snapshots taken to answer peers' reconciliation requests.
/// Taking one after a store change copies every id on the store thread, and every peer's
/// requests (one per round, and a member may certify many node ids) would otherwise each take
/// one while objects arrive. A request never gets a view older than itself: it waits for the
/// next snapshot instead, at most this long.
const SERVED_SNAPSHOT_GAP: Duration = Duration::from_millis(200);

impl NodeHandle {
    /// The snapshot a peer's reconciliation request is answered from: one that holds
    /// everything stored before the request arrived, taken at most once per
    /// [`SERVED_SNAPSHOT_GAP`] and shared by the requests that arrived before it.
    async fn served_snapshot(&self) -> Result<Arc<accord_sync::Snapshot>, NodeError> {
        let arrived = Instant::now();
        let state = self.sync_state();
        let _turn = state.serving.lock().await;
        let cached = state.served.lock().ok().and_then(|s| s.clone());
        if let Some((asked, seq, snap)) = cached {
            if asked >= arrived || seq == self.seq() {
                return Ok(snap);
            }
            tokio::time::sleep_until((asked + SERVED_SNAPSHOT_GAP).into()).await;
        }
        let (asked, seq) = (Instant::now(), self.seq());
        let snap = self.sync_snapshot().await?;
        if let Ok(mut s) = state.served.lock() {
            *s = Some((asked, seq, snap.clone()));
        }
        Ok(snap)
    }

    pub(crate) async fn sync_snapshot(&self) -> Result<Arc<accord_sync::Snapshot>, NodeError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.store_tx()
            .send(Job::Snapshot(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Per-peer reconciliation statistics, by peer id.
    pub fn sync_stats(&self) -> Vec<(String, PeerSync)> {
        self.sync_state().snapshot()
    }

    /// Answers one sync request from an admitted peer. A peer our last session with could not
    /// finish (it had not admitted us yet) has admitted us now: once it is answered, our session
    /// with it runs again (in this task, which the event loop tracks).
    pub(crate) async fn serve_sync(&self, peer: Peer, request_id: u64, data: Vec<u8>) {
        let owed = self.sync_state().take_unfinished(&peer);
        let answer = if self.sync_state().refuse_for_test() {
            Response::Refused("not ready (test)".into())
        } else if !self
            .sync_state()
            .spend(peer, self.sync_config().serve_requests_per_minute)
        {
            debug!(%peer, "sync request over the per-peer budget: refused");
            Response::Refused("rate limited: too many sync requests this minute".into())
        } else {
            match Request::decode(&data) {
                Err(e) => Response::Refused(e.to_string()),
                Ok(Request::Reconcile(msg)) => match self.served_snapshot().await {
                    Ok(snap) => {
                        match tokio::task::spawn_blocking(move || respond(snap, &msg)).await {
                            Ok(Ok(r)) => Response::Reconcile(r),
                            Ok(Err(e)) => Response::Refused(e.to_string()),
                            Err(e) => Response::Refused(e.to_string()),
                        }
                    }
                    Err(e) => Response::Refused(e.to_string()),
                },
                Ok(Request::Fetch(ids)) => {
                    // Read off the store thread: objects never change once written.
                    let node = self.clone();
                    let objects = match self.object_reader() {
                        Ok(reader) => tokio::task::spawn_blocking(move || {
                            let mut out = Vec::new();
                            let mut size = 0;
                            // Each id once: a request naming one object a thousand times
                            // (32 KiB) must not be answered with it a thousand times (8 MiB).
                            let mut once = HashSet::new();
                            for id in ids.into_iter().filter(|id| once.insert(*id)) {
                                if node.withholds(&id, Some(&peer)) {
                                    continue;
                                }
                                if let Ok(Some(b)) = reader.try_get(&id) {
                                    // An object larger than the budget (a charter may allow
                                    // objects above it) goes alone, so that it is ever sent.
                                    if size + b.len() > MAX_FETCH_RESPONSE_BYTES && !out.is_empty()
                                    {
                                        break;
                                    }
                                    size += b.len();
                                    out.push(b);
                                }
                            }
                            out
                        })
                        .await
                        .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match objects {
                        Ok(o) => Response::Objects(o),
                        Err(e) => Response::Refused(e),
                    }
                }
            }
        };
        let answer = answer.encode();
        let m = self.metrics();
        for (direction, bytes) in [("in", data.len()), ("out", answer.len())] {
            m.sync_served_bytes
                .get_or_create(&vec![("direction".to_string(), direction.to_string())])
                .inc_by(bytes as u64);
        }
        let _ = self.network().respond(request_id, answer).await;
        if owed {
            debug!(%peer, "a peer our session could not finish asks us now: reconciling with it again");
            let _ = self.sync_with(peer).await;
        }
    }

    /// Reconciles with `peer` and fetches what we miss. At most one session per peer at once:
    /// asked while one runs, it returns at once and that session is followed by one more (so
    /// that whatever prompted the request is not left to the next periodic session).
    pub async fn sync_with(&self, peer: Peer) -> Result<PeerSync, NodeError> {
        // Nothing fetched could be stored: the session waits for disk space (the next one
        // after it fetches what was missed meanwhile).
        self.disk_check()?;
        {
            let Ok(mut running) = self.sync_state().running.lock() else {
                return Err(NodeError::Stopped);
            };
            if !running.insert(peer) {
                if let Ok(mut again) = self.sync_state().again.lock() {
                    again.insert(peer);
                }
                return Ok(PeerSync::default());
            }
        }
        // The peer is taken off the running sessions however this ends: a session that panics
        // or is cancelled must not leave every later session with it answered at once, unrun.
        let _running = RunningSession {
            state: self.sync_state(),
            peer,
        };
        loop {
            let stats = self.one_session(peer).await;
            let rerun = self
                .sync_state()
                .again
                .lock()
                .map(|mut a| a.remove(&peer))
                .unwrap_or(false);
            if !rerun {
                return stats;
            }
        }
    }

    /// One session with `peer` (with retries of a first request the peer was not ready for).
    async fn one_session(&self, peer: Peer) -> Result<PeerSync, NodeError> {
        // Both sides start a session when they admit each other; the first requests can reach
        // the peer before it has admitted us. Such failures are retried a few times.
        let mut result = self.session(peer).await;
        for attempt in 1..=SESSION_RETRIES {
            match &result {
                Err((_, SyncErrorKind::Other(_))) => {
                    // Owed from the first failure on: the peer's own session may reach us
                    // while these retries wait.
                    self.sync_state().set_unfinished(peer, true);
                    tokio::time::sleep(RETRY_DELAY * attempt).await;
                    result = self.session(peer).await;
                }
                _ => break,
            }
        }
        self.sync_state()
            .set_unfinished(peer, matches!(&result, Err((_, SyncErrorKind::Other(_)))));
        if result.is_err() {
            // Only a session that ended says what the peer gave.
            self.sync_state().set_refused(peer, Vec::new());
        }
        let member = self.peers().await.ok().and_then(|ps| {
            ps.into_iter()
                .find(|p| p.peer_id == peer.to_string())
                .and_then(|p| p.member)
        });
        let mut stats = match &result {
            Ok(s) => s.clone(),
            Err((s, e)) => PeerSync {
                error: Some(e.to_string()),
                ..s.clone()
            },
        };
        stats.member = member;
        stats.last = Some(now());
        let m = self.metrics();
        m.sync_sessions
            .get_or_create(&vec![(
                "result".to_string(),
                if result.is_ok() { "ok" } else { "error" }.to_string(),
            )])
            .inc();
        m.sync_rounds.inc_by(u64::from(stats.rounds));
        m.sync_bytes
            .get_or_create(&vec![("direction".to_string(), "out".to_string())])
            .inc_by(stats.bytes_out);
        m.sync_bytes
            .get_or_create(&vec![("direction".to_string(), "in".to_string())])
            .inc_by(stats.bytes_in);
        m.sync_fetched.inc_by(stats.fetched);
        let stats = self.sync_state().finish(peer, stats);
        match result {
            Ok(_) => {
                if stats.missing > 0 {
                    info!(%peer, rounds = stats.rounds, missing = stats.missing, fetched = stats.fetched, "reconciled");
                } else {
                    debug!(%peer, rounds = stats.rounds, "reconciled: nothing missing");
                }
            }
            Err((_, SyncErrorKind::Peer(e))) => {
                warn!(%peer, error = %e, "peer misbehaved in reconciliation: cutting it off");
                let _ = self
                    .network()
                    .disconnect(peer, format!("reconciliation: {e}"))
                    .await;
            }
            Err((_, SyncErrorKind::Other(e))) => {
                debug!(%peer, error = %e, "reconciliation did not complete")
            }
        }
        Ok(stats)
    }

    async fn session(&self, peer: Peer) -> Result<PeerSync, (PeerSync, SyncErrorKind)> {
        let mut st = PeerSync::default();
        self.sync_state().progress(peer, &st);
        let other = |st: &PeerSync, e: String| (st.clone(), SyncErrorKind::Other(e));
        let snap = self
            .sync_snapshot()
            .await
            .map_err(|e| other(&st, e.to_string()))?;
        // The initiator's fingerprints are computed over ranges of the whole snapshot (a
        // million ids at the first round): off the async workers, as the responder's are.
        let (mut session, mut msg) = tokio::task::spawn_blocking(move || Initiator::start(snap))
            .await
            .map_err(|e| other(&st, e.to_string()))?
            .map_err(|e| other(&st, e.to_string()))?;
        let scan = Limits::default().scan();
        let (_have, need) = loop {
            let raw = self
                .network()
                .sync_request(peer, Request::Reconcile(msg).encode())
                .await
                .map_err(|e| other(&st, e.to_string()))?;
            let s = session.stats();
            st.rounds = s.rounds;
            st.bytes_out = s.bytes_out;
            st.bytes_in = s.bytes_in + raw.len() as u64;
            let answer = match Response::decode(&raw, scan) {
                Ok(Response::Reconcile(m)) => m,
                Ok(Response::Refused(r)) => return Err(other(&st, format!("refused: {r}"))),
                Ok(Response::Objects(_)) => {
                    return Err((
                        st.clone(),
                        SyncErrorKind::Peer(SyncError::Malformed(
                            "objects in answer to a reconcile".into(),
                        )),
                    ));
                }
                Err(e) => return Err((st.clone(), SyncErrorKind::Peer(e))),
            };
            let (back, outcome) = tokio::task::spawn_blocking(move || {
                let outcome = session.on_message(&answer);
                (session, outcome)
            })
            .await
            .map_err(|e| other(&st, e.to_string()))?;
            session = back;
            match outcome {
                Ok(Outcome::Send(next)) => msg = next,
                Ok(Outcome::Done { have, need }) => break (have, need),
                Err(e) => return Err((st.clone(), SyncErrorKind::Peer(e))),
            }
        };
        let s = session.stats();
        st.rounds = s.rounds;
        // What this node received already and refused (or keeps waiting) is not fetched again:
        // judged by the same view, it would be refused again, at every session, from every
        // peer that holds it (a node that started after a member's removal refuses that
        // member's objects, which its peers keep).
        let (refused, need) = self
            .split_received(peer, need)
            .await
            .map_err(|e| other(&st, e.to_string()))?;
        st.missing = need.len() as u64;
        self.sync_state().progress(peer, &st);
        let mut not_taken = Vec::new();
        let batch = self.sync_config().fetch_batch;
        let max_object = self.trust().limits().max_bytes();
        // Fetching and storing overlap: the objects of one response are ingested by a task
        // while the next response is on its way (at most one such task at a time).
        let mut storing: Option<tokio::task::JoinHandle<Result<IngestResult, NodeError>>> = None;
        let mut chunks = FetchChunks::new(&need, batch);
        while let Some(chunk) = chunks.next_chunk() {
            // Not what another session is fetching right now, nor what arrived meanwhile (by
            // gossip or from another session): each missing object is fetched once.
            let claim = Arc::new(self.sync_state().claim(chunk));
            let ids = claim.ids.clone();
            // Read beside the store thread, not through its queue: the queue holds the
            // previous response's ingest, and waiting for it here would stop the overlap.
            let objects = self
                .object_reader()
                .map_err(|e| other(&st, e.to_string()))?;
            let missing = tokio::task::spawn_blocking(move || {
                ids.into_iter()
                    .filter(|id| !objects.contains(id).unwrap_or(false))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| other(&st, e.to_string()))?;
            if missing.is_empty() {
                continue;
            }
            // Asked for and not yet received: an object is taken only if it is one of them,
            // once (a set: a response of a thousand objects costs a thousand lookups).
            let mut outstanding: HashSet<ObjectId> = missing.iter().copied().collect();
            let mut asked: Vec<ObjectId> = missing;
            // A response stops when it is full; ask again for the rest.
            while !asked.is_empty() {
                let raw = self
                    .network()
                    .sync_request(peer, Request::Fetch(asked.clone()).encode())
                    .await
                    .map_err(|e| other(&st, e.to_string()))?;
                st.bytes_out += 1 + 32 * asked.len() as u64;
                st.bytes_in += raw.len() as u64;
                let objects = match Response::decode(&raw, scan) {
                    Ok(Response::Objects(o)) => o,
                    Ok(Response::Refused(r)) => return Err(other(&st, format!("refused: {r}"))),
                    Ok(Response::Reconcile(_)) => {
                        return Err((
                            st.clone(),
                            SyncErrorKind::Peer(SyncError::Malformed(
                                "reconcile in answer to a fetch".into(),
                            )),
                        ));
                    }
                    Err(e) => return Err((st.clone(), SyncErrorKind::Peer(e))),
                };
                // Only what was asked for is taken (and it still goes through validation); an
                // answer holding anything else is refused whole, and the peer cut off. Each
                // object is decoded for its id: off the async workers.
                let (back, got) = tokio::task::spawn_blocking(move || {
                    let mut got = Vec::new();
                    for o in objects {
                        let id = SignedObject::decode_draft(&o, usize::MAX, scan)
                            .ok()
                            .map(|s| s.id());
                        match id {
                            Some(id) if outstanding.remove(&id) => got.push(o),
                            _ => return (outstanding, None),
                        }
                    }
                    (outstanding, Some(got))
                })
                .await
                .map_err(|e| other(&st, e.to_string()))?;
                outstanding = back;
                let Some(got) = got else {
                    return Err((
                        st.clone(),
                        SyncErrorKind::Peer(SyncError::Malformed(
                            "sent an object that was not asked for".into(),
                        )),
                    ));
                };
                if got.is_empty() {
                    // The peer no longer has them (or will not say): stop asking.
                    break;
                }
                asked.retain(|a| outstanding.contains(a));
                // Asked again only after a full answer (one more object could have crossed
                // its size bound): a peer that answers with a few objects at a time, each
                // just before the timeout, would otherwise hold this chunk — and other
                // sessions away from its ids — for hours.
                let full = raw.len().saturating_add(max_object) > MAX_FETCH_RESPONSE_BYTES;
                if !full {
                    asked.clear();
                }
                if let Some(previous) = storing.take() {
                    let racing = self
                        .stored(peer, previous, &mut st, &mut not_taken)
                        .await
                        .map_err(|e| other(&st, e))?;
                    if racing {
                        // Gossip is bringing what this session fetches: let it, then fetch
                        // what is still missing, small again (each chunk is checked against
                        // what is held before it is asked for).
                        debug!(%peer, "fetches racing gossip: waiting for gossip to be quiet");
                        if !self.gossip_quiet().await {
                            return Err(other(&st, "the node is stopping".into()));
                        }
                        chunks.restart_small();
                    }
                }
                let node = self.clone();
                let held = claim.clone();
                storing = Some(tokio::spawn(async move {
                    let r = node.ingest(got, Source::Sync(peer)).await;
                    drop(held);
                    r
                }));
            }
        }
        if let Some(last) = storing.take() {
            self.stored(peer, last, &mut st, &mut not_taken)
                .await
                .map_err(|e| other(&st, e))?;
        }
        // What it listed that this node refuses or keeps waiting, as of the session's end: the
        // objects fetched now and refused or left waiting (the peer gave them), and those not
        // fetched for being refused before — unless a charter version taken meanwhile made
        // this node forget them (then they are left out, the peer reads ahead, and the next
        // session fetches them).
        let mut listed: Vec<ObjectId> = refused.into_iter().map(|(_, id)| id).collect();
        listed.extend(not_taken);
        let (refused, _) = self
            .split_received(peer, listed)
            .await
            .map_err(|e| other(&st, e.to_string()))?;
        st.refused = refused.len() as u64;
        self.sync_state().set_refused(peer, refused);
        Ok(st)
    }

    /// Splits ids `peer` listed into those this node received and refuses or keeps waiting
    /// (with their creation times; see `Store::received_not_held_from`: what any copy would
    /// meet, and what this peer's own copy met for a signer that once had authority) and the
    /// rest.
    async fn split_received(
        &self,
        peer: Peer,
        ids: Vec<ObjectId>,
    ) -> Result<(Vec<(Timestamp, ObjectId)>, Vec<ObjectId>), NodeError> {
        if ids.is_empty() {
            return Ok((Vec::new(), ids));
        }
        let source = crate::Source::Sync(peer).quarantine_source();
        self.read(move |s| {
            let received = s.received_not_held_from(&ids, &source);
            if received.is_empty() {
                return (received, ids);
            }
            let skip: HashSet<ObjectId> = received.iter().map(|(_, id)| *id).collect();
            let rest = ids.into_iter().filter(|id| !skip.contains(id)).collect();
            (received, rest)
        })
        .await
    }

    /// Waits for the ingest of fetched objects and counts it in the session's figures; `true`
    /// when so many of them had arrived meanwhile by gossip that the fetches are racing it
    /// ([`racing_gossip`]).
    async fn stored(
        &self,
        peer: Peer,
        task: tokio::task::JoinHandle<Result<IngestResult, NodeError>>,
        st: &mut PeerSync,
        not_taken: &mut Vec<ObjectId>,
    ) -> Result<bool, String> {
        let r = task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let duplicates = r
            .outcomes
            .iter()
            .filter(|o| matches!(o, IngestOutcome::Duplicate(_)))
            .count() as u64;
        self.metrics().sync_duplicates.inc_by(duplicates);
        // Objects every node refuses (malformed, a bad signature, another federation) are what
        // no honest peer serves: it validated them before it stored them. Such a peer is
        // penalised as a sender of invalid gossip is, up to twice per answer (two cut it off),
        // so it cannot have them fetched and checked again at every session.
        let invalid: Vec<&accord_core::Rejection> = r
            .outcomes
            .iter()
            .filter_map(|o| match o {
                IngestOutcome::Rejected(_, why) if why.is_intrinsic() => Some(why),
                _ => None,
            })
            .collect();
        if let Some(first) = invalid.first() {
            let reason = format!(
                "reconciliation: served {} invalid object(s), first: {first}",
                invalid.len()
            );
            for _ in 0..invalid.len().min(2) {
                let _ = self.network().penalize(peer, reason.clone()).await;
            }
        }
        st.fetched += r
            .outcomes
            .iter()
            .filter(|o| matches!(o, IngestOutcome::Accepted(_) | IngestOutcome::Pending(..)))
            .count() as u64;
        not_taken.extend(r.outcomes.iter().filter_map(|o| match o {
            IngestOutcome::Pending(id, _)
            | IngestOutcome::QuarantineFull(id, _)
            | IngestOutcome::Rejected(Some(id), _) => Some(*id),
            _ => None,
        }));
        self.sync_state().progress(peer, st);
        Ok(racing_gossip(duplicates, r.outcomes.len() as u64))
    }
}

/// Whether `duplicates` of `fetched` objects (held by the time they were stored) show a
/// session racing gossip: more than one in [`RACING_SHARE`]. A session starts once gossip is
/// quiet, but a peer's gossip can resume while it fetches (a neighbour whose queue for this node
/// had overflowed sends again); what it then fetches arrives twice. One in sixteen: a stray
/// duplicate in a first chunk of 64 is not a race.
fn racing_gossip(duplicates: u64, fetched: u64) -> bool {
    duplicates.saturating_mul(RACING_SHARE) > fetched
}

/// See [`racing_gossip`].
const RACING_SHARE: u64 = 16;

/// The first fetch of a session asks for this many objects; each next one for twice as many,
/// up to the configured batch.
const FIRST_FETCH: usize = 64;

/// `need` in the chunks a session fetches: small first, so that storing starts while the
/// larger requests that follow are served (a first request of a full batch left the store
/// idle for its whole round trip), then doubling up to `batch`; small again after
/// [`FetchChunks::restart_small`].
struct FetchChunks<'a> {
    rest: &'a [ObjectId],
    size: usize,
    batch: usize,
}

impl<'a> FetchChunks<'a> {
    fn new(need: &'a [ObjectId], batch: usize) -> FetchChunks<'a> {
        let batch = batch.max(1);
        FetchChunks {
            rest: need,
            size: FIRST_FETCH.min(batch),
            batch,
        }
    }

    fn next_chunk(&mut self) -> Option<&'a [ObjectId]> {
        if self.rest.is_empty() {
            return None;
        }
        let (chunk, tail) = self.rest.split_at(self.size.min(self.rest.len()));
        self.rest = tail;
        self.size = (self.size * 2).min(self.batch);
        Some(chunk)
    }

    /// The next chunk is a first one again.
    fn restart_small(&mut self) {
        self.size = FIRST_FETCH.min(self.batch);
    }
}

/// Whether a failed session is the peer's fault (then it is cut off) or not.
#[derive(Debug)]
enum SyncErrorKind {
    Peer(SyncError),
    Other(String),
}

impl std::fmt::Display for SyncErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncErrorKind::Peer(e) => write!(f, "{e}"),
            SyncErrorKind::Other(e) => f.write_str(e),
        }
    }
}

#[cfg(test)]
mod tests {
    /// A session that ends after its peer left keeps nothing about it (it left that behind
    /// for good, up to megabytes per peer id); once the peer is admitted again, it does.
    #[test]
    fn a_session_ending_after_its_peer_left_keeps_nothing_about_it() {
        let s = SyncState::default();
        let p = Peer::random();
        let items = vec![(Timestamp(1), ObjectId([1; 32]))];
        s.set_refused(p, items.clone());
        s.set_unfinished(p, true);
        assert!(s.refused_by(&p).is_some());
        s.forget(&p);
        assert!(s.refused_by(&p).is_none());
        // The session ends now.
        s.set_refused(p, items.clone());
        s.set_unfinished(p, true);
        assert!(s.refused_by(&p).is_none());
        assert!(!s.unfinished.lock().unwrap().contains(&p));
        s.arrived(&p);
        s.set_refused(p, items);
        assert!(s.refused_by(&p).is_some());
    }

    #[test]
    fn a_peer_over_its_request_budget_is_refused_and_the_others_are_not() {
        let b = RequestBudget::default();
        let (p, q) = (Peer::random(), Peer::random());
        assert!(b.spend(p, 2) && b.spend(p, 2));
        assert!(!b.spend(p, 2), "the third request of the minute");
        assert!(b.spend(q, 2), "another peer has its own budget");
        b.expire();
        assert!(
            !b.spend(p, 2),
            "a peer that reconnects keeps the count of its minute"
        );
        // A window whose minute is over goes at the next disconnection.
        b.windows
            .lock()
            .unwrap()
            .insert(q, (Instant::now() - Duration::from_secs(61), 2));
        b.expire();
        assert!(!b.windows.lock().unwrap().contains_key(&q));
        assert!(b.windows.lock().unwrap().contains_key(&p));
    }

    use super::*;

    /// Peer ids are free to make: the figures of at most `SYNC_STATS_KEPT` peers are kept, the
    /// one whose last session ended longest ago making room.
    #[test]
    fn the_reconciliation_figures_of_peers_are_bounded() {
        let s = SyncState::new(&crate::config::SyncConfig::default());
        let first = Peer::random();
        s.finish(
            first,
            PeerSync {
                last: Some(Timestamp(1)),
                ..PeerSync::default()
            },
        );
        for i in 0..SYNC_STATS_KEPT as u64 + 10 {
            s.finish(
                Peer::random(),
                PeerSync {
                    last: Some(Timestamp(100 + i)),
                    ..PeerSync::default()
                },
            );
        }
        let kept = s.snapshot();
        assert_eq!(kept.len(), SYNC_STATS_KEPT);
        assert!(!kept.iter().any(|(p, _)| *p == first.to_string()));
    }

    /// Every chunk of `need` at `batch`, restarting small after the chunk numbers in `restart`.
    fn chunk_sizes(need: &[ObjectId], batch: usize, restart: &[usize]) -> Vec<usize> {
        let mut chunks = FetchChunks::new(need, batch);
        let mut sizes = Vec::new();
        while let Some(c) = chunks.next_chunk() {
            if restart.contains(&sizes.len()) {
                chunks.restart_small();
            }
            sizes.push(c.len());
        }
        sizes
    }

    #[test]
    fn fetches_start_small_and_double_up_to_the_batch() {
        let need: Vec<ObjectId> = (0..3000u32)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_be_bytes());
                ObjectId(b)
            })
            .collect();
        assert_eq!(
            chunk_sizes(&need, 1024, &[]),
            [64, 128, 256, 512, 1024, 1016]
        );
        let mut chunks = FetchChunks::new(&need, 1024);
        let mut again: Vec<ObjectId> = Vec::new();
        while let Some(c) = chunks.next_chunk() {
            again.extend_from_slice(c);
        }
        assert_eq!(again, need, "every id once, in order");
        assert_eq!(
            chunk_sizes(&need[..100], 16, &[]),
            [16; 6].iter().copied().chain([4]).collect::<Vec<_>>()
        );
        assert!(chunk_sizes(&[], 1024, &[]).is_empty());
        // Racing gossip after the third chunk: small again, then doubling; every id still once.
        assert_eq!(
            chunk_sizes(&need, 1024, &[2]),
            [64, 128, 256, 64, 128, 256, 512, 1024, 568]
        );
    }

    /// A session races gossip when more than one in sixteen of the objects it fetched were
    /// held by the time they were stored.
    #[test]
    fn racing_gossip_is_more_than_a_stray_duplicate() {
        assert!(!racing_gossip(0, 1024));
        assert!(!racing_gossip(1, 64), "one in a first chunk of 64");
        assert!(!racing_gossip(4, 64));
        assert!(racing_gossip(5, 64));
        assert!(racing_gossip(100, 1024));
        assert!(!racing_gossip(0, 0));
        assert!(racing_gossip(u64::MAX, 1));
    }

    /// Two sessions asking for overlapping ids: the second gets only what the first is not
    /// fetching; once the first is done, the ids can be claimed again.
    #[test]
    fn concurrent_sessions_never_claim_the_same_id() {
        let state = Arc::new(SyncState::default());
        let id = |n: u8| ObjectId::of_body(&[n]);
        let first = state.claim(&[id(1), id(2), id(3)]);
        assert_eq!(first.ids, vec![id(1), id(2), id(3)]);
        let second = state.claim(&[id(2), id(3), id(4)]);
        assert_eq!(second.ids, vec![id(4)]);
        drop(first);
        let third = state.claim(&[id(1), id(2), id(4)]);
        assert_eq!(
            third.ids,
            vec![id(1), id(2)],
            "released by the first, still held by the second"
        );
    }
}
