//! `accord backup`, `accord restore`, `accord check`.

use std::path::Path;

use accord_core::Limits;
use accord_core::cbor;
use accord_node::NodeConfig;
use accord_store::{Store, StoreOptions};
use anyhow::{Context, Result, anyhow, bail};

use crate::util;

/// Downloads a consistent export of a running node (GET /v1/export).
/// The attachments the records among `items` name.
fn attachments_of(
    items: &[&[u8]],
) -> Vec<(accord_core::ObjectId, Vec<accord_core::object::Attachment>)> {
    let limits = Limits::default();
    items
        .iter()
        .filter_map(|b| {
            let signed =
                accord_core::SignedObject::decode_draft(b, limits.max_bytes(), limits.scan())
                    .ok()?;
            match accord_core::Object::decode_body(signed.body(), &limits).ok()? {
                accord_core::Object::Record(r) if !r.attachments.is_empty() => {
                    Some((signed.id(), r.attachments))
                }
                _ => None,
            }
        })
        .collect()
}

pub async fn backup(node: &str, out: &Path, blobs: Option<&Path>) -> Result<()> {
    let url = format!("{}/v1/export", node.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the node at {node}"))?;
    if !resp.status().is_success() {
        bail!("{url}: {}", resp.status());
    }
    let bytes = resp.bytes().await.context("download interrupted")?;
    let n = cbor::split_sequence(&bytes, Limits::default().scan())
        .map_err(|e| anyhow!("the export is damaged: {e}"))?
        .len();
    util::write_file(out, &bytes, 0o600)?;
    println!(
        "backup of {n} objects written to {} ({} bytes)",
        out.display(),
        bytes.len()
    );
    if let Some(dir) = blobs {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let items = cbor::split_sequence(&bytes, Limits::default().scan())
            .map_err(|e| anyhow!("the export is damaged: {e}"))?;
        let (mut saved, mut missing) = (0, 0);
        let mut seen = std::collections::BTreeSet::new();
        for (_, list) in attachments_of(&items) {
            for a in list {
                if !seen.insert(a.sha256) {
                    continue;
                }
                let url = format!("{}/v1/blobs/{}", node.trim_end_matches('/'), a.sha256);
                let resp = reqwest::Client::new().get(&url).send().await?;
                if !resp.status().is_success() {
                    missing += 1;
                    continue;
                }
                let body = resp.bytes().await.context("download interrupted")?;
                let got =
                    accord_core::ObjectId(<sha2::Sha256 as sha2::Digest>::digest(&body).into());
                if got != a.sha256 {
                    bail!("{url}: the file does not match its SHA-256");
                }
                util::write_file(&dir.join(a.sha256.to_string()), &body, 0o600)?;
                saved += 1;
            }
        }
        println!(
            "{saved} attachment files written to {}{}",
            dir.display(),
            if missing > 0 {
                format!(" ({missing} not held by the node)")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// Restores a backup into an empty data directory, validating every object.
pub fn restore(file: &Path, data_dir: &Path, blobs: Option<&Path>) -> Result<()> {
    if data_dir.exists()
        && std::fs::read_dir(data_dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        bail!(
            "{} is not empty: restore only into an empty data directory",
            data_dir.display()
        );
    }
    let data = util::read(file)?;
    let items = cbor::split_sequence(&data, Limits::default().scan())
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let genesis = items
        .first()
        .ok_or_else(|| anyhow!("{} holds no objects", file.display()))?;
    let mut store = Store::open(data_dir, genesis, StoreOptions::default()).map_err(|e| {
        anyhow!(
            "{}: the first object must be the federation's genesis charter: {e}",
            file.display()
        )
    })?;
    let report = store.import(&mut data.as_slice(), util::now())?;
    println!(
        "restored into {}: {} accepted, {} already present, {} pending, {} rejected",
        data_dir.display(),
        report.accepted,
        report.duplicate,
        report.pending,
        report.rejected
    );
    println!("federation {}", store.trust().federation());
    drop(store);
    let (copied, queued) = accord_node::restore_blobs(data_dir, &attachments_of(&items), blobs)?;
    if copied + queued > 0 {
        println!(
            "attachments: {copied} restored from the backup, {queued} to be fetched from peers when the node runs"
        );
    }
    if report.rejected > 0 {
        bail!(
            "{} object(s) of the backup were refused (see the log with RUST_LOG=info)",
            report.rejected
        );
    }
    Ok(())
}

/// Re-verifies a stopped node's store and indexes; `--repair` rebuilds the indexes and the
/// search index.
pub fn check(config: &Path, repair: bool) -> Result<()> {
    let cfg = NodeConfig::load(config, &crate::node_cmd::env_pairs())?;
    let genesis = util::read(&cfg.charter)?;
    let mut store = Store::open(&cfg.data_dir, &genesis, cfg.store.options())
        .map_err(|e| anyhow!("{}: {e}", cfg.data_dir.display()))?;
    let report = if repair {
        store.repair_indexes()?
    } else {
        store.check()?
    };
    println!("objects checked     {}", report.objects);
    println!("bad objects         {}", report.bad_objects.len());
    for (id, why) in &report.bad_objects {
        println!("  {id}: {why}");
    }
    println!("missing index keys  {}", report.missing_entries);
    println!("stray index keys    {}", report.stray_entries);
    println!("unaccounted log     {} bytes", report.unaccounted_log_bytes);
    drop(store);
    let blobs = accord_node::check_blobs(&cfg.data_dir, repair)?;
    println!("attachments checked {}", blobs.checked);
    println!("bad attachments     {}", blobs.bad.len());
    for h in &blobs.bad {
        println!("  {h}: content does not match its SHA-256");
    }
    if repair && !blobs.bad.is_empty() {
        println!(
            "bad attachments removed; {} queued to be fetched again from peers",
            blobs.requeued
        );
    }
    if repair {
        let n = accord_node::reindex(&cfg)?;
        println!("indexes rebuilt; search index rebuilt with {n} records");
        return Ok(());
    }
    if !report.is_clean() || !blobs.bad.is_empty() {
        bail!(
            "the store has problems: run `accord check --config {} --repair` with the node stopped",
            config.display()
        );
    }
    println!("store is consistent");
    Ok(())
}
