//! Analyst endpoints: search, record detail with provenance, live stream, federation and
//! publishers.

use std::collections::BTreeMap;
use std::convert::Infallible;

use accord_core::trust::PublisherCheck;
use accord_core::{Object, ObjectId, Timestamp};
use accord_node::NodeHandle;
use accord_search::{MAX_LIMIT, MAX_QUERY_CHARS, RecordDoc, SearchQuery, Sort};
use accord_store::StoredObject;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde_json::{Value, json};

use crate::{ApiError, bad};

/// The query parameters `/v1/records` understands.
pub const RECORD_PARAMS: [&str; 16] = [
    "q",
    "member",
    "kind",
    "direction",
    "lang",
    "publisher",
    "tag",
    "status",
    "since",
    "until",
    "date_from",
    "date_to",
    "sort",
    "limit",
    "cursor",
    "as_typed",
];

/// The query parameters `/v1/stream` understands: those of `/v1/records` that choose records
/// (not the order or the page).
pub const STREAM_PARAMS: &[&str] = RECORD_PARAMS.split_at(12).0;

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// Most values one parameter of a search may have (`member=KZ&member=BY…`): a filter of more
/// is not a reader's, and every value costs the pages that link to the others.
pub const MAX_VALUES_PER_PARAM: usize = 32;

/// The parameters that take one value; the others are lists (OR within the parameter).
pub(crate) const SINGLE_VALUED: [&str; 9] = [
    "as_typed",
    "q",
    "since",
    "until",
    "date_from",
    "date_to",
    "sort",
    "limit",
    "cursor",
];

/// Parses and checks the parameters; every error names the parameter. A value given twice
/// counts once.
pub fn parse_query(params: &[(String, String)], allowed: &[&str]) -> Result<SearchQuery, ApiError> {
    let mut q = SearchQuery {
        limit: accord_search::DEFAULT_LIMIT,
        ..Default::default()
    };
    let mut seen: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    let mut per_param: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, v) in params {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(format!(
                "unknown parameter {k:?} (known: {})",
                allowed.join(", ")
            )));
        }
        if !seen.insert((k.as_str(), v.trim())) {
            continue;
        }
        // Parameters of one value: a second, different one is a mistake (two links joined, a
        // form sent twice), never "the last one wins" silently.
        if SINGLE_VALUED.contains(&k.as_str()) && per_param.contains_key(k.as_str()) {
            return Err(bad(format!(
                "parameter {k}: given more than once (it takes one value)"
            )));
        }
        let n = per_param.entry(k.as_str()).or_default();
        *n += 1;
        if *n > MAX_VALUES_PER_PARAM {
            return Err(bad(format!(
                "parameter {k}: more than {MAX_VALUES_PER_PARAM} values"
            )));
        }
        let v = v.trim();
        let p = |m: String| bad(format!("parameter {k}: {m}"));
        match k.as_str() {
            "q" => {
                if v.chars().count() > MAX_QUERY_CHARS {
                    return Err(p(format!("longer than {MAX_QUERY_CHARS} characters")));
                }
                q.text = Some(v.to_string());
            }
            "member" => {
                if !(v.len() == 2 && v.bytes().all(|c| c.is_ascii_uppercase())) {
                    return Err(p(format!(
                        "{v:?} is not a member code (two capital letters)"
                    )));
                }
                q.members.push(v.to_string());
            }
            "kind" | "direction" => {
                if !is_code(v) {
                    return Err(p(format!("{v:?} is not a taxonomy code")));
                }
                if k == "kind" {
                    q.kinds.push(v.to_string())
                } else {
                    q.directions.push(v.to_string())
                }
            }
            "lang" => {
                // In the case records are signed with ("RU" is `ru`, "uz-latn" `uz-Latn`): a
                // filter in another case found nothing, with no word why.
                let tag = accord_core::record_input::canonical_language_tag(v).map_err(p)?;
                q.langs.push(tag);
            }
            "publisher" => {
                // A delegation's name, which may have this many characters (a Cyrillic name
                // twice as many bytes).
                let max = accord_core::validate::MAX_TRUST_NAME_CHARS;
                if v.is_empty() || v.chars().count() > max {
                    return Err(p(format!("must be 1 to {max} characters")));
                }
                // As names are indexed and shown: without hidden or reordering characters.
                q.publishers.push(accord_search::display_line(v));
            }
            "tag" => {
                let n = v.chars().count();
                if n == 0 || n > accord_search::DOC_TAG_CHARS || v.chars().any(char::is_control) {
                    return Err(p(format!(
                        "must be 1 to {} characters, none of them control characters",
                        accord_search::DOC_TAG_CHARS
                    )));
                }
                q.tags.push(v.to_string());
            }
            "status" => {
                v.parse::<accord_store::RecordStatus>().map_err(p)?;
                q.statuses.push(v.to_string());
            }
            "since" => q.since = Some(v.parse::<Timestamp>().map_err(p)?),
            "until" => q.until = Some(v.parse::<Timestamp>().map_err(p)?),
            "date_from" | "date_to" => {
                let day = Timestamp::from_date(v)
                    .filter(|_| v.len() == 10)
                    .ok_or_else(|| p(accord_core::time::not_a_date(v)))?;
                if k == "date_from" {
                    q.date_from = Some(day);
                } else {
                    // Inclusive: before the next day.
                    q.date_until = Some(Timestamp(day.0 + 86_400_000));
                }
            }
            "sort" => {
                q.sort = Some(match v {
                    "relevance" => Sort::Relevance,
                    "newest" => Sort::Newest,
                    "oldest" => Sort::Oldest,
                    "document_newest" => Sort::DocumentNewest,
                    "document_oldest" => Sort::DocumentOldest,
                    _ => {
                        return Err(p(format!(
                            "{v:?}: expected relevance, newest, oldest, document_newest or document_oldest"
                        )));
                    }
                })
            }
            "limit" => {
                let n: usize = v.parse().map_err(|_| p(format!("{v:?} is not a number")))?;
                if !(1..=MAX_LIMIT).contains(&n) {
                    return Err(p(format!("must be between 1 and {MAX_LIMIT}")));
                }
                q.limit = n;
            }
            "as_typed" => {
                q.as_typed = match v {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(p(format!("{v:?}: expected 1 or 0 (true or false)"))),
                }
            }
            "cursor" => {
                q.offset = v
                    .strip_prefix('o')
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n <= accord_search::MAX_OFFSET)
                    .ok_or_else(|| p(format!("{v:?} is not a cursor this node issued")))?;
            }
            _ => {}
        }
    }
    Ok(q)
}

pub(crate) fn item_json(d: &RecordDoc, snippet: Option<&str>) -> Value {
    json!({
        "id": d.id.to_string(),
        "member": d.member,
        "kind": d.kind,
        "directions": d.directions,
        "lang": d.lang,
        "languages": d.languages,
        "title": d.title.get(&d.lang).cloned().or_else(|| d.title.values().next().cloned()),
        "titles": d.title,
        "snippet": snippet,
        "created": d.created.to_string(),
        "date": d.date,
        "status": d.status,
        "publisher": d.publisher,
        "tags": d.tags,
        "attachments": d.files.iter().map(|f| json!({
            "name": f.name, "media_type": f.media_type, "size": f.size, "sha256": f.sha256,
        })).collect::<Vec<_>>(),
        // Files beyond the first 64 listed (the record's own page lists them all).
        "attachments_more": d.files_more,
    })
}

pub async fn list(
    State(node): State<NodeHandle>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<axum::Json<Value>, ApiError> {
    let q = parse_query(&params, &RECORD_PARAMS)?;
    let r = node.search(q).await.map_err(|e| match e {
        accord_node::NodeError::BadQuery(m) => bad(m),
        other => ApiError::from(other),
    })?;
    let items: Vec<Value> = r
        .hits
        .iter()
        .map(|h| item_json(&h.doc, Some(&h.snippet)))
        .collect();
    Ok(axum::Json(json!({
        "items": items,
        "next_cursor": r.next_offset.map(|o| format!("o{o}")),
        "cut": r.cut,
        "total": r.total,
        "facets": r.facets,
        "did_you_mean": r.did_you_mean,
        "reading": r.reading,
    })))
}

/// `GET /v1/suggest?q=`: completions of a query being typed.
pub async fn suggest(
    State(node): State<NodeHandle>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<axum::Json<Value>, ApiError> {
    let mut text = None;
    for (k, v) in &params {
        match k.as_str() {
            "q" if v.chars().count() > MAX_QUERY_CHARS => {
                return Err(bad(format!(
                    "parameter q: longer than {MAX_QUERY_CHARS} characters"
                )));
            }
            "q" => text = Some(v.clone()),
            other => return Err(bad(format!("unknown parameter {other:?}; expected q"))),
        }
    }
    // Nothing typed yet: nothing to complete.
    let text = text.unwrap_or_default();
    let completions = node.suggest(text).await.map_err(|e| match e {
        accord_node::NodeError::BadQuery(m) => bad(m),
        other => ApiError::from(other),
    })?;
    Ok(axum::Json(json!({ "completions": completions })))
}

pub async fn detail(
    State(node): State<NodeHandle>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = resolve_id(&node, &id).await?;
    let mut v = node.read(move |s| record_detail(s, &id)).await??;
    if let Some(v) = &mut v {
        with_availability(&node, v).await;
    }
    v.map(axum::Json).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("record {id} is not stored on this node"),
        )
    })
}

/// Adds to each attachment of a record's detail whether this node holds it (`availability`:
/// `held`, `fetching`, `waiting-for-disk`, `not-fetched`) and, when held, its download `url`
/// and whether its text is in search (`text`: `searchable`, `pending`, or `unreadable` with the
/// reason in `text_error`).
pub(crate) async fn with_availability(node: &NodeHandle, v: &mut Value) {
    let record = v["id"].as_str().unwrap_or_default().to_string();
    let Some(list) = v["attachments"].as_array_mut() else {
        return;
    };
    for a in list {
        let Some(hash) = a["sha256"]
            .as_str()
            .and_then(|h| h.parse::<ObjectId>().ok())
        else {
            continue;
        };
        let av = node.availability(hash).await;
        a["availability"] = json!(av.as_str());
        if av == accord_node::Availability::Held {
            // Downloaded under the name this record gives it (another record may name the
            // same file otherwise).
            a["url"] = json!(format!("/v1/blobs/{hash}?record={record}"));
            if let Some(t) = node.attachment_text(hash).await {
                a["text"] = json!(t.as_str());
                if let accord_node::AttachmentText::Unreadable(e) = t {
                    a["text_error"] = json!(e);
                }
            }
        }
    }
}

/// Shortest id prefix accepted where an id is expected.
pub const MIN_ID_PREFIX: usize = 8;

/// An object id from a path: the full 64 hex digits, or a prefix of at least
/// [`MIN_ID_PREFIX`] that names exactly one stored object (git-style short ids).
pub(crate) async fn resolve_id(node: &NodeHandle, text: &str) -> Result<ObjectId, ApiError> {
    if let Ok(id) = text.parse::<ObjectId>() {
        return Ok(id);
    }
    if text.len() < MIN_ID_PREFIX || text.len() > 64 || !text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad(format!(
            "{text:?} is not an object id: 64 hex digits, or a prefix of at least {MIN_ID_PREFIX}"
        )));
    }
    let prefix = text.to_string();
    let found = node
        .read(move |s| s.ids_with_prefix(&prefix, 5))
        .await?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no object stored on this node has an id starting with {text}"),
        )),
        many => Err(bad(format!(
            "the id prefix {text} is ambiguous: it starts {}{}; give more digits",
            many.iter()
                .take(4)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if many.len() > 4 { ", …" } else { "" }
        ))),
    }
}

pub(crate) fn record_detail(
    s: &accord_store::Store,
    id: &ObjectId,
) -> Result<Option<Value>, ApiError> {
    let err =
        |e: accord_store::StoreError| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let Some(StoredObject {
        signed,
        object: Object::Record(r),
    }) = s.get(id).map_err(err)?
    else {
        return Ok(None);
    };
    let status = s.record_status(id).map_err(err)?.map(|x| x.as_str());
    let (retractions, superseding) = s.history(id).map_err(err)?;
    let retracted_by: Vec<Value> = retractions
        .iter()
        .filter_map(|rid| match s.get(rid).ok()?? {
            StoredObject {
                object: Object::Retraction(x),
                signed,
            } => Some(json!({
                "id": rid.to_string(), "reason": x.reason, "created": x.created.to_string(),
                "signer": signed.signatures().first().map(|k| k.0.to_string()),
            })),
            _ => None,
        })
        .collect();
    let author = signed.signatures()[0].0;
    let trust = s.trust();
    let delegation = match trust.check_publisher(
        &r.member,
        &author,
        r.created,
        Some((&r.kind, &r.directions)),
    ) {
        PublisherCheck::Ok(d) => Some((d, None)),
        PublisherCheck::Refused(reason) => trust
            .delegations_of(&author)
            .iter()
            .find(|d| d.delegation.member == r.member)
            .cloned()
            .map(|d| (d, Some(reason))),
        PublisherCheck::Unknown => None,
    };
    let member = trust.charter().member(&r.member);
    let sig_ok = signed.bad_signers().is_empty();
    let received = s.received(id).map_err(err)?.map(|(at, source)| {
        let peer = source.strip_prefix("peer ");
        // The peer's node as a member certifies it now: none for a peer no valid certificate
        // names (revoked, its root key replaced, an observer), or that two members certify.
        let node = peer
            .and_then(accord_core::PublicKey::from_peer_id)
            .and_then(|key| trust.node_member_unanimous(&key, accord_node::now()))
            .map(|n| (n.cert.member.to_string(), n.cert.label.clone()));
        json!({
            "at": at.to_string(),
            "source": if peer.is_some() { "peer" } else { source.as_str() },
            "peer": peer,
            "member": node.as_ref().map(|n| n.0.clone()),
            "node_label": node.and_then(|n| n.1),
        })
    });
    Ok(Some(json!({
        "id": id.to_string(),
        "member": r.member.to_string(),
        "kind": r.kind,
        "directions": r.directions,
        "lang": r.lang,
        "title": r.title,
        "summary": r.summary,
        "body": r.body,
        "tags": r.tags,
        "links": r.links.iter().map(|l| json!({"url": l.url, "title": l.title})).collect::<Vec<_>>(),
        "attachments": r.attachments.iter().map(|a| json!({"name": a.name, "media_type": a.media_type, "size": a.size, "sha256": a.sha256.to_string(), "chunks": a.chunks.map(|c| c.to_string())})).collect::<Vec<_>>(),
        "references": r.references.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        "supersedes": r.supersedes.map(|x| x.to_string()),
        "effective_from": r.effective_from,
        "date": r.date,
        "effective_until": r.effective_until,
        "created": r.created.to_string(),
        "status": status,
        "history": {
            "superseded_by": superseding.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            "retracted_by": retracted_by,
        },
        "provenance": {
            "signature_valid": sig_ok,
            "signer": author.to_string(),
            "delegation": delegation.map(|(d, problem)| json!({
                "id": d.id.to_string(),
                "publisher": d.delegation.name,
                "member": d.delegation.member.to_string(),
                "kinds": d.delegation.kinds,
                "directions": d.delegation.directions,
                "not_before": d.delegation.not_before.to_string(),
                "not_after": d.delegation.not_after.map(|t| t.to_string()),
                "signed_by": d.signer.to_string(),
                "problem": problem.as_ref().map(|p| p.to_string()),
                "problem_code": problem.as_ref().map(|p| p.code()),
                "revoked_since": match &problem {
                    Some(accord_core::Rejection::SignerRevoked { since, .. }) => Some(since.to_string()),
                    _ => None,
                },
            })),
            // When this node took it and from where (`null`: taken before this was kept).
            "received": received,
            "member_root_key": member.map(|m| m.root_key.to_string()),
            "member_name": member.map(|m| m.name.clone()),
            "charter": {
                "id": trust.charter_id().to_string(),
                "version": trust.charter_history().len(),
                "federation": trust.federation().to_string(),
                "name": trust.charter().name,
            },
            // The files: the record (`/v1/objects/{id}`), the founding charter
            // (`/v1/objects/{federation}`) and `/records/{id}/proof.cbor`.
            "verify_command": format!("accord verify {id}.cbor --charter charter.cbor --with proof.cbor"),
            "proof": format!("/records/{id}/proof.cbor"),
        },
        "size": signed.as_bytes().len(),
    })))
}

/// Live streams open at once (`GET /v1/stream`, and the search page's "new records" notice,
/// one per page open): one more is answered 503 with `Retry-After`.
pub const STREAMS_AT_ONCE: usize = 256;
/// Records analysed for the streams and not yet taken by every subscriber; a subscriber that
/// falls further behind is told how many it missed (`lagged`).
const STREAM_FEED_CAPACITY: usize = 512;

/// Accepted objects the feed takes into one hand-over to the blocking pool: at bulk rates
/// (thousands a second) a hand-over per record cost more than making its stream document, and
/// the feed fell behind the node (a stream with no filter was told it missed two records in
/// three at ~2,800 a second: docs/BENCHMARKS.md, "Live streams at bulk rates").
const FEED_BATCH: usize = 64;

/// What the live streams send: a record made into its stream document once for all of them,
/// or how many records the feed itself fell behind by.
pub(crate) enum FeedItem {
    Record {
        doc: Box<RecordDoc>,
        /// The record's words, analysed only while a stream that matches text is open (see
        /// [`FeedInner::text_streams`]); a text stream does not match a record without them.
        words: Option<accord_search::DocWords>,
        json: String,
    },
    Lagged(u64),
}

/// The records accepted by the node, each made into its stream document once (on the blocking
/// pool), for every subscriber: a subscriber only compares, so a hundred open streams do not
/// make every record's document a hundred times on the async workers. Nothing is done while no
/// stream is open, and a record's words are analysed (each text in its own language's family)
/// only while a stream that matches text is open: filters and "every new record" need none,
/// and at bulk rates the analysis cost more CPU than indexing the record.
#[derive(Clone)]
pub(crate) struct StreamFeed(std::sync::Arc<FeedInner>);

pub(crate) struct FeedInner {
    tx: tokio::sync::broadcast::Sender<std::sync::Arc<FeedItem>>,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    started: std::sync::Once,
    /// Open streams whose query has text. Counted before such a stream subscribes, so every
    /// record accepted after it subscribed is analysed; a record the feed took before (its
    /// words not analysed) was accepted before the stream opened, and is not its to send.
    text_streams: std::sync::atomic::AtomicUsize,
}

/// An open stream that matches text, counted in [`FeedInner::text_streams`] while it lives.
struct TextStream(std::sync::Arc<FeedInner>);

impl Drop for TextStream {
    fn drop(&mut self) {
        self.0
            .text_streams
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl StreamFeed {
    pub(crate) fn new() -> StreamFeed {
        StreamFeed(std::sync::Arc::new(FeedInner {
            tx: tokio::sync::broadcast::channel(STREAM_FEED_CAPACITY).0,
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(STREAMS_AT_ONCE)),
            started: std::sync::Once::new(),
            text_streams: std::sync::atomic::AtomicUsize::new(0),
        }))
    }

    /// Counts a stream that matches text until the returned guard is dropped; taken before the
    /// stream subscribes.
    fn text_stream(&self) -> TextStream {
        self.0
            .text_streams
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        TextStream(self.0.clone())
    }

    fn subscribe(
        &self,
        node: &NodeHandle,
    ) -> tokio::sync::broadcast::Receiver<std::sync::Arc<FeedItem>> {
        let rx = self.0.tx.subscribe();
        self.0.started.call_once(|| {
            // Subscribed here, not when the task first runs: a record accepted right after the
            // first stream was answered would otherwise pass before the feed listened.
            let accepted = node.subscribe();
            tokio::spawn(feed(node.clone(), accepted, self.0.clone()));
        });
        rx
    }
}

/// One accepted record made into what the streams send; its words analysed with `words`
/// when given.
fn feed_item(
    v: &accord_core::Verified<Object>,
    trust: &accord_core::TrustView,
    words: Option<&mut accord_search::DocAnalyzers>,
) -> Option<FeedItem> {
    let Object::Record(r) = v.object() else {
        return None;
    };
    let publisher = trust
        .delegations_of(&v.signer())
        .iter()
        .find(|d| d.delegation.member == r.member)
        .map(|d| d.delegation.name.clone())
        .unwrap_or_default();
    let mut doc = RecordDoc::of(v.id(), r, "active", &publisher);
    let words = words.map(|a| accord_search::DocWords::of_with(a, &doc));
    let json = item_json(&doc, None).to_string();
    // Matched on its words and filters from here on: the body (up to a mebibyte) is not kept
    // while the record waits for slow subscribers.
    doc.body.clear();
    Some(FeedItem::Record {
        doc: Box::new(doc),
        words,
        json,
    })
}

/// Batches the feed has on the blocking pool at once: two, so that one batch's records are
/// made into events while the next one's are, and the node's burst of a group commit (up to
/// 512 records at once) is worked through on both cores.
const FEED_BATCHES_AT_ONCE: usize = 2;

/// What one of the feed's batches becomes: its items, in order, and the analysers it used.
type FeedDone = (Vec<FeedItem>, Option<accord_search::DocAnalyzers>);

/// The feed's one task: from the node's accepted objects to stream documents, up to
/// [`FEED_BATCH`] of those waiting at a time, [`FEED_BATCHES_AT_ONCE`] batches at once, sent
/// in the order accepted.
async fn feed(
    node: NodeHandle,
    mut rx: tokio::sync::broadcast::Receiver<std::sync::Arc<accord_core::Verified<Object>>>,
    inner: std::sync::Arc<FeedInner>,
) {
    use futures::StreamExt;
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    // Sets of analysers, made when a stream of text first needs one and handed to each
    // batch's blocking task and back (at most one per batch at once).
    let mut analyzers: Vec<accord_search::DocAnalyzers> = Vec::new();
    let mut working: futures::stream::FuturesOrdered<
        futures::future::BoxFuture<'static, FeedDone>,
    > = futures::stream::FuturesOrdered::new();
    let mut closed = false;
    loop {
        let received = tokio::select! {
            // What is done goes out first, in order.
            biased;
            Some((items, kept)) = working.next(), if !working.is_empty() => {
                analyzers.extend(kept);
                for item in items {
                    let _ = inner.tx.send(std::sync::Arc::new(item));
                }
                continue;
            }
            r = rx.recv(), if !closed && working.len() < FEED_BATCHES_AT_ONCE => r,
            else => return,
        };
        let first = match received {
            Ok(v) => v,
            Err(RecvError::Lagged(n)) => {
                working.push_back(Box::pin(async move { (vec![FeedItem::Lagged(n)], None) }));
                continue;
            }
            Err(RecvError::Closed) => {
                closed = true;
                continue;
            }
        };
        let mut batch = vec![first];
        // Missed after the batch: told after its records, in the order things happened.
        let mut lagged = None;
        while batch.len() < FEED_BATCH {
            match rx.try_recv() {
                Ok(v) => batch.push(v),
                Err(TryRecvError::Lagged(n)) => {
                    lagged = Some(n);
                    break;
                }
                Err(_) => break,
            }
        }
        if inner.tx.receiver_count() > 0 {
            let trust = node.trust();
            let words = inner.text_streams.load(std::sync::atomic::Ordering::SeqCst) > 0;
            let mut kept = words.then(|| analyzers.pop().unwrap_or_default());
            let taken = batch.len() as u64;
            let task = tokio::task::spawn_blocking(move || {
                let items = batch
                    .iter()
                    .filter_map(|v| feed_item(v, &trust, kept.as_mut()))
                    .collect::<Vec<_>>();
                (items, kept)
            });
            working.push_back(Box::pin(async move {
                // A batch whose task panicked: its records are told as missed.
                task.await
                    .unwrap_or_else(|_| (vec![FeedItem::Lagged(taken)], None))
            }));
        }
        if let Some(n) = lagged {
            working.push_back(Box::pin(async move { (vec![FeedItem::Lagged(n)], None) }));
        }
    }
}

/// Whether a new record matches the stream's filters; text as the search reads it
/// ([`accord_search::QueryWords`]).
fn stream_matches(
    q: &SearchQuery,
    words: Option<&accord_search::QueryWords>,
    d: &RecordDoc,
    dw: Option<&accord_search::DocWords>,
) -> bool {
    let any = |list: &Vec<String>, v: &str| list.is_empty() || list.iter().any(|x| x == v);
    if !any(&q.members, &d.member) || !any(&q.kinds, &d.kind) || !any(&q.publishers, &d.publisher) {
        return false;
    }
    if !q.directions.is_empty() && !d.directions.iter().any(|x| q.directions.contains(x)) {
        return false;
    }
    if !q.langs.is_empty()
        && !d.languages.iter().any(|x| {
            q.langs
                .iter()
                .any(|f| accord_search::lang_filter_matches(f, x))
        })
    {
        return false;
    }
    if !q.tags.is_empty() {
        let wanted: Vec<String> = q.tags.iter().map(|t| accord_search::tag_key(t)).collect();
        if !d
            .tags
            .iter()
            .any(|t| wanted.contains(&accord_search::tag_key(t)))
        {
            return false;
        }
    }
    // A new record is active, and created now: a page of other statuses or of a period that
    // ended gets none, and one of source-document dates only those dated within them.
    if !q.statuses.is_empty() && !q.statuses.iter().any(|s| s == "active") {
        return false;
    }
    if q.since.is_some_and(|t| d.created < t) || q.until.is_some_and(|t| d.created >= t) {
        return false;
    }
    if q.date_from.is_some() || q.date_until.is_some() {
        let Some(date) = d.date.as_deref().and_then(Timestamp::from_date) else {
            return false;
        };
        if q.date_from.is_some_and(|t| date < t) || q.date_until.is_some_and(|t| date >= t) {
            return false;
        }
    }
    words.is_none_or(|w| dw.is_some_and(|dw| w.matches(dw)))
}

pub(crate) async fn stream(
    State(node): State<NodeHandle>,
    axum::Extension(feed): axum::Extension<StreamFeed>,
    stopping: Option<axum::Extension<crate::server::ServerStopping>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use tokio::sync::broadcast::error::RecvError;
    let q = parse_query(&params, STREAM_PARAMS)?;
    let Ok(slot) = feed.0.slots.clone().try_acquire_owned() else {
        let mut r = ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{STREAMS_AT_ONCE} live streams are open: try again later"),
        )
        .into_response();
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("30"),
        );
        return Ok(r);
    };
    let words = q
        .text
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(accord_search::QueryWords::of);
    // Counted before subscribing: every record the stream receives is then analysed.
    let text = words.is_some().then(|| feed.text_stream());
    let rx = feed.subscribe(&node);
    let s = futures::stream::unfold(
        (rx, q, words, (slot, text)),
        |(mut rx, q, words, slot)| async move {
            loop {
                let item = match rx.recv().await {
                    Ok(item) => item,
                    Err(RecvError::Lagged(n)) => std::sync::Arc::new(FeedItem::Lagged(n)),
                    Err(RecvError::Closed) => return None,
                };
                let ev = match &*item {
                    FeedItem::Record {
                        doc,
                        words: dw,
                        json,
                    } => {
                        if !stream_matches(&q, words.as_ref(), doc, dw.as_ref()) {
                            continue;
                        }
                        Event::default()
                            .event("record")
                            .id(doc.id.to_string())
                            .data(json.as_str())
                    }
                    FeedItem::Lagged(n) => Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{n}}}")),
                };
                return Some((Ok::<_, Infallible>(ev), (rx, q, words, slot)));
            }
        },
    );
    // Ended when the server stops: a client's EventSource comes back to the restarted node.
    let stopped = async move {
        match stopping {
            Some(axum::Extension(s)) => s.stopped().await,
            None => std::future::pending().await,
        }
    };
    let s = futures::StreamExt::take_until(s, stopped);
    Ok(Sse::new(s).keep_alive(KeepAlive::default()).into_response())
}

pub async fn federation(State(node): State<NodeHandle>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(federation_value(&node).await?))
}

pub(crate) async fn federation_value(node: &NodeHandle) -> Result<Value, ApiError> {
    // The trust view the store thread published with its last commit: every page reads it,
    // and it must not queue behind a catch-up's group commits on that thread.
    let t = node.trust();
    let c = t.charter();
    let entries = |list: &Vec<accord_core::taxonomy::TaxonEntry>| {
        list.iter()
            .map(|e| json!({"code": e.code, "names": e.names}))
            .collect::<Vec<_>>()
    };
    Ok(json!({
        "federation": t.federation().to_string(),
        "charter_id": t.charter_id().to_string(),
        "name": c.name,
        "version": c.version,
        "created": c.created.to_string(),
        "threshold": c.threshold,
        "members": c.members.iter().map(|m| json!({"code": m.code.to_string(), "name": m.name, "root_key": m.root_key.to_string()})).collect::<Vec<_>>(),
        "taxonomy": {"directions": entries(&c.taxonomy.directions), "kinds": entries(&c.taxonomy.kinds)},
        "limits": {
            "max_object_bytes": c.limits.max_object_bytes,
            "max_depth": c.limits.max_depth,
            "max_list_len": c.limits.max_list_len,
            "max_future_skew_ms": c.limits.max_future_skew_ms,
        },
    }))
}

pub async fn publishers(State(node): State<NodeHandle>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(publishers_value(&node).await?))
}

pub(crate) async fn publishers_value(node: &NodeHandle) -> Result<Value, ApiError> {
    let now = accord_node::now();
    // From the published trust view, beside the store thread (a catch-up's group commits
    // would hold the page up), and off the async workers: it walks every delegation.
    let trust = node.trust();
    let v = tokio::task::spawn_blocking(move || {
        let t = &*trust;
        let mut by_member: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for d in t.delegations() {
            let del = &d.delegation;
            let status = if t.root_key(&del.member) != Some(d.signer) {
                "root-replaced"
            } else if t
                .object_revoked_since(&d.id, &del.member)
                .is_some_and(|x| x <= now)
                || t.key_revoked_since(&del.member, &del.publisher)
                    .is_some_and(|x| x <= now)
            {
                "revoked"
            } else if del.not_after.is_some_and(|na| na < now) {
                "expired"
            } else if del.not_before > now {
                "not-yet-valid"
            } else {
                "active"
            };
            by_member
                .entry(del.member.to_string())
                .or_default()
                .push(json!({
                    "delegation": d.id.to_string(),
                    "name": del.name,
                    "publisher_key": del.publisher.to_string(),
                    "kinds": del.kinds,
                    "directions": del.directions,
                    "not_before": del.not_before.to_string(),
                    "not_after": del.not_after.map(|x| x.to_string()),
                    "status": status,
                }));
        }
        json!({ "members": by_member })
    })
    .await
    .map_err(|e| ApiError::from(accord_node::NodeError::Store(e.to_string())))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record in English titled "Portal", created at `created`.
    fn portal(created: Timestamp) -> RecordDoc {
        RecordDoc {
            id: ObjectId::of_body(b"a record"),
            created,
            member: "KZ".into(),
            kind: "regulatory-note".into(),
            directions: vec!["e-government".into()],
            lang: "en".into(),
            languages: vec!["en".into()],
            title: [("en".to_string(), "Portal".to_string())].into(),
            summary: Default::default(),
            body: Default::default(),
            tags: Vec::new(),
            date: Some("2024-05-20".into()),
            status: "active".into(),
            publisher: "KZ ministry".into(),
            attachments: Vec::new(),
            files: Vec::new(),
            files_more: 0,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A parameter of one value given twice with different values is refused by name (the
    /// same value twice counts once); lists take several.
    #[test]
    fn a_single_valued_parameter_given_twice_is_refused() {
        for k in SINGLE_VALUED {
            let (a, b) = match k {
                "q" => ("portal", "budget"),
                "since" | "until" => ("2026-01-01", "2026-02-01"),
                "date_from" | "date_to" => ("2026-01-01", "2026-02-01"),
                "sort" => ("newest", "oldest"),
                "limit" => ("10", "20"),
                "as_typed" => ("1", "0"),
                _ => ("o0", "o20"),
            };
            let e = parse_query(&params(&[(k, a), (k, b)]), &RECORD_PARAMS).unwrap_err();
            assert!(
                e.1.contains(&format!("parameter {k}: given more than once")),
                "{}",
                e.1
            );
            parse_query(&params(&[(k, a), (k, a)]), &RECORD_PARAMS).unwrap();
        }
        let q = parse_query(
            &params(&[("member", "KZ"), ("member", "BY"), ("q", "portal")]),
            &RECORD_PARAMS,
        )
        .unwrap();
        assert_eq!(q.members, ["KZ", "BY"]);
    }

    /// A publisher is a delegation's name: up to its 256 characters, however many bytes.
    #[test]
    fn a_publisher_filter_takes_a_long_cyrillic_name() {
        let name = "Комитет государственных услуг ".repeat(8);
        assert!(name.chars().count() <= 256 && name.len() > 400);
        let q = parse_query(&params(&[("publisher", &name)]), &RECORD_PARAMS).unwrap();
        assert_eq!(q.publishers, [name.trim()]);
        let long = "я".repeat(257);
        let e = parse_query(&params(&[("publisher", &long)]), &RECORD_PARAMS).unwrap_err();
        assert!(e.1.contains("1 to 256 characters"), "{}", e.1);
    }

    /// A language filter is read in the case records are signed with ("RU" finds `ru`), and
    /// a member's country code in its place is refused, naming the language meant.
    #[test]
    fn a_language_filter_is_read_in_its_canonical_case() {
        let q = parse_query(
            &params(&[("lang", "RU"), ("lang", "uz-latn")]),
            &RECORD_PARAMS,
        )
        .unwrap();
        assert_eq!(q.langs, ["ru", "uz-Latn"]);
        let e = parse_query(&params(&[("lang", "kz")]), &RECORD_PARAMS).unwrap_err();
        assert!(
            e.1.contains("parameter lang:") && e.1.contains("kk (Kazakh) or ru"),
            "{}",
            e.1
        );
    }

    /// Records are analysed while a stream of text is open, and only then: each such stream
    /// counts while it lives, whichever closes first.
    #[test]
    fn text_streams_are_counted_while_they_live() {
        let feed = StreamFeed::new();
        let count = || {
            feed.0
                .text_streams
                .load(std::sync::atomic::Ordering::SeqCst)
        };
        assert_eq!(count(), 0);
        let a = feed.text_stream();
        let b = feed.text_stream();
        assert_eq!(count(), 2);
        drop(a);
        assert_eq!(count(), 1);
        let c = feed.text_stream();
        drop(b);
        assert_eq!(count(), 1);
        drop(c);
        assert_eq!(count(), 0);
    }

    /// Without its words a record matches no stream of text, and still every stream without.
    #[test]
    fn a_record_without_its_words_matches_only_streams_without_text() {
        let doc = portal(Timestamp(1_700_000_000_000));
        let q = SearchQuery::default();
        let portal = accord_search::QueryWords::of("portal");
        let words = accord_search::DocWords::of(&doc);
        assert!(stream_matches(&q, Some(&portal), &doc, Some(&words)));
        assert!(!stream_matches(&q, Some(&portal), &doc, None));
        assert!(stream_matches(&q, None, &doc, None));
    }

    /// A new record is active and created now: a stream of other statuses, of a period that
    /// ended or has not begun, or of source-document dates it is not dated within, gets none.
    #[test]
    fn a_new_record_matches_a_streams_status_and_period_filters() {
        let created = Timestamp(1_700_000_000_000);
        let mut doc = portal(created);
        let day = |d: &str| Timestamp::from_date(d);
        let matches = |doc: &RecordDoc, q: SearchQuery| {
            stream_matches(&q, None, doc, Some(&accord_search::DocWords::of(doc)))
        };
        let q = SearchQuery::default;
        assert!(matches(&doc, q()));
        for (statuses, expected) in [
            (vec!["retracted"], false),
            (vec!["superseded", "active"], true),
        ] {
            let statuses = statuses.into_iter().map(String::from).collect();
            assert_eq!(matches(&doc, SearchQuery { statuses, ..q() }), expected);
        }
        assert!(!matches(
            &doc,
            SearchQuery {
                until: Some(created),
                ..q()
            }
        ));
        assert!(matches(
            &doc,
            SearchQuery {
                until: Some(Timestamp(created.0 + 1)),
                ..q()
            }
        ));
        assert!(!matches(
            &doc,
            SearchQuery {
                since: Some(Timestamp(created.0 + 1)),
                ..q()
            }
        ));
        let dated = |from: &str, to: &str| SearchQuery {
            date_from: day(from),
            date_until: day(to),
            ..q()
        };
        assert!(matches(&doc, dated("2024-05-01", "2024-05-21")));
        assert!(!matches(&doc, dated("2024-05-01", "2024-05-20")));
        assert!(!matches(&doc, dated("2024-05-21", "2024-06-01")));
        doc.date = None;
        assert!(!matches(&doc, dated("2024-05-01", "2024-05-21")));
        assert!(matches(&doc, q()));
        // A tag filter, as the search reads it: whole tags, case and spaces aside.
        let tagged = |tags: &[&str]| SearchQuery {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..q()
        };
        assert!(!matches(&doc, tagged(&["e-government"])), "no tags");
        doc.tags = vec!["E-Government  Services".into(), "pilot".into()];
        assert!(matches(&doc, tagged(&["e-government services"])));
        assert!(matches(&doc, tagged(&["other", "PILOT"])));
        assert!(!matches(&doc, tagged(&["e-government"])), "a tag is whole");
    }
}
