//! The CPU priority of the search index's threads.
//!
//! Indexing and merging are work that can wait (the accepted → searchable bound is half a
//! second, a merge has no deadline); acknowledging a POST, judging gossip and answering peers
//! cannot. When the cores are saturated, the index's threads therefore run `search.index_nice`
//! steps below the node's other threads, as a database runs its compactions: they still take
//! every core the rest leaves idle, and a share (about a tenth at 10 steps) when nothing is idle.
//!
//! On Linux the nice value belongs to a thread, and a thread starts with the value of the thread
//! that starts it: the thread that opens the index (and so starts tantivy's merge and segment
//! threads) and the index thread (whose commits start tantivy's indexing threads) lower their own
//! priority first. Elsewhere the nice value belongs to the process, and nothing is changed.

/// Lowers the calling thread's priority by `by` nice steps (at most to 19) and returns its new
/// nice value. Raising a priority needs privileges, so `by` only ever lowers it.
pub(crate) fn lower_this_thread(by: u8) -> std::io::Result<i32> {
    #[cfg(target_os = "linux")]
    {
        // `None`: PRIO_PROCESS with id 0, which Linux reads as the calling thread.
        let now = rustix::process::getpriority_process(None)?;
        if by == 0 {
            return Ok(now);
        }
        let nice = (now + i32::from(by)).min(19);
        rustix::process::setpriority_process(None, nice)?;
        Ok(nice)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = by;
        Ok(0)
    }
}

/// [`lower_this_thread`], logging a failure (the thread then runs at the node's priority).
pub(crate) fn lower_this_thread_or_warn(by: u8, thread: &str) {
    if let Err(e) = lower_this_thread(by) {
        tracing::warn!(error = %e, thread, "cannot lower the thread's CPU priority: it runs at the node's");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A thread lowered by 5 has 5 more than before; a thread it starts inherits that; the
    /// thread that started it keeps its own.
    #[test]
    fn a_lowered_thread_and_the_threads_it_starts_run_lower() {
        let outer = lower_this_thread(0).expect("getpriority");
        let (mine, child) = std::thread::spawn(move || {
            let mine = lower_this_thread(5).expect("setpriority");
            let child = std::thread::spawn(|| lower_this_thread(0).expect("getpriority"))
                .join()
                .expect("child thread");
            (mine, child)
        })
        .join()
        .expect("thread");
        assert_eq!(mine, (outer + 5).min(19));
        assert_eq!(child, mine);
        assert_eq!(lower_this_thread(0).expect("getpriority"), outer);
    }
}
