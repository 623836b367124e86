//! `accord-net` owns Accord's libp2p networking and nothing else: it never touches storage.
//!
//! One task ([`Network::run`]) owns the [`libp2p::Swarm`]: TCP + Noise + Yamux, identify, ping,
//! gossipsub (one topic per federation, unsigned messages since objects are signed, message id
//! = object id, every message validated by the node before it is forwarded to the mesh of
//! [`NetConfig::gossip_mesh_n`] peers; a second topic carries the nodes' signed heartbeats),
//! Kademlia for
//! finding other federation nodes, optional mDNS, a certificate-presentation protocol for
//! admission, and a request-response slot for reconciliation. The rest of the node talks to it
//! through a cloneable [`NetworkHandle`] (bounded command channel, oneshot replies) and
//! receives [`NetworkEvent`]s on two bounded queues ([`NetworkEvents`]): control events, and
//! gossip (bounded in messages and bytes). The swarm never blocks on them: gossip that does
//! not fit is counted with its sender in [`MissedGossip`]. For benchmarks, [`sim`] puts
//! simulated links (delay, loss, partitions) under the same stack.
//!
//! Admission: in [`Admission::Members`] mode every new peer starts with a gossipsub application
//! score far below the publish and graylist thresholds, so it is sent nothing and heard
//! nothing, and is served no request, until the node has checked the node certificate it
//! presents and calls [`NetworkHandle::admit`]; a peer that presents none or a bad one within
//! [`ADMISSION_TIMEOUT`] is disconnected.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod behaviour;
mod codec;
pub mod sim;
mod swarm;

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

pub use behaviour::{
    blob_protocol, cert_protocol, gossip_topic, health_topic, kad_protocol, sync_protocol,
};
pub use libp2p::identity::Keypair;
pub use libp2p::metrics::Registry;
pub use libp2p::multiaddr;
pub use libp2p::{Multiaddr as Addr, PeerId as Peer};
pub use swarm::{
    MAX_ANSWERS_IN_FLIGHT_PER_PEER, MAX_AWAITING_ADMISSION, MAX_BLOB_ANSWERS_IN_FLIGHT,
    MAX_SYNC_ANSWERS_IN_FLIGHT, Network,
};

/// Default gossipsub mesh degree ([`NetConfig::gossip_mesh_n`]).
pub const DEFAULT_GOSSIP_MESH_N: usize = 6;

/// Capacity of the command channel into the swarm task.
pub const COMMAND_CHANNEL_CAPACITY: usize = 256;
/// The most objects one publish command carries (see [`NetworkHandle::publish_many`]).
pub const PUBLISH_CHUNK: usize = 64;
/// Capacity of the control event channel out of the swarm task (everything but gossip).
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;
/// Default capacity of the gossip event channel out of the swarm task, in messages
/// ([`NetConfig::gossip_queue`])... With records of ~2 KB the byte bound below is met first:
/// a node that falls behind by a burst of 20,000 records holds them all rather than leave them
/// to reconciliation (docs/BENCHMARKS.md, "Memory settings"; 8,192 before).
pub const GOSSIP_CHANNEL_CAPACITY: usize = 32_768;
/// ...and in bytes of message data ([`NetConfig::gossip_queue_bytes`]): a flood of large
/// objects cannot hold more than this.
pub const GOSSIP_QUEUE_BYTES: usize = 64 << 20;
/// How long a peer has to present a valid node certificate in members mode.
pub const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest reconciliation request and response frames.
pub const MAX_SYNC_REQUEST: usize = 256 * 1024;
pub const MAX_SYNC_RESPONSE: usize = 8 * 1024 * 1024;

/// The largest reconciliation response this node reads: [`MAX_SYNC_RESPONSE`], or one object
/// of the charter's `max_object_bytes` and its framing when a charter allows larger objects
/// (a response always carries at least one object whole).
pub fn sync_response_limit(max_object_bytes: usize) -> usize {
    MAX_SYNC_RESPONSE.max(max_object_bytes.saturating_add(64 * 1024))
}
/// Largest node certificate a peer may present (§9.2): a certificate is a few hundred bytes;
/// a stranger's presentation of a large envelope of many signatures would cost the node more
/// to decode than the stranger's connection cost it.
pub const MAX_CERT_PRESENTATION: usize = 64 * 1024;
/// Largest attachments request and response frames (a response holds one chunk).
pub const MAX_BLOB_REQUEST: usize = 1024;
pub const MAX_BLOB_RESPONSE: usize = accord_core::attachment::CHUNK_SIZE + 1024;

/// Who may stay connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Only peers with a valid node certificate of a current member.
    Members,
    /// Anyone (development).
    Open,
}

/// Network configuration, built by the node from its config file.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub keypair: Keypair,
    pub federation: accord_core::ObjectId,
    pub listen: Vec<Multiaddr>,
    /// Bootstrap peers: multiaddrs ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    pub admission: Admission,
    pub mdns: bool,
    /// This node's certificate (signed object bytes), presented to every peer.
    pub node_cert: Option<Vec<u8>>,
    /// Largest object (gossip message payload).
    pub max_object_bytes: usize,
    /// How long a peer has to present a valid certificate (members mode); see
    /// [`ADMISSION_TIMEOUT`] for the default.
    pub admission_timeout: Duration,
    /// Gossipsub's mesh degree D: each object is forwarded to D peers (the publisher sends it
    /// to every admitted peer). 0 makes every admitted peer a direct peer that is sent every
    /// object, as before 0.2 (docs/BENCHMARKS.md, "Federation scale").
    pub gossip_mesh_n: usize,
    /// A simulated link instead of plain TCP (benchmarks only; see [`sim`]).
    pub sim: Option<sim::SimLink>,
    /// Gossip messages waiting to be judged, at most ([`GOSSIP_CHANNEL_CAPACITY`] by default).
    pub gossip_queue: usize,
    /// Bytes of gossip message data waiting to be judged, at most ([`GOSSIP_QUEUE_BYTES`] by
    /// default). A message that would pass either bound is counted in [`MissedGossip`] and
    /// left to reconciliation.
    pub gossip_queue_bytes: usize,
}

/// The verdict of the node on a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Valid and new: forward it.
    Accept,
    /// Invalid: do not forward; penalise the sender.
    Reject,
    /// Duplicate or pending: do not forward, no penalty.
    Ignore,
}

/// What the network reports to the node.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetworkEvent {
    Listening {
        addr: Multiaddr,
    },
    PeerConnected {
        peer: PeerId,
        addr: Multiaddr,
    },
    PeerDisconnected {
        peer: PeerId,
    },
    /// A peer presented its node certificate (possibly empty): the node validates it and
    /// answers with [`NetworkHandle::admit`] or [`NetworkHandle::refuse`].
    CertificatePresented {
        peer: PeerId,
        cert: Vec<u8>,
    },
    /// A gossip message to validate; answer with [`NetworkHandle::report`].
    Gossip {
        message_id: Vec<u8>,
        source: PeerId,
        data: Vec<u8>,
    },
    /// A heartbeat (docs/PROTOCOL.md §11) to validate; answer with [`NetworkHandle::report`].
    /// Carried on the control queue.
    Heartbeat {
        message_id: Vec<u8>,
        source: PeerId,
        data: Vec<u8>,
    },
    /// An admitted peer asks for reconciliation; answer with [`NetworkHandle::respond`].
    SyncRequest {
        peer: PeerId,
        request_id: u64,
        data: Vec<u8>,
    },
    /// An admitted peer asks for part of an attachment (docs/PROTOCOL.md §12); answer with
    /// [`NetworkHandle::respond`].
    BlobRequest {
        peer: PeerId,
        request_id: u64,
        data: Vec<u8>,
    },
    /// A peer was disconnected because it was not admitted.
    NonMemberDisconnected {
        peer: PeerId,
        reason: String,
    },
    /// A peer was admitted (members mode: its certificate was accepted; open mode: on
    /// connection). Reconciliation may start.
    PeerAdmitted {
        peer: PeerId,
    },
    /// A peer was cut for what it sent, and is refused for a backoff (docs/PROTOCOL.md §9.1):
    /// `reason` is `invalid-objects` (its gossip score fell to the graylist), `bad-data` (it
    /// served reconciliation or attachment data that did not match), or `came-back` (it
    /// connected again within that backoff and was cut at once).
    PeerCut {
        peer: PeerId,
        reason: &'static str,
    },
}

impl NetworkEvent {
    /// The kind of event, for logs (never its payload).
    pub fn kind(&self) -> &'static str {
        match self {
            NetworkEvent::Listening { .. } => "listening",
            NetworkEvent::PeerConnected { .. } => "peer-connected",
            NetworkEvent::PeerDisconnected { .. } => "peer-disconnected",
            NetworkEvent::CertificatePresented { .. } => "certificate",
            NetworkEvent::Gossip { .. } => "gossip",
            NetworkEvent::Heartbeat { .. } => "heartbeat",
            NetworkEvent::SyncRequest { .. } => "sync-request",
            NetworkEvent::BlobRequest { .. } => "blob-request",
            NetworkEvent::NonMemberDisconnected { .. } => "non-member-disconnected",
            NetworkEvent::PeerAdmitted { .. } => "peer-admitted",
            NetworkEvent::PeerCut { .. } => "peer-cut",
        }
    }
}

/// A connected peer, as the network sees it.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub peer: PeerId,
    pub addresses: Vec<Multiaddr>,
    /// Unix milliseconds of the first current connection.
    pub connected_since_ms: u64,
    /// The member it was admitted for (open mode: `None` until a certificate is shown).
    pub member: Option<String>,
    pub admitted: bool,
    pub gossip_score: Option<f64>,
    /// Subscribed to the federation's heartbeat topic (it speaks protocol 1.2 or later and
    /// sends heartbeats, docs/PROTOCOL.md §11).
    pub heartbeats: bool,
}

/// Network errors.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetError {
    #[error("the network task has stopped")]
    Stopped,
    #[error("invalid listen address {0}: {1}")]
    Listen(Multiaddr, String),
    #[error("config field network.listen: cannot listen on {0}: {1}")]
    CannotListen(Multiaddr, String),
    #[error("bootstrap address {0} has no /p2p/<peer id> suffix")]
    BootstrapWithoutPeerId(Multiaddr),
    #[error("transport: {0}")]
    Transport(String),
    #[error("gossip publish: {0}")]
    Publish(String),
    #[error("request to {peer} failed: {reason}")]
    Request { peer: PeerId, reason: String },
}

pub(crate) enum Command {
    /// Objects to publish on the federation topic, at most [`PUBLISH_CHUNK`]; one result each.
    Publish {
        data: Vec<Vec<u8>>,
        reply: oneshot::Sender<Vec<Result<(), NetError>>>,
    },
    PublishHeartbeat {
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Report {
        message_id: Vec<u8>,
        source: PeerId,
        validation: Validation,
    },
    Admit {
        peer: PeerId,
        member: Option<String>,
    },
    Refuse {
        peer: PeerId,
        reason: String,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Dial {
        addr: Multiaddr,
    },
    SyncRequest {
        peer: PeerId,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
        /// On the attachments protocol instead of reconciliation.
        blob: bool,
    },
    Penalize {
        peer: PeerId,
        reason: String,
    },
    Respond {
        request_id: u64,
        data: Vec<u8>,
    },
    Disconnect {
        peer: PeerId,
        reason: String,
    },
    Reset {
        peer: PeerId,
        reason: String,
    },
    Shutdown,
}

/// The events of the swarm task, on two queues so that a gossip flood can never crowd out the
/// control events (certificates, admissions, reconciliation requests), which come first.
#[derive(Debug)]
pub struct NetworkEvents {
    pub(crate) control: mpsc::Receiver<NetworkEvent>,
    pub(crate) gossip: GossipEvents,
}

impl NetworkEvents {
    /// The next event, control events first; `None` once the swarm task is gone.
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        tokio::select! {
            biased;
            Some(e) = self.control.recv() => Some(e),
            Some(e) = self.gossip.recv() => Some(e),
            else => None,
        }
    }

    /// Gossip messages waiting to be taken.
    pub fn gossip_backlog(&self) -> usize {
        self.gossip.backlog()
    }

    /// The two queues apart, for a consumer that takes gossip only when it has room for it
    /// while always taking control events.
    pub fn split(self) -> (mpsc::Receiver<NetworkEvent>, GossipEvents) {
        (self.control, self.gossip)
    }
}

/// The gossip queue of [`NetworkEvents`], taken apart by [`NetworkEvents::split`].
#[derive(Debug)]
pub struct GossipEvents {
    pub(crate) rx: mpsc::Receiver<NetworkEvent>,
    /// Bytes of message data in the queue, shared with the swarm task that fills it.
    pub(crate) bytes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl GossipEvents {
    /// The next gossip message; `None` once the swarm task is gone.
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        let ev = self.rx.recv().await?;
        if let NetworkEvent::Gossip { data, .. } = &ev {
            self.bytes
                .fetch_sub(data.len(), std::sync::atomic::Ordering::Relaxed);
        }
        Some(ev)
    }

    /// The next gossip message if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<NetworkEvent> {
        let ev = self.rx.try_recv().ok()?;
        if let NetworkEvent::Gossip { data, .. } = &ev {
            self.bytes
                .fetch_sub(data.len(), std::sync::atomic::Ordering::Relaxed);
        }
        Some(ev)
    }

    /// Gossip messages waiting to be taken.
    pub fn backlog(&self) -> usize {
        self.rx.len()
    }

    /// Bytes of message data waiting to be taken.
    pub fn backlog_bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A cloneable handle to the swarm task.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    tx: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    missed: std::sync::Arc<MissedGossip>,
    unsent: std::sync::Arc<UnsentGossip>,
    busy: std::sync::Arc<std::sync::atomic::AtomicU64>,
    events_dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Gossip messages the swarm task could not hand to the node because the node's event queue
/// was full. The swarm task never blocks, so such a message is not validated, not forwarded
/// (reported as *ignore*) and not lost either: it is counted here with the peer that sent it,
/// and the node reconciles with that peer at once ([`MissedGossip::notified`]).
#[derive(Debug, Default)]
pub struct MissedGossip {
    count: std::sync::atomic::AtomicU64,
    peers: std::sync::Mutex<std::collections::HashSet<PeerId>>,
    notify: tokio::sync::Notify,
    warned: WarnEvery,
}

/// At most one warning a minute for a thing that can happen thousands of times a second.
#[derive(Debug, Default)]
struct WarnEvery(std::sync::Mutex<Option<std::time::Instant>>);

impl WarnEvery {
    /// Whether a warning is due now (none in the last minute); if so, the minute starts again.
    fn due(&self) -> bool {
        let Ok(mut w) = self.0.lock() else {
            return false;
        };
        let due = w.is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if due {
            *w = Some(std::time::Instant::now());
        }
        due
    }
}

/// Gossip messages this node could not send to a peer that reads more slowly than they come:
/// gossipsub's queue of messages for that peer was full (5,000 by default), so they were not
/// sent to it, and gossipsub reports the peer slow. The swarm task counts them here and warns
/// (at most once a minute). The peer still ends with every object: through gossipsub's repair
/// (IHAVE/IWANT) while the messages are in the sender's gossip cache, else by reconciliation
/// (its periodic sessions, or a heartbeat that shows it lacks something, docs/PROTOCOL.md §11).
#[derive(Debug, Default)]
pub struct UnsentGossip {
    count: std::sync::atomic::AtomicU64,
    warned: WarnEvery,
}

impl UnsentGossip {
    /// Messages not sent to slow peers since the node started.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records `n` messages not sent to a slow peer; `true` when a warning is due.
    pub(crate) fn record(&self, n: u64) -> bool {
        self.count
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        n > 0 && self.warned.due()
    }
}

impl MissedGossip {
    /// Messages not handed over since the node started.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The peers whose messages were not handed over since the last call.
    pub fn take_peers(&self) -> Vec<PeerId> {
        self.peers
            .lock()
            .map(|mut p| p.drain().collect())
            .unwrap_or_default()
    }

    /// Completes when a message was missed since the last [`Self::take_peers`].
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// Records one message of `peer` that was not handed over; `true` when a warning is due.
    pub(crate) fn record(&self, peer: PeerId) -> bool {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut p) = self.peers.lock() {
            p.insert(peer);
        }
        self.notify.notify_one();
        self.warned.due()
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Publish { .. } => "Publish",
            Command::PublishHeartbeat { .. } => "PublishHeartbeat",
            Command::Report { .. } => "Report",
            Command::Admit { .. } => "Admit",
            Command::Refuse { .. } => "Refuse",
            Command::Peers { .. } => "Peers",
            Command::ListenAddrs { .. } => "ListenAddrs",
            Command::Dial { .. } => "Dial",
            Command::SyncRequest { .. } => "SyncRequest",
            Command::Respond { .. } => "Respond",
            Command::Disconnect { .. } => "Disconnect",
            Command::Reset { .. } => "Reset",
            Command::Penalize { .. } => "Penalize",
            Command::Shutdown => "Shutdown",
        })
    }
}

impl NetworkHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Gossip messages not handed over to the node (see [`MissedGossip`]).
    pub fn missed_gossip(&self) -> &std::sync::Arc<MissedGossip> {
        &self.missed
    }

    /// Gossip messages not sent to slow peers (see [`UnsentGossip`]).
    pub fn unsent_gossip(&self) -> &std::sync::Arc<UnsentGossip> {
        &self.unsent
    }

    /// Requests of peers refused since the start because too many answers were in flight
    /// ([`MAX_ANSWERS_IN_FLIGHT_PER_PEER`] and the totals beside it).
    pub fn requests_refused_busy(&self) -> u64 {
        self.busy.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Control events (admissions, requests, heartbeats) the swarm task could not hand to the
    /// node since the start, its queue being full.
    pub fn control_events_dropped(&self) -> u64 {
        self.events_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn send(&self, c: Command) -> Result<(), NetError> {
        self.tx.send(c).await.map_err(|_| NetError::Stopped)
    }

    /// Publishes an accepted object on the federation topic. With nobody to send it to, it is
    /// not an error: peers get the object by reconciliation when they connect.
    pub async fn publish(&self, data: Vec<u8>) -> Result<(), NetError> {
        self.publish_many(vec![data])
            .await?
            .pop()
            .unwrap_or(Err(NetError::Stopped))
    }

    /// Publishes accepted objects on the federation topic, in order, [`PUBLISH_CHUNK`] to a
    /// command: one hand-over to the network task per chunk instead of per object (a batch of
    /// 512 records made 512 round trips before its POST was answered), and no chunk keeps
    /// the network task from its other events for long. One result per object, as
    /// [`NetworkHandle::publish`] gives it; `Err(Stopped)` for all when the network stops.
    pub async fn publish_many(
        &self,
        data: Vec<Vec<u8>>,
    ) -> Result<Vec<Result<(), NetError>>, NetError> {
        let mut out = Vec::with_capacity(data.len());
        let mut data = data.into_iter().peekable();
        while data.peek().is_some() {
            let chunk: Vec<Vec<u8>> = data.by_ref().take(PUBLISH_CHUNK).collect();
            let (reply, rx) = oneshot::channel();
            self.send(Command::Publish { data: chunk, reply }).await?;
            out.extend(rx.await.map_err(|_| NetError::Stopped)?);
        }
        Ok(out)
    }

    /// Publishes this node's signed heartbeat on the federation's health topic.
    pub async fn publish_heartbeat(&self, data: Vec<u8>) -> Result<(), NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::PublishHeartbeat { data, reply }).await?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Reports the node's verdict on a gossip message (exactly once per message).
    pub async fn report(
        &self,
        message_id: Vec<u8>,
        source: PeerId,
        validation: Validation,
    ) -> Result<(), NetError> {
        self.send(Command::Report {
            message_id,
            source,
            validation,
        })
        .await
    }

    /// [`Self::report`] without waiting: `false` when the swarm's command queue is full (the
    /// message then stays unreported, and gossipsub drops it from its cache within seconds).
    pub fn try_report(&self, message_id: Vec<u8>, source: PeerId, validation: Validation) -> bool {
        self.tx
            .try_send(Command::Report {
                message_id,
                source,
                validation,
            })
            .is_ok()
    }

    /// Admits a peer whose certificate the node accepted.
    pub async fn admit(&self, peer: PeerId, member: Option<String>) -> Result<(), NetError> {
        self.send(Command::Admit { peer, member }).await
    }

    /// Refuses a peer (members mode: disconnects it).
    pub async fn refuse(&self, peer: PeerId, reason: String) -> Result<(), NetError> {
        self.send(Command::Refuse { peer, reason }).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Peers { reply }).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// The addresses the swarm listens on (after the listeners came up).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ListenAddrs { reply }).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.send(Command::Dial { addr }).await
    }

    /// Sends a reconciliation request to an admitted peer and waits for its response.
    pub async fn sync_request(&self, peer: PeerId, data: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SyncRequest {
            peer,
            data,
            reply,
            blob: false,
        })
        .await?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Sends an attachments request (`/accord/<fed16>/blob/1`) to an admitted peer.
    pub async fn blob_request(&self, peer: PeerId, data: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SyncRequest {
            peer,
            data,
            reply,
            blob: true,
        })
        .await?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Penalises a peer that served bad data (as an invalid gossip message would); it is
    /// disconnected when that takes it to the graylist.
    pub async fn penalize(&self, peer: PeerId, reason: String) -> Result<(), NetError> {
        self.send(Command::Penalize { peer, reason }).await
    }

    /// Answers an inbound reconciliation request.
    pub async fn respond(&self, request_id: u64, data: Vec<u8>) -> Result<(), NetError> {
        self.send(Command::Respond { request_id, data }).await
    }

    /// Cuts a peer that misbehaved in reconciliation: disconnected and refused for a backoff
    /// that doubles each time (`NetworkEvent::PeerCut` with reason `bad-reconciliation`).
    pub async fn disconnect(&self, peer: PeerId, reason: String) -> Result<(), NetError> {
        self.send(Command::Disconnect { peer, reason }).await
    }

    /// Closes every connection to a peer that is not to blame, and dials it again once they are
    /// closed (at the addresses it listens on, when known): a connection that stopped carrying
    /// gossip starts afresh. The peer is admitted again as on any new connection.
    pub async fn reset(&self, peer: PeerId, reason: String) -> Result<(), NetError> {
        self.send(Command::Reset { peer, reason }).await
    }

    /// Asks the swarm task to stop.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }
}

/// The libp2p peer id of an Accord public key (ed25519 keys are inlined in peer ids).
pub fn peer_id_of(key: &accord_core::PublicKey) -> Option<PeerId> {
    let pk = libp2p::identity::ed25519::PublicKey::try_from_bytes(key.as_bytes()).ok()?;
    Some(PeerId::from_public_key(&libp2p::identity::PublicKey::from(
        pk,
    )))
}

/// The libp2p keypair for an Accord secret key (the node key).
pub fn keypair_of(key: &accord_core::SecretKey) -> Result<Keypair, NetError> {
    let mut seed = key.seed();
    let sk = libp2p::identity::ed25519::SecretKey::try_from_bytes(&mut seed[..])
        .map_err(|e| NetError::Transport(format!("node key: {e}")))?;
    Ok(Keypair::from(libp2p::identity::ed25519::Keypair::from(sk)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message not handed over is counted with its sender; the senders are handed to the
    /// node once (then forgotten), the node is woken, and the warning is due once a minute.
    #[test]
    fn missed_gossip_is_counted_and_its_senders_kept() {
        let m = MissedGossip::default();
        let a = PeerId::random();
        let b = PeerId::random();
        assert!(m.record(a), "the first miss warns");
        assert!(!m.record(a), "not again within a minute");
        assert!(!m.record(b));
        assert_eq!(m.count(), 3);
        let mut peers = m.take_peers();
        peers.sort();
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(peers, expected);
        assert!(m.take_peers().is_empty(), "handed over once");
        // The node was woken (a stored permit completes the wait at once).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let woken = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), m.notified())
                .await
                .is_ok()
        });
        assert!(woken);
    }

    /// Messages gossipsub could not queue for a slow peer are added up, and warned about once a
    /// minute; a report of nothing neither counts nor warns.
    #[test]
    fn gossip_not_sent_to_slow_peers_is_counted() {
        let u = UnsentGossip::default();
        assert!(!u.record(0), "nothing unsent, no warning");
        assert!(u.record(120), "the first report warns");
        assert!(!u.record(7), "not again within a minute");
        assert_eq!(u.count(), 127);
    }

    #[test]
    fn peer_ids_agree_with_core() {
        let sk = accord_core::SecretKey::from_seed([5; 32]);
        let kp = keypair_of(&sk).ok();
        let from_kp = kp.map(|k| k.public().to_peer_id());
        assert_eq!(from_kp, peer_id_of(&sk.public_key()));
        assert_eq!(
            from_kp.map(|p| p.to_string()),
            Some(sk.public_key().peer_id())
        );
    }
}
