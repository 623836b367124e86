//! The analyst API over HTTP on loopback: search with filters and facets, pagination, derived
//! status, provenance, the live stream, the OpenAPI document, and hostile parameters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use accord_core::{Object, ObjectId, SignedObject, Timestamp};
use accord_tests::harness::{TestFed, admitted, dial_addr, now, serve, wait_until};
use futures::StreamExt;
use serde_json::Value;

use accord_tests::harness::get_json as get;

const MEMBERS: [&str; 5] = ["KZ", "BY", "AM", "KG", "UZ"];
const KINDS: [&str; 4] = [
    "regulatory-note",
    "skills-programme",
    "platform-case-study",
    "dataset",
];
const DIRS: [&str; 4] = ["regulation", "e-government", "digital-skills", "education"];

/// A seeded corpus: 250 records across five members, kinds and directions.
fn corpus(tf: &TestFed) -> Vec<(SignedObject, usize, &'static str, &'static str)> {
    let t = now().0 - 10_000_000;
    (0..250usize)
        .map(|n| {
            let m = n % 5;
            let (k, d) = (KINDS[n % 4], DIRS[(n / 2) % 4]);
            let mut body = tf.fed.record_body(
                m,
                &format!("Record {n} about digital platforms"),
                Timestamp(t + n as u64 * 1000),
            );
            body.kind = k.into();
            body.directions = vec![d.into()];
            (
                Object::Record(body).sign(&tf.fed.members[m].publisher),
                m,
                k,
                d,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_facets_and_pagination_over_http() {
    let tf = TestFed::new(&MEMBERS, 41).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let recs = corpus(&tf);
    let (out, searchable) = node
        .submit_searchable(
            recs.iter().map(|r| r.0.as_bytes().to_vec()).collect(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted"));
    assert!(searchable, "stored records become searchable");

    let naive = |f: &dyn Fn(usize, &str, &str) -> bool| {
        recs.iter().filter(|(_, m, k, d)| f(*m, k, d)).count() as u64
    };
    let (s, v) = get(&base, "/v1/records?limit=5").await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], 250);
    let (_, v) = get(
        &base,
        "/v1/records?member=KZ&member=BY&kind=dataset&limit=100",
    )
    .await;
    assert_eq!(
        v["total"].as_u64(),
        Some(naive(&|m, k, _| m < 2 && k == "dataset"))
    );
    let (_, v) = get(
        &base,
        "/v1/records?direction=education&kind=regulatory-note&kind=dataset",
    )
    .await;
    assert_eq!(
        v["total"].as_u64(),
        Some(naive(
            &|_, k, d| d == "education" && (k == "regulatory-note" || k == "dataset")
        ))
    );
    // Facets count the whole result set.
    let (_, v) = get(&base, "/v1/records?kind=skills-programme").await;
    for (i, m) in MEMBERS.iter().enumerate() {
        assert_eq!(
            v["facets"]["member"][m].as_u64().unwrap_or(0),
            naive(&|mm, k, _| mm == i && k == "skills-programme"),
            "{m}"
        );
    }
    for d in DIRS {
        assert_eq!(
            v["facets"]["direction"][d].as_u64().unwrap_or(0),
            naive(&|_, k, dd| dd == d && k == "skills-programme"),
            "{d}"
        );
    }
    assert_eq!(
        v["facets"]["publisher"]["KZ development publisher"]
            .as_u64()
            .unwrap_or(0),
        naive(&|m, k, _| m == 0 && k == "skills-programme")
    );
    // Pagination: every record exactly once.
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/records?limit=13&sort=oldest&cursor={c}"),
            None => "/v1/records?limit=13&sort=oldest".to_string(),
        };
        let (s, v) = get(&base, &q).await;
        assert_eq!(s, 200);
        for i in v["items"].as_array().unwrap() {
            assert!(
                seen.insert(i["id"].as_str().unwrap().to_string()),
                "a record came twice"
            );
            assert!(i["title"].as_str().unwrap().starts_with("Record "));
            assert!(
                i["publisher"]
                    .as_str()
                    .unwrap()
                    .ends_with("development publisher")
            );
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 250);
    // Text search with a highlighted snippet.
    let (_, v) = get(&base, "/v1/records?q=platform&member=AM&limit=3").await;
    assert!(v["total"].as_u64().unwrap() > 0);
    assert!(
        v["items"][0]["snippet"].as_str().unwrap().contains("<b>"),
        "{}",
        v["items"][0]
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_and_retracted_records_are_hidden_by_default() {
    let tf = TestFed::new(&["KZ", "BY"], 42).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let history = accord_tests::harness::History::new(&tf, now().0 - 100_000);
    let accord_tests::harness::History {
        old, newer, gone, ..
    } = &history;
    for o in history.objects() {
        let (out, searchable) = node
            .submit_searchable(vec![o.as_bytes().to_vec()], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(out[0].status, "accepted", "{out:?}");
        assert!(searchable);
    }
    let titles = |v: &Value| -> BTreeSet<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, v) = get(&base, "/v1/records").await;
    assert_eq!(titles(&v), BTreeSet::from(["Edition two".to_string()]));
    let (_, v) = get(&base, "/v1/records?status=superseded").await;
    assert_eq!(titles(&v), BTreeSet::from(["Edition one".to_string()]));
    let (_, v) = get(&base, "/v1/records?status=retracted").await;
    assert_eq!(titles(&v), BTreeSet::from(["Withdrawn note".to_string()]));
    // The detail shows status, history and the provenance chain.
    let (s, v) = get(&base, &format!("/v1/records/{}", gone.id())).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "retracted");
    assert_eq!(
        v["history"]["retracted_by"][0]["reason"],
        "published by mistake"
    );
    assert_eq!(v["provenance"]["signature_valid"], true);
    assert_eq!(
        v["provenance"]["delegation"]["publisher"],
        "KZ development publisher"
    );
    assert_eq!(
        v["provenance"]["member_root_key"],
        tf.fed.members[0].root.public_key().to_string()
    );
    assert_eq!(
        v["provenance"]["charter"]["federation"],
        tf.fed.federation().to_string()
    );
    let (_, v) = get(&base, &format!("/v1/records/{}", old.id())).await;
    assert_eq!(v["history"]["superseded_by"][0], newer.id().to_string());
    let (s, _) = get(
        &base,
        &format!("/v1/records/{}", ObjectId::of_body(b"none")),
    )
    .await;
    assert_eq!(s, 404);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_from_another_node_is_streamed_and_searchable() {
    let tf = TestFed::new(&["KZ", "BY"], 43).unwrap();
    let a = tf.spawn(0, vec![]).await.unwrap();
    let b = tf
        .spawn(1, vec![dial_addr(&a).await.unwrap()])
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || admitted(&b, 1)).await);
    assert!(wait_until(Duration::from_secs(20), || admitted(&a, 1)).await);
    let base_b = serve(&b).await;
    let resp = accord_tests::http_get(format!("{base_b}/v1/stream?member=KZ"))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut stream = resp.bytes_stream();
    let mut body = tf.fed.record_body(0, "unused", now());
    body.lang = "ru".into();
    body.title = BTreeMap::from([(
        "ru".to_string(),
        "Электронное правительство: новый опыт".to_string(),
    )]);
    body.body = BTreeMap::from([("ru".to_string(), "Опыт регионов.".to_string())]);
    let rec = Object::Record(body).sign(&tf.fed.members[0].publisher);
    a.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    // Generous deadlines: how fast is measured by the benchmarks (accepted → searchable lag),
    // not asserted here on a shared machine.
    let arrived = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = String::new();
        while let Some(chunk) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if buf.contains(&rec.id().to_string()) {
                return std::time::Instant::now();
            }
        }
        panic!("stream ended");
    })
    .await
    .expect("the record came through the stream");
    // Then searchable.
    let found = wait_until(Duration::from_secs(30), || {
        let base = base_b.clone();
        async move {
            let (_, v) = get(&base, "/v1/records?q=%D0%BF%D1%80%D0%B0%D0%B2%D0%B8%D1%82%D0%B5%D0%BB%D1%8C%D1%81%D1%82%D0%B2%D0%B0").await;
            v["total"].as_u64() == Some(1)
        }
    })
    .await;
    assert!(
        found,
        "searchable on B after arriving ({:?} ago)",
        arrived.elapsed()
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// Checks `v` against an OpenAPI schema of the kind the node's document uses: the type, the
/// required properties (each with its type, `null` only where `nullable`), and array items.
fn conforms(schema: &Value, v: &Value, at: &str) {
    if v.is_null() {
        assert_eq!(
            schema["nullable"], true,
            "{at}: null where the schema does not allow it"
        );
        return;
    }
    let ty = schema["type"].as_str().unwrap_or("");
    let ok = match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    };
    assert!(ok, "{at}: expected {ty}, got {v}");
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap();
        let field = v
            .get(name)
            .unwrap_or_else(|| panic!("{at}: no {name} in {v}"));
        conforms(&schema["properties"][name], field, &format!("{at}.{name}"));
    }
    if let (Some(items), Some(list)) = (schema.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            conforms(items, item, &format!("{at}[{i}]"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes_and_bad_parameters_are_400() {
    let tf = TestFed::new(&["KZ"], 44).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let rec = tf.fed.record(0, "One", now());
    node.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    let (s, doc) = get(&base, "/v1/openapi.json").await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    // A strict OpenAPI 3.0 model reads it: every operation, parameter and response has the
    // shape the specification requires.
    let model: openapiv3::OpenAPI = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(
        model.paths.paths.len(),
        doc["paths"].as_object().unwrap().len()
    );
    for (path, item) in &model.paths.paths {
        let item = item.as_item().unwrap();
        for (method, op) in item.iter() {
            assert!(
                !op.responses.responses.is_empty(),
                "{method} {path}: no responses"
            );
            assert!(op.summary.is_some(), "{method} {path}: no summary");
        }
    }
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths.len(),
        accord_api::openapi::ROUTES
            .iter()
            .map(|r| r.1)
            .collect::<BTreeSet<_>>()
            .len()
    );
    let client = accord_tests::http();
    // An attachment file held by the node, for the blob paths (uploaded first, so that the
    // GET, which comes before the PUT, finds it).
    let file = b"an attachment file for the API test".to_vec();
    let file_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&file));
    let up = client
        .put(format!("{base}/v1/blobs/{file_hash}"))
        .header("content-type", "application/octet-stream")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert!(up.status().is_success(), "{}", up.status());
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let id = if path.starts_with("/v1/blobs/") {
                file_hash.clone()
            } else {
                rec.id().to_string()
            };
            let url = format!("{base}{}", path.replace("{id}", &id));
            let r = match method.as_str() {
                "get" if path == "/v1/stream" => {
                    let r = client.get(&url).send().await.unwrap();
                    assert_eq!(r.status().as_u16(), 200, "{path}");
                    continue;
                }
                "get" => client.get(&url).send().await.unwrap(),
                "post" => client
                    .post(&url)
                    .header("content-type", "application/cbor")
                    .body(rec.as_bytes().to_vec())
                    .send()
                    .await
                    .unwrap(),
                "put" => client
                    .put(&url)
                    .header("content-type", "application/octet-stream")
                    .body(file.clone())
                    .send()
                    .await
                    .unwrap(),
                m => panic!("undocumented method {m}"),
            };
            assert!(r.status().is_success(), "{method} {path}: {}", r.status());
            // The answer has the shape the document gives it.
            let (media, schema) = accord_api::openapi::success(method, path);
            // The document's example of the answer has the shape its schema gives.
            let documented = &doc["paths"][path.as_str()][method.as_str()]["responses"]["200"]["content"]
                [media]["schema"];
            if let Some(example) = documented.get("example") {
                conforms(&schema, example, &format!("example of {method} {path}"));
            } else {
                assert_ne!(media, "application/json", "{method} {path} has no example");
            }
            if media == "application/json" {
                let v: Value = r.json().await.unwrap();
                conforms(&schema, &v, &format!("{method} {path}"));
            }
        }
    }
    // Bad parameters: 400, and the error names the parameter.
    for (q, name) in [
        ("limit=0", "limit"),
        ("limit=1000", "limit"),
        ("member=kz", "member"),
        ("status=lost", "status"),
        ("since=yesterday", "since"),
        ("sort=random", "sort"),
        ("cursor=zzz", "cursor"),
        ("colour=red", "colour"),
        ("kind=Not%20A%20Code", "kind"),
    ] {
        let (s, v) = get(&base, &format!("/v1/records?{q}")).await;
        assert_eq!(s, 400, "{q}");
        assert!(v["error"].as_str().unwrap().contains(name), "{q}: {v}");
    }
    let (s, _) = get(&base, &format!("/v1/records?q={}", "a".repeat(600))).await;
    assert_eq!(s, 400);
    // The blob and evidence paths name what is wrong with a bad parameter.
    for (path, status, needle) in [
        ("/v1/blobs/not-a-hash", 400, "SHA-256"),
        ("/v1/health/evidence?number=abc", 400, "number"),
        ("/v1/health/evidence?colour=red", 400, "colour"),
        ("/v1/health/evidence?number=999", 404, "999"),
    ] {
        let (s, v) = get(&base, path).await;
        assert_eq!(s, status, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{path}: {v}");
    }
    for q in [format!("q={}", "a".repeat(600)), "colour=red".to_string()] {
        let (s, v) = get(&base, &format!("/v1/suggest?{q}")).await;
        assert_eq!(s, 400, "{q}");
        assert!(
            v["error"].as_str().unwrap().contains("q")
                || v["error"].as_str().unwrap().contains("colour"),
            "{q}: {v}"
        );
    }
    for (q, name) in [("types=records", "records"), ("format=csv", "format")] {
        let (s, v) = get(&base, &format!("/v1/export?{q}")).await;
        assert_eq!(s, 400, "{q}");
        assert!(v["error"].as_str().unwrap().contains(name), "{q}: {v}");
    }
    // A short id works where the document says it does.
    let short = &rec.id().to_string()[..10];
    let (s, v) = get(&base, &format!("/v1/records/{short}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], rec.id().to_string());
    node.shutdown().await;
}

/// Random query strings and parameter combinations never produce a 5xx. One node serves every
/// case, and is shut down (its directory removed) when the cases end.
#[test]
fn random_queries_never_fail_the_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tf = TestFed::new(&["KZ", "BY"], 45).unwrap();
    let (node, base) = rt.block_on(async {
        let node = tf.spawn(0, vec![]).await.unwrap();
        let recs: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                tf.fed
                    .record(
                        i % 2,
                        &format!("Запись {i} about platforms"),
                        Timestamp(now().0 - 1000 + i as u64),
                    )
                    .into_bytes()
            })
            .collect();
        let (_, searchable) = node
            .submit_searchable(recs, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(searchable);
        let base = serve(&node).await;
        (node, base)
    });
    let client = accord_tests::http();
    let params = proptest::collection::vec(
        (
            // Every parameter the endpoint understands, and one it does not.
            proptest::sample::select(
                accord_api::RECORD_PARAMS
                    .iter()
                    .copied()
                    .chain(["x"])
                    .collect::<Vec<_>>(),
            ),
            ".{0,40}",
        ),
        0..6,
    );
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 64,
        ..Default::default()
    });
    let outcome = runner.run(&params, |params| {
        let status = rt.block_on(async {
            client
                .get(format!("{base}/v1/records"))
                .query(&params)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        let status = status
            .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{params:?}: {e}")))?;
        proptest::prop_assert!(status < 500, "{params:?} -> {status}");
        Ok(())
    });
    rt.block_on(node.shutdown());
    drop(tf);
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_with_publications_and_refusals() {
    let tf = TestFed::new(&["KZ"], 46).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let scrape = |base: String| async move {
        let text = accord_tests::http_get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // Every sample line is `name{labels} value` with a numeric value.
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (name, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            let v: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            samples.insert(name.to_string(), v);
        }
        assert!(
            text.trim_end().ends_with("# EOF"),
            "OpenMetrics text ends with # EOF"
        );
        samples
    };
    let before = scrape(base.clone()).await;
    assert_eq!(
        before.get("accord_build_info{version=\"0.1.0\"}"),
        Some(&1.0)
    );
    let rec = tf.fed.record(0, "Metrics", now());
    node.submit(vec![rec.as_bytes().to_vec()]).await.unwrap();
    let mut bad = tf.fed.record(0, "Bad", now()).into_bytes();
    let n = bad.len();
    bad[n - 2] ^= 1;
    node.submit(vec![bad]).await.unwrap();
    let after = scrape(base).await;
    let get = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    let accepted = "accord_ingest_total{source=\"local\",result=\"accepted\",reason=\"\"}";
    let rejected =
        "accord_ingest_total{source=\"local\",result=\"rejected\",reason=\"signature-invalid\"}";
    assert_eq!(get(&after, accepted), get(&before, accepted) + 1.0);
    assert_eq!(get(&after, rejected), get(&before, rejected) + 1.0);
    assert_eq!(get(&after, "accord_objects{type=\"record\"}"), 1.0);
    assert!(
        after.keys().any(|k| k.starts_with("libp2p_")),
        "libp2p's own metrics are there"
    );
    node.shutdown().await;
}

/// `POST /v1/objects?wait=searchable` answers once the stored records are searchable (read
/// your writes); the default answer comes once they are durable. A bad `wait` value or an
/// unknown parameter is a 400 that names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_can_wait_until_its_records_are_searchable() {
    let tf = TestFed::new(&["KZ"], 47).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let client = accord_tests::http();
    let post = |query: &'static str, body: Vec<u8>| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let r = client
                .post(format!("{base}/v1/objects{query}"))
                .header("content-type", "application/cbor")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    for i in 0..5 {
        let rec = tf.fed.record(0, &format!("Visible at once {i}"), now());
        let (s, v) = post("?wait=searchable", rec.as_bytes().to_vec()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["results"][0]["status"], "accepted");
        assert_eq!(v["searchable"], true);
        // Listed by the very next request.
        let (_, list) = get(&base, &format!("/v1/records/{}", rec.id())).await;
        assert_eq!(list["id"], rec.id().to_string(), "{list}");
        let (_, found) = get(&base, "/v1/records?limit=100").await;
        assert_eq!(found["total"], i + 1);
    }
    let rec = tf.fed.record(0, "Durable", now());
    let (s, v) = post("", rec.as_bytes().to_vec()).await;
    assert_eq!(s, 200);
    assert!(
        v.get("searchable").is_none(),
        "only reported when waited for: {v}"
    );
    let (s, v) = post("?wait=forever", rec.as_bytes().to_vec()).await;
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap().contains("wait=\"forever\""),
        "{v}"
    );
    let (s, v) = post("?sync=1", rec.as_bytes().to_vec()).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("\"sync\""), "{v}");
    node.shutdown().await;
}

/// A submission is answered 413 by the object limit of the federation's charter, not by the
/// protocol's default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_over_the_charters_object_limit_is_413_by_that_limit() {
    // A federation whose charter lowered the object limit to 4 KiB: the HTTP answer is judged by
    // that limit, not the protocol's default of 1 MiB.
    let limits = accord_core::Limits {
        max_object_bytes: 4096,
        ..Default::default()
    };
    let tf = TestFed::with_limits(&["KZ"], 47, limits).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let small = tf.fed.record(0, "small", now());
    let (status, text) = accord_tests::harness::post_object(&base, small.as_bytes().to_vec()).await;
    assert!(
        status == 200 && text.contains("accepted"),
        "{status}: {text}"
    );
    let mut body = tf.fed.record_body(0, "large", now());
    body.body = BTreeMap::from([("en".to_string(), "word ".repeat(1200))]);
    let large = Object::Record(body).sign(&tf.fed.members[0].publisher);
    assert!(large.as_bytes().len() > 4096);
    let (status, text) = accord_tests::harness::post_object(&base, large.as_bytes().to_vec()).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("limit of 4096 bytes"), "{text}");
    node.shutdown().await;
}

/// Every refused or held object comes back with its stable reason code next to the sentence,
/// and /metrics counts refusals by that code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_stable_reason_codes_in_results_and_metrics() {
    let tf = TestFed::new(&["KZ"], 45).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let client = accord_tests::http();
    let post = |bytes: Vec<u8>| {
        let client = client.clone();
        let url = format!("{base}/v1/objects");
        async move {
            let r = client
                .post(url)
                .header("content-type", "application/cbor")
                .body(bytes)
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap();
            v["results"][0].clone()
        }
    };
    let good = tf.fed.record(0, "fine", now());
    let r = post(good.as_bytes().to_vec()).await;
    assert_eq!(r["status"], "accepted", "{r}");
    assert_eq!(r["code"], Value::Null, "{r}");
    let mut forged = tf.fed.record(0, "forged", now()).as_bytes().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    let r = post(forged).await;
    assert_eq!(r["status"], "rejected", "{r}");
    assert_eq!(r["code"], "signature-invalid", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("signature"), "{r}");
    let future = tf
        .fed
        .record(0, "later", now().saturating_add_ms(86_400_000));
    let r = post(future.as_bytes().to_vec()).await;
    assert_eq!(r["code"], "created-in-future", "{r}");
    // Whatever is wrong with one object is its verdict, not an HTTP error.
    let mut trailing = tf.fed.record(0, "tail", now()).as_bytes().to_vec();
    trailing.push(0x00);
    let r = post(trailing).await;
    assert_eq!(
        (r["status"].as_str(), r["code"].as_str()),
        (Some("rejected"), Some("trailing-bytes")),
        "{r}"
    );
    let r = post(b"not cbor at all".to_vec()).await;
    assert_eq!(r["status"], "rejected", "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");
    // In a batch, each element has its verdict.
    let second = tf.fed.record(0, "second", now());
    let mut batch = vec![0x82];
    batch.extend_from_slice(second.as_bytes());
    batch.push(0x01);
    let v: Value = client
        .post(format!("{base}/v1/objects"))
        .header("content-type", "application/cbor")
        .body(batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["results"][0]["status"], "accepted", "{v}");
    assert_eq!(v["results"][1]["code"], "malformed-envelope", "{v}");
    // An empty batch is the one body that is refused as a whole.
    let r = client
        .post(format!("{base}/v1/objects"))
        .header("content-type", "application/cbor")
        .body(vec![0x80])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("empty array"), "{v}");
    let metrics = accord_tests::http_get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for code in ["signature-invalid", "created-in-future"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("accord_ingest_total{")
                    && l.contains(&format!("reason=\"{code}\""))
                    && l.ends_with(" 1")),
            "{code} not counted: {metrics}"
        );
    }
    node.shutdown().await;
}

/// A client generated from the OpenAPI document (`tests/src/client.rs`, by
/// `accord_tests::client_gen`) is what the generator makes from the served document, compiles
/// (it is part of the test crate) and works against a running node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_the_openapi_document_talks_to_a_node() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/client.rs")).unwrap();
    let tf = TestFed::new(&["KZ"], 46).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let served: Value = accord_tests::http_get(format!("{base}/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        committed == accord_tests::client_gen::generate(&served),
        "tests/src/client.rs is stale: run \
         `cargo run -p accord-tests --example client_gen > tests/src/client.rs`"
    );
    let c = accord_tests::client::Client::new(&base);
    assert_eq!(c.get_healthz().await.unwrap(), "ok");
    let status = c.get_v1_status().await.unwrap();
    assert_eq!(status.peer_id, node.peer_id());
    assert_eq!(status.member, "KZ");
    let rec = tf.fed.record(0, "Через клиента", now());
    let sent = c
        .post_v1_objects(&[("wait", "searchable")], rec.as_bytes().to_vec())
        .await
        .unwrap();
    assert_eq!(sent.results[0]["status"], "accepted", "{:?}", sent.results);
    let id = rec.id().to_string();
    // The record page takes the short id too.
    let page = accord_tests::http_get(format!("{base}/records/{}", &id[..12]))
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("Через клиента"));
    let detail = c.get_v1_records_id(&id[..12]).await.unwrap();
    assert_eq!(detail.id, id);
    assert_eq!(detail.status.as_deref(), Some("active"));
    let list = c.get_v1_records(&[("q", "клиента")]).await.unwrap();
    assert_eq!(list.total, 1);
    let raw = c.get_v1_objects_id(&id).await.unwrap();
    assert_eq!(raw.r#type, "record");
    let export = c.get_v1_export(&[("types", "record")]).await.unwrap();
    assert_eq!(export, rec.as_bytes());
    assert!(
        c.get_metrics()
            .await
            .unwrap()
            .contains("accord_ingest_total")
    );
    let bad = c.get_v1_records(&[("limit", "0")]).await.unwrap_err();
    assert_eq!(bad.status, Some(400));
    assert!(bad.message.contains("limit"), "{}", bad.message);
    node.shutdown().await;
}

/// A member an amendment adds is named in queries at once, without a restart: "Armenia" finds
/// the records of AM once the charter says who Armenia is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_by_an_amendment_is_named_in_queries_without_a_restart() {
    let tf = TestFed::new(&["KZ", "BY"], 48).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let read = |node: accord_node::NodeHandle| async move {
        node.search(accord_search::SearchQuery {
            text: Some("Armenia".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .reading
        .members
    };
    assert!(read(node.clone()).await.is_empty());
    let am_root = accord_core::SecretKey::from_seed([48; 32]);
    let amendment = tf.amendment(
        |c| {
            c.members.push(accord_core::object::MemberEntry {
                code: "AM".parse().unwrap(),
                name: BTreeMap::from([
                    ("en".to_string(), "Republic of Armenia".to_string()),
                    ("ru".to_string(), "Республика Армения".to_string()),
                ]),
                root_key: am_root.public_key(),
            })
        },
        Some(&am_root),
    );
    let out = node
        .submit(vec![amendment.as_bytes().to_vec()])
        .await
        .unwrap();
    assert_eq!(out[0].status, "accepted", "{out:?}");
    assert_eq!(read(node.clone()).await, vec!["AM".to_string()]);
    node.shutdown().await;
}

/// The same query reads the same way in the API and the UI (the CLI prints the API's answer):
/// a typo is found and corrected, plain letters find a Kazakh name, an English query finds a
/// Russian-only record through the glossary, and completions come while typing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_forgive_and_explain_alike_in_the_api_and_the_ui() {
    let tf = TestFed::new(&MEMBERS, 43).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let ru = |s: &str| BTreeMap::from([("ru".to_string(), s.to_string())]);
    let mut a = tf.fed.record_body(0, "", Timestamp(now().0 - 60_000));
    a.lang = "ru".into();
    a.title = ru("Центр кибербезопасности в Өскемене");
    a.summary = ru("Как региональный центр реагирует на инциденты.");
    a.body = ru("## Задачи\n\nЦентр следит за сетями школ и больниц.");
    let mut b = tf.fed.record_body(0, "", Timestamp(now().0 - 30_000));
    b.lang = "ru".into();
    b.title = ru("Цифровая грамотность пенсионеров");
    b.summary = ru("Курсы для людей старшего возраста.");
    b.body = ru("Занятия проходят в сельских библиотеках.");
    let signed: Vec<SignedObject> = [a, b]
        .into_iter()
        .map(|r| Object::Record(r).sign(&tf.fed.members[0].publisher))
        .collect();
    let (out, searchable) = node
        .submit_searchable(
            signed.iter().map(|s| s.as_bytes().to_vec()).collect(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == "accepted") && searchable);
    let (a_id, b_id) = (signed[0].id().to_string(), signed[1].id().to_string());

    let (_, v) = get(&base, "/v1/records?q=кибербезапасность").await;
    assert_eq!(v["items"][0]["id"], a_id.as_str(), "{v}");
    assert_eq!(v["did_you_mean"], "кибербезопасность");
    assert_eq!(v["reading"]["approximate"], true);
    let html = accord_tests::http_get(format!("{base}/?lang=en&q=кибербезапасность"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Did you mean") && html.contains("кибербезопасность"));
    assert!(html.contains("Центр кибербезопасности"));

    // Typed on the other keyboard layout: shown as meant, and the words as typed a link away
    // (a name the index does not know is not always a mistake); searched as typed, the reading
    // is only offered.
    let swapped = "rb,th,tpjgfcyjcnb"; // «кибербезопасности»
    let (_, v) = get(&base, &format!("/v1/records?q={swapped}")).await;
    assert_eq!(v["reading"]["showing_for"], "кибербезопасности", "{v}");
    assert_eq!(v["items"][0]["id"], a_id.as_str(), "{v}");
    let (_, v) = get(&base, &format!("/v1/records?q={swapped}&as_typed=1")).await;
    assert_eq!(v["total"], 0, "{v}");
    assert!(v["reading"]["showing_for"].is_null(), "{v}");
    assert_eq!(v["did_you_mean"], "кибербезопасности", "{v}");
    let (s, v) = get(&base, &format!("/v1/records?q={swapped}&as_typed=yes")).await;
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap_or("").contains("as_typed"),
        "{v}"
    );
    let page = |query: String| {
        let base = base.clone();
        async move { accord_tests::harness::get_text(&base, &format!("/?lang=en&{query}")).await }
    };
    let html = page(format!("q={swapped}")).await;
    assert!(
        html.contains("Showing results for the corrected query"),
        "{html}"
    );
    assert!(html.contains("Search instead for"), "{html}");
    let href = html
        .split("href=\"")
        .map(|h| h.split('"').next().unwrap_or(""))
        .find(|h| h.contains("as_typed=1"))
        .expect("a link to the words as typed");
    let html = page(href.trim_start_matches("/?").replace("&amp;", "&")).await;
    assert!(!html.contains("Showing results for"), "{html}");
    assert!(html.contains("Did you mean") && html.contains("кибербезопасности"));
    // A new query from that page is corrected again: the search form does not carry
    // `as_typed` (the sort and filter forms, for the same words, do).
    let search_form = html.split("</form>").next().unwrap_or("");
    assert!(search_form.contains(r#"role="search""#), "{search_form}");
    assert!(!search_form.contains(r#"name="as_typed""#), "{search_form}");
    assert!(html.contains(r#"name="as_typed" value="1""#), "{html}");

    let (_, v) = get(&base, "/v1/records?q=Оскемен").await;
    assert_eq!(v["items"][0]["id"], a_id.as_str(), "{v}");

    let (_, v) = get(&base, "/v1/records?q=digital%20literacy").await;
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["items"][0]["id"], b_id.as_str());
    assert!(
        v["reading"]["also"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "цифровая грамотность"),
        "{v}"
    );
    let html = accord_tests::http_get(format!("{base}/?lang=ru&q=digital+literacy"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Искали также") && html.contains("Цифровая грамотность пенсионеров"));
    assert!(html.contains(r#"list="suggestions""#));

    let (s, v) = get(&base, "/v1/suggest?q=кибер").await;
    assert_eq!(s, 200);
    let texts: Vec<&str> = v["completions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    assert!(texts.contains(&"кибербезопасности"), "{v}");
    assert!(texts.contains(&"Центр кибербезопасности в Өскемене"), "{v}");
}

/// The search index keeps records' bodies out of its stored documents: a hit's snippet and body
/// are read from the store. Opened without the store, the same index has no body to give —
/// which shows it does not hold one — and `accord reindex` rebuilds it the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_come_from_bodies_the_index_does_not_store() {
    let tf = TestFed::new(&["KZ"], 53).unwrap();
    let cfg = tf.config(0, vec![], accord_node::AdmissionMode::Members);
    let node = accord_node::Node::spawn(cfg.clone()).await.unwrap();
    let base = serve(&node).await;
    let mut body = tf.fed.record_body(0, "Regional health pilots", now());
    body.body = BTreeMap::from([(
        "en".to_string(),
        "Clinics in three regions began **teleconsultation** with the capital.".to_string(),
    )]);
    let rec = Object::Record(body).sign(&tf.fed.members[0].publisher);
    let (out, searchable) = node
        .submit_searchable(vec![rec.as_bytes().to_vec()], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(out[0].status, "accepted");
    assert!(searchable);
    let (_, v) = get(&base, "/v1/records?q=teleconsultation").await;
    assert_eq!(v["total"], 1, "{v}");
    let snippet = v["items"][0]["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("<b>teleconsultation</b> with the capital"),
        "{snippet}"
    );
    let r = node
        .search(accord_search::SearchQuery {
            text: Some("teleconsultation".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    // The snippet above came from the body read from the store; the hit does not keep it
    // (a page of a hundred hits held up to a mebibyte each).
    assert!(r.hits[0].snippet.contains("<b>teleconsultation</b>"));
    assert!(r.hits[0].doc.body.is_empty());
    node.shutdown().await;
    drop(node);

    let stored_body = || {
        let index = accord_search::SearchIndex::open(&cfg.data_dir.join("search")).unwrap();
        let r = index
            .searcher()
            .search(&accord_search::SearchQuery {
                text: Some("teleconsultation".into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(r.total, 1, "the body's words are indexed");
        assert_eq!(r.hits[0].doc.title["en"], "Regional health pilots");
        r.hits[0].doc.body.clone()
    };
    assert!(stored_body().is_empty(), "the index stored the body");
    std::fs::remove_dir_all(cfg.data_dir.join("search")).unwrap();
    assert_eq!(accord_node::reindex(&cfg).unwrap(), 1);
    assert!(
        stored_body().is_empty(),
        "the rebuilt index stored the body"
    );
}

/// Reads a live stream until `want` appears in it (or the deadline): what it received.
async fn stream_until(resp: &mut reqwest::Response, want: &str) -> String {
    let mut buf = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            if buf.contains(want) {
                return;
            }
        }
    })
    .await;
    buf
}

/// The live stream analyses each record once for all subscribers and each subscriber's words
/// once: a stream without text receives records whether or not one with text is open (records
/// are analysed only while one is), streams of text opened later match what follows, a burst
/// comes out in the order accepted, a word
/// being typed matches as a beginning, another word does not match, and at most
/// `STREAMS_AT_ONCE` streams are open (one more is told to come back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_match_each_subscribers_words_and_are_bounded() {
    let tf = TestFed::new(&["KZ"], 92).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let client = accord_tests::http();
    let open = |q: &str| client.get(format!("{base}/v1/stream?{q}")).send();
    let record = |title: &str| {
        let mut body = tf.fed.record_body(0, "unused", now());
        body.lang = "ru".into();
        body.title = BTreeMap::from([("ru".to_string(), title.to_string())]);
        body.body = BTreeMap::from([("ru".to_string(), format!("{title}: опыт."))]);
        Object::Record(body).sign(&tf.fed.members[0].publisher)
    };
    // While no stream matches text, records are sent unanalysed to the streams that do not.
    let mut every = open("").await.unwrap();
    let first = record("Цифровые навыки");
    node.submit(vec![first.as_bytes().to_vec()]).await.unwrap();
    let got = stream_until(&mut every, &first.id().to_string()).await;
    assert!(got.contains(&first.id().to_string()), "{got}");
    // Streams of text opened after it match what follows.
    let mut typing = open("q=%D0%BF%D1%80%D0%B0%D0%B2%D0%B8%D1%82")
        .await
        .unwrap(); // "правит"
    let mut health = open("q=%D0%B7%D0%B4%D1%80%D0%B0%D0%B2%D0%BE%D0%BE%D1%85%D1%80%D0%B0%D0%BD%D0%B5%D0%BD%D0%B8%D0%B5").await.unwrap(); // "здравоохранение"
    assert_eq!(typing.status().as_u16(), 200);
    let egov = record("Электронное правительство");
    node.submit(vec![egov.as_bytes().to_vec()]).await.unwrap();
    let got = stream_until(&mut typing, &egov.id().to_string()).await;
    assert!(got.contains(&egov.id().to_string()), "{got}");
    let care = record("Здравоохранение онлайн");
    node.submit(vec![care.as_bytes().to_vec()]).await.unwrap();
    let got = stream_until(&mut health, &care.id().to_string()).await;
    assert!(got.contains(&care.id().to_string()), "{got}");
    assert!(
        !got.contains(&egov.id().to_string()),
        "a record without the word was sent: {got}"
    );
    let got = stream_until(&mut every, &care.id().to_string()).await;
    assert!(got.contains(&care.id().to_string()), "{got}");
    // A burst of several of the feed's batches (it works on two at once) comes out in the
    // order the node accepted it.
    let burst: Vec<_> = (0..200)
        .map(|i| record(&format!("Цифровые услуги, выпуск {i}")))
        .collect();
    node.submit(burst.iter().map(|r| r.as_bytes().to_vec()).collect())
        .await
        .unwrap();
    let last = burst[burst.len() - 1].id().to_string();
    let got = stream_until(&mut every, &last).await;
    let places: Vec<usize> = burst
        .iter()
        .map(|r| {
            got.find(&r.id().to_string())
                .expect("a record of the burst not sent")
        })
        .collect();
    assert!(
        places.windows(2).all(|w| w[0] < w[1]),
        "the burst came out of order"
    );
    // Three are open; the rest of the bound, then one more.
    let mut open_streams = Vec::new();
    for _ in 3..accord_api::STREAMS_AT_ONCE {
        let r = open("").await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        open_streams.push(r);
    }
    let r = open("").await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    // One closed, one may open.
    drop(open_streams.pop());
    assert!(
        wait_until(Duration::from_secs(10), || async {
            open("").await.unwrap().status().as_u16() == 200
        })
        .await
    );
    node.shutdown().await;
}

/// A charter that adopts refusal rules newer than this release implements (a newer release
/// wrote it) is taken, and the node says it must be upgraded: in `/v1/status` (not as a
/// restart), in the metric the alert reads, and still ready (it serves what it holds meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charter_with_rules_newer_than_this_release_asks_for_an_upgrade() {
    let limits = accord_core::Limits {
        rules: accord_core::object::MAX_RULES + 1,
        ..accord_core::Limits::default()
    };
    let tf = TestFed::with_limits(&["KZ", "BY"], 61, limits).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    let base = serve(&node).await;
    let (s, v) = get(&base, "/v1/status").await;
    assert_eq!(s, 200);
    // Not a restart: the same release would ask again (and `accord status`, a container's
    // health check, would fail for good).
    assert!(v["restart_needed"].is_null(), "{v}");
    let why = v["upgrade_needed"].as_str().unwrap_or_default();
    assert!(
        why.contains("upgrade it")
            && why.contains(&format!("up to {}", accord_core::object::MAX_RULES)),
        "{v}"
    );
    assert_eq!(
        accord_tests::harness::metric(&node, "accord_restart_needed{reason=\"upgrade\"}").await,
        1.0
    );
    let r = accord_tests::http_get(format!("{base}/readyz"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    node.shutdown().await;

    // The rules this release implements ask for nothing.
    let tf = TestFed::new(&["KZ", "BY"], 62).unwrap();
    let node = tf.spawn(0, vec![]).await.unwrap();
    assert!(node.upgrade_needed().is_none());
    node.shutdown().await;
}
