//! Federation health without a centre: this node's signed heartbeats, the latest heartbeat
//! of every other certified node (with a time to live), and what this node concludes from
//! them: who is up, who lags behind the set it holds, and who is divergent, with signed
//! evidence (docs/PROTOCOL.md §11, docs/OPERATIONS.md "Federation health").
//!
//! Divergence is judged by each node on its own, from what it can check itself: a node whose
//! signed checkpoint claims objects this node does not hold, *after* this node has completed a
//! reconciliation with it that started after the claim, withholds them (it says it holds them
//! but does not give them). A node whose checkpoint holds fewer objects is only *behind*: it
//! may not have reconciled yet, or be the victim of a withholding peer; it is shown with its
//! lag, never flagged. Two different heartbeats of one node with the same `issued` time are
//! an equivocation: it showed different statements to different peers.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use accord_core::health::{
    Checkpoint, Evidence, HealthError, Heartbeat, Reconciled, SignedHeartbeat,
    check_heartbeat_signed, check_heartbeat_time, sign_evidence, sign_heartbeat,
};
use accord_core::{ObjectId, PublicKey, Timestamp};
use accord_net::{Peer, Validation};
use serde::Serialize;
use serde_bytes::ByteBuf;
use tracing::{debug, info, warn};

use crate::node::NodeHandle;
use crate::{NodeError, now};

/// The protocol version this node speaks (docs/PROTOCOL.md §10).
pub const PROTOCOL_VERSION: &str = "1.3";
/// Evidence bundles kept (the oldest is dropped first).
pub const MAX_EVIDENCE: usize = 64;
/// Evidence bundles kept about one node: a new one about it drops its own oldest, so that a
/// node that keeps giving cause (equivocating at every period, say) cannot push the evidence
/// about others out of [`MAX_EVIDENCE`].
pub const MAX_EVIDENCE_PER_SUBJECT: usize = 4;
/// Nodes whose latest heartbeat is kept: every certified node of a large federation.
pub const MAX_NODES: usize = 4096;

/// A node is shown down once it has been silent this many of its own periods.
const DOWN_AFTER_PERIODS: f64 = 1.5;
/// Own checkpoints kept, by watermark (nodes with other periods or delays compare at others).
const OWN_CHECKPOINTS: usize = 4;
/// The least time between two heartbeats of one node that are both heard (see
/// `judge_heartbeat`).
const MIN_HEARTBEAT_GAP_MS: u64 = 1_000;

/// The time this node dates its next heartbeat, at `now` by its clock, its last one dated
/// `last`. Never before the last: after its clock was stepped back (a clock that ran ahead,
/// corrected), its peers take only a later one, and would show it down until the clock had
/// caught up. Until then each is half a period after the last (the least gap at which a peer
/// with the same period judges it and passes it on to the others), so that the lead shrinks
/// by half a period each period; with a period too short for that (under two seconds), a
/// millisecond after it (heard as alive by the peers it reaches directly, not passed on).
/// Never later than a second within the charter's skew ahead of the clock (a peer would
/// refuse it as from the future): a last one as far ahead as that or further is left behind,
/// and the heartbeat dated by the clock (peers that took that last one drop this one, and show
/// the node down until the clock has caught up with it).
fn next_issued(
    now: Timestamp,
    last: Option<Timestamp>,
    period_secs: u64,
    skew_ms: u64,
) -> Timestamp {
    let cap = now
        .0
        .saturating_add(skew_ms.saturating_sub(MIN_HEARTBEAT_GAP_MS));
    let Some(last) = last.filter(|l| *l >= now && l.0 < cap) else {
        return now;
    };
    let half = period_secs.saturating_mul(500);
    let step = if half >= MIN_HEARTBEAT_GAP_MS && half < period_secs.saturating_mul(1000) {
        half
    } else {
        1
    };
    Timestamp(last.0.saturating_add(step).min(cap))
}

/// A peer is silent once not heard for this many of its periods (and `silent_peer_secs`).
const SILENT_PERIODS: u64 = 3;
/// The longest wait before a silent peer is reset again, in milliseconds (an hour).
const RESET_WAIT_MAX_MS: u64 = 3_600_000;

/// Whether a node's checkpoint matches this node's at the same watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Agreement {
    /// Not compared yet.
    Unknown,
    Agrees,
    /// It holds fewer objects below the watermark than this node.
    Behind,
    /// It claims objects this node does not hold (a reconciliation with it is under way or
    /// has been asked for).
    Ahead,
    /// It holds objects this node refused or keeps waiting (the last reconciliation with it
    /// listed them, so it gives them when asked); apart from them the two agree. Honest nodes
    /// judge alike only what they judge under the same view: one that started after a
    /// member's removal refuses that member's objects, which the others keep.
    HoldsRefused,
}

/// What a checkpoint with a node's refused objects was computed for: the watermark, the
/// store's sequence, the list's generation and the count the node claimed.
type RefusedTag = (Timestamp, u64, u64, u64);

#[derive(Debug)]
struct Entry {
    latest: SignedHeartbeat,
    /// Local time it was received (or sent, for this node's own).
    received: Timestamp,
    agreement: Agreement,
    /// This node's checkpoint at the latest heartbeat's watermark, when compared.
    observed: Option<Checkpoint>,
    /// The first heartbeat of the current disagreement (claiming more than this node holds).
    first_ahead: Option<SignedHeartbeat>,
    /// When a reconciliation with it, started during the current disagreement, completed.
    reconciled_at: Option<Timestamp>,
    /// Objects it holds below its watermark that this node refused or keeps waiting (with
    /// [`Agreement::HoldsRefused`]).
    held_refused: u64,
    /// The last `checkpoint_with_refused` for it: (watermark, store sequence, list, claimed
    /// count), result.
    with_refused: Option<(RefusedTag, Option<(Checkpoint, u64)>)>,
    divergent: bool,
    equivocated: bool,
    /// The `issued` time of its last equivocation: further heartbeats signed for that time
    /// prove nothing more and are neither kept as evidence nor forwarded.
    equivocated_at: Option<Timestamp>,
}

/// One evidence bundle, signed by this node.
#[derive(Debug, Clone)]
pub struct EvidenceItem {
    pub number: u64,
    pub evidence: Evidence,
    /// The signed bundle (`[1, body, signature]`), as exported.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct Book {
    nodes: BTreeMap<PublicKey, Entry>,
    evidence: VecDeque<EvidenceItem>,
    next_evidence: u64,
    /// This node's checkpoints at the last few watermarks asked for, with the store sequence
    /// each was computed at, most recent last.
    own: Vec<(Timestamp, u64, Checkpoint)>,
    /// Heartbeats refused, by reason code.
    refused: BTreeMap<&'static str, u64>,
    /// Silent peers whose connections were reset (by peer id): when the next reset may come,
    /// and the wait after that one.
    resets: BTreeMap<String, (Timestamp, u64)>,
    /// The date of this node's last heartbeat, taken when it was chosen: two heartbeats being
    /// made at once (a checkpoint that took longer than a period) never share one, which every
    /// peer would read as equivocation.
    own_issued: Option<Timestamp>,
}

impl Book {
    /// Makes room in a full book for a node of `member`: the member with the most nodes in the
    /// book gives up its longest silent one, unless that member is `member` itself (then the
    /// newcomer waits). So one member certifying thousands of keys fills at most its share,
    /// and another member's new node is still heard. `false` when no room was made.
    fn make_room(&mut self, member: &str, own: &PublicKey) -> bool {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (k, e) in &self.nodes {
            if k != own {
                *counts
                    .entry(e.latest.heartbeat().member.as_str())
                    .or_default() += 1;
            }
        }
        let mine = counts.get(member).copied().unwrap_or(0);
        let Some((top, n)) = counts
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(m, n)| (m.to_string(), *n))
        else {
            return false;
        };
        if n <= mine.saturating_add(1) {
            return false;
        }
        let stalest = self
            .nodes
            .iter()
            .filter(|(k, e)| *k != own && e.latest.heartbeat().member == top)
            .min_by_key(|(_, e)| e.received)
            .map(|(k, _)| *k);
        match stalest {
            Some(k) => self.nodes.remove(&k).is_some(),
            None => false,
        }
    }
}

impl Entry {
    /// A node's entry at its first heartbeat, `hb`, received at `t`.
    fn heard(hb: SignedHeartbeat, t: Timestamp) -> Entry {
        Entry {
            latest: hb,
            received: t,
            agreement: Agreement::Unknown,
            observed: None,
            first_ahead: None,
            reconciled_at: None,
            held_refused: 0,
            with_refused: None,
            divergent: false,
            equivocated: false,
            equivocated_at: None,
        }
    }
}

/// Checkpoints at a new watermark computed for one member's nodes' heartbeats: at most
/// [`NEW_WATERMARKS_BURST`] at once, then one every [`NEW_WATERMARK_EVERY`] (a member's own
/// turn: one member's nodes cannot use up another's). Nodes of one period
/// and delay share their watermark (one checkpoint, cached, serves them all); a watermark that
/// is new costs a pass over every object below it. A heartbeat may declare a period of 0 and
/// then any watermark, and a member may certify thousands of node keys: without a bound, their
/// heartbeats kept the one checkpoint slot and the judging slots busy, and honest heartbeats
/// were dropped as busy. A heartbeat past the bound is heard (alive) and left uncompared until
/// its next.
#[derive(Debug)]
pub(crate) struct NewWatermarks {
    tokens: f64,
    at: std::time::Instant,
}

/// See [`NewWatermarks`].
const NEW_WATERMARKS_BURST: f64 = 8.0;
const NEW_WATERMARK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl NewWatermarks {
    fn new(now: std::time::Instant) -> NewWatermarks {
        NewWatermarks {
            tokens: NEW_WATERMARKS_BURST,
            at: now,
        }
    }

    /// Whether a checkpoint at a new watermark may be computed at `now`.
    fn take(&mut self, now: std::time::Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64()
            / NEW_WATERMARK_EVERY.as_secs_f64();
        self.tokens = (self.tokens + refill).min(NEW_WATERMARKS_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The health book of a node (see the module documentation).
#[derive(Debug)]
pub(crate) struct HealthState {
    book: Mutex<Book>,
    /// What peers' heartbeats show of this node's clock.
    clock: Mutex<crate::clock::ClockBook>,
    /// One checkpoint computed at a time: each hashes every object below its watermark, and
    /// heartbeats with new watermarks could otherwise start any number at once.
    computing: tokio::sync::Semaphore,
    /// Checkpoints at watermarks this node has not computed lately, per member of the node
    /// heard ([`NewWatermarks`]; as many as the charter has members).
    new_watermarks: Mutex<HashMap<String, NewWatermarks>>,
    /// Where evidence bundles are kept across restarts (`<data_dir>/evidence/<number>.cbor`).
    dir: Option<std::path::PathBuf>,
}

/// What one certified node looks like from here.
#[derive(Debug, Clone, Serialize)]
pub struct NodeHealth {
    pub member: String,
    pub node_key: String,
    pub peer_id: String,
    pub label: Option<String>,
    /// `self`, `up`, `down` or `never-seen`.
    pub status: &'static str,
    #[serde(serialize_with = "ts_opt")]
    pub last_seen: Option<Timestamp>,
    pub seconds_since: Option<u64>,
    pub software: Option<String>,
    pub protocol: Option<String>,
    pub charter_version: Option<u64>,
    pub charter_matches: Option<bool>,
    pub uptime_secs: Option<u64>,
    pub period_secs: Option<u64>,
    pub counts: BTreeMap<String, u64>,
    #[serde(serialize_with = "checkpoint_opt")]
    pub checkpoint: Option<Checkpoint>,
    pub agreement: Agreement,
    /// Objects it lacks below its watermark compared with this node (0 when it agrees).
    pub behind: u64,
    /// Objects it holds below its watermark that this node refused or keeps waiting (when
    /// `agreement` is `holds-refused`; else 0).
    pub held_refused: u64,
    pub divergent: bool,
    pub equivocated: bool,
    pub attachment_backlog: Option<u64>,
    pub reconciled_peers: usize,
}

/// One member and its certified nodes.
#[derive(Debug, Clone, Serialize)]
pub struct MemberHealth {
    pub code: String,
    pub name: BTreeMap<String, String>,
    pub nodes: Vec<NodeHealth>,
    /// Certified nodes never heard from beyond the first [`MAX_NEVER_SEEN_LISTED`] listed: a
    /// member may certify any number of node keys, and each would otherwise be a row of the
    /// health page and a series of every scrape.
    pub never_seen_more: u64,
}

/// Certified nodes never heard from listed per member ([`MemberHealth::never_seen_more`]
/// counts the rest); the nodes heard from are bounded by the health book.
pub const MAX_NEVER_SEEN_LISTED: usize = 16;

/// An evidence bundle, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceSummary {
    pub number: u64,
    pub kind: String,
    pub subject_member: String,
    pub subject: String,
    #[serde(serialize_with = "ts")]
    pub created: Timestamp,
    /// The signed explanation (English, part of the bundle).
    pub explanation: String,
    pub heartbeats: usize,
    /// What the subject claimed in its last heartbeat of the bundle: objects created before
    /// `watermark` (for a reader's own wording of the explanation).
    pub claimed: Option<u64>,
    #[serde(serialize_with = "ts_opt")]
    pub watermark: Option<Timestamp>,
    /// What this node held below that watermark, and when it last reconciled with the subject.
    pub held: Option<u64>,
    #[serde(serialize_with = "ts_opt")]
    pub reconciled_at: Option<Timestamp>,
}

/// `GET /v1/health/federation`.
#[derive(Debug, Clone, Serialize)]
pub struct FederationHealth {
    #[serde(serialize_with = "ts")]
    pub generated: Timestamp,
    pub federation: ObjectId,
    pub federation_name: String,
    pub charter_version: u64,
    pub software: String,
    pub protocol: &'static str,
    pub heartbeat_secs: u64,
    pub members: Vec<MemberHealth>,
    pub evidence: Vec<EvidenceSummary>,
    /// Heartbeats refused since start, by reason code.
    pub refused: BTreeMap<&'static str, u64>,
}

/// Timestamps in JSON are RFC 3339 text, as everywhere in the API.
fn ts<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

fn ts_opt<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

fn checkpoint_opt<S: serde::Serializer>(c: &Option<Checkpoint>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct View {
        watermark: String,
        count: u64,
        fingerprint: String,
    }
    c.map(|c| View {
        watermark: c.watermark.to_string(),
        count: c.count,
        fingerprint: c.fingerprint.to_string(),
    })
    .serialize(s)
}

/// The watermark of a heartbeat sent at `now`: `delay` in the past, rounded down to the
/// period, so that nodes with the same period compare at the same watermark.
pub(crate) fn watermark(now: Timestamp, period_ms: u64, delay_ms: u64) -> Timestamp {
    let t = now.0.saturating_sub(delay_ms);
    let p = period_ms.max(1);
    Timestamp(t - t % p)
}

/// `up` while a node has been silent at most 1.5 of its periods since its latest heartbeat
/// was received, `down` after: a node that stops is shown down within two periods.
pub(crate) fn liveness(received: Timestamp, period_secs: u64, now: Timestamp) -> &'static str {
    let period_ms = period_secs.max(1).saturating_mul(1000) as f64;
    let silent = now.0.saturating_sub(received.0) as f64;
    if silent > DOWN_AFTER_PERIODS * period_ms {
        "down"
    } else {
        "up"
    }
}

fn software() -> String {
    format!("accord/{}", env!("CARGO_PKG_VERSION"))
}

impl HealthState {
    /// The book with the evidence bundles kept in `dir` (created if missing); a file that is
    /// not a valid bundle is left alone and named in a warning. Blocking: call it off the
    /// async workers.
    pub(crate) fn open(dir: std::path::PathBuf) -> std::io::Result<HealthState> {
        std::fs::create_dir_all(&dir)?;
        let mut items = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(number) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".cbor"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let bytes = std::fs::read(&path)?;
            match accord_core::health::open_evidence(&bytes) {
                Ok((evidence, _)) => items.push(EvidenceItem {
                    number,
                    evidence,
                    bytes,
                }),
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "not an evidence bundle: ignored")
                }
            }
        }
        items.sort_by_key(|i| i.number);
        let mut book = Book {
            next_evidence: items.last().map_or(0, |i| i.number),
            ..Book::default()
        };
        let skip = items.len().saturating_sub(MAX_EVIDENCE);
        book.evidence = items.into_iter().skip(skip).collect();
        Ok(HealthState {
            book: Mutex::new(book),
            clock: Mutex::default(),
            computing: tokio::sync::Semaphore::new(1),
            new_watermarks: Mutex::default(),
            dir: Some(dir),
        })
    }

    /// Writes a new bundle (atomically) and removes those no longer kept.
    fn persist(&self, item: &EvidenceItem, dropped: Vec<u64>) {
        let Some(dir) = self.dir.clone() else {
            return;
        };
        let (number, bytes) = (item.number, item.bytes.clone());
        tokio::task::spawn_blocking(move || {
            let path = dir.join(format!("{number}.cbor"));
            let tmp = dir.join(format!("{number}.cbor.tmp"));
            let written = std::fs::write(&tmp, &bytes)
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                warn!(file = %path.display(), error = %e, "evidence bundle not written");
            }
            for n in dropped {
                let _ = std::fs::remove_file(dir.join(format!("{n}.cbor")));
            }
            // The new name (and the removals) reach the disk: evidence kept survives a power cut.
            if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
                warn!(dir = %dir.display(), error = %e, "evidence directory not synced");
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NodeHandle {
    /// This node's checkpoint at `own`'s watermark counting also the objects the last
    /// reconciliation with the node of `key` listed that this node received and refused, or
    /// keeps waiting, for what their bodies say or, for its own copies, for a signer that once
    /// had authority (`Store::received_not_held_from`), with how many of
    /// them it does not hold; none when there are none, or when they cannot make up exactly
    /// the count it `claimed` (then no hashing). Equal to its claim, the node withholds
    /// nothing: it gave them when asked. Kept per node for its watermark, the store's sequence,
    /// the list and its claim, so that a heartbeat heard again costs nothing; a new watermark
    /// (one a period) costs one pass over the objects below it, as this node's own checkpoint
    /// does.
    async fn checkpoint_with_refused(
        &self,
        key: PublicKey,
        own: &Checkpoint,
        claimed: &Checkpoint,
    ) -> Option<(Checkpoint, u64)> {
        let peer = key.peer_id().parse::<Peer>().ok()?;
        let listed = self.sync_state().refused_by(&peer)?;
        let watermark = own.watermark;
        let seq = self.seq();
        let tag = (watermark, seq, listed.generation, claimed.count);
        if let Some((t, found)) = self
            .health()
            .lock()
            .nodes
            .get(&key)
            .and_then(|e| e.with_refused)
            && t == tag
        {
            return found;
        }
        let mut extra: Vec<(Timestamp, ObjectId)> = listed
            .items
            .iter()
            .filter(|(t, _)| *t < watermark)
            .copied()
            .collect();
        if extra.is_empty() || own.count.saturating_add(extra.len() as u64) < claimed.count {
            return None;
        }
        let _turn = self.health().computing.acquire().await.ok()?;
        let snap = self.sync_snapshot().await.ok()?;
        let claimed_count = claimed.count;
        let found = tokio::task::spawn_blocking(move || {
            extra.sort_unstable();
            extra.dedup();
            extra.retain(|(t, id)| !snap.contains(*t, id));
            let n = extra.len() as u64;
            if snap.count_before(watermark).saturating_add(n) != claimed_count {
                return None;
            }
            Some((snap.checkpoint_with(watermark, &extra), n))
        })
        .await
        .ok()?;
        if found.is_some() {
            self.metrics().health_checkpoints.inc();
        }
        if let Some(e) = self.health().lock().nodes.get_mut(&key) {
            e.with_refused = Some((tag, found));
        }
        found
    }

    /// This node's checkpoint at `watermark`. Objects are never removed, so the set below a
    /// watermark only grows: while the store has not changed, or the number of objects below
    /// the watermark has not, the cached checkpoint stands (an O(log n) count instead of
    /// hashing every item below it while ingest runs).
    pub(crate) async fn own_checkpoint(
        &self,
        watermark: Timestamp,
    ) -> Result<Checkpoint, NodeError> {
        let cached = |node: &NodeHandle| {
            node.health()
                .lock()
                .own
                .iter()
                .find(|(w, _, _)| *w == watermark)
                .copied()
        };
        if let Some((_, s, c)) = cached(self)
            && s == self.seq()
        {
            return Ok(c);
        }
        let _turn = self
            .health()
            .computing
            .acquire()
            .await
            .map_err(|e| NodeError::Store(e.to_string()))?;
        // Another heartbeat may have asked for the same watermark meanwhile.
        let seq = self.seq();
        let found = cached(self);
        if let Some((_, s, c)) = found
            && s == seq
        {
            return Ok(c);
        }
        let snap = self.sync_snapshot().await?;
        let c = match found {
            Some((_, _, c)) if snap.count_before(watermark) == c.count => c,
            _ => {
                self.metrics().health_checkpoints.inc();
                tokio::task::spawn_blocking(move || snap.checkpoint(watermark))
                    .await
                    .map_err(|e| NodeError::Store(e.to_string()))?
            }
        };
        let mut book = self.health().lock();
        book.own.retain(|(w, _, _)| *w != watermark);
        book.own.push((watermark, seq, c));
        if book.own.len() > OWN_CHECKPOINTS {
            book.own.remove(0);
        }
        Ok(c)
    }

    /// Builds, signs and publishes this node's heartbeat (none when this node holds no valid
    /// certificate of its own: nobody would accept it).
    pub(crate) async fn send_heartbeat(&self) -> Result<(), NodeError> {
        let cfg = self.health_config().clone();
        let key = self.node_key();
        let trust = self.trust();
        let t = match &cfg.test_clock_offset_ms {
            Some(off) => Timestamp(
                now()
                    .0
                    .saturating_add_signed(off.load(std::sync::atomic::Ordering::SeqCst)),
            ),
            None => now(),
        };
        if trust
            .node_member_as(&key.public_key(), self.member(), t)
            .is_none()
        {
            debug!("no valid node certificate for this node's key: no heartbeat sent");
            return Ok(());
        }
        let period_ms = cfg.heartbeat_secs.saturating_mul(1000);
        let checkpoint = self
            .own_checkpoint(watermark(
                t,
                period_ms,
                cfg.watermark_delay_secs.saturating_mul(1000),
            ))
            .await?;
        let mut reconciled: Vec<Reconciled> = self
            .sync_stats()
            .into_iter()
            .filter(|(_, s)| s.error.is_none())
            .filter_map(|(peer, s)| s.last.map(|at| Reconciled { peer, at }))
            .collect();
        reconciled.sort_by_key(|r| std::cmp::Reverse(r.at));
        reconciled.truncate(accord_core::health::MAX_RECONCILED);
        // Chosen and noted under one lock: see `Book::own_issued`.
        let issued = {
            let mut book = self.health().lock();
            let last = book.own_issued.or_else(|| {
                book.nodes
                    .get(&key.public_key())
                    .map(|e| e.latest.heartbeat().issued)
            });
            let issued = next_issued(
                t,
                last,
                cfg.heartbeat_secs,
                trust.limits().max_future_skew_ms,
            );
            book.own_issued = Some(issued);
            issued
        };
        let hb = Heartbeat {
            federation: self.federation(),
            member: self.member().to_string(),
            node: key.public_key(),
            issued,
            period_secs: cfg.heartbeat_secs,
            software: software(),
            protocol: PROTOCOL_VERSION.to_string(),
            charter_version: trust.charter_history().len() as u64,
            uptime_secs: self.uptime_secs(),
            counts: self
                .shared_counts()
                .into_iter()
                .map(|(t, n)| (t.as_str().to_string(), n))
                .collect(),
            checkpoint,
            reconciled,
            attachment_backlog: self.attachments().backlog(),
        };
        let signed = sign_heartbeat(hb, key).map_err(|e| NodeError::Store(e.to_string()))?;
        let bytes = signed.bytes().to_vec();
        {
            let mut book = self.health().lock();
            let own = key.public_key();
            book.nodes.insert(
                own,
                Entry {
                    agreement: Agreement::Agrees,
                    observed: Some(checkpoint),
                    ..Entry::heard(signed, t)
                },
            );
        }
        if let Err(e) = self.network().publish_heartbeat(bytes).await {
            debug!(error = %e, "heartbeat not published");
        }
        let due = self
            .health()
            .clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .warning_due(t);
        if let Some(o) = due {
            let secs = o.offset_ms.unsigned_abs() / 1000;
            let skew = trust.limits().max_future_skew_ms / 1000;
            // Behind, this node refuses its peers' fresh records and heartbeats ("from the
            // future"); ahead, its peers refuse its own, and show it down.
            let (how, then) = if o.offset_ms > 0 {
                (
                    "behind",
                    "it refuses its peers' fresh records and heartbeats and shows their nodes down",
                )
            } else {
                (
                    "ahead of",
                    "its peers refuse its fresh records and heartbeats and show it down",
                )
            };
            warn!(
                offset_ms = o.offset_ms,
                nodes = o.nodes,
                members = o.members,
                "this node's clock is {secs} s {how} its peers' (from the heartbeats of {} nodes of {} members): check its time synchronisation (NTP); beyond the charter's skew of {skew} s {then}",
                o.nodes,
                o.members
            );
        }
        Ok(())
    }

    /// This node's clock against its peers', from the heartbeats heard within 15 minutes
    /// (`None` before nodes of two members were heard).
    pub fn clock_offset(&self) -> Option<crate::ClockOffset> {
        self.health()
            .clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .offset(now())
    }

    /// Judges a heartbeat received by gossip and reports the verdict to the network.
    pub(crate) async fn on_heartbeat(&self, message_id: Vec<u8>, source: Peer, data: Vec<u8>) {
        let verdict = self.judge_heartbeat(&data).await;
        let validation = match &verdict {
            Ok(true) => Validation::Accept,
            Ok(false) => Validation::Ignore,
            Err(e) if e.is_hostile() => {
                info!(peer = %source, reason = %e, "invalid heartbeat received");
                Validation::Reject
            }
            Err(e) => {
                debug!(peer = %source, reason = %e, "heartbeat refused");
                Validation::Ignore
            }
        };
        let result = match &verdict {
            Ok(true) => "accepted",
            Ok(false) => "ignored",
            Err(e) => e.code(),
        };
        self.metrics()
            .heartbeats
            .get_or_create(&vec![("result".to_string(), result.to_string())])
            .inc();
        let _ = self.network().report(message_id, source, validation).await;
    }

    /// `Ok(true)`: a new heartbeat, kept and forwarded; `Ok(false)`: a duplicate, an older one
    /// or this node's own (not forwarded, no penalty).
    async fn judge_heartbeat(&self, data: &[u8]) -> Result<bool, HealthError> {
        let cfg = self.health_config().clone();
        let trust = self.trust();
        let t = now();
        // What the heartbeat shows of this node's clock is read before its time is judged: a
        // node whose own clock is wrong refuses every heartbeat for its time.
        let own = self.node_key().public_key();
        let checked = check_heartbeat_signed(data, &trust, t).and_then(|hb| {
            if hb.heartbeat().node != own {
                self.health()
                    .clock
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .heard(
                        hb.heartbeat().node,
                        &hb.heartbeat().member,
                        hb.heartbeat().issued,
                        t,
                    );
            }
            check_heartbeat_time(&hb, &trust, t, cfg.ttl_secs.saturating_mul(1000)).map(|()| hb)
        });
        let hb = match checked {
            Ok(hb) => hb,
            Err(e) => {
                *self.health().lock().refused.entry(e.code()).or_default() += 1;
                return Err(e);
            }
        };
        let key = hb.heartbeat().node;
        if key == self.node_key().public_key() {
            return Ok(false);
        }
        let watermark = hb.heartbeat().checkpoint.watermark;
        {
            let mut book = self.health().lock();
            if !book.nodes.contains_key(&key)
                && book.nodes.len() >= MAX_NODES
                && !book.make_room(&hb.heartbeat().member, &self.node_key().public_key())
            {
                return Ok(false);
            }
            if let Some(e) = book.nodes.get_mut(&key) {
                let old = &e.latest;
                if old.heartbeat().issued == hb.heartbeat().issued {
                    if old.bytes() == hb.bytes() {
                        return Ok(false);
                    }
                    // A third statement for the same time proves nothing the first two did
                    // not: dropped, not forwarded (each would cost every node a signed bundle
                    // written to disk).
                    if e.equivocated_at == Some(hb.heartbeat().issued) {
                        return Ok(false);
                    }
                    // Two statements with the same sequence: equivocation, provable by anyone.
                    let first = old.clone();
                    e.equivocated = true;
                    e.equivocated_at = Some(hb.heartbeat().issued);
                    drop(book);
                    warn!(member = %hb.heartbeat().member, node = %key.short(), "node signed two different heartbeats for the same time: equivocation");
                    self.keep_evidence(
                        "equivocation",
                        &hb,
                        vec![first, hb.clone()],
                        None,
                        None,
                        "two different heartbeats signed with the same issued time".into(),
                    );
                    return Ok(true);
                }
                if old.heartbeat().issued > hb.heartbeat().issued {
                    return Ok(false);
                }
                // A node beats once a period: one that signs faster (each with a new
                // watermark, each a checkpoint for every receiver to compute) is heard at most
                // twice a period, its own or this node's whichever is longer (a period it
                // declares itself cannot buy it more), and at most once a second.
                let gap = hb
                    .heartbeat()
                    .period_secs
                    .max(cfg.heartbeat_secs)
                    .saturating_mul(500)
                    .max(MIN_HEARTBEAT_GAP_MS);
                if hb.heartbeat().issued.0 < old.heartbeat().issued.0.saturating_add(gap) {
                    // Not judged, but heard: a node beating faster than this node's period is
                    // alive (its liveness counts in its own periods).
                    e.received = t;
                    return Ok(false);
                }
            }
            // Heard: the latest of this node from now on, before its checkpoint is compared
            // (heartbeats are judged concurrently, and the next one is measured against this).
            let e = book
                .nodes
                .entry(key)
                .or_insert_with(|| Entry::heard(hb.clone(), t));
            e.latest = hb.clone();
            e.received = t;
        }
        // Compare with what this node holds at the same watermark. (Every heard heartbeat is
        // compared, whatever its watermark: leaving those off this node's period unjudged let a
        // node that withholds choose a period no receiver compares; a watermark not computed
        // lately waits its turn in [`NewWatermarks`].)
        let known = self
            .health()
            .lock()
            .own
            .iter()
            .any(|(w, _, _)| *w == watermark);
        let own = if known || {
            let now = std::time::Instant::now();
            self.health()
                .new_watermarks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(hb.heartbeat().member.to_string())
                .or_insert_with(|| NewWatermarks::new(now))
                .take(now)
        } {
            self.own_checkpoint(watermark).await.ok()
        } else {
            // Heard and forwarded; what was known of its agreement stays until a later one.
            self.metrics().heartbeats_not_compared.inc();
            return Ok(true);
        };
        let claimed = hb.heartbeat().checkpoint;
        let mut agreement = match own {
            None => Agreement::Unknown,
            Some(o) if o == claimed => Agreement::Agrees,
            Some(o) if claimed.count < o.count => Agreement::Behind,
            Some(_) => Agreement::Ahead,
        };
        let mut refused = 0;
        if let (Agreement::Ahead, Some(o)) = (agreement, own)
            && let Some((c, n)) = self.checkpoint_with_refused(key, &o, &claimed).await
            && c == claimed
        {
            agreement = Agreement::HoldsRefused;
            refused = n;
        }
        let mut reconcile = false;
        let mut flag: Option<(SignedHeartbeat, Timestamp)> = None;
        {
            let mut book = self.health().lock();
            let e = book
                .nodes
                .entry(key)
                .or_insert_with(|| Entry::heard(hb.clone(), t));
            if e.latest.heartbeat().issued != hb.heartbeat().issued {
                // A newer heartbeat was heard meanwhile: its comparison is the one that counts.
                return Ok(true);
            }
            e.agreement = agreement;
            e.observed = own;
            e.held_refused = refused;
            match agreement {
                Agreement::Ahead => {
                    match (&e.first_ahead, e.reconciled_at) {
                        (None, _) => {
                            e.first_ahead = Some(hb.clone());
                            e.reconciled_at = None;
                            reconcile = true;
                        }
                        // Still claiming what this node could not get from it, in a heartbeat
                        // signed after a completed reconciliation with it: withholding.
                        (Some(first), Some(at)) if hb.heartbeat().issued > at => {
                            if !e.divergent {
                                flag = Some((first.clone(), at));
                            }
                            e.divergent = true;
                            reconcile = true;
                        }
                        _ => reconcile = true,
                    }
                }
                Agreement::Agrees | Agreement::HoldsRefused => {
                    e.first_ahead = None;
                    e.reconciled_at = None;
                    e.divergent = false;
                }
                Agreement::Behind | Agreement::Unknown => {
                    e.first_ahead = None;
                    e.reconciled_at = None;
                }
            }
        }
        if let Some((first, at)) = flag {
            let own = own.unwrap_or(claimed);
            warn!(member = %hb.heartbeat().member, node = %key.short(), claimed = claimed.count, held = own.count, "node claims objects it does not give: flagged divergent");
            self.keep_evidence(
                "divergent",
                &hb,
                vec![first, hb.clone()],
                Some(own),
                Some(at),
                format!(
                    "it claims {} objects created before {}; after reconciling with it at {}, this node holds {}",
                    claimed.count, claimed.watermark, at, own.count
                ),
            );
        }
        if reconcile {
            self.reconcile_for_health(key);
        }
        Ok(true)
    }

    /// Resets the connection of every admitted peer that speaks heartbeats but whose
    /// heartbeats stopped reaching this node, by any path, for
    /// [`HealthConfig::silent_peer_secs`](crate::config::HealthConfig) and three of its
    /// periods. A connection can stay open while it carries no gossip: gossipsub gives up on a
    /// connection whose streams failed to open five times (as when the peer could not be
    /// written to for a minute), and then neither objects nor heartbeats come over it until
    /// it closes. The new connection is admitted afresh, which starts a reconciliation. The
    /// wait before the same peer is reset again doubles, up to an hour, until it is heard.
    pub(crate) async fn reset_silent_peers(&self) {
        let cfg = self.health_config();
        if cfg.silent_peer_secs == 0 {
            return;
        }
        let Ok(peers) = self.network().peers().await else {
            return;
        };
        let t = now();
        let own_period_ms = cfg.heartbeat_secs.saturating_mul(1000);
        let silent_ms = cfg.silent_peer_secs.saturating_mul(1000);
        let mut due = Vec::new();
        {
            let mut book = self.health().lock();
            let heard: HashMap<String, (Timestamp, u64)> = book
                .nodes
                .iter()
                .map(|(k, e)| (k.peer_id(), (e.received, e.latest.heartbeat().period_secs)))
                .collect();
            let watched: HashSet<String> = peers.iter().map(|p| p.peer.to_string()).collect();
            book.resets.retain(|p, _| watched.contains(p));
            for p in peers
                .iter()
                .filter(|p| p.admitted && p.heartbeats && p.member.is_some())
            {
                let id = p.peer.to_string();
                let (last, period_ms) =
                    heard.get(&id).map_or((None, own_period_ms), |(at, secs)| {
                        (Some(*at), secs.saturating_mul(1000))
                    });
                let limit = silent_ms.max(SILENT_PERIODS.saturating_mul(period_ms));
                if last.is_some_and(|at| t.0.saturating_sub(at.0) <= limit) {
                    book.resets.remove(&id);
                    continue;
                }
                // A new connection has a full `limit` to be heard over.
                if t.0.saturating_sub(p.connected_since_ms) <= limit {
                    continue;
                }
                let (next, wait) = book.resets.entry(id).or_insert((Timestamp(0), limit));
                if t < *next {
                    continue;
                }
                *next = Timestamp(t.0.saturating_add(*wait));
                *wait = wait.saturating_mul(2).min(RESET_WAIT_MAX_MS);
                let quiet = last.map(|at| t.0.saturating_sub(at.0) / 1000);
                due.push((p.peer, quiet));
            }
        }
        for (peer, quiet) in due {
            self.metrics().silent_resets.inc();
            let reason = match quiet {
                Some(s) => format!("its heartbeats stopped reaching this node {s} s ago"),
                None => "no heartbeat of it has reached this node".into(),
            };
            let _ = self.network().reset(peer, reason).await;
        }
    }

    /// Reconciles with the node of `key` (when it is an admitted peer) and notes when the
    /// session completed, for the divergence rule.
    fn reconcile_for_health(&self, key: PublicKey) {
        let Ok(peer) = key.peer_id().parse::<Peer>() else {
            return;
        };
        let node = self.clone();
        tokio::spawn(async move {
            let admitted = node
                .peers()
                .await
                .map(|ps| {
                    ps.iter()
                        .any(|p| p.admitted && p.peer_id == peer.to_string())
                })
                .unwrap_or(false);
            // Not in the middle of a burst of gossip: a session then fetches again what is
            // still on its way, and ends before the node has taken in what the other node
            // claims, which read as divergence (five nodes on two cores at 100,000 records
            // flagged each other divergent).
            if !admitted || !node.gossip_quiet().await {
                return;
            }
            let started = now();
            if let Ok(s) = node.sync_with(peer).await
                && s.error.is_none()
                && s.last.is_some()
            {
                let mut book = node.health().lock();
                if let Some(e) = book.nodes.get_mut(&key)
                    && e.first_ahead
                        .as_ref()
                        .is_some_and(|f| f.heartbeat().issued <= started)
                {
                    e.reconciled_at = Some(now());
                }
            }
        });
    }

    fn keep_evidence(
        &self,
        kind: &str,
        latest: &SignedHeartbeat,
        heartbeats: Vec<SignedHeartbeat>,
        observed: Option<Checkpoint>,
        reconciled_at: Option<Timestamp>,
        explanation: String,
    ) {
        let key = self.node_key();
        let evidence = Evidence {
            federation: self.federation(),
            observer: key.public_key(),
            observer_member: self.member().to_string(),
            created: now(),
            kind: kind.to_string(),
            subject: latest.heartbeat().node,
            subject_member: latest.heartbeat().member.clone(),
            heartbeats: heartbeats
                .iter()
                .map(|h| ByteBuf::from(h.bytes().to_vec()))
                .collect(),
            observed,
            reconciled_at,
            explanation,
        };
        match sign_evidence(&evidence, key) {
            Ok(bytes) => {
                let mut book = self.health().lock();
                let number = book.next_evidence + 1;
                book.next_evidence = number;
                let item = EvidenceItem {
                    number,
                    evidence,
                    bytes,
                };
                let mut dropped = Vec::new();
                let subject = item.evidence.subject;
                let about = |b: &Book| {
                    b.evidence
                        .iter()
                        .filter(|e| e.evidence.subject == subject)
                        .count()
                };
                while about(&book) >= MAX_EVIDENCE_PER_SUBJECT {
                    let Some(i) = book
                        .evidence
                        .iter()
                        .position(|e| e.evidence.subject == subject)
                    else {
                        break;
                    };
                    if let Some(old) = book.evidence.remove(i) {
                        dropped.push(old.number);
                    }
                }
                book.evidence.push_back(item.clone());
                while book.evidence.len() > MAX_EVIDENCE {
                    if let Some(old) = book.evidence.pop_front() {
                        dropped.push(old.number);
                    }
                }
                drop(book);
                self.health().persist(&item, dropped);
                self.metrics()
                    .divergence_evidence
                    .get_or_create(&vec![("kind".to_string(), kind.to_string())])
                    .inc();
            }
            Err(e) => warn!(error = %e, "evidence not signed"),
        }
    }

    /// The signed evidence bundle number `n`, if still kept.
    pub fn health_evidence(&self, n: u64) -> Option<EvidenceItem> {
        self.health()
            .lock()
            .evidence
            .iter()
            .find(|e| e.number == n)
            .cloned()
    }

    /// The whole federation as this node sees it: every member, each of its certified nodes
    /// with its latest heartbeat, and the evidence kept.
    pub fn federation_health(&self) -> FederationHealth {
        let trust = self.trust();
        let t = now();
        let cfg = self.health_config();
        let ttl = cfg.ttl_secs.saturating_mul(1000);
        let own_key = self.node_key().public_key();
        let own_charter = trust.charter_history().len() as u64;
        // The valid certificates by member, in one pass over them, before the book is locked.
        let mut certified: BTreeMap<&str, Vec<(PublicKey, Option<String>)>> = BTreeMap::new();
        for n in trust.node_certs() {
            if trust
                .node_member_as(&n.cert.node_key, n.cert.member.as_str(), t)
                .is_some()
            {
                certified
                    .entry(n.cert.member.as_str())
                    .or_default()
                    .push((n.cert.node_key, n.cert.label.clone()));
            }
        }
        let mut book = self.health().lock();
        book.nodes
            .retain(|k, e| *k == own_key || e.received.0.saturating_add(ttl) >= t.0);
        let mut members = Vec::new();
        for m in &trust.charter().members {
            let mut nodes = Vec::new();
            let mut keys = certified.remove(m.code.as_str()).unwrap_or_default();
            keys.sort_by_key(|a| a.0);
            keys.dedup_by(|a, b| a.0 == b.0);
            let mut never_seen = 0usize;
            for (key, label) in keys {
                let e = book.nodes.get(&key);
                if e.is_none() && key != own_key {
                    never_seen += 1;
                    if never_seen > MAX_NEVER_SEEN_LISTED {
                        continue;
                    }
                }
                let hb = e.map(|e| e.latest.heartbeat());
                let status = match e {
                    _ if key == own_key => "self",
                    None => "never-seen",
                    Some(e) => liveness(e.received, e.latest.heartbeat().period_secs, t),
                };
                let behind = match (e.and_then(|e| e.observed), hb) {
                    (Some(o), Some(h)) => o.count.saturating_sub(h.checkpoint.count),
                    _ => 0,
                };
                nodes.push(NodeHealth {
                    member: m.code.to_string(),
                    node_key: key.to_string(),
                    peer_id: key.peer_id(),
                    label,
                    status,
                    last_seen: e.map(|e| e.received),
                    seconds_since: e.map(|e| t.0.saturating_sub(e.received.0) / 1000),
                    software: hb.map(|h| h.software.clone()),
                    protocol: hb.map(|h| h.protocol.clone()),
                    charter_version: hb.map(|h| h.charter_version),
                    charter_matches: hb.map(|h| h.charter_version == own_charter),
                    uptime_secs: hb.map(|h| h.uptime_secs),
                    period_secs: hb.map(|h| h.period_secs),
                    counts: hb.map(|h| h.counts.clone()).unwrap_or_default(),
                    checkpoint: hb.map(|h| h.checkpoint),
                    agreement: e.map_or(Agreement::Unknown, |e| e.agreement),
                    behind,
                    held_refused: e.map_or(0, |e| e.held_refused),
                    divergent: e.is_some_and(|e| e.divergent),
                    equivocated: e.is_some_and(|e| e.equivocated),
                    attachment_backlog: hb.map(|h| h.attachment_backlog),
                    reconciled_peers: hb.map_or(0, |h| h.reconciled.len()),
                });
            }
            members.push(MemberHealth {
                code: m.code.to_string(),
                name: m.name.clone(),
                nodes,
                never_seen_more: never_seen.saturating_sub(MAX_NEVER_SEEN_LISTED) as u64,
            });
        }
        let evidence = book
            .evidence
            .iter()
            .rev()
            .map(|e| {
                let last = e
                    .evidence
                    .heartbeats
                    .last()
                    .and_then(|b| accord_core::health::open_heartbeat(b).ok());
                EvidenceSummary {
                    number: e.number,
                    kind: e.evidence.kind.clone(),
                    subject_member: e.evidence.subject_member.clone(),
                    subject: e.evidence.subject.to_string(),
                    created: e.evidence.created,
                    explanation: e.evidence.explanation.clone(),
                    heartbeats: e.evidence.heartbeats.len(),
                    claimed: last.as_ref().map(|h| h.heartbeat().checkpoint.count),
                    watermark: last.as_ref().map(|h| h.heartbeat().checkpoint.watermark),
                    held: e.evidence.observed.as_ref().map(|c| c.count),
                    reconciled_at: e.evidence.reconciled_at,
                }
            })
            .collect();
        FederationHealth {
            generated: t,
            federation: self.federation(),
            federation_name: trust.charter().name.clone(),
            charter_version: own_charter,
            software: software(),
            protocol: PROTOCOL_VERSION,
            heartbeat_secs: cfg.heartbeat_secs,
            members,
            evidence,
            refused: book.refused.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's heartbeats after its clock was stepped back: dated half a period after the
    /// last while the clock catches up (judged and passed on by peers), a millisecond after with
    /// a period too short for that, and by the clock when the last was as far ahead as the skew
    /// allows or further, or is not ahead at all.
    #[test]
    fn heartbeats_after_a_clock_step_back_keep_their_order_and_catch_up() {
        let skew = 600_000;
        let now = Timestamp(10_000_000);
        let ahead = |ms: u64| Some(Timestamp(now.0 + ms));
        assert_eq!(next_issued(now, None, 60, skew), now);
        assert_eq!(next_issued(now, Some(Timestamp(now.0 - 1)), 60, skew), now);
        assert_eq!(
            next_issued(now, ahead(120_000), 60, skew),
            Timestamp(now.0 + 150_000)
        );
        assert_eq!(
            next_issued(now, ahead(0), 60, skew),
            Timestamp(now.0 + 30_000)
        );
        assert_eq!(
            next_issued(now, ahead(120_000), 1, skew),
            Timestamp(now.0 + 120_001)
        );
        // A second within the skew at most; a last one at or past that is left behind.
        assert_eq!(
            next_issued(now, ahead(590_000), 60, skew),
            Timestamp(now.0 + skew - 1_000)
        );
        assert_eq!(next_issued(now, ahead(skew - 1_000), 60, skew), now);
        assert_eq!(next_issued(now, ahead(skew + 1), 60, skew), now);
        // The lead closes: each period the clock gains a period, the date half of one.
        let (mut t, mut last, mut beats) = (now, ahead(300_000), 0);
        while last.is_some_and(|l| l > t) {
            let next = next_issued(t, last, 60, skew);
            assert!(last.is_some_and(|l| next > l));
            last = Some(next);
            t = Timestamp(t.0 + 60_000);
            beats += 1;
        }
        assert_eq!(beats, 10, "a five-minute lead closes in ten minutes");
    }

    /// New watermarks are computed eight at once, then one every two seconds.
    #[test]
    fn checkpoints_at_new_watermarks_are_bounded() {
        let t0 = std::time::Instant::now();
        let mut b = NewWatermarks::new(t0);
        assert!((0..8).all(|_| b.take(t0)));
        assert!(!b.take(t0));
        assert!(!b.take(t0 + std::time::Duration::from_secs(1)));
        assert!(b.take(t0 + std::time::Duration::from_secs(3)));
        assert!(!b.take(t0 + std::time::Duration::from_secs(3)));
        // A long quiet spell gives back the burst, no more.
        let later = t0 + std::time::Duration::from_secs(3600);
        assert_eq!((0..20).filter(|_| b.take(later)).count(), 8);
    }

    #[test]
    fn a_silent_node_is_down_within_two_periods_and_up_before_one_and_a_half() {
        let r = Timestamp(1_000_000);
        assert_eq!(liveness(r, 60, Timestamp(r.0 + 60_000)), "up");
        assert_eq!(liveness(r, 60, Timestamp(r.0 + 89_000)), "up");
        assert_eq!(liveness(r, 60, Timestamp(r.0 + 91_000)), "down");
        // A node stopped just after a heartbeat is down two periods after that heartbeat at
        // the latest, whatever the period.
        for p in [1, 2, 60, 3600] {
            assert_eq!(liveness(r, p, Timestamp(r.0 + 2 * p * 1000)), "down");
        }
        // A clock that went backwards shows the node up, not a panic.
        assert_eq!(liveness(r, 60, Timestamp(0)), "up");
    }

    #[test]
    fn evidence_bundles_are_kept_across_restarts_and_a_bad_file_is_ignored() {
        let fed =
            accord_core::devnet::DevFederation::new(&["KZ", "UZ"], [3; 32], Timestamp(1)).unwrap();
        let key = &fed.members[0].node;
        let bundle = |n: u64| {
            let e = Evidence {
                federation: fed.federation(),
                observer: key.public_key(),
                observer_member: "KZ".into(),
                created: Timestamp(n),
                kind: "divergent".into(),
                subject: fed.members[1].node.public_key(),
                subject_member: "UZ".into(),
                heartbeats: vec![],
                observed: None,
                reconciled_at: None,
                explanation: format!("bundle {n}"),
            };
            sign_evidence(&e, key).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("evidence");
        std::fs::create_dir_all(&d).unwrap();
        for n in 1..=(MAX_EVIDENCE as u64 + 2) {
            std::fs::write(d.join(format!("{n}.cbor")), bundle(n)).unwrap();
        }
        std::fs::write(d.join("999.cbor"), b"not a bundle").unwrap();
        std::fs::write(d.join("notes.txt"), b"operator's notes").unwrap();
        let h = HealthState::open(d.clone()).unwrap();
        let book = h.lock();
        assert_eq!(book.evidence.len(), MAX_EVIDENCE);
        assert_eq!(book.evidence.front().unwrap().number, 3);
        assert_eq!(
            book.evidence.back().unwrap().evidence.explanation,
            format!("bundle {}", MAX_EVIDENCE + 2)
        );
        assert_eq!(book.next_evidence, MAX_EVIDENCE as u64 + 2);
    }

    /// One member certifies thousands of keys and beats with each: the book, full, gives up
    /// that member's longest silent node for another member's newcomer, never the other way.
    #[test]
    fn a_full_book_makes_room_from_the_member_holding_the_most() {
        let dir = tempfile::tempdir().unwrap();
        let h = HealthState::open(dir.path().join("evidence")).unwrap();
        let mut book = h.lock();
        let entry = |member: &str, seed: u8, received: u64| {
            let key = accord_core::SecretKey::from_seed([seed; 32]);
            let hb = accord_core::health::Heartbeat {
                federation: ObjectId([1; 32]),
                member: member.into(),
                node: key.public_key(),
                issued: Timestamp(received),
                period_secs: 60,
                software: "accord/test".into(),
                protocol: "1.3".into(),
                charter_version: 1,
                uptime_secs: 1,
                counts: BTreeMap::new(),
                checkpoint: accord_core::health::checkpoint_hasher().finish(Timestamp(0)),
                reconciled: vec![],
                attachment_backlog: 0,
            };
            let s = sign_heartbeat(hb, &key).unwrap();
            (key.public_key(), Entry::heard(s, Timestamp(received)))
        };
        for i in 0..10u8 {
            let (k, e) = entry("AM", 10 + i, 1_000 + u64::from(i));
            book.nodes.insert(k, e);
        }
        for i in 0..2u8 {
            let (k, e) = entry("BY", 40 + i, 1_000);
            book.nodes.insert(k, e);
        }
        let own = accord_core::SecretKey::from_seed([99; 32]).public_key();
        let stalest = accord_core::SecretKey::from_seed([10; 32]).public_key();
        assert!(book.make_room("KZ", &own));
        assert_eq!(book.nodes.len(), 11);
        assert!(
            !book.nodes.contains_key(&stalest),
            "AM's longest silent node goes"
        );
        // The member holding the most gets no room from the others.
        assert!(!book.make_room("AM", &own));
        assert_eq!(book.nodes.len(), 11);
    }

    #[test]
    fn watermarks_are_aligned_to_the_period_and_lie_in_the_past() {
        let w = watermark(Timestamp(1_000_123_456), 60_000, 300_000);
        assert_eq!(w.0 % 60_000, 0);
        assert!(w.0 <= 1_000_123_456 - 300_000);
        assert!(w.0 > 1_000_123_456 - 300_000 - 60_000);
        // Two nodes a few seconds apart in the same period agree on the watermark.
        assert_eq!(
            watermark(Timestamp(1_000_121_000), 60_000, 300_000),
            watermark(Timestamp(1_000_125_000), 60_000, 300_000)
        );
        assert_eq!(watermark(Timestamp(5), 60_000, 300_000), Timestamp(0));
    }
}
