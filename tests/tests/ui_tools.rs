//! The analyst's tools in the web UI: the frame (federation name, footer, favicon), values in the
//! interface language, sort and date range, exports of the results (CSV with BOM, JSON lines,
//! signed CBOR), Atom feeds a feed parser accepts, the compare page and the record page's
//! print and copy affordances.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use accord_core::{Object, ObjectId, SignedObject, Timestamp};
use accord_tests::harness::{TestFed, now, serve};

async fn get(url: &str) -> (u16, String, String, Vec<u8>) {
    let r = accord_tests::http_get(url).await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|c| c.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = r.bytes().await.unwrap().to_vec();
    (
        status,
        ct,
        String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    )
}

const DAY: u64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analysts_tools_work_from_the_ui() {
    let tf = TestFed::new(&["KZ", "BY", "AM"], 61).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let t0 = now().0 - 400 * DAY;
    let mut signed: Vec<SignedObject> = Vec::new();
    for (i, (m, title, dir)) in [
        (0, "Portal of public services", "e-government"),
        (1, "Digital skills of civil servants", "digital-skills"),
        (0, "Broadband in villages", "ict-access"),
        (
            1,
            "Portal for business registration & <licences>",
            "e-government",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = tf
            .fed
            .record_body(m, title, Timestamp(t0 + i as u64 * 100 * DAY));
        r.directions = vec![dir.into()];
        if i == 2 {
            // The source document's date (protocol 1.1).
            r.date = Some("2024-05-20".into());
        }
        r.summary = BTreeMap::from([("en".to_string(), format!("Summary of {title}."))]);
        if i == 0 {
            // A Russian version beside the English original.
            r.title
                .insert("ru".into(), "Портал государственных услуг".into());
            r.summary.insert(
                "ru".into(),
                "Кратко о портале государственных услуг.".into(),
            );
        }
        signed.push(Object::Record(r).sign(&tf.fed.members[m].publisher));
    }
    let (out, searchable) = node
        .submit_searchable(
            signed.iter().map(|s| s.as_bytes().to_vec()).collect(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted") && searchable);

    // The frame: the federation's name, the footer, the favicon; no emoji flags.
    let (_, _, html, _) = get(&format!("{base}/?lang=ru")).await;
    assert!(
        html.contains("Accord development federation"),
        "federation name in the header"
    );
    assert!(html.contains("<footer"), "footer");
    assert!(html.contains(env!("CARGO_PKG_VERSION")), "software version");
    assert!(html.contains("v1"), "charter version");
    assert!(html.contains("rel=\"icon\""));
    assert!(
        !html
            .chars()
            .any(|c| ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)),
        "no regional-indicator emoji"
    );
    let (s, ct, svg, _) = get(&format!("{base}/favicon.ico")).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("image/svg+xml") && svg.contains("<svg"));

    // Values in the interface language, a skip link, filters applied by a visible button.
    assert!(html.contains("действует"), "statuses translated");
    assert!(html.contains("английский"), "language names translated");
    assert!(
        !html.contains(">active<") && !html.contains(">en<"),
        "no raw values"
    );
    assert!(html.contains("href=\"#results\""), "skip to results");
    let (_, _, js, _) = get(&format!("{base}/static/app.js")).await;
    // The one submit in the script is the search box's, for a direction chosen from its
    // completions; nothing listens for a filter being ticked.
    assert_eq!(js.matches(".submit()").count(), 1, "{js}");
    assert!(js.contains("q.form.submit()"));
    assert!(
        !js.contains("'change'") && !js.contains("\"change\""),
        "ticking a filter does not reload the page"
    );

    // A page past the last (an old bookmark) says so and leads back, not "nothing found".
    let (_, _, html, _) = get(&format!("{base}/?cursor=o1000&member=KZ&lang=en")).await;
    assert!(
        html.contains("There are no records on this page")
            && html.contains("Go to the last page")
            && html.contains("<a href=\"/?member=KZ\">Go to the last page")
            && !html.contains("cursor=o980")
            && !html.contains("Nothing found."),
        "{html}"
    );

    // A shared link's since/until show in the panel's date inputs, so applying it keeps them.
    let (_, _, html, _) = get(&format!(
        "{base}/?since=2025-03-01T00:00:00Z&until=2025-04-01T00:00:00Z&lang=en"
    ))
    .await;
    let form = &html[html.find("<form class=\"filters\"").expect("filter form")..];
    assert!(
        form.contains("name=\"from\" value=\"2025-03-01\"")
            && form.contains("name=\"to\" value=\"2025-03-31\""),
        "{form}"
    );

    // Sort and date range: oldest first; a range keeps the records inside it.
    let (_, _, html, _) = get(&format!("{base}/?sort=oldest&lang=en")).await;
    let first = html.find("Portal of public services").unwrap();
    let last = html.find("Portal for business registration").unwrap();
    assert!(first < last, "oldest first");
    assert!(html.contains("<option value=\"oldest\" selected"));
    let from = Timestamp(t0 + 50 * DAY).date();
    let to = Timestamp(t0 + 250 * DAY).date();
    let (_, _, html, _) = get(&format!("{base}/?from={from}&to={to}&lang=en")).await;
    assert!(html.contains("Digital skills of civil servants"));
    assert!(html.contains("Broadband in villages"));
    assert!(!html.contains("Portal of public services"), "{from}..{to}");
    assert!(
        html.contains(&format!("value=\"{from}\"")),
        "the range stays in the form"
    );

    // The source document's date: on the card, and a filter of its own.
    let (_, _, html, _) = get(&format!("{base}/?lang=en")).await;
    assert!(html.contains("Dated <time datetime=\"2024-05-20\">20 May 2024</time>"));
    let (_, _, html, _) = get(&format!(
        "{base}/?date_from=2024-05-01&date_to=2024-05-20&lang=en"
    ))
    .await;
    assert!(html.contains("Broadband in villages"));
    assert!(
        !html.contains("Portal of public services"),
        "undated records are left out"
    );
    let (_, _, html, _) = get(&format!("{base}/?date_to=2024-05-19&lang=en")).await;
    assert!(
        !html.contains("Broadband in villages"),
        "date_to is inclusive, not later"
    );
    let (s, _, err, _) = get(&format!("{base}/v1/records?date_from=yesterday")).await;
    assert_eq!(s, 400);
    assert!(err.contains("date_from"), "{err}");
    let (_, _, csv, _) = get(&format!("{base}/export.csv?q=broadband")).await;
    assert!(csv.contains(",2024-05-20,"), "{csv}");

    // Exports of the results on screen.
    let (s, ct, csv, bytes) = get(&format!("{base}/export.csv?member=KZ")).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"));
    assert!(
        bytes.starts_with("\u{feff}".as_bytes()),
        "BOM for spreadsheets"
    );
    assert_eq!(csv.lines().count(), 3, "header and KZ's two records: {csv}");
    // The page's export reads in the reader's language: headings, names, not codes.
    let (_, _, ru, _) = get(&format!(
        "{base}/export.csv?member=KZ&hl=ru&delimiter=semicolon"
    ))
    .await;
    let heading = ru.lines().next().unwrap_or_default();
    assert!(
        heading.contains(
            "Идентификатор;Опубликовано в сети;Дата документа;Государство;Вид;Направления"
        ) && heading.contains("Заголовок (русский)"),
        "{heading}"
    );
    assert!(ru.contains("(KZ);") && ru.contains(";действует;"), "{ru}");
    assert!(
        !ru.contains(";active;") && !ru.contains(";e-government;"),
        "{ru}"
    );
    let (_, _, en, _) = get(&format!("{base}/export.csv?member=KZ&hl=en")).await;
    assert!(
        en.lines()
            .next()
            .unwrap_or_default()
            .starts_with("\u{feff}Id,Published on the network,"),
        "{en}"
    );
    assert!(en.contains(",active,"), "{en}");
    let (_, _, jsonl, _) = get(&format!("{base}/export.jsonl?direction=e-government")).await;
    let items: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), 2);
    let (_, ct, _, cbor) = get(&format!("{base}/export.cbor")).await;
    assert_eq!(ct, "application/cbor-seq");
    for s in &signed {
        assert!(
            cbor.windows(s.as_bytes().len()).any(|w| w == s.as_bytes()),
            "each signed object is in the export, byte for byte"
        );
    }
    // Checked offline from the charter alone: the trust objects come with the records.
    let mut ids = verify_offline(&tf, &cbor);
    ids.sort();
    let mut expected: Vec<ObjectId> = signed.iter().map(|s| s.id()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let (s, _, err, _) = get(&format!("{base}/export.csv?member=kz")).await;
    assert_eq!(s, 400);
    assert!(err.contains("member"), "{err}");
    // The error page is in the language of the page that linked the file (`hl`), whatever
    // the browser's.
    for path in [
        "/export.csv?member=kz&hl=ru",
        "/feeds/records.atom?member=kz&hl=ru",
    ] {
        let (s, _, err, _) = get(&format!("{base}{path}")).await;
        assert_eq!(s, 400, "{path}");
        assert!(
            err.contains("Выгрузку не удалось подготовить") && err.contains("member"),
            "{path}: {err}"
        );
    }

    // A saved search as an Atom feed that a feed parser accepts.
    let (s, ct, _, atom) = get(&format!("{base}/feeds/records.atom?q=portal")).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("application/atom+xml"));
    let feed = feed_rs::parser::parse(atom.as_slice()).unwrap();
    assert_eq!(feed.entries.len(), 2);
    assert_eq!(
        feed.entries[0].title.as_ref().unwrap().content,
        "Portal for business registration & <licences>",
        "newest first, markup in a title is text"
    );
    assert!(
        feed.entries[0].links[0]
            .href
            .ends_with(&format!("/records/{}", signed[3].id()))
    );

    // A feed followed from the Russian page is titled in Russian, its filters by name.
    let (s, _, _, ru) = get(&format!("{base}/feeds/records.atom?member=KZ&hl=ru")).await;
    assert_eq!(s, 200);
    let feed = feed_rs::parser::parse(ru.as_slice()).unwrap();
    let title = feed.title.map(|t| t.content).unwrap_or_default();
    assert!(title.starts_with("Accord — Государство: "), "{title}");
    // Its entries in Russian where the record has Russian, as written where not.
    let titles: Vec<String> = feed
        .entries
        .iter()
        .filter_map(|e| e.title.as_ref().map(|t| t.content.clone()))
        .collect();
    assert!(
        titles.contains(&"Портал государственных услуг".to_string())
            && titles.contains(&"Broadband in villages".to_string()),
        "{titles:?}"
    );
    let ru_text = String::from_utf8_lossy(&ru);
    assert!(
        ru_text.contains("<entry xml:lang=\"ru\">")
            && ru_text.contains("Кратко о портале государственных услуг."),
        "{ru_text}"
    );
    // Categories and authors by name in the feed's language, the codes kept as terms.
    let entry = feed
        .entries
        .iter()
        .find(|e| {
            e.title
                .as_ref()
                .is_some_and(|t| t.content == "Портал государственных услуг")
        })
        .unwrap();
    let labels: Vec<(String, Option<String>)> = entry
        .categories
        .iter()
        .map(|c| (c.term.clone(), c.label.clone()))
        .collect();
    assert!(
        labels.iter().any(|(t, l)| t == "e-government"
            && l.as_deref()
                .is_some_and(|l| l != "e-government" && !l.is_empty())),
        "{labels:?}"
    );
    assert_eq!(
        labels.len(),
        2,
        "the kind and the one direction: {labels:?}"
    );
    let author = &entry.authors[0].name;
    assert!(
        author.ends_with("(KZ)") && !author.ends_with(" (KZ) (KZ)") && author.contains(", "),
        "{author}"
    );
    let (_, _, _, quoted) = get(&format!("{base}/feeds/records.atom?q=portal&hl=ru")).await;
    let feed = feed_rs::parser::parse(quoted.as_slice()).unwrap();
    let title = feed.title.map(|t| t.content).unwrap_or_default();
    assert!(title.starts_with("Accord — «portal»"), "{title}");
    let (_, _, page, _) = get(&format!("{base}/?q=portal&lang=ru")).await;
    assert!(
        page.contains("/feeds/records.atom?q=portal&amp;hl=ru"),
        "the page's feed link carries its language"
    );

    // Behind a TLS proxy, links in files use https and the name the client used. (The node
    // answers a name only from `api.hosts`, or to a client that is no page's script, as this
    // one says it is: see http_guard.rs.)
    let proxied = accord_tests::http()
        .get(format!("{base}/feeds/records.atom?q=portal"))
        .header(accord_api::CLIENT_HEADER, "test")
        .header("host", "accord.example.gov")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        proxied.contains("href=\"https://accord.example.gov/records/"),
        "{proxied}"
    );
    let hostile = accord_tests::http()
        .get(format!("{base}/feeds/records.atom"))
        .header(accord_api::CLIENT_HEADER, "test")
        .header("host", "evil\"><x")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(hostile.contains("http://localhost/") && !hostile.contains("evil"));

    // Compare: two members side by side, with counts and their records.
    let (s, _, html, _) = get(&format!("{base}/compare?member=KZ&member=BY&lang=en")).await;
    assert_eq!(s, 200);
    assert!(html.contains("<table class=\"compare\""));
    assert!(
        html.contains("Broadband in villages") && html.contains("Digital skills of civil servants")
    );
    assert!(html.contains("<svg"), "a timeline");
    let (_, _, html, _) = get(&format!(
        "{base}/compare?member=KZ&member=BY&direction=e-government&lang=en"
    ))
    .await;
    assert!(html.contains("Portal of public services"));
    assert!(
        !html.contains("Broadband in villages"),
        "the direction filters"
    );

    // Hostile parameters: unknown members and directions are ignored, markup stays text, a bad
    // date is named on the page and left out, not a failure.
    let (s, _, html, _) = get(&format!(
        "{base}/compare?member=%3Cscript%3E&member=KZ&direction=%3Cb%3E&lang=en"
    ))
    .await;
    assert_eq!(s, 200);
    assert!(!html.contains("<script>") && !html.contains("<b>"));
    let (s, _, html, _) = get(&format!("{base}/?to=garbage&lang=en")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Left out: values that are not valid")
            && html.contains("<code>to=garbage</code>"),
        "a bad date is named"
    );
    assert!(
        html.contains("Records found"),
        "and the search runs without it"
    );

    // Overview: zero cells are not links.
    let (_, _, html, _) = get(&format!("{base}/overview?lang=en")).await;
    assert!(
        !html.contains("/?member=AM&amp;direction="),
        "AM has no records"
    );
    assert!(html.contains("/?member=KZ&amp;direction=e-government"));
    // The chart's figures as a table too (no tooltips on a touch screen): one row per month
    // with records (the four records are 100 days apart), one column per member.
    let values = html
        .split("<details class=\"values\">")
        .nth(1)
        .and_then(|s| s.split("</details>").next())
        .unwrap_or_default();
    assert!(values.contains("<th scope=\"col\">Month</th>"), "{values}");
    assert_eq!(
        values.matches("<tr><th scope=\"row\">").count(),
        4,
        "{values}"
    );
    assert_eq!(
        values.matches("<td class=\"n\">1</td>").count(),
        4,
        "{values}"
    );

    // Record page: the verify command wraps and can be copied; a print button; no empty history.
    let (_, _, html, _) = get(&format!("{base}/records/{}?lang=ru", signed[0].id())).await;
    assert!(html.contains("pre class=\"wrap\""));
    assert!(html.contains("data-copy=\"verify-cmd\""));
    assert!(html.contains("data-print"));
    assert!(
        !html.contains("<h2>История</h2>"),
        "no empty history section"
    );

    // A retracted record's export carries its retraction, and still checks offline.
    let retraction = tf.retraction(1, signed[1].id(), now(), "replaced by a new programme");
    let (out, searchable) = node
        .submit_searchable(
            vec![retraction.as_bytes().to_vec()],
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(out[0].status == "accepted" && searchable, "{out:?}");
    let (_, _, _, cbor) = get(&format!("{base}/export.cbor?status=retracted")).await;
    assert_eq!(
        verify_offline(&tf, &cbor),
        vec![signed[1].id(), retraction.id()]
    );

    // After BY's root key is replaced, a record it publishes under the new key's delegation,
    // then retracts, is checked offline from the founding charter, the record and its page's
    // proof.cbor (the amendment, the delegation in force, the retraction) alone.
    let new_root = accord_core::SecretKey::from_seed([66; 32]);
    let amendment = tf.amendment(
        |c| c.members[1].root_key = new_root.public_key(),
        Some(&new_root),
    );
    let delegation = Object::Delegation(accord_core::Delegation {
        object_type: accord_core::ObjectType::Delegation,
        federation: tf.fed.federation(),
        created: Timestamp(tf.fed.created.0 + 7_200_000),
        member: tf.fed.members[1].code.clone(),
        publisher: tf.fed.members[1].publisher.public_key(),
        name: "BY publisher under the new root key".into(),
        kinds: None,
        directions: None,
        not_before: Timestamp(tf.fed.created.0 + 7_200_000),
        not_after: None,
    })
    .sign(&new_root);
    let record = tf.fed.record(1, "After the new root key", now());
    let withdrawn = tf.retraction(1, record.id(), now(), "published twice");
    let out = node
        .submit(
            [&amendment, &delegation, &record, &withdrawn]
                .iter()
                .map(|o| o.as_bytes().to_vec())
                .collect(),
        )
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");
    let (_, _, html, _) = get(&format!("{base}/records/{}?lang=en", record.id())).await;
    assert!(
        html.contains(&format!("/records/{}/proof.cbor", record.id()))
            && html.contains("--with proof.cbor"),
        "{html}"
    );
    let (s, ct, _, proof) = get(&format!("{base}/records/{}/proof.cbor", record.id())).await;
    assert_eq!((s, ct.as_str()), (200, "application/cbor-seq"));
    let mut files = record.as_bytes().to_vec();
    files.extend_from_slice(&proof);
    assert_eq!(
        verify_offline(&tf, &files),
        vec![record.id(), withdrawn.id()]
    );
    let (s, _, _, _) = get(&format!("{base}/records/{}/proof.cbor", delegation.id())).await;
    assert_eq!(s, 404, "only a record has a proof");
    node.shutdown().await;
}

/// Checks a CBOR sequence as `accord verify FILE --charter CHARTER` does, from the genesis
/// alone; every object must be accepted. The records and retractions, in the order accepted.
fn verify_offline(tf: &TestFed, cbor: &[u8]) -> Vec<ObjectId> {
    use accord_core::validate::{KnownRecords, Verdict, validate_with};
    use accord_core::{MemberCode, PublicKey, TrustView};
    struct Known(BTreeMap<ObjectId, (MemberCode, PublicKey)>);
    impl KnownRecords for Known {
        fn record_meta(&self, id: &ObjectId) -> Option<(MemberCode, PublicKey)> {
            self.0.get(id).cloned()
        }
    }
    let (mut trust, _) = TrustView::from_genesis(tf.fed.genesis.as_bytes()).unwrap();
    let mut known = Known(BTreeMap::new());
    let mut found = Vec::new();
    let mut waiting =
        accord_core::cbor::split_sequence(cbor, accord_core::Limits::default().scan()).unwrap();
    // In passes, as `accord verify` settles them: what waits for another object of the file
    // (a retraction for its record) is judged again once that is in.
    loop {
        let before = waiting.len();
        let mut still = Vec::new();
        for item in waiting {
            match validate_with(item, &trust, &known, now()) {
                Verdict::Accepted(v) => {
                    if v.object().object_type().is_trust() {
                        trust.apply(&v);
                    }
                    match v.object() {
                        Object::Record(r) => {
                            known.0.insert(v.id(), (r.member.clone(), v.signer()));
                            found.push(v.id());
                        }
                        Object::Retraction(_) => found.push(v.id()),
                        _ => {}
                    }
                }
                Verdict::Pending(_) => still.push(item),
                other => panic!("not verifiable from the file alone: {other:?}"),
            }
        }
        waiting = still;
        if waiting.is_empty() || waiting.len() == before {
            break;
        }
    }
    assert!(
        waiting.is_empty(),
        "{} object(s) wait for what the file lacks",
        waiting.len()
    );
    found
}

/// A KZ node of a KZ–BY federation seeded `seed`, served, holding one searchable English
/// record, "Open data portal".
async fn with_one_record(
    seed: u8,
) -> (
    TestFed,
    accord_node::NodeHandle,
    String,
    accord_core::SignedObject,
) {
    let tf = TestFed::new(&["KZ", "BY"], seed).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let rec = Object::Record(tf.fed.record_body(0, "Open data portal", now()))
        .sign(&tf.fed.members[0].publisher);
    let (_, searchable) = node
        .submit_searchable(vec![rec.as_bytes().to_vec()], Duration::from_secs(60))
        .await
        .unwrap();
    assert!(searchable);
    (tf, node, base, rec)
}

/// What axe-core's serious rules look for, checked on the HTML of every page in both
/// languages: a language, one top-level heading, a label for every form control, header cells
/// with a scope, named images and charts, heat-map cells whose text contrasts with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_the_structure_assistive_technology_needs() {
    // `_tf` holds the node's directory.
    let (_tf, node, base, rec) = with_one_record(62).await;
    let attr = |tag: &str, name: &str| -> Option<String> {
        let k = format!(" {name}=\"");
        let i = tag.find(&k)? + k.len();
        Some(tag[i..].chars().take_while(|c| *c != '"').collect())
    };
    for lang in ["ru", "en"] {
        for path in [
            "/?q=portal".to_string(),
            "/".to_string(),
            "/?q=nothingmatchesthis".to_string(),
            format!("/records/{}", rec.id()),
            "/overview".to_string(),
            "/compare?member=KZ&member=BY".to_string(),
            "/federation".to_string(),
            "/network".to_string(),
        ] {
            let sep = if path.contains('?') { '&' } else { '?' };
            let (s, _, html, _) = get(&format!("{base}{path}{sep}lang={lang}")).await;
            let at = format!("{path} ({lang})");
            assert_eq!(s, 200, "{at}");
            assert!(html.contains(&format!("<html lang=\"{lang}\"")), "{at}");
            assert_eq!(
                html.matches("<h1").count(),
                1,
                "{at}: one top-level heading"
            );
            // A title in another language than the page's says so, for a screen reader's voice.
            if lang == "ru" && (path == "/overview" || path.starts_with("/compare")) {
                assert!(
                    html.contains("lang=\"en\">Open data portal</a>"),
                    "{at}: the English title is not marked"
                );
            }
            let labels: Vec<String> = html
                .split("<label")
                .skip(1)
                .filter_map(|t| attr(t.split('>').next().unwrap_or(""), "for"))
                .collect();
            for tag in html
                .split('<')
                .filter(|t| t.starts_with("input") || t.starts_with("select"))
            {
                let tag = tag.split('>').next().unwrap_or("");
                let ty = attr(tag, "type").unwrap_or_default();
                if ty == "hidden" || ty == "checkbox" {
                    continue; // checkboxes sit inside their label
                }
                let id =
                    attr(tag, "id").unwrap_or_else(|| panic!("{at}: control without id: {tag}"));
                assert!(labels.contains(&id), "{at}: no label for #{id}");
            }
            for chunk in html.split("<label").skip(1) {
                let label = chunk.split("</label>").next().unwrap_or("");
                if label.contains("type=\"checkbox\"") {
                    let text: String = label.split('>').skip(2).collect();
                    assert!(
                        text.chars().any(char::is_alphanumeric),
                        "{at}: empty checkbox label"
                    );
                }
            }
            for th in html
                .split("<th")
                .skip(1)
                .filter(|t| t.starts_with(' ') || t.starts_with('>'))
            {
                let tag = th.split('>').next().unwrap_or("");
                assert!(
                    attr(tag, "scope").is_some(),
                    "{at}: header cell without scope: <th{tag}>"
                );
            }
            for svg in html.split("<svg").skip(1) {
                let tag = svg.split('>').next().unwrap_or("");
                assert!(
                    tag.contains("aria-hidden=\"true\"")
                        || attr(tag, "aria-labelledby").is_some()
                        || attr(tag, "aria-label").is_some(),
                    "{at}: unnamed svg"
                );
            }
            assert!(!html.contains("<img"), "{at}");
            for b in html.split("<button").skip(1) {
                let inner = b.split("</button>").next().unwrap_or("");
                let text: String = inner.split('>').skip(1).collect();
                assert!(
                    text.chars().any(|c| c.is_alphanumeric()),
                    "{at}: button without text"
                );
            }
        }
    }
    node.shutdown().await;
}

/// The wording of the search page holds in its corners: a search without filters is not told
/// to remove filters, a member code no member has is shown once (not as its own name), and the
/// language switch of a page with an empty query is a clean link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_pages_wording_fits_what_was_asked() {
    let (_tf, node, base, _rec) = with_one_record(63).await;
    let (_, _, words_only, _) = get(&format!("{base}/?q=nothingmatchesthis&lang=ru")).await;
    assert!(
        words_only.contains("Попробуйте другие или более общие слова.")
            && !words_only.contains("уберите часть фильтров"),
        "{words_only}"
    );
    let (_, _, filtered, _) = get(&format!("{base}/?q=nothingmatchesthis&member=BY&lang=ru")).await;
    assert!(filtered.contains("уберите часть фильтров"), "{filtered}");
    let (_, _, unknown, _) = get(&format!("{base}/?member=XX&lang=ru")).await;
    assert!(
        unknown.contains("<abbr class=\"code\">XX</abbr></span>"),
        "{unknown}"
    );
    let (_, _, bare, _) = get(&format!("{base}/?")).await;
    assert!(
        bare.contains("href=\"/?lang=en\"") && !bare.contains("?&amp;lang="),
        "{bare}"
    );
    node.shutdown().await;
}
