//! Analyst commands: `query`, `show`, `follow`, `export`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::Value;

use crate::node_cmd::{client, get_json};

/// A search of the node's records; a parameter the node refuses is named as the flag that set
/// it ("parameter date_from: …" → "--date-from: …").
async fn get(node: &str, path: &str, params: &[(String, String)]) -> Result<Value> {
    get_json(node, path, params).await.map_err(|e| {
        let text = format!("{e:#}");
        match text
            .split_once("parameter ")
            .and_then(|(_, rest)| rest.split_once(':'))
        {
            Some((name, why)) if params.iter().any(|(k, _)| k == name) => {
                let flag = match name {
                    "q" => "the search text".to_string(),
                    other => format!("--{}", other.replace('_', "-")),
                };
                anyhow::anyhow!("{flag}:{why}")
            }
            _ => e,
        }
    })
}

/// The filters `follow` takes: what a record is, not when it was made or what became of it
/// (a record that arrives is new and active).
#[derive(Debug, Args, Clone, Default)]
pub struct StreamFilters {
    /// Member code (repeatable: OR).
    #[arg(long)]
    pub member: Vec<String>,
    /// Record kind (repeatable).
    #[arg(long)]
    pub kind: Vec<String>,
    /// Direction (repeatable).
    #[arg(long)]
    pub direction: Vec<String>,
    /// Language tag (repeatable).
    #[arg(long)]
    pub lang: Vec<String>,
    /// Publisher name (repeatable).
    #[arg(long)]
    pub publisher: Vec<String>,
    /// Tag, matched whole whatever its case (repeatable: OR; the words inside tags are found
    /// by the query text).
    #[arg(long)]
    pub tag: Vec<String>,
}

/// Filters shared by `query` and `export`.
#[derive(Debug, Args, Clone, Default)]
pub struct Filters {
    #[command(flatten)]
    pub of: StreamFilters,
    /// Status (repeatable; default active).
    #[arg(long)]
    pub status: Vec<String>,
    /// Created at or after (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = time_arg)]
    pub since: Option<String>,
    /// Created on or before (a YYYY-MM-DD date counts whole; an RFC 3339 time is the first
    /// instant left out).
    #[arg(long, value_parser = time_arg)]
    pub until: Option<String>,
    /// The source document's date on or after (YYYY-MM-DD; records without a date are left out).
    #[arg(long)]
    pub date_from: Option<String>,
    /// The source document's date on or before (YYYY-MM-DD).
    #[arg(long)]
    pub date_to: Option<String>,
    /// Search the words as typed: a query that finds nothing, or less than its correction, is
    /// not replaced by the correction (which is only offered).
    #[arg(long)]
    pub as_typed: bool,
}

/// Removes control characters (but line breaks and tabs) from every text a node sent, before
/// it reaches a terminal: a record's title is a member's text, and `ESC ]52;…` in it would
/// write to the reader's clipboard, `ESC ]0;…` retitle the window.
fn printable(v: &mut Value) {
    match v {
        Value::String(s) if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            s.retain(|c| !c.is_control() || c == '\n' || c == '\t');
        }
        Value::Array(a) => a.iter_mut().for_each(printable),
        Value::Object(o) => o.values_mut().for_each(printable),
        _ => {}
    }
}

/// `--since`/`--until` checked as the signing tools check times ([`crate::util::parse_time`]): a
/// date typed without its dashes ("20260131") is refused rather than sent to the node, which
/// reads bare digits as Unix milliseconds (a moment of 1970).
fn time_arg(s: &str) -> Result<String, String> {
    crate::util::parse_time(s)?;
    Ok(s.trim().to_string())
}

/// `--until` as the API's `until` (the first instant left out): a plain date counts whole, as
/// `--date-to` and the web page's "to" do, so `--until 2026-01-31` keeps the 31st.
fn until_param(u: &str) -> String {
    let u = u.trim();
    match accord_core::Timestamp::from_date(u).filter(|_| u.len() == 10) {
        Some(day) => accord_core::Timestamp(day.0.saturating_add(86_400_000)).to_string(),
        None => u.to_string(),
    }
}

impl StreamFilters {
    fn params(&self, text: Option<&str>) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            p.push(("q".into(), t.to_string()));
        }
        for (k, list) in [
            ("member", &self.member),
            ("kind", &self.kind),
            ("direction", &self.direction),
            ("lang", &self.lang),
            ("publisher", &self.publisher),
            ("tag", &self.tag),
        ] {
            p.extend(list.iter().map(|v| (k.to_string(), v.clone())));
        }
        p
    }
}

impl Filters {
    fn params(&self, text: Option<&str>) -> Vec<(String, String)> {
        let mut p = self.of.params(text);
        p.extend(
            self.status
                .iter()
                .map(|v| ("status".to_string(), v.clone())),
        );
        if let Some(s) = &self.since {
            p.push(("since".into(), s.clone()));
        }
        if let Some(u) = &self.until {
            p.push(("until".into(), until_param(u)));
        }
        if let Some(d) = &self.date_from {
            p.push(("date_from".into(), d.clone()));
        }
        if let Some(d) = &self.date_to {
            p.push(("date_to".into(), d.clone()));
        }
        if self.as_typed {
            p.push(("as_typed".into(), "1".into()));
        }
        p
    }
}

/// Writes records as CSV ([`accord_api::exports::write_csv`]).
fn write_csv(
    out: &mut dyn Write,
    items: &[Value],
    node: &str,
    bom: bool,
    delimiter: char,
) -> Result<()> {
    accord_api::exports::write_csv(out, items, node, bom, delimiter)?;
    Ok(())
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in s.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// After a query that found nothing: a `--kind` or `--direction` that is no code of the
/// federation's taxonomy (a typo finds nothing, silently) is named, with the closest code.
async fn unknown_codes(node: &str, f: &Filters) -> Result<()> {
    if f.of.kind.is_empty() && f.of.direction.is_empty() {
        return Ok(());
    }
    let Ok(fed) = get(node, "/v1/federation", &[]).await else {
        return Ok(()); // the hint is a courtesy: the query itself succeeded
    };
    for (flag, given, list) in [
        ("--kind", &f.of.kind, "kinds"),
        ("--direction", &f.of.direction, "directions"),
    ] {
        let codes: Vec<&str> = fed["taxonomy"][list]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["code"].as_str()).collect())
            .unwrap_or_default();
        if codes.is_empty() {
            continue;
        }
        for g in given.iter().flat_map(|g| g.split(',')).map(str::trim) {
            if !codes.contains(&g) {
                bail!(
                    "{flag} {g:?}: not a code of the federation's taxonomy{}",
                    crate::objects_cmd::code_hint(g, &codes)
                );
            }
        }
    }
    Ok(())
}

pub async fn query(
    node: &str,
    text: Option<&str>,
    f: &Filters,
    format: &str,
    limit: usize,
    sort: Option<&str>,
) -> Result<()> {
    let mut params = f.params(text);
    params.push(("limit".into(), limit.to_string()));
    if let Some(s) = sort {
        params.push(("sort".into(), s.to_string()));
    }
    let mut v = get(node, "/v1/records", &params).await?;
    printable(&mut v);
    // A person reading a table is told why nothing was found; scripts reading JSON or CSV get
    // the empty answer as before.
    if format == "table" && v["total"].as_u64() == Some(0) {
        unknown_codes(node, f).await?;
    }
    let items = v["items"].as_array().cloned().unwrap_or_default();
    // A page of the results, not all of them: said on stderr, so that a CSV or JSON on stdout
    // stays clean, with the way to get all of them.
    let total = v["total"].as_u64().unwrap_or(0);
    if v["next_cursor"].is_string() || (items.len() as u64) < total {
        eprintln!(
            "showing {} of {}: raise --limit (at most {}), or write them all to a \
             file with `accord export` and the same words and filters, adding `--format {} --out FILE`",
            items.len(),
            crate::util::count(total, "record", "records"),
            accord_search::MAX_LIMIT,
            if format == "csv" { "csv" } else { "jsonl" }
        );
    }
    match format {
        "json" => println!("{}", serde_json::to_string_pretty(&v)?),
        "csv" => write_csv(&mut std::io::stdout().lock(), &items, node, false, ',')?,
        "table" => {
            println!(
                "{}",
                crate::util::count(v["total"].as_u64().unwrap_or(0), "record", "records")
            );
            for line in reading_lines(&v) {
                println!("{line}");
            }
            // Titles in the language of the query as read (its correction or other-layout
            // reading when shown), as the web page shows them: not an English title above a
            // Russian snippet.
            let read_as = v["reading"]["showing_for"].as_str().or(text);
            let lang = read_as.and_then(accord_search::query_lang);
            for i in &items {
                let title = lang
                    .and_then(|l| i["titles"][l].as_str())
                    .or_else(|| i["title"].as_str())
                    .unwrap_or("");
                println!(
                    "{}  {}  {:<2}  {:<20}  {:<10}  {}",
                    &i["id"].as_str().unwrap_or("")[..12.min(i["id"].as_str().unwrap_or("").len())],
                    &i["created"].as_str().unwrap_or("")
                        [..10.min(i["created"].as_str().unwrap_or("").len())],
                    i["member"].as_str().unwrap_or(""),
                    i["kind"].as_str().unwrap_or(""),
                    i["status"].as_str().unwrap_or(""),
                    title
                );
                if let Some(s) = i["snippet"].as_str().filter(|s| !s.is_empty()) {
                    println!("      {}", strip_tags(s).replace('\n', " "));
                }
            }
        }
        other => bail!("--format {other:?}: expected table, json or csv"),
    }
    Ok(())
}

/// What the node says about how it read the query: a correction, approximate matching, terms
/// searched in other languages, directions and members matched.
fn reading_lines(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let r = &v["reading"];
    if let Some(d) = r["showing_for"].as_str() {
        out.push(format!(
            "Showing results for the corrected query: {d} (add --as-typed to search the words as typed)"
        ));
    } else if let Some(d) = v["did_you_mean"].as_str() {
        out.push(format!("Did you mean: {d}"));
    }
    if r["no_words"].as_bool() == Some(true) {
        out.push(
            "The query has no letters or digits to search for; every record that passes the filters is listed".into(),
        );
    }
    if r["long_words"].as_bool() == Some(true) {
        out.push(
            "A word of the query is 64 bytes or longer (a hash or an id, not a word of any text): no record matches; `accord show` opens a record by its id".into(),
        );
    }
    if r["approximate"].as_bool() == Some(true) {
        out.push("(few exact matches: similar spellings and word beginnings included, ranked after them)".into());
    }
    let list = |k: &str| -> Vec<String> {
        r[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let also = list("also");
    if !also.is_empty() {
        out.push(format!("Also searched: {}", also.join(", ")));
    }
    let dirs = list("directions");
    if !dirs.is_empty() {
        out.push(format!(
            "Including the {}: {}",
            if dirs.len() == 1 {
                "direction"
            } else {
                "directions"
            },
            dirs.join(", ")
        ));
    }
    let members = list("members");
    if !members.is_empty() {
        out.push(format!(
            "Including the records of {}: {}",
            if members.len() == 1 {
                "the member"
            } else {
                "the members"
            },
            members.join(", ")
        ));
    }
    out
}

pub async fn show(node: &str, id: &str) -> Result<()> {
    let mut v = get(node, &format!("/v1/records/{id}"), &[]).await?;
    printable(&mut v);
    let lang = v["lang"].as_str().unwrap_or("");
    println!("{}", v["title"][lang].as_str().unwrap_or(""));
    println!("id        {}", v["id"].as_str().unwrap_or(""));
    println!(
        "member    {}   kind {}   directions {}",
        v["member"].as_str().unwrap_or(""),
        v["kind"].as_str().unwrap_or(""),
        v["directions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "created   {}   status {}",
        v["created"].as_str().unwrap_or(""),
        v["status"].as_str().unwrap_or("")
    );
    if let Some(d) = v["date"].as_str() {
        println!("document  {d}");
    }
    if let Some(m) = v["title"].as_object() {
        println!(
            "languages {}",
            m.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(tags) = v["tags"].as_array().filter(|t| !t.is_empty()) {
        let tags: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
        println!("tags      {}", tags.join(", "));
    }
    if let Some(files) = v["attachments"].as_array().filter(|a| !a.is_empty()) {
        println!("attachments");
        for f in files {
            let url = f["url"]
                .as_str()
                .map(|u| format!("{}{u}", node.trim_end_matches('/')))
                .unwrap_or_default();
            println!(
                "  {}  {}  {} bytes  {}  {}",
                f["name"].as_str().unwrap_or(""),
                f["media_type"].as_str().unwrap_or(""),
                f["size"],
                f["availability"].as_str().unwrap_or(""),
                url
            );
        }
    }
    let p = &v["provenance"];
    println!("provenance");
    println!("  signature valid   {}", p["signature_valid"]);
    println!("  signed by         {}", p["signer"].as_str().unwrap_or(""));
    if p["delegation"].is_object() {
        let d = &p["delegation"];
        println!(
            "  publisher         {} (delegation {})",
            d["publisher"].as_str().unwrap_or(""),
            d["id"].as_str().unwrap_or("")
        );
        println!(
            "  delegated by      {} from {} until {}",
            d["signed_by"].as_str().unwrap_or(""),
            d["not_before"].as_str().unwrap_or(""),
            d["not_after"].as_str().unwrap_or("(open)")
        );
        if let Some(problem) = d["problem"].as_str() {
            println!("  problem           {problem}");
        }
    }
    println!(
        "  member root key   {}",
        p["member_root_key"].as_str().unwrap_or("")
    );
    println!(
        "  charter           {} version {} (federation {})",
        p["charter"]["name"].as_str().unwrap_or(""),
        p["charter"]["version"],
        p["charter"]["federation"].as_str().unwrap_or("")
    );
    let got = &p["received"];
    if got.is_object() {
        let from = match got["source"].as_str().unwrap_or("") {
            "peer" => match got["member"].as_str() {
                Some(m) => format!(
                    "from {m}'s node{} {}",
                    got["node_label"]
                        .as_str()
                        .map(|l| format!(" ({l})"))
                        .unwrap_or_default(),
                    got["peer"].as_str().unwrap_or("")
                ),
                None => format!(
                    "from peer {} (no member certifies it)",
                    got["peer"].as_str().unwrap_or("")
                ),
            },
            "local" => "published through this node".to_string(),
            "import" => "from a backup".to_string(),
            "preload" => "from the node's configured files".to_string(),
            other => other.to_string(),
        };
        println!(
            "  received here     {} {from}",
            got["at"].as_str().unwrap_or("")
        );
    }
    for r in v["history"]["retracted_by"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "retracted by {}: {}",
            r["id"].as_str().unwrap_or(""),
            r["reason"].as_str().unwrap_or("")
        );
    }
    for s in v["history"]["superseded_by"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!("superseded by {}", s.as_str().unwrap_or(""));
    }
    // Every language version, the original first.
    let mut langs: Vec<&str> = vec![lang];
    if let Some(m) = v["title"].as_object() {
        langs.extend(m.keys().map(String::as_str).filter(|l| *l != lang));
    }
    for (n, l) in langs.iter().enumerate() {
        println!();
        let tag = if n == 0 { "original" } else { "translation" };
        println!("── {l} ({tag}) ──");
        if n > 0
            && let Some(t) = v["title"][*l].as_str()
        {
            println!("{t}");
        }
        if let Some(s) = v["summary"][*l].as_str().filter(|s| !s.is_empty()) {
            println!("{s}");
            println!();
        }
        println!(
            "{}",
            v["body"][*l]
                .as_str()
                .unwrap_or("(no body in this language)")
        );
    }
    Ok(())
}

pub async fn follow(node: &str, text: Option<&str>, f: &StreamFilters) -> Result<()> {
    use futures::StreamExt;
    let url = format!("{}/v1/stream", node.trim_end_matches('/'));
    // No overall timeout: the stream lasts until Ctrl-C (a 30-s one cut it then).
    let resp = crate::node_cmd::client_with_timeout(None)?
        .get(&url)
        .query(&f.params(text))
        .send()
        .await
        .map_err(crate::node_cmd::unreachable(node))?;
    if !resp.status().is_success() {
        let v: Value = resp.json().await.unwrap_or_default();
        bail!("{}", v["error"].as_str().unwrap_or("error"));
    }
    eprintln!("following new records (Ctrl-C to stop)…");
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(
            &chunk.context("stream interrupted")?,
        ));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            for line in event.lines() {
                if let Some(data) = line.strip_prefix("data:")
                    && let Ok(mut i) = serde_json::from_str::<Value>(data.trim())
                {
                    printable(&mut i);
                    println!(
                        "{}  {}  {}  {}  {}",
                        i["created"].as_str().unwrap_or(""),
                        i["member"].as_str().unwrap_or(""),
                        i["kind"].as_str().unwrap_or(""),
                        i["id"].as_str().unwrap_or(""),
                        i["title"].as_str().unwrap_or("")
                    );
                    std::io::stdout().flush().ok();
                }
            }
        }
    }
    Ok(())
}

/// The raw CBOR a node answers at `path`; an error names the path and the node's reason.
pub(crate) async fn get_bytes(node: &str, path: &str) -> Result<Vec<u8>> {
    let url = format!("{}{path}", node.trim_end_matches('/'));
    let resp = client()?
        .get(&url)
        .header("accept", "application/cbor")
        .send()
        .await
        .map_err(crate::node_cmd::unreachable(node))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_default();
        bail!(
            "{path}: {status}: {}",
            v["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(resp.bytes().await?.to_vec())
}

/// Exports what a search finds. The file is written whole or not at all
/// ([`crate::util::AtomicFile`]): an export that fails half-way leaves what was at `out`. The
/// search is paged by time, oldest first (see the loop), so any number of records is exported
/// and a record leaving the result meanwhile shifts nothing.
pub async fn export(
    node: &str,
    text: Option<&str>,
    f: &Filters,
    format: &str,
    out: &Path,
    bom: bool,
    delimiter: char,
) -> Result<()> {
    if !matches!(format, "jsonl" | "csv" | "cbor") {
        bail!("--format {format:?}: expected jsonl, csv or cbor");
    }
    crate::util::refuse_to_replace_key(out)?;
    let mut file = crate::util::AtomicFile::create(out, 0o644)?;
    let mut csv_items: Vec<Value> = Vec::new();
    // A CBOR export is self-contained: the charters, delegations and node certificates come
    // first and the revocations last (the node's own export order), so that `accord verify
    // FILE --charter CHARTER` checks every record with nothing else.
    if format == "cbor" {
        file.write_all(&get_bytes(node, "/v1/export?types=charter,delegation,node").await?)?;
    }
    let mut retractions: Vec<String> = Vec::new();
    // Paged by time, oldest first: each request asks from the last record's time on (`since`,
    // inclusive), so that a record removed from the result during the export (retracted,
    // replaced) shifts nothing; the ids already written at that time are skipped. Only when a
    // whole page shares one time (many records of one millisecond) does the next request go
    // deeper into it, by offset.
    let mut window: Option<String> = f.since.clone();
    let mut deeper = 0usize;
    let mut last_created: Option<String> = None;
    let mut at_last: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut n = 0u64;
    loop {
        let mut params = f.params(text);
        if let Some(w) = &window {
            params.retain(|(k, _)| k != "since");
            params.push(("since".into(), w.clone()));
        }
        params.push(("limit".into(), "100".into()));
        params.push(("sort".into(), "oldest".into()));
        if deeper > 0 {
            params.push(("cursor".into(), format!("o{deeper}")));
        }
        let v = get(node, "/v1/records", &params).await?;
        let items = v["items"].as_array().cloned().unwrap_or_default();
        for i in &items {
            let id = i["id"].as_str().ok_or_else(|| anyhow!("item without id"))?;
            let created = i["created"].as_str().unwrap_or_default();
            if last_created.as_deref() == Some(created) {
                if !at_last.insert(id.to_string()) {
                    // Written from the request before.
                    continue;
                }
            } else {
                last_created = Some(created.to_string());
                at_last.clear();
                at_last.insert(id.to_string());
            }
            match format {
                "jsonl" => {
                    let full = get(node, &format!("/v1/records/{id}"), &[]).await?;
                    writeln!(file, "{}", serde_json::to_string(&full)?)?;
                }
                "csv" => csv_items.push(i.clone()),
                _ => {
                    file.write_all(&get_bytes(node, &format!("/v1/objects/{id}")).await?)?;
                    if i["status"].as_str() == Some("retracted") {
                        let full = get(node, &format!("/v1/records/{id}"), &[]).await?;
                        retractions.extend(
                            full["history"]["retracted_by"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|r| r["id"].as_str().map(str::to_string)),
                        );
                    }
                }
            }
            n += 1;
        }
        let more = v["next_cursor"].is_string() || v["cut"] == true;
        if items.is_empty() || !more {
            break;
        }
        // Every item of this page at the window's own time: no progress in time, so deeper.
        let first = items.first().and_then(|i| i["created"].as_str());
        let last = items.last().and_then(|i| i["created"].as_str());
        if first.is_some() && first == last && window.as_deref() == last {
            deeper += items.len();
            if deeper > accord_search::MAX_OFFSET {
                bail!(
                    "more than {} records were created at {}: the node pages no deeper, \
                     and this export cannot go past them",
                    accord_search::MAX_OFFSET,
                    last.unwrap_or_default()
                );
            }
        } else {
            window = last.map(str::to_string);
            deeper = 0;
        }
    }
    if format == "csv" {
        write_csv(&mut file, &csv_items, node, bom, delimiter)?;
    }
    if format == "cbor" {
        for rid in &retractions {
            file.write_all(&get_bytes(node, &format!("/v1/objects/{rid}")).await?)?;
        }
        file.write_all(&get_bytes(node, "/v1/export?types=revocation").await?)?;
    }
    file.commit()?;
    eprintln!(
        "exported {} to {}",
        crate::util::count(n, "record", "records"),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--until 2026-01-31` keeps the 31st (as `--date-to` and the web page's "to" do); a
    /// time is the first instant left out.
    #[test]
    fn until_a_date_counts_the_whole_day() {
        assert_eq!(until_param("2026-01-31"), "2026-02-01T00:00:00.000Z");
        assert_eq!(until_param("2026-01-31T12:00:00Z"), "2026-01-31T12:00:00Z");
        assert_eq!(until_param("tomorrow"), "tomorrow");
    }

    #[test]
    fn the_table_says_how_the_query_was_read() {
        let v = serde_json::json!({
            "did_you_mean": "кибербезопасность",
            "reading": {"approximate": true, "also": ["cybersecurity"], "directions": ["digital-space-security"], "members": ["BY"]}
        });
        let lines = reading_lines(&v);
        assert_eq!(lines[4], "Including the records of the member: BY");
        assert_eq!(lines[0], "Did you mean: кибербезопасность");
        assert!(lines[1].contains("similar spellings"));
        assert_eq!(lines[2], "Also searched: cybersecurity");
        assert_eq!(lines[3], "Including the direction: digital-space-security");
        let shown = serde_json::json!({
            "did_you_mean": "кибербезопасность",
            "reading": {"showing_for": "кибербезопасность", "also": [], "directions": []}
        });
        assert_eq!(
            reading_lines(&shown),
            vec![
                "Showing results for the corrected query: кибербезопасность (add --as-typed to search the words as typed)"
            ]
        );
        let plain = serde_json::json!({"did_you_mean": null, "reading": {"approximate": false, "also": [], "directions": []}});
        assert!(reading_lines(&plain).is_empty());
        let emoji =
            serde_json::json!({"reading": {"no_words": true, "also": [], "directions": []}});
        assert_eq!(
            reading_lines(&emoji),
            vec![
                "The query has no letters or digits to search for; every record that passes the filters is listed"
            ]
        );
        let hash =
            serde_json::json!({"reading": {"long_words": true, "also": [], "directions": []}});
        assert!(reading_lines(&hash)[0].starts_with("A word of the query is 64 bytes or longer"));
    }
}
