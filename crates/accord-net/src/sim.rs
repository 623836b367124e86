//! Simulated links, for the federation-scale benchmark (`accord-bench scale`): many nodes in
//! one process over loopback TCP, with a per-link one-way delay, packet loss, partitions and
//! byte counts. A node gets this only when its [`crate::NetConfig::sim`] is set in code; no
//! configuration file can turn it on.
//!
//! How a link behaves:
//! - **Who is at the other end.** The dialer writes its node index (2 bytes) before the libp2p
//!   handshake and the listener reads it, so both ends know the link `(i, j)`.
//! - **Delay.** Each link has a one-way delay drawn once from `[min, max]` by a hash of the seed
//!   and the pair (the same both ways). Bytes read from the socket are handed to the node only
//!   when that delay has passed since they arrived.
//! - **Loss.** TCP never loses bytes; a lost packet shows as a retransmission that delays it and
//!   everything behind it on that connection. Each chunk read is "lost" with the probability
//!   that one of its ~1,460-byte packets was, and then arrives a retransmission timeout later:
//!   200 ms + 2 × the one-way delay. Order on a connection is kept (head-of-line blocking).
//! - **Partitions.** Nodes are in groups; while partitioned, a dial across groups fails and a
//!   connection across groups fails on its next read or write.
//! - **A stalled node.** While a node is stalled, every write to it waits: its peers' sends
//!   back up as they would to a machine too busy to read (tests of slow peers).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

/// Bytes of one simulated packet (a typical TCP segment on Ethernet).
const PACKET_BYTES: f64 = 1460.0;
/// The least retransmission timeout (Linux's `TCP_RTO_MIN`).
const RTO_MIN: Duration = Duration::from_millis(200);
/// Largest read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;
/// How often a write to a stalled node looks again whether it may go.
const STALL_POLL: Duration = Duration::from_millis(5);

/// The simulated network all nodes of one run share.
#[derive(Debug)]
pub struct SimNet {
    seed: u64,
    min_delay: Duration,
    max_delay: Duration,
    loss: f64,
    partitioned: AtomicBool,
    groups: Vec<AtomicU8>,
    stalled: Vec<AtomicBool>,
    bytes_in: Vec<AtomicU64>,
    bytes_out: Vec<AtomicU64>,
}

impl SimNet {
    /// A network of `nodes` nodes whose links have one-way delays in `[min_delay, max_delay]`
    /// and lose each packet with probability `loss`.
    pub fn new(
        nodes: usize,
        seed: u64,
        min_delay: Duration,
        max_delay: Duration,
        loss: f64,
    ) -> Arc<SimNet> {
        Arc::new(SimNet {
            seed,
            min_delay,
            max_delay: max_delay.max(min_delay),
            loss: loss.clamp(0.0, 1.0),
            partitioned: AtomicBool::new(false),
            groups: (0..nodes).map(|_| AtomicU8::new(0)).collect(),
            stalled: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
            bytes_in: (0..nodes).map(|_| AtomicU64::new(0)).collect(),
            bytes_out: (0..nodes).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Node `node`'s link to the others.
    pub fn link(self: &Arc<Self>, node: u16) -> SimLink {
        SimLink {
            net: self.clone(),
            me: node,
        }
    }

    /// Puts node `i` in group `groups[i]` and cuts every link between groups.
    pub fn partition(&self, groups: &[u8]) {
        for (slot, g) in self.groups.iter().zip(groups) {
            slot.store(*g, Ordering::Relaxed);
        }
        self.partitioned.store(true, Ordering::Release);
    }

    /// Holds every write to node `node` while `on` (a node that reads nothing); `false` lets
    /// them go.
    pub fn stall(&self, node: usize, on: bool) {
        if let Some(s) = self.stalled.get(node) {
            s.store(on, Ordering::Release);
        }
    }

    fn is_stalled(&self, node: u16) -> bool {
        self.stalled
            .get(node as usize)
            .is_some_and(|s| s.load(Ordering::Acquire))
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.partitioned.store(false, Ordering::Release);
    }

    /// Bytes node `i` has received and sent, over all its links (TCP payload: libp2p's
    /// handshakes, Noise and Yamux framing included).
    pub fn bytes(&self, i: usize) -> (u64, u64) {
        let get = |v: &Vec<AtomicU64>| v.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
        (get(&self.bytes_in), get(&self.bytes_out))
    }

    /// The one-way delay of the link between `a` and `b`.
    pub fn delay(&self, a: u16, b: u16) -> Duration {
        let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
        let span = self.max_delay.saturating_sub(self.min_delay).as_micros() as u64;
        let r = mix(self.seed ^ (lo << 32) ^ hi);
        self.min_delay + Duration::from_micros(if span == 0 { 0 } else { r % (span + 1) })
    }

    fn cut(&self, a: u16, b: u16) -> bool {
        if !self.partitioned.load(Ordering::Acquire) {
            return false;
        }
        let group = |i: u16| {
            self.groups
                .get(i as usize)
                .map(|g| g.load(Ordering::Relaxed))
        };
        group(a) != group(b)
    }

    fn count(counters: &[AtomicU64], i: u16, n: usize) {
        if let Some(c) = counters.get(i as usize) {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// SplitMix64's finaliser: a well-spread hash of a 64-bit value.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One node's end of the simulated network.
#[derive(Debug, Clone)]
pub struct SimLink {
    net: Arc<SimNet>,
    me: u16,
}

impl SimLink {
    /// Runs on every new TCP connection before libp2p's handshake: tells the other end who
    /// this node is, learns who it is, and wraps the stream in the link's behaviour.
    pub(crate) async fn attach<S>(self, mut stream: S) -> io::Result<SimStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        stream.write_all(&self.me.to_be_bytes()).await?;
        stream.flush().await?;
        let mut peer = [0u8; 2];
        stream.read_exact(&mut peer).await?;
        let peer = u16::from_be_bytes(peer);
        SimNet::count(&self.net.bytes_out, self.me, 2);
        SimNet::count(&self.net.bytes_in, self.me, 2);
        if self.net.cut(self.me, peer) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "simulated partition",
            ));
        }
        let delay = self.net.delay(self.me, peer);
        Ok(SimStream {
            inner: stream,
            rng: mix(self.net.seed ^ ((self.me as u64) << 16) ^ peer as u64 ^ 0x5157),
            link: self,
            peer,
            delay,
            arrived: VecDeque::new(),
            last_ready: Instant::now(),
            eof: false,
            timer: None,
            stall_timer: None,
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
        })
    }
}

/// A TCP stream seen through a simulated link (see the module's documentation).
pub struct SimStream<S> {
    inner: S,
    link: SimLink,
    peer: u16,
    delay: Duration,
    /// Bytes read from the socket, each chunk with the time it may be handed over.
    arrived: VecDeque<(Instant, Vec<u8>)>,
    last_ready: Instant,
    eof: bool,
    timer: Option<Pin<Box<Sleep>>>,
    /// Wakes a write held while the peer is stalled.
    stall_timer: Option<Pin<Box<Sleep>>>,
    rng: u64,
    /// Where reads from the socket land before they are queued.
    scratch: Box<[u8]>,
}

impl<S> std::fmt::Debug for SimStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimStream")
            .field("me", &self.link.me)
            .field("peer", &self.peer)
            .field("delay", &self.delay)
            .field("chunks_in_flight", &self.arrived.len())
            .finish()
    }
}

impl<S> SimStream<S> {
    fn cut_error(&self) -> Option<io::Error> {
        self.link
            .net
            .cut(self.link.me, self.peer)
            .then(|| io::Error::new(io::ErrorKind::ConnectionReset, "simulated partition"))
    }

    /// When a chunk of `n` bytes that arrived now may be handed over.
    fn ready_at(&mut self, n: usize) -> Instant {
        self.rng = mix(self.rng);
        let packets = (n as f64 / PACKET_BYTES).ceil();
        let p_lost = 1.0 - (1.0 - self.link.net.loss).powf(packets);
        let draw = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let mut at = Instant::now() + self.delay;
        if draw < p_lost {
            at += RTO_MIN + 2 * self.delay;
        }
        // A connection keeps its order: nothing overtakes a delayed chunk.
        at = at.max(self.last_ready);
        self.last_ready = at;
        at
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SimStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(e) = this.cut_error() {
            return Poll::Ready(Err(e));
        }
        loop {
            // Take in whatever the socket has (this also registers for more).
            while !this.eof {
                match Pin::new(&mut this.inner).poll_read(cx, &mut this.scratch) {
                    Poll::Ready(Ok(0)) => this.eof = true,
                    Poll::Ready(Ok(n)) => {
                        let chunk = this.scratch[..n].to_vec();
                        SimNet::count(&this.link.net.bytes_in, this.link.me, n);
                        let at = this.ready_at(n);
                        this.arrived.push_back((at, chunk));
                    }
                    Poll::Ready(Err(e)) if this.arrived.is_empty() => return Poll::Ready(Err(e)),
                    // Hand over what arrived before the error first; then end.
                    Poll::Ready(Err(_)) => this.eof = true,
                    Poll::Pending => break,
                }
            }
            let Some((at, _)) = this.arrived.front() else {
                return if this.eof {
                    Poll::Ready(Ok(0))
                } else {
                    Poll::Pending
                };
            };
            let at = *at;
            if at <= Instant::now() {
                this.timer = None;
                let Some((_, chunk)) = this.arrived.front_mut() else {
                    return Poll::Pending;
                };
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n == chunk.len() {
                    this.arrived.pop_front();
                } else {
                    chunk.drain(..n);
                }
                return Poll::Ready(Ok(n));
            }
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SimStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut_error() {
            return Poll::Ready(Err(e));
        }
        let this = &mut *self;
        if this.link.net.is_stalled(this.peer) {
            // Look again shortly (the timer registers this task to be woken).
            let timer = this
                .stall_timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(STALL_POLL)));
            if timer.as_mut().poll(cx).is_ready() {
                timer.as_mut().reset(Instant::now() + STALL_POLL);
                let _ = timer.as_mut().poll(cx);
            }
            return Poll::Pending;
        }
        this.stall_timer = None;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &written {
            SimNet::count(&this.link.net.bytes_out, this.link.me, *n);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::tcp::tokio::TcpStream;

    /// Two ends of a loopback TCP connection, attached as nodes 0 (dialer) and 1.
    async fn pair(
        net: &Arc<SimNet>,
    ) -> (
        io::Result<SimStream<TcpStream>>,
        io::Result<SimStream<TcpStream>>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        futures::join!(
            net.link(0).attach(TcpStream(a.unwrap())),
            net.link(1).attach(TcpStream(b.unwrap().0))
        )
    }

    #[test]
    fn delays_are_symmetric_seeded_and_in_range() {
        let net = SimNet::new(
            10,
            7,
            Duration::from_millis(10),
            Duration::from_millis(80),
            0.0,
        );
        let again = SimNet::new(
            10,
            7,
            Duration::from_millis(10),
            Duration::from_millis(80),
            0.0,
        );
        let mut distinct = std::collections::BTreeSet::new();
        for a in 0..10u16 {
            for b in 0..10u16 {
                let d = net.delay(a, b);
                assert_eq!(d, net.delay(b, a));
                assert_eq!(d, again.delay(a, b));
                assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(80));
                distinct.insert(d);
            }
        }
        assert!(distinct.len() > 20, "delays barely vary: {distinct:?}");
    }

    #[test]
    fn partitions_cut_only_across_groups() {
        let net = SimNet::new(4, 1, Duration::ZERO, Duration::ZERO, 0.0);
        assert!(!net.cut(0, 3));
        net.partition(&[0, 0, 1, 1]);
        assert!(!net.cut(0, 1));
        assert!(!net.cut(2, 3));
        assert!(net.cut(0, 2));
        assert!(net.cut(3, 1));
        net.heal();
        assert!(!net.cut(0, 2));
    }

    #[tokio::test]
    async fn a_link_delays_bytes_keeps_their_order_and_counts_them() {
        let net = SimNet::new(
            2,
            3,
            Duration::from_millis(40),
            Duration::from_millis(40),
            0.0,
        );
        let (a, b) = pair(&net).await;
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        let t = Instant::now();
        a.write_all(b"hello ").await.unwrap();
        a.write_all(b"world").await.unwrap();
        let mut got = [0u8; 11];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");
        assert!(
            t.elapsed() >= Duration::from_millis(40),
            "{:?}",
            t.elapsed()
        );
        // 2 bytes of handshake each way, then the payload.
        assert_eq!(net.bytes(0), (2, 13));
        assert_eq!(net.bytes(1), (13, 2));
    }

    #[tokio::test]
    async fn a_cut_link_fails_its_dial_and_its_open_connections() {
        let net = SimNet::new(2, 3, Duration::ZERO, Duration::ZERO, 0.0);
        let (a, b) = pair(&net).await;
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        net.partition(&[0, 1]);
        assert_eq!(
            a.write_all(b"x").await.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
        let mut buf = [0u8; 1];
        assert_eq!(
            b.read(&mut buf).await.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
        let (c, _) = pair(&net).await;
        assert_eq!(
            c.err().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionRefused)
        );
    }
}
