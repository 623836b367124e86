//! The five pages.

use std::collections::BTreeMap;

use accord_core::Timestamp;
use accord_node::NodeHandle;
use accord_search::SearchQuery;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::{Lang, flag, layout, markdown, page};
use crate::records::{
    RECORD_PARAMS, federation_value, parse_query, publishers_value, record_detail,
};

type Params = Query<Vec<(String, String)>>;

fn qs(params: &[(String, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Taxonomy names in the interface language, from the charter.
async fn names(node: &NodeHandle, lang: Lang) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(f) = federation_value(node).await {
        for list in ["directions", "kinds"] {
            for e in f["taxonomy"][list].as_array().into_iter().flatten() {
                let code = e["code"].as_str().unwrap_or("").to_string();
                let name = e["names"][lang.code()]
                    .as_str()
                    .or_else(|| e["names"]["en"].as_str())
                    .unwrap_or(&code)
                    .to_string();
                out.insert(code, name);
            }
        }
    }
    out
}

fn name<'a>(names: &'a BTreeMap<String, String>, code: &'a str) -> &'a str {
    names.get(code).map(String::as_str).unwrap_or(code)
}

pub async fn search(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let (lang, set) = Lang::detect(&params, &headers);
    let api_params: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "lang")
        .cloned()
        .collect();
    let names = names(&node, lang).await;
    let (result, error) = match parse_query(&api_params, &RECORD_PARAMS) {
        Ok(q) => match node.search(q).await {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        },
        Err(e) => (None, Some(e.1)),
    };
    let text = api_params
        .iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let checked = |k: &str, v: &str| api_params.iter().any(|(a, b)| a == k && b == v);
    let live_query: Vec<(String, String)> = api_params
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "q" | "member" | "kind" | "direction" | "lang"))
        .cloned()
        .collect();
    let next = result.as_ref().and_then(|r| r.next_offset).map(|o| {
        let mut p: Vec<(String, String)> = api_params
            .iter()
            .filter(|(k, _)| k != "cursor")
            .cloned()
            .collect();
        p.push(("cursor".into(), format!("o{o}")));
        format!("/?{}", qs(&p))
    });
    let body = html! {
        form.searchbar role="search" action="/" method="get" {
            label for="q" class="skip" { (lang.t("search")) }
            input #q type="search" name="q" value=(text) placeholder=(lang.t("search_placeholder")) maxlength="512" list="suggestions" autocomplete="off";
            datalist #suggestions {}
            @for (k, v) in api_params.iter().filter(|(k, _)| k != "q" && k != "cursor") {
                input type="hidden" name=(k) value=(v);
            }
            button type="submit" { (lang.t("search")) }
        }
        div #live .notice role="status" data-query=(format!("?{}", qs(&live_query))) {
            span.n { "0" } " " (lang.t("new_records")) " " a href=(format!("/?{}", qs(&api_params))) { "↻" }
        }
        @if let Some(e) = &error { p.notice style="display:block" { (e) } }
        div.layout {
            form.filters action="/" method="get" aria-label=(lang.t("apply")) {
                @if !text.is_empty() { input type="hidden" name="q" value=(text); }
                @if let Some(r) = &result {
                    @for facet in ["member", "direction", "kind", "lang", "status", "year"] {
                        @let counts = r.facets.get(facet).cloned().unwrap_or_default();
                        @if !counts.is_empty() || api_params.iter().any(|(k, _)| k == facet) {
                            fieldset {
                                legend { (lang.t(facet)) }
                                @for (value, n) in &counts {
                                    @let param = if facet == "year" { "since" } else { facet };
                                    @if facet != "year" {
                                        label {
                                            input type="checkbox" name=(param) value=(value) checked[checked(facet, value)];
                                            " " (if facet == "member" { flag(value) } else { name(&names, value).to_string() })
                                            " " span.count { "(" (n) ")" }
                                        }
                                    } @else {
                                        span.badge { (value) " (" (n) ")" }
                                    }
                                }
                            }
                        }
                    }
                }
                button type="submit" { (lang.t("apply")) }
                " " a href="/" { (lang.t("clear")) }
            }
            section aria-live="polite" {
                @if let Some(r) = &result {
                    p.meta { (lang.t("results")) ": " strong { (r.total) } }
                    @if let Some(fixed) = &r.did_you_mean {
                        @let fixed_params = api_params.iter().filter(|(k, _)| k != "q" && k != "cursor").cloned().chain([("q".to_string(), fixed.clone())]).collect::<Vec<_>>();
                        p.didyoumean { (lang.t("did_you_mean")) ": " a href=(format!("/?{}", qs(&fixed_params))) { strong { (fixed) } } "?" }
                    }
                    @if r.reading.approximate { p.meta { (lang.t("approximate")) } }
                    @if !r.reading.also.is_empty() { p.meta { (lang.t("also_searched")) ": " (r.reading.also.join(", ")) } }
                    @for dcode in &r.reading.directions { p.meta { (lang.t("also_direction")) " «" (name(&names, dcode)) "»" } }
                    @if r.hits.is_empty() { p { (lang.t("no_results")) } }
                    @for h in &r.hits {
                        @let d = &h.doc;
                        article.result {
                            h2 { a href=(format!("/records/{}", d.id)) { (d.title.get(lang.code()).or_else(|| d.title.get(&d.lang)).cloned().unwrap_or_default()) } }
                            div.meta {
                                span.badge { (flag(&d.member)) } span.badge { (name(&names, &d.kind)) }
                                @for x in &d.directions { span.badge { (name(&names, x)) } }
                                " " (lang.date(d.created)) " · "
                                @for l in &d.languages { span.badge lang=(l) { (l) } }
                                @if d.status != "active" { span.badge { (d.status) } }
                            }
                            p.snippet { (maud::PreEscaped(&h.snippet)) }
                        }
                    }
                    p {
                        @if api_params.iter().any(|(k, _)| k == "cursor") {
                            a href=(format!("/?{}", qs(&api_params.iter().filter(|(k, _)| k != "cursor").cloned().collect::<Vec<_>>()))) { (lang.t("first")) }
                            " · "
                        }
                        @if let Some(n) = &next { a rel="next" href=(n) { (lang.t("next")) " →" } }
                    }
                }
            }
        }
    };
    let pq = format!("/?{}", qs(&api_params));
    page(
        layout(lang, lang.t("search"), "search", &pq, body),
        set.then_some(lang),
    )
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
    let (lang, set) = Lang::detect(&params, &headers);
    let names = names(&node, lang).await;
    let detail = match crate::records::resolve_id(&node, &id).await {
        Ok(oid) => node
            .read(move |s| record_detail(s, &oid))
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten(),
        Err(_) => None,
    };
    let Some(v) = detail else {
        let body = html! { h1 { (lang.t("not_found")) } p { a href="/" { (lang.t("search")) } } };
        let mut r = page(
            layout(
                lang,
                lang.t("not_found"),
                "",
                &format!("/records/{id}"),
                body,
            ),
            None,
        );
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
    let pick = |field: &str| {
        v[field][&shown]
            .as_str()
            .or_else(|| v[field][&original].as_str())
            .unwrap_or("")
            .to_string()
    };
    let title = pick("title");
    let p = &v["provenance"];
    let d = &p["delegation"];
    let created: Timestamp = text(&v, "created").parse().unwrap_or_default();
    let body = html! {
        article lang=(shown) {
            h1 { (title) }
            p.meta {
                span.badge { (flag(text(&v, "member"))) } span.badge { (name(&names, text(&v, "kind"))) }
                @for x in v["directions"].as_array().into_iter().flatten() { span.badge { (name(&names, x.as_str().unwrap_or(""))) } }
                " " (lang.t("created")) " " (lang.date(created)) " · " (lang.t("status")) ": " strong { (text(&v, "status")) }
            }
            nav aria-label=(lang.t("lang")) {
                @for l in &langs {
                    @if *l == shown { strong { (l) } } @else { a href=(format!("/records/{id}?show={l}")) lang=(l) { (l) } }
                    @if *l == original { " (" (lang.t("original")) ")" }
                    " "
                }
            }
            @let summary = pick("summary");
            @if !summary.is_empty() { p { em { (summary) } } }
            div.body { (markdown(&pick("body"))) }
            @if let Some(tags) = v["tags"].as_array().filter(|t| !t.is_empty()) {
                p { strong { (lang.t("tags")) ": " } @for t in tags { span.badge { (t.as_str().unwrap_or("")) } } }
            }
            @if let Some(links) = v["links"].as_array().filter(|l| !l.is_empty()) {
                h2 { (lang.t("links")) }
                ul { @for l in links {
                    @let url = text(l, "url");
                    @let safe = url.starts_with("https://") || url.starts_with("http://");
                    li { @if safe { a href=(url) rel="noopener noreferrer nofollow" { (l["title"].as_str().unwrap_or(url)) } } @else { (url) } }
                } }
            }
            @if let Some(att) = v["attachments"].as_array().filter(|a| !a.is_empty()) {
                h2 { (lang.t("attachments")) }
                ul { @for a in att { li { (text(a, "name")) " — " (text(a, "media_type")) ", " (a["size"]) " B, SHA-256 " code { (text(a, "sha256")) } } } }
            }
            @if let Some(refs) = v["references"].as_array().filter(|r| !r.is_empty()) {
                h2 { (lang.t("references")) }
                ul { @for r in refs { li { a href=(format!("/records/{}", r.as_str().unwrap_or(""))) { code { (r.as_str().unwrap_or("")) } } } } }
            }
            h2 { (lang.t("history")) }
            ul {
                @if let Some(s) = v["supersedes"].as_str() { li { (lang.t("supersedes")) ": " a href=(format!("/records/{s}")) { code { (s) } } } }
                @for s in v["history"]["superseded_by"].as_array().into_iter().flatten() {
                    li { (lang.t("superseded_by")) ": " a href=(format!("/records/{}", s.as_str().unwrap_or(""))) { code { (s.as_str().unwrap_or("")) } } }
                }
                @for r in v["history"]["retracted_by"].as_array().into_iter().flatten() {
                    li { (lang.t("retracted_by")) ": " (text(r, "reason")) }
                }
            }
            section.panel aria-labelledby="prov" {
                h2 #prov { (lang.t("provenance")) }
                dl {
                    dt { @if p["signature_valid"] == true { "✔ " (lang.t("signature_valid")) } @else { "✘ " (lang.t("signature_invalid")) } }
                    dd { code { (text(p, "signer")) } }
                    @if d.is_object() {
                        dt { (lang.t("delegation")) }
                        dd { (text(d, "publisher")) " (" (flag(text(d, "member"))) ") · " code { (text(d, "id")) } }
                        dt { (lang.t("scope")) }
                        dd { (lang.t("kinds")) ": " (d["kinds"].as_array().map(|k| k.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_else(|| lang.t("all").into()))
                             "; " (lang.t("directions")) ": " (d["directions"].as_array().map(|k| k.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_else(|| lang.t("all").into())) }
                        dt { (lang.t("window")) }
                        dd { (text(d, "not_before")) " — " (d["not_after"].as_str().unwrap_or("…")) }
                        dt { (lang.t("delegated_by")) }
                        dd { code { (text(d, "signed_by")) } }
                    }
                    dt { (lang.t("root_key")) }
                    dd { code { (text(p, "member_root_key")) } }
                    dt { (lang.t("charter")) }
                    dd { (text(&p["charter"], "name")) ", v" (p["charter"]["version"]) " · " code { (text(&p["charter"], "federation")) } }
                }
                p { a href=(format!("/records/{id}/object.cbor")) download=(format!("{id}.cbor")) { (lang.t("download")) } }
                p { (lang.t("verify")) ":" }
                pre { code { "accord verify " (id) ".cbor --charter charter.cbor --with delegation.cbor" } }
            }
        }
    };
    page(
        layout(lang, &title, "", &format!("/records/{id}"), body),
        set.then_some(lang),
    )
}

pub async fn download(State(node): State<NodeHandle>, Path(id): Path<String>) -> Response {
    let Ok(oid) = crate::records::resolve_id(&node, &id).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
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
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A simple SVG line chart: one series per member over months.
fn chart(series: &BTreeMap<String, BTreeMap<String, u64>>) -> Markup {
    let months: Vec<String> = {
        let mut m: Vec<String> = series.values().flat_map(|s| s.keys().cloned()).collect();
        m.sort();
        m.dedup();
        let skip = m.len().saturating_sub(12);
        m.into_iter().skip(skip).collect()
    };
    let max = series
        .values()
        .flat_map(|s| s.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h, left, bottom) = (640.0, 240.0, 40.0, 30.0);
    let step = if months.len() > 1 {
        (w - left - 20.0) / (months.len() - 1) as f64
    } else {
        0.0
    };
    let colors = [
        "#0b57d0", "#d93025", "#188038", "#e37400", "#9334e6", "#007b83", "#b3261e", "#5f6368",
    ];
    html! {
        svg viewBox=(format!("0 0 {w} {h}")) width="100%" role="img" aria-label="chart" {
            line x1=(left) y1=(h - bottom) x2=(w - 10.0) y2=(h - bottom) stroke="#57606a" {}
            line x1=(left) y1="10" x2=(left) y2=(h - bottom) stroke="#57606a" {}
            text x="4" y="16" font-size="11" { (max) }
            text x="4" y=(h - bottom) font-size="11" { "0" }
            @for (i, m) in months.iter().enumerate() {
                text x=(left + step * i as f64 - 16.0) y=(h - 10.0) font-size="10" { (m) }
            }
            @for (si, (member, s)) in series.iter().enumerate() {
                @let color = colors[si % colors.len()];
                @let pts: Vec<String> = months.iter().enumerate().map(|(i, m)| {
                    let n = s.get(m).copied().unwrap_or(0) as f64;
                    format!("{:.1},{:.1}", left + step * i as f64, h - bottom - n / max as f64 * (h - bottom - 20.0))
                }).collect();
                polyline points=(pts.join(" ")) fill="none" stroke=(color) stroke-width="2" {}
                @for pt in &pts {
                    @let (x, y) = pt.split_once(',').unwrap_or(("0", "0"));
                    circle cx=(x) cy=(y) r="4" fill=(color) {}
                }
                text x=(w - 60.0) y=(20.0 + 14.0 * si as f64) font-size="12" fill=(color) { (member) }
            }
        }
    }
}

pub async fn overview(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let (lang, set) = Lang::detect(&params, &headers);
    let names = names(&node, lang).await;
    let fed = federation_value(&node).await.unwrap_or_default();
    let members: Vec<String> = fed["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["code"].as_str().map(str::to_string))
        .collect();
    let directions: Vec<String> = fed["taxonomy"]["directions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["code"].as_str().map(str::to_string))
        .collect();
    let mut matrix: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut months: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for m in &members {
        let q = SearchQuery {
            members: vec![m.clone()],
            limit: 1,
            ..Default::default()
        };
        if let Ok(r) = node.search(q).await {
            matrix.insert(
                m.clone(),
                r.facets.get("direction").cloned().unwrap_or_default(),
            );
            months.insert(
                m.clone(),
                r.facets.get("month").cloned().unwrap_or_default(),
            );
        }
    }
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
    let body = html! {
        h1 { (lang.t("overview")) }
        h2 { (lang.t("matrix")) }
        div style="overflow-x:auto" {
            table.heat {
                thead { tr { th { (lang.t("direction")) } @for m in &members { th scope="col" { (flag(m)) } } } }
                tbody {
                    @for d in &directions {
                        tr {
                            th scope="row" { (name(&names, d)) }
                            @for m in &members {
                                @let n = matrix.get(m).and_then(|r| r.get(d)).copied().unwrap_or(0);
                                @let alpha = if n == 0 { 0.0 } else { 0.15 + 0.85 * n as f64 / max as f64 };
                                td.n style=(format!("background: rgba(11,87,208,{alpha:.2}); color: {}", if alpha > 0.55 { "#fff" } else { "#1b1f24" })) {
                                    a href=(format!("/?member={m}&direction={d}")) style="color:inherit" { (n) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.t("over_time")) }
        (chart(&months))
        h2 { (lang.t("recent")) }
        ul {
            @for h in recent.iter().flat_map(|r| r.hits.iter()) {
                li { (lang.date(h.doc.created)) " " span.badge { (flag(&h.doc.member)) } " "
                     a href=(format!("/records/{}", h.doc.id)) { (h.doc.title.get(lang.code()).or_else(|| h.doc.title.get(&h.doc.lang)).cloned().unwrap_or_default()) } }
            }
        }
    };
    page(
        layout(lang, lang.t("overview"), "overview", "/overview", body),
        set.then_some(lang),
    )
}

pub async fn federation(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let (lang, set) = Lang::detect(&params, &headers);
    let f = federation_value(&node).await.unwrap_or_default();
    let pubs = publishers_value(&node).await.unwrap_or_default();
    let entry_name = |e: &Value, l: &str| e["names"][l].as_str().unwrap_or("").to_string();
    let body = html! {
        h1 { (text(&f, "name")) }
        p.meta { (lang.t("federation")) " " code { (text(&f, "federation")) } " · " (lang.t("charter")) " v" (f["version"]) " · " (lang.t("threshold")) ": " (f["threshold"]) }
        h2 { (lang.t("members")) }
        table {
            thead { tr { th { (lang.t("code")) } th { (lang.t("name")) } th { (lang.t("root_key")) } } }
            tbody { @for m in f["members"].as_array().into_iter().flatten() {
                tr { td { (flag(text(m, "code"))) } td { (m["name"][lang.code()].as_str().or_else(|| m["name"]["en"].as_str()).unwrap_or("")) } td { code { (text(m, "root_key")) } } }
            } }
        }
        @for (list, title) in [("directions", "directions"), ("kinds", "kinds")] {
            h2 { (lang.t(title)) }
            table {
                thead { tr { th { (lang.t("code")) } th lang="ru" { "Русский" } th lang="en" { "English" } } }
                tbody { @for e in f["taxonomy"][list].as_array().into_iter().flatten() {
                    tr { td { code { (text(e, "code")) } } td lang="ru" { (entry_name(e, "ru")) } td lang="en" { (entry_name(e, "en")) } }
                } }
            }
        }
        h2 { (lang.t("publishers")) }
        @for (member, list) in pubs["members"].as_object().into_iter().flatten() {
            h3 { (flag(member)) }
            ul { @for p in list.as_array().into_iter().flatten() {
                li { strong { (text(p, "name")) } " — " (text(p, "status")) " · " code { (text(p, "publisher_key")) } }
            } }
        }
    };
    page(
        layout(
            lang,
            lang.t("federation"),
            "federation",
            "/federation",
            body,
        ),
        set.then_some(lang),
    )
}

pub async fn network(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let (lang, set) = Lang::detect(&params, &headers);
    let peers = node.peers().await.unwrap_or_default();
    let sync: BTreeMap<String, accord_node::PeerSync> = node.sync_stats().into_iter().collect();
    let status = node.status().await.ok();
    let body = html! {
        h1 { (lang.t("network")) }
        @if let Some(s) = &status {
            p { (lang.t("this_node")) ": " code { (s.peer_id) } " · " (flag(&s.member)) " · " (s.listen.join(" ")) }
        }
        h2 { (lang.t("peers")) " (" (peers.len()) ")" }
        table {
            thead { tr { th { "Peer" } th { (lang.t("member")) } th { (lang.t("status")) } th { (lang.t("since")) } th { (lang.t("last_sync")) } } }
            tbody { @for p in &peers {
                @let s = sync.get(&p.peer_id);
                tr {
                    td { code { (p.peer_id) } }
                    td { (p.member.as_deref().map(flag).unwrap_or_default()) }
                    td { (if p.admitted { lang.t("admitted") } else { lang.t("not_admitted") }) }
                    td { (lang.date(p.connected_since)) }
                    td { @if let Some(s) = s {
                        @if let Some(r) = &s.running { (lang.t("sync_running")) " · missing " (r.missing) " · fetched " (r.fetched) " · " }
                        (s.last.map(|t| t.to_string()).unwrap_or_default()) " · rounds " (s.rounds) " · fetched " (s.fetched)
                        @if let Some(e) = &s.error { " · " (e) }
                    } }
                }
            } }
        }
    };
    page(
        layout(lang, lang.t("network"), "network", "/network", body),
        set.then_some(lang),
    )
}
