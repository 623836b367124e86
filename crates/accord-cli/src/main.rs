//! `accord`: the command-line interface of an Accord node. It parses arguments, reads
//! files and prints; everything else lives in the library crates.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod backup_cmd;
mod charter_cmd;
mod demo_cmd;
mod devnet_cmd;
mod evidence_cmd;
mod init_cmd;
mod keys_cmd;
mod node_cmd;
mod objects_cmd;
mod query_cmd;
mod util;
mod verify_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use accord_core::{ObjectId, Timestamp};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "accord",
    version,
    about = "Accord: a federated node for signed experience-sharing records"
)]
struct Cli {
    /// Log format on standard error (filters with RUST_LOG, e.g. RUST_LOG=accord=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "ACCORD_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct NodeArg {
    /// The node's API address: http://HOST:PORT, or https://HOST for a node behind a TLS
    /// proxy (its certificate checked against the system's trust store and the PEM file
    /// ACCORD_CA_CERT names).
    #[arg(long, env = "ACCORD_NODE", default_value = node_cmd::DEFAULT_NODE, value_parser = node_cmd::node_url)]
    node: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and show ed25519 keys (PKCS#8 PEM).
    #[command(subcommand)]
    Key(KeyCmd),
    /// Found a federation: draft, sign and show its charter.
    #[command(subcommand)]
    Charter(CharterCmd),
    /// Delegate publishing rights for a member to a publisher key (signed by the member root key).
    Delegate(DelegateArgs),
    /// Certify objects with a member root key.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Revoke a delegation, a node certificate or a key from a given time.
    Revoke(RevokeArgs),
    /// Withdraw a record (signed by its author or the member root key).
    Retract(RetractArgs),
    /// Sign a record written in Markdown (YAML front matter) or JSON.
    Sign(SignArgs),
    /// Verify signed objects offline against a charter.
    Verify(VerifyArgs),
    /// Divergence evidence bundles from a node's federation health view.
    #[command(subcommand)]
    Evidence(EvidenceCmd),
    /// Print any signed object as JSON.
    Inspect {
        /// The object file.
        file: PathBuf,
    },
    /// Write a ready development federation (charter, keys, certificates, node configs).
    Devnet(DevnetArgs),
    /// Extract the text of one attachment, read from standard input: what a node runs as a
    /// child process for every file it indexes, so that a hostile file ends the child only.
    #[command(name = "extract-text", hide = true)]
    ExtractText {
        /// Seconds of CPU the extraction may take (0: the default bound).
        #[arg(long, default_value_t = 0)]
        timeout_secs: u64,
        /// The file's media type, as its record declares it.
        media_type: String,
        /// The file's name, as its record declares it.
        name: String,
    },
    /// Run a node until SIGINT or SIGTERM.
    Run {
        /// The node configuration (what `accord devnet` writes as node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Submit signed object files to a node.
    Submit {
        /// Signed object files (`accord sign` output, an export in CBOR, a backup): each one
        /// object or a sequence of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// An attachment file the submitted records name, uploaded first (repeat for each).
        #[arg(long = "attach")]
        attach: Vec<PathBuf>,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Sign a record (Markdown or JSON) and submit it to a node in one step.
    Publish {
        /// The record: Markdown with front matter, or JSON (see `accord sign --help`).
        input: PathBuf,
        /// A file to attach (repeat for each): uploaded to the node with the record.
        #[arg(long = "attach")]
        attach: Vec<PathBuf>,
        /// The publisher's key.
        #[arg(long)]
        key: PathBuf,
        /// The genesis charter (default: the node's charter with its amendments, fetched from
        /// the node).
        #[arg(long)]
        charter: Option<PathBuf>,
        /// With --charter: an amendment adopted since the genesis (repeat for each).
        #[arg(long = "with", value_name = "FILE", requires = "charter")]
        with: Vec<PathBuf>,
        /// Publish even when the member already has an active record of the same kind and
        /// title (without it, such a publish is refused: a retry or an edited note would add a
        /// second record for good; an edition names the one it replaces with `supersedes:`).
        #[arg(long)]
        again: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Show a node's status.
    Status {
        #[command(flatten)]
        node: NodeArg,
    },
    /// List a node's connected peers.
    Peers {
        #[command(flatten)]
        node: NodeArg,
    },
    /// Search the node's records (full text and filters).
    Query {
        /// Words to search for (Russian and English morphology understood).
        text: Option<String>,
        #[command(flatten)]
        filters: query_cmd::Filters,
        /// Output: table, json or csv.
        #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
        format: String,
        /// At most this many records (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Order: relevance (the default with words), newest (the default without) or oldest,
        /// by when records were shared; document_newest or document_oldest by the source
        /// document's date, records without one last.
        #[arg(long, value_parser = ["relevance", "newest", "oldest", "document_newest", "document_oldest"])]
        sort: Option<String>,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Show one record with its provenance and every language version (the id may be
    /// shortened to its first 8 or more hex digits, as `accord query` prints it).
    Show {
        /// The record's id: its 64 hex digits, or the first 8 or more.
        id: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Print new records as they arrive.
    Follow {
        /// Words the new records must contain.
        text: Option<String>,
        #[command(flatten)]
        filters: query_cmd::StreamFilters,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Export matching records to a file: jsonl (full records), csv (one line each) or cbor
    /// (the exact signed objects, a CBOR sequence that `accord verify` and `accord submit` read).
    Export {
        /// Words the exported records must contain (as `accord query` reads them).
        text: Option<String>,
        #[command(flatten)]
        filters: query_cmd::Filters,
        /// jsonl (full records), csv (one line each) or cbor (the signed objects).
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv", "cbor"])]
        format: String,
        /// The file to write (replaced only when the export is complete).
        #[arg(long)]
        out: PathBuf,
        /// CSV for spreadsheet programs: start the file with a UTF-8 byte-order mark (without
        /// it, Excel shows Cyrillic as mojibake).
        #[arg(long)]
        bom: bool,
        /// CSV: the column separator. Spreadsheets set up for Russian and most European
        /// locales expect semicolon.
        #[arg(long, default_value = "comma", value_parser = ["comma", "semicolon"])]
        delimiter: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Run a three-member development federation on this machine, with sample records.
    Demo {
        /// Keep the federation's data here (default: a temporary directory).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The first node's HTTP port; the others use the next ones.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Prepare a real node: node key, charter and a commented node.toml; prints the peer id and
    /// the command that certifies the node.
    Init {
        /// The federation's genesis charter (signed), copied into the node's directory.
        #[arg(long)]
        charter: PathBuf,
        /// This node's member code (two capital letters, as the charter lists it).
        #[arg(long)]
        member: String,
        /// The node's directory: node.toml, the node key and the charter are written here, and
        /// the store is kept in its `data` subdirectory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Peer listen address.
        #[arg(long, default_value = "/ip4/0.0.0.0/tcp/7400")]
        listen: String,
        /// HTTP API address.
        #[arg(long, default_value = "127.0.0.1:7401")]
        api: String,
        /// Peers to dial at start (multiaddrs ending in /p2p/<peer id>).
        #[arg(long)]
        bootstrap: Vec<String>,
    },
    /// Download a consistent backup (every signed object) from a running node.
    Backup {
        /// The backup file to write (a CBOR sequence of every signed object).
        #[arg(long)]
        out: PathBuf,
        /// Also copy every attachment file the node holds into this directory.
        #[arg(long)]
        blobs: Option<PathBuf>,
        /// With --blobs: fail (exit 1) when a file a record names is not held by the node, for
        /// a scheduled backup that must hold every file.
        #[arg(long, requires = "blobs")]
        require_blobs: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Restore a backup into an empty data directory; every object is validated again.
    Restore {
        /// The backup file (`accord backup --out`).
        file: PathBuf,
        /// The store directory to create (the node's `data_dir`, e.g. `/srv/accord/data`); it
        /// must not exist or be empty.
        #[arg(long)]
        data_dir: PathBuf,
        /// Attachment files saved by `accord backup --blobs` (others are fetched from peers).
        #[arg(long)]
        blobs: Option<PathBuf>,
    },
    /// Check a stopped node's store: re-verify every object and every index entry.
    Check {
        /// The node's configuration (its `data_dir` is checked; `ACCORD_DATA_DIR` overrides
        /// it, as in the systemd unit).
        #[arg(long)]
        config: PathBuf,
        /// Rebuild the indexes and the search index.
        #[arg(long)]
        repair: bool,
    },
    /// Rebuild a stopped node's search index from its store.
    Reindex {
        /// The node's configuration (as for `check`).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCmd {
    /// Generate a key, write it (mode 0600) and print its public key.
    New {
        /// The key file to write (PKCS#8 PEM, mode 0600).
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the public key and peer id of a key file.
    Show {
        /// The key file (PKCS#8 PEM).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum EvidenceCmd {
    /// Verify evidence bundles offline (`GET /v1/health/evidence`, the Federation health
    /// page): the observer's signature, the subject's signed heartbeats and what they show;
    /// with --charter, also that both were certified nodes when they signed.
    Verify {
        /// Bundle files (one bundle, or a CBOR sequence of them).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The federation's genesis charter.
        #[arg(long)]
        charter: Option<PathBuf>,
        /// Files with the node certificates and charter amendments needed (e.g. an export).
        #[arg(long)]
        with: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CharterCmd {
    /// Draft a genesis charter (unsigned) and print the federation id.
    New {
        /// The federation's name, e.g. "CIS digital cooperation".
        #[arg(long)]
        name: String,
        /// A founding member: CODE=NAME=PUBKEY (repeat for each member).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// How many members must sign an amendment.
        #[arg(long)]
        threshold: u64,
        /// A taxonomy TOML file (default: the CIS agreement's, configs/taxonomy.toml).
        #[arg(long)]
        taxonomy: Option<PathBuf>,
        /// Creation time (YYYY-MM-DD, or an RFC 3339 time such as 2026-03-01T09:00:00Z); default: now.
        #[arg(long, value_parser = util::parse_time)]
        created: Option<Timestamp>,
        /// The draft to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing file (a draft, or a signed charter).
        #[arg(long)]
        force: bool,
    },
    /// Draft the next version of the federation's charter (unsigned): add or remove members,
    /// replace a member's root key, change the threshold, adopt newer protocol rules, extend
    /// the taxonomy. The charter in force comes from --from or from the node.
    Amend {
        /// The charter in force, as signed (the genesis charter.cbor, or the latest amendment);
        /// default: fetched from --node.
        #[arg(long)]
        from: Option<PathBuf>,
        /// A member to add: CODE=NAME=PUBKEY (repeatable). Its root key must sign.
        #[arg(long = "add-member")]
        add_member: Vec<String>,
        /// A member code to remove (repeatable). Its objects stay, attributed to it.
        #[arg(long = "remove-member")]
        remove_member: Vec<String>,
        /// A member's new root key: CODE=PUBKEY (repeatable), e.g. after its old one was
        /// stolen. The new key must sign.
        #[arg(long = "replace-root")]
        replace_root: Vec<String>,
        /// How many members must sign the next amendment.
        #[arg(long)]
        threshold: Option<u64>,
        /// The protocol refusal rules the federation adopts (3: those of protocol 1.3), once
        /// every member's nodes run a release that knows them.
        #[arg(long)]
        rules: Option<u64>,
        /// A taxonomy TOML file: the whole taxonomy of the amended charter (it may add
        /// directions, kinds and names, not remove them).
        #[arg(long)]
        taxonomy: Option<PathBuf>,
        /// A new name for the federation.
        #[arg(long)]
        name: Option<String>,
        /// Creation time (YYYY-MM-DD, or an RFC 3339 time such as 2026-03-01T09:00:00Z);
        /// default: now.
        #[arg(long, value_parser = util::parse_time)]
        created: Option<Timestamp>,
        /// The draft to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Add your member root key's signature to a charter file, in place.
    Sign {
        /// The charter draft (`charter new --out`), signed in place.
        file: PathBuf,
        /// Your member's root key file (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
    },
    /// Show a charter's members, threshold, federation id and signatures; exits non-zero for a
    /// genesis charter not every founder has signed yet, or a signature that is invalid.
    Show {
        /// The charter file (a draft or signed).
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct DelegateArgs {
    #[command(flatten)]
    charter: util::CharterArgs,
    /// The delegating member's code, e.g. KZ.
    #[arg(long)]
    member: String,
    /// The member's root key file (PKCS#8 PEM), which signs the delegation.
    #[arg(long)]
    root_key: PathBuf,
    /// The publisher's public key (ed25519:<hex>) or its key file.
    #[arg(long)]
    publisher: String,
    /// The publisher's name, e.g. "Ministry of Digital Development".
    #[arg(long)]
    name: String,
    /// Record kinds it may publish (comma-separated; default all).
    #[arg(long, num_args = 1..)]
    kinds: Vec<String>,
    /// Directions it may publish in (comma-separated; default all).
    #[arg(long, num_args = 1..)]
    directions: Vec<String>,
    /// Start of validity (YYYY-MM-DD, or an RFC 3339 time such as 2026-03-01T09:00:00Z); default: now.
    #[arg(long, value_parser = util::parse_time)]
    from: Option<Timestamp>,
    /// End of validity (YYYY-MM-DD: the end of that day, UTC; or an RFC 3339 time such as 2026-03-01T09:00:00Z); default: none.
    #[arg(long, value_parser = util::parse_end_time)]
    until: Option<Timestamp>,
    /// The delegation file to write, to submit to the member's node.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
enum CertCmd {
    /// Certify a libp2p node (its ed25519 node key) as a node of the member.
    Node {
        #[command(flatten)]
        charter: util::CharterArgs,
        /// The certifying member's code, e.g. KZ.
        #[arg(long)]
        member: String,
        /// The member's root key file (PKCS#8 PEM), which signs the certificate.
        #[arg(long)]
        root_key: PathBuf,
        /// The node's key file, or its public key (ed25519:<hex>).
        #[arg(long)]
        node_key: String,
        /// A label for operators, e.g. "primary node, Astana".
        #[arg(long)]
        label: Option<String>,
        /// The certificate file to write (the node's `node_cert` in node.toml).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["delegation", "node_cert", "revoke_key"])))]
struct RevokeArgs {
    #[command(flatten)]
    charter: util::CharterArgs,
    /// The revoking member's code, e.g. KZ.
    #[arg(long)]
    member: String,
    /// The signing key: the member root key, or (for --revoke-key) the revoked key itself.
    #[arg(long)]
    key: PathBuf,
    /// Revoke a delegation by id.
    #[arg(long)]
    delegation: Option<ObjectId>,
    /// Revoke a node certificate by id.
    #[arg(long)]
    node_cert: Option<ObjectId>,
    /// Revoke a publisher or node key (public key or key file).
    #[arg(long)]
    revoke_key: Option<String>,
    /// From when (YYYY-MM-DD, or an RFC 3339 time such as 2026-03-01T09:00:00Z); default: now. Objects created from then on are refused.
    #[arg(long, value_parser = util::parse_time)]
    effective: Option<Timestamp>,
    /// Why, for the federation's operators and analysts (shown with the revocation).
    #[arg(long)]
    reason: Option<String>,
    /// The revocation file to write, to submit to the member's node.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct RetractArgs {
    #[command(flatten)]
    charter: util::CharterArgs,
    /// The record's member code, e.g. KZ.
    #[arg(long)]
    member: String,
    /// The key that signs the retraction: the record's publisher's, or the member's root key.
    #[arg(long)]
    key: PathBuf,
    /// The record's id (64 hex digits).
    #[arg(long)]
    record: ObjectId,
    /// Why it is retracted (shown to analysts with the record).
    #[arg(long)]
    reason: String,
    /// The retraction file to write, to submit to the member's node.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct SignArgs {
    /// Markdown with YAML front matter, or JSON.
    input: PathBuf,
    /// A file to attach (repeat for each); front matter `attachments:` entries with `path`
    /// attach files too.
    #[arg(long = "attach")]
    attach: Vec<PathBuf>,
    /// The publisher's key.
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    charter: util::CharterArgs,
    /// Creation time (YYYY-MM-DD, or an RFC 3339 time such as 2026-03-01T09:00:00Z); default: now.
    #[arg(long, value_parser = util::parse_time)]
    created: Option<Timestamp>,
    /// The signed record file to write (`accord submit` sends it).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// Object files (single objects or CBOR sequences).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The federation's genesis charter (charter.cbor).
    #[arg(long)]
    charter: PathBuf,
    /// Trust objects to take into account (delegations, certificates, revocations, amendments).
    #[arg(long = "with")]
    with: Vec<PathBuf>,
    /// Judge as of this time instead of now (YYYY-MM-DD, or an RFC 3339 time such as 2026-03-01T09:00:00Z).
    #[arg(long, value_parser = util::parse_time)]
    at: Option<Timestamp>,
}

#[derive(Debug, Args)]
struct DevnetArgs {
    /// Member codes, comma-separated, e.g. KZ,BY,AM.
    #[arg(long, default_value = "KZ,BY,AM")]
    members: Vec<String>,
    /// The directory to write the federation into (charter, keys, configs; development only).
    #[arg(long)]
    out: PathBuf,
    /// Member i listens for peers on base+2i and serves its API on base+2i+1.
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
    /// Write into a non-empty directory.
    #[arg(long)]
    force: bool,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Key(KeyCmd::New { out, force }) => keys_cmd::new(&out, force),
        Command::Key(KeyCmd::Show { file }) => keys_cmd::show(&file),
        Command::Charter(CharterCmd::New {
            name,
            members,
            threshold,
            taxonomy,
            created,
            out,
            force,
        }) => charter_cmd::new(
            &name,
            &members,
            threshold,
            taxonomy.as_deref(),
            created,
            &out,
            force,
        ),
        Command::Charter(CharterCmd::Amend {
            from,
            add_member,
            remove_member,
            replace_root,
            threshold,
            rules,
            taxonomy,
            name,
            created,
            out,
            force,
            node,
        }) => {
            let taxonomy = taxonomy
                .map(|p| {
                    accord_core::Taxonomy::from_toml(&util::read_text(&p)?)
                        .map_err(|e| anyhow::anyhow!("taxonomy {}: {e}", p.display()))
                })
                .transpose()?;
            let changes = charter_cmd::Changes {
                add_members: add_member,
                remove_members: remove_member,
                replace_roots: replace_root,
                threshold,
                rules,
                name,
                taxonomy,
            };
            let (current, origin) = match &from {
                Some(p) => {
                    let bytes = util::read(p)?;
                    let origin = p.display().to_string();
                    // An amendment of a charter no longer in force is refused by every node,
                    // after its signatures were gathered: checked now when the node answers.
                    match runtime()?.block_on(charter_cmd::current_from_node(&node.node)) {
                        Ok(in_force) => {
                            charter_cmd::same_charter(&bytes, &origin, &in_force, &node.node)?
                        }
                        Err(e) => eprintln!(
                            "warning: could not ask {} for the charter in force ({e:#}); drafting on {origin} as given",
                            node.node
                        ),
                    }
                    (bytes, origin)
                }
                None => (
                    runtime()?.block_on(charter_cmd::current_from_node(&node.node))?,
                    format!("the charter in force at {}", node.node),
                ),
            };
            charter_cmd::amend(&current, &origin, &changes, created, &out, force)
        }
        Command::Charter(CharterCmd::Sign { file, key }) => charter_cmd::sign(&file, &key),
        Command::Charter(CharterCmd::Show { file }) => charter_cmd::show(&file),
        Command::Delegate(a) => objects_cmd::delegate(
            &a.charter,
            &a.member,
            &a.root_key,
            &a.publisher,
            &a.name,
            &a.kinds,
            &a.directions,
            a.from,
            a.until,
            &a.out,
        ),
        Command::Cert(CertCmd::Node {
            charter,
            member,
            root_key,
            node_key,
            label,
            out,
        }) => objects_cmd::cert_node(&charter, &member, &root_key, &node_key, label, &out),
        Command::Revoke(a) => {
            let target = match (a.delegation, a.node_cert, a.revoke_key) {
                (Some(id), _, _) => objects_cmd::RevokeTarget::Delegation(id),
                (_, Some(id), _) => objects_cmd::RevokeTarget::NodeCert(id),
                (_, _, Some(k)) => objects_cmd::RevokeTarget::Key(k),
                _ => anyhow::bail!("give one of --delegation, --node-cert or --revoke-key"),
            };
            objects_cmd::revoke(
                &a.charter,
                &a.member,
                &a.key,
                target,
                a.effective,
                a.reason,
                &a.out,
            )
        }
        Command::Retract(a) => {
            objects_cmd::retract(&a.charter, &a.member, &a.key, a.record, &a.reason, &a.out)
        }
        Command::Sign(a) => {
            objects_cmd::sign(&a.input, &a.attach, &a.key, &a.charter, a.created, &a.out)
        }
        Command::Verify(a) => verify_cmd::verify(&a.files, &a.charter, &a.with, a.at),
        Command::Inspect { file } => verify_cmd::inspect(&file),
        Command::Evidence(EvidenceCmd::Verify {
            files,
            charter,
            with,
        }) => evidence_cmd::verify(&files, charter.as_deref(), &with),
        Command::Devnet(a) => devnet_cmd::devnet(&a.members, &a.out, a.base_port, a.force),
        Command::ExtractText {
            timeout_secs,
            media_type,
            name,
        } => {
            let mut limits = accord_search::extract::ExtractLimits::default();
            if timeout_secs > 0 {
                limits.timeout = std::time::Duration::from_secs(timeout_secs);
            }
            std::process::exit(accord_search::extract::run_child(
                &media_type,
                &name,
                &limits,
            ))
        }
        Command::Run { config } => runtime()?.block_on(node_cmd::run(&config)),
        Command::Submit {
            files,
            attach,
            node,
        } => runtime()?.block_on(node_cmd::submit(&files, &attach, &node.node)),
        Command::Publish {
            input,
            attach,
            key,
            charter,
            with,
            again,
            node,
        } => runtime()?.block_on(node_cmd::publish(
            &input,
            &attach,
            &key,
            charter.as_deref().map(|c| (c, with.as_slice())),
            &node.node,
            again,
        )),
        Command::Status { node } => runtime()?.block_on(node_cmd::status(&node.node)),
        Command::Peers { node } => runtime()?.block_on(node_cmd::peers(&node.node)),
        Command::Query {
            text,
            filters,
            format,
            limit,
            sort,
            node,
        } => runtime()?.block_on(query_cmd::query(
            &node.node,
            text.as_deref(),
            &filters,
            &format,
            limit,
            sort.as_deref(),
        )),
        Command::Show { id, node } => runtime()?.block_on(query_cmd::show(&node.node, &id)),
        Command::Follow {
            text,
            filters,
            node,
        } => runtime()?.block_on(query_cmd::follow(&node.node, text.as_deref(), &filters)),
        Command::Export {
            text,
            filters,
            format,
            out,
            bom,
            delimiter,
            node,
        } => {
            if bom && format != "csv" {
                anyhow::bail!("--bom applies to --format csv only");
            }
            if delimiter != "comma" && format != "csv" {
                anyhow::bail!("--delimiter applies to --format csv only");
            }
            runtime()?.block_on(query_cmd::export(
                &node.node,
                text.as_deref(),
                &filters,
                &format,
                &out,
                bom,
                if delimiter == "semicolon" { ';' } else { ',' },
            ))
        }
        Command::Reindex { config } => node_cmd::reindex(&config),
        Command::Backup {
            out,
            blobs,
            require_blobs,
            node,
        } => runtime()?.block_on(backup_cmd::backup(
            &node.node,
            &out,
            blobs.as_deref().map(|b| (b, require_blobs)),
        )),
        Command::Restore {
            file,
            data_dir,
            blobs,
        } => backup_cmd::restore(&file, &data_dir, blobs.as_deref()),
        Command::Check { config, repair } => backup_cmd::check(&config, repair),
        Command::Init {
            charter,
            member,
            data_dir,
            listen,
            api,
            bootstrap,
        } => init_cmd::init(&charter, &member, &data_dir, &listen, &api, &bootstrap),
        Command::Demo { data, port } => runtime()?.block_on(demo_cmd::demo(data, port)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// mimalloc rather than glibc malloc: at 100,000 records glibc's per-thread arenas held ~200 MiB
/// the node no longer used (docs/BENCHMARKS.md, "Footprint"). Its settings:
/// [`accord_node::allocator`].
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Output to a pipe whose reader has gone (`accord charter show … | head`) ends the command
/// quietly, as Unix tools do, instead of with a panic message and a backtrace: `println!`
/// panics on a closed pipe, and the hook turns exactly that panic into exit status 141 (what a
/// shell reports for a writer killed by SIGPIPE). Every other panic is reported as before.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info)
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let default = match cli.command {
        Command::Run { .. } => accord_node::DEFAULT_LOG_FILTER,
        // A child's standard error carries its one line of result (see `run_child`).
        Command::ExtractText { .. } => "off",
        // The TLS verifier logs a refused certificate at error level; the command's own error
        // says it, with the way out.
        _ => "warn,rustls_platform_verifier=off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().init(),
    }
    // Commands that run a node or open its store start again with the allocator's settings
    // when the environment lacks them (the unit and the container set them).
    if matches!(
        cli.command,
        Command::Run { .. }
            | Command::Demo { .. }
            | Command::Restore { .. }
            | Command::Check { .. }
            | Command::Reindex { .. }
    ) && let Some(e) = accord_node::allocator::exec_with_allocator_env()
    {
        tracing::warn!(
            error = %e,
            "cannot start again with the allocator's settings ({}): running with its defaults, which keep more memory resident; set them in the environment",
            accord_node::allocator::ALLOCATOR_ENV
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: a library error that already
/// quotes its cause in its own text (`network: {0}`) is not followed by the same text again.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("invalid listen address /ip4/127.0.0.1/tcp/1: Address already in use")]
        Listen,
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("network: {0}")]
        Net(#[from] Inner),
    }

    #[test]
    fn each_cause_is_printed_once() {
        let e = anyhow::Error::from(Outer::from(Inner::Listen));
        assert_eq!(
            one_line(&e),
            "network: invalid listen address /ip4/127.0.0.1/tcp/1: Address already in use"
        );
        let e = anyhow::Error::from(std::io::Error::other("disk full")).context("writing x");
        assert_eq!(one_line(&e), "writing x: disk full");
    }
}
