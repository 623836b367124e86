//! Attachments' text is extracted in a child process (`accord extract-text`), so that a hostile
//! file ends the child, never the node: a PDF that overflows the parser's stack, a parser that
//! never returns, a child that would take the machine's memory.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_search::extract::{
    CHILD_COMMAND, ExtractError, ExtractLimits, extract, extract_in_child, nested_arrays_pdf,
    sample_docx, sample_pdf,
};

fn accord() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_accord"))
}

fn limits() -> ExtractLimits {
    ExtractLimits {
        timeout: Duration::from_secs(60),
        ..ExtractLimits::default()
    }
}

#[test]
fn a_pdf_that_overflows_its_parser_ends_only_the_child() {
    // In this process the same file aborts it (`extract_bounded` runs on a thread).
    let r = extract_in_child(
        accord(),
        "application/pdf",
        "deep.pdf",
        Arc::new(nested_arrays_pdf(100_000)),
        &limits(),
    );
    match r {
        Err(ExtractError::Crashed(m)) => assert!(m.contains("overflowed its stack"), "{m}"),
        other => panic!("expected the child to crash: {other:?}"),
    }
    // A shallow one is a well-formed PDF: read (no text in it).
    let r = extract_in_child(
        accord(),
        "application/pdf",
        "shallow.pdf",
        Arc::new(nested_arrays_pdf(5)),
        &limits(),
    );
    assert!(r.as_ref().is_ok_and(|t| t.trim().is_empty()), "{r:?}");
}

#[test]
fn the_child_answers_as_extraction_in_process_does() {
    let text = "Привет, мир: the sandbox opens.";
    let r = extract_in_child(
        accord(),
        "text/plain",
        "a.txt",
        Arc::new(text.as_bytes().to_vec()),
        &limits(),
    );
    assert_eq!(r.as_deref(), Ok(text));
    // The parsers work within the child's system-call filter.
    let pdf = sample_pdf(&["Digital skills programme", "for civil servants"]);
    let docx = sample_docx(&["Приказ о цифровых навыках", "Decree & annex"]).unwrap();
    for (media_type, name, bytes) in [
        ("application/pdf", "p.pdf", pdf),
        ("application/octet-stream", "d.docx", docx),
    ] {
        let here = extract(media_type, name, &bytes, &limits()).unwrap();
        assert!(here.contains("ills") || here.contains("цифров"), "{here}");
        let there = extract_in_child(accord(), media_type, name, Arc::new(bytes), &limits());
        assert_eq!(there.as_deref(), Ok(here.as_str()));
    }
    // Errors keep their kind across the process boundary.
    let r = extract_in_child(
        accord(),
        "application/zip",
        "a.zip",
        Arc::new(b"PK".to_vec()),
        &limits(),
    );
    assert_eq!(
        r,
        Err(ExtractError::Unsupported("application/zip (a.zip)".into()))
    );
    let r = extract_in_child(
        accord(),
        "application/pdf",
        "bad.pdf",
        Arc::new(b"%PDF-1.5 garbage".to_vec()),
        &limits(),
    );
    assert!(matches!(r, Err(ExtractError::Malformed(_))), "{r:?}");
    // The text is cut at the character limit, as in process.
    let r = extract_in_child(
        accord(),
        "text/plain",
        "long.txt",
        Arc::new("я".repeat(50).into_bytes()),
        &ExtractLimits {
            max_chars: 10,
            ..limits()
        },
    );
    assert_eq!(r, Ok("я".repeat(10)));
    // A name that looks like an option is a name; control characters are refused.
    let r = extract_in_child(
        accord(),
        "text/plain",
        "--help",
        Arc::new(b"plain words".to_vec()),
        &limits(),
    );
    assert_eq!(r.as_deref(), Ok("plain words"));
    let r = extract_in_child(
        accord(),
        "text/plain\0",
        "a.txt",
        Arc::new(b"x".to_vec()),
        &limits(),
    );
    assert!(matches!(r, Err(ExtractError::Malformed(_))), "{r:?}");
    // A program that cannot be started is the node's problem, not the file's.
    let r = extract_in_child(
        Path::new("/nonexistent/accord"),
        "text/plain",
        "a.txt",
        Arc::new(b"x".to_vec()),
        &limits(),
    );
    assert!(r.as_ref().is_err_and(ExtractError::is_transient), "{r:?}");
}

/// A child still running at the timeout is killed (here a stand-in that never answers).
#[cfg(unix)]
#[test]
fn a_child_that_never_answers_is_killed_at_the_timeout() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("stuck");
    std::fs::write(&program, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let started = Instant::now();
    let r = extract_in_child(
        &program,
        "text/plain",
        "a.txt",
        Arc::new(b"x".to_vec()),
        &ExtractLimits {
            timeout: Duration::from_secs(1),
            ..ExtractLimits::default()
        },
    );
    assert_eq!(r, Err(ExtractError::Timeout(Duration::from_secs(1))));
    // Killed, not waited for: far less than the stand-in's ten minutes.
    assert!(started.elapsed() < Duration::from_secs(300));
}

/// A child that could not install its filter says so on its first line, which is not taken
/// for its result or its error (here stand-ins for such a child).
#[cfg(unix)]
#[test]
fn a_child_without_its_filter_is_still_understood() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let stand_in = |name: &str, script: &str| {
        let program = dir.path().join(name);
        std::fs::write(&program, format!("#!/bin/sh\ncat > /dev/null\n{script}\n")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        program
    };
    let said = "printf 'unconfined\\tno filter here\\n' >&2";
    let run = |program: &Path| {
        extract_in_child(
            program,
            "text/plain",
            "a.txt",
            Arc::new(b"x".to_vec()),
            &limits(),
        )
    };
    let ok = stand_in("ok", &format!("{said}\nprintf 'the text'"));
    assert_eq!(run(&ok).as_deref(), Ok("the text"));
    let failed = stand_in(
        "failed",
        &format!("{said}\nprintf 'malformed\\tno end\\n' >&2\nexit 3"),
    );
    assert_eq!(run(&failed), Err(ExtractError::Malformed("no end".into())));
    let crashed = stand_in(
        "crashed",
        &format!("{said}\necho 'it broke' >&2\nkill -SEGV $$"),
    );
    match run(&crashed) {
        Err(ExtractError::Crashed(m)) => {
            assert!(
                m.ends_with(": it broke") && !m.contains("unconfined"),
                "{m}"
            )
        }
        other => panic!("expected a crash: {other:?}"),
    }
}

/// The child caps its own address space before it reads the file: a parser that inflates a
/// stream without a limit fails its allocation in the child.
#[cfg(target_os = "linux")]
#[test]
fn the_child_caps_its_address_space_before_reading_the_file() {
    use std::process::{Command, Stdio};
    let own = std::fs::read_to_string("/proc/self/limits").unwrap();
    assert!(
        own.lines()
            .any(|l| l.starts_with("Max address space") && l.contains("unlimited")),
        "this test needs an unlimited address space to tell the child's own cap: {own}"
    );
    let mut child = Command::new(accord())
        .args([CHILD_COMMAND, "text/plain", "a.txt"])
        .env("MIMALLOC_ARENA_RESERVE", "64MiB")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The child waits for its input: read its limits meanwhile.
    let limits = format!("/proc/{}/limits", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    let cap = loop {
        let text = std::fs::read_to_string(&limits).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.starts_with("Max address space"))
            .unwrap_or_default()
            .to_string();
        let soft = line.split_whitespace().nth(3).unwrap_or("unlimited");
        if let Ok(bytes) = soft.parse::<u64>() {
            break bytes;
        }
        assert!(Instant::now() < deadline, "no cap: {line}");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    // What the program maps at start (about 110 MiB with a 64 MiB allocator arena) plus the
    // child's 512 MiB.
    assert!(
        (512 << 20..2 << 30).contains(&cap),
        "address space capped at {} MiB",
        cap >> 20
    );
}

/// The child filters its own system calls before it reads the file (`accord_search::sandbox`;
/// what the filter denies is played in accord-search's tests/sandbox.rs).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[test]
fn the_child_filters_its_system_calls_before_reading_the_file() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(accord())
        .args([CHILD_COMMAND, "text/plain", "a.txt"])
        .env("MIMALLOC_ARENA_RESERVE", "64MiB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child waits for its input: read its status meanwhile (mode 2: a filter).
    let status = format!("/proc/{}/status", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        if field("Seccomp:").as_deref() == Some("2") {
            assert_eq!(field("NoNewPrivs:").as_deref(), Some("1"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no filter: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all("слова и words".as_bytes()).unwrap();
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out, "слова и words");
    // Confined: it did not say it runs without its filter.
    assert_eq!(err, "");
}
