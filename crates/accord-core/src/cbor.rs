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
    scan_first(bytes, limits).map_err(|(e, _)| e)
}

/// [`item_len`], and on error whether the bytes ran out inside the item (more input could
/// complete it) rather than the item being malformed.
fn scan_first(bytes: &[u8], limits: ScanLimits) -> Result<usize, (DecodeError, bool)> {
    let mut s = Scanner {
        b: bytes,
        pos: 0,
        limits,
        ran_out: false,
    };
    match s.item(0) {
        Ok(()) => Ok(s.pos),
        Err(e) => Err((e, s.ran_out)),
    }
}

/// Bounds for reading a CBOR sequence of objects whose own limits are judged later, one by
/// one, by validation (a backup, an export): the protocol's deepest nesting (a charter may set
/// no more than 64), any number of entries (scanning costs the bytes present, nothing a
/// length claims), and items up to [`MAX_SEQUENCE_ITEM`] bytes.
pub const SEQUENCE_SCAN: ScanLimits = ScanLimits {
    max_depth: 64,
    max_entries: u64::MAX,
};

/// The largest item a [`SequenceReader`] reads for [`SEQUENCE_SCAN`]: the object log's bound
/// on one stored object; a charter amendment may raise `max_object_bytes` far above the
/// genesis's 1 MiB, so a backup is not bounded by the genesis.
pub const MAX_SEQUENCE_ITEM: usize = 256 << 20;

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

/// Why a [`SequenceReader`] stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("the object at byte {offset}: {error}")]
    Item { offset: u64, error: DecodeError },
    #[error("the object at byte {offset} is over {limit} bytes")]
    TooLarge { offset: u64, limit: usize },
}

/// Reads a CBOR sequence (an export file, a backup) one item at a time, so that a file of any
/// size costs the memory of its largest item, never the whole file. Each item is scanned as by
/// [`split_sequence`]; an item over `max_item` bytes, or one the input ends inside, is an
/// error that names its offset.
#[derive(Debug)]
pub struct SequenceReader<R> {
    input: R,
    buf: Vec<u8>,
    /// The first byte of `buf` not yet handed out.
    start: usize,
    /// The input's offset of `buf[start]`.
    offset: u64,
    eof: bool,
    max_item: usize,
    limits: ScanLimits,
}

/// What a [`SequenceReader`] reads at a time, at least.
const SEQUENCE_READ: usize = 64 * 1024;

impl<R: std::io::Read> SequenceReader<R> {
    pub fn new(input: R, max_item: usize, limits: ScanLimits) -> Self {
        SequenceReader {
            input,
            buf: Vec::new(),
            start: 0,
            offset: 0,
            eof: false,
            max_item,
            limits,
        }
    }

    /// The input's offset of the next item: after the last item, the sequence's length.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next item's exact bytes; `None` at the end of the input.
    pub fn next_item(&mut self) -> Result<Option<Vec<u8>>, SequenceError> {
        loop {
            let held = &self.buf[self.start..];
            if held.is_empty() && self.eof {
                return Ok(None);
            }
            if !held.is_empty() {
                match scan_first(held, self.limits) {
                    Ok(n) if n > self.max_item => {
                        return Err(SequenceError::TooLarge {
                            offset: self.offset,
                            limit: self.max_item,
                        });
                    }
                    Ok(n) => {
                        let item = held[..n].to_vec();
                        self.start += n;
                        self.offset += n as u64;
                        return Ok(Some(item));
                    }
                    // An item of the largest allowed size would already have ended.
                    Err((_, true)) if held.len() > self.max_item => {
                        return Err(SequenceError::TooLarge {
                            offset: self.offset,
                            limit: self.max_item,
                        });
                    }
                    // More input could complete it.
                    Err((_, true)) if !self.eof => {}
                    // Malformed whatever follows, or cut short by the end of the input.
                    Err((error, _)) => {
                        return Err(SequenceError::Item {
                            offset: self.offset,
                            error,
                        });
                    }
                }
            }
            self.buf.drain(..self.start);
            self.start = 0;
            // Read at least as much again as is held, so a large item is scanned a few
            // times, not once per read.
            let want = self.buf.len().max(SEQUENCE_READ);
            let at = self.buf.len();
            self.buf.resize(at + want, 0);
            let n = loop {
                match self.input.read(&mut self.buf[at..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(at);
                    return Err(e.into());
                }
            };
            self.buf.truncate(at + n);
            self.eof = n == 0;
        }
    }
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
        ran_out: false,
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
        ran_out: false,
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
    /// Set when the bytes ended inside the item (more input could complete it), as opposed
    /// to an item that is malformed whatever follows.
    ran_out: bool,
}

impl Scanner<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let v = *self.b.get(self.pos).ok_or_else(|| {
            self.ran_out = true;
            DecodeError::Cbor("unexpected end of input".into())
        })?;
        self.pos += 1;
        Ok(v)
    }

    fn take(&mut self, n: u64) -> Result<(), DecodeError> {
        let remaining = (self.b.len() - self.pos) as u64;
        if n > remaining {
            self.ran_out = true;
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

    /// A reader that hands out at most `step` bytes per read, as a socket or pipe may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn read_all(bytes: &[u8], step: usize, max_item: usize) -> Result<Vec<Vec<u8>>, SequenceError> {
        let mut r = SequenceReader::new(Trickle { bytes, step }, max_item, L);
        let mut out = Vec::new();
        while let Some(item) = r.next_item()? {
            out.push(item);
        }
        assert_eq!(r.offset(), bytes.len() as u64);
        Ok(out)
    }

    #[test]
    fn a_sequence_is_read_item_by_item_whatever_the_reads() {
        // Items larger than one read, split across reads at every possible place.
        let mut seq = Vec::new();
        let mut want = Vec::new();
        for n in [0usize, 1, 23, 24, 300, 70_000, 5] {
            let mut item = vec![0x5a];
            item.extend_from_slice(&(n as u32).to_be_bytes());
            item.extend(std::iter::repeat_n(7u8, n));
            seq.extend_from_slice(&item);
            want.push(item);
        }
        for step in [1, 3, 4096, usize::MAX] {
            let got = read_all(&seq, step, 1 << 20).unwrap_or_default();
            assert_eq!(got, want, "reads of {step} bytes");
        }
        assert!(read_all(&[], 7, 100).is_ok_and(|items| items.is_empty()));
    }

    #[test]
    fn a_damaged_or_oversized_sequence_names_where() {
        let mut seq = vec![0x01, 0x42, 7, 8];
        // Truncated: the third item declares 4 bytes and has 2.
        seq.extend_from_slice(&[0x44, 1, 2]);
        match read_all(&seq, 2, 100) {
            Err(SequenceError::Item { offset: 4, .. }) => {}
            other => panic!("{other:?}"),
        }
        // An item over the bound is refused once it is known to be, without reading the rest
        // of what it declares.
        let mut big = vec![0x5a, 0, 1, 0, 0];
        big.extend(std::iter::repeat_n(0u8, 70_000));
        let mut r = SequenceReader::new(
            Trickle {
                bytes: &big,
                step: usize::MAX,
            },
            1000,
            L,
        );
        assert!(matches!(
            r.next_item(),
            Err(SequenceError::TooLarge {
                offset: 0,
                limit: 1000
            })
        ));
        // A declared length of 2^63 bytes costs one read, not an allocation of it.
        let huge = [0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2];
        assert!(matches!(
            read_all(&huge, 3, 1 << 20),
            Err(SequenceError::Item { offset: 0, .. })
        ));
        // Malformed within the bound: the scanner's reason.
        assert!(matches!(
            read_all(&[0x01, 0xff], 1, 100),
            Err(SequenceError::Item { offset: 1, .. })
        ));
        // Malformed in the middle of a long input: said at once, with its reason, without
        // reading on (it used to read up to the bound and call it too large).
        let mut bad = vec![0x01, 0x1c];
        bad.extend(std::iter::repeat_n(0u8, 200_000));
        let mut r = SequenceReader::new(
            Trickle {
                bytes: &bad,
                step: 4096,
            },
            100_000,
            L,
        );
        assert!(matches!(r.next_item(), Ok(Some(_))));
        match r.next_item() {
            Err(SequenceError::Item {
                offset: 1,
                error: DecodeError::Cbor(_),
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}
