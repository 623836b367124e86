//! `accord charter new|sign|show`: founding a federation.

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

pub fn new(
    name: &str,
    members: &[String],
    threshold: u64,
    taxonomy: Option<&Path>,
    created: Option<Timestamp>,
    out: &Path,
    force: bool,
) -> Result<()> {
    if out.exists() && !force {
        bail!(
            "{} already exists (a draft or a signed charter); refusing to replace it (use --force)",
            out.display()
        );
    }
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

fn load_draft(file: &Path) -> Result<(SignedObject, Charter)> {
    let bytes = util::read(file)?;
    let limits = Limits::default();
    let signed = SignedObject::decode_draft(&bytes, limits.max_bytes(), limits.scan())
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    match Object::decode_body(signed.body(), &limits)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?
    {
        Object::Charter(c) => Ok((signed, c)),
        other => bail!(
            "{} is a {}, not a charter",
            file.display(),
            other.object_type()
        ),
    }
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
            " (amend the charter to adopt the 1.3 rules once every member runs 1.3)"
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
    } else if !signed.bad_signers().is_empty() {
        bail!(
            "{}: the amendment carries an invalid signature",
            file.display()
        );
    }
    Ok(())
}
