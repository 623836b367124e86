//! A real node process SIGKILLed at random moments during ingest, 20 times: every acknowledged
//! object survives every restart, and `accord check` is clean at the end. The longer run is
//! `cargo run --release -p accord-cli --example crash_loop -- CYCLES [SEED]`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/crash_loop.rs"]
mod crash_loop;

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_object() {
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_accord"));
    let report = crash_loop::crash_loop(&bin, dir.path(), 20, 0x5eed_2026);
    eprintln!(
        "{} cycles, {} acknowledged objects, all kept; check:\n{}",
        report.cycles, report.acknowledged, report.check
    );
    assert_eq!(report.cycles, 20);
}
