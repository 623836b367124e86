//! The initiator's side of a session: negentropy protocol v1 messages whose ranges are cut to
//! the differences seen so far.
//!
//! The wire format is the negentropy project's, unchanged, and the responder is its reference
//! state machine (any v1 implementation): what changes is only which ranges the initiator
//! asks about. The reference initiator always splits a differing range into 16 and lists a
//! range of fewer than 32 items, so when a tenth of the set differs nearly every range of ~24
//! items is listed whole, and a cut frame makes it split again what it had already asked.
//! This one keeps the ranges still to settle, estimates from every answer how dense the
//! differences are, and asks for ranges of the size that costs least at that density (a
//! fingerprint costs ~21 bytes; a differing range small enough is answered with its ids): 16
//! sub-ranges while differences are sparse, ranges of a few items when they are dense. It sends
//! no more than the answer is expected to hold, and asks again for exactly what a cut answer
//! left out.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use accord_core::ObjectId;
use negentropy::{Bound, FINGERPRINT_SIZE, ID_SIZE, Id, NegentropyStorageBase, PROTOCOL_VERSION};

use crate::index::{Shared, Snapshot};
use crate::session::{
    FRAME_LIMIT, MAX_ROUNDS, MAX_SESSION_BYTES, Outcome, SessionStats, SyncError,
};

const SKIP: u64 = 0;
const FINGERPRINT: u64 = 1;
const ID_LIST: u64 = 2;

/// Room kept free at the end of a frame, as the reference implementation keeps it.
const SLACK: usize = 200;
/// The share of a frame that the answer to one message is expected to fill: a little room for
/// chance, since an answer that does not fit is cut and what it left out is asked again.
const ANSWER_SHARE: f64 = 0.8;
/// Bytes of one fingerprint range: its bound (a few bytes), its mode and 16 bytes.
const RANGE_BYTES: f64 = 21.0;
/// Bytes around a listed range in an answer besides its ids: the skip before it, its bound,
/// mode and count.
const LIST_BYTES: f64 = 12.0;
/// A responder lists a differing range of fewer items than this, and splits a larger one.
const LISTED_BELOW: usize = 32;
/// Sub-ranges of a responder's split, and of ours while differences are sparse.
const BRANCHES: usize = 16;
/// The density assumed before any answer: few differences, as between nodes in step.
const PRIOR_DENSITY: f64 = 1e-6;

/// A range of the item space, `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    lo: Bound,
    hi: Bound,
}

/// A fingerprint range of the last message, for the estimate.
#[derive(Debug, Clone, Copy)]
struct Piece {
    range: Range,
    items: usize,
}

/// One reconciliation session, from our side.
pub struct Initiator {
    items: Shared,
    /// Ranges still to settle, sorted and disjoint, not in the last message.
    todo: Vec<Range>,
    /// Ranges the last message asked about (each cut into pieces), sorted.
    sent: Vec<Range>,
    pieces: Vec<Piece>,
    density: Density,
    have: Vec<Id>,
    need: Vec<Id>,
    stats: SessionStats,
    /// Answers in a row that settled nothing asked (see [`MAX_STALLED`]).
    stalled: u32,
}

/// Answers in a row that may settle nothing of what was asked — a fingerprint from before the
/// first range asked to the end of the id space, which puts everything back — before the
/// session ends as the peer's fault. An honest responder cuts its answer only after what fits
/// in a frame; a hostile one could answer so every round, each costing this node passes over
/// its whole set, until the round limit (512).
pub const MAX_STALLED: u32 = 3;

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("stats", &self.stats)
            .field("todo", &self.todo.len())
            .finish()
    }
}

fn malformed(what: impl Into<String>) -> SyncError {
    SyncError::Malformed(what.into())
}

fn ids(mut v: Vec<Id>) -> Vec<ObjectId> {
    v.sort_unstable();
    v.dedup();
    v.into_iter().map(|i| ObjectId(*i)).collect()
}

impl Initiator {
    /// Starts a session over `snapshot`; returns it and the first message.
    pub fn start(snapshot: Arc<Snapshot>) -> Result<(Initiator, Vec<u8>), SyncError> {
        let mut s = Initiator {
            items: Shared(snapshot),
            todo: vec![Range {
                lo: Bound::new(),
                hi: Bound::with_timestamp(u64::MAX),
            }],
            sent: Vec::new(),
            pieces: Vec::new(),
            density: Density::default(),
            have: Vec::new(),
            need: Vec::new(),
            stats: SessionStats::default(),
            stalled: 0,
        };
        let first = s.next_message()?;
        s.stats.rounds = 1;
        s.stats.bytes_out = first.len() as u64;
        Ok((s, first))
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
        self.read_answer(msg)?;
        if self.todo.is_empty() {
            return Ok(Outcome::Done {
                have: ids(std::mem::take(&mut self.have)),
                need: ids(std::mem::take(&mut self.need)),
            });
        }
        if self.stats.rounds >= MAX_ROUNDS {
            return Err(SyncError::TooManyRounds);
        }
        let next = self.next_message()?;
        self.stats.rounds += 1;
        self.stats.bytes_out += next.len() as u64;
        Ok(Outcome::Send(next))
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    fn position(&self, from: usize, bound: &Bound) -> usize {
        let n = self.items.0.len();
        self.items.find_lower_bound(from, n, bound)
    }

    /// The next message: the ranges still to settle, from the lowest, each cut into pieces,
    /// as many as the frame and the expected answer hold (at least one).
    fn next_message(&mut self) -> Result<Vec<u8>, SyncError> {
        let plan = Plan::new(self.density.estimate());
        let mut w = Writer::new();
        let mut expected = 0.0;
        let mut prev = Bound::new();
        let mut full = false;
        let todo = std::mem::take(&mut self.todo);
        for range in todo {
            if full {
                self.todo.push(range);
                continue;
            }
            let start = self.position(0, &range.lo);
            let end = self.position(start, &range.hi);
            let n = end - start;
            let k = plan.pieces(n);
            let (per, extra) = (n / k, n % k);
            let (mut from, mut lo) = (start, range.lo);
            for j in 0..k {
                let size = per + usize::from(j < extra);
                let to = from + size;
                let hi = if j + 1 == k {
                    range.hi
                } else {
                    self.between(to)?
                };
                // Written in place; taken back if it does not fit.
                let (mark, last) = (w.out.len(), w.last);
                if prev < lo {
                    w.bound(&lo);
                    w.varint(SKIP);
                }
                w.bound(&hi);
                if n == 0 {
                    w.varint(ID_LIST);
                    w.varint(0);
                } else {
                    w.varint(FINGERPRINT);
                    let fp = self
                        .items
                        .fingerprint(from, to)
                        .map_err(|e| SyncError::Protocol(e.to_string()))?;
                    w.out.extend_from_slice(&fp.to_bytes());
                }
                let answer = plan.expected_answer(size, n == 0);
                if mark > 1
                    && (w.out.len() + 2 > FRAME_LIMIT as usize - SLACK
                        || expected + answer > ANSWER_SHARE * (FRAME_LIMIT as usize - SLACK) as f64)
                {
                    w.out.truncate(mark);
                    w.last = last;
                    full = true;
                    break;
                }
                expected += answer;
                if n > 0 {
                    self.pieces.push(Piece {
                        range: Range { lo, hi },
                        items: size,
                    });
                }
                prev = hi;
                from = to;
                lo = hi;
            }
            if lo != range.lo {
                self.sent.push(Range {
                    lo: range.lo,
                    hi: lo,
                });
            }
            if lo != range.hi {
                self.todo.push(Range { lo, hi: range.hi });
            }
        }
        // The message covers the whole item space, as the reference initiator's do: what it
        // does not ask about yet is skipped explicitly (two bytes).
        let top = Bound::with_timestamp(u64::MAX);
        if prev < top {
            w.bound(&top);
            w.varint(SKIP);
        }
        Ok(w.out)
    }

    /// The shortest bound between our items `i - 1` and `i` (it is above the first and at
    /// most the second).
    fn between(&self, i: usize) -> Result<Bound, SyncError> {
        let get = |i: usize| {
            self.items
                .get_item(i)
                .ok()
                .flatten()
                .ok_or_else(|| SyncError::Protocol("range split out of the items".into()))
        };
        let (prev, curr) = (get(i - 1)?, get(i)?);
        if prev.timestamp != curr.timestamp {
            return Ok(Bound::with_timestamp(curr.timestamp));
        }
        let shared = prev
            .id
            .iter()
            .zip(curr.id.iter())
            .take_while(|(a, b)| a == b)
            .count();
        Bound::with_timestamp_and_id(curr.timestamp, &curr.id[..(shared + 1).min(ID_SIZE)])
            .map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// Reads the responder's answer: ids of listed ranges are compared, differing fingerprints
    /// make their part of what was asked a range to settle again, and what the answer did not
    /// reach (a cut answer ends with one fingerprint of everything above) is asked again.
    fn read_answer(&mut self, msg: &[u8]) -> Result<(), SyncError> {
        let mut r = Reader::new(msg);
        match r.byte()? {
            v if u64::from(v) == PROTOCOL_VERSION => {}
            v if (0x60..=0x6f).contains(&v) => {
                return Err(SyncError::Protocol(format!(
                    "the peer answered with negentropy protocol version {v:#x}"
                )));
            }
            v => {
                return Err(malformed(format!(
                    "not a negentropy message (first byte {v:#x})"
                )));
            }
        }
        let sent = std::mem::take(&mut self.sent);
        let pieces = std::mem::take(&mut self.pieces);
        let mut again = Vec::new();
        // Answer ranges other than skips, for which of our pieces differed.
        let mut answered = Vec::new();
        let mut cut: Option<Bound> = None;
        let (mut prev, mut from) = (Bound::new(), 0);
        while !r.is_empty() {
            let bound = r.bound()?;
            let mode = r.varint()?;
            if bound < prev {
                return Err(malformed("the answer's ranges are out of order"));
            }
            let to = self.position(from, &bound);
            let range = Range {
                lo: prev,
                hi: bound,
            };
            match mode {
                SKIP => {}
                FINGERPRINT => {
                    let theirs: [u8; FINGERPRINT_SIZE] = r.array()?;
                    let ours = self
                        .items
                        .fingerprint(from, to)
                        .map_err(|e| SyncError::Protocol(e.to_string()))?
                        .to_bytes();
                    let to_end = bound.item.timestamp == u64::MAX;
                    if ours != theirs {
                        intersect(&sent, range, &mut again);
                    }
                    if to_end {
                        // Everything above a cut answer, or the top range of a split.
                        cut = Some(prev);
                    } else if to > from {
                        self.density.fingerprint(to - from, ours == theirs);
                    }
                    answered.push(range);
                }
                ID_LIST => {
                    let count = r.varint()?;
                    if count > (r.remaining() / ID_SIZE) as u64 {
                        return Err(malformed("an id list longer than the answer"));
                    }
                    let mut theirs: HashSet<Id> = HashSet::with_capacity(count as usize);
                    for _ in 0..count {
                        theirs.insert(Id::from_byte_array(r.array()?));
                    }
                    // Only what was asked is compared: a list over more (an empty list of
                    // the whole id space, every round) would otherwise add all our ids to
                    // `have` again each time, without bound.
                    let mut parts = Vec::new();
                    intersect(&sent, range, &mut parts);
                    let before = self.have.len();
                    let mut ours = 0;
                    for part in parts {
                        let lo = self.position(from, &part.lo);
                        let hi = self.position(lo, &part.hi);
                        ours += hi - lo;
                        let have = &mut self.have;
                        self.items
                            .iterate(lo, hi, &mut |item, _| {
                                if !theirs.remove(&item.id) {
                                    have.push(item.id);
                                }
                                Ok(true)
                            })
                            .map_err(|e| SyncError::Protocol(e.to_string()))?;
                    }
                    let diffs = (self.have.len() - before + theirs.len()) as u64;
                    if ours > 0 {
                        self.density.listed((ours + theirs.len()) as u64, diffs);
                    }
                    self.need.extend(theirs);
                    answered.push(range);
                }
                m => return Err(malformed(format!("unknown range mode {m}"))),
            }
            prev = bound;
            from = to;
        }
        // An answer cut before anything asked settles nothing: everything is asked again.
        let settled_nothing = cut.is_some_and(|c| sent.first().is_none_or(|first| c <= first.lo));
        if settled_nothing {
            self.stalled += 1;
            if self.stalled >= MAX_STALLED {
                return Err(malformed(format!(
                    "{MAX_STALLED} answers in a row settled nothing asked (each cut before the first range)"
                )));
            }
        } else {
            self.stalled = 0;
        }
        self.learn(&pieces, &answered, cut);
        // What is left to settle: the parts asked again, and what was not asked yet.
        again.append(&mut self.todo);
        again.sort_unstable_by_key(|r| r.lo);
        self.todo = coalesce(again);
        Ok(())
    }

    /// Ranges still to settle.
    pub fn pending(&self) -> usize {
        self.todo.len()
    }

    /// Each piece below a cut was answered: it differed if an answer range met it.
    fn learn(&mut self, pieces: &[Piece], answered: &[Range], cut: Option<Bound>) {
        let mut a = 0;
        for p in pieces {
            if cut.is_some_and(|c| p.range.hi > c) {
                break;
            }
            while a < answered.len() && answered[a].hi <= p.range.lo {
                a += 1;
            }
            let differed = answered.get(a).is_some_and(|x| x.lo < p.range.hi);
            self.density.fingerprint(p.items, !differed);
        }
    }
}

/// Most ranges kept to settle (~6 MiB). An honest answer leaves a few thousand; one that cuts
/// what was asked into ever more pieces would make them grow round after round.
const MAX_PENDING: usize = 1 << 16;

/// `ranges` (sorted, disjoint), at most [`MAX_PENDING`] of them: over the bound, neighbours are
/// joined, each pair into one range from the first's start to the second's end. What lay between
/// them is asked again — it was equal, or its differences were listed already (found twice, they
/// are reported once) — so nothing is missed.
fn coalesce(mut ranges: Vec<Range>) -> Vec<Range> {
    while ranges.len() > MAX_PENDING {
        ranges = ranges
            .chunks(2)
            .map(|pair| Range {
                lo: pair[0].lo,
                hi: pair[pair.len() - 1].hi,
            })
            .collect();
    }
    ranges
}

/// Appends to `out` the parts of `sent` (sorted, disjoint) inside `range`.
fn intersect(sent: &[Range], range: Range, out: &mut Vec<Range>) {
    let first = sent.partition_point(|s| s.hi <= range.lo);
    for s in &sent[first..] {
        if s.lo >= range.hi {
            break;
        }
        let part = Range {
            lo: s.lo.max(range.lo),
            hi: s.hi.min(range.hi),
        };
        if part.lo < part.hi {
            out.push(part);
        }
    }
}

/// What the answers said about how dense the differences are: fingerprints compared (by the
/// number of our items in the range) and listed ranges.
#[derive(Debug, Default)]
struct Density {
    /// Items in a range (its size class) → (ranges equal, ranges that differed).
    fingerprints: BTreeMap<usize, (u64, u64)>,
    listed_items: u64,
    listed_diffs: u64,
}

impl Density {
    fn fingerprint(&mut self, items: usize, equal: bool) {
        if items == 0 {
            return;
        }
        let e = self.fingerprints.entry(size_class(items)).or_default();
        if equal {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }

    fn listed(&mut self, items: u64, diffs: u64) {
        self.listed_items += items;
        self.listed_diffs += diffs;
    }

    /// The share of items that differ, most likely given what was seen (each item differing
    /// independently). While every range seen differed, that is as if one more of the
    /// smallest had been equal: the least density that explains it, not "everything differs".
    fn estimate(&self) -> f64 {
        let seen_equal = self.fingerprints.values().any(|&(eq, _)| eq > 0)
            || self.listed_diffs < self.listed_items;
        let pseudo = if seen_equal {
            None
        } else {
            match self.fingerprints.keys().next() {
                Some(&smallest) => Some(smallest),
                None if self.listed_items > 0 => return 0.5,
                None => return PRIOR_DENSITY,
            }
        };
        let log_likelihood = |d: f64| {
            let ln_same = (-d).ln_1p();
            let mut l = 0.0;
            for (&items, &(eq, ne)) in &self.fingerprints {
                let n = items as f64;
                l += eq as f64 * n * ln_same;
                if ne > 0 {
                    l += ne as f64 * (-(n * ln_same).exp_m1()).ln();
                }
            }
            if let Some(items) = pseudo {
                l += items as f64 * ln_same;
            }
            let (s, x) = (self.listed_items as f64, self.listed_diffs as f64);
            if x > 0.0 {
                l += x * d.ln();
            }
            l + (s - x) * ln_same
        };
        let mut best = (f64::NEG_INFINITY, PRIOR_DENSITY);
        let mut d = 1e-7;
        while d <= 0.5 {
            let l = log_likelihood(d);
            if l > best.0 {
                best = (l, d);
            }
            d *= 1.25;
        }
        best.1
    }
}

/// `items` to its three most significant bits (1, 2, 3, …, 7, 8, 10, 12, 14, 16, 20, …): the
/// estimate stays as good, and its work bounded (four classes per power of two, at most 251,
/// whatever a responder answers).
fn size_class(items: usize) -> usize {
    let bits = usize::BITS - items.leading_zeros();
    if bits <= 3 {
        return items;
    }
    let shift = bits - 3;
    (items >> shift) << shift
}

/// How to cut ranges at a density of differences.
#[derive(Debug)]
struct Plan {
    density: f64,
    /// The size of range to be listed that costs least per item, and what one costs.
    leaf: usize,
    leaf_cost: f64,
}

impl Plan {
    fn new(density: f64) -> Plan {
        let mut plan = Plan {
            density,
            leaf: LISTED_BELOW - 1,
            leaf_cost: f64::INFINITY,
        };
        let mut best = f64::INFINITY;
        for c in 1..LISTED_BELOW {
            let cost =
                RANGE_BYTES + plan.differs(c as f64) * (ID_SIZE as f64 * c as f64 + LIST_BYTES);
            if cost / c as f64 <= best {
                best = cost / c as f64;
                (plan.leaf, plan.leaf_cost) = (c, cost);
            }
        }
        plan
    }

    /// The chance that a range of `items` holds a difference.
    fn differs(&self, items: f64) -> f64 {
        -(items * (-self.density).ln_1p()).exp_m1()
    }

    /// Into how many pieces to cut a range of `n` of our items: 16 while a split is expected
    /// to settle most of it by fingerprints, else pieces of the leaf size.
    fn pieces(&self, n: usize) -> usize {
        if n == 0 {
            return 1;
        }
        let leaves = n.div_ceil(self.leaf);
        if n >= LISTED_BELOW * BRANCHES {
            let b = BRANCHES as f64;
            let child = n as f64 / b;
            let grandchild = child / b;
            let tree = b
                * (RANGE_BYTES
                    + self.differs(child)
                        * (b * RANGE_BYTES
                            + b * self.differs(grandchild)
                                * (grandchild / self.leaf as f64)
                                * self.leaf_cost));
            if tree < leaves as f64 * self.leaf_cost {
                return BRANCHES;
            }
        }
        leaves
    }

    /// Expected bytes of the answer to one piece of `items` of ours (an id list asked for is
    /// not counted: what it brings is needed anyway, and it costs nothing to ask).
    fn expected_answer(&self, items: usize, list: bool) -> f64 {
        if list {
            0.0
        } else if items < LISTED_BELOW {
            self.differs(items as f64) * (ID_SIZE as f64 * items as f64 + LIST_BYTES)
        } else {
            self.differs(items as f64) * BRANCHES as f64 * RANGE_BYTES
        }
    }
}

/// Writes a negentropy message (timestamps of bounds are deltas within the message).
#[derive(Debug)]
struct Writer {
    out: Vec<u8>,
    last: u64,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            out: vec![PROTOCOL_VERSION as u8],
            last: 0,
        }
    }

    fn varint(&mut self, mut n: u64) {
        let mut tmp = [0u8; 10];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = (n & 0x7f) as u8 | if i == tmp.len() - 1 { 0 } else { 0x80 };
            n >>= 7;
            if n == 0 {
                break;
            }
        }
        self.out.extend_from_slice(&tmp[i..]);
    }

    fn bound(&mut self, b: &Bound) {
        let t = b.item.timestamp;
        if t == u64::MAX {
            self.varint(0);
            self.last = u64::MAX;
        } else {
            self.varint(t.saturating_sub(self.last).saturating_add(1));
            self.last = t;
        }
        let len = b.id_len.min(ID_SIZE);
        self.varint(len as u64);
        self.out.extend_from_slice(&b.item.id[..len]);
    }
}

/// Reads a negentropy message, strictly: a truncated or overlong field is an error.
struct Reader<'a> {
    buf: &'a [u8],
    last: u64,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, last: 0 }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn byte(&mut self) -> Result<u8, SyncError> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| malformed("the answer ends in the middle of a field"))?;
        self.buf = rest;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SyncError> {
        if self.buf.len() < N {
            return Err(malformed("the answer ends in the middle of a field"));
        }
        let (head, rest) = self.buf.split_at(N);
        self.buf = rest;
        let mut a = [0u8; N];
        a.copy_from_slice(head);
        Ok(a)
    }

    fn varint(&mut self) -> Result<u64, SyncError> {
        let mut n: u64 = 0;
        for _ in 0..10 {
            let b = self.byte()?;
            if n >> 57 != 0 {
                return Err(malformed("a varint over 64 bits"));
            }
            n = (n << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(malformed("a varint over 64 bits"))
    }

    fn bound(&mut self) -> Result<Bound, SyncError> {
        let t = match self.varint()? {
            0 => u64::MAX,
            v => (v - 1).saturating_add(self.last),
        };
        self.last = t;
        let len = self.varint()?;
        if len > ID_SIZE as u64 {
            return Err(malformed(format!("a bound with a {len}-byte id prefix")));
        }
        let len = len as usize;
        if self.buf.len() < len {
            return Err(malformed("the answer ends in the middle of a bound"));
        }
        let (prefix, rest) = self.buf.split_at(len);
        self.buf = rest;
        Bound::with_timestamp_and_id(t, prefix).map_err(|e| malformed(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varints_roundtrip_and_overlong_ones_are_refused() {
        for n in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut w = Writer::new();
            w.varint(n);
            let mut r = Reader::new(&w.out[1..]);
            assert_eq!(r.varint().ok(), Some(n));
            assert!(r.is_empty());
        }
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
    }

    #[test]
    fn the_density_estimate_follows_what_was_seen() {
        assert_eq!(Density::default().estimate(), PRIOR_DENSITY);
        // Ranges of 100 items, one in ten differing: ~0.1 % of items.
        let mut d = Density::default();
        for i in 0..100 {
            d.fingerprint(100, i % 10 != 0);
        }
        let e = d.estimate();
        assert!((0.0005..0.002).contains(&e), "{e}");
        // Every range of 400 differed: dense, but not "everything".
        let mut d = Density::default();
        for _ in 0..256 {
            d.fingerprint(400, false);
        }
        let e = d.estimate();
        assert!((0.005..0.05).contains(&e), "{e}");
        // Listed ranges say it directly.
        d.listed(10_000, 1_000);
        let e = d.estimate();
        assert!((0.07..0.14).contains(&e), "{e}");
    }

    #[test]
    fn an_answer_cutting_what_was_asked_into_ever_more_pieces_leaves_a_bounded_set() {
        let items: Vec<negentropy::Item> = (0..1000u64)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&i.to_le_bytes());
                negentropy::Item::with_timestamp_and_id(1_000_000 + i, Id::from_byte_array(id))
            })
            .collect();
        let (mut s, _) = Initiator::start(Arc::new(Snapshot::from_items(items))).unwrap();
        // 100,000 differing fingerprints, each of one millisecond of what was asked.
        let mut w = Writer::new();
        for t in 1..=100_000u64 {
            w.bound(&Bound::with_timestamp(t));
            w.varint(FINGERPRINT);
            w.out.extend_from_slice(&[0xee; FINGERPRINT_SIZE]);
        }
        s.read_answer(&w.out).unwrap();
        assert!(s.pending() <= MAX_PENDING, "{}", s.pending());
        assert!(s.todo.windows(2).all(|p| p[0].hi <= p[1].lo));
        assert_eq!(s.todo.first().map(|r| r.lo), Some(Bound::new()));
        assert_eq!(
            s.todo.last().map(|r| r.hi),
            Some(Bound::with_timestamp(100_000))
        );
    }

    /// A hostile responder that keeps one range open with a false fingerprint and lists
    /// nothing for the whole id space, every round: only what was asked is compared, so what
    /// we hold is counted once, not once a round (it grew by all our ids each round, ~3 GB over
    /// a session at 200,000 objects).
    #[test]
    fn a_list_over_more_than_was_asked_adds_nothing_twice() {
        let n = 10_000u64;
        let items: Vec<negentropy::Item> = (0..n)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&i.to_be_bytes());
                negentropy::Item::with_timestamp_and_id(1_000 + i, Id::from_byte_array(id))
            })
            .collect();
        let (mut s, _) = Initiator::start(Arc::new(Snapshot::from_items(items))).unwrap();
        let mut answer = Writer::new();
        answer.bound(&Bound::with_timestamp(1_001));
        answer.varint(FINGERPRINT);
        answer.out.extend_from_slice(&[0xee; FINGERPRINT_SIZE]);
        answer.bound(&Bound::with_timestamp(u64::MAX));
        answer.varint(ID_LIST);
        answer.varint(0);
        let mut rounds = 0;
        while rounds < MAX_ROUNDS - 1 {
            match s.on_message(&answer.out) {
                Ok(Outcome::Send(_)) => rounds += 1,
                Ok(Outcome::Done { have, .. }) => {
                    assert!(have.len() as u64 <= n);
                    break;
                }
                Err(_) => break,
            }
            assert!(
                s.have.len() as u64 <= n,
                "round {rounds}: {} ids held",
                s.have.len()
            );
        }
    }

    #[test]
    fn size_classes_keep_three_significant_bits() {
        let classes: Vec<usize> = [1, 2, 7, 8, 9, 10, 11, 23, 24, 390, 6250, usize::MAX]
            .into_iter()
            .map(size_class)
            .collect();
        assert_eq!(classes[..10], [1, 2, 7, 8, 8, 10, 10, 20, 24, 384]);
        assert_eq!(classes[10], 6144);
        assert_eq!(classes[11], 7 << (usize::BITS - 3));
        // A hostile answer of every size leaves at most four classes per power of two.
        let mut d = Density::default();
        for n in 1..100_000 {
            d.fingerprint(n, n % 2 == 0);
        }
        assert!(d.fingerprints.len() <= 4 * 17, "{}", d.fingerprints.len());
    }

    #[test]
    fn sparse_differences_split_in_sixteen_dense_ones_in_small_pieces() {
        let sparse = Plan::new(1e-5);
        assert_eq!(sparse.pieces(100_000), BRANCHES);
        assert_eq!(sparse.pieces(0), 1);
        let dense = Plan::new(0.1);
        assert!(dense.leaf <= 4, "{dense:?}");
        assert_eq!(dense.pieces(390), 390usize.div_ceil(dense.leaf));
    }
}
