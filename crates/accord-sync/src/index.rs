//! The sorted item set and its prefix sums.

use std::sync::Arc;

use accord_core::{ObjectId, Timestamp};
use negentropy::{Bound, Error, Id, Item, NegentropyStorageBase};

/// An immutable sorted set of `(created, id)` items.
#[derive(Debug, Default)]
pub struct Snapshot {
    items: Vec<Item>,
}

impl Snapshot {
    /// Builds a snapshot from items in any order (duplicates collapse).
    pub fn from_items(mut items: Vec<Item>) -> Snapshot {
        items.sort_unstable();
        items.dedup();
        Snapshot { items }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the snapshot holds `(created, id)`.
    pub fn contains(&self, created: Timestamp, id: &ObjectId) -> bool {
        self.items.binary_search(&item(created, id)).is_ok()
    }

    /// The number of items created before `watermark` (O(log n)).
    pub fn count_before(&self, watermark: Timestamp) -> u64 {
        self.items.partition_point(|it| it.timestamp < watermark.0) as u64
    }

    /// The checkpoint of every item created before `watermark` (docs/PROTOCOL.md §11): what
    /// a heartbeat says about the set, comparable between nodes. O(n) in the items below it.
    pub fn checkpoint(&self, watermark: Timestamp) -> accord_core::health::Checkpoint {
        let end = self.items.partition_point(|it| it.timestamp < watermark.0);
        let mut h = accord_core::health::checkpoint_hasher();
        for it in &self.items[..end] {
            h.add(it.timestamp, it.id.as_bytes());
        }
        h.finish(watermark)
    }

    /// The checkpoint of every item created before `watermark` counting `extra` too, merged
    /// in order (an item in both counts once): what this node's set would claim if it held
    /// the objects it received and refused (docs/PROTOCOL.md §11). O(n) in the items below it.
    pub fn checkpoint_with(
        &self,
        watermark: Timestamp,
        extra: &[(Timestamp, ObjectId)],
    ) -> accord_core::health::Checkpoint {
        let mut extra: Vec<Item> = extra
            .iter()
            .filter(|(t, _)| t.0 < watermark.0)
            .map(|(t, id)| item(*t, id))
            .collect();
        extra.sort_unstable();
        extra.dedup();
        let end = self.items.partition_point(|it| it.timestamp < watermark.0);
        let mut h = accord_core::health::checkpoint_hasher();
        let mut rest = extra.iter().peekable();
        for it in &self.items[..end] {
            while let Some(x) = rest.next_if(|x| *x <= it) {
                if x != it {
                    h.add(x.timestamp, x.id.as_bytes());
                }
            }
            h.add(it.timestamp, it.id.as_bytes());
        }
        for x in rest {
            h.add(x.timestamp, x.id.as_bytes());
        }
        h.finish(watermark)
    }

    fn merged(&self, mut extra: Vec<Item>) -> Snapshot {
        extra.sort_unstable();
        let mut out = Vec::with_capacity(self.items.len() + extra.len());
        let (mut i, mut j) = (0, 0);
        while i < self.items.len() || j < extra.len() {
            let take_old = j >= extra.len() || (i < self.items.len() && self.items[i] <= extra[j]);
            let next = if take_old {
                i += 1;
                self.items[i - 1]
            } else {
                j += 1;
                extra[j - 1]
            };
            if out.last() != Some(&next) {
                out.push(next);
            }
        }
        Snapshot { items: out }
    }
}

pub(crate) fn item(created: Timestamp, id: &ObjectId) -> Item {
    Item::with_timestamp_and_id(created.0, Id::from_byte_array(*id.as_bytes()))
}

/// Storage for the negentropy state machine: a shared snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Shared(pub Arc<Snapshot>);

impl NegentropyStorageBase for Shared {
    fn size(&self) -> Result<usize, Error> {
        Ok(self.0.items.len())
    }

    fn get_item(&self, i: usize) -> Result<Option<Item>, Error> {
        Ok(self.0.items.get(i).copied())
    }

    fn iterate(
        &self,
        begin: usize,
        end: usize,
        cb: &mut dyn FnMut(Item, usize) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        if begin > end || end > self.0.items.len() {
            return Err(Error::BadRange);
        }
        for i in begin..end {
            if !cb(self.0.items[i], i)? {
                break;
            }
        }
        Ok(())
    }

    fn find_lower_bound(&self, first: usize, last: usize, value: &Bound) -> usize {
        let last = last.min(self.0.items.len());
        let first = first.min(last);
        first + self.0.items[first..last].partition_point(|it| *it < value.item)
    }
}

/// The node's current item set: a snapshot plus the items added since, merged on demand.
#[derive(Debug, Default)]
pub struct SyncIndex {
    snapshot: Arc<Snapshot>,
    added: Vec<Item>,
}

impl SyncIndex {
    pub fn new(items: impl IntoIterator<Item = (Timestamp, ObjectId)>) -> SyncIndex {
        let items = items.into_iter().map(|(t, id)| item(t, &id)).collect();
        SyncIndex {
            snapshot: Arc::new(Snapshot::from_items(items)),
            added: Vec::new(),
        }
    }

    /// Records a newly stored object.
    pub fn insert(&mut self, created: Timestamp, id: ObjectId) {
        self.added.push(item(created, &id));
    }

    /// The current snapshot (merging what was added since the last call: O(n)).
    pub fn snapshot(&mut self) -> Arc<Snapshot> {
        if !self.added.is_empty() {
            let extra = std::mem::take(&mut self.added);
            self.snapshot = Arc::new(self.snapshot.merged(extra));
        }
        self.snapshot.clone()
    }

    pub fn len(&self) -> usize {
        self.snapshot.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> ObjectId {
        ObjectId::of_body(&n.to_le_bytes())
    }

    #[test]
    fn merge_keeps_order_and_collapses_duplicates() {
        let mut idx = SyncIndex::new((0..50u64).map(|n| (Timestamp(n * 2), id(n))));
        idx.insert(Timestamp(3), id(1000));
        idx.insert(Timestamp(0), id(0)); // duplicate
        idx.insert(Timestamp(1000), id(1001));
        let s = idx.snapshot();
        assert_eq!(s.len(), 52);
        assert!(s.items.windows(2).all(|w| w[0] < w[1]));
        assert!(s.contains(Timestamp(3), &id(1000)));
        assert_eq!(Snapshot::from_items(s.items.clone()).items, s.items);
    }
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;

    #[test]
    fn a_checkpoint_covers_exactly_the_items_before_its_watermark() {
        let id = |n: u8| ObjectId([n; 32]);
        let a = Snapshot::from_items(vec![
            item(Timestamp(10), &id(1)),
            item(Timestamp(20), &id(2)),
            item(Timestamp(30), &id(3)),
        ]);
        // The same items below 30 in another order, and another one above it.
        let b = Snapshot::from_items(vec![
            item(Timestamp(40), &id(4)),
            item(Timestamp(20), &id(2)),
            item(Timestamp(10), &id(1)),
        ]);
        assert_eq!(a.checkpoint(Timestamp(30)), b.checkpoint(Timestamp(30)));
        assert_eq!(a.checkpoint(Timestamp(30)).count, 2);
        assert_eq!(a.count_before(Timestamp(30)), 2);
        assert_eq!(b.count_before(Timestamp(41)), 3);
        assert_ne!(a.checkpoint(Timestamp(31)), b.checkpoint(Timestamp(31)));
        assert_eq!(a.checkpoint(Timestamp(0)).count, 0);
    }
    /// A set plus the objects it refused reads as the set that holds them: merged in order
    /// wherever they fall, one held already counted once, one past the watermark left out.
    #[test]
    fn a_checkpoint_with_refused_objects_is_the_checkpoint_of_the_set_holding_them() {
        let id = |n: u8| ObjectId([n; 32]);
        let all: Vec<(Timestamp, ObjectId)> = (1..=6u8)
            .map(|n| (Timestamp(u64::from(n) * 10), id(n)))
            .collect();
        let whole = Snapshot::from_items(all.iter().map(|(t, i)| item(*t, i)).collect());
        let held = Snapshot::from_items(
            [1usize, 3, 4]
                .iter()
                .map(|&k| item(all[k].0, &all[k].1))
                .collect(),
        );
        // Refused: the first (before every held item), the third (between) and the last
        // (after), one already held, and one past the watermark.
        let refused = [all[0], all[2], all[5], all[3], (Timestamp(90), id(9))];
        for w in [Timestamp(61), Timestamp(35), Timestamp(0)] {
            assert_eq!(
                held.checkpoint_with(w, &refused),
                whole.checkpoint(w),
                "{w}"
            );
        }
        assert_eq!(
            held.checkpoint_with(Timestamp(61), &[]),
            held.checkpoint(Timestamp(61))
        );
        assert_ne!(
            held.checkpoint_with(Timestamp(61), &refused[..2]),
            whole.checkpoint(Timestamp(61))
        );
    }
}
