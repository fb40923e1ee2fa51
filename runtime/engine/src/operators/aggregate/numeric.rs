//! SUM and AVG: a running sum and a count of non-NULL values per slot; NULL while the count is 0.
//!
//! The arithmetic is Flink's: integer sums wrap like Java's (TINYINT..INT sums are kept in an
//! `i64` and narrowed when read, which wraps exactly as summing in the narrow type does; AVG of
//! an integer type sums in BIGINT and divides truncating toward zero); SUM(FLOAT) adds in `f32`,
//! AVG(FLOAT) in `f64`; DECIMAL sums at the result scale and AVG rounds HALF_UP (Flink's
//! `DecimalDataUtils.divide`).

use std::marker::PhantomData;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Float32Type, Float64Type, Int64Type,
};

use super::result::{ResultKind, put_decimal, put_float, put_int, put_null};
use super::{Accumulator, Family, NO_SLOT, cast_to, codec};
use crate::error::{Error, Result};

pub(crate) trait SumKind: Send + 'static {
    type Input: ArrowPrimitiveType;
    type Acc: Copy + Default + Send + 'static;

    fn add(acc: Self::Acc, v: <Self::Input as ArrowPrimitiveType>::Native) -> Self::Acc;
    fn sub(acc: Self::Acc, v: <Self::Input as ArrowPrimitiveType>::Native) -> Self::Acc;
    fn merge(a: Self::Acc, b: Self::Acc) -> Self::Acc;
    fn put(out: &mut Vec<u8>, acc: Self::Acc);
    fn get(input: &mut &[u8]) -> Result<Self::Acc>;
    /// Append the SUM (or AVG over `count > 0` values) in the result encoding.
    fn result(out: &mut Vec<u8>, acc: Self::Acc, count: i64, avg: bool, kind: ResultKind);
}

pub(crate) struct IntSum;

impl SumKind for IntSum {
    type Input = Int64Type;
    type Acc = i64;

    #[inline]
    fn add(acc: i64, v: i64) -> i64 {
        acc.wrapping_add(v)
    }
    #[inline]
    fn sub(acc: i64, v: i64) -> i64 {
        acc.wrapping_sub(v)
    }
    fn merge(a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
    fn put(out: &mut Vec<u8>, acc: i64) {
        codec::put_i64(out, acc);
    }
    fn get(input: &mut &[u8]) -> Result<i64> {
        codec::get_i64(input)
    }
    fn result(out: &mut Vec<u8>, acc: i64, count: i64, avg: bool, kind: ResultKind) {
        // Java's long division truncates toward zero, as Rust's does.
        let v = if avg { acc.wrapping_div(count) } else { acc };
        put_int(out, kind, v);
    }
}

pub(crate) struct F32Sum;

impl SumKind for F32Sum {
    type Input = Float32Type;
    type Acc = f32;

    #[inline]
    fn add(acc: f32, v: f32) -> f32 {
        acc + v
    }
    #[inline]
    fn sub(acc: f32, v: f32) -> f32 {
        acc - v
    }
    fn merge(a: f32, b: f32) -> f32 {
        a + b
    }
    fn put(out: &mut Vec<u8>, acc: f32) {
        codec::put_f32(out, acc);
    }
    fn get(input: &mut &[u8]) -> Result<f32> {
        codec::get_f32(input)
    }
    fn result(out: &mut Vec<u8>, acc: f32, count: i64, avg: bool, kind: ResultKind) {
        let v = if avg {
            f64::from(acc) / count as f64
        } else {
            f64::from(acc)
        };
        put_float(out, kind, v);
    }
}

pub(crate) struct F64Sum;

impl SumKind for F64Sum {
    type Input = Float64Type;
    type Acc = f64;

    #[inline]
    fn add(acc: f64, v: f64) -> f64 {
        acc + v
    }
    #[inline]
    fn sub(acc: f64, v: f64) -> f64 {
        acc - v
    }
    fn merge(a: f64, b: f64) -> f64 {
        a + b
    }
    fn put(out: &mut Vec<u8>, acc: f64) {
        codec::put_f64(out, acc);
    }
    fn get(input: &mut &[u8]) -> Result<f64> {
        codec::get_f64(input)
    }
    fn result(out: &mut Vec<u8>, acc: f64, count: i64, avg: bool, kind: ResultKind) {
        let v = if avg { acc / count as f64 } else { acc };
        put_float(out, kind, v);
    }
}

pub(crate) struct DecimalSum;

impl SumKind for DecimalSum {
    type Input = Decimal128Type;
    type Acc = i128;

    #[inline]
    fn add(acc: i128, v: i128) -> i128 {
        acc.wrapping_add(v)
    }
    #[inline]
    fn sub(acc: i128, v: i128) -> i128 {
        acc.wrapping_sub(v)
    }
    fn merge(a: i128, b: i128) -> i128 {
        a.wrapping_add(b)
    }
    fn put(out: &mut Vec<u8>, acc: i128) {
        codec::put_i128(out, acc);
    }
    fn get(input: &mut &[u8]) -> Result<i128> {
        codec::get_i128(input)
    }
    fn result(out: &mut Vec<u8>, acc: i128, count: i64, avg: bool, _kind: ResultKind) {
        // The sum is already at the result scale (the input is cast to it), so the average is
        // the sum divided by the count, rounded to an integer HALF_UP.
        let v = if avg { div_half_up(acc, count) } else { acc };
        put_decimal(out, v);
    }
}

/// `n / d` rounded half away from zero (Java's `RoundingMode.HALF_UP`); `d > 0`.
pub(crate) fn div_half_up(n: i128, d: i64) -> i128 {
    let d = i128::from(d);
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d { q + n.signum() } else { q }
}

pub(crate) struct SumAcc<K: SumKind> {
    sums: Vec<K::Acc>,
    counts: Vec<i64>,
    avg: bool,
    kind: ResultKind,
    input: DataType,
    _kind: PhantomData<K>,
}

impl<K: SumKind> SumAcc<K> {
    fn boxed(avg: bool, kind: ResultKind, input: DataType) -> Box<dyn Accumulator> {
        Box::new(SumAcc::<K> {
            sums: Vec::new(),
            counts: Vec::new(),
            avg,
            kind,
            input,
            _kind: PhantomData,
        })
    }

    fn values<'a>(
        &self,
        arg: Option<&'a ArrayRef>,
    ) -> Result<&'a arrow::array::PrimitiveArray<K::Input>> {
        arg.and_then(|a| a.as_primitive_opt::<K::Input>())
            .ok_or_else(|| {
                Error::execution(
                    "aggregate",
                    format!(
                        "{} expects a prepared {} argument",
                        if self.avg { "AVG" } else { "SUM" },
                        self.input
                    ),
                )
            })
    }
}

/// SUM or AVG over an argument of `family`/`input` with result type `output`; `None` when the
/// combination is not one Flink has.
pub(crate) fn create(
    avg: bool,
    family: Family,
    input: &DataType,
    output: &DataType,
    kind: ResultKind,
) -> Option<Box<dyn Accumulator>> {
    use ResultKind as R;
    match (family, kind) {
        (Family::Int, R::Int8 | R::Int16 | R::Int32 | R::Int64)
            if matches!(
                input,
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
            ) =>
        {
            Some(SumAcc::<IntSum>::boxed(avg, kind, DataType::Int64))
        }
        (Family::Float { single: true }, R::Float32 | R::Float64) if !avg => {
            Some(SumAcc::<F32Sum>::boxed(avg, kind, DataType::Float32))
        }
        (Family::Float { .. }, R::Float32 | R::Float64) => {
            Some(SumAcc::<F64Sum>::boxed(avg, kind, DataType::Float64))
        }
        (Family::Decimal { scale }, R::Decimal) => match output {
            DataType::Decimal128(_, s) if *s >= scale => Some(SumAcc::<DecimalSum>::boxed(
                avg,
                kind,
                DataType::Decimal128(38, *s),
            )),
            _ => None,
        },
        _ => None,
    }
}

impl<K: SumKind> Accumulator for SumAcc<K> {
    fn prepare(&self, arg: &ArrayRef) -> Result<ArrayRef> {
        cast_to(arg, &self.input)
    }

    fn ensure(&mut self, n: usize) {
        if self.sums.len() < n {
            self.sums.resize(n, K::Acc::default());
            self.counts.resize(n, 0);
        }
    }

    fn clear(&mut self, slot: u32) {
        self.sums[slot as usize] = K::Acc::default();
        self.counts[slot as usize] = 0;
    }

    fn update_batch(&mut self, arg: Option<&ArrayRef>, slots: &[u32]) -> Result<()> {
        let array = self.values(arg)?;
        let values = array.values();
        match array.nulls().filter(|n| n.null_count() > 0) {
            None => {
                for (&slot, &v) in slots.iter().zip(values.iter()) {
                    if slot != NO_SLOT {
                        let s = slot as usize;
                        self.sums[s] = K::add(self.sums[s], v);
                        self.counts[s] += 1;
                    }
                }
            }
            Some(nulls) => {
                for (i, (&slot, &v)) in slots.iter().zip(values.iter()).enumerate() {
                    if slot != NO_SLOT && nulls.is_valid(i) {
                        let s = slot as usize;
                        self.sums[s] = K::add(self.sums[s], v);
                        self.counts[s] += 1;
                    }
                }
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
        let array = self.values(arg)?;
        if array.is_null(row) {
            return Ok(());
        }
        let v = array.value(row);
        let s = slot as usize;
        if retract {
            self.sums[s] = K::sub(self.sums[s], v);
            self.counts[s] -= 1;
        } else {
            self.sums[s] = K::add(self.sums[s], v);
            self.counts[s] += 1;
        }
        Ok(())
    }

    fn merge(&mut self, dst: u32, src: u32) {
        let (d, s) = (dst as usize, src as usize);
        self.sums[d] = K::merge(self.sums[d], self.sums[s]);
        self.counts[d] += self.counts[s];
    }

    fn write_result(&self, slot: u32, out: &mut Vec<u8>) {
        let s = slot as usize;
        if self.counts[s] == 0 {
            put_null(out);
        } else {
            K::result(out, self.sums[s], self.counts[s], self.avg, self.kind);
        }
    }

    fn write_state(&self, slot: u32, out: &mut Vec<u8>) {
        let s = slot as usize;
        codec::put_i64(out, self.counts[s]);
        K::put(out, self.sums[s]);
    }

    fn read_state(&mut self, slot: u32, input: &mut &[u8]) -> Result<()> {
        let s = slot as usize;
        self.counts[s] = codec::get_i64(input)?;
        self.sums[s] = K::get(input)?;
        Ok(())
    }
}
