//! Time for a node to catch up 10,000 records it missed, end to end over loopback libp2p:
//! node B is stopped, A stores 10,000 records, B restarts and reconciles.
//! Run: `cargo run --release -p accord-tests --example catchup`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use accord_core::{ObjectType, Timestamp};
use accord_tests::harness::{TestFed, admitted, dial_addr, wait_until};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = 10_000usize;
    let tf = TestFed::new(&["KZ", "BY"], 31).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let addr = dial_addr(&a).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let recs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            tf.fed
                .record(
                    0,
                    &format!("catch-up {i}"),
                    Timestamp(now - 100_000 + i as u64),
                )
                .into_bytes()
        })
        .collect();
    let t = Instant::now();
    for chunk in recs.chunks(500) {
        a.submit(chunk.to_vec()).await.unwrap();
    }
    println!(
        "A stored {n} records in {:?} (submitted in batches of 500)",
        t.elapsed()
    );
    let t = Instant::now();
    let b = tf.spawn(1, vec![addr]).await.unwrap();
    assert!(wait_until(Duration::from_secs(30), || admitted(&b, 1)).await);
    let count = |b: accord_node::NodeHandle| async move {
        b.status()
            .await
            .map(|s| s.counts.get(&ObjectType::Record).copied().unwrap_or(0))
            .unwrap_or(0)
    };
    while count(b.clone()).await < n as u64 {
        if t.elapsed() > Duration::from_secs(300) {
            panic!("B did not catch up within 300 s");
        }
        // Measurement polling, not synchronisation.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t.elapsed();
    println!(
        "B caught up {n} records in {elapsed:?} ({:.0} records/s) from its start",
        n as f64 / elapsed.as_secs_f64()
    );
    for (peer, s) in b.sync_stats() {
        println!(
            "  session with {peer}: rounds {} bytes out/in {}/{} missing {} fetched {}",
            s.rounds, s.bytes_out, s.bytes_in, s.missing, s.fetched
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}
