//! The trust view: what a node believes about the federation right now.
//!
//! It is derived, never edited by hand: it starts from the genesis charter (the trust anchor,
//! configured by the operator) and changes only by [`TrustView::apply`] of objects that
//! [`crate::validate`] accepted against it: charter amendments, delegations, node
//! certificates and revocations.
//!
//! Its maps are persistent ([`imbl::OrdMap`]): a group commit that holds a trust object works
//! on a copy of the view in force (its readers keep theirs), and the copy shares everything but
//! the paths it changes. With plain maps each such commit copied every delegation and
//! certificate, names included: a member that issued a hundred thousand delegations (they cost
//! it a signature each) made every trust object of every member cost every node 43 ms.

use imbl::{OrdMap, Vector};

use crate::id::ObjectId;
use crate::keys::PublicKey;
use crate::object::{Charter, Delegation, MemberCode, NodeCert, Object, RevocationTarget};
use crate::time::Timestamp;
use crate::validate::{Rejection, Verified};

/// An accepted delegation together with the root key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationEntry {
    pub id: ObjectId,
    pub delegation: Delegation,
    pub signer: PublicKey,
}

/// An accepted node certificate together with the root key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    pub id: ObjectId,
    pub cert: NodeCert,
    pub signer: PublicKey,
}

/// The federation as this node currently sees it.
#[derive(Debug, Clone)]
pub struct TrustView {
    federation: ObjectId,
    charter: Charter,
    /// Charter ids by version (index 0 is version 1, the genesis).
    charters: Vec<ObjectId>,
    /// Persistent lists too: a member issuing thousands of delegations of one key copied that
    /// key's whole list at each new one (quadratic in their number).
    delegations: OrdMap<PublicKey, Vector<DelegationEntry>>,
    nodes: OrdMap<PublicKey, Vector<NodeEntry>>,
    /// The key each delegation (`true`) or node certificate (`false`) names, by object id.
    by_id: OrdMap<ObjectId, (bool, PublicKey)>,
    /// Revoked delegations and node certificates: id → (member that revoked, the earliest
    /// effective time), one entry per member.
    revoked_objects: OrdMap<ObjectId, Vec<(MemberCode, Timestamp)>>,
    /// Revoked keys per member: the earliest effective time.
    revoked_keys: OrdMap<(MemberCode, PublicKey), Timestamp>,
    /// Each charter version's creation time and `limits.rules`, in version order.
    rules: Vec<(Timestamp, u64)>,
}

/// The outcome of looking for a publisher's right to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublisherCheck {
    /// A delegation covers it.
    Ok(DelegationEntry),
    /// No delegation of this key for this member is known (yet).
    Unknown,
    /// Delegations exist but none covers it; the reason of the closest one.
    Refused(Rejection),
}

impl TrustView {
    pub(crate) fn new(federation: ObjectId, charter: Charter) -> Self {
        TrustView {
            federation,
            charters: vec![federation],
            delegations: OrdMap::new(),
            nodes: OrdMap::new(),
            by_id: OrdMap::new(),
            revoked_objects: OrdMap::new(),
            revoked_keys: OrdMap::new(),
            rules: vec![(charter.created, charter.limits.rules)],
            charter,
        }
    }

    /// The refusal rules (`limits.rules`) an object created at `created` is judged by: those of
    /// the latest charter created at or before it (the genesis's for anything older). Judged by
    /// the object's own time, not by which charter a node happens to hold when it arrives, so
    /// that every node that holds the charter history decides alike, in whatever order the
    /// objects came.
    pub fn rules_at(&self, created: Timestamp) -> u64 {
        self.rules
            .iter()
            .rev()
            .find(|(t, _)| *t <= created)
            .or(self.rules.first())
            .map_or(crate::object::DEFAULT_RULES, |(_, r)| *r)
    }

    /// The federation id (the genesis charter's id).
    pub fn federation(&self) -> ObjectId {
        self.federation
    }

    /// The current charter.
    pub fn charter(&self) -> &Charter {
        &self.charter
    }

    /// The current charter's id.
    pub fn charter_id(&self) -> ObjectId {
        self.charters.last().copied().unwrap_or(self.federation)
    }

    /// Ids of every charter version so far, genesis first.
    pub fn charter_history(&self) -> &[ObjectId] {
        &self.charters
    }

    pub fn limits(&self) -> &crate::object::Limits {
        &self.charter.limits
    }

    /// The member's current root key.
    pub fn root_key(&self, member: &MemberCode) -> Option<PublicKey> {
        self.charter.member(member).map(|m| m.root_key)
    }

    /// Every known delegation, by publisher key.
    pub fn delegations(&self) -> impl Iterator<Item = &DelegationEntry> {
        self.delegations.values().flatten()
    }

    pub fn delegations_of(&self, key: &PublicKey) -> &Vector<DelegationEntry> {
        static NONE: std::sync::LazyLock<Vector<DelegationEntry>> =
            std::sync::LazyLock::new(Vector::new);
        self.delegations.get(key).unwrap_or(&NONE)
    }

    pub fn node_certs(&self) -> impl Iterator<Item = &NodeEntry> {
        self.nodes.values().flatten()
    }

    /// Whether `key` speaks for a member at `now`: its root key in the charter in force, or a
    /// key that a delegation (within its window) or a node certificate signed by a current
    /// member's root key in force names, unrevoked. (An object of a newer type such a key
    /// signed is remembered as refused by id; a revoked or stranger's key's only for the
    /// source that gave it.)
    pub fn has_standing(&self, key: &PublicKey, now: Timestamp) -> bool {
        let current = |member: &MemberCode, id: &ObjectId, signer: &PublicKey| {
            self.root_key(member) == Some(*signer)
                && self.revoked_at(id, member, key, Timestamp::MAX).is_none()
        };
        self.charter.member_by_root(key).is_some()
            || self.delegations_of(key).iter().any(|d| {
                d.delegation.not_before <= now
                    && d.delegation.not_after.is_none_or(|end| now <= end)
                    && current(&d.delegation.member, &d.id, &d.signer)
            })
            || self
                .node_certs_of(key)
                .iter()
                .any(|n| current(&n.cert.member, &n.id, &n.signer))
    }

    /// The node certificates naming `key` (valid or not).
    pub fn node_certs_of(&self, key: &PublicKey) -> &Vector<NodeEntry> {
        static NONE: std::sync::LazyLock<Vector<NodeEntry>> = std::sync::LazyLock::new(Vector::new);
        self.nodes.get(key).unwrap_or(&NONE)
    }

    /// The accepted delegation `id`, if it is one.
    pub fn delegation(&self, id: &ObjectId) -> Option<&DelegationEntry> {
        match self.by_id.get(id)? {
            (true, key) => self.delegations_of(key).iter().find(|d| d.id == *id),
            (false, _) => None,
        }
    }

    /// The kind (`"delegation"` or `"node certificate"`) and member of an accepted trust
    /// object, if `id` is one.
    pub fn trust_object(&self, id: &ObjectId) -> Option<(&'static str, &MemberCode)> {
        match self.by_id.get(id)? {
            (true, key) => self
                .delegations_of(key)
                .iter()
                .find(|d| d.id == *id)
                .map(|d| ("delegation", &d.delegation.member)),
            (false, key) => self
                .node_certs_of(key)
                .iter()
                .find(|n| n.id == *id)
                .map(|n| ("node certificate", &n.cert.member)),
        }
    }

    /// From when `id` (a delegation or node certificate of `member`) is revoked, if it is.
    pub fn object_revoked_since(&self, id: &ObjectId, member: &MemberCode) -> Option<Timestamp> {
        self.revoked_objects
            .get(id)?
            .iter()
            .filter(|(m, _)| m == member)
            .map(|(_, t)| *t)
            .min()
    }

    /// From when `key` is revoked for `member`, if it is.
    pub fn key_revoked_since(&self, member: &MemberCode, key: &PublicKey) -> Option<Timestamp> {
        self.revoked_keys.get(&(member.clone(), *key)).copied()
    }

    fn revoked_at(
        &self,
        id: &ObjectId,
        member: &MemberCode,
        key: &PublicKey,
        at: Timestamp,
    ) -> Option<Timestamp> {
        [
            self.object_revoked_since(id, member),
            self.key_revoked_since(member, key),
        ]
        .into_iter()
        .flatten()
        .filter(|since| *since <= at)
        .min()
    }

    /// Whether what `key` signed for `member` at `at` in `scope` (kind and directions) lost
    /// the delegation it was made under: some delegation of the key covered it (window and
    /// scope) and each such one is revoked since before `at`, or its root key replaced. A
    /// record's derived status asks this, not [`Self::check_publisher`]'s closest refusal: a
    /// narrower delegation the key still holds (out of scope for the record) must not hide
    /// that the one covering it was revoked.
    pub fn covering_delegation_lost(
        &self,
        member: &MemberCode,
        key: &PublicKey,
        at: Timestamp,
        (kind, directions): (&str, &[String]),
    ) -> bool {
        let mut lost = false;
        for d in self
            .delegations_of(key)
            .iter()
            .filter(|d| &d.delegation.member == member)
        {
            let del = &d.delegation;
            let in_window = at >= del.not_before && del.not_after.is_none_or(|na| at <= na);
            let in_scope = del
                .kinds
                .as_ref()
                .is_none_or(|k| k.iter().any(|k| k == kind))
                && del
                    .directions
                    .as_ref()
                    .is_none_or(|allowed| directions.iter().all(|x| allowed.contains(x)));
            if !in_window || !in_scope {
                continue;
            }
            if self.root_key(member) != Some(d.signer)
                || self.revoked_at(&d.id, member, key, at).is_some()
            {
                lost = true;
            } else {
                return false;
            }
        }
        lost
    }

    /// Whether `key` may publish for `member` at time `at`, optionally for a kind and
    /// directions (`None` skips the scope check, as for retractions).
    pub fn check_publisher(
        &self,
        member: &MemberCode,
        key: &PublicKey,
        at: Timestamp,
        scope: Option<(&str, &[String])>,
    ) -> PublisherCheck {
        let candidates: Vec<&DelegationEntry> = self
            .delegations_of(key)
            .iter()
            .filter(|d| &d.delegation.member == member)
            .collect();
        if candidates.is_empty() {
            return PublisherCheck::Unknown;
        }
        let mut best: Option<(u8, Rejection)> = None;
        let mut consider = |rank: u8, r: Rejection| {
            if best.as_ref().is_none_or(|(b, _)| rank > *b) {
                best = Some((rank, r));
            }
        };
        for d in candidates {
            let del = &d.delegation;
            if self.root_key(member) != Some(d.signer) {
                consider(
                    0,
                    Rejection::DelegationRootReplaced {
                        delegation: d.id,
                        member: member.clone(),
                    },
                );
                continue;
            }
            if let Some(since) = self.revoked_at(&d.id, member, key, at) {
                consider(1, Rejection::SignerRevoked { key: *key, since });
                continue;
            }
            if at < del.not_before || del.not_after.is_some_and(|na| at > na) {
                consider(
                    2,
                    Rejection::OutsideDelegationWindow {
                        delegation: d.id,
                        at,
                        not_before: del.not_before,
                        not_after: del.not_after,
                    },
                );
                continue;
            }
            if let Some((kind, directions)) = scope {
                if let Some(kinds) = &del.kinds
                    && !kinds.iter().any(|k| k == kind)
                {
                    consider(
                        3,
                        Rejection::KindOutOfScope {
                            delegation: d.id,
                            kind: kind.to_string(),
                        },
                    );
                    continue;
                }
                if let Some(allowed) = &del.directions
                    && let Some(bad) = directions.iter().find(|x| !allowed.contains(x))
                {
                    consider(
                        3,
                        Rejection::DirectionOutOfScope {
                            delegation: d.id,
                            direction: bad.clone(),
                        },
                    );
                    continue;
                }
            }
            return PublisherCheck::Ok(d.clone());
        }
        match best {
            Some((_, r)) => PublisherCheck::Refused(r),
            None => PublisherCheck::Unknown,
        }
    }

    /// The member whose valid, unrevoked node certificate names `node_key`, if any.
    pub fn node_member(&self, node_key: &PublicKey, now: Timestamp) -> Option<&NodeEntry> {
        self.nodes.get(node_key)?.iter().find(|n| {
            self.root_key(&n.cert.member) == Some(n.signer)
                && self
                    .revoked_at(&n.id, &n.cert.member, node_key, now)
                    .is_none()
        })
    }

    /// The valid, unrevoked node certificate for `node_key`, when every such certificate names
    /// the same member (the first of them); `None` when none does, or when two members certify
    /// the key (a certificate is the certifier's word: a hostile member's own certificate must
    /// not relabel another member's node wherever nothing says which member the node claims).
    pub fn node_member_unanimous(
        &self,
        node_key: &PublicKey,
        now: Timestamp,
    ) -> Option<&NodeEntry> {
        let mut valid = self.nodes.get(node_key)?.iter().filter(|n| {
            self.root_key(&n.cert.member) == Some(n.signer)
                && self
                    .revoked_at(&n.id, &n.cert.member, node_key, now)
                    .is_none()
        });
        let first = valid.next()?;
        valid
            .all(|n| n.cert.member == first.cert.member)
            .then_some(first)
    }

    /// A valid, unrevoked node certificate of `member` for `node_key`, if any. Another member
    /// may certify the same key (a certificate is the certifier's word, not the key's), so a
    /// key's own member is asked for by name: [`TrustView::node_member`] alone would let a
    /// hostile member's earlier-dated certificate relabel another member's node.
    pub fn node_member_as(
        &self,
        node_key: &PublicKey,
        member: &str,
        now: Timestamp,
    ) -> Option<&NodeEntry> {
        self.nodes.get(node_key)?.iter().find(|n| {
            n.cert.member.as_str() == member
                && self.root_key(&n.cert.member) == Some(n.signer)
                && self
                    .revoked_at(&n.id, &n.cert.member, node_key, now)
                    .is_none()
        })
    }

    /// Folds an accepted trust object into the view. Records and retractions do not change
    /// trust and are ignored. The object must have been validated against this view.
    pub fn apply(&mut self, v: &Verified<Object>) {
        let signer = v.signer();
        match v.object() {
            Object::Charter(c) => {
                if c.version as usize == self.charters.len() + 1 {
                    self.charters.push(v.id());
                    self.rules.push((c.created, c.limits.rules));
                    self.charter = c.clone();
                }
            }
            Object::Delegation(d) => {
                if !self.by_id.contains_key(&v.id()) {
                    let list = self.delegations.entry(d.publisher).or_default();
                    list.push_back(DelegationEntry {
                        id: v.id(),
                        delegation: d.clone(),
                        signer,
                    });
                    self.by_id.insert(v.id(), (true, d.publisher));
                }
            }
            Object::Node(n) => {
                if !self.by_id.contains_key(&v.id()) {
                    let list = self.nodes.entry(n.node_key).or_default();
                    list.push_back(NodeEntry {
                        id: v.id(),
                        cert: n.clone(),
                        signer,
                    });
                    self.by_id.insert(v.id(), (false, n.node_key));
                }
            }
            Object::Revocation(r) => match r.target() {
                Some(RevocationTarget::Delegation(id) | RevocationTarget::Node(id)) => {
                    // Only the earliest of a member's revocations counts: a member revoking
                    // the same object again and again adds nothing.
                    let list = self.revoked_objects.entry(id).or_default();
                    match list.iter_mut().find(|(m, _)| *m == r.member) {
                        Some((_, t)) => *t = (*t).min(r.effective),
                        None => list.push((r.member.clone(), r.effective)),
                    }
                }
                Some(RevocationTarget::Key(k)) => {
                    let e = self
                        .revoked_keys
                        .entry((r.member.clone(), k))
                        .or_insert(r.effective);
                    *e = (*e).min(r.effective);
                }
                None => {}
            },
            Object::Record(_) | Object::Retraction(_) => {}
        }
    }
}
