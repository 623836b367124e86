//! `accord charter new|amend|sign|show`: founding a federation and changing its rules.

use std::collections::{BTreeMap, BTreeSet};
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
    // The draft is written from the charter as this build reads it: a field a newer release
    // added to the charter would be left out of the next version, and the federation would
    // lose a rule it adopted without anyone asking for it.
    let unknown = unknown_fields(&signed, &cur).map_err(|e| anyhow!("{from}: {e}"))?;
    if !unknown.is_empty() {
        bail!(
            "{from} has fields this build of accord ({}) does not know: {}. An amendment drafted here would leave them out of the next version and drop what they say; a newer release of accord must amend this charter",
            env!("CARGO_PKG_VERSION"),
            unknown.join(", ")
        );
    }
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
        // Rules this release does not implement would be adopted by a charter its own node
        // could not apply; rules older than the charter's would re-admit what the federation
        // chose to refuse.
        if r > accord_core::object::MAX_RULES {
            bail!(
                "--rules {r}: this release of accord ({}) implements the refusal rules up to {}; a newer release must adopt rules {r}",
                env!("CARGO_PKG_VERSION"),
                accord_core::object::MAX_RULES
            );
        }
        if r < cur.limits.rules {
            bail!(
                "--rules {r}: the charter already adopts rules {}; rules are never taken back (objects refused under them would be accepted again by some nodes and not others)",
                cur.limits.rules
            );
        }
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

/// The fields of `signed`'s body that this build does not know, by path (`extra`,
/// `limits.rules2`, `members[].x` for a field in the members' entries), given `charter`, the
/// body as this build decoded it. Serde ignores a key it does not know and
/// [`Object::encode_body`] writes only the known ones, so anything drafted from `charter`
/// would silently lose them.
///
/// When the body is exactly what this build would write there is nothing to find. Otherwise
/// the body's keys are compared with those of its re-encoding, walked as generic CBOR (shown
/// as JSON). A field this build knows but leaves out at its default (`federation`,
/// `previous`, the 1.2 and 1.3 limits) may still be written out in a body; it is not
/// unknown, and dropping it changes nothing, so the keys of a second re-encoding with every
/// such field set are counted as known too. Only the outermost unknown key of a branch is
/// named (`extra`, not also `extra.a`).
fn unknown_fields(signed: &SignedObject, charter: &Charter) -> Result<Vec<String>> {
    let written = Object::Charter(charter.clone()).encode_body();
    if written == signed.body() {
        return Ok(Vec::new());
    }
    let mut full = charter.clone();
    full.federation = Some(signed.id());
    full.previous = Some(signed.id());
    // A value other than the default is always written (any other value would do).
    full.limits.max_attachment_bytes = full.limits.max_attachment_bytes.wrapping_add(1);
    full.limits.max_record_attachment_bytes =
        full.limits.max_record_attachment_bytes.wrapping_add(1);
    full.limits.rules = full.limits.rules.wrapping_add(1);
    let json = |body: &[u8]| {
        accord_core::object::body_json(body).map_err(|e| anyhow!("the charter's body: {e}"))
    };
    let mut known = BTreeSet::new();
    key_paths(&json(&written)?, "", &mut known);
    key_paths(&json(&Object::Charter(full).encode_body())?, "", &mut known);
    let mut given = BTreeSet::new();
    key_paths(&json(signed.body())?, "", &mut given);
    let unknown: Vec<&String> = given.difference(&known).collect();
    Ok(unknown
        .iter()
        .filter(|p| {
            !unknown.iter().any(|a| {
                p.len() > a.len()
                    && p.starts_with(a.as_str())
                    && matches!(p.as_bytes()[a.len()], b'.' | b'[')
            })
        })
        .map(|p| p.to_string())
        .collect())
}

/// Adds to `out` the path of every map key in `v`, below `prefix`: `a.b` for the key `b` of
/// the map under `a`, `a[].b` for the key `b` of a map in the list `a`.
fn key_paths(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                key_paths(x, &path, out);
                out.insert(path);
            }
        }
        serde_json::Value::Array(items) => {
            let path = format!("{prefix}[]");
            for x in items {
                key_paths(x, &path, out);
            }
        }
        _ => {}
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
    if charter.limits.rules > accord_core::object::MAX_RULES {
        eprintln!(
            "warning: {} adopts the refusal rules {}, and this release of accord ({}) implements them up to {}: its own node would have to be upgraded once it is in force",
            file.display(),
            charter.limits.rules,
            env!("CARGO_PKG_VERSION"),
            accord_core::object::MAX_RULES
        );
    }
    // The signature covers the whole body, the fields this build cannot show included.
    let unknown =
        unknown_fields(&signed, &charter).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    if !unknown.is_empty() {
        eprintln!(
            "warning: {} has fields this build of accord ({}) does not know and cannot show: {}; the signature covers them too (a newer release of accord shows them)",
            file.display(),
            env!("CARGO_PKG_VERSION"),
            unknown.join(", ")
        );
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
    let unknown = unknown_fields(&signed, &c).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    if !unknown.is_empty() {
        println!(
            "fields this build does not know: {} (a newer release of accord shows them, and must amend this charter)",
            unknown.join(", ")
        );
    }
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

    /// A first charter of `members`, `threshold` of them to amend it.
    fn genesis_of(members: Vec<MemberEntry>, threshold: u64) -> Charter {
        Charter {
            object_type: ObjectType::Charter,
            federation: None,
            created: Timestamp(0),
            name: "F".into(),
            version: 1,
            previous: None,
            members,
            threshold,
            taxonomy: Taxonomy::cis_default(),
            limits: Limits::default(),
        }
    }

    #[test]
    fn a_threshold_of_half_or_less_is_warned_about() {
        let charter = |threshold: u64, n: u8| {
            let members = (0..n)
                .map(|i| MemberEntry {
                    code: format!("A{}", (b'A' + i) as char).try_into().expect("code"),
                    name: BTreeMap::new(),
                    root_key: accord_core::SecretKey::from_seed([i; 32]).public_key(),
                })
                .collect();
            genesis_of(members, threshold)
        };
        let w = split_warning(&charter(2, 4)).expect("warned");
        assert!(w.contains("2 of 4") && w.contains("above half (3)"), "{w}");
        assert!(split_warning(&charter(1, 2)).is_some());
        assert!(split_warning(&charter(3, 4)).is_none());
        assert!(split_warning(&charter(2, 3)).is_none());
        assert!(split_warning(&charter(1, 1)).is_none());
    }

    /// CBOR text of fewer than 24 bytes.
    fn text(s: &str) -> Vec<u8> {
        assert!(s.len() < 24);
        let mut out = vec![0x60 + s.len() as u8];
        out.extend_from_slice(s.as_bytes());
        out
    }

    /// `body` (a charter's, whose last field is `limits`, a map of fewer than 23 entries) with
    /// `top` added to the body's map and `inner` to `limits`, each a key and its CBOR value.
    fn extended(body: &[u8], inner: &[(&str, &[u8])], top: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = body.to_vec();
        assert!((0xa0..0xb7).contains(&out[0]), "a short map");
        out[0] += top.len() as u8;
        let key = text("limits");
        let at = out
            .windows(key.len())
            .rposition(|w| w == key.as_slice())
            .expect("a limits key")
            + key.len();
        assert!((0xa0..0xb7).contains(&out[at]), "limits is a short map");
        out[at] += inner.len() as u8;
        // `limits` ends the body: what follows it is first its own entries, then the body's.
        for (k, v) in inner.iter().chain(top) {
            out.extend(text(k));
            out.extend_from_slice(v);
        }
        out
    }

    /// A charter with fields of a newer release names them, in the body and in `limits`; one
    /// that writes out a field this build knows at its default (`rules: 2`), or that this build
    /// wrote itself, has none.
    #[test]
    fn fields_this_build_does_not_know_are_named_and_known_defaults_are_not() {
        let root = accord_core::SecretKey::from_seed([7; 32]);
        let charter = genesis_of(
            vec![MemberEntry {
                code: "KZ".to_string().try_into().expect("code"),
                name: BTreeMap::from([("en".to_string(), "Kazakhstan".to_string())]),
                root_key: root.public_key(),
            }],
            1,
        );
        let body = Object::Charter(charter.clone()).encode_body();
        let unknown = |body: Vec<u8>| {
            let signed = SignedObject::sign(body, &root);
            let (_, decoded) = decode_charter(signed.as_bytes(), "test").expect("decodes");
            assert_eq!(decoded, charter, "the known fields read the same");
            unknown_fields(&signed, &decoded).expect("a CBOR body")
        };
        assert!(unknown(body.clone()).is_empty());
        let default_rules: &[u8] = &[accord_core::object::DEFAULT_RULES as u8];
        assert!(unknown(extended(&body, &[("rules", default_rules)], &[])).is_empty());
        let seven: &[u8] = &[0x07];
        let x = text("x");
        let map: &[u8] = &[0xa1, 0x61, b'a', 0x01];
        let newer = extended(
            &body,
            &[("rules", default_rules), ("rules2", seven)],
            &[("extra", x.as_slice()), ("more", map)],
        );
        assert_eq!(unknown(newer), ["extra", "limits.rules2", "more"]);
    }
}
