//! Wire messages of the sync protocol (docs/PROTOCOL.md 9.3). Each is one request-response
//! frame: a one-byte tag, then the payload.

use accord_core::ObjectId;
use accord_core::cbor::{self, ScanLimits};

use crate::session::SyncError;

/// Most ids in one fetch request.
pub const MAX_FETCH_IDS: usize = 1024;

const TAG_REFUSED: u8 = 0x00;
const TAG_RECONCILE: u8 = 0x01;
const TAG_FETCH: u8 = 0x02;

/// What an initiator sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `01 || negentropy message`
    Reconcile(Vec<u8>),
    /// `02 || id (32 bytes) * n`, 1 ≤ n ≤ [`MAX_FETCH_IDS`]
    Fetch(Vec<ObjectId>),
}

/// What a responder answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `01 || negentropy message`
    Reconcile(Vec<u8>),
    /// `02 || envelopes as a CBOR sequence` (those it has, in request order, as many as fit)
    Objects(Vec<Vec<u8>>),
    /// `00 || UTF-8 reason`
    Refused(String),
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Reconcile(m) => [&[TAG_RECONCILE][..], m].concat(),
            Request::Fetch(ids) => {
                let mut v = Vec::with_capacity(1 + ids.len() * 32);
                v.push(TAG_FETCH);
                for id in ids {
                    v.extend_from_slice(id.as_bytes());
                }
                v
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, SyncError> {
        match bytes.split_first() {
            Some((&TAG_RECONCILE, m)) => Ok(Request::Reconcile(m.to_vec())),
            Some((&TAG_FETCH, ids)) => {
                if ids.is_empty() || ids.len() % 32 != 0 || ids.len() / 32 > MAX_FETCH_IDS {
                    return Err(SyncError::Malformed(format!(
                        "fetch of {} bytes: expected 1 to {MAX_FETCH_IDS} ids of 32 bytes",
                        ids.len()
                    )));
                }
                Ok(Request::Fetch(
                    ids.chunks_exact(32)
                        .filter_map(ObjectId::from_slice)
                        .collect(),
                ))
            }
            Some((t, _)) => Err(SyncError::Malformed(format!(
                "unknown request tag {t:#04x}"
            ))),
            None => Err(SyncError::Malformed("empty request".into())),
        }
    }
}

/// Concatenates envelopes into a CBOR sequence.
pub fn encode_objects(objects: &[Vec<u8>]) -> Vec<u8> {
    objects.concat()
}

/// Splits a CBOR sequence of envelopes.
pub fn decode_objects(bytes: &[u8], scan: ScanLimits) -> Result<Vec<Vec<u8>>, SyncError> {
    cbor::split_sequence(bytes, scan)
        .map(|v| v.into_iter().map(<[u8]>::to_vec).collect())
        .map_err(|e| SyncError::Malformed(format!("objects: {e}")))
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Response::Reconcile(m) => [&[TAG_RECONCILE][..], m].concat(),
            Response::Objects(objs) => [vec![TAG_FETCH], encode_objects(objs)].concat(),
            Response::Refused(r) => [&[TAG_REFUSED][..], r.as_bytes()].concat(),
        }
    }

    pub fn decode(bytes: &[u8], scan: ScanLimits) -> Result<Response, SyncError> {
        match bytes.split_first() {
            Some((&TAG_RECONCILE, m)) => Ok(Response::Reconcile(m.to_vec())),
            Some((&TAG_FETCH, objs)) => Ok(Response::Objects(decode_objects(objs, scan)?)),
            Some((&TAG_REFUSED, r)) => {
                Ok(Response::Refused(String::from_utf8_lossy(r).into_owned()))
            }
            Some((t, _)) => Err(SyncError::Malformed(format!(
                "unknown response tag {t:#04x}"
            ))),
            None => Err(SyncError::Malformed("empty response".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_and_errors() {
        let ids = vec![ObjectId::of_body(b"a"), ObjectId::of_body(b"b")];
        for r in [
            Request::Reconcile(vec![0x61, 1, 2]),
            Request::Fetch(ids.clone()),
        ] {
            assert_eq!(Request::decode(&r.encode()).ok(), Some(r));
        }
        let scan = ScanLimits {
            max_depth: 16,
            max_entries: 1024,
        };
        for r in [
            Response::Reconcile(vec![0x61]),
            Response::Objects(vec![vec![0x01], vec![0x80]]),
            Response::Refused("slow down".into()),
        ] {
            assert_eq!(Response::decode(&r.encode(), scan).ok(), Some(r));
        }
        assert!(Request::decode(&[]).is_err());
        assert!(Request::decode(&[0x02]).is_err());
        assert!(Request::decode(&[0x02, 1, 2, 3]).is_err());
        assert!(Request::decode(&[0x09]).is_err());
        assert!(Response::decode(&[0x02, 0xff], scan).is_err());
    }
}
