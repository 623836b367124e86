//! A refused stranger that keeps coming back: cut at once each time, counted each time, and
//! warned about once, not once per attempt, nor once per peer id when it takes a fresh one
//! each time (its own test binary, since it captures the log).

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
    // Info: the level an operator runs at; what it prints of strangers is what is checked.
    let log = Capture::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
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
    handle.shutdown().await;
    // The same stranger with a fresh peer id at each attempt: each one is new to A.
    for attempt in 0..ATTEMPTS {
        let key = SecretKey::from_seed([100 + attempt as u8; 32]);
        let (net, handle, mut events) =
            Network::new(raw_peer_config(&key, &tf, None, vec![])).unwrap();
        tokio::spawn(net.run());
        handle.dial(a_addr.parse().unwrap()).await.unwrap();
        let cut = disconnected(&mut events, Duration::from_secs(20)).await;
        assert!(cut, "fresh id {attempt}: the stranger was not disconnected");
        handle.shutdown().await;
    }
    assert!(
        wait_until(Duration::from_secs(10), || async {
            refusals(&a).await >= 2.0 * ATTEMPTS as f64
        })
        .await,
        "every attempt is counted: {}",
        refusals(&a).await
    );
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).to_string();
    let warnings = text.matches("peer refused: disconnecting").count();
    // One warning a minute, whatever the peer ids: a run slower than that may rightly print
    // one more a minute (and the first warning about the second peer id, a new one).
    let minutes = started.elapsed().as_secs() / 60 + 1;
    assert!(
        (1..=2 * minutes as usize).contains(&warnings),
        "{warnings} warnings for {} attempts from {} peer ids in {:?}:\n{text}",
        2 * ATTEMPTS,
        ATTEMPTS + 1,
        started.elapsed()
    );
    // Connections of peers never admitted are not in A's log (the strangers' own networks log
    // A, whom they took at once: lines about A's peer id are theirs).
    let about_a = format!("peer={}", a.peer_id());
    for line in text.lines().filter(|l| !l.contains(&about_a)) {
        assert!(
            !line.contains("peer connected") && !line.contains("peer disconnected"),
            "A logged a stranger's connection: {line}"
        );
    }
    a.shutdown().await;
}
