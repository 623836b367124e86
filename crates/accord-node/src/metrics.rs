//! Prometheus metrics of a node (prometheus-client, the version libp2p-metrics uses), with
//! libp2p's own metrics under the `libp2p_` prefix.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The node's metrics. Counters move as things happen; gauges are set when scraped.
pub struct Metrics {
    pub(crate) registry: Mutex<Registry>,
    pub(crate) ingest: Family<Labels, Counter>,
    pub(crate) ingest_seconds: Histogram,
    pub(crate) gossip: Family<Labels, Counter>,
    pub(crate) sync_sessions: Family<Labels, Counter>,
    pub(crate) sync_rounds: Counter,
    pub(crate) sync_bytes: Family<Labels, Counter>,
    pub(crate) sync_served_bytes: Family<Labels, Counter>,
    pub(crate) sync_fetched: Counter,
    pub(crate) non_members: Counter,
    pub(crate) peers_cut: Family<Labels, Counter>,
    pub(crate) silent_resets: Counter,
    pub(crate) peers: Family<Labels, Gauge>,
    pub(crate) objects: Family<Labels, Gauge>,
    pub(crate) pending: Gauge,
    pub(crate) store_bytes: Gauge,
    pub(crate) disk_free_bytes: Gauge,
    pub(crate) disk_min_free_bytes: Gauge,
    pub(crate) disk_low: Gauge,
    pub(crate) restart_needed: Family<Labels, Gauge>,
    pub(crate) peers_admitted: Gauge,
    pub(crate) peers_expected: Gauge,
    pub(crate) search_behind: Gauge,
    pub(crate) search_docs: Gauge,
    pub(crate) search_docs_built: Counter,
    pub(crate) commit_seconds: Histogram,
    pub(crate) searchable_lag_seconds: Histogram,
    pub(crate) verifications: Counter,
    pub(crate) gossip_missed: Counter,
    pub(crate) gossip_unsent: Counter,
    pub(crate) requests_busy: Counter,
    pub(crate) store_write_errors: Counter,
    pub(crate) search_cache_hits: Counter,
    pub(crate) search_cache_visits: Counter,
    pub(crate) search_cache_facet_reads: Counter,
    pub(crate) sync_duplicates: Counter,
    pub(crate) heartbeats: Family<Labels, Counter>,
    pub(crate) health_checkpoints: Counter,
    pub(crate) heartbeats_not_compared: Counter,
    pub(crate) divergence_evidence: Family<Labels, Counter>,
    pub(crate) fed_up: Family<Labels, Gauge>,
    pub(crate) fed_last_seen: Family<Labels, Gauge>,
    pub(crate) fed_divergent: Family<Labels, Gauge>,
    pub(crate) fed_behind: Family<Labels, Gauge>,
    pub(crate) fed_held_refused: Family<Labels, Gauge>,
    pub(crate) fed_charter_mismatch: Family<Labels, Gauge>,
    pub(crate) fed_version_skew: Family<Labels, Gauge>,
    pub(crate) fed_info: Family<Labels, Gauge>,
    pub(crate) attachments_fetched: Counter,
    pub(crate) attachment_chunks: Counter,
    pub(crate) attachment_bad_data: Counter,
    pub(crate) attachment_local_write_errors: Counter,
    pub(crate) network_events_dropped: Counter,
    pub(crate) attachment_claims_disagree: Counter,
    pub(crate) attachments_backlog: Gauge,
    pub(crate) attachments_put_off: Counter,
    pub(crate) attachments_deferred_for_disk: Counter,
    pub(crate) clock_offset_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub(crate) clock_offset_nodes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Metrics {
    /// Creates the metrics and registers them; returns the libp2p sub-registry's owner too.
    pub fn new(mut registry: Registry) -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            ingest: Family::default(),
            ingest_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            gossip: Family::default(),
            sync_sessions: Family::default(),
            sync_rounds: Counter::default(),
            sync_bytes: Family::default(),
            sync_served_bytes: Family::default(),
            sync_fetched: Counter::default(),
            non_members: Counter::default(),
            peers_cut: Family::default(),
            silent_resets: Counter::default(),
            peers: Family::default(),
            objects: Family::default(),
            pending: Gauge::default(),
            store_bytes: Gauge::default(),
            disk_free_bytes: Gauge::default(),
            disk_min_free_bytes: Gauge::default(),
            disk_low: Gauge::default(),
            restart_needed: Family::default(),
            peers_admitted: Gauge::default(),
            peers_expected: Gauge::default(),
            search_behind: Gauge::default(),
            search_docs: Gauge::default(),
            search_docs_built: Counter::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            searchable_lag_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 10)),
            verifications: Counter::default(),
            gossip_missed: Counter::default(),
            gossip_unsent: Counter::default(),
            requests_busy: Counter::default(),
            store_write_errors: Counter::default(),
            search_cache_hits: Counter::default(),
            search_cache_visits: Counter::default(),
            search_cache_facet_reads: Counter::default(),
            sync_duplicates: Counter::default(),
            heartbeats: Family::default(),
            health_checkpoints: Counter::default(),
            heartbeats_not_compared: Counter::default(),
            divergence_evidence: Family::default(),
            fed_up: Family::default(),
            fed_last_seen: Family::default(),
            fed_divergent: Family::default(),
            fed_behind: Family::default(),
            fed_held_refused: Family::default(),
            fed_charter_mismatch: Family::default(),
            fed_version_skew: Family::default(),
            fed_info: Family::default(),
            attachments_fetched: Counter::default(),
            attachment_chunks: Counter::default(),
            attachments_deferred_for_disk: Counter::default(),
            attachment_bad_data: Counter::default(),
            attachment_local_write_errors: Counter::default(),
            network_events_dropped: Counter::default(),
            attachment_claims_disagree: Counter::default(),
            attachments_backlog: Gauge::default(),
            attachments_put_off: Counter::default(),
            clock_offset_seconds: Gauge::default(),
            clock_offset_nodes: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("accord");
        r.register(
            "ingest",
            "Objects through the ingest pipeline by source, result and reason",
            m.ingest.clone(),
        );
        r.register(
            "ingest_duration_seconds",
            "Time of one ingest call (validation and durable group commit)",
            m.ingest_seconds.clone(),
        );
        r.register(
            "gossip_messages",
            "Gossip messages by direction (in, out) and verdict",
            m.gossip.clone(),
        );
        r.register(
            "sync_sessions",
            "Reconciliation sessions by result",
            m.sync_sessions.clone(),
        );
        r.register(
            "sync_rounds",
            "Reconciliation rounds",
            m.sync_rounds.clone(),
        );
        r.register(
            "sync_bytes",
            "Reconciliation bytes by direction, of the sessions this node ran (its requests out, the answers in)",
            m.sync_bytes.clone(),
        );
        r.register(
            "sync_served_bytes",
            "Reconciliation bytes by direction, of the sessions peers ran with this node (their requests in, its answers out)",
            m.sync_served_bytes.clone(),
        );
        r.register(
            "sync_objects_fetched",
            "Objects fetched by reconciliation",
            m.sync_fetched.clone(),
        );
        r.register(
            "non_members_disconnected",
            "Peers disconnected for lack of a valid node certificate",
            m.non_members.clone(),
        );
        r.register(
            "peers_cut",
            "Peers cut for what they sent, by reason (invalid-objects, bad-data, bad-reconciliation; came-back: cut again on returning within the backoff)",
            m.peers_cut.clone(),
        );
        r.register(
            "silent_peer_resets",
            "Connections reset because an admitted peer's heartbeats stopped reaching this node",
            m.silent_resets.clone(),
        );
        r.register(
            "peers_connected",
            "Connected peers by member (unknown before admission)",
            m.peers.clone(),
        );
        r.register("objects", "Stored objects by type", m.objects.clone());
        r.register(
            "pending_objects",
            "Objects waiting in the quarantine",
            m.pending.clone(),
        );
        r.register(
            "store_bytes",
            "Size of the store on disk",
            m.store_bytes.clone(),
        );
        r.register(
            "disk_free_bytes",
            "Bytes available on the data directory's filesystem",
            m.disk_free_bytes.clone(),
        );
        r.register(
            "disk_min_free_bytes",
            "The floor of free space below which the node takes no new objects (store.min_free_mb)",
            m.disk_min_free_bytes.clone(),
        );
        r.register(
            "disk_low",
            "1 while the free space is below the floor and the node takes no new objects",
            m.disk_low.clone(),
        );
        r.register(
            "peers_admitted",
            "Connected peers admitted as nodes of a member (0 when the node is cut off from the federation)",
            m.peers_admitted.clone(),
        );
        r.register(
            "peers_expected",
            "1 when network.bootstrap names peers to connect to (the node is then expected to have some)",
            m.peers_expected.clone(),
        );
        r.register(
            "search_behind_objects",
            "Objects stored and not yet reflected in the search index (about 0 when idle; growing while no index commit comes means the indexer has stalled)",
            m.search_behind.clone(),
        );
        r.register(
            "restart_needed",
            "1 while the node must be restarted, by reason: store (a store write failed; it takes nothing new), search (the search index could not be written; search shows nothing new), data-dir-moved (the data directory was moved or replaced under it), part-stopped (the store thread, the network, the event loop or the attachment fetcher ended by a panic), transport-limit (an amendment raised max_object_bytes above what its network carries), upgrade (the charter in force adopts refusal rules newer than this release implements: not a restart but an upgrade, and the node stays ready)",
            m.restart_needed.clone(),
        );
        r.register(
            "search_documents",
            "Records in the search index",
            m.search_docs.clone(),
        );
        r.register(
            "store_commit_duration_seconds",
            "Time of one group commit on the store thread (judging, writing, flushing)",
            m.commit_seconds.clone(),
        );
        r.register(
            "search_visibility_lag_seconds",
            "Time from a group commit to the index commit that makes its records searchable",
            m.searchable_lag_seconds.clone(),
        );
        r.register(
            "search_documents_built",
            "Search documents built and handed to the indexer: one per new record, and one per stored record whose status or files' text changed",
            m.search_docs_built.clone(),
        );
        r.register(
            "search_cache_segment_hits",
            "Index segments whose matches for a query came from the per-segment result cache",
            m.search_cache_hits.clone(),
        );
        r.register(
            "search_cache_segment_visits",
            "Index segments whose matching documents a query (or the indexer, filling the cache after a commit) visited",
            m.search_cache_visits.clone(),
        );
        r.register(
            "search_cache_facet_reads",
            "Records whose facet values those visits read (a query matching most of a segment reads those it leaves out)",
            m.search_cache_facet_reads.clone(),
        );
        r.register(
            "signature_verifications",
            "ed25519 signature verifications performed by this process",
            m.verifications.clone(),
        );
        r.register(
            "gossip_events_not_handed_over",
            "Gossip messages the network could not hand to the node (its queue was full); each sender is reconciled with at once",
            m.gossip_missed.clone(),
        );
        r.register(
            "gossip_messages_not_sent",
            "Gossip messages not sent to a peer that read more slowly than they came (its send queue was full); the peer recovers them by reconciliation",
            m.gossip_unsent.clone(),
        );
        r.register(
            "requests_refused_busy",
            "Reconciliation and attachment requests of peers refused because too many answers were in flight (4 per peer and protocol, 16 reconciliation and 32 attachment answers in all)",
            m.requests_busy.clone(),
        );
        r.register(
            "store_write_errors",
            "Group commits the store failed to write (nothing of them was acknowledged); the node is then not ready and must be restarted",
            m.store_write_errors.clone(),
        );
        r.register(
            "sync_duplicates",
            "Objects fetched by reconciliation that were already stored",
            m.sync_duplicates.clone(),
        );
        r.register(
            "heartbeats_received",
            "Heartbeats received by gossip, by result (accepted, ignored, or the refusal code)",
            m.heartbeats.clone(),
        );
        r.register(
            "health_checkpoints_computed",
            "This node's own checkpoints computed to compare with heartbeats (each hashes every object below its watermark; one at a time)",
            m.health_checkpoints.clone(),
        );
        r.register(
            "heartbeats_not_compared",
            "Peers' heartbeats at a watermark this node had not computed lately, heard and forwarded but not compared because their member's nodes had used their turn of new watermarks (8 at once, then one every 2 s per member)",
            m.heartbeats_not_compared.clone(),
        );
        r.register(
            "divergence_evidence",
            "Evidence bundles this node signed, by kind (divergent, equivocation)",
            m.divergence_evidence.clone(),
        );
        r.register(
            "federation_node_up",
            "1 when a certified node of the federation sent a heartbeat within 1.5 of its periods (this node counts itself up)",
            m.fed_up.clone(),
        );
        r.register(
            "federation_node_last_seen_timestamp_seconds",
            "When a certified node's latest heartbeat was received (unix seconds)",
            m.fed_last_seen.clone(),
        );
        r.register(
            "federation_node_divergent",
            "1 when a node claims objects it did not give this node after reconciling with it, or signed two different heartbeats for the same time",
            m.fed_divergent.clone(),
        );
        r.register(
            "federation_node_behind_objects",
            "Objects a node lacks below its checkpoint watermark compared with this node",
            m.fed_behind.clone(),
        );
        r.register(
            "federation_node_held_refused_objects",
            "Objects a node holds below its checkpoint watermark that this node refused for what they say (such as a removed member's), when it otherwise agrees with this node",
            m.fed_held_refused.clone(),
        );
        r.register(
            "federation_node_charter_mismatch",
            "1 when a node's charter version differs from this node's",
            m.fed_charter_mismatch.clone(),
        );
        r.register(
            "federation_node_version_skew",
            "1 when a node runs another software version than this node",
            m.fed_version_skew.clone(),
        );
        r.register(
            "federation_node_info",
            "Software and protocol version of each node seen (value 1)",
            m.fed_info.clone(),
        );
        r.register(
            "attachments_fetched",
            "Attachments fetched from peers and verified",
            m.attachments_fetched.clone(),
        );
        r.register(
            "attachment_chunks_fetched",
            "Attachment chunks fetched and verified",
            m.attachment_chunks.clone(),
        );
        r.register(
            "attachment_bad_data",
            "Attachment chunks from a peer that did not match the chunk list it served, or files that did not match their SHA-256 (the peer is penalised)",
            m.attachment_bad_data.clone(),
        );
        r.register(
            "network_events_dropped",
            "Control events of the network (admissions, requests, heartbeats) the node did not take because its queue was full (gossip has accord_gossip_events_not_handed_over_total)",
            m.network_events_dropped.clone(),
        );
        r.register(
            "attachment_local_write_errors",
            "Fetched attachment data this node could not write or read back on its own disk (a full or failing disk; no peer is blamed; the file is fetched again later)",
            m.attachment_local_write_errors.clone(),
        );
        r.register(
            "attachment_claims_disagree",
            "Attachment chunk lists from a peer that agreed with no record naming the file (a record may name a file with a false size or list: the peer is not penalised)",
            m.attachment_claims_disagree.clone(),
        );
        r.register(
            "attachments_deferred_for_disk",
            "Attachments whose fetch was put off because the file would not fit above the disk's floor (store.min_free_mb); a file counts once while it waits",
            m.attachments_deferred_for_disk.clone(),
        );
        r.register(
            "attachments_backlog",
            "Attachments known and not yet held (queued or being fetched)",
            m.attachments_backlog.clone(),
        );
        r.register(
            "attachments_put_off",
            "Files not queued for fetching because their member already had attachments.max_waiting_per_member waiting (records naming files no peer holds); each is queued once its member's queue drains to half",
            m.attachments_put_off.clone(),
        );
        r.register(
            "clock_offset_seconds",
            "Other nodes' clocks minus this node's, from their heartbeats of the last 15 minutes: the median over the members heard of each member's median over its nodes (positive: this node's clock is behind); 0 while accord_clock_offset_nodes is 0",
            m.clock_offset_seconds.clone(),
        );
        r.register(
            "clock_offset_nodes",
            "The nodes whose heartbeats of the last 15 minutes accord_clock_offset_seconds is read from (0 until nodes of two members were heard)",
            m.clock_offset_nodes.clone(),
        );
        // Present from the start at zero, so that rules on their increase see the first one.
        for result in [
            "accepted",
            "too-large",
            "malformed",
            "wrong-federation",
            "bad-signature",
            "not-certified",
            "wrong-member",
            "from-the-future",
            "stale",
            "bad-watermark",
        ] {
            let _ = m.heartbeats.get_or_create(&labels(&[("result", result)]));
        }
        for result in ["ok", "error"] {
            let _ = m
                .sync_sessions
                .get_or_create(&labels(&[("result", result)]));
        }
        for reason in [
            "invalid-objects",
            "bad-data",
            "bad-reconciliation",
            "came-back",
        ] {
            let _ = m.peers_cut.get_or_create(&labels(&[("reason", reason)]));
        }
        for kind in ["divergent", "equivocation"] {
            let _ = m
                .divergence_evidence
                .get_or_create(&labels(&[("kind", kind)]));
        }
        let info: Family<Labels, Gauge> = Family::default();
        info.get_or_create(&labels(&[("version", env!("CARGO_PKG_VERSION"))]))
            .set(1);
        r.register("build_info", "Build information", info);
        *m.registry.lock().unwrap_or_else(|e| e.into_inner()) = registry;
        m
    }

    pub(crate) fn ingested(&self, source: &str, result: &str, reason: &str, took: Duration) {
        self.ingest
            .get_or_create(&labels(&[
                ("source", source),
                ("result", result),
                ("reason", reason),
            ]))
            .inc();
        self.ingest_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn gossip(&self, direction: &str, verdict: &str) {
        self.gossip
            .get_or_create(&labels(&[("direction", direction), ("verdict", verdict)]))
            .inc();
    }

    /// A peer cut for what it sent ([`accord_net::NetworkEvent::PeerCut`]).
    pub(crate) fn peer_cut(&self, reason: &str) {
        self.peers_cut
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// Brings a counter kept elsewhere (a process-wide atomic) up to `total`.
    pub(crate) fn catch_up(counter: &Counter, total: u64) {
        let seen = counter.get();
        if total > seen {
            counter.inc_by(total - seen);
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let _ = encode(&mut out, &registry);
        out
    }
}
