//! What every request passes through before and after its handler: `OPTIONS` answered, CORS
//! only for configured origins, cross-origin writes refused, and every error answered as JSON
//! `{"error": …}` that says what went wrong.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// The methods the API answers (PUT: attachment uploads, `/v1/blobs/{sha256}`).
const ALLOW: &str = "GET, HEAD, POST, PUT, OPTIONS";
/// Most bytes of a handler's plain-text error read back to wrap it in JSON.
const MAX_ERROR_TEXT: usize = 64 * 1024;

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default)]
pub struct Origins(pub Arc<Vec<String>>);

impl Origins {
    fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// The middleware: see the module documentation.
pub async fn guard(State(origins): State<Origins>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let allowed = origin.as_deref().filter(|o| origins.allows(o));
    let method = req.method().clone();
    let path = req.uri().path().to_string();

    let mut resp = if method == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
        if allowed.is_some() {
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, accept, last-event-id"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        r
    } else if (method == Method::POST || method == Method::PUT)
        && let Some(o) = origin.as_deref()
        && allowed.is_none()
    {
        // A browser page of another origin: whatever its request looks like, it may not write.
        ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "requests from web origin {o} are not allowed (api.cors_origins lists the origins that are)"
            ),
        )
        .into_response()
    } else {
        json_errors(next.run(req).await, &method, &path).await
    };
    if let Some(o) = allowed
        && let Ok(v) = HeaderValue::from_str(o)
    {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
    resp
}

/// Turns an error answer that is not JSON (axum's own rejections, a missing route, a plain-text
/// message) into `{"error": …}`; HTML pages of the web UI are left as they are.
async fn json_errors(resp: Response, method: &Method, path: &str) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match (status, text.is_empty()) {
        (StatusCode::NOT_FOUND, true) => format!("no such endpoint: {path}"),
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            // The route's own methods are in the `Allow` header axum sets on the answer (after
            // this layer); the API's whole list would name methods this route refuses.
            match parts
                .headers
                .get(header::ALLOW)
                .and_then(|a| a.to_str().ok())
            {
                Some(a) if !a.is_empty() => {
                    format!("method {method} is not allowed on {path} (allowed: {a})")
                }
                _ => format!(
                    "method {method} is not allowed on {path} (the Allow header names the methods it takes)"
                ),
            }
        }
        (StatusCode::PAYLOAD_TOO_LARGE, _) => format!(
            "request body too large: at most {} bytes",
            crate::MAX_SUBMIT_BYTES
        ),
        (_, true) => status.canonical_reason().unwrap_or("error").to_lowercase(),
        (_, false) => text,
    };
    let mut out = ApiError(status, message).into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
