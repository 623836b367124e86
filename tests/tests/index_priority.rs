//! The search index's threads run `search.index_nice` steps below the node's other threads
//! (Linux, where the nice value belongs to a thread): read back from /proc for every thread of
//! a running node that has indexed records.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::time::Duration;

use accord_node::AdmissionMode;
use accord_tests::harness::{TestFed, now, records, wait_until};

/// Each thread's name (as the kernel keeps it: 15 bytes) with the nice values of the threads of
/// that name.
fn nice_by_thread_name() -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // After the name in parentheses: state is field 3, nice field 19.
        let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let Some(nice) = after
            .split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        out.entry(comm.trim().to_string()).or_default().push(nice);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_threads_run_below_the_nodes_other_threads() -> anyhow::Result<()> {
    let tf = TestFed::new(&["KZ", "BY"], 71)?;
    let base = std::fs::read_to_string("/proc/self/stat")?
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(16).map(str::to_string))
        .and_then(|n| n.parse::<i32>().ok())
        .ok_or_else(|| anyhow::anyhow!("no nice value in /proc/self/stat"))?;
    let mut cfg = tf.config(0, vec![], AdmissionMode::Members);
    cfg.search.index_nice = 7;
    let node = accord_node::Node::spawn(cfg).await?;
    // Records indexed and searchable: the index has committed, so the indexing threads its
    // commits start exist.
    let recs = records(&tf, "priority", now(), 3);
    let n = recs.len();
    node.submit(recs).await?;
    let indexed = wait_until(Duration::from_secs(20), || async {
        node.search(accord_search::SearchQuery::default())
            .await
            .is_ok_and(|r| r.total >= n)
    })
    .await;
    assert!(indexed, "the records were not indexed");
    let threads = nice_by_thread_name();
    let lowered = (base + 7).min(19);
    for name in [
        "accord-index",
        "merge_thread_0",
        "segment_updater",
        "thrd-tantivy-in",
    ] {
        let nice = threads.get(name).cloned().unwrap_or_default();
        assert!(!nice.is_empty(), "no thread {name}: {threads:?}");
        assert!(
            nice.iter().all(|n| *n == lowered),
            "{name} runs at {nice:?}, not {lowered}"
        );
    }
    for name in ["accord-store", "tokio-rt-worker"] {
        let nice = threads.get(name).cloned().unwrap_or_default();
        assert!(!nice.is_empty(), "no thread {name}: {threads:?}");
        assert!(
            nice.iter().all(|n| *n == base),
            "{name} runs at {nice:?}, not the node's {base}"
        );
    }
    // sled starts its I/O threads when it needs them: those there keep the node's priority.
    for (name, nice) in threads.iter().filter(|(n, _)| n.starts_with("sled-io")) {
        assert!(
            nice.iter().all(|n| *n == base),
            "{name} runs at {nice:?}, not the node's {base}"
        );
    }
    node.shutdown().await;
    Ok(())
}
