//! Objects this store refused for what their bodies say, remembered (in memory, bounded) so
//! that reconciliation does not fetch them again from every peer that holds them at every
//! session, and so that a peer holding them is not read as withholding them (docs/PROTOCOL.md
//! §11.3).
//!
//! Honest nodes do not all judge an object alike: one that learnt a member's records before
//! the charter amendment removing that member holds them; one that starts empty afterwards
//! refuses them. An object's id is the hash of its body alone, not of its signatures, so only
//! a refusal that any copy of the same body would get is remembered by id: one for the member,
//! the taxonomy, a field, or another member's record or trust object the body names. A refusal
//! for the signer is not remembered by id: anyone can sign a known body again with a key of
//! their own, and that copy's refusal must not keep this node from the copy that counts.
//!
//! Some refusals for the signer are history an honest node keeps: a delegation or certificate
//! a since-replaced root key signed, the records of the publishers only it delegated, a record
//! its publisher signed before the key's revocation reached this node. Those are remembered
//! apart, under the key of the copy's source ([`Declined::of_source`]): the peer that served
//! that copy is not asked for it again, and is not read as withholding it; another peer is.
//! Only refusals a forger could not cause with a key of its own count so (the store decides,
//! `Store::could_be_history`): ones that need a delegation this node holds (a revoked key,
//! outside a delegation's window or scope, a delegation whose root key was replaced), or a
//! signature by a root key the member held in an earlier charter version. Those change with a
//! delegation (a window, a scope) as well as with the charter, so every delegation or charter
//! version accepted forgets them.
//!
//! Objects of a type this release does not know (`Rejection::NewerType`) are refused whatever
//! the trust view: one whose signer has standing is remembered by id; one signed by a key
//! anyone can make (a stranger's, a revoked one) is remembered for the peer that gave it, in a
//! memory of its own ([`NEWER_DECLINED_KEPT`]), so that such keys cannot push the refusals
//! above out.
//!
//! A refusal stays right only while what it was judged against stays. What the refusals by id
//! depend on (the members, the taxonomy, the limits; a named target's member, which never
//! changes) changes only with the charter: every accepted charter version forgets them all (the
//! next reconciliation fetches and judges them again). Delegations, node certificates and
//! revocations change none of those.

use std::collections::{HashMap, VecDeque};

use accord_core::{ObjectId, Rejection};

/// Refused objects remembered at most; the oldest is forgotten first. About 90 bytes each:
/// 6 MiB at most, and a flood of refused objects only evicts (a forgotten refusal is fetched
/// and judged again, as before this memory existed).
pub const DECLINED_KEPT: usize = 65_536;

/// Objects of a type this release does not know, signed by keys without standing, remembered
/// for the peers that gave them (`Store::note_refused`), at most: a memory of their own, as any
/// key can sign them; a flood of them only evicts its own kind (each then fetched again from
/// its peer, and checked with one signature verification).
pub const NEWER_DECLINED_KEPT: usize = 16_384;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Declined {
    created: HashMap<ObjectId, u64>,
    order: VecDeque<ObjectId>,
    cap: usize,
}

impl Declined {
    pub fn new(cap: usize) -> Declined {
        Declined {
            created: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// Whether a refusal is remembered: one that any copy of the same body gets under the
    /// same view (see the module documentation). Not one for the clock, a signature or the
    /// signer, nor a charter's (a charter is judged by its signatures too).
    pub fn remembers(r: &Rejection) -> bool {
        matches!(
            r,
            Rejection::UnknownMember(_)
                | Rejection::UnknownKind(_)
                | Rejection::UnknownDirection(_)
                | Rejection::InvalidField { .. }
                | Rejection::SupersedesOtherMember(_)
                | Rejection::RetractionOtherMember { .. }
                | Rejection::RevocationOtherMember { .. }
                | Rejection::RevocationTargetKind { .. }
        )
    }

    /// The key of one source's copy of `id` in a memory of refusals for the signer: that
    /// source's copy, not the id's (another source may hold the copy that counts).
    pub fn of_source(id: &ObjectId, source: &str) -> ObjectId {
        let mut key = Vec::with_capacity(32 + source.len());
        key.extend_from_slice(id.as_bytes());
        key.extend_from_slice(source.as_bytes());
        ObjectId::of_body(&key)
    }

    pub fn insert(&mut self, id: ObjectId, created: u64) {
        if self.cap == 0 || self.created.insert(id, created).is_some() {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.created.remove(&old);
            }
        }
    }

    /// The creation time of a remembered refused object.
    pub fn get(&self, id: &ObjectId) -> Option<u64> {
        self.created.get(id).copied()
    }

    pub fn clear(&mut self) {
        self.created.clear();
        self.order.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.created.len()
    }

    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_refusal_is_forgotten_first_and_a_repeat_counts_once() {
        let mut d = Declined::new(2);
        let id = |b: u8| ObjectId([b; 32]);
        d.insert(id(1), 10);
        d.insert(id(1), 10);
        d.insert(id(2), 20);
        assert_eq!(d.len(), 2);
        d.insert(id(3), 30);
        assert_eq!(d.get(&id(1)), None);
        assert_eq!(d.get(&id(2)), Some(20));
        assert_eq!(d.get(&id(3)), Some(30));
        d.clear();
        assert_eq!(d.len(), 0);
        let mut none = Declined::new(0);
        none.insert(id(4), 40);
        assert_eq!(none.get(&id(4)), None);
    }
}
