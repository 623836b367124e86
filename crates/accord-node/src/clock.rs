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
/// Nodes that must have been heard within the window for an offset to be given (one node may
/// be wrong, or lie).
pub const CLOCK_MIN_NODES: usize = 2;
/// An offset from which the node warns: NTP keeps clocks within milliseconds, so a minute is a
/// clock that is not synchronised; from the charter's `max_future_skew_ms` (10 minutes by
/// default) on, records and heartbeats are refused.
pub const CLOCK_WARN_MS: u64 = 60 * 1000;
/// At most one warning in the log per this long.
const WARN_EVERY_MS: u64 = 10 * 60 * 1000;

/// This node's clock against its peers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockOffset {
    /// The median of the other nodes' clocks minus this node's, in milliseconds: positive when
    /// this node's clock is behind theirs.
    pub offset_ms: i64,
    /// The nodes heard within the last 15 minutes it is the median of.
    pub nodes: usize,
}

impl ClockOffset {
    /// Whether the offset is large enough to warn about.
    pub fn is_off(&self) -> bool {
        self.offset_ms.unsigned_abs() >= CLOCK_WARN_MS
    }
}

/// The last heartbeat time of each node heard, against this node's clock.
#[derive(Debug, Default)]
pub(crate) struct ClockBook {
    /// Per node key: `issued − now` at receipt, and `now`.
    heard: BTreeMap<PublicKey, (i64, Timestamp)>,
    warned_at: Option<Timestamp>,
}

impl ClockBook {
    /// A heartbeat of `node` issued at `issued`, received at `now` (its signature and
    /// certificate checked; its time not yet judged).
    pub(crate) fn heard(&mut self, node: PublicKey, issued: Timestamp, now: Timestamp) {
        if !self.heard.contains_key(&node)
            && self.heard.len() >= CLOCK_NODES
            && let Some(oldest) = self
                .heard
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k)
        {
            self.heard.remove(&oldest);
        }
        let ahead = i64::try_from(issued.0)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(now.0).unwrap_or(i64::MAX));
        self.heard.insert(node, (ahead, now));
    }

    /// The offset, from at least [`CLOCK_MIN_NODES`] nodes heard within [`CLOCK_WINDOW_MS`].
    pub(crate) fn offset(&self, now: Timestamp) -> Option<ClockOffset> {
        let mut ahead: Vec<i64> = self
            .heard
            .values()
            .filter(|(_, at)| at.0.saturating_add(CLOCK_WINDOW_MS) >= now.0)
            .map(|(a, _)| *a)
            .collect();
        if ahead.len() < CLOCK_MIN_NODES {
            return None;
        }
        ahead.sort_unstable();
        let n = ahead.len();
        let median = if n % 2 == 1 {
            ahead[n / 2]
        } else {
            // The mean of the middle two, without overflow.
            let (a, b) = (ahead[n / 2 - 1], ahead[n / 2]);
            a / 2 + b / 2 + (a % 2 + b % 2) / 2
        };
        Some(ClockOffset {
            offset_ms: median,
            nodes: n,
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
    fn the_offset_is_the_median_of_recent_nodes_and_one_liar_does_not_move_it() {
        let mut c = ClockBook::default();
        let t = Timestamp(1_000_000_000);
        c.heard(key(1), Timestamp(t.0 + 3_600_000), t);
        assert_eq!(c.offset(t), None, "one node is not enough");
        c.heard(key(2), Timestamp(t.0 + 3_600_400), t);
        assert_eq!(
            c.offset(t),
            Some(ClockOffset {
                offset_ms: 3_600_200,
                nodes: 2
            })
        );
        // A third node, lying by a day, leaves the median with the two that agree.
        c.heard(key(3), Timestamp(t.0 + 86_400_000), t);
        assert_eq!(c.offset(t).map(|o| o.offset_ms), Some(3_600_400));
        // Behind: negative.
        let mut d = ClockBook::default();
        for n in 1..=3 {
            d.heard(key(n), Timestamp(t.0 - 120_000), t);
        }
        assert_eq!(d.offset(t).map(|o| o.offset_ms), Some(-120_000));
        // A node heard again counts once, with its latest heartbeat.
        d.heard(key(1), t, t);
        assert_eq!(d.offset(t).map(|o| o.nodes), Some(3));
        // Heartbeats older than the window no longer count.
        let later = Timestamp(t.0 + CLOCK_WINDOW_MS + 1);
        assert_eq!(d.offset(later), None);
    }

    #[test]
    fn a_wrong_clock_is_warned_about_once_in_ten_minutes_and_a_right_one_never() {
        let mut c = ClockBook::default();
        let t = Timestamp(1_000_000_000);
        c.heard(key(1), Timestamp(t.0 + 30_000), t);
        c.heard(key(2), Timestamp(t.0 + 40_000), t);
        assert_eq!(c.warning_due(t), None, "35 s is within a minute");
        c.heard(key(1), Timestamp(t.0 + 600_000), t);
        c.heard(key(2), Timestamp(t.0 + 600_000), t);
        assert!(c.warning_due(t).is_some_and(|o| o.is_off()));
        assert_eq!(c.warning_due(Timestamp(t.0 + 60_000)), None);
        let t2 = Timestamp(t.0 + WARN_EVERY_MS);
        c.heard(key(1), Timestamp(t2.0 + 600_000), t2);
        c.heard(key(2), Timestamp(t2.0 + 600_000), t2);
        assert!(c.warning_due(t2).is_some());
    }

    #[test]
    fn the_book_keeps_the_most_recently_heard_nodes() {
        let mut c = ClockBook::default();
        for n in 0..(CLOCK_NODES + 10) {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
            let k = accord_core::SecretKey::from_seed(seed).public_key();
            let at = Timestamp(1_000_000 + n as u64);
            c.heard(k, at, at);
        }
        assert_eq!(c.heard.len(), CLOCK_NODES);
        assert!(c.heard.values().all(|(_, at)| at.0 >= 1_000_010));
    }
}
