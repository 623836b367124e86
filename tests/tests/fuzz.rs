//! Fuzzing in the suite: 20,000 cases per target (the release example runs 1,000,000), with a
//! cap on what one case may allocate. See `accord_tests::fuzz`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use accord_tests::fuzz::{Corpus, run};

/// Tracks every allocation of this test binary, and fails any past the cap set per case.
#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// What one case may allocate beyond what is live when it starts: the largest object a peer may
/// send is 1 MiB, and no decoder may need more than a small multiple of its input.
const CASE_BUDGET: usize = 64 << 20;

fn markdown() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/records");
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

#[test]
fn every_decoder_survives_twenty_thousand_hostile_inputs() {
    let corpus = Corpus::new(markdown());
    let cases = std::env::var("ACCORD_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20_000);
    let started = std::time::Instant::now();
    let done = run(&corpus, 0xf022_2026, cases, || {
        ALLOC.set_limit(ALLOC.allocated() + CASE_BUDGET).unwrap();
    });
    ALLOC.set_limit(usize::MAX).unwrap();
    eprintln!("{done:?} in {:?}", started.elapsed());
    assert_eq!(done.len(), 6);
    assert!(done.iter().all(|(_, n)| *n == cases));
}
