//! Byte layouts of index keys. Every index key ends in `created (8 bytes, big-endian) || id
//! (32 bytes)`, so a prefix scan returns objects in creation order and `(created, id)` is a
//! stable pagination cursor.

use accord_core::{ObjectId, Timestamp};

pub const TIME_ID_LEN: usize = 40;

pub fn time_id(created: Timestamp, id: &ObjectId) -> [u8; TIME_ID_LEN] {
    let mut k = [0u8; TIME_ID_LEN];
    k[..8].copy_from_slice(&created.0.to_be_bytes());
    k[8..].copy_from_slice(id.as_bytes());
    k
}

pub fn prefixed(prefix: &[u8], created: Timestamp, id: &ObjectId) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + TIME_ID_LEN);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&time_id(created, id));
    k
}

/// Splits the `(created, id)` suffix off an index key.
pub fn split_suffix(key: &[u8]) -> Option<(Timestamp, ObjectId)> {
    let start = key.len().checked_sub(TIME_ID_LEN)?;
    let t = u64::from_be_bytes(key[start..start + 8].try_into().ok()?);
    let id = ObjectId::from_slice(&key[start + 8..])?;
    Some((Timestamp(t), id))
}

pub fn pair(a: &ObjectId, b: &ObjectId) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(a.as_bytes());
    k[32..].copy_from_slice(b.as_bytes());
    k
}
