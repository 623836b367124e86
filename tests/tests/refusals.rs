//! A refused stranger that keeps coming back: cut at once each time, counted each time, and
//! warned about once, not once per attempt (its own test binary, since it captures the log).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_core::SecretKey;
use accord_net::Network;
use accord_tests::harness::{TestFed, dial_addr, disconnected, raw_peer_config, wait_until};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn refusals(node: &accord_node::NodeHandle) -> f64 {
    node.metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("accord_non_members_disconnected_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_that_keeps_redialling_is_cut_at_once_and_logged_once() {
    let log = Capture::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let tf = TestFed::new(&["KZ"], 16).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let a_addr = dial_addr(&a).await.unwrap();
    let key = SecretKey::from_seed([88; 32]);
    let (net, handle, mut events) = Network::new(raw_peer_config(&key, &tf, None, vec![])).unwrap();
    tokio::spawn(net.run());

    const ATTEMPTS: usize = 6;
    let started = Instant::now();
    for attempt in 0..ATTEMPTS {
        handle.dial(a_addr.parse().unwrap()).await.unwrap();
        let cut = disconnected(&mut events, Duration::from_secs(20)).await;
        assert!(cut, "attempt {attempt}: the stranger was not disconnected");
    }
    eprintln!("{ATTEMPTS} attempts cut in {:?}", started.elapsed());
    assert!(
        wait_until(Duration::from_secs(10), || async {
            refusals(&a).await >= ATTEMPTS as f64
        })
        .await,
        "every attempt is counted: {}",
        refusals(&a).await
    );
    // A counts a refusal when it cuts the connection and forgets the peer when it closes.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            a.peers().await.unwrap().is_empty()
        })
        .await,
        "A still lists the stranger"
    );
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).to_string();
    let warnings = text.matches("peer refused: disconnecting").count();
    // One warning a minute per peer: a run slower than that may rightly print a second.
    let minutes = started.elapsed().as_secs() / 60 + 1;
    assert!(
        (1..=minutes as usize).contains(&warnings),
        "one warning for {ATTEMPTS} attempts in {:?}:\n{text}",
        started.elapsed()
    );
    handle.shutdown().await;
    a.shutdown().await;
}
