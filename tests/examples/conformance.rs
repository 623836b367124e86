//! Prints the conformance corpus (`tests/conformance/manifest.json`):
//! `cargo run -p accord-tests --example conformance > tests/conformance/manifest.json`.

fn main() -> Result<(), String> {
    let corpus = accord_tests::conformance::build()?;
    println!(
        "{}",
        serde_json::to_string_pretty(&corpus).map_err(|e| e.to_string())?
    );
    Ok(())
}
