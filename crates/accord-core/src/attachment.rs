//! Attachments: files named by a record and carried beside it, in fixed chunks that a
//! receiver checks one by one (docs/PROTOCOL.md §12).
//!
//! A file is cut into [`CHUNK_SIZE`] chunks (the last one shorter); the *chunk list* is the
//! SHA-256 of every chunk, concatenated; the record commits to the list by its hash
//! ([`chunk_list_hash`], field `chunks`) and to the whole file by its SHA-256 (`sha256`). A
//! receiver first fetches the list and checks it against the record, then each chunk against
//! its entry in the list: a bad chunk is caught when it arrives.

use sha2::{Digest, Sha256};

use crate::id::ObjectId;
use crate::object::Attachment;

/// The size of every chunk but the last, in bytes.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Domain prefix of the chunk list hash.
pub const CHUNK_LIST_DOMAIN: &[u8] = b"accord/chunk-list/v1\0";

/// The number of chunks of a file of `size` bytes (an empty file has none).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_SIZE as u64)
}

/// The SHA-256 of each chunk of `bytes`.
pub fn chunk_hashes(bytes: &[u8]) -> Vec<[u8; 32]> {
    bytes
        .chunks(CHUNK_SIZE)
        .map(|c| Sha256::digest(c).into())
        .collect()
}

/// The hash a record commits to: SHA-256 of [`CHUNK_LIST_DOMAIN`] and the chunk list.
pub fn chunk_list_hash(list: &[u8]) -> ObjectId {
    let mut h = Sha256::new();
    h.update(CHUNK_LIST_DOMAIN);
    h.update(list);
    ObjectId(h.finalize().into())
}

/// The chunk list of `bytes`, as it travels (32 bytes per chunk).
pub fn chunk_list(bytes: &[u8]) -> Vec<u8> {
    chunk_hashes(bytes).concat()
}

/// Checks a chunk list received for `a`: its length fits the size, its hash is the record's.
pub fn check_list(a: &Attachment, list: &[u8]) -> Result<(), String> {
    let want = chunk_count(a.size);
    if list.len() as u64 != want * 32 {
        return Err(format!(
            "chunk list of {} bytes for a file of {} chunks",
            list.len(),
            want
        ));
    }
    match a.chunks {
        Some(c) if chunk_list_hash(list) != c => {
            Err("chunk list does not match the record's hash".into())
        }
        _ => Ok(()),
    }
}

/// Whether `chunk` is the one `list` names at `index` (its hash alone, whatever its length).
pub fn listed(list: &[u8], index: u64, chunk: &[u8]) -> bool {
    usize::try_from(index.saturating_mul(32))
        .ok()
        .and_then(|at| list.get(at..at.checked_add(32)?))
        .is_some_and(|want| Sha256::digest(chunk).as_slice() == want)
}

/// Checks chunk `index` of a file whose (checked) chunk list is `list`.
pub fn check_chunk(list: &[u8], size: u64, index: u64, chunk: &[u8]) -> Result<(), String> {
    let n = chunk_count(size);
    if index >= n {
        return Err(format!("chunk {index} of a file of {n} chunks"));
    }
    let expected_len = if index + 1 == n {
        size - index * CHUNK_SIZE as u64
    } else {
        CHUNK_SIZE as u64
    };
    if chunk.len() as u64 != expected_len {
        return Err(format!(
            "chunk {index} has {} bytes, not {expected_len}",
            chunk.len()
        ));
    }
    let at = usize::try_from(index * 32).map_err(|e| e.to_string())?;
    let want = list.get(at..at + 32).ok_or("chunk list too short")?;
    if Sha256::digest(chunk).as_slice() != want {
        return Err(format!("chunk {index} does not match its hash"));
    }
    Ok(())
}

/// The media type of a file name, by its extension (what publishers attach; anything else is
/// `application/octet-stream`).
pub fn media_type_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "doc" => "application/msword",
        "xls" => "application/vnd.ms-excel",
        "ppt" => "application/vnd.ms-powerpoint",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// The record's description of a file: name, media type, size, SHA-256 and chunk list hash.
pub fn describe(name: &str, bytes: &[u8]) -> Attachment {
    Attachment {
        name: name.to_string(),
        media_type: media_type_for(name).to_string(),
        size: bytes.len() as u64,
        sha256: ObjectId(Sha256::digest(bytes).into()),
        chunks: Some(chunk_list_hash(&chunk_list(bytes))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charters_limits_bound_each_file_and_a_records_total() {
        let t = crate::Timestamp(1_700_000_000_000);
        let fed = crate::devnet::DevFederation::new(&["KZ"], [1; 32], t).unwrap();
        let limits = fed.charter.limits;
        let file = |name: &str, size: u64| Attachment {
            name: name.into(),
            media_type: "application/pdf".into(),
            size,
            sha256: ObjectId([1; 32]),
            chunks: None,
        };
        let check = |files: Vec<Attachment>| {
            let mut r = fed.record_body(0, "x", t);
            r.attachments = files;
            crate::validate::check_record_fields(&r, &fed.charter).map_err(|e| e.to_string())
        };
        check(vec![file("a.pdf", limits.max_attachment_bytes)]).unwrap();
        let e = check(vec![file("a.pdf", limits.max_attachment_bytes + 1)]).unwrap_err();
        assert!(
            e.contains("attachments.size") && e.contains("per file"),
            "{e}"
        );
        let e = check(
            (0..5)
                .map(|i| file(&format!("{i}.pdf"), limits.max_attachment_bytes))
                .collect(),
        )
        .unwrap_err();
        assert!(e.contains("per record"), "{e}");
        for bad in ["../etc/passwd", "a\\b.pdf", "x\u{7}.pdf"] {
            assert!(check(vec![file(bad, 1)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_chunk_is_checked_against_the_committed_list() {
        let bytes: Vec<u8> = (0..(2 * CHUNK_SIZE + 10))
            .map(|i| (i % 251) as u8)
            .collect();
        let a = describe("decree.pdf", &bytes);
        assert_eq!(a.media_type, "application/pdf");
        assert_eq!(chunk_count(a.size), 3);
        let list = chunk_list(&bytes);
        check_list(&a, &list).unwrap();
        for (i, c) in bytes.chunks(CHUNK_SIZE).enumerate() {
            check_chunk(&list, a.size, i as u64, c).unwrap();
        }
        // A flipped byte in chunk 1 is caught at chunk 1.
        let mut bad = bytes[CHUNK_SIZE..2 * CHUNK_SIZE].to_vec();
        bad[7] ^= 1;
        assert!(
            check_chunk(&list, a.size, 1, &bad)
                .unwrap_err()
                .contains("chunk 1")
        );
        // A short chunk, an index past the end, a list for another file.
        assert!(check_chunk(&list, a.size, 2, &bytes[2 * CHUNK_SIZE..][..5]).is_err());
        assert!(check_chunk(&list, a.size, 3, b"").is_err());
        let mut other = list.clone();
        other[0] ^= 1;
        assert!(check_list(&a, &other).is_err());
        assert!(check_list(&a, &list[..64]).is_err());
        assert_eq!(chunk_count(0), 0);
        assert_eq!(media_type_for("Method.DOCX").len(), 71);
        assert_eq!(media_type_for("noext"), "application/octet-stream");
    }
}
