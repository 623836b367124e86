//! The OpenAPI 3 description of the HTTP API, served at `/v1/openapi.json`. A test requests
//! every path listed here from a running node, so the document cannot drift from the router.

use serde_json::{Value, json};

/// `(method, path, summary, query parameters)` of every endpoint.
pub const ROUTES: &[(&str, &str, &str, &[&str])] = &[
    (
        "get",
        "/healthz",
        "Liveness: `ok` while the process runs.",
        &[],
    ),
    (
        "get",
        "/readyz",
        "Readiness: 200 once the store is open and (unless the node expects no peers) a peer is admitted, unless a store write failed or the search indexer stopped since the node started (then until a restart); 503 with the reason otherwise. With writes=1, also 503 while the disk is below its free-space floor (submissions get 507): readiness to take new objects, for what routes publishers' submissions.",
        &["writes"],
    ),
    (
        "get",
        "/metrics",
        "Prometheus text exposition: objects, ingest, verifications, gossip, reconciliation, search lag, libp2p and gossipsub metrics.",
        &[],
    ),
    (
        "get",
        "/v1/export",
        "Every stored object (or those of `types`) as a CBOR sequence (RFC 8742, application/cbor) in export order: charters by version, delegations, node certificates, records, retractions, revocations. Streamed.",
        &["types"],
    ),
    (
        "post",
        "/v1/objects",
        "Submit one signed object, or a CBOR array of them (application/cbor). Per-object verdicts. `wait=searchable` answers once the records are also searchable.",
        &["wait"],
    ),
    (
        "get",
        "/v1/objects/{id}",
        "A stored object as JSON, or its exact signed bytes with Accept: application/cbor.",
        &[],
    ),
    (
        "get",
        "/v1/status",
        "Node identity, federation, object counts, peers, reconciliation, uptime, version.",
        &[],
    ),
    (
        "get",
        "/v1/peers",
        "Connected peers with member, addresses, admission and gossip score.",
        &[],
    ),
    (
        "get",
        "/v1/sync",
        "The last reconciliation session with each peer.",
        &[],
    ),
    (
        "get",
        "/v1/health/federation",
        "The whole federation as this node sees it from the nodes' signed heartbeats (docs/PROTOCOL.md §11): every member's certified nodes with status (self, up, down, never-seen; nodes never heard from listed up to 16 per member, never_seen_more counting the rest), last heartbeat, software and protocol version, charter version, checkpoint, agreement with this node's set, lag, divergence flags; and the evidence bundles kept.",
        &[],
    ),
    (
        "get",
        "/v1/health/evidence",
        "The signed evidence bundles this node keeps (divergence, equivocation), newest first, as a CBOR sequence; `number` for one. Each verifies offline with `accord evidence verify`.",
        &["number"],
    ),
    (
        "get",
        "/v1/blobs/{id}",
        "An attachment file this node holds, by its SHA-256: always a download (Content-Disposition: attachment with the record's file name, X-Content-Type-Options: nosniff, a sandboxing Content-Security-Policy, a media type from a list of document types, else application/octet-stream). One byte range per request (`Range: bytes=a-b`, 206; 416 when outside the file). 404 when not held. With `record`, named as that record names it (a record page's link does so; otherwise the name of the first record this node stored that names the file).",
        &["record"],
    ),
    (
        "put",
        "/v1/blobs/{id}",
        "Upload an attachment file (the raw bytes, application/octet-stream) for a record this node's publisher submits, before or after the record; refused unless it hashes to the path's SHA-256 and fits the charter's per-file limit.",
        &[],
    ),
    (
        "get",
        "/v1/records",
        "Search and filter records. Repeated parameters mean OR within a field, AND across fields. Default status: active.",
        &crate::records::RECORD_PARAMS,
    ),
    (
        "get",
        "/v1/suggest",
        "Completions of a query being typed: its last word completed from the words of titles, summaries and tags (most frequent first), taxonomy directions whose name contains it, and titles of the best matching records.",
        &["q"],
    ),
    (
        "get",
        "/v1/records/{id}",
        "A record in every language with its status, history and provenance chain.",
        &[],
    ),
    (
        "get",
        "/v1/stream",
        "Server-sent events (`record`) for new records matching the filters.",
        crate::records::STREAM_PARAMS,
    ),
    (
        "get",
        "/v1/federation",
        "The charter: name, members, threshold, taxonomy (ru/en names), limits.",
        &[],
    ),
    (
        "get",
        "/v1/publishers",
        "Delegated publishers per member with their status.",
        &[],
    ),
    ("get", "/v1/openapi.json", "This document.", &[]),
];

fn param_doc(name: &str) -> Value {
    let (desc, schema) = match name {
        "wait" => (
            "`durable` (default): answer once stored and flushed. `searchable`: answer once the stored records are also searchable (at most 5 s), with `searchable: true|false` in the answer.",
            json!({"type": "string", "enum": ["durable", "searchable"]}),
        ),
        "q" => (
            "Full-text query, read as words (docs/SEARCH.md): Russian and English morphology, other languages by exact words; letters of the members' alphabets fold to plain ones; the last word also matches as a beginning; glossary terms and direction names also search the other language; when exact matches are few, similar spellings too (`reading` says so, `did_you_mean` offers a correction). At most 512 characters.",
            json!({"type": "string", "maxLength": 512}),
        ),
        "record" => (
            "Id (or prefix of at least 8) of a stored record that names this file: the download takes that record's file name and media type (400 when the record names no such file, 404 when it is not stored).",
            json!({"type": "string", "pattern": "^[0-9a-fA-F]{8,64}$"}),
        ),
        "member" => (
            "Member code (ISO 3166-1 alpha-2).",
            json!({"type": "string", "pattern": "^[A-Z]{2}$"}),
        ),
        "kind" => ("Record kind code.", json!({"type": "string"})),
        "direction" => ("Direction code.", json!({"type": "string"})),
        "lang" => (
            "BCP 47 language tag present in the record.",
            json!({"type": "string"}),
        ),
        "publisher" => ("Publisher name as delegated.", json!({"type": "string"})),
        "tag" => (
            "A tag of the record, matched whole as pages show it: invisible characters, case (folded: `STRASSE` finds `Straße`), ё/е, ligatures, full-width forms and runs of spaces aside (`E-Government` finds `e-government`, not `government`; words inside tags are found by `q`); no control characters.",
            json!({"type": "string", "minLength": 1, "maxLength": 64}),
        ),
        "status" => (
            "Derived status.",
            json!({"type": "string", "enum": ["active", "superseded", "retracted", "signer-revoked"]}),
        ),
        "since" => (
            "Created at or after (YYYY-MM-DD, RFC 3339 or unix ms).",
            json!({"type": "string"}),
        ),
        "until" => (
            "Created before (YYYY-MM-DD, RFC 3339 or unix ms).",
            json!({"type": "string"}),
        ),
        "date_from" => (
            "The source document's date (record field `date`, protocol 1.1) on or after this day (YYYY-MM-DD); records without a date are left out.",
            json!({"type": "string", "format": "date"}),
        ),
        "date_to" => (
            "The source document's date on or before this day (YYYY-MM-DD).",
            json!({"type": "string", "format": "date"}),
        ),
        "sort" => (
            "Order (default: relevance with q, newest without). newest and oldest go by when the record was signed and shared; document_newest and document_oldest by the source document's date (record field `date`), records without one last.",
            json!({"type": "string", "enum": ["relevance", "newest", "oldest", "document_newest", "document_oldest"]}),
        ),
        "limit" => (
            "Items per page.",
            json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        ),
        "types" => (
            "Object types to export, comma-separated or repeated (default: all).",
            json!({"type": "string", "pattern": "^(charter|delegation|node|record|retraction|revocation)(,(charter|delegation|node|record|retraction|revocation))*$"}),
        ),
        "number" => (
            "The number of one evidence bundle (see `evidence` in /v1/health/federation).",
            json!({"type": "integer", "minimum": 1}),
        ),
        "as_typed" => (
            "1: search the words of q as typed. A query that finds nothing, or less than its correction, is then not replaced by the correction or by its reading on the other keyboard layout (`reading.showing_for`); they are offered in `did_you_mean` instead.",
            json!({"type": "string", "enum": ["1", "0", "true", "false"]}),
        ),
        "writes" => (
            "1: ready to take new objects too (not while the disk is below its floor).",
            json!({"type": "string", "enum": ["1", "0", "true", "false"]}),
        ),
        "cursor" => (
            "The next_cursor of the previous page.",
            json!({"type": "string"}),
        ),
        _ => ("", json!({"type": "string"})),
    };
    let repeat = matches!(
        name,
        "member" | "kind" | "direction" | "lang" | "publisher" | "tag" | "status"
    );
    json!({
        "name": name, "in": "query", "required": false, "description": desc,
        "schema": if repeat { json!({"type": "array", "items": schema}) } else { schema },
        "style": "form", "explode": true,
    })
}

/// An object schema with these required properties, each `(name, type)`; a type ending in `?`
/// may be `null`.
fn object(props: &[(&str, &str)]) -> Value {
    let mut properties = serde_json::Map::new();
    for (name, ty) in props {
        let (ty, nullable) = match ty.strip_suffix('?') {
            Some(t) => (t, true),
            None => (*ty, false),
        };
        let mut p = json!({ "type": ty });
        if nullable {
            p["nullable"] = json!(true);
        }
        if ty == "array" {
            p["items"] = json!({});
        }
        properties.insert(name.to_string(), p);
    }
    json!({
        "type": "object",
        "required": props.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "properties": properties,
    })
}

/// The media type and schema of an endpoint's successful answer.
pub fn success(method: &str, path: &str) -> (&'static str, Value) {
    let json_of = |v: Value| ("application/json", v);
    match (method, path) {
        ("post", "/v1/objects") => json_of({
            let mut v = object(&[("results", "array")]);
            v["properties"]["results"]["items"] = object(&[
                ("id", "string?"),
                ("status", "string"),
                ("code", "string?"),
                ("reason", "string?"),
            ]);
            v["properties"]["searchable"] = json!({"type": "boolean"});
            v["example"] = json!({"results": [
                {"id": "5f0c…", "status": "accepted", "code": null, "reason": null},
                {"id": "9a41…", "status": "rejected", "code": "signature-invalid", "reason": "invalid signature by ed25519:…"}
            ]});
            v
        }),
        ("get", "/v1/objects/{id}") => json_of(object(&[
            ("id", "string"),
            ("type", "string"),
            ("signers", "array"),
            ("size", "integer"),
            ("body", "object"),
        ])),
        ("get", "/v1/status") => json_of(object(&[
            ("peer_id", "string"),
            ("member", "string"),
            ("federation", "string"),
            ("federation_name", "string"),
            ("charter_version", "integer"),
            ("counts", "object"),
            ("pending", "integer"),
            ("peers_connected", "integer"),
            ("peers_admitted", "integer"),
            ("uptime_secs", "integer"),
            ("version", "string"),
            ("store_schema", "integer"),
            ("protocol", "string"),
            ("listen", "array"),
            ("disk", "object"),
            ("restart_needed", "string?"),
            ("upgrade_needed", "string?"),
            ("clock", "object?"),
        ])),
        ("get", "/v1/peers") | ("get", "/v1/sync") => json_of(object(&[("peers", "array")])),
        ("get", "/v1/records") => json_of(object(&[
            ("items", "array"),
            ("next_cursor", "string?"),
            ("total", "integer"),
            ("facets", "object"),
            ("did_you_mean", "string?"),
            ("reading", "object"),
        ])),
        ("get", "/v1/suggest") => json_of({
            let mut v = object(&[("completions", "array")]);
            v["properties"]["completions"]["items"] =
                object(&[("text", "string"), ("kind", "string")]);
            v
        }),
        ("get", "/v1/records/{id}") => json_of(object(&[
            ("id", "string"),
            ("member", "string"),
            ("kind", "string"),
            ("directions", "array"),
            ("lang", "string"),
            ("title", "object"),
            ("body", "object"),
            ("created", "string"),
            ("status", "string?"),
            ("history", "object"),
            ("provenance", "object"),
        ])),
        ("get", "/v1/federation") => json_of(object(&[
            ("name", "string"),
            ("version", "integer"),
            ("threshold", "integer"),
            ("members", "array"),
            ("taxonomy", "object"),
            ("limits", "object"),
        ])),
        ("get", "/v1/publishers") => json_of(object(&[("members", "object")])),
        ("get", "/v1/openapi.json") => {
            json_of(object(&[("openapi", "string"), ("paths", "object")]))
        }
        ("get", "/v1/stream") => (
            "text/event-stream",
            json!({"type": "string", "description": "`event: record` / `id: <object id>` / `data: <an item of /v1/records>`; `event: lagged` when the client fell behind"}),
        ),
        ("get", "/v1/health/federation") => json_of({
            let mut v = object(&[
                ("generated", "string"),
                ("federation", "string"),
                ("federation_name", "string"),
                ("charter_version", "integer"),
                ("software", "string"),
                ("protocol", "string"),
                ("heartbeat_secs", "integer"),
                ("members", "array"),
                ("evidence", "array"),
                ("refused", "object"),
            ]);
            v["properties"]["members"]["items"] = {
                let mut m = object(&[("code", "string"), ("name", "object"), ("nodes", "array")]);
                m["properties"]["nodes"]["items"] = object(&[
                    ("member", "string"),
                    ("node_key", "string"),
                    ("peer_id", "string"),
                    ("status", "string"),
                    ("last_seen", "string?"),
                    ("software", "string?"),
                    ("protocol", "string?"),
                    ("charter_version", "integer?"),
                    ("charter_matches", "boolean?"),
                    ("checkpoint", "object?"),
                    ("agreement", "string"),
                    ("behind", "integer"),
                    ("held_refused", "integer"),
                    ("divergent", "boolean"),
                    ("equivocated", "boolean"),
                ]);
                m
            };
            v["properties"]["evidence"]["items"] = object(&[
                ("number", "integer"),
                ("kind", "string"),
                ("subject_member", "string"),
                ("subject", "string"),
                ("created", "string"),
                ("explanation", "string"),
            ]);
            v
        }),
        ("get", "/v1/blobs/{id}") => (
            "application/octet-stream",
            json!({"type": "string", "format": "binary", "description": "the file, or the requested byte range of it"}),
        ),
        ("put", "/v1/blobs/{id}") => json_of(object(&[("sha256", "string"), ("size", "integer")])),
        ("get", "/v1/health/evidence") => (
            "application/cbor",
            json!({"type": "string", "format": "binary", "description": "a CBOR sequence of signed evidence bundles `[1, body, signature]` (docs/PROTOCOL.md §11)"}),
        ),
        ("get", "/v1/export") => (
            "application/cbor",
            json!({"type": "string", "format": "binary", "description": "a CBOR sequence of envelopes (RFC 8742)"}),
        ),
        _ => ("text/plain", json!({"type": "string"})),
    }
}

/// An example of an endpoint's JSON answer (the suite checks each against its schema).
fn example(method: &str, path: &str) -> Option<Value> {
    const ID: &str = "3f1c9e0a7b5d4c2e8a6f0b1d3e5c7a9f2b4d6e8a0c1e3f5a7b9d1c3e5f7a9b0d";
    const KEY: &str = "ed25519:8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
    Some(match (method, path) {
        ("get", "/v1/objects/{id}") => json!({
            "id": ID, "type": "record", "signers": [KEY], "status": "active", "size": 2311,
            "body": {"type": "record", "member": "KZ", "kind": "regulatory-note"}
        }),
        ("get", "/v1/status") => json!({
            "peer_id": "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq", "member": "KZ",
            "federation": ID, "federation_name": "CIS digital cooperation", "charter_version": 1,
            "counts": {"charter": 1, "delegation": 3, "node": 3, "record": 120},
            "pending": 0, "peers_connected": 2, "peers_admitted": 2, "uptime_secs": 3600,
            "version": env!("CARGO_PKG_VERSION"), "store_schema": 4, "protocol": "1.3",
            "listen": ["/ip4/10.0.0.5/tcp/4001"],
            "disk": {"free_bytes": 52_613_349_376_u64, "min_free_bytes": 536_870_912, "low": false},
            "restart_needed": null,
            "upgrade_needed": null,
            "clock": {"offset_ms": -42, "nodes": 5, "members": 3, "off": false}
        }),
        ("get", "/v1/peers") => json!({"peers": [{
            "peer_id": "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq", "member": "BY",
            "admitted": true, "addresses": ["/ip4/10.0.0.6/tcp/4001"],
            "connected_since": "2026-12-01T08:00:00.000Z", "gossip_score": 0.0
        }]}),
        ("get", "/v1/sync") => json!({"peers": [{
            "peer_id": "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq", "member": "BY",
            "last": "2026-12-01T08:00:30.000Z", "rounds": 2, "bytes_out": 1145, "bytes_in": 727,
            "missing": 0, "fetched": 0, "sessions": 12, "fetched_total": 40, "refused": 0, "error": null,
            "running": null
        }]}),
        ("put", "/v1/blobs/{id}") => json!({"sha256": ID, "size": 482113}),
        ("get", "/v1/health/federation") => json!({
            "generated": "2026-12-03T10:00:00.000Z", "federation": ID,
            "federation_name": "CIS digital cooperation", "charter_version": 1,
            "software": concat!("accord/", env!("CARGO_PKG_VERSION")), "protocol": "1.3",
            "heartbeat_secs": 60,
            "members": [{"code": "BY", "name": {"en": "Republic of Belarus"}, "nodes": [{
                "member": "BY", "node_key": KEY,
                "peer_id": "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq",
                "label": "BY node 1", "status": "up",
                "last_seen": "2026-12-03T09:59:31.000Z", "seconds_since": 29,
                "software": concat!("accord/", env!("CARGO_PKG_VERSION")), "protocol": "1.3",
                "charter_version": 1, "charter_matches": true, "uptime_secs": 86400,
                "period_secs": 60, "counts": {"record": 120},
                "checkpoint": {"watermark": "2026-12-03T09:54:00.000Z", "count": 131, "fingerprint": ID},
                "agreement": "agrees", "behind": 0, "held_refused": 0, "divergent": false, "equivocated": false,
                "attachment_backlog": 0, "reconciled_peers": 4
            }]}],
            "evidence": [{"number": 1, "kind": "divergent", "subject_member": "TM",
                "subject": KEY, "created": "2026-12-03T09:58:00.000Z",
                "explanation": "it claims 140 objects created before 2026-12-03T09:50:00.000Z; after reconciling with it at 2026-12-03T09:57:10.000Z, this node holds 131",
                "heartbeats": 2}],
            "refused": {"bad-signature": 1}
        }),
        ("get", "/v1/records") => json!({
            "items": [{"id": ID, "member": "KZ", "kind": "regulatory-note",
                "directions": ["e-government"], "lang": "ru", "languages": ["en", "ru"],
                "title": "Проактивные услуги", "titles": {"en": "Proactive services", "ru": "Проактивные услуги"},
                "snippet": "услуги оказываются <b>без заявления</b> гражданина",
                "created": "2026-11-30T09:00:00.000Z", "date": "2025-03-01", "status": "active", "publisher": "Ministry of Digital Development",
                "tags": ["proactive services"], "attachments": [], "attachments_more": 0}],
            "next_cursor": null, "total": 1,
            "facets": {"member": {"KZ": 1}, "kind": {"regulatory-note": 1}},
            "did_you_mean": null,
            "reading": {"approximate": false, "also": ["proactive services"], "directions": []}
        }),
        ("get", "/v1/suggest") => json!({"completions": [
            {"text": "электронное правительство", "kind": "word"},
            {"text": "Развитие электронного правительства", "kind": "direction", "code": "e-government"},
            {"text": "Проактивные услуги", "kind": "title", "id": ID}
        ]}),
        ("get", "/v1/records/{id}") => json!({
            "id": ID, "member": "KZ", "kind": "regulatory-note", "directions": ["e-government"],
            "lang": "ru", "title": {"ru": "Проактивные услуги"}, "body": {"ru": "## Что меняется\n…"},
            "created": "2026-11-30T09:00:00.000Z", "status": "active",
            "history": {"superseded_by": [], "retracted_by": []},
            "provenance": {"signature_valid": true, "signer": KEY}
        }),
        ("get", "/v1/federation") => json!({
            "name": "CIS digital cooperation", "version": 1, "threshold": 2,
            "members": [{"code": "KZ", "root_key": KEY}],
            "taxonomy": {"directions": [], "kinds": []},
            "limits": {"max_object_bytes": 1048576, "max_depth": 16, "max_list_len": 1024, "max_future_skew_ms": 600000}
        }),
        ("get", "/v1/publishers") => json!({"members": {"KZ": [{
            "delegation": ID, "name": "Ministry of Digital Development", "publisher_key": KEY,
            "status": "active"
        }]}}),
        ("get", "/v1/openapi.json") => {
            json!({"openapi": "3.0.3", "info": {"title": "Accord node API"}, "paths": {}})
        }
        _ => return None,
    })
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, params) in ROUTES {
        let mut parameters: Vec<Value> = params.iter().map(|p| param_doc(p)).collect();
        if path.starts_with("/v1/blobs/") {
            parameters.push(json!({"name": "id", "in": "path", "required": true, "description": "The file's SHA-256 (the `sha256` of the record's attachment): 64 hex characters.", "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}}));
        } else if path.contains("{id}") {
            parameters.push(json!({"name": "id", "in": "path", "required": true, "description": "Object id: 64 hex characters, or a prefix of at least 8 that names one stored object.", "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{8,64}$"}}));
        }
        let mut responses = serde_json::Map::new();
        let (media, mut schema) = success(method, path);
        if let Some(e) = example(method, path) {
            schema["example"] = e;
        }
        responses.insert(
            "200".into(),
            json!({"description": "OK", "content": {media: {"schema": schema}}}),
        );
        if !params.is_empty() || path.contains("{id}") || matches!(*method, "post" | "put") {
            responses.insert("400".into(), json!({"description": "A bad parameter or body; the error names it.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}));
        }
        if path.contains("{id}") {
            responses.insert("404".into(), json!({"description": "Not stored on this node.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}));
        }
        if matches!(*method, "post" | "put") {
            responses.insert(
                "413".into(),
                json!({"description": "Over the size or count limit."}),
            );
            let no_room = if *method == "put" {
                " A file is also refused when its length would leave less than the floor free, counting the files under way; the error then gives its size too."
            } else {
                ""
            };
            responses.insert(
                "507".into(),
                json!({"description": format!("The node's disk is below its free-space floor (`store.min_free_mb`): nothing was stored; send again once space is freed. The error gives the free space and the floor.{no_room}"), "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        let mut op = json!({"summary": summary, "parameters": parameters, "responses": responses});
        if *method == "post" {
            op["requestBody"] = json!({"required": true, "content": {"application/cbor": {"schema": {"type": "string", "format": "binary"}}}});
        }
        if *method == "put" {
            op["requestBody"] = json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Accord node API", "version": env!("CARGO_PKG_VERSION"), "description": "HTTP API of an Accord node. See docs/PROTOCOL.md."},
        "paths": paths,
        "components": {"schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"], "example": {"error": "limit: must be between 1 and 100"}}}},
    })
}
