//! `accord charter new|amend|sign|show`: founding a federation and changing its rules.

use std::collections::BTreeMap;
use std::path::Path;

use accord_core::{
    Charter, Limits, MemberCode, MemberEntry, Object, ObjectType, SignedObject, Taxonomy,
    Timestamp, TrustView,
};
use anyhow::{Context, Result, anyhow, bail};

use crate::util;

/// Parses `CODE=NAME=PUBKEY`.
fn parse_member(s: &str) -> Result<MemberEntry> {
    let mut parts = s.splitn(3, '=');
    let (Some(code), Some(name), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        bail!(
            "--member {s:?}: expected CODE=NAME=PUBKEY, e.g. KZ=Republic of Kazakhstan=ed25519:…"
        );
    };
    let code = MemberCode::try_from(code.trim().to_string())
        .map_err(|e| anyhow!("--member {s:?}: {e}"))?;
    if name.trim().is_empty() {
        bail!("--member {s:?}: the name is empty");
    }
    let root_key = util::public_key_arg(key.trim()).with_context(|| format!("--member {s:?}"))?;
    Ok(MemberEntry {
        code,
        name: BTreeMap::from([("en".to_string(), name.trim().to_string())]),
        root_key,
    })
}

/// A warning when two groups of members that share no one could each reach the threshold: they
/// could then adopt two different next versions, and the federation would split in two, each
/// node keeping the one it saw first.
fn split_warning(c: &Charter) -> Option<String> {
    let n = c.members.len() as u64;
    (c.threshold.saturating_mul(2) <= n).then(|| {
        format!(
            "warning: a threshold of {} of {n} members is at most half: two groups of members that share no one could each sign a different version {}, and the federation would split between them; a threshold above half ({}) rules that out",
            c.threshold,
            c.version + 1,
            n / 2 + 1
        )
    })
}

pub fn new(
    name: &str,
    members: &[String],
    threshold: u64,
    taxonomy: Option<&Path>,
    created: Option<Timestamp>,
    out: &Path,
    force: bool,
) -> Result<()> {
    refuse_to_replace(out, force, "a draft or a signed charter")?;
    let members = members
        .iter()
        .map(|m| parse_member(m))
        .collect::<Result<Vec<_>>>()?;
    let taxonomy = match taxonomy {
        Some(p) => Taxonomy::from_toml(&util::read_text(p)?)
            .map_err(|e| anyhow!("taxonomy {}: {e}", p.display()))?,
        None => Taxonomy::cis_default(),
    };
    let charter = Charter {
        object_type: ObjectType::Charter,
        federation: None,
        created: created.unwrap_or_else(util::now),
        name: name.to_string(),
        version: 1,
        previous: None,
        members,
        threshold,
        taxonomy,
        // A new federation adopts the refusal rules of this release (PROTOCOL.md §10).
        limits: Limits {
            rules: accord_core::object::RULES_1_3,
            ..Limits::default()
        },
    };
    TrustView::check_charter(&charter).map_err(|e| anyhow!("{e}"))?;
    if let Some(w) = split_warning(&charter) {
        eprintln!("{w}");
    }
    let draft = SignedObject::unsigned(Object::Charter(charter.clone()).encode_body());
    util::write_file(out, draft.as_bytes(), 0o644)?;
    println!("federation id: {}", draft.id());
    eprintln!(
        "wrote the unsigned charter {}; each founding member now runs:\n  accord charter sign {} --key ROOT_KEY_FILE",
        out.display(),
        out.display()
    );
    for m in &charter.members {
        eprintln!("  needed: {} ({})", m.code, m.root_key);
    }
    Ok(())
}

/// What `accord charter amend` changes.
#[derive(Debug, Default)]
pub struct Changes {
    pub add_members: Vec<String>,
    pub remove_members: Vec<String>,
    pub replace_roots: Vec<String>,
    pub threshold: Option<u64>,
    pub rules: Option<u64>,
    pub name: Option<String>,
    /// The whole taxonomy of the amended charter (it may only add codes and names).
    pub taxonomy: Option<Taxonomy>,
}

/// The charter in force at the node `node` (its current version, as signed).
pub async fn current_from_node(node: &str) -> Result<Vec<u8>> {
    let f = crate::node_cmd::get_json(node, "/v1/federation", &[]).await?;
    let id = f["charter_id"]
        .as_str()
        .ok_or_else(|| anyhow!("{node}/v1/federation: no charter_id in the answer"))?;
    crate::query_cmd::get_bytes(node, &format!("/v1/objects/{id}")).await
}

/// Refuses to amend `given` (from `origin`) when the node `node` has another charter in force.
pub fn same_charter(given: &[u8], origin: &str, in_force: &[u8], node: &str) -> Result<()> {
    let (given_signed, given) = decode_charter(given, origin)?;
    let (force_signed, force) = decode_charter(in_force, node)?;
    if given_signed.id() != force_signed.id() {
        bail!(
            "{origin} is version {} of the charter, and {node} has version {} in force: an amendment amends the charter in force (leave out --from to draft from the node's)",
            given.version,
            force.version
        );
    }
    Ok(())
}

/// Refuses to write `out` over an existing file unless `force`.
fn refuse_to_replace(out: &Path, force: bool, what: &str) -> Result<()> {
    if out.exists() && !force {
        bail!(
            "{} already exists ({what}); refusing to replace it (use --force)",
            out.display()
        );
    }
    Ok(())
}

/// Drafts the next version of the charter `current` (the federation's charter in force, as a
/// signed object): `previous` names it, `federation` stays, the changes asked are applied and
/// the result checked as every node will check it (but for the signatures, which come next).
pub fn amend(
    current: &[u8],
    from: &str,
    changes: &Changes,
    created: Option<Timestamp>,
    out: &Path,
    force: bool,
) -> Result<()> {
    refuse_to_replace(out, force, "a draft or a signed charter")?;
    let (signed, cur) = decode_charter(current, from)?;
    let mut next = cur.clone();
    next.version = cur.version + 1;
    next.previous = Some(signed.id());
    next.federation = Some(cur.federation.unwrap_or(signed.id()));
    next.created = created.unwrap_or_else(util::now);
    if next.created < cur.created {
        bail!(
            "--created {}: an amendment cannot be older than the charter it amends ({})",
            next.created,
            cur.created
        );
    }
    let mut new_keys = Vec::new();
    for m in &changes.add_members {
        let entry = parse_member(m)?;
        if next.members.iter().any(|x| x.code == entry.code) {
            bail!("--add-member {m:?}: {} is already a member", entry.code);
        }
        new_keys.push((entry.code.clone(), entry.root_key));
        next.members.push(entry);
    }
    for code in &changes.remove_members {
        let before = next.members.len();
        next.members.retain(|x| x.code.as_str() != code.trim());
        if next.members.len() == before {
            bail!("--remove-member {code:?}: not a member of {from}");
        }
    }
    for r in &changes.replace_roots {
        let Some((code, key)) = r.split_once('=') else {
            bail!("--replace-root {r:?}: expected CODE=PUBKEY, e.g. KZ=ed25519:…");
        };
        let key =
            util::public_key_arg(key.trim()).with_context(|| format!("--replace-root {r:?}"))?;
        let Some(m) = next
            .members
            .iter_mut()
            .find(|x| x.code.as_str() == code.trim())
        else {
            bail!("--replace-root {r:?}: {} is not a member", code.trim());
        };
        if m.root_key == key {
            bail!(
                "--replace-root {r:?}: that is already {}'s root key",
                m.code
            );
        }
        m.root_key = key;
        new_keys.push((m.code.clone(), key));
    }
    if let Some(t) = changes.threshold {
        next.threshold = t;
    }
    if let Some(r) = changes.rules {
        next.limits.rules = r;
    }
    if let Some(n) = &changes.name {
        next.name = n.clone();
    }
    if let Some(t) = &changes.taxonomy {
        next.taxonomy = t.clone();
    }
    let unchanged = Charter {
        created: cur.created,
        version: cur.version,
        previous: cur.previous,
        federation: cur.federation,
        ..next.clone()
    } == cur;
    if unchanged {
        bail!(
            "no change asked: give --add-member, --remove-member, --replace-root, --threshold, --rules, --taxonomy or --name"
        );
    }
    TrustView::check_charter(&next).map_err(|e| anyhow!("the amended charter: {e}"))?;
    if let Some(w) = split_warning(&next) {
        eprintln!("{w}");
    }
    next.taxonomy
        .check_extends(&cur.taxonomy)
        .map_err(|e| anyhow!("the amended charter: {e}"))?;
    let draft = SignedObject::unsigned(Object::Charter(next.clone()).encode_body());
    util::write_file(out, draft.as_bytes(), 0o644)?;
    println!("amendment id: {}", draft.id());
    eprintln!(
        "wrote the unsigned amendment {} (version {} of {}); it takes the signatures of {} of these {} root keys of version {}:",
        out.display(),
        next.version,
        cur.name,
        cur.threshold,
        cur.members.len(),
        cur.version
    );
    for m in &cur.members {
        eprintln!("  {} ({})", m.code, m.root_key);
    }
    if !new_keys.is_empty() {
        eprintln!("and of every root key it brings in:");
        for (code, key) in &new_keys {
            eprintln!("  {code} ({key})");
        }
    }
    eprintln!(
        "each signer runs `accord charter sign {} --key ROOT_KEY_FILE`; then `accord submit {}` sends it to the federation",
        out.display(),
        out.display()
    );
    Ok(())
}

fn decode_charter(bytes: &[u8], from: &str) -> Result<(SignedObject, Charter)> {
    let limits = Limits::default();
    let signed = SignedObject::decode_draft(bytes, limits.max_bytes(), limits.scan())
        .map_err(|e| anyhow!("{from}: {e}"))?;
    match Object::decode_body(signed.body(), &limits).map_err(|e| anyhow!("{from}: {e}"))? {
        Object::Charter(c) => Ok((signed, c)),
        other => bail!("{from} is a {}, not a charter", other.object_type()),
    }
}

fn load_draft(file: &Path) -> Result<(SignedObject, Charter)> {
    let bytes = util::read(file)?;
    decode_charter(&bytes, &file.display().to_string())
}

pub fn sign(file: &Path, key: &Path) -> Result<()> {
    let (mut signed, charter) = load_draft(file)?;
    let key = util::load_secret_key(key)?;
    let pk = key.public_key();
    let Some(member) = charter.member_by_root(&pk) else {
        bail!("{pk} is not the root key of any member of this charter");
    };
    if !signed.add_signature(&key) {
        bail!("{} has already signed {}", member.code, file.display());
    }
    util::write_file(file, signed.as_bytes(), 0o644)?;
    println!("signed {} as {}", file.display(), member.code);
    print_signatures(&signed, &charter);
    Ok(())
}

fn print_signatures(signed: &SignedObject, charter: &Charter) -> bool {
    let bad = signed.bad_signers();
    let mut complete = true;
    for m in &charter.members {
        let state = if bad.contains(&m.root_key) {
            complete = false;
            "INVALID signature"
        } else if signed.signatures().iter().any(|(k, _)| *k == m.root_key) {
            "signed"
        } else {
            complete = false;
            "missing"
        };
        println!("  {}  {:<18} {}", m.code, state, m.root_key);
    }
    for (k, _) in signed.signatures() {
        if charter.member_by_root(k).is_none() {
            complete = false;
            println!("  ??  signature by a key outside the charter: {k}");
        }
    }
    complete
}

pub fn show(file: &Path) -> Result<()> {
    let (signed, c) = load_draft(file)?;
    println!("name:        {}", c.name);
    println!("version:     {}", c.version);
    if c.version == 1 {
        println!("federation:  {} (this charter's id)", signed.id());
    } else {
        println!("id:          {}", signed.id());
        println!(
            "federation:  {}",
            c.federation.map(|f| f.to_string()).unwrap_or_default()
        );
    }
    println!("created:     {}", c.created);
    println!(
        "threshold:   {} of {} members to amend",
        c.threshold,
        c.members.len()
    );
    println!(
        "taxonomy:    {} directions, {} kinds (the codes a record names)",
        c.taxonomy.directions.len(),
        c.taxonomy.kinds.len()
    );
    let name = |e: &accord_core::taxonomy::TaxonEntry| {
        let en = e.names.get("en").cloned().unwrap_or_default();
        match e.names.get("ru") {
            Some(ru) if !en.is_empty() => format!("{en} / {ru}"),
            Some(ru) => ru.clone(),
            None => en,
        }
    };
    println!("directions:");
    for e in &c.taxonomy.directions {
        println!("  {:<26} {}", e.code, name(e));
    }
    println!("kinds:");
    for e in &c.taxonomy.kinds {
        println!("  {:<26} {}", e.code, name(e));
    }
    println!(
        "rules:       protocol 1.{} refusals{}",
        c.limits.rules,
        if c.limits.rules < accord_core::object::RULES_1_3 {
            " (`accord charter amend --rules 3` adopts the 1.3 rules, once every member runs 1.3)"
        } else {
            ""
        }
    );
    println!("members and signatures:");
    let complete = print_signatures(&signed, &c);
    // The status is also the exit status, so that scripts can wait for a complete charter.
    if c.version == 1 {
        match TrustView::from_genesis(signed.as_bytes()) {
            Ok(_) => println!("status:      complete and valid genesis charter"),
            Err(e) if complete => {
                println!("status:      not valid: {e}");
                bail!("{}: the charter is not valid: {e}", file.display());
            }
            Err(_) => {
                println!("status:      incomplete: every founding member must sign");
                bail!(
                    "{}: the charter is incomplete: every founding member must sign it",
                    file.display()
                );
            }
        }
    } else {
        println!(
            "status:      amendment version {}: it takes the signatures of the threshold of version {}'s members and of every root key it brings in; `accord verify {} --charter GENESIS --with EARLIER_AMENDMENTS` says whether it has them",
            c.version,
            c.version - 1,
            file.display()
        );
    }
    if c.version > 1 && !signed.bad_signers().is_empty() {
        bail!(
            "{}: the amendment carries an invalid signature",
            file.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_of_half_or_less_is_warned_about() {
        let charter = |threshold: u64, n: u8| Charter {
            object_type: ObjectType::Charter,
            federation: None,
            created: Timestamp(0),
            name: "F".into(),
            version: 1,
            previous: None,
            members: (0..n)
                .map(|i| MemberEntry {
                    code: format!("A{}", (b'A' + i) as char).try_into().expect("code"),
                    name: BTreeMap::new(),
                    root_key: accord_core::SecretKey::from_seed([i; 32]).public_key(),
                })
                .collect(),
            threshold,
            taxonomy: Taxonomy::cis_default(),
            limits: Limits::default(),
        };
        let w = split_warning(&charter(2, 4)).expect("warned");
        assert!(w.contains("2 of 4") && w.contains("above half (3)"), "{w}");
        assert!(split_warning(&charter(1, 2)).is_some());
        assert!(split_warning(&charter(3, 4)).is_none());
        assert!(split_warning(&charter(2, 3)).is_none());
        assert!(split_warning(&charter(1, 1)).is_none());
    }
}
