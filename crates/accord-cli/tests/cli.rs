//! End-to-end tests of the offline CLI flows: the built `accord` binary is run on files in
//! a temporary directory, exactly as a newcomer would paste the commands.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use sha2::{Digest, Sha256};

fn accord(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("accord").unwrap();
    c.current_dir(dir);
    c
}

const RECORD_MD: &str = "---
member: KZ
kind: regulatory-note
directions: [regulation, e-government]
lang: ru
title: \"Электронное правительство: проактивные услуги\"
summary: \"Краткое описание\"
tags: [egov]
translations:
  en:
    title: \"E-government: proactive services\"
    body: \"English body.\"
  kk:
    title: \"Электрондық үкімет\"
---
# Электронное правительство

Текст записи.
";

fn devnet(dir: &Path) {
    accord(dir)
        .args(["devnet", "--members", "KZ,BY,AM", "--out", "dev"])
        .assert()
        .success();
}

/// Reads the body bytes out of an envelope `[1, bstr body, sigs]` with the minimal CBOR
/// needed: independent of the crate's decoder, like an outside implementer would.
fn body_bytes(envelope: &[u8]) -> Vec<u8> {
    assert_eq!(envelope[0], 0x83, "a 3-element array");
    assert_eq!(envelope[1], 0x01, "version 1");
    let (len, start) = match envelope[2] {
        b @ 0x40..=0x57 => ((b - 0x40) as usize, 3),
        0x58 => (envelope[3] as usize, 4),
        0x59 => (u16::from_be_bytes([envelope[3], envelope[4]]) as usize, 5),
        0x5a => (
            u32::from_be_bytes(envelope[3..7].try_into().unwrap()) as usize,
            7,
        ),
        b => panic!("unexpected head {b:#x}"),
    };
    envelope[start..start + len].to_vec()
}

#[test]
fn devnet_writes_everything_with_private_keys_0600() {
    let t = tempfile::tempdir().unwrap();
    accord(t.path())
        .args([
            "devnet",
            "--members",
            "KZ,BY,AM",
            "--out",
            "dev",
            "--base-port",
            "9100",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("api http://127.0.0.1:9101"));
    use std::os::unix::fs::PermissionsExt;
    for code in ["KZ", "BY", "AM"] {
        for f in [
            "root.key",
            "publisher.key",
            "node.key",
            "delegation.cbor",
            "node-cert.cbor",
            "node.toml",
        ] {
            assert!(
                t.path().join("dev").join(code).join(f).exists(),
                "{code}/{f}"
            );
        }
        let key = t.path().join("dev").join(code).join("root.key");
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            fs::read_to_string(&key)
                .unwrap()
                .contains("DEVELOPMENT KEY")
        );
    }
    let by = fs::read_to_string(t.path().join("dev/BY/node.toml")).unwrap();
    assert!(
        by.contains("/ip4/127.0.0.1/tcp/9102\"]"),
        "BY listens on base+2: {by}"
    );
    assert!(by.contains("127.0.0.1:9103"), "BY API on base+3");
    assert!(
        by.contains("/ip4/127.0.0.1/tcp/9100/p2p/12D3KooW"),
        "KZ is a bootstrap peer of BY"
    );
    assert!(
        by.contains("/ip4/127.0.0.1/tcp/9104/p2p/12D3KooW"),
        "AM is a bootstrap peer of BY"
    );
    // Refuses to overwrite.
    accord(t.path())
        .args(["devnet", "--out", "dev"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not empty"));
    accord(t.path())
        .args(["charter", "show", "dev/charter.cbor"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "complete and valid genesis charter",
        ));
}

#[test]
fn newcomer_flow_sign_verify_flip_byte() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    devnet(d);
    fs::write(d.join("note.md"), RECORD_MD).unwrap();
    let out = accord(d)
        .args([
            "sign",
            "note.md",
            "--key",
            "dev/KZ/publisher.key",
            "--charter",
            "dev/charter.cbor",
            "--out",
            "note.cbor",
        ])
        .assert()
        .success();
    let id = String::from_utf8(out.get_output().stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    // The printed id is the SHA-256 of the body bytes.
    let env = fs::read(d.join("note.cbor")).unwrap();
    assert_eq!(id, hex::encode(Sha256::digest(body_bytes(&env))));

    accord(d)
        .args([
            "verify",
            "note.cbor",
            "--charter",
            "dev/charter.cbor",
            "--with",
            "dev/KZ/delegation.cbor",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "valid  {id}  record  member=KZ"
        )))
        .stdout(predicate::str::contains("status=valid"));

    // Without the delegation the record cannot be verified, and says why.
    accord(d)
        .args(["verify", "note.cbor", "--charter", "dev/charter.cbor"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no delegation yet for publisher"));

    // Flip one byte inside the body: the signature no longer matches.
    let mut bad = env.clone();
    let i = env.len() / 2;
    bad[i] ^= 0x01;
    fs::write(d.join("bad.cbor"), &bad).unwrap();
    accord(d)
        .args([
            "verify",
            "bad.cbor",
            "--charter",
            "dev/charter.cbor",
            "--with",
            "dev/KZ/delegation.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid"));

    // Another member's publisher key cannot sign for KZ.
    accord(d)
        .args([
            "sign",
            "note.md",
            "--key",
            "dev/BY/publisher.key",
            "--charter",
            "dev/charter.cbor",
            "--out",
            "x.cbor",
        ])
        .assert()
        .success();
    accord(d)
        .args([
            "verify",
            "x.cbor",
            "--charter",
            "dev/charter.cbor",
            "--with",
            "dev/KZ/delegation.cbor",
            "--with",
            "dev/BY/delegation.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no delegation yet for publisher"));

    // inspect shows the body as JSON.
    accord(d)
        .args(["inspect", "note.cbor"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"kind\": \"regulatory-note\""))
        .stdout(predicate::str::contains(&id));
}

#[test]
fn json_record_input_signs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    devnet(d);
    fs::write(
        d.join("r.json"),
        r#"{"member":"AM","kind":"dataset","directions":["digital-divide"],"lang":"hy","title":"Տվյալներ","body":"Բովանդակություն"}"#,
    )
    .unwrap();
    accord(d)
        .args([
            "sign",
            "r.json",
            "--key",
            "dev/AM/publisher.key",
            "--charter",
            "dev/charter.cbor",
            "--out",
            "r.cbor",
        ])
        .assert()
        .success();
    accord(d)
        .args([
            "verify",
            "r.cbor",
            "dev/AM/delegation.cbor",
            "--charter",
            "dev/charter.cbor",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("member=AM"));
}

#[test]
fn bad_record_inputs_name_the_field() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    devnet(d);
    let cases = [
        (
            RECORD_MD.replace("kind: regulatory-note", "kind: memo"),
            "kind \"memo\" is not in the federation's taxonomy",
        ),
        (
            RECORD_MD.replace(
                "directions: [regulation, e-government]",
                "directions: [space]",
            ),
            "direction \"space\"",
        ),
        (RECORD_MD.replace("member: KZ", "member: kz"), "member"),
        (
            RECORD_MD.replace("member: KZ", "member: UZ"),
            "UZ is not a member",
        ),
        (RECORD_MD.replace("lang: ru", "lang: russian!"), "lang"),
        (
            RECORD_MD.replace("tags: [egov]", "tags: [egov]\ncolour: red"),
            "unknown field `colour`",
        ),
        (
            RECORD_MD.replace("kind: regulatory-note\n", ""),
            "missing field `kind`",
        ),
        (
            RECORD_MD.replace("---\n# Электронное", "# Электронное"),
            "front matter",
        ),
        // A Cyrillic К typed for the Latin K looks right on screen.
        (
            RECORD_MD.replace("member: KZ", "member: КZ"),
            "is not a Latin letter",
        ),
        (
            RECORD_MD.replace("lang: ru", "lang: kz"),
            "is a country code, not a language",
        ),
        (
            RECORD_MD.replace(
                "tags: [egov]",
                "tags: [egov]\nlinks:\n  - url: https://adilet.zan.kz\n    titel: Закон",
            ),
            "unknown field `titel`",
        ),
        // The line of the file, counting the opening `---` (tags are on its line 8).
        (
            RECORD_MD.replace("tags: [egov]", "tags: 5"),
            "line 8 column",
        ),
        // YAML would read " #5 applies" as a comment and sign "Rule".
        (
            RECORD_MD.replace("summary: \"Краткое описание\"", "summary: Rule #5 applies"),
            "line 7: YAML reads \" #\" as the start of a comment, so \"Rule #5 applies\" would be signed as \"Rule\": put the value in double quotes",
        ),
        // A date before 1970 is named as too early, not as misformed.
        (
            RECORD_MD.replace("tags: [egov]", "tags: [egov]\ndate: 1965-05-01"),
            "\"1965-05-01\" is before 1970-01-01",
        ),
        // A body over the charter's bound for one object: its size, and what to do.
        (
            format!("{RECORD_MD}\n{}", "слово ".repeat(100_000)),
            "bytes (1.00 MiB) for one object; move long text into an attached file",
        ),
        // A colon and space in an unquoted title: the parser's words, and what to do.
        (
            RECORD_MD.replace("summary: \"Краткое описание\"", "summary: Закон: о данных"),
            "goes in double quotes",
        ),
    ];
    // A wrong field is named without the quoting advice, which is for what YAML cannot read.
    // Signs `text` as a file of its own; the command must fail.
    let refused = |name: &str, text: &str| {
        fs::write(d.join(name), text).unwrap();
        accord(d)
            .args([
                "sign",
                name,
                "--key",
                "dev/KZ/publisher.key",
                "--charter",
                "dev/charter.cbor",
                "--out",
                "o.cbor",
            ])
            .assert()
            .failure()
    };
    refused(
        "missing.md",
        &RECORD_MD.replace("kind: regulatory-note\n", ""),
    )
    .stderr(predicate::str::contains("missing field `kind`"))
    .stderr(predicate::str::contains("double quotes").not());
    for (i, (text, expect)) in cases.iter().enumerate() {
        refused(&format!("bad{i}.md"), text)
            .stderr(predicate::str::contains(*expect))
            .stderr(predicate::str::contains("panicked").not());
    }
    // A JSON document saved with a byte-order mark is read; a file in a legacy encoding is
    // named as such.
    let json = r#"{"member":"KZ","kind":"regulatory-note","directions":["regulation"],"lang":"en","title":"T","body":"B"}"#;
    fs::write(d.join("bom.json"), format!("\u{feff}{json}")).unwrap();
    fs::write(
        d.join("cp1251.md"),
        b"---\nmember: KZ\ntitle: \xcf\xf0\xe8\n---\n",
    )
    .unwrap();
    let sign = |name: &str| {
        let mut c = accord(d);
        c.args([
            "sign",
            name,
            "--key",
            "dev/KZ/publisher.key",
            "--charter",
            "dev/charter.cbor",
            "--out",
            "o.cbor",
        ]);
        c
    };
    sign("bom.json").assert().success();
    sign("cp1251.md")
        .assert()
        .failure()
        .stderr(predicate::str::contains("save it as UTF-8"));
}

#[test]
fn founding_a_federation_by_hand() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let mut keys = Vec::new();
    for c in ["kz", "by", "am"] {
        let out = accord(d)
            .args(["key", "new", "--out", &format!("{c}.key")])
            .assert()
            .success();
        keys.push(
            String::from_utf8(out.get_output().stdout.clone())
                .unwrap()
                .trim()
                .to_string(),
        );
    }
    // A key is never overwritten silently.
    accord(d)
        .args(["key", "new", "--out", "kz.key"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already exists"));
    accord(d)
        .args(["key", "show", "kz.key"])
        .assert()
        .success()
        .stdout(predicate::str::contains(&keys[0]))
        .stdout(predicate::str::contains("12D3KooW"));
    accord(d)
        .args([
            "charter",
            "new",
            "--name",
            "Test federation",
            "--threshold",
            "2",
            "--out",
            "charter.cbor",
        ])
        .args(["--member", &format!("KZ=Kazakhstan={}", keys[0])])
        .args(["--member", &format!("BY=Belarus={}", keys[1])])
        .args(["--member", &format!("AM=Armenia={}", keys[2])])
        .assert()
        .success()
        .stdout(predicate::str::contains("federation id: "));
    // Shown in full, and the exit status says it is not ready.
    accord(d)
        .args(["charter", "show", "charter.cbor"])
        .assert()
        .failure()
        .stdout(predicate::str::contains("missing"))
        .stderr(predicate::str::contains("incomplete"));
    // Not yet complete: nothing can be certified against it.
    accord(d)
        .args([
            "cert",
            "node",
            "--charter",
            "charter.cbor",
            "--member",
            "KZ",
            "--root-key",
            "kz.key",
            "--node-key",
            "by.key",
            "--out",
            "n.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("lacks the signature"));
    for c in ["kz", "by"] {
        accord(d)
            .args([
                "charter",
                "sign",
                "charter.cbor",
                "--key",
                &format!("{c}.key"),
            ])
            .assert()
            .success();
    }
    accord(d)
        .args(["charter", "sign", "charter.cbor", "--key", "kz.key"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already signed"));
    accord(d)
        .args(["key", "new", "--out", "stranger.key"])
        .assert()
        .success();
    accord(d)
        .args(["charter", "sign", "charter.cbor", "--key", "stranger.key"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not the root key of any member"));
    accord(d)
        .args(["charter", "sign", "charter.cbor", "--key", "am.key"])
        .assert()
        .success();
    accord(d)
        .args(["charter", "show", "charter.cbor"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "complete and valid genesis charter",
        ));

    // Delegation, scope enforced at verify time.
    accord(d)
        .args(["key", "new", "--out", "ministry.key"])
        .assert()
        .success();
    accord(d)
        .args([
            "delegate",
            "--charter",
            "charter.cbor",
            "--member",
            "KZ",
            "--root-key",
            "kz.key",
            "--publisher",
            "ministry.key",
        ])
        .args([
            "--name",
            "Ministry of Digital Development",
            "--kinds",
            "regulatory-note",
            "--out",
            "del.cbor",
        ])
        .assert()
        .success();
    // The wrong root key is caught before anything is written.
    accord(d)
        .args([
            "delegate",
            "--charter",
            "charter.cbor",
            "--member",
            "KZ",
            "--root-key",
            "by.key",
            "--publisher",
            "ministry.key",
        ])
        .args(["--name", "X", "--out", "del2.cbor"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not by the member's root key"));
    assert!(!d.join("del2.cbor").exists());
    fs::write(d.join("note.md"), RECORD_MD).unwrap();
    accord(d)
        .args([
            "sign",
            "note.md",
            "--key",
            "ministry.key",
            "--charter",
            "charter.cbor",
            "--out",
            "note.cbor",
        ])
        .assert()
        .success();
    accord(d)
        .args([
            "verify",
            "note.cbor",
            "--charter",
            "charter.cbor",
            "--with",
            "del.cbor",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "publisher=\"Ministry of Digital Development\"",
        ));
    fs::write(
        d.join("case.md"),
        RECORD_MD.replace("kind: regulatory-note", "kind: platform-case-study"),
    )
    .unwrap();
    accord(d)
        .args([
            "sign",
            "case.md",
            "--key",
            "ministry.key",
            "--charter",
            "charter.cbor",
            "--out",
            "case.cbor",
        ])
        .assert()
        .success();
    accord(d)
        .args([
            "verify",
            "case.cbor",
            "--charter",
            "charter.cbor",
            "--with",
            "del.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("outside delegation"));

    // Revoke the delegation from a past date: the record signed after it is refused.
    let del_id = String::from_utf8(
        accord(d)
            .args(["inspect", "del.cbor"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    let del_id = del_id.split("\"id\": \"").nth(1).unwrap()[..64].to_string();
    accord(d)
        .args([
            "revoke",
            "--charter",
            "charter.cbor",
            "--member",
            "KZ",
            "--key",
            "kz.key",
            "--delegation",
            &del_id,
        ])
        .args([
            "--effective",
            "2020-01-01",
            "--reason",
            "key lost",
            "--out",
            "rev.cbor",
        ])
        .assert()
        .success();
    accord(d)
        .args([
            "verify",
            "note.cbor",
            "--charter",
            "charter.cbor",
            "--with",
            "del.cbor",
            "--with",
            "rev.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("revoked since 2020-01-01"));

    // Node certificate: prints the peer id.
    accord(d)
        .args(["key", "new", "--out", "node.key"])
        .assert()
        .success();
    accord(d)
        .args([
            "cert",
            "node",
            "--charter",
            "charter.cbor",
            "--member",
            "KZ",
            "--root-key",
            "kz.key",
            "--node-key",
            "node.key",
            "--out",
            "node-cert.cbor",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("certified peer id 12D3KooW"));
}

#[test]
fn wrong_flags_and_files_fail_with_one_line() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    accord(d)
        .args(["verify", "x.cbor", "--charter", "none.cbor"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot read none.cbor"));
    fs::write(d.join("junk.cbor"), b"\xff\x00garbage").unwrap();
    devnet(d);
    accord(d)
        .args(["verify", "junk.cbor", "--charter", "dev/charter.cbor"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a CBOR object file"));
    accord(d)
        .args([
            "verify",
            "dev/KZ/delegation.cbor",
            "--charter",
            "dev/KZ/delegation.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a valid genesis charter"));
    accord(d)
        .args(["key", "show", "dev/charter.cbor"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("error:"));
    accord(d)
        .args(["devnet", "--members", "K", "--out", "x"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("two capital Latin letters"));
    accord(d)
        .args(["sign"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("required"));
    // `--node` as `accord init --api` takes it (no scheme) is read as http://; another
    // scheme is refused naming the flag.
    accord(d)
        .args(["status", "--node", "127.0.0.1:9"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cannot reach the node at http://127.0.0.1:9",
        ));
    accord(d)
        .args(["status", "--node", "ftp://127.0.0.1:9"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--node"))
        .stderr(predicate::str::contains("http://HOST:PORT"));
    // A proxy's error page in front of the node: its status is said, not "not JSON".
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = proxy.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut c, _)) = proxy.accept() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let page = "<html><body>502 Bad Gateway</body></html>";
            let _ = write!(
                c,
                "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    accord(d)
        .args(["status", "--node", &format!("http://{addr}")])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "502 Bad Gateway, and the answer is not the node's JSON",
        ));
    let _ = server.join();
    // A date typed without its dashes is refused by `query` and `export`, not sent to the
    // node as Unix milliseconds (a moment of 1970).
    for (cmd, flag) in [
        ("query", "--since"),
        ("query", "--until"),
        ("export", "--since"),
    ] {
        let mut c = accord(d);
        c.args([cmd, flag, "20260131", "--node", "http://127.0.0.1:9"]);
        if cmd == "export" {
            c.args(["--out", "x.jsonl"]);
        }
        c.assert()
            .failure()
            .stderr(predicate::str::contains(flag))
            .stderr(predicate::str::contains("YYYY-MM-DD"));
    }
    // `follow` takes only filters a new record can be judged by: a status or a time it used
    // to list in its help and then ignored is refused by name.
    for flag in ["--status", "--since", "--until", "--date-from", "--date-to"] {
        accord(d)
            .args(["follow", flag, "retracted"])
            .assert()
            .failure()
            .stderr(predicate::str::contains(format!(
                "unexpected argument '{flag}'"
            )));
    }
}

/// A careless operator: checking a store that is not there (a shell without the service's
/// `ACCORD_DATA_DIR`) is refused rather than reported consistent (it created an empty store);
/// a demo pointed at a real node's directory, and a new charter draft over a signed charter,
/// are refused before anything is written; a wrong format names the choices.
#[test]
fn careless_operator_commands_refuse_to_clobber_or_to_check_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    devnet(d);
    accord(d)
        .args(["check", "--config", "dev/KZ/node.toml"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no store here"))
        .stderr(predicate::str::contains("ACCORD_DATA_DIR"));
    accord(d)
        .args(["reindex", "--config", "dev/KZ/node.toml"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no store here"));
    assert!(!d.join("dev/KZ/data").exists());
    let charter = fs::read(d.join("dev/charter.cbor")).unwrap();
    accord(d)
        .args([
            "charter",
            "new",
            "--name",
            "X",
            "--member",
            "KZ=Kazakhstan=00",
            "--threshold",
            "1",
            "--out",
            "dev/charter.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("refusing to replace it"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    accord(d)
        .args(["demo", "--data", "dev", "--port", &port.to_string()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("it is not a demo's"));
    assert_eq!(fs::read(d.join("dev/charter.cbor")).unwrap(), charter);
    accord(d)
        .args(["export", "--format", "xml", "--out", "x"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "possible values: jsonl, csv, cbor",
        ));
}

/// `accord … | head`: output to a pipe whose reader is gone ends quietly (status 141, as a
/// writer killed by SIGPIPE), without a panic message or a backtrace.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("accord"))
        .current_dir(tmp.path())
        .args(["key", "new", "--out", "k.key"])
        .env("RUST_BACKTRACE", "1")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(141), "{err}");
}

/// `accord evidence verify` checks a bundle's signatures and what its heartbeats show, and
/// with the charter and certificates that both keys were certified nodes; a forged or
/// tampered bundle, or one whose heartbeats do not show what it claims, fails.
#[test]
fn evidence_bundles_verify_offline_and_forgeries_fail() {
    use accord_core::Timestamp;
    use accord_core::devnet::DevFederation;
    use accord_core::health::{
        Evidence, Heartbeat, checkpoint_hasher, sign_evidence, sign_heartbeat,
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = Timestamp(1_700_000_000_000);
    let fed = DevFederation::new(&["KZ", "UZ"], [5; 32], t0).unwrap();
    fs::write(d.join("charter.cbor"), fed.genesis.as_bytes()).unwrap();
    let certs: Vec<u8> = [fed.node_cert(0), fed.node_cert(1)]
        .iter()
        .flat_map(|c| c.as_bytes().to_vec())
        .collect();
    fs::write(d.join("certs.cbor"), certs).unwrap();
    let uz = &fed.members[1].node;
    let hb = |issued: u64, count: u64| {
        let mut c = checkpoint_hasher();
        for i in 0..count {
            c.add(i, &[i as u8; 32]);
        }
        sign_heartbeat(
            Heartbeat {
                federation: fed.federation(),
                member: "UZ".into(),
                node: uz.public_key(),
                issued: Timestamp(t0.0 + issued),
                period_secs: 60,
                software: "accord/x".into(),
                protocol: "1.2".into(),
                charter_version: 1,
                uptime_secs: 1,
                counts: Default::default(),
                checkpoint: c.finish(Timestamp(t0.0)),
                reconciled: vec![],
                attachment_backlog: 0,
            },
            uz,
        )
        .unwrap()
    };
    let observed = {
        let mut c = checkpoint_hasher();
        for i in 0..5u64 {
            c.add(i, &[i as u8; 32]);
        }
        c.finish(Timestamp(t0.0))
    };
    let bundle = |heartbeats: Vec<Vec<u8>>, reconciled: u64| Evidence {
        federation: fed.federation(),
        observer: fed.members[0].node.public_key(),
        observer_member: "KZ".into(),
        created: Timestamp(t0.0 + 200_000),
        kind: "divergent".into(),
        subject: uz.public_key(),
        subject_member: "UZ".into(),
        heartbeats: heartbeats
            .into_iter()
            .map(serde_bytes::ByteBuf::from)
            .collect(),
        observed: Some(observed),
        reconciled_at: Some(Timestamp(t0.0 + reconciled)),
        explanation: "it claims 8 objects; this node holds 5".into(),
    };
    let good = bundle(
        vec![
            hb(60_000, 8).bytes().to_vec(),
            hb(120_000, 8).bytes().to_vec(),
        ],
        90_000,
    );
    let signed = sign_evidence(&good, &fed.members[0].node).unwrap();
    fs::write(d.join("good.cbor"), &signed).unwrap();
    accord(d)
        .args(["evidence", "verify", "good.cbor"])
        .assert()
        .success()
        .stdout(predicate::str::contains("valid  divergent  subject=UZ"))
        .stdout(predicate::str::contains("observer held: 5 objects"));
    accord(d)
        .args([
            "evidence",
            "verify",
            "good.cbor",
            "--charter",
            "charter.cbor",
        ])
        .args(["--with", "certs.cbor"])
        .assert()
        .success();
    // Without the certificates, the keys cannot be shown to be nodes of their members.
    accord(d)
        .args([
            "evidence",
            "verify",
            "good.cbor",
            "--charter",
            "charter.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("held no node certificate"));
    // One byte changed: the observer's signature fails.
    let mut tampered = signed.clone();
    let n = tampered.len();
    tampered[n - 80] ^= 1;
    fs::write(d.join("tampered.cbor"), &tampered).unwrap();
    accord(d)
        .args(["evidence", "verify", "tampered.cbor"])
        .assert()
        .failure();
    // Correctly signed, but the last heartbeat predates the reconciliation: it proves nothing.
    let early = bundle(vec![hb(60_000, 8).bytes().to_vec()], 90_000);
    fs::write(
        d.join("early.cbor"),
        sign_evidence(&early, &fed.members[0].node).unwrap(),
    )
    .unwrap();
    accord(d)
        .args(["evidence", "verify", "early.cbor"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "not signed after the observer's reconciliation",
        ));
    // A heartbeat that claims no more than the observer held proves nothing either.
    let honest = bundle(vec![hb(120_000, 5).bytes().to_vec()], 90_000);
    fs::write(
        d.join("honest.cbor"),
        sign_evidence(&honest, &fed.members[0].node).unwrap(),
    )
    .unwrap();
    accord(d)
        .args(["evidence", "verify", "honest.cbor"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("does not claim more"));
}

/// The federation changes its rules without editing CBOR by hand: a member's stolen root key
/// is replaced and the 1.3 rules adopted by an amendment that the charter's threshold of
/// members and the new key sign; until then it is refused, naming what is missing. An
/// amendment that changes nothing, or names a member that is not one, is refused by name.
#[test]
fn an_amendment_is_drafted_signed_by_the_threshold_and_the_new_key_and_verified() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    devnet(d);
    accord(d)
        .args(["key", "new", "--out", "by-new-root.key"])
        .assert()
        .success();
    accord(d)
        .args([
            "charter",
            "amend",
            "--from",
            "dev/charter.cbor",
            "--replace-root",
            "BY=by-new-root.key",
            "--rules",
            "3",
            "--out",
            "amendment.cbor",
            "--node",
            "http://127.0.0.1:9",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("amendment id: "))
        .stderr(predicate::str::contains(
            "signatures of 2 of these 3 root keys",
        ))
        .stderr(predicate::str::contains(
            "accord charter sign amendment.cbor",
        ));
    let verify = |expect_ok: bool, says: &str| {
        let out = accord(d)
            .args(["verify", "amendment.cbor", "--charter", "dev/charter.cbor"])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.success(), expect_ok, "{text}");
        assert!(text.contains(says), "{says:?} not in: {text}");
    };
    verify(false, "no signatures");
    let sign = |key: &str| {
        accord(d)
            .args(["charter", "sign", "amendment.cbor", "--key", key])
            .assert()
            .success();
    };
    sign("dev/KZ/root.key");
    verify(false, "1 signatures of version 1's members, needs 2");
    sign("dev/AM/root.key");
    // The threshold is met; the new root key has not signed yet.
    verify(false, "without its signature");
    sign("by-new-root.key");
    verify(true, "amendment.cbor");
    accord(d)
        .args(["charter", "show", "amendment.cbor"])
        .assert()
        .success()
        .stdout(predicate::str::contains("version:     2"))
        .stdout(predicate::str::contains("protocol 1.3 refusals"));
    // Rules this release does not implement are not adopted by it, nor are rules taken back.
    accord(d)
        .args([
            "charter",
            "amend",
            "--from",
            "dev/charter.cbor",
            "--rules",
            "4",
            "--out",
            "r4.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "implements the refusal rules up to 3",
        ));
    accord(d)
        .args([
            "charter",
            "amend",
            "--from",
            "amendment.cbor",
            "--rules",
            "2",
            "--out",
            "r2.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("rules are never taken back"));
    assert!(!d.join("r4.cbor").exists() && !d.join("r2.cbor").exists());
    accord(d)
        .args([
            "charter",
            "amend",
            "--from",
            "dev/charter.cbor",
            "--out",
            "same.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no change asked"));
    accord(d)
        .args([
            "charter",
            "amend",
            "--from",
            "dev/charter.cbor",
            "--remove-member",
            "UZ",
            "--out",
            "none.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "--remove-member \"UZ\": not a member",
        ));
}

/// CBOR text of fewer than 24 bytes.
fn cbor_text(s: &str) -> Vec<u8> {
    assert!(s.len() < 24);
    let mut out = vec![0x60 + s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

/// A charter written by a newer release: the devnet's genesis body with a field `extra` added
/// to the body and `rules2` to its `limits`, edited as bytes (the body is a short map whose
/// last field is `limits`, itself a short map: what follows `limits`'s entries is first more
/// of its own, then more of the body's).
fn charter_body_of_a_newer_release(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    assert!((0xa0..0xb7).contains(&out[0]), "the body is a short map");
    out[0] += 1;
    let key = cbor_text("limits");
    let at = out
        .windows(key.len())
        .rposition(|w| w == key.as_slice())
        .expect("a limits key")
        + key.len();
    assert!((0xa0..0xb7).contains(&out[at]), "limits is a short map");
    out[at] += 1;
    out.extend(cbor_text("rules2"));
    out.push(0x07);
    out.extend(cbor_text("extra"));
    out.extend(cbor_text("kept by newer releases"));
    out
}

/// A charter with fields this build does not know (a newer release wrote it) is shown with
/// them named, and its signers are warned that they sign what they cannot see; an amendment
/// drafted from it, which would leave them out of the next version, is refused, naming them
/// and saying a newer release must amend it. Nothing is written.
#[test]
fn a_charter_with_fields_of_a_newer_release_is_not_amended_by_this_one() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    devnet(d);
    let body = body_bytes(&fs::read(d.join("dev/charter.cbor")).unwrap());
    let draft = accord_core::SignedObject::unsigned(charter_body_of_a_newer_release(&body));
    fs::write(d.join("newer.cbor"), draft.as_bytes()).unwrap();
    for m in ["KZ", "BY", "AM"] {
        accord(d)
            .args(["charter", "sign", "newer.cbor", "--key"])
            .arg(format!("dev/{m}/root.key"))
            .assert()
            .success()
            .stderr(predicate::str::contains(
                "does not know and cannot show: extra, limits.rules2",
            ));
    }
    accord(d)
        .args(["charter", "show", "newer.cbor"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "fields this build does not know: extra, limits.rules2",
        ))
        .stdout(predicate::str::contains(
            "complete and valid genesis charter",
        ));
    accord(d)
        .args([
            "charter",
            "amend",
            "--from",
            "newer.cbor",
            "--threshold",
            "3",
        ])
        .args(["--out", "next.cbor", "--node", "http://127.0.0.1:9"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "newer.cbor has fields this build of accord",
        ))
        .stderr(predicate::str::contains("extra, limits.rules2"))
        .stderr(predicate::str::contains(
            "a newer release of accord must amend this charter",
        ));
    assert!(!d.join("next.cbor").exists());
    // The devnet's own charter, which this build wrote, is amended as ever.
    accord(d)
        .args([
            "charter",
            "amend",
            "--from",
            "dev/charter.cbor",
            "--threshold",
            "3",
        ])
        .args(["--out", "next.cbor", "--node", "http://127.0.0.1:9"])
        .assert()
        .success();
}

/// `accord charter amend --from FROM CHANGE… --out OUT` (drafted offline: the node it would ask
/// is not there), then `accord charter sign OUT` with each of `keys`.
fn amend_signed(d: &Path, from: &str, change: &[&str], out: &str, keys: &[&str]) {
    accord(d)
        .args(["charter", "amend", "--from", from])
        .args(change)
        .args(["--out", out, "--node", "http://127.0.0.1:9"])
        .assert()
        .success();
    for k in keys {
        accord(d)
            .args(["charter", "sign", out, "--key", k])
            .assert()
            .success();
    }
}

/// The stdout of a successful command, trimmed (an id the command printed).
fn stdout_of(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// After an amendment adds a member, the signing tools follow the charter in force when given
/// the amendment (`--with`), and refuse the new member without it; a new edition and a
/// retraction verify offline against the record they name; `sign` names a root key used for a
/// record and a key the delegation does not name, and never replaces the Markdown it signs.
#[test]
fn the_signing_tools_follow_the_amended_charter_and_check_editions_offline() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    devnet(d);
    for k in ["uz-root.key", "uz-pub.key"] {
        accord(d)
            .args(["key", "new", "--out", k])
            .assert()
            .success();
    }
    amend_signed(
        d,
        "dev/charter.cbor",
        &["--add-member", "UZ=Republic of Uzbekistan=uz-root.key"],
        "amendment.cbor",
        &["dev/KZ/root.key", "dev/AM/root.key", "uz-root.key"],
    );
    let delegate = |with: &[&str]| {
        let mut c = accord(d);
        c.args([
            "delegate",
            "--charter",
            "dev/charter.cbor",
            "--member",
            "UZ",
            "--root-key",
            "uz-root.key",
            "--publisher",
            "uz-pub.key",
            "--name",
            "Ministry of Digital Technologies",
            "--until",
            "2099-12-31",
            "--out",
            "uz-delegation.cbor",
        ]);
        for w in with {
            c.args(["--with", w]);
        }
        c
    };
    delegate(&[])
        .assert()
        .failure()
        .stderr(predicate::str::contains("UZ"));
    delegate(&["amendment.cbor"]).assert().success();
    let uz_md = RECORD_MD.replace("member: KZ", "member: UZ");
    fs::write(d.join("uz.md"), &uz_md).unwrap();
    let sign = |input: &str, key: &str, with: &[&str], out: &str| {
        let mut c = accord(d);
        c.args([
            "sign",
            input,
            "--key",
            key,
            "--charter",
            "dev/charter.cbor",
            "--out",
            out,
        ]);
        for w in with {
            c.args(["--with", w]);
        }
        c
    };
    // Without the amendment UZ is no member; with it (and the delegation) the record is
    // checked as the node will check it.
    sign("uz.md", "uz-pub.key", &[], "uz.cbor")
        .assert()
        .failure()
        .stderr(predicate::str::contains("UZ is not a member"));
    let first = stdout_of(sign(
        "uz.md",
        "uz-pub.key",
        &["amendment.cbor", "uz-delegation.cbor"],
        "uz.cbor",
    ));
    // The root key signs no record; a key the delegation does not name is named.
    sign("uz.md", "uz-root.key", &["amendment.cbor"], "x.cbor")
        .assert()
        .failure()
        .stderr(predicate::str::contains("root key of member UZ"));
    sign(
        "uz.md",
        "dev/KZ/publisher.key",
        &["amendment.cbor", "uz-delegation.cbor"],
        "x.cbor",
    )
    .assert()
    .failure()
    .stderr(predicate::str::contains("would wait at the node"));
    // The amendment alone (the delegation not at hand) signs, saying what was not checked.
    sign("uz.md", "uz-pub.key", &["amendment.cbor"], "uz-alone.cbor")
        .assert()
        .success()
        .stderr(predicate::str::contains("not checked offline"));
    // `--out` naming the Markdown itself is refused, and the Markdown is intact.
    sign("uz.md", "uz-pub.key", &["amendment.cbor"], "uz.md")
        .assert()
        .failure()
        .stderr(predicate::str::contains("is also an input of this command"));
    assert_eq!(fs::read_to_string(d.join("uz.md")).unwrap(), uz_md);
    // Nor a key, nor the charter or a --with file the command reads: each is left as it was.
    let kept: Vec<(&str, Vec<u8>)> = ["uz-pub.key", "dev/charter.cbor", "amendment.cbor"]
        .iter()
        .map(|f| (*f, fs::read(d.join(f)).unwrap()))
        .collect();
    for out in ["uz-pub.key", "dev/charter.cbor", "amendment.cbor"] {
        sign("uz.md", "uz-pub.key", &["amendment.cbor"], out)
            .assert()
            .failure()
            .stderr(
                predicate::str::contains("is also an input of this command")
                    .or(predicate::str::contains("is a key file")),
            );
    }
    let mut c = accord(d);
    c.args([
        "delegate",
        "--charter",
        "dev/charter.cbor",
        "--with",
        "amendment.cbor",
        "--member",
        "UZ",
        "--root-key",
        "uz-root.key",
        "--publisher",
        "uz-pub.key",
        "--name",
        "Ministry",
        "--out",
        "dev/charter.cbor",
    ]);
    c.assert()
        .failure()
        .stderr(predicate::str::contains("is also an input of this command"));
    // A key file the command does not read is refused as a key file.
    fs::copy(d.join("uz-root.key"), d.join("spare.key")).unwrap();
    let spare = fs::read(d.join("spare.key")).unwrap();
    sign("uz.md", "uz-pub.key", &["amendment.cbor"], "spare.key")
        .assert()
        .failure()
        .stderr(predicate::str::contains("is a key file"));
    assert_eq!(fs::read(d.join("spare.key")).unwrap(), spare);
    for (f, bytes) in &kept {
        assert_eq!(&fs::read(d.join(f)).unwrap(), bytes, "{f} was changed");
    }
    // A new edition verifies against the record it supersedes, given with --with.
    fs::write(
        d.join("uz2.md"),
        uz_md.replace(
            "tags: [egov]",
            &format!("tags: [egov]\nsupersedes: {first}"),
        ),
    )
    .unwrap();
    sign(
        "uz2.md",
        "uz-pub.key",
        &["amendment.cbor", "uz-delegation.cbor"],
        "uz2.cbor",
    )
    .assert()
    .success();
    let verify = |files: &[&str], with: &[&str]| {
        let mut c = accord(d);
        c.args(["verify", "--charter", "dev/charter.cbor"])
            .args(files);
        for w in with {
            c.args(["--with", w]);
        }
        c
    };
    verify(&["uz2.cbor"], &["amendment.cbor", "uz-delegation.cbor"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "record {first} is not known yet"
        )));
    verify(
        &["uz2.cbor"],
        &["amendment.cbor", "uz-delegation.cbor", "uz.cbor"],
    )
    .assert()
    .success()
    .stdout(predicate::str::contains("valid"));
    // So does a retraction, signed with the amendment in force.
    accord(d)
        .args([
            "retract",
            "--charter",
            "dev/charter.cbor",
            "--with",
            "amendment.cbor",
            "--member",
            "UZ",
            "--key",
            "uz-pub.key",
            "--record",
            &first,
            "--reason",
            "withdrawn",
            "--out",
            "retraction.cbor",
        ])
        .assert()
        .success();
    verify(
        &["uz.cbor", "retraction.cbor"],
        &["amendment.cbor", "uz-delegation.cbor"],
    )
    .assert()
    .success()
    .stdout(predicate::str::contains("retraction"));
    // A later version that removes UZ, given before the one that added it: every object is
    // judged by the charter in force at the end, so UZ's record no longer verifies.
    amend_signed(
        d,
        "amendment.cbor",
        &["--remove-member", "UZ"],
        "v3.cbor",
        &["dev/KZ/root.key", "dev/AM/root.key", "dev/BY/root.key"],
    );
    verify(
        &["uz.cbor"],
        &["v3.cbor", "amendment.cbor", "uz-delegation.cbor"],
    )
    .assert()
    .failure()
    .stderr(predicate::str::contains("UZ"));
    // A date typed without its dashes is no moment of 1970.
    accord(d)
        .args([
            "revoke",
            "--charter",
            "dev/charter.cbor",
            "--member",
            "KZ",
            "--key",
            "dev/KZ/root.key",
            "--revoke-key",
            "dev/KZ/publisher.key",
            "--effective",
            "20261201",
            "--out",
            "rev.cbor",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("Unix milliseconds"));
    assert!(!d.join("rev.cbor").exists());
}

/// A canned answer: its path, content type and body.
type Route = (String, &'static str, Vec<u8>);

/// The head of an HTTP request, read byte by byte up to its blank line.
fn read_head(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_string()
}

/// A node that answers with canned HTTP responses, by path, for a hostile node's answers: one
/// request per connection. The thread ends with the test process.
fn fake_node(routes: Vec<Route>) -> String {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let head = read_head(&mut stream);
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, ctype, body) = routes
                .iter()
                .find(|(p, _, _)| *p == path)
                .map(|(_, c, b)| ("200 OK", *c, b.clone()))
                .unwrap_or(("404 Not Found", "text/plain", b"not found".to_vec()));
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

/// `accord publish` reads the charter in force from the node, and a hostile node's answers
/// cannot lead it on: an object that is not the one asked for, a chain that ends at the
/// genesis before version 1, an implausible version, an answer larger than any charter — each
/// is refused with what was wrong, before anything is signed.
#[test]
fn a_node_that_lies_about_its_charter_cannot_lead_publish_on() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    devnet(d);
    fs::write(d.join("note.md"), RECORD_MD).unwrap();
    let genesis = fs::read(d.join("dev/charter.cbor")).unwrap();
    let g = hex::encode(Sha256::digest(body_bytes(&genesis)));
    let other = "ab".repeat(32);
    let federation = |charter_id: &str, version: u64| {
        format!(r#"{{"federation":"{g}","charter_id":"{charter_id}","version":{version}}}"#)
            .into_bytes()
    };
    let cases: Vec<(Vec<Route>, String)> = vec![
        (
            vec![
                (
                    "/v1/federation".into(),
                    "application/json",
                    federation(&other, 2),
                ),
                (
                    format!("/v1/objects/{other}"),
                    "application/cbor",
                    genesis.clone(),
                ),
            ],
            format!("the node answered {other} with another object"),
        ),
        (
            vec![
                (
                    "/v1/federation".into(),
                    "application/json",
                    federation(&g, 3),
                ),
                (
                    format!("/v1/objects/{g}"),
                    "application/cbor",
                    genesis.clone(),
                ),
            ],
            "its chain ends at the genesis where version 3 was expected".into(),
        ),
        (
            vec![(
                "/v1/federation".into(),
                "application/json",
                federation(&g, 5_000),
            )],
            "did not say a plausible charter version".into(),
        ),
        (
            vec![
                (
                    "/v1/federation".into(),
                    "application/json",
                    federation(&g, 1),
                ),
                (
                    format!("/v1/objects/{g}"),
                    "application/cbor",
                    vec![0u8; 2 << 20],
                ),
            ],
            "larger than 1048576 bytes, no charter".into(),
        ),
    ];
    for (routes, expected) in cases {
        let node = fake_node(routes);
        let out = accord(d)
            .args([
                "publish",
                "note.md",
                "--key",
                "dev/KZ/publisher.key",
                "--node",
                &node,
            ])
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains(&expected), "expected {expected:?} in: {err}");
    }
}

/// A TLS endpoint on loopback, as a node's reverse proxy would be, with a certificate for
/// 127.0.0.1 issued by a private certificate authority: it answers every request with a
/// proxy's 502 page. Returns the port and the authority's certificate (PEM).
fn tls_proxy_answering_502() -> (u16, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            // Serves until the test process ends; a client that refuses the certificate
            // ends its handshake, and the next one is taken.
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let page = "<html><body>502 Bad Gateway</body></html>";
                let answer = format!(
                    "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
    });
    (port, ca.pem())
}

/// A node behind a TLS reverse proxy is reached over HTTPS: its certificate is checked, against
/// the system's store and the private authority `ACCORD_CA_CERT` names; an untrusted one is
/// refused with that way out named, and a bad `ACCORD_CA_CERT` is named.
#[test]
fn https_reaches_a_node_behind_a_tls_proxy_whose_authority_is_trusted() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (port, ca_pem) = tls_proxy_answering_502();
    let ca = d.join("proxy-ca.pem");
    fs::write(&ca, ca_pem).unwrap();
    let url = format!("https://127.0.0.1:{port}");
    // The caller's proxies and log filter stay out of it.
    let accord = |d: &Path| {
        let mut c = accord(d);
        for v in [
            "RUST_LOG",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            c.env_remove(v);
        }
        c
    };
    // Trusted through ACCORD_CA_CERT: the request went over TLS and the proxy's page came back.
    let reaches_the_proxy = |c: &mut Command| {
        c.env("ACCORD_CA_CERT", &ca)
            .args(["status", "--node", &url])
            .assert()
            .failure()
            .stderr(predicate::str::contains(
                "502 Bad Gateway, and the answer is not the node's JSON",
            ));
    };
    reaches_the_proxy(&mut accord(d));
    // Not trusted without it: refused, and the way out named.
    accord(d)
        .env_remove("ACCORD_CA_CERT")
        .args(["status", "--node", &url])
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "cannot reach the node at {url}"
        )))
        .stderr(predicate::str::contains("TLS certificate is not trusted"))
        .stderr(predicate::str::contains("ACCORD_CA_CERT"))
        .stderr(predicate::str::contains("Bad Gateway").not())
        // One line: the verifier's own log line is not printed besides it.
        .stderr(predicate::str::contains("rustls").not());
    // A machine without a trust store of its own (a minimal container, played by pointing the
    // system store at an empty file): HTTPS trusts ACCORD_CA_CERT alone, plain HTTP works.
    let empty = d.join("empty.pem");
    fs::write(&empty, "").unwrap();
    reaches_the_proxy(
        accord(d)
            .env("SSL_CERT_FILE", &empty)
            .env("SSL_CERT_DIR", d.join("no-such-dir")),
    );
    accord(d)
        .env("SSL_CERT_FILE", &empty)
        .env("SSL_CERT_DIR", d.join("no-such-dir"))
        .env_remove("ACCORD_CA_CERT")
        .args(["status", "--node", "http://127.0.0.1:9"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cannot reach the node at http://127.0.0.1:9",
        ))
        .stderr(predicate::str::contains("HTTP client").not());
    // Another authority's certificate in ACCORD_CA_CERT: said to be the wrong one.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    other
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Another ministry's CA");
    let other_ca = d.join("other-ca.pem");
    fs::write(&other_ca, other.self_signed(&other_key).unwrap().pem()).unwrap();
    accord(d)
        .env("ACCORD_CA_CERT", &other_ca)
        .args(["status", "--node", &url])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "ACCORD_CA_CERT does not hold the authority that issued it",
        ));
    // A word like "certificate" in a plain-HTTP request gets no TLS hint.
    accord(d)
        .env_remove("ACCORD_CA_CERT")
        .args(["query", "certificate", "--node", "http://127.0.0.1:9"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot reach the node at"))
        .stderr(predicate::str::contains("TLS").not());
    // A redirect (a proxy sending http:// on to https://) is not followed: the address to give
    // is named.
    let redirecting = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain = redirecting.local_addr().unwrap();
    let to = url.clone();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut c, _)) = redirecting.accept() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 301 Moved Permanently\r\nlocation: {to}/v1/status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    accord(d)
        .args(["status", "--node", &format!("http://{plain}")])
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "answers with a redirect to {url}/v1/status: give --node as that address"
        )));
    let _ = server.join();
    // A file that is no certificate, and one that is missing, are named.
    let not_pem = d.join("notes.txt");
    fs::write(&not_pem, "just words").unwrap();
    accord(d)
        .env("ACCORD_CA_CERT", &not_pem)
        .args(["status", "--node", &url])
        .assert()
        .failure()
        .stderr(predicate::str::contains("ACCORD_CA_CERT="))
        .stderr(predicate::str::contains("no PEM certificate"));
    accord(d)
        .env("ACCORD_CA_CERT", d.join("missing.pem"))
        .args(["status", "--node", &url])
        .assert()
        .failure()
        .stderr(predicate::str::contains("missing.pem: cannot read it"));
}

/// A stand-in for a node that is busy at the first request (503 with `Retry-After: 1`) and
/// answers `ok_body` (JSON) after: its address, and how many requests it took.
fn busy_once_node(
    ok_body: String,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let head = read_head(&mut stream).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = stream.read_exact(&mut body);
            let answer = if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                let body = r#"{"error":"the node is busy: try again shortly"}"#;
                format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{ok_body}",
                    ok_body.len()
                )
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (addr, requests)
}

/// A node too busy receiving other submissions answers 503 with `Retry-After`: `accord submit`
/// sends the batch again when told, instead of leaving it half submitted, and says so.
#[test]
fn submit_sends_again_when_the_node_says_it_is_busy() {
    use std::sync::atomic::Ordering;
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    devnet(d);
    let (addr, posts) = busy_once_node(format!(
        r#"{{"results":[{{"id":"{}","status":"accepted","code":null,"reason":null}}]}}"#,
        "ab".repeat(32)
    ));
    let out = accord(d)
        .args([
            "submit",
            "dev/charter.cbor",
            "--node",
            &format!("http://{addr}"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "the node is busy receiving other submissions: sending again in 1 s (1 of 5)"
        ),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("accepted"));
    assert_eq!(posts.load(Ordering::SeqCst), 2);
}

/// A node busy with other searches answers 503 with `Retry-After`: `accord query` asks again
/// when told (an export paging through the records would otherwise stop half way).
#[test]
fn query_asks_again_when_the_node_says_it_is_busy() {
    use std::sync::atomic::Ordering;
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (addr, asked) = busy_once_node(
        r#"{"items":[],"next_cursor":null,"cut":false,"total":0,"facets":{},"did_you_mean":null,"reading":{}}"#
            .to_string(),
    );
    let out = accord(d)
        .args(["query", "digital", "--node", &format!("http://{addr}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the node is busy: asking again in 1 s (1 of 5)"),
        "{stderr}"
    );
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}
