//! `accord verify` and `accord inspect`.

use std::path::{Path, PathBuf};

use accord_core::object::body_json;
use accord_core::{Limits, Object, SignedObject, Timestamp};
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
    // Trust files and the files to verify are settled together: trust objects among the files
    // count as well, and a retraction or a new edition is checked against the records it names
    // wherever they came from.
    let to_verify = util::read_objects(files)?;
    let reported: std::collections::HashSet<String> =
        to_verify.iter().map(|n| n.name.clone()).collect();
    let mut items = util::read_objects(with)?;
    items.extend(to_verify);
    let mut known = util::Accepted::default();
    let results = util::settle(&mut trust, &mut known, items, now, &describe);
    let mut failures = 0;
    for (name, r) in results {
        match r {
            Ok((_, line)) if reported.contains(&name) => println!("{line}  file={name}"),
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                eprintln!("{name}: {e}");
            }
        }
    }
    if failures > 0 {
        bail!(
            "{} failed verification",
            crate::util::count(failures as u64, "object", "objects")
        );
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
