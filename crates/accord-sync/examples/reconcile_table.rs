//! Prints rounds, bytes and time of reconciliation for 1, 100 and 10,000 differences among
//! 100,000 and 1,000,000 items, next to the naive baseline of sending every id (32 bytes each).
//! Run: `cargo run --release -p accord-sync --example reconcile_table`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Instant;

use accord_core::{ObjectId, Timestamp};
use accord_sync::{Initiator, Outcome, SyncIndex, respond};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn main() {
    println!(
        "| items | differences | rounds | bytes sent | bytes received | total bytes | naive bytes (all ids) | ratio | time |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in [100_000usize, 1_000_000] {
        let mut rng = Rng(n as u64);
        let base: Vec<(Timestamp, ObjectId)> = (0..n)
            .map(|_| {
                (
                    Timestamp(1_700_000_000_000 + rng.next() % 31_536_000_000),
                    ObjectId::of_body(&rng.next().to_le_bytes()),
                )
            })
            .collect();
        for d in [1usize, 100, 10_000] {
            // Half the differences on each side.
            let mut a: BTreeSet<_> = base.iter().copied().collect();
            let mut b = a.clone();
            for i in 0..d {
                let item = (
                    Timestamp(1_700_000_000_000 + rng.next() % 31_536_000_000),
                    ObjectId::of_body(&rng.next().to_le_bytes()),
                );
                if i % 2 == 0 {
                    a.insert(item);
                } else {
                    b.insert(item);
                }
            }
            let sa = SyncIndex::new(a.iter().copied()).snapshot();
            let sb = SyncIndex::new(b.iter().copied()).snapshot();
            let started = Instant::now();
            let (mut s, mut msg) = Initiator::start(sa).unwrap();
            let (have, need) = loop {
                let answer = respond(sb.clone(), &msg).unwrap();
                match s.on_message(&answer).unwrap() {
                    Outcome::Send(m) => msg = m,
                    Outcome::Done { have, need } => break (have, need),
                }
            };
            let elapsed = started.elapsed();
            assert_eq!(have.len() + need.len(), d);
            let st = s.stats();
            let total = st.bytes_out + st.bytes_in;
            let naive = (b.len() * 32) as u64;
            println!(
                "| {n} | {d} | {} | {} | {} | {} | {} | {:.4} | {:.0} ms |",
                st.rounds,
                st.bytes_out,
                st.bytes_in,
                total,
                naive,
                total as f64 / naive as f64,
                elapsed.as_secs_f64() * 1000.0
            );
        }
    }
}
