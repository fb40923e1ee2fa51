//! Typed cells for the text formats (CSV and JSON): which column types they carry, how a cell's
//! text becomes a value and back (the forms are in [`super::text`]), and the Arrow builders
//! rows are appended to.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, SchemaRef, TimeUnit,
};

use super::text::{
    base64_decode, base64_encode, format_date, format_decimal, format_f32, format_f64,
    format_timestamp, parse_date, parse_decimal, parse_timestamp,
};
use crate::error::Result;
use crate::types::flink_type_name;

/// A column type the text formats read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Utf8,
    Binary,
    Date,
    /// Stored as Int64 in `unit` while building; `zoned` is TIMESTAMP_LTZ.
    Timestamp {
        unit: TimeUnit,
        zoned: bool,
    },
}

impl Kind {
    /// The kind for a declared column type, or `None` when the text formats cannot carry it.
    pub(crate) fn of(data_type: &DataType) -> Option<Kind> {
        Some(match data_type {
            DataType::Boolean => Kind::Bool,
            DataType::Int8 => Kind::Int8,
            DataType::Int16 => Kind::Int16,
            DataType::Int32 => Kind::Int32,
            DataType::Int64 => Kind::Int64,
            DataType::Float32 => Kind::Float32,
            DataType::Float64 => Kind::Float64,
            DataType::Decimal128(precision, scale) if *scale >= 0 => Kind::Decimal {
                precision: *precision,
                scale: *scale,
            },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Utf8,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Kind::Binary,
            DataType::Date32 => Kind::Date,
            DataType::Timestamp(unit, zone) => Kind::Timestamp {
                unit: *unit,
                zoned: zone.is_some(),
            },
            _ => return None,
        })
    }

    /// The Arrow type values of this kind are built in (cast to the declared type at the end).
    fn build_type(self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int8 => DataType::Int8,
            Kind::Int16 => DataType::Int16,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 | Kind::Timestamp { .. } => DataType::Int64,
            Kind::Float32 => DataType::Float32,
            Kind::Float64 => DataType::Float64,
            Kind::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            Kind::Utf8 => DataType::Utf8,
            Kind::Binary => DataType::Binary,
            Kind::Date => DataType::Date32,
        }
    }
}

/// One cell, parsed (on read) or borrowed from an array (on write).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    /// Any integer kind, already range-checked.
    Int(i64),
    Float32(f32),
    Float64(f64),
    /// The unscaled value at the column's scale.
    Decimal(i128),
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    /// Days since 1970-01-01.
    Date(i32),
    /// In the column's time unit since the epoch.
    Timestamp(i64),
}

impl Value<'_> {
    /// The same value, owning its text or bytes.
    pub(crate) fn into_static(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(v) => Value::Bool(v),
            Value::Int(v) => Value::Int(v),
            Value::Float32(v) => Value::Float32(v),
            Value::Float64(v) => Value::Float64(v),
            Value::Decimal(v) => Value::Decimal(v),
            Value::Str(v) => Value::Str(Cow::Owned(v.into_owned())),
            Value::Bytes(v) => Value::Bytes(Cow::Owned(v.into_owned())),
            Value::Date(v) => Value::Date(v),
            Value::Timestamp(v) => Value::Timestamp(v),
        }
    }
}

/// A value's text for messages: cut short so one bad cell cannot flood a log line.
pub(crate) fn shown(text: &str) -> String {
    const LIMIT: usize = 80;
    match text.char_indices().nth(LIMIT) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// The message for a cell that does not parse.
pub(crate) fn bad_value(column: &str, data_type: &DataType, text: &str, reason: &str) -> String {
    format!(
        "column `{column}`: cannot read '{}' as {}: {reason}",
        shown(text),
        flink_type_name(data_type)
    )
}

/// Parse a cell's text (a CSV field, a JSON string or number token) as `kind`.
/// The error is the reason, for [`bad_value`].
pub(crate) fn parse_text(kind: Kind, text: &str) -> Result<Value<'_>, String> {
    let trimmed = text.trim();
    match kind {
        Kind::Utf8 => Ok(Value::Str(Cow::Borrowed(text))),
        Kind::Bool => {
            if trimmed.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if trimmed.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                Err("expected true or false".into())
            }
        }
        Kind::Int8 => parse_int(trimmed, i8::MIN.into(), i8::MAX.into()),
        Kind::Int16 => parse_int(trimmed, i16::MIN.into(), i16::MAX.into()),
        Kind::Int32 => parse_int(trimmed, i32::MIN.into(), i32::MAX.into()),
        Kind::Int64 => parse_int(trimmed, i64::MIN, i64::MAX),
        Kind::Float32 => trimmed
            .parse::<f32>()
            .map(Value::Float32)
            .map_err(|_| "not a number".into()),
        Kind::Float64 => trimmed
            .parse::<f64>()
            .map(Value::Float64)
            .map_err(|_| "not a number".into()),
        Kind::Decimal { precision, scale } => {
            parse_decimal(trimmed, precision, scale).map(Value::Decimal)
        }
        Kind::Binary => base64_decode(trimmed).map(|b| Value::Bytes(Cow::Owned(b))),
        Kind::Date => parse_date(trimmed).map(Value::Date),
        Kind::Timestamp { unit, .. } => parse_timestamp(trimmed, unit).map(Value::Timestamp),
    }
}

fn parse_int(text: &str, min: i64, max: i64) -> Result<Value<'static>, String> {
    let value: i64 = text.parse().map_err(|_| "not an integer".to_string())?;
    if value < min || value > max {
        return Err(format!("out of range {min}..={max}"));
    }
    Ok(Value::Int(value))
}

/// Builders for a batch of rows of the physical schema.
pub(crate) struct RowBuilder {
    schema: SchemaRef,
    kinds: Vec<Kind>,
    builders: Vec<Builder>,
    rows: usize,
}

enum Builder {
    Bool(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
}

impl RowBuilder {
    /// Builders for `schema`; `kinds` are the columns' kinds (see [`kinds_of`]).
    pub(crate) fn new(schema: SchemaRef, kinds: Vec<Kind>) -> Result<Self> {
        let builders = kinds
            .iter()
            .map(|kind| {
                Ok(match *kind {
                    Kind::Bool => Builder::Bool(BooleanBuilder::new()),
                    Kind::Int8 => Builder::Int8(Int8Builder::new()),
                    Kind::Int16 => Builder::Int16(Int16Builder::new()),
                    Kind::Int32 => Builder::Int32(Int32Builder::new()),
                    Kind::Int64 | Kind::Timestamp { .. } => Builder::Int64(Int64Builder::new()),
                    Kind::Float32 => Builder::Float32(Float32Builder::new()),
                    Kind::Float64 => Builder::Float64(Float64Builder::new()),
                    Kind::Decimal { precision, scale } => Builder::Decimal(
                        Decimal128Builder::new().with_precision_and_scale(precision, scale)?,
                    ),
                    Kind::Utf8 => Builder::Utf8(StringBuilder::new()),
                    Kind::Binary => Builder::Binary(BinaryBuilder::new()),
                    Kind::Date => Builder::Date(Date32Builder::new()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RowBuilder {
            schema,
            kinds,
            builders,
            rows: 0,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Append one row; `row` holds one value per column, each of its column's kind.
    pub(crate) fn append(&mut self, row: &[Value<'_>]) {
        for (builder, value) in self.builders.iter_mut().zip(row) {
            match (builder, value) {
                (Builder::Bool(b), Value::Bool(v)) => b.append_value(*v),
                (Builder::Int8(b), Value::Int(v)) => b.append_value(*v as i8),
                (Builder::Int16(b), Value::Int(v)) => b.append_value(*v as i16),
                (Builder::Int32(b), Value::Int(v)) => b.append_value(*v as i32),
                (Builder::Int64(b), Value::Int(v) | Value::Timestamp(v)) => b.append_value(*v),
                (Builder::Float32(b), Value::Float32(v)) => b.append_value(*v),
                (Builder::Float64(b), Value::Float64(v)) => b.append_value(*v),
                (Builder::Decimal(b), Value::Decimal(v)) => b.append_value(*v),
                (Builder::Utf8(b), Value::Str(v)) => b.append_value(v),
                (Builder::Binary(b), Value::Bytes(v)) => b.append_value(v),
                (Builder::Date(b), Value::Date(v)) => b.append_value(*v),
                (builder, value) => {
                    debug_assert!(
                        matches!(value, Value::Null),
                        "{value:?} in the wrong column"
                    );
                    builder.append_null();
                }
            }
        }
        self.rows += 1;
    }

    /// The rows appended since the last call, as a batch of the declared schema.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let columns = self
            .builders
            .iter_mut()
            .zip(&self.kinds)
            .zip(self.schema.fields())
            .map(|((builder, kind), field)| {
                let built = builder.finish();
                if built.data_type() == field.data_type() {
                    Ok(built)
                } else {
                    debug_assert_eq!(built.data_type(), &kind.build_type());
                    Ok(cast(&built, field.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        self.rows = 0;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl Builder {
    fn append_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::Int8(b) => b.append_null(),
            Builder::Int16(b) => b.append_null(),
            Builder::Int32(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Float32(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Decimal(b) => b.append_null(),
            Builder::Utf8(b) => b.append_null(),
            Builder::Binary(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int8(b) => Arc::new(b.finish()),
            Builder::Int16(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float32(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Decimal(b) => Arc::new(b.finish()),
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Binary(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
        }
    }
}

/// The kinds of a schema's columns, or the first column the text formats cannot carry.
pub(crate) fn kinds_of(schema: &SchemaRef) -> Result<Vec<Kind>, String> {
    schema
        .fields()
        .iter()
        .map(|field| {
            Kind::of(field.data_type()).ok_or_else(|| {
                format!(
                    "column `{}` has type {}, which this format does not support",
                    field.name(),
                    flink_type_name(field.data_type())
                )
            })
        })
        .collect()
}

/// A column of a batch being written, cast to the type its kind is read from.
pub(crate) struct ColumnReader {
    array: ArrayRef,
    kind: Kind,
}

impl ColumnReader {
    pub(crate) fn new(array: &ArrayRef, kind: Kind) -> Result<Self> {
        let wanted = kind.build_type();
        let array = if array.data_type() == &wanted {
            array.clone()
        } else {
            cast(array, &wanted)?
        };
        Ok(ColumnReader { array, kind })
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn value(&self, row: usize) -> Value<'_> {
        let array = &self.array;
        if array.is_null(row) {
            return Value::Null;
        }
        match self.kind {
            Kind::Bool => Value::Bool(array.as_boolean().value(row)),
            Kind::Int8 => Value::Int(array.as_primitive::<Int8Type>().value(row).into()),
            Kind::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(row).into()),
            Kind::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(row).into()),
            Kind::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(row)),
            Kind::Timestamp { .. } => {
                Value::Timestamp(array.as_primitive::<Int64Type>().value(row))
            }
            Kind::Float32 => Value::Float32(array.as_primitive::<Float32Type>().value(row)),
            Kind::Float64 => Value::Float64(array.as_primitive::<Float64Type>().value(row)),
            Kind::Decimal { .. } => {
                Value::Decimal(array.as_primitive::<Decimal128Type>().value(row))
            }
            Kind::Utf8 => Value::Str(Cow::Borrowed(array.as_string::<i32>().value(row))),
            Kind::Binary => Value::Bytes(Cow::Borrowed(array.as_binary::<i32>().value(row))),
            Kind::Date => Value::Date(array.as_primitive::<Date32Type>().value(row)),
        }
    }
}

/// The text of a non-null value as both formats write it (strings as they are, numbers plain);
/// `iso` picks the `T` timestamp form.
pub(crate) fn format_value(value: &Value<'_>, kind: Kind, iso: bool, out: &mut String) {
    use std::fmt::Write;
    match value {
        Value::Null => {}
        Value::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
        Value::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float32(v) => format_f32(*v, out),
        Value::Float64(v) => format_f64(*v, out),
        Value::Decimal(v) => {
            let scale = match kind {
                Kind::Decimal { scale, .. } => scale,
                _ => 0,
            };
            format_decimal(*v, scale, out);
        }
        Value::Str(v) => out.push_str(v),
        Value::Bytes(v) => base64_encode(v, out),
        Value::Date(v) => format_date(i64::from(*v), out),
        Value::Timestamp(v) => {
            if let Kind::Timestamp { unit, zoned } = kind {
                format_timestamp(*v, unit, zoned, iso, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &Value<'_>, kind: Kind) -> String {
        let mut out = String::new();
        format_value(value, kind, false, &mut out);
        out
    }

    const MS: Kind = Kind::Timestamp {
        unit: TimeUnit::Millisecond,
        zoned: false,
    };

    #[test]
    fn timestamps_parse_in_sql_and_iso_form() {
        let sql = parse_text(MS, "2024-02-29 13:45:06.789").unwrap();
        let iso = parse_text(MS, "2024-02-29T13:45:06.789").unwrap();
        assert_eq!(sql, Value::Timestamp(1_709_214_306_789));
        assert_eq!(sql, iso);
        assert_eq!(
            parse_text(MS, "1970-01-01 00:00").unwrap(),
            Value::Timestamp(0)
        );
        assert_eq!(
            parse_text(MS, "1969-12-31 23:59:59.999").unwrap(),
            Value::Timestamp(-1)
        );
        assert!(parse_text(MS, "2023-02-29 00:00:00").is_err());
        assert!(parse_text(MS, "2024-01-01").is_err());
        assert!(parse_text(MS, "2024-01-01 25:00:00").is_err());
    }

    #[test]
    fn timestamps_print_with_the_shortest_fraction_like_flink() {
        assert_eq!(
            text(&Value::Timestamp(1_709_214_306_789), MS),
            "2024-02-29 13:45:06.789"
        );
        assert_eq!(
            text(&Value::Timestamp(1_709_214_306_500), MS),
            "2024-02-29 13:45:06.5"
        );
        assert_eq!(text(&Value::Timestamp(0), MS), "1970-01-01 00:00:00");
        assert_eq!(text(&Value::Timestamp(-1), MS), "1969-12-31 23:59:59.999");
        let ltz = Kind::Timestamp {
            unit: TimeUnit::Millisecond,
            zoned: true,
        };
        assert_eq!(text(&Value::Timestamp(0), ltz), "1970-01-01 00:00:00Z");
        assert_eq!(
            parse_text(ltz, "1970-01-01 00:00:00Z").unwrap(),
            Value::Timestamp(0)
        );
    }

    #[test]
    fn dates_round_trip_across_eras() {
        for days in [-719_528, -1, 0, 1, 11_016, 19_782, 2_932_896] {
            let value = Value::Date(days);
            let printed = text(&value, Kind::Date);
            assert_eq!(
                parse_text(Kind::Date, &printed).unwrap(),
                value,
                "{printed}"
            );
        }
        assert_eq!(text(&Value::Date(0), Kind::Date), "1970-01-01");
    }

    #[test]
    fn decimals_print_with_their_scale() {
        let kind = Kind::Decimal {
            precision: 10,
            scale: 2,
        };
        assert_eq!(text(&Value::Decimal(1250), kind), "12.50");
        assert_eq!(text(&Value::Decimal(-5), kind), "-0.05");
        assert_eq!(text(&Value::Decimal(0), kind), "0.00");
        assert_eq!(parse_text(kind, " 12.5 ").unwrap(), Value::Decimal(1250));
    }

    #[test]
    fn doubles_print_like_java() {
        let f = |v: f64| text(&Value::Float64(v), Kind::Float64);
        assert_eq!(f(1.0), "1.0");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1e7), "1.0E7");
        assert_eq!(f(1.5e-4), "1.5E-4");
        assert_eq!(f(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(text(&Value::Float32(0.1), Kind::Float32), "0.1");
        assert_eq!(
            parse_text(Kind::Float64, "1.0E7").unwrap(),
            Value::Float64(1e7)
        );
        assert_eq!(
            parse_text(Kind::Float64, "-Infinity").unwrap(),
            Value::Float64(f64::NEG_INFINITY)
        );
    }

    #[test]
    fn integers_are_range_checked_per_type() {
        assert_eq!(parse_text(Kind::Int8, " 127 ").unwrap(), Value::Int(127));
        assert!(parse_text(Kind::Int8, "128").is_err());
        assert!(parse_text(Kind::Int32, "1.5").is_err());
    }
}
