//! Commands that run or talk to a node: `run`, `submit`, `publish`, `status`, `peers`.

use std::path::{Path, PathBuf};

use accord_core::{ObjectId, TrustView};
use accord_node::{Node, NodeConfig};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::{objects_cmd, util};

/// `--node` as a URL: a bare `host:port` (as `accord init --api` takes it) means `http://`;
/// `https://` reaches a node behind a TLS reverse proxy (its certificate checked as
/// [`client_with_timeout`] says); another scheme is refused by name.
pub fn node_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    let url = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(url),
        Ok(u) => Err(format!(
            "{value:?}: give the node's API as http://HOST:PORT or https://HOST (not {}:)",
            u.scheme()
        )),
        Err(e) => Err(format!(
            "{value:?} is not an address of a node's API ({e}); for example http://127.0.0.1:7401"
        )),
    }
}

/// Default API address of a local node.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:7401";

pub(crate) fn env_pairs() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("ACCORD_"))
        .collect()
}

/// `accord reindex --config FILE`: rebuilds the search index of a stopped node.
pub fn reindex(config: &Path) -> Result<()> {
    let cfg = NodeConfig::load(config, &env_pairs())?;
    crate::util::existing_store(&cfg.data_dir)?;
    let n = accord_node::reindex(&cfg)?;
    println!(
        "search index rebuilt: {}",
        util::count(n, "record", "records")
    );
    Ok(())
}

/// `accord run --config FILE`: runs the node until SIGINT or SIGTERM.
pub async fn run(config: &Path) -> Result<()> {
    let mut signals = StopSignals::new();
    let mut cfg = NodeConfig::load(config, &env_pairs())?;
    cfg.attachments.extractor = Some(own_program()?);
    raise_open_file_limit();
    let api_addr = cfg.api.listen;
    let http = accord_api::HttpOptions::from(&cfg.api);
    // Bind the API first: a taken port is reported before anything else starts.
    let listener = tokio::net::TcpListener::bind(api_addr)
        .await
        .with_context(|| format!("config field api.listen: cannot listen on {api_addr}"))?;
    // Named at start: an environment variable (ACCORD_DATA_DIR under the systemd unit and the
    // container image) overrides node.toml, and a node started on the wrong, empty directory
    // fetches the whole federation again without another word.
    let data_dir = cfg.data_dir.clone();
    // A start may take minutes (a search index rebuilt after an upgrade): a signal meanwhile
    // ends it, as it would end a process that had not yet listened for signals.
    let node = tokio::select! {
        node = Node::spawn(cfg) => node?,
        () = signals.next() => {
            eprintln!("stopped while starting: the next start begins again what this one was doing");
            std::process::exit(130);
        }
    };
    eprintln!(
        "accord node {} (member {}) running; data in {}; API on http://{}; Ctrl-C to stop",
        node.peer_id(),
        node.member(),
        data_dir.display(),
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(accord_api::serve(node.clone(), listener, http, async {
        let _ = stop_rx.await;
    }));
    signals.next().await;
    eprintln!("stopping… (a second Ctrl-C stops at once)");
    let _ = stop_tx.send(());
    let forced = signals
        .stop_within(async {
            let _ = api.await;
            node.shutdown().await;
        })
        .await;
    if let Some(code) = forced {
        std::process::exit(code);
    }
    eprintln!("stopped");
    Ok(())
}

/// How long a stop may take before the process ends anyway: within systemd's
/// `TimeoutStopSec=60s` (deploy/accord.service) and the compose file's `stop_grace_period`,
/// so the node ends itself, saying why, before it is killed.
const STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(50);

/// This program, which extracts attachments' text as `accord extract-text` in a child process.
pub fn own_program() -> Result<std::path::PathBuf> {
    std::env::current_exe().context(
        "cannot find this program's path (to extract attachments' text in a child process)",
    )
}

/// Raises the soft open-file limit to the hard one: every peer and HTTP client is a file
/// descriptor, and distributions often start services with a soft limit of 1,024.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// SIGINT and SIGTERM, listened for from the start: a second signal sent while the first is
/// being handled is kept for the next wait, not lost between two listeners.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    pub(crate) fn new() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for {name}: it will not stop the node");
                    None
                }
            };
            StopSignals {
                int: listen(SignalKind::interrupt(), "SIGINT"),
                term: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// The next SIGINT or SIGTERM (never, for one that could not be listened for).
    pub(crate) async fn next(&mut self) {
        #[cfg(unix)]
        {
            let StopSignals { int, term } = self;
            tokio::select! {
                () = recv_or_never(int) => {}
                () = recv_or_never(term) => {}
            }
        }
        #[cfg(not(unix))]
        wait_for_signal().await;
    }

    /// Runs `stopping` (a stop begun on a first signal) to its end, unless a second signal comes
    /// or [`STOP_DEADLINE`] passes: then it says so and gives the exit code the process is to
    /// end with at once (130, or 1), once the caller has cleaned up what it must. Nothing
    /// acknowledged is lost that way (each acknowledgement followed its flush); the search
    /// index catches up from its last commit at the next start.
    pub(crate) async fn stop_within(
        &mut self,
        stopping: impl std::future::Future<Output = ()>,
    ) -> Option<i32> {
        tokio::select! {
            () = stopping => None,
            () = self.next() => {
                eprintln!("stopped at once, on a second signal: the next start indexes what the search index had not committed");
                Some(130)
            }
            () = tokio::time::sleep(STOP_DEADLINE) => {
                eprintln!(
                    "not stopped within {} s (a merge of the search index, a disk that does not answer): stopped at once; the next start indexes what was not committed",
                    STOP_DEADLINE.as_secs()
                );
                Some(1)
            }
        }
    }
}

/// The next signal of `s`; never, when it could not be listened for.
#[cfg(unix)]
async fn recv_or_never(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Ctrl-C, where there are no Unix signals to listen for.
#[cfg(not(unix))]
async fn wait_for_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The environment variable naming a file of PEM certificates that HTTPS trusts besides the
/// system's store: the certificate authority of a node's TLS reverse proxy.
pub(crate) const CA_CERT_VAR: &str = "ACCORD_CA_CERT";

/// Set once a client was built without a system trust store (none could be loaded): HTTPS then
/// trusts [`CA_CERT_VAR`]'s certificates only, and a refused certificate's hint says so.
static NO_SYSTEM_STORE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The clients this process built, one per kind: the system's store and the certificates are
/// read once, and connections are reused.
static BOUNDED: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
static UNBOUNDED: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();

/// An HTTP client for a node's API whose requests take at most 30 s each.
pub(crate) fn client() -> Result<reqwest::Client> {
    client_with_timeout(Some(std::time::Duration::from_secs(30)))
}

/// An HTTP client for a node's API, each request bounded by `timeout` when given (without one,
/// connecting still is: a stream or a backup runs as long as it lasts). HTTPS checks the node's
/// certificate against the system's trust store and the certificates of [`CA_CERT_VAR`]; where
/// the system has no store (a minimal container), against those alone, and plain HTTP needs
/// neither. Redirects are not followed: the API answers where it is asked, so a redirect comes
/// from something in between (a proxy sending `http://` to `https://`), and is named with the
/// address to give instead.
pub(crate) fn client_with_timeout(timeout: Option<std::time::Duration>) -> Result<reqwest::Client> {
    let cell = if timeout.is_some() {
        &BOUNDED
    } else {
        &UNBOUNDED
    };
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    // One process-wide TLS provider: ring, which libp2p's noise builds already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let extra = extra_roots()?;
    let builder = |system_store: bool| {
        // Says it is no web page's script (no script may set a `Sec-` header), so the node
        // answers it by whatever name `--node` gives, as it does browsers only for `api.hosts`.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            accord_api::CLIENT_HEADER,
            reqwest::header::HeaderValue::from_static("cli"),
        );
        let mut b = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let to = attempt.url().to_string();
                attempt.error(format!(
                    "the address answers with a redirect to {to}: give --node as that address"
                ))
            }));
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        if system_store {
            for c in &extra {
                b = b.add_root_certificate(c.clone());
            }
            b
        } else {
            b.tls_certs_only(extra.iter().cloned())
        }
    };
    let built = match builder(true).build() {
        Ok(c) => c,
        Err(e) => {
            // No system trust store: HTTPS then trusts ACCORD_CA_CERT's certificates only.
            tracing::debug!(error = %e, "no system trust store: HTTPS trusts {CA_CERT_VAR} alone");
            NO_SYSTEM_STORE.store(true, std::sync::atomic::Ordering::Relaxed);
            builder(false).build().context("HTTP client")?
        }
    };
    let _ = cell.set(built.clone());
    Ok(built)
}

/// The certificates of [`CA_CERT_VAR`] (none when it is unset or empty), each checked as a
/// trust anchor here, so a bad one is named by the variable rather than failing every request.
fn extra_roots() -> Result<Vec<reqwest::Certificate>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let Some(path) = std::env::var_os(CA_CERT_VAR).filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let shown = Path::new(&path).display().to_string();
    let pem =
        std::fs::read(&path).with_context(|| format!("{CA_CERT_VAR}={shown}: cannot read it"))?;
    let mut certs = Vec::new();
    let mut anchors = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(&pem) {
        let der = der.map_err(|e| anyhow!("{CA_CERT_VAR}={shown}: not PEM certificates: {e}"))?;
        anchors.add(der.clone()).map_err(|e| {
            anyhow!(
                "{CA_CERT_VAR}={shown}: certificate {} is not usable: {e}",
                certs.len() + 1
            )
        })?;
        certs.push(
            reqwest::Certificate::from_der(&der)
                .map_err(|e| anyhow::Error::new(e).context(format!("{CA_CERT_VAR}={shown}")))?,
        );
    }
    if certs.is_empty() {
        bail!("{CA_CERT_VAR}={shown}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)");
    }
    Ok(certs)
}

/// The error of a request that did not reach the node: "cannot reach the node at …", with the
/// way out when the cause is the node's TLS certificate.
pub(crate) fn unreachable(node: &str) -> impl FnOnce(reqwest::Error) -> anyhow::Error + '_ {
    move |e| {
        let message = match tls_hint(&e) {
            Some(hint) => format!("cannot reach the node at {node} ({hint})"),
            None => format!("cannot reach the node at {node}"),
        };
        anyhow::Error::new(e).context(message)
    }
}

/// The hint a refused TLS certificate gets: an https request whose causes (not its URL, which
/// may hold any word) name a certificate. An unknown issuer is what a private authority gives.
/// (An expired certificate, or one for another name, is "refused", without that advice.)
pub(crate) fn tls_hint(e: &reqwest::Error) -> Option<String> {
    if e.url().is_none_or(|u| u.scheme() != "https") {
        return None;
    }
    let mut causes = String::new();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        causes.push_str(&format!(": {c}"));
        cause = c.source();
    }
    if !causes.contains("certificate") {
        return None;
    }
    let ca_set = std::env::var_os(CA_CERT_VAR).is_some_and(|p| !p.is_empty());
    // An issuer of the same name with another key reads as a bad signature.
    let issuer = causes.contains("UnknownIssuer") || causes.contains("BadSignature");
    Some(if !issuer {
        "the node's TLS certificate is refused (expired, for another name, or not for a server)"
            .to_owned()
    } else if ca_set {
        format!(
            "the node's TLS certificate is not trusted: {CA_CERT_VAR} does not hold the authority that issued it (the authority's certificate, not the server's)"
        )
    } else if NO_SYSTEM_STORE.load(std::sync::atomic::Ordering::Relaxed) {
        format!(
            "the node's TLS certificate is not trusted: this machine has no trust store (install ca-certificates), or set {CA_CERT_VAR} to the PEM file of the authority that issued it"
        )
    } else {
        format!(
            "the node's TLS certificate is not trusted; if its proxy uses a private certificate authority, set {CA_CERT_VAR} to that authority's PEM file"
        )
    })
}

/// Reads a JSON answer; an error status becomes an error that names the node's reason.
pub(crate) async fn json_answer(resp: reqwest::Response, what: &str) -> Result<Value> {
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .with_context(|| format!("{what}: {status}: the answer was cut off"))?;
    let v: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => {
            // Not the node's own answer: a proxy's error page, most often.
            let text = String::from_utf8_lossy(&bytes);
            let text: String = text
                .chars()
                .filter(|c| !c.is_control() || *c == ' ')
                .take(160)
                .collect();
            bail!(
                "{what}: {status}, and the answer is not the node's JSON (a proxy in between?): {text}"
            );
        }
    };
    if !status.is_success() {
        bail!(
            "{what}: {status}: {}",
            v["error"].as_str().unwrap_or("error")
        );
    }
    Ok(v)
}

/// GET a JSON answer from the node's API.
pub(crate) async fn get_json(node: &str, path: &str, params: &[(String, String)]) -> Result<Value> {
    let url = format!("{}{path}", node.trim_end_matches('/'));
    // Asked again while the node is busy with other searches, so that an export paging
    // through the records does not stop half way.
    let resp = with_retries("the node is busy: asking again".into(), || async {
        client()?
            .get(&url)
            .query(params)
            .send()
            .await
            .map_err(unreachable(node))
    })
    .await?;
    json_answer(resp, &url).await
}

/// Times a submission (or a question) the node is too busy to read is sent again.
const SUBMIT_RETRIES: u32 = 5;

/// The answer to `send`, sent again while the node answers 503 with `Retry-After` (a node busy
/// with other work says when to come back): after the wait it names, at most
/// [`SUBMIT_RETRIES`] times, saying so on stderr (`busy`, then the wait).
async fn with_retries<F, Fut>(busy: String, send: F) -> Result<reqwest::Response>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<reqwest::Response>>,
{
    let mut tries = 0;
    loop {
        let resp = send().await?;
        match retry_after(&resp) {
            Some(secs) if resp.status().as_u16() == 503 && tries < SUBMIT_RETRIES => {
                tries += 1;
                eprintln!("{busy} in {secs} s ({tries} of {SUBMIT_RETRIES})");
                tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
            }
            _ => return Ok(resp),
        }
    }
}

/// A 503's `Retry-After` in seconds (at most a minute), if it gives one.
fn retry_after(resp: &reqwest::Response) -> Option<u64> {
    let secs = resp
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(secs.clamp(1, 60))
}

async fn post_objects(node: &str, objects: &[Vec<u8>]) -> Result<Vec<Value>> {
    post_objects_to(node, "/v1/objects", objects).await
}

/// [`post_objects`] to `path` (with its query).
async fn post_objects_to(node: &str, path: &str, objects: &[Vec<u8>]) -> Result<Vec<Value>> {
    // One object is sent as is; several as a CBOR array of envelopes.
    let body = if objects.len() == 1 {
        objects[0].clone()
    } else {
        let mut b = cbor_array_head(objects.len());
        for o in objects {
            b.extend_from_slice(o);
        }
        b
    };
    let url = format!("{}{path}", node.trim_end_matches('/'));
    // Sent again while the node is busy receiving other submissions, rather than left half
    // submitted.
    let busy = "the node is busy receiving other submissions: sending again";
    let resp = with_retries(busy.into(), || async {
        client()?
            .post(&url)
            .header("content-type", "application/cbor")
            .body(body.clone())
            .send()
            .await
            .map_err(unreachable(node))
    })
    .await?;
    let v = json_answer(resp, "the node refused the submission").await?;
    Ok(v["results"].as_array().cloned().unwrap_or_default())
}

/// `objects` cut into the requests that carry them, in order: each within the node's bounds on
/// a submission, [`accord_api::MAX_SUBMIT_OBJECTS`] objects and [`accord_api::MAX_SUBMIT_BYTES`]
/// of body (an export of large records passes the bytes long before the count). An object
/// larger than a body goes alone, for the node to refuse by name.
fn submissions(objects: &[Vec<u8>]) -> Vec<&[Vec<u8>]> {
    // The array's head takes at most 9 bytes.
    let room = accord_api::MAX_SUBMIT_BYTES - 9;
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, o) in objects.iter().enumerate() {
        if i > start && (i - start == accord_api::MAX_SUBMIT_OBJECTS || bytes + o.len() > room) {
            out.push(&objects[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += o.len();
    }
    if start < objects.len() {
        out.push(&objects[start..]);
    }
    out
}

fn cbor_array_head(n: usize) -> Vec<u8> {
    match n {
        0..=23 => vec![0x80 | n as u8],
        24..=0xff => vec![0x98, n as u8],
        0x100..=0xffff => {
            let mut v = vec![0x99];
            v.extend_from_slice(&(n as u16).to_be_bytes());
            v
        }
        _ => {
            let mut v = vec![0x9a];
            v.extend_from_slice(&(n as u32).to_be_bytes());
            v
        }
    }
}

/// Prints one line per verdict; returns how many were not accepted or duplicates.
fn print_results(results: &[Value]) -> usize {
    let mut bad = 0;
    for r in results {
        let status = r["status"].as_str().unwrap_or("?");
        let id = r["id"].as_str().unwrap_or("-");
        match (r["code"].as_str(), r["reason"].as_str()) {
            (Some(code), Some(reason)) => println!("{status:<10} {id}  [{code}] {reason}"),
            (None, Some(reason)) => println!("{status:<10} {id}  {reason}"),
            _ => println!("{status:<10} {id}"),
        }
        if !matches!(status, "accepted" | "duplicate") {
            bad += 1;
        }
    }
    bad
}

/// How long an upload of `bytes` may take: the API's 30 s, and a second per 100 KiB beyond
/// them (a 50-MiB file over a 1-Mbit/s office link), at most the node's own bound on an upload
/// (`UPLOAD_SECS`).
fn upload_time(bytes: usize) -> std::time::Duration {
    let secs = 30 + (bytes as u64).div_ceil(100 * 1024);
    std::time::Duration::from_secs(secs.min(UPLOAD_SECS))
}

/// The longest the node takes an upload for (its request timeout times its upload factor).
const UPLOAD_SECS: u64 = 600;

/// Uploads attachment files to the node (`PUT /v1/blobs/{sha256}`), each with a time limit
/// sized to it.
async fn upload(node: &str, files: &[objects_cmd::AttachedFile]) -> Result<()> {
    for (hash, path) in files {
        let bytes = util::read(path)?;
        let size = bytes.len();
        // The node may first wait for an upload slot, as long as it takes an upload.
        let limit = upload_time(size) + std::time::Duration::from_secs(UPLOAD_SECS);
        let url = format!("{}/v1/blobs/{hash}", node.trim_end_matches('/'));
        // Sent again while others wait for the node's upload slots.
        let busy = format!(
            "{}: the node is busy receiving other files: sending again",
            path.display()
        );
        let resp = with_retries(busy, || async {
            client()?
                .put(&url)
                .timeout(limit)
                .header("content-type", "application/octet-stream")
                .body(bytes.clone())
                .send()
                .await
                .map_err(|e| {
                if e.is_timeout() {
                    anyhow!(
                        "{}: the upload ({:.1} MiB) did not finish within {} s: the link to {node} is too slow for it, or the node was taking other uploads all that time; try again, or from closer to the node",
                        path.display(),
                        size as f64 / (1024.0 * 1024.0),
                        limit.as_secs()
                    )
                } else {
                    unreachable(node)(e)
                }
            })
        })
        .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            bail!(
                "{}: the node refused the file: {status} {body}",
                path.display()
            );
        }
        eprintln!("uploaded {}  sha256 {hash}", path.display());
    }
    Ok(())
}

/// The files given with `--attach` against the files the records name: a file no record names
/// (changed after signing, or the wrong one) is refused, and so is a file named by a new record
/// of this node's own member that is neither given nor held by the node — both before anything
/// is sent, naming them. Another member's records, and records the node holds already, are the
/// node's to complete: it fetches their files from its peers.
async fn check_attached(
    objects: &[Vec<u8>],
    attached: &[objects_cmd::AttachedFile],
    node: &str,
) -> Result<()> {
    let limits = accord_core::Limits::default();
    let mut records: Vec<(ObjectId, accord_core::Record)> = Vec::new();
    for bytes in objects {
        let Ok(signed) = accord_core::SignedObject::decode_draft(bytes, usize::MAX, limits.scan())
        else {
            continue; // the node names what is wrong with it
        };
        if let Ok(accord_core::Object::Record(r)) =
            accord_core::Object::decode_body(signed.body(), &limits)
            && !r.attachments.is_empty()
        {
            records.push((signed.id(), r));
        }
    }
    for (hash, path) in attached {
        if !records
            .iter()
            .any(|(_, r)| r.attachments.iter().any(|a| a.sha256 == *hash))
        {
            bail!(
                "--attach {}: no record being submitted names this file (sha256 {hash}); was it changed after signing?",
                path.display()
            );
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    let own = get_json(node, "/v1/status", &[]).await?["member"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let base = node.trim_end_matches('/');
    let held = |path: String| async move {
        Ok::<bool, anyhow::Error>(
            client()?
                .head(format!("{base}{path}"))
                .send()
                .await
                .map_err(unreachable(node))?
                .status()
                .is_success(),
        )
    };
    for (id, r) in &records {
        if r.member.as_str() != own {
            continue;
        }
        let stored = held(format!("/v1/objects/{id}")).await?;
        for a in &r.attachments {
            if attached.iter().any(|(h, _)| *h == a.sha256)
                || held(format!("/v1/blobs/{}", a.sha256)).await?
            {
                continue;
            }
            if stored {
                // Held without its file (sent some other way, or retracted and collected):
                // said, not refused, since the record itself is no news to the node.
                eprintln!(
                    "warning: record {id} attaches {:?} (sha256 {}), which the node does not hold: add --attach FILE to supply it",
                    a.name, a.sha256
                );
                continue;
            }
            bail!(
                "the record attaches {:?} (sha256 {}), which is neither given with --attach nor held by the node: add --attach FILE",
                a.name,
                a.sha256
            );
        }
    }
    Ok(())
}

pub async fn submit(files: &[PathBuf], attach: &[PathBuf], node: &str) -> Result<()> {
    let mut attached = Vec::new();
    for p in attach {
        let bytes = util::read(p)?;
        let hash = ObjectId(<sha2::Sha256 as sha2::Digest>::digest(&bytes).into());
        attached.push((hash, p.clone()));
    }
    let mut objects = Vec::new();
    for f in files {
        let data = util::read(f)?;
        let parts = util::split_objects(&data).map_err(|e| anyhow!("{}: {e}", f.display()))?;
        objects.extend(parts.into_iter().map(<[u8]>::to_vec));
    }
    check_attached(&objects, &attached, node).await?;
    upload(node, &attached).await?;
    let mut bad = 0;
    for chunk in submissions(&objects) {
        bad += print_results(&post_objects(node, chunk).await?);
    }
    if bad > 0 {
        bail!(
            "{} not accepted",
            util::count(bad as u64, "object was", "objects were")
        );
    }
    Ok(())
}

/// The node's genesis charter, fetched from it (for `publish` without `--charter`).
/// The node's charter in force: its genesis grown by every amendment the node holds (so a
/// member added or a direction adopted since the genesis is known when signing). Read a version
/// at a time from the charter in force back through each one's `previous` (objects by id, with
/// no export slot to wait for).
async fn node_trust(node: &str) -> Result<TrustView> {
    let fed = get_json(node, "/v1/federation", &[]).await?;
    let genesis_id = fed["federation"]
        .as_str()
        .ok_or_else(|| anyhow!("the node did not say its federation"))?
        .to_string();
    let mut id = fed["charter_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the node did not say its charter in force"))?
        .to_string();
    let version = fed["version"]
        .as_u64()
        .filter(|v| (1..=MAX_CHARTER_VERSIONS).contains(v))
        .ok_or_else(|| anyhow!("the node did not say a plausible charter version"))?;
    let limits = accord_core::Limits::default();
    let mut amendments = Vec::new();
    let mut expected = version;
    let genesis = loop {
        let bytes = fetch_object(node, &id).await?;
        // Each object is the one asked for (its id is its body's hash), and each version the
        // one before the last: a node cannot hand over another chain, nor lead this on.
        let signed =
            accord_core::SignedObject::decode_draft(&bytes, MAX_CHARTER_BYTES, limits.scan())
                .map_err(|e| anyhow!("charter {id}: {e}"))?;
        if signed.id().to_string() != id {
            bail!("the node answered {id} with another object");
        }
        if id == genesis_id {
            // The chain ends at the genesis exactly when version 1 is reached: a node cannot
            // hide the amendments after it by naming the genesis as its charter in force.
            if expected != 1 {
                bail!(
                    "the node said its charter is at version {version}, but its chain ends at \
                     the genesis where version {expected} was expected"
                );
            }
            break bytes;
        }
        let Ok(accord_core::Object::Charter(c)) =
            accord_core::Object::decode_body(signed.body(), &limits)
        else {
            bail!("{id}: the node's charter in force is not a charter");
        };
        if c.version != expected || expected <= 1 {
            bail!(
                "{id}: charter version {} where version {expected} was expected",
                c.version
            );
        }
        expected -= 1;
        amendments.push(util::Named {
            name: format!("charter version {}", c.version),
            bytes,
        });
        id = c
            .previous
            .ok_or_else(|| anyhow!("charter version {} names no previous version", c.version))?
            .to_string();
    };
    let (mut trust, _) = TrustView::from_genesis(&genesis).map_err(|e| anyhow!("charter: {e}"))?;
    amendments.reverse();
    let mut known = util::Accepted::default();
    for (name, r) in util::settle(&mut trust, &mut known, amendments, util::now(), &|_, _| {
        String::new()
    }) {
        if let Err(e) = r {
            eprintln!("warning: the node's {name} does not apply: {e}");
        }
    }
    Ok(trust)
}

/// The most charter versions [`node_trust`] walks back through.
const MAX_CHARTER_VERSIONS: u64 = 1000;

/// The largest charter [`node_trust`] reads (a charter is a few kilobytes; its taxonomy's
/// names make it larger, never near this).
const MAX_CHARTER_BYTES: usize = 1 << 20;

/// A charter of the node by id (CBOR), at most [`MAX_CHARTER_BYTES`].
async fn fetch_object(node: &str, id: &str) -> Result<Vec<u8>> {
    use futures::StreamExt;
    let url = format!("{}/v1/objects/{id}", node.trim_end_matches('/'));
    let resp = client()?
        .get(&url)
        .header("accept", "application/cbor")
        .send()
        .await
        .map_err(unreachable(node))?;
    if !resp.status().is_success() {
        bail!("{url}: {}", resp.status());
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
        if body.len() > MAX_CHARTER_BYTES {
            bail!("{url}: larger than {MAX_CHARTER_BYTES} bytes, no charter");
        }
    }
    Ok(body)
}

pub async fn publish(
    input: &Path,
    attach: &[PathBuf],
    key: &Path,
    charter: Option<(&Path, &[PathBuf])>,
    node: &str,
    again: bool,
) -> Result<()> {
    let trust = match charter {
        Some((c, with)) => util::load_trust(c, with)?.0,
        None => node_trust(node).await?,
    };
    let key = util::load_secret_key(key)?;
    let (obj, files) = objects_cmd::build_record(input, attach, &trust, util::now())?;
    if let accord_core::Object::Record(r) = &obj
        && r.supersedes.is_none()
        && !again
        && let Some((id, created)) = published_already(node, r, &key.public_key()).await
    {
        let title = r.title.get(&r.lang).map(String::as_str).unwrap_or_default();
        bail!(
            "{}: this publisher of {} already has an active record titled \"{title}\": {id} (published {created}). Publishing would add a second record beside it, for good (a retry of a publish that seemed to fail, or an edited note?). To replace it, add `supersedes: {id}` to the front matter; to publish a second record anyway, add --again",
            input.display(),
            r.member
        );
    }
    let signed = obj.sign(&key);
    // The files first: the node references them as soon as the record is accepted.
    upload(node, &files).await?;
    // Answered once the record is searchable too (half a second at most, as a rule): a publish
    // run again at once finds it, and is refused as the duplicate it would be.
    let results = post_objects_to(
        node,
        "/v1/objects?wait=searchable",
        &[signed.as_bytes().to_vec()],
    )
    .await?;
    if print_results(&results) > 0 {
        bail!("the node did not accept the record");
    }
    Ok(())
}

/// An active record of the same publisher (the ministry `key` was delegated to; another
/// ministry of the member may well use the same title, and may not be superseded), kind and
/// title (in the record's language) the node holds: its id and when it was published. `None`
/// when there is none, or the node cannot say — the publisher's delegation unknown to it, a
/// title over the search's 512 characters, the search not finding it among its first 50 hits
/// — and the publish then goes on as asked.
async fn published_already(
    node: &str,
    r: &accord_core::object::Record,
    key: &accord_core::PublicKey,
) -> Option<(String, String)> {
    let title = r.title.get(&r.lang)?.trim();
    let publishers = get_json(node, "/v1/publishers", &[]).await.ok()?;
    let publisher = publishers["members"][r.member.as_str()]
        .as_array()?
        .iter()
        .find(|p| p["publisher_key"] == key.to_string().as_str() && p["status"] == "active")?
        ["name"]
        .as_str()
        .map(accord_search::display_line)?;
    let params: Vec<(String, String)> = [
        ("q", title),
        ("member", r.member.as_str()),
        ("kind", r.kind.as_str()),
        ("publisher", publisher.as_str()),
        ("status", "active"),
        ("limit", "50"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let found = get_json(node, "/v1/records", &params).await.ok()?;
    let shown = accord_search::display_line(title);
    found["items"].as_array()?.iter().find_map(|item| {
        let same = item["titles"][r.lang.as_str()]
            .as_str()
            .is_some_and(|t| t == shown);
        let same = same
            && item["member"] == r.member.as_str()
            && item["publisher"] == publisher.as_str()
            && item["status"] == "active";
        same.then(|| {
            (
                item["id"].as_str().unwrap_or_default().to_string(),
                item["created"].as_str().unwrap_or_default().to_string(),
            )
        })
    })
}

/// The status line of the node's clock against its peers', when they were heard.
fn clock_line(c: &serde_json::Value) -> Option<String> {
    let offset = c["offset_ms"].as_i64()?;
    let nodes = util::count(c["nodes"].as_u64().unwrap_or(0), "node", "nodes");
    // A node of an earlier release gives no members.
    let heard = match c["members"].as_u64() {
        Some(m) => format!("{nodes} of {} heard", util::count(m, "member", "members")),
        None => format!("{nodes} heard"),
    };
    let secs = offset.unsigned_abs() as f64 / 1000.0;
    Some(if c["off"].as_bool() == Some(true) {
        let how = if offset > 0 { "behind" } else { "ahead of" };
        format!(
            "WRONG: {secs:.0} s {how} its peers' ({heard}): check the machine's time synchronisation (NTP)"
        )
    } else {
        format!("in step with its peers' ({secs:.1} s apart; {heard})")
    })
}

pub async fn status(node: &str) -> Result<()> {
    let s = get_json(node, "/v1/status", &[]).await?;
    println!("node        {}", s["peer_id"].as_str().unwrap_or("?"));
    println!("member      {}", s["member"].as_str().unwrap_or("?"));
    println!(
        "federation  {} ({}, charter version {})",
        s["federation_name"].as_str().unwrap_or("?"),
        s["federation"].as_str().unwrap_or("?"),
        s["charter_version"]
    );
    println!(
        "version     accord {} (store schema {}, protocol {})",
        s["version"].as_str().unwrap_or("?"),
        s["store_schema"],
        s["protocol"].as_str().unwrap_or("?")
    );
    println!("uptime      {} s", s["uptime_secs"]);
    println!(
        "peers       {} connected, {} admitted",
        s["peers_connected"], s["peers_admitted"]
    );
    if let Some(c) = s["counts"].as_object() {
        let parts: Vec<String> = c.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("objects     {}", parts.join(", "));
    }
    println!("pending     {}", s["pending"]);
    if let Some(line) = disk_line(&s["disk"]) {
        println!("disk        {line}");
    }
    if let Some(why) = s["restart_needed"].as_str() {
        println!("RESTART     {why}");
    }
    if let Some(why) = s["upgrade_needed"].as_str() {
        println!("UPGRADE     {why}");
    }
    if let Some(line) = clock_line(&s["clock"]) {
        println!("clock       {line}");
    }
    if let Some(peers) = s["sync"].as_array()
        && !peers.is_empty()
    {
        println!("reconciliation (last session per peer, and the one running):");
        for p in peers {
            let r = &p["running"];
            let running = if r.is_object() {
                format!(
                    "  running now: rounds {}  missing {}  fetched {}",
                    r["rounds"], r["missing"], r["fetched"]
                )
            } else {
                String::new()
            };
            // What it listed that this node refused (not fetched again): shown only when some.
            let refused = match p["refused"].as_u64() {
                Some(n) if n > 0 => format!("  refused here {n}"),
                _ => String::new(),
            };
            println!(
                "  {} {}  at {}  rounds {}  bytes out/in {}/{}  missing {}  fetched {}{}{}{}",
                p["member"].as_str().unwrap_or("--"),
                p["peer_id"].as_str().unwrap_or("?"),
                p["last"].as_str().unwrap_or("-"),
                p["rounds"],
                p["bytes_out"],
                p["bytes_in"],
                p["missing"],
                p["fetched"],
                refused,
                p["error"]
                    .as_str()
                    .map(|e| format!("  error: {e}"))
                    .unwrap_or_default(),
                running
            );
        }
    }
    if let Some(l) = s["listen"].as_array() {
        let parts: Vec<&str> = l.iter().filter_map(Value::as_str).collect();
        println!("listening   {}", parts.join(" "));
    }
    needs_no_restart(&s)
}

/// An error when the node says it must be restarted (a store write failed, or its indexer
/// stopped): `accord status` then exits 1, so a container's health check built on it fails.
fn needs_no_restart(status: &Value) -> Result<()> {
    match status["restart_needed"].as_str() {
        Some(why) => anyhow::bail!("the node must be restarted: {why}"),
        None => Ok(()),
    }
}

/// The status's disk line: the free space and the floor, and what the node does below it.
fn disk_line(disk: &Value) -> Option<String> {
    let mib = |v: &Value| v.as_u64().map(|b| b >> 20);
    let min = mib(&disk["min_free_bytes"])?;
    let free = match mib(&disk["free_bytes"]) {
        Some(f) => format!("{f} MiB free"),
        None => "free space unknown".to_string(),
    };
    let floor = if min == 0 {
        "no floor".to_string()
    } else {
        format!("floor {min} MiB (store.min_free_mb)")
    };
    let low = if disk["low"].as_bool() == Some(true) {
        "  BELOW THE FLOOR: taking no new objects until space is freed"
    } else {
        ""
    };
    Some(format!("{free}, {floor}{low}"))
}

pub async fn peers(node: &str) -> Result<()> {
    let v = get_json(node, "/v1/peers", &[]).await?;
    let list = v["peers"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no peers connected");
    }
    for p in list {
        println!(
            "{}  member={}  admitted={}  since={}  {}",
            p["peer_id"].as_str().unwrap_or("?"),
            p["member"].as_str().unwrap_or("-"),
            p["admitted"],
            p["connected_since"].as_str().unwrap_or("?"),
            p["addresses"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Submissions stay within both of the node's bounds, keep every object once and in
    /// order, and send an object larger than a body alone.
    #[test]
    fn submissions_are_cut_by_bytes_as_well_as_by_count() {
        use accord_api::{MAX_SUBMIT_BYTES, MAX_SUBMIT_OBJECTS};
        let check = |objects: &[Vec<u8>]| {
            let parts = submissions(objects);
            let flat: Vec<&Vec<u8>> = parts.iter().flat_map(|p| p.iter()).collect();
            assert_eq!(flat.len(), objects.len());
            assert!(flat.iter().zip(objects).all(|(a, b)| std::ptr::eq(*a, b)));
            for p in &parts {
                let bytes: usize = p.iter().map(Vec::len).sum();
                assert!(!p.is_empty() && p.len() <= MAX_SUBMIT_OBJECTS);
                assert!(p.len() == 1 || bytes + 9 <= MAX_SUBMIT_BYTES, "{bytes}");
            }
            parts.len()
        };
        // 1,100 records of 20 KB: 22 MB, over one body long before 1,024 objects.
        let big: Vec<Vec<u8>> = (0..1100).map(|i| vec![i as u8; 20_000]).collect();
        assert_eq!(check(&big), 2);
        assert_eq!(submissions(&big)[0].len(), (MAX_SUBMIT_BYTES - 9) / 20_000);
        // Small objects: by count.
        let small: Vec<Vec<u8>> = (0..2500).map(|_| vec![0; 100]).collect();
        assert_eq!(check(&small), 3);
        assert_eq!(submissions(&small)[0].len(), MAX_SUBMIT_OBJECTS);
        // One larger than a body goes alone, between the others.
        let mixed = vec![vec![1; 10], vec![2; MAX_SUBMIT_BYTES + 1], vec![3; 10]];
        assert_eq!(check(&mixed), 3);
        assert_eq!(check(&[]), 0);
    }

    #[test]
    fn the_disk_line_says_the_free_space_the_floor_and_a_refusal() {
        let ok =
            json!({"free_bytes": 2048_u64 << 20, "min_free_bytes": 512_u64 << 20, "low": false});
        assert_eq!(
            disk_line(&ok).as_deref(),
            Some("2048 MiB free, floor 512 MiB (store.min_free_mb)")
        );
        let low =
            json!({"free_bytes": 100_u64 << 20, "min_free_bytes": 512_u64 << 20, "low": true});
        assert_eq!(
            disk_line(&low).as_deref(),
            Some(
                "100 MiB free, floor 512 MiB (store.min_free_mb)  BELOW THE FLOOR: taking no new objects until space is freed"
            )
        );
        let unknown = json!({"free_bytes": null, "min_free_bytes": 0, "low": false});
        assert_eq!(
            disk_line(&unknown).as_deref(),
            Some("free space unknown, no floor")
        );
        // A node of an earlier version says nothing of its disk: no line.
        assert_eq!(disk_line(&Value::Null), None);
    }

    #[test]
    fn a_node_that_must_be_restarted_fails_the_status() {
        assert!(needs_no_restart(&json!({"member": "KZ", "restart_needed": null})).is_ok());
        assert_eq!(
            clock_line(&json!({"offset_ms": 3_600_200, "nodes": 2, "members": 2, "off": true}))
                .unwrap(),
            "WRONG: 3600 s behind its peers' (2 nodes of 2 members heard): check the machine's time synchronisation (NTP)"
        );
        assert_eq!(
            clock_line(&json!({"offset_ms": -42, "nodes": 5, "members": 1, "off": false})).unwrap(),
            "in step with its peers' (0.0 s apart; 5 nodes of 1 member heard)"
        );
        assert_eq!(clock_line(&json!(null)), None);
        assert!(needs_no_restart(&json!({"member": "KZ"})).is_ok());
        let e = needs_no_restart(&json!({"restart_needed": "a store write failed: disk full"}))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the node must be restarted: a store write failed: disk full"
        );
    }
}
