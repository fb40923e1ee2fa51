//! The result encoding: one aggregate value as a null flag (0 = NULL, 1 = a value follows) and
//! the value, laid out by the result type: integers, booleans, dates and timestamps as an `i64`
//! (8 bytes, little-endian, already narrowed to the result type), FLOAT as 4 bytes, DOUBLE as
//! 8, DECIMAL as the unscaled `i128` (16), strings as a varint length and UTF-8.
//!
//! Equal encodings mean equal results, which is how the group aggregate tells whether an update
//! changed a key's result; [`ValueBuilder`] turns a sequence of encoded values into a column.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::DataType;

use super::codec;
use crate::error::{Error, Result};

/// How a result of a given type is encoded (and narrowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResultKind {
    Int8,
    Int16,
    Int32,
    Int64,
    Bool,
    Float32,
    Float64,
    Decimal,
    Str,
}

impl ResultKind {
    pub(crate) fn of(data_type: &DataType) -> Option<ResultKind> {
        Some(match data_type {
            DataType::Int8 => ResultKind::Int8,
            DataType::Int16 => ResultKind::Int16,
            DataType::Int32 | DataType::Date32 => ResultKind::Int32,
            DataType::Int64 | DataType::Timestamp(_, _) => ResultKind::Int64,
            DataType::Boolean => ResultKind::Bool,
            DataType::Float32 => ResultKind::Float32,
            DataType::Float64 => ResultKind::Float64,
            DataType::Decimal128(_, _) => ResultKind::Decimal,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ResultKind::Str,
            _ => return None,
        })
    }
}

pub(crate) fn put_null(out: &mut Vec<u8>) {
    out.push(0);
}

/// An integer result, narrowed to the result type as Java narrows (`(int) longValue`).
pub(crate) fn put_int(out: &mut Vec<u8>, kind: ResultKind, v: i64) {
    let v = match kind {
        ResultKind::Int8 => i64::from(v as i8),
        ResultKind::Int16 => i64::from(v as i16),
        ResultKind::Int32 => i64::from(v as i32),
        ResultKind::Bool => i64::from(v != 0),
        _ => v,
    };
    out.push(1);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A floating-point result, rounded to FLOAT when that is the result type.
pub(crate) fn put_float(out: &mut Vec<u8>, kind: ResultKind, v: f64) {
    out.push(1);
    if kind == ResultKind::Float32 {
        out.extend_from_slice(&(v as f32).to_le_bytes());
    } else {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

pub(crate) fn put_decimal(out: &mut Vec<u8>, v: i128) {
    out.push(1);
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_str(out: &mut Vec<u8>, v: &str) {
    out.push(1);
    codec::put_bytes(out, v.as_bytes());
}

enum Inner {
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Date32(Date32Builder),
    Int64(Int64Builder),
    Timestamp(TimestampMillisecondBuilder),
    Bool(BooleanBuilder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder),
    Str(StringBuilder),
}

/// Builds a column of `data_type` from values in the result encoding.
pub(crate) struct ValueBuilder {
    data_type: DataType,
    inner: Inner,
}

impl ValueBuilder {
    pub(crate) fn new(data_type: &DataType, capacity: usize) -> Result<ValueBuilder> {
        let inner = match data_type {
            DataType::Int8 => Inner::Int8(Int8Builder::with_capacity(capacity)),
            DataType::Int16 => Inner::Int16(Int16Builder::with_capacity(capacity)),
            DataType::Int32 => Inner::Int32(Int32Builder::with_capacity(capacity)),
            DataType::Date32 => Inner::Date32(Date32Builder::with_capacity(capacity)),
            DataType::Int64 => Inner::Int64(Int64Builder::with_capacity(capacity)),
            DataType::Timestamp(_, tz) => Inner::Timestamp(
                TimestampMillisecondBuilder::with_capacity(capacity).with_timezone_opt(tz.clone()),
            ),
            DataType::Boolean => Inner::Bool(BooleanBuilder::with_capacity(capacity)),
            DataType::Float32 => Inner::Float32(Float32Builder::with_capacity(capacity)),
            DataType::Float64 => Inner::Float64(Float64Builder::with_capacity(capacity)),
            DataType::Decimal128(p, s) => Inner::Decimal(
                Decimal128Builder::with_capacity(capacity).with_precision_and_scale(*p, *s)?,
            ),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                Inner::Str(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            other => {
                return Err(Error::execution(
                    "aggregate",
                    format!("cannot build an aggregate result of type {other}"),
                ));
            }
        };
        Ok(ValueBuilder {
            data_type: data_type.clone(),
            inner,
        })
    }

    /// Append the value at the front of `input` and advance past it.
    pub(crate) fn append(&mut self, input: &mut &[u8]) -> Result<()> {
        let valid = codec::get_u8(input)? != 0;
        macro_rules! int {
            ($builder:expr, $ty:ty) => {{
                if valid {
                    let v = read_i64(input)?;
                    $builder.append_value(v as $ty);
                } else {
                    $builder.append_null();
                }
            }};
        }
        match &mut self.inner {
            Inner::Int8(b) => int!(b, i8),
            Inner::Int16(b) => int!(b, i16),
            Inner::Int32(b) => int!(b, i32),
            Inner::Date32(b) => int!(b, i32),
            Inner::Int64(b) => int!(b, i64),
            Inner::Timestamp(b) => int!(b, i64),
            Inner::Bool(b) => {
                if valid {
                    b.append_value(read_i64(input)? != 0);
                } else {
                    b.append_null();
                }
            }
            Inner::Float32(b) => {
                if valid {
                    b.append_value(codec::get_f32(input)?);
                } else {
                    b.append_null();
                }
            }
            Inner::Float64(b) => {
                if valid {
                    b.append_value(codec::get_f64(input)?);
                } else {
                    b.append_null();
                }
            }
            Inner::Decimal(b) => {
                if valid {
                    b.append_value(codec::get_i128(input)?);
                } else {
                    b.append_null();
                }
            }
            Inner::Str(b) => {
                if valid {
                    b.append_value(codec::get_str(input)?);
                } else {
                    b.append_null();
                }
            }
        }
        Ok(())
    }

    /// The column built so far (the builder is left empty), cast to the requested type when
    /// that is a representation the builders do not produce directly (`Utf8View`, say).
    pub(crate) fn finish(&mut self) -> Result<ArrayRef> {
        let array: ArrayRef = match &mut self.inner {
            Inner::Int8(b) => Arc::new(b.finish()),
            Inner::Int16(b) => Arc::new(b.finish()),
            Inner::Int32(b) => Arc::new(b.finish()),
            Inner::Date32(b) => Arc::new(b.finish()),
            Inner::Int64(b) => Arc::new(b.finish()),
            Inner::Timestamp(b) => Arc::new(b.finish()),
            Inner::Bool(b) => Arc::new(b.finish()),
            Inner::Float32(b) => Arc::new(b.finish()),
            Inner::Float64(b) => Arc::new(b.finish()),
            Inner::Decimal(b) => Arc::new(b.finish()),
            Inner::Str(b) => Arc::new(b.finish()),
        };
        if array.data_type() == &self.data_type {
            Ok(array)
        } else {
            Ok(arrow::compute::cast(&array, &self.data_type)?)
        }
    }
}

fn read_i64(input: &mut &[u8]) -> Result<i64> {
    if input.len() < 8 {
        return Err(Error::execution(
            "aggregate",
            "corrupt aggregate result: truncated integer",
        ));
    }
    let (head, rest) = input.split_at(8);
    *input = rest;
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(head);
    Ok(i64::from_le_bytes(bytes))
}
