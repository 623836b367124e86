//! The long fuzzing run: `cargo run --release -p accord-tests --example fuzz -- [CASES] [SEED]`
//! (1,000,000 cases per target by default), with the same per-case memory cap as the suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use accord_tests::fuzz::{Corpus, run};

#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// What one case may allocate beyond what is live when it starts.
const CASE_BUDGET: usize = 64 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let cases: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0xf022_2026);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/records");
    let mut markdown: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    markdown.sort();
    let corpus = Corpus::new(markdown);
    let started = std::time::Instant::now();
    let mut peak = 0usize;
    let done = run(&corpus, seed, cases, || {
        peak = peak.max(ALLOC.allocated());
        ALLOC.set_limit(ALLOC.allocated() + CASE_BUDGET).unwrap();
    });
    ALLOC.set_limit(usize::MAX).unwrap();
    for (name, n) in &done {
        println!("{name:16} {n} cases, no panic");
    }
    println!(
        "seed {seed}: {} cases in {:.1?}; live memory between cases at most {} KiB; every case under the {} MiB cap",
        done.iter().map(|(_, n)| n).sum::<u64>(),
        started.elapsed(),
        peak / 1024,
        CASE_BUDGET >> 20
    );
}
