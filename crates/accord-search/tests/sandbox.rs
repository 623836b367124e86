//! The extraction child's system-call filter, played by a parser that a hostile file has turned:
//! once confined, a process can read its input, write its output and allocate, and cannot open
//! a file, create one, connect anywhere or start a program.
//!
//! The filter cannot be lifted, so the confined side runs in a child: this test binary started
//! again on the one test below, with `PROBE` set.

#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::Command;

/// Set in the child that confines itself.
const PROBE: &str = "ACCORD_SANDBOX_PROBE";

/// What a turned parser tries, each as one line `name: allowed|denied (error)`.
fn probe(scratch: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut say = |name: &str, r: std::io::Result<()>| {
        lines.push(match r {
            Ok(()) => format!("{name}: allowed"),
            Err(e) => format!("{name}: denied ({:?})", e.kind()),
        });
    };
    say(
        "open a file",
        std::fs::File::open("/proc/self/status").map(drop),
    );
    say(
        "create a file",
        std::fs::write(format!("{scratch}/written"), b"x"),
    );
    say(
        "connect",
        std::net::TcpStream::connect(("127.0.0.1", 9)).map(drop),
    );
    say(
        "listen",
        std::net::TcpListener::bind(("127.0.0.1", 0)).map(drop),
    );
    say(
        "start a program",
        Command::new("/bin/true").status().map(drop),
    );
    // What a parser needs still works.
    let big = vec![7u8; 64 << 20];
    say(
        "allocate",
        if big.iter().map(|b| u64::from(*b)).sum::<u64>() == 7 * (64 << 20) {
            Ok(())
        } else {
            Err(std::io::Error::other("wrong sum"))
        },
    );
    lines
}

#[test]
fn a_confined_process_can_compute_and_write_but_not_reach_out() {
    if let Ok(scratch) = std::env::var(PROBE) {
        accord_search::sandbox::confine().unwrap();
        let mut out = std::io::stdout().lock();
        for line in probe(&scratch) {
            writeln!(out, "PROBE {line}").unwrap();
        }
        out.flush().unwrap();
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_confined_process_can_compute_and_write_but_not_reach_out",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE, scratch.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        // libtest prints its "test … ..." before the first line.
        .filter_map(|l| l.split_once("PROBE ").map(|(_, said)| said))
        .collect();
    assert_eq!(
        lines,
        [
            "open a file: denied (PermissionDenied)",
            "create a file: denied (PermissionDenied)",
            "connect: denied (PermissionDenied)",
            "listen: denied (PermissionDenied)",
            "start a program: denied (PermissionDenied)",
            "allocate: allowed",
        ],
        "child said: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{output:?}");
    assert!(!scratch.path().join("written").exists());
    // The same probe unconfined, in this process: every call is allowed here, so the denials
    // above are the filter's.
    let here = probe(&scratch.path().to_string_lossy());
    assert!(
        here.iter()
            .filter(|l| !l.starts_with("connect"))
            .all(|l| l.ends_with("allowed")),
        "{here:?}"
    );
}
