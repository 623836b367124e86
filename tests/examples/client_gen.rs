//! Prints the client generated from the node's OpenAPI document:
//! `cargo run -p accord-tests --example client_gen > tests/src/client.rs`.

fn main() {
    print!(
        "{}",
        accord_tests::client_gen::generate(&accord_api::openapi::document())
    );
}
