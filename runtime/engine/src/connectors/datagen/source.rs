//! The running datagen source: one instance per parallel subtask, filling each column of a
//! batch in one tight loop straight into a `Vec` that becomes the Arrow buffer.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::{ArrayRef, ArrowPrimitiveType, BooleanArray, Date32Array, PrimitiveArray};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{
    DataType, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    SchemaRef, TimestampMillisecondType,
};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use super::{DatagenSpec, FieldSpec, Generator};
use crate::connectors::generate::{StrColumn, Throttle, below, make_batch, unit_f64};
use crate::connectors::{Source, SourceContext, SourceEvent};
use crate::error::{Error, Result};

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(super) struct DatagenSource {
    schema: SchemaRef,
    /// What is left to generate. A fresh subtask has one split: its own share of the rows
    /// (sequences interleaved over the subtasks). After a restore at another parallelism it
    /// may have several (or none), each resuming where its old subtask stopped.
    splits: VecDeque<Split>,
    batch_size: u64,
    throttle: Option<Throttle>,
}

/// The rows of subtask `subtask` of `parallelism` as first planned, from row `produced` on.
struct Split {
    subtask: u64,
    parallelism: u64,
    /// Rows emitted so far: the split-local index of the next row.
    produced: u64,
    /// Rows still to emit; `None` when unbounded.
    remaining: Option<u64>,
    columns: Vec<ColumnGen>,
}

impl Split {
    /// The next `n` rows of this split, column by column.
    fn take(&mut self, n: usize, now_ms: i64) -> Result<Vec<ArrayRef>> {
        let start = self.produced;
        let arrays = self
            .columns
            .iter_mut()
            .map(|c| c.fill(start, n, now_ms))
            .collect::<Result<Vec<_>>>()?;
        self.produced += n as u64;
        if let Some(remaining) = &mut self.remaining {
            *remaining -= n as u64;
        }
        Ok(arrays)
    }

    /// The checkpointed form: enough to rebuild the split anywhere.
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "subtask": self.subtask,
            "parallelism": self.parallelism,
            "produced": self.produced,
            "remaining": self.remaining,
        })
    }
}

/// The rows `subtask` of `parallelism` emits in total, `None` when unbounded.
fn share_of(spec: &DatagenSpec, subtask: u64, parallelism: u64) -> Option<u64> {
    let share = |total: u128| {
        let p = u128::from(parallelism);
        let count = total / p + u128::from(u128::from(subtask) < total % p);
        u64::try_from(count).unwrap_or(u64::MAX)
    };
    let mut remaining = spec.number_of_rows.map(|n| share(u128::from(n)));
    for field in &spec.fields {
        if let Generator::Sequence { start, end } = field.generator {
            let total = (i128::from(end) - i128::from(start) + 1) as u128;
            let count = share(total);
            remaining = Some(remaining.map_or(count, |r| r.min(count)));
        }
    }
    remaining
}

impl DatagenSource {
    pub(super) fn new(spec: DatagenSpec, ctx: &SourceContext) -> Result<DatagenSource> {
        let parallelism = ctx.parallelism.max(1) as u64;
        let subtask = ctx.subtask as u64;

        // Columns follow the context's schema (the physical columns); seeds follow the
        // column's declared position, so values do not depend on which columns are read.
        let fields = ctx
            .schema
            .fields()
            .iter()
            .map(|f| {
                let (index, field) = spec
                    .fields
                    .iter()
                    .enumerate()
                    .find(|(_, s)| s.name.eq_ignore_ascii_case(f.name()))
                    .ok_or_else(|| {
                        Error::table_options(
                            &spec.table,
                            format!("datagen has no column '{}'", f.name()),
                        )
                    })?;
                if field.data_type != *f.data_type() {
                    return Err(Error::table_options(
                        &spec.table,
                        format!(
                            "column '{}' is read as {} but declared as {}",
                            f.name(),
                            f.data_type(),
                            field.data_type
                        ),
                    ));
                }
                Ok((index, field.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        let split = |subtask: u64, parallelism: u64, produced: u64, remaining: Option<u64>| Split {
            subtask,
            parallelism,
            produced,
            remaining,
            columns: fields
                .iter()
                .map(|(index, field)| ColumnGen::new(field, *index, subtask, parallelism, produced))
                .collect(),
        };
        let splits = match &ctx.restored_splits {
            None => VecDeque::from([split(
                subtask,
                parallelism,
                0,
                share_of(&spec, subtask, parallelism),
            )]),
            Some(restored) => restored
                .iter()
                .map(|value| {
                    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_u64);
                    match (field("subtask"), field("parallelism"), field("produced")) {
                        (Some(s), Some(p), Some(produced)) if p > 0 && s < p => {
                            Ok(split(s, p, produced, field("remaining")))
                        }
                        _ => Err(Error::table_options(
                            &spec.table,
                            format!("the checkpoint holds a datagen position this version cannot read: {value}"),
                        )),
                    }
                })
                .collect::<Result<VecDeque<_>>>()?,
        };

        Ok(DatagenSource {
            schema: Arc::clone(&ctx.schema),
            splits,
            batch_size: ctx.batch_size.max(1) as u64,
            // As Flink's datagen (a Guava rate limiter): after back-pressure or an alignment
            // pause it goes on at the rate, with at most a second's rows stored up.
            throttle: Throttle::new(spec.rows_per_second as f64 / parallelism as f64)
                .map(|t| t.bursting_at_most(Duration::from_secs(1))),
        })
    }
}

impl Source for DatagenSource {
    fn poll_next(&mut self) -> Result<SourceEvent> {
        self.splits.retain(|s| s.remaining != Some(0));
        if self.splits.is_empty() {
            return Ok(SourceEvent::End);
        }
        let mut rows = self.batch_size;
        if self.splits.iter().all(|s| s.remaining.is_some()) {
            let left: u64 = self.splits.iter().filter_map(|s| s.remaining).sum();
            rows = rows.min(left);
        }
        if let Some(throttle) = &mut self.throttle {
            rows = throttle.acquire(rows);
            if rows == 0 {
                return Ok(SourceEvent::Pending);
            }
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if self.splits.len() == 1 {
            let split = &mut self.splits[0];
            let arrays = split.take(rows as usize, now_ms)?;
            return Ok(SourceEvent::Batch(make_batch(
                &self.schema,
                arrays,
                rows as usize,
            )?));
        }
        // Several splits (after a restore at a lower parallelism): merge them in the order a
        // single subtask would have produced their rows — by each row's index in the original
        // interleaving — so event time keeps the order of a failure-free run.
        let mut counts = vec![0u64; self.splits.len()];
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(rows as usize);
        for _ in 0..rows {
            let next = self
                .splits
                .iter()
                .enumerate()
                .filter(|(i, s)| s.remaining.is_none_or(|r| counts[*i] < r))
                .min_by_key(|(i, s)| s.subtask + s.parallelism * (s.produced + counts[*i]));
            let Some((i, _)) = next else { break };
            order.push((i, counts[i] as usize));
            counts[i] += 1;
        }
        let parts = self
            .splits
            .iter_mut()
            .zip(&counts)
            .map(|(split, &n)| split.take(n as usize, now_ms))
            .collect::<Result<Vec<_>>>()?;
        let columns = (0..self.schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn arrow::array::Array> =
                    parts.iter().map(|p| p[c].as_ref()).collect();
                arrow::compute::interleave(&arrays, &order).map_err(Error::from)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SourceEvent::Batch(make_batch(
            &self.schema,
            columns,
            order.len(),
        )?))
    }

    fn snapshot_splits(&mut self) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .splits
            .iter()
            .filter(|s| s.remaining != Some(0))
            .map(Split::to_json)
            .collect())
    }
}

/// The generator of one column in one subtask.
struct ColumnGen {
    data_type: DataType,
    generator: Generator,
    null_rate: f64,
    /// Sequence: this subtask's first value; each next row adds `step` (the parallelism).
    first: i64,
    step: i64,
    values: SmallRng,
    nulls: SmallRng,
    /// Random booleans: unused bits of the last random word.
    bits: u64,
    bits_left: u32,
    strings: StrColumn,
}

impl ColumnGen {
    /// `produced`: rows of this split already emitted (after a restore). Sequences continue
    /// exactly; random columns are reseeded from the position (like Flink's, their values are
    /// not reproduced after a restore, only their count).
    fn new(
        field: &FieldSpec,
        index: usize,
        subtask: u64,
        parallelism: u64,
        produced: u64,
    ) -> ColumnGen {
        let seed = (subtask << 32)
            ^ (index as u64)
            ^ 0xDA7A_6E00_0000_0000
            ^ produced.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let first = match field.generator {
            Generator::Sequence { start, .. } => start.wrapping_add(subtask as i64),
            _ => 0,
        };
        ColumnGen {
            data_type: field.data_type.clone(),
            generator: field.generator,
            null_rate: field.null_rate,
            first,
            step: parallelism as i64,
            values: SmallRng::seed_from_u64(seed),
            nulls: SmallRng::seed_from_u64(seed ^ 0x0000_0000_8000_0000),
            bits: 0,
            bits_left: 0,
            strings: StrColumn::with_capacity(0, 0),
        }
    }

    /// `n` values for the rows `start..start + n` of this subtask.
    fn fill(&mut self, start: u64, n: usize, now_ms: i64) -> Result<ArrayRef> {
        let nulls = self.null_mask(n);
        let array: ArrayRef = match self.generator {
            Generator::Sequence { .. } => self.sequence(start, n, nulls)?,
            Generator::Int { min, max } => {
                let rng = &mut self.values;
                let span = (max.wrapping_sub(min) as u64).wrapping_add(1);
                let mut next = move || {
                    let r = rng.next_u64();
                    min.wrapping_add(if span == 0 { r } else { below(r, span) } as i64)
                };
                match self.data_type {
                    DataType::Int8 => primitive::<Int8Type>((0..n).map(|_| next() as i8), nulls),
                    DataType::Int16 => primitive::<Int16Type>((0..n).map(|_| next() as i16), nulls),
                    DataType::Int32 => primitive::<Int32Type>((0..n).map(|_| next() as i32), nulls),
                    _ => primitive::<Int64Type>((0..n).map(|_| next()), nulls),
                }
            }
            Generator::Float { min, max } => {
                let rng = &mut self.values;
                let width = max - min;
                let mut next = move || {
                    let u = unit_f64(rng.next_u64());
                    let v = if width.is_finite() {
                        min + u * width
                    } else {
                        min * (1.0 - u) + max * u
                    };
                    v.min(max)
                };
                match self.data_type {
                    DataType::Float32 => {
                        primitive::<Float32Type>((0..n).map(|_| next() as f32), nulls)
                    }
                    _ => primitive::<Float64Type>((0..n).map(|_| next()), nulls),
                }
            }
            Generator::Decimal { min, max } => {
                let rng = &mut self.values;
                let width = (max - min) as u128;
                let values = (0..n).map(|_| {
                    let r = rng.next_u64();
                    match u64::try_from(width + 1) {
                        Ok(span) => min + i128::from(below(r, span)),
                        Err(_) => (min + (unit_f64(r) * width as f64) as i128).min(max),
                    }
                });
                let array = PrimitiveArray::<Decimal128Type>::new(values.collect(), nulls);
                Arc::new(array.with_data_type(self.data_type.clone()))
            }
            Generator::Bool => {
                let mut words = Vec::with_capacity(n.div_ceil(64));
                let mut filled = 0;
                while filled < n {
                    words.push(self.next_bits(64.min((n - filled) as u32)));
                    filled += 64;
                }
                let values = BooleanBuffer::new(Buffer::from_vec(words), 0, n);
                Arc::new(BooleanArray::new(values, nulls))
            }
            Generator::Hex { length, var_len } => {
                self.hex_strings(n, length, var_len);
                Arc::new(self.strings.finish(nulls)?)
            }
            Generator::PastTimestamp { max_past_ms } => {
                let rng = &mut self.values;
                let span = max_past_ms as u64 + 1;
                let values = (0..n).map(|_| now_ms - below(rng.next_u64(), span) as i64);
                let array =
                    PrimitiveArray::<TimestampMillisecondType>::new(values.collect(), nulls);
                Arc::new(array.with_data_type(self.data_type.clone()))
            }
            Generator::Today => {
                let today = now_ms.div_euclid(86_400_000) as i32;
                Arc::new(Date32Array::new(ScalarBuffer::from(vec![today; n]), nulls))
            }
        };
        Ok(array)
    }

    fn null_mask(&mut self, n: usize) -> Option<NullBuffer> {
        if self.null_rate <= 0.0 {
            return None;
        }
        let rate = self.null_rate;
        let rng = &mut self.nulls;
        // Flink keeps a value when `nextFloat() > nullRate`.
        let valid = BooleanBuffer::collect_bool(n, |_| unit_f64(rng.next_u64()) > rate);
        Some(NullBuffer::new(valid))
    }

    /// The next `count` (1..=64) random bits, low bits first; leftover bits carry over to the
    /// next batch so values do not depend on batch sizes.
    fn next_bits(&mut self, count: u32) -> u64 {
        let mut out = 0u64;
        let mut have = 0u32;
        while have < count {
            if self.bits_left == 0 {
                self.bits = self.values.next_u64();
                self.bits_left = 64;
            }
            let take = (count - have).min(self.bits_left);
            let mask = if take == 64 {
                u64::MAX
            } else {
                (1u64 << take) - 1
            };
            out |= (self.bits & mask) << have;
            self.bits = if take == 64 { 0 } else { self.bits >> take };
            self.bits_left -= take;
            have += take;
        }
        out
    }

    fn hex_strings(&mut self, n: usize, length: usize, var_len: bool) {
        let rng = &mut self.values;
        let strings = &mut self.strings;
        strings.bytes_mut().reserve(n * length);
        for _ in 0..n {
            let len = if var_len && length > 0 {
                1 + below(rng.next_u64(), length as u64) as usize
            } else {
                length
            };
            let bytes = strings.bytes_mut();
            let mut left = len;
            while left > 0 {
                let mut r = rng.next_u64();
                let take = left.min(16);
                for _ in 0..take {
                    bytes.push(HEX[(r & 15) as usize]);
                    r >>= 4;
                }
                left -= take;
            }
            strings.end_row();
        }
    }

    fn sequence(&mut self, start: u64, n: usize, nulls: Option<NullBuffer>) -> Result<ArrayRef> {
        let (first, step) = (self.first, self.step);
        // The true value always fits in i64 (it lies between `start` and `end`), so wrapping
        // arithmetic gives it exactly even when `index * step` alone would overflow.
        let value =
            move |j: usize| first.wrapping_add(((start + j as u64) as i64).wrapping_mul(step));
        let values = (0..n).map(value);
        let array: ArrayRef = match &self.data_type {
            DataType::Int8 => primitive::<Int8Type>(values.map(|v| v as i8), nulls),
            DataType::Int16 => primitive::<Int16Type>(values.map(|v| v as i16), nulls),
            DataType::Int32 => primitive::<Int32Type>(values.map(|v| v as i32), nulls),
            DataType::Int64 => primitive::<Int64Type>(values, nulls),
            DataType::Float32 => primitive::<Float32Type>(values.map(|v| v as f32), nulls),
            DataType::Float64 => primitive::<Float64Type>(values.map(|v| v as f64), nulls),
            DataType::Decimal128(_, scale) => {
                let factor = 10i128.pow(u32::from(scale.unsigned_abs()));
                let unscaled = values.map(|v| i128::from(v) * factor);
                let array = PrimitiveArray::<Decimal128Type>::new(unscaled.collect(), nulls);
                Arc::new(array.with_data_type(self.data_type.clone()))
            }
            _ => {
                for v in values {
                    // Writing to a Vec cannot fail.
                    let _ = write!(self.strings.bytes_mut(), "{v}");
                    self.strings.end_row();
                }
                Arc::new(self.strings.finish(nulls)?)
            }
        };
        Ok(array)
    }
}

fn primitive<T: ArrowPrimitiveType>(
    values: impl Iterator<Item = T::Native>,
    nulls: Option<NullBuffer>,
) -> ArrayRef {
    let values: Vec<T::Native> = values.collect();
    Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::from(values), nulls))
}
