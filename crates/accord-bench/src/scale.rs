//! `scale`: a federation of many nodes in one process, each the node's own code over loopback
//! TCP seen through a simulated link (`accord_net::sim`: per-link one-way delay, packet loss as
//! retransmission delay, partitions). It measures propagation to every node, duplicate gossip
//! deliveries, bytes per node per record, convergence after a partition into halves heals and
//! after a tenth of the nodes restart empty.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_core::{ObjectId, SignedObject, Timestamp};
use accord_net::sim::SimNet;
use accord_node::{Node, NodeHandle};
use accord_tests::harness::{TestFed, dial_addr, record_count};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{metric, now_ms, pct, record, round, wait_for};

/// The run's settings (`accord-bench scale --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct Scale {
    #[arg(long, default_value_t = 50)]
    pub nodes: usize,
    #[arg(long, default_value_t = 100)]
    pub records: usize,
    /// Records per second, each published into a different node.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Least one-way delay of a link, ms.
    #[arg(long, default_value_t = 10)]
    pub min_delay_ms: u64,
    /// Greatest one-way delay of a link, ms.
    #[arg(long, default_value_t = 120)]
    pub max_delay_ms: u64,
    /// Probability that a packet is lost (shows as a retransmission delay).
    #[arg(long, default_value_t = 0.01)]
    pub loss: f64,
    /// Bootstrap peers per node (more are found by Kademlia).
    #[arg(long, default_value_t = 4)]
    pub degree: usize,
    /// Gossipsub mesh degree (`network.gossip_mesh_n`; 0: every admitted peer is sent
    /// every object).
    #[arg(long, default_value_t = accord_net::DEFAULT_GOSSIP_MESH_N)]
    pub mesh_n: usize,
    /// Records published into each half while the federation is partitioned.
    #[arg(long, default_value_t = 25)]
    pub partition_records: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Gossipsub's own counters (registered by accord-net under this prefix).
const RECV_ALL: &str = "libp2p_gossipsub_router_topic_msg_recv_counts_unfiltered_total";
const RECV_FIRST: &str = "libp2p_gossipsub_router_topic_msg_recv_counts_total";
const MESH_PEERS: &str = "libp2p_gossipsub_router_mesh_peer_counts";
const RECV_BYTES_ALL: &str = "libp2p_gossipsub_router_topic_msg_recv_bytes_unfiltered_total";

/// Two-letter member codes for `n` members: AA, AB, …
fn codes(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let a = (b'A' + (i / 26) as u8) as char;
            let b = (b'A' + (i % 26) as u8) as char;
            format!("{a}{b}")
        })
        .collect()
}

struct Fed {
    tf: TestFed,
    net: Arc<SimNet>,
    nodes: Vec<Option<NodeHandle>>,
    seed: u64,
    degree: usize,
    mesh_n: usize,
}

impl Fed {
    async fn spawn(&mut self, i: usize) -> Result<()> {
        // Bootstrap peers: `degree` others drawn from the running nodes.
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&j| j != i && self.nodes[j].is_some())
            .collect();
        let mut bootstrap = Vec::new();
        let mut r = self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for _ in 0..self.degree.min(running.len()) {
            r = r
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let j = running[(r >> 33) as usize % running.len()];
            if let Some(node) = &self.nodes[j]
                && let Some(addr) = dial_addr(node).await
                && !bootstrap.contains(&addr)
            {
                bootstrap.push(addr);
            }
        }
        // The node's default sled cache (4 MiB since 2026-12-03; this run set 8 when the
        // default was 16, to fit fifty nodes in one process).
        let mut cfg = crate::bench_config(&self.tf, i, bootstrap);
        cfg.network.sim = Some(self.net.link(i as u16));
        cfg.network.gossip_mesh_n = self.mesh_n;
        self.nodes[i] = Some(Node::spawn(cfg).await?);
        Ok(())
    }

    fn running(&self) -> impl Iterator<Item = (usize, &NodeHandle)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    /// Waits until every running node holds `n` records; the time each took from `since`.
    async fn all_hold(&self, n: u64, since: Instant, timeout: Duration) -> Result<Vec<Duration>> {
        let mut done: Vec<Option<Duration>> = vec![None; self.nodes.len()];
        let deadline = Instant::now() + timeout;
        loop {
            for (i, node) in self.running() {
                if done[i].is_none() && record_count(node).await >= n {
                    done[i] = Some(since.elapsed());
                }
            }
            let pending: Vec<usize> = self
                .running()
                .map(|(i, _)| i)
                .filter(|&i| done[i].is_none())
                .collect();
            if pending.is_empty() {
                return Ok(done.into_iter().flatten().collect());
            }
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?}: nodes {pending:?} hold fewer than {n} records");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A counter of every running node.
    async fn counters(&self, name: &str) -> Vec<f64> {
        let mut all = Vec::new();
        for (_, node) in self.running() {
            all.push(metric(&node.metrics_text().await, name).unwrap_or(0.0));
        }
        all
    }

    async fn counter_sum(&self, name: &str) -> f64 {
        self.counters(name).await.iter().sum()
    }

    fn bytes_in(&self) -> Vec<u64> {
        (0..self.nodes.len()).map(|i| self.net.bytes(i).0).collect()
    }
}

pub async fn scale(s: Scale) -> Result<Value> {
    if !(4..=600).contains(&s.nodes) {
        bail!("--nodes must be between 4 and 600");
    }
    let codes = codes(s.nodes);
    let code_refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let tf = TestFed::new(&code_refs, 49)?;
    let net = SimNet::new(
        s.nodes,
        s.seed,
        Duration::from_millis(s.min_delay_ms),
        Duration::from_millis(s.max_delay_ms),
        s.loss,
    );
    let mut fed = Fed {
        tf,
        net: net.clone(),
        nodes: (0..s.nodes).map(|_| None).collect(),
        seed: s.seed,
        degree: s.degree,
        mesh_n: s.mesh_n,
    };
    let t = Instant::now();
    for i in 0..s.nodes {
        fed.spawn(i).await?;
    }
    // Ready when every node has a few mesh peers on the topic (or, without a mesh, admitted
    // peers).
    let want = 3.min(s.nodes - 1);
    for (_, node) in fed.running() {
        wait_for(
            "every node to have mesh peers",
            Duration::from_secs(120),
            Duration::from_millis(100),
            || async {
                if s.mesh_n == 0 {
                    node.peers()
                        .await
                        .map(|p| p.iter().filter(|p| p.admitted).count() >= want)
                        .unwrap_or(false)
                } else {
                    metric(&node.metrics_text().await, MESH_PEERS).unwrap_or(0.0) >= want as f64
                }
            },
        )
        .await?;
    }
    let formed_s = t.elapsed().as_secs_f64();
    let mut peers = Vec::new();
    for (_, node) in fed.running() {
        peers.push(node.peers().await.map(|p| p.len()).unwrap_or(0) as f64);
    }

    // Propagation: records published at a steady rate, each into a different node.
    let base = now_ms() - 3_600_000;
    let recs: Vec<Vec<u8>> = (0..s.records)
        .map(|i| record(&fed.tf, i, Timestamp(base + i as u64)))
        .collect();
    let record_bytes = recs.iter().map(Vec::len).sum::<usize>() as f64 / recs.len().max(1) as f64;
    let ids: Vec<ObjectId> = recs
        .iter()
        .map(|r| {
            SignedObject::decode_draft(r, usize::MAX, accord_core::Limits::default().scan())
                .map(|o| o.id())
        })
        .collect::<Result<_, _>>()?;
    let arrivals = crate::record_arrivals(fed.running());
    let gossip_bytes_before = fed.counters(RECV_BYTES_ALL).await;
    let dup_all_before = fed.counter_sum(RECV_ALL).await;
    let dup_first_before = fed.counter_sum(RECV_FIRST).await;
    let bytes_before = fed.bytes_in();
    let mut published: Vec<(usize, Instant)> = Vec::with_capacity(recs.len());
    let every = Duration::from_secs_f64(1.0 / s.rate.max(0.1));
    let start = Instant::now();
    for (k, rec) in recs.iter().enumerate() {
        let target = start + every * k as u32;
        if let Some(wait) = target.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let at = (k * 7 + 3) % s.nodes;
        let node = fed.nodes[at].as_ref().context("node not running")?;
        published.push((at, Instant::now()));
        node.submit(vec![rec.clone()]).await?;
    }
    let publish_window = start.elapsed();
    fed.all_hold(s.records as u64, start, Duration::from_secs(300))
        .await?;
    let spread = start.elapsed();
    let bytes_after = fed.bytes_in();
    let gossip_bytes: Vec<f64> = fed
        .counters(RECV_BYTES_ALL)
        .await
        .iter()
        .zip(&gossip_bytes_before)
        .map(|(a, b)| (a - b) / s.records as f64)
        .collect();
    let dup_all = fed.counter_sum(RECV_ALL).await - dup_all_before;
    let dup_first = fed.counter_sum(RECV_FIRST).await - dup_first_before;
    let (mut each, mut all_nodes) = (Vec::new(), Vec::new());
    {
        let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        for (id, (publisher, at)) in ids.iter().zip(&published) {
            let Some(a) = arrivals.get(id) else { continue };
            let mut latest = Duration::ZERO;
            for (node, when) in a {
                if node == publisher {
                    continue;
                }
                let d = when.saturating_duration_since(*at);
                each.push(d);
                latest = latest.max(d);
            }
            all_nodes.push(latest);
        }
    }
    each.sort();
    all_nodes.sort();
    // All traffic while the records spread (reconciliation, pings and heartbeats included).
    let per_record: Vec<f64> = bytes_after
        .iter()
        .zip(&bytes_before)
        .map(|(a, b)| (a - b) as f64 / s.records as f64)
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);

    // Background traffic once the records have spread and nothing is published (pings,
    // gossipsub heartbeats, Kademlia, periodic reconciliation).
    let idle_window = Duration::from_secs(10);
    let before = fed.bytes_in();
    tokio::time::sleep(idle_window).await;
    let idle: Vec<f64> = fed
        .bytes_in()
        .iter()
        .zip(&before)
        .map(|(a, b)| (a - b) as f64 / idle_window.as_secs_f64())
        .collect();
    let idle_mean = idle.iter().sum::<f64>() / idle.len() as f64;

    // Partition into halves; each half publishes; then heal.
    let half: Vec<u8> = (0..s.nodes).map(|i| u8::from(i >= s.nodes / 2)).collect();
    net.partition(&half);
    let part_recs: Vec<Vec<u8>> = (0..2 * s.partition_records)
        .map(|i| {
            let i = s.records + i;
            record(&fed.tf, i, Timestamp(base + i as u64))
        })
        .collect();
    let partition_window = Duration::from_secs(20);
    let pstart = Instant::now();
    for (k, rec) in part_recs.iter().enumerate() {
        let target = pstart + partition_window.mul_f64(k as f64 / part_recs.len() as f64);
        if let Some(wait) = target.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        // Alternate halves: node k*7 % (n/2) of the first half, or of the second.
        let side = k % 2;
        let at = side * (s.nodes / 2) + (k * 7) % (s.nodes / 2);
        let node = fed.nodes[at].as_ref().context("node not running")?;
        node.submit(vec![rec.clone()]).await?;
    }
    if let Some(wait) = (pstart + partition_window).checked_duration_since(Instant::now()) {
        tokio::time::sleep(wait).await;
    }
    let total = (s.records + part_recs.len()) as u64;
    let mut missing_at_heal = 0u64;
    for (_, node) in fed.running() {
        missing_at_heal += total.saturating_sub(record_count(node).await);
    }
    net.heal();
    let healed = Instant::now();
    let heal_times = fed
        .all_hold(total, healed, Duration::from_secs(600))
        .await?;
    let heal_all = heal_times.iter().max().copied().unwrap_or_default();
    let mut heal_sorted = heal_times.clone();
    heal_sorted.sort();

    // A tenth of the nodes restart with empty stores.
    let restarting: Vec<usize> = (0..s.nodes.div_ceil(10))
        .map(|k| (k * 10 + 5) % s.nodes)
        .collect();
    for &i in &restarting {
        if let Some(node) = fed.nodes[i].take() {
            node.shutdown().await;
        }
        let data = fed.tf.dir.path().join(codes[i].as_str()).join("data");
        std::fs::remove_dir_all(&data).with_context(|| format!("removing {}", data.display()))?;
    }
    let rstart = Instant::now();
    for &i in &restarting {
        fed.spawn(i).await?;
    }
    let mut restart_times = Vec::new();
    for &i in &restarting {
        let node = fed.nodes[i].as_ref().context("restarted node")?;
        wait_for(
            "a restarted node to hold every record",
            Duration::from_secs(600),
            Duration::from_millis(100),
            || async { record_count(node).await >= total },
        )
        .await?;
        restart_times.push(rstart.elapsed());
    }
    restart_times.sort();

    for (_, node) in fed.running() {
        node.shutdown().await;
    }
    let first = dup_first.max(1.0);
    Ok(json!({
        "bench": "scale",
        "nodes": s.nodes,
        "records": s.records,
        "rate_per_s": s.rate,
        "link": {
            "one_way_delay_ms": [s.min_delay_ms, s.max_delay_ms],
            "loss": s.loss,
            "bootstrap_peers": s.degree,
            "gossip_mesh_n": s.mesh_n,
            "seed": s.seed,
        },
        "mesh_formed_s": round(formed_s, 2),
        "peers_per_node_mean": round(peers.iter().sum::<f64>() / peers.len() as f64, 1),
        "record_bytes": round(record_bytes, 0),
        "propagation_ms": {
            "each_node_p50": pct(&each, 0.5),
            "each_node_p99": pct(&each, 0.99),
            "all_nodes_p50": pct(&all_nodes, 0.5),
            "all_nodes_p99": pct(&all_nodes, 0.99),
            "all_nodes_max": pct(&all_nodes, 1.0),
        },
        "publish_window_s": round(publish_window.as_secs_f64(), 2),
        "all_held_after_s": round(spread.as_secs_f64(), 2),
        "gossip_messages_received_per_first_delivery": round(dup_all / first, 2),
        "duplicates_per_message_per_node": round((dup_all - dup_first) / first, 2),
        "gossip_bytes_in_per_node_per_record": {
            "mean": round(mean(&gossip_bytes), 0),
            "max": round(max(&gossip_bytes), 0),
            "mean_over_record_size": round(mean(&gossip_bytes) / record_bytes, 2),
        },
        "all_bytes_in_per_node_per_record": {
            "mean": round(mean(&per_record), 0),
            "max": round(max(&per_record), 0),
        },
        "idle_bytes_in_per_node_per_s": round(idle_mean, 0),
        "partition": {
            "window_s": partition_window.as_secs(),
            "records_published_in_halves": part_recs.len(),
            "records_missing_at_heal_all_nodes": missing_at_heal,
            "converged_after_heal_s": round(heal_all.as_secs_f64(), 2),
            "node_converged_p50_s": round(pct(&heal_sorted, 0.5) / 1000.0, 2),
        },
        "restart_empty": {
            "nodes": restarting.len(),
            "records": total,
            "first_s": round(restart_times.first().map_or(0.0, Duration::as_secs_f64), 2),
            "last_s": round(restart_times.last().map_or(0.0, Duration::as_secs_f64), 2),
        },
    }))
}
