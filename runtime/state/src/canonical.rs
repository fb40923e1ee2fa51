//! The canonical key-group file: the entries of one key group, independent of any backend.
//!
//! Savepoints and in-memory checkpoints store keyed state as one such file per non-empty key
//! group, so a restore at any parallelism reads exactly the key groups it owns and can load them
//! into any backend. The layout (integers big-endian):
//!
//! ```text
//! 0   4  magic "WKGF"
//! 4   2  version (1)
//! 6   4  CRC-32 (IEEE) of every byte from offset 10 to the end
//! 10  2  key group
//! 12  8  number of entries
//! 20  .. entries: state id (u16), key length (LEB128), key, value length (LEB128), value
//! ```
//!
//! Decoding checks every length against the bytes that are there, so truncated or damaged input
//! is an [`Error::Corrupt`], never a panic or a huge allocation; the checksum catches damage that
//! still parses.

use crate::{Entry, Error, KeyGroup, Result, StateId};

const MAGIC: [u8; 4] = *b"WKGF";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 20;
const CRC_RANGE_START: usize = 10;

/// Encodes the entries of `key_group` (in the order given; backends give key order).
pub fn encode(key_group: KeyGroup, entries: &[Entry]) -> Vec<u8> {
    let mut encoder = Encoder::new(key_group);
    for entry in entries {
        encoder.push(entry.state, &entry.key, &entry.value);
    }
    encoder.finish()
}

/// Decodes a file made by [`encode`] or [`Encoder`]: its key group and entries.
pub fn decode(bytes: &[u8]) -> Result<(KeyGroup, Vec<Entry>)> {
    let mut entries = Vec::new();
    let key_group = decode_each(bytes, &mut |state, key, value| {
        entries.push(Entry {
            state,
            key: key.to_vec(),
            value: value.to_vec(),
        });
        Ok(())
    })?;
    Ok((key_group, entries))
}

/// What [`decode_each`] calls with each entry: state id, key, value.
pub type EntryVisitor<'a> = dyn FnMut(StateId, &[u8], &[u8]) -> Result<()> + 'a;

/// Checks a file made by [`encode`] or [`Encoder`] and calls `f` with each entry's state id,
/// key and value, borrowed from `bytes` (no copy); returns the file's key group. An error from
/// `f` stops the decoding and is returned as is. The checksum is verified before `f` sees any
/// entry.
pub fn decode_each(bytes: &[u8], f: &mut EntryVisitor<'_>) -> Result<KeyGroup> {
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "truncated: {} bytes, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    let mut header = Reader { bytes, pos: 0 };
    if header.take(4)? != MAGIC {
        return Err(corrupt("bad magic: not a canonical key-group file".into()));
    }
    let version = header.u16()?;
    if version != VERSION {
        return Err(corrupt(format!(
            "unsupported version {version} (this build reads {VERSION})"
        )));
    }
    let stored_crc = header.u32()?;
    let actual_crc = crc32(&bytes[CRC_RANGE_START..]);
    if stored_crc != actual_crc {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored_crc:08x}, computed {actual_crc:08x}): truncated or damaged"
        )));
    }

    let key_group = header.u16()?;
    let count = header.u64()?;
    let mut body = header;
    for index in 0..count {
        let (state, key, value) = body.entry().map_err(|err| match err {
            Error::Corrupt { reason } => corrupt(format!("entry {index} of {count}: {reason}")),
            other => other,
        })?;
        f(state, key, value)?;
    }
    if body.remaining() != 0 {
        return Err(corrupt(format!(
            "{} trailing bytes after {count} entries",
            body.remaining()
        )));
    }
    Ok(key_group)
}

/// Builds a canonical file entry by entry, so a caller iterating a backend need not collect the
/// entries first.
#[derive(Debug, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
    count: u64,
}

impl Encoder {
    /// An empty file for `key_group`.
    pub fn new(key_group: KeyGroup) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&VERSION.to_be_bytes());
        buf.extend_from_slice(&[0; 4]); // the CRC, written by `finish`
        buf.extend_from_slice(&key_group.to_be_bytes());
        buf.extend_from_slice(&[0; 8]); // the entry count, written by `finish`
        Self { buf, count: 0 }
    }

    /// Appends one entry.
    pub fn push(&mut self, state: StateId, key: &[u8], value: &[u8]) {
        self.buf.extend_from_slice(&state.0.to_be_bytes());
        put_varint(&mut self.buf, key.len() as u64);
        self.buf.extend_from_slice(key);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(value);
        self.count += 1;
    }

    /// Entries pushed so far.
    pub fn entry_count(&self) -> u64 {
        self.count
    }

    /// Bytes encoded so far (to decide when a file is big enough to upload).
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// The finished file.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf[12..HEADER_LEN].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32(&self.buf[CRC_RANGE_START..]);
        self.buf[6..CRC_RANGE_START].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }
}

fn corrupt(reason: String) -> Error {
    Error::Corrupt { reason }
}

fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// A cursor that fails instead of reading past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return Err(corrupt(format!(
                "truncated: needs {len} bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            )));
        }
        let out = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64> {
        self.array().map(u64::from_be_bytes)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let [byte] = self.array()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt(format!(
            "length at offset {} overflows 64 bits",
            self.pos
        )))
    }

    fn bytes_with_len(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .map_err(|_| corrupt(format!("length {len} does not fit in memory")))?;
        self.take(len)
    }

    fn entry(&mut self) -> Result<(StateId, &'a [u8], &'a [u8])> {
        let state = StateId(self.u16()?);
        let key = self.bytes_with_len()?;
        let value = self.bytes_with_len()?;
        Ok((state, key, value))
    }
}

/// CRC-32 (IEEE 802.3, as zlib and gzip compute it), slicing by 8: eight table lookups per
/// 8 bytes instead of one per byte (savepoints and rescaled restores checksum every byte).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let hi = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = CRC_TABLES[7][(lo & 0xff) as usize]
            ^ CRC_TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ CRC_TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ CRC_TABLES[4][(lo >> 24) as usize]
            ^ CRC_TABLES[3][(hi & 0xff) as usize]
            ^ CRC_TABLES[2][((hi >> 8) & 0xff) as usize]
            ^ CRC_TABLES[1][((hi >> 16) & 0xff) as usize]
            ^ CRC_TABLES[0][(hi >> 24) as usize];
    }
    for &byte in chunks.remainder() {
        crc = CRC_TABLES[0][usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    !crc
}

/// `CRC_TABLES[0]` is the byte-at-a-time table; `CRC_TABLES[k][i]` advances `CRC_TABLES[0][i]`
/// by `k` more zero bytes.
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(state: u16, key: &[u8], value: &[u8]) -> Entry {
        Entry {
            state: StateId(state),
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    fn entries() -> impl Strategy<Value = Vec<Entry>> {
        let bytes = || prop::collection::vec(any::<u8>(), 0..40);
        prop::collection::vec(
            (any::<u16>(), bytes(), bytes()).prop_map(|(state, key, value)| Entry {
                state: StateId(state),
                key,
                value,
            }),
            0..12,
        )
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Slicing by 8 equals the byte-at-a-time definition at every length and alignment.
        let bytes: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
        for start in 0..9 {
            for end in start..bytes.len() {
                let part = &bytes[start..end];
                let mut crc = !0u32;
                for &byte in part {
                    crc = CRC_TABLES[0][usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
                }
                assert_eq!(crc32(part), !crc, "bytes {start}..{end}");
            }
        }
    }

    #[test]
    fn an_empty_key_group_round_trips() {
        let bytes = encode(7, &[]);
        assert_eq!(bytes.len(), HEADER_LEN);
        assert_eq!(decode(&bytes).expect("decode"), (7, Vec::new()));
    }

    #[test]
    fn large_lengths_use_multi_byte_varints() {
        let big = vec![0xab; 70_000];
        let entries = vec![entry(1, &big, b""), entry(2, b"", &big)];
        let bytes = encode(u16::MAX, &entries);
        assert_eq!(decode(&bytes).expect("decode"), (u16::MAX, entries));
    }

    #[test]
    fn other_files_and_versions_are_rejected_by_name() {
        let mut bytes = encode(1, &[entry(1, b"k", b"v")]);
        let mut wrong_magic = bytes.clone();
        wrong_magic[0] = b'X';
        let err = decode(&wrong_magic).expect_err("bad magic");
        assert!(err.to_string().contains("bad magic"), "{err}");

        bytes[5] = 2;
        let err = decode(&bytes).expect_err("version 2");
        assert!(err.to_string().contains("unsupported version 2"), "{err}");
    }

    #[test]
    fn an_overlong_varint_is_corrupt_not_a_panic() {
        let mut encoder = Encoder::new(0);
        encoder.push(StateId(0), b"", b"");
        let mut bytes = encoder.finish();
        // Replace the key length with eleven continuation bytes and fix up the checksum, so only
        // the varint guard can catch it.
        bytes.truncate(HEADER_LEN + 2);
        bytes.extend_from_slice(&[0xff; 11]);
        let crc = crc32(&bytes[CRC_RANGE_START..]);
        bytes[6..CRC_RANGE_START].copy_from_slice(&crc.to_be_bytes());
        let err = decode(&bytes).expect_err("overlong varint");
        assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(key_group: u16, entries in entries()) {
            let bytes = encode(key_group, &entries);
            prop_assert_eq!(decode(&bytes).expect("decode"), (key_group, entries));
        }

        #[test]
        fn every_truncation_is_a_corrupt_error(key_group: u16, entries in entries()) {
            let bytes = encode(key_group, &entries);
            for len in 0..bytes.len() {
                let result = decode(&bytes[..len]);
                prop_assert!(
                    matches!(result, Err(Error::Corrupt { .. })),
                    "cut at {} of {}: {:?}", len, bytes.len(), result
                );
            }
        }

        #[test]
        fn every_single_byte_change_is_a_corrupt_error(
            key_group: u16,
            entries in entries(),
            position: prop::sample::Index,
            flip in 1u8..,
        ) {
            let mut bytes = encode(key_group, &entries);
            let at = position.index(bytes.len());
            bytes[at] ^= flip;
            let result = decode(&bytes);
            prop_assert!(matches!(result, Err(Error::Corrupt { .. })), "byte {}: {:?}", at, result);
        }

        #[test]
        fn trailing_garbage_is_a_corrupt_error(
            entries in entries(),
            garbage in prop::collection::vec(any::<u8>(), 1..8),
        ) {
            let mut bytes = encode(3, &entries);
            bytes.extend_from_slice(&garbage);
            let result = decode(&bytes);
            prop_assert!(matches!(result, Err(Error::Corrupt { .. })), "{:?}", result);
        }
    }
}
