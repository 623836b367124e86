//! `accord verify` and `accord inspect`.

use std::path::{Path, PathBuf};

use accord_core::object::body_json;
use accord_core::{Limits, Object, SignedObject, Timestamp, Verdict, validate};
use anyhow::{Result, anyhow, bail};

use crate::util;

/// One line describing an accepted object.
fn describe(v: &accord_core::Verified<Object>, trust: &accord_core::TrustView) -> String {
    let o = v.object();
    let mut s = format!("valid  {}  {}", v.id(), o.object_type());
    if let Some(m) = o.member() {
        s.push_str(&format!("  member={m}"));
    }
    s.push_str(&format!("  signer={}", v.signer()));
    match o {
        Object::Record(r) => {
            if let accord_core::trust::PublisherCheck::Ok(d) = trust.check_publisher(
                &r.member,
                &v.signer(),
                r.created,
                Some((&r.kind, &r.directions)),
            ) {
                s.push_str(&format!("  publisher={:?}", d.delegation.name));
            }
            s.push_str(&format!("  title={:?}", r.title_in(&r.lang)));
        }
        Object::Charter(c) => s.push_str(&format!("  version={}  name={:?}", c.version, c.name)),
        Object::Node(n) => s.push_str(&format!("  peer={}", n.node_key.peer_id())),
        Object::Delegation(d) => {
            s.push_str(&format!("  publisher={}  name={:?}", d.publisher, d.name))
        }
        _ => {}
    }
    s.push_str("  status=valid");
    s
}

pub fn verify(
    files: &[PathBuf],
    charter: &Path,
    with: &[PathBuf],
    at: Option<Timestamp>,
) -> Result<()> {
    let (mut trust, _) = util::load_charter(charter)?;
    let now = at.unwrap_or_else(util::now);
    // Trust files first, then the files to verify; trust objects among them count as well.
    let mut items: Vec<(String, Vec<u8>, bool)> = Vec::new();
    for (list, report) in [(with, false), (files, true)] {
        for p in list {
            let data = util::read(p)?;
            let parts = util::split_objects(&data).map_err(|e| anyhow!("{}: {e}", p.display()))?;
            let many = parts.len() > 1;
            for (i, part) in parts.into_iter().enumerate() {
                let name = if many {
                    format!("{}#{}", p.display(), i + 1)
                } else {
                    p.display().to_string()
                };
                items.push((name, part.to_vec(), report));
            }
        }
    }
    let mut failures = 0;
    let mut waiting: Vec<(String, Vec<u8>, bool)> = Vec::new();
    let mut results: Vec<(String, Result<String, String>, bool)> = Vec::new();
    // Validate; retry pending ones while trust keeps growing (objects may come in any order).
    let mut todo = items;
    loop {
        let mut progress = false;
        for (name, bytes, report) in todo.drain(..) {
            match validate(&bytes, &trust, now) {
                Verdict::Accepted(v) => {
                    trust.apply(&v);
                    results.push((name, Ok(describe(&v, &trust)), report));
                    progress = true;
                }
                Verdict::Pending(_) => waiting.push((name, bytes, report)),
                Verdict::Rejected(r) => results.push((name, Err(format!("invalid: {r}")), report)),
            }
        }
        if !progress || waiting.is_empty() {
            break;
        }
        todo = std::mem::take(&mut waiting);
    }
    for (name, bytes, report) in waiting {
        let reason = match validate(&bytes, &trust, now) {
            Verdict::Pending(m) => format!("not verifiable: {m} (pass it with --with FILE)"),
            other => format!("{other:?}"),
        };
        results.push((name, Err(reason), report));
    }
    for (name, r, report) in results {
        match r {
            Ok(line) if report => println!("{line}  file={name}"),
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                eprintln!("{name}: {e}");
            }
        }
    }
    if failures > 0 {
        bail!("{failures} object(s) failed verification");
    }
    Ok(())
}

pub fn inspect(file: &Path) -> Result<()> {
    let data = util::read(file)?;
    let parts = util::split_objects(&data).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let limits = Limits::default();
    let mut out = Vec::new();
    for part in parts {
        let signed = SignedObject::decode_draft(part, limits.max_bytes(), limits.scan())
            .map_err(|e| anyhow!("{}: {e}", file.display()))?;
        let body =
            body_json(signed.body()).map_err(|e| anyhow!("{}: body: {e}", file.display()))?;
        let bad = signed.bad_signers();
        let sigs: Vec<_> = signed
            .signatures()
            .iter()
            .map(|(k, s)| serde_json::json!({"key": k.to_string(), "signature": hex::encode(s.0), "valid": !bad.contains(k)}))
            .collect();
        out.push(serde_json::json!({
            "id": signed.id().to_string(),
            "size": signed.as_bytes().len(),
            "signatures": sigs,
            "body": body,
        }));
    }
    let v = if out.len() == 1 {
        out.remove(0)
    } else {
        serde_json::Value::Array(out)
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
