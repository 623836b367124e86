//! `accord evidence verify`: checks divergence evidence bundles offline (docs/PROTOCOL.md §11).

use std::path::{Path, PathBuf};

use accord_core::health::{SignedHeartbeat, open_evidence};
use accord_core::{Limits, TrustView, Verdict, validate};
use anyhow::{Result, anyhow, bail};

use crate::util;

/// The trust view of `charter` with the trust objects of the `with` files (export files or
/// single objects, in any order) applied.
fn trust_with(charter: &Path, with: &[PathBuf]) -> Result<TrustView> {
    let (mut trust, _) = util::load_charter(charter)?;
    let mut todo: Vec<Vec<u8>> = Vec::new();
    for p in with {
        let data = util::read(p)?;
        for part in util::split_objects(&data).map_err(|e| anyhow!("{}: {e}", p.display()))? {
            todo.push(part.to_vec());
        }
    }
    // Objects may come in any order: retry what waits while the view grows.
    loop {
        let before = todo.len();
        todo.retain(|b| match validate(b, &trust, util::now()) {
            Verdict::Accepted(v) => {
                trust.apply(&v);
                false
            }
            Verdict::Pending(_) => true,
            Verdict::Rejected(_) => false,
        });
        if todo.len() == before {
            return Ok(trust);
        }
    }
}

fn describe(h: &SignedHeartbeat) -> String {
    let hb = h.heartbeat();
    format!(
        "issued {}  {}  charter v{}  checkpoint: {} objects before {} ({})",
        hb.issued,
        hb.software,
        hb.charter_version,
        hb.checkpoint.count,
        hb.checkpoint.watermark,
        &hb.checkpoint.fingerprint.to_string()[..16]
    )
}

/// Verifies each bundle in `files` (single bundles or CBOR sequences of them, as
/// `GET /v1/health/evidence` serves them): the observer's signature, each heartbeat's
/// signature by the subject, and that the heartbeats say what the bundle's kind claims. With a
/// charter, also that both keys held node certificates of the members they name when they
/// signed.
pub fn verify(files: &[PathBuf], charter: Option<&Path>, with: &[PathBuf]) -> Result<()> {
    let trust = charter.map(|c| trust_with(c, with)).transpose()?;
    let scan = Limits::default().scan();
    let mut failures = 0;
    for p in files {
        let data = util::read(p)?;
        let parts = accord_core::cbor::split_sequence(&data, scan)
            .map_err(|e| anyhow!("{}: {e}", p.display()))?;
        if parts.is_empty() {
            bail!("{}: no evidence bundle in the file", p.display());
        }
        for (i, part) in parts.iter().enumerate() {
            let name = format!("{}#{}", p.display(), i + 1);
            let (e, hbs) = match open_evidence(part) {
                Ok(x) => x,
                Err(err) => {
                    failures += 1;
                    eprintln!("{name}: invalid: {err}");
                    continue;
                }
            };
            let mut problems: Vec<String> = Vec::new();
            match e.kind.as_str() {
                "equivocation" => {
                    let proven = hbs.len() == 2
                        && hbs[0].heartbeat().issued == hbs[1].heartbeat().issued
                        && hbs[0].bytes() != hbs[1].bytes();
                    if !proven {
                        problems.push(
                            "the heartbeats are not two different ones signed for the same time"
                                .into(),
                        );
                    }
                }
                "divergent" => match (hbs.last(), e.observed) {
                    (Some(last), Some(obs)) => {
                        let c = last.heartbeat().checkpoint;
                        if c.watermark != obs.watermark || c.count <= obs.count {
                            problems.push("the last heartbeat does not claim more than the observer held at its watermark".into());
                        }
                        if e.reconciled_at.is_none_or(|r| last.heartbeat().issued <= r) {
                            problems.push("the last heartbeat was not signed after the observer's reconciliation".into());
                        }
                    }
                    _ => problems.push("no heartbeat or no observed checkpoint".into()),
                },
                other => problems.push(format!("unknown kind {other:?}")),
            }
            if let Some(trust) = &trust {
                if trust.federation() != e.federation {
                    problems.push(format!(
                        "for federation {}, not this charter's",
                        e.federation
                    ));
                }
                let certified = |key, member: &str, at| {
                    trust
                        .node_member(key, at)
                        .is_some_and(|n| n.cert.member.as_str() == member)
                };
                if !certified(&e.observer, &e.observer_member, e.created) {
                    problems.push(format!("the observer {} held no node certificate of {} then (pass its certificate with --with)", e.observer, e.observer_member));
                }
                for h in &hbs {
                    if !certified(&e.subject, &h.heartbeat().member, h.heartbeat().issued) {
                        problems.push(format!("the subject {} held no node certificate of {} at {} (pass it with --with)", e.subject, h.heartbeat().member, h.heartbeat().issued));
                    }
                }
            }
            if problems.is_empty() {
                println!(
                    "valid  {}  subject={} {}  observer={} {}  created={}  file={name}",
                    e.kind, e.subject_member, e.subject, e.observer_member, e.observer, e.created
                );
                for (n, h) in hbs.iter().enumerate() {
                    println!("  heartbeat {}: {}", n + 1, describe(h));
                }
                if let Some(o) = e.observed {
                    println!(
                        "  observer held: {} objects before {}",
                        o.count, o.watermark
                    );
                }
                println!("  {}", e.explanation);
                if trust.is_none() {
                    println!(
                        "  (signatures checked; pass --charter to check the keys' certificates too)"
                    );
                }
            } else {
                failures += 1;
                eprintln!("{name}: not valid evidence: {}", problems.join("; "));
            }
        }
    }
    if failures > 0 {
        bail!(
            "{} failed verification",
            crate::util::count(failures as u64, "bundle", "bundles")
        );
    }
    Ok(())
}
