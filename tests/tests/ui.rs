//! The web UI's HTML: key content of every page, language choice, and that hostile record
//! content is rendered inert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use accord_core::Object;
use accord_core::object::Link;
use accord_tests::harness::{TestFed, now, serve};

async fn page(url: &str, accept_language: &str) -> (u16, String, Option<String>) {
    let r = reqwest::Client::new()
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
        .submit_searchable(vec![rec.as_bytes().to_vec()], Duration::from_secs(10))
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
        html.contains("<h1>E-government</h1>"),
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
    assert!(html.contains("<h2>Опыт</h2>"), "Markdown is rendered");
    assert!(
        html.contains("(original)"),
        "the original language is marked"
    );
    assert!(html.contains("Signature valid"));
    assert!(html.contains("KZ development publisher"));
    assert!(
        html.contains(&tf.fed.members[0].root.public_key().to_string()),
        "member root key"
    );
    assert!(html.contains(&format!("accord verify {}.cbor", rec.id())));
    let bytes = reqwest::get(format!("{base}/records/{}/object.cbor", rec.id()))
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
