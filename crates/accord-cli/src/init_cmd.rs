//! `accord init`: prepares a real node's directory: a fresh node key (0600), the charter, and a
//! commented `node.toml`; prints the peer id and the exact command the member root key holder
//! runs to certify the node.

use std::path::Path;

use accord_core::MemberCode;
use anyhow::{Context, Result, anyhow, bail};

use crate::{keys_cmd, util};

pub fn init(
    charter: &Path,
    member: &str,
    dir: &Path,
    listen: &str,
    api: &str,
    bootstrap: &[String],
) -> Result<()> {
    let (trust, genesis) = util::load_charter(charter)?;
    let code = MemberCode::try_from(member.to_string()).map_err(|e| anyhow!("--member: {e}"))?;
    if trust.charter().member(&code).is_none() {
        bail!(
            "--member: {code} is not a member of federation {}",
            trust.federation()
        );
    }
    listen
        .parse::<accord_node::config::Multiaddr>()
        .map_err(|e| anyhow!("--listen {listen:?}: {e}"))?;
    api.parse::<std::net::SocketAddr>()
        .map_err(|e| anyhow!("--api {api:?}: {e}"))?;
    for b in bootstrap {
        let m: accord_node::config::Multiaddr =
            b.parse().map_err(|e| anyhow!("--bootstrap {b:?}: {e}"))?;
        if !b.contains("/p2p/") {
            bail!("--bootstrap {m}: must end in /p2p/<peer id>");
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config_path = dir.join("node.toml");
    if config_path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a node's configuration",
            config_path.display()
        );
    }
    let key = keys_cmd::random_key()?;
    util::write_secret_key(&dir.join("node.key"), &key, None, false)?;
    util::write_file(&dir.join("charter.cbor"), genesis.as_bytes(), 0o644)?;
    let boot = bootstrap
        .iter()
        .map(|b| format!("  {},", toml_string(b)))
        .collect::<Vec<_>>()
        .join("\n");
    let toml = format!(
        r#"# Accord node configuration for member {code} of federation {fed}
# ("{name}"). Written by `accord init`; every field is described in docs/OPERATIONS.md.
# Paths are relative to this file.

# The genesis charter: this node's trust anchor.
charter = "charter.cbor"
# The member state this node belongs to.
member = "{code}"
# This node's libp2p identity key (PKCS#8 PEM, mode 0600). Keep it secret; back it up.
node_key = "node.key"
# The node certificate signed by the member root key holder (see below how to get it).
node_cert = "node-cert.cbor"
# The store and the search index.
data_dir = "data"
# Object files ingested at start (for instance your ministries' delegations).
preload = []

[network]
# Where other members' nodes reach this one (open this TCP port in the firewall).
listen = [{listen}]
# Nodes to dial at start: multiaddrs ending in /p2p/<peer id>.
bootstrap = [
{boot}
]
# Only nodes certified by a current member may stay connected.
admission = "members"
mdns = false

[api]
# HTTP API and analyst interface: loopback by default; put a reverse proxy in front to publish it.
listen = {api}

[sync]
interval_secs = 30
"#,
        fed = trust.federation(),
        // The charter's name is a signed object's text, not ours: on one line, in a comment.
        name = trust
            .charter()
            .name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>(),
        listen = toml_string(listen),
        api = toml_string(api),
    );
    util::write_file(&config_path, toml.as_bytes(), 0o644)?;
    let pk = key.public_key();
    println!("node directory  {}", dir.display());
    println!("peer id         {}", pk.peer_id());
    println!("node key        {} ({pk})", dir.join("node.key").display());
    println!();
    println!("Next, the holder of {code}'s root key certifies this node (on their own machine):");
    println!(
        "  accord cert node --charter charter.cbor --member {code} --root-key {}-root.key --node-key {pk} --out node-cert.cbor",
        code.as_str().to_lowercase()
    );
    println!(
        "then copy node-cert.cbor to {} and start the node:",
        dir.display()
    );
    println!("  accord run --config {}", config_path.display());
    Ok(())
}

/// A TOML basic string: quoted, with quotes, backslashes and control characters escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_core::{
        Charter, Limits, MemberEntry, Object, ObjectType, SecretKey, SignedObject, Taxonomy,
    };

    /// The charter's name is another party's signed text: a name with line breaks written into
    /// node.toml must not become settings (here: the disk floor turned off).
    #[test]
    fn a_charter_name_cannot_write_settings_into_node_toml() {
        let root = SecretKey::from_seed([7; 32]);
        let charter = Charter {
            object_type: ObjectType::Charter,
            federation: None,
            created: accord_core::Timestamp(1_700_000_000_000),
            name: "X\")\n[store]\nmin_free_mb = 0\n#".into(),
            version: 1,
            previous: None,
            members: vec![MemberEntry {
                code: MemberCode::try_from("KZ".to_string()).unwrap(),
                name: [("en".to_string(), "Kazakhstan".to_string())].into(),
                root_key: root.public_key(),
            }],
            threshold: 1,
            taxonomy: Taxonomy::cis_default(),
            limits: Limits::default(),
        };
        let mut signed = SignedObject::unsigned(Object::Charter(charter).encode_body());
        assert!(signed.add_signature(&root));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("genesis.cbor");
        std::fs::write(&file, signed.as_bytes()).unwrap();
        let node = dir.path().join("node");
        init(
            &file,
            "KZ",
            &node,
            "/ip4/0.0.0.0/tcp/7400",
            "127.0.0.1:7401",
            &[],
        )
        .unwrap();
        let cfg = accord_node::config::NodeConfig::load(&node.join("node.toml"), &[]).unwrap();
        assert_eq!(cfg.store.min_free_mb, 512);
        let text = std::fs::read_to_string(node.join("node.toml")).unwrap();
        assert!(
            text.contains("(\"X\") [store] min_free_mb = 0 #\")"),
            "{text}"
        );
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000Ad\"");
        let v: toml::Value = toml::from_str(&format!("x = {}", toml_string("a\"b\\c\nd"))).unwrap();
        assert_eq!(v["x"].as_str(), Some("a\"b\\c\nd"));
    }
}
