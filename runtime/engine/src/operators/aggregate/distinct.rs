//! COUNT(DISTINCT x): per slot, each distinct non-NULL value with how many rows hold it (so a
//! retraction can take one away); the result is the number of values held.
//!
//! Values are keyed as `i64` (integers, booleans, dates, timestamps; floats through an
//! order-preserving bit transform, so `-0.0` and `0.0` differ and every NaN is one value, as
//! Java's `Double.equals` has it), as the unscaled `i128` of a DECIMAL, or as a string. The same
//! keys serve MIN and MAX over an updating input ([`super::extremum`]).

use std::borrow::Borrow;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};

use super::result::{ResultKind, put_int};
use super::{Accumulator, Family, FastMap, NO_SLOT, cast_to, codec};
use crate::error::{Error, Result};

/// A total order on doubles as `i64`s: Java's `Double.compareTo` (NaNs made one canonical NaN,
/// above +∞; `-0.0` below `0.0`).
pub(crate) fn float_key(v: f64) -> i64 {
    let v = if v.is_nan() { f64::NAN } else { v };
    let bits = v.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// The inverse of [`float_key`].
pub(crate) fn float_from_key(key: i64) -> f64 {
    let bits = key ^ ((((key >> 63) as u64) >> 1) as i64);
    f64::from_bits(bits as u64)
}

/// How an argument column becomes the array a keyed accumulator reads.
#[derive(Debug, Clone)]
pub(crate) enum Prep {
    /// Cast to this type.
    Cast(DataType),
    /// Cast to DOUBLE, then map through [`float_key`] to an `Int64` array.
    FloatKey,
}

impl Prep {
    pub(crate) fn for_family(family: Family, input: &DataType) -> Prep {
        match family {
            Family::Int => Prep::Cast(DataType::Int64),
            Family::Float { .. } => Prep::FloatKey,
            Family::Decimal { .. } => Prep::Cast(input.clone()),
            Family::Str => Prep::Cast(DataType::Utf8),
        }
    }

    pub(crate) fn apply(&self, arg: &ArrayRef) -> Result<ArrayRef> {
        match self {
            Prep::Cast(t) => cast_to(arg, t),
            Prep::FloatKey => {
                let doubles = cast_to(arg, &DataType::Float64)?;
                let keys = doubles
                    .as_primitive::<Float64Type>()
                    .unary::<_, Int64Type>(float_key);
                Ok(Arc::new(keys))
            }
        }
    }
}

/// A value type of a keyed accumulator: how to read it from the prepared array and store it.
pub(crate) trait KeyKind: Send + 'static {
    type Array: Array + 'static;
    type Ref: ?Sized + Ord + Hash;
    type Owned: Borrow<Self::Ref> + Ord + Hash + Eq + Clone + Send + 'static;

    fn downcast(array: &ArrayRef) -> Option<&Self::Array>;
    fn get(array: &Self::Array, i: usize) -> &Self::Ref;
    fn to_owned(value: &Self::Ref) -> Self::Owned;
    fn put(out: &mut Vec<u8>, value: &Self::Owned);
    fn read(input: &mut &[u8]) -> Result<Self::Owned>;
}

pub(crate) struct I64Key;

impl KeyKind for I64Key {
    type Array = Int64Array;
    type Ref = i64;
    type Owned = i64;

    fn downcast(array: &ArrayRef) -> Option<&Int64Array> {
        array.as_primitive_opt::<Int64Type>()
    }
    #[inline]
    fn get(array: &Int64Array, i: usize) -> &i64 {
        &array.values()[i]
    }
    fn to_owned(value: &i64) -> i64 {
        *value
    }
    fn put(out: &mut Vec<u8>, value: &i64) {
        codec::put_i64(out, *value);
    }
    fn read(input: &mut &[u8]) -> Result<i64> {
        codec::get_i64(input)
    }
}

pub(crate) struct I128Key;

impl KeyKind for I128Key {
    type Array = Decimal128Array;
    type Ref = i128;
    type Owned = i128;

    fn downcast(array: &ArrayRef) -> Option<&Decimal128Array> {
        array.as_primitive_opt::<arrow::datatypes::Decimal128Type>()
    }
    #[inline]
    fn get(array: &Decimal128Array, i: usize) -> &i128 {
        &array.values()[i]
    }
    fn to_owned(value: &i128) -> i128 {
        *value
    }
    fn put(out: &mut Vec<u8>, value: &i128) {
        codec::put_i128(out, *value);
    }
    fn read(input: &mut &[u8]) -> Result<i128> {
        codec::get_i128(input)
    }
}

pub(crate) struct StrKey;

impl KeyKind for StrKey {
    type Array = StringArray;
    type Ref = str;
    type Owned = String;

    fn downcast(array: &ArrayRef) -> Option<&StringArray> {
        array.as_string_opt::<i32>()
    }
    #[inline]
    fn get(array: &StringArray, i: usize) -> &str {
        array.value(i)
    }
    fn to_owned(value: &str) -> String {
        value.to_owned()
    }
    fn put(out: &mut Vec<u8>, value: &String) {
        codec::put_bytes(out, value.as_bytes());
    }
    fn read(input: &mut &[u8]) -> Result<String> {
        codec::get_str(input).map(str::to_owned)
    }
}

pub(crate) fn prepared<'a, K: KeyKind>(
    arg: Option<&'a ArrayRef>,
    what: &str,
) -> Result<&'a K::Array> {
    arg.and_then(K::downcast).ok_or_else(|| {
        Error::execution(
            "aggregate",
            format!("{what} got an argument of an unexpected type"),
        )
    })
}

pub(crate) struct Distinct<K: KeyKind> {
    maps: Vec<FastMap<K::Owned, i64>>,
    prep: Prep,
    _kind: PhantomData<K>,
}

pub(crate) fn create(family: Family, input: &DataType) -> Box<dyn Accumulator> {
    let prep = Prep::for_family(family, input);
    match family {
        Family::Int | Family::Float { .. } => Box::new(Distinct::<I64Key>::new(prep)),
        Family::Decimal { .. } => Box::new(Distinct::<I128Key>::new(prep)),
        Family::Str => Box::new(Distinct::<StrKey>::new(prep)),
    }
}

impl<K: KeyKind> Distinct<K> {
    fn new(prep: Prep) -> Self {
        Distinct {
            maps: Vec::new(),
            prep,
            _kind: PhantomData,
        }
    }

    #[inline]
    fn add(map: &mut FastMap<K::Owned, i64>, value: &K::Ref, delta: i64) {
        if let Some(count) = map.get_mut(value) {
            *count += delta;
            if *count == 0 {
                map.remove(value);
            }
        } else if delta != 0 {
            map.insert(K::to_owned(value), delta);
        }
    }
}

impl<K: KeyKind> Accumulator for Distinct<K> {
    fn prepare(&self, arg: &ArrayRef) -> Result<ArrayRef> {
        self.prep.apply(arg)
    }

    fn ensure(&mut self, n: usize) {
        if self.maps.len() < n {
            self.maps.resize_with(n, FastMap::default);
        }
    }

    fn clear(&mut self, slot: u32) {
        self.maps[slot as usize] = FastMap::default();
    }

    fn update_batch(&mut self, arg: Option<&ArrayRef>, slots: &[u32]) -> Result<()> {
        let array = prepared::<K>(arg, "COUNT(DISTINCT)")?;
        for (i, &slot) in slots.iter().enumerate() {
            if slot != NO_SLOT && array.is_valid(i) {
                Self::add(&mut self.maps[slot as usize], K::get(array, i), 1);
            }
        }
        Ok(())
    }

    fn update_row(
        &mut self,
        arg: Option<&ArrayRef>,
        row: usize,
        slot: u32,
        retract: bool,
    ) -> Result<()> {
        let array = prepared::<K>(arg, "COUNT(DISTINCT)")?;
        if array.is_valid(row) {
            let delta = if retract { -1 } else { 1 };
            Self::add(&mut self.maps[slot as usize], K::get(array, row), delta);
        }
        Ok(())
    }

    fn merge(&mut self, dst: u32, src: u32) {
        if dst == src {
            return;
        }
        let source = std::mem::take(&mut self.maps[src as usize]);
        for (value, count) in &source {
            Self::add(&mut self.maps[dst as usize], value.borrow(), *count);
        }
        self.maps[src as usize] = source;
    }

    fn write_result(&self, slot: u32, out: &mut Vec<u8>) {
        put_int(
            out,
            ResultKind::Int64,
            self.maps[slot as usize].len() as i64,
        );
    }

    fn write_state(&self, slot: u32, out: &mut Vec<u8>) {
        let map = &self.maps[slot as usize];
        codec::put_u64(out, map.len() as u64);
        // Sorted, so equal states encode equally.
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (value, count) in entries {
            K::put(out, value);
            codec::put_i64(out, *count);
        }
    }

    fn read_state(&mut self, slot: u32, input: &mut &[u8]) -> Result<()> {
        let n = codec::get_u64(input)? as usize;
        let map = &mut self.maps[slot as usize];
        map.clear();
        map.reserve(n.min(1 << 16));
        for _ in 0..n {
            let value = K::read(input)?;
            let count = codec::get_i64(input)?;
            map.insert(value, count);
        }
        Ok(())
    }
}
