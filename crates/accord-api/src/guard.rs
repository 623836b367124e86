//! What every request passes through before and after its handler: a request for a host name
//! the node was not given refused (DNS rebinding; the CLI and the probes aside), another site's embedding or
//! script reading refused, `OPTIONS` answered, CORS only for configured origins, cross-origin
//! writes refused, the browser's protections asked for on every answer (a content security
//! policy on pages, no framing, no sniffing, no referrer outside the node, not kept by shared
//! caches), and every error answered as JSON `{"error": …}` that says what went wrong.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// The methods the API answers (PUT: attachment uploads, `/v1/blobs/{sha256}`).
const ALLOW: &str = "GET, HEAD, POST, PUT, OPTIONS";
/// Most bytes of a handler's plain-text error read back to wrap it in JSON.
const MAX_ERROR_TEXT: usize = 64 * 1024;

/// The policy of the web pages: no script, frame, plugin or form of another origin, styles
/// of the node's sheet and its own attributes (a member's colour), images of the node only.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// What a request is checked against: the origins allowed to call the API from a browser
/// (`api.cors_origins`), and the host names a browser may reach the node by (`api.hosts`).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    origins: Arc<Vec<String>>,
    hosts: Arc<Vec<String>>,
}

impl Policy {
    pub fn new(origins: &[String], hosts: &[String]) -> Policy {
        Policy {
            origins: Arc::new(origins.to_vec()),
            hosts: Arc::new(
                hosts
                    .iter()
                    .map(|h| h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase())
                    .collect(),
            ),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Whether a browser may reach the node by `authority` (a `Host` header: a name or an
    /// address, with or without a port). IP addresses and `localhost` always (no name of the
    /// attacker's resolves to them through a page), names only when configured.
    fn host_allowed(&self, authority: &str) -> bool {
        if let Some(rest) = authority.strip_prefix('[') {
            // An IPv6 address, its zone aside; never a name.
            let address = rest.split(']').next().unwrap_or("");
            let address = address.split('%').next().unwrap_or("");
            return address.parse::<std::net::Ipv6Addr>().is_ok();
        }
        let name = match authority.rsplit_once(':') {
            Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => authority,
        };
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        // Not the names under `localhost.`: some browsers and resolvers ask the network's DNS
        // for them, which a hostile network answers.
        name.parse::<Ipv4Addr>().is_ok() || name == "localhost" || self.hosts.contains(&name)
    }
}

/// Whether the Host of a request needs checking: every request's but the CLI's (which sends
/// [`crate::CLIENT_HEADER`], a `Sec-` header no page's script may set) and the probes'
/// (`/healthz`, `/readyz`, `/metrics`, which load balancers and Prometheus reach by whatever
/// name they were given, and which tell a page little). Browsers cannot be told apart by what
/// they send: a page served over plain HTTP gets no `Sec-Fetch-*` headers, and a script may
/// set its own `User-Agent`.
fn host_checked(headers: &header::HeaderMap, path: &str) -> bool {
    !headers.contains_key(crate::CLIENT_HEADER)
        && !matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The last minute (since the epoch) a refused host name was logged: at most one line a minute.
static HOST_WARNED: AtomicU64 = AtomicU64::new(0);

/// A request for a host name the node was not given: 421, said on a page to a browser that
/// opened it, and in the log for the operator (whose proxy may pass a name `api.hosts`
/// lacks).
fn misdirected(host: &str, wants_html: bool) -> Response {
    let minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60);
    if HOST_WARNED.swap(minute, Ordering::Relaxed) != minute {
        tracing::warn!(
            host = %host.chars().take(255).collect::<String>(),
            "a request for a host name not in api.hosts was refused (421); add the name if the node is reached by it"
        );
    }
    let message = format!(
        "this node does not answer for the host name {host:?}: its operator lists the names it is reached by in api.hosts (localhost and IP addresses are always answered, and the accord command-line tool by any name)"
    );
    if wants_html {
        let page = maud::html! {
            (maud::DOCTYPE)
            html {
                head { meta charset="utf-8"; title { "Accord: 421" } }
                body {
                    p { (message) }
                    p lang="ru" {
                        "Этот узел не отвечает по имени «" (host) "». Его администратор перечисляет имена, по которым к узлу обращаются, в api.hosts (по localhost и IP-адресам узел отвечает всегда)."
                    }
                }
            }
        };
        let mut r = (StatusCode::MISDIRECTED_REQUEST, page.into_string()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return r;
    }
    ApiError(StatusCode::MISDIRECTED_REQUEST, message).into_response()
}

/// Whether another site's page may have this request answered: a link followed to the node
/// (a top-level navigation) or a page of an origin in `api.cors_origins`, never a frame, an
/// image, a script or a fetch of another site (which could hold export slots, or tell what
/// the node holds by what loads).
fn cross_site_refused(headers: &header::HeaderMap, origin_allowed: bool) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    get("sec-fetch-site") == Some("cross-site")
        && !origin_allowed
        && !(get("sec-fetch-mode") == Some("navigate") && get("sec-fetch-dest") == Some("document"))
}

/// The browser's protections, on every answer that does not set its own.
fn protect(resp: &mut Response) {
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html"));
    let h = resp.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    // Links out of the node (a record's sources) do not tell the site which node read them.
    set(header::REFERRER_POLICY, "same-origin");
    set(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    // What the node answers is not kept by a proxy or shared cache; a browser asks again.
    set(header::CACHE_CONTROL, "private, no-cache");
    if html {
        set(header::CONTENT_SECURITY_POLICY, PAGE_POLICY);
    }
}

/// The middleware: see the module documentation.
pub async fn guard(State(policy): State<Policy>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let allowed = origin.as_deref().filter(|o| policy.allows(o));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // A Host that is no text is no name of the node's either: refused, not let through.
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| req.uri().authority().map(|a| a.to_string()));

    let mut resp = if let Some(h) = host.as_deref()
        && host_checked(req.headers(), &path)
        && !policy.host_allowed(h)
    {
        let wants_html = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        misdirected(h, wants_html)
    } else if cross_site_refused(req.headers(), allowed.is_some()) {
        ApiError(
            StatusCode::FORBIDDEN,
            "another site's page may link to this node but not embed or read it (api.cors_origins lists the origins that may call the API)".to_string(),
        )
        .into_response()
    } else if method == Method::OPTIONS {
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
    protect(&mut resp);
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
    // A 503 says when to come back only where its handler said so: `/readyz`'s "restart the
    // node" or "the disk is full" are not over in five seconds.
    if !parts.headers.contains_key(header::RETRY_AFTER) {
        out.headers_mut().remove(header::RETRY_AFTER);
    }
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
