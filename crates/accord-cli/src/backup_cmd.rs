//! `accord backup`, `accord restore`, `accord check`.

use std::path::Path;

use accord_core::Limits;
use accord_core::cbor;
use accord_node::NodeConfig;
use accord_store::{Store, StoreOptions};
use anyhow::{Context, Result, anyhow, bail};

use crate::util;

/// The records of a backup that name attachments, with what they name.
type Named = Vec<(accord_core::ObjectId, Vec<accord_core::object::Attachment>)>;

/// What a backup file holds, read an object at a time (a backup of any size costs the memory
/// of one object and the list of attachments its records name).
struct BackupScan {
    objects: u64,
    /// The first object: the federation's genesis charter, if the file is a backup.
    genesis: Vec<u8>,
    attachments: Named,
    /// The records the backup's retractions name: their files are collected by the node.
    retracted: std::collections::HashSet<accord_core::ObjectId>,
}

/// Reads a whole backup, checking that every object is whole CBOR (each object's limits are
/// judged when it is imported, by the charter in force then). The error names the offset of the
/// first damaged object.
fn scan_backup(input: impl std::io::Read) -> Result<BackupScan> {
    let mut items = cbor::SequenceReader::new(input, cbor::MAX_SEQUENCE_ITEM, cbor::SEQUENCE_SCAN);
    let genesis = items
        .next_item()?
        .ok_or_else(|| anyhow!("it holds no objects"))?;
    let mut scan = BackupScan {
        objects: 1,
        genesis,
        attachments: Vec::new(),
        retracted: std::collections::HashSet::new(),
    };
    while let Some(item) = items.next_item()? {
        scan.objects += 1;
        match attachments_of(&item) {
            Some(Mention::Record(named)) => scan.attachments.push(named),
            Some(Mention::Retracted(id)) => {
                scan.retracted.insert(id);
            }
            None => {}
        }
    }
    Ok(scan)
}

/// What a backup's object says of attachments: the files a record names, or the record a
/// retraction withdraws (whose files the node collects).
enum Mention {
    Record((accord_core::ObjectId, Vec<accord_core::object::Attachment>)),
    Retracted(accord_core::ObjectId),
}

/// The attachments a record names, if `item` is one that names any, or the record a
/// retraction names.
fn attachments_of(item: &[u8]) -> Option<Mention> {
    let signed =
        accord_core::SignedObject::decode_draft(item, usize::MAX, cbor::SEQUENCE_SCAN).ok()?;
    let limits = Limits {
        max_depth: 64,
        max_list_len: u64::MAX,
        ..Limits::default()
    };
    match accord_core::Object::decode_body(signed.body(), &limits).ok()? {
        accord_core::Object::Record(r) if !r.attachments.is_empty() => {
            Some(Mention::Record((signed.id(), r.attachments)))
        }
        accord_core::Object::Retraction(r) => Some(Mention::Retracted(r.record)),
        _ => None,
    }
}

/// Downloads a consistent export of a running node (GET /v1/export) into `out`, streamed to
/// disk and checked whole before it replaces anything there.
pub async fn backup(node: &str, out: &Path, blobs: Option<(&Path, bool)>) -> Result<()> {
    use std::io::Write;
    util::refuse_to_replace_key(out)?;
    let url = format!("{}/v1/export", node.trim_end_matches('/'));
    // No overall timeout: a backup of a large node takes minutes.
    let client = crate::node_cmd::client_with_timeout(None)?;
    let mut resp = client
        .get(&url)
        .send()
        .await
        .map_err(crate::node_cmd::unreachable(node))?;
    if !resp.status().is_success() {
        // The node's own reason (two exports running, say), and when to come back.
        let retry = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(|s| format!(" (try again in {s} s)"))
            .unwrap_or_default();
        let e = crate::node_cmd::json_answer(resp, &url).await.err();
        let why = e.map_or_else(String::new, |e| e.to_string());
        bail!("{why}{retry}");
    }
    let mut file = util::AtomicFile::create(out, 0o600)?;
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await.context("download interrupted")? {
        file.write_all(&chunk)
            .with_context(|| format!("cannot write {}", out.display()))?;
        bytes += chunk.len() as u64;
    }
    let scan = scan_backup(file.written()?).map_err(|e| anyhow!("the export is damaged: {e:#}"))?;
    file.commit()?;
    println!(
        "backup of {} objects written to {} ({bytes} bytes)",
        scan.objects,
        out.display(),
    );
    if let Some((dir, require)) = blobs {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let (mut saved, mut missing, mut collected) = (0, Vec::new(), 0);
        let mut seen = std::collections::BTreeSet::new();
        // Files some record that stands names: the others belong to retracted records only.
        let live: std::collections::HashSet<accord_core::ObjectId> = scan
            .attachments
            .iter()
            .filter(|(id, _)| !scan.retracted.contains(id))
            .flat_map(|(_, list)| list.iter().map(|a| a.sha256))
            .collect();
        for (_, list) in scan.attachments {
            for a in list {
                if !seen.insert(a.sha256) {
                    continue;
                }
                let url = format!("{}/v1/blobs/{}", node.trim_end_matches('/'), a.sha256);
                let resp = client
                    .get(&url)
                    .send()
                    .await
                    .map_err(crate::node_cmd::unreachable(node))?;
                if resp.status() != reqwest::StatusCode::NOT_FOUND && !resp.status().is_success() {
                    // Busy or failing, not "not held": the backup is not what it says.
                    bail!("{url}: {}", resp.status());
                }
                if !resp.status().is_success() {
                    if live.contains(&a.sha256) {
                        missing.push(format!("{} (sha256 {})", a.name, a.sha256));
                    } else {
                        collected += 1;
                    }
                    continue;
                }
                let body = resp.bytes().await.context("download interrupted")?;
                let got =
                    accord_core::ObjectId(<sha2::Sha256 as sha2::Digest>::digest(&body).into());
                if got != a.sha256 {
                    bail!("{url}: the file does not match its SHA-256");
                }
                util::write_file(&dir.join(a.sha256.to_string()), &body, 0o600)?;
                saved += 1;
            }
        }
        println!(
            "{saved} attachment files written to {}{}{}",
            dir.display(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(" ({} not held by the node)", missing.len())
            },
            if collected == 0 {
                String::new()
            } else {
                format!(" ({collected} of retracted records, collected)")
            }
        );
        if !missing.is_empty() {
            // Still being fetched from peers, or of retracted records (their files are
            // collected): a node restored from this backup fetches what its peers hold.
            for m in missing.iter().take(MISSING_NAMED) {
                eprintln!("not in the backup: {m}");
            }
            if missing.len() > MISSING_NAMED {
                eprintln!("… and {} more", missing.len() - MISSING_NAMED);
            }
            if require {
                bail!(
                    "{} the records name {} not held by the node (--require-blobs)",
                    util::count(missing.len() as u64, "attachment file", "attachment files"),
                    if missing.len() == 1 { "is" } else { "are" }
                );
            }
        }
    }
    Ok(())
}

/// Files not held by the node that a backup names one by one (the rest are counted).
const MISSING_NAMED: usize = 20;

/// The free space of the filesystem `dir` is (or will be) on: that of its nearest existing
/// ancestor; `None` when it cannot be read.
fn free_space_for(dir: &Path) -> Option<u64> {
    let existing = dir.ancestors().find(|p| p.exists())?;
    accord_node::available_bytes(existing).ok()
}

/// Refuses a restore of `objects` bytes of objects and `files` bytes of attachments into `dir`
/// when `free` bytes cannot hold what it and the node's first start write, with the node's
/// default free-space floor left over: the store and the search index take about 1.6 times the
/// objects, attachments their own size (docs/OPERATIONS.md, "Disk").
fn check_room(dir: &Path, objects: u64, files: u64, free: u64) -> Result<()> {
    const MIB: u64 = 1 << 20;
    let floor = accord_node::config::DEFAULT_MIN_FREE_MB * MIB;
    let need = objects
        .saturating_mul(8)
        .div_ceil(5)
        .saturating_add(files)
        .saturating_add(floor);
    if free < need {
        let with_files = if files > 0 {
            format!(" and {} MiB of attachments", files.div_ceil(MIB))
        } else {
            String::new()
        };
        bail!(
            "{}: {} MiB free on its filesystem; restoring {} MiB of objects{with_files} needs about {} MiB (the store and the search index take about 1.6 times the objects, attachments their size, and a node keeps store.min_free_mb = {} MiB free by default): free space there or restore elsewhere",
            dir.display(),
            free / MIB,
            objects.div_ceil(MIB),
            need.div_ceil(MIB),
            floor / MIB
        );
    }
    Ok(())
}

/// The bytes of the backup's attachment files that a restore from `dir` copies: each file
/// named by a record and present there, once.
fn attachment_bytes(
    records: &[(accord_core::ObjectId, Vec<accord_core::object::Attachment>)],
    dir: &Path,
) -> u64 {
    let mut seen = std::collections::BTreeSet::new();
    records
        .iter()
        .flat_map(|(_, list)| list)
        .filter(|a| seen.insert(a.sha256))
        // What the restore will copy: regular files of the size their record states (not
        // through a link), as `accord_node::restore_blobs` reads them.
        .filter_map(|a| {
            std::fs::symlink_metadata(dir.join(a.sha256.to_string()))
                .ok()
                .filter(|m| m.is_file() && m.len() == a.size)
        })
        .map(|m| m.len())
        .sum()
}

/// Refuses, before anything is written, a `--blobs` directory that cannot be listed (a path
/// mistyped) or that holds a record's file it cannot read (a backup taken as root, restored
/// as the node's user): both used to end in "0 restored from the backup, N to be fetched from
/// peers" and exit 0, and a file no peer holds any more was lost without a word. A file that
/// is simply absent is fetched from peers, as before.
fn backup_files_readable(
    records: &[(accord_core::ObjectId, Vec<accord_core::object::Attachment>)],
    dir: &Path,
) -> Result<()> {
    std::fs::read_dir(dir)
        .map_err(|e| anyhow!("--blobs {}: {e}; nothing was restored", dir.display()))?;
    let mut seen = std::collections::BTreeSet::new();
    let unreadable: Vec<(String, std::io::Error)> = records
        .iter()
        .flat_map(|(_, list)| list)
        .filter(|a| seen.insert(a.sha256))
        .filter_map(|a| {
            let path = dir.join(a.sha256.to_string());
            // Regular files only: a link, a pipe (whose opening would wait for a writer) or a
            // device is left alone by the restore anyway; an absent file is fetched from peers,
            // but one the system will not let this user look at is named.
            match std::fs::symlink_metadata(&path) {
                Ok(m) if !m.is_file() => return None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                Err(e) => return Some((a.sha256.to_string(), e)),
            }
            std::fs::File::open(&path)
                .err()
                .map(|e| (a.sha256.to_string(), e))
        })
        .collect();
    if !unreadable.is_empty() {
        // Up to five named, with why: enough to see whether it is one file or an ownership
        // of them all.
        const NAMED: usize = 5;
        let named: Vec<String> = unreadable
            .iter()
            .take(NAMED)
            .map(|(hash, e)| format!("{hash}: {e}"))
            .collect();
        let more = unreadable.len().saturating_sub(NAMED);
        bail!(
            "--blobs {}: {} of the backup cannot be read ({}{}): run the restore as a user that can read them, or give the node's user their ownership; nothing was restored",
            dir.display(),
            util::count(unreadable.len() as u64, "file", "files"),
            named.join("; "),
            if more > 0 {
                format!("; {more} more")
            } else {
                String::new()
            },
        );
    }
    Ok(())
}

/// Restores a backup into an empty data directory, validating every object.
pub fn restore(file: &Path, data_dir: &Path, blobs: Option<&Path>) -> Result<()> {
    match std::fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: restore only into an empty data directory",
                    data_dir.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("{}: {e}", data_dir.display()),
    }
    // Opened once: a backup that a scheduled job replaces meanwhile (written beside and
    // renamed, as `accord backup` does) does not mix with this one.
    let mut input =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    // Read whole once before anything is written: a damaged backup is refused as it is.
    let scan = scan_backup(&mut input).map_err(|e| anyhow!("{}: {e:#}", file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(dir) = blobs {
        backup_files_readable(&scan.attachments, dir)?;
    }
    // Before anything is written: a restore that runs out of space half way leaves a partial
    // store to clean up, and a node on it would take nothing new (its free-space floor).
    if let Some(free) = free_space_for(data_dir) {
        let files = blobs.map_or(0, |d| attachment_bytes(&scan.attachments, d));
        check_room(data_dir, size, files, free)?;
    }
    // Judged before anything is written: a file that does not start with a valid genesis
    // charter (an export of records, another file) leaves the directory as it was.
    accord_core::TrustView::from_genesis(&scan.genesis).map_err(|e| {
        anyhow!(
            "{}: the first object must be the federation's genesis charter: {e}",
            file.display()
        )
    })?;
    // Kept until the restore has finished: a node refuses to start on what a restore cut
    // short leaves.
    let unfinished = data_dir.join(accord_node::RESTORE_UNFINISHED);
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    std::fs::File::create(&unfinished)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot write {}", unfinished.display()))?;
    util::sync_parent(&unfinished)?;
    let mut store = match Store::open(data_dir, &scan.genesis, StoreOptions::default()) {
        Ok(store) => store,
        Err(e) => {
            let _ = std::fs::remove_file(&unfinished);
            bail!("{}: cannot create a store there: {e}", data_dir.display());
        }
    };
    std::io::Seek::rewind(&mut input).with_context(|| format!("cannot read {}", file.display()))?;
    let report = store
        .import_framed(&mut input, util::now())
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    println!(
        "restored into {}: {} accepted, {} already present, {} pending, {} rejected",
        data_dir.display(),
        report.accepted,
        report.duplicate,
        report.pending,
        report.rejected
    );
    println!("federation {}", store.trust().federation());
    // Only the files of records the store took: a record the restore refused (or left waiting
    // for a delegation) names files nothing here needs yet; one released later brings its own.
    let attachments: Vec<_> = scan
        .attachments
        .into_iter()
        .filter(|(id, _)| store.contains(id).unwrap_or(false))
        .collect();
    drop(store);
    let (copied, queued) = accord_node::restore_blobs(data_dir, &attachments, blobs)?;
    if copied + queued > 0 {
        println!(
            "attachments: {copied} restored from the backup, {queued} to be fetched from peers when the node runs"
        );
    }
    std::fs::remove_file(&unfinished)
        .with_context(|| format!("cannot remove {}", unfinished.display()))?;
    util::sync_parent(&unfinished)?;
    if report.rejected > 0 {
        bail!(
            "{} of the backup {} refused (see the log with RUST_LOG=info)",
            util::count(report.rejected as u64, "object", "objects"),
            if report.rejected == 1 { "was" } else { "were" }
        );
    }
    Ok(())
}

/// Re-verifies a stopped node's store and indexes; `--repair` rebuilds the indexes and the
/// search index.
pub fn check(config: &Path, repair: bool) -> Result<()> {
    let cfg = NodeConfig::load(config, &crate::node_cmd::env_pairs())?;
    util::existing_store(&cfg.data_dir)?;
    if !repair {
        // A repair cut short is finished by another repair; a check would report its half-built
        // indexes as damage.
        accord_store::unfinished_repair(&cfg.data_dir)?;
        // A check only reads: it does not upgrade a store of an older release (which that
        // release could then no longer open). A repair rewrites the indexes anyway, and
        // upgrades the store on the way.
        accord_node::refuse_older_store(&cfg.data_dir, "check")?;
    }
    let genesis = util::read(&cfg.charter)?;
    let opened = if repair {
        Store::open_for_repair(&cfg.data_dir, &genesis, cfg.store.options())
    } else {
        Store::open(&cfg.data_dir, &genesis, cfg.store.options())
    };
    let mut store = opened.map_err(|e| accord_node::opening_error(&cfg.data_dir, "store", e))?;
    let report = if repair {
        store.repair_indexes()?
    } else {
        store.check()?
    };
    println!("objects checked     {}", report.objects);
    println!("bad objects         {}", report.bad_objects.len());
    for (id, why) in &report.bad_objects {
        println!("  {id}: {why}");
    }
    println!("missing index keys  {}", report.missing_entries);
    println!("stray index keys    {}", report.stray_entries);
    println!("unaccounted log     {} bytes", report.unaccounted_log_bytes);
    drop(store);
    let blobs = accord_node::check_blobs(&cfg.data_dir, repair)?;
    println!("attachments checked {}", blobs.checked);
    println!("bad attachments     {}", blobs.bad.len());
    for h in &blobs.bad {
        println!("  {h}: content does not match its SHA-256");
    }
    if repair && !blobs.bad.is_empty() {
        println!(
            "bad attachments removed; {} queued to be fetched again from peers",
            blobs.requeued
        );
    }
    if repair {
        let n = accord_node::reindex(&cfg)?;
        println!(
            "indexes rebuilt; search index rebuilt with {}",
            util::count(n, "record", "records")
        );
        return Ok(());
    }
    if !report.is_clean() || !blobs.bad.is_empty() {
        bail!(
            "the store has problems: run `accord check --config {} --repair` with the node stopped",
            config.display()
        );
    }
    println!("store is consistent");
    Ok(())
}

#[cfg(test)]
mod room_tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// A backup's record that the restore does not take (here: by a key without a delegation
    /// in the backup, so it waits) brings none of its files: they are neither copied from the
    /// backup's directory nor queued to be fetched; the taken record's file is.
    #[test]
    fn a_restore_brings_only_the_files_of_records_it_took() {
        let t0 = accord_core::Timestamp(1_700_000_000_000);
        let fed = accord_core::devnet::DevFederation::new(&["KZ"], [5; 32], t0).unwrap();
        let blobs = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let a = accord_core::attachment::describe(name, bytes);
            std::fs::write(blobs.path().join(a.sha256.to_string()), bytes).unwrap();
            a
        };
        let kept = file("kept.pdf", b"a file of a record the restore takes");
        let left = file("left.pdf", b"a file of a record the restore does not take");
        let with = |signer: &accord_core::SecretKey, a: &accord_core::object::Attachment| {
            let mut body =
                fed.record_body(0, a.name.as_str(), accord_core::Timestamp(t0.0 + 1_000));
            body.attachments = vec![a.clone()];
            accord_core::Object::Record(body).sign(signer)
        };
        let stranger = accord_core::SecretKey::from_seed([6; 32]);
        let mut backup = fed.genesis.as_bytes().to_vec();
        backup.extend_from_slice(fed.delegation(0).as_bytes());
        backup.extend_from_slice(with(&fed.members[0].publisher, &kept).as_bytes());
        backup.extend_from_slice(with(&stranger, &left).as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let backup_file = dir.path().join("backup.cbor");
        std::fs::write(&backup_file, &backup).unwrap();
        let data = dir.path().join("data");
        restore(&backup_file, &data, Some(blobs.path())).unwrap();
        let held = |a: &accord_core::object::Attachment, suffix: &str| {
            data.join("blobs")
                .join(format!("{}{suffix}", a.sha256))
                .exists()
        };
        assert!(held(&kept, ""), "the taken record's file is restored");
        assert!(
            !held(&left, "") && !held(&left, ".want"),
            "the other's file is not"
        );
    }

    /// A hostile or damaged backup directory: a file's name is a link to `/dev/zero`, a pipe,
    /// or a file of another size. None of them is read (a link to `/dev/zero` used to be read
    /// until memory ran out, a pipe to hang the restore); their files are fetched from peers.
    #[test]
    fn a_restore_reads_only_regular_files_of_the_claimed_size() {
        let t0 = accord_core::Timestamp(1_700_000_000_000);
        let fed = accord_core::devnet::DevFederation::new(&["KZ"], [5; 32], t0).unwrap();
        let blobs = tempfile::tempdir().unwrap();
        let describe = |name: &str, bytes: &[u8]| accord_core::attachment::describe(name, bytes);
        let zero = describe("zero.pdf", b"named by a link to /dev/zero");
        let pipe = describe("pipe.pdf", b"named by a pipe");
        let longer = describe("longer.pdf", b"its copy in the backup is longer");
        let good = describe("good.pdf", b"a good copy");
        let at = |a: &accord_core::object::Attachment| blobs.path().join(a.sha256.to_string());
        std::os::unix::fs::symlink("/dev/zero", at(&zero)).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            at(&pipe),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::fs::write(at(&longer), vec![1u8; 10_000]).unwrap();
        std::fs::write(at(&good), b"a good copy").unwrap();
        let mut body = fed.record_body(0, "four files", accord_core::Timestamp(t0.0 + 1_000));
        body.attachments = vec![zero.clone(), pipe.clone(), longer.clone(), good.clone()];
        let record = accord_core::Object::Record(body).sign(&fed.members[0].publisher);
        let mut backup = fed.genesis.as_bytes().to_vec();
        backup.extend_from_slice(fed.delegation(0).as_bytes());
        backup.extend_from_slice(record.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("backup.cbor");
        std::fs::write(&file, &backup).unwrap();
        let data = dir.path().join("data");
        restore(&file, &data, Some(blobs.path())).unwrap();
        let held = |a: &accord_core::object::Attachment, suffix: &str| {
            data.join("blobs")
                .join(format!("{}{suffix}", a.sha256))
                .exists()
        };
        assert!(held(&good, ""), "the good copy is restored");
        for a in [&zero, &pipe, &longer] {
            assert!(!held(a, ""), "{} is not taken from the backup", a.name);
            assert!(held(a, ".want"), "{} is fetched from peers", a.name);
        }
    }

    /// A backup cut short (a full disk, an interrupted copy) is refused whole before anything
    /// is written, naming where it breaks; read an object at a time, its size costs nothing.
    #[test]
    fn a_damaged_backup_is_refused_before_anything_is_written() {
        let t0 = accord_core::Timestamp(1_700_000_000_000);
        let fed = accord_core::devnet::DevFederation::new(&["KZ"], [5; 32], t0).unwrap();
        let mut backup = fed.genesis.as_bytes().to_vec();
        backup.extend_from_slice(fed.delegation(0).as_bytes());
        let cut_at = backup.len() as u64;
        let record = accord_core::Object::Record(fed.record_body(
            0,
            "cut short",
            accord_core::Timestamp(t0.0 + 1_000),
        ))
        .sign(&fed.members[0].publisher);
        backup.extend_from_slice(&record.as_bytes()[..record.as_bytes().len() - 7]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("backup.cbor");
        std::fs::write(&file, &backup).unwrap();
        let data = dir.path().join("data");
        let e = restore(&file, &data, None)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            e.contains("backup.cbor") && e.contains(&format!("the object at byte {cut_at}")),
            "{e}"
        );
        assert!(!data.exists(), "nothing was written");
        // The same file whole restores, and leaves no mark of an unfinished restore.
        std::fs::write(&file, &backup[..cut_at as usize]).unwrap();
        restore(&file, &data, None).unwrap();
        let mark = data.join(accord_node::RESTORE_UNFINISHED);
        assert!(!mark.exists());
        util::existing_store(&data).unwrap();
        // What a restore killed half way leaves is refused by `check` and `reindex`.
        std::fs::write(&mark, b"").unwrap();
        let e = util::existing_store(&data)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("did not finish"), "{e}");
        // A file that does not start with a genesis charter writes nothing either, so the
        // restore can be run again at once with the right file.
        let records = dir.path().join("records.cbor");
        std::fs::write(&records, fed.delegation(0).as_bytes()).unwrap();
        let fresh = dir.path().join("fresh");
        let e = restore(&records, &fresh, None)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            e.contains("must be the federation's genesis charter"),
            "{e}"
        );
        assert!(!fresh.exists(), "nothing was written");
        let empty = dir.path().join("empty.cbor");
        std::fs::write(&empty, b"").unwrap();
        let e = restore(&empty, &dir.path().join("data2"), None)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("empty.cbor: it holds no objects"), "{e}");
    }

    #[test]
    fn a_restore_needs_room_for_the_store_the_index_and_the_floor() {
        let dir = Path::new("/srv/accord/data");
        // 1,000 MiB of objects: 1,600 MiB for the store and the index, 512 MiB of floor.
        assert!(check_room(dir, 1000 * MIB, 0, 2112 * MIB).is_ok());
        let e = check_room(dir, 1000 * MIB, 0, 2111 * MIB)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("/srv/accord/data: 2111 MiB free")
                && e.contains("restoring 1000 MiB of objects needs about 2112 MiB")
                && e.contains("store.min_free_mb = 512 MiB"),
            "{e}"
        );
    }

    /// Attachments restored from the backup need their own size on top, each file once, and
    /// only files the backup's records name and its directory holds count.
    #[test]
    fn a_restore_with_attachments_needs_room_for_them_too() {
        use accord_core::object::Attachment;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, n: usize| {
            let bytes = vec![7u8; n];
            let a = accord_core::attachment::describe(name, &bytes);
            std::fs::write(dir.path().join(a.sha256.to_string()), &bytes).unwrap();
            a
        };
        let big: Attachment = file("big.bin", 3 * MIB as usize);
        let small: Attachment = file("small.bin", 1000);
        let absent = accord_core::attachment::describe("absent.bin", b"not in the backup");
        let id = |n: u8| accord_core::ObjectId([n; 32]);
        let records = vec![
            (id(1), vec![big.clone(), small.clone()]),
            // The same file named by a second record is copied once.
            (id(2), vec![big.clone(), absent]),
        ];
        let files = attachment_bytes(&records, dir.path());
        assert_eq!(files, 3 * MIB + 1000);
        let target = Path::new("/srv/accord/data");
        // 100 MiB of objects: 160 MiB, the files 3 MiB and a bit, 512 MiB of floor.
        assert!(check_room(target, 100 * MIB, files, 676 * MIB).is_ok());
        let e = check_room(target, 100 * MIB, files, 675 * MIB)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("restoring 100 MiB of objects and 4 MiB of attachments needs about 676 MiB"),
            "{e}"
        );
    }

    #[test]
    fn the_free_space_of_a_directory_not_yet_made_is_its_parents() {
        let base = std::env::temp_dir();
        let made = free_space_for(&base);
        let later = free_space_for(&base.join("not-yet").join("data"));
        assert!(made.is_some() && later.is_some());
    }
}
