//! `GET /v1/blobs/{sha256}` (with single byte ranges) and `PUT /v1/blobs/{sha256}`: the
//! attachment files a node holds. A file is always a download: `Content-Disposition:
//! attachment` with its name, `X-Content-Type-Options: nosniff`, a sandboxing
//! `Content-Security-Policy`, and a media type from a short list of document types (anything
//! else, HTML and SVG included, is `application/octet-stream`), so that a hostile file is
//! never rendered by the browser as a page of this node.

use std::io::{Read, Seek, SeekFrom};

use accord_core::ObjectId;
use accord_node::NodeHandle;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{ApiError, BodyTimeout, bad};

/// Bytes read from disk per piece of a streamed answer.
const PIECE: usize = 256 * 1024;
/// Uploads read at once: each is held in memory whole (up to the charter's per-file limit)
/// until its hash is checked; others wait their turn for up to the upload's time.
pub const UPLOADS_AT_ONCE: usize = 2;

/// Uploads that wait for a slot at most: each holds a connection (and may for an upload's
/// time), so an unbounded queue let a client with 500 connections hold every one of the
/// node's for ten minutes, `/healthz` and submissions included; beyond it, 503 at once.
pub const UPLOADS_WAITING: usize = 8;

/// The slots of [`UPLOADS_AT_ONCE`], and the places in the queue for them
/// ([`UPLOADS_WAITING`]).
#[derive(Debug, Clone)]
pub(crate) struct UploadSlots(
    pub(crate) std::sync::Arc<tokio::sync::Semaphore>,
    pub(crate) std::sync::Arc<tokio::sync::Semaphore>,
);
/// An upload gets this many times `api.body_timeout_secs` (files are larger than objects).
pub(crate) const UPLOAD_TIMEOUT_FACTOR: u32 = 20;

fn hash_of(s: &str) -> Result<ObjectId, ApiError> {
    s.parse()
        .map_err(|_| bad(format!("{s:?} is not a SHA-256 (64 hex characters)")))
}

/// The media type a file is served with.
fn served_type(media_type: &str) -> &'static str {
    match media_type {
        "application/pdf" => "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        }
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        }
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        }
        "application/vnd.oasis.opendocument.text" => "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet" => {
            "application/vnd.oasis.opendocument.spreadsheet"
        }
        "application/vnd.oasis.opendocument.presentation" => {
            "application/vnd.oasis.opendocument.presentation"
        }
        "application/msword" => "application/msword",
        "application/vnd.ms-excel" => "application/vnd.ms-excel",
        "application/zip" => "application/zip",
        "image/png" => "image/png",
        "image/jpeg" => "image/jpeg",
        "text/plain" | "text/markdown" | "text/csv" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII fallback and the
/// exact name.
fn disposition(name: &str) -> String {
    // The name the page shows: a file named `invoice\u{202E}fdp.exe` is saved as the
    // `invoicefdp.exe` its reader saw, not reversed.
    let name = &accord_search::display_line(name);
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The one byte range of a `Range` header, as `(start, end inclusive)`; `Ok(None)` to serve
/// the whole file (no header, several ranges, another unit), `Err` when unsatisfiable.
fn range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (start, end)
    };
    if size == 0 || start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// The name and media type record `id` gives file `hash`: 404 when no such record is stored,
/// 400 when it names no such file.
async fn name_in_record(
    node: &NodeHandle,
    id: &str,
    hash: ObjectId,
) -> Result<(String, String), ApiError> {
    let oid = crate::records::resolve_id(node, id).await?;
    let Some(stored) = node.get(oid).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("record={oid}: no such record is stored on this node"),
        ));
    };
    let accord_core::Object::Record(r) = stored.object else {
        return Err(bad(format!("record={oid}: that object is not a record")));
    };
    r.attachments
        .iter()
        .find(|a| a.sha256 == hash)
        .map(|a| (a.name.clone(), a.media_type.clone()))
        .ok_or_else(|| bad(format!("record={oid} names no attachment {hash}")))
}

pub(crate) async fn get_blob(
    State(node): State<NodeHandle>,
    Path(hash): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let hash = hash_of(&hash)?;
    // Named as the record it is downloaded from names it: one member's record naming a file
    // first (a law's PDF others attach later) must not name it for every member's readers.
    let named_by = match params.iter().find(|(k, _)| k == "record") {
        Some((_, id)) => Some(name_in_record(&node, id, hash).await?),
        None => None,
    };
    let Some(view) = node.blob(hash).await else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("attachment {hash} is not held by this node"),
        ));
    };
    let (name, media) = named_by
        .or_else(|| {
            view.meta
                .as_ref()
                .map(|m| (m.name.clone(), m.media_type.clone()))
        })
        .unwrap_or_else(|| {
            (
                format!("{hash}.bin"),
                "application/octet-stream".to_string(),
            )
        });
    let size = view.size;
    let (status, start, end) = match range(&headers, size) {
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Ok(None) => (StatusCode::OK, 0, size.saturating_sub(1)),
        Err(()) => {
            let mut r = ApiError(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("range: not within the file's {size} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    let path = view.path.clone();
    let body = crate::pieces(
        (None::<std::fs::File>, len),
        move |(file, left): &mut (Option<std::fs::File>, u64)| {
            if *left == 0 {
                return Ok(None);
            }
            let f = match file {
                Some(f) => f,
                None => {
                    let mut f = std::fs::File::open(&path)?;
                    f.seek(SeekFrom::Start(start))?;
                    file.insert(f)
                }
            };
            let mut buf = vec![0u8; PIECE.min(*left as usize)];
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            *left -= n as u64;
            Ok(Some(Bytes::from(buf)))
        },
    );
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(served_type(&media)),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition(&name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{hash}\"")) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(r)
}

/// Reads a request's body to its end, or past `limit` bytes, keeping none of it.
async fn discard(body: Body, limit: usize) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        read = read.saturating_add(chunk.len());
        if read > limit {
            break;
        }
    }
}

/// The body length a request announces (`Content-Length`), when it does and is a number.
fn announced_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Stores a file for a record this node's publisher submits (before or after the record):
/// the body must hash to the path's SHA-256.
pub(crate) async fn put_blob(
    State(node): State<NodeHandle>,
    Extension(BodyTimeout(body_timeout)): Extension<BodyTimeout>,
    Extension(UploadSlots(slots, queue)): Extension<UploadSlots>,
    Path(hash): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let hash = hash_of(&hash)?;
    let limit = usize::try_from(node.trust().limits().max_attachment_bytes).unwrap_or(usize::MAX);
    // Over the charter's limit, below the disk's floor, or with an announced length that would
    // not fit above the floor, the upload is refused before any of it is kept.
    let room = match announced_length(&headers) {
        Some(len) if len > limit as u64 => {
            return Err(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the file is {len} bytes, over the charter's limit of {limit} bytes"),
            ));
        }
        Some(len) => node.disk_room_for(len),
        None => node.disk_check(),
    };
    if let Err(e) = room {
        // The body (within the charter's limit) is read and dropped chunk by chunk, never held
        // whole nor written: a client still sending it would otherwise meet a reset connection
        // instead of this answer.
        let _ =
            tokio::time::timeout(body_timeout * UPLOAD_TIMEOUT_FACTOR, discard(body, limit)).await;
        return Err(ApiError::from(e));
    }
    // One of the upload slots, waited for as long as an upload may take, in a queue of
    // bounded length.
    let busy = |message: String| {
        let mut r = ApiError(StatusCode::SERVICE_UNAVAILABLE, message).into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        r
    };
    let Ok(place) = queue.try_acquire_owned() else {
        // Read and dropped, as below the disk's floor: a client still sending would otherwise
        // meet a reset connection instead of this answer (one that waits to be asked for the
        // body, `Expect: 100-continue`, is not asked).
        let asks = headers
            .get(header::EXPECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if !asks {
            let _ =
                tokio::time::timeout(body_timeout * UPLOAD_TIMEOUT_FACTOR, discard(body, limit))
                    .await;
        }
        return Ok(busy(format!(
            "{UPLOADS_AT_ONCE} uploads are being received and {UPLOADS_WAITING} wait: try again shortly"
        )));
    };
    let waited =
        tokio::time::timeout(body_timeout * UPLOAD_TIMEOUT_FACTOR, slots.acquire_owned()).await;
    drop(place);
    let Ok(Ok(_slot)) = waited else {
        return Ok(busy(format!(
            "{UPLOADS_AT_ONCE} uploads are being received: try again when one has ended"
        )));
    };
    let bytes = tokio::time::timeout(
        body_timeout * UPLOAD_TIMEOUT_FACTOR,
        axum::body::to_bytes(body, limit),
    )
    .await
    .map_err(|_| {
        ApiError(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the file did not arrive within {} s ({UPLOAD_TIMEOUT_FACTOR} × api.body_timeout_secs)",
                (body_timeout * UPLOAD_TIMEOUT_FACTOR).as_secs()
            ),
        )
    })?
    .map_err(|e| {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the file is over the charter's limit of {limit} bytes ({e})"),
        )
    })?;
    let size = bytes.len();
    // Handed over without a copy: the body is held once.
    node.put_blob(hash, Vec::from(bytes))
        .await
        .map_err(|e| match e {
            accord_node::NodeError::DiskLow(_) | accord_node::NodeError::NoRoom(_) => {
                ApiError::from(e)
            }
            e => bad(e.to_string()),
        })?;
    Ok(axum::Json(serde_json::json!({"sha256": hash.to_string(), "size": size})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_names() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(range(&h("bytes=2-4"), 10), Ok(Some((2, 4))));
        assert_eq!(range(&h("bytes=8-"), 10), Ok(Some((8, 9))));
        assert_eq!(range(&h("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(range(&h("bytes=5-100"), 10), Ok(Some((5, 9))));
        assert_eq!(range(&h("bytes=10-"), 10), Err(()));
        assert_eq!(range(&h("bytes=4-2"), 10), Err(()));
        assert_eq!(range(&h("bytes=0-1,3-4"), 10), Ok(None));
        assert_eq!(range(&h("items=0-1"), 10), Ok(None));
        assert_eq!(
            disposition("Приказ №5 \"new\".pdf"),
            "attachment; filename=\"______ _5 _new_.pdf\"; filename*=UTF-8''%D0%9F%D1%80%D0%B8%D0%BA%D0%B0%D0%B7%20%E2%84%965%20%22new%22.pdf"
        );
        // Saved under the name the page shows, not reversed by a hidden override.
        assert_eq!(
            disposition("ok\u{202E}fdp.exe"),
            "attachment; filename=\"okfdp.exe\"; filename*=UTF-8''okfdp.exe"
        );
        assert_eq!(served_type("text/html"), "application/octet-stream");
        assert_eq!(served_type("image/svg+xml"), "application/octet-stream");
        assert_eq!(served_type("text/plain"), "text/plain; charset=utf-8");
    }
}
