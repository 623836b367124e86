//! Throughput of `GET /v1/export` read by a client as fast as it can: one node holding 20,000
//! records (about 40 MB signed), three exports one after another.
//! Run: `cargo run --release -p accord-tests --example export_speed`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use accord_core::Timestamp;
use accord_tests::harness::{TestFed, now, serve};
use futures::StreamExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = 20_000u64;
    let tf = TestFed::new(&["KZ"], 33).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let t = now();
    let recs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut body = tf
                .fed
                .record_body(0, &format!("export {i}"), Timestamp(t.0 - n + i));
            body.body = std::collections::BTreeMap::from([(
                "en".to_string(),
                format!("record {i} ").repeat(160),
            )]);
            accord_core::Object::Record(body)
                .sign(&tf.fed.members[0].publisher)
                .into_bytes()
        })
        .collect();
    for batch in recs.chunks(500) {
        node.submit(batch.to_vec()).await.unwrap();
    }
    let base = serve(&node).await;
    for run in 0..3 {
        let started = Instant::now();
        let r = accord_tests::http_get(format!("{base}/v1/export"))
            .await
            .unwrap();
        let mut body = r.bytes_stream();
        let mut bytes = 0usize;
        while let Some(piece) = body.next().await {
            bytes += piece.unwrap().len();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "run {run}: {bytes} bytes in {secs:.3} s, {:.1} MB/s",
            bytes as f64 / secs / 1e6
        );
    }
    node.shutdown().await;
}
