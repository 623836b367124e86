//! What a group commit costs as the trust view grows: a member with many delegations (each a
//! publisher name the view keeps) and records ingested one group commit at a time.
//!
//! `cargo run --release -p accord-store --example trust_commit -- [DELEGATIONS...]`
//! prints, for each number of delegations (default 0 2000 20000), the mean time of a
//! one-record group commit over 400 commits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use accord_core::devnet::DevFederation;
use accord_core::{Delegation, Object, ObjectType, SecretKey, Timestamp};
use accord_store::{Store, StoreOptions};

const COMMITS: usize = 400;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number of delegations"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![0, 2_000, 20_000]
    } else {
        sizes
    };
    let t0 = 1_700_000_000_000u64;
    let fed = DevFederation::new(&["KZ", "BY"], [7; 32], Timestamp(t0)).unwrap();
    println!("delegations  trust objects  ms per one-record group commit");
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()).unwrap();
        store
            .ingest(fed.delegation(0).as_bytes(), Timestamp::MAX)
            .unwrap();
        // `n` delegations of other keys, each with a 200-character name, in batches.
        let dels: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                Object::Delegation(Delegation {
                    object_type: ObjectType::Delegation,
                    federation: fed.federation(),
                    created: Timestamp(t0 + 1),
                    member: fed.members[0].code.clone(),
                    publisher: SecretKey::from_seed(seed).public_key(),
                    name: format!("Ministry {i:06} ").repeat(13)[..200].to_string(),
                    kinds: None,
                    directions: None,
                    not_before: Timestamp(t0),
                    not_after: None,
                })
                .sign(&fed.members[0].root)
                .into_bytes()
            })
            .collect();
        for chunk in dels.chunks(512) {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            store.ingest_batch(&refs, Timestamp::MAX).unwrap();
        }
        let recs: Vec<Vec<u8>> = (0..COMMITS)
            .map(|i| {
                fed.record(0, &format!("record {i}"), Timestamp(t0 + 10 + i as u64))
                    .into_bytes()
            })
            .collect();
        let started = Instant::now();
        for r in &recs {
            store.ingest_batch(&[r.as_slice()], Timestamp::MAX).unwrap();
        }
        let per = started.elapsed().as_secs_f64() * 1000.0 / COMMITS as f64;
        println!(
            "{n:>11}  {:>13}  {per:.3}",
            store.trust().delegations().count()
        );
    }
}
