//! The conformance corpus: the committed manifest is exactly what the generator makes, and
//! this implementation reaches the expected verdict and reason code in every case.

#![allow(clippy::unwrap_used)]

const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/manifest.json");

#[test]
fn the_committed_corpus_is_what_the_generator_makes() {
    let built = serde_json::to_string_pretty(&accord_tests::conformance::build().unwrap()).unwrap();
    let committed = std::fs::read_to_string(MANIFEST).unwrap_or_default();
    assert!(
        committed.trim_end() == built.trim_end(),
        "tests/conformance/manifest.json is stale: run \
         `cargo run -p accord-tests --example conformance > tests/conformance/manifest.json`"
    );
}

#[test]
fn every_case_of_the_corpus_passes() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(MANIFEST).unwrap()).unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            accord_tests::conformance::run_case(c)
                .err()
                .map(|e| format!("{}: {e}", c["name"]))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // Every reason code has a case, and every object type an accepted one.
    for (code, _) in accord_core::codes::CODES {
        assert!(
            cases.iter().any(|c| c["expect"]["code"] == *code),
            "no case for {code}"
        );
    }
    for kind in [
        "genesis",
        "amendment",
        "delegation",
        "node certificate",
        "record",
        "retraction",
        "revocation",
    ] {
        assert!(
            cases.iter().any(|c| c["expect"]["verdict"] == "accepted"
                && c["name"].as_str().unwrap().contains(kind)),
            "no accepted {kind}"
        );
    }
}
