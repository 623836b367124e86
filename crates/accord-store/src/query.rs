//! Index scans with filters, derived record status and stable cursor pagination.

use std::fmt;
use std::str::FromStr;

use accord_core::{MemberCode, Object, ObjectId, ObjectType, PublicKey, Timestamp};

use crate::error::StoreError;
use crate::keys::{split_suffix, time_id};
use crate::store::{Store, StoredObject};

/// The derived status of a record. Never stored: computed from retractions, supersessions
/// and the trust view whenever it is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordStatus {
    Active,
    Superseded,
    Retracted,
    SignerRevoked,
}

impl RecordStatus {
    pub const ALL: [RecordStatus; 4] = [
        RecordStatus::Active,
        RecordStatus::Superseded,
        RecordStatus::Retracted,
        RecordStatus::SignerRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Active => "active",
            RecordStatus::Superseded => "superseded",
            RecordStatus::Retracted => "retracted",
            RecordStatus::SignerRevoked => "signer-revoked",
        }
    }
}

impl fmt::Display for RecordStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?} (expected active, superseded, retracted or signer-revoked)"))
    }
}

/// Which objects a scan returns. Empty lists mean "any"; several values in one list mean OR,
/// different fields combine with AND.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub types: Vec<ObjectType>,
    pub members: Vec<MemberCode>,
    pub kinds: Vec<String>,
    pub directions: Vec<String>,
    pub authors: Vec<PublicKey>,
    /// Records only: derived status.
    pub statuses: Vec<RecordStatus>,
    /// Inclusive lower bound on `created`.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound on `created`.
    pub until: Option<Timestamp>,
}

/// Scan order by `(created, id)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A position in a scan: the `(created, id)` of the last item returned. Its text form is 80
/// hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created: Timestamp,
    pub id: ObjectId,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(time_id(self.created, &self.id)))
    }
}

impl FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("cursor {s:?} is not one this node issued");
        let bytes = hex::decode(s).map_err(|_| bad())?;
        if bytes.len() != 40 {
            return Err(bad());
        }
        let (created, id) = split_suffix(&bytes).ok_or_else(bad)?;
        Ok(Cursor { created, id })
    }
}

/// How many items and from where.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: usize,
    pub after: Option<Cursor>,
    pub order: Order,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 50,
            after: None,
            order: Order::NewestFirst,
        }
    }
}

/// One page of results.
#[derive(Debug)]
pub struct QueryPage {
    pub items: Vec<(StoredObject, Option<RecordStatus>)>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Retractions and superseding records of one record that [`Store::history`] returns, of
/// each.
pub const HISTORY_SHOWN: usize = 64;
/// Successors of a record judged for its status, each read: a member that made more editions
/// of one record than this has it superseded whatever their state.
pub const SUCCESSORS_JUDGED: usize = 16;

impl Store {
    /// The derived status of a stored record (`None` if `id` is not a stored record).
    pub fn record_status(&self, id: &ObjectId) -> Result<Option<RecordStatus>, StoreError> {
        let Some(stored) = self.get(id)? else {
            return Ok(None);
        };
        let Object::Record(_) = &stored.object else {
            return Ok(None);
        };
        self.status_of(id, &stored).map(Some)
    }

    /// Retractions and superseding records of a record: `(retraction ids, superseding ids)`.
    /// Only those of the record's own member count: validation admits no others, and any a
    /// store written before that rule still holds are left out here, where the derived status
    /// and the history shown to analysts both come from.
    ///
    /// At most [`HISTORY_SHOWN`] of each are returned (a member may publish any number).
    pub fn history(&self, id: &ObjectId) -> Result<(Vec<ObjectId>, Vec<ObjectId>), StoreError> {
        self.history_up_to(id, HISTORY_SHOWN)
    }

    /// [`Store::history`] with at most `most` of each.
    fn history_up_to(
        &self,
        id: &ObjectId,
        most: usize,
    ) -> Result<(Vec<ObjectId>, Vec<ObjectId>), StoreError> {
        let retracts = crate::store::RETRACTS_TREE;
        let supersedes = crate::store::SUPERSEDES_TREE;
        // Most records have neither: then the owner need not be looked up.
        if self.trees[retracts]
            .scan_prefix(id.as_bytes())
            .next()
            .is_none()
            && self.trees[supersedes]
                .scan_prefix(id.as_bytes())
                .next()
                .is_none()
        {
            return Ok((vec![], vec![]));
        }
        let Some(owner) = self.record_member(id) else {
            return Ok((vec![], vec![]));
        };
        Ok((
            self.same_member(retracts, id, &owner, most)?,
            self.same_member(supersedes, id, &owner, most)?,
        ))
    }

    /// The retractions of record `id` by its own member, at most [`HISTORY_SHOWN`]: the first
    /// half of [`Store::history`], without reading the records that supersede it (a chain of
    /// editions may hold large ones).
    pub fn retractions(&self, id: &ObjectId) -> Result<Vec<ObjectId>, StoreError> {
        let retracts = crate::store::RETRACTS_TREE;
        if self.trees[retracts]
            .scan_prefix(id.as_bytes())
            .next()
            .is_none()
        {
            return Ok(vec![]);
        }
        let Some(owner) = self.record_member(id) else {
            return Ok(vec![]);
        };
        self.same_member(retracts, id, &owner, HISTORY_SHOWN)
    }

    /// The objects `tree` pairs with `id` (retractions or successors) that are `owner`'s. Each
    /// is read to learn its member, one after another: the scan stops once `most` are found
    /// (for a status, one), however many a member published.
    fn same_member(
        &self,
        tree: usize,
        id: &ObjectId,
        owner: &MemberCode,
        most: usize,
    ) -> Result<Vec<ObjectId>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees[tree].scan_prefix(id.as_bytes()) {
            if out.len() >= most {
                break;
            }
            let (k, _) = item?;
            let Some(other) = ObjectId::from_slice(&k[32..]) else {
                continue;
            };
            let member = match self.get(&other)? {
                Some(StoredObject {
                    object: Object::Retraction(r),
                    ..
                }) => Some(r.member),
                Some(StoredObject {
                    object: Object::Record(r),
                    ..
                }) => Some(r.member),
                _ => None,
            };
            if member.as_ref() == Some(owner) {
                out.push(other);
            }
        }
        Ok(out)
    }

    fn record_member(&self, id: &ObjectId) -> Option<MemberCode> {
        use accord_core::KnownRecords;
        self.record_meta(id).map(|(member, _)| member)
    }

    fn status_of(&self, id: &ObjectId, stored: &StoredObject) -> Result<RecordStatus, StoreError> {
        let Object::Record(rec) = &stored.object else {
            return Ok(RecordStatus::Active);
        };
        self.status_of_record(id, rec, &stored.signed.signatures()[0].0)
    }

    /// The derived status of a stored record already at hand (decoded, with its author), so
    /// that it is not read and decoded again.
    pub fn status_of_record(
        &self,
        id: &ObjectId,
        rec: &accord_core::Record,
        author: &accord_core::PublicKey,
    ) -> Result<RecordStatus, StoreError> {
        let (retractions, superseding) = self.history_up_to(id, SUCCESSORS_JUDGED)?;
        if !retractions.is_empty() {
            return Ok(RecordStatus::Retracted);
        }
        if self.signer_revoked(rec, author) {
            return Ok(RecordStatus::SignerRevoked);
        }
        // Only a successor that stands supersedes: one retracted, or signed by a key revoked
        // before it was made (a stolen key's "new editions"), does not hide what it named.
        // Beyond the first SUCCESSORS_JUDGED, a record is taken as superseded.
        if superseding.len() >= SUCCESSORS_JUDGED {
            return Ok(RecordStatus::Superseded);
        }
        for s in &superseding {
            let Some(StoredObject {
                object: Object::Record(r),
                signed,
            }) = self.get(s)?
            else {
                continue;
            };
            let retracted = !self.history_up_to(s, 1)?.0.is_empty();
            let revoked = signed
                .signatures()
                .first()
                .is_none_or(|(k, _)| self.signer_revoked(&r, k));
            if !retracted && !revoked {
                return Ok(RecordStatus::Superseded);
            }
        }
        Ok(RecordStatus::Active)
    }

    /// Whether `rec`'s signer was revoked (or its delegation's root replaced) before it made it.
    fn signer_revoked(&self, rec: &accord_core::Record, author: &accord_core::PublicKey) -> bool {
        self.trust().covering_delegation_lost(
            &rec.member,
            author,
            rec.created,
            (&rec.kind, &rec.directions),
        )
    }

    /// Scans objects matching `filter`, one page at a time. The scan runs over the type index
    /// when the filter names one type, else over the time index; the other conditions are
    /// checked on each object (analysts' filtered searches run on the search index; the store
    /// keeps only the indexes its own work needs). `(created, id)` order makes the cursor
    /// stable under concurrent inserts.
    pub fn query(&self, filter: &Filter, page: Page) -> Result<QueryPage, StoreError> {
        let (tree, prefix): (usize, Vec<u8>) = if let [t] = filter.types.as_slice() {
            (crate::store::BY_TYPE_TREE, vec![t.code()])
        } else {
            (crate::store::BY_TIME_TREE, vec![])
        };
        let lo = {
            let mut k = prefix.clone();
            k.extend_from_slice(&filter.since.unwrap_or_default().0.to_be_bytes());
            k
        };
        let hi = {
            let mut k = prefix.clone();
            match filter.until {
                Some(u) => k.extend_from_slice(&u.0.to_be_bytes()),
                None => k.extend_from_slice(&[0xff; 41]),
            }
            k
        };
        let mut lo_k = lo;
        let mut hi_k = hi;
        if let Some(c) = page.after {
            let mut k = prefix.clone();
            k.extend_from_slice(&time_id(c.created, &c.id));
            match page.order {
                Order::OldestFirst => {
                    k.push(0); // strictly after the cursor
                    if k > lo_k {
                        lo_k = k;
                    }
                }
                Order::NewestFirst => {
                    if k < hi_k {
                        hi_k = k; // exclusive upper bound
                    }
                }
            }
        }
        if lo_k >= hi_k {
            return Ok(QueryPage {
                items: vec![],
                next: None,
            });
        }
        let range = self.trees[tree].range(lo_k..hi_k);
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            match page.order {
                Order::OldestFirst => Box::new(range),
                Order::NewestFirst => Box::new(range.rev()),
            };
        let limit = page.limit.max(1);
        let mut items = Vec::new();
        let mut last = None;
        for item in iter {
            let (k, _) = item?;
            let (created, id) =
                split_suffix(&k).ok_or_else(|| StoreError::Corrupt("index key".into()))?;
            if items.len() == limit {
                return Ok(QueryPage { items, next: last });
            }
            let Some(stored) = self.get(&id)? else {
                return Err(StoreError::Corrupt(format!(
                    "index names missing object {id}"
                )));
            };
            if !matches(filter, &stored) {
                continue;
            }
            let status = match &stored.object {
                Object::Record(_) => Some(self.status_of(&id, &stored)?),
                _ => None,
            };
            if !filter.statuses.is_empty() && !status.is_some_and(|s| filter.statuses.contains(&s))
            {
                continue;
            }
            last = Some(Cursor { created, id });
            items.push((stored, status));
        }
        Ok(QueryPage { items, next: None })
    }

    /// The ids of every stored object of type `t`, oldest first, read from the type index
    /// alone: an object whose bytes no longer read (bit rot; `check` names it) is listed like
    /// any other, and does not end the listing of those after it.
    pub fn ids_of_type(&self, t: ObjectType) -> Result<Vec<ObjectId>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees[crate::store::BY_TYPE_TREE].scan_prefix([t.code()]) {
            let (k, _) = item?;
            let (_, id) =
                split_suffix(&k).ok_or_else(|| StoreError::Corrupt("index key".into()))?;
            out.push(id);
        }
        Ok(out)
    }

    /// Counts the objects matching `filter` (a full scan of the driving index).
    pub fn count(&self, filter: &Filter) -> Result<u64, StoreError> {
        let mut n = 0u64;
        let mut after = None;
        loop {
            let page = self.query(
                filter,
                Page {
                    limit: 1000,
                    after,
                    order: Order::OldestFirst,
                },
            )?;
            n += page.items.len() as u64;
            match page.next {
                Some(c) => after = Some(c),
                None => return Ok(n),
            }
        }
    }
}

fn matches(f: &Filter, s: &StoredObject) -> bool {
    let o = &s.object;
    if !f.types.is_empty() && !f.types.contains(&o.object_type()) {
        return false;
    }
    if !f.members.is_empty() && !o.member().is_some_and(|m| f.members.contains(m)) {
        return false;
    }
    if !f.authors.is_empty() && !f.authors.contains(&s.signed.signatures()[0].0) {
        return false;
    }
    let created = o.created();
    if f.since.is_some_and(|t| created < t) || f.until.is_some_and(|t| created >= t) {
        return false;
    }
    if !f.kinds.is_empty() || !f.directions.is_empty() {
        let Object::Record(r) = o else { return false };
        if !f.kinds.is_empty() && !f.kinds.contains(&r.kind) {
            return false;
        }
        if !f.directions.is_empty() && !r.directions.iter().any(|d| f.directions.contains(d)) {
            return false;
        }
    }
    true
}
