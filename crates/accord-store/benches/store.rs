//! Store: durable put one by one (one flush each) vs group commit, and get.

#![allow(clippy::unwrap_used, missing_docs)]

use accord_core::devnet::DevFederation;
use accord_core::{ObjectId, Timestamp};
use accord_store::{Store, StoreOptions};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const N: usize = 200;

fn setup() -> (tempfile::TempDir, Store, Vec<Vec<u8>>) {
    let fed =
        DevFederation::new(&["KZ", "BY", "AM"], [7; 32], Timestamp(1_700_000_000_000)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        Store::open(dir.path(), fed.genesis.as_bytes(), StoreOptions::default()).unwrap();
    store
        .ingest(fed.delegation(0).as_bytes(), Timestamp::MAX)
        .unwrap();
    let recs = (0..N)
        .map(|i| {
            fed.record(
                0,
                &format!("record {i}"),
                Timestamp(1_700_000_001_000 + i as u64),
            )
            .into_bytes()
        })
        .collect();
    (dir, store, recs)
}

fn puts(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_put");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("durable_one_by_one", |b| {
        b.iter_batched(
            setup,
            |(_d, mut store, recs)| {
                for r in &recs {
                    store.ingest(r, Timestamp::MAX).unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("durable_group_commit", |b| {
        b.iter_batched(
            setup,
            |(_d, mut store, recs)| {
                let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
                store.ingest_batch(&refs, Timestamp::MAX).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn gets(c: &mut Criterion) {
    let (_d, mut store, recs) = setup();
    let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
    let (out, _) = store.ingest_batch(&refs, Timestamp::MAX).unwrap();
    let ids: Vec<ObjectId> = out.iter().filter_map(|o| o.id()).collect();
    let mut g = c.benchmark_group("store_get");
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("get_bytes", |b| {
        b.iter(|| ids.iter().all(|id| store.get_bytes(id).unwrap().is_some()))
    });
    g.bench_function("get_decoded", |b| {
        b.iter(|| ids.iter().all(|id| store.get(id).unwrap().is_some()))
    });
    g.finish();
}

criterion_group!(benches, puts, gets);
criterion_main!(benches);
