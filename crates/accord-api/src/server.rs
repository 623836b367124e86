//! The HTTP server loop: accepts connections up to a cap (more are answered 503 and closed),
//! gives each a header-read and idle timeout, and shuts down gracefully.
//!
//! axum's own `serve` keeps idle and slow-header connections open for ever; under a small
//! open-file limit a few hundred of them starve `/healthz` and submissions. Here every
//! connection holds a permit of a bounded semaphore while it lives.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
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
    /// How long a streamed export's client may read nothing before the export ends and its
    /// slot goes to another (see `EXPORTS_AT_ONCE`).
    pub export_idle_timeout: Duration,
}

/// [`HttpOptions::export_idle_timeout`] by default.
pub const EXPORT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            export_idle_timeout: EXPORT_IDLE_TIMEOUT,
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
            export_idle_timeout: EXPORT_IDLE_TIMEOUT,
        }
    }
}

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
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let service = TowerToHyperService::new(app);
            let conn = http
                .serve_connection(TokioIo::new(stream), service)
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
