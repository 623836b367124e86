//! Simulations of the reconciliation state machine alone (seeded, no I/O): both sides end up
//! knowing exactly the symmetric difference, cheaply, and hostile answers end the session.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use accord_core::{ObjectId, Timestamp};
use accord_sync::{
    Initiator, MAX_ROUNDS, Outcome, SessionStats, Snapshot, SyncError, SyncIndex, respond,
};

/// splitmix64: a tiny deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn item(&mut self) -> (Timestamp, ObjectId) {
        let t = 1_700_000_000_000 + self.next() % (365 * 86_400_000);
        (Timestamp(t), ObjectId::of_body(&self.next().to_le_bytes()))
    }
}

type Set = BTreeSet<(Timestamp, ObjectId)>;

/// Two sets: a shared part of `shared` items, `only_a` items only in A, `only_b` only in B.
fn sets(seed: u64, shared: usize, only_a: usize, only_b: usize) -> (Set, Set) {
    let mut rng = Rng(seed);
    let base: Set = (0..shared).map(|_| rng.item()).collect();
    let mut a = base.clone();
    let mut b = base;
    for _ in 0..only_a {
        a.insert(rng.item());
    }
    for _ in 0..only_b {
        b.insert(rng.item());
    }
    (a, b)
}

fn snapshot(s: &Set) -> Arc<Snapshot> {
    SyncIndex::new(s.iter().copied()).snapshot()
}

/// Runs a session of A (initiator) against B (responder).
fn reconcile(a: &Set, b: &Set) -> Result<(Vec<ObjectId>, Vec<ObjectId>, SessionStats), SyncError> {
    let (sa, sb) = (snapshot(a), snapshot(b));
    let (mut session, mut msg) = Initiator::start(sa)?;
    loop {
        let answer = respond(sb.clone(), &msg)?;
        match session.on_message(&answer)? {
            Outcome::Send(next) => msg = next,
            Outcome::Done { have, need } => return Ok((have, need, session.stats())),
        }
    }
}

fn check(seed: u64, shared: usize, only_a: usize, only_b: usize) -> SessionStats {
    let (a, b) = sets(seed, shared, only_a, only_b);
    let (have, need, stats) = reconcile(&a, &b).unwrap();
    let want_have: BTreeSet<ObjectId> = a.difference(&b).map(|x| x.1).collect();
    let want_need: BTreeSet<ObjectId> = b.difference(&a).map(|x| x.1).collect();
    let have: BTreeSet<ObjectId> = have.into_iter().collect();
    let need: BTreeSet<ObjectId> = need.into_iter().collect();
    assert_eq!(
        have, want_have,
        "have, seed {seed}, {shared}+{only_a}/{only_b}"
    );
    assert_eq!(
        need, want_need,
        "need, seed {seed}, {shared}+{only_a}/{only_b}"
    );
    stats
}

#[test]
fn empty_and_tiny_sets() {
    check(1, 0, 0, 0);
    check(2, 0, 1, 0);
    check(3, 0, 0, 1);
    check(4, 0, 5, 7);
    check(5, 3, 0, 0);
}

#[test]
fn differences_among_one_thousand() {
    for (i, (a, b)) in [
        (0, 0),
        (1, 0),
        (0, 1),
        (5, 5),
        (500, 500),
        (1000, 0),
        (0, 1000),
    ]
    .into_iter()
    .enumerate()
    {
        check(10 + i as u64, 1000, a, b);
    }
}

#[test]
fn all_different() {
    // Nothing shared: each side needs everything the other has.
    check(20, 0, 3000, 2000);
}

#[test]
fn one_hundred_thousand_items() {
    let n = 100_000;
    for (seed, a, b) in [(30, 0, 0), (31, 1, 0), (32, 5, 5), (33, 500, 500)] {
        let stats = check(seed, n, a, b);
        eprintln!("{n} items, {a}+{b} differences: {stats:?}");
    }
}

#[test]
fn one_difference_among_one_hundred_thousand_is_cheap() {
    for seed in [40, 41, 42] {
        let stats = check(seed, 100_000, 1, 0);
        let bytes = stats.bytes_in + stats.bytes_out;
        eprintln!("1 difference among 100000: {stats:?}");
        assert!(bytes <= 8 * 1024, "exchanged {bytes} bytes");
        assert!(stats.rounds <= 6, "needed {} rounds", stats.rounds);
        let stats = check(seed, 100_000, 0, 1);
        assert!(stats.bytes_in + stats.bytes_out <= 8 * 1024);
        assert!(stats.rounds <= 6);
    }
}

#[test]
fn all_different_at_scale() {
    // 20,000 against 20,000 disjoint items: bounded by frames, still converges.
    let stats = check(50, 0, 20_000, 20_000);
    assert!(stats.rounds < MAX_ROUNDS);
}

#[test]
fn garbage_answers_end_the_session_without_panic() {
    let (a, _) = sets(60, 1000, 0, 0);
    let mut rng = Rng(61);
    for len in [0usize, 1, 2, 3, 17, 64, 1000, 5000] {
        let (mut s, _) = Initiator::start(snapshot(&a)).unwrap();
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(s.on_message(&junk).is_err(), "{len} bytes of junk accepted");
    }
    // A responder that answers garbage to a valid query, and a query of garbage.
    for len in [0usize, 1, 9, 300] {
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = respond(snapshot(&a), &junk); // must not panic
    }
}

#[test]
fn endless_answers_hit_the_round_limit() {
    // A hostile responder that always answers with fingerprints of its own, different set:
    // the initiator keeps splitting until the round limit ends the session.
    let (a, _) = sets(70, 5000, 0, 0);
    let (mut s, first) = Initiator::start(snapshot(&a)).unwrap();
    let mut rounds = 0;
    let mut msg = first;
    let result = loop {
        // Echoing the initiator's own message back: a valid-looking answer that never closes.
        let answer = msg.clone();
        match s.on_message(&answer) {
            Ok(Outcome::Send(next)) => {
                rounds += 1;
                assert!(rounds <= MAX_ROUNDS, "the session did not stop");
                msg = next;
            }
            other => break other,
        }
    };
    assert!(
        matches!(result, Err(_) | Ok(Outcome::Done { .. })),
        "{result:?}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
    #[test]
    fn random_messages_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let (a, _) = sets(80, 200, 0, 0);
        let snap = snapshot(&a);
        let _ = respond(snap.clone(), &bytes);
        let (mut s, _) = Initiator::start(snap).unwrap();
        let _ = s.on_message(&bytes);
        let mut framed = vec![0x61];
        framed.extend_from_slice(&bytes);
        let _ = respond(snapshot(&a), &framed);
    }
}

#[test]
fn a_tenth_different_costs_half_of_sending_every_id() {
    // 100,000 shared items, 5,000 more on each side: the initiator cuts ranges to the density
    // of differences (the reference initiator listed nearly every range: 1.23 times all ids).
    let (a, b) = sets(90, 100_000, 5_000, 5_000);
    let stats = check(90, 100_000, 5_000, 5_000);
    let total = stats.bytes_in + stats.bytes_out;
    let naive = (b.len() * 32) as u64;
    eprintln!("10,000 of 110,000 differing: {stats:?}, {total} of {naive} bytes");
    assert!(
        total * 10 <= naive * 7,
        "{total} bytes against {naive} for every id"
    );
    assert!(stats.rounds <= 40, "{} rounds", stats.rounds);
    assert_eq!(a.len(), b.len());
}

#[test]
fn a_node_that_missed_the_newest_items_fetches_them_in_few_bytes_more() {
    // The catch-up case: the differences are the newest 10,000 items, all on the peer.
    let mut rng = Rng(91);
    let old: Set = (0..50_000)
        .map(|i| {
            (
                Timestamp(1_700_000_000_000 + i * 1000),
                ObjectId::of_body(&rng.next().to_le_bytes()),
            )
        })
        .collect();
    let mut b = old.clone();
    for i in 0..10_000u64 {
        b.insert((
            Timestamp(1_800_000_000_000 + i * 10),
            ObjectId::of_body(&rng.next().to_le_bytes()),
        ));
    }
    let (have, need, stats) = reconcile(&old, &b).unwrap();
    assert!(have.is_empty());
    assert_eq!(need.len(), 10_000);
    let want: BTreeSet<ObjectId> = b.difference(&old).map(|x| x.1).collect();
    assert_eq!(need.into_iter().collect::<BTreeSet<_>>(), want);
    // The missing ids themselves are 320,000 bytes; little besides.
    let total = stats.bytes_in + stats.bytes_out;
    assert!(total <= 360_000, "{stats:?}");
}

#[test]
fn items_sharing_timestamps_are_told_apart_by_id_prefixes() {
    // Every item at one of three instants: range bounds need id prefixes.
    let mut rng = Rng(92);
    let item = |rng: &mut Rng| {
        (
            Timestamp(1_700_000_000_000 + rng.next() % 3),
            ObjectId::of_body(&rng.next().to_le_bytes()),
        )
    };
    let base: Set = (0..20_000).map(|_| item(&mut rng)).collect();
    for (only_a, only_b) in [(1, 0), (0, 1), (50, 70), (2_000, 2_000)] {
        let (mut a, mut b) = (base.clone(), base.clone());
        for _ in 0..only_a {
            a.insert(item(&mut rng));
        }
        for _ in 0..only_b {
            b.insert(item(&mut rng));
        }
        let (have, need, _) = reconcile(&a, &b).unwrap();
        let want_have: BTreeSet<ObjectId> = a.difference(&b).map(|x| x.1).collect();
        let want_need: BTreeSet<ObjectId> = b.difference(&a).map(|x| x.1).collect();
        assert_eq!(have.into_iter().collect::<BTreeSet<_>>(), want_have);
        assert_eq!(need.into_iter().collect::<BTreeSet<_>>(), want_need);
    }
}

#[test]
fn malformed_answers_are_named() {
    let (a, _) = sets(93, 1000, 0, 0);
    let err = |answer: &[u8]| {
        let (mut s, _) = Initiator::start(snapshot(&a)).unwrap();
        s.on_message(answer).unwrap_err().to_string()
    };
    assert!(err(&[]).contains("ends in the middle"), "{}", err(&[]));
    assert!(err(&[0x62]).contains("version 0x62"), "{}", err(&[0x62]));
    assert!(err(&[0x00]).contains("not a negentropy message"));
    // A second range whose bound lies below the first (timestamps are deltas, so at the same
    // instant with a lower id prefix).
    let out_of_order = [0x61, 0x05, 0x01, 0x10, 0x00, 0x01, 0x01, 0x05, 0x00];
    assert!(
        err(&out_of_order).contains("out of order"),
        "{}",
        err(&out_of_order)
    );
    // An id list claiming more ids than the answer holds.
    let long_list = [0x61, 0x00, 0x00, 0x02, 0x05, 0xaa];
    assert!(
        err(&long_list).contains("id list longer"),
        "{}",
        err(&long_list)
    );
    // A 33-byte id prefix, and an unknown mode.
    assert!(err(&[0x61, 0x00, 0x21]).contains("33-byte"));
    assert!(err(&[0x61, 0x00, 0x00, 0x07]).contains("unknown range mode 7"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
    #[test]
    fn any_two_sets_reconcile_exactly(
        seed in 0u64..1_000_000,
        shared in 0usize..3_000,
        only_a in 0usize..600,
        only_b in 0usize..600,
    ) {
        check(seed, shared, only_a, only_b);
    }
}

#[test]
fn a_responder_that_always_cuts_its_answer_at_the_start_ends_the_session() {
    // Every answer is "cut" before its first range: one differing fingerprint of everything.
    // The initiator asks again for what it asked, no more, and ends the session as the
    // peer's fault after `MAX_STALLED` such answers in a row (it went on to the round limit,
    // 512 rounds, each costing passes over the whole set).
    let (a, _) = sets(94, 20_000, 0, 0);
    let (mut s, first) = Initiator::start(snapshot(&a)).unwrap();
    let mut sizes = vec![first.len()];
    let mut cut = vec![0x61, 0x00, 0x00, 0x01];
    cut.extend_from_slice(&[0xee; 16]);
    let end = loop {
        match s.on_message(&cut) {
            Ok(Outcome::Send(next)) => sizes.push(next.len()),
            other => break other,
        }
    };
    assert!(
        matches!(&end, Err(SyncError::Malformed(m)) if m.contains("settled nothing")),
        "{end:?}"
    );
    assert_eq!(sizes.len() as u32, accord_sync::MAX_STALLED);
    // Never more than a frame, and no growth from asking again.
    assert!(sizes.iter().all(|&n| n <= 128 * 1024));
    assert!(
        sizes.iter().max() <= Some(&(first.len() * 2)),
        "{:?}",
        &sizes[..4]
    );
}
