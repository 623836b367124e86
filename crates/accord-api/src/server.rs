//! The HTTP server loop: accepts connections up to a cap (more are answered 503 and closed),
//! gives each a header-read and idle timeout and a send timeout (a client that takes no byte
//! of a response loses its connection), and shuts down gracefully.
//!
//! axum's own `serve` keeps idle and slow-header connections open for ever; under a small
//! open-file limit a few hundred of them starve `/healthz` and submissions. Here every
//! connection holds a permit of a bounded semaphore while it lives.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// How the HTTP server treats its clients.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to send a request's headers; also how long an idle connection is kept.
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
    /// Origins whose web pages may call the API (none by default).
    pub cors_origins: Vec<String>,
    /// Host names the node may be reached by, beyond `localhost` and IP addresses (see
    /// `api.hosts`).
    pub hosts: Vec<String>,
    /// How long a streamed export's client may read nothing before the export ends and its
    /// slot goes to another (see `EXPORTS_AT_ONCE`).
    pub export_idle_timeout: Duration,
    /// How long a client may take no byte of a response the node is writing before the
    /// connection is closed (and the response, with what it holds, dropped).
    pub send_timeout: Duration,
    /// Bytes of submission bodies (`POST /v1/objects`) received and judged at once, counted as
    /// they arrive: a submission whose bytes find no room is answered 503 with `Retry-After`
    /// at once (and what it held goes back).
    pub submit_bytes_at_once: usize,
}

/// [`HttpOptions::export_idle_timeout`] by default.
pub const EXPORT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// [`HttpOptions::send_timeout`] by default (nginx's `send_timeout`).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// [`HttpOptions::submit_bytes_at_once`] by default: four of the largest submissions.
pub const SUBMIT_BYTES_AT_ONCE: usize = 4 * crate::MAX_SUBMIT_BYTES;

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            hosts: Vec::new(),
            export_idle_timeout: EXPORT_IDLE_TIMEOUT,
            send_timeout: SEND_TIMEOUT,
            submit_bytes_at_once: SUBMIT_BYTES_AT_ONCE,
        }
    }
}

impl From<&accord_node::config::ApiConfig> for HttpOptions {
    fn from(c: &accord_node::config::ApiConfig) -> Self {
        HttpOptions {
            max_connections: c.max_connections,
            header_timeout: Duration::from_secs(c.header_timeout_secs),
            body_timeout: Duration::from_secs(c.body_timeout_secs),
            cors_origins: c.cors_origins.clone(),
            hosts: c.hosts.clone(),
            export_idle_timeout: EXPORT_IDLE_TIMEOUT,
            send_timeout: SEND_TIMEOUT,
            submit_bytes_at_once: SUBMIT_BYTES_AT_ONCE,
        }
    }
}

/// Bytes of a request's head (its line and headers) a connection reads: an address as long as
/// the `http` crate takes (64 KiB) and ordinary headers. Hyper's default buffer, about 400 KiB
/// a connection, was 200 MB over the connection cap for heads no client needs; a larger head
/// is answered 431.
pub const MAX_HEAD_BYTES: usize = 80 * 1024;

/// How long open connections may take to finish after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a refused client gets to take its 503.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed accept (for instance no file descriptor left), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning a minute for refusals and accept errors.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Logs at most once per [`WARN_EVERY`], counting what it did not log.
struct Throttle {
    last: Option<Instant>,
    quiet: u64,
}

impl Throttle {
    fn new() -> Self {
        Throttle {
            last: None,
            quiet: 0,
        }
    }

    /// `Some(number of events since the last warning)` when a warning is due.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < WARN_EVERY)
        {
            self.quiet += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.quiet))
    }
}

/// Turns `true` when the server stops taking connections: see [`serve_router`].
#[derive(Debug, Clone)]
pub(crate) struct ServerStopping(pub(crate) watch::Receiver<bool>);

impl ServerStopping {
    /// Completes once the server stops (never, when it was dropped unstopped).
    pub(crate) async fn stopped(mut self) {
        if self.0.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish (for at
/// most [`SHUTDOWN_GRACE`]).
pub async fn serve_router(
    app: Router,
    listener: TcpListener,
    opts: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Responses that never end by themselves (live streams) end when the server stops, so
    // that a stop does not wait out its grace for every open browser tab.
    let app = app.layer(axum::Extension(ServerStopping(stop_rx.clone())));
    let mut conns = JoinSet::new();
    let mut refused = Throttle::new();
    let mut accept_errors = Throttle::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    if let Some(more) = accept_errors.due() {
                        warn!(error = %e, more, "HTTP accept failed (open-file limit?)");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Some(more) = refused.due() {
                warn!(
                    limit = opts.max_connections,
                    more,
                    "HTTP connection refused: too many open connections (api.max_connections)"
                );
            }
            conns.spawn(refuse(stream, opts.max_connections));
            continue;
        };
        debug!(%peer, "HTTP connection");
        let app = app.clone();
        let header_timeout = opts.header_timeout;
        let send_timeout = opts.send_timeout;
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(true);
            let service = TowerToHyperService::new(app);
            let conn = http
                .serve_connection(
                    TokioIo::new(SendDeadline::new(stream, send_timeout)),
                    service,
                )
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e, "HTTP connection ended");
                    }
                }
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.shutdown().await;
    Ok(())
}

/// A connection whose writes fail once the client has taken no byte for `timeout`: a client
/// that asks for a response and then reads nothing (a zero TCP window) would otherwise keep it,
/// and all it holds (a built export, the ids of a streamed one), for as long as it stays
/// connected. The time counts only while a write waits; an idle connection, or a live stream
/// with nothing to say, is not cut by it.
struct SendDeadline<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> SendDeadline<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        SendDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// What a write that made no progress gives: still pending, or an error once it has waited
    /// `timeout` since the last progress.
    fn waited<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the client took no byte of the response for {} s",
                    timeout.as_secs()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Passes on what the inner write gave; progress restarts the clock.
    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.waited(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(cx, r)
    }
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse(mut stream: TcpStream, limit: usize) {
    let body = format!(
        "{{\"error\":\"too many open connections: this node serves at most {limit} at once (api.max_connections); try again shortly\"}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A write that waits on a client taking nothing fails after the send timeout; one that
    /// keeps making progress, however slowly, never does.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_takes_nothing_loses_the_connection_a_slow_one_does_not() {
        let timeout = Duration::from_secs(60);
        let (near, _far) = tokio::io::duplex(64);
        let mut stalled = SendDeadline::new(near, timeout);
        let started = tokio::time::Instant::now();
        let e = stalled.write_all(&[7u8; 4096]).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), timeout);

        let (near, mut far) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut piece = [0u8; 16];
            loop {
                // 16 bytes every 50 s: far slower than the writer, never stalled for 60 s.
                tokio::time::sleep(Duration::from_secs(50)).await;
                match far.read(&mut piece).await.unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&piece[..n]),
                }
            }
        });
        let mut slow = SendDeadline::new(near, timeout);
        slow.write_all(&[7u8; 256]).await.unwrap();
        slow.shutdown().await.unwrap();
        drop(slow);
        assert_eq!(reader.await.unwrap(), vec![7u8; 256]);
    }
}
