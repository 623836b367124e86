//! Spawning a node, its event loop and its handle.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use accord_core::{Object, ObjectId, ObjectType, SecretKey, Timestamp, Verified};
use accord_net::{
    Addr, Admission, NetConfig, Network, NetworkEvent, NetworkHandle, Peer, Validation,
};
use accord_store::{IngestOutcome, RecordStatus, Store};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::config::{AdmissionMode, NodeConfig, SyncConfig};
use crate::sync::SyncState;
use crate::worker::{self, IngestResult, Job, STORE_QUEUE_CAPACITY, Shared};
use crate::{NodeError, Source};

/// Capacity of the channel of newly accepted objects (live subscribers).
pub const SUBSCRIBER_CAPACITY: usize = 1024;
/// How often attachments no live record needs are removed.
const ATTACHMENT_GC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Most gossip messages being validated at once.
const GOSSIP_CONCURRENCY: usize = 256;
/// Most gossip messages taken from the queue at once and judged together (those of one sender
/// as one ingest): a burst is verified and stored in batches, as reconciliation's are, instead
/// of a blocking-pool task and a store job per message.
const GOSSIP_BATCH: usize = 64;
/// A session owed to the senders of missed gossip, or the periodic session, starts once at most
/// this many gossip messages wait in the queue and at most this many were taken from it since
/// the last check...
const OWED_SYNC_BACKLOG: usize = 64;
/// ...checked this often.
const OWED_SYNC_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// The verdict on one submitted object, for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOutcome {
    pub id: Option<ObjectId>,
    /// `accepted`, `duplicate`, `pending`, `rejected` or `quarantine-full`.
    pub status: &'static str,
    /// The stable code of a refusal or hold (docs/PROTOCOL.md §5, "Reason codes").
    pub code: Option<&'static str>,
    pub reason: Option<String>,
}

/// A stored object for display.
#[derive(Debug, Clone)]
pub struct StoredView {
    pub id: ObjectId,
    pub bytes: Vec<u8>,
    pub object: Object,
    pub signers: Vec<accord_core::PublicKey>,
    pub status: Option<RecordStatus>,
}

/// Searches and completions that run at once: each reads the index on the blocking pool,
/// which the node's own work (checking objects, serving peers) shares, so analysts' traffic
/// queues here rather than there.
pub const SEARCHES_AT_ONCE: usize = 4;

/// How long a search or completion waits for one of the [`SEARCHES_AT_ONCE`] slots before it
/// is answered that the node is busy: a client is told to come back, rather than left waiting
/// without an end behind searches that take long (the first run of a word in every record of
/// a million), each waiting one holding its connection.
pub const SEARCH_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// One of the search slots, or [`NodeError::Busy`] after `wait`.
async fn search_slot(
    slots: Arc<Semaphore>,
    wait: std::time::Duration,
) -> Result<tokio::sync::OwnedSemaphorePermit, NodeError> {
    match tokio::time::timeout(wait, slots.acquire_owned()).await {
        Ok(Ok(slot)) => Ok(slot),
        Ok(Err(e)) => Err(NodeError::Store(e.to_string())),
        Err(_) => Err(NodeError::Busy(format!(
            "the node is busy: {SEARCHES_AT_ONCE} searches are running and this one waited {} s for its turn; try again shortly",
            wait.as_secs()
        ))),
    }
}

/// Heartbeats judged at once. A heartbeat beyond them is let go unjudged (not forwarded, no
/// penalty, counted as `busy`): honest nodes beat once a period, so only a flood meets the
/// bound, and a flood never holds more tasks and memory than this.
pub const HEARTBEATS_AT_ONCE: usize = 16;

/// What `GET /v1/status` shows.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub peer_id: String,
    pub member: String,
    pub federation: ObjectId,
    pub federation_name: String,
    pub charter_version: u64,
    pub counts: BTreeMap<ObjectType, u64>,
    pub pending: usize,
    pub peers_connected: usize,
    pub peers_admitted: usize,
    pub uptime_secs: u64,
    pub version: &'static str,
    pub listen: Vec<String>,
    /// Free space of the data directory's disk and its floor.
    pub disk: crate::DiskView,
    /// Why the node must restart to apply the charter in force, if it must.
    pub restart_needed: Option<String>,
    /// Why this release must be replaced by a newer one, if it must ([`NodeHandle::upgrade_needed`]).
    pub upgrade_needed: Option<String>,
    /// This node's clock against its peers' heartbeats (`None` before nodes of two members were
    /// heard).
    pub clock: Option<crate::ClockOffset>,
}

/// Something a submission keeps until its objects are stored (an HTTP request's room in the
/// memory budget).
pub type Hold = Box<dyn std::any::Any + Send>;

/// A connected peer for display.
#[derive(Debug, Clone)]
pub struct PeerView {
    pub peer_id: String,
    pub member: Option<String>,
    pub admitted: bool,
    pub addresses: Vec<String>,
    pub connected_since: Timestamp,
    pub gossip_score: Option<f64>,
}

struct Inner {
    store: mpsc::Sender<Job>,
    /// The data directory (the settled mark of attachments is saved in it).
    data_dir: std::path::PathBuf,
    net: NetworkHandle,
    accepted: broadcast::Sender<Arc<Verified<Object>>>,
    started: Instant,
    member: String,
    federation: ObjectId,
    shutdown: watch::Sender<bool>,
    /// The node's long-running tasks, by the name an operator reads when one stopped.
    tasks: Mutex<Vec<(&'static str, tokio::task::JoinHandle<()>)>>,
    store_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    sync: Arc<SyncState>,
    sync_config: SyncConfig,
    searcher: accord_search::Searcher,
    /// The built-in glossary and the operator's files: with the charter's names, what queries
    /// are expanded with.
    glossary_base: accord_search::Glossary,
    /// The charter version whose names the searcher's glossary holds: a query after an
    /// amendment (a member or a direction added) brings it up to date first.
    glossary_charter: Mutex<u64>,
    expects_peers: bool,
    metrics: Arc<crate::metrics::Metrics>,
    /// What the store thread publishes (trust, counts) for readers that must not wait on it.
    shared: Arc<Shared>,
    /// Reads stored objects from any thread (the precheck's duplicate check). Taken at
    /// shutdown: it holds the database open.
    objects: Arc<Mutex<Option<accord_store::ObjectReader>>>,
    /// One precheck task per core at a time.
    verify_slots: Arc<Semaphore>,
    /// Searches and completions running at once ([`SEARCHES_AT_ONCE`]).
    search_slots: Arc<Semaphore>,
    /// Heartbeats being judged ([`HEARTBEATS_AT_ONCE`]).
    heartbeat_slots: Arc<Semaphore>,
    /// Signalled when an accepted revocation or charter amendment may have taken away an
    /// admitted peer's certificate: the event loop re-checks every admitted peer.
    trust_changed: tokio::sync::Notify,
    /// Whether gossip is quiet (see [`SessionsDue`]), refreshed by the event loop every
    /// [`OWED_SYNC_CHECK`]: reconciliation for other reasons waits for it too.
    gossip_quiet: watch::Sender<bool>,
    /// The node key: the libp2p identity, and the signer of heartbeats and evidence.
    node_key: SecretKey,
    health: Arc<crate::health::HealthState>,
    health_config: crate::config::HealthConfig,
    /// Test-only: objects never given to peers (`SyncConfig::withhold`), and the peers that
    /// applies to (`SyncConfig::withhold_from`; empty: all).
    withhold: std::collections::HashSet<ObjectId>,
    withhold_from: std::collections::HashSet<String>,
    attachments: Arc<crate::attachments::Attachments>,
    /// The free space of the data directory's disk, and its floor (`store.min_free_mb`).
    disk: Arc<crate::disk::DiskGuard>,
    /// The largest object gossip carries (and reconciliation, when above 8 MiB), set at start from the
    /// charter then in force: libp2p's codecs take it once.
    transport_max_object_bytes: usize,
}

/// A cloneable handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("member", &self.inner.member)
            .field("peer", &self.inner.net.local_peer_id())
            .finish()
    }
}

/// The node type: see [`Node::spawn`].
#[derive(Debug)]
pub struct Node;

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, NodeError> {
    std::fs::read(path).map_err(|e| NodeError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

impl Node {
    /// Starts a node: opens the store on its own thread, ingests the preloaded files, starts
    /// the network task and the event loop. Must be called inside a tokio runtime.
    pub async fn spawn(cfg: NodeConfig) -> Result<NodeHandle, NodeError> {
        crate::unfinished_restore(&cfg.data_dir)?;
        accord_store::unfinished_repair(&cfg.data_dir)
            .map_err(|e| NodeError::Store(e.to_string()))?;
        // When the search index last committed, before this start commits anything: a file's
        // text written since, by a release that did not note it first, was never committed to
        // it (see `read_unread_attachments`).
        let index_committed_at = std::fs::metadata(cfg.data_dir.join("search").join("meta.json"))
            .and_then(|m| m.modified())
            .ok();
        let genesis = read_file(&cfg.charter)?;
        let key_text = std::fs::read_to_string(&cfg.node_key).map_err(|e| NodeError::Key {
            path: cfg.node_key.display().to_string(),
            message: if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    "{e}: the node's user must be able to read it (under systemd: chgrp accord and chmod 0640 the file)"
                )
            } else {
                e.to_string()
            },
        })?;
        let key = SecretKey::from_pem(&key_text).map_err(|e| NodeError::Key {
            path: cfg.node_key.display().to_string(),
            message: e.to_string(),
        })?;
        // Whoever reads the node key can pass for this node (and sign its heartbeats): readable
        // by every user of the machine it is worth a word, not a refusal (a development
        // container mounts it so on purpose).
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(&cfg.node_key)
                && m.permissions().mode() & 0o004 != 0
            {
                warn!(
                    path = %cfg.node_key.display(),
                    "the node key is readable by every user of this machine: chmod o-r it (0640 with the node's group, or 0600)"
                );
            }
        }
        let node_cert = cfg
            .node_cert
            .as_deref()
            .map(|path| {
                std::fs::read(path).map_err(|e| {
                    NodeError::Config(crate::config::ConfigError::Field {
                        field: "node_cert".into(),
                        message: format!(
                            "{}: {e}: this node's certificate, which other nodes ask for before they admit it; have the root key holder of {} run `accord cert node --charter charter.cbor --member {} --root-key ROOT_KEY_FILE --node-key {} --out node-cert.cbor` and put the file there",
                            path.display(),
                            cfg.member,
                            cfg.member,
                            key.public_key()
                        ),
                    })
                })
            })
            .transpose()?;
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| NodeError::File {
            path: cfg.data_dir.display().to_string(),
            message: e.to_string(),
        })?;

        // Open the store off the async workers.
        let dir = cfg.data_dir.clone();
        let opts = cfg.store.options();
        let g = genesis.clone();
        let att_cfg = cfg.attachments.clone();
        let index_opts = cfg.search.index_options();
        let index_nice = cfg.search.index_nice;
        let preload_files = cfg.preload.clone();
        let (store, search, health, attachments, unsettled) =
            tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
                let health =
                    crate::health::HealthState::open(dir.join("evidence")).map_err(|e| {
                        NodeError::File {
                            path: dir.join("evidence").display().to_string(),
                            message: e.to_string(),
                        }
                    })?;
                let mut store = Store::open(&dir, &g, opts)
                    .map_err(|e| crate::opening_error(&dir, "store", e))?;
                amendments_first(&mut store, &preload_files);
                // Opened on a thread of its own at the index's lower priority, which the
                // merge and segment threads the index starts inherit (see `priority`).
                let mut search = std::thread::scope(|scope| {
                    let opening = std::thread::Builder::new()
                        .name("accord-index-open".into())
                        .spawn_scoped(scope, || {
                            crate::priority::lower_this_thread_or_warn(index_nice, "index");
                            let mut search = accord_search::SearchIndex::open_with(
                                &dir.join("search"),
                                &index_opts,
                            )
                            .map_err(|e| {
                                crate::opening_error(&dir.join("search"), "search index", e)
                            })?;
                            // Bodies stay in the store; hits read them from it
                            // (`StoredTexts` below).
                            search.without_long_texts();
                            Ok::<_, NodeError>(search)
                        })
                        .map_err(|e| NodeError::Store(e.to_string()))?;
                    opening
                        .join()
                        .map_err(|_| NodeError::Store("the index opener panicked".into()))?
                })?;
                // Not on the opener: the store's own threads it may start keep the node's
                // priority.
                // A rebuild that fails (no room for the old and new segments at once) names
                // the index's directory, not the store.
                crate::index::rebuild_if_needed(&store, &mut search, false)
                    .map_err(|e| crate::opening_error(&dir.join("search"), "search index", e))?;
                let attachments = crate::attachments::Attachments::open(
                    &dir,
                    att_cfg,
                    store.trust().limits().max_attachment_bytes,
                )?;
                let unsettled = crate::attachments::unsettled(&store, &dir);
                Ok((store, search, health, attachments, unsettled))
            })
            .await
            .map_err(|e| NodeError::Store(e.to_string()))??;
        let trust = store.trust().clone();
        let trust_version = trust.charter().version;
        let federation = trust.federation();
        if trust
            .charter()
            .member(&cfg.member.parse().map_err(|e: String| NodeError::Charter {
                path: cfg.charter.display().to_string(),
                message: e,
            })?)
            .is_none()
        {
            return Err(NodeError::Charter {
                path: cfg.charter.display().to_string(),
                message: format!(
                    "{} is not a member of federation {} (charter version {}); if it was added by a charter amendment, put the amendment's file in `preload` so that the node knows it at start",
                    cfg.member,
                    federation,
                    trust.charter().version
                ),
            });
        }
        own_certificate(&cfg, node_cert.as_deref(), &trust, &key)?;
        let shared = Arc::new(Shared::new(&store));
        let objects = Arc::new(Mutex::new(Some(store.object_reader())));
        let glossary_base = glossary_files(&cfg.search.glossary)?;
        let searcher = search
            .searcher_with(Arc::new(with_charter_names(&glossary_base, &trust)))
            .with_texts(Arc::new(crate::index::StoredTexts::new(
                objects.clone(),
                crate::attachments::blob_store_at(&cfg.data_dir),
                shared.clone(),
            )));

        let transport_max_object_bytes = trust.limits().max_bytes();
        let net_cfg = NetConfig {
            keypair: accord_net::keypair_of(&key)?,
            federation,
            listen: cfg
                .network
                .listen
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            bootstrap: cfg
                .network
                .bootstrap
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            admission_timeout: std::time::Duration::from_secs(cfg.network.admission_timeout_secs),
            admission: match cfg.network.admission {
                AdmissionMode::Members => Admission::Members,
                AdmissionMode::Open => Admission::Open,
            },
            mdns: cfg.network.mdns,
            node_cert,
            max_object_bytes: transport_max_object_bytes,
            gossip_mesh_n: cfg.network.gossip_mesh_n,
            sim: cfg.network.sim.clone(),
            gossip_queue: cfg.network.gossip_queue_messages,
            gossip_queue_bytes: (cfg.network.gossip_queue_mb << 20) as usize,
        };
        let mut registry = accord_net::Registry::default();
        let (network, net, events) = Network::with_metrics(net_cfg, Some(&mut registry))?;
        let metrics = Arc::new(crate::metrics::Metrics::new(registry));
        let (store_tx, store_rx) = mpsc::channel(STORE_QUEUE_CAPACITY);
        let store_thread = {
            let shared = shared.clone();
            let metrics = metrics.clone();
            let warm = searcher.clone();
            std::thread::Builder::new()
                .name("accord-store".into())
                .spawn(move || {
                    worker::run(store, search, warm, index_nice, store_rx, shared, metrics)
                })
                .map_err(|e| NodeError::Store(e.to_string()))?
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (accepted, _) = broadcast::channel(SUBSCRIBER_CAPACITY);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let handle = NodeHandle {
            inner: Arc::new(Inner {
                store: store_tx,
                net: net.clone(),
                accepted,
                started: Instant::now(),
                member: cfg.member.clone(),
                federation,
                shutdown,
                tasks: Mutex::new(Vec::new()),
                store_thread: Mutex::new(Some(store_thread)),
                sync: Arc::new(SyncState::new(&cfg.sync)),
                sync_config: cfg.sync.clone(),
                searcher,
                glossary_base,
                glossary_charter: Mutex::new(trust_version),
                expects_peers: !cfg.network.bootstrap.is_empty(),
                metrics,
                shared,
                objects,
                verify_slots: Arc::new(Semaphore::new(cores)),
                search_slots: Arc::new(Semaphore::new(SEARCHES_AT_ONCE)),
                heartbeat_slots: Arc::new(Semaphore::new(HEARTBEATS_AT_ONCE)),
                trust_changed: tokio::sync::Notify::new(),
                gossip_quiet: watch::Sender::new(true),
                node_key: key,
                health: Arc::new(health),
                health_config: cfg.health.clone(),
                withhold: cfg.sync.withhold.iter().copied().collect(),
                withhold_from: cfg.sync.withhold_from.iter().cloned().collect(),
                attachments: Arc::new(attachments),
                disk: Arc::new(disk_guard(&cfg.data_dir, &cfg.store)),
                data_dir: cfg.data_dir.clone(),
                transport_max_object_bytes,
            }),
        };
        let net_task = tokio::spawn(network.run());
        // Read once at start (a disk already below its floor is in the log at once), then by a
        // thread of its own.
        if let Err(e) = handle.inner.disk.watch() {
            handle.shutdown().await;
            return Err(NodeError::Store(format!(
                "starting the thread that watches the disk: {e}"
            )));
        }
        // Preloaded trust objects (delegations, certificates) before peers are handled.
        if let Err(e) = preload(&handle, &net, &cfg.preload, &trust).await {
            handle.shutdown().await;
            return Err(e);
        }
        let fetcher = tokio::spawn(
            handle
                .clone()
                .run_fetcher(handle.inner.shutdown.subscribe()),
        );
        // Files held whose text was never read (the node stopped during it, or the extractor
        // could not be started) are read now, and those whose text the index never committed
        // indexed again.
        tokio::spawn(handle.clone().read_unread_attachments(index_committed_at));
        // The files of records stored after the last saved settled mark (the node stopped
        // before they were referenced or queued), then the mark from here on.
        // The mark stays before them until that is written (with nothing to settle, or
        // their reading failed and the settle is kept for this run, see `unsettled`).
        let (mark, records, read) = unsettled;
        let settle = handle.attachments().settle_begin(mark);
        if !read {
            std::mem::forget(settle);
        } else {
            handle.attachments_arrived(records, Some(settle));
        }
        handle.save_settled().await;
        let loop_task = tokio::spawn(event_loop(
            handle.clone(),
            events,
            shutdown_rx,
            cfg.network.admission,
        ));
        if let Ok(mut t) = handle.inner.tasks.lock() {
            t.push(("network", net_task));
            t.push(("event loop", loop_task));
            t.push(("attachment fetcher", fetcher));
        }
        info!(member = %cfg.member, peer = %net.local_peer_id(), federation = %federation, allocator = %crate::allocator::allocator_env_in_effect(), "node started");
        if let Some(why) = handle.upgrade_needed() {
            warn!("upgrade this node: {why}");
        }
        Ok(handle)
    }
}

fn refused(r: crate::disk::Refused) -> NodeError {
    match r {
        crate::disk::Refused::Low(low) => NodeError::DiskLow(low),
        crate::disk::Refused::NoRoom(room) => NodeError::NoRoom(room),
    }
}

/// The guard of the data directory's disk: the filesystem's free space, or the test's figure.
fn disk_guard(dir: &std::path::Path, cfg: &crate::config::StoreConfig) -> crate::disk::DiskGuard {
    let min_free = cfg.min_free_mb.saturating_mul(1 << 20);
    match &cfg.test_free_bytes {
        Some(free) => {
            let free = free.clone();
            crate::disk::DiskGuard::with_probe(
                dir,
                min_free,
                Box::new(move |_| Ok(free.load(std::sync::atomic::Ordering::SeqCst))),
            )
        }
        None => crate::disk::DiskGuard::new(dir, min_free),
    }
}

/// Ingests the configured files before the node handles peers; new objects are gossiped.
async fn preload(
    handle: &NodeHandle,
    net: &NetworkHandle,
    files: &[std::path::PathBuf],
    trust: &accord_core::TrustView,
) -> Result<(), NodeError> {
    for path in files {
        let data = read_file(path)?;
        let items =
            accord_core::cbor::split_sequence(&data, trust.limits().scan()).map_err(|e| {
                NodeError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }
            })?;
        let r = handle
            .ingest(
                items.into_iter().map(<[u8]>::to_vec).collect(),
                Source::Preload,
            )
            .await?;
        for o in &r.outcomes {
            match o {
                IngestOutcome::Rejected(_, reason) => {
                    warn!(file = %path.display(), %reason, "preloaded object refused")
                }
                // New trust objects are offered to the federation once peers subscribe.
                IngestOutcome::Accepted(v) => {
                    if let Err(e) = net.publish(v.bytes().to_vec()).await {
                        warn!(object = %v.id(), error = %e, "preloaded object not gossiped");
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The query glossary: the built-in one and the operator's files (`base`), with the direction
/// and member names of the charter in force.
fn with_charter_names(
    base: &accord_search::Glossary,
    trust: &accord_core::TrustView,
) -> accord_search::Glossary {
    let mut g = base.clone();
    g.set_directions(
        trust
            .charter()
            .taxonomy
            .directions
            .iter()
            .map(|d| accord_search::DirectionNames {
                code: d.code.clone(),
                names: d.names.clone(),
            })
            .collect(),
    );
    // Members' names as the charter gives them: "Беларусь" in a query also finds BY's records.
    g.set_members(
        trust
            .charter()
            .members
            .iter()
            .map(|m| accord_search::DirectionNames {
                code: m.code.to_string(),
                names: m.name.clone(),
            })
            .collect(),
    );
    g
}

/// The built-in glossary with the operator's files added; a bad file is an error naming it.
fn glossary_files(paths: &[std::path::PathBuf]) -> Result<accord_search::Glossary, NodeError> {
    let mut g = accord_search::Glossary::builtin();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|e| NodeError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        g.add_toml(&text, &path.display().to_string())
            .map_err(|e| NodeError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
    }
    Ok(g)
}

impl NodeHandle {
    /// Waits until gossip is quiet (a short queue, little taken from it lately); at once when
    /// it is, and at most twice the sync interval (gossip a peer keeps flooding must not hold
    /// reconciliation back for good). `false` when the node stopped meanwhile.
    pub(crate) async fn gossip_quiet(&self) -> bool {
        let mut quiet = self.inner.gossip_quiet.subscribe();
        let mut stopping = self.inner.shutdown.subscribe();
        let most = 2 * std::time::Duration::from_secs(self.inner.sync_config.interval_secs);
        let quiet = tokio::select! {
            q = quiet.wait_for(|q| *q) => q.is_ok(),
            _ = tokio::time::sleep(most) => true,
            _ = stopping.wait_for(|s| *s) => false,
        };
        quiet && !*self.inner.shutdown.borrow()
    }

    pub(crate) fn store_tx(&self) -> &mpsc::Sender<Job> {
        &self.inner.store
    }

    pub(crate) fn sync_state(&self) -> &Arc<SyncState> {
        &self.inner.sync
    }

    pub(crate) fn sync_config(&self) -> &SyncConfig {
        &self.inner.sync_config
    }

    pub(crate) fn attachments(&self) -> &Arc<crate::attachments::Attachments> {
        &self.inner.attachments
    }

    /// Saves the settled mark of attachments if it moved (off the async workers).
    pub(crate) async fn save_settled(&self) {
        // Not into a directory put at the data directory's path since the node started.
        if self.inner.disk.moved().is_some() {
            return;
        }
        // The sequence number is read before the ingests in flight are: see `settled_mark`.
        let seq = self.seq();
        let (att, dir) = (self.attachments().clone(), self.inner.data_dir.clone());
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || att.save_settled(&dir, seq)).await {
            warn!(error = %e, "the settled mark of attachments was not saved");
        }
    }

    pub(crate) fn health(&self) -> &crate::health::HealthState {
        &self.inner.health
    }

    pub(crate) fn health_config(&self) -> &crate::config::HealthConfig {
        &self.inner.health_config
    }

    pub(crate) fn node_key(&self) -> &SecretKey {
        &self.inner.node_key
    }

    pub(crate) fn uptime_secs(&self) -> u64 {
        self.inner.started.elapsed().as_secs()
    }

    pub(crate) fn shared_counts(&self) -> BTreeMap<ObjectType, u64> {
        self.inner.shared.counts()
    }

    /// Test-only withholding (`SyncConfig::withhold`): whether `id` is never given to `peer`
    /// (`None`: to gossip, which reaches every peer).
    pub(crate) fn withholds(&self, id: &ObjectId, peer: Option<&Peer>) -> bool {
        self.inner.withhold.contains(id)
            && (peer.is_none()
                || self.inner.withhold_from.is_empty()
                || peer.is_some_and(|p| self.inner.withhold_from.contains(&p.to_string())))
    }

    /// Runs a search on the node's index (off the async workers).
    pub async fn search(
        &self,
        q: accord_search::SearchQuery,
    ) -> Result<accord_search::SearchResult, NodeError> {
        self.on_searcher(move |s| s.search(&q)).await
    }

    /// Several searches one after another in one of the search slots (off the async workers):
    /// one page's side searches (the filter counts without each filter) hold one slot, not one
    /// each, so that one page cannot take every slot. Each search's own outcome, in order.
    pub async fn search_each(
        &self,
        qs: Vec<accord_search::SearchQuery>,
    ) -> Result<Vec<Result<accord_search::SearchResult, accord_search::SearchError>>, NodeError>
    {
        self.on_searcher(move |s| Ok(qs.iter().map(|q| s.search(q)).collect()))
            .await
    }

    /// Completions of a query being typed (off the async workers).
    pub async fn suggest(&self, text: String) -> Result<Vec<accord_search::Completion>, NodeError> {
        self.on_searcher(move |s| s.suggest(&text)).await
    }

    async fn on_searcher<T: Send + 'static>(
        &self,
        f: impl FnOnce(&accord_search::Searcher) -> Result<T, accord_search::SearchError>
        + Send
        + 'static,
    ) -> Result<T, NodeError> {
        let searcher = self.inner.searcher.clone();
        let charter = self.trust();
        // A search waits its turn here, on a task (dropped, and so cancelled, with its
        // request); the slot is held by the blocking work itself, which runs to its end even
        // when its request went away.
        let slot = search_slot(self.inner.search_slots.clone(), SEARCH_WAIT).await?;
        let handle = self.clone();
        tokio::task::spawn_blocking(move || {
            handle.glossary_up_to(&charter);
            let r = f(&searcher);
            drop(slot);
            r
        })
        .await
        .map_err(|e| NodeError::Store(e.to_string()))?
        .map_err(|e| match e {
            accord_search::SearchError::BadQuery(m) => NodeError::BadQuery(m),
            other => NodeError::Store(other.to_string()),
        })
    }

    /// Brings the searcher's glossary up to the charter `trust` holds, if an amendment changed
    /// it since (blocking: it prepares the names as the index analyses them).
    fn glossary_up_to(&self, trust: &accord_core::TrustView) {
        let version = trust.charter().version;
        let mut applied = self
            .inner
            .glossary_charter
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Never back: a query that read the charter before an amendment may run after one that
        // read it after.
        if *applied >= version {
            return;
        }
        self.inner
            .searcher
            .set_glossary(&with_charter_names(&self.inner.glossary_base, trust));
        info!(
            charter = version,
            "queries now read the member and direction names of the charter in force"
        );
        *applied = version;
    }

    /// Whether the configuration names peers to connect to (readiness then needs one).
    pub fn expects_peers(&self) -> bool {
        self.inner.expects_peers
    }

    /// Whether the data directory's disk has room for new objects and files (see
    /// `store.min_free_mb`): `Err(NodeError::DiskLow)` while it is below the floor.
    pub fn disk_check(&self) -> Result<(), NodeError> {
        self.inner.disk.check().map_err(NodeError::DiskLow)
    }

    /// Whether a file of `bytes` would fit above the disk's floor now, with the files under way
    /// (an upload's announced length, before any of its body is kept).
    pub fn disk_room_for(&self, bytes: u64) -> Result<(), NodeError> {
        self.inner.disk.would_fit(bytes).map_err(refused)
    }

    /// Room reserved for a file of `bytes` until the reservation is dropped.
    pub(crate) fn disk_reserve(&self, bytes: u64) -> Result<crate::disk::Reservation, NodeError> {
        self.inner.disk.reserve(bytes).map_err(refused)
    }

    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// The Prometheus text exposition of the node's metrics (gauges refreshed now).
    pub async fn metrics_text(&self) -> String {
        let m = self.inner.metrics.clone();
        let peers = self.inner.net.peers().await;
        // A network task that stopped answering has no peers to show: none, not the last ones.
        m.peers.clear();
        m.peers_admitted.set(0);
        if let Ok(peers) = peers {
            // Admitted as `/readyz` and `/v1/status` count them.
            m.peers_admitted
                .set(peers.iter().filter(|p| p.admitted).count() as i64);
            for p in peers {
                let member = p.member.unwrap_or_else(|| "unknown".into());
                m.peers
                    .get_or_create(&vec![("member".to_string(), member)])
                    .inc();
            }
        }
        let shared = &self.inner.shared;
        for (t, n) in shared.counts() {
            m.objects
                .get_or_create(&vec![("type".to_string(), t.as_str().to_string())])
                .set(n as i64);
        }
        self.federation_metrics(&m);
        m.attachments_backlog
            .set(self.attachments().backlog() as i64);
        let clock = self.clock_offset();
        m.clock_offset_seconds
            .set(clock.map_or(0.0, |c| c.offset_ms as f64 / 1000.0));
        m.clock_offset_nodes
            .set(clock.map_or(0, |c| c.nodes as i64));
        m.pending.set(shared.pending() as i64);
        m.store_bytes.set(shared.store_bytes() as i64);
        let disk = self.inner.disk.view();
        if let Some(free) = disk.free_bytes {
            m.disk_free_bytes.set(free.min(i64::MAX as u64) as i64);
        }
        m.disk_min_free_bytes
            .set(disk.min_free_bytes.min(i64::MAX as u64) as i64);
        m.disk_low.set(i64::from(disk.low));
        m.peers_expected.set(i64::from(self.inner.expects_peers));
        let searchable = *self.inner.shared.searchable().borrow();
        m.search_behind
            .set(shared.seq().saturating_sub(searchable).min(i64::MAX as u64) as i64);
        let (store_fault, search_fault) = shared.faulted();
        let transport = self.trust().limits().max_bytes() > self.inner.transport_max_object_bytes;
        for (reason, on) in [
            ("store", store_fault),
            ("search", search_fault),
            ("data-dir-moved", self.inner.disk.moved().is_some()),
            ("part-stopped", self.stopped_part().is_some()),
            ("transport-limit", transport),
            ("upgrade", self.upgrade_needed().is_some()),
        ] {
            m.restart_needed
                .get_or_create(&vec![("reason".to_string(), reason.to_string())])
                .set(i64::from(on));
        }
        crate::metrics::Metrics::catch_up(&m.verifications, accord_core::keys::verifications());
        crate::metrics::Metrics::catch_up(&m.gossip_missed, self.inner.net.missed_gossip().count());
        crate::metrics::Metrics::catch_up(&m.gossip_unsent, self.inner.net.unsent_gossip().count());
        crate::metrics::Metrics::catch_up(&m.requests_busy, self.inner.net.requests_refused_busy());
        crate::metrics::Metrics::catch_up(
            &m.network_events_dropped,
            self.inner.net.control_events_dropped(),
        );
        let cache = self.inner.searcher.cache_stats();
        crate::metrics::Metrics::catch_up(&m.search_cache_hits, cache.hits);
        crate::metrics::Metrics::catch_up(&m.search_cache_visits, cache.visits);
        crate::metrics::Metrics::catch_up(&m.search_cache_facet_reads, cache.facet_reads);
        m.encode()
    }

    /// Sets the `accord_federation_node_*` gauges from the health view (series of nodes no
    /// longer certified disappear).
    fn federation_metrics(&self, m: &crate::metrics::Metrics) {
        let view = self.federation_health();
        for f in [
            &m.fed_up,
            &m.fed_last_seen,
            &m.fed_divergent,
            &m.fed_behind,
            &m.fed_held_refused,
            &m.fed_charter_mismatch,
            &m.fed_version_skew,
            &m.fed_info,
        ] {
            f.clear();
        }
        for n in view.members.iter().flat_map(|mh| &mh.nodes) {
            let l = vec![
                ("member".to_string(), n.member.clone()),
                ("node".to_string(), n.peer_id.clone()),
            ];
            m.fed_up
                .get_or_create(&l)
                .set(i64::from(matches!(n.status, "up" | "self")));
            if let Some(t) = n.last_seen {
                m.fed_last_seen.get_or_create(&l).set((t.0 / 1000) as i64);
            }
            m.fed_divergent
                .get_or_create(&l)
                .set(i64::from(n.divergent || n.equivocated));
            m.fed_behind.get_or_create(&l).set(n.behind as i64);
            m.fed_held_refused
                .get_or_create(&l)
                .set(n.held_refused as i64);
            if let Some(matches) = n.charter_matches {
                m.fed_charter_mismatch
                    .get_or_create(&l)
                    .set(i64::from(!matches));
            }
            if let (Some(sw), Some(proto)) = (&n.software, &n.protocol) {
                m.fed_version_skew
                    .get_or_create(&l)
                    .set(i64::from(*sw != view.software));
                let mut info = l.clone();
                info.push(("software".to_string(), sw.clone()));
                info.push(("protocol".to_string(), proto.clone()));
                m.fed_info.get_or_create(&info).set(1);
            }
        }
    }

    pub fn peer_id(&self) -> String {
        self.inner.net.local_peer_id().to_string()
    }

    pub fn member(&self) -> &str {
        &self.inner.member
    }

    pub fn federation(&self) -> ObjectId {
        self.inner.federation
    }

    pub fn network(&self) -> &NetworkHandle {
        &self.inner.net
    }

    /// A reader of stored objects for any thread (never the store thread's queue); fails once
    /// the node is shutting down.
    pub(crate) fn object_reader(&self) -> Result<accord_store::ObjectReader, NodeError> {
        self.inner
            .objects
            .lock()
            .ok()
            .and_then(|o| o.clone())
            .ok_or(NodeError::Stopped)
    }

    /// Runs the ingest pipeline's store stage for `items` (one group commit with whatever
    /// else is queued) and notifies subscribers of everything accepted.
    pub async fn ingest(
        &self,
        items: Vec<Vec<u8>>,
        source: Source,
    ) -> Result<IngestResult, NodeError> {
        self.ingest_holding(items, source, None).await
    }

    /// [`Self::ingest`], keeping `hold` (an HTTP submission's room in the memory budget) until
    /// the store stage is over, whether or not the caller still waits.
    async fn ingest_holding(
        &self,
        items: Vec<Vec<u8>>,
        source: Source,
        hold: Option<Hold>,
    ) -> Result<IngestResult, NodeError> {
        let started = std::time::Instant::now();
        // Trust objects the node needs to start and to admit peers (its preloaded files, a
        // peer's certificate it already holds: a new one is refused before, in
        // `check_certificate`) are small and bounded; everything else waits for disk space.
        if !matches!(source, Source::Preload | Source::Peer(_))
            && let Err(low) = self.inner.disk.check()
        {
            for _ in &items {
                self.inner.metrics.ingested(
                    source.as_str(),
                    "refused",
                    "disk-low",
                    started.elapsed(),
                );
            }
            return Err(NodeError::DiskLow(low));
        }
        let limits = *self.inner.shared.trust().limits();
        let objects = self.object_reader()?;
        let inline = matches!(source, Source::Local);
        let slots = self.inner.verify_slots.clone();
        // From here on the work runs to its end on a task of its own, whether or not the caller
        // still waits: an HTTP client gone during the group commit drops its handler (hyper
        // drops the future), and with it, before, everything after the commit — the live
        // stream's event, the files' references and queueing, the trust re-check of a
        // revocation, the gossip of a submission — while the objects stayed stored, so their
        // files were never fetched (or an uploaded one was collected as an orphan a day later)
        // and peers learnt them only by reconciliation. `hold` (an HTTP submission's room in the
        // memory budget) goes with the objects, through their checks and the store, so a client
        // gone meanwhile does not give it back while they are still held.
        let node = self.clone();
        tokio::spawn(async move {
            let _hold = hold;
            let items = worker::prepare(items, limits, &objects, &slots, inline).await?;
            drop(objects);
            // Until this is dropped (the accepted records' files referenced or queued), the
            // settled mark stays before this ingest's records.
            let settle = node.attachments().settle_begin(node.seq());
            node.store_prepared(items, source, started, settle).await
        })
        .await
        .map_err(|e| NodeError::Store(format!("the ingest task ended: {e}")))?
    }

    /// The store stage of [`Self::ingest`] and everything that follows an accepted object:
    /// run on a task of its own, never cut short by its caller going away.
    async fn store_prepared(
        self,
        items: Vec<worker::Prepared>,
        source: Source,
        started: std::time::Instant,
        settle: crate::attachments::Settle,
    ) -> Result<IngestResult, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .store
            .send(Job::Ingest {
                items,
                source,
                reply,
            })
            .await
            .map_err(|_| self.store_gone())?;
        let r = rx.await.map_err(|_| self.store_gone())??;
        let took = started.elapsed();
        for o in &r.outcomes {
            self.inner.metrics.ingested(
                source.as_str(),
                o.status(),
                o.code().unwrap_or_default(),
                took,
            );
        }
        let accepted = || crate::index::stored(&r.outcomes, &r.released);
        for v in accepted() {
            let _ = self.inner.accepted.send(v.clone());
        }
        // The files of what was stored are referenced (uploaded ones kept for their records)
        // or queued, on a task of its own: a client that goes away once its records are stored
        // (its handler dropped) must not leave an uploaded file unreferenced, to be collected
        // as an orphan a day later. A record of this node's own submission that was stored
        // already (a first attempt whose answer was lost) references its held files again.
        let files = crate::attachments::of_records(accepted().map(|v| &**v));
        let again: Vec<ObjectId> = if matches!(source, Source::Local) {
            r.outcomes
                .iter()
                .filter_map(|o| match o {
                    IngestOutcome::Duplicate(id) => Some(*id),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        if !files.is_empty() || !again.is_empty() {
            let node = self.clone();
            let _ = tokio::spawn(async move {
                if matches!(source, Source::Local) {
                    node.reference_local(files.clone()).await;
                    node.reference_held(again).await;
                }
                node.attachments_arrived(files, Some(settle));
            })
            .await;
        }
        if accepted().any(|v| {
            matches!(
                v.object().object_type(),
                ObjectType::Revocation | ObjectType::Charter
            )
        }) {
            self.inner.trust_changed.notify_one();
            if let Some(why) = self.restart_needed() {
                warn!("restart the node: {why}");
            }
            // Said when a charter version comes (and at start), not at every revocation.
            if accepted().any(|v| v.object().object_type() == ObjectType::Charter)
                && let Some(why) = self.upgrade_needed()
            {
                warn!("upgrade this node: {why}");
            }
        }
        if matches!(source, Source::Local) {
            self.gossip_submitted(&r).await;
        }
        Ok(r)
    }

    /// Gossips what this node's operator or API submitted and the store accepted.
    async fn gossip_submitted(&self, r: &IngestResult) {
        let gossip: Vec<&Verified<Object>> = r
            .outcomes
            .iter()
            .filter_map(|o| match o {
                IngestOutcome::Accepted(v) if !self.withholds(&v.id(), None) => Some(&**v),
                _ => None,
            })
            .collect();
        let published = self
            .inner
            .net
            .publish_many(gossip.iter().map(|v| v.bytes().to_vec()).collect())
            .await
            .unwrap_or_else(|_| {
                gossip
                    .iter()
                    .map(|_| Err(accord_net::NetError::Stopped))
                    .collect()
            });
        for (v, result) in gossip.iter().zip(published) {
            match result {
                Ok(()) => self.inner.metrics.gossip("out", "published"),
                // Shutting down: the record is stored, and peers reconcile it later.
                Err(accord_net::NetError::Stopped) => {
                    tracing::debug!(object = %v.id(), "stored while the network stops; not gossiped")
                }
                Err(e) => warn!(object = %v.id(), error = %e, "stored but not gossiped"),
            }
        }
    }

    /// Submits objects from this node's operator or API: ingest, then gossip what is new.
    pub async fn submit(&self, items: Vec<Vec<u8>>) -> Result<Vec<SubmitOutcome>, NodeError> {
        Ok(self.submit_at(items, None).await?.0)
    }

    /// [`Self::submit`] (or, with `searchable`, [`Self::submit_searchable`]) keeping `hold`
    /// until the objects are stored, even if the caller goes away first: an HTTP submission's
    /// room in the memory budget stays taken while its objects wait for the store (a client
    /// that sent a batch and left at once gave its room back while the batch still waited).
    pub async fn submit_holding(
        &self,
        items: Vec<Vec<u8>>,
        hold: Hold,
        searchable: Option<std::time::Duration>,
    ) -> Result<(Vec<SubmitOutcome>, Option<bool>), NodeError> {
        let (out, seq) = self.submit_at(items, Some(hold)).await?;
        Ok(match searchable {
            Some(timeout) => (out, Some(self.wait_searchable(seq, timeout).await)),
            None => (out, None),
        })
    }

    /// [`Self::submit`], then waits (at most `timeout`) until what it stored is searchable:
    /// read-your-writes for a publisher that lists its records right after. The second value
    /// says whether it became searchable in time.
    pub async fn submit_searchable(
        &self,
        items: Vec<Vec<u8>>,
        timeout: std::time::Duration,
    ) -> Result<(Vec<SubmitOutcome>, bool), NodeError> {
        let (out, seq) = self.submit_at(items, None).await?;
        Ok((out, self.wait_searchable(seq, timeout).await))
    }

    async fn submit_at(
        &self,
        items: Vec<Vec<u8>>,
        hold: Option<Hold>,
    ) -> Result<(Vec<SubmitOutcome>, u64), NodeError> {
        // Gossiped by `ingest`'s own task, which a caller going away does not cut short.
        let r = self.ingest_holding(items, Source::Local, hold).await?;
        let mut out = Vec::with_capacity(r.outcomes.len());
        for o in &r.outcomes {
            out.push(SubmitOutcome {
                id: o.id(),
                status: o.status(),
                code: o.code(),
                reason: o.reason(),
            });
        }
        Ok((out, r.seq))
    }

    /// Jobs waiting in the store thread's queue (group commits to make, reads to answer): how
    /// far behind the one writer is.
    pub fn store_jobs_waiting(&self) -> usize {
        self.inner.store.max_capacity() - self.inner.store.capacity()
    }

    /// Runs `f` on the store thread and returns its result.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Read(Box::new(move |s: &Store| {
            let _ = tx.send(f(s));
        }));
        self.inner
            .store
            .send(job)
            .await
            .map_err(|_| self.store_gone())?;
        rx.await.map_err(|_| self.store_gone())
    }

    /// Why a job of the store thread went unanswered: the node stopping; the thread ended by a
    /// panic while it was not (then the client reads that the node must be restarted, not that
    /// it is shutting down); or, the thread going on, a read of the store that panicked.
    fn store_gone(&self) -> NodeError {
        if let Some(why) = self.stopped_part() {
            return NodeError::Store(why);
        }
        if *self.inner.shutdown.borrow() {
            return NodeError::Stopped;
        }
        NodeError::Store(
            "the store could not answer this request (a read that failed; its panic is in the log)"
                .into(),
        )
    }

    /// A stored object with its derived status.
    pub async fn get(&self, id: ObjectId) -> Result<Option<StoredView>, NodeError> {
        self.read(move |s| -> Result<Option<StoredView>, NodeError> {
            let Some(o) = s.get(&id).map_err(|e| NodeError::Store(e.to_string()))? else {
                return Ok(None);
            };
            let status = s
                .record_status(&id)
                .map_err(|e| NodeError::Store(e.to_string()))?;
            Ok(Some(StoredView {
                id,
                bytes: o.signed.as_bytes().to_vec(),
                signers: o.signed.signatures().iter().map(|(k, _)| *k).collect(),
                object: o.object,
                status,
            }))
        })
        .await?
    }

    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        let shared = &self.inner.shared;
        let trust = shared.trust();
        let (counts, pending, name, version) = (
            shared.counts(),
            shared.pending(),
            trust.charter().name.clone(),
            trust.charter_history().len() as u64,
        );
        let peers = self.inner.net.peers().await?;
        let listen = self
            .inner
            .net
            .listen_addrs()
            .await?
            .iter()
            .map(|a| a.to_string())
            .collect();
        Ok(NodeStatus {
            peer_id: self.peer_id(),
            member: self.inner.member.clone(),
            federation: self.inner.federation,
            federation_name: name,
            charter_version: version,
            counts,
            pending,
            peers_connected: peers.len(),
            peers_admitted: peers.iter().filter(|p| p.admitted).count(),
            uptime_secs: self.inner.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION"),
            listen,
            disk: self.inner.disk.view(),
            restart_needed: self.restart_needed(),
            upgrade_needed: self.upgrade_needed(),
            clock: self.clock_offset(),
        })
    }

    /// A failure the node cannot go on from until it restarts (a store write refused, the
    /// search indexer gone): the node is then not ready (`/readyz` answers 503 with it).
    pub fn fault(&self) -> Option<String> {
        // A moved data directory first: the store's and the index's writes fail after it, and
        // the move is what the operator must undo.
        self.inner
            .disk
            .moved()
            .or_else(|| self.inner.shared.fault())
            .or_else(|| self.stopped_part())
    }

    /// A part of the node that ended while the node was not stopping: the store thread, the
    /// network, the event loop or the attachment fetcher, ended by a panic (whose message is in
    /// the log). The node then looks alive but cannot store, gossip or reconcile, so it is not
    /// ready and asks for a restart.
    fn stopped_part(&self) -> Option<String> {
        if *self.inner.shutdown.borrow() {
            return None;
        }
        let store_ended = self
            .inner
            .store_thread
            .lock()
            .map(|t| t.as_ref().is_some_and(|t| t.is_finished()))
            .unwrap_or(false);
        let name = if store_ended {
            Some("store thread")
        } else {
            self.inner.tasks.lock().ok().and_then(|t| {
                t.iter()
                    .find(|(_, h)| h.is_finished())
                    .map(|(name, _)| *name)
            })
        }?;
        Some(format!(
            "the node's {name} ended unexpectedly (its error is in the log): restart the node"
        ))
    }

    /// Why the node must restart: a [`Self::fault`], or, to apply the charter in force, an amendment raised
    /// `max_object_bytes` above what the network was set up to carry when it started, so larger
    /// objects are taken from the API but neither gossiped nor reconciled until then.
    pub fn restart_needed(&self) -> Option<String> {
        if let Some(fault) = self.fault() {
            return Some(fault);
        }
        let allowed = self.trust().limits().max_bytes();
        let carried = self.inner.transport_max_object_bytes;
        (allowed > carried).then(|| {
            format!(
                "the charter in force allows objects of up to {allowed} bytes (max_object_bytes), but this node's gossip carries at most {carried} until it restarts"
            )
        })
    }

    /// Why this release must be replaced by a newer one: the charter in force adopts refusal
    /// rules (`limits.rules`) newer than it implements ([`accord_core::object::MAX_RULES`]),
    /// so it may store and serve objects that upgraded nodes refuse. Not a reason to restart
    /// (the same release would say it again), nor one to be unready: the node serves what it
    /// holds meanwhile.
    pub fn upgrade_needed(&self) -> Option<String> {
        let rules = self.trust().charter().limits.rules;
        (rules > accord_core::object::MAX_RULES).then(|| {
            format!(
                "the charter in force adopts the refusal rules {rules} (limits.rules), and this release of accord ({}) implements them up to {}: upgrade it, then restart the node (until then it may hold objects that upgraded nodes refuse)",
                env!("CARGO_PKG_VERSION"),
                accord_core::object::MAX_RULES
            )
        })
    }

    pub async fn peers(&self) -> Result<Vec<PeerView>, NodeError> {
        let mut v: Vec<PeerView> = self
            .inner
            .net
            .peers()
            .await?
            .into_iter()
            .map(|p| PeerView {
                peer_id: p.peer.to_string(),
                member: p.member,
                admitted: p.admitted,
                addresses: p.addresses.iter().map(|a| a.to_string()).collect(),
                connected_since: Timestamp(p.connected_since_ms),
                gossip_score: p.gossip_score,
            })
            .collect();
        v.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        Ok(v)
    }

    /// The libp2p addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Addr>, NodeError> {
        Ok(self.inner.net.listen_addrs().await?)
    }

    /// The trust view as of the last group commit (no store round trip).
    pub fn trust(&self) -> Arc<accord_core::TrustView> {
        self.inner.shared.trust()
    }

    /// The store's sequence number: that of the last object written (every object written so
    /// far, unless a repair dropped damaged ones: their numbers are not given again).
    pub fn seq(&self) -> u64 {
        self.inner.shared.seq()
    }

    /// Waits until every record stored up to sequence number `seq` (see
    /// [`IngestResult::seq`]) is searchable, at most `timeout`; `true` if it is. Objects are
    /// acknowledged once durable; the search index follows within
    /// [`crate::INDEX_COMMIT_INTERVAL`] plus one index commit.
    pub async fn wait_searchable(&self, seq: u64, timeout: std::time::Duration) -> bool {
        let mut rx = self.inner.shared.searchable();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|s| *s >= seq)).await,
            Ok(Ok(_))
        )
    }

    /// New accepted objects, as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Verified<Object>>> {
        self.inner.accepted.subscribe()
    }

    /// Stops the network and the event loop, lets the store thread finish every queued job,
    /// and waits for all of it. Everything acknowledged before is durable.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        self.inner.net.shutdown().await;
        let tasks: Vec<_> = self
            .inner
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for (_, t) in tasks {
            let _ = t.await;
        }
        if let Ok(mut o) = self.inner.objects.lock() {
            o.take();
        }
        let _ = self.inner.store.send(Job::Shutdown).await;
        let thread = self
            .inner
            .store_thread
            .lock()
            .ok()
            .and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        // The store's last word: a clean stop settles nothing again at the next start (the
        // files of ingests still in flight stay after the mark).
        self.save_settled().await;
        info!(member = %self.inner.member, "node stopped");
    }
}

/// A gossip message: its id and its data.
type GossipMessage = (Vec<u8>, Vec<u8>);

/// Judges gossip messages of one sender as one ingest and reports each verdict to the network.
async fn judge_gossip(
    node: NodeHandle,
    source: Peer,
    messages: Vec<GossipMessage>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let (ids, data): (Vec<Vec<u8>>, Vec<Vec<u8>>) = messages.into_iter().unzip();
    let outcomes = match node.ingest(data, Source::Gossip(source)).await {
        Ok(r) => r.outcomes,
        Err(_) => Vec::new(),
    };
    for (i, message_id) in ids.into_iter().enumerate() {
        let verdict = match outcomes.get(i) {
            Some(IngestOutcome::Accepted(_)) => Validation::Accept,
            // Only an object bad for what it is blames its forwarder; one refused for what this
            // node holds or its clock (a revocation the forwarder had not yet) is dropped.
            Some(IngestOutcome::Rejected(_, reason)) if reason.is_intrinsic() => {
                // Per object: counted (`accord_gossip_messages_total{verdict="reject"}`), and
                // the peer is cut, with a line, once its score falls.
                debug!(peer = %source, reason = reason.code(), "invalid object received by gossip");
                Validation::Reject
            }
            Some(IngestOutcome::Rejected(_, reason)) => {
                debug!(peer = %source, reason = reason.code(), "object refused by this node's trust view or clock");
                Validation::Ignore
            }
            _ => Validation::Ignore,
        };
        node.inner.metrics.gossip(
            "in",
            match verdict {
                Validation::Accept => "accept",
                Validation::Reject => "reject",
                Validation::Ignore => "ignore",
            },
        );
        let _ = node.inner.net.report(message_id, source, verdict).await;
    }
    drop(permit);
}

/// Reconciliation sessions due and not yet started: every peer that forwarded gossip this node
/// could not take holds it, so one session with one of them fetches it once; and the periodic
/// session. Both start only once gossip is quiet — a short queue, and little taken from it
/// lately — so that they do not fetch what is still queued or on its way (a duplicate) nor
/// compete with it. With a long gossip queue, periodic sessions during a burst fetched thousands
/// of records still waiting in it; and sessions started whenever the queue ran short, in the
/// middle of a burst, fetched again a fifth of the records a sender was still gossiping
/// (docs/BENCHMARKS.md, "Memory settings").
///
/// Gossip that never goes quiet (a member's node flooding messages that are only ignored)
/// would so hold every session back for good: once sessions have been due for
/// [`SessionsDue::max_wait`] (twice the sync interval), they start whatever the queue.
#[derive(Debug, Default)]
struct SessionsDue {
    owed: std::collections::HashSet<Peer>,
    periodic: bool,
    /// When sessions became due.
    since: Option<std::time::Instant>,
    max_wait: std::time::Duration,
}

impl SessionsDue {
    fn new(max_wait: std::time::Duration) -> SessionsDue {
        SessionsDue {
            max_wait,
            ..SessionsDue::default()
        }
    }

    fn any(&self) -> bool {
        !self.owed.is_empty() || self.periodic
    }

    /// Sessions are due from `now` (unless they were already).
    fn due_from(&mut self, now: std::time::Instant) {
        self.since.get_or_insert(now);
    }

    /// Whether gossip is quiet with `backlog` messages queued and `taken` taken from the queue
    /// since the last check: neither above [`OWED_SYNC_BACKLOG`].
    fn quiet(backlog: usize, taken: usize) -> bool {
        backlog <= OWED_SYNC_BACKLOG && taken <= OWED_SYNC_BACKLOG
    }

    /// The owed peers and whether the periodic session starts now (both then no longer due),
    /// or nothing while gossip is not [`Self::quiet`] and they have been due less than
    /// [`Self::max_wait`].
    fn take_if_quiet(
        &mut self,
        backlog: usize,
        taken: usize,
        now: std::time::Instant,
    ) -> (Vec<Peer>, bool) {
        let overdue = self
            .since
            .is_some_and(|t| now.duration_since(t) >= self.max_wait);
        if !Self::quiet(backlog, taken) && !overdue {
            return (Vec::new(), false);
        }
        self.since = None;
        (
            self.owed.drain().collect(),
            std::mem::take(&mut self.periodic),
        )
    }
}

async fn event_loop(
    node: NodeHandle,
    events: accord_net::NetworkEvents,
    mut shutdown: watch::Receiver<bool>,
    admission: AdmissionMode,
) {
    let limit = Arc::new(Semaphore::new(GOSSIP_CONCURRENCY));
    // Control events are always taken; gossip only while fewer than GOSSIP_CONCURRENCY
    // messages are being judged (the rest waits in the network's bounded gossip queue), so a
    // flood never delays certificates, admissions or reconciliation requests.
    let (mut control, mut gossip) = events.split();
    let mut work = JoinSet::new();
    let period = std::time::Duration::from_secs(node.inner.sync_config.interval_secs);
    let mut periodic = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut turn: usize = 0;
    let missed = node.inner.net.missed_gossip().clone();
    let mut sessions = SessionsDue::new(2 * period);
    // Gossip messages taken from the queue since the last `owed_check` tick.
    let mut gossip_taken: usize = 0;
    let mut owed_check = tokio::time::interval(OWED_SYNC_CHECK);
    owed_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first heartbeat one period after start (peers are connected by then).
    let beat = std::time::Duration::from_secs(node.inner.health_config.heartbeat_secs.max(1));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut settled = tokio::time::interval(crate::attachments::SETTLED_SAVE_INTERVAL);
    settled.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Attachments no live record needs are collected a minute after start, then hourly.
    let mut collect = tokio::time::interval_at(
        tokio::time::Instant::now() + std::time::Duration::from_secs(60),
        ATTACHMENT_GC_INTERVAL,
    );
    collect.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ev = tokio::select! {
            _ = shutdown.changed() => break,
            _ = periodic.tick() => {
                // Reconcile with one admitted peer per period, in turn, once gossip is quiet
                // (below).
                sessions.periodic = true;
                sessions.due_from(std::time::Instant::now());
                continue;
            }
            _ = collect.tick() => {
                let node = node.clone();
                work.spawn(async move {
                    if let Err(e) = node.collect_attachments().await {
                        debug!(error = %e, "attachment collection failed");
                    }
                });
                continue;
            }
            _ = settled.tick() => {
                let node = node.clone();
                work.spawn(async move { node.save_settled().await });
                continue;
            }
            _ = heartbeat.tick() => {
                let node = node.clone();
                work.spawn(async move {
                    if let Err(e) = node.send_heartbeat().await {
                        debug!(error = %e, "heartbeat not sent");
                    }
                    node.reset_silent_peers().await;
                });
                continue;
            }
            _ = missed.notified() => {
                // Gossip the network could not hand over: its senders are owed a session,
                // started once gossip is quiet (below).
                sessions.owed.extend(missed.take_peers());
                sessions.due_from(std::time::Instant::now());
                continue;
            }
            _ = owed_check.tick() => {
                let taken = std::mem::take(&mut gossip_taken);
                let quiet = SessionsDue::quiet(gossip.backlog(), taken);
                node.inner.gossip_quiet.send_if_modified(|q| std::mem::replace(q, quiet) != quiet);
                if !sessions.any() {
                    continue;
                }
                let (owed, periodic) =
                    sessions.take_if_quiet(gossip.backlog(), taken, std::time::Instant::now());
                if !owed.is_empty() {
                    let node = node.clone();
                    work.spawn(async move {
                        for peer in owed {
                            if node.sync_with(peer).await.is_ok_and(|s| s.error.is_none()) {
                                break;
                            }
                        }
                    });
                }
                if periodic {
                    let node = node.clone();
                    turn = turn.wrapping_add(1);
                    let t = turn;
                    work.spawn(async move {
                        let peers = node.inner.net.peers().await.unwrap_or_default();
                        let admitted: Vec<_> = peers.iter().filter(|p| p.admitted).map(|p| p.peer).collect();
                        if !admitted.is_empty() {
                            let _ = node.sync_with(admitted[t % admitted.len()]).await;
                        }
                    });
                }
                continue;
            }
            _ = node.inner.trust_changed.notified(), if admission == AdmissionMode::Members => {
                work.spawn(recheck_admitted(node.clone()));
                continue;
            }
            Some(done) = work.join_next(), if !work.is_empty() => {
                // A piece of work that panicked is named in the log (its panic message is
                // printed before); the loop goes on with the rest.
                if let Err(e) = done
                    && e.is_panic()
                {
                    error!(error = %e, "a task of the event loop panicked; the loop goes on");
                }
                continue;
            }
            ev = control.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            ev = gossip.recv(), if limit.available_permits() > 0 => match ev {
                Some(ev) => ev,
                None => break,
            },
        };
        match ev {
            NetworkEvent::Gossip {
                message_id,
                source,
                data,
            } => {
                // This message and those already waiting behind it, as many as may be judged
                // now, grouped by sender in the order they came.
                let mut batches: Vec<(Peer, Vec<GossipMessage>)> =
                    vec![(source, vec![(message_id, data)])];
                let mut taken = 1;
                while taken < GOSSIP_BATCH.min(limit.available_permits()) {
                    let Some(NetworkEvent::Gossip {
                        message_id,
                        source,
                        data,
                    }) = gossip.try_recv()
                    else {
                        break;
                    };
                    taken += 1;
                    match batches.iter_mut().find(|(p, _)| *p == source) {
                        Some((_, b)) => b.push((message_id, data)),
                        None => batches.push((source, vec![(message_id, data)])),
                    }
                }
                gossip_taken += taken;
                for (source, messages) in batches {
                    let Ok(permit) = limit
                        .clone()
                        .acquire_many_owned(messages.len() as u32)
                        .await
                    else {
                        break;
                    };
                    work.spawn(judge_gossip(node.clone(), source, messages, permit));
                }
            }
            NetworkEvent::Heartbeat {
                message_id,
                source,
                data,
            } => {
                let node = node.clone();
                match node.inner.heartbeat_slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        work.spawn(async move {
                            node.on_heartbeat(message_id, source, data).await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        // Settled at once as ignored (not forwarded, no penalty), as gossip that
                        // does not fit its queue is: gossipsub would otherwise hold it, unbounded
                        // in bytes, until its cache shifts it out seconds later. The event loop
                        // never waits on the swarm here: with the command queue full it stays
                        // unreported, as before.
                        drop(data);
                        let _ = node
                            .network()
                            .try_report(message_id, source, Validation::Ignore);
                        node.inner
                            .metrics
                            .heartbeats
                            .get_or_create(&vec![("result".to_string(), "busy".to_string())])
                            .inc();
                    }
                }
            }
            NetworkEvent::CertificatePresented { peer, cert } => {
                let node = node.clone();
                work.spawn(async move { check_certificate(node, peer, cert, admission).await });
            }
            NetworkEvent::SyncRequest {
                request_id,
                peer,
                data,
            } => {
                let node = node.clone();
                work.spawn(async move { node.serve_sync(peer, request_id, data).await });
            }
            NetworkEvent::BlobRequest {
                request_id,
                peer,
                data,
            } => {
                let node = node.clone();
                work.spawn(async move { node.serve_blob(peer, request_id, data).await });
            }
            NetworkEvent::PeerAdmitted { peer } => {
                node.inner.sync.arrived(&peer);
                node.attachments().peer_arrived(&peer);
                let node = node.clone();
                work.spawn(async move {
                    let _ = node.sync_with(peer).await;
                });
            }
            NetworkEvent::PeerDisconnected { peer } => {
                node.inner.sync.forget(&peer);
                node.attachments().peer_left(&peer);
            }
            NetworkEvent::NonMemberDisconnected { peer, reason } => {
                // Counted; the network layer logs refusals, at most once a minute per peer.
                node.inner.metrics.non_members.inc();
                debug!(%peer, %reason, "non-member disconnected");
            }
            NetworkEvent::PeerCut { peer, reason } => {
                // Counted; the network layer logs cuts, at most once a minute per peer.
                node.inner.metrics.peer_cut(reason);
                debug!(%peer, reason, "peer cut for what it sent");
            }
            NetworkEvent::PeerConnected { .. } | NetworkEvent::Listening { .. } => {}
            _ => {}
        }
    }
    // The validations, sessions and answers under way are cut short: nothing acknowledged
    // depends on them (an ingest's store stage runs on a task of its own, and gossip not yet
    // judged is neither stored nor acknowledged; peers and reconciliation carry it again).
    work.shutdown().await;
}

/// After a revocation or charter amendment: every admitted peer must still hold a valid,
/// unrevoked node certificate of a current member, or it is disconnected and refused (a peer
/// refused once is refused again when it reconnects, since its certificate is checked anew).
async fn recheck_admitted(node: NodeHandle) {
    let Ok(peers) = node.inner.net.peers().await else {
        return;
    };
    let admitted: Vec<(Peer, Option<String>)> = peers
        .iter()
        .filter(|p| p.admitted)
        .map(|p| (p.peer, p.member.clone()))
        .collect();
    if admitted.is_empty() {
        return;
    }
    let lost = node
        .read(move |s| {
            let trust = s.trust();
            let now = crate::now();
            // Each peer by the member it was admitted for: another member's certificate of
            // the same key does not keep a peer its own member revoked.
            let valid: std::collections::HashSet<(String, String)> = trust
                .node_certs()
                .filter(|n| {
                    trust
                        .node_member_as(&n.cert.node_key, n.cert.member.as_str(), now)
                        .is_some()
                })
                .map(|n| (n.cert.node_key.peer_id(), n.cert.member.to_string()))
                .collect();
            admitted
                .into_iter()
                .filter(|(p, m)| match m {
                    Some(m) => !valid.contains(&(p.to_string(), m.clone())),
                    None => !valid.iter().any(|(id, _)| *id == p.to_string()),
                })
                .map(|(p, _)| p)
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    for peer in lost {
        let _ = node
            .inner
            .net
            .refuse(
                peer,
                "its node certificate no longer holds (revoked, or its member's root key replaced)"
                    .to_string(),
            )
            .await;
    }
}

/// Takes the charter amendments among the preloaded files before the node judges its own
/// configuration against the charter: a node of a member added by amendment, or certified by
/// a member's new root key, starts on a store that knew only the genesis when its amendment
/// is preloaded. What cannot be read or is refused here is reported by the preload proper.
fn amendments_first(store: &mut Store, preload: &[std::path::PathBuf]) {
    let limits = *store.trust().limits();
    for path in preload {
        let Ok(data) = std::fs::read(path) else {
            continue;
        };
        let Ok(items) = accord_core::cbor::split_sequence(&data, limits.scan()) else {
            continue;
        };
        let charters: Vec<&[u8]> = items
            .into_iter()
            .filter(|item| {
                accord_core::SignedObject::decode_draft(item, limits.max_bytes(), limits.scan())
                    .ok()
                    .and_then(|s| Object::decode_body(s.body(), &limits).ok())
                    .is_some_and(|o| matches!(o, Object::Charter(c) if c.version > 1))
            })
            .collect();
        for item in charters {
            let _ = store.ingest(item, crate::now());
        }
    }
}

/// Refuses to start a node that other nodes would refuse to admit, naming `node_cert`: in
/// `members` admission every peer asks for this node's certificate, and one that is missing,
/// for another key, of another member or not signed by the member's current root key gets the
/// node cut from every peer with nothing said on its own side. A certificate given in `open`
/// mode is checked the same way (peers in `members` mode still ask for it).
fn own_certificate(
    cfg: &NodeConfig,
    cert: Option<&[u8]>,
    trust: &accord_core::TrustView,
    key: &SecretKey,
) -> Result<(), NodeError> {
    let field = |message: String| {
        NodeError::Config(crate::config::ConfigError::Field {
            field: "node_cert".into(),
            message,
        })
    };
    let Some(cert) = cert else {
        return match cfg.network.admission {
            AdmissionMode::Members => Err(field(format!(
                "network.admission = \"members\" needs this node's certificate, which other nodes ask for before they admit it: have the root key holder of {} run `accord cert node --charter charter.cbor --member {} --root-key ROOT_KEY_FILE --node-key {} --out node-cert.cbor` and set node_cert to the file (or set network.admission = \"open\" for a development network)",
                cfg.member,
                cfg.member,
                key.public_key()
            ))),
            AdmissionMode::Open => Ok(()),
        };
    };
    let path = cfg
        .node_cert
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    presentable(trust, cert, &key.public_key().peer_id()).map_err(|e| {
        let hint = if e.starts_with("node certificate not signed by the root key") {
            " — if that member's root key was replaced by a charter amendment, put the amendment's file in `preload` so that the node knows it at start"
        } else {
            ""
        };
        field(format!(
            "{path}: {e} (this node's key is {}){hint}",
            key.public_key()
        ))
    })?;
    let (signed, obj) = accord_core::validate::decode(cert, trust.limits())
        .map_err(|e| field(format!("{path}: {e}")))?;
    if let Object::Node(n) = obj {
        if n.member.as_str() != cfg.member {
            return Err(field(format!(
                "{path}: the certificate is of member {}, and this node is configured as member {}",
                n.member, cfg.member
            )));
        }
        // Revoked (the certificate, or this node's key) as of now by what the store holds:
        // every peer would refuse the node, so it would run cut off while looking healthy.
        let now = crate::now();
        let revoked = [
            trust.object_revoked_since(&signed.id(), &n.member),
            trust.key_revoked_since(&n.member, &n.node_key),
        ]
        .into_iter()
        .flatten()
        .filter(|since| *since <= now)
        .min();
        if let Some(since) = revoked {
            return Err(field(format!(
                "{path}: this certificate (or this node's key) is revoked since {since}: other nodes would refuse this node; have the root key holder of {} certify a new node key (`accord key new`, then `accord cert node … --node-key …`) and set node_key and node_cert to them",
                n.member
            )));
        }
    }
    Ok(())
}

/// Whether `cert` may be stored as a certificate presented by `peer`: a node certificate for
/// exactly this peer id, signed by the current root key of the member it names.
fn presentable(
    trust: &accord_core::TrustView,
    cert: &[u8],
    peer: &str,
) -> Result<ObjectId, String> {
    let (signed, obj) = accord_core::validate::decode(cert, trust.limits())
        .map_err(|e| format!("invalid node certificate: {e}"))?;
    let Object::Node(n) = obj else {
        return Err(format!(
            "presented a {} object, not a node certificate",
            obj.object_type()
        ));
    };
    if n.node_key.peer_id() != peer {
        return Err(format!(
            "certificate is for peer {}, not {peer}",
            n.node_key.peer_id()
        ));
    }
    let signer = signed.signatures().first().map(|(k, _)| *k);
    if signer.is_none() || trust.root_key(&n.member) != signer {
        return Err(format!(
            "node certificate not signed by the root key of member {}",
            n.member
        ));
    }
    Ok(signed.id())
}

/// Ingests a presented node certificate and admits the peer if it holds a valid, unrevoked
/// certificate of a current member for exactly this peer id.
async fn check_certificate(node: NodeHandle, peer: Peer, cert: Vec<u8>, admission: AdmissionMode) {
    let net = node.inner.net.clone();
    // A certificate this node had not seen is offered to the federation once its holder is
    // admitted, so that other members learn it now rather than at their next reconciliation.
    let mut fresh = false;
    let verdict: Result<String, String> = async {
        if cert.is_empty() {
            return Err("presented no node certificate".to_string());
        }
        // Judged before anything is stored: a peer that is not yet admitted may hand over
        // exactly one kind of object, its own node certificate signed by a current member's
        // root key. Anything else (a record, a revocation, a certificate for another key) is
        // refused unread by the store, so a stranger cannot write to it or fill its quarantine.
        let id = presentable(&node.trust(), &cert, &peer.to_string())?;
        // Below the disk floor a node takes nothing new, a certificate included (each is a
        // member's to mint, for any number of fresh peer ids); one it holds still admits.
        if node.disk_check().is_err() && !matches!(node.get(id).await, Ok(Some(_))) {
            return Err(
                "this node's disk is below its floor: it takes no new node certificate now"
                    .to_string(),
            );
        }
        let r = node
            .ingest(vec![cert.clone()], Source::Peer(peer))
            .await
            .map_err(|e| e.to_string())?;
        match r.outcomes.first() {
            Some(IngestOutcome::Rejected(_, reason)) => {
                return Err(format!("invalid node certificate: {reason}"));
            }
            Some(IngestOutcome::Accepted(_)) => fresh = true,
            Some(IngestOutcome::Duplicate(_)) => {}
            other => {
                return Err(format!(
                    "node certificate not accepted: {:?}",
                    other.map(|o| o.status())
                ));
            }
        }
        let peer_s = peer.to_string();
        let cert = cert.clone();
        node.read(move |s| {
            let limits = *s.trust().limits();
            let (_, obj) =
                accord_core::validate::decode(&cert, &limits).map_err(|e| e.to_string())?;
            let Object::Node(n) = obj else {
                return Err("not a node certificate".to_string());
            };
            if n.node_key.peer_id() != peer_s {
                return Err(format!(
                    "certificate is for peer {}, not {peer_s}",
                    n.node_key.peer_id()
                ));
            }
            // The member of the certificate the peer presents: another member's certificate
            // of the same key (dated earlier, say) does not relabel it.
            match s
                .trust()
                .node_member_as(&n.node_key, n.member.as_str(), crate::now())
            {
                Some(e) => Ok(e.cert.member.to_string()),
                None => Err("certificate revoked or its member's root key replaced".to_string()),
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }
    .await;
    match verdict {
        Ok(member) => {
            let _ = net.admit(peer, Some(member)).await;
            if fresh {
                match net.publish(cert).await {
                    Ok(()) => node.inner.metrics.gossip("out", "published"),
                    Err(e) => debug!(%peer, error = %e, "node certificate not gossiped"),
                }
            }
        }
        Err(reason) => match admission {
            AdmissionMode::Members => {
                let _ = net.refuse(peer, reason).await;
            }
            AdmissionMode::Open => {
                debug!(%peer, %reason, "peer without a valid certificate (open admission)")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A search that finds every slot taken waits its turn, for a while only: then it is told
    /// the node is busy (a 503 with `Retry-After` over HTTP), and a slot given back is taken.
    #[tokio::test]
    async fn a_search_waits_for_a_slot_for_a_while_then_hears_the_node_is_busy() {
        let slots = Arc::new(Semaphore::new(SEARCHES_AT_ONCE));
        let held: Vec<_> = (0..SEARCHES_AT_ONCE)
            .map(|_| slots.clone().try_acquire_owned().expect("a free slot"))
            .collect();
        let wait = std::time::Duration::from_millis(50);
        match search_slot(slots.clone(), wait).await {
            Err(NodeError::Busy(why)) => assert!(why.contains("the node is busy"), "{why}"),
            other => panic!("{other:?}"),
        }
        drop(held);
        assert!(search_slot(slots, wait).await.is_ok());
    }

    #[test]
    fn reconciliation_sessions_wait_for_gossip_to_be_quiet() {
        let peer = Peer::random();
        let wait = std::time::Duration::from_secs(60);
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        let mut due = SessionsDue::new(wait);
        assert!(!due.any());
        due.periodic = true;
        due.owed.insert(peer);
        due.due_from(at(0));
        // A long queue: nothing starts, nothing is forgotten.
        assert_eq!(
            due.take_if_quiet(OWED_SYNC_BACKLOG + 1, 0, at(1)),
            (Vec::new(), false)
        );
        assert!(due.any());
        // A short queue that is filling fast (a burst still arriving): nothing starts either.
        assert_eq!(
            due.take_if_quiet(0, OWED_SYNC_BACKLOG + 1, at(2)),
            (Vec::new(), false)
        );
        assert!(due.any());
        // Drained: both start, once.
        assert_eq!(
            due.take_if_quiet(OWED_SYNC_BACKLOG, OWED_SYNC_BACKLOG, at(3)),
            (vec![peer], true)
        );
        assert!(!due.any());
        assert_eq!(due.take_if_quiet(0, 0, at(4)), (Vec::new(), false));
        // A periodic session alone waits as well.
        due.periodic = true;
        due.due_from(at(10));
        assert_eq!(due.take_if_quiet(10_000, 0, at(11)), (Vec::new(), false));
        assert_eq!(due.take_if_quiet(3, 5, at(12)), (Vec::new(), true));
        // Gossip that never goes quiet holds sessions back at most `wait`, from when they
        // first became due (being due again meanwhile does not restart the wait).
        due.periodic = true;
        due.due_from(at(100));
        due.owed.insert(peer);
        due.due_from(at(130));
        assert_eq!(
            due.take_if_quiet(10_000, 10_000, at(159)),
            (Vec::new(), false)
        );
        assert_eq!(
            due.take_if_quiet(10_000, 10_000, at(160)),
            (vec![peer], true)
        );
    }

    #[test]
    fn an_operators_glossary_adds_terms_and_a_bad_one_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("mine.toml");
        std::fs::write(
            &good,
            "[[terms]]\nen = [\"one window\"]\nru = [\"единое окно\"]\n",
        )
        .unwrap();
        let builtin = accord_search::Glossary::builtin().entries.len();
        assert_eq!(
            glossary_files(std::slice::from_ref(&good))
                .unwrap()
                .entries
                .len(),
            builtin + 1
        );
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[[terms]]\nen = 3\n").unwrap();
        let e = glossary_files(&[good, bad]).unwrap_err().to_string();
        assert!(e.contains("bad.toml"), "{e}");
        let e = glossary_files(&[dir.path().join("missing.toml")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
    }
}
