//! The memory allocator's settings a node runs with.
//!
//! The `accord` binary allocates with mimalloc, which reads its settings from the environment
//! once, when the process starts. Two of its defaults cost a node most of its memory target
//! (docs/BENCHMARKS.md, "The allocator's settings, measured again"):
//! - it keeps freed memory for a second before returning it (`MIMALLOC_PURGE_DELAY`), and
//!   tantivy frees and allocates its indexing buffers at every commit;
//! - it asks the kernel for transparent huge pages (`MIMALLOC_ALLOW_THP`) wherever the system's
//!   setting is `madvise` or `always`, and a huge page partly used is resident whole.
//!
//! [`ALLOCATOR_ENV`] gives the values the node is measured and shipped with; the systemd unit
//! and the container set them. A process that runs a node started without them (`accord run`
//! from a shell) starts itself again, in place, with the missing ones added
//! ([`exec_with_allocator_env`]); a value the operator set is kept.

/// The allocator's environment a node runs with: freed memory returned at once, and no
/// transparent huge pages for this process (mimalloc then turns them off with `prctl`).
pub const ALLOCATOR_ENV: [(&str, &str); 2] =
    [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ALLOW_THP", "0")];

/// The value mimalloc reads for `name`: it matches names whatever their case, and takes the
/// purge delay under its former name too (`MIMALLOC_RESET_DELAY`), so an operator's setting in
/// any of these spellings counts as set.
fn set_value(name: &str) -> Option<std::ffi::OsString> {
    let former = (name == "MIMALLOC_PURGE_DELAY").then_some("MIMALLOC_RESET_DELAY");
    std::env::vars_os().find_map(|(k, v)| {
        let k = k.to_str()?;
        (k.eq_ignore_ascii_case(name) || former.is_some_and(|f| k.eq_ignore_ascii_case(f)))
            .then_some(v)
    })
}

/// Variables of [`ALLOCATOR_ENV`] this process's environment lacks.
pub fn missing_allocator_env() -> Vec<(&'static str, &'static str)> {
    ALLOCATOR_ENV
        .into_iter()
        .filter(|(name, _)| set_value(name).is_none())
        .collect()
}

/// The allocator's settings this process has, as `NAME=value` words (`unset` for a missing
/// one): what a benchmark's line and the node's start line record.
pub fn allocator_env_in_effect() -> String {
    ALLOCATOR_ENV
        .iter()
        .map(|(name, _)| {
            let value = set_value(name)
                .map_or_else(|| "unset".to_owned(), |v| v.to_string_lossy().into_owned());
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts this program again in place (same process id, arguments and environment) with the
/// variables of [`ALLOCATOR_ENV`] it lacks added, since the allocator reads them only when a
/// process starts (setting them from inside would take a call into mimalloc's C interface,
/// which the workspace's `forbid(unsafe_code)` rules out). Returns `None` when nothing is
/// missing, or when the running executable is not the program named by `argv[0]` (a program
/// started through the dynamic loader, `ld.so /usr/local/bin/accord run`, whose executable is
/// the loader); otherwise it returns only if the program could not be started again, with the
/// error (the caller goes on with the allocator's defaults). Setting both variables, to any
/// value, skips it (under a debugger or valgrind, say).
#[cfg(unix)]
pub fn exec_with_allocator_env() -> Option<std::io::Error> {
    use std::os::unix::process::CommandExt;
    let missing = missing_allocator_env();
    if missing.is_empty() {
        return None;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Some(e),
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    if std::path::Path::new(&arg0).file_name() != exe.file_name() {
        return None;
    }
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg0(arg0).args(args);
    for (name, value) in missing {
        cmd.env(name, value);
    }
    Some(cmd.exec())
}

/// Elsewhere the settings are left to the environment.
#[cfg(not(unix))]
pub fn exec_with_allocator_env() -> Option<std::io::Error> {
    None
}
