//! The composed libp2p behaviour and the federation-specific protocol names.

use std::time::Duration;

use accord_core::ObjectId;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, connection_limits, gossipsub, identify, kad, mdns, ping, request_response,
};
use sha2::{Digest, Sha256};

use crate::codec::BytesCodec;
use crate::{MAX_BLOB_REQUEST, MAX_BLOB_RESPONSE, MAX_SYNC_REQUEST, NetConfig, NetError};

/// The gossipsub topic of a federation: `accord/<federation id>/objects/2`. Version 2 carries
/// anonymous (unsigned) messages; the first release's `objects/1` carried signed ones, and the
/// two do not mix on one topic (docs/PROTOCOL.md §9.1).
pub fn gossip_topic(federation: &ObjectId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("accord/{federation}/objects/2"))
}

/// The heartbeat topic of a federation: `accord/<federation id>/health/1` (signed node
/// heartbeats, docs/PROTOCOL.md §11; never objects).
pub fn health_topic(federation: &ObjectId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("accord/{federation}/health/1"))
}

/// Largest heartbeat message (the node checks the same bound before decoding).
pub const MAX_HEARTBEAT_MESSAGE: usize = accord_core::health::MAX_HEARTBEAT_BYTES;

/// `/accord/<first 16 hex of the federation id>/cert/1`: node certificate presentation.
pub fn cert_protocol(federation: &ObjectId) -> StreamProtocol {
    protocol(federation, "cert/1")
}

/// `/accord/<first 16 hex of the federation id>/sync/1`: reconciliation.
pub fn sync_protocol(federation: &ObjectId) -> StreamProtocol {
    protocol(federation, "sync/1")
}

/// `/accord/<first 16 hex of the federation id>/blob/1`: attachments by chunk.
pub fn blob_protocol(federation: &ObjectId) -> StreamProtocol {
    protocol(federation, "blob/1")
}

/// `/accord/<first 16 hex of the federation id>/kad/1`: the federation's own Kademlia DHT, so
/// that it never mixes with other DHTs.
pub fn kad_protocol(federation: &ObjectId) -> StreamProtocol {
    protocol(federation, "kad/1")
}

fn protocol(federation: &ObjectId, suffix: &str) -> StreamProtocol {
    let short = &federation.to_string()[..16];
    // Only ASCII letters, digits and '/' go in: always a valid protocol name.
    StreamProtocol::try_from_owned(format!("/accord/{short}/{suffix}"))
        .unwrap_or(StreamProtocol::new("/accord/invalid/1"))
}

/// The gossipsub message id: the object id (SHA-256 of the envelope's body bytes). Data that is
/// not an envelope gets SHA-256 of the whole data (it will be rejected anyway).
pub(crate) fn message_id(data: &[u8]) -> gossipsub::MessageId {
    // Only the body is located (no key is parsed): every copy of every message gets an id, so
    // this runs once per copy received.
    match accord_core::envelope::body_of(data) {
        Some(body) => gossipsub::MessageId::new(accord_core::ObjectId::of_body(body).as_bytes()),
        None => gossipsub::MessageId::new(&Sha256::digest(data)),
    }
}

/// Application score given to peers that are not (yet) admitted. It lies below the publish
/// threshold (-50: nothing is published to them), below the gossip threshold (-10: no IHAVE or
/// IWANT) and below zero (never in the mesh, so nothing is forwarded to them), but above the
/// graylist threshold (-80), so that their subscriptions are still recorded and the mesh can
/// form at the next heartbeat once they are admitted. Their messages are ignored by the swarm
/// task until then.
pub(crate) const UNADMITTED_SCORE: f64 = -60.0;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub cert: request_response::Behaviour<BytesCodec>,
    pub sync: request_response::Behaviour<BytesCodec>,
    pub blob: request_response::Behaviour<BytesCodec>,
}

impl Behaviour {
    /// The behaviour for `cfg`; with a registry, gossipsub records its own metrics there
    /// (mesh sizes, messages received with and without duplicates, scores).
    pub fn new(
        cfg: &NetConfig,
        registry: Option<&mut libp2p::metrics::Registry>,
    ) -> Result<Self, NetError> {
        let key = &cfg.keypair;
        let local = key.public().to_peer_id();
        let health_hash = health_topic(&cfg.federation).hash();
        let mut gossip_config = gossipsub::ConfigBuilder::default();
        if cfg.gossip_mesh_n > 0 {
            // The mesh: D peers, grafting up below about two thirds of D, pruning above 2D;
            // the first heartbeat soon after start, so that a node forwards at once.
            let d = cfg.gossip_mesh_n;
            let d_low = (2 * d).div_ceil(3).max(1);
            gossip_config
                .mesh_n(d)
                .mesh_n_low(d_low)
                .mesh_n_high(2 * d)
                .mesh_outbound_min((d / 2).min(2).min(d_low))
                .gossip_lazy(d)
                .heartbeat_initial_delay(Duration::from_millis(100))
                // A GRAFT that reaches a peer before it has admitted us is pruned (we still
                // score below zero there); gossipsub's default one-minute backoff would then
                // keep that pair out of each other's mesh for a minute after they connect.
                .prune_backoff(Duration::from_secs(5));
        }
        let gossip_config = gossip_config
            .validate_messages()
            // Objects authenticate themselves (each envelope is signed by its author and checked
            // once by the node): gossip messages carry no second signature, author or sequence
            // number, and a message that carries them is refused (PROTOCOL.md 9.1).
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .message_id_fn(move |m: &gossipsub::Message| {
                if m.topic == health_hash {
                    // A heartbeat is not an object: its id is the hash of all its bytes.
                    gossipsub::MessageId::new(&Sha256::digest(&m.data))
                } else {
                    message_id(&m.data)
                }
            })
            .max_transmit_size(cfg.max_object_bytes + 16 * 1024)
            .heartbeat_interval(Duration::from_millis(700))
            // Messages stay in the cache for 10 heartbeats (7 s), so that one whose
            // validation waited in a busy node's queue can still be forwarded when accepted.
            .history_length(10)
            .build()
            .map_err(|e| NetError::Transport(format!("gossipsub config: {e}")))?;
        let mut gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
                .map_err(|e| NetError::Transport(format!("gossipsub: {e}")))?;
        if let Some(registry) = registry {
            gossipsub = gossipsub.with_metrics(
                registry.sub_registry_with_prefix("libp2p_gossipsub_router"),
                gossipsub::MetricsConfig::default(),
            );
        }
        let topic = gossip_topic(&cfg.federation);
        // Scores tuned for a small federation with sparse traffic: no mesh-delivery quotas
        // (P3, P3b), no IP colocation penalty (nodes are certified), small positive rewards
        // (P1, P2) that cannot outweigh invalid messages (P4) or the admission score (P5).
        let health = health_topic(&cfg.federation);
        let topic_params = gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.01,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 100.0,
            first_message_deliveries_weight: 0.1,
            first_message_deliveries_decay: 0.5,
            first_message_deliveries_cap: 50.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            // Two invalid objects take a peer to the graylist.
            invalid_message_deliveries_weight: -20.0,
            invalid_message_deliveries_decay: 0.9,
            ..Default::default()
        };
        // A forged or malformed heartbeat costs its sender what an invalid object does.
        let params = gossipsub::PeerScoreParams {
            topics: [
                (topic.hash(), topic_params.clone()),
                (health.hash(), topic_params),
            ]
            .into_iter()
            .collect(),
            app_specific_weight: 1.0,
            ip_colocation_factor_weight: 0.0,
            ..Default::default()
        };
        let thresholds = gossipsub::PeerScoreThresholds {
            gossip_threshold: -10.0,
            publish_threshold: -50.0,
            graylist_threshold: -80.0,
            ..Default::default()
        };
        gossipsub
            .with_peer_score(params, thresholds)
            .map_err(|e| NetError::Transport(format!("peer score: {e}")))?;
        for t in [&topic, &health] {
            gossipsub
                .subscribe(t)
                .map_err(|e| NetError::Transport(format!("subscribe: {e}")))?;
        }

        let mut kad_config = kad::Config::new(kad_protocol(&cfg.federation));
        kad_config.set_query_timeout(Duration::from_secs(30));
        // Kademlia serves only to find the federation's nodes: this node stores no record and
        // no provider for anyone. With libp2p's defaults, any peer that completed the handshake
        // — admitted or not — could store 1,024 records and 1,024 × 20 provider entries (each
        // naming thousands of addresses) in memory until the next restart, and the records
        // would be replicated to the members every hour. Inbound PUT_VALUE and ADD_PROVIDER
        // now come out as events, which the swarm drops; nothing is published or replicated.
        kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
        kad_config.set_replication_interval(None);
        kad_config.set_publication_interval(None);
        kad_config.set_provider_publication_interval(None);
        let store = kad::store::MemoryStore::with_config(
            local,
            kad::store::MemoryStoreConfig {
                max_records: 0,
                max_value_bytes: 0,
                max_providers_per_key: 0,
                max_provided_keys: 0,
            },
        );
        let mut kad = kad::Behaviour::with_config(local, store, kad_config);
        kad.set_mode(Some(kad::Mode::Server));

        let mdns = if cfg.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), local)
                    .map_err(|e| NetError::Transport(format!("mdns: {e}")))?,
            )
        } else {
            None
        };
        let rr = |protocol: StreamProtocol, max_request: usize, max_response: usize| {
            request_response::Behaviour::with_codec(
                BytesCodec {
                    max_request,
                    max_response,
                },
                [(protocol, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    // Streams a peer may open at once on one connection: beyond the answers
                    // in flight the swarm allows it (`MAX_ANSWERS_IN_FLIGHT_PER_PEER`).
                    .with_max_concurrent_streams(8),
            )
        };
        Ok(Behaviour {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(256))
                    .with_max_established_per_peer(Some(2))
                    .with_max_pending_incoming(Some(64)),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new("/accord/1.0.0".into(), key.public())
                    .with_agent_version(format!("accord/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            gossipsub,
            kad,
            mdns: Toggle::from(mdns),
            cert: rr(
                cert_protocol(&cfg.federation),
                cfg.max_object_bytes.min(crate::MAX_CERT_PRESENTATION) + 1024,
                1024,
            ),
            sync: rr(
                sync_protocol(&cfg.federation),
                MAX_SYNC_REQUEST,
                crate::sync_response_limit(cfg.max_object_bytes),
            ),
            blob: rr(
                blob_protocol(&cfg.federation),
                MAX_BLOB_REQUEST,
                MAX_BLOB_RESPONSE,
            ),
        })
    }
}
