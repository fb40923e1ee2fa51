//! The state encoding's primitives: LEB128 varints (zig-zag for signed numbers), fixed-width
//! little-endian floats and `i128`s, and length-prefixed byte strings. Readers take the input as
//! `&mut &[u8]` and advance it.

use crate::error::{Error, Result};

fn corrupt(what: &str) -> Error {
    Error::execution(
        "aggregate state",
        format!("corrupt accumulator state: truncated {what}"),
    )
}

pub(crate) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_u64(input: &mut &[u8]) -> Result<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let (&byte, rest) = input.split_first().ok_or_else(|| corrupt("varint"))?;
        *input = rest;
        if shift >= 64 {
            return Err(corrupt("varint"));
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub(crate) fn get_i64(input: &mut &[u8]) -> Result<i64> {
    let z = get_u64(input)?;
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

fn take<const N: usize>(input: &mut &[u8], what: &str) -> Result<[u8; N]> {
    if input.len() < N {
        return Err(corrupt(what));
    }
    let (head, rest) = input.split_at(N);
    *input = rest;
    let mut bytes = [0u8; N];
    bytes.copy_from_slice(head);
    Ok(bytes)
}

pub(crate) fn put_f32(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn get_f32(input: &mut &[u8]) -> Result<f32> {
    Ok(f32::from_le_bytes(take::<4>(input, "float")?))
}

pub(crate) fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn get_f64(input: &mut &[u8]) -> Result<f64> {
    Ok(f64::from_le_bytes(take::<8>(input, "double")?))
}

pub(crate) fn put_i128(out: &mut Vec<u8>, v: i128) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn get_i128(input: &mut &[u8]) -> Result<i128> {
    Ok(i128::from_le_bytes(take::<16>(input, "decimal")?))
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn get_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8]> {
    let len = get_u64(input)? as usize;
    if input.len() < len {
        return Err(corrupt("string"));
    }
    let (head, rest) = input.split_at(len);
    *input = rest;
    Ok(head)
}

pub(crate) fn get_str<'a>(input: &mut &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(get_bytes(input)?).map_err(|_| {
        Error::execution(
            "aggregate state",
            "corrupt accumulator state: invalid UTF-8",
        )
    })
}

pub(crate) fn get_u8(input: &mut &[u8]) -> Result<u8> {
    Ok(take::<1>(input, "flag")?[0])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn signed_varints_round_trip(v in any::<i64>()) {
            let mut buf = Vec::new();
            put_i64(&mut buf, v);
            let mut input = buf.as_slice();
            prop_assert_eq!(get_i64(&mut input).unwrap(), v);
            prop_assert!(input.is_empty());
        }

        #[test]
        fn byte_strings_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = Vec::new();
            put_bytes(&mut buf, &bytes);
            let mut input = buf.as_slice();
            prop_assert_eq!(get_bytes(&mut input).unwrap(), bytes.as_slice());
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        put_bytes(&mut buf, b"hello");
        let mut input = &buf[..3];
        assert!(get_bytes(&mut input).is_err());
        let mut input: &[u8] = &[0x80];
        assert!(get_u64(&mut input).is_err());
    }
}
