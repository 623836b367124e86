//! The web UI's HTML: key content of every page, language choice, and that hostile record
//! content is rendered inert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use accord_core::Object;
use accord_core::object::Link;
use accord_tests::harness::{TestFed, now, serve};

/// Submits `objects` and waits until they are searchable; each must be accepted.
async fn accepted_and_searchable(
    node: &accord_node::NodeHandle,
    objects: &[&accord_core::SignedObject],
) {
    let (out, searchable) = node
        .submit_searchable(
            objects.iter().map(|o| o.as_bytes().to_vec()).collect(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(
        out.iter().all(|o| o.status == "accepted") && searchable,
        "{out:?}"
    );
}

async fn page(url: &str, accept_language: &str) -> (u16, String, Option<String>) {
    let r = accord_tests::http()
        .get(url)
        .header("accept-language", accept_language)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().to_string());
    (status, r.text().await.unwrap(), cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_their_content_and_hostile_records_are_inert() {
    let tf = TestFed::new(&["KZ", "BY"], 51).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let mut body = tf.fed.record_body(0, "unused", now());
    body.lang = "ru".into();
    body.title = BTreeMap::from([
        (
            "ru".to_string(),
            "Электронное правительство <script>alert(1)</script>".to_string(),
        ),
        ("en".to_string(), "E-government".to_string()),
    ]);
    body.body = BTreeMap::from([(
        "ru".to_string(),
        "## Опыт\n\nТекст <script>alert('x')</script> и <img src=x onerror=alert(2)> и [ссылка](javascript:alert(3)) и ![картинка](https://tracker.example/p.png) и [норма](https://example.org/ok).".to_string(),
    )]);
    body.links = vec![Link {
        url: "https://example.org/doc".into(),
        title: Some("Документ".into()),
    }];
    body.tags = vec!["egov".into()];
    let rec = Object::Record(body).sign(&tf.fed.members[0].publisher);
    let (out, searchable) = node
        .submit_searchable(vec![rec.as_bytes().to_vec()], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(out[0].status, "accepted");
    assert!(searchable);

    // Search page, in Russian from Accept-Language.
    let (s, html, _) = page(&format!("{base}/?q=%D0%BF%D1%80%D0%B0%D0%B2%D0%B8%D1%82%D0%B5%D0%BB%D1%8C%D1%81%D1%82%D0%B2%D0%B0"), "ru-RU,ru;q=0.9").await;
    assert_eq!(s, 200);
    assert!(html.contains("<html lang=\"ru\""));
    assert!(html.contains("Найдено записей"), "Russian interface");
    assert!(
        html.contains(&format!("/records/{}", rec.id())),
        "the record is listed"
    );
    assert!(
        html.contains("name=\"member\" value=\"KZ\""),
        "member facet checkbox"
    );
    assert!(
        !html.contains("<script>alert"),
        "title is escaped in the result list"
    );
    // English by default; ?lang=ru switches and is remembered in a cookie.
    let (_, html, _) = page(&format!("{base}/"), "").await;
    assert!(html.contains("Records found"));
    let (_, html, cookie) = page(&format!("{base}/overview?lang=ru"), "en").await;
    assert!(html.contains("Кто чем делится"));
    assert!(cookie.unwrap().contains("accord_lang=ru"));

    // Record page: languages, safe Markdown, provenance, download.
    let (s, html, _) = page(&format!("{base}/records/{}?lang=en", rec.id()), "").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("<h1 lang=\"en\">E-government</h1>"),
        "shown in the interface language when available"
    );
    let (_, html, _) = page(&format!("{base}/records/{}?show=ru&lang=en", rec.id()), "").await;
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "title escaped"
    );
    assert!(
        !html.contains("<script>alert"),
        "no script from the record reaches the page"
    );
    assert!(
        !html.contains("<img"),
        "no image tags (nothing loaded from elsewhere)"
    );
    assert!(
        !html.contains("javascript:"),
        "javascript: links are neutralised"
    );
    assert!(
        html.contains("href=\"https://example.org/ok\""),
        "ordinary links stay"
    );
    // A body's `##` sits under the page's own headings: the record's title is the `<h1>`.
    assert!(html.contains("<h3>Опыт</h3>"), "Markdown is rendered");
    assert!(
        html.contains("(original)"),
        "the original language is marked"
    );
    assert!(html.contains("Signature valid"));
    assert!(html.contains("KZ development publisher"));
    let root = tf.fed.members[0].root.public_key().to_string();
    assert_eq!(
        html.matches(&root).count(),
        1,
        "the member root key, shown once: the delegation says it was signed by it"
    );
    assert!(
        html.contains("Signed by root key</dt><dd>✔ the one shown below")
            && html.contains("Valid</dt><dd>from ")
            && html.contains("with no end date"),
        "{html}"
    );
    assert!(html.contains(&format!("accord verify {}.cbor", rec.id())));
    assert!(
        html.contains("Received by this node</dt><dd>")
            && html.contains(", published through this node</dd>"),
        "{html}"
    );
    let bytes = accord_tests::http_get(format!("{base}/records/{}/object.cbor", rec.id()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        bytes.as_ref(),
        rec.as_bytes(),
        "the download is the exact signed object"
    );
    // A download that cannot be served says why: a malformed id, an object not held.
    for (path, status, says) in [
        ("/records/abcd/object.cbor", 400, "not an object id"),
        ("/records/abcd/proof.cbor", 400, "not an object id"),
        (
            &*format!("/records/{}/object.cbor", "0".repeat(64)),
            404,
            "is not stored on this node",
        ),
        (
            &*format!("/records/{}/proof.cbor", "0".repeat(64)),
            404,
            "is not stored on this node",
        ),
    ] {
        let r = accord_tests::http_get(format!("{base}{path}"))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        let e = body["error"].as_str().unwrap_or_default();
        assert!(e.contains(says), "{path}: {e}");
    }
    let (s, _, _) = page(
        &format!("{base}/records/{}", accord_core::ObjectId::of_body(b"x")),
        "",
    )
    .await;
    assert_eq!(s, 404);

    // Overview, federation, network.
    let (_, html, _) = page(&format!("{base}/overview"), "").await;
    assert!(html.contains("<svg"), "chart drawn server-side");
    assert!(
        html.contains("/?member=KZ&amp;direction=regulation"),
        "heat map cells link to searches"
    );
    let (_, html, _) = page(&format!("{base}/federation"), "").await;
    assert!(
        html.contains("Обмен опытом в части нормативно-правового регулирования"),
        "taxonomy in Russian"
    );
    assert!(html.contains("KZ development publisher"));
    let (_, html, _) = page(&format!("{base}/network"), "").await;
    assert!(html.contains(&node.peer_id()));
    node.shutdown().await;
}

/// What an analyst meets on the search and record pages: the records' language is a filter of
/// its own (the page's `lang` is its interface language); a link carrying parameters the page
/// does not know still searches, and a wrong value is left out with a notice instead of an
/// empty page; summaries follow the interface language; a retracted or superseded record says
/// so at its top, and a record's dates in force are shown; a mistyped address gets a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_parameters_and_record_states_read_as_an_analyst_expects() {
    use accord_core::Timestamp;
    let tf = TestFed::new(&["KZ", "BY"], 52).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let t = now().0;
    // An English original with a Russian summary; a Russian-only record; a replaced edition
    // and its successor; a record then retracted.
    let mut en = tf.fed.record_body(0, "unused", Timestamp(t));
    en.lang = "en".into();
    en.title = BTreeMap::from([("en".to_string(), "Open data portal".to_string())]);
    en.summary = BTreeMap::from([
        (
            "en".to_string(),
            "How the portal publishes datasets".to_string(),
        ),
        (
            "ru".to_string(),
            "Как портал публикует наборы данных".to_string(),
        ),
    ]);
    en.body = BTreeMap::from([("en".to_string(), "The portal and its datasets.".to_string())]);
    en.effective_from = Some("2025-03-01".into());
    let en = Object::Record(en).sign(&tf.fed.members[0].publisher);
    let mut ru = tf.fed.record_body(0, "unused", Timestamp(t + 1));
    ru.lang = "ru".into();
    ru.title = BTreeMap::from([("ru".to_string(), "Реестр услуг".to_string())]);
    ru.summary = BTreeMap::from([("ru".to_string(), "Единый реестр".to_string())]);
    ru.body = BTreeMap::from([(
        "ru".to_string(),
        "Реестр государственных услуг.".to_string(),
    )]);
    let ru = Object::Record(ru).sign(&tf.fed.members[0].publisher);
    let history = accord_tests::harness::History::new(&tf, t + 2);
    let accord_tests::harness::History {
        old, newer, gone, ..
    } = &history;
    // A record naming five directions: a result shows three and counts the rest.
    let mut by = tf
        .fed
        .record_body(1, "Belarusian case", Timestamp(t + 6000));
    by.directions = [
        "regulation",
        "e-government",
        "digital-skills",
        "ict-access",
        "digital-divide",
    ]
    .map(String::from)
    .to_vec();
    let by = Object::Record(by).sign(&tf.fed.members[1].publisher);
    let mut all = vec![&en, &ru];
    all.extend(history.objects());
    all.push(&by);
    for o in all {
        let (out, searchable) = node
            .submit_searchable(vec![o.as_bytes().to_vec()], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
        assert!(searchable);
    }
    let listed = |html: &str, id: accord_core::ObjectId| html.contains(&format!("/records/{id}\""));

    // The records' language filters, in a Russian interface, and its box stays ticked.
    let (s, html, _) = page(&format!("{base}/?in=en&lang=ru"), "").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("<html lang=\"ru\""),
        "the interface stays Russian"
    );
    assert!(listed(&html, en.id()) && !listed(&html, ru.id()), "{html}");
    assert!(
        html.contains("name=\"in\" value=\"en\" checked"),
        "the language box is ticked: {html}"
    );
    // The summary in the interface's language, where the record has one; a title in another
    // language says which, for screen readers.
    assert!(
        html.contains("Как портал публикует наборы данных"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<h2 lang=\"en\"><a href=\"/records/{}\">Open data portal</a></h2>",
            en.id()
        )),
        "{html}"
    );
    assert!(html.contains("<p class=\"snippet\">"), "{html}");
    let (_, html, _) = page(&format!("{base}/?in=en&lang=en"), "").await;
    assert!(html.contains("How the portal publishes datasets"));

    // A filter chosen keeps its other values offered, and the status filter offers every
    // status, so that a retracted record can be found.
    let (_, html, _) = page(&format!("{base}/?member=KZ&lang=en"), "").await;
    assert!(listed(&html, en.id()) && !listed(&html, by.id()));
    assert!(
        html.contains("name=\"member\" value=\"KZ\" checked")
            && html.contains("name=\"member\" value=\"BY\""),
        "BY can be added to KZ: {html}"
    );
    assert!(
        html.contains("name=\"status\" value=\"retracted\"")
            && html.contains("name=\"status\" value=\"superseded\""),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/?status=retracted&lang=en"), "").await;
    assert!(
        listed(&html, gone.id()) && !listed(&html, en.id()),
        "{html}"
    );

    // Pages: where this one is, and the way back.
    let (_, html, _) = page(&format!("{base}/?limit=2&lang=en"), "").await;
    assert!(
        html.contains("Records 1–2 of 4")
            && html.contains("rel=\"next\" href=\"/?limit=2&amp;cursor=o2\""),
        "{html}"
    );
    assert!(!html.contains("rel=\"prev\""));
    let (_, html, _) = page(&format!("{base}/?limit=2&cursor=o2&lang=en"), "").await;
    assert!(
        html.contains("Records 3–4 of 4") && html.contains("rel=\"prev\" href=\"/?limit=2\""),
        "{html}"
    );
    assert!(!html.contains("rel=\"next\""), "the last page has no next");

    // A parameter the page does not know is left aside; a wrong value is named and left out.
    let (s, html, _) = page(&format!("{base}/?utm_source=mail&lang=en"), "").await;
    assert_eq!(s, 200);
    assert!(
        !html.contains("unknown parameter") && listed(&html, en.id()) && listed(&html, ru.id())
    );
    let (s, html, _) = page(&format!("{base}/?limit=abc&from=notadate&lang=ru"), "").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Не учтены параметры с неверным значением")
            && html.contains("<code>limit=abc</code>")
            && html.contains("<code>from=notadate</code>"),
        "{html}"
    );
    assert!(listed(&html, en.id()), "the search still runs without them");
    assert!(
        !html.contains("Фильтры (1)"),
        "nothing wrong counts as a filter"
    );
    // The filters in force are shown, each with a link that removes it alone; without words
    // the default order says "recently published first" (by when records were signed, not by
    // their documents' dates).
    let (_, html, _) = page(&format!("{base}/?member=KZ&in=en&lang=en"), "").await;
    assert!(
        html.contains("class=\"chip\" href=\"/?in=en\"")
            && html.contains("class=\"chip\" href=\"/?member=KZ\"")
            && html.contains("<li><a href=\"/\">Clear filters</a></li>"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"\" selected>recently published first</option>"),
        "{html}"
    );
    assert!(!html.contains("best match first"));
    // Every "Clear filters" link (above the results, in the filter panel) keeps the words, the
    // order and the page size, and only them.
    let (_, html, _) = page(
        &format!("{base}/?q=portal&member=KZ&in=en&sort=oldest&limit=50&lang=en"),
        "",
    )
    .await;
    let clears: Vec<&str> = html
        .split("<a href=\"")
        .skip(1)
        .filter(|a| a.contains("\">Clear filters</a>"))
        .map(|a| &a[..a.find('"').unwrap_or(0)])
        .collect();
    assert!(
        clears.len() >= 2
            && clears
                .iter()
                .all(|h| *h == "/?q=portal&amp;sort=oldest&amp;limit=50"),
        "{clears:?}"
    );
    let (_, html, _) = page(&format!("{base}/?q=portal&lang=en"), "").await;
    assert!(!html.contains("class=\"chip\""));
    assert!(html.contains("<option value=\"\" selected>best match first</option>"));

    let (_, html, _) = page(&format!("{base}/?member=XX&lang=en"), "").await;
    assert!(
        html.contains("No member state has these codes: XX"),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/?member=BY&lang=en"), "").await;
    assert!(!html.contains("No member state has these codes"));
    assert!(
        html.contains("<details class=\"more\"><summary class=\"badge\">+ 2 more directions</summary> <span class=\"badge\">Access to ICT"),
        "{html}"
    );

    // Applying the filter panel keeps what it has no control for (a shared link's publisher,
    // the page size) and a chosen member no record now matches (its box ticked, at 0); the
    // live notice follows the same filters.
    let (_, html, _) = page(
        &format!("{base}/?publisher=Some+ministry&limit=50&member=BY&q=zzqqxx&lang=en"),
        "",
    )
    .await;
    let form = &html[html.find("<form class=\"filters\"").expect("filter form")..];
    assert!(
        form.contains("<input type=\"hidden\" name=\"publisher\" value=\"Some ministry\">")
            && form.contains("<input type=\"hidden\" name=\"limit\" value=\"50\">")
            && form.contains("name=\"member\" value=\"BY\" checked"),
        "{form}"
    );
    assert!(
        html.contains("data-query=\"?publisher=Some%20ministry&amp;member=BY&amp;q=zzqqxx\""),
        "{html}"
    );

    // An id pasted as the query (whole, or a prefix of 8 or more) opens its record, in the
    // page's language; it is not searched for as a word.
    let full = en.id().to_string();
    let no_follow = accord_tests::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for q in [
        full.clone(),
        full[..12].to_uppercase(),
        format!(" {}", &full[..8]),
    ] {
        let r = no_follow
            .get(format!("{base}/?q={q}&lang=en&member=BY"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{q}");
        assert_eq!(
            r.headers()["location"].to_str().unwrap(),
            format!("/records/{full}?lang=en"),
            "{q}"
        );
        let (s, html, _) = page(&format!("{base}/?q={q}"), "en").await;
        assert_eq!(s, 200);
        assert!(
            html.contains("<h1") && html.contains("Open data portal"),
            "{html}"
        );
    }
    // A hex word that names no record, or a prefix too short, is searched for.
    for q in ["deadbeefdeadbeef", &full[..7]] {
        let r = no_follow
            .get(format!("{base}/?q={q}&lang=en"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{q}");
        assert!(
            r.text().await.unwrap().contains("Records found: <strong>"),
            "{q}"
        );
    }

    // A query with nothing to search for is left aside, and the page says so.
    let (s, html, _) = page(&format!("{base}/?q=%F0%9F%99%82&lang=ru"), "").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("В запросе нет букв или цифр, по которым можно искать")
            && html.contains("«🙂»")
            && listed(&html, en.id())
            && listed(&html, ru.id()),
        "{html}"
    );
    // A file's SHA-256 pasted in: no word of any record, so nothing, and the page says why.
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let (s, html, _) = page(&format!("{base}/?q={hash}&lang=en"), "").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("A word of the query is 64 bytes or longer")
            && !listed(&html, en.id())
            && !listed(&html, ru.id()),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/?q=portal&lang=en"), "").await;
    assert!(!html.contains("no letters or digits"));

    // A member's everyday name in Russian finds its records, whose text is English, and the
    // page says why they are there.
    let (_, html, _) = page(
        &format!("{base}/?q=%D0%91%D0%B5%D0%BB%D0%B0%D1%80%D1%83%D1%81%D1%8C&lang=en"),
        "",
    )
    .await;
    assert!(
        listed(&html, by.id())
            && !listed(&html, en.id())
            && html.contains("Including records of the member state <span class=\"member\""),
        "{html}"
    );

    // A word only a retracted record holds: nothing found, and the page says that a record
    // among the retracted and superseded ones matches, with a link that shows it.
    let (_, html, _) = page(&format!("{base}/?q=withdrawn&lang=en"), "").await;
    assert!(
        html.contains("Nothing found.")
            && html.contains("Matching records among those superseded by newer editions, retracted, or signed with a revoked key: 1.")
            && html.contains(
                "href=\"/?q=withdrawn&amp;status=superseded&amp;status=retracted&amp;status=signer-revoked\">Show them</a>"
            ),
        "{html}"
    );
    let (_, html, _) = page(
        &format!(
            "{base}/?q=withdrawn&lang=en&status=superseded&status=retracted&status=signer-revoked"
        ),
        "",
    )
    .await;
    assert!(listed(&html, gone.id()), "{html}");

    // A retracted and a superseded record say so at the top.
    let (_, html, _) = page(&format!("{base}/records/{}?lang=en", gone.id()), "").await;
    assert!(
        html.contains("This record was retracted.")
            && html.contains("Retracted on ")
            && html.contains(" by the ministry that published it: “published by mistake”.")
            && html.contains("published by mistake"),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/records/{}?lang=ru", gone.id()), "").await;
    assert!(
        html.contains("Эта запись отозвана.")
            && html.contains(" опубликовавшим её ведомством: «published by mistake».")
    );
    let (_, html, _) = page(&format!("{base}/records/{}?lang=en", old.id()), "").await;
    assert!(
        html.contains("This record has been replaced by a newer version.")
            && html.contains(&format!(
                "href=\"/records/{}\">Open the newer version",
                newer.id()
            )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "Superseded by: <a href=\"/records/{}\">Edition two</a>",
            newer.id()
        )),
        "the history names the edition by its title: {html}"
    );
    let (_, html, _) = page(&format!("{base}/records/{}?lang=en", newer.id()), "").await;
    assert!(
        !html.contains("has been replaced"),
        "the current edition has no banner"
    );
    assert!(html.contains(&format!(
        "Supersedes: <a href=\"/records/{}\">Edition one</a>",
        old.id()
    )));
    // The date in force, and the files the offline check names, downloadable.
    let (_, html, _) = page(&format!("{base}/records/{}?lang=en", en.id()), "").await;
    let fed = tf.fed.federation();
    assert!(
        html.contains(&format!(
            "href=\"/records/{fed}/object.cbor\" download=\"charter.cbor\""
        )),
        "{html}"
    );
    let bytes = accord_tests::http_get(format!("{base}/records/{fed}/object.cbor"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let limits = accord_core::Limits::default();
    let charter =
        accord_core::SignedObject::decode(bytes.as_ref(), limits.max_bytes(), limits.scan())
            .expect("a signed object");
    assert_eq!(
        charter.id(),
        fed,
        "the charter downloaded is the federation's genesis"
    );
    // The signer's delegation comes in proof.cbor, with what else checking the record needs.
    assert!(html.contains("download=\"proof.cbor\""));
    assert!(
        html.contains("in force from <time datetime=\"2025-03-01\">1 Mar 2025</time>"),
        "{html}"
    );

    // Comparing: fewer than two members, or a code the charter does not know, is said.
    let (_, html, _) = page(&format!("{base}/compare?member=KZ&member=ZZ&lang=en"), "").await;
    assert!(
        html.contains("No member state has these codes: ZZ")
            && html.contains("Tick at least two member states to compare them."),
        "{html}"
    );
    // A period that ends before it starts is explained.
    let (_, html, _) = page(
        &format!("{base}/?from=2026-12-31&to=2026-01-01&lang=en"),
        "",
    )
    .await;
    assert!(
        html.contains("The start date is after the end date"),
        "{html}"
    );
    // The page's title carries the query.
    let (_, html, _) = page(&format!("{base}/?q=portal&lang=en"), "").await;
    assert!(html.contains("<title>portal — Search"), "{html}");

    // A mistyped address: a page of the interface, not the API's JSON.
    let (s, html, _) = page(&format!("{base}/recrods?lang=ru"), "").await;
    assert_eq!(s, 404);
    assert!(
        html.contains("Такой страницы нет") && html.contains("<html lang=\"ru\""),
        "{html}"
    );
    // Its links stay on this node, whatever address was asked.
    let (s, html, _) = page(&format!("{base}//elsewhere.example/x?lang=en"), "").await;
    assert_eq!(s, 404);
    assert!(!html.contains("href=\"//elsewhere.example"), "{html}");
    let r = accord_tests::http_get(format!("{base}/v1/nothing"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(
        r.text().await.unwrap().contains("no such endpoint"),
        "the API keeps its JSON"
    );
    node.shutdown().await;
}

/// A link naming thousands of filter values (each chip of the search page links to the page
/// without it, so the page grew with the square of their number: ~1 GB for one GET) costs
/// what a few do; the API refuses more than it takes, naming the parameter; the comparison
/// takes each member once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_with_thousands_of_filter_values_costs_what_a_few_do() {
    let tf = TestFed::new(&["KZ", "BY"], 52).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let letters = |i: usize| {
        let a = b'a' + (i / 26 % 26) as u8;
        let b = b'a' + (i % 26) as u8;
        let c = b'a' + (i / 676 % 26) as u8;
        String::from_utf8(vec![a, b, c]).unwrap()
    };
    let many: Vec<String> = (0..5000).map(|i| format!("in={}", letters(i))).collect();
    let (s, html, _) = page(&format!("{base}/?lang=en&{}", many.join("&")), "en").await;
    assert_eq!(s, 200);
    assert!(html.len() < 400_000, "{} bytes", html.len());
    // 32 values kept, 8 of the rest named, the others counted.
    assert!(html.contains("and 4,960 more"), "{html}");
    // Thirty-two values of each filter, the tags long and in Cyrillic, within one URI: the
    // page takes 48 values or 4 KiB of them (it was about 13 MB, each of ~190 chips linking to
    // the page with all the others).
    let mut wide: Vec<String> = Vec::new();
    for i in 0..32 {
        let two = letters(i)[..2].to_uppercase();
        wide.push(format!("member={two}"));
        wide.push(format!("kind=k{}", letters(i)));
        wide.push(format!("direction=d{}", letters(i)));
        wide.push(format!("in={}", letters(i)));
        // 60 Cyrillic letters: 120 bytes, 360 in the address.
        wide.push(format!("tag={}{}", letters(i), "%D0%96".repeat(60)));
    }
    let url = format!("{base}/?lang=en&{}", wide.join("&"));
    assert!(url.len() < 65_000, "{}", url.len());
    let (s, html, _) = page(&url, "en").await;
    assert_eq!(s, 200);
    assert!(html.len() < 1_000_000, "{} bytes", html.len());
    assert!(html.contains("Left out"), "{html}");
    // The same value many times is one value.
    let same: Vec<&str> = (0..3000).map(|_| "member=KZ").collect();
    let (s, html, _) = page(&format!("{base}/?lang=en&{}", same.join("&")), "en").await;
    assert_eq!(s, 200);
    assert!(html.len() < 200_000, "{} bytes", html.len());
    let (s, html, _) = page(&format!("{base}/compare?lang=en&{}", same.join("&")), "en").await;
    assert_eq!(s, 200);
    assert!(html.len() < 200_000, "{} bytes", html.len());
    // The API: 32 distinct values are taken, a 33rd is refused by name; repeats count once.
    let members = |n: usize| -> String {
        (0..n)
            .map(|i| format!("member={}", letters(i).to_uppercase().get(..2).unwrap()))
            .collect::<Vec<_>>()
            .join("&")
    };
    let r = accord_tests::http_get(format!("{base}/v1/records?{}", members(32)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = accord_tests::http_get(format!("{base}/v1/records?{}", members(33)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e = r.text().await.unwrap();
    assert!(e.contains("parameter member: more than 32 values"), "{e}");
    let r = accord_tests::http_get(format!("{base}/v1/records?{}", same.join("&")))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A date at the end of time is left out by name, not a panic.
    let (s, html, _) = page(&format!("{base}/?lang=en&to=18446744073709551615"), "en").await;
    assert_eq!(s, 200);
    assert!(html.contains("to=18446744073709551615"), "{html}");
    node.shutdown().await;
}

/// A record whose signer's key was revoked (a stolen ministry key) says so: its status in the
/// reader's language, a banner with the date the revocation takes effect, and the status
/// filter finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_signers_key_was_revoked_says_so() {
    use accord_core::Timestamp;
    let tf = TestFed::new(&["KZ", "BY"], 53).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let t = now().0;
    let rec = tf
        .fed
        .record(0, "Signed with a stolen key", Timestamp(t - 60_000));
    // Another, retracted by the member's root key once the key was found stolen: it shows as
    // retracted, and its provenance still says the signer's key is revoked.
    let gone = tf
        .fed
        .record(0, "Also signed with the stolen key", Timestamp(t - 50_000));
    let revocation = tf.revoke_publisher_key(0, Timestamp(t - 120_000));
    let by_root = accord_core::Object::Retraction(accord_core::Retraction {
        object_type: accord_core::ObjectType::Retraction,
        federation: tf.fed.federation(),
        created: Timestamp(t - 10_000),
        member: tf.fed.members[0].code.clone(),
        record: gone.id(),
        reason: "signed with a stolen key".into(),
    })
    .sign(&tf.fed.members[0].root);
    for o in [&rec, &gone, &revocation, &by_root] {
        let (out, _) = node
            .submit_searchable(vec![o.as_bytes().to_vec()], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
    }
    let (s, html, _) = page(&format!("{base}/records/{}?lang=ru", rec.id()), "").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("полномочия подписавшего отозваны")
            && html.contains("Ключ, которым подписана эта запись, отозван")
            && html.contains("Отзыв действует с"),
        "{html}"
    );
    assert!(!html.contains("signer-revoked"), "no raw code: {html}");
    let (_, html, _) = page(&format!("{base}/records/{}?lang=en", rec.id()), "").await;
    assert!(
        html.contains("The key that signed this record has been revoked"),
        "{html}"
    );
    // Offered by the status filter, and found by it.
    let (_, html, _) = page(&format!("{base}/?lang=en"), "").await;
    assert!(
        html.contains("name=\"status\" value=\"signer-revoked\""),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/?status=signer-revoked&lang=ru"), "").await;
    assert!(html.contains(&format!("/records/{}\"", rec.id())), "{html}");
    let (_, html, _) = page(&format!("{base}/records/{}?lang=ru", gone.id()), "").await;
    assert!(
        html.contains("Эта запись отозвана.")
            && html.contains(" корневым ключом государства-участника: «signed with a stolen key».")
            && html.contains("Полномочия не покрывают запись")
            && html.contains("ключ подписавшего отозван с"),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/records/{}?lang=en", gone.id()), "").await;
    assert!(
        html.contains(" by the member state's root key: “signed with a stolen key”.")
            && html.contains("the signer's key is revoked since"),
        "{html}"
    );
    // The record's proof.cbor carries the revocation and the retraction, so that a check
    // offline sees what this node sees; a record whose signer nothing touches has none.
    let proof = accord_tests::http_get(format!("{base}/records/{}/proof.cbor", gone.id()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let has = |o: &accord_core::SignedObject| {
        proof.windows(o.as_bytes().len()).any(|w| w == o.as_bytes())
    };
    assert!(has(&revocation) && has(&by_root), "{} bytes", proof.len());
    // A record of the same member by another of its publishers, whose key nothing revoked,
    // carries its delegation and no revocation.
    let second = accord_core::SecretKey::from_seed([59; 32]);
    let delegation = accord_core::Object::Delegation(accord_core::Delegation {
        object_type: accord_core::ObjectType::Delegation,
        federation: tf.fed.federation(),
        created: tf.fed.created,
        member: tf.fed.members[0].code.clone(),
        publisher: second.public_key(),
        name: "KZ second publisher".into(),
        kinds: None,
        directions: None,
        not_before: tf.fed.created,
        not_after: None,
    })
    .sign(&tf.fed.members[0].root);
    let body = tf
        .fed
        .record_body(0, "By another ministry", Timestamp(t - 40_000));
    let other = accord_core::Object::Record(body).sign(&second);
    let out = node
        .submit(vec![
            delegation.as_bytes().to_vec(),
            other.as_bytes().to_vec(),
        ])
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"), "{out:?}");
    let plain = accord_tests::http_get(format!("{base}/records/{}/proof.cbor", other.id()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let within = |o: &accord_core::SignedObject| {
        plain.windows(o.as_bytes().len()).any(|w| w == o.as_bytes())
    };
    assert!(
        within(&delegation) && !within(&revocation),
        "its delegation, and no revocation of the other key"
    );
    assert!(!html.contains("signer-revoked"), "no raw code: {html}");
    node.shutdown().await;
}

/// An operator opening a new node's pages finds what to do, not empty tables: no peers (with
/// what to check), no records (with where they come from), no publishers yet; in Russian and
/// English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_nodes_pages_say_what_is_missing_and_what_to_do() {
    let tf = TestFed::new(&["KZ", "BY"], 52).unwrap();
    let mut cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    // Nothing preloaded: no delegation, hence no publisher.
    cfg.preload.clear();
    let node = accord_node::Node::spawn(cfg).await.unwrap();
    let base = serve(&node).await;
    let (s, html, _) = page(&format!("{base}/network?lang=ru"), "ru").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Узел не соединён ни с одним узлом федерации.")
            && html.contains("network.bootstrap")
            && !html.contains("<table"),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/network?lang=en"), "en").await;
    assert!(
        html.contains("names no network.bootstrap address"),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/overview?lang=ru"), "ru").await;
    assert!(
        html.contains("На этом узле пока нет записей.") && !html.contains("class=\"heat\""),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/federation?lang=en"), "en").await;
    assert!(
        html.contains("No ministry has been delegated to publish yet."),
        "{html}"
    );
    node.shutdown().await;
}

/// A record's own page shows its title and file names without the characters that hide or
/// reorder text: a file named `invoice\u{202E}fdp.exe` (read "invoiceexe.pdf") is shown as
/// what it is, isolated from the text around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_page_shows_no_hidden_or_reordering_characters() {
    let tf = TestFed::new(&["KZ", "BY"], 53).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let mut body = tf.fed.record_body(0, "unused", now());
    body.title.insert(
        body.lang.clone(),
        format!("Report{}\u{202E}txt.exe", "\u{1}".repeat(1000)),
    );
    body.attachments = vec![accord_core::attachment::describe(
        "invoice\u{202E}fdp.exe",
        b"a file",
    )];
    let rec = Object::Record(body).sign(&tf.fed.members[0].publisher);
    assert_eq!(
        node.submit(vec![rec.as_bytes().to_vec()]).await.unwrap()[0].status,
        "accepted"
    );
    let (s, html, _) = page(&format!("{base}/records/{}?lang=en", rec.id()), "en").await;
    assert_eq!(s, 200);
    assert!(
        !html.contains('\u{202E}') && !html.contains('\u{1}'),
        "hidden characters shown"
    );
    assert!(html.contains("Reporttxt.exe"), "{html}");
    assert!(html.contains("<bdi>invoicefdp.exe</bdi>"), "{html}");
    node.shutdown().await;
}

/// Two versions of a record in one language and two scripts (Uzbek in Latin and in Cyrillic
/// letters) read as two languages wherever languages are named: the record's language links,
/// the result's badges, the language filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_in_two_scripts_of_one_language_are_told_apart() {
    let tf = TestFed::new(&["KZ", "UZ"], 58).unwrap();
    let node = tf.spawn(1, vec![]).await.unwrap();
    let base = serve(&node).await;
    let mut body = tf.fed.record_body(1, "unused", now());
    body.lang = "uz-Latn".into();
    body.title = BTreeMap::from([
        ("uz-Latn".to_string(), "Raqamli hukumat".to_string()),
        ("uz-Cyrl".to_string(), "Рақамли ҳукумат".to_string()),
    ]);
    body.body = BTreeMap::from([
        (
            "uz-Latn".to_string(),
            "Davlat xizmatlari portali.".to_string(),
        ),
        (
            "uz-Cyrl".to_string(),
            "Давлат хизматлари портали.".to_string(),
        ),
    ]);
    let rec = Object::Record(body).sign(&tf.fed.members[1].publisher);
    let (out, searchable) = node
        .submit_searchable(vec![rec.as_bytes().to_vec()], Duration::from_secs(60))
        .await
        .unwrap();
    assert!(out[0].status == "accepted" && searchable, "{out:?}");
    let (_, html, _) = page(&format!("{base}/records/{}?lang=ru", rec.id()), "ru").await;
    assert!(
        html.contains("узбекский, uz-Latn") && html.contains("узбекский, uz-Cyrl"),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/?lang=en"), "en").await;
    assert!(
        html.contains("Uzbek, uz-Latn") && html.contains("Uzbek, uz-Cyrl"),
        "{html}"
    );
    // The language chosen bare finds both scripts, and its filter shows them ticked, greyed
    // (they go with the bare box, which alone is sent again).
    let (_, html, _) = page(&format!("{base}/?in=uz&lang=en"), "en").await;
    assert!(html.contains("Raqamli hukumat"), "{html}");
    for tag in ["uz-Latn", "uz-Cyrl"] {
        assert!(
            html.contains(&format!("name=\"in\" value=\"{tag}\" checked disabled")),
            "{tag}: {html}"
        );
    }
    assert!(html.contains("name=\"in\" value=\"uz\" checked>"), "{html}");
    // Chosen by its script, the other script's box stays free.
    let (_, html, _) = page(&format!("{base}/?in=uz-Latn&lang=en"), "en").await;
    assert!(
        html.contains("name=\"in\" value=\"uz-Latn\" checked>")
            && html.contains("name=\"in\" value=\"uz-Cyrl\">"),
        "{html}"
    );
    node.shutdown().await;
}

/// A tag on a record's page opens the records with that tag — matched whole, case aside — not
/// a search for its words, which found every record that mentions them; the filter is a chip
/// like any other, and the API, the export and the live stream take it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_opens_the_records_with_that_tag_not_a_search_for_its_words() {
    let tf = TestFed::new(&["KZ", "BY"], 59).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let record = |n: u64, title: &str, tags: &[&str]| {
        let mut body = tf
            .fed
            .record_body(0, "unused", accord_core::Timestamp(now().0 + n));
        body.lang = "en".into();
        body.title = BTreeMap::from([("en".to_string(), title.to_string())]);
        body.body = BTreeMap::from([(
            "en".to_string(),
            "How e-government services reach the regions.".to_string(),
        )]);
        body.tags = tags.iter().map(|t| t.to_string()).collect();
        Object::Record(body).sign(&tf.fed.members[0].publisher)
    };
    let tagged = record(1, "Proactive services", &["E-Government", "pilot"]);
    let other_tag = record(2, "Service catalogue", &["government"]);
    let untagged = record(3, "Regional portals", &["e\u{200B}gov\u{202E}"]);
    accepted_and_searchable(&node, &[&tagged, &other_tag, &untagged]).await;
    let client = accord_tests::http();
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let get = |path: String| {
        let (client, url) = (client.clone(), format!("{base}{path}"));
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // The words of the tag are in every record; the tag is in one.
    let (_, words) = get("/v1/records?q=e-government".into()).await;
    let words: serde_json::Value = serde_json::from_str(&words).unwrap();
    assert_eq!(ids(&words).len(), 3, "{words}");
    let (s, by_tag) = get("/v1/records?tag=e-government".into()).await;
    assert_eq!(s, 200, "{by_tag}");
    let by_tag: serde_json::Value = serde_json::from_str(&by_tag).unwrap();
    assert_eq!(ids(&by_tag), [tagged.id().to_string()], "{by_tag}");
    assert_eq!(
        by_tag["items"][0]["tags"],
        serde_json::json!(["E-Government", "pilot"])
    );
    let (_, either) = get("/v1/records?tag=PILOT&tag=government&sort=oldest".into()).await;
    let either: serde_json::Value = serde_json::from_str(&either).unwrap();
    assert_eq!(
        ids(&either),
        [tagged.id().to_string(), other_tag.id().to_string()],
        "{either}"
    );
    // A tag no record could have is refused by name.
    let (s, bad) = get(format!("/v1/records?tag={}", "x".repeat(65))).await;
    assert!(s == 400 && bad.contains("parameter tag"), "{s} {bad}");
    let (s, bad) = get("/v1/records?tag=a%07b".into()).await;
    assert!(s == 400 && bad.contains("parameter tag"), "{s} {bad}");

    // The record's page links its tags to the filter, as pages show them (a tag's invisible
    // and reordering characters taken out), and such a link finds its record.
    let (_, html, _) = page(&format!("{base}/records/{}?lang=en", tagged.id()), "").await;
    assert!(html.contains("href=\"/?tag=E-Government\""), "{html}");
    let (_, html, _) = page(&format!("{base}/records/{}?lang=en", untagged.id()), "").await;
    assert!(html.contains("href=\"/?tag=egov\">egov</a>"), "{html}");
    let (_, found) = get("/v1/records?tag=egov".into()).await;
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    assert_eq!(ids(&found), [untagged.id().to_string()], "{found}");
    // That link lists the one record, says the filter is in force and how to take it away, and
    // the filter panel keeps it.
    let (s, html, _) = page(&format!("{base}/?tag=E-Government&lang=en"), "").await;
    assert_eq!(s, 200);
    assert!(
        html.contains(&format!("/records/{}", tagged.id())),
        "{html}"
    );
    assert!(
        !html.contains(&format!("/records/{}", other_tag.id())),
        "{html}"
    );
    assert!(
        !html.contains(&format!("/records/{}", untagged.id())),
        "{html}"
    );
    assert!(html.contains("Tag: </span>E-Government"), "{html}");
    assert!(
        html.contains("<input type=\"hidden\" name=\"tag\" value=\"E-Government\">"),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/?tag=E-Government&lang=ru"), "").await;
    assert!(html.contains("Тег: </span>E-Government"), "{html}");
    // The CSV export of the filtered records carries their tags.
    let (s, csv) = get("/export.csv?tag=pilot".into()).await;
    assert_eq!(s, 200, "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("\"E-Government; pilot\""), "{csv}");
    node.shutdown().await;
}

/// A hostile member's text cannot reorder or disguise what a record's page shows: a summary,
/// a body and a link title with a right-to-left override lose it, and a link whose title
/// reads as one address shows where it really goes. The page names the record by its whole
/// id whatever the path held around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_text_cannot_reorder_the_page_nor_disguise_a_link() {
    let tf = TestFed::new(&["KZ", "BY"], 52).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let mut body = tf.fed.record_body(0, "Реестр услуг", now());
    body.lang = "ru".into();
    body.title = BTreeMap::from([("ru".to_string(), "Реестр услуг".to_string())]);
    body.summary = BTreeMap::from([(
        "ru".to_string(),
        "Итоги \u{202E}вохинрап\u{202C} за год".to_string(),
    )]);
    body.body = BTreeMap::from([(
        "ru".to_string(),
        "Текст \u{202E}тсекст\u{2066} и `код\u{202E}`, [https://egov.kz/](https://evil.example/x) и <https://auto.example/>, <https://egov.kz@evil.example/>, <https://evil.example\\@egov.kz/>, <https://\u{0435}gov.kz/> и ![схема ![b](https://b.example/)](https://evil.example/i)".to_string(),
    )]);
    body.links = vec![
        Link {
            url: "https://egov.kz@evil.example:8443/login".into(),
            title: Some("https://egov.kz/\u{202E}".into()),
        },
        Link {
            url: "https://evil.example\\@egov.kz/".into(),
            title: Some("egov.kz".into()),
        },
        Link {
            url: "https://\u{0435}gov.kz/".into(),
            title: Some("egov.kz".into()),
        },
    ];
    let rec = Object::Record(body).sign(&tf.fed.members[0].publisher);
    let out = node.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    assert_eq!(out[0].status, "accepted", "{:?}", out[0]);
    let id = rec.id().to_string();
    let (s, html, _) = page(&format!("{base}/records/%20{id}%0A?lang=ru"), "").await;
    assert_eq!(s, 200);
    for c in ['\u{202E}', '\u{202C}', '\u{2066}'] {
        assert!(!html.contains(c), "U+{:04X} reached the page", c as u32);
    }
    assert!(
        html.contains("Итоги вохинрап за год"),
        "the summary is shown"
    );
    // Where each link goes: after a user part or a backslash, a look-alike letter as
    // punycode, a link of the body too (not an address written as its own text, unless it
    // holds a user part), an image's link inside another's.
    assert_eq!(html.matches("(evil.example)").count(), 5, "{html}");
    // The address with a backslash links where a browser reads it, its text's first host.
    assert!(
        html.contains("href=\"https://evil.example/@egov.kz/\""),
        "{html}"
    );
    assert_eq!(html.matches("(xn--gov-").count(), 2, "{html}");
    assert!(html.contains("(b.example)"), "{html}");
    assert!(!html.contains("(egov.kz)") && !html.contains("(auto.example)"));
    assert!(
        html.contains(&format!("accord verify {id}.cbor")),
        "the verify command names the whole id"
    );
    assert!(!html.contains(&format!("{id}\n")) && !html.contains(&format!(" {id}.cbor\"")));
    // A prefix of the id opens the same page, which names the whole id too.
    let (s, html, _) = page(&format!("{base}/records/{}?lang=ru", &id[..12]), "").await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!("accord verify {id}.cbor")));
}

/// What an accessibility audit (WCAG 2.1 AA) found, as pages now serve it: badges are words
/// apart, the languages' badges say what they are; the live notice's status line is on the
/// page, empty, from the start, with a button that stops it; the filters come before the
/// results in the page, as they are shown; a body's headings sit under the page's title; a
/// link of a body always has a name and goes somewhere; a text shown in another language than
/// the one asked for, and a snippet whose script does not tell its language, say which;
/// "Copied" has a status line; the tables laid out as cards say their roles; the dates' fields
/// point to the error they cause; a page of results after the first says which in its title.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_read_right_to_assistive_technology() {
    let tf = TestFed::new(&["KZ", "BY"], 66).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    // A Russian original with an English title, and its summary and body in Russian only.
    let mut body = tf.fed.record_body(0, "unused", now());
    body.lang = "ru".into();
    body.title = BTreeMap::from([
        ("ru".to_string(), "Цифровые навыки".to_string()),
        ("en".to_string(), "Digital skills".to_string()),
    ]);
    body.summary = BTreeMap::from([("ru".to_string(), "Кратко о навыках".to_string())]);
    body.body = BTreeMap::from([(
        "ru".to_string(),
        "# Итоги\n\nСм. [](https://example.org/files/report.pdf) и [плохая](javascript:alert(1)) и [](javascript:alert(2)).".to_string(),
    )]);
    let rec = Object::Record(body).sign(&tf.fed.members[0].publisher);
    // Records whose script does not tell their language: Kazakh (Cyrillic, as Russian is) and
    // Armenian (neither Cyrillic nor Latin).
    let other = |n: u64, lang: &str, title: &str, text: &str| {
        let mut b = tf
            .fed
            .record_body(0, "unused", accord_core::Timestamp(now().0 + n));
        b.lang = lang.into();
        b.title = BTreeMap::from([(lang.to_string(), title.to_string())]);
        b.summary = BTreeMap::from([(lang.to_string(), text.to_string())]);
        b.body = BTreeMap::from([(lang.to_string(), text.to_string())]);
        Object::Record(b).sign(&tf.fed.members[0].publisher)
    };
    let kk = other(
        1,
        "kk",
        "Цифрлық дағдылар",
        "Мемлекеттік қызметшілердің цифрлық дағдылары.",
    );
    let hy = other(
        2,
        "hy",
        "Թվային հմտություններ",
        "Պետական ծառայողների թվային հմտությունները։",
    );
    accepted_and_searchable(&node, &[&rec, &kk, &hy]).await;

    let (s, html, _) = page(&format!("{base}/?lang=en"), "").await;
    assert_eq!(s, 200);
    // Badges apart by a space ("KZ … Regulatory note", not "…Regulatory note" run together),
    // and the languages named as such.
    assert!(
        html.contains("</span> <span class=\"badge\">")
            && !html.contains("</span><span class=\"badge\">"),
        "{html}"
    );
    assert!(
        html.contains(
            "<span class=\"visually-hidden\">Available in:</span> <span class=\"badge\">"
        ),
        "{html}"
    );
    // The live notice: an empty status line from the start (not a region shown with its
    // text), what is shown beside it not read twice, a refresh link whose glyph is not read, a
    // button that stops it.
    assert!(
        html.contains("<div id=\"live\" data-query=")
            && html.contains(
                "<span class=\"visually-hidden\" id=\"live-text\" role=\"status\"></span><span class=\"live-shown\" aria-hidden=\"true\"></span>"
            )
            && html.contains("<span aria-hidden=\"true\">↻</span> refresh")
            && html.contains(
                "<button class=\"linkish\" id=\"live-stop\" type=\"button\">Stop live updates</button>"
            ),
        "{html}"
    );
    let (_, css, _) = page(&format!("{base}/static/style.css"), "").await;
    assert!(!css.contains("#live { display:none; }"), "{css}");
    let (_, html_ru, _) = page(&format!("{base}/?lang=ru"), "").await;
    assert!(html_ru.contains("Остановить обновления"), "{html_ru}");
    // The filters come before the results in the page, as they are shown (the CSS no longer
    // moves them up), and the skip link still leads to the results.
    let filters = html.find("id=\"filters\"").expect("the filter box");
    let results = html.find("id=\"results\"").expect("the results");
    assert!(filters < results, "the filters come after the results");
    assert!(html.contains("href=\"#results\""));
    assert!(!css.contains("order:-1"), "{css}");
    // Links that look like badges are underlined; an open "more" keeps its summary (focus
    // stays on it); the menu wraps rather than scrolls out of sight.
    assert!(
        css.contains("a.badge { color:var(--accent); text-decoration:underline; }")
            && !css.contains("details.more[open] > summary { display:none")
            && !css.contains("scrollbar-width:none")
            && !css.contains("text-overflow:ellipsis"),
        "{css}"
    );
    // A snippet says its language where the script does not tell it.
    assert!(html.contains("<p class=\"snippet\" lang=\"hy\">"), "{html}");
    assert!(html.contains("<p class=\"snippet\" lang=\"ru\">"), "{html}");
    assert!(
        html_ru.contains("<p class=\"snippet\" lang=\"kk\">"),
        "{html_ru}"
    );
    assert!(
        !html_ru.contains("<p class=\"snippet\" lang=\"ru\">"),
        "the page's own language is not said again: {html_ru}"
    );

    // The record's page in English: the title in English, the summary and body, which it
    // lacks in English, in Russian and marked so.
    let (s, html, _) = page(&format!("{base}/records/{}?lang=en", rec.id()), "").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("<h1 lang=\"en\">Digital skills</h1>")
            && html.contains("<p lang=\"ru\"><em>Кратко о навыках</em></p>")
            && html.contains("<div class=\"body\" lang=\"ru\">"),
        "{html}"
    );
    assert!(
        html.contains("</span> <span class=\"badge\">")
            && !html.contains("</span><span class=\"badge\">"),
        "{html}"
    );
    let body = html
        .split("<div class=\"body\"")
        .nth(1)
        .and_then(|b| b.split("</div>").next())
        .expect("the body");
    // `#` under the page's `<h1>` is an `<h2>`.
    assert!(
        body.contains("<h2>Итоги</h2>") && !body.contains("<h1"),
        "{body}"
    );
    // A link without text is named by its file; a link that goes nowhere safe is its text.
    assert!(
        body.contains("href=\"https://example.org/files/report.pdf\">report.pdf</a> (example.org)"),
        "{body}"
    );
    assert!(!body.contains("\"></a>"), "a link without a name: {body}");
    assert!(
        !html.contains("href=\"#\"")
            && !html.contains("javascript")
            && body.contains(" и плохая и "),
        "{body}"
    );
    // "Copied" is said in a status line on the page from the start.
    assert!(
        html.contains("data-status=\"verify-copied\"")
            && html.contains(
                "<span class=\"visually-hidden\" id=\"verify-copied\" role=\"status\"></span>"
            ),
        "{html}"
    );

    // A table laid out as cards on a phone names every cell's column (its first too), and the
    // script says its table roles, which some browsers drop with the table's display.
    let (_, html, _) = page(&format!("{base}/federation?lang=en"), "").await;
    let table = html
        .split("<table class=\"stack\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("the members' table");
    assert!(
        table.contains("<td data-label=\"Member state\">"),
        "{table}"
    );
    for td in table.split("<td").skip(1) {
        let tag = td.split('>').next().unwrap_or("");
        assert!(
            tag.contains("data-label=\""),
            "a cell without its column: <td{tag}>"
        );
    }
    let (_, js, _) = page(&format!("{base}/static/app.js"), "").await;
    assert!(
        js.contains("querySelectorAll('table.stack')")
            && [
                "'table'",
                "'rowgroup'",
                "'row'",
                "'columnheader'",
                "'rowheader'",
                "'cell'"
            ]
            .iter()
            .all(|r| js.contains(r)),
        "{js}"
    );

    // Dates that end before they start: their fields point to the notice that says so.
    let (_, html, _) = page(
        &format!("{base}/?from=2026-12-31&to=2026-01-01&lang=en"),
        "",
    )
    .await;
    assert!(
        html.contains("<p class=\"notice\" id=\"dates-error\" role=\"status\">")
            && html.contains(
                "name=\"from\" value=\"2026-12-31\" aria-invalid=\"true\" aria-describedby=\"dates-error\""
            )
            && html.matches("aria-invalid=\"true\"").count() == 2,
        "{html}"
    );
    // A page after the first says which, in its title; its arrows are not read.
    let (_, html, _) = page(&format!("{base}/?limit=1&cursor=o1&lang=en"), "").await;
    assert!(
        html.contains("<title>Search, page 2 · ")
            && html.contains("<span aria-hidden=\"true\">←</span> Previous page"),
        "{html}"
    );
    node.shutdown().await;
}
