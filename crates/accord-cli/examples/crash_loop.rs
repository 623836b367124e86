//! The crash loop at length: `cargo build --release && cargo run --release -p accord-cli
//! --example crash_loop -- CYCLES [SEED]` SIGKILLs a real `accord run` (the release binary
//! beside this example) at a random moment of each of CYCLES ingest cycles, checks after every
//! restart that every acknowledged object is there, and runs `accord check` at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/crash_loop.rs"]
mod crash_loop;

fn main() {
    let mut args = std::env::args().skip(1);
    let cycles: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seed: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0x5eed_2026);
    let bin = crash_loop::sibling_binary();
    if !bin.exists() {
        eprintln!(
            "{} not found: build the binary first (cargo build --release)",
            bin.display()
        );
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let report = crash_loop::crash_loop(&bin, dir.path(), cycles, seed);
    println!(
        "{} cycles (seed {seed}) in {:.1?}: {} acknowledged objects, none lost; accord check:\n{}",
        report.cycles,
        started.elapsed(),
        report.acknowledged,
        report.check.trim()
    );
}
