//! The system calls an extraction child may make (Linux, x86-64 and AArch64): a seccomp filter
//! that the child installs on itself before it reads a file (see `extract::run_child`). A
//! parser that a hostile file turned against its own process can then read its standard input,
//! write its standard output and error, manage its own memory and end itself, and nothing
//! else: it cannot open a file, connect anywhere, start a program, signal another process or
//! make its memory executable. Every other call fails with `EPERM` without running.

/// Why a child is not confined.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// This platform has no filter here (not Linux on x86-64 or AArch64).
    #[error("no system-call filter on this platform")]
    Unsupported,
    /// The kernel refused the filter (no seccomp, or a container that forbids it).
    #[error("the kernel refused the system-call filter: {0}")]
    Refused(String),
}

/// Installs the filter on every thread of this process. Irreversible: call it in a child that
/// has opened all it needs (its standard streams).
pub fn confine() -> Result<(), ConfineError> {
    imp::confine()
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod imp {
    use std::collections::BTreeMap;

    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };

    use super::ConfineError;

    #[cfg(target_arch = "x86_64")]
    const ARCH: TargetArch = TargetArch::x86_64;
    #[cfg(target_arch = "aarch64")]
    const ARCH: TargetArch = TargetArch::aarch64;

    /// `PROT_EXEC`: memory may be mapped and protected, never made executable.
    const PROT_EXEC: u64 = 0x4;
    /// The answer to every call not allowed below.
    const EPERM: u32 = 1;

    fn refused(e: impl std::fmt::Display) -> ConfineError {
        ConfineError::Refused(e.to_string())
    }

    /// A rule: argument `index` compared with `value`.
    fn arg(index: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompRule, ConfineError> {
        let condition =
            SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).map_err(refused)?;
        SeccompRule::new(vec![condition]).map_err(refused)
    }

    /// Rules that allow a call when argument `index` is one of `values`.
    fn one_of(index: u8, values: &[u64]) -> Result<Vec<SeccompRule>, ConfineError> {
        values
            .iter()
            .map(|v| arg(index, SeccompCmpOp::Eq, *v))
            .collect()
    }

    fn program() -> Result<BpfProgram, ConfineError> {
        let pid = u64::from(std::process::id());
        let not_exec = || arg(2, SeccompCmpOp::MaskedEq(PROT_EXEC), 0).map(|r| vec![r]);
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        // Any arguments: the process's own memory, its own end, waits and time.
        for call in [
            libc::SYS_munmap,
            libc::SYS_mremap,
            libc::SYS_madvise,
            libc::SYS_brk,
            libc::SYS_futex,
            libc::SYS_sched_yield,
            libc::SYS_exit,
            libc::SYS_exit_group,
            libc::SYS_rt_sigreturn,
            libc::SYS_rt_sigprocmask,
            libc::SYS_rt_sigaction,
            libc::SYS_sigaltstack,
            libc::SYS_restart_syscall,
            libc::SYS_getpid,
            libc::SYS_gettid,
            libc::SYS_clock_gettime,
            libc::SYS_getrandom,
            libc::SYS_close,
        ] {
            rules.insert(call, Vec::new());
        }
        // The file in, the text and the errors out.
        rules.insert(libc::SYS_read, one_of(0, &[0])?);
        rules.insert(libc::SYS_write, one_of(0, &[1, 2])?);
        rules.insert(libc::SYS_writev, one_of(0, &[1, 2])?);
        // Memory, never executable.
        rules.insert(libc::SYS_mmap, not_exec()?);
        rules.insert(libc::SYS_mprotect, not_exec()?);
        // A panic that aborts signals this process only.
        rules.insert(libc::SYS_tgkill, one_of(0, &[pid])?);
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Errno(EPERM),
            SeccompAction::Allow,
            ARCH,
        )
        .map_err(refused)?;
        filter.try_into().map_err(refused)
    }

    pub(super) fn confine() -> Result<(), ConfineError> {
        let program = program()?;
        seccompiler::apply_filter_all_threads(&program).map_err(refused)
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod imp {
    pub(super) fn confine() -> Result<(), super::ConfineError> {
        Err(super::ConfineError::Unsupported)
    }
}
