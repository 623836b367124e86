//! What peers' heartbeats show of this node's own clock. Every node signs the time it issues
//! a heartbeat; a heartbeat arrives within moments, so `issued − now` at its receipt is how far
//! its sender's clock is ahead of this node's. One node may be wrong or lie; the median over
//! the other nodes heard lately is this node's offset from the federation. A node whose clock
//! is off by more than the charter's skew refuses every fresh record and every heartbeat "from
//! the future" (or "stale"), shows every other member's node down and is shown down by them —
//! and before this, nothing said it was its own clock.

use std::collections::BTreeMap;

use accord_core::{PublicKey, Timestamp};
use serde::Serialize;

/// Heartbeats older than this no longer count towards the offset.
pub const CLOCK_WINDOW_MS: u64 = 15 * 60 * 1000;
/// Nodes whose last heartbeat is kept (the oldest gives way).
pub const CLOCK_NODES: usize = 256;
/// Members whose nodes must have been heard within the window for an offset to be given (one
/// member's nodes may be wrong, or lie).
pub const CLOCK_MIN_MEMBERS: usize = 2;
/// An offset from which the node warns: NTP keeps clocks within milliseconds, so a minute is a
/// clock that is not synchronised; from the charter's `max_future_skew_ms` (10 minutes by
/// default) on, records and heartbeats are refused.
pub const CLOCK_WARN_MS: u64 = 60 * 1000;
/// At most one warning in the log per this long.
const WARN_EVERY_MS: u64 = 10 * 60 * 1000;

/// This node's clock against its peers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockOffset {
    /// Other nodes' clocks minus this node's, in milliseconds (positive when this node's clock
    /// is behind theirs): the median over the members heard of each member's median over its
    /// nodes, so that a member counts once however many nodes it certifies.
    pub offset_ms: i64,
    /// The nodes heard within the last 15 minutes.
    pub nodes: usize,
    /// The members they belong to.
    pub members: usize,
}

impl ClockOffset {
    /// Whether the offset is large enough to warn about.
    pub fn is_off(&self) -> bool {
        self.offset_ms.unsigned_abs() >= CLOCK_WARN_MS
    }
}

/// What one node's latest heartbeat showed.
#[derive(Debug, Clone)]
struct Heard {
    member: String,
    issued: Timestamp,
    /// `issued − now` at receipt.
    ahead: i64,
    at: Timestamp,
}

/// The latest heartbeat time of each node heard, against this node's clock.
#[derive(Debug, Default)]
pub(crate) struct ClockBook {
    heard: BTreeMap<PublicKey, Heard>,
    warned_at: Option<Timestamp>,
}

/// The median of a non-empty list (the mean of the middle two for an even count).
fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        let (a, b) = (v[n / 2 - 1], v[n / 2]);
        a / 2 + b / 2 + (a % 2 + b % 2) / 2
    }
}

impl ClockBook {
    /// A heartbeat of `node` of `member` issued at `issued`, received at `now` (its signature
    /// and certificate checked; its time not yet judged). One no newer than the node's latest
    /// heard is not taken: a replay of an old heartbeat (anyone may send one again once gossip
    /// forgot it) would otherwise pass for that node's clock being behind.
    pub(crate) fn heard(
        &mut self,
        node: PublicKey,
        member: &str,
        issued: Timestamp,
        now: Timestamp,
    ) {
        // While the last one heard still counts: a node whose fast clock was put right is
        // heard again once its last wrong heartbeat has left the window.
        if self
            .heard
            .get(&node)
            .is_some_and(|h| h.issued >= issued && h.at.0.saturating_add(CLOCK_WINDOW_MS) >= now.0)
        {
            return;
        }
        if !self.heard.contains_key(&node) && self.heard.len() >= CLOCK_NODES {
            // The member holding the most nodes gives up its longest silent one: one member
            // certifying many keys fills the book no further than its share.
            let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
            for h in self.heard.values() {
                *per_member.entry(h.member.as_str()).or_default() += 1;
            }
            let most = per_member
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(m, _)| m.to_string());
            let oldest = self
                .heard
                .iter()
                .filter(|(_, h)| Some(&h.member) == most.as_ref())
                .min_by_key(|(_, h)| h.at)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.heard.remove(&k);
            }
        }
        let ahead = i64::try_from(issued.0)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(now.0).unwrap_or(i64::MAX));
        self.heard.insert(
            node,
            Heard {
                member: member.to_string(),
                issued,
                ahead,
                at: now,
            },
        );
    }

    /// The offset, from the nodes of at least [`CLOCK_MIN_MEMBERS`] members heard within
    /// [`CLOCK_WINDOW_MS`].
    pub(crate) fn offset(&self, now: Timestamp) -> Option<ClockOffset> {
        let mut by_member: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut nodes = 0;
        for h in self
            .heard
            .values()
            .filter(|h| h.at.0.saturating_add(CLOCK_WINDOW_MS) >= now.0)
        {
            by_member
                .entry(h.member.as_str())
                .or_default()
                .push(h.ahead);
            nodes += 1;
        }
        let members = by_member.len();
        if members < CLOCK_MIN_MEMBERS {
            return None;
        }
        let offset_ms = median(by_member.into_values().map(median).collect());
        Some(ClockOffset {
            offset_ms,
            nodes,
            members,
        })
    }

    /// The offset when it is off and no warning was given within the last 10 minutes.
    pub(crate) fn warning_due(&mut self, now: Timestamp) -> Option<ClockOffset> {
        let o = self.offset(now).filter(ClockOffset::is_off)?;
        if self
            .warned_at
            .is_some_and(|t| t.0.saturating_add(WARN_EVERY_MS) > now.0)
        {
            return None;
        }
        self.warned_at = Some(now);
        Some(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        accord_core::SecretKey::from_seed([n; 32]).public_key()
    }

    #[test]
    fn the_offset_is_the_median_of_members_and_one_liar_does_not_move_it() {
        let mut c = ClockBook::default();
        let t = Timestamp(1_000_000_000);
        c.heard(key(1), "BY", Timestamp(t.0 + 3_600_000), t);
        c.heard(key(9), "BY", Timestamp(t.0 + 3_600_000), t);
        assert_eq!(c.offset(t), None, "one member's nodes are not enough");
        c.heard = BTreeMap::new();
        c.heard(key(1), "BY", Timestamp(t.0 + 3_600_000), t);
        c.heard(key(2), "AM", Timestamp(t.0 + 3_600_400), t);
        assert_eq!(
            c.offset(t),
            Some(ClockOffset {
                offset_ms: 3_600_200,
                nodes: 2,
                members: 2
            })
        );
        // A third member, lying by a day, leaves the median with the two that agree.
        c.heard(key(3), "KG", Timestamp(t.0 + 86_400_000), t);
        assert_eq!(c.offset(t).map(|o| o.offset_ms), Some(3_600_400));
        // Behind: negative.
        let mut d = ClockBook::default();
        for (n, m) in [(1, "BY"), (2, "AM"), (3, "KG")] {
            d.heard(key(n), m, Timestamp(t.0 - 120_000), t);
        }
        assert_eq!(d.offset(t).map(|o| o.offset_ms), Some(-120_000));
        // A node heard again counts once, with its latest heartbeat.
        d.heard(key(1), "BY", Timestamp(t.0 + 1), t);
        assert_eq!(d.offset(t).map(|o| o.nodes), Some(3));
        // Heartbeats older than the window no longer count.
        let later = Timestamp(t.0 + CLOCK_WINDOW_MS + 1);
        assert_eq!(d.offset(later), None);
    }

    /// A member certifying many nodes has one vote; a replayed old heartbeat is not taken for
    /// its node's clock.
    #[test]
    fn many_nodes_of_one_member_and_replays_do_not_move_the_offset() {
        let mut c = ClockBook::default();
        let t = Timestamp(1_000_000_000);
        c.heard(key(1), "BY", t, t);
        c.heard(key(2), "AM", Timestamp(t.0 + 10), t);
        for n in 10..60 {
            c.heard(key(n), "XX", Timestamp(t.0 + 86_400_000), t);
        }
        let o = c.offset(t).unwrap();
        assert_eq!((o.nodes, o.members), (52, 3));
        assert_eq!(o.offset_ms, 10, "the median of BY, AM and XX's one vote");
        // BY's heartbeat of an hour ago sent again: ignored.
        c.heard(key(1), "BY", Timestamp(t.0 - 3_600_000), t);
        assert_eq!(c.offset(t).unwrap().offset_ms, 10);
        // Once BY's last heartbeat has left the window, an earlier time is heard again (its
        // clock was put right).
        let later = Timestamp(t.0 + CLOCK_WINDOW_MS + 1);
        c.heard(key(1), "BY", Timestamp(t.0 - 1), later);
        assert_eq!(c.heard[&key(1)].at, later);
    }

    #[test]
    fn a_wrong_clock_is_warned_about_once_in_ten_minutes_and_a_right_one_never() {
        let mut c = ClockBook::default();
        let t = Timestamp(1_000_000_000);
        c.heard(key(1), "BY", Timestamp(t.0 + 30_000), t);
        c.heard(key(2), "AM", Timestamp(t.0 + 40_000), t);
        assert_eq!(c.warning_due(t), None, "35 s is within a minute");
        c.heard(key(1), "BY", Timestamp(t.0 + 600_000), t);
        c.heard(key(2), "AM", Timestamp(t.0 + 600_000), t);
        assert!(c.warning_due(t).is_some_and(|o| o.is_off()));
        assert_eq!(c.warning_due(Timestamp(t.0 + 60_000)), None);
        let t2 = Timestamp(t.0 + WARN_EVERY_MS);
        c.heard(key(1), "BY", Timestamp(t2.0 + 600_000), t2);
        c.heard(key(2), "AM", Timestamp(t2.0 + 600_000), t2);
        assert!(c.warning_due(t2).is_some());
    }

    /// When the book is full, the member holding the most nodes gives up its longest silent one.
    #[test]
    fn the_book_makes_room_from_the_member_holding_the_most() {
        let mut c = ClockBook::default();
        let honest = key(1);
        c.heard(honest, "BY", Timestamp(1), Timestamp(1));
        for n in 0..(CLOCK_NODES + 10) {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
            let k = accord_core::SecretKey::from_seed(seed).public_key();
            let at = Timestamp(1_000_000 + n as u64);
            c.heard(k, "XX", at, at);
        }
        assert_eq!(c.heard.len(), CLOCK_NODES);
        assert!(
            c.heard.contains_key(&honest),
            "the other member's node was pushed out"
        );
    }
}
