//! MIN and MAX. Over an insert-only input a slot keeps just the extreme value, replaced when a
//! row's value compares strictly better with Java's primitive `<`/`>` (so a NaN never replaces
//! and is never replaced, as in Flink's generated code). Over an updating input a slot keeps
//! every value with its row count in an ordered map (Flink's `MinWithRetractAggFunction`), so the
//! extreme can be taken away again; values are keyed as in [`super::distinct`].

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Decimal128Type, Float64Type, Int64Type};

use super::distinct::{I64Key, I128Key, KeyKind, Prep, StrKey, float_from_key, prepared};
use super::result::{ResultKind, put_decimal, put_float, put_int, put_null, put_str};
use super::{Accumulator, Family, NO_SLOT, cast_to, codec};
use crate::error::{Error, Result};

pub(crate) fn create(
    max: bool,
    family: Family,
    input: &DataType,
    kind: ResultKind,
    retractable: bool,
) -> Box<dyn Accumulator> {
    if retractable {
        let prep = Prep::for_family(family, input);
        let float = matches!(family, Family::Float { .. });
        return match family {
            Family::Int | Family::Float { .. } => {
                Box::new(Retractable::<I64Key>::new(max, prep, kind, float))
            }
            Family::Decimal { .. } => Box::new(Retractable::<I128Key>::new(max, prep, kind, false)),
            Family::Str => Box::new(Retractable::<StrKey>::new(max, prep, kind, false)),
        };
    }
    match family {
        Family::Int => Box::new(Extremum::<Int64Type>::new(max, kind, DataType::Int64)),
        Family::Float { .. } => {
            Box::new(Extremum::<Float64Type>::new(max, kind, DataType::Float64))
        }
        Family::Decimal { .. } => {
            Box::new(Extremum::<Decimal128Type>::new(max, kind, input.clone()))
        }
        Family::Str => Box::new(StrExtremum::new(max)),
    }
}

fn not_retractable() -> Error {
    Error::execution(
        "aggregate",
        "MIN/MAX over an insert-only input received a retraction",
    )
}

/// A primitive value MIN/MAX can hold: how it is stored and shown.
pub(crate) trait ExtremumType: ArrowPrimitiveType<Native: PartialOrd> + Send {
    fn put_result(out: &mut Vec<u8>, kind: ResultKind, v: Self::Native);
    fn put(out: &mut Vec<u8>, v: Self::Native);
    fn read(input: &mut &[u8]) -> Result<Self::Native>;
}

impl ExtremumType for Int64Type {
    fn put_result(out: &mut Vec<u8>, kind: ResultKind, v: i64) {
        put_int(out, kind, v);
    }
    fn put(out: &mut Vec<u8>, v: i64) {
        codec::put_i64(out, v);
    }
    fn read(input: &mut &[u8]) -> Result<i64> {
        codec::get_i64(input)
    }
}

impl ExtremumType for Float64Type {
    fn put_result(out: &mut Vec<u8>, kind: ResultKind, v: f64) {
        put_float(out, kind, v);
    }
    fn put(out: &mut Vec<u8>, v: f64) {
        codec::put_f64(out, v);
    }
    fn read(input: &mut &[u8]) -> Result<f64> {
        codec::get_f64(input)
    }
}

impl ExtremumType for Decimal128Type {
    fn put_result(out: &mut Vec<u8>, _kind: ResultKind, v: i128) {
        put_decimal(out, v);
    }
    fn put(out: &mut Vec<u8>, v: i128) {
        codec::put_i128(out, v);
    }
    fn read(input: &mut &[u8]) -> Result<i128> {
        codec::get_i128(input)
    }
}

/// MIN or MAX of primitive values over an insert-only input.
pub(crate) struct Extremum<T: ExtremumType> {
    values: Vec<Option<T::Native>>,
    max: bool,
    kind: ResultKind,
    input: DataType,
}

impl<T: ExtremumType> Extremum<T> {
    fn new(max: bool, kind: ResultKind, input: DataType) -> Self {
        Extremum {
            values: Vec::new(),
            max,
            kind,
            input,
        }
    }

    fn array<'a>(&self, arg: Option<&'a ArrayRef>) -> Result<&'a PrimitiveArray<T>> {
        arg.and_then(|a| a.as_primitive_opt::<T>()).ok_or_else(|| {
            Error::execution(
                "aggregate",
                format!("MIN/MAX expects a prepared {} argument", self.input),
            )
        })
    }

    #[inline]
    fn offer(slot: &mut Option<T::Native>, v: T::Native, max: bool) {
        match slot {
            Some(current) => {
                if (max && v > *current) || (!max && v < *current) {
                    *current = v;
                }
            }
            None => *slot = Some(v),
        }
    }

    fn update_all<const MAX: bool>(&mut self, array: &PrimitiveArray<T>, slots: &[u32]) {
        let values = array.values();
        match array.nulls().filter(|n| n.null_count() > 0) {
            None => {
                for (&slot, &v) in slots.iter().zip(values.iter()) {
                    if slot != NO_SLOT {
                        Self::offer(&mut self.values[slot as usize], v, MAX);
                    }
                }
            }
            Some(nulls) => {
                for (i, (&slot, &v)) in slots.iter().zip(values.iter()).enumerate() {
                    if slot != NO_SLOT && nulls.is_valid(i) {
                        Self::offer(&mut self.values[slot as usize], v, MAX);
                    }
                }
            }
        }
    }
}

impl<T: ExtremumType> Accumulator for Extremum<T> {
    fn prepare(&self, arg: &ArrayRef) -> Result<ArrayRef> {
        cast_to(arg, &self.input)
    }

    fn ensure(&mut self, n: usize) {
        if self.values.len() < n {
            self.values.resize(n, None);
        }
    }

    fn clear(&mut self, slot: u32) {
        self.values[slot as usize] = None;
    }

    fn update_batch(&mut self, arg: Option<&ArrayRef>, slots: &[u32]) -> Result<()> {
        let array = self.array(arg)?;
        // The comparison direction is a constant in each loop.
        if self.max {
            self.update_all::<true>(array, slots);
        } else {
            self.update_all::<false>(array, slots);
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
        if retract {
            return Err(not_retractable());
        }
        let array = self.array(arg)?;
        if array.is_valid(row) {
            Self::offer(&mut self.values[slot as usize], array.value(row), self.max);
        }
        Ok(())
    }

    fn merge(&mut self, dst: u32, src: u32) {
        if let Some(v) = self.values[src as usize] {
            Self::offer(&mut self.values[dst as usize], v, self.max);
        }
    }

    fn write_result(&self, slot: u32, out: &mut Vec<u8>) {
        match self.values[slot as usize] {
            Some(v) => T::put_result(out, self.kind, v),
            None => put_null(out),
        }
    }

    fn write_state(&self, slot: u32, out: &mut Vec<u8>) {
        match self.values[slot as usize] {
            Some(v) => {
                out.push(1);
                T::put(out, v);
            }
            None => out.push(0),
        }
    }

    fn read_state(&mut self, slot: u32, input: &mut &[u8]) -> Result<()> {
        self.values[slot as usize] = if codec::get_u8(input)? != 0 {
            Some(T::read(input)?)
        } else {
            None
        };
        Ok(())
    }
}

/// MIN or MAX of strings over an insert-only input (UTF-8 byte order, as Flink compares).
pub(crate) struct StrExtremum {
    values: Vec<Option<String>>,
    max: bool,
}

impl StrExtremum {
    fn new(max: bool) -> Self {
        StrExtremum {
            values: Vec::new(),
            max,
        }
    }

    #[inline]
    fn offer(slot: &mut Option<String>, v: &str, max: bool) {
        match slot {
            Some(current) => {
                let better = if max {
                    v > current.as_str()
                } else {
                    v < current.as_str()
                };
                if better {
                    current.clear();
                    current.push_str(v);
                }
            }
            None => *slot = Some(v.to_owned()),
        }
    }
}

impl Accumulator for StrExtremum {
    fn prepare(&self, arg: &ArrayRef) -> Result<ArrayRef> {
        cast_to(arg, &DataType::Utf8)
    }

    fn ensure(&mut self, n: usize) {
        if self.values.len() < n {
            self.values.resize(n, None);
        }
    }

    fn clear(&mut self, slot: u32) {
        self.values[slot as usize] = None;
    }

    fn update_batch(&mut self, arg: Option<&ArrayRef>, slots: &[u32]) -> Result<()> {
        let array = prepared::<StrKey>(arg, "MIN/MAX")?;
        for (i, &slot) in slots.iter().enumerate() {
            if slot != NO_SLOT && array.is_valid(i) {
                Self::offer(&mut self.values[slot as usize], array.value(i), self.max);
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
        if retract {
            return Err(not_retractable());
        }
        let array = prepared::<StrKey>(arg, "MIN/MAX")?;
        if array.is_valid(row) {
            Self::offer(&mut self.values[slot as usize], array.value(row), self.max);
        }
        Ok(())
    }

    fn merge(&mut self, dst: u32, src: u32) {
        if dst == src {
            return;
        }
        if let Some(v) = self.values[src as usize].take() {
            Self::offer(&mut self.values[dst as usize], &v, self.max);
            self.values[src as usize] = Some(v);
        }
    }

    fn write_result(&self, slot: u32, out: &mut Vec<u8>) {
        match &self.values[slot as usize] {
            Some(v) => put_str(out, v),
            None => put_null(out),
        }
    }

    fn write_state(&self, slot: u32, out: &mut Vec<u8>) {
        match &self.values[slot as usize] {
            Some(v) => {
                out.push(1);
                codec::put_bytes(out, v.as_bytes());
            }
            None => out.push(0),
        }
    }

    fn read_state(&mut self, slot: u32, input: &mut &[u8]) -> Result<()> {
        self.values[slot as usize] = if codec::get_u8(input)? != 0 {
            Some(codec::get_str(input)?.to_owned())
        } else {
            None
        };
        Ok(())
    }
}

/// MIN or MAX over an updating input: every value with its row count.
pub(crate) struct Retractable<K: KeyKind> {
    maps: Vec<BTreeMap<K::Owned, i64>>,
    max: bool,
    prep: Prep,
    kind: ResultKind,
    /// The `i64` keys are [`super::distinct::float_key`]s of doubles.
    float: bool,
    _kind: PhantomData<K>,
}

impl<K: KeyKind> Retractable<K> {
    fn new(max: bool, prep: Prep, kind: ResultKind, float: bool) -> Self {
        Retractable {
            maps: Vec::new(),
            max,
            prep,
            kind,
            float,
            _kind: PhantomData,
        }
    }

    fn add(map: &mut BTreeMap<K::Owned, i64>, value: &K::Ref, delta: i64) {
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

/// How a retractable accumulator's key is shown as a result.
trait ShowKey: KeyKind {
    fn put_result(out: &mut Vec<u8>, kind: ResultKind, float: bool, key: &Self::Owned);
}

impl ShowKey for I64Key {
    fn put_result(out: &mut Vec<u8>, kind: ResultKind, float: bool, key: &i64) {
        if float {
            put_float(out, kind, float_from_key(*key));
        } else {
            put_int(out, kind, *key);
        }
    }
}

impl ShowKey for I128Key {
    fn put_result(out: &mut Vec<u8>, _kind: ResultKind, _float: bool, key: &i128) {
        put_decimal(out, *key);
    }
}

impl ShowKey for StrKey {
    fn put_result(out: &mut Vec<u8>, _kind: ResultKind, _float: bool, key: &String) {
        put_str(out, key);
    }
}

impl<K: ShowKey> Accumulator for Retractable<K> {
    fn prepare(&self, arg: &ArrayRef) -> Result<ArrayRef> {
        self.prep.apply(arg)
    }

    fn ensure(&mut self, n: usize) {
        if self.maps.len() < n {
            self.maps.resize_with(n, BTreeMap::new);
        }
    }

    fn clear(&mut self, slot: u32) {
        self.maps[slot as usize] = BTreeMap::new();
    }

    fn update_batch(&mut self, arg: Option<&ArrayRef>, slots: &[u32]) -> Result<()> {
        let array = prepared::<K>(arg, "MIN/MAX")?;
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
        let array = prepared::<K>(arg, "MIN/MAX")?;
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
        let map = &self.maps[slot as usize];
        let extreme = if self.max {
            map.last_key_value()
        } else {
            map.first_key_value()
        };
        match extreme {
            Some((key, _)) => K::put_result(out, self.kind, self.float, key),
            None => put_null(out),
        }
    }

    fn write_state(&self, slot: u32, out: &mut Vec<u8>) {
        let map = &self.maps[slot as usize];
        codec::put_u64(out, map.len() as u64);
        for (value, count) in map {
            K::put(out, value);
            codec::put_i64(out, *count);
        }
    }

    fn read_state(&mut self, slot: u32, input: &mut &[u8]) -> Result<()> {
        let n = codec::get_u64(input)? as usize;
        let map = &mut self.maps[slot as usize];
        map.clear();
        for _ in 0..n {
            let value = K::read(input)?;
            let count = codec::get_i64(input)?;
            map.insert(value, count);
        }
        Ok(())
    }
}
