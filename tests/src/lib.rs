//! Cross-crate integration and end-to-end tests of Accord live in `tests/tests/`. This
//! library holds what they share: the protocol test-vector inputs of docs/PROTOCOL.md.

use std::collections::BTreeMap;

use accord_core::taxonomy::TaxonEntry;
use accord_core::{
    Charter, Delegation, Limits, MemberCode, MemberEntry, Object, ObjectType, Record, SecretKey,
    SignedObject, Taxonomy, Timestamp,
};

/// The objects of the test vectors, built exactly as docs/PROTOCOL.md describes them.
#[derive(Debug)]
pub struct Vectors {
    pub root: SecretKey,
    pub publisher: SecretKey,
    pub charter: SignedObject,
    pub delegation: SignedObject,
    pub record: SignedObject,
}

fn one(lang: &str, text: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(lang.to_string(), text.to_string())])
}

/// Builds the test vectors of docs/PROTOCOL.md.
pub fn vectors() -> Result<Vectors, String> {
    let root = SecretKey::from_seed([0x01; 32]);
    let publisher = SecretKey::from_seed([0x02; 32]);
    let kz = MemberCode::try_from("KZ".to_string())?;
    let charter = Charter {
        object_type: ObjectType::Charter,
        federation: None,
        created: Timestamp(1_700_000_000_000),
        name: "Vector federation".into(),
        version: 1,
        previous: None,
        members: vec![MemberEntry {
            code: kz.clone(),
            name: one("en", "Kazakhstan"),
            root_key: root.public_key(),
        }],
        threshold: 1,
        taxonomy: Taxonomy {
            directions: vec![TaxonEntry {
                code: "regulation".into(),
                names: one("en", "Regulation"),
            }],
            kinds: vec![TaxonEntry {
                code: "regulatory-note".into(),
                names: one("en", "Regulatory note"),
            }],
        },
        limits: Limits::default(),
    };
    let charter = Object::Charter(charter).sign(&root);
    let delegation = Object::Delegation(Delegation {
        object_type: ObjectType::Delegation,
        federation: charter.id(),
        created: Timestamp(1_700_000_000_000),
        member: kz.clone(),
        publisher: publisher.public_key(),
        name: "Ministry".into(),
        kinds: None,
        directions: None,
        not_before: Timestamp(1_700_000_000_000),
        not_after: None,
    })
    .sign(&root);
    let record = Object::Record(Record {
        object_type: ObjectType::Record,
        federation: charter.id(),
        created: Timestamp(1_700_000_001_000),
        member: kz,
        kind: "regulatory-note".into(),
        directions: vec!["regulation".into()],
        lang: "en".into(),
        title: one("en", "Test vector"),
        summary: BTreeMap::new(),
        body: one("en", "Hello"),
        tags: vec![],
        references: vec![],
        supersedes: None,
        links: vec![],
        attachments: vec![],
        effective_from: None,
        effective_until: None,
        date: None,
    })
    .sign(&publisher);
    Ok(Vectors {
        root,
        publisher,
        charter,
        delegation,
        record,
    })
}

// Generated (see `client_gen`): kept exactly as the generator writes it.
#[rustfmt::skip]
pub mod client;
pub mod client_gen;
pub mod conformance;
pub mod fuzz;

pub mod harness {
    //! In-process nodes of a development federation on loopback: seeded keys, ephemeral
    //! ports (`:0`), temporary directories, waits on conditions with deadlines.

    use std::path::PathBuf;
    use std::time::Duration;

    use accord_core::devnet::DevFederation;
    use accord_core::{ObjectId, SecretKey, Timestamp};
    use accord_node::config::{ApiConfig, NetworkConfig, StoreConfig, SyncConfig};
    use accord_node::{AdmissionMode, Node, NodeConfig, NodeHandle};

    /// A development federation written to a temporary directory.
    pub struct TestFed {
        pub dir: tempfile::TempDir,
        pub fed: DevFederation,
    }

    impl std::fmt::Debug for TestFed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "TestFed({})", self.fed.federation())
        }
    }

    /// The creation time of the test federations.
    pub const CREATED: Timestamp = Timestamp(1_700_000_000_000);

    impl TestFed {
        /// Member `i`'s revocation of its publisher key from `effective` (a stolen ministry
        /// key), signed by its root key.
        pub fn revoke_publisher_key(
            &self,
            i: usize,
            effective: Timestamp,
        ) -> accord_core::SignedObject {
            let m = &self.fed.members[i];
            accord_core::Object::Revocation(accord_core::Revocation {
                object_type: accord_core::ObjectType::Revocation,
                federation: self.fed.federation(),
                created: effective,
                member: m.code.clone(),
                target_type: accord_core::object::TargetType::Key,
                target: ObjectId(*m.publisher.public_key().as_bytes()),
                effective,
                reason: Some("key compromised".into()),
            })
            .sign(&m.root)
        }

        /// A further node certificate of member `member` for `key` (a peer a test drives by
        /// hand, or a node key it retires).
        pub fn extra_node_cert(
            &self,
            member: usize,
            key: &SecretKey,
            label: &str,
        ) -> accord_core::SignedObject {
            let m = &self.fed.members[member];
            accord_core::Object::Node(accord_core::NodeCert {
                object_type: accord_core::ObjectType::Node,
                federation: self.fed.federation(),
                created: self.fed.created,
                member: m.code.clone(),
                node_key: key.public_key(),
                label: Some(label.to_string()),
            })
            .sign(&m.root)
        }

        /// Member `i`'s publisher retracts `record` (created at `created`).
        pub fn retraction(
            &self,
            i: usize,
            record: ObjectId,
            created: Timestamp,
            reason: &str,
        ) -> accord_core::SignedObject {
            accord_core::Object::Retraction(accord_core::Retraction {
                object_type: accord_core::ObjectType::Retraction,
                federation: self.fed.federation(),
                created,
                member: self.fed.members[i].code.clone(),
                record,
                reason: reason.into(),
            })
            .sign(&self.fed.members[i].publisher)
        }

        /// The next version of the genesis, as `edit` changes it, signed by every member's
        /// root key and by `extra` (a root key the amendment brings in).
        pub fn amendment(
            &self,
            edit: impl FnOnce(&mut accord_core::Charter),
            extra: Option<&SecretKey>,
        ) -> accord_core::SignedObject {
            let (trust, _) = accord_core::TrustView::from_genesis(self.fed.genesis.as_bytes())
                .expect("the test genesis is valid");
            let mut charter = trust.charter().clone();
            charter.federation = Some(trust.federation());
            charter.version = 2;
            charter.previous = Some(trust.charter_id());
            charter.created = Timestamp(self.fed.created.0 + 3_600_000);
            edit(&mut charter);
            let mut amendment =
                accord_core::Object::Charter(charter).sign(&self.fed.members[0].root);
            for m in &self.fed.members[1..] {
                assert!(amendment.add_signature(&m.root));
            }
            if let Some(k) = extra {
                assert!(amendment.add_signature(k));
            }
            amendment
        }

        pub fn new(codes: &[&str], seed: u8) -> std::io::Result<TestFed> {
            Self::with_limits(codes, seed, accord_core::Limits::default())
        }

        /// [`TestFed::new`] with a genesis charter of these limits.
        pub fn with_limits(
            codes: &[&str],
            seed: u8,
            limits: accord_core::Limits,
        ) -> std::io::Result<TestFed> {
            let fed = DevFederation::with_limits(codes, [seed; 32], CREATED, limits)
                .map_err(std::io::Error::other)?;
            let dir = tempfile::tempdir()?;
            std::fs::write(dir.path().join("charter.cbor"), fed.genesis.as_bytes())?;
            for (i, m) in fed.members.iter().enumerate() {
                let d = dir.path().join(m.code.as_str());
                std::fs::create_dir_all(&d)?;
                let pem = |k: &SecretKey| {
                    k.to_pem()
                        .map(|p| p.to_string())
                        .map_err(std::io::Error::other)
                };
                std::fs::write(d.join("node.key"), pem(&m.node)?)?;
                std::fs::write(d.join("node-cert.cbor"), fed.node_cert(i).as_bytes())?;
                std::fs::write(d.join("delegation.cbor"), fed.delegation(i).as_bytes())?;
            }
            Ok(TestFed { dir, fed })
        }

        pub fn charter_path(&self) -> PathBuf {
            self.dir.path().join("charter.cbor")
        }

        /// The config of member `i`'s node: loopback, ephemeral ports, every member's
        /// delegation and certificate preloaded.
        pub fn config(
            &self,
            i: usize,
            bootstrap: Vec<String>,
            admission: AdmissionMode,
        ) -> NodeConfig {
            let code = self.fed.members[i].code.as_str().to_string();
            let d = self.dir.path().join(&code);
            let preload = self
                .fed
                .members
                .iter()
                .flat_map(|m| {
                    let md = self.dir.path().join(m.code.as_str());
                    [md.join("delegation.cbor"), md.join("node-cert.cbor")]
                })
                .collect();
            NodeConfig {
                charter: self.charter_path(),
                member: code,
                node_key: d.join("node.key"),
                node_cert: Some(d.join("node-cert.cbor")),
                data_dir: d.join("data"),
                preload,
                network: NetworkConfig {
                    listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
                    bootstrap,
                    admission,
                    mdns: false,
                    ..NetworkConfig::default()
                },
                api: ApiConfig {
                    listen: "127.0.0.1:0"
                        .parse()
                        .unwrap_or_else(|_| ApiConfig::default().listen),
                    ..ApiConfig::default()
                },
                store: StoreConfig::default(),
                search: Default::default(),
                sync: SyncConfig {
                    interval_secs: 2,
                    ..SyncConfig::default()
                },
                health: Default::default(),
                attachments: Default::default(),
            }
        }

        /// Spawns member `i`'s node.
        pub async fn spawn(
            &self,
            i: usize,
            bootstrap: Vec<String>,
        ) -> Result<NodeHandle, accord_node::NodeError> {
            Node::spawn(self.config(i, bootstrap, AdmissionMode::Members)).await
        }
    }

    /// The address other nodes use to reach `node`: its first listen address plus `/p2p/<id>`.
    pub async fn dial_addr(node: &NodeHandle) -> Option<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(addrs) = node.listen_addrs().await
                && let Some(a) = addrs.first()
            {
                return Some(format!("{a}/p2p/{}", node.peer_id()));
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `cond` every 25 ms until it holds or `timeout` passes; `true` if it held.
    pub async fn wait_until<F, Fut>(timeout: Duration, mut cond: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if cond().await {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `true` once `node` has at least `n` admitted peers.
    pub async fn admitted(node: &NodeHandle, n: usize) -> bool {
        node.peers()
            .await
            .map(|p| p.iter().filter(|p| p.admitted).count() >= n)
            .unwrap_or(false)
    }

    /// `true` once the raw peer `raw` can gossip to `node`: it has admitted `node` (before, a
    /// node's score lies below the publish threshold) and received its subscriptions (gossipsub
    /// sends only to peers it knows are subscribed; the heartbeat topic is subscribed after the
    /// records' one, so it arrives last). A message published before goes nowhere, and `node`
    /// admitting `raw` says neither: the two admissions are independent.
    pub async fn gossips_to(raw: &accord_net::NetworkHandle, node: &NodeHandle) -> bool {
        let id = node.peer_id();
        raw.peers()
            .await
            .map(|ps| {
                ps.iter()
                    .any(|p| p.peer.to_string() == id && p.admitted && p.heartbeats)
            })
            .unwrap_or(false)
    }

    /// Spawns node 0 and node 1 (bootstrapped on 0) from `config(i, bootstrap)` and waits until
    /// each has admitted the other.
    pub async fn admitted_pair(
        config: impl Fn(usize, Vec<String>) -> NodeConfig,
    ) -> (NodeHandle, NodeHandle) {
        let first = Node::spawn(config(0, vec![])).await.expect("node 0 starts");
        let addr = dial_addr(&first).await.expect("node 0 listens");
        let second = Node::spawn(config(1, vec![addr]))
            .await
            .expect("node 1 starts");
        assert!(
            wait_until(Duration::from_secs(30), || admitted(&second, 1)).await,
            "node 1 admits node 0"
        );
        assert!(
            wait_until(Duration::from_secs(30), || admitted(&first, 1)).await,
            "node 0 admits node 1"
        );
        (first, second)
    }

    /// `n` records of member 0, titled `"{label} {i}"`, created a millisecond apart from `from`.
    pub fn records(tf: &TestFed, label: &str, from: Timestamp, n: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                tf.fed
                    .record(0, &format!("{label} {i}"), Timestamp(from.0 + i))
                    .into_bytes()
            })
            .collect()
    }

    /// A record's history, all by member 0: an edition replaced by a second one, and a record
    /// retracted ("published by mistake"); created a second apart from `t` (ms), in the order
    /// they must be stored.
    #[derive(Debug)]
    pub struct History {
        pub old: accord_core::SignedObject,
        pub newer: accord_core::SignedObject,
        pub gone: accord_core::SignedObject,
        pub retraction: accord_core::SignedObject,
    }

    impl History {
        pub fn new(tf: &TestFed, t: u64) -> History {
            use accord_core::{Object, ObjectType, Retraction};
            let publisher = &tf.fed.members[0].publisher;
            let old = tf.fed.record(0, "Edition one", Timestamp(t));
            let mut newer = tf.fed.record_body(0, "Edition two", Timestamp(t + 1000));
            newer.supersedes = Some(old.id());
            let newer = Object::Record(newer).sign(publisher);
            let gone = tf.fed.record(0, "Withdrawn note", Timestamp(t + 2000));
            let retraction = Object::Retraction(Retraction {
                object_type: ObjectType::Retraction,
                federation: tf.fed.federation(),
                created: Timestamp(t + 3000),
                member: tf.fed.members[0].code.clone(),
                record: gone.id(),
                reason: "published by mistake".into(),
            })
            .sign(publisher);
            History {
                old,
                newer,
                gone,
                retraction,
            }
        }

        /// The four, in the order to store them.
        pub fn objects(&self) -> [&accord_core::SignedObject; 4] {
            [&self.old, &self.newer, &self.gone, &self.retraction]
        }
    }

    /// Serves the node's HTTP API and UI on an ephemeral port; returns the base URL.
    pub async fn serve(node: &NodeHandle) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(accord_api::serve(
            node.clone(),
            listener,
            accord_api::HttpOptions::default(),
            std::future::pending(),
        ));
        format!("http://{addr}")
    }

    /// `POST {base}/v1/objects` of one signed object: the status and the answer's text.
    pub async fn post_object(base: &str, bytes: Vec<u8>) -> (u16, String) {
        let r = crate::http()
            .post(format!("{base}/v1/objects"))
            .header("content-type", "application/cbor")
            .body(bytes)
            .send()
            .await
            .expect("POST /v1/objects");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// `GET {base}{path_and_query}`: the status and the JSON body (`null` if it is not JSON).
    pub async fn get_json(base: &str, path_and_query: &str) -> (u16, serde_json::Value) {
        let r = crate::http_get(format!("{base}{path_and_query}"))
            .await
            .expect("GET from the node's API");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `GET {base}{path_and_query}`: the body as text (a page of the web interface).
    pub async fn get_text(base: &str, path_and_query: &str) -> String {
        crate::http_get(format!("{base}{path_and_query}"))
            .await
            .expect("GET from the node")
            .text()
            .await
            .expect("a text answer")
    }

    /// The value of an unlabelled metric of `node` (0 when it is not exported).
    /// Holds `node`'s store thread busy, so that jobs (group commits, reads) queue behind it,
    /// until the returned sender is sent to; returns once the thread holds. The task answers
    /// `true` when released by a send.
    pub async fn hold_store_thread(
        node: &NodeHandle,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<bool, accord_node::NodeError>>,
    ) {
        let (gate, wait) = std::sync::mpsc::channel::<()>();
        let (started, holding) = tokio::sync::oneshot::channel::<()>();
        let busy = tokio::spawn({
            let node = node.clone();
            async move {
                node.read(move |_| {
                    let _ = started.send(());
                    wait.recv().is_ok()
                })
                .await
            }
        });
        tokio::time::timeout(Duration::from_secs(10), holding)
            .await
            .expect("the store thread never ran the read")
            .expect("the read was dropped");
        (gate, busy)
    }

    pub async fn metric(node: &NodeHandle, name: &str) -> f64 {
        node.metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The current time.
    pub fn now() -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Timestamp(ms as u64)
    }

    /// The number of records `node` stores (from the counts its store publishes).
    pub async fn record_count(node: &NodeHandle) -> u64 {
        node.status()
            .await
            .map(|s| {
                s.counts
                    .get(&accord_core::ObjectType::Record)
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// A bare libp2p peer of the federation (accord-net's swarm, open admission, no node
    /// behind it), listening on an ephemeral loopback port and presenting `cert` if given: a
    /// test drives it by hand to play a hostile or unusual peer.
    pub async fn raw_peer(
        key: &SecretKey,
        tf: &TestFed,
        cert: Option<Vec<u8>>,
        bootstrap: Vec<String>,
    ) -> (accord_net::NetworkHandle, accord_net::NetworkEvents) {
        start_raw_peer(raw_peer_config(key, tf, cert, bootstrap))
    }

    /// The configuration [`raw_peer`] starts with, for a test to change before
    /// [`start_raw_peer`].
    pub fn raw_peer_config(
        key: &SecretKey,
        tf: &TestFed,
        cert: Option<Vec<u8>>,
        bootstrap: Vec<String>,
    ) -> accord_net::NetConfig {
        accord_net::NetConfig {
            keypair: accord_net::keypair_of(key).expect("an ed25519 key is a libp2p key"),
            federation: tf.fed.federation(),
            listen: vec![
                "/ip4/127.0.0.1/tcp/0"
                    .parse()
                    .expect("a loopback multiaddr"),
            ],
            bootstrap: bootstrap
                .iter()
                .map(|b| b.parse().expect("a bootstrap multiaddr"))
                .collect(),
            admission: accord_net::Admission::Open,
            mdns: false,
            node_cert: cert,
            max_object_bytes: 1 << 20,
            admission_timeout: accord_net::ADMISSION_TIMEOUT,
            gossip_mesh_n: accord_net::DEFAULT_GOSSIP_MESH_N,
            sim: None,
            gossip_queue: accord_net::GOSSIP_CHANNEL_CAPACITY,
            gossip_queue_bytes: accord_net::GOSSIP_QUEUE_BYTES,
        }
    }

    /// Starts a bare peer with `cfg` (see [`raw_peer`]); its swarm runs on a task.
    pub fn start_raw_peer(
        cfg: accord_net::NetConfig,
    ) -> (accord_net::NetworkHandle, accord_net::NetworkEvents) {
        let (net, handle, events) =
            accord_net::Network::new(cfg).expect("the raw peer's network starts");
        tokio::spawn(net.run());
        (handle, events)
    }

    /// Whether a bare peer's `events` report a disconnection within `timeout`.
    pub async fn disconnected(
        events: &mut accord_net::NetworkEvents,
        timeout: std::time::Duration,
    ) -> bool {
        tokio::time::timeout(timeout, async {
            while let Some(ev) = events.recv().await {
                if let accord_net::NetworkEvent::PeerDisconnected { .. } = ev {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false)
    }

    /// Whether `node` stores `id`.
    pub async fn has(node: &NodeHandle, id: ObjectId) -> bool {
        node.get(id).await.ok().flatten().is_some()
    }
}

/// An HTTP client for the tests. reqwest is built with rustls and no default TLS provider (the
/// `accord` tool installs ring, which libp2p already builds): a client made without one panics,
/// so every test client is made here.
pub fn http() -> reqwest::Client {
    tls_provider();
    reqwest::Client::new()
}

/// [`http`]'s builder, for clients with a timeout or another setting.
pub fn http_builder() -> reqwest::ClientBuilder {
    tls_provider();
    reqwest::Client::builder()
}

/// `GET url` with a fresh [`http`] client.
pub async fn http_get<U: reqwest::IntoUrl>(url: U) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

/// Installs ring as the process's TLS provider, once.
fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
