//! `accord key new|show`.

use std::path::Path;

use accord_core::SecretKey;
use anyhow::Result;
use zeroize::Zeroize;

use crate::util;

/// A fresh key from the operating system's random generator.
pub fn random_key() -> Result<SecretKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    let k = SecretKey::from_seed(seed);
    seed.zeroize();
    Ok(k)
}

pub fn new(out: &Path, force: bool) -> Result<()> {
    let key = random_key()?;
    util::write_secret_key(out, &key, None, force)?;
    println!("{}", key.public_key());
    eprintln!(
        "wrote {} (mode 0600); the line above is its public key",
        out.display()
    );
    Ok(())
}

pub fn show(file: &Path) -> Result<()> {
    let key = util::load_secret_key(file)?;
    let pk = key.public_key();
    println!("public key: {pk}");
    println!("peer id:    {} (if used as a node key)", pk.peer_id());
    Ok(())
}
