//! Results leaving the node as files: CSV for spreadsheets, JSON lines, the signed objects (CBOR
//! sequence) and Atom feeds of a saved search. The UI links to them with the parameters of the
//! search on screen (the same as `GET /v1/records`); the CLI writes the same CSV.

use std::io::Write;

use accord_node::NodeHandle;
use accord_search::RecordDoc;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::ExportSlots;
use crate::records::{RECORD_PARAMS, item_json, parse_query};

/// Most records one export or feed carries.
pub const MAX_EXPORT: usize = 10_000;
/// Entries of an Atom feed.
pub const FEED_ENTRIES: usize = 50;

/// One CSV cell. A value a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, a tab or a
/// carriage return first: a hostile title such as `=HYPERLINK(…)`) is given a leading `'`, so
/// that it is shown as the text it is and never evaluated.
fn csv_field(s: &str, delimiter: char) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_string()
    };
    // Both usual delimiters are quoted whatever the file's: a spreadsheet set up for the
    // other one would split the cell there otherwise.
    if formula || s.contains([delimiter, ',', ';', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One item of a list in a cell (tags, directions, languages, attachments), the items
/// separated by `;`: an item holding `;` or `"` itself, or starting or ending with a space, is
/// written between double quotes with its quotes doubled, as a CSV field is, so a tag
/// "ИИ; данные" stays one tag for whoever splits the cell.
fn list_item(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([';', '"']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// The CSV delimiter a request asks for (`delimiter=semicolon`, as spreadsheets set up for
/// Russian and most European locales read; `comma` by default), taken out of the search's
/// parameters.
fn delimiter_of(params: &mut Vec<(String, String)>) -> Result<char, crate::ApiError> {
    let mut d = ',';
    let mut bad = None;
    params.retain(|(k, v)| {
        if k != "delimiter" {
            return true;
        }
        match v.as_str() {
            "comma" => d = ',',
            "semicolon" => d = ';',
            other => bad = Some(other.chars().take(40).collect::<String>()),
        }
        false
    });
    match bad {
        Some(v) => Err(crate::bad(format!(
            "parameter delimiter: {v:?}: expected comma or semicolon"
        ))),
        None => Ok(d),
    }
}

/// How a CSV for people names its columns and the codes in its cells: the web page's export,
/// in the reader's language. Without it (scripts, the command line) the file has the column
/// codes and the taxonomy's, members' and languages' codes.
pub trait CsvNames {
    /// The heading of a column (`id`, `created`, … as [`write_csv`] names them), or of a
    /// title column for language `lang` (`column` is then `"title"`).
    fn column(&self, column: &str, lang: Option<&str>) -> String;
    /// A member, kind, direction, language or status code of column `column`, as read.
    fn value(&self, column: &str, code: &str) -> String;
}

/// Writes records as CSV: the fixed columns, the record's page on the node, then its title in
/// every language any of the records has (`title_<lang>`). `bom` starts the file with a UTF-8
/// byte-order mark, which spreadsheet programs need to read Cyrillic and other non-Latin text.
pub fn write_csv(
    out: &mut dyn Write,
    items: &[Value],
    node: &str,
    bom: bool,
    delimiter: char,
) -> std::io::Result<()> {
    write_named_csv(out, items, node, bom, delimiter, None)
}

/// [`write_csv`], with the headings and codes named by `names` when given.
pub fn write_named_csv(
    out: &mut dyn Write,
    items: &[Value],
    node: &str,
    bom: bool,
    delimiter: char,
    names: Option<&dyn CsvNames>,
) -> std::io::Result<()> {
    let named = |column: &str, code: &str| match names {
        Some(n) => n.value(column, code),
        None => code.to_string(),
    };
    let list = |column: &str, v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|c| list_item(&named(column, c)).into_owned())
                    .collect::<Vec<_>>()
                    .join(if names.is_some() { "; " } else { ";" })
            })
            .unwrap_or_default()
    };
    let langs: std::collections::BTreeSet<String> = items
        .iter()
        .filter_map(|i| i["titles"].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    if bom {
        out.write_all("\u{feff}".as_bytes())?;
    }
    let mut header: Vec<String> = [
        "id",
        "created",
        "date",
        "member",
        "kind",
        "directions",
        "languages",
        "status",
        "publisher",
        "tags",
        "title",
        "url",
        "attachments",
    ]
    .iter()
    .map(|s| match names {
        Some(n) => n.column(s, None),
        None => s.to_string(),
    })
    .collect();
    header.extend(langs.iter().map(|l| match names {
        Some(n) => n.column("title", Some(l)),
        None => format!("title_{l}"),
    }));
    writeln!(
        out,
        "{}",
        header
            .iter()
            .map(|h| csv_field(h, delimiter))
            .collect::<Vec<_>>()
            .join(&delimiter.to_string())
    )?;
    let base = node.trim_end_matches('/');
    for i in items {
        let text = |k: &str| i[k].as_str().unwrap_or("").to_string();
        let mut row = vec![
            text("id"),
            text("created"),
            text("date"),
            named("member", &text("member")),
            named("kind", &text("kind")),
            list("directions", &i["directions"]),
            list("languages", &i["languages"]),
            named("status", &text("status")),
            text("publisher"),
            list("tags", &i["tags"]),
            text("title"),
            format!("{base}/records/{}", text("id")),
            i["attachments"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            format!(
                                "{} {base}/v1/blobs/{}?record={}",
                                list_item(f["name"].as_str().unwrap_or("")),
                                f["sha256"].as_str().unwrap_or(""),
                                text("id")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default(),
        ];
        row.extend(
            langs
                .iter()
                .map(|l| i["titles"][l].as_str().unwrap_or("").to_string()),
        );
        writeln!(
            out,
            "{}",
            row.iter()
                .map(|s| csv_field(s, delimiter))
                .collect::<Vec<_>>()
                .join(&delimiter.to_string())
        )?;
    }
    Ok(())
}

/// The records a search finds, in one page of heads (a further page only beyond
/// `MAX_HEADS_LIMIT`), at most `max`: their heads only (no body, no
/// attachment text), so that 10,000 records cost what their titles do.
async fn collect(
    node: &NodeHandle,
    params: &[(String, String)],
    max: usize,
    newest_first: bool,
) -> Result<Vec<RecordDoc>, crate::ApiError> {
    let mut q = parse_query(params, &RECORD_PARAMS)?;
    if newest_first {
        q.sort = Some(accord_search::Sort::Newest);
    }
    q.limit = accord_search::MAX_HEADS_LIMIT.min(max);
    q.offset = 0;
    q.heads_only = true;
    let mut out = Vec::new();
    loop {
        let r = node
            .search(q.clone())
            .await
            .map_err(crate::ApiError::from)?;
        out.extend(r.hits.into_iter().map(|h| h.doc));
        match r.next_offset {
            Some(o) if out.len() < max => q.offset = o,
            _ => break,
        }
    }
    out.truncate(max);
    Ok(out)
}

/// The node's own address as the client reached it, for links in files: the `Host` header, and
/// `https` when a reverse proxy says it terminated TLS (`X-Forwarded-Proto: https`, as
/// `deploy/nginx-accord.conf` sets).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

pub(crate) fn file(media: &str, name: &str, body: impl Into<axum::body::Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, media.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        body.into(),
    )
        .into_response()
}

/// [`file`] for an export built whole (CSV, JSON lines: up to [`MAX_EXPORT`] rows, megabytes),
/// sent in pieces that each touch `lease`: the export's slot is held until the client has taken
/// the last piece, or given back when it reads nothing for the slot's idle time, which ends the
/// response. A body handed to the server whole outlived its slot, so clients that read nothing
/// could hold as many built exports as connections.
pub(crate) fn leased_file(media: &str, name: &str, body: Vec<u8>, lease: crate::Lease) -> Response {
    // Its length is known: a browser shows the download's progress, and a response cut short
    // (the lease given back) is seen to be.
    let len = body.len();
    let stream = futures::stream::unfold(
        (axum::body::Bytes::from(body), Some(lease)),
        |(mut rest, lease)| async move {
            let lease = lease?;
            if rest.is_empty() {
                return None;
            }
            if let Err(e) = lease.touch() {
                return Some((Err(e), (rest, None)));
            }
            let piece = rest.split_to(rest.len().min(crate::EXPORT_CHUNK_BYTES));
            Some((Ok::<_, std::io::Error>(piece), (rest, Some(lease))))
        },
    );
    let mut r = file(media, name, axum::body::Body::from_stream(stream));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    r
}

/// The name of a search's export file: `accord-records`, the member, kind and direction codes
/// the search filters on (at most four, plain ASCII codes only), and the day, e.g.
/// `accord-records-KZ-e-government-2026-12-07.csv`: a phone saving three exports keeps three
/// names a reader can tell apart, not "accord-records (3).csv".
fn export_name(params: &[(String, String)], ext: &str) -> String {
    let mut name = String::from("accord-records");
    let codes = params
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "member" | "kind" | "direction"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 40
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .take(4);
    for c in codes {
        name.push('-');
        name.push_str(c);
    }
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    name.push('-');
    name.push_str(&accord_core::Timestamp(today).date());
    name.push('.');
    name.push_str(ext);
    name
}

/// Takes `hl` (the interface language of the page that links a file) out of `params`, as the
/// `lang` parameter [`crate::ui::Ctx::new`] reads.
fn interface_lang(params: &mut Vec<(String, String)>) -> Vec<(String, String)> {
    let hl = params
        .iter()
        .filter(|(k, _)| k == "hl")
        .map(|(_, v)| ("lang".to_string(), v.clone()))
        .collect();
    params.retain(|(k, _)| k != "hl");
    hl
}

/// `GET /export.csv?<search>[&delimiter=semicolon][&hl=ru|en]`: CSV with a byte-order mark
/// (spreadsheets read Cyrillic then). Exports of a search share the slots of `/v1/export`
/// ([`crate::EXPORTS_AT_ONCE`]).
pub(crate) async fn csv(
    State(node): State<NodeHandle>,
    Extension(slots): Extension<ExportSlots>,
    headers: HeaderMap,
    Query(mut params): Query<Vec<(String, String)>>,
) -> Response {
    let delimiter = match delimiter_of(&mut params) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    // `hl`: the page's language, for the headings and names (`lang` is the records' language
    // filter, as in the API); without it, the reader's cookie or browser language.
    let hl = interface_lang(&mut params);
    let slot = match ui_slot(&node, &hl, &headers, &slots).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let docs = match collect(&node, &params, MAX_EXPORT, false).await {
        Ok(d) => d,
        Err(e) => return refused_page(&node, &hl, &headers, e).await,
    };
    let items: Vec<Value> = docs.iter().map(|d| item_json(d, None)).collect();
    // For the reader of the page: headings and names in the page's language.
    let ctx = crate::ui::Ctx::new(&node, &hl, &headers).await;
    let mut out = Vec::new();
    if write_named_csv(
        &mut out,
        &items,
        &base_url(&headers),
        true,
        delimiter,
        Some(&ctx),
    )
    .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    leased_file(
        "text/csv; charset=utf-8",
        &export_name(&params, "csv"),
        out,
        crate::Lease::new(slot, slots.1),
    )
}

/// `GET /export.jsonl?<search>`: one JSON object per line (the items of `/v1/records`).
pub(crate) async fn jsonl(
    State(node): State<NodeHandle>,
    Extension(slots): Extension<ExportSlots>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let slot = match ui_slot(&node, &[], &headers, &slots).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let docs = match collect(&node, &params, MAX_EXPORT, false).await {
        Ok(d) => d,
        Err(e) => return refused_page(&node, &[], &headers, e).await,
    };
    let mut out = Vec::new();
    for d in &docs {
        out.extend(item_json(d, None).to_string().into_bytes());
        out.push(b'\n');
    }
    leased_file(
        "application/jsonl",
        &export_name(&params, "jsonl"),
        out,
        crate::Lease::new(slot, slots.1),
    )
}

/// `GET /export.cbor?<search>`: the signed records themselves, a CBOR sequence (RFC 8742) that
/// `accord verify FILE --charter CHARTER` checks with nothing else, as `accord export --format
/// cbor` writes it: the charters, delegations and node certificates first, then the records,
/// the retractions of those retracted, and the revocations last.
/// The objects are read on the blocking pool at the pace the client takes them
/// ([`crate::pieces`]): a record may be a mebibyte, and 10,000 of them are never held at once.
pub(crate) async fn cbor(
    State(node): State<NodeHandle>,
    Extension(slots): Extension<ExportSlots>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let slot = match ui_slot(&node, &[], &headers, &slots).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let docs = match collect(&node, &params, MAX_EXPORT, false).await {
        Ok(d) => d,
        Err(e) => return refused_page(&node, &[], &headers, e).await,
    };
    let name = export_name(&params, "cbor");
    let records: Vec<accord_core::ObjectId> = docs.into_iter().map(|d| d.id).collect();
    let (ids, reader) = match signed_export(&node, records).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let lease = crate::Lease::new(slot, slots.1);
    let body = crate::pieces((ids.into_iter(), reader, lease), |(ids, reader, lease)| {
        lease.touch()?;
        let mut chunk = Vec::with_capacity(crate::EXPORT_CHUNK_BYTES);
        for id in ids.by_ref() {
            // A record removed since the search (never, today) is left out.
            if let Ok(b) = reader.get(&id) {
                chunk.extend_from_slice(&b);
            }
            if chunk.len() >= crate::EXPORT_CHUNK_BYTES {
                break;
            }
        }
        Ok((!chunk.is_empty()).then(|| chunk.into()))
    });
    (
        [
            (header::CONTENT_TYPE, "application/cbor-seq".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        body,
    )
        .into_response()
}

/// Records' retractions looked up in one read of the store thread (it holds the thread: a few
/// hundred records' worth at a time).
const RETRACTION_LOOKUPS: usize = 256;

/// The ids of a self-contained signed export of `records`, in the order `accord export --format
/// cbor` writes them — the charters, delegations and node certificates, the records, their
/// retractions, the revocations — and a reader for their bytes.
async fn signed_export(
    node: &NodeHandle,
    records: Vec<accord_core::ObjectId>,
) -> Result<(Vec<accord_core::ObjectId>, accord_store::ObjectReader), crate::ApiError> {
    use accord_core::ObjectType as T;
    let store = |e: accord_store::StoreError| {
        crate::ApiError::from(accord_node::NodeError::Store(e.to_string()))
    };
    let mut ids = node
        .read(|s| s.export_ids_of(&[T::Charter, T::Delegation, T::Node]))
        .await?
        .map_err(store)?;
    let mut retractions = Vec::new();
    for chunk in records.chunks(RETRACTION_LOOKUPS) {
        let chunk = chunk.to_vec();
        let found = node
            .read(
                move |s| -> Result<Vec<accord_core::ObjectId>, accord_store::StoreError> {
                    let mut found = Vec::new();
                    for id in &chunk {
                        found.extend(s.retractions(id)?);
                    }
                    Ok(found)
                },
            )
            .await?
            .map_err(store)?;
        retractions.extend(found);
    }
    ids.extend(records);
    ids.extend(retractions);
    let (revocations, reader) = node
        .read(|s| {
            s.export_ids_of(&[T::Revocation])
                .map(|ids| (ids, s.object_reader()))
        })
        .await?
        .map_err(store)?;
    ids.extend(revocations);
    Ok((ids, reader))
}

/// What a reader who followed an export link from the search page sees when the export cannot
/// be made: a page in their language (the technical detail marked as English) with the way
/// back, not a bare English error; a busy node says when to come back.
async fn refused_page(
    node: &NodeHandle,
    hl: &[(String, String)],
    headers: &HeaderMap,
    e: crate::ApiError,
) -> Response {
    let ctx = crate::ui::Ctx::new(node, hl, headers).await;
    let lang = ctx.lang;
    let busy = e.0 == StatusCode::SERVICE_UNAVAILABLE;
    let body = maud::html! {
        h1 { (lang.t(if busy { "export_busy" } else { "export_failed" })) }
        @if !busy { p { span lang="en" { (e.1) } } }
        p { a href="/" { (lang.t("search")) } }
    };
    let mut r = ctx.page(
        lang.t(if busy { "export_busy" } else { "export_failed" }),
        "search",
        "/",
        body,
    );
    *r.status_mut() = e.0;
    if busy {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
    }
    r
}

/// A slot of [`crate::EXPORTS_AT_ONCE`] for an export of the search page, or the page that
/// says to come back.
pub(crate) async fn ui_slot(
    node: &NodeHandle,
    hl: &[(String, String)],
    headers: &HeaderMap,
    slots: &ExportSlots,
) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    match export_slot(slots) {
        Ok(s) => Ok(s),
        Err(_) => Err(refused_page(
            node,
            hl,
            headers,
            crate::ApiError(StatusCode::SERVICE_UNAVAILABLE, String::new()),
        )
        .await),
    }
}

/// A slot of [`crate::EXPORTS_AT_ONCE`], or the 503 that says to come back.
fn export_slot(slots: &ExportSlots) -> Result<tokio::sync::OwnedSemaphorePermit, Box<Response>> {
    slots
        .0
        .clone()
        .try_acquire_owned()
        .map_err(|_| Box::new(crate::exports_busy()))
}

/// Text as XML 1.0 content: only characters a document may hold (no controls but line
/// breaks and tabs, no U+FFFE or U+FFFF: one such character in a record made every feed listing
/// it unreadable to a strict feed reader), escaped.
fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| {
            (!c.is_control() || matches!(c, '\n' | '\t')) && !matches!(c, '\u{FFFE}' | '\u{FFFF}')
        })
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /feeds/records.atom?<search>`: the newest records of a search as an Atom feed (RFC
/// 4287), so an analyst follows a topic in a feed reader or mail client. `hl` is the language
/// of the feed's own title (the search page links with its interface language; `lang` is the
/// records' language filter, as in the API).
pub async fn atom(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(mut params): Query<Vec<(String, String)>>,
) -> Response {
    let hl = interface_lang(&mut params);
    let docs = match collect(&node, &params, FEED_ENTRIES, true).await {
        Ok(d) => d,
        Err(e) => return refused_page(&node, &hl, &headers, e).await,
    };
    let ctx = crate::ui::Ctx::new(&node, &hl, &headers).await;
    let base = base_url(&headers);
    let query = feed_title(&params, &ctx);
    let updated = docs
        .first()
        .map(|d| d.created.to_string())
        .unwrap_or_else(|| accord_core::Timestamp(0).to_string());
    let mut linked = params.clone();
    linked.extend(hl.iter().map(|(_, v)| ("hl".to_string(), v.clone())));
    let self_link = format!("{base}/feeds/records.atom?{}", crate::ui::qs(&linked));
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    x.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    x.push_str(&format!(
        "<title>{}</title>\n<id>{}</id>\n<updated>{updated}</updated>\n<link rel=\"self\" href=\"{}\"/>\n<generator>Accord</generator>\n",
        xml(&format!(
            "Accord — {}",
            if query.is_empty() {
                ctx.lang.t("all_records")
            } else {
                &query
            }
        )),
        xml(&self_link),
        xml(&self_link),
    ));
    for d in &docs {
        // In the reader's language where the record has it, else as written.
        let (title, title_lang) = d.title_and_lang_in(ctx.lang.code());
        // The summary in the title's language where there is one; its own language said.
        let (summary_lang, summary) = d
            .summary
            .get_key_value(title_lang)
            .or_else(|| d.summary.get_key_value(&d.lang))
            .or_else(|| d.summary.iter().next())
            .map(|(l, s)| (l.as_str(), accord_search::analysis::markdown_to_plain(s)))
            .unwrap_or((title_lang, String::new()));
        // The kind and the directions as categories, each with its name in the reader's
        // language (feed readers show the label); the author as the ministry and its state.
        let categories: String = std::iter::once((&d.kind, "kinds"))
            .chain(d.directions.iter().map(|x| (x, "directions")))
            .map(|(code, scheme)| {
                format!(
                    "<category term=\"{}\" scheme=\"{base}/v1/federation#{scheme}\" label=\"{}\"/>\n",
                    xml(code),
                    xml(ctx.name(code))
                )
            })
            .collect();
        x.push_str(&format!(
            "<entry xml:lang=\"{}\">\n<id>urn:accord:{id}</id>\n<title>{}</title>\n<updated>{}</updated>\n<author><name>{}</name></author>\n<link href=\"{base}/records/{id}\"/>\n{categories}<summary xml:lang=\"{}\">{}</summary>\n</entry>\n",
            xml(title_lang),
            xml(title),
            d.created,
            xml(&format!("{}, {}", d.publisher, ctx.member_text(&d.member))),
            xml(summary_lang),
            xml(&summary),
            id = d.id,
        ));
    }
    x.push_str("</feed>\n");
    (
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        x,
    )
        .into_response()
}

/// What a feed follows, for its title, in the reader's language: the words quoted, then each
/// filter with its values by name ("“digital” · Member state: Kazakhstan, Belarus ·
/// Direction: E-government").
fn feed_title(params: &[(String, String)], ctx: &crate::ui::Ctx) -> String {
    let lang = ctx.lang;
    let mut parts: Vec<String> = Vec::new();
    let mut filters: Vec<(&str, Vec<String>)> = Vec::new();
    for (k, v) in params {
        let value = match k.as_str() {
            "q" => {
                if !v.trim().is_empty() {
                    parts.push(lang.quote(v.trim()));
                }
                continue;
            }
            "limit" | "cursor" | "sort" | "delimiter" => continue,
            "member" => ctx.members.get(v).cloned().unwrap_or_else(|| v.clone()),
            "direction" | "kind" => ctx.name(v).to_string(),
            "lang" => ctx.language_text(v),
            "status" => lang.status(v),
            "since" | "date_from" | "date_to" => v
                .parse::<accord_core::Timestamp>()
                .map(|t| lang.date(t))
                .unwrap_or_else(|_| v.clone()),
            // The first instant left out: the last day kept is the one before it.
            "until" => v
                .parse::<accord_core::Timestamp>()
                .map(|t| lang.date(accord_core::Timestamp(t.0.saturating_sub(1))))
                .unwrap_or_else(|_| v.clone()),
            _ => v.clone(),
        };
        let label = match k.as_str() {
            "lang" => "available_in",
            "since" => "shared_from",
            "until" => "shared_to",
            "date_from" => "doc_from",
            "date_to" => "doc_to",
            other => other,
        };
        match filters.iter_mut().find(|(name, _)| *name == label) {
            Some((_, values)) => values.push(value),
            None => filters.push((label, vec![value])),
        }
    }
    parts.extend(
        filters
            .into_iter()
            .map(|(k, values)| format!("{}: {}", lang.t(k), values.join(", "))),
    );
    parts.join(" · ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    /// A CSV or JSON-lines export holds its slot until the client has taken its last piece
    /// (the file handed over whole kept none, and clients reading nothing held as many built
    /// files as connections); a client that reads nothing for the idle time loses it, and the
    /// response ends in an error.
    #[tokio::test]
    async fn a_built_export_holds_its_slot_until_it_is_read() {
        use futures::StreamExt;
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let body = vec![b'x'; 3 * crate::EXPORT_CHUNK_BYTES + 5];
        let lease = crate::Lease::new(
            slots.clone().try_acquire_owned().unwrap(),
            std::time::Duration::from_secs(60),
        );
        let r = super::leased_file("text/csv", "a.csv", body, lease);
        assert_eq!(
            r.headers()[axum::http::header::CONTENT_LENGTH],
            (3 * crate::EXPORT_CHUNK_BYTES + 5).to_string()
        );
        let mut stream = r.into_body().into_data_stream();
        let mut got = 0;
        for _ in 0..3 {
            got += stream.next().await.unwrap().unwrap().len();
            assert_eq!(slots.available_permits(), 0, "held while pieces remain");
        }
        got += stream.next().await.unwrap().unwrap().len();
        assert_eq!(got, 3 * crate::EXPORT_CHUNK_BYTES + 5);
        assert!(stream.next().await.is_none());
        assert_eq!(slots.available_permits(), 1, "given back at the end");

        // Nothing read for the idle time: the slot goes back, and the next piece is an error.
        let lease = crate::Lease::new(
            slots.clone().try_acquire_owned().unwrap(),
            std::time::Duration::from_millis(100),
        );
        let r = super::leased_file("text/csv", "a.csv", vec![b'y'; 10], lease);
        let mut stream = r.into_body().into_data_stream();
        let freed = slots.clone().acquire_owned();
        let permit = tokio::time::timeout(std::time::Duration::from_secs(30), freed)
            .await
            .unwrap()
            .unwrap();
        assert!(stream.next().await.unwrap().is_err());
        drop(permit);
    }

    /// An export's file name says what it holds and when; only plain codes go into it.
    #[test]
    fn an_exports_name_names_its_filters_and_day() {
        use super::export_name;
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let today = accord_core::Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
        )
        .date();
        assert_eq!(
            export_name(
                &p(&[
                    ("q", "портал"),
                    ("member", "KZ"),
                    ("direction", "e-government")
                ]),
                "csv"
            ),
            format!("accord-records-KZ-e-government-{today}.csv")
        );
        assert_eq!(
            export_name(&p(&[("member", "KZ,BY"), ("kind", "x\"; evil=1")]), "cbor"),
            format!("accord-records-KZ-BY-{today}.cbor")
        );
        assert_eq!(
            export_name(&[], "jsonl"),
            format!("accord-records-{today}.jsonl")
        );
    }

    /// A feed holds only characters an XML document may: a title with U+FFFF made every feed
    /// listing it unreadable to a strict feed reader.
    #[test]
    fn feed_text_holds_only_characters_xml_allows() {
        assert_eq!(
            super::xml("Wombat \u{FFFF}\u{FFFE}\u{1}notice\n<&>\""),
            "Wombat notice\n&lt;&amp;&gt;&quot;"
        );
    }

    /// A member's title that a spreadsheet would evaluate is written as text; the delimiter
    /// a request asks for separates the cells and is quoted inside them.
    #[test]
    fn csv_cells_are_never_formulas_and_take_the_delimiter_asked() {
        let item = serde_json::json!({
            "id": "ab", "created": "2026-01-01T00:00:00Z", "member": "KZ", "kind": "case-study",
            "directions": ["e-government", "digital-skills"], "languages": ["ru"],
            "status": "active", "publisher": "@evil", "title": "=HYPERLINK(\"https://x\";\"open\")",
            "titles": {"ru": "-2+3"},
        });
        let mut out = Vec::new();
        super::write_csv(
            &mut out,
            std::slice::from_ref(&item),
            "http://n",
            false,
            ';',
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let row = text.lines().nth(1).unwrap();
        assert!(row.contains(";\"'@evil\";"), "{row}");
        assert!(
            row.contains("\"'=HYPERLINK(\"\"https://x\"\";\"\"open\"\")\""),
            "{row}"
        );
        assert!(row.ends_with(";\"'-2+3\""), "{row}");
        // The directions' own separator is quoted when it is the delimiter.
        assert!(row.contains(";\"e-government;digital-skills\";"), "{row}");
        assert!(
            text.lines()
                .next()
                .unwrap()
                .starts_with("id;created;date;member")
        );
        // A tag or a file name holding the lists' separator stays one item: quoted within the
        // cell (whose own quotes are then doubled by the CSV field).
        let mut tagged = item.clone();
        tagged["tags"] = serde_json::json!(["ИИ; данные", "plain", "say \"hi\""]);
        tagged["attachments"] = serde_json::json!([{"name": "a;b.pdf", "sha256": "00"}]);
        let mut out = Vec::new();
        super::write_csv(&mut out, &[tagged], "http://n", false, ',').unwrap();
        let text = String::from_utf8(out).unwrap();
        let row = text.lines().nth(1).unwrap();
        assert!(
            row.contains(r#","""ИИ; данные"";plain;""say """"hi""""""","#),
            "{row}"
        );
        assert!(
            row.contains(r#","""a;b.pdf"" http://n/v1/blobs/00?record=ab","#),
            "{row}"
        );
        assert_eq!(super::list_item("plain"), "plain");
        // Quoted in a comma-separated file too: a spreadsheet set up for semicolons would split
        // the cell there otherwise.
        let mut out = Vec::new();
        super::write_csv(&mut out, &[item], "http://n", false, ',').unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .contains(",\"e-government;digital-skills\",")
        );
    }

    #[test]
    fn the_delimiter_is_taken_out_of_the_search_and_checked() {
        let mut p = vec![
            ("member".to_string(), "KZ".to_string()),
            ("delimiter".to_string(), "semicolon".to_string()),
        ];
        assert_eq!(super::delimiter_of(&mut p).ok(), Some(';'));
        assert_eq!(p, vec![("member".to_string(), "KZ".to_string())]);
        let mut p = vec![("delimiter".to_string(), "tab".to_string())];
        assert!(super::delimiter_of(&mut p).is_err());
        assert_eq!(super::delimiter_of(&mut Vec::new()).ok(), Some(','));
    }

    #[test]
    fn a_feed_title_says_what_it_follows() {
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        use crate::ui::{Ctx, Lang};
        let names = [("e-government", "Электронное правительство")];
        let members = [("KZ", "Казахстан"), ("BY", "Беларусь")];
        let ru = Ctx::for_test(Lang::Ru, &names, &members);
        assert_eq!(super::feed_title(&p(&[]), &ru), "");
        let asked = p(&[
            ("q", "digital skills"),
            ("member", "KZ"),
            ("lang", "kk"),
            ("member", "BY"),
            ("direction", "e-government"),
            ("until", "2026-02-01T00:00:00Z"),
        ]);
        let title = super::feed_title(&asked, &ru);
        assert!(
            title.starts_with(
                "«digital skills» · Государство: Казахстан, Беларусь · Есть на языке: "
            ) && title.contains(" · Направление: Электронное правительство · Опубликовано по: ")
                && title.contains("31"),
            "{title}"
        );
        // The records' language is a filter of the feed, named as one (it was left out as if
        // it were the page's language).
        assert!(!title.contains("kk"), "{title}");
        let en = Ctx::for_test(Lang::En, &[], &[]);
        let title = super::feed_title(&asked, &en);
        assert!(
            title.starts_with("“digital skills” · Member state: KZ, BY · Available in: "),
            "{title}"
        );
    }
}
