//! The swarm actor: the one task that owns the `Swarm`.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, kad, mdns, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::behaviour::{
    Behaviour, BehaviourEvent, MAX_HEARTBEAT_MESSAGE, UNADMITTED_SCORE, gossip_topic, health_topic,
};
use crate::{
    Admission, COMMAND_CHANNEL_CAPACITY, Command, EVENT_CHANNEL_CAPACITY, GOSSIP_CHANNEL_CAPACITY,
    NetConfig, NetError, NetworkEvent, NetworkEvents, NetworkHandle, PeerInfo, Validation,
};

/// First and largest redial delay for bootstrap peers.
const REDIAL_MIN: Duration = Duration::from_secs(1);
const REDIAL_MAX: Duration = Duration::from_secs(60);
/// How often timers (admission deadlines, redials) are checked.
const TICK: Duration = Duration::from_millis(250);
/// How often the Kademlia routing table is refreshed.
const KAD_REFRESH: Duration = Duration::from_secs(60);
/// Below this many connected peers, peers found through Kademlia or mDNS are dialled.
const TARGET_PEERS: usize = 32;
/// Peers connected but not yet admitted (their certificate not yet judged) held at once; a
/// newcomer over the cap displaces the one waiting longest, so a crowd of strangers cannot
/// take the connection slots that members need.
pub const MAX_AWAITING_ADMISSION: usize = 32;
/// A refused peer is cut at once when it comes back within this time, doubling per refusal.
const REFUSED_MIN: Duration = Duration::from_secs(5);
const REFUSED_MAX: Duration = Duration::from_secs(600);
/// Refused peers remembered at once (the oldest are forgotten first).
const REFUSED_CAPACITY: usize = 4096;
/// Reset peers awaiting their redial, at most (one per admitted peer is far below it).
const REDIAL_CAPACITY: usize = 256;
/// A bad-data penalty is forgotten after this long without another (see `penalize`).
const PENALTY_FORGOTTEN_AFTER: Duration = Duration::from_secs(86_400);

/// A penalty `elapsed` after it was last changed: whole until it is forgotten.
fn decayed(score: f64, elapsed: Duration) -> f64 {
    if elapsed >= PENALTY_FORGOTTEN_AFTER {
        0.0
    } else {
        score
    }
}
/// Peers whose bad-data penalties are remembered at once. Forgotten penalties go first when
/// it is reached, then the one left alone longest: a member issuing node certificates by the
/// thousand to serve one bad piece each grows the map no further.
const PENALTIES_CAPACITY: usize = 1024;

/// Makes room in `penalties` for one more peer when it is at [`PENALTIES_CAPACITY`].
fn make_room_for_penalty(penalties: &mut HashMap<PeerId, (f64, Instant)>, now: Instant) {
    if penalties.len() < PENALTIES_CAPACITY {
        return;
    }
    penalties.retain(|_, (_, at)| now.duration_since(*at) < PENALTY_FORGOTTEN_AFTER);
    if penalties.len() >= PENALTIES_CAPACITY
        && let Some(oldest) = penalties
            .iter()
            .min_by_key(|(_, (_, at))| *at)
            .map(|(p, _)| *p)
    {
        penalties.remove(&oldest);
    }
}
/// At most one warning per refused peer in this time.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What a refusal is told: whether to warn now, the refusals of this peer and of other new
/// peers passed over since the last warning, and the peer's backoff.
struct Refusal {
    warn: bool,
    quiet: u64,
    others: u64,
    backoff: Duration,
}

/// A peer that was refused: when it may try again, and when it was last warned about.
struct Refused {
    until: Instant,
    backoff: Duration,
    warned: Instant,
    quiet: u64,
    /// Warned about at least once (see [`Network::first_refusals`]).
    ever_warned: bool,
    /// Cut for what it sent (invalid objects, bad data), not for its certificate: admission
    /// does not forget it, so the backoff keeps doubling if it does so again.
    conduct: bool,
}

struct PeerState {
    addresses: Vec<Multiaddr>,
    since_ms: u64,
    admitted: bool,
    member: Option<String>,
    deadline: Option<Instant>,
    /// Certificate presentations passed on to the node while connected.
    presented: u8,
}

/// Addresses kept of one peer: one per connection (at most two), and a few more it came from.
/// A peer that reconnects its second connection from ever new ports adds no more.
const MAX_PEER_ADDRESSES: usize = 4;

/// Requests of one peer, on one protocol (reconciliation, attachments), being answered at
/// once: from the request until its answer is written or has failed. A node asks one peer a
/// question at a time per reconciliation session and two chunks at a time per file, so an
/// honest peer stays below it; a peer that asks more and reads slowly no longer has the node
/// hold an answer (up to 8 MiB) per stream it opened.
pub const MAX_ANSWERS_IN_FLIGHT_PER_PEER: usize = 4;
/// Reconciliation answers in flight to all peers at once (at most 8 MiB each).
pub const MAX_SYNC_ANSWERS_IN_FLIGHT: usize = 16;
/// Attachment answers in flight to all peers at once (at most 1 MiB each).
pub const MAX_BLOB_ANSWERS_IN_FLIGHT: usize = 32;

/// Presentations of a peer's certificate judged while it stays connected: the protocol sends
/// one per connection, and a peer has at most two connections. More are answered and dropped,
/// so that a stranger cannot have its objects judged without end on one connection.
const MAX_PRESENTATIONS: u8 = 2;

struct Bootstrap {
    peer: PeerId,
    addr: Multiaddr,
    next_attempt: Instant,
    backoff: Duration,
}

/// The network: build it with [`Network::new`], then drive [`Network::run`] on a task.
pub struct Network {
    swarm: Swarm<Behaviour>,
    metrics: Option<libp2p::metrics::Metrics>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    /// Gossip messages, on their own queue (see [`NetworkEvents`]).
    gossip: mpsc::Sender<NetworkEvent>,
    /// Bytes of message data in the gossip queue...
    gossip_bytes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// ...and at most ([`NetConfig::gossip_queue_bytes`]).
    gossip_queue_bytes: usize,
    /// Gossip not handed over to the node, shared with the handles.
    missed: std::sync::Arc<crate::MissedGossip>,
    unsent: std::sync::Arc<crate::UnsentGossip>,
    topic: gossipsub::IdentTopic,
    /// The heartbeat topic (docs/PROTOCOL.md §11).
    health: gossipsub::IdentTopic,
    admission: Admission,
    admission_timeout: Duration,
    /// Every admitted peer is an explicit gossip peer (no mesh: `gossip_mesh_n` = 0).
    direct_peers: bool,
    node_cert: Vec<u8>,
    peers: HashMap<PeerId, PeerState>,
    refused: HashMap<PeerId, Refused>,
    /// The last warning about a peer refused for the first time, and how many such peers were
    /// refused quietly since: a stranger that connects with a fresh peer id each time is a new
    /// peer each time, and would otherwise be one warning per connection.
    first_refusals: (Option<Instant>, u64),
    /// Peers whose connections were reset: dialled again when the last one has closed.
    redial: HashMap<PeerId, Vec<Multiaddr>>,
    bootstrap: Vec<Bootstrap>,
    outbound_sync: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetError>>>,
    inbound_sync: HashMap<u64, ResponseChannel<Vec<u8>>>,
    outbound_blob: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetError>>>,
    inbound_blob: HashMap<u64, ResponseChannel<Vec<u8>>>,
    /// Application-score penalties of peers that served bad data (attachments).
    penalties: HashMap<PeerId, (f64, Instant)>,
    next_inbound: u64,
    /// Keyed by protocol and request id: each protocol's behaviour numbers its requests from 1.
    answering: AnswersInFlight<(bool, InboundRequestId)>,
    /// Requests refused because too many answers were in flight, shared with the handles.
    busy: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Control events not handed over (the node's queue full), shared with the handles.
    events_dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// When a dropped control event was last logged: at most one line a minute.
    events_warned: std::cell::Cell<Option<Instant>>,
}

/// The requests being answered, from their arrival until their answer is written or has
/// failed, bounded per peer and protocol ([`MAX_ANSWERS_IN_FLIGHT_PER_PEER`]) and per protocol
/// ([`MAX_SYNC_ANSWERS_IN_FLIGHT`], [`MAX_BLOB_ANSWERS_IN_FLIGHT`]).
#[derive(Debug)]
struct AnswersInFlight<R> {
    /// By request: the peer and whether on the blob protocol.
    requests: HashMap<R, (PeerId, bool)>,
    per_peer: HashMap<(PeerId, bool), usize>,
    /// Sync, then blob.
    totals: [usize; 2],
}

impl<R: std::hash::Hash + Eq> AnswersInFlight<R> {
    fn new() -> Self {
        AnswersInFlight {
            requests: HashMap::new(),
            per_peer: HashMap::new(),
            totals: [0; 2],
        }
    }

    /// Takes `request` of `peer` to answer, or says why not (too many in flight).
    fn begin(&mut self, request: R, peer: PeerId, blob: bool) -> Result<(), String> {
        let of_peer = self.per_peer.get(&(peer, blob)).copied().unwrap_or(0);
        let total = self.totals[usize::from(blob)];
        let cap = if blob {
            MAX_BLOB_ANSWERS_IN_FLIGHT
        } else {
            MAX_SYNC_ANSWERS_IN_FLIGHT
        };
        if of_peer >= MAX_ANSWERS_IN_FLIGHT_PER_PEER {
            return Err(format!("{of_peer} answers to this peer in flight"));
        }
        if total >= cap {
            return Err(format!("{total} answers in flight"));
        }
        self.requests.insert(request, (peer, blob));
        *self.per_peer.entry((peer, blob)).or_default() += 1;
        self.totals[usize::from(blob)] += 1;
        Ok(())
    }

    /// `request`'s answer was written, or it failed.
    fn end(&mut self, request: &R) {
        let Some(key) = self.requests.remove(request) else {
            return;
        };
        self.totals[usize::from(key.1)] -= 1;
        if let Some(n) = self.per_peer.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&key);
            }
        }
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("peer_id", self.swarm.local_peer_id())
            .field("peers", &self.peers.len())
            .finish()
    }
}

/// The peer awaiting admission that goes when too many wait: the one waiting longest that
/// has not presented a certificate (a member's, being judged, is never pushed out by strangers).
fn push_out_candidate(peers: &HashMap<PeerId, PeerState>) -> Option<PeerId> {
    peers
        .iter()
        .filter(|(_, s)| s.presented == 0)
        .filter_map(|(p, s)| s.deadline.map(|d| (d, *p)))
        .min()
        .map(|(_, p)| p)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Why an address could not be listened on. libp2p's transport error prints nothing for an
/// operating-system error ("address in use"), so its source is named instead.
fn listen_error(e: &libp2p::TransportError<std::io::Error>) -> String {
    match e {
        libp2p::TransportError::Other(io) => io.to_string(),
        other => other.to_string(),
    }
}

fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

impl Network {
    /// Builds the swarm, starts listening and returns the actor, its handle and its events.
    pub fn new(cfg: NetConfig) -> Result<(Network, NetworkHandle, NetworkEvents), NetError> {
        Self::with_metrics(cfg, None)
    }

    /// Like [`Network::new`], registering libp2p's own metrics (swarm, gossipsub, identify,
    /// Kademlia, ping) in `registry`.
    pub fn with_metrics(
        cfg: NetConfig,
        mut registry: Option<&mut libp2p::metrics::Registry>,
    ) -> Result<(Network, NetworkHandle, NetworkEvents), NetError> {
        let behaviour = Behaviour::new(&cfg, registry.as_deref_mut())?;
        let swarm_config =
            |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(120));
        // Peer addresses may name hosts (`/dns4/node.example.gov/tcp/7400/p2p/…`); names are
        // resolved with the system's resolver (/etc/resolv.conf and /etc/hosts). Without a
        // usable resolver configuration the node still starts, with numeric addresses only.
        let dns_unavailable = |e: &std::io::Error| {
            tracing::warn!(error = %e, "no system DNS configuration: peer addresses must be numeric (/ip4, /ip6)");
        };
        let tcp_config = || tcp::Config::default().nodelay(true);
        let mut swarm = match cfg.sim.clone() {
            None => {
                let builder = || {
                    libp2p::SwarmBuilder::with_existing_identity(cfg.keypair.clone())
                        .with_tokio()
                        .with_tcp(tcp_config(), noise::Config::new, yamux::Config::default)
                        .map_err(|e| NetError::Transport(e.to_string()))
                };
                match builder()?.with_dns() {
                    Ok(b) => b
                        .with_behaviour(|_| behaviour)
                        .map_err(|e| NetError::Transport(e.to_string()))?
                        .with_swarm_config(swarm_config)
                        .build(),
                    Err(e) => {
                        dns_unavailable(&e);
                        builder()?
                            .with_behaviour(|_| behaviour)
                            .map_err(|e| NetError::Transport(e.to_string()))?
                            .with_swarm_config(swarm_config)
                            .build()
                    }
                }
            }
            // The same stack over TCP seen through a simulated link (crate::sim); numeric
            // addresses only.
            Some(link) => libp2p::SwarmBuilder::with_existing_identity(cfg.keypair.clone())
                .with_tokio()
                .with_other_transport(|key| {
                    use libp2p::Transport as _;
                    let noise = noise::Config::new(key)
                        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                        tcp::tokio::Transport::new(tcp_config())
                            .and_then(move |stream, _| link.clone().attach(stream))
                            .upgrade(libp2p::core::upgrade::Version::V1)
                            .authenticate(noise)
                            .multiplex(yamux::Config::default()),
                    )
                })
                .map_err(|e| NetError::Transport(e.to_string()))?
                .with_behaviour(|_| behaviour)
                .map_err(|e| NetError::Transport(e.to_string()))?
                .with_swarm_config(swarm_config)
                .build(),
        };
        // Every address is probed before any is listened on: the node's own IPv4 listener
        // would otherwise be in the way of the probe of its IPv6 one.
        if cfg.sim.is_none() {
            for addr in &cfg.listen {
                if let Some(reason) = port_taken(addr) {
                    return Err(NetError::CannotListen(addr.clone(), reason));
                }
            }
        }
        for addr in &cfg.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen(addr.clone(), listen_error(&e)))?;
        }
        let mut bootstrap = Vec::new();
        let now = Instant::now();
        for addr in &cfg.bootstrap {
            let peer =
                peer_of(addr).ok_or_else(|| NetError::BootstrapWithoutPeerId(addr.clone()))?;
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            bootstrap.push(Bootstrap {
                peer,
                addr: addr.clone(),
                next_attempt: now,
                backoff: REDIAL_MIN,
            });
        }
        let (cmd_tx, commands) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let (events, control_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let (gossip, gossip_rx) = mpsc::channel(cfg.gossip_queue.max(1));
        let gossip_bytes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ev_rx = NetworkEvents {
            control: control_rx,
            gossip: crate::GossipEvents {
                rx: gossip_rx,
                bytes: gossip_bytes.clone(),
            },
        };
        let missed = std::sync::Arc::new(crate::MissedGossip::default());
        let unsent = std::sync::Arc::new(crate::UnsentGossip::default());
        let busy = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let events_dropped = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let handle = NetworkHandle {
            tx: cmd_tx,
            local_peer_id: *swarm.local_peer_id(),
            missed: missed.clone(),
            unsent: unsent.clone(),
            busy: busy.clone(),
            events_dropped: events_dropped.clone(),
        };
        let net = Network {
            swarm,
            metrics: registry.map(libp2p::metrics::Metrics::new),
            commands,
            events,
            gossip,
            gossip_bytes,
            gossip_queue_bytes: cfg.gossip_queue_bytes,
            missed,
            unsent,
            topic: gossip_topic(&cfg.federation),
            health: health_topic(&cfg.federation),
            admission: cfg.admission,
            admission_timeout: cfg.admission_timeout,
            direct_peers: cfg.gossip_mesh_n == 0,
            node_cert: cfg.node_cert.unwrap_or_default(),
            peers: HashMap::new(),
            refused: HashMap::new(),
            first_refusals: (None, 0),
            redial: HashMap::new(),
            bootstrap,
            outbound_sync: HashMap::new(),
            inbound_sync: HashMap::new(),
            outbound_blob: HashMap::new(),
            inbound_blob: HashMap::new(),
            penalties: HashMap::new(),
            next_inbound: 0,
            answering: AnswersInFlight::new(),
            busy,
            events_dropped,
            events_warned: std::cell::Cell::new(None),
        };
        Ok((net, handle, ev_rx))
    }

    /// Runs until [`NetworkHandle::shutdown`] or until every handle is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        let mut kad_refresh = tokio::time::interval(KAD_REFRESH);
        loop {
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(c) => self.command(c),
                },
                ev = self.swarm.select_next_some() => self.swarm_event(ev),
                _ = tick.tick() => self.on_tick(),
                _ = kad_refresh.tick() => {
                    if !self.peers.is_empty() {
                        let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    }
                }
            }
        }
        info!("network stopped");
    }

    /// Sends an event without ever blocking the swarm; `false` when the node is not keeping up.
    /// Gossip goes on its own queue, bounded in messages and bytes; a message that does not fit
    /// is accounted for in [`crate::MissedGossip`] (the node then reconciles with its sender).
    /// A control event that does not fit is logged.
    fn emit(&self, ev: NetworkEvent) -> bool {
        use std::sync::atomic::Ordering;
        if let NetworkEvent::Gossip { source, data, .. } = &ev {
            let (source, len) = (*source, data.len());
            let queued = self.gossip_bytes.fetch_add(len, Ordering::Relaxed);
            let sent = queued + len <= self.gossip_queue_bytes && self.gossip.try_send(ev).is_ok();
            if !sent {
                self.gossip_bytes.fetch_sub(len, Ordering::Relaxed);
                if self.missed.record(source) {
                    warn!(
                        missed = self.missed.count(),
                        "node is not keeping up with gossip: messages are left to reconciliation with their senders (at most one such line a minute)"
                    );
                }
            }
            return sent;
        }
        match self.events.try_send(ev) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(ev)) => {
                // Counted (`accord_network_events_dropped_total`); logged with the kind only
                // (an event's payload would fill the log), at most once a minute.
                let dropped = self.events_dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let now = Instant::now();
                if self
                    .events_warned
                    .get()
                    .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
                {
                    self.events_warned.set(Some(now));
                    warn!(
                        event = ev.kind(),
                        dropped,
                        "node is not keeping up with network events; event dropped (at most one such line a minute)"
                    );
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Publish { data, reply } => {
                let r = data
                    .into_iter()
                    .map(|d| self.publish(self.topic.clone(), d))
                    .collect();
                let _ = reply.send(r);
            }
            Command::PublishHeartbeat { data, reply } => {
                let r = self.publish(self.health.clone(), data);
                let _ = reply.send(r);
            }
            Command::Report {
                message_id,
                source,
                validation,
            } => self.report(message_id, source, validation),
            Command::Admit { peer, member } => self.admit(peer, member),
            Command::Refuse { peer, reason } => self.refuse(peer, reason),
            Command::Peers { reply } => {
                let gs = &self.swarm.behaviour().gossipsub;
                let health = self.health.hash();
                let heartbeats: std::collections::HashSet<PeerId> = gs
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&health))
                    .map(|(p, _)| *p)
                    .collect();
                let list = self
                    .peers
                    .iter()
                    .map(|(p, s)| PeerInfo {
                        peer: *p,
                        addresses: s.addresses.clone(),
                        connected_since_ms: s.since_ms,
                        member: s.member.clone(),
                        admitted: s.admitted,
                        gossip_score: gs.peer_score(p),
                        heartbeats: heartbeats.contains(p),
                    })
                    .collect();
                let _ = reply.send(list);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Dial { addr } => {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    warn!(%addr, error = %e, "dial failed");
                }
            }
            Command::SyncRequest {
                peer,
                data,
                reply,
                blob,
            } => {
                if !self.peers.get(&peer).is_some_and(|s| s.admitted) {
                    let _ = reply.send(Err(NetError::Request {
                        peer,
                        reason: "peer is not admitted".into(),
                    }));
                    return;
                }
                if blob {
                    let id = self.swarm.behaviour_mut().blob.send_request(&peer, data);
                    self.outbound_blob.insert(id, reply);
                } else {
                    let id = self.swarm.behaviour_mut().sync.send_request(&peer, data);
                    self.outbound_sync.insert(id, reply);
                }
            }
            Command::Respond { request_id, data } => {
                if let Some(ch) = self.inbound_sync.remove(&request_id) {
                    let _ = self.swarm.behaviour_mut().sync.send_response(ch, data);
                } else if let Some(ch) = self.inbound_blob.remove(&request_id) {
                    let _ = self.swarm.behaviour_mut().blob.send_response(ch, data);
                }
            }
            Command::Penalize { peer, reason } => self.penalize(peer, &reason),
            Command::Disconnect { peer, reason } => {
                // Cut as for invalid objects: refused for a backoff that doubles, so that a peer
                // misbehaving in reconciliation is not admitted again at once for another
                // session (each costs this node passes over its whole set).
                warn!(%peer, %reason, "peer misbehaved: cutting it off");
                self.cut_for_conduct(peer, "bad-reconciliation", 0.0);
            }
            Command::Reset { peer, reason } => {
                let Some(state) = self.peers.get(&peer) else {
                    return;
                };
                warn!(%peer, %reason, "resetting the connection to a peer");
                if self.redial.len() < REDIAL_CAPACITY || self.redial.contains_key(&peer) {
                    self.redial.insert(peer, state.addresses.clone());
                }
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::Shutdown => {}
        }
    }

    fn publish(&mut self, topic: gossipsub::IdentTopic, data: Vec<u8>) -> Result<(), NetError> {
        match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(()),
            Err(
                gossipsub::PublishError::NoPeersSubscribedToTopic
                | gossipsub::PublishError::AllQueuesFull(_),
            ) => {
                // Nobody to send it to now: peers get it by reconciliation when they connect.
                debug!("no peer to gossip to: the object will be reconciled");
                Ok(())
            }
            Err(e) => Err(NetError::Publish(e.to_string())),
        }
    }

    /// Gives gossipsub the verdict on a message the node will not judge: *ignore* (not
    /// forwarded, no penalty: the node could not take it now) or *reject* (invalid as it
    /// stands: the sender is penalised).
    fn settle(&mut self, id: &gossipsub::MessageId, source: &PeerId, ignore: bool) {
        let acceptance = if ignore {
            gossipsub::MessageAcceptance::Ignore
        } else {
            gossipsub::MessageAcceptance::Reject
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }

    /// An event of one of the request-response protocols the node answers (reconciliation,
    /// or attachments when `blob`): requests from admitted peers go to the node, answers to
    /// whoever asked.
    fn request_event(&mut self, blob: bool, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        let what = if blob { "blob" } else { "sync" };
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => {
                    if !self.peers.get(&peer).is_some_and(|s| s.admitted) {
                        debug!(%peer, what, "request from a peer that is not admitted: refused");
                        return; // dropping the channel refuses the request
                    }
                    if let Err(why) = self.answering.begin((blob, request_id), peer, blob) {
                        self.busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        debug!(%peer, what, %why, "request refused");
                        return; // dropping the channel refuses the request
                    }
                    let id = self.next_inbound;
                    self.next_inbound += 1;
                    let ev = if blob {
                        self.inbound_blob.insert(id, channel);
                        NetworkEvent::BlobRequest {
                            peer,
                            request_id: id,
                            data: request,
                        }
                    } else {
                        self.inbound_sync.insert(id, channel);
                        NetworkEvent::SyncRequest {
                            peer,
                            request_id: id,
                            data: request,
                        }
                    };
                    if !self.emit(ev) {
                        self.inbound_sync.remove(&id);
                        self.inbound_blob.remove(&id);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let map = if blob {
                        &mut self.outbound_blob
                    } else {
                        &mut self.outbound_sync
                    };
                    if let Some(reply) = map.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::ResponseSent { request_id, .. }
            | request_response::Event::InboundFailure { request_id, .. } => {
                self.answering.end(&(blob, request_id));
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let map = if blob {
                    &mut self.outbound_blob
                } else {
                    &mut self.outbound_sync
                };
                if let Some(reply) = map.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Request {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
        }
    }

    /// Lowers a peer's gossip score as an invalid gossip message does (it served bad data),
    /// and disconnects it when the score falls to the graylist.
    fn penalize(&mut self, peer: PeerId, reason: &str) {
        let gs = &mut self.swarm.behaviour_mut().gossipsub;
        let now = Instant::now();
        if !self.penalties.contains_key(&peer) {
            make_room_for_penalty(&mut self.penalties, now);
        }
        let (score, at) = self.penalties.entry(peer).or_insert((0.0, now));
        // Old offences are forgotten after a quiet day, so that an honest peer's rare bad
        // piece (a disk error) does not add up to a cut over weeks.
        *score = decayed(*score, now.duration_since(*at)) - 40.0;
        *at = now;
        let app = *score;
        gs.set_application_score(&peer, app);
        warn!(%peer, %reason, score = app, "peer served bad data: penalised");
        if app <= -80.0 {
            self.cut_for_conduct(peer, "bad-data", app);
        }
    }

    /// Cuts a peer for what it sent (its score fell to the graylist): disconnected, and refused
    /// as a peer whose certificate failed is, for a backoff that doubles each time it does so
    /// again. Without the refusal it would be back within its redial delay (a second), and its
    /// score decays to neutral within seconds (P4's decay).
    /// `reason` is the code [`NetworkEvent::PeerCut`] carries.
    fn cut_for_conduct(&mut self, peer: PeerId, reason: &'static str, score: f64) {
        let now = Instant::now();
        let already = self
            .refused
            .get(&peer)
            .is_some_and(|r| r.conduct && r.until > now);
        if !already {
            let Refusal {
                warn: warn_now,
                quiet,
                backoff,
                ..
            } = self.note_refusal(peer, false);
            if let Some(r) = self.refused.get_mut(&peer) {
                r.conduct = true;
            }
            if warn_now {
                warn!(%peer, %reason, score, cut_quietly_since_last_warning = quiet, retry_after_secs = backoff.as_secs(), "peer cut for what it sent: disconnecting");
            } else {
                debug!(%peer, %reason, score, "peer cut again for what it sent: disconnecting");
            }
            self.emit(NetworkEvent::PeerCut { peer, reason });
        }
        self.disconnect(peer);
    }

    /// Takes `peer` out of the explicit gossip peers (or gossipsub would dial it again) and
    /// closes every connection to it.
    fn disconnect(&mut self, peer: PeerId) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .remove_explicit_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    fn report(&mut self, message_id: Vec<u8>, source: PeerId, validation: Validation) {
        let acceptance = match validation {
            Validation::Accept => gossipsub::MessageAcceptance::Accept,
            Validation::Reject => gossipsub::MessageAcceptance::Reject,
            Validation::Ignore => gossipsub::MessageAcceptance::Ignore,
        };
        let gs = &mut self.swarm.behaviour_mut().gossipsub;
        gs.report_message_validation_result(
            &gossipsub::MessageId::new(&message_id),
            &source,
            acceptance,
        );
        if validation == Validation::Reject {
            let score = gs.peer_score(&source);
            // Per message: counted by the node (`accord_gossip_messages_total`), logged when the
            // peer is cut.
            debug!(peer = %source, ?score, "peer sent an invalid object");
            if let Some(s) = score.filter(|s| *s < -80.0) {
                self.cut_for_conduct(source, "invalid-objects", s);
            }
        }
    }

    fn admit(&mut self, peer: PeerId, member: Option<String>) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        let newly = !state.admitted;
        state.admitted = true;
        state.deadline = None;
        if self.refused.get(&peer).is_some_and(|r| !r.conduct) {
            self.refused.remove(&peer);
        }
        if member.is_some() {
            state.member = member.clone();
        }
        let addrs = state.addresses.clone();
        let b = self.swarm.behaviour_mut();
        b.gossipsub.set_application_score(&peer, 0.0);
        // With no mesh (gossip_mesh_n = 0), admitted nodes are direct (explicit) gossip peers:
        // every new object is forwarded to all of them.
        if self.direct_peers {
            b.gossipsub.add_explicit_peer(&peer);
        }
        for a in addrs {
            b.kad.add_address(&peer, a);
        }
        if newly {
            info!(%peer, member = ?member, "peer admitted");
            self.emit(NetworkEvent::PeerAdmitted { peer });
        }
    }

    /// Whether `peer` is within the backoff of a refusal (it is not dialled, and is cut if it
    /// connects).
    fn refused_now(&self, peer: &PeerId) -> bool {
        let now = Instant::now();
        self.refused.get(peer).is_some_and(|r| r.until > now)
    }

    /// Records a refusal: the peer is cut at once if it returns within its backoff, and is
    /// warned about at most once a minute. `true` when a warning is due.
    /// `admission`: a refusal at admission (a stranger), which shares the minute's one warning
    /// about new peers; a cut for conduct (a member's node) is warned about on its own.
    fn note_refusal(&mut self, peer: PeerId, admission: bool) -> Refusal {
        let now = Instant::now();
        let r = self.refused_entry(peer, now);
        r.backoff = (r.backoff * 2).clamp(REFUSED_MIN, REFUSED_MAX);
        r.until = now + r.backoff;
        let backoff = r.backoff;
        let due = !r.ever_warned || now.duration_since(r.warned) >= WARN_EVERY;
        let first = !r.ever_warned;
        let quiet = |quiet| Refusal {
            warn: false,
            quiet,
            others: 0,
            backoff,
        };
        if !due {
            r.quiet += 1;
            return quiet(0);
        }
        // A peer never warned about: at most one such warning a minute, whatever the number
        // of peer ids; it counts those it passed over.
        let mut others = 0;
        if first && admission {
            let (last, passed) = &mut self.first_refusals;
            if last.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
                *passed += 1;
                if let Some(r) = self.refused.get_mut(&peer) {
                    r.quiet += 1;
                }
                return quiet(0);
            }
            *last = Some(now);
            others = std::mem::take(passed);
        }
        let Some(r) = self.refused.get_mut(&peer) else {
            return quiet(0);
        };
        r.warned = now;
        r.ever_warned = true;
        Refusal {
            warn: true,
            quiet: std::mem::take(&mut r.quiet),
            others,
            backoff,
        }
    }

    /// Holds `peer` off for [`REFUSED_MIN`] without a refusal's doubling backoff: long enough
    /// to cut its other connection, short enough that an honest peer displaced from a crowd
    /// comes back at once.
    fn hold_off(&mut self, peer: PeerId) {
        let now = Instant::now();
        let r = self.refused_entry(peer, now);
        r.until = r.until.max(now + REFUSED_MIN);
    }

    /// `peer`'s refusal entry, made (not yet refusing) if it has none; at [`REFUSED_CAPACITY`]
    /// the entry whose refusal ends first makes room.
    fn refused_entry(&mut self, peer: PeerId, now: Instant) -> &mut Refused {
        if self.refused.len() >= REFUSED_CAPACITY
            && !self.refused.contains_key(&peer)
            && let Some(oldest) = self
                .refused
                .iter()
                .min_by_key(|(_, r)| r.until)
                .map(|(p, _)| *p)
        {
            self.refused.remove(&oldest);
        }
        self.refused.entry(peer).or_insert(Refused {
            until: now,
            backoff: REFUSED_MIN / 2,
            // Not warned yet (`ever_warned`): an instant a minute back could come before the
            // monotonic clock's start on a machine up for less than a minute.
            warned: now,
            quiet: 0,
            ever_warned: false,
            conduct: false,
        })
    }

    fn refuse(&mut self, peer: PeerId, reason: String) {
        match self.admission {
            Admission::Members => {
                let Refusal {
                    warn: warn_now,
                    quiet,
                    others,
                    backoff,
                } = self.note_refusal(peer, true);
                if warn_now {
                    warn!(%peer, %reason, refused_quietly_since_last_warning = quiet, refusals_of_new_peers_quietly = others, retry_after_secs = backoff.as_secs(), "peer refused: disconnecting");
                } else {
                    debug!(%peer, %reason, "peer refused again: disconnecting");
                }
                if let Some(s) = self.peers.get_mut(&peer) {
                    s.admitted = false;
                }
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .set_application_score(&peer, UNADMITTED_SCORE);
                self.disconnect(peer);
                self.emit(NetworkEvent::NonMemberDisconnected { peer, reason });
            }
            Admission::Open => {
                debug!(%peer, %reason, "certificate not accepted (open admission: staying connected)")
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| s.deadline.is_some_and(|d| d <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            if let Some(s) = self.peers.get_mut(&peer) {
                s.deadline = None;
            }
            self.refuse(
                peer,
                format!(
                    "no valid node certificate within {}s",
                    self.admission_timeout.as_secs()
                ),
            );
        }
        self.refused
            .retain(|_, r| now.saturating_duration_since(r.until) < REFUSED_MAX);
        for i in 0..self.bootstrap.len() {
            let b = &self.bootstrap[i];
            if b.next_attempt > now || self.peers.contains_key(&b.peer) || self.refused_now(&b.peer)
            {
                continue;
            }
            let (peer, addr) = (b.peer, b.addr.clone());
            debug!(%peer, %addr, "dialling bootstrap peer");
            if let Err(e) = self.swarm.dial(addr.clone()) {
                debug!(%addr, error = %e, "bootstrap dial failed");
            }
            let b = &mut self.bootstrap[i];
            b.next_attempt = now + b.backoff;
            b.backoff = (b.backoff * 2).min(REDIAL_MAX);
        }
    }

    fn swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        if let Some(m) = &self.metrics {
            use libp2p::metrics::Recorder;
            m.record(&ev);
            if let SwarmEvent::Behaviour(b) = &ev {
                match b {
                    BehaviourEvent::Gossipsub(e) => m.record(e),
                    BehaviourEvent::Identify(e) => m.record(e),
                    BehaviourEvent::Kad(e) => m.record(e),
                    BehaviourEvent::Ping(e) => m.record(e),
                    _ => {}
                }
            }
        }
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.emit(NetworkEvent::Listening { addr: address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let addr = endpoint.get_remote_address().clone();
                let members = self.admission == Admission::Members;
                let now = Instant::now();
                if let Some(r) = self.refused.get(&peer_id)
                    && r.until > now
                    && (members || r.conduct)
                {
                    // Refused a moment ago: cut without judging its certificate again — also
                    // when this connection came while the one it was refused on was still
                    // closing (it would otherwise count as a second connection of a peer
                    // already judged, and stay).
                    let wait = r.until - now;
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    if r.conduct {
                        debug!(peer = %peer_id, wait_secs = wait.as_secs(), "peer cut earlier for what it sent came back: cut again");
                        self.emit(NetworkEvent::PeerCut {
                            peer: peer_id,
                            reason: "came-back",
                        });
                    } else {
                        self.emit(NetworkEvent::NonMemberDisconnected {
                            peer: peer_id,
                            reason: format!(
                                "refused earlier; may try again in {} s",
                                wait.as_secs().max(1)
                            ),
                        });
                    }
                    return;
                }
                if num_established.get() > 1 {
                    match self.peers.get_mut(&peer_id) {
                        Some(s)
                            if s.addresses.len() < MAX_PEER_ADDRESSES
                                && !s.addresses.contains(&addr) =>
                        {
                            s.addresses.push(addr);
                        }
                        Some(_) => {}
                        // A peer turned away whose other connection was still being set up:
                        // it has no state here, and is not left connected without one.
                        None if self.admission == Admission::Members => {
                            let _ = self.swarm.disconnect_peer_id(peer_id);
                        }
                        None => {}
                    }
                    return;
                }
                if members {
                    // A crowd of strangers waiting for admission: the one waiting longest
                    // without having presented a certificate goes (and waits a while before it
                    // may come back); one whose certificate is being judged stays, and when all
                    // are, the newcomer goes instead.
                    let awaiting = self.peers.values().filter(|s| s.deadline.is_some()).count();
                    if awaiting >= MAX_AWAITING_ADMISSION {
                        match push_out_candidate(&self.peers) {
                            Some(oldest) => {
                                debug!(peer = %oldest, "too many peers awaiting admission: dropping the one waiting longest without a certificate");
                                if let Some(s) = self.peers.get_mut(&oldest) {
                                    s.deadline = None; // no longer waiting: on its way out
                                }
                                self.hold_off(oldest);
                                let _ = self.swarm.disconnect_peer_id(oldest);
                                self.emit(NetworkEvent::NonMemberDisconnected {
                                    peer: oldest,
                                    reason: format!(
                                        "{MAX_AWAITING_ADMISSION} peers were already awaiting admission; it waited longest without presenting a certificate"
                                    ),
                                });
                            }
                            None => {
                                debug!(peer = %peer_id, "too many peers awaiting admission, all being judged: dropping the newcomer");
                                // Held off too: a second connection of it, still being set
                                // up, is then cut as it arrives.
                                self.hold_off(peer_id);
                                let _ = self.swarm.disconnect_peer_id(peer_id);
                                self.emit(NetworkEvent::NonMemberDisconnected {
                                    peer: peer_id,
                                    reason: format!(
                                        "{MAX_AWAITING_ADMISSION} peers were already awaiting admission, each with a certificate being judged"
                                    ),
                                });
                                return;
                            }
                        }
                    }
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_application_score(&peer_id, UNADMITTED_SCORE);
                }
                self.peers.insert(
                    peer_id,
                    PeerState {
                        addresses: vec![addr.clone()],
                        since_ms: now_ms(),
                        admitted: !members,
                        member: None,
                        deadline: members.then(|| Instant::now() + self.admission_timeout),
                        presented: 0,
                    },
                );
                for b in &mut self.bootstrap {
                    if b.peer == peer_id {
                        b.backoff = REDIAL_MIN;
                    }
                }
                let cert = self.node_cert.clone();
                self.swarm.behaviour_mut().cert.send_request(&peer_id, cert);
                // Anyone who can reach the port connects: the log says "peer admitted" for the
                // peers that are members (and refusals, a minute at a time); open admission
                // takes every peer that connects.
                if members {
                    debug!(peer = %peer_id, %addr, "peer connected");
                } else {
                    info!(peer = %peer_id, %addr, "peer connected");
                }
                self.emit(NetworkEvent::PeerConnected {
                    peer: peer_id,
                    addr,
                });
                if !members {
                    if self.direct_peers {
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .add_explicit_peer(&peer_id);
                    }
                    self.emit(NetworkEvent::PeerAdmitted { peer: peer_id });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                // Open admission takes every peer (none is marked admitted).
                let admitted = self.peers.remove(&peer_id).is_some_and(|s| s.admitted)
                    || matches!(self.admission, Admission::Open);
                // Otherwise gossipsub would keep redialling it.
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .remove_explicit_peer(&peer_id);
                let now = Instant::now();
                for b in &mut self.bootstrap {
                    if b.peer == peer_id {
                        b.next_attempt = now + b.backoff;
                    }
                }
                let cause = cause.map(|c| c.to_string());
                if admitted {
                    info!(peer = %peer_id, ?cause, "peer disconnected");
                } else {
                    debug!(peer = %peer_id, ?cause, "peer disconnected before it was admitted");
                }
                self.emit(NetworkEvent::PeerDisconnected { peer: peer_id });
                // A reset connection is dialled again at once (a bootstrap peer by the
                // bootstrap schedule above; a peer that dialled us and whose listen addresses
                // are unknown dials again itself).
                if let Some(addrs) = self.redial.remove(&peer_id)
                    && !addrs.is_empty()
                    && !self.bootstrap.iter().any(|b| b.peer == peer_id)
                {
                    let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer_id)
                        .addresses(addrs)
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        debug!(peer = %peer_id, error = %e, "redial after a reset failed");
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                // A bootstrap address whose node answers with another key: that node's key was
                // rotated, and this node will never reach it there until its operator updates
                // `network.bootstrap` (one line per redial: a few in the first minute, then one
                // per REDIAL_MAX).
                if let libp2p::swarm::DialError::WrongPeerId { obtained, .. } = &error
                    && self.bootstrap.iter().any(|b| Some(b.peer) == peer_id)
                {
                    warn!(expected = ?peer_id, answered_as = %obtained, "a bootstrap address answered as another peer: its node key was probably rotated; put its new peer id in network.bootstrap");
                } else {
                    debug!(peer = ?peer_id, %error, "outgoing connection failed");
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(%error, "incoming connection failed")
            }
            SwarmEvent::Behaviour(b) => self.behaviour_event(b),
            _ => {}
        }
    }

    fn behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                if !self
                    .peers
                    .get(&propagation_source)
                    .is_some_and(|s| s.admitted)
                {
                    debug!(peer = %propagation_source, "gossip from a peer that is not admitted: ignored");
                    self.settle(&message_id, &propagation_source, true);
                    return;
                }
                let id = message_id.0.clone();
                if message.topic == self.health.hash() {
                    // Heartbeats go on the control queue: they are small, one per node per
                    // period, and must not wait behind a flood of objects. An oversized one is
                    // invalid; one the node cannot take now is only not forwarded.
                    if message.data.len() > MAX_HEARTBEAT_MESSAGE {
                        self.settle(&message_id, &propagation_source, false);
                    } else if !self.emit(NetworkEvent::Heartbeat {
                        message_id: id,
                        source: propagation_source,
                        data: message.data,
                    }) {
                        self.settle(&message_id, &propagation_source, true);
                    }
                    return;
                }
                if message.topic != self.topic.hash() {
                    // Peers do not subscribe us to other topics; nothing else is expected.
                    self.settle(&message_id, &propagation_source, false);
                    return;
                }
                let delivered = self.emit(NetworkEvent::Gossip {
                    message_id: id,
                    source: propagation_source,
                    data: message.data,
                });
                if !delivered {
                    self.settle(&message_id, &propagation_source, true);
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. }) => {
                debug!(peer = %peer_id, "peer subscribed to the federation topic");
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            }) => {
                let n = (failed_messages.priority + failed_messages.non_priority) as u64;
                if self.unsent.record(n) {
                    warn!(
                        peer = %peer_id,
                        messages = n,
                        unsent = self.unsent.count(),
                        "a peer reads gossip more slowly than it comes: messages not sent to it, which it recovers by reconciliation (at most one such line a minute)"
                    );
                }
            }
            BehaviourEvent::Gossipsub(_) => {}
            BehaviourEvent::Cert(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .cert
                            .send_response(channel, Vec::new());
                        let judged = self.peers.get_mut(&peer).is_some_and(|s| {
                            s.presented = s.presented.saturating_add(1);
                            s.presented <= MAX_PRESENTATIONS
                        });
                        if judged {
                            self.emit(NetworkEvent::CertificatePresented {
                                peer,
                                cert: request,
                            });
                        } else {
                            debug!(%peer, "certificate presented again on the same connections: dropped");
                        }
                    }
                    request_response::Message::Response { .. } => {}
                }
            }
            BehaviourEvent::Cert(request_response::Event::OutboundFailure {
                peer, error, ..
            }) => {
                debug!(%peer, %error, "certificate presentation failed");
            }
            BehaviourEvent::Cert(_) => {}
            BehaviourEvent::Sync(e) => self.request_event(false, e),
            BehaviourEvent::Blob(e) => self.request_event(true, e),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if self.peers.get(&peer_id).is_some_and(|s| s.admitted) {
                    for a in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, a);
                    }
                }
            }
            BehaviourEvent::Identify(_) => {}
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) => {
                if !self.peers.contains_key(&peer)
                    && self.peers.len() < TARGET_PEERS
                    && peer != *self.swarm.local_peer_id()
                    && !self.refused_now(&peer)
                {
                    let addr = addresses.first().clone();
                    debug!(%peer, %addr, "dialling a federation node found through Kademlia");
                    let _ = self.swarm.dial(addr.with_p2p(peer).unwrap_or_else(|a| a));
                }
            }
            BehaviourEvent::Kad(_) => {}
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                for (peer, addr) in list {
                    if !self.peers.contains_key(&peer)
                        && self.peers.len() < TARGET_PEERS
                        && !self.refused_now(&peer)
                    {
                        let _ = self.swarm.dial(addr.with_p2p(peer).unwrap_or_else(|a| a));
                    }
                }
            }
            BehaviourEvent::Mdns(_) => {}
            BehaviourEvent::Ping(_) | BehaviourEvent::Limits(_) => {}
        }
    }
}

/// Keeps the constant referenced for documentation of the channel sizes.
#[allow(dead_code)]
const _CHANNELS: (usize, usize, usize) = (
    COMMAND_CHANNEL_CAPACITY,
    EVENT_CHANNEL_CAPACITY,
    GOSSIP_CHANNEL_CAPACITY,
);

/// Why a TCP listen address cannot be had, tried with a plain socket first: libp2p binds its
/// listeners with `SO_REUSEPORT`, so a second node given the same `network.listen` port
/// started without a word and the kernel split the peers' connections between the two (a
/// member reached the wrong node, and was told its node key had been rotated). A plain socket
/// cannot share a port another process listens on, so a taken port is named at start.
fn port_taken(addr: &Multiaddr) -> Option<String> {
    let mut parts = addr.iter();
    let ip: std::net::IpAddr = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    let Protocol::Tcp(port) = parts.next()? else {
        return None;
    };
    if port == 0 {
        return None;
    }
    // As libp2p binds: address reuse (a port whose last connections are closing is free), and
    // an IPv6 socket for IPv6 only (`[::]` does not take the IPv4 port too).
    let at = std::net::SocketAddr::new(ip, port);
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(at),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .ok()?;
    if ip.is_ipv6() {
        socket.set_only_v6(true).ok()?;
    }
    socket.set_reuse_address(true).ok()?;
    match socket.bind(&at.into()) {
        Ok(()) => None,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Some(format!(
            "port {port} is in use by another process (another node on this machine?): give this node another port"
        )),
        Err(e) => Some(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two bad pieces within a day cut a peer (−80); the same two a day apart do not.
    #[test]
    fn bad_data_penalties_are_forgotten_after_a_quiet_day() {
        assert_eq!(
            decayed(-40.0, Duration::from_secs(3_600 * 23)) - 40.0,
            -80.0
        );
        assert_eq!(decayed(-40.0, PENALTY_FORGOTTEN_AFTER) - 40.0, -40.0);
    }

    /// The penalty map stays bounded: at its capacity a forgotten penalty goes first, else the
    /// one left alone longest, and a recent offender is kept.
    #[test]
    fn penalties_are_bounded_and_keep_the_recent_offenders() {
        let t0 = Instant::now();
        let later = t0 + PENALTY_FORGOTTEN_AFTER + Duration::from_secs(60);
        let mut penalties = HashMap::new();
        let stale = PeerId::random();
        penalties.insert(stale, (-40.0, t0));
        let mut recent = Vec::new();
        for i in 1..PENALTIES_CAPACITY {
            let p = PeerId::random();
            penalties.insert(p, (-40.0, later + Duration::from_millis(i as u64)));
            recent.push(p);
        }
        make_room_for_penalty(&mut penalties, later + Duration::from_secs(1));
        assert!(
            !penalties.contains_key(&stale),
            "the forgotten penalty goes first"
        );
        assert_eq!(penalties.len(), PENALTIES_CAPACITY - 1);
        // Full of live penalties: the one left alone longest goes, and only it.
        penalties.insert(PeerId::random(), (-40.0, later + Duration::from_secs(2)));
        make_room_for_penalty(&mut penalties, later + Duration::from_secs(3));
        assert_eq!(penalties.len(), PENALTIES_CAPACITY - 1);
        assert!(!penalties.contains_key(&recent[0]));
        assert!(recent[1..].iter().all(|p| penalties.contains_key(p)));
        // Below the capacity nothing goes.
        make_room_for_penalty(&mut penalties, later + Duration::from_secs(4));
        assert_eq!(penalties.len(), PENALTIES_CAPACITY - 1);
    }

    /// Strangers crowding admission push out the one waiting longest that has not presented a
    /// certificate; one being judged is never chosen, and with none to choose, none is.
    #[test]
    fn a_peer_whose_certificate_is_being_judged_is_not_pushed_out() {
        let t0 = Instant::now();
        let waiting = |secs: u64, presented: u8| PeerState {
            addresses: Vec::new(),
            since_ms: 0,
            admitted: false,
            member: None,
            deadline: Some(t0 + Duration::from_secs(secs)),
            presented,
        };
        let (member, stranger, newer) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut peers = HashMap::from([
            (member, waiting(1, 1)),
            (stranger, waiting(2, 0)),
            (newer, waiting(3, 0)),
        ]);
        assert_eq!(push_out_candidate(&peers), Some(stranger));
        peers.remove(&stranger);
        peers.remove(&newer);
        assert_eq!(push_out_candidate(&peers), None);
    }

    /// A peer that asks faster than it reads is refused beyond four answers in flight per
    /// protocol, others are not; all peers together are bounded per protocol; an answer
    /// written (or failed) makes room again.
    #[test]
    fn answers_in_flight_are_bounded_per_peer_and_in_all() {
        let mut a = AnswersInFlight::new();
        let (hostile, honest) = (PeerId::random(), PeerId::random());
        for r in 0..MAX_ANSWERS_IN_FLIGHT_PER_PEER as u32 {
            assert_eq!(a.begin(r, hostile, false), Ok(()));
        }
        assert_eq!(
            a.begin(100, hostile, false),
            Err("4 answers to this peer in flight".into())
        );
        assert_eq!(a.begin(101, hostile, true), Ok(()), "the other protocol");
        assert_eq!(a.begin(102, honest, false), Ok(()));
        a.end(&0);
        a.end(&0); // ended twice: counted once
        assert_eq!(a.begin(103, hostile, false), Ok(()));
        assert_eq!(
            a.begin(104, hostile, false),
            Err("4 answers to this peer in flight".into())
        );
        // Across peers, at most MAX_SYNC_ANSWERS_IN_FLIGHT.
        let mut n = 200;
        while a.totals[0] < MAX_SYNC_ANSWERS_IN_FLIGHT {
            assert_eq!(a.begin(n, PeerId::random(), false), Ok(()));
            n += 1;
        }
        assert_eq!(
            a.begin(n, PeerId::random(), false),
            Err(format!("{MAX_SYNC_ANSWERS_IN_FLIGHT} answers in flight"))
        );
        a.end(&102);
        assert_eq!(a.begin(n, PeerId::random(), false), Ok(()));
        assert!(
            !a.per_peer.contains_key(&(honest, false)),
            "emptied entries go"
        );
        // Each protocol numbers its requests from 1: the same number on both is two requests,
        // each ended on its own, and nothing is left counted.
        let mut a = AnswersInFlight::new();
        let (x, y) = (PeerId::random(), PeerId::random());
        assert_eq!(a.begin((false, 1u64), x, false), Ok(()));
        assert_eq!(a.begin((true, 1u64), y, true), Ok(()));
        a.end(&(true, 1));
        a.end(&(false, 1));
        assert_eq!(a.totals, [0, 0]);
        assert!(a.per_peer.is_empty() && a.requests.is_empty());
    }
}
