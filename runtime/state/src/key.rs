//! How a (key group, state id, user key) triple becomes one byte key in a backend.
//!
//! The encoding is `[key group: u16 BE][state id: u16 BE][user key]`. Big-endian integers sort
//! bytewise in numeric order, and the key group comes first, so in a sorted store (RocksDB, a
//! `BTreeMap`) every key group is one contiguous key range and a range of key groups is one
//! contiguous key range too: rescaling hands a task's key-group range over as a single range of
//! keys. Within a key group, each state's entries are contiguous and ordered by user key.

use std::ops::RangeInclusive;

use crate::{Error, Result};

/// A key group: the unit in which keyed state is assigned to tasks and moved on rescaling.
pub type KeyGroup = u16;

/// Identifies one piece of declared state, so operators sharing a backend never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId(pub u16);

/// Length of the encoded key-group and state-id prefix.
pub(crate) const PREFIX_LEN: usize = 4;

/// The encoded prefix shared by all keys of `state` in `key_group`.
pub(crate) fn key_prefix(key_group: KeyGroup, state: StateId) -> [u8; PREFIX_LEN] {
    let [g0, g1] = key_group.to_be_bytes();
    let [s0, s1] = state.0.to_be_bytes();
    [g0, g1, s0, s1]
}

/// Encodes `user_key` of `state` in `key_group` as `[key_group BE][state BE][user_key]`.
pub fn encode_key(key_group: KeyGroup, state: StateId, user_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_LEN + user_key.len());
    out.extend_from_slice(&key_prefix(key_group, state));
    out.extend_from_slice(user_key);
    out
}

/// Splits an encoded key back into its key group, state id and user key.
///
/// Fails with [`Error::CorruptKey`] if `bytes` is shorter than the 4-byte prefix.
pub fn decode_key(bytes: &[u8]) -> Result<(KeyGroup, StateId, &[u8])> {
    match bytes {
        [g0, g1, s0, s1, user_key @ ..] => Ok((
            u16::from_be_bytes([*g0, *g1]),
            StateId(u16::from_be_bytes([*s0, *s1])),
            user_key,
        )),
        _ => Err(Error::CorruptKey {
            key: bytes.to_vec(),
        }),
    }
}

/// The encoded key range `[lower, upper)` holding exactly the key groups of `key_groups`;
/// `upper` is `None` when the range runs to the last key group. `None` for an empty range.
pub(crate) fn key_group_bounds(
    key_groups: &RangeInclusive<KeyGroup>,
) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    if key_groups.is_empty() {
        return None;
    }
    let lower = key_groups.start().to_be_bytes().to_vec();
    let upper = key_groups
        .end()
        .checked_add(1)
        .map(|next| next.to_be_bytes().to_vec());
    Some((lower, upper))
}

/// The encoded key range `[lower, upper)` of the user keys `[start, end)` of `state` in
/// `key_group` (`end = None`: to the last key of that state); `upper` is `None` only when no
/// encoded key bounds the range (the last state of the last key group).
pub(crate) fn user_key_bounds(
    key_group: KeyGroup,
    state: StateId,
    start: &[u8],
    end: Option<&[u8]>,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let lower = encode_key(key_group, state, start);
    let upper = match end {
        Some(end) => Some(encode_key(key_group, state, end)),
        None => prefix_successor(&key_prefix(key_group, state)),
    };
    (lower, upper)
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` if
/// there is none (`prefix` is empty or all `0xff`). Used as an exclusive upper bound for scans.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decode_inverts_encode(kg: u16, state: u16, user in proptest::collection::vec(any::<u8>(), 0..64)) {
            let encoded = encode_key(kg, StateId(state), &user);
            let (kg2, state2, user2) = decode_key(&encoded).expect("decodes");
            prop_assert_eq!(kg2, kg);
            prop_assert_eq!(state2, StateId(state));
            prop_assert_eq!(user2, &user[..]);
        }

        #[test]
        fn encoding_sorts_by_key_group_then_state_then_user_key(
            a in (any::<u16>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..8)),
            b in (any::<u16>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..8)),
        ) {
            let ea = encode_key(a.0, StateId(a.1), &a.2);
            let eb = encode_key(b.0, StateId(b.1), &b.2);
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
        }

        #[test]
        fn prefix_successor_bounds_exactly_the_prefixed_keys(
            prefix in proptest::collection::vec(any::<u8>(), 0..4),
            key in proptest::collection::vec(any::<u8>(), 0..6),
        ) {
            let inside = key.starts_with(&prefix);
            match prefix_successor(&prefix) {
                Some(end) => prop_assert_eq!(key >= prefix && key < end, inside),
                None => {
                    prop_assert!(prefix.iter().all(|b| *b == u8::MAX));
                    prop_assert_eq!(key >= prefix, inside);
                }
            }
        }
    }

    #[test]
    fn key_group_bounds_cover_the_range_and_nothing_else() {
        assert_eq!(
            key_group_bounds(&(2..=3)),
            Some((vec![0, 2], Some(vec![0, 4])))
        );
        assert_eq!(
            key_group_bounds(&(0xfffe..=u16::MAX)),
            Some((vec![0xff, 0xfe], None))
        );
        #[expect(
            clippy::reversed_empty_ranges,
            reason = "the empty range is the case under test"
        )]
        let empty = 5..=4;
        assert_eq!(key_group_bounds(&empty), None);
    }

    #[test]
    fn key_group_sorts_before_state_id() {
        let low_group_high_state = encode_key(1, StateId(u16::MAX), b"zzz");
        let high_group_low_state = encode_key(2, StateId(0), b"");
        assert!(low_group_high_state < high_group_low_state);
        assert_eq!(
            &encode_key(0x0102, StateId(0x0304), b"k"),
            &[1, 2, 3, 4, b'k']
        );
    }

    #[test]
    fn decoding_a_short_key_is_a_corrupt_key_error() {
        for len in 0..PREFIX_LEN {
            let err = decode_key(&vec![0; len]).expect_err("too short");
            assert!(matches!(err, Error::CorruptKey { ref key } if key.len() == len));
        }
        assert!(decode_key(&[0; PREFIX_LEN]).is_ok());
    }
}
