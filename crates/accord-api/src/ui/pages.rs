//! The pages: search, record, overview, compare, federation, network.

use std::collections::BTreeMap;

use accord_core::Timestamp;
use accord_node::NodeHandle;
use accord_search::SearchQuery;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::{Ctx, markdown, member_hue, qs};
use crate::records::{
    RECORD_PARAMS, federation_value, parse_query, publishers_value, record_detail,
};

type Params = Query<Vec<(String, String)>>;

/// Record bodies rendered at once (on the blocking pool).
const RENDERS_AT_ONCE: usize = 2;
static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(RENDERS_AT_ONCE);
/// How long a record page waits for one of the [`RENDERS_AT_ONCE`] turns before it shows the
/// body as its plain text instead (the readers of heavy pages otherwise held every other
/// reader's page, each holding a connection, without an end).
const RENDER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A record body's Markdown rendered in its turn, or, when no turn came within `wait`, its
/// plain text (escaped, its lines kept) and `true`.
async fn render_body(source: String, wait: std::time::Duration) -> (Markup, bool) {
    match tokio::time::timeout(wait, RENDERS.acquire()).await {
        // The turn goes with the render: a reader gone meanwhile (its handler dropped) does not
        // give it back while the render, which cannot be cut short, still runs.
        Ok(Ok(turn)) => (
            tokio::task::spawn_blocking(move || {
                let _turn = turn;
                markdown(&source)
            })
            .await
            .unwrap_or_default(),
            false,
        ),
        Ok(Err(_)) => (Markup::default(), false),
        Err(_) => (html! { pre.plain { (source) } }, true),
    }
}

/// One parameter of the search page as the API's: the date range (`from`, `to` inclusive, as
/// date inputs send them) as `since`/`until`, and the records' language (`in`; the page's
/// `lang` is its interface language) as `lang`.
fn api_param(k: &str, v: &str) -> (String, String) {
    match k {
        "from" => ("since".to_string(), v.to_string()),
        "to" => (
            "until".to_string(),
            v.parse::<Timestamp>()
                .map(|t| Timestamp(t.0.saturating_add(86_400_000)).to_string())
                .unwrap_or_else(|_| v.to_string()),
        ),
        "in" => ("lang".to_string(), v.to_string()),
        _ => (k.to_string(), v.to_string()),
    }
}

/// What the search page was asked, sorted out: the parameters it keeps (in its own names, for
/// links and forms), the same for the API, and those it leaves out because their value is
/// wrong (shown to the reader). Parameters it does not know (a link's `utm_source`) are
/// dropped without a word, empty ones too.
struct Asked {
    ui: Vec<(String, String)>,
    api: Vec<(String, String)>,
    ignored: Vec<(String, String)>,
    /// Parameters left out beyond those listed in `ignored`.
    ignored_more: usize,
    /// The query was longer than the search takes: its first words were kept.
    query_cut: bool,
}

/// A query longer than the search takes (a shared link's, say; the form stops at it), cut to
/// its first [`accord_search::MAX_QUERY_CHARS`] characters, at a space where there is one.
fn cut_query(v: &str) -> Option<String> {
    let max = accord_search::MAX_QUERY_CHARS;
    let end = v.char_indices().nth(max)?.0;
    let head = &v[..end];
    let cut = match head.rfind(char::is_whitespace) {
        Some(i) if i > 0 => &head[..i],
        _ => head,
    };
    Some(cut.trim_end().to_string())
}

/// Parameters left out that the page lists by name; more are counted.
const IGNORED_LISTED: usize = 8;

/// Filter values a search page takes in all (beyond the query, its order and its place): each
/// chip links to the page without it, and the links to other pages carry them all, so the page
/// grows with the square of their number. A link of thirty-two values of each of six filters
/// made a page of about 13 MB.
pub const MAX_PAGE_FILTERS: usize = 48;

/// Bytes of filter parameters (names and values, as given) a search page takes in all, for the
/// same reason: a few long values (tags) would otherwise stand for many. The query is bounded
/// on its own ([`accord_search::MAX_QUERY_CHARS`]).
pub const MAX_PAGE_PARAM_BYTES: usize = 4 * 1024;

fn asked(params: &[(String, String)]) -> Asked {
    let mut a = Asked {
        ui: Vec::new(),
        api: Vec::new(),
        ignored: Vec::new(),
        ignored_more: 0,
        query_cut: false,
    };
    // A value given twice counts once; a parameter keeps at most its first
    // `MAX_VALUES_PER_PARAM` values (each chip links to the page without it, so the page
    // grows with the square of their number).
    let mut seen: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    let mut per_param: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut filters, mut bytes) = (0usize, 0usize);
    let ignore = |a: &mut Asked, k: &str, v: &str| {
        if a.ignored.len() < IGNORED_LISTED {
            a.ignored.push((k.to_string(), v.to_string()));
        } else {
            a.ignored_more += 1;
        }
    };
    for (k, v) in params {
        if k == "lang" || v.trim().is_empty() || !seen.insert((k.as_str(), v.trim())) {
            continue;
        }
        let cut = (k == "q").then(|| cut_query(v)).flatten();
        let v = cut.as_ref().unwrap_or(v);
        let (ak, av) = api_param(k, v);
        if !RECORD_PARAMS.contains(&ak.as_str()) {
            continue;
        }
        let n = per_param.entry(k.as_str()).or_default();
        *n += 1;
        // A parameter of one value keeps its first (the one the form shows).
        let again = crate::records::SINGLE_VALUED.contains(&ak.as_str())
            && a.api.iter().any(|(x, _)| *x == ak);
        let filter = !matches!(k.as_str(), "q" | "sort" | "cursor" | "limit" | "as_typed");
        if again
            || *n > crate::records::MAX_VALUES_PER_PARAM
            || (filter && filters == MAX_PAGE_FILTERS)
            || (filter && bytes + k.len() + v.len() > MAX_PAGE_PARAM_BYTES)
            || parse_query(&[(ak.clone(), av.clone())], &RECORD_PARAMS).is_err()
        {
            ignore(&mut a, k, v);
            continue;
        }
        if filter {
            filters += 1;
            bytes += k.len() + v.len();
        }
        a.query_cut |= cut.is_some();
        a.ui.push((k.clone(), v.clone()));
        a.api.push((ak, av));
    }
    a
}

/// A filter's values as a reader scans them: members, directions and kinds by how many records
/// they hold, then by name in the interface language (their codes' order meant nothing to a
/// reader); languages and statuses as they come.
fn facet_order<'a>(
    facet: &str,
    counts: &'a BTreeMap<String, u64>,
    ctx: &Ctx,
) -> Vec<(&'a String, &'a u64)> {
    let mut v: Vec<(&String, &u64)> = counts.iter().collect();
    if matches!(facet, "member" | "direction" | "kind") {
        let name = |code: &str| match facet {
            "member" => ctx
                .members
                .get(code)
                .cloned()
                .unwrap_or_else(|| code.to_string()),
            _ => ctx.name(code).to_string(),
        };
        v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| name(a.0).cmp(&name(b.0))));
    }
    v
}

/// Takes a filter out of a query (or widens it); `false` when there was nothing to take.
type Widen = fn(&mut SearchQuery) -> bool;

/// The statuses a record can have, for the status filter's counts.
const ALL_STATUSES: [&str; 4] = ["active", "superseded", "retracted", "signer-revoked"];

/// Facets as a reader expects of filters: the counts of a filter already chosen are those of
/// the search without it, so that its other values stay offered (KZ chosen, BY can be added);
/// the status filter counts every status, so that superseded and retracted records can be
/// found, not only the active ones the search shows by default. One more search for each
/// filter chosen, and one for the statuses.
async fn widen_facets(node: &NodeHandle, q: &SearchQuery, r: &mut accord_search::SearchResult) {
    let widen: [(&str, Widen); 5] = [
        ("member", |q| !std::mem::take(&mut q.members).is_empty()),
        ("kind", |q| !std::mem::take(&mut q.kinds).is_empty()),
        ("direction", |q| {
            !std::mem::take(&mut q.directions).is_empty()
        }),
        ("lang", |q| !std::mem::take(&mut q.langs).is_empty()),
        ("status", |q| {
            q.statuses = ALL_STATUSES.iter().map(|s| s.to_string()).collect();
            true
        }),
    ];
    let (facets, searches): (Vec<&str>, Vec<SearchQuery>) = widen
        .into_iter()
        .filter_map(|(facet, widen)| {
            let mut wq = q.clone();
            wq.limit = 1;
            wq.offset = 0;
            widen(&mut wq).then_some((facet, wq))
        })
        .unzip();
    if searches.is_empty() {
        return;
    }
    // In one search slot, one after another: a page's five side searches side by side took
    // more than the node's four slots, and a few pages kept every other reader waiting.
    let Ok(answers) = node.search_each(searches).await else {
        return;
    };
    for (facet, w) in facets.into_iter().zip(answers) {
        if let Ok(w) = w
            && let Some(counts) = w.facets.get(facet)
        {
            r.facets.insert(facet.to_string(), counts.clone());
        }
    }
}

/// The search page's parameter for a facet of results (the records' language is `in`).
fn facet_param(facet: &str) -> &str {
    if facet == "lang" { "in" } else { facet }
}

pub async fn search(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ctx = Ctx::new(&node, &params, &headers).await;
    let lang = ctx.lang;
    // An id pasted into the search box (whole, or a prefix of 8 or more that names one record)
    // opens that record: it is not a word of any record's text.
    let pasted = params
        .iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim())
        .unwrap_or_default();
    if let Some(id) = record_named(&node, pasted).await {
        let keep: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k == "lang")
            .cloned()
            .collect();
        let to = if keep.is_empty() {
            format!("/records/{id}")
        } else {
            format!("/records/{id}?{}", qs(&keep))
        };
        return axum::response::Redirect::to(&to).into_response();
    }
    // What the page was asked (kept in links and the form), and what the API is asked.
    let Asked {
        ui: ui_params,
        api,
        ignored,
        ignored_more,
        query_cut,
    } = asked(&params);
    let parsed = parse_query(&api, &RECORD_PARAMS);
    // Where this page starts, and how many a page holds, as the search reads them: for
    // "records 21–40 of 57" and the link to the page before.
    let (offset, page_size) = parsed
        .as_ref()
        .map_or((0, accord_search::DEFAULT_LIMIT), |q| {
            (q.offset, q.limit.max(1))
        });
    // A node busy with other searches answers 503 and when to come back, and says so in the
    // reader's language (not as a failure with 200).
    let mut busy = false;
    let (result, error) = match parsed {
        Ok(mut q) => {
            q.reader_lang = Some(lang.code().to_string());
            match node.search(q.clone()).await {
                Ok(mut r) => {
                    widen_facets(&node, &q, &mut r).await;
                    (Some(r), None)
                }
                Err(e) => {
                    busy = matches!(e, accord_node::NodeError::Busy(_));
                    (None, Some(e.to_string()))
                }
            }
        }
        Err(e) => (None, Some(e.1)),
    };
    let get = |k: &str| {
        ui_params
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let text = get("q");
    let sort = get("sort");
    let after = |a: &str, b: &str| {
        let day = |k: &str| get(k).parse::<Timestamp>().ok();
        matches!((day(a), day(b)), (Some(x), Some(y)) if x.0 > y.0)
    };
    let (shared_reversed, doc_reversed) = (after("from", "to"), after("date_from", "date_to"));
    let dates_reversed = shared_reversed || doc_reversed;
    let checked = |k: &str, v: &str| ui_params.iter().any(|(a, b)| a == k && b == v);
    let live_query: Vec<(String, String)> = api
        .iter()
        .filter(|(k, _)| crate::records::STREAM_PARAMS.contains(&k.as_str()))
        .cloned()
        .collect();
    let without = |drop: &[&str]| -> Vec<(String, String)> {
        ui_params
            .iter()
            .filter(|(k, _)| !drop.contains(&k.as_str()))
            .cloned()
            .collect()
    };
    let at_offset = |o: usize| {
        let mut p = without(&["cursor"]);
        if o > 0 {
            p.push(("cursor".into(), format!("o{o}")));
        }
        format!("/?{}", qs(&p))
    };
    let next = result.as_ref().and_then(|r| r.next_offset).map(&at_offset);
    // Past the last page (an old bookmark), the previous page is the last one.
    let last_page = result
        .as_ref()
        .map(|r| (r.total.saturating_sub(1) / page_size.max(1)) * page_size.max(1));
    let previous = (offset > 0).then(|| {
        at_offset(
            offset
                .saturating_sub(page_size)
                .min(last_page.unwrap_or(usize::MAX)),
        )
    });
    let export_q = qs(&api
        .iter()
        .filter(|(k, _)| k != "cursor" && k != "limit")
        .cloned()
        .collect::<Vec<_>>());
    let active_filters = ui_params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "q" | "cursor" | "sort" | "limit" | "as_typed"))
        .count();
    // Every "clear" takes the filters away and keeps the words, the order and the page size
    // (the first page: a cursor belongs to the filtered results).
    let clear_href = {
        let keep: Vec<(String, String)> = ui_params
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "q" | "sort" | "limit" | "lang" | "as_typed"))
            .cloned()
            .collect();
        if keep.is_empty() {
            "/".to_string()
        } else {
            format!("/?{}", qs(&keep))
        }
    };
    let body = html! {
        form.searchbar role="search" action="/" method="get" {
            label for="q" class="visually-hidden" { (lang.t("search")) }
            input #q type="search" name="q" value=(text) placeholder=(lang.t("search_placeholder")) maxlength="512" list="suggestions" autocomplete="off";
            datalist #suggestions {}
            @for (k, v) in ui_params.iter().filter(|(k, _)| !matches!(k.as_str(), "q" | "cursor" | "as_typed")) {
                input type="hidden" name=(k) value=(v);
            }
            button type="submit" { (lang.t("search")) }
        }
        a.skip href="#results" { (lang.t("skip_results")) }
        // Refreshing shows the first page, where new records appear (newest first).
        @let first_page: Vec<(String, String)> = ui_params.iter().filter(|(k, _)| k != "cursor").cloned().collect();
        // The status line is on the page, empty, from the start: a screen reader announces a
        // change of its text, not a region that appears with it. It is said at most every 15
        // seconds; what is shown changes at once (and is not said twice). The refresh link and
        // the button that stops the updates show with the first words (app.js).
        div #live data-query=(format!("?{}", qs(&live_query))) data-forms=(lang.t("new_record_forms")) data-reconnected=(lang.t("live_reconnected")) {
            span #live-text .visually-hidden role="status" {}
            span.live-shown aria-hidden="true" {}
            span.live-actions hidden {
                " — " a href=(format!("/?{}", qs(&first_page))) { span aria-hidden="true" { "↻" } " " (lang.t("refresh")) }
                " · " button.linkish #live-stop type="button" { (lang.t("live_stop")) }
            }
        }
        @if !ignored.is_empty() {
            p.notice role="status" {
                (lang.t("ignored_params")) ": "
                @for (i, (k, v)) in ignored.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (k) "=" (v.chars().take(40).collect::<String>()) @if v.chars().count() > 40 { "…" } }
                }
                @if ignored_more > 0 { " " (lang.more_params(ignored_more)) }
            }
        }
        @if query_cut { p.notice role="status" { (lang.query_cut(accord_search::MAX_QUERY_CHARS)) } }
        // The dates' fields point to this notice while they are the reason for it.
        @if dates_reversed { p.notice #dates-error role="status" { (lang.t("dates_reversed")) } }
        // A member code the charter does not name finds nothing: say why.
        @let unknown_members: Vec<String> = ui_params.iter().filter(|(k, v)| k == "member" && !ctx.members.contains_key(v)).map(|(_, v)| v.chars().take(12).collect()).collect();
        @if !unknown_members.is_empty() {
            p.notice role="status" { (lang.t("unknown_members")) ": " (unknown_members.join(", ")) }
        }
        div.layout {
            // The filters first, as they are shown (above the results on a phone, beside them on a
            // wide screen): Tab goes through the page in the order it reads.
            details.filterbox #filters {
                summary { (lang.t("filters")) @if active_filters > 0 { " (" (active_filters) ")" } }
                form.filters action="/" method="get" {
                    @if !text.is_empty() { input type="hidden" name="q" value=(text); }
                    @if !sort.is_empty() { input type="hidden" name="sort" value=(sort); }
                    // Filters the panel has no control for (a shared link's publisher, a tag
                    // chosen on a record's page, the page size) are kept when it is applied.
                    @for (k, v) in ui_params.iter().filter(|(k, _)| matches!(k.as_str(), "publisher" | "tag" | "limit" | "as_typed")) {
                        input type="hidden" name=(k) value=(v);
                    }
                    @if let Some(r) = &result {
                        @for facet in ["member", "direction", "kind", "lang", "status"] {
                            @let name = facet_param(facet);
                            // A value chosen that no record now has keeps its box, ticked, at 0.
                            @let counts = {
                                let mut c = r.facets.get(facet).cloned().unwrap_or_default();
                                for (_, v) in ui_params.iter().filter(|(k, _)| k == name) {
                                    c.entry(v.clone()).or_insert(0);
                                }
                                c
                            };
                            @if !counts.is_empty() || ui_params.iter().any(|(k, _)| k == name) {
                                fieldset {
                                    // A record counts under every language it is written in.
                                    legend { (lang.t(if facet == "lang" { "available_in" } else { facet })) }
                                    @for (value, n) in facet_order(facet, &counts, &ctx) {
                                        // A script or region of a language chosen bare (`in=uz`
                                        // finds `uz-Latn`) is ticked, and greyed: it goes with
                                        // that language's box.
                                        @let covered = facet == "lang" && !checked(name, value) && ui_params.iter().any(|(k, v)| k == name && accord_search::lang_filter_matches(v, value));
                                        label {
                                            input type="checkbox" name=(name) value=(value) checked[checked(name, value) || covered] disabled[covered];
                                            " "
                                            @match facet {
                                                "member" => (ctx.member(value)),
                                                "lang" => (ctx.language_text(value)),
                                                "status" => (lang.status(value)),
                                                _ => (ctx.name(value)),
                                            }
                                            " " span.count { "(" (lang.number(*n)) ")" }
                                        }
                                    }
                                }
                            }
                        }
                        fieldset {
                            legend { (lang.t("dates")) }
                            @let years = r.facets.get("year").cloned().unwrap_or_default();
                            @if !years.is_empty() {
                                p.years {
                                    span.meta { (lang.t("shared_period")) ": " }
                                    @for (y, n) in &years {
                                        @let yp = without(&["from", "to", "since", "until", "cursor"]).into_iter().chain([("from".to_string(), format!("{y}-01-01")), ("to".to_string(), format!("{y}-12-31"))]).collect::<Vec<_>>();
                                        a.badge href=(format!("/?{}", qs(&yp))) { (y) " (" (lang.number(*n)) ")" } " "
                                    }
                                }
                            }
                            fieldset {
                                legend.meta { (lang.t("shared_period")) }
                                // A shared link's `since`/`until` show here as the days they
                                // fall on, so that applying the panel keeps the period.
                                @let day_of = |k: &str, back: u64| get(k).parse::<Timestamp>().ok().map(|t| Timestamp(t.0.saturating_sub(back)).date()).unwrap_or_default();
                                @let from = if get("from").is_empty() { day_of("since", 0) } else { get("from") };
                                @let to = if get("to").is_empty() { day_of("until", 1) } else { get("to") };
                                label for="from" { (lang.t("date_from")) } input #from type="date" name="from" value=(from) aria-invalid=[shared_reversed.then_some("true")] aria-describedby=[shared_reversed.then_some("dates-error")];
                                label for="to" { (lang.t("date_to")) } input #to type="date" name="to" value=(to) aria-invalid=[shared_reversed.then_some("true")] aria-describedby=[shared_reversed.then_some("dates-error")];
                            }
                            fieldset {
                                legend.meta { (lang.t("doc_period")) }
                                label for="date_from" { (lang.t("date_from")) } input #date_from type="date" name="date_from" value=(get("date_from")) aria-invalid=[doc_reversed.then_some("true")] aria-describedby=[doc_reversed.then_some("dates-error")];
                                label for="date_to" { (lang.t("date_to")) } input #date_to type="date" name="date_to" value=(get("date_to")) aria-invalid=[doc_reversed.then_some("true")] aria-describedby=[doc_reversed.then_some("dates-error")];
                            }
                        }
                    }
                    div.actions {
                        button type="submit" { (lang.t("apply")) }
                        " " a href=(clear_href) { (lang.t("clear")) }
                    }
                }
            }
            section #results .results aria-labelledby="results-h" {
                @if result.is_none() {
                    (results_heading(lang, None))
                }
                (failure_notice(lang, busy, error.as_deref()))
                @if let Some(r) = &result {
                    div.resultbar {
                        (results_heading(lang, Some(r.total)))
                        form.sortform action="/" method="get" {
                            @for (k, v) in ui_params.iter().filter(|(k, _)| k != "sort" && k != "cursor") {
                                input type="hidden" name=(k) value=(v);
                            }
                            label for="sort" { (lang.t("sort")) " " }
                            select #sort name="sort" {
                                // Without words the default order is newest first, and says so.
                                @let orders: &[(&str, &str)] = if text.trim().is_empty() || r.reading.no_words {
                                    &[("", "newest"), ("oldest", "oldest"), ("document_newest", "document_newest"), ("document_oldest", "document_oldest")]
                                } else {
                                    &[("", "relevance"), ("newest", "newest"), ("oldest", "oldest"), ("document_newest", "document_newest"), ("document_oldest", "document_oldest")]
                                };
                                @for (v, key) in orders {
                                    option value=(v) selected[sort == *v] { (lang.t(key)) }
                                }
                            }
                            " " button type="submit" { (lang.t("show")) }
                        }
                    }
                    // The filters in force, each removable: a filter chosen from the
                    // completions (or a shared link) is never silently in force.
                    @let chips: Vec<(String, String, Markup)> = ui_params.iter().filter_map(|(k, v)| {
                        let value = match k.as_str() {
                            "member" => ctx.member(v),
                            "direction" | "kind" => html! { (ctx.name(v)) },
                            "in" => html! { (ctx.language_text(v)) },
                            "status" => html! { (lang.status(v)) },
                            "publisher" | "tag" => html! { (v) },
                            "from" | "to" | "date_from" | "date_to" => html! {
                                (v.parse::<Timestamp>().map(|t| lang.date(t)).unwrap_or_else(|_| v.clone()))
                            },
                            _ => return None,
                        };
                        let label = match k.as_str() {
                            "in" => lang.t("available_in").to_string(),
                            "from" => lang.t("shared_from").to_string(),
                            "to" => lang.t("shared_to").to_string(),
                            "date_from" => lang.t("doc_from").to_string(),
                            "date_to" => lang.t("doc_to").to_string(),
                            other => lang.t(other).to_string(),
                        };
                        let rest: Vec<(String, String)> = ui_params.iter().filter(|(a, b)| !(a == k && b == v) && a != "cursor").cloned().collect();
                        Some((label, format!("/?{}", qs(&rest)), value))
                    }).collect();
                    @if !chips.is_empty() {
                        ul.chips aria-label=(lang.t("filters")) {
                            @for (label, href, value) in &chips {
                                li { a.chip href=(href) title=(lang.t("remove_filter")) {
                                    span.meta { (label) ": " } (value) " " span aria-hidden="true" { "×" } span.visually-hidden { " — " (lang.t("remove_filter")) }
                                } }
                            }
                            @if chips.len() > 1 {
                                li { a href=(clear_href) { (lang.t("clear")) } }
                            }
                        }
                    }
                    @if let Some(fixed) = &r.reading.showing_for {
                        // The words as typed, uncorrected, a tap away: a name or a term the index
                        // does not know is not always a typo.
                        @let typed_params = without(&["cursor", "as_typed"]).into_iter().chain([("as_typed".to_string(), "1".to_string())]).collect::<Vec<_>>();
                        p.didyoumean { (lang.t("showing_for")) " " strong { (lang.quote(fixed)) } ". "
                            (lang.t("search_as_typed")) " " a href=(format!("/?{}", qs(&typed_params))) { (lang.quote(&text)) } }
                    } @else if let Some(fixed) = &r.did_you_mean {
                        @let fixed_params = without(&["q", "cursor", "as_typed"]).into_iter().chain([("q".to_string(), fixed.clone())]).collect::<Vec<_>>();
                        p.didyoumean { (lang.t("did_you_mean")) ": " a href=(format!("/?{}", qs(&fixed_params))) { strong { (fixed) } } "?" }
                    }
                    @if r.reading.no_words { p.notice role="status" { (lang.t("no_words")) " " (lang.quote(&text)) } }
                    @if r.reading.long_words { p.notice role="status" { (lang.t("long_words")) " " (lang.quote(&text)) } }
                    @if r.reading.approximate { p.meta { (lang.t("approximate")) } }
                    @if !r.reading.also.is_empty() { p.meta { (lang.t("also_searched")) ": " (r.reading.also.join(", ")) } }
                    @for dcode in &r.reading.directions { p.meta { (lang.t("also_direction")) " " (lang.quote(ctx.name(dcode))) } }
                    @for mcode in &r.reading.members { p.meta { (lang.t("also_member")) " " (ctx.member(mcode)) } }
                    @if r.hits.is_empty() && r.total > 0 && offset > 0 {
                        // A page past the last (a bookmark, a link from before records were
                        // retracted): there are results, on earlier pages.
                        div.empty { p { strong { (lang.t("past_last")) } }
                            @if let Some(p) = &previous { p { a href=(p) { (lang.t("last_page")) } } }
                        }
                    } @else if r.hits.is_empty() {
                        // The status filter counts every status: none at all means nothing held.
                        @let holds_any = r.facets.get("status").is_some_and(|m| m.values().any(|n| *n > 0));
                        @if text.is_empty() && active_filters == 0 && r.total == 0 && !holds_any {
                            // Nothing asked and nothing held: say so, rather than "not found".
                            div.empty { p { strong { (lang.t("node_empty")) } } p { (lang.t("node_empty_help")) } }
                        } @else {
                            // Records that match but are shown only on request (superseded,
                            // retracted, of a revoked signer): a reader on a phone, the filters
                            // folded, never saw the status filter's counts.
                            @let hidden: u64 = r.facets.get("status").map_or(0, |m| m.iter().filter(|(k, _)| k.as_str() != "active").map(|(_, n)| *n).sum());
                            @let status_chosen = ui_params.iter().any(|(k, _)| k == "status");
                            div.empty { p { strong { (lang.t("no_results")) } } p { (lang.t(if active_filters > 0 { "empty_help" } else { "empty_help_words" })) }
                                @if hidden > 0 && !status_chosen {
                                    @let with_status: Vec<(String, String)> = without(&["cursor"]).into_iter().chain(ALL_STATUSES[1..].iter().map(|s| ("status".to_string(), s.to_string()))).collect();
                                    p { (lang.t("hidden_matches")) ": " (lang.number(hidden)) ". " a href=(format!("/?{}", qs(&with_status))) { (lang.t("show_them")) } }
                                }
                                @if active_filters > 0 { p { a href=(clear_href) { (lang.t("clear")) } } }
                            }
                        }
                    }
                    @for h in &r.hits {
                        @let d = &h.doc;
                        article.result {
                            @let (title, title_lang) = d.title_and_lang_in(lang.code());
                            h2 lang=[(title_lang != lang.code()).then_some(title_lang)] { a href=(format!("/records/{}", d.id)) { (title) } }
                            // Badges apart by a space, so that they are read and copied as
                            // words apart ("Belarus Platform", not "BelarusPlatform").
                            div.meta {
                                (ctx.member(&d.member)) " " span.badge { (ctx.name(&d.kind)) }
                                // A few directions, then how many more (a record can name all eleven).
                                @for x in d.directions.iter().take(MAX_DIRECTION_BADGES) { " " span.badge { (ctx.name(x)) } }
                                @if d.directions.len() > MAX_DIRECTION_BADGES {
                                    @let rest: Vec<String> = d.directions[MAX_DIRECTION_BADGES..].iter().map(|x| ctx.name(x).to_string()).collect();
                                    // Opened by a tap or the keyboard: a title shows on hover only.
                                    " " details.more { summary.badge { (lang.more_directions(rest.len())) }
                                        @for name in &rest { " " span.badge { (name) } }
                                    }
                                }
                                @if let Some(t) = d.date.as_deref().and_then(Timestamp::from_date) { " " (lang.t("doc_date")) " " time datetime=(d.date.as_deref().unwrap_or("")) { (lang.date(t)) } " ·" }
                                " " (lang.t("shared")) " " time datetime=(d.created.to_string()) { (lang.date(d.created)) } " ·"
                                // The languages' badges say what they are to a screen reader too.
                                @if !d.languages.is_empty() { " " span.visually-hidden { (lang.t("available_in")) ":" } }
                                @for l in &d.languages { " " span.badge { (ctx.language_text(l)) } }
                                @if d.status != "active" { " " span.badge.status { (lang.status(&d.status)) } }
                            }
                            p.snippet lang=[snippet_lang(h, lang.code())] { (maud::PreEscaped(&h.snippet)) }
                        }
                    }
                    @if previous.is_some() || next.is_some() {
                        nav.pager aria-label=(lang.t("pages")) {
                            @if !r.hits.is_empty() {
                                p.meta {
                                    @if r.hits.len() == 1 {
                                        (lang.t("shown_one")) " " (lang.number((offset + 1) as u64))
                                    } @else {
                                        (lang.t("shown")) " " (lang.number((offset + 1) as u64)) "–" (lang.number((offset + r.hits.len()) as u64))
                                    }
                                    " " (lang.t("of")) " " (lang.number(r.total as u64))
                                }
                            }
                            @if let Some(p) = &previous {
                                @if offset > page_size { a href=(format!("/?{}", qs(&without(&["cursor"])))) { (lang.t("first")) } " · " }
                                a rel="prev" href=(p) { span aria-hidden="true" { "←" } " " (lang.t("previous")) }
                            }
                            @if previous.is_some() && next.is_some() { " · " }
                            @if let Some(n) = &next { a rel="next" href=(n) { (lang.t("next")) " " span aria-hidden="true" { "→" } } }
                            @if r.cut { " " span.meta { (lang.t("paging_cut")) } }
                        }
                    }
                    @if r.total > 0 {
                        p.exports {
                            (lang.t("export")) ": "
                            // Spreadsheets set up for Russian read semicolon-separated files.
                            a href=(format!("/export.csv?{export_q}{}hl={}{}", if export_q.is_empty() { "" } else { "&" }, lang.code(), if lang == super::Lang::Ru { "&delimiter=semicolon" } else { "" })) download { (lang.t("csv")) } " · "
                            a href=(format!("/export.jsonl?{export_q}")) download { (lang.t("jsonl")) } " · "
                            a href=(format!("/export.cbor?{export_q}")) download { (lang.t("cbor")) } " · "
                            a href=(format!("/feeds/records.atom?{export_q}{}hl={}", if export_q.is_empty() { "" } else { "&" }, lang.code())) type="application/atom+xml" { (lang.t("follow")) }
                            @if r.total > crate::exports::MAX_EXPORT {
                                " " span.meta { (lang.export_cap(crate::exports::MAX_EXPORT)) }
                            }
                        }
                    }
                }
            }
        }
    };
    let pq = format!("/?{}", qs(&ui_params));
    let mut title = if text.is_empty() {
        lang.t("search").to_string()
    } else {
        format!("{text} — {}", lang.t("search"))
    };
    // A page of results after the first says which in its title, the first thing a screen
    // reader reads of a page (and what a tab or a bookmark shows).
    if offset > 0 {
        let page = offset / page_size.max(1) + 1;
        title = format!("{title}, {} {}", lang.t("page_n"), lang.number(page as u64));
    }
    let mut page = ctx.page(&title, "search", &pq, body);
    if busy {
        crate::come_back_later(&mut page);
    }
    page
}

/// What a search page says of its failed search: a busy node in the reader's language, any
/// other failure with the node's reason (in English).
fn failure_notice(lang: super::Lang, busy: bool, error: Option<&str>) -> Markup {
    html! {
        @if busy {
            p.notice.error role="alert" { (lang.t("search_busy")) }
        } @else if let Some(e) = error {
            p.notice.error role="alert" { (lang.t("search_failed")) ": " span lang="en" { (e) } }
        }
    }
}

/// The heading the results section is named by (`aria-labelledby="results-h"`): how many
/// records were found, or that the search failed. A page whose search failed had no heading
/// at all, and its section a name that pointed at nothing.
fn results_heading(lang: super::Lang, total: Option<usize>) -> Markup {
    html! {
        h1 #results-h .count-line {
            @match total {
                Some(n) => { (lang.t("results")) ": " strong { (lang.number(n as u64)) } }
                None => { (lang.t("search_failed_title")) }
            }
        }
    }
}

/// The record an id pasted as the query names (its 64 hex digits, or a prefix of at least
/// 8 that names one stored object): its full id.
async fn record_named(node: &NodeHandle, query: &str) -> Option<String> {
    if query.len() < crate::records::MIN_ID_PREFIX
        || query.len() > 64
        || !query.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let oid = crate::records::resolve_id(node, &query.to_ascii_lowercase())
        .await
        .ok()?;
    // A record's id, not another object's (a charter, a key).
    node.read(move |s| record_detail(s, &oid))
        .await
        .ok()?
        .ok()??;
    Some(oid.to_string())
}

/// The host a link goes to, as a reader should judge it: see [`crate::ui::link_host`].
fn link_host(url: &str) -> String {
    crate::ui::link_host(url)
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

pub async fn record(
    State(node): State<NodeHandle>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ctx = Ctx::new(&node, &params, &headers).await;
    let lang = ctx.lang;
    let resolved = crate::records::resolve_id(&node, &id).await.ok();
    // The page, its links and its verify command name the record by its whole id, never by
    // what the path held (a prefix, or an id with spaces or line breaks around it).
    let id = resolved.map_or(id, |oid| oid.to_string());
    let detail = match resolved {
        Some(oid) => node
            .read(move |s| record_detail(s, &oid))
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten(),
        None => None,
    };
    let mut detail = detail;
    if let Some(v) = &mut detail {
        crate::records::with_availability(&node, v).await;
    }
    let Some(v) = detail else {
        let body = html! {
            h1 { (lang.t("not_found")) }
            p { (lang.t("not_found_help")) }
            p { a href="/" { (lang.t("search")) } }
        };
        let mut r = ctx.page(lang.t("not_found"), "", &format!("/records/{id}"), body);
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let original = text(&v, "lang").to_string();
    let langs: Vec<String> = v["title"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let shown = params
        .iter()
        .find(|(k, _)| k == "show")
        .map(|(_, l)| l.clone())
        .filter(|l| langs.contains(l))
        .unwrap_or_else(|| {
            if langs.iter().any(|l| l == lang.code()) {
                lang.code().to_string()
            } else {
                original.clone()
            }
        });
    // A text in the language shown, else in the original, and the language it is in: a text
    // that fell back to the original is marked as in the original, for a screen reader's voice.
    let pick = |field: &str| -> (String, String) {
        match v[field][&shown].as_str() {
            Some(t) => (t.to_string(), shown.clone()),
            None => (
                v[field][&original].as_str().unwrap_or("").to_string(),
                original.clone(),
            ),
        }
    };
    // Bounded and without hidden characters, as every list shows it.
    let (title, title_lang) = pick("title");
    let title = accord_search::display_line(&title);
    let p = &v["provenance"];
    let d = &p["delegation"];
    let created: Timestamp = text(&v, "created").parse().unwrap_or_default();
    let status = text(&v, "status");
    let superseded_by = v["history"]["superseded_by"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let retracted_by = v["history"]["retracted_by"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // The titles of the editions this one replaces or is replaced by, in the reader's language.
    let mut titles: BTreeMap<String, (String, String, Timestamp)> = BTreeMap::new();
    // References are titled up to a bound (a record may name thousands); the rest show ids.
    const REFERENCES_TITLED: usize = 64;
    let related = v["supersedes"]
        .as_str()
        .into_iter()
        .chain(superseded_by.iter().filter_map(Value::as_str))
        .chain(
            v["references"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .take(REFERENCES_TITLED),
        );
    for rid in related {
        if let Ok(oid) = rid.parse::<accord_core::ObjectId>()
            && let Ok(Some(sv)) = node.get(oid).await
            && let accord_core::Object::Record(r) = sv.object
        {
            let (t, in_lang) = match r.title.get(lang.code()) {
                Some(t) => (accord_search::display_line(t), lang.code().to_string()),
                None => (
                    accord_search::display_line(
                        r.title.get(&r.lang).map(String::as_str).unwrap_or_default(),
                    ),
                    r.lang.clone(),
                ),
            };
            titles.insert(rid.to_string(), (t, in_lang, r.created));
        }
    }
    // The edition to send a reader to: the latest of those that replace this one.
    let newest = superseded_by
        .iter()
        .filter_map(Value::as_str)
        .max_by_key(|rid| titles.get(*rid).map(|(_, _, c)| c.0))
        .map(str::to_string);
    let edition = |rid: &str| -> Markup {
        html! {
            @match titles.get(rid).filter(|(t, _, _)| !t.is_empty()) {
                // Titled in its own language where the reader's is missing: said so for a
                // screen reader's voice.
                Some((t, in_lang, _)) => a href=(format!("/records/{rid}")) lang=[(in_lang != lang.code()).then_some(in_lang)] { (t) },
                None => a href=(format!("/records/{rid}")) { code.id { (rid) } },
            }
        }
    };
    let day = |k: &str| {
        v[k].as_str()
            .and_then(Timestamp::from_date)
            .map(|t| (text(&v, k).to_string(), lang.date(t)))
    };
    // A delegation's scope in the reader's language: the taxonomy's names, or "all".
    let named = |codes: &Value| {
        codes
            .as_array()
            .map(|k| {
                k.iter()
                    .filter_map(Value::as_str)
                    .map(|c| ctx.name(c).to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_else(|| lang.t("all").into())
    };
    let when = |t: &str| {
        t.parse::<Timestamp>()
            .map(|t| lang.date(t))
            .unwrap_or_else(|_| t.to_string())
    };
    // A body may be a mebibyte of Markdown a member wrote (a tenth of a second to parse when
    // it is nested quotes): it is rendered on the blocking pool, not on a worker that serves
    // every other request, and at most `RENDERS_AT_ONCE` at a time, so that readers of such a
    // page take turns instead of taking every core.
    let (source, body_lang) = pick("body");
    let (rendered, plain) = render_body(source, RENDER_WAIT).await;
    let body = html! {
        article {
            h1 lang=(title_lang) { (title) }
            @if status == "retracted" {
                div.notice.error role="note" {
                    strong { (lang.t("banner_retracted")) }
                    @for r in &retracted_by {
                        " " (lang.t("retracted_on")) " " (when(text(r, "created")))
                        // Who: the record's author, or the member's root key (PROTOCOL.md §4.6).
                        @if text(r, "signer") == text(p, "signer") { " " (lang.t("retracted_by_author")) }
                        @else if text(r, "signer") == text(p, "member_root_key") { " " (lang.t("retracted_by_root")) }
                        @if !text(r, "reason").is_empty() { ": " (lang.quote(&accord_search::display_line(text(r, "reason")))) }
                        "."
                    }
                }
            } @else if status == "signer-revoked" {
                div.notice.error role="note" {
                    strong { (lang.t(if d["problem_code"] == "delegation-root-replaced" { "banner_root_replaced" } else { "banner_signer_revoked" })) }
                    @if let Some(since) = d["revoked_since"].as_str() {
                        " " (lang.t("revoked_from")) " " (when(since)) "."
                    }
                }
            } @else if status == "superseded" {
                div.notice.error role="note" {
                    strong { (lang.t("banner_superseded")) }
                    @if let Some(s) = &newest {
                        " " a href=(format!("/records/{s}")) { (lang.t("see_newer")) }
                    }
                }
            }
            p.meta {
                // Badges apart by a space: read and copied as words apart.
                (ctx.member(text(&v, "member"))) " " span.badge { (ctx.name(text(&v, "kind"))) }
                @for x in v["directions"].as_array().into_iter().flatten() { " " span.badge { (ctx.name(x.as_str().unwrap_or(""))) } }
                @if let Some(t) = v["date"].as_str().and_then(Timestamp::from_date) { " " (lang.t("doc_date")) " " time datetime=(text(&v, "date")) { (lang.date(t)) } " ·" }
                @if let Some((d, shown_d)) = day("effective_from") { " " (lang.t("effective_from")) " " time datetime=(d) { (shown_d) } " ·" }
                @if let Some((d, shown_d)) = day("effective_until") { " " (lang.t("effective_until")) " " time datetime=(d) { (shown_d) } " ·" }
                " " (lang.t("shared")) " " time datetime=(created.to_string()) { (lang.date(created)) } " · " (lang.t("status")) ": " strong { (lang.status(status)) }
                " · " button.linkish type="button" data-print="" { (lang.t("print")) }
            }
            nav aria-label=(lang.t("lang")) {
                @for l in &langs {
                    @if *l == shown { strong { (ctx.language_text(l)) } } @else { a href=(format!("/records/{id}?show={l}")) hreflang=(l) { (ctx.language_text(l)) } }
                    @if *l == original { " (" (lang.t("original")) ")" }
                    " "
                }
            }
            @let (summary, summary_lang) = pick("summary");
            @if !summary.is_empty() { p lang=(summary_lang) { em { (accord_search::display_text(&summary)) } } }
            @if plain { p.notice role="status" { (lang.t("body_plain")) } }
            div.body lang=(body_lang) { (rendered) }
            @if let Some(tags) = v["tags"].as_array().filter(|t| !t.is_empty()) {
                p { strong { (lang.t("tags")) ": " } @for t in tags.iter().filter_map(Value::as_str).take(accord_search::DOC_TAGS).map(accord_search::clean_tag).filter(|t| !t.trim().is_empty()) { a.badge href=(format!("/?{}", qs(&[("tag".to_string(), t.clone())]))) { (t) } " " } }
            }
            @if let Some(links) = v["links"].as_array().filter(|l| !l.is_empty()) {
                h2 { (lang.t("links")) }
                ul { @for l in links {
                    @let url = text(l, "url");
                    @let safe = url.starts_with("https://") || url.starts_with("http://");
                    // The title as signed, and where the link goes: a title that reads as
                    // another address cannot pass for it.
                    li { @if safe { a href=(url) rel="noopener noreferrer nofollow" { (accord_search::display_line(l["title"].as_str().unwrap_or(url))) } " " span.meta { "(" (link_host(url)) ")" } } @else { (accord_search::display_line(url)) } }
                } }
            }
            @if let Some(att) = v["attachments"].as_array().filter(|a| !a.is_empty()) {
                h2 { (lang.t("attachments")) }
                ul.attachments { @for a in att { li {
                    @let name = accord_search::display_line(text(a, "name"));
                    @if let Some(url) = a["url"].as_str() {
                        a href=(url) download=(name) { bdi { (name) } }
                    } @else { bdi { (name) } }
                    " — " (lang.file_type(text(a, "media_type"))) ", " (lang.size(a["size"].as_u64().unwrap_or(0)))
                    " · " @match a["availability"].as_str().unwrap_or("") {
                        "held" => span.state.ok { (lang.t("att_held")) },
                        "fetching" => span.state.muted { (lang.t("att_fetching")) },
                        "waiting-for-disk" => span.state.bad { (lang.t("att_waiting_for_disk")) },
                        _ => span.state.muted { (lang.t("att_not_fetched")) },
                    }
                    @if a["text"] == "unreadable" {
                        @let why = text(a, "text_error");
                        " · " span.state.muted title=(why) { (lang.t(if why.starts_with("no text extraction for") { "att_unsupported" } else { "att_unreadable" })) }
                    }
                    br; span.meta { "SHA-256 " code.id { (text(a, "sha256")) } }
                } } }
            }
            @if let Some(refs) = v["references"].as_array().filter(|r| !r.is_empty()) {
                h2 { (lang.t("references")) }
                ul { @for r in refs.iter().filter_map(Value::as_str) { li { (edition(r)) } } }
            }
            @if v["supersedes"].is_string() || !superseded_by.is_empty() || !retracted_by.is_empty() {
                h2 { (lang.t("history")) }
                ul {
                    @if let Some(s) = v["supersedes"].as_str() { li { (lang.t("supersedes")) ": " (edition(s)) } }
                    @for s in superseded_by.iter().filter_map(Value::as_str) {
                        li { (lang.t("superseded_by")) ": " (edition(s)) }
                    }
                    @for r in &retracted_by {
                        li { (lang.t("retracted_by")) " " (when(text(r, "created"))) ": " (accord_search::display_line(text(r, "reason"))) }
                    }
                }
            }
            section.panel aria-labelledby="prov" {
                h2 #prov { (lang.t("provenance")) }
                dl {
                    dt { @if p["signature_valid"] == true { "✔ " (lang.t("signature_valid")) } @else { "✘ " (lang.t("signature_invalid")) } }
                    dd { code.id { (text(p, "signer")) } }
                    @if d.is_object() {
                        dt { (lang.t("delegation")) }
                        dd { (accord_search::display_line(text(d, "publisher"))) " " (ctx.member(text(d, "member"))) " · " code.id { (text(d, "id")) } }
                        dt { (lang.t("scope")) }
                        dd { (lang.t("kinds")) ": " (named(&d["kinds"]))
                             "; " (lang.t("directions")) ": " (named(&d["directions"])) }
                        dt { (lang.t("window")) }
                        dd {
                            (lang.t("valid_from")) " " (when(text(d, "not_before")))
                            @if let Some(end) = d["not_after"].as_str() { " " (lang.t("valid_until")) " " (when(end)) } @else { ", " (lang.t("no_end")) }
                        }
                        // Why the delegation does not cover the record, whatever status the record
                        // shows first (a retracted record's signer may have been revoked since).
                        @if let Some(code) = d["problem_code"].as_str() {
                            dt { (lang.t("delegation_problem")) }
                            dd.state.bad {
                                @match code {
                                    "signer-revoked" => {
                                        (lang.t("problem_signer_revoked"))
                                        @if let Some(since) = d["revoked_since"].as_str() { " " (lang.t("since")) " " (when(since)) }
                                    }
                                    "delegation-root-replaced" => { (lang.t("problem_root_replaced")) }
                                    "outside-delegation-window" => { (lang.t("problem_outside_window")) }
                                    "outside-delegation-scope" => { (lang.t("problem_outside_scope")) }
                                    _ => { span lang="en" { (text(d, "problem")) } }
                                }
                            }
                        }
                        dt { (lang.t("delegated_by")) }
                        dd {
                            // The key is shown once: most delegations are signed by the root key
                            // listed just below.
                            @if text(d, "signed_by") == text(p, "member_root_key") { (lang.t("the_root_key_below")) }
                            @else { code.id { (text(d, "signed_by")) } }
                        }
                    }
                    dt { (lang.t("root_key")) }
                    dd { code.id { (text(p, "member_root_key")) } }
                    dt { (lang.t("charter")) }
                    dd { (text(&p["charter"], "name")) ", v" (p["charter"]["version"]) " · " code.id { (text(&p["charter"], "federation")) } }
                    // When and from where this node took the record: the signatures say who
                    // wrote it, this says how it came here.
                    @let got = &p["received"];
                    @if got.is_object() {
                        dt { (lang.t("received_here")) }
                        dd {
                            (when(text(got, "at"))) ", "
                            @match text(got, "source") {
                                "peer" => {
                                    @if let Some(m) = got["member"].as_str() {
                                        (lang.t("from_node_of")) " " (ctx.member(m))
                                        @if let Some(l) = got["node_label"].as_str() { " (" (accord_search::display_line(l)) ")" }
                                    } @else {
                                        (lang.t("from_peer"))
                                    }
                                    " · " code.id { (text(got, "peer")) }
                                }
                                "local" => { (lang.t("received_local")) }
                                "import" => { (lang.t("received_import")) }
                                "preload" => { (lang.t("received_preload")) }
                                other => { (other) }
                            }
                        }
                    }
                }
                p {
                    a href=(format!("/records/{id}/object.cbor")) download=(format!("{id}.cbor")) { (lang.t("download")) }
                    @let fed = text(&p["charter"], "federation");
                    @if !fed.is_empty() {
                        br; a href=(format!("/records/{fed}/object.cbor")) download="charter.cbor" { (lang.t("download_charter")) }
                    }
                    br; a href=(format!("/records/{id}/proof.cbor")) download="proof.cbor" { (lang.t("download_proof")) }
                }
                p { (lang.t("verify")) ":" }
                div.copyable {
                    pre.wrap tabindex="0" { code #verify-cmd { "accord verify " (id) ".cbor --charter charter.cbor --with proof.cbor" } }
                    button type="button" data-copy="verify-cmd" data-status="verify-copied" data-copied=(lang.t("copied")) { (lang.t("copy")) }
                    // Where "Copied" is said (app.js): on the page from the start, so that a
                    // screen reader announces the change.
                    span #verify-copied .visually-hidden role="status" {}
                }
            }
        }
    };
    // Switching the interface language keeps the record's language the reader chose.
    let here = if params.iter().any(|(k, l)| k == "show" && *l == shown) {
        format!("/records/{id}?show={shown}")
    } else {
        format!("/records/{id}")
    };
    ctx.page(&title, "", &here, body)
}

/// Any other address: a page of the interface saying there is no such page (404), for a
/// reader who followed a broken or mistyped link; the API's own addresses (`/v1/…`) and other
/// methods keep a plain 404, which the API's error layer words as JSON.
pub async fn no_page(
    State(node): State<NodeHandle>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    params: Result<Params, axum::extract::rejection::QueryRejection>,
) -> Response {
    let path = uri.path().to_string();
    if method != axum::http::Method::GET || path.starts_with("/v1/") || path == "/v1" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let ctx = Ctx::new(&node, &params, &headers).await;
    let lang = ctx.lang;
    let body = html! {
        h1 { (lang.t("no_page")) }
        p { (lang.t("no_page_help")) }
        p { a href="/" { (lang.t("search")) } }
    };
    // The language links go to the home page: the path asked for is the reader's input, and one
    // such as `//elsewhere.example/` would make them lead off this node.
    let mut r = ctx.page(lang.t("no_page"), "", "/", body);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// The 404 of a download for an object this node does not hold, naming it (an empty 404 read
/// as "no such endpoint").
fn not_stored(oid: &accord_core::ObjectId) -> Response {
    crate::ApiError(
        StatusCode::NOT_FOUND,
        format!("object {oid} is not stored on this node"),
    )
    .into_response()
}

pub async fn download(State(node): State<NodeHandle>, Path(id): Path<String>) -> Response {
    let oid = match crate::records::resolve_id(&node, &id).await {
        Ok(oid) => oid,
        Err(e) => return e.into_response(),
    };
    let id = oid.to_string();
    match node.get(oid).await {
        Ok(Some(v)) => (
            [
                (header::CONTENT_TYPE, "application/cbor".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{id}.cbor\""),
                ),
            ],
            v.bytes,
        )
            .into_response(),
        Ok(None) => not_stored(&oid),
        Err(e) => crate::ApiError::from(e).into_response(),
    }
}

/// `GET /records/{id}/proof.cbor`: what `accord verify ID.cbor --charter charter.cbor --with
/// proof.cbor` needs besides the record and the founding charter, a CBOR sequence: the later
/// charter versions (a member added, a root key replaced), the delegations of the record's
/// signer for its member and the member's revocations touching it that its root key in force
/// (or the signer) signed, and the record's retractions: what checks the record offline under
/// the charter in force. (A revocation signed by a root key since replaced, which this node
/// still applies, no longer verifies under it and is left out: for such a record the offline
/// check may be less strict than the status shown here.)
pub async fn proof(
    State(node): State<NodeHandle>,
    axum::Extension(slots): axum::Extension<crate::ExportSlots>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let oid = match crate::records::resolve_id(&node, &id).await {
        Ok(oid) => oid,
        Err(e) => return e.into_response(),
    };
    let plan = match node.read(move |s| ProofPlan::of(s, &oid)).await {
        Ok(Ok(Some(p))) => p,
        Ok(Ok(None)) => return not_stored(&oid),
        Ok(Err(e)) => {
            return crate::ApiError::from(accord_node::NodeError::Store(e.to_string()))
                .into_response();
        }
        Err(e) => return crate::ApiError::from(e).into_response(),
    };
    // One of the export slots when the revocations are to be read (they may be many), held
    // until the client has taken the file; a record whose signer nothing touches costs a few
    // reads.
    let slot = if plan.revocations.is_empty() {
        None
    } else {
        match crate::exports::ui_slot(&node, &[], &headers, &slots).await {
            Ok(s) => Some(s),
            Err(r) => return r,
        }
    };
    match tokio::task::spawn_blocking(move || plan.bytes()).await {
        Ok(Ok(bytes)) => match slot {
            Some(slot) => crate::exports::leased_file(
                "application/cbor-seq",
                "proof.cbor",
                bytes,
                crate::Lease::new(slot, slots.1),
            ),
            None => crate::exports::file("application/cbor-seq", "proof.cbor", bytes),
        },
        Ok(Err(e)) => {
            crate::ApiError::from(accord_node::NodeError::Store(e.to_string())).into_response()
        }
        Err(e) => crate::ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// What [`proof`] gathers: ids looked up on the store thread (what concerns the record, and,
/// when a revocation touches its signer, the ids of every revocation, from the type index),
/// the objects read beside it.
struct ProofPlan {
    /// The later charter versions and the signer's delegations in force.
    head: Vec<accord_core::ObjectId>,
    /// Every revocation, when one touches the signer (its key or one of its delegations);
    /// read and sorted out on the blocking pool, since a member may have signed thousands.
    revocations: Vec<accord_core::ObjectId>,
    retractions: Vec<accord_core::ObjectId>,
    member: accord_core::MemberCode,
    signer: accord_core::PublicKey,
    root: Option<accord_core::PublicKey>,
    limits: accord_core::Limits,
    reader: accord_store::ObjectReader,
}

impl ProofPlan {
    /// `None` when `oid` is not a stored record.
    fn of(
        s: &accord_store::Store,
        oid: &accord_core::ObjectId,
    ) -> Result<Option<ProofPlan>, accord_store::StoreError> {
        use accord_core::{Object, ObjectType};
        let Some(o) = s.get(oid)? else {
            return Ok(None);
        };
        let Object::Record(r) = o.object else {
            return Ok(None);
        };
        let trust = s.trust();
        let signer = o.signed.signatures()[0].0;
        let genesis = trust.federation();
        let mut head: Vec<_> = s
            .export_ids_of(&[ObjectType::Charter])?
            .into_iter()
            .filter(|c| *c != genesis)
            .collect();
        // What the member's root key in force signed (what a root key since replaced signed
        // does not verify under the charter in force).
        let root = trust.root_key(&r.member);
        let delegations = trust.delegations_of(&signer);
        head.extend(
            delegations
                .iter()
                .filter(|d| d.delegation.member == r.member && Some(d.signer) == root)
                .map(|d| d.id),
        );
        let revoked = trust.key_revoked_since(&r.member, &signer).is_some()
            || delegations
                .iter()
                .any(|d| trust.object_revoked_since(&d.id, &r.member).is_some());
        let revocations = if revoked {
            s.export_ids_of(&[ObjectType::Revocation])?
        } else {
            Vec::new()
        };
        Ok(Some(ProofPlan {
            head,
            revocations,
            retractions: s.retractions(oid)?,
            member: r.member,
            signer,
            root,
            limits: *trust.limits(),
            reader: s.object_reader(),
        }))
    }

    /// The CBOR sequence: the head, the revocations of the record's member signed by its root
    /// key in force or by the signer, the retractions.
    fn bytes(self) -> Result<Vec<u8>, accord_store::StoreError> {
        let mut out = Vec::new();
        for id in &self.head {
            out.extend_from_slice(&self.reader.get(id)?);
        }
        for id in &self.revocations {
            let b = self.reader.get(id)?;
            if let Ok((signed, x)) = accord_core::validate::decode(&b, &self.limits) {
                let by = signed.signatures()[0].0;
                if x.member() == Some(&self.member) && (Some(by) == self.root || by == self.signer)
                {
                    out.extend_from_slice(&b);
                }
            }
        }
        for id in &self.retractions {
            out.extend_from_slice(&self.reader.get(id)?);
        }
        Ok(out)
    }
}

/// Months to periods: by month up to two years of data, by quarter beyond.
fn periods(months: &[String]) -> (bool, Vec<String>) {
    let by_quarter = months.len() > 24;
    let key = |m: &String| {
        if by_quarter {
            let q = m.get(5..7).and_then(|x| x.parse::<u32>().ok()).unwrap_or(1);
            format!("{}-Q{}", &m[..4], (q - 1) / 3 + 1)
        } else {
            m.clone()
        }
    };
    let mut out: Vec<String> = months.iter().map(key).collect();
    out.dedup();
    (by_quarter, out)
}

/// Directions shown on a result; more are counted.
const MAX_DIRECTION_BADGES: usize = 3;

/// The language of a result's snippet, when it is not the page's: the language of the text
/// the search cut it from. `None` when that is the page's language or is not known (a
/// passage of an attached file): no `lang` rather than a wrong one (a guess by the script
/// called Kazakh or Belarusian Russian, and Armenian nothing at all).
fn snippet_lang<'a>(h: &'a accord_search::Hit, page: &str) -> Option<&'a str> {
    h.snippet_lang.as_deref().filter(|l| *l != page)
}

/// A grouped bar chart of records per period and member, with labelled axes; it reads the same
/// for one month of data as for five years (months become quarters beyond two years).
fn chart(ctx: &Ctx, series: &BTreeMap<String, BTreeMap<String, u64>>, order: &[String]) -> Markup {
    let lang = ctx.lang;
    let mut months: Vec<String> = series.values().flat_map(|s| s.keys().cloned()).collect();
    months.sort();
    months.dedup();
    if months.is_empty() {
        return html! { p.meta { (lang.t("no_results")) } };
    }
    // Fill the gaps, so that the axis is time.
    let first = months[0].clone();
    let last = months[months.len() - 1].clone();
    let mut all = Vec::new();
    let (mut y, mut m) = (
        first[..4].parse::<u32>().unwrap_or(2000),
        first[5..7].parse::<u32>().unwrap_or(1),
    );
    while all.len() < 600 {
        let cur = format!("{y:04}-{m:02}");
        let done = cur == last;
        all.push(cur);
        if done {
            break;
        }
        m += 1;
        if m > 12 {
            m = 1;
            y += 1;
        }
    }
    let (by_quarter, labels) = periods(&all);
    let period_of = |month: &str| -> String {
        if by_quarter {
            let q = month
                .get(5..7)
                .and_then(|x| x.parse::<u32>().ok())
                .unwrap_or(1);
            format!("{}-Q{}", &month[..4], (q - 1) / 3 + 1)
        } else {
            month.to_string()
        }
    };
    // The members in the order of the page's tables (the charter's, or as chosen), then any
    // other.
    let ordered = order
        .iter()
        .filter_map(|m| series.get_key_value(m))
        .chain(series.iter().filter(|(m, _)| !order.contains(m)));
    let counts: Vec<(String, Vec<u64>)> = ordered
        .map(|(member, s)| {
            let mut v = vec![0u64; labels.len()];
            for (month, n) in s {
                if let Some(i) = labels.iter().position(|l| *l == period_of(month)) {
                    v[i] += n;
                }
            }
            (member.clone(), v)
        })
        .collect();
    let max = counts
        .iter()
        .flat_map(|(_, v)| v.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h, left, bottom, top) = (720.0, 260.0, 48.0, 44.0, 14.0);
    let plot_w = w - left - 10.0;
    let group = plot_w / labels.len() as f64;
    let bar = (group * 0.8 / counts.len().max(1) as f64).max(1.0);
    let every = (labels.len() / 12).max(1);
    let ticks = [0, max / 2, max];
    html! {
        figure.chart tabindex="0" {
            svg viewBox=(format!("0 0 {w} {h}")) width="100%" role="img" aria-labelledby="chart-title" {
                title #chart-title { (lang.t("over_time")) }
                @for t in ticks {
                    @let ty = h - bottom - t as f64 / max as f64 * (h - bottom - top);
                    line x1=(left) y1=(ty) x2=(w - 10.0) y2=(ty) stroke="#d0d7de" {}
                    text x=(left - 6.0) y=(ty + 4.0) font-size="11" text-anchor="end" fill="#3b434b" { (lang.number(t)) }
                }
                line x1=(left) y1=(h - bottom) x2=(w - 10.0) y2=(h - bottom) stroke="#3b434b" {}
                @for (i, l) in labels.iter().enumerate() {
                    @if i % every == 0 {
                        text x=(left + group * (i as f64 + 0.5)) y=(h - bottom + 16.0) font-size="10" text-anchor="middle" fill="#3b434b" { (lang.period_short(l)) }
                    }
                }
                text x=(left + plot_w / 2.0) y=(h - 6.0) font-size="11" text-anchor="middle" fill="#3b434b" {
                    (if by_quarter { lang.t("quarter_axis") } else { lang.t("month_axis") })
                }
                text x="12" y=(top + (h - bottom - top) / 2.0) font-size="11" text-anchor="middle" fill="#3b434b" transform=(format!("rotate(-90 12 {})", top + (h - bottom - top) / 2.0)) { (lang.t("count_axis")) }
                @for (si, (member, v)) in counts.iter().enumerate() {
                    @for (i, n) in v.iter().enumerate() {
                        @if *n > 0 {
                            @let bh = *n as f64 / max as f64 * (h - bottom - top);
                            rect x=(format!("{:.1}", left + group * i as f64 + group * 0.1 + bar * si as f64)) y=(format!("{:.1}", h - bottom - bh)) width=(format!("{bar:.1}")) height=(format!("{bh:.1}")) fill=(format!("hsl({} 55% 42%)", member_hue(member))) {
                                title { (ctx.members.get(member).map(String::as_str).unwrap_or(member)) ", " (lang.period(&labels[i])) ": " (lang.number(*n)) }
                            }
                        }
                    }
                }
            }
            // The keys apart by a space (the flex gap draws the room between them), so that
            // they are read and copied as words apart.
            figcaption.legend {
                @for (i, (member, _)) in counts.iter().enumerate() {
                    @if i > 0 { " " }
                    span.key { span.swatch style=(format!("background:hsl({} 55% 42%)", member_hue(member))) {} " " (ctx.member(member)) }
                }
            }
        }
        // The same figures as text: a touch screen has no tooltips, a screen reader no bars.
        details.values {
            summary { (lang.t("chart_values")) }
            div.scroll tabindex="0" role="region" aria-label=(lang.t("chart_values")) {
                table.compare {
                    thead { tr {
                        th scope="col" { (if by_quarter { lang.t("quarter") } else { lang.t("month") }) }
                        @for (member, _) in &counts { th scope="col" { (ctx.member(member)) } }
                    } }
                    tbody {
                        @for (i, l) in labels.iter().enumerate() {
                            @if counts.iter().any(|(_, v)| v[i] > 0) {
                                tr { th scope="row" { (lang.period(l)) } @for (_, v) in &counts { td.n { (lang.number(v[i])) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How strongly a heat-map cell of `n` records is coloured, the largest count being `max`:
/// none for none, then from a pale 0.15 up to the full accent colour.
fn heat_alpha(n: u64, max: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        0.15 + 0.85 * n as f64 / max.max(1) as f64
    }
}

/// Accent strengths at which neither text colour reaches 4.5:1 against the cell (the blue
/// over white is then too dark for the body colour and too light for white, between about
/// 0.68 and 0.77): a cell that would fall between these takes the nearer of them.
const HEAT_GAP: (f64, f64) = (0.66, 0.78);

/// A heat-map cell: the accent colour at `alpha` over white (kept out of [`HEAT_GAP`]), with
/// whichever text colour (white or the body colour) contrasts more with it (WCAG relative
/// luminance).
fn heat_style(alpha: f64) -> String {
    let (low, high) = HEAT_GAP;
    let alpha = if alpha > low && alpha < high {
        if alpha - low <= high - alpha {
            low
        } else {
            high
        }
    } else {
        alpha
    };
    let mix = |c: f64| 255.0 * (1.0 - alpha) + c * alpha;
    let (r, g, b) = (mix(11.0), mix(79.0), mix(168.0));
    let lum = luminance([r, g, b]);
    let dark = luminance([27.0, 31.0, 36.0]);
    let white_contrast = 1.05 / (lum + 0.05);
    let dark_contrast = (lum + 0.05) / (dark + 0.05);
    let fg = if white_contrast > dark_contrast {
        "#fff"
    } else {
        "#1b1f24"
    };
    format!("background: rgb({r:.0},{g:.0},{b:.0}); color: {fg}")
}

/// WCAG 2.1 relative luminance of an sRGB colour given as 0–255 channels.
fn luminance(rgb: [f64; 3]) -> f64 {
    let lin = |c: f64| {
        let c = c / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
}

/// Counts per member: direction facet and month facet of each member's records.
async fn member_counts(
    node: &NodeHandle,
    members: &[String],
    directions: &[String],
) -> (
    BTreeMap<String, BTreeMap<String, u64>>,
    BTreeMap<String, BTreeMap<String, u64>>,
    BTreeMap<String, u64>,
) {
    let mut by_direction = BTreeMap::new();
    let mut by_month = BTreeMap::new();
    let mut totals = BTreeMap::new();
    for m in members {
        let q = SearchQuery {
            members: vec![m.clone()],
            directions: directions.to_vec(),
            limit: 1,
            ..Default::default()
        };
        if let Ok(r) = node.search(q).await {
            by_direction.insert(
                m.clone(),
                r.facets.get("direction").cloned().unwrap_or_default(),
            );
            by_month.insert(
                m.clone(),
                r.facets.get("month").cloned().unwrap_or_default(),
            );
            totals.insert(m.clone(), r.total as u64);
        }
    }
    (by_direction, by_month, totals)
}

fn charter_lists(fed: &Value) -> (Vec<String>, Vec<String>) {
    let codes = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["code"].as_str().map(str::to_string))
            .collect()
    };
    (
        codes(&fed["members"]),
        codes(&fed["taxonomy"]["directions"]),
    )
}

pub async fn overview(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ctx = Ctx::new(&node, &params, &headers).await;
    let lang = ctx.lang;
    let fed = federation_value(&node).await.unwrap_or_default();
    let (members, directions) = charter_lists(&fed);
    let (matrix, months, _) = member_counts(&node, &members, &[]).await;
    let max = matrix
        .values()
        .flat_map(|r| r.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let recent = node
        .search(SearchQuery {
            limit: 10,
            sort: Some(accord_search::Sort::Newest),
            ..Default::default()
        })
        .await
        .ok();
    let total: u64 = matrix.values().flat_map(|r| r.values()).sum();
    let body = html! {
        h1 { (lang.t("overview")) }
        @if total == 0 && recent.as_ref().is_none_or(|r| r.hits.is_empty()) {
            div.empty { p { strong { (lang.t("node_empty")) } } p { (lang.t("node_empty_help")) } }
        } @else {
        h2 { (lang.t("matrix")) }
        div.scroll tabindex="0" role="region" aria-label=(lang.t("matrix")) {
            table.heat {
                thead { tr { th scope="col" { (lang.t("direction")) } @for m in &members { th scope="col" { (ctx.member(m)) } } } }
                tbody {
                    @for d in &directions {
                        tr {
                            th scope="row" { (ctx.name(d)) }
                            @for m in &members {
                                @let n = matrix.get(m).and_then(|r| r.get(d)).copied().unwrap_or(0);
                                td.n style=(heat_style(heat_alpha(n, max))) {
                                    @if n == 0 { span.zero { "0" } } @else {
                                        a href=(format!("/?member={m}&direction={d}")) style="color:inherit" { (lang.number(n)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.t("over_time")) }
        (chart(&ctx, &months, &members))
        h2 { (lang.t("recent")) }
        ul.recent {
            @for h in recent.iter().flat_map(|r| r.hits.iter()) {
                li { time datetime=(h.doc.created.to_string()) { (lang.date(h.doc.created)) } " " (ctx.member(&h.doc.member)) " "
                     @let (title, title_lang) = h.doc.title_and_lang_in(lang.code());
                     a href=(format!("/records/{}", h.doc.id)) lang=[(title_lang != lang.code()).then_some(title_lang)] { (title) } }
            }
        }
        }
    };
    ctx.page(lang.t("overview"), "overview", "/overview", body)
}

/// `/compare?member=KZ&member=BY[&direction=…]`: members side by side.
pub async fn compare(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ctx = Ctx::new(&node, &params, &headers).await;
    let lang = ctx.lang;
    let fed = federation_value(&node).await.unwrap_or_default();
    let (all_members, directions) = charter_lists(&fed);
    // Each member once, in the order asked: a column and two searches each, so a link naming
    // one member thousands of times costs what naming it once does.
    let mut chosen: Vec<String> = Vec::new();
    for (k, v) in &params {
        if k == "member" && all_members.contains(v) && !chosen.contains(v) {
            chosen.push(v.clone());
        }
    }
    // Codes the charter does not know, named back (a few, shortened, escaped by the template).
    let mut unknown: Vec<String> = Vec::new();
    for (k, v) in &params {
        let short: String = v.chars().take(16).collect();
        if k == "member" && !v.is_empty() && !all_members.contains(v) && !unknown.contains(&short) {
            unknown.push(short);
        }
    }
    unknown.truncate(IGNORED_LISTED);
    let asked_any = params.iter().any(|(k, _)| k == "member");
    let direction: Option<String> = params
        .iter()
        .find(|(k, v)| k == "direction" && directions.contains(v))
        .map(|(_, v)| v.clone());
    let dirs: Vec<String> = direction.iter().cloned().collect();
    let (by_direction, by_month, totals) = member_counts(&node, &chosen, &dirs).await;
    let mut columns = Vec::new();
    for m in &chosen {
        let r = node
            .search(SearchQuery {
                members: vec![m.clone()],
                directions: dirs.clone(),
                limit: 10,
                sort: Some(accord_search::Sort::Newest),
                ..Default::default()
            })
            .await
            .ok();
        columns.push((m.clone(), r));
    }
    let mut years: Vec<String> = by_month
        .values()
        .flat_map(|s| s.keys().map(|k| k[..4].to_string()))
        .collect();
    years.sort();
    years.dedup();
    let body = html! {
        h1 { (lang.t("compare")) }
        p { (lang.t("compare_intro")) }
        form.compareform action="/compare" method="get" {
            fieldset {
                legend { (lang.t("members")) }
                @for m in &all_members {
                    label.inline { input type="checkbox" name="member" value=(m) checked[chosen.contains(m)]; " " (ctx.member(m)) }
                }
            }
            label for="cmp-dir" { (lang.t("direction")) " " }
            select #cmp-dir name="direction" {
                option value="" { (lang.t("any_direction")) }
                @for d in &directions { option value=(d) selected[direction.as_deref() == Some(d.as_str())] { (ctx.name(d)) } }
            }
            " " button type="submit" { (lang.t("show")) }
        }
        @if !unknown.is_empty() {
            p.notice role="status" { (lang.t("unknown_members")) ": " (unknown.join(", ")) }
        }
        @if asked_any && chosen.len() < 2 {
            p.notice role="status" { (lang.t("choose_two")) }
        }
        @if chosen.len() >= 2 {
            h2 { (lang.t("records")) }
            div.scroll tabindex="0" role="region" aria-label=(lang.t("records")) {
                table.compare {
                    thead { tr { th scope="col" { (lang.t("direction")) } @for m in &chosen { th scope="col" { (ctx.member(m)) } } } }
                    tbody {
                        tr.total { th scope="row" { (lang.t("total")) } @for m in &chosen { td.n { (lang.number(totals.get(m).copied().unwrap_or(0))) } } }
                        @for d in directions.iter().filter(|d| direction.is_none() || direction.as_deref() == Some(d.as_str())) {
                            tr { th scope="row" { (ctx.name(d)) } @for m in &chosen {
                                @let n = by_direction.get(m).and_then(|r| r.get(d)).copied().unwrap_or(0);
                                td.n { @if n == 0 { span.zero { "0" } } @else { a href=(format!("/?member={m}&direction={d}")) { (lang.number(n)) } } }
                            } }
                        }
                    }
                }
            }
            h2 { (lang.t("per_year")) }
            div.scroll tabindex="0" role="region" aria-label=(lang.t("per_year")) {
                table.compare {
                    thead { tr { th scope="col" { (lang.t("year")) } @for m in &chosen { th scope="col" { (ctx.member(m)) } } } }
                    tbody { @for y in &years { tr { th scope="row" { (y) } @for m in &chosen {
                        @let n: u64 = by_month.get(m).map(|s| s.iter().filter(|(k, _)| k.starts_with(y.as_str())).map(|(_, n)| *n).sum()).unwrap_or(0);
                        td.n { (lang.number(n)) }
                    } } } }
                }
            }
            (chart(&ctx, &by_month, &chosen))
            div.columns {
                @for (m, r) in &columns {
                    section.column aria-label=(ctx.members.get(m).cloned().unwrap_or_else(|| m.clone())) {
                        h3 { (ctx.member(m)) }
                        @if r.as_ref().is_none_or(|r| r.hits.is_empty()) {
                            p.meta { (lang.t("no_results")) }
                        } @else {
                            ul { @for h in r.iter().flat_map(|r| r.hits.iter()) {
                                @let (title, title_lang) = h.doc.title_and_lang_in(lang.code());
                                li { a href=(format!("/records/{}", h.doc.id)) lang=[(title_lang != lang.code()).then_some(title_lang)] { (title) } " " span.meta { (lang.date(h.doc.created)) } }
                            } }
                            // The column shows the newest; the search shows them all.
                            @let total = r.as_ref().map_or(0, |r| r.total);
                            @if total > r.as_ref().map_or(0, |r| r.hits.len()) {
                                @let all: Vec<(String, String)> = [("member".to_string(), m.clone())].into_iter().chain(dirs.iter().map(|d| ("direction".to_string(), d.clone()))).collect();
                                p { a href=(format!("/?{}", qs(&all))) { (lang.all_records(total as u64)) " " span aria-hidden="true" { "→" } } }
                            }
                        }
                    }
                }
            }
        }
    };
    let pq = format!(
        "/compare?{}",
        qs(&params
            .iter()
            .filter(|(k, _)| k != "lang")
            .cloned()
            .collect::<Vec<_>>())
    );
    ctx.page(lang.t("compare"), "compare", &pq, body)
}

pub async fn federation(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ctx = Ctx::new(&node, &params, &headers).await;
    let lang = ctx.lang;
    let f = federation_value(&node).await.unwrap_or_default();
    let pubs = publishers_value(&node).await.unwrap_or_default();
    let entry_name = |e: &Value, l: &str| e["names"][l].as_str().unwrap_or("").to_string();
    let body = html! {
        h1 { (text(&f, "name")) }
        p.meta { (lang.t("federation")) " " code.id { (text(&f, "federation")) } " · " (lang.t("charter")) " v" (f["version"]) " · " (lang.t("threshold")) ": " (f["threshold"]) }
        h2 { (lang.t("members")) }
        div.scroll tabindex="0" role="region" aria-label=(lang.t("members")) {
            // A card per row on a phone, every value under its column's name; app.js says the
            // table's roles outright (see there).
            table.stack {
                thead { tr { th scope="col" { (lang.t("member")) } th scope="col" { (lang.t("root_key")) } } }
                tbody { @for m in f["members"].as_array().into_iter().flatten() {
                    tr { td data-label=(lang.t("member")) { (ctx.member(text(m, "code"))) } td data-label=(lang.t("root_key")) { code.id { (text(m, "root_key")) } } }
                } }
            }
        }
        @for (list, title) in [("directions", "directions"), ("kinds", "kinds")] {
            h2 { (lang.t(title)) }
            div.scroll tabindex="0" role="region" aria-label=(lang.t(title)) {
                table {
                    thead { tr { th scope="col" { (lang.t("code")) } th scope="col" lang="ru" { "Русский" } th scope="col" lang="en" { "English" } } }
                    tbody { @for e in f["taxonomy"][list].as_array().into_iter().flatten() {
                        tr { td { code { (text(e, "code")) } } td lang="ru" { (entry_name(e, "ru")) } td lang="en" { (entry_name(e, "en")) } }
                    } }
                }
            }
        }
        h2 { (lang.t("publishers")) }
        @if pubs["members"].as_object().is_none_or(|m| m.values().all(|l| l.as_array().is_none_or(Vec::is_empty))) {
            p.meta { (lang.t("no_publishers")) }
        }
        @for (member, list) in pubs["members"].as_object().into_iter().flatten() {
            h3 { (ctx.member(member)) }
            ul { @for p in list.as_array().into_iter().flatten() {
                li { strong { (accord_search::display_line(text(p, "name"))) } " — " (lang.status(text(p, "status"))) " · " code.id { (text(p, "publisher_key")) } }
            } }
        }
    };
    ctx.page(lang.t("charter"), "federation", "/federation", body)
}

pub async fn network(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ctx = Ctx::new(&node, &params, &headers).await;
    let lang = ctx.lang;
    let peers = node.peers().await.unwrap_or_default();
    let sync: BTreeMap<String, accord_node::PeerSync> = node.sync_stats().into_iter().collect();
    let status = node.status().await.ok();
    let body = html! {
        h1 { (lang.t("network")) }
        @if let Some(s) = &status {
            p { (lang.t("this_node")) ": " (ctx.member(&s.member)) " · " code.id { (s.peer_id) } " · " @for l in &s.listen { code.id { (l) } " " } }
            @if let Some(free) = s.disk.free_bytes {
                p #disk {
                    (lang.t("disk_free")) ": " strong { (lang.size(free)) }
                    @if s.disk.min_free_bytes > 0 {
                        " (" span title="store.min_free_mb" { (lang.t("disk_floor")) " " (lang.size(s.disk.min_free_bytes)) } ")"
                    }
                }
            }
        }
        h2 { (lang.t("peers")) " (" (peers.len()) ")" }
        @if peers.is_empty() {
            div.empty {
                p { strong { (lang.t("no_peers")) } }
                p { (lang.t(if node.expects_peers() { "no_peers_help_bootstrap" } else { "no_peers_help_alone" })) }
            }
        } @else {
        div.scroll tabindex="0" role="region" aria-label=(lang.t("peers")) {
            // A card per row on a phone: see the federation page's table.
            table.stack {
                thead { tr { th scope="col" { (lang.t("peer")) } th scope="col" { (lang.t("member")) } th scope="col" { (lang.t("status")) } th scope="col" { (lang.t("connected_since")) } th scope="col" { (lang.t("last_sync")) } } }
                tbody { @for p in &peers {
                    @let s = sync.get(&p.peer_id);
                    tr {
                        td data-label=(lang.t("peer")) { code.id.short title=(p.peer_id) { (p.peer_id.get(..12).unwrap_or(&p.peer_id)) "…" (p.peer_id.get(p.peer_id.len().saturating_sub(6)..).unwrap_or("")) } }
                        td data-label=(lang.t("member")) { @if let Some(m) = &p.member { (ctx.member(m)) } }
                        td data-label=(lang.t("status")) { (if p.admitted { lang.t("admitted") } else { lang.t("not_admitted") }) }
                        td data-label=(lang.t("connected_since")) { (lang.time(p.connected_since, false)) }
                        td data-label=(lang.t("last_sync")) { @if let Some(s) = s {
                            @if let Some(r) = &s.running { (lang.t("sync_running")) " · " (lang.t("missing")) " " (lang.number(r.missing)) " · " (lang.t("fetched")) " " (lang.number(r.fetched)) " · " }
                            @if let Some(t) = s.last { (lang.time(t, false)) " · " }
                            (lang.t("rounds")) ": " (lang.number(u64::from(s.rounds))) " · " (lang.t("fetched")) ": " (lang.number(s.fetched))
                            // The verdict in the reader's language; the technical detail as
                            // the software words it, marked as English.
                            @if let Some(e) = &s.error { " · " span.state.bad { (lang.t("sync_failed")) } ": " span.meta lang="en" { (e) } }
                        } }
                    }
                } }
            }
        }
        }
    };
    ctx.page(lang.t("network"), "network", "/network", body)
}

/// "Federation health": every member's certified nodes as this node sees them from their
/// signed heartbeats (docs/OPERATIONS.md, "Federation health").
pub async fn health(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let ctx = Ctx::new(&node, &params, &headers).await;
    let lang = ctx.lang;
    let view = node.federation_health();
    let all: Vec<&accord_node::NodeHealth> = view.members.iter().flat_map(|m| &m.nodes).collect();
    let up = all
        .iter()
        .filter(|n| matches!(n.status, "up" | "self"))
        .count();
    let flagged = all.iter().filter(|n| n.divergent || n.equivocated).count();
    // Of every certified node, those not listed (never seen) too.
    let certified = all.len() as u64 + view.members.iter().map(|m| m.never_seen_more).sum::<u64>();
    let body = html! {
        h1 { (lang.t("health")) }
        p.meta {
            (lang.t("nodes_up")) ": " strong { (up) " / " (certified) }
            " · " (lang.t("divergent_nodes")) ": " strong { (flagged) }
            " · " (lang.t("heartbeat_every")) " " (view.heartbeat_secs) " " (lang.t("seconds"))
        }
        p { (lang.t("health_help")) }
        @for m in &view.members {
            h2 { (ctx.member(&m.code)) }
            @if m.nodes.is_empty() {
                p.meta { (lang.t("no_nodes")) }
            } @else {
                div.scroll tabindex="0" role="region" aria-label=(ctx.member_text(&m.code)) {
                    // A card per row on a phone: see the federation page's table.
                    table.stack {
                        thead { tr {
                            th scope="col" { (lang.t("node")) }
                            th scope="col" { (lang.t("status")) }
                            th scope="col" { (lang.t("last_seen")) }
                            th scope="col" { (lang.t("version")) }
                            th scope="col" { (lang.t("charter")) }
                            th scope="col" { (lang.t("checkpoint")) }
                        } }
                        tbody { @for n in &m.nodes {
                            tr {
                                td data-label=(lang.t("node")) {
                                    @if let Some(l) = &n.label { (accord_search::display_line(l)) br; }
                                    code.id title=(n.peer_id) { (n.peer_id.get(..12).unwrap_or(&n.peer_id)) "…" }
                                }
                                td data-label=(lang.t("status")) {
                                    @let (class, key) = match n.status {
                                        "self" => ("state ok", "self_node"),
                                        "up" => ("state ok", "up"),
                                        "down" => ("state bad", "down"),
                                        _ => ("state muted", "never_seen"),
                                    };
                                    span class=(class) { (lang.t(key)) }
                                    @if n.divergent { br; span.state.bad { (lang.t("divergent")) } }
                                    @if n.equivocated { br; span.state.bad { (lang.t("equivocated")) } }
                                }
                                td data-label=(lang.t("last_seen")) { @if let Some(t) = n.last_seen {
                                    (lang.time(t, true))
                                    @if let Some(s) = n.seconds_since { br; span.meta { (lang.ago(s)) } }
                                } }
                                td data-label=(lang.t("version")) { @if let Some(sw) = &n.software { (accord_search::display_line(sw)) } @if let Some(p) = &n.protocol { br; span.meta { (lang.t("protocol")) " " (p) } } }
                                td data-label=(lang.t("charter")) { @if let Some(v) = n.charter_version {
                                    "v" (v)
                                    @if n.charter_matches == Some(false) { " " span.state.bad { (lang.t("charter_mismatch")) } }
                                } }
                                td data-label=(lang.t("checkpoint")) { @if let Some(c) = &n.checkpoint {
                                    (lang.count(c.count, ["объект", "объекта", "объектов"], ["object", "objects"])) " " (lang.t("before")) " " (lang.time(c.watermark, false))
                                    br;
                                    @let (class, key) = match n.agreement {
                                        accord_node::Agreement::Agrees => ("state ok", "agrees"),
                                        accord_node::Agreement::Behind => ("state muted", "behind"),
                                        accord_node::Agreement::Ahead => ("state bad", "ahead"),
                                        accord_node::Agreement::HoldsRefused => ("state muted", "holds_refused"),
                                        accord_node::Agreement::Unknown => ("state muted", "not_compared"),
                                    };
                                    span class=(class) { (lang.t(key)) }
                                    @if n.behind > 0 { " (" (lang.number(n.behind)) ")" }
                                    @if n.held_refused > 0 { " (" (lang.number(n.held_refused)) ")" }
                                } }
                            }
                        } }
                    }
                }
            }
            @if m.never_seen_more > 0 {
                p.meta { (lang.t("never_seen_more")) " " (lang.number(m.never_seen_more)) }
            }
        }
        h2 { (lang.t("evidence")) }
        @if view.evidence.is_empty() {
            p.meta { (lang.t("no_evidence")) }
        } @else {
            ul { @for e in &view.evidence {
                li {
                    span.state.bad { (if e.kind == "equivocation" { lang.t("equivocated") } else { lang.t("divergent") }) }
                    " · " (ctx.member(&e.subject_member)) " · " (lang.date(e.created)) " · " span title=(e.explanation) { (lang.evidence_text(e)) } " · "
                    a href=(format!("/v1/health/evidence?number={}", e.number)) download=(format!("evidence-{}.cbor", e.number)) { (lang.t("download_evidence")) }
                }
            } }
        }
        @if !view.refused.is_empty() {
            p.meta { (lang.t("refused_heartbeats")) ": "
                @for (code, n) in &view.refused { span title=(code) { (lang.heartbeat_refusal(code)) } ": " (lang.number(*n)) "; " }
            }
        }
        p.exports { a href="/v1/health/federation" { "JSON" } " · " a href="/metrics" { "Prometheus" } }
    };
    ctx.page(lang.t("health"), "health", "/health", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record page that finds both render turns taken for the wait shows the body as its
    /// plain text (escaped) at once, not after every other reader's render; a turn free is
    /// rendered.
    #[tokio::test]
    async fn a_body_waits_for_its_render_turn_a_while_then_is_shown_plain() {
        let source = "# Title\n\n<script>x</script>\n\n*text*".to_string();
        let held = RENDERS.acquire_many(RENDERS_AT_ONCE as u32).await.unwrap();
        let (m, plain) = render_body(source.clone(), std::time::Duration::from_millis(50)).await;
        let html = m.into_string();
        assert!(plain && html.starts_with("<pre class=\"plain\">"), "{html}");
        assert!(
            html.contains("&lt;script&gt;") && html.contains("# Title"),
            "{html}"
        );
        drop(held);
        let (m, plain) = render_body(source, std::time::Duration::from_secs(30)).await;
        let html = m.into_string();
        assert!(!plain && html.contains("<em>text</em>"), "{html}");
    }

    /// A node busy with other searches tells the reader, in their language, to try again (not
    /// "the search could not be made" and the node's English reason), and its page is a 503
    /// that says when to come back.
    #[test]
    fn a_busy_node_asks_the_reader_to_try_again() {
        let reason = "the node is busy: 4 searches are running";
        let ru = failure_notice(super::super::Lang::Ru, true, Some(reason)).into_string();
        assert!(ru.contains("Узел занят другими поисками"), "{ru}");
        assert!(!ru.contains(reason) && !ru.contains("lang=\"en\""), "{ru}");
        let en = failure_notice(super::super::Lang::En, true, Some(reason)).into_string();
        assert!(en.contains("try again in a few seconds"), "{en}");
        // Another failure keeps its reason.
        let other =
            failure_notice(super::super::Lang::En, false, Some("the index is gone")).into_string();
        assert!(
            other.contains("The search could not be made") && other.contains("the index is gone")
        );
        let mut page = "<html></html>".into_response();
        crate::come_back_later(&mut page);
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            page.headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
    }

    /// The contrast of a heat-map cell's text with its background, as the page writes them
    /// (the background's rounded channels, the text colour chosen).
    fn heat_contrast(style: &str) -> f64 {
        let rgb: Vec<f64> = style
            .split_once("rgb(")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inside, _)| {
                inside
                    .split(',')
                    .filter_map(|c| c.trim().parse::<f64>().ok())
                    .collect::<Vec<f64>>()
            })
            .unwrap_or_default();
        assert_eq!(rgb.len(), 3, "{style}");
        let fg = match style.rsplit_once("color: ") {
            Some((_, "#fff")) => [255.0, 255.0, 255.0],
            Some((_, "#1b1f24")) => [27.0, 31.0, 36.0],
            _ => panic!("no text colour in {style}"),
        };
        let (a, b) = (luminance([rgb[0], rgb[1], rgb[2]]), luminance(fg));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// Every heat-map cell's text meets 4.5:1 against its background, whatever the counts:
    /// between about 0.68 and 0.77 of the accent colour neither white nor the body colour did.
    #[test]
    fn every_heat_map_cell_reads_at_four_and_a_half_to_one() {
        for max in 1..=120u64 {
            for n in 0..=max {
                let style = heat_style(heat_alpha(n, max));
                let ratio = heat_contrast(&style);
                assert!(ratio >= 4.5, "{n}/{max}: {style} is {ratio:.2}:1");
            }
        }
        // Every strength, counts or not.
        for i in 0..=1000 {
            let style = heat_style(f64::from(i) / 1000.0);
            let ratio = heat_contrast(&style);
            assert!(ratio >= 4.5, "{i}‰: {style} is {ratio:.2}:1");
        }
    }

    /// A search that failed still has its page's `<h1>`, the one its results section is named
    /// by (`aria-labelledby="results-h"`); it had none, and the name pointed at nothing.
    #[test]
    fn a_failed_search_has_its_heading() {
        let failed = results_heading(crate::ui::Lang::En, None).into_string();
        assert_eq!(
            failed,
            "<h1 class=\"count-line\" id=\"results-h\">The search could not be made</h1>"
        );
        let found = results_heading(crate::ui::Lang::Ru, Some(1234)).into_string();
        assert!(
            found.starts_with("<h1 class=\"count-line\" id=\"results-h\">")
                && found.contains("Найдено записей"),
            "{found}"
        );
    }

    /// The page keeps the first value of a parameter that takes one (the one its form shows)
    /// and lists the others as left out, rather than showing one query and searching another.
    #[test]
    fn a_second_value_of_a_single_valued_parameter_is_left_out() {
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let a = asked(&p(&[
            ("q", "portal"),
            ("q", "budget"),
            ("member", "KZ"),
            ("member", "BY"),
        ]));
        assert_eq!(
            a.api,
            p(&[("q", "portal"), ("member", "KZ"), ("member", "BY")])
        );
        assert_eq!(a.ignored, p(&[("q", "budget")]));
        assert!(parse_query(&a.api, &RECORD_PARAMS).is_ok());
    }

    /// A query longer than the search takes (a shared link's) is searched by its first words,
    /// cut at a space, and the page says so; it used to be left out, and the page showed
    /// every record.
    #[test]
    fn a_query_too_long_is_cut_at_a_word_not_dropped() {
        let long = "цифровые навыки ".repeat(40);
        let a = asked(&[("q".to_string(), long.clone())]);
        assert!(a.query_cut && a.ignored.is_empty());
        let (_, q) = &a.api[0];
        assert!(
            q.chars().count() <= accord_search::MAX_QUERY_CHARS,
            "{}",
            q.len()
        );
        assert!(q.ends_with("навыки") && long.starts_with(q.as_str()), "{q}");
        assert!(parse_query(&a.api, &RECORD_PARAMS).is_ok_and(|q| q.text.is_some()));
        // One word longer than the limit: cut where the limit falls.
        let word = "я".repeat(600);
        let a = asked(&[("q".to_string(), word)]);
        assert_eq!(a.api[0].1.chars().count(), accord_search::MAX_QUERY_CHARS);
        let a = asked(&[("q".to_string(), "портал".to_string())]);
        assert!(!a.query_cut);
    }
}
