//! ed25519 keys and signatures.
//!
//! Public keys have the text form `ed25519:<64 lowercase hex>`; secret keys are stored as
//! PKCS#8 PEM (readable by `openssl pkey`), redact their `Debug` output and are zeroized on drop.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::id::{bytes32, parse_hex32};

/// Signature verifications performed by this process (each `verify_strict`, and each entry
/// of a batch). A node's metrics report it so that an operator sees the cost per object.
static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD_VERIFICATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The number of ed25519 signature verifications this process has performed.
pub fn verifications() -> u64 {
    VERIFICATIONS.load(Ordering::Relaxed)
}

/// The number of ed25519 signature verifications performed on the calling thread (exact even
/// while other threads verify: for tests that count what one call costs).
pub fn verifications_on_this_thread() -> u64 {
    THREAD_VERIFICATIONS.with(|c| c.get())
}

fn count_verifications(n: u64) {
    VERIFICATIONS.fetch_add(n, Ordering::Relaxed);
    THREAD_VERIFICATIONS.with(|c| c.set(c.get() + n));
}

/// Most decompressed keys [`KEY_POINTS`] keeps; a federation has a few hundred signing keys.
const KEY_POINTS_MAX: usize = 4_096;

/// Public keys already decompressed to curve points, each found valid and not weak. Every
/// object names its signer's key, and decompressing it (a field inversion) cost as much as a
/// quarter of checking the signature, twice per object (when decoded, and when verified).
static KEY_POINTS: KeyPoints = KeyPoints(std::sync::Mutex::new(None));

struct KeyPoints(std::sync::Mutex<Option<std::collections::HashMap<[u8; 32], VerifyingKey>>>);

impl KeyPoints {
    fn get(&self, bytes: &[u8; 32]) -> Option<VerifyingKey> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.as_ref()?.get(bytes).copied()
    }

    /// Remembers a valid, non-weak key. A stream of new keys (a hostile peer's) only empties
    /// the memory now and then: it never grows beyond [`KEY_POINTS_MAX`].
    fn put(&self, bytes: [u8; 32], vk: VerifyingKey) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let map = map.get_or_insert_with(Default::default);
        if map.len() >= KEY_POINTS_MAX {
            map.clear();
        }
        map.insert(bytes, vk);
    }
}

/// The curve point of a public key, remembered once found valid and not weak.
fn point(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
    if let Some(vk) = KEY_POINTS.get(bytes) {
        return Ok(vk);
    }
    let vk = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPoint)?;
    if vk.is_weak() {
        return Err(KeyError::WeakKey);
    }
    KEY_POINTS.put(*bytes, vk);
    Ok(vk)
}

/// An ed25519 public key (32 bytes), already checked to be a valid, non-weak curve point.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Checks that the bytes are a valid, non-weak ed25519 point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        point(&bytes)?;
        Ok(PublicKey(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn verifying_key(&self) -> Option<VerifyingKey> {
        point(&self.0).ok()
    }

    /// Verifies with `verify_strict` (rejects non-canonical and small-order components).
    pub fn verify_strict(&self, message: &[u8], sig: &Signature) -> bool {
        count_verifications(1);
        let Some(vk) = self.verifying_key() else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        vk.verify_strict(message, &sig).is_ok()
    }

    /// The libp2p peer id of a node using this key as its identity (ed25519 keys are inlined:
    /// identity multihash of the protobuf-encoded public key), in base58btc.
    pub fn peer_id(&self) -> String {
        bs58::encode(self.peer_id_bytes()).into_string()
    }

    /// The binary libp2p peer id: `00 24 08 01 12 20 || key`.
    pub fn peer_id_bytes(&self) -> Vec<u8> {
        let mut v = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
        v.extend_from_slice(&self.0);
        v
    }

    /// The key a libp2p peer id (base58btc) inlines: `None` for any other peer id.
    pub fn from_peer_id(peer_id: &str) -> Option<PublicKey> {
        let bytes = bs58::decode(peer_id).into_vec().ok()?;
        let key = bytes.strip_prefix(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20])?;
        PublicKey::from_bytes(key.try_into().ok()?).ok()
    }

    /// The short form for tables: first 8 hex characters.
    pub fn short(&self) -> String {
        format!("ed25519:{}", hex::encode(&self.0[..4]))
    }
}

fn parse_public_text(s: &str) -> Option<[u8; 32]> {
    parse_hex32(s.trim().strip_prefix("ed25519:")?)
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bytes = parse_public_text(s).ok_or_else(|| KeyError::BadPublicKey(s.to_string()))?;
        PublicKey::from_bytes(bytes)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        bytes32::serialize(&self.0, || self.to_string(), s)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = bytes32::deserialize(d, parse_public_text, "ed25519 public key")?;
        PublicKey::from_bytes(b).map_err(serde::de::Error::custom)
    }
}

/// An ed25519 signature (64 bytes). Not checked for canonicity until verification.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

/// An ed25519 secret key. `Debug` is redacted; the bytes are zeroized on drop.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// Derives the key from a 32-byte seed (RFC 8032 secret key). The caller supplies the
    /// randomness: the CLI reads the operating system's generator, tests use fixed seeds.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        SecretKey(SigningKey::from_bytes(&seed))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }

    /// The 32-byte seed, zeroized when dropped (for handing to libp2p's identity).
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// PKCS#8 v1 PEM text (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey -algorithm ed25519`
    /// writes it.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        // Version 1 (secret only): OpenSSL 3.0 cannot read the v2 form with the public key.
        let kp = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: *self.seed(),
            public_key: None,
        };
        kp.to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Pem(e.to_string()))
    }

    /// Reads a PKCS#8 PEM ed25519 private key (v1 as written by openssl, or v2).
    /// Text before the `-----BEGIN` line (such as a "development key" notice) is ignored,
    /// as RFC 7468 allows.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let start = text
            .find("-----BEGIN")
            .ok_or_else(|| KeyError::Pem("no -----BEGIN line".into()))?;
        SigningKey::from_pkcs8_pem(text[start..].trim())
            .map(SecretKey)
            .map_err(|e| KeyError::Pem(e.to_string()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<redacted>, public {})", self.public_key())
    }
}

/// Checks several (key, message, signature) triples at once with ed25519 batch verification,
/// falling back to [`PublicKey::verify_strict`] one by one when the batch fails so that the
/// caller learns which entries are bad. Returns one flag per entry.
///
/// Keys reaching this function are already non-weak ([`PublicKey`] guarantees it), and an
/// entry whose R is one of the known small-order encodings is always re-checked with
/// `verify_strict`. The one remaining difference from checking each entry strictly concerns
/// signatures deliberately built with a mixed-order R, which a batch may accept: so validation
/// does not use it (docs/PROTOCOL.md, "Batch verification"); the benchmarks compare it.
pub fn verify_many(items: &[(PublicKey, &[u8], Signature)]) -> Vec<bool> {
    if items.len() >= 2 && batch_ok(items) {
        return items
            .iter()
            .map(|(k, m, s)| !needs_strict_check(s) || k.verify_strict(m, s))
            .collect();
    }
    items
        .iter()
        .map(|(k, m, s)| k.verify_strict(m, s))
        .collect()
}

fn batch_ok(items: &[(PublicKey, &[u8], Signature)]) -> bool {
    let mut keys = Vec::with_capacity(items.len());
    let mut msgs = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    count_verifications(items.len() as u64);
    for (k, m, s) in items {
        let Some(vk) = k.verifying_key() else {
            return false;
        };
        keys.push(vk);
        msgs.push(*m);
        sigs.push(ed25519_dalek::Signature::from_bytes(&s.0));
    }
    ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
}

/// The batch equation does not check what `verify_strict` additionally checks about R
/// (that it is not of small order). Such R values are the eight small-order points, whose
/// encodings are known; signatures whose R is one of them always go through the strict path.
fn needs_strict_check(sig: &Signature) -> bool {
    let r = &sig.0[..32];
    SMALL_ORDER_R.iter().any(|p| {
        // Compare ignoring the sign bit, which covers both encodings of each point.
        r[..31] == p[..31] && (r[31] & 0x7f) == (p[31] & 0x7f)
    })
}

const SMALL_ORDER_R: [[u8; 32]; 7] = [
    // y = p, a non-canonical encoding of y = 0
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // identity (0, 1)
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    // (0, -1), order 2
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // order 4: y = 0
    [0; 32],
    // order 8 points
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    // y = p + 1, a non-canonical encoding of (0, 1)
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_keys_stay_checked_and_bounded() {
        // A weak key (the identity point) and a non-point are refused every time: only keys
        // found valid are remembered.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for _ in 0..2 {
            assert!(matches!(
                PublicKey::from_bytes(identity),
                Err(KeyError::WeakKey)
            ));
        }
        let not_a_point = (2u8..=255)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| VerifyingKey::from_bytes(b).is_err())
            .unwrap();
        for _ in 0..2 {
            assert!(PublicKey::from_bytes(not_a_point).is_err());
        }
        // A remembered key verifies exactly as a fresh one: right message yes, other no.
        let sk = SecretKey::from_seed([9; 32]);
        let pk = PublicKey::from_bytes(*sk.public_key().as_bytes()).unwrap();
        let sig = sk.sign(b"record");
        for _ in 0..2 {
            assert!(pk.verify_strict(b"record", &sig));
            assert!(!pk.verify_strict(b"recorD", &sig));
        }
        // However many keys pass, the memory stays within its bound.
        let vk = pk.verifying_key().unwrap();
        for i in 0..(KEY_POINTS_MAX as u32 + 10) {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_le_bytes());
            b[31] = 0xa5;
            KEY_POINTS.put(b, vk);
        }
        let held = KEY_POINTS.0.lock().unwrap().as_ref().map_or(0, |m| m.len());
        assert!(held <= KEY_POINTS_MAX, "{held}");
    }

    #[test]
    fn text_roundtrip_and_debug_redacted() {
        let sk = SecretKey::from_seed([7; 32]);
        let pk = sk.public_key();
        assert_eq!(pk.to_string().parse::<PublicKey>().ok(), Some(pk));
        let dbg = format!("{sk:?}");
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn pem_roundtrip() {
        let sk = SecretKey::from_seed([9; 32]);
        let pem = sk.to_pem().map(|p| p.to_string()).unwrap_or_default();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = SecretKey::from_pem(&pem).map(|k| k.public_key()).ok();
        assert_eq!(back, Some(sk.public_key()));
        assert!(
            SecretKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
    }

    #[test]
    fn a_peer_id_gives_back_its_key() {
        let pk = SecretKey::from_seed([5; 32]).public_key();
        assert_eq!(PublicKey::from_peer_id(&pk.peer_id()), Some(pk));
        assert_eq!(PublicKey::from_peer_id("12D3KooW"), None);
        assert_eq!(PublicKey::from_peer_id("not base58 0OIl"), None);
    }

    #[test]
    fn weak_and_bad_keys_rejected() {
        assert!(PublicKey::from_bytes([0; 32]).is_err());
        assert!(PublicKey::from_bytes(SMALL_ORDER_R[0]).is_err());
        assert!("ed25519:00".parse::<PublicKey>().is_err());
        assert!("x25519:".parse::<PublicKey>().is_err());
    }

    #[test]
    fn batch_matches_single() {
        let keys: Vec<SecretKey> = (0..8u8).map(|i| SecretKey::from_seed([i; 32])).collect();
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10]).collect();
        let mut items: Vec<(PublicKey, &[u8], Signature)> = keys
            .iter()
            .zip(&msgs)
            .map(|(k, m)| (k.public_key(), m.as_slice(), k.sign(m)))
            .collect();
        assert!(verify_many(&items).iter().all(|ok| *ok));
        items[3].2.0[5] ^= 1;
        let flags = verify_many(&items);
        assert_eq!(flags.iter().filter(|ok| !**ok).count(), 1);
        assert!(!flags[3]);
    }

    #[test]
    fn peer_id_of_ed25519_key_starts_with_12d3koo() {
        let pk = SecretKey::from_seed([1; 32]).public_key();
        assert!(pk.peer_id().starts_with("12D3KooW"));
    }
}
