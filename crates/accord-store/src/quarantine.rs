//! Bookkeeping of the pending quarantine: where each waiting object came from (its source: a
//! peer, the local API, an import) and which member it claims, so that no single source or
//! member can own the quarantine, and when it arrived, so that entries expire.
//!
//! The objects themselves live in the `pending` tree; this index mirrors it in memory and is
//! rebuilt when the store opens.
//!
//! Admission of a new entry from source `s` claiming member `m`:
//! 1. `s` already holds its share (`per_source`): refused, the newcomer is told at once;
//! 2. `m` already holds its share (`per_member`): the oldest entry for `m` of the source that
//!    holds most of `m`'s entries makes room, if that source holds more than `s` does;
//! 3. the quarantine is full (`max`): the oldest entry of the source that holds most makes
//!    room, again only if it holds more than `s` does.
//!
//! So a flood from one source only ever displaces its own share, and an honest source that holds
//! less than the flooder always finds room.

use std::collections::{BTreeSet, HashMap};

use accord_core::ObjectId;

/// The source name of entries stored before sources were recorded.
pub const UNKNOWN_SOURCE: &str = "unknown";

/// The bounds of the quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineLimits {
    /// Objects in all.
    pub max: usize,
    /// Objects from one source.
    pub per_source: usize,
    /// Objects claiming one member.
    pub per_member: usize,
    /// How long an entry may wait, in milliseconds.
    pub ttl_ms: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub received: u64,
    /// The object's creation time (what reconciliation and checkpoints order it by).
    pub created: u64,
    pub source: String,
    pub member: Option<String>,
    pub wait: Vec<u8>,
}

type ByAge = BTreeSet<(u64, ObjectId)>;

#[derive(Debug, Clone)]
pub(crate) struct Quarantine {
    pub limits: QuarantineLimits,
    entries: HashMap<ObjectId, Entry>,
    by_source: HashMap<String, ByAge>,
    /// member → source → entries.
    by_member: HashMap<String, HashMap<String, ByAge>>,
}

/// The outcome of asking for room.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// Room is there; these entries (id, wait key) were evicted to make it.
    Made(Vec<(ObjectId, Vec<u8>)>),
    /// No room for this source.
    Refused,
}

impl Quarantine {
    pub fn new(limits: QuarantineLimits) -> Self {
        Quarantine {
            limits,
            entries: HashMap::new(),
            by_source: HashMap::new(),
            by_member: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn contains(&self, id: &ObjectId) -> bool {
        self.entries.contains_key(id)
    }

    pub fn get(&self, id: &ObjectId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// Adds (or replaces) an entry, without checking any bound.
    pub fn insert(&mut self, id: ObjectId, e: Entry) {
        self.remove(&id);
        let age = (e.received, id);
        self.by_source
            .entry(e.source.clone())
            .or_default()
            .insert(age);
        if let Some(m) = &e.member {
            self.by_member
                .entry(m.clone())
                .or_default()
                .entry(e.source.clone())
                .or_default()
                .insert(age);
        }
        self.entries.insert(id, e);
    }

    pub fn remove(&mut self, id: &ObjectId) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        let age = (e.received, *id);
        if let Some(set) = self.by_source.get_mut(&e.source) {
            set.remove(&age);
            if set.is_empty() {
                self.by_source.remove(&e.source);
            }
        }
        if let Some(m) = &e.member
            && let Some(sources) = self.by_member.get_mut(m)
        {
            if let Some(set) = sources.get_mut(&e.source) {
                set.remove(&age);
                if set.is_empty() {
                    sources.remove(&e.source);
                }
            }
            if sources.is_empty() {
                self.by_member.remove(m);
            }
        }
        Some(e)
    }

    fn count_source(&self, source: &str) -> usize {
        self.by_source.get(source).map_or(0, BTreeSet::len)
    }

    fn count_member(&self, member: &str) -> usize {
        self.by_member
            .get(member)
            .map_or(0, |s| s.values().map(BTreeSet::len).sum())
    }

    /// The oldest entry of the source holding most in `groups`, if it holds more than `than`.
    fn victim(groups: &HashMap<String, ByAge>, than: usize) -> Option<ObjectId> {
        let (_, set) = groups
            .iter()
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.0.cmp(a.0)))?;
        if set.len() <= than {
            return None;
        }
        set.first().map(|(_, id)| *id)
    }

    /// Makes room for one new entry from `source` claiming `member` (see the module doc).
    pub fn make_room(&mut self, source: &str, member: Option<&str>) -> Room {
        let mine = self.count_source(source);
        if mine >= self.limits.per_source || self.limits.max == 0 {
            return Room::Refused;
        }
        if let Some(m) = member
            && self.count_member(m) >= self.limits.per_member
        {
            let mine_for_m = self
                .by_member
                .get(m)
                .and_then(|s| s.get(source))
                .map_or(0, BTreeSet::len);
            let victim = self
                .by_member
                .get(m)
                .and_then(|groups| Self::victim(groups, mine_for_m));
            // One out, one in: the total does not grow either.
            return match victim.and_then(|id| self.remove(&id).map(|e| (id, e.wait))) {
                Some(v) => Room::Made(vec![v]),
                None => Room::Refused,
            };
        }
        if self.entries.len() >= self.limits.max {
            let victim = Self::victim(&self.by_source, mine);
            return match victim.and_then(|id| self.remove(&id).map(|e| (id, e.wait))) {
                Some(v) => Room::Made(vec![v]),
                None => Room::Refused,
            };
        }
        Room::Made(vec![])
    }

    /// Entries that arrived more than the time-to-live before `now`.
    pub fn expired(&self, now: u64) -> Vec<(ObjectId, Vec<u8>)> {
        let cutoff = now.saturating_sub(self.limits.ttl_ms);
        self.entries
            .iter()
            .filter(|(_, e)| e.received < cutoff)
            .map(|(id, e)| (*id, e.wait.clone()))
            .collect()
    }

    /// Entries per source, largest first (for status and metrics).
    pub fn sources(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .by_source
            .iter()
            .map(|(s, set)| (s.clone(), set.len()))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId([n; 32])
    }

    fn q(max: usize, per_source: usize, per_member: usize) -> Quarantine {
        Quarantine::new(QuarantineLimits {
            max,
            per_source,
            per_member,
            ttl_ms: 1_000,
        })
    }

    fn add(q: &mut Quarantine, n: u8, source: &str, member: &str) -> Room {
        let r = q.make_room(source, Some(member));
        if let Room::Made(_) = r {
            q.insert(
                id(n),
                Entry {
                    received: u64::from(n),
                    created: 0,
                    source: source.into(),
                    member: Some(member.into()),
                    wait: vec![n],
                },
            );
        }
        r
    }

    #[test]
    fn a_source_at_its_share_is_refused_and_displaces_nobody() {
        let mut q = q(10, 3, 10);
        for n in 0..3 {
            assert_eq!(add(&mut q, n, "evil", "KZ"), Room::Made(vec![]));
        }
        assert_eq!(add(&mut q, 3, "evil", "KZ"), Room::Refused);
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn when_full_the_heaviest_source_makes_room_for_a_lighter_one() {
        let mut q = q(4, 4, 10);
        for n in 0..4 {
            add(&mut q, n, "evil", "KZ");
        }
        // The honest source holds nothing: the flooder's oldest goes.
        assert_eq!(
            add(&mut q, 10, "honest", "BY"),
            Room::Made(vec![(id(0), vec![0])])
        );
        // The flooder cannot take the room back: it is full and it is the heaviest.
        assert_eq!(add(&mut q, 4, "evil", "KZ"), Room::Refused);
        assert!(q.contains(&id(10)));
        assert_eq!(q.sources(), vec![("evil".into(), 3), ("honest".into(), 1)]);
    }

    #[test]
    fn a_member_at_its_share_makes_room_from_its_heaviest_source() {
        let mut q = q(100, 100, 3);
        for n in 0..3 {
            add(&mut q, n, "evil", "KZ");
        }
        // Another source claiming the same member displaces the flooder's oldest.
        assert_eq!(
            add(&mut q, 10, "honest", "KZ"),
            Room::Made(vec![(id(0), vec![0])])
        );
        // Other members are not affected at all.
        assert_eq!(add(&mut q, 20, "evil", "BY"), Room::Made(vec![]));
        // The flooder itself is refused for KZ now.
        assert_eq!(add(&mut q, 5, "evil", "KZ"), Room::Refused);
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let mut q = q(10, 10, 10);
        add(&mut q, 1, "a", "KZ");
        add(&mut q, 200, "a", "KZ");
        assert_eq!(q.expired(1_100), vec![(id(1), vec![1])]);
        q.remove(&id(1));
        assert_eq!(q.len(), 1);
        assert!(q.expired(1_100).is_empty());
    }
}
