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
        .map(|b| format!("  \"{b}\","))
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
listen = ["{listen}"]
# Nodes to dial at start: multiaddrs ending in /p2p/<peer id>.
bootstrap = [
{boot}
]
# Only nodes certified by a current member may stay connected.
admission = "members"
mdns = false

[api]
# HTTP API and analyst interface: loopback by default; put a reverse proxy in front to publish it.
listen = "{api}"

[sync]
interval_secs = 30
"#,
        fed = trust.federation(),
        name = trust.charter().name,
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
