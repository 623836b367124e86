//! `accord-api` owns the node's HTTP interface (axum) over a [`NodeHandle`]: JSON under `/v1`
//! (raw CBOR on request), `/healthz`. Its only state is that of serving: the live stream's feed
//! task, and the slots that bound exports and uploads at once; what it shows is the node's.
//!
//! Read endpoints are open on the configured address (loopback by default); submission takes
//! signed objects, whose signatures are the authorisation.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::future::Future;

mod blobs;
pub mod exports;
mod guard;
pub mod openapi;
mod records;
pub use blobs::{UPLOADS_AT_ONCE, UPLOADS_WAITING};
pub use records::{MAX_VALUES_PER_PARAM, STREAMS_AT_ONCE};
mod server;
pub(crate) mod ui;

pub use records::RECORD_PARAMS;
pub use server::{HttpOptions, MAX_HEAD_BYTES, serve_router};

use accord_core::cbor;
use accord_core::object::body_json;
use accord_node::{NodeError, NodeHandle};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Largest submission body (one object or an array of them).
pub const MAX_SUBMIT_BYTES: usize = 16 * 1024 * 1024;

/// The header the `accord` command-line tool sends with every request (`Sec-Accord-Client`):
/// no web page's script may set a header named `Sec-…`, so a request carrying it is no page's,
/// and is answered by any host name (see `api.hosts`).
pub const CLIENT_HEADER: &str = "sec-accord-client";
/// Largest upload of an attachment file the router reads (the charter's per-file limit is
/// checked too, and is usually lower).
pub const MAX_BLOB_UPLOAD_BYTES: usize = 1 << 30;
/// Most objects in one submission.
pub const MAX_SUBMIT_OBJECTS: usize = 1024;

/// An error answer: a status and a JSON `{"error": …}` body.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let busy = self.0 == StatusCode::SERVICE_UNAVAILABLE;
        let mut r = (self.0, axum::Json(json!({ "error": self.1 }))).into_response();
        if busy {
            come_back_later(&mut r);
        }
        r
    }
}

/// Seconds a client told that the node is unavailable for now (busy, stopping) waits before
/// it asks again (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 5;

/// `r` as the answer of a node unavailable for now: 503, and when to come back.
pub(crate) fn come_back_later(r: &mut Response) {
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(RETRY_AFTER_SECS),
    );
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Stopped | NodeError::Busy(_) => {
                ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            NodeError::DiskLow(_) | NodeError::NoRoom(_) => {
                ApiError(StatusCode::INSUFFICIENT_STORAGE, e.to_string())
            }
            _ => ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

pub(crate) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// The router with default [`HttpOptions`], for tests.
pub fn router(node: NodeHandle) -> Router {
    router_with(node, &HttpOptions::default())
}

/// The time a client has to send a request body (see [`HttpOptions::body_timeout`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeout(pub(crate) std::time::Duration);

/// The router, for [`serve`].
pub fn router_with(node: NodeHandle, opts: &HttpOptions) -> Router {
    let origins = guard::Policy::new(&opts.cors_origins, &opts.hosts);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/export", get(export))
        .route("/v1/objects", post(submit))
        .route("/v1/objects/{id}", get(get_object))
        .route("/v1/status", get(status))
        .route("/v1/peers", get(peers))
        .route("/v1/sync", get(sync))
        .route("/v1/health/federation", get(health_federation))
        .route(
            "/v1/blobs/{id}",
            get(blobs::get_blob)
                .put(blobs::put_blob)
                .layer(DefaultBodyLimit::max(MAX_BLOB_UPLOAD_BYTES)),
        )
        .route("/v1/health/evidence", get(health_evidence))
        .route("/v1/records", get(records::list))
        .route("/v1/suggest", get(records::suggest))
        .route("/v1/records/{id}", get(records::detail))
        .route("/v1/stream", get(records::stream))
        .route("/v1/federation", get(records::federation))
        .route("/v1/publishers", get(records::publishers))
        .route(
            "/v1/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .merge(ui::routes())
        .layer(DefaultBodyLimit::max(MAX_SUBMIT_BYTES))
        .layer(Extension(BodyTimeout(opts.body_timeout)))
        .layer(Extension(SubmitBudget::new(opts.submit_bytes_at_once)))
        .layer(Extension(ExportSlots(
            std::sync::Arc::new(tokio::sync::Semaphore::new(EXPORTS_AT_ONCE)),
            opts.export_idle_timeout,
        )))
        .layer(Extension(records::StreamFeed::new()))
        .layer(Extension(blobs::UploadSlots(
            std::sync::Arc::new(tokio::sync::Semaphore::new(blobs::UPLOADS_AT_ONCE)),
            std::sync::Arc::new(tokio::sync::Semaphore::new(blobs::UPLOADS_WAITING)),
        )))
        .layer(axum::middleware::from_fn_with_state(origins, guard::guard))
        .with_state(node)
}

/// Serves the API on `listener` until `shutdown` completes (then finishes open requests),
/// with the connection cap, timeouts and origins of `opts`.
pub async fn serve(
    node: NodeHandle,
    listener: TcpListener,
    opts: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router_with(node, &opts);
    serve_router(app, listener, opts, shutdown).await
}

/// Whether a Content-Type header names exactly `application/cbor` (any case, parameters
/// allowed).
fn is_cbor(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/cbor"))
}

/// The bytes of submission bodies received and judged at once ([`HttpOptions::submit_bytes_at_once`]),
/// counted in KiB and taken as the bytes arrive: 510 connections each sending 16 MiB and
/// stalling held 8 GiB, twice over once split into objects. A client holds room only for what
/// it sent (one that announces 16 MiB and stalls holds nothing), and a body that finds no room
/// is answered 503 at once rather than left waiting with what it already holds (bodies waiting
/// for each other's room would all time out together).
#[derive(Clone)]
pub(crate) struct SubmitBudget {
    kib: std::sync::Arc<tokio::sync::Semaphore>,
    capacity: u32,
}

/// Why a submission body could not be read.
#[derive(Debug)]
enum BodyError {
    /// Over [`MAX_SUBMIT_BYTES`].
    TooLarge,
    /// The budget has no room for the bytes that arrived.
    Full,
    /// The connection failed.
    Failed(String),
}

impl SubmitBudget {
    fn new(bytes: usize) -> SubmitBudget {
        let capacity = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .max(1);
        SubmitBudget {
            kib: std::sync::Arc::new(tokio::sync::Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// Reads `body` whole (at most `limit` bytes), taking room in the budget for its bytes as
    /// they arrive; the room is held until the permit returned with them is dropped. A body
    /// larger than the whole budget is read when it is alone.
    async fn read(
        &self,
        body: Body,
        limit: usize,
    ) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), BodyError> {
        use futures::StreamExt;
        let mut stream = body.into_data_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut room: Option<tokio::sync::OwnedSemaphorePermit> = None;
        let mut held = 0u32;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| BodyError::Failed(e.to_string()))?;
            let total = buf.len() + chunk.len();
            if total > limit {
                return Err(BodyError::TooLarge);
            }
            let need = u32::try_from(total.div_ceil(1024))
                .unwrap_or(u32::MAX)
                .min(self.capacity);
            if need > held {
                let more = self
                    .kib
                    .clone()
                    .try_acquire_many_owned(need - held)
                    .map_err(|_| BodyError::Full)?;
                match &mut room {
                    Some(r) => r.merge(more),
                    None => room = Some(more),
                }
                held = need;
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((Bytes::from(buf), room))
    }
}

/// How long `POST /v1/objects?wait=searchable` waits for the search index at most.
pub const SEARCHABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn submit(
    State(node): State<NodeHandle>,
    Extension(BodyTimeout(body_timeout)): Extension<BodyTimeout>,
    Extension(budget): Extension<SubmitBudget>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // `wait=durable` (the default: answered once stored and flushed) or `wait=searchable`
    // (answered once the stored records are also searchable: read-your-writes).
    let mut searchable = false;
    for (k, v) in &params {
        match (k.as_str(), v.as_str()) {
            ("wait", "durable") => searchable = false,
            ("wait", "searchable") => searchable = true,
            ("wait", other) => {
                return Err(bad(format!(
                    "wait={other:?}: expected \"durable\" (the default) or \"searchable\""
                )));
            }
            (other, _) => {
                return Err(bad(format!(
                    "unknown parameter {other:?} (POST /v1/objects takes only wait)"
                )));
            }
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|c| c.to_str().unwrap_or(""));
    match content_type {
        Some(ct) if is_cbor(ct) => {}
        Some(ct) => {
            return Err(ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type {ct:?}: send signed objects as application/cbor"),
            ));
        }
        None => {
            return Err(ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "no Content-Type: send signed objects as application/cbor".into(),
            ));
        }
    }
    // Room in the budget for what arrives (held until the objects are checked and stored, even
    // if this client goes away first).
    let (body, room) = match tokio::time::timeout(body_timeout, budget.read(body, MAX_SUBMIT_BYTES))
        .await
    {
        Err(_) => {
            return Err(ApiError(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s (api.body_timeout_secs)",
                    body_timeout.as_secs()
                ),
            ));
        }
        Ok(Err(BodyError::TooLarge)) => {
            return Err(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body too large: at most {MAX_SUBMIT_BYTES} bytes"),
            ));
        }
        Ok(Err(BodyError::Full)) => {
            let r = ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "other submissions fill the bytes this node receives at once ({}): try again shortly",
                    if budget.capacity % 1024 == 0 {
                        format!("{} MiB", budget.capacity / 1024)
                    } else {
                        format!("{} KiB", budget.capacity)
                    }
                ),
            )
            .into_response();
            return Ok(r);
        }
        Ok(Err(BodyError::Failed(e))) => {
            return Err(bad(format!("reading the request body failed: {e}")));
        }
        Ok(Ok(read)) => read,
    };
    // A batch (an array whose first element is an array) of more objects than allowed.
    if let Some((count, head)) = cbor::array_head(&body)
        && count > MAX_SUBMIT_OBJECTS as u64
        && body.get(head).is_some_and(|b| b >> 5 == 4)
    {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{count} objects in one submission: at most {MAX_SUBMIT_OBJECTS}"),
        ));
    }
    let limits = accord_core::Limits {
        max_list_len: MAX_SUBMIT_OBJECTS as u64,
        ..Default::default()
    };
    let scan = cbor::ScanLimits {
        max_depth: 64,
        max_entries: limits.max_list_len.max(1024),
    };
    // A batch is a well-formed CBOR array whose first element is an array (an envelope; an
    // envelope's own first element is its version, an integer); `[]` is an empty batch (400).
    // Any other body is one object, and whatever is wrong with it (not CBOR, trailing bytes,
    // not canonical) comes back as that object's verdict with its reason code (PROTOCOL.md
    // 9.5).
    let items: Vec<Vec<u8>> = match cbor::split_array(&body, scan) {
        Ok(Some(parts)) if parts.is_empty() => {
            return Err(bad("an empty array: a batch needs at least one object"));
        }
        Ok(Some(parts))
            if parts
                .first()
                .is_some_and(|p| p.first().is_some_and(|b| b >> 5 == 4)) =>
        {
            if parts.len() > MAX_SUBMIT_OBJECTS {
                return Err(ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "{} objects in one submission: at most {MAX_SUBMIT_OBJECTS}",
                        parts.len()
                    ),
                ));
            }
            parts.into_iter().map(<[u8]>::to_vec).collect()
        }
        Ok(_) | Err(_) => vec![body.to_vec()],
    };
    drop(body);
    // The federation's limit in force (a charter may raise or lower it), not the default.
    let max = node.trust().limits().max_bytes();
    if let Some(big) = items.iter().find(|i| i.len() > max) {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "an object of {} bytes exceeds the federation's limit of {max} bytes",
                big.len()
            ),
        ));
    }
    // The room stays taken until the objects are stored, even if this client goes away first
    // (the store stage runs on to its end).
    let (outcomes, visible) = node
        .submit_holding(items, Box::new(room), searchable.then_some(SEARCHABLE_WAIT))
        .await?;
    let results: Vec<Value> = outcomes
        .iter()
        .map(|o| json!({ "id": o.id.map(|i| i.to_string()), "status": o.status, "code": o.code, "reason": o.reason }))
        .collect();
    let mut answer = json!({ "results": results });
    if let Some(v) = visible {
        answer["searchable"] = json!(v);
    }
    Ok(axum::Json(answer).into_response())
}

async fn get_object(
    State(node): State<NodeHandle>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = records::resolve_id(&node, &id).await?;
    let Some(v) = node.get(id).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("object {id} is not stored on this node"),
        ));
    };
    let wants_cbor = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/cbor"));
    if wants_cbor {
        return Ok(([(header::CONTENT_TYPE, "application/cbor")], v.bytes).into_response());
    }
    // Read with the protocol's widest bounds, as the store reads what it holds: an object
    // accepted under limits a later amendment lowered is still shown.
    let signed = accord_core::SignedObject::decode(
        &v.bytes,
        usize::MAX,
        accord_core::Limits::default().for_stored().scan(),
    )
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let body = body_json(signed.body())
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(axum::Json(json!({
        "id": id.to_string(),
        "type": v.object.object_type().as_str(),
        "signers": v.signers.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        "status": v.status.map(|s| s.as_str()),
        "size": v.bytes.len(),
        "body": body,
    }))
    .into_response())
}

async fn metrics(State(node): State<NodeHandle>) -> Response {
    let text = node.metrics_text().await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Ready: the store answers and takes writes, and at least one peer is admitted when peers
/// are expected.
async fn readyz(
    State(node): State<NodeHandle>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    // `?writes=1`: ready to take new objects too (for what routes publishers' submissions):
    // not while the disk is below its floor. (A restart the charter's raised object limit asks
    // for is no reason: the node takes objects meanwhile, and every node asks for it at once.)
    // Other parameters are left alone, as a probe's cache-busting one.
    let mut writes = false;
    for (k, v) in &params {
        match (k.as_str(), v.as_str()) {
            ("writes", "1" | "true") => writes = true,
            ("writes", "0" | "false") => writes = false,
            ("writes", other) => {
                return bad(format!("parameter writes: {other:?}: expected 1 or 0"))
                    .into_response();
            }
            _ => {}
        }
    }
    if let Some(fault) = node.fault() {
        return (StatusCode::SERVICE_UNAVAILABLE, fault).into_response();
    }
    if writes && let Err(e) = node.disk_check() {
        return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
    }
    match node.status().await {
        Ok(s) if s.peers_admitted > 0 || !node.expects_peers() => {
            (StatusCode::OK, "ready").into_response()
        }
        Ok(_) => (StatusCode::SERVICE_UNAVAILABLE, "no peer admitted yet").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// The answer to an export beyond [`EXPORTS_AT_ONCE`]: 503, and when to try again.
pub(crate) fn exports_busy() -> Response {
    let mut r = ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{EXPORTS_AT_ONCE} exports are running: try again when one has ended"),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
    r
}

/// Bytes of objects per chunk of an export.
pub(crate) const EXPORT_CHUNK_BYTES: usize = 256 * 1024;

/// Exports running at once: each lists every stored id on the store thread first.
pub const EXPORTS_AT_ONCE: usize = 2;

/// The slots of [`EXPORTS_AT_ONCE`], and how long a streamed export's client may read nothing
/// before its slot goes to another ([`Lease`]).
#[derive(Debug, Clone)]
pub(crate) struct ExportSlots(
    pub(crate) std::sync::Arc<tokio::sync::Semaphore>,
    pub(crate) std::time::Duration,
);

/// An export slot that a client who stops reading cannot keep: when the export's body has not
/// been read from for the idle time, a watchdog gives the slot back (another export may run)
/// and the body ends with an error at its next read. Without it, two connections that read the
/// status line and then nothing held both slots for as long as they stayed open, and every
/// export and backup was refused meanwhile.
pub(crate) struct Lease(std::sync::Arc<LeaseInner>);

struct LeaseInner {
    permit: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    last: std::sync::Mutex<std::time::Instant>,
    idle: std::time::Duration,
}

impl Lease {
    pub(crate) fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        idle: std::time::Duration,
    ) -> Lease {
        let inner = std::sync::Arc::new(LeaseInner {
            permit: std::sync::Mutex::new(Some(permit)),
            last: std::sync::Mutex::new(std::time::Instant::now()),
            idle,
        });
        let watched = std::sync::Arc::downgrade(&inner);
        tokio::spawn(async move {
            let tick = (idle / 4).max(std::time::Duration::from_millis(50));
            loop {
                tokio::time::sleep(tick).await;
                let Some(l) = watched.upgrade() else { return };
                let last = *l.last.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= l.idle {
                    if l.permit
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take()
                        .is_some()
                    {
                        tracing::info!(
                            idle_secs = l.idle.as_secs(),
                            "an export's client read nothing for its idle time: its slot is given back"
                        );
                    }
                    return;
                }
            }
        });
        Lease(inner)
    }

    /// Called at each read of the body: `Err` once the slot was given back.
    pub(crate) fn touch(&self) -> std::io::Result<()> {
        if self
            .0
            .permit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            return Err(std::io::Error::other(format!(
                "the client read nothing for {} s: the export ended and its slot went to another",
                self.0.idle.as_secs()
            )));
        }
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
        Ok(())
    }
}

/// A response body read piece by piece by `next` on the blocking pool (`Ok(None)` ends it),
/// one piece ahead of the client: while the client takes a piece, the next is read, and then
/// the read's thread goes back to the pool with the piece kept aside. A client that stops
/// reading holds no thread, and the node's own blocking work (checking objects, serving
/// peers) never waits behind it.
pub(crate) fn pieces<S, F>(state: S, next: F) -> Body
where
    S: Send + 'static,
    F: FnMut(&mut S) -> std::io::Result<Option<Bytes>> + Send + 'static,
{
    type Read<S, F> = tokio::task::JoinHandle<(S, F, std::io::Result<Option<Bytes>>)>;
    fn read<S, F>(mut state: S, mut next: F) -> Read<S, F>
    where
        S: Send + 'static,
        F: FnMut(&mut S) -> std::io::Result<Option<Bytes>> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let piece = next(&mut state);
            (state, next, piece)
        })
    }
    let stream = futures::stream::unfold(Some(read(state, next)), |reading| async move {
        let (state, next, piece) = reading?.await.ok()?;
        match piece {
            Ok(Some(b)) => Some((Ok(b), Some(read(state, next)))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    Body::from_stream(stream)
}

/// Every stored object as a CBOR sequence, in export order, streamed: the list of ids is taken
/// on the store thread between two group commits (so the export is the store as it was then),
/// and the objects are read on the blocking pool at the pace the client reads ([`pieces`]).
/// `?types=charter,delegation,…` (repeatable or comma-separated) keeps only those types. At
/// most [`EXPORTS_AT_ONCE`] run at once; another is answered 503 with `Retry-After`.
async fn export(
    State(node): State<NodeHandle>,
    Extension(ExportSlots(slots, idle)): Extension<ExportSlots>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut types: Vec<accord_core::ObjectType> = Vec::new();
    for (k, v) in &params {
        if k != "types" {
            return Err(bad(format!(
                "{k}: unknown parameter (export takes only types)"
            )));
        }
        for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            types.push(accord_core::ObjectType::parse(name).ok_or_else(|| {
                bad(format!(
                    "types: {name:?} is not an object type (charter, delegation, node, record, retraction, revocation)"
                ))
            })?);
        }
    }
    if types.is_empty() {
        types = accord_core::ObjectType::ALL.to_vec();
    }
    let Ok(slot) = slots.try_acquire_owned() else {
        return Ok(exports_busy());
    };
    let (ids, reader) = node
        .read(move |s| s.export_ids_of(&types).map(|ids| (ids, s.object_reader())))
        .await?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let lease = Lease::new(slot, idle);
    let body = pieces((ids.into_iter(), reader, lease), |(ids, reader, lease)| {
        lease.touch()?;
        let mut chunk = Vec::with_capacity(EXPORT_CHUNK_BYTES);
        for id in ids.by_ref() {
            match reader.get(&id) {
                Ok(b) => chunk.extend_from_slice(&b),
                Err(e) => {
                    tracing::error!(error = %e, "export stopped");
                    return Err(std::io::Error::other(e.to_string()));
                }
            }
            if chunk.len() >= EXPORT_CHUNK_BYTES {
                break;
            }
        }
        Ok((!chunk.is_empty()).then(|| Bytes::from(chunk)))
    });
    Ok(([(header::CONTENT_TYPE, "application/cbor")], body).into_response())
}

async fn status(State(node): State<NodeHandle>) -> Result<axum::Json<Value>, ApiError> {
    let s = node.status().await?;
    let counts: serde_json::Map<String, Value> = s
        .counts
        .iter()
        .map(|(t, n)| (t.as_str().to_string(), json!(n)))
        .collect();
    Ok(axum::Json(json!({
        "peer_id": s.peer_id,
        "member": s.member,
        "federation": s.federation.to_string(),
        "federation_name": s.federation_name,
        "charter_version": s.charter_version,
        "counts": counts,
        "pending": s.pending,
        "peers_connected": s.peers_connected,
        "peers_admitted": s.peers_admitted,
        "uptime_secs": s.uptime_secs,
        "version": s.version,
        "store_schema": accord_store::SCHEMA_VERSION,
        "protocol": accord_node::PROTOCOL_VERSION,
        "listen": s.listen,
        "disk": {
            "free_bytes": s.disk.free_bytes,
            "min_free_bytes": s.disk.min_free_bytes,
            "low": s.disk.low,
        },
        "restart_needed": s.restart_needed,
        "upgrade_needed": s.upgrade_needed,
        "clock": s.clock.map(|c| json!({
            "offset_ms": c.offset_ms,
            "nodes": c.nodes,
            "members": c.members,
            "off": c.is_off(),
        })),
        "sync": sync_json(&node),
    })))
}

fn sync_json(node: &NodeHandle) -> Value {
    let list: Vec<Value> = node
        .sync_stats()
        .into_iter()
        .map(|(peer, s)| {
            json!({
                "peer_id": peer,
                "member": s.member,
                "last": s.last.map(|t| t.to_string()),
                "rounds": s.rounds,
                "bytes_out": s.bytes_out,
                "bytes_in": s.bytes_in,
                "missing": s.missing,
                "fetched": s.fetched,
                "sessions": s.sessions,
                "fetched_total": s.fetched_total,
                "refused": s.refused,
                "error": s.error,
                "running": s.running.map(|r| json!({
                    "rounds": r.rounds,
                    "bytes_out": r.bytes_out,
                    "bytes_in": r.bytes_in,
                    "missing": r.missing,
                    "fetched": r.fetched,
                })),
            })
        })
        .collect();
    Value::Array(list)
}

async fn health_federation(State(node): State<NodeHandle>) -> Result<axum::Json<Value>, ApiError> {
    serde_json::to_value(node.federation_health())
        .map(axum::Json)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The signed evidence bundles this node keeps, newest first, as a CBOR sequence (each item
/// verifiable on its own with `accord evidence verify`); `number=N` for one.
async fn health_evidence(
    State(node): State<NodeHandle>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut number = None;
    for (k, v) in &params {
        match k.as_str() {
            "number" => {
                number = Some(
                    v.parse::<u64>()
                        .map_err(|_| bad(format!("number: {v:?} is not a bundle number")))?,
                )
            }
            other => return Err(bad(format!("unknown parameter {other}"))),
        }
    }
    let body: Vec<u8> = match number {
        Some(n) => match node.health_evidence(n) {
            Some(e) => e.bytes,
            None => {
                return Err(ApiError(
                    StatusCode::NOT_FOUND,
                    format!("no evidence bundle number {n} is kept"),
                ));
            }
        },
        None => node
            .federation_health()
            .evidence
            .iter()
            .filter_map(|s| node.health_evidence(s.number))
            .flat_map(|e| e.bytes)
            .collect(),
    };
    let name = match number {
        Some(n) => format!("evidence-{n}.cbor"),
        None => "evidence.cbor".to_string(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/cbor".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

async fn sync(State(node): State<NodeHandle>) -> axum::Json<Value> {
    axum::Json(json!({ "peers": sync_json(&node) }))
}

async fn peers(State(node): State<NodeHandle>) -> Result<axum::Json<Value>, ApiError> {
    let peers = node.peers().await?;
    let list: Vec<Value> = peers
        .iter()
        .map(|p| {
            json!({
                "peer_id": p.peer_id,
                "member": p.member,
                "admitted": p.admitted,
                "addresses": p.addresses,
                "connected_since": p.connected_since.to_string(),
                "gossip_score": p.gossip_score,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "peers": list })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node too busy to search now, or stopping, says so with 503 and when to come back.
    #[test]
    fn a_busy_node_says_when_to_come_back() {
        for e in [
            NodeError::Busy("the node is busy".into()),
            NodeError::Stopped,
        ] {
            let r = ApiError::from(e).into_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                r.headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
                Some("5")
            );
        }
        let r = ApiError(StatusCode::BAD_REQUEST, "no".into()).into_response();
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }

    /// A body that sent 900 KiB and waits holds room for them; a second body whose bytes do not
    /// fit beside it is refused at once (not left waiting with what it holds), and fits once
    /// the first goes; a body larger than the whole budget is read when alone.
    #[tokio::test]
    async fn the_budget_holds_the_bytes_that_arrived_and_refuses_what_does_not_fit() {
        let budget = SubmitBudget::new(1 << 20);
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
        tx.unbounded_send(Ok(Bytes::from(vec![1u8; 900 * 1024])))
            .unwrap();
        let first = tokio::spawn({
            let budget = budget.clone();
            async move { budget.read(Body::from_stream(rx), MAX_SUBMIT_BYTES).await }
        });
        // The first's bytes are counted once its chunk is read (nothing else takes room).
        while budget.kib.available_permits() > 1024 - 900 {
            tokio::task::yield_now().await;
        }
        let second = Body::from(vec![2u8; 200 * 1024]);
        assert!(matches!(
            budget.read(second, MAX_SUBMIT_BYTES).await,
            Err(BodyError::Full)
        ));
        assert_eq!(
            budget.kib.available_permits(),
            1024 - 900,
            "the refused body held room"
        );
        drop(tx);
        let (bytes, room) = first.await.unwrap().unwrap();
        assert_eq!(bytes.len(), 900 * 1024);
        drop(room);
        let (bytes, _room) = budget
            .read(Body::from(vec![2u8; 200 * 1024]), MAX_SUBMIT_BYTES)
            .await
            .unwrap();
        assert_eq!(bytes.len(), 200 * 1024);
        drop(_room);
        let (big, _) = budget
            .read(Body::from(vec![3u8; 3 << 20]), MAX_SUBMIT_BYTES)
            .await
            .unwrap();
        assert_eq!(big.len(), 3 << 20);
        assert!(matches!(
            budget
                .read(Body::from(vec![0u8; 17 << 20]), MAX_SUBMIT_BYTES)
                .await,
            Err(BodyError::TooLarge)
        ));
    }
}
