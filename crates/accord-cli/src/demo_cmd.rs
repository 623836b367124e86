//! `accord demo`: a three-member development federation on loopback, in one process, with the
//! sample records of `configs/records` published by their members. Works offline: the samples
//! are compiled into the binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use accord_core::TrustView;
use accord_core::devnet::DevFederation;
use accord_node::config::{ApiConfig, NetworkConfig, StoreConfig, SyncConfig};
use accord_node::{AdmissionMode, Node, NodeConfig, NodeHandle};
use anyhow::{Context, Result, anyhow, bail};

use crate::{objects_cmd, util};

/// The sample records, compiled in.
pub const SAMPLES: &[(&str, &str)] = &[
    (
        "01-proactive-public-services.md",
        include_str!("../../../configs/records/01-proactive-public-services.md"),
    ),
    (
        "02-civil-service-digital-skills.md",
        include_str!("../../../configs/records/02-civil-service-digital-skills.md"),
    ),
    (
        "03-unified-eservices-access.md",
        include_str!("../../../configs/records/03-unified-eservices-access.md"),
    ),
    (
        "04-trusted-ai-research-grants.md",
        include_str!("../../../configs/records/04-trusted-ai-research-grants.md"),
    ),
    (
        "05-digital-society-agreement-signed.md",
        include_str!("../../../configs/records/05-digital-society-agreement-signed.md"),
    ),
    (
        "06-broadband-coverage-dataset.md",
        include_str!("../../../configs/records/06-broadband-coverage-dataset.md"),
    ),
    (
        "07-interagency-exchange-standard.md",
        include_str!("../../../configs/records/07-interagency-exchange-standard.md"),
    ),
    (
        "08-village-digital-access-points.md",
        include_str!("../../../configs/records/08-village-digital-access-points.md"),
    ),
    (
        "09-foreign-e-signature-recognition.md",
        include_str!("../../../configs/records/09-foreign-e-signature-recognition.md"),
    ),
    (
        "10-sme-e-invoicing-platform.md",
        include_str!("../../../configs/records/10-sme-e-invoicing-platform.md"),
    ),
];

const MEMBERS: [&str; 3] = ["KZ", "BY", "AM"];

/// Reads or creates the demo seed (a development seed, written next to the data).
fn seed(dir: &Path) -> Result<[u8; 32]> {
    let path = dir.join("demo-seed.txt");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let hex = text
            .lines()
            .find(|l| !l.starts_with('#'))
            .unwrap_or("")
            .trim()
            .to_string();
        let mut s = [0u8; 32];
        hex::decode_to_slice(&hex, &mut s)
            .map_err(|_| anyhow!("{} is not a demo seed", path.display()))?;
        return Ok(s);
    }
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| anyhow!("no randomness from the operating system: {e}"))?;
    let text = format!(
        "# DEVELOPMENT seed of an `accord demo` federation: all its keys derive from it.\n{}\n",
        hex::encode(s)
    );
    util::write_file(&path, text.as_bytes(), 0o600)?;
    Ok(s)
}

fn write_member_files(dir: &Path, fed: &DevFederation, i: usize) -> Result<()> {
    let m = &fed.members[i];
    let d = dir.join(m.code.as_str());
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    util::write_secret_key(
        &d.join("node.key"),
        &m.node,
        Some("# DEVELOPMENT KEY of an `accord demo` federation."),
        true,
    )?;
    util::write_secret_key(
        &d.join("publisher.key"),
        &m.publisher,
        Some("# DEVELOPMENT KEY of an `accord demo` federation."),
        true,
    )?;
    util::write_file(
        &d.join("node-cert.cbor"),
        fed.node_cert(i).as_bytes(),
        0o644,
    )?;
    util::write_file(
        &d.join("delegation.cbor"),
        fed.delegation(i).as_bytes(),
        0o644,
    )?;
    Ok(())
}

fn member_config(
    dir: &Path,
    fed: &DevFederation,
    i: usize,
    bootstrap: Vec<String>,
) -> Result<NodeConfig> {
    let m = &fed.members[i];
    let d = dir.join(m.code.as_str());
    let preload = fed
        .members
        .iter()
        .flat_map(|o| {
            [
                dir.join(o.code.as_str()).join("delegation.cbor"),
                dir.join(o.code.as_str()).join("node-cert.cbor"),
            ]
        })
        .collect();
    Ok(NodeConfig {
        charter: dir.join("charter.cbor"),
        member: m.code.to_string(),
        node_key: d.join("node.key"),
        node_cert: Some(d.join("node-cert.cbor")),
        data_dir: d.join("data"),
        preload,
        network: NetworkConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootstrap,
            admission: AdmissionMode::Members,
            mdns: false,
            ..NetworkConfig::default()
        },
        api: ApiConfig::default(),
        store: StoreConfig::default(),
        search: Default::default(),
        sync: SyncConfig {
            interval_secs: 10,
            ..SyncConfig::default()
        },
        // Heartbeats often enough that the federation health page fills within seconds.
        health: accord_node::HealthConfig {
            heartbeat_secs: 10,
            watermark_delay_secs: 30,
            ..Default::default()
        },
        attachments: Default::default(),
    })
}

async fn dial_addr(node: &NodeHandle) -> Result<String> {
    for _ in 0..200 {
        if let Some(a) = node.listen_addrs().await?.first() {
            return Ok(format!("{a}/p2p/{}", node.peer_id()));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the node did not start listening")
}

pub async fn demo(data: Option<PathBuf>, port: u16) -> Result<()> {
    crate::node_cmd::raise_open_file_limit();
    let _tmp;
    let _tmp_kept = data.clone();
    let dir = match data {
        Some(d) => {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            // A demo writes a charter and keys of its own: only into a directory it made
            // (its seed is there) or an empty one, never over a real node's files.
            let empty = std::fs::read_dir(&d)
                .with_context(|| format!("cannot read {}", d.display()))?
                .next()
                .is_none();
            if !empty && !d.join("demo-seed.txt").is_file() {
                anyhow::bail!(
                    "--data {}: the directory holds files and no demo-seed.txt, so it is not a demo's; \
                     the demo writes its own charter and keys there. Choose an empty or new directory",
                    d.display()
                );
            }
            d
        }
        None => {
            _tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
            _tmp.path().to_path_buf()
        }
    };
    // Claim the API ports before anything is written or started: a taken port is a clear error.
    // (The directory is judged first: refusing another's files needs no port.)
    let mut listeners = Vec::new();
    for i in 0..MEMBERS.len() as u16 {
        let p = port
            .checked_add(i)
            .ok_or_else(|| anyhow!("--port {port} is too high"))?;
        let l = tokio::net::TcpListener::bind(("127.0.0.1", p))
            .await
            .with_context(|| {
                format!("port {p} on 127.0.0.1 is not free (choose another with --port)")
            })?;
        listeners.push(l);
    }
    let seed = seed(&dir)?;
    // A fixed creation time keeps the federation (and its id) the same across restarts.
    let created = accord_core::Timestamp(1_764_547_200_000); // 2025-12-01
    let fed = DevFederation::new(&MEMBERS, seed, created).map_err(|e| anyhow!(e))?;
    util::write_file(&dir.join("charter.cbor"), fed.genesis.as_bytes(), 0o644)?;
    for i in 0..MEMBERS.len() {
        write_member_files(&dir, &fed, i)?;
    }
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for i in 0..MEMBERS.len() {
        let mut bootstrap = Vec::new();
        for n in &nodes {
            bootstrap.push(dial_addr(n).await?);
        }
        let mut cfg = member_config(&dir, &fed, i, bootstrap)?;
        cfg.attachments.extractor = Some(crate::node_cmd::own_program()?);
        nodes.push(Node::spawn(cfg).await?);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for (node, listener) in nodes.iter().zip(listeners) {
        let mut rx = stop_rx.clone();
        servers.push(tokio::spawn(accord_api::serve(
            node.clone(),
            listener,
            accord_api::HttpOptions::default(),
            async move {
                let _ = rx.changed().await;
            },
        )));
    }
    // Wait (bounded) until the nodes have admitted each other, then publish the samples.
    for _ in 0..400 {
        let mut all = true;
        for n in &nodes {
            all &= n
                .peers()
                .await
                .map(|p| p.iter().filter(|x| x.admitted).count() >= MEMBERS.len() - 1)
                .unwrap_or(false);
        }
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (trust, _) = TrustView::from_genesis(fed.genesis.as_bytes()).map_err(|e| anyhow!("{e}"))?;
    let mut published = 0;
    // The first sample carries a methodology as a PDF: it travels to the other nodes and its
    // words are searchable (try "Aurora", a word only the PDF has).
    let pdf_path = dir.join("methodology.pdf");
    std::fs::write(
        &pdf_path,
        accord_search::extract::sample_pdf(&[
            "Methodology: proactive public services",
            "Step 1. Life events are detected from registry data.",
            "Step 2. The citizen is notified and gives consent by SMS.",
            "Step 3. The service is delivered without an application.",
            "Annex: the notification workflow, codenamed Aurora.",
        ]),
    )?;
    for (i, (name, text)) in SAMPLES.iter().enumerate() {
        let attach = if i == 0 {
            vec![pdf_path.clone()]
        } else {
            vec![]
        };
        let (obj, files) = objects_cmd::build_record_from_text(
            Path::new(name),
            text,
            &attach,
            &trust,
            util::now().saturating_add_ms(i as u64),
        )?;
        let accord_core::Object::Record(r) = &obj else {
            continue;
        };
        let Some(idx) = MEMBERS.iter().position(|m| *m == r.member.as_str()) else {
            continue;
        };
        let signed = obj.sign(&fed.members[idx].publisher);
        for (hash, path) in &files {
            nodes[idx].put_blob(*hash, std::fs::read(path)?).await?;
        }
        let out = nodes[idx].submit(vec![signed.into_bytes()]).await?;
        if out.first().is_some_and(|o| o.status == "accepted") {
            published += 1;
        }
    }
    println!(
        "Accord demo federation {} with {} members, data in {}",
        fed.federation(),
        MEMBERS.len(),
        dir.display()
    );
    for (i, n) in nodes.iter().enumerate() {
        println!(
            "  {}  http://127.0.0.1:{}   (peer id {})",
            MEMBERS[i],
            port + i as u16,
            n.peer_id()
        );
        let d = dir.join(MEMBERS[i]);
        println!(
            "      keys: {} (publisher), {} (node); delegation {}",
            d.join("publisher.key").display(),
            d.join("node.key").display(),
            d.join("delegation.cbor").display()
        );
    }
    if _tmp_kept.is_none() {
        println!("(a temporary directory, removed when the demo stops; --data DIR keeps it)");
    }
    println!("published {published} sample records; try:");
    println!(
        "  curl -s 'http://127.0.0.1:{port}/v1/records?q=%D0%BF%D1%80%D0%B0%D0%B2%D0%B8%D1%82%D0%B5%D0%BB%D1%8C%D1%81%D1%82%D0%B2%D0%BE'"
    );
    println!("  accord query \"электронное правительство\" --node http://127.0.0.1:{port}");
    println!(
        "  accord query aurora --node http://127.0.0.1:{port}   (a word inside an attached PDF)"
    );
    println!("  accord status --node http://127.0.0.1:{}", port + 1);
    println!(
        "  accord publish note.md --key {} --node http://127.0.0.1:{port}   (as {}'s ministry)",
        dir.join(MEMBERS[0]).join("publisher.key").display(),
        MEMBERS[0]
    );
    println!("Ctrl-C stops the demo.");
    let mut signals = crate::node_cmd::StopSignals::new();
    signals.next().await;
    eprintln!("stopping… (a second Ctrl-C stops at once)");
    let _ = stop_tx.send(true);
    let forced = signals
        .stop_within(async {
            for s in servers {
                let _ = s.await;
            }
            for n in &nodes {
                n.shutdown().await;
            }
        })
        .await;
    if let Some(code) = forced {
        // The temporary directory goes as promised: ending at once skips its removal.
        if _tmp_kept.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::process::exit(code);
    }
    eprintln!("stopped");
    Ok(())
}
