//! `accord devnet`: a ready development federation on disk.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use accord_core::devnet::DevFederation;
use anyhow::{Context, Result, bail};

use crate::util;

const DEV_NOTICE: &str = "# DEVELOPMENT KEY written by `accord devnet`: for a local test federation only, never for production.";

/// The peer port of member `i` is `base + 2i`, its HTTP API port `base + 2i + 1`.
pub fn ports(base: u16, i: usize) -> Result<(u16, u16)> {
    let peer = u32::from(base) + 2 * i as u32;
    if peer + 1 > u32::from(u16::MAX) {
        bail!("--base-port {base} leaves no room for {} members", i + 1);
    }
    Ok((peer as u16, peer as u16 + 1))
}

pub fn devnet(members: &[String], out: &Path, base_port: u16, force: bool) -> Result<()> {
    let codes = util::list(members);
    if codes.is_empty() {
        bail!("--members: give at least one member code, e.g. --members KZ,BY,AM");
    }
    if out.exists()
        && fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
        && !force
    {
        bail!(
            "{} exists and is not empty (use --force to write into it)",
            out.display()
        );
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    let code_refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let fed = DevFederation::new(&code_refs, seed, util::now())
        .map_err(|e| anyhow::anyhow!("--members: {e}"))?;
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    util::write_file(&out.join("charter.cbor"), fed.genesis.as_bytes(), 0o644)?;

    let mut summary = String::new();
    for (i, m) in fed.members.iter().enumerate() {
        let dir = out.join(m.code.as_str());
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        util::write_secret_key(&dir.join("root.key"), &m.root, Some(DEV_NOTICE), true)?;
        util::write_secret_key(
            &dir.join("publisher.key"),
            &m.publisher,
            Some(DEV_NOTICE),
            true,
        )?;
        util::write_secret_key(&dir.join("node.key"), &m.node, Some(DEV_NOTICE), true)?;
        util::write_file(
            &dir.join("delegation.cbor"),
            fed.delegation(i).as_bytes(),
            0o644,
        )?;
        util::write_file(
            &dir.join("node-cert.cbor"),
            fed.node_cert(i).as_bytes(),
            0o644,
        )?;
        let (peer, api) = ports(base_port, i)?;
        let mut bootstrap = Vec::new();
        for (j, other) in fed.members.iter().enumerate() {
            if j != i {
                let (p, _) = ports(base_port, j)?;
                bootstrap.push(format!(
                    "/ip4/127.0.0.1/tcp/{p}/p2p/{}",
                    other.node.public_key().peer_id()
                ));
            }
        }
        let toml = node_toml(m.code.as_str(), peer, api, &bootstrap, &codes);
        util::write_file(&dir.join("node.toml"), toml.as_bytes(), 0o644)?;
        let _ = writeln!(
            summary,
            "  {}  peer 127.0.0.1:{peer}  api http://127.0.0.1:{api}  peer id {}",
            m.code,
            m.node.public_key().peer_id()
        );
    }
    println!(
        "development federation {} written to {}",
        fed.federation(),
        out.display()
    );
    print!("{summary}");
    println!(
        "run a member's node with: accord run --config {}/<CODE>/node.toml",
        out.display()
    );
    Ok(())
}

/// The node configuration `accord run` reads. Paths are relative to the file.
fn node_toml(code: &str, peer: u16, api: u16, bootstrap: &[String], members: &[String]) -> String {
    let preload = members
        .iter()
        .flat_map(|m| {
            [
                format!("  \"../{m}/delegation.cbor\","),
                format!("  \"../{m}/node-cert.cbor\","),
            ]
        })
        .collect::<Vec<_>>()
        .join("\n");
    let boot = bootstrap
        .iter()
        .map(|b| format!("  \"{b}\","))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        r#"# Accord node configuration for member {code} of a development federation (accord devnet).
# Paths are relative to this file. Every field is documented in docs/OPERATIONS.md.

# The genesis charter: this node's trust anchor.
charter = "../charter.cbor"
# The member state this node belongs to.
member = "{code}"
# The node's libp2p identity key (PKCS#8 PEM) and its certificate signed by the member root.
node_key = "node.key"
node_cert = "node-cert.cbor"
# Where the node keeps its store and search index.
data_dir = "data"
# Trust objects to ingest at start: every member's delegation and node certificate.
preload = [
{preload}
]

[network]
listen = ["/ip4/127.0.0.1/tcp/{peer}"]
bootstrap = [
{boot}
]
# "members": only nodes certified by a current member may connect; "open" is for development.
admission = "members"
mdns = false

[api]
listen = "127.0.0.1:{api}"
"#
    )
}
