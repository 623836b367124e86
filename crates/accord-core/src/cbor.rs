//! A small CBOR well-formedness scanner (RFC 8949, section 3).
//!
//! It runs before any decoding and answers "how long is the first item, and does it respect
//! our limits": nesting depth, entries per list or map, and declared lengths that cannot
//! exceed the bytes actually present. Decoders behind it therefore never allocate for a
//! length an attacker merely claimed. It is also how a CBOR sequence (export files) or a CBOR
//! array of envelopes (batch submission) is split into the exact bytes of each item.

use crate::error::DecodeError;

/// Limits enforced while scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    pub max_depth: usize,
    pub max_entries: u64,
}

/// Returns the length in bytes of the first CBOR data item in `bytes`.
pub fn item_len(bytes: &[u8], limits: ScanLimits) -> Result<usize, DecodeError> {
    let mut s = Scanner {
        b: bytes,
        pos: 0,
        limits,
    };
    s.item(0)?;
    Ok(s.pos)
}

/// Checks that `bytes` is exactly one well-formed item within the limits.
pub fn check_single(bytes: &[u8], limits: ScanLimits) -> Result<(), DecodeError> {
    let n = item_len(bytes, limits)?;
    if n != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - n));
    }
    Ok(())
}

/// Splits a CBOR sequence (concatenated items) into the exact bytes of each item.
pub fn split_sequence(mut bytes: &[u8], limits: ScanLimits) -> Result<Vec<&[u8]>, DecodeError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let n = item_len(bytes, limits)?;
        let (item, rest) = bytes.split_at(n);
        out.push(item);
        bytes = rest;
    }
    Ok(out)
}

/// If `bytes` starts with a definite-length CBOR array, its element count and the length of its
/// head (so `bytes[head..]` starts with the first element). Reads nothing past the head.
pub fn array_head(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut s = Scanner {
        b: bytes,
        pos: 0,
        limits: ScanLimits {
            max_depth: 1,
            max_entries: u64::MAX,
        },
    };
    match s.head() {
        Ok((4, Some(count))) => Some((count, s.pos)),
        _ => None,
    }
}

/// If `bytes` is a single definite-length CBOR array, returns the exact bytes of each element.
/// Returns `Ok(None)` when the item is not an array.
pub fn split_array(bytes: &[u8], limits: ScanLimits) -> Result<Option<Vec<&[u8]>>, DecodeError> {
    check_single(bytes, limits)?;
    let Some(&first) = bytes.first() else {
        return Ok(None);
    };
    if first >> 5 != 4 {
        return Ok(None);
    }
    let mut s = Scanner {
        b: bytes,
        pos: 0,
        limits,
    };
    let (_, arg) = s.head()?;
    let Some(count) = arg else {
        return Err(DecodeError::Cbor(
            "indefinite-length array of objects".into(),
        ));
    };
    let mut out = Vec::new();
    for _ in 0..count {
        let start = s.pos;
        s.item(1)?;
        out.push(&bytes[start..s.pos]);
    }
    Ok(Some(out))
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    limits: ScanLimits,
}

impl Scanner<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or_else(|| DecodeError::Cbor("unexpected end of input".into()))?;
        self.pos += 1;
        Ok(v)
    }

    fn take(&mut self, n: u64) -> Result<(), DecodeError> {
        let remaining = (self.b.len() - self.pos) as u64;
        if n > remaining {
            return Err(DecodeError::Cbor(format!(
                "declared length {n} exceeds the {remaining} bytes left"
            )));
        }
        self.pos += n as usize;
        Ok(())
    }

    /// Reads an initial byte and its argument; `None` argument means indefinite length.
    fn head(&mut self) -> Result<(u8, Option<u64>), DecodeError> {
        let ib = self.byte()?;
        let major = ib >> 5;
        let info = ib & 0x1f;
        let arg = match info {
            0..=23 => Some(info as u64),
            24..=27 => {
                let n = 1usize << (info - 24);
                let mut v: u64 = 0;
                for _ in 0..n {
                    v = (v << 8) | self.byte()? as u64;
                }
                Some(v)
            }
            31 if matches!(major, 2..=5 | 7) => None,
            _ => {
                return Err(DecodeError::Cbor(format!(
                    "reserved additional information {info}"
                )));
            }
        };
        Ok((major, arg))
    }

    fn item(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth > self.limits.max_depth {
            return Err(DecodeError::TooDeep(self.limits.max_depth));
        }
        let (major, arg) = self.head()?;
        match (major, arg) {
            (0 | 1, Some(_)) => Ok(()),
            (2 | 3, Some(n)) => self.take(n),
            (2 | 3, None) => loop {
                // Indefinite string: chunks of the same major type until "break".
                if self.b.get(self.pos) == Some(&0xff) {
                    self.pos += 1;
                    return Ok(());
                }
                let (m, a) = self.head()?;
                match (m == major, a) {
                    (true, Some(n)) => self.take(n)?,
                    _ => {
                        return Err(DecodeError::Cbor(
                            "bad chunk in indefinite-length string".into(),
                        ));
                    }
                }
            },
            (4 | 5, Some(n)) => {
                if n > self.limits.max_entries {
                    return Err(DecodeError::ListTooLong {
                        len: n,
                        limit: self.limits.max_entries,
                    });
                }
                let per = if major == 5 { 2 } else { 1 };
                for _ in 0..n * per {
                    self.item(depth + 1)?;
                }
                Ok(())
            }
            (4 | 5, None) => {
                let per = if major == 5 { 2 } else { 1 };
                let mut count: u64 = 0;
                loop {
                    if self.b.get(self.pos) == Some(&0xff) {
                        self.pos += 1;
                        return Ok(());
                    }
                    count += 1;
                    if count > self.limits.max_entries * per {
                        return Err(DecodeError::ListTooLong {
                            len: count / per,
                            limit: self.limits.max_entries,
                        });
                    }
                    self.item(depth + 1)?;
                }
            }
            (6, Some(_)) => self.item(depth + 1),
            (7, Some(_)) => Ok(()), // simple values and floats: head already consumed their bytes
            (7, None) => Err(DecodeError::Cbor("unexpected break".into())),
            _ => Err(DecodeError::Cbor("malformed item".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: ScanLimits = ScanLimits {
        max_depth: 4,
        max_entries: 3,
    };

    #[test]
    fn lengths() {
        assert_eq!(item_len(&[0x01], L).ok(), Some(1));
        assert_eq!(item_len(&[0x43, 1, 2, 3, 9], L).ok(), Some(4));
        assert_eq!(item_len(&[0x82, 0x01, 0x02], L).ok(), Some(3));
        assert_eq!(item_len(&[0x9f, 0x01, 0xff], L).ok(), Some(3));
        assert_eq!(item_len(&[0xa1, 0x61, b'a', 0x01], L).ok(), Some(4));
    }

    #[test]
    fn limits_and_malformed() {
        assert!(matches!(
            item_len(&[0x84, 1, 2, 3, 4], L),
            Err(DecodeError::ListTooLong { .. })
        ));
        assert!(matches!(
            item_len(&[0x81, 0x81, 0x81, 0x81, 0x81, 0x01], L),
            Err(DecodeError::TooDeep(4))
        ));
        // The boundary PROTOCOL.md §3 states: the outermost item is at depth 0, an item at
        // depth max_depth is accepted (a scalar, or an empty array), one deeper is not.
        assert_eq!(item_len(&[0x81, 0x81, 0x81, 0x81, 0x01], L).ok(), Some(5));
        assert_eq!(item_len(&[0x81, 0x81, 0x81, 0x81, 0x80], L).ok(), Some(5));
        assert!(matches!(
            item_len(&[0x81, 0x81, 0x81, 0x81, 0x81, 0x80], L),
            Err(DecodeError::TooDeep(4))
        ));
        assert!(item_len(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], L).is_err());
        assert!(item_len(&[0x1c], L).is_err());
        assert!(item_len(&[0xff], L).is_err());
        assert!(item_len(&[], L).is_err());
        assert!(matches!(
            check_single(&[0x01, 0x02], L),
            Err(DecodeError::TrailingBytes(1))
        ));
    }

    #[test]
    fn split() {
        let seq = [0x01, 0x42, 7, 8, 0x80];
        let items = split_sequence(&seq, L).unwrap_or_default();
        assert_eq!(items, vec![&[0x01][..], &[0x42, 7, 8][..], &[0x80][..]]);
        let arr = [0x82, 0x42, 1, 2, 0x01];
        let parts = split_array(&arr, L).ok().flatten().unwrap_or_default();
        assert_eq!(parts, vec![&[0x42, 1, 2][..], &[0x01][..]]);
        assert_eq!(split_array(&[0x01], L).ok().flatten(), None);
    }
}
