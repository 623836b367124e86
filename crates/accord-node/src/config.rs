//! `NodeConfig`: the TOML file `accord run --config` reads (`accord devnet` and `accord init`
//! write one), with `ACCORD_*` environment overrides. Unknown fields are errors; every error
//! names the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

pub use accord_net::Addr as Multiaddr;

/// Errors reading or checking a configuration.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config field {field}: {message}")]
    Field { field: String, message: String },
}

fn field(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_string(),
        message: message.into(),
    }
}

/// An error naming `name` unless `value` lies in `range`.
fn within<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    range: &std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(field(
        name,
        format!("must be between {} and {}", range.start(), range.end()),
    ))
}

/// Who may stay connected to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdmissionMode {
    /// Only nodes certified by a current member (production).
    #[default]
    Members,
    /// Anyone (development).
    Open,
}

/// `[network]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/7400`.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Bootstrap peers: multiaddrs ending in `/p2p/<peer id>`.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    #[serde(default)]
    pub admission: AdmissionMode,
    /// Discover peers on the local network with mDNS.
    #[serde(default)]
    pub mdns: bool,
    /// Seconds a connected peer has to present a valid node certificate (members mode).
    #[serde(default = "default_admission_timeout_secs")]
    pub admission_timeout_secs: u64,
    /// Gossipsub mesh degree: each node forwards a new object to this many peers (and gossips
    /// its id to others). 0 sends every object to every admitted peer.
    #[serde(default = "default_gossip_mesh_n")]
    pub gossip_mesh_n: usize,
    /// A simulated link for the federation-scale benchmark (`accord_net::sim`). Set only in
    /// code: no configuration file can name it.
    #[serde(skip)]
    pub sim: Option<accord_net::sim::SimLink>,
    /// Gossip messages received and waiting to be judged, at most; a message past this or
    /// [`Self::gossip_queue_mb`] is counted and fetched by reconciliation with its sender.
    #[serde(default = "default_gossip_queue_messages")]
    pub gossip_queue_messages: usize,
    /// Bytes of gossip waiting to be judged, at most, in MiB.
    #[serde(default = "default_gossip_queue_mb")]
    pub gossip_queue_mb: u64,
}

fn default_listen() -> Vec<String> {
    vec!["/ip4/0.0.0.0/tcp/7400".to_string()]
}
/// Largest gossipsub mesh degree accepted (the mesh's upper bound is twice this).
pub const MAX_GOSSIP_MESH_N: usize = 32;

fn default_gossip_mesh_n() -> usize {
    accord_net::DEFAULT_GOSSIP_MESH_N
}
/// Accepted range of `network.gossip_queue_messages`.
pub const GOSSIP_QUEUE_MESSAGES: std::ops::RangeInclusive<usize> = 16..=1 << 20;
/// Accepted range of `network.gossip_queue_mb`.
pub const GOSSIP_QUEUE_MB: std::ops::RangeInclusive<u64> = 1..=4096;
fn default_gossip_queue_messages() -> usize {
    accord_net::GOSSIP_CHANNEL_CAPACITY
}
fn default_gossip_queue_mb() -> u64 {
    (accord_net::GOSSIP_QUEUE_BYTES >> 20) as u64
}
fn default_admission_timeout_secs() -> u64 {
    accord_net::ADMISSION_TIMEOUT.as_secs()
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            listen: default_listen(),
            bootstrap: vec![],
            admission: AdmissionMode::Members,
            mdns: false,
            admission_timeout_secs: default_admission_timeout_secs(),
            gossip_mesh_n: default_gossip_mesh_n(),
            sim: None,
            gossip_queue_messages: default_gossip_queue_messages(),
            gossip_queue_mb: default_gossip_queue_mb(),
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address of the HTTP API and web UI (loopback by default).
    #[serde(default = "default_api")]
    pub listen: SocketAddr,
    /// Connections served at once; more are answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and that an idle connection is kept.
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body.
    #[serde(default = "default_body_timeout_secs")]
    pub body_timeout_secs: u64,
    /// Web origins (`https://portal.example.gov`) whose pages may call the API from a browser.
    /// Empty (the default): no cross-origin access at all.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Host names this node is reached by (`accord.mfa.example.gov`: the name a reverse proxy
    /// passes on in `Host`). A request for any other name is refused (421): a hostile web page
    /// whose own name it points at this machine (DNS rebinding) could read the node otherwise.
    /// `localhost` and IP addresses are always answered, and so are the `accord` tool by any
    /// name and `/healthz`, `/readyz` and `/metrics`.
    #[serde(default)]
    pub hosts: Vec<String>,
}

fn default_api() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7401))
}
fn default_max_connections() -> usize {
    512
}
fn default_header_timeout_secs() -> u64 {
    10
}
fn default_body_timeout_secs() -> u64 {
    30
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_api(),
            max_connections: default_max_connections(),
            header_timeout_secs: default_header_timeout_secs(),
            body_timeout_secs: default_body_timeout_secs(),
            cors_origins: Vec::new(),
            hosts: Vec::new(),
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// sled page cache, in MiB.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
    /// Compress the store's sled indexes when it is created (an existing store keeps what it
    /// was created with); off by default since the objects moved to the object log.
    #[serde(default = "default_compression")]
    pub compression: bool,
    /// Capacity of the pending quarantine, in objects.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Objects one source (a peer, the local API, an import) may hold in the quarantine.
    #[serde(default = "default_max_pending_per_source")]
    pub max_pending_per_source: usize,
    /// Objects claiming one member that the quarantine may hold.
    #[serde(default = "default_max_pending_per_member")]
    pub max_pending_per_member: usize,
    /// How long an object may wait in the quarantine, in seconds.
    #[serde(default = "default_pending_ttl_secs")]
    pub pending_ttl_secs: u64,
    /// Free space, in MiB, that the data directory's filesystem keeps: below it the node takes
    /// no new objects (submissions get HTTP 507; gossip, reconciliation and attachment fetches
    /// wait) until space is freed. 0: no floor.
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
    /// Test-only: the free space (bytes) the disk guard reads instead of the filesystem's.
    /// Set only in code: no configuration file can name it.
    #[serde(skip)]
    pub test_free_bytes: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

fn default_cache_mb() -> u64 {
    accord_store::DEFAULT_CACHE_BYTES >> 20
}
fn default_compression() -> bool {
    accord_store::StoreOptions::default().compress
}
fn default_max_pending() -> usize {
    accord_store::DEFAULT_MAX_PENDING
}
fn default_max_pending_per_source() -> usize {
    accord_store::DEFAULT_MAX_PENDING_PER_SOURCE
}
fn default_max_pending_per_member() -> usize {
    accord_store::DEFAULT_MAX_PENDING_PER_MEMBER
}
fn default_pending_ttl_secs() -> u64 {
    accord_store::DEFAULT_PENDING_TTL_MS / 1000
}
/// 512 MiB: room for indexing what was accepted and for the largest merge of the search index of
/// about a million records (~475 MB; docs/OPERATIONS.md, "Disk").
pub const DEFAULT_MIN_FREE_MB: u64 = 512;
/// The largest floor a configuration may set (1 PiB in MiB).
const MAX_MIN_FREE_MB: u64 = 1 << 30;
fn default_min_free_mb() -> u64 {
    DEFAULT_MIN_FREE_MB
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_mb: default_cache_mb(),
            compression: default_compression(),
            max_pending: default_max_pending(),
            max_pending_per_source: default_max_pending_per_source(),
            max_pending_per_member: default_max_pending_per_member(),
            pending_ttl_secs: default_pending_ttl_secs(),
            min_free_mb: default_min_free_mb(),
            test_free_bytes: None,
        }
    }
}

impl StoreConfig {
    /// The store's options from this section.
    pub fn options(&self) -> accord_store::StoreOptions {
        accord_store::StoreOptions {
            cache_bytes: self.cache_mb << 20,
            compress: self.compression,
            max_pending: self.max_pending,
            max_pending_per_source: self.max_pending_per_source,
            max_pending_per_member: self.max_pending_per_member,
            pending_ttl_ms: self.pending_ttl_secs.saturating_mul(1000),
        }
    }
}

/// `[sync]`: reconciliation with peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Seconds between reconciliations with a random admitted peer (each new peer is
    /// reconciled with at once).
    #[serde(default = "default_sync_interval")]
    pub interval_secs: u64,
    /// Objects fetched per request (at most 1024).
    #[serde(default = "default_fetch_batch")]
    pub fetch_batch: usize,
    /// Requests one peer may make per minute before it is refused.
    #[serde(default = "default_serve_requests")]
    pub serve_requests_per_minute: u32,
    /// Test-only: objects this node holds but never gives to a peer (not gossiped, not
    /// served to a fetch), to play a withholding member. Set only in code: no configuration
    /// file can name it.
    #[serde(skip)]
    pub withhold: Vec<accord_core::ObjectId>,
    /// Test-only: the peers (peer ids) `withhold` applies to; empty: every peer.
    #[serde(skip)]
    pub withhold_from: Vec<String>,
    /// Test-only: this node refuses the first this many reconciliation requests it is asked,
    /// as a peer does that has not admitted the asker yet. Set only in code.
    #[serde(skip)]
    pub refuse_first_requests: u32,
}

fn default_sync_interval() -> u64 {
    30
}
fn default_fetch_batch() -> usize {
    1024
}
fn default_serve_requests() -> u32 {
    600
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            interval_secs: default_sync_interval(),
            fetch_batch: default_fetch_batch(),
            serve_requests_per_minute: default_serve_requests(),
            withhold: Vec::new(),
            withhold_from: Vec::new(),
            refuse_first_requests: 0,
        }
    }
}

/// The whole node configuration. Relative paths are resolved against the config file's
/// directory by [`NodeConfig::load`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The genesis charter file: the trust anchor.
    pub charter: PathBuf,
    /// This node's member code.
    pub member: String,
    /// The node's libp2p identity key (PKCS#8 PEM).
    pub node_key: PathBuf,
    /// The node certificate signed by the member root key (presented to peers).
    #[serde(default)]
    pub node_cert: Option<PathBuf>,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// Object files (single objects or CBOR sequences) to ingest at start: delegations,
    /// certificates.
    #[serde(default)]
    pub preload: Vec<PathBuf>,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub sync: SyncConfig,
    #[serde(default)]
    pub search: SearchConfig,
    #[serde(default)]
    pub health: HealthConfig,
    #[serde(default)]
    pub attachments: AttachmentsConfig,
}

/// Which attachments this node fetches from its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FetchPolicy {
    /// Every attachment of every accepted record (up to `fetch_max_bytes` when set).
    #[default]
    All,
    /// None: records arrive without their files (they can still be uploaded here).
    None,
}

/// `[attachments]`: fetching, serving and reading the files records carry
/// (docs/OPERATIONS.md, "Attachments").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentsConfig {
    #[serde(default)]
    pub fetch: FetchPolicy,
    /// Files larger than this are not fetched (0: up to the charter's limit).
    #[serde(default)]
    pub fetch_max_bytes: u64,
    /// Transfers at once, in all.
    #[serde(default = "default_att_parallel")]
    pub max_parallel: usize,
    /// Transfers at once from one peer.
    #[serde(default = "default_att_parallel_per_peer")]
    pub max_parallel_per_peer: usize,
    /// Bytes per second fetched in all (0: no bound).
    #[serde(default = "default_att_rate")]
    pub max_bytes_per_sec: u64,
    /// Bytes per second fetched from one peer (0: no bound).
    #[serde(default = "default_att_rate_per_peer")]
    pub max_bytes_per_sec_per_peer: u64,
    /// Seconds text extraction of one file may take.
    #[serde(default = "default_extract_timeout")]
    pub extract_timeout_secs: u64,
    /// Requests (a chunk list or one 1 MiB chunk each) one peer may make of this node per
    /// minute; more are answered "rate limited" and the peer asks elsewhere or later.
    #[serde(default = "default_att_serve")]
    pub serve_requests_per_minute: u32,
    /// Files of one member's records that wait to be fetched at once. A member's records may
    /// name files no peer holds (a hostile one, any number of them): past this bound its
    /// further files are put off, not forgotten, and queued as its queue drains.
    #[serde(default = "default_att_waiting")]
    pub max_waiting_per_member: usize,
    /// Test-only: serve every chunk with one byte changed (plays a peer serving bad data).
    #[serde(skip)]
    pub corrupt_served: bool,
    /// The program that extracts a file's text in a child process (`<program> extract-text`,
    /// see `accord_search::extract::extract_in_child`): `accord run` and `accord demo` set it
    /// to themselves, so that a hostile file cannot take the node down. `None` (in-process
    /// tests) extracts on a thread of the node's own process.
    #[serde(skip)]
    pub extractor: Option<std::path::PathBuf>,
}

fn default_att_parallel() -> usize {
    4
}
fn default_att_parallel_per_peer() -> usize {
    2
}
fn default_att_rate() -> u64 {
    32 << 20
}
fn default_att_rate_per_peer() -> u64 {
    16 << 20
}
fn default_extract_timeout() -> u64 {
    20
}
fn default_att_serve() -> u32 {
    1200
}
fn default_att_waiting() -> usize {
    4096
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        AttachmentsConfig {
            fetch: FetchPolicy::All,
            fetch_max_bytes: 0,
            max_parallel: default_att_parallel(),
            max_parallel_per_peer: default_att_parallel_per_peer(),
            max_bytes_per_sec: default_att_rate(),
            max_bytes_per_sec_per_peer: default_att_rate_per_peer(),
            extract_timeout_secs: default_extract_timeout(),
            serve_requests_per_minute: default_att_serve(),
            max_waiting_per_member: default_att_waiting(),
            corrupt_served: false,
            extractor: None,
        }
    }
}

/// `[health]`: heartbeats and the federation health view (docs/OPERATIONS.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Seconds between this node's signed heartbeats (1 to 3600). Other nodes show it down
    /// after 1.5 periods of silence.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u64,
    /// How far in the past a heartbeat's checkpoint watermark lies, in seconds: objects
    /// created before it are expected to have reached every node.
    #[serde(default = "default_watermark_delay_secs")]
    pub watermark_delay_secs: u64,
    /// How long another node's latest heartbeat is kept (and shown as down) after it was
    /// received, in seconds; older heartbeats are refused.
    #[serde(default = "default_health_ttl_secs")]
    pub ttl_secs: u64,
    /// An admitted peer that speaks heartbeats but whose heartbeats have not reached this
    /// node for this many seconds (and for three of its periods) has its connection reset: a
    /// connection can stay open while it no longer carries gossip. 0 turns this off.
    #[serde(default = "default_silent_peer_secs")]
    pub silent_peer_secs: u64,
    /// Test-only: milliseconds added to the wall clock when this node dates its heartbeats (a
    /// clock that runs ahead, then is corrected). Set only in code: no configuration file can
    /// name it.
    #[serde(skip)]
    pub test_clock_offset_ms: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

fn default_heartbeat_secs() -> u64 {
    60
}
fn default_watermark_delay_secs() -> u64 {
    300
}
fn default_health_ttl_secs() -> u64 {
    24 * 3600
}
fn default_silent_peer_secs() -> u64 {
    180
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            heartbeat_secs: default_heartbeat_secs(),
            watermark_delay_secs: default_watermark_delay_secs(),
            ttl_secs: default_health_ttl_secs(),
            silent_peer_secs: default_silent_peer_secs(),
            test_clock_offset_ms: None,
        }
    }
}

impl HealthConfig {
    fn check(&self) -> Result<(), ConfigError> {
        if !(1..=3600).contains(&self.heartbeat_secs) {
            return Err(field(
                "health.heartbeat_secs",
                format!("must be between 1 and 3600, not {}", self.heartbeat_secs),
            ));
        }
        if self.watermark_delay_secs > 7 * 24 * 3600 {
            return Err(field(
                "health.watermark_delay_secs",
                "must be at most a week (604800)",
            ));
        }
        if self.ttl_secs < 2 * self.heartbeat_secs {
            return Err(field(
                "health.ttl_secs",
                format!(
                    "must be at least two heartbeat periods ({}), not {}",
                    2 * self.heartbeat_secs,
                    self.ttl_secs
                ),
            ));
        }
        let silent = self.silent_peer_secs;
        if silent != 0 && !(2 * self.heartbeat_secs..=7 * 24 * 3600).contains(&silent) {
            return Err(field(
                "health.silent_peer_secs",
                format!(
                    "must be 0 (off) or between two heartbeat periods ({}) and a week (604800), not {silent}",
                    2 * self.heartbeat_secs
                ),
            ));
        }
        Ok(())
    }
}

/// Search settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Glossary files (TOML, the format of `configs/glossary.toml`) whose terms expand queries
    /// across languages, in addition to the built-in glossary and the taxonomy's names.
    #[serde(default)]
    pub glossary: Vec<PathBuf>,
    /// The search index's indexing memory, in MiB, shared by its indexing threads (one per
    /// core, at most eight, each given at least 15 MiB: fewer threads when this is small).
    #[serde(default = "default_index_heap_mb")]
    pub index_heap_mb: u64,
    /// How many nice steps below the node's other threads the search index's threads (indexing,
    /// merging) run: when the cores are saturated, POSTs, gossip and peers are served first and
    /// the index takes what is left (at 10, about a tenth of a saturated machine). 0 runs them
    /// alike. Linux only (elsewhere ignored); docs/OPERATIONS.md, "CPU priority of the index".
    #[serde(default = "default_index_nice")]
    pub index_nice: u8,
}

/// Accepted range of `search.index_nice`.
pub const INDEX_NICE: std::ops::RangeInclusive<u8> = 0..=19;

/// The range of `store.cache_mb`: a value given in bytes by mistake (4294967296) would
/// otherwise mean an unbounded cache.
pub const CACHE_MB: std::ops::RangeInclusive<u64> = 1..=1 << 20;

/// The range of `api.max_connections` (its semaphore has a bound of its own, far above).
pub const MAX_CONNECTIONS: std::ops::RangeInclusive<usize> = 1..=65_536;

/// The least non-zero attachment rate, in bytes per second: one chunk (1 MiB) in 16 s. A rate
/// given in MB by mistake (32) would hold every transfer slot for hours.
pub const MIN_ATTACHMENT_RATE: u64 = 64 * 1024;
fn default_index_nice() -> u8 {
    10
}

/// A host name of `api.hosts`: letters, digits, hyphens and dots, without scheme, port or path.
fn check_host_name(h: &str) -> Result<(), String> {
    if h.is_empty() {
        return Err("it is empty".into());
    }
    if h.contains("://") {
        return Err("write the name alone, without a scheme".into());
    }
    if let Some(c) = h
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.')))
    {
        return Err(format!(
            "{c:?} has no place in a host name (write it without port or path; a name in another alphabet in its xn-- form)"
        ));
    }
    Ok(())
}

/// Whether `o` is written as a browser sends it in `Origin`: `http` or `https`, a host, a port
/// only when it is not the scheme's own, nothing after. Anything else would never equal a
/// browser's origin, and cross-origin calls would stay refused without a word.
fn check_origin(o: &str) -> Result<(), String> {
    let (rest, default_port) = if let Some(r) = o.strip_prefix("https://") {
        (r, "443")
    } else if let Some(r) = o.strip_prefix("http://") {
        (r, "80")
    } else {
        return Err("it must start with https:// or http://".into());
    };
    if let Some(c) = rest
        .chars()
        .find(|c| matches!(c, '/' | '?' | '#' | '@' | '*') || c.is_whitespace())
    {
        return Err(format!("{c:?} has no place in an origin"));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !rest.ends_with(']') => (h, Some(p)),
        _ => (rest, None),
    };
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    match port {
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("port {p:?} is not a number"))
        }
        Some(p) if p == default_port => Err(format!(
            "browsers send the origin without its scheme's own port: write it without :{p}"
        )),
        _ => Ok(()),
    }
}

/// Accepted range of `search.index_heap_mb`.
pub const INDEX_HEAP_MB: std::ops::RangeInclusive<u64> = 15..=2048;
fn default_index_heap_mb() -> u64 {
    (accord_search::IndexOptions::default().writer_heap_bytes >> 20) as u64
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            glossary: Vec::new(),
            index_heap_mb: default_index_heap_mb(),
            index_nice: default_index_nice(),
        }
    }
}

impl SearchConfig {
    /// The search index's options from this section.
    pub fn index_options(&self) -> accord_search::IndexOptions {
        accord_search::IndexOptions {
            writer_heap_bytes: (self.index_heap_mb << 20) as usize,
        }
    }
}

/// The environment variables that override config fields.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("ACCORD_DATA_DIR", "data_dir"),
    ("ACCORD_MEMBER", "member"),
    ("ACCORD_CHARTER", "charter"),
    ("ACCORD_NODE_KEY", "node_key"),
    ("ACCORD_NODE_CERT", "node_cert"),
    ("ACCORD_API_LISTEN", "api.listen"),
    ("ACCORD_API_HOSTS", "api.hosts"),
    ("ACCORD_NETWORK_LISTEN", "network.listen"),
    ("ACCORD_NETWORK_BOOTSTRAP", "network.bootstrap"),
    ("ACCORD_NETWORK_ADMISSION", "network.admission"),
    ("ACCORD_NETWORK_MDNS", "network.mdns"),
];

impl NodeConfig {
    /// Reads the file, applies `ACCORD_*` overrides from `env`, resolves relative paths and
    /// checks the values.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let mut value: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        apply_env(&mut value, env)?;
        let overridden: Vec<&str> = env
            .iter()
            .filter(|(k, _)| ENV_OVERRIDES.iter().any(|(v, _)| v == k))
            .map(|(k, _)| k.as_str())
            .collect();
        let mut cfg: NodeConfig = value.try_into().map_err(|e: toml::de::Error| {
            let mut message = e.to_string().trim_end().to_string();
            // The sections refuse fields they do not know (a typo is named, not ignored); a
            // node.toml written for a newer release — or left in place after rolling back to
            // an older binary — is refused the same way, and the operator should be told that
            // the field may be right, only too new for this binary.
            if message.contains("unknown field `") {
                message.push_str(&format!(
                    "; this is accord {}; a field this release does not know may belong to a newer one",
                    env!("CARGO_PKG_VERSION")
                ));
            }
            if !overridden.is_empty() {
                message.push_str(&format!(
                    " (with the environment overrides {} applied)",
                    overridden.join(", ")
                ));
            }
            ConfigError::Parse {
                path: path.into(),
                message,
            }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve(base);
        cfg.check()?;
        Ok(cfg)
    }

    /// Makes relative paths relative to `base`.
    pub fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.charter);
        fix(&mut self.node_key);
        fix(&mut self.data_dir);
        if let Some(c) = &mut self.node_cert {
            fix(c);
        }
        for p in &mut self.preload {
            fix(p);
        }
        for p in &mut self.search.glossary {
            fix(p);
        }
    }

    /// Checks values that serde cannot: member code, multiaddrs, sizes.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(self.member.len() == 2 && self.member.bytes().all(|c| c.is_ascii_uppercase())) {
            return Err(field(
                "member",
                format!(
                    "{:?} must be two capital letters (ISO 3166-1 alpha-2)",
                    self.member
                ),
            ));
        }
        for a in &self.network.listen {
            a.parse::<accord_net::Addr>()
                .map_err(|e| field("network.listen", format!("{a:?}: {e}")))?;
        }
        for a in &self.network.bootstrap {
            let m: accord_net::Addr = a
                .parse()
                .map_err(|e| field("network.bootstrap", format!("{a:?}: {e}")))?;
            if !m
                .iter()
                .any(|p| matches!(p, accord_net::multiaddr::Protocol::P2p(_)))
            {
                return Err(field(
                    "network.bootstrap",
                    format!("{a:?} must end in /p2p/<peer id>"),
                ));
            }
        }
        if self.store.min_free_mb > MAX_MIN_FREE_MB {
            return Err(field(
                "store.min_free_mb",
                format!("must be at most {MAX_MIN_FREE_MB} (1 PiB)"),
            ));
        }
        within("store.cache_mb", self.store.cache_mb, &CACHE_MB)?;
        for (name, rate) in [
            (
                "attachments.max_bytes_per_sec",
                self.attachments.max_bytes_per_sec,
            ),
            (
                "attachments.max_bytes_per_sec_per_peer",
                self.attachments.max_bytes_per_sec_per_peer,
            ),
        ] {
            if rate != 0 && rate < MIN_ATTACHMENT_RATE {
                return Err(field(
                    name,
                    format!(
                        "{rate} bytes per second would fetch one 1 MiB chunk in {} s: give bytes (32 MiB/s is 33554432), at least {MIN_ATTACHMENT_RATE}, or 0 for no bound",
                        (1u64 << 20).div_ceil(rate.max(1))
                    ),
                ));
            }
        }
        if self.attachments.fetch_max_bytes != 0 && self.attachments.fetch_max_bytes < 1024 {
            return Err(field(
                "attachments.fetch_max_bytes",
                format!(
                    "{} bytes would fetch no file: give bytes (50 MiB is 52428800), or 0 for up to the charter's limit",
                    self.attachments.fetch_max_bytes
                ),
            ));
        }
        self.health.check()?;
        if self.attachments.max_parallel == 0 || self.attachments.max_parallel > 64 {
            return Err(field(
                "attachments.max_parallel",
                "must be between 1 and 64",
            ));
        }
        let per_peer_most = self
            .attachments
            .max_parallel
            .min(accord_net::MAX_ANSWERS_IN_FLIGHT_PER_PEER);
        if self.attachments.max_parallel_per_peer == 0
            || self.attachments.max_parallel_per_peer > per_peer_most
        {
            return Err(field(
                "attachments.max_parallel_per_peer",
                format!(
                    "must be between 1 and attachments.max_parallel, and at most {} (what a peer answers at once)",
                    accord_net::MAX_ANSWERS_IN_FLIGHT_PER_PEER
                ),
            ));
        }
        if !(1..=65_536).contains(&self.attachments.max_waiting_per_member) {
            return Err(field(
                "attachments.max_waiting_per_member",
                "must be between 1 and 65536",
            ));
        }
        if self.attachments.serve_requests_per_minute == 0 {
            return Err(field(
                "attachments.serve_requests_per_minute",
                "must be at least 1",
            ));
        }
        if !(1..=600).contains(&self.attachments.extract_timeout_secs) {
            return Err(field(
                "attachments.extract_timeout_secs",
                "must be between 1 and 600",
            ));
        }
        if self.network.admission_timeout_secs == 0 {
            return Err(field(
                "network.admission_timeout_secs",
                "must be at least 1",
            ));
        }
        within(
            "api.max_connections",
            self.api.max_connections,
            &MAX_CONNECTIONS,
        )?;
        if self.api.header_timeout_secs == 0 {
            return Err(field("api.header_timeout_secs", "must be at least 1"));
        }
        if self.api.body_timeout_secs == 0 {
            return Err(field("api.body_timeout_secs", "must be at least 1"));
        }
        for o in &self.api.cors_origins {
            if let Err(why) = check_origin(o) {
                return Err(field(
                    "api.cors_origins",
                    format!(
                        "{o:?} is not an origin like \"https://portal.example.gov\" (scheme and host, optional port, no path, no wildcard): {why}"
                    ),
                ));
            }
        }
        for h in &self.api.hosts {
            if let Err(why) = check_host_name(h) {
                return Err(field(
                    "api.hosts",
                    format!("{h:?} is not a host name like \"accord.mfa.example.gov\": {why}"),
                ));
            }
        }
        within(
            "network.gossip_queue_messages",
            self.network.gossip_queue_messages,
            &GOSSIP_QUEUE_MESSAGES,
        )?;
        within(
            "network.gossip_queue_mb",
            self.network.gossip_queue_mb,
            &GOSSIP_QUEUE_MB,
        )?;
        within(
            "search.index_heap_mb",
            self.search.index_heap_mb,
            &INDEX_HEAP_MB,
        )?;
        within("search.index_nice", self.search.index_nice, &INDEX_NICE)?;
        if self.network.gossip_mesh_n > MAX_GOSSIP_MESH_N {
            return Err(field(
                "network.gossip_mesh_n",
                format!(
                    "must be at most {MAX_GOSSIP_MESH_N} (0 sends every object to every admitted peer)"
                ),
            ));
        }
        if self.store.max_pending == 0 {
            return Err(field("store.max_pending", "must be at least 1"));
        }
        if self.store.max_pending_per_source == 0 {
            return Err(field("store.max_pending_per_source", "must be at least 1"));
        }
        if self.store.max_pending_per_member == 0 {
            return Err(field("store.max_pending_per_member", "must be at least 1"));
        }
        if self.store.pending_ttl_secs == 0 {
            return Err(field("store.pending_ttl_secs", "must be at least 1"));
        }
        if self.sync.interval_secs == 0 {
            return Err(field("sync.interval_secs", "must be at least 1"));
        }
        if !(1..=accord_sync::MAX_FETCH_IDS).contains(&self.sync.fetch_batch) {
            return Err(field(
                "sync.fetch_batch",
                format!("must be between 1 and {}", accord_sync::MAX_FETCH_IDS),
            ));
        }
        if self.sync.serve_requests_per_minute == 0 {
            return Err(field(
                "sync.serve_requests_per_minute",
                "must be at least 1",
            ));
        }
        // Times are added to the clock: a value of centuries would overflow it and stop the
        // node later, far from the setting that caused it.
        for (name, secs) in [
            (
                "network.admission_timeout_secs",
                self.network.admission_timeout_secs,
            ),
            ("api.header_timeout_secs", self.api.header_timeout_secs),
            ("api.body_timeout_secs", self.api.body_timeout_secs),
            ("store.pending_ttl_secs", self.store.pending_ttl_secs),
            ("sync.interval_secs", self.sync.interval_secs),
            ("health.heartbeat_secs", self.health.heartbeat_secs),
            (
                "health.watermark_delay_secs",
                self.health.watermark_delay_secs,
            ),
            ("health.ttl_secs", self.health.ttl_secs),
            ("health.silent_peer_secs", self.health.silent_peer_secs),
        ] {
            if secs > MAX_CONFIG_SECS {
                return Err(field(
                    name,
                    format!("must be at most {MAX_CONFIG_SECS} (a year), not {secs}"),
                ));
            }
        }
        Ok(())
    }
}

/// The longest time any `*_secs` setting may name: a year.
pub const MAX_CONFIG_SECS: u64 = 365 * 24 * 3600;

fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    for (var, value) in env {
        let Some((_, path)) = ENV_OVERRIDES.iter().find(|(v, _)| v == var) else {
            // Another program's variable (ACCORD_BIN, say) must not stop the node; a
            // misspelt override is named, with the ones that exist.
            if var.starts_with("ACCORD_")
                && !matches!(
                    var.as_str(),
                    "ACCORD_LOG" | "ACCORD_LOG_FORMAT" | "ACCORD_NODE" | "ACCORD_CA_CERT"
                )
            {
                tracing::warn!(
                    variable = %var,
                    known = %known_env(),
                    "ignoring an ACCORD_ environment variable that is not a config override"
                );
            }
            continue;
        };
        let v = match *path {
            "network.listen" | "network.bootstrap" | "api.hosts" => toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.into()))
                    .collect(),
            ),
            "network.mdns" => toml::Value::Boolean(match value.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(field(var, format!("{value:?} is not true or false"))),
            }),
            _ => toml::Value::String(value.clone()),
        };
        let mut t = &mut *table;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            let entry = t
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            t = entry
                .as_table_mut()
                .ok_or_else(|| field(p, "must be a table"))?;
        }
        t.insert(parts[parts.len() - 1].to_string(), v);
    }
    Ok(())
}

fn known_env() -> String {
    ENV_OVERRIDES
        .iter()
        .map(|(v, _)| *v)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("node.toml");
        std::fs::write(&p, text).ok();
        p
    }

    const BASE: &str =
        "charter = \"c.cbor\"\nmember = \"KZ\"\nnode_key = \"n.key\"\ndata_dir = \"data\"\n";

    #[test]
    fn loads_and_resolves_relative_paths() {
        let d = tempfile::tempdir().ok();
        let Some(d) = d else { return };
        let cfg = NodeConfig::load(&write(d.path(), BASE), &[]);
        let cfg = cfg.map_err(|e| e.to_string());
        assert!(cfg.is_ok(), "{cfg:?}");
        if let Ok(cfg) = cfg {
            assert_eq!(cfg.charter, d.path().join("c.cbor"));
            assert_eq!(cfg.api.listen, default_api());
            assert_eq!(cfg.network.admission, AdmissionMode::Members);
        }
    }

    #[test]
    fn memory_settings_have_documented_defaults_and_reach_the_components() {
        let Ok(d) = tempfile::tempdir() else { return };
        let cfg = NodeConfig::load(&write(d.path(), BASE), &[]).map_err(|e| e.to_string());
        let Ok(cfg) = cfg else { panic!("{cfg:?}") };
        assert_eq!(cfg.network.gossip_queue_messages, 32_768);
        assert_eq!(cfg.network.gossip_queue_mb, 64);
        assert_eq!(cfg.search.index_heap_mb, 50);
        assert_eq!(cfg.search.index_nice, 10);
        assert_eq!(cfg.store.cache_mb, 4);
        assert_eq!(cfg.store.min_free_mb, 512);
        let text = format!(
            "{BASE}[network]\ngossip_queue_messages = 100\ngossip_queue_mb = 2\n[search]\nindex_heap_mb = 15\n[store]\nmin_free_mb = 0\n"
        );
        let cfg = NodeConfig::load(&write(d.path(), &text), &[]).map_err(|e| e.to_string());
        let Ok(cfg) = cfg else { panic!("{cfg:?}") };
        assert_eq!(cfg.network.gossip_queue_messages, 100);
        assert_eq!(cfg.network.gossip_queue_mb, 2);
        assert_eq!(cfg.search.index_options().writer_heap_bytes, 15 << 20);
        assert_eq!(cfg.store.min_free_mb, 0);
    }

    /// A field this release does not know is named, with this release's version and the hint
    /// that it may belong to a newer one (a node.toml prepared for an upgrade, or kept after a
    /// rollback); other errors carry no such hint.
    #[test]
    fn an_unknown_field_may_belong_to_a_newer_release() {
        let Ok(d) = tempfile::tempdir() else { return };
        let err = |text: &str| {
            NodeConfig::load(&write(d.path(), text), &[])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let hint = "a field this release does not know may belong to a newer one";
        let version = format!("this is accord {}", env!("CARGO_PKG_VERSION"));
        // A field of a later release in a section, and one at the top.
        for (text, unknown) in [
            (
                format!("{BASE}[api]\ntls_cert = \"cert.pem\"\n"),
                "tls_cert",
            ),
            (format!("{BASE}colour = 1\n"), "colour"),
        ] {
            let e = err(&text);
            assert!(
                e.contains(&format!("unknown field `{unknown}`"))
                    && e.contains(&version)
                    && e.contains(hint),
                "{e}"
            );
        }
        let e = err(&format!("{BASE}[api]\nlisten = \"nowhere\"\n"));
        assert!(e.contains("listen") && !e.contains(hint), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let Ok(d) = tempfile::tempdir() else { return };
        let err = |text: &str, env: &[(String, String)]| {
            NodeConfig::load(&write(d.path(), text), env)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(&format!("{BASE}colour = 1\n"), &[]).contains("unknown field `colour`"));
        assert!(err(&BASE.replace("KZ", "kz"), &[]).contains("member"));
        assert!(err(&format!("{BASE}[api]\nlisten = \"nowhere\"\n"), &[]).contains("listen"));
        assert!(
            err(&format!("{BASE}[network]\nadmission = \"everyone\"\n"), &[]).contains("admission")
        );
        assert!(
            err(
                &format!("{BASE}[network]\nbootstrap = [\"/ip4/127.0.0.1/tcp/1\"]\n"),
                &[]
            )
            .contains("network.bootstrap")
        );
        assert!(
            err(&format!("{BASE}[network]\nlisten = [\"tcp:80\"]\n"), &[])
                .contains("network.listen")
        );
        assert!(
            err(&format!("{BASE}[network]\ngossip_mesh_n = 40\n"), &[])
                .contains("network.gossip_mesh_n")
        );
        for (section, line, field) in [
            (
                "network",
                "gossip_queue_messages = 0",
                "network.gossip_queue_messages",
            ),
            (
                "network",
                "gossip_queue_messages = 8",
                "must be between 16 and",
            ),
            ("network", "gossip_queue_mb = 0", "network.gossip_queue_mb"),
            (
                "network",
                "gossip_queue_mb = 5000",
                "must be between 1 and 4096",
            ),
            (
                "network",
                "gossip_queue = 10",
                "unknown field `gossip_queue`",
            ),
            ("search", "index_heap_mb = 14", "search.index_heap_mb"),
            (
                "search",
                "index_heap_mb = 4096",
                "must be between 15 and 2048",
            ),
            ("search", "index_heap_mb = -1", "index_heap_mb"),
            ("search", "index_nice = 20", "search.index_nice"),
            ("search", "index_nice = 25", "must be between 0 and 19"),
            ("search", "index_nice = -5", "index_nice"),
            ("store", "cache_mb = 4294967296", "store.cache_mb"),
            (
                "store",
                "cache_mb = 4294967296",
                "must be between 1 and 1048576",
            ),
            ("store", "cache_mb = 0", "store.cache_mb"),
            (
                "api",
                "max_connections = 9000000000000000000",
                "must be between 1 and 65536",
            ),
            ("api", "max_connections = 0", "api.max_connections"),
            (
                "attachments",
                "max_bytes_per_sec = 32",
                "attachments.max_bytes_per_sec: 32 bytes per second",
            ),
            (
                "attachments",
                "max_bytes_per_sec_per_peer = 1000",
                "attachments.max_bytes_per_sec_per_peer",
            ),
            (
                "attachments",
                "fetch_max_bytes = 50",
                "attachments.fetch_max_bytes: 50 bytes would fetch no file",
            ),
            ("store", "min_free_mb = 2000000000", "store.min_free_mb"),
            ("store", "min_free_mb = 2000000000", "must be at most"),
            ("store", "min_free_mb = -1", "min_free_mb"),
            (
                "store",
                "test_free_bytes = 5",
                "unknown field `test_free_bytes`",
            ),
            // A time of centuries would overflow the clock when the node adds it.
            (
                "sync",
                "interval_secs = 9000000000000000000",
                "sync.interval_secs",
            ),
            (
                "sync",
                "interval_secs = 40000000",
                "at most 31536000 (a year)",
            ),
            (
                "network",
                "admission_timeout_secs = 9000000000000000000",
                "network.admission_timeout_secs",
            ),
            (
                "store",
                "pending_ttl_secs = 99999999999",
                "store.pending_ttl_secs",
            ),
        ] {
            let e = err(&format!("{BASE}[{section}]\n{line}\n"), &[]);
            assert!(e.contains(field), "{line}: {e}");
        }
        for (section, field) in [
            ("heartbeat_secs = 0", "health.heartbeat_secs"),
            ("heartbeat_secs = 7200", "health.heartbeat_secs"),
            ("ttl_secs = 60", "health.ttl_secs"),
            ("silent_peer_secs = 60", "health.silent_peer_secs"),
            ("silent_peer_secs = 9999999", "health.silent_peer_secs"),
            (
                "watermark_delay_secs = 99999999",
                "health.watermark_delay_secs",
            ),
            ("period = 5", "unknown field `period`"),
        ] {
            let e = err(&format!("{BASE}[health]\n{section}\n"), &[]);
            assert!(e.contains(field), "{section}: {e}");
        }
        for (section, field) in [
            ("max_parallel = 0", "attachments.max_parallel"),
            (
                "max_parallel_per_peer = 9",
                "attachments.max_parallel_per_peer",
            ),
            (
                "max_parallel = 8\nmax_parallel_per_peer = 5",
                "at most 4 (what a peer answers at once)",
            ),
            (
                "serve_requests_per_minute = 0",
                "attachments.serve_requests_per_minute",
            ),
            (
                "extract_timeout_secs = 0",
                "attachments.extract_timeout_secs",
            ),
            ("fetch = \"some\"", "fetch"),
            (
                "max_waiting_per_member = 0",
                "attachments.max_waiting_per_member",
            ),
            (
                "max_waiting_per_member = 100000",
                "must be between 1 and 65536",
            ),
            ("corrupt_served = true", "unknown field `corrupt_served`"),
        ] {
            let e = err(&format!("{BASE}[attachments]\n{section}\n"), &[]);
            assert!(e.contains(field), "{section}: {e}");
        }
        assert!(
            err(BASE, &[("ACCORD_NETWORK_MDNS".into(), "maybe".into())])
                .contains("ACCORD_NETWORK_MDNS")
        );
    }

    /// Origins are taken only as a browser writes them; each other form is refused, saying
    /// what is wrong (it would never match, and CORS would stay off without a word).
    #[test]
    fn cors_origins_are_taken_only_as_browsers_write_them() {
        for ok in [
            "https://portal.example.gov",
            "http://localhost:8080",
            "https://[::1]:8443",
            "https://[::1]",
        ] {
            assert_eq!(check_origin(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("https://portal.example.gov/app", "'/'"),
            ("https://portal.example.gov/", "'/'"),
            ("https://portal.example.gov:443", "without :443"),
            ("http://portal.example.gov:80", "without :80"),
            ("https://portal.example.gov:x", "not a number"),
            ("https://portal.example.gov?a", "'?'"),
            ("https://user@portal.example.gov", "'@'"),
            ("portal.example.gov", "https://"),
            ("*", "https://"),
            ("https://*.example.gov", "'*'"),
            ("https://", "host is missing"),
        ] {
            let e = check_origin(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn api_hosts_are_names_alone() {
        for ok in [
            "accord.mfa.example.gov",
            "localhost",
            "node-1",
            "xn--80ak6aa92e.example",
        ] {
            assert_eq!(check_host_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("https://accord.example.gov", "without a scheme"),
            ("accord.example.gov:443", "':'"),
            ("accord.example.gov/ui", "'/'"),
            ("*.example.gov", "'*'"),
            ("ачкорд.рф", "xn--"),
            ("", "empty"),
        ] {
            let e = check_host_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let Ok(d) = tempfile::tempdir() else { return };
        let env = vec![
            (
                "ACCORD_API_LISTEN".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
            (
                "ACCORD_NETWORK_LISTEN".to_string(),
                "/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/tcp/2".to_string(),
            ),
            ("ACCORD_NETWORK_ADMISSION".to_string(), "open".to_string()),
            // Another program's variable is ignored (with a warning), never an error.
            ("ACCORD_BIN".to_string(), "/opt/accord/bin".to_string()),
        ];
        let cfg = NodeConfig::load(&write(d.path(), BASE), &env).ok();
        assert_eq!(cfg.as_ref().map(|c| c.api.listen.port()), Some(9999));
        assert_eq!(cfg.as_ref().map(|c| c.network.listen.len()), Some(2));
        assert_eq!(cfg.map(|c| c.network.admission), Some(AdmissionMode::Open));
    }
}
