//! Aggregate functions — COUNT(*), COUNT, SUM, MIN, MAX, AVG, COUNT(DISTINCT) — with Flink's
//! result types and arithmetic, and the accumulators the window and group aggregates keep.
//!
//! Accumulators are column-wise: an operator gives every group (a window and key, or a key) a
//! *slot*, and slot `i` of every accumulator in an [`Accumulators`] belongs to that group. The
//! window aggregate updates a whole batch at once (one pass per aggregate over a slot per row);
//! the group aggregate updates row by row so its changelog follows the input order.
//!
//! Two byte encodings live here:
//! - the *state* encoding of a slot, written to the state backend when state is spilled or
//!   written through: LEB128 varints (zig-zag for signed numbers), fixed-width little-endian
//!   floats, length-prefixed strings (see [`codec`]);
//! - the *result* encoding of a slot's result values (a null flag, then the value), compared to
//!   tell whether a group's result changed and appended to Arrow builders (see [`result`]).

mod codec;
mod count;
mod distinct;
mod extremum;
mod hash;
mod key_map;
mod keys;
mod numeric;
mod result;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Schema, TimeUnit};

use crate::error::{Error, Result, SqlLocation};
use crate::types::flink_type_name;

pub(crate) use hash::FastMap;
pub(crate) use key_map::KeyMap;
pub(crate) use keys::{GroupKeys, KeyRows, LazyKeyGroups};
pub(crate) use result::ValueBuilder;

/// The aggregate functions Weir runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunction {
    CountStar,
    Count,
    Sum,
    Min,
    Max,
    Avg,
    CountDistinct,
}

impl AggFunction {
    /// The SQL name, for error messages.
    pub fn sql_name(self) -> &'static str {
        match self {
            AggFunction::CountStar => "COUNT(*)",
            AggFunction::Count => "COUNT",
            AggFunction::Sum => "SUM",
            AggFunction::Min => "MIN",
            AggFunction::Max => "MAX",
            AggFunction::Avg => "AVG",
            AggFunction::CountDistinct => "COUNT(DISTINCT)",
        }
    }
}

/// One aggregate call of a query: the function, its input column and its result type.
#[derive(Debug, Clone)]
pub struct AggregateCall {
    pub function: AggFunction,
    /// The input column; `None` for `COUNT(*)`.
    pub arg: Option<usize>,
    pub output_type: DataType,
}

/// Flink's result type of `function` applied to a column of type `arg`:
/// COUNT, COUNT(*) and COUNT(DISTINCT) → BIGINT; SUM of an integer or floating type → that type,
/// SUM(DECIMAL(p, s)) → DECIMAL(38, s); AVG of an integer or floating type → that type,
/// AVG(DECIMAL(p, s)) → DECIMAL(38, max(s, 6)); MIN and MAX → the argument type.
pub fn flink_result_type(function: AggFunction, arg: Option<&DataType>) -> Result<DataType> {
    let unsupported = |arg: Option<&DataType>| {
        let type_name = arg.map_or_else(|| "no argument".to_string(), flink_type_name);
        Error::unsupported(
            SqlLocation::default(),
            format!("{} over {type_name} is not supported", function.sql_name()),
        )
    };
    match function {
        AggFunction::CountStar | AggFunction::Count => Ok(DataType::Int64),
        AggFunction::CountDistinct => match arg.map(Family::of) {
            Some(Some(_)) => Ok(DataType::Int64),
            _ => Err(unsupported(arg)),
        },
        AggFunction::Sum | AggFunction::Avg => match arg {
            Some(
                t @ (DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64),
            ) => Ok(t.clone()),
            Some(DataType::Decimal128(_, s)) if function == AggFunction::Sum => {
                Ok(DataType::Decimal128(38, *s))
            }
            Some(DataType::Decimal128(_, s)) => Ok(DataType::Decimal128(38, (*s).max(6))),
            _ => Err(unsupported(arg)),
        },
        AggFunction::Min | AggFunction::Max => match arg {
            Some(t) if Family::of(t).is_some() => Ok(t.clone()),
            _ => Err(unsupported(arg)),
        },
    }
}

/// How an argument column is held inside an accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Integers, booleans, dates and timestamps, as `i64`.
    Int,
    /// FLOAT and DOUBLE.
    Float { single: bool },
    /// DECIMAL(p, s) as its unscaled `i128`.
    Decimal { scale: i8 },
    /// Strings, as UTF-8.
    Str,
}

impl Family {
    fn of(data_type: &DataType) -> Option<Family> {
        match data_type {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Boolean
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Millisecond, _) => Some(Family::Int),
            DataType::Float32 => Some(Family::Float { single: true }),
            DataType::Float64 => Some(Family::Float { single: false }),
            DataType::Decimal128(_, s) => Some(Family::Decimal { scale: *s }),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Family::Str),
            _ => None,
        }
    }
}

/// Marks a row that goes to no slot in a batch update.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// The per-slot state of one aggregate call, stored column-wise.
pub(crate) trait Accumulator: Send {
    /// Turn the argument column of a batch into the array the update methods read (a cast,
    /// or an order-preserving key transform).
    fn prepare(&self, arg: &ArrayRef) -> Result<ArrayRef>;

    /// Make slots `0..n` addressable; new slots are empty.
    fn ensure(&mut self, n: usize);

    /// Return `slot` to the empty state, freeing what it holds.
    fn clear(&mut self, slot: u32);

    /// Accumulate row `i` of `arg` into slot `slots[i]`, in row order; [`NO_SLOT`] skips a row.
    fn update_batch(&mut self, arg: Option<&ArrayRef>, slots: &[u32]) -> Result<()>;

    /// Accumulate (or, with `retract`, take away) row `row` of `arg` in `slot`.
    fn update_row(
        &mut self,
        arg: Option<&ArrayRef>,
        row: usize,
        slot: u32,
        retract: bool,
    ) -> Result<()>;

    /// Fold the state of `src` into `dst`; `src` is left as it was.
    fn merge(&mut self, dst: u32, src: u32);

    /// Append the result of `slot` in the result encoding.
    fn write_result(&self, slot: u32, out: &mut Vec<u8>);

    /// Append the state of `slot` in the state encoding.
    fn write_state(&self, slot: u32, out: &mut Vec<u8>);

    /// Replace the (empty) state of `slot` with one read from the state encoding.
    fn read_state(&mut self, slot: u32, input: &mut &[u8]) -> Result<()>;
}

/// Build the accumulator of `call` over an argument of type `input`. `retractable` asks for
/// MIN and MAX that can take values away again (they then keep every value with its count).
fn create_accumulator(
    call: &AggregateCall,
    input: Option<&DataType>,
    retractable: bool,
) -> Result<Box<dyn Accumulator>> {
    let function = match (call.function, call.arg) {
        (AggFunction::Count, None) => AggFunction::CountStar,
        (f, _) => f,
    };
    if function == AggFunction::CountStar {
        return Ok(Box::new(count::Count::new(true)));
    }
    let unsupported = || {
        Error::unsupported(
            SqlLocation::default(),
            format!(
                "{} over {} is not supported",
                call.function.sql_name(),
                input.map_or_else(|| "no argument".to_string(), flink_type_name)
            ),
        )
    };
    let Some(input) = input else {
        return Err(unsupported());
    };
    if function == AggFunction::Count {
        return Ok(Box::new(count::Count::new(false)));
    }
    let family = Family::of(input).ok_or_else(unsupported)?;
    let kind = result::ResultKind::of(&call.output_type).ok_or_else(unsupported)?;
    match function {
        AggFunction::CountStar | AggFunction::Count => Ok(Box::new(count::Count::new(false))),
        AggFunction::Sum | AggFunction::Avg => numeric::create(
            function == AggFunction::Avg,
            family,
            input,
            &call.output_type,
            kind,
        )
        .ok_or_else(unsupported),
        AggFunction::Min | AggFunction::Max => Ok(extremum::create(
            function == AggFunction::Max,
            family,
            input,
            kind,
            retractable,
        )),
        AggFunction::CountDistinct => Ok(distinct::create(family, input)),
    }
}

/// Cast `arg` to `target` unless it already has that type.
pub(crate) fn cast_to(arg: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    if arg.data_type() == target {
        Ok(Arc::clone(arg))
    } else {
        Ok(arrow::compute::cast(arg, target)?)
    }
}

/// The accumulators of all aggregate calls of one operator, slot-aligned, with the slot pool.
pub(crate) struct Accumulators {
    calls: Vec<AggregateCall>,
    accs: Vec<Box<dyn Accumulator>>,
    free: Vec<u32>,
    capacity: usize,
    in_use: usize,
}

impl Accumulators {
    /// Accumulators for `calls` over batches of `input` (the schema decides the argument types).
    pub(crate) fn new(calls: &[AggregateCall], input: &Schema, retractable: bool) -> Result<Self> {
        let mut accs = Vec::with_capacity(calls.len());
        for call in calls {
            let arg_type = match call.arg {
                Some(i) => Some(
                    input
                        .fields()
                        .get(i)
                        .ok_or_else(|| {
                            Error::execution(
                                "aggregate",
                                format!(
                                    "{} reads column {i}, but the input has {} columns",
                                    call.function.sql_name(),
                                    input.fields().len()
                                ),
                            )
                        })?
                        .data_type(),
                ),
                None => None,
            };
            accs.push(create_accumulator(call, arg_type, retractable)?);
        }
        Ok(Accumulators {
            calls: calls.to_vec(),
            accs,
            free: Vec::new(),
            capacity: 0,
            in_use: 0,
        })
    }

    /// Slots handed out and not yet released.
    #[cfg(test)]
    pub(crate) fn slots_in_use(&self) -> usize {
        self.in_use
    }

    /// The argument columns of `batch`, prepared for the update methods (one per call).
    pub(crate) fn prepare(&self, batch: &RecordBatch) -> Result<Vec<Option<ArrayRef>>> {
        self.calls
            .iter()
            .zip(&self.accs)
            .map(|(call, acc)| match call.arg {
                Some(i) if i < batch.num_columns() => acc.prepare(batch.column(i)).map(Some),
                Some(i) => Err(Error::execution(
                    "aggregate",
                    format!("argument column {i} is missing from the input batch"),
                )),
                None => Ok(None),
            })
            .collect()
    }

    /// A fresh, empty slot.
    pub(crate) fn alloc(&mut self) -> u32 {
        loop {
            if let Some(slot) = self.free.pop() {
                self.in_use += 1;
                return slot;
            }
            // Grow geometrically so `ensure` runs rarely; hand out low slots first.
            let new_capacity = (self.capacity * 2).max(64);
            for acc in &mut self.accs {
                acc.ensure(new_capacity);
            }
            self.free
                .extend((self.capacity..new_capacity).rev().map(|s| s as u32));
            self.capacity = new_capacity;
        }
    }

    /// Give `slot` back to the pool, emptying it.
    pub(crate) fn release(&mut self, slot: u32) {
        self.clear(slot);
        self.free.push(slot);
        self.in_use -= 1;
    }

    /// Empty `slot` without giving it back.
    pub(crate) fn clear(&mut self, slot: u32) {
        for acc in &mut self.accs {
            acc.clear(slot);
        }
    }

    pub(crate) fn update_batch(&mut self, args: &[Option<ArrayRef>], slots: &[u32]) -> Result<()> {
        for (acc, arg) in self.accs.iter_mut().zip(args) {
            acc.update_batch(arg.as_ref(), slots)?;
        }
        Ok(())
    }

    pub(crate) fn update_row(
        &mut self,
        args: &[Option<ArrayRef>],
        row: usize,
        slot: u32,
        retract: bool,
    ) -> Result<()> {
        for (acc, arg) in self.accs.iter_mut().zip(args) {
            acc.update_row(arg.as_ref(), row, slot, retract)?;
        }
        Ok(())
    }

    pub(crate) fn merge(&mut self, dst: u32, src: u32) {
        for acc in &mut self.accs {
            acc.merge(dst, src);
        }
    }

    /// Append the result of aggregate `index` for `slot` in the result encoding.
    pub(crate) fn write_result(&self, index: usize, slot: u32, out: &mut Vec<u8>) {
        self.accs[index].write_result(slot, out);
    }

    /// Append the results of every aggregate for `slot`, in call order.
    pub(crate) fn write_results(&self, slot: u32, out: &mut Vec<u8>) {
        for acc in &self.accs {
            acc.write_result(slot, out);
        }
    }

    /// Append the state of every aggregate for `slot`.
    pub(crate) fn write_state(&self, slot: u32, out: &mut Vec<u8>) {
        for acc in &self.accs {
            acc.write_state(slot, out);
        }
    }

    /// Read the state of every aggregate into the empty `slot`; returns the unread rest.
    pub(crate) fn read_state<'a>(&mut self, slot: u32, mut input: &'a [u8]) -> Result<&'a [u8]> {
        for acc in &mut self.accs {
            acc.read_state(slot, &mut input)?;
        }
        Ok(input)
    }

    /// Fold a state read from the state encoding into `slot`.
    pub(crate) fn merge_encoded(&mut self, slot: u32, input: &[u8]) -> Result<()> {
        let scratch = self.alloc();
        let result = self.read_state(scratch, input).map(|_| ());
        if result.is_ok() {
            self.merge(slot, scratch);
        }
        self.release(scratch);
        result
    }
}

pub(crate) use codec::{get_i64, put_i64};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
