//! Key groups: the unit in which keyed state is partitioned and redistributed.
//!
//! A key's hash picks one of `max_parallelism` key groups; task i of p owns the contiguous
//! range of key groups Flink's `KeyGroupRangeAssignment` gives it. The hash is our own and
//! fixed (not `std`'s or ahash's, whose output may change between releases), because key groups
//! are persisted in savepoints and must mean the same thing to every later version.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimestampMillisecondType,
};

use crate::error::{Error, Result};

pub type KeyGroup = u16;

/// Largest `maxParallelism` Flink allows (2^15), so a key group fits in a `u16`.
pub const UPPER_BOUND_MAX_PARALLELISM: usize = 1 << 15;

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;
const NULL_HASH: u64 = 0x5bd1_e995_2f3c_91a7;

/// MurmurHash3's 64-bit finaliser: cheap and mixes every input bit into every output bit.
#[inline]
pub fn mix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[inline]
fn combine(acc: u64, value: u64) -> u64 {
    mix64(
        acc ^ value
            .wrapping_add(SEED)
            .wrapping_add(acc << 6)
            .wrapping_add(acc >> 2),
    )
}

/// FNV-1a over bytes, then mixed: stable and good enough for strings as key parts.
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

/// Hash every row of `columns` (the key columns) into `hashes` (one per row, overwritten).
pub fn hash_columns(columns: &[ArrayRef], num_rows: usize) -> Result<Vec<u64>> {
    let mut hashes = vec![SEED; num_rows];
    for column in columns {
        hash_column(column, &mut hashes)?;
    }
    Ok(hashes)
}

macro_rules! hash_primitive {
    ($column:expr, $hashes:expr, $ty:ty, $to_u64:expr) => {{
        let array = $column.as_primitive::<$ty>();
        for (i, h) in $hashes.iter_mut().enumerate() {
            let v = if array.is_null(i) {
                NULL_HASH
            } else {
                $to_u64(array.value(i))
            };
            *h = combine(*h, v);
        }
    }};
}

fn hash_column(column: &ArrayRef, hashes: &mut [u64]) -> Result<()> {
    match column.data_type() {
        DataType::Int8 => hash_primitive!(column, hashes, Int8Type, |v: i8| v as i64 as u64),
        DataType::Int16 => hash_primitive!(column, hashes, Int16Type, |v: i16| v as i64 as u64),
        DataType::Int32 => hash_primitive!(column, hashes, Int32Type, |v: i32| v as i64 as u64),
        DataType::Int64 => hash_primitive!(column, hashes, Int64Type, |v: i64| v as u64),
        DataType::Date32 => hash_primitive!(column, hashes, Date32Type, |v: i32| v as i64 as u64),
        DataType::Timestamp(_, _) => {
            let column = arrow::compute::cast(
                column,
                &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
            )?;
            hash_primitive!(column, hashes, TimestampMillisecondType, |v: i64| v as u64)
        }
        // Normalise -0.0 to 0.0 so equal keys hash equally.
        DataType::Float32 => hash_primitive!(column, hashes, Float32Type, |v: f32| {
            ((v + 0.0) as f64).to_bits()
        }),
        DataType::Float64 => {
            hash_primitive!(column, hashes, Float64Type, |v: f64| (v + 0.0).to_bits())
        }
        DataType::Decimal128(_, _) => {
            hash_primitive!(column, hashes, Decimal128Type, |v: i128| {
                mix64(v as u64) ^ ((v >> 64) as u64)
            })
        }
        DataType::Boolean => {
            let array: &BooleanArray = column.as_boolean();
            for (i, h) in hashes.iter_mut().enumerate() {
                let v = if array.is_null(i) {
                    NULL_HASH
                } else {
                    u64::from(array.value(i)) + 1
                };
                *h = combine(*h, v);
            }
        }
        DataType::Utf8 => {
            let array = column.as_string::<i32>();
            for (i, h) in hashes.iter_mut().enumerate() {
                let v = if array.is_null(i) {
                    NULL_HASH
                } else {
                    hash_bytes(array.value(i).as_bytes())
                };
                *h = combine(*h, v);
            }
        }
        DataType::LargeUtf8 | DataType::Utf8View => {
            let column = arrow::compute::cast(column, &DataType::Utf8)?;
            hash_column(&column, hashes)?;
        }
        DataType::Null => {
            for h in hashes.iter_mut() {
                *h = combine(*h, NULL_HASH);
            }
        }
        other => {
            return Err(Error::execution(
                "keyed exchange",
                format!("cannot partition by a key of type {other}"),
            ));
        }
    }
    Ok(())
}

/// The key group of a key hash.
#[inline]
pub fn key_group(hash: u64, max_parallelism: usize) -> KeyGroup {
    // max_parallelism <= 2^15, so the remainder fits in u16.
    (mix64(hash) % max_parallelism as u64) as KeyGroup
}

/// The subtask that owns `key_group` (Flink's `computeOperatorIndexForKeyGroup`).
#[inline]
pub fn subtask_for_key_group(
    key_group: KeyGroup,
    max_parallelism: usize,
    parallelism: usize,
) -> usize {
    usize::from(key_group) * parallelism / max_parallelism
}

/// The key groups subtask `subtask` of `parallelism` owns: `start..=end`
/// (Flink's `computeKeyGroupRangeForOperatorIndex`).
pub fn key_group_range(
    subtask: usize,
    max_parallelism: usize,
    parallelism: usize,
) -> std::ops::RangeInclusive<KeyGroup> {
    let start = (subtask * max_parallelism).div_ceil(parallelism);
    let end = ((subtask + 1) * max_parallelism - 1) / parallelism;
    (start as KeyGroup)..=(end as KeyGroup)
}

/// `range` cut into at most `parts` contiguous, non-empty ranges of nearly equal length, in
/// order (for work on a key-group range split over threads).
pub fn split_key_groups(
    range: &std::ops::RangeInclusive<KeyGroup>,
    parts: usize,
) -> Vec<std::ops::RangeInclusive<KeyGroup>> {
    if range.is_empty() {
        return Vec::new();
    }
    let len = usize::from(*range.end()) - usize::from(*range.start()) + 1;
    let parts = parts.clamp(1, len);
    (0..parts)
        .map(|i| {
            let r = key_group_range(i, len, parts);
            (*range.start() + *r.start())..=(*range.start() + *r.end())
        })
        .collect()
}

/// Check `max_parallelism` and `parallelism` against each other as Flink does.
pub fn validate_parallelism(parallelism: usize, max_parallelism: usize) -> Result<()> {
    if parallelism == 0 {
        return Err(Error::Config {
            key: "parallelism.default".into(),
            message: "parallelism must be at least 1".into(),
        });
    }
    if max_parallelism == 0 || max_parallelism > UPPER_BOUND_MAX_PARALLELISM {
        return Err(Error::Config {
            key: "pipeline.max-parallelism".into(),
            message: format!(
                "max parallelism must be between 1 and {UPPER_BOUND_MAX_PARALLELISM}, got {max_parallelism}"
            ),
        });
    }
    if parallelism > max_parallelism {
        return Err(Error::Config {
            key: "parallelism.default".into(),
            message: format!(
                "parallelism {parallelism} is larger than the max parallelism {max_parallelism}"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    proptest! {
        #[test]
        fn every_key_group_belongs_to_exactly_the_subtask_whose_range_holds_it(
            max_parallelism in 1usize..=1024,
            parallelism_seed in 1usize..=1024,
        ) {
            let parallelism = 1 + parallelism_seed % max_parallelism;
            let mut covered = 0usize;
            let mut next_start = 0usize;
            for subtask in 0..parallelism {
                let range = key_group_range(subtask, max_parallelism, parallelism);
                prop_assert_eq!(usize::from(*range.start()), next_start, "ranges are contiguous");
                for kg in range.clone() {
                    prop_assert_eq!(subtask_for_key_group(kg, max_parallelism, parallelism), subtask);
                    covered += 1;
                }
                next_start = usize::from(*range.end()) + 1;
            }
            prop_assert_eq!(covered, max_parallelism);
        }

        #[test]
        fn key_groups_are_in_range_and_depend_only_on_the_key(key in any::<i64>(), max_parallelism in 1usize..=32768) {
            let column: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![key, key]));
            let hashes = hash_columns(&[column], 2).unwrap();
            prop_assert_eq!(hashes[0], hashes[1]);
            let kg = key_group(hashes[0], max_parallelism);
            prop_assert!(usize::from(kg) < max_parallelism);
        }

        #[test]
        fn string_keys_hash_like_themselves_not_their_neighbours(a in ".{0,20}", b in ".{0,20}") {
            let column: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![a.clone(), b.clone()]));
            let hashes = hash_columns(&[column], 2).unwrap();
            if a == b { prop_assert_eq!(hashes[0], hashes[1]); }
        }
    }

    #[test]
    fn the_hash_is_stable_across_releases() {
        // Key groups are persisted in savepoints: these values must never change.
        let ints: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![42, -7]));
        let strings: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["weir", ""]));
        let hashes = hash_columns(&[ints, strings], 2).unwrap();
        let groups: Vec<KeyGroup> = hashes.iter().map(|h| key_group(*h, 128)).collect();
        assert_eq!(
            (hashes, groups),
            (
                vec![9_588_244_920_978_536_796, 17_750_564_579_713_561_909],
                vec![122, 7]
            )
        );
    }

    #[test]
    fn split_key_groups_covers_the_range_in_order_without_empty_parts() {
        assert_eq!(split_key_groups(&(0..=127), 2), vec![0..=63, 64..=127]);
        assert_eq!(
            split_key_groups(&(64..=127), 3),
            vec![64..=85, 86..=106, 107..=127]
        );
        assert_eq!(split_key_groups(&(5..=6), 4), vec![5..=5, 6..=6]);
        assert_eq!(split_key_groups(&(9..=9), 0), vec![9..=9]);
        #[allow(clippy::reversed_empty_ranges)]
        let empty = 3..=2;
        assert!(split_key_groups(&empty, 2).is_empty());
    }

    #[test]
    fn parallelism_above_max_parallelism_is_refused() {
        assert!(validate_parallelism(4, 128).is_ok());
        assert!(validate_parallelism(0, 128).is_err());
        assert!(validate_parallelism(200, 128).is_err());
        assert!(validate_parallelism(1, 40000).is_err());
    }
}
