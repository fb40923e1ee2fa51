//! Flink's text rendering of values, in its two flavours.
//!
//! - [`format_value`] is `CAST(x AS STRING)` (Flink 1.15+ cast rules): booleans `TRUE`/`FALSE`,
//!   `TIMESTAMP(3)` as `2020-04-15 08:05:00.000` (fraction padded to the precision),
//!   `TIMESTAMP_LTZ(3)` the same in the session zone (Weir runs in UTC), `DECIMAL` as a plain
//!   number with its scale (`90.800`), `DOUBLE` like Java's `Double.toString` (`1.0`, `1.5E10`).
//! - [`format_row`] / [`format_print_value`] are what Flink's `print` connector shows. That sink
//!   does **not** cast: it converts each row to Flink's external `Row` and prints
//!   `Row.toString()` (see `PrintTableSinkFactory.RowDataPrintFunction.invoke`), so every field
//!   appears as its Java class's `toString()`: `null`, `true`/`false`, `LocalDateTime` for
//!   `TIMESTAMP` (`2020-04-15T08:05`, seconds and fraction only when non-zero), `Instant` for
//!   `TIMESTAMP_LTZ` (`2020-04-15T08:05:00Z`), `BigDecimal.toString` for `DECIMAL`, and the
//!   row kind in front: `+I[1, foo, 2020-04-15T08:05]`.
//!
//! Numbers print the same in both: integers in decimal, `FLOAT`/`DOUBLE` by Java's
//! `Float.toString`/`Double.toString` rules (shortest digits that round-trip, plain notation
//! for 10^-3 <= |x| < 10^7 with at least one fraction digit, otherwise `d.dddE±n`).

use std::fmt::Write;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::dataflow::message::{RowKind, row_kinds};

/// Which of Flink's two renderings to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `CAST(x AS STRING)`.
    Cast,
    /// `Row.toString()` of the external conversion classes, as the print sink shows.
    Print,
}

/// Append `CAST(value AS STRING)` of `array[row]` to `out`. A null appends `NULL` (callers that
/// need SQL's null-in, null-out semantics check `is_null` first).
pub fn format_value(array: &dyn Array, row: usize, out: &mut String) {
    write_value(array, row, Style::Cast, out);
}

/// Append `array[row]` as Flink's print sink shows a field (Java `toString()` of the value's
/// external class; `null` for null).
pub fn format_print_value(array: &dyn Array, row: usize, out: &mut String) {
    write_value(array, row, Style::Print, out);
}

/// One row as Flink's print sink shows it: `+I[1, foo, 2020-04-15T08:05]`. The row kind comes
/// from the hidden row-kind column when the batch has one, `+I` otherwise; the hidden column is
/// not printed.
pub fn format_row(batch: &RecordBatch, row: usize) -> String {
    let mut out = String::with_capacity(64);
    write_row(batch, row, &mut out);
    out
}

/// [`format_row`], appending to a caller's buffer.
pub fn write_row(batch: &RecordBatch, row: usize, out: &mut String) {
    let kinds = row_kinds(batch);
    let kind = kinds
        .and_then(|k| RowKind::from_i8(k.value(row)))
        .unwrap_or(RowKind::Insert);
    let visible = batch.num_columns() - usize::from(kinds.is_some());
    out.push_str(kind.short_string());
    out.push('[');
    for (i, column) in batch.columns()[..visible].iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_value(column.as_ref(), row, Style::Print, out);
    }
    out.push(']');
}

fn write_value(array: &dyn Array, row: usize, style: Style, out: &mut String) {
    if array.is_null(row) {
        out.push_str(match style {
            Style::Cast => "NULL",
            Style::Print => "null",
        });
        return;
    }
    // `write!` into a `String` cannot fail.
    match array.data_type() {
        DataType::Boolean => {
            let value = array.as_boolean().value(row);
            out.push_str(match (style, value) {
                (Style::Cast, true) => "TRUE",
                (Style::Cast, false) => "FALSE",
                (Style::Print, true) => "true",
                (Style::Print, false) => "false",
            });
        }
        DataType::Int8 => push_display(out, array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => push_display(out, array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => push_display(out, array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => push_display(out, array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => push_display(out, array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => push_display(out, array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => push_display(out, array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => push_display(out, array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => {
            let value = array.as_primitive::<Float32Type>().value(row);
            write_java_float(value, out);
        }
        DataType::Float64 => {
            let value = array.as_primitive::<Float64Type>().value(row);
            write_java_double(value, out);
        }
        DataType::Decimal128(_, scale) => {
            let value = array.as_primitive::<Decimal128Type>().value(row);
            match style {
                Style::Cast => write_decimal_plain(value, i32::from(*scale), out),
                Style::Print => write_big_decimal(value, i32::from(*scale), out),
            }
        }
        DataType::Utf8 => out.push_str(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => out.push_str(array.as_string::<i64>().value(row)),
        DataType::Utf8View => out.push_str(array.as_string_view().value(row)),
        DataType::Binary => write_bytes(array.as_binary::<i32>().value(row), style, out),
        DataType::LargeBinary => write_bytes(array.as_binary::<i64>().value(row), style, out),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            write_date(i64::from(days), out);
        }
        DataType::Timestamp(unit, zone) => {
            let (seconds, nanos) = match unit {
                TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().value(row), 0),
                TimeUnit::Millisecond => {
                    let v = array.as_primitive::<TimestampMillisecondType>().value(row);
                    (v.div_euclid(1_000), v.rem_euclid(1_000) * 1_000_000)
                }
                TimeUnit::Microsecond => {
                    let v = array.as_primitive::<TimestampMicrosecondType>().value(row);
                    (v.div_euclid(1_000_000), v.rem_euclid(1_000_000) * 1_000)
                }
                TimeUnit::Nanosecond => {
                    let v = array.as_primitive::<TimestampNanosecondType>().value(row);
                    (v.div_euclid(1_000_000_000), v.rem_euclid(1_000_000_000))
                }
            };
            let timestamp = Timestamp { seconds, nanos };
            match style {
                Style::Cast => timestamp.write_sql(*unit, out),
                Style::Print if zone.is_some() => timestamp.write_instant(out),
                Style::Print => timestamp.write_local_date_time(out),
            }
        }
        _ => write_fallback(array, row, out),
    }
}

fn push_display(out: &mut String, value: impl std::fmt::Display) {
    let _ = write!(out, "{value}");
}

/// Types Flink SQL rarely produces here (time, intervals, nested types): Arrow's own rendering.
fn write_fallback(array: &dyn Array, row: usize, out: &mut String) {
    match ArrayFormatter::try_new(array, &FormatOptions::default()) {
        Ok(formatter) => {
            let _ = write!(out, "{}", formatter.value(row));
        }
        Err(_) => {
            let _ = write!(out, "<{}>", array.data_type());
        }
    }
}

/// `BYTES`: the print sink shows Java's `Arrays.toString(byte[])` (signed bytes); a cast
/// decodes UTF-8.
fn write_bytes(bytes: &[u8], style: Style, out: &mut String) {
    match style {
        Style::Cast => out.push_str(&String::from_utf8_lossy(bytes)),
        Style::Print => {
            out.push('[');
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}", *b as i8);
            }
            out.push(']');
        }
    }
}

/// Java's `Double.toString`: shortest round-trip digits; plain for 10^-3 <= |x| < 10^7 with at
/// least one fraction digit (`1.0`, `0.001`, `1234567.5`), else `1.5E10`, `1.0E-5`.
pub fn write_java_double(value: f64, out: &mut String) {
    if let Some(special) = java_special(value.is_nan(), value.is_infinite(), value < 0.0) {
        out.push_str(special);
        return;
    }
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e7).contains(&magnitude) {
        write_java_plain(format_args!("{value}"), out);
    } else {
        write_java_scientific(format_args!("{value:e}"), out);
    }
}

/// Java's `Float.toString`, with the same rules as [`write_java_double`] on `f32` digits.
pub fn write_java_float(value: f32, out: &mut String) {
    if let Some(special) = java_special(value.is_nan(), value.is_infinite(), value < 0.0) {
        out.push_str(special);
        return;
    }
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e7).contains(&magnitude) {
        write_java_plain(format_args!("{value}"), out);
    } else {
        write_java_scientific(format_args!("{value:e}"), out);
    }
}

fn java_special(nan: bool, infinite: bool, negative: bool) -> Option<&'static str> {
    match (nan, infinite, negative) {
        (true, _, _) => Some("NaN"),
        (false, true, true) => Some("-Infinity"),
        (false, true, false) => Some("Infinity"),
        _ => None,
    }
}

/// Rust's `{}` gives the shortest round-trip digits in plain notation (`1`, `-0`, `0.5`);
/// Java always shows a fraction.
fn write_java_plain(digits: std::fmt::Arguments<'_>, out: &mut String) {
    let start = out.len();
    let _ = out.write_fmt(digits);
    if !out[start..].contains('.') {
        out.push_str(".0");
    }
}

/// Rust's `{:e}` gives `1.5e10`, `1e-5`; Java wants `1.5E10`, `1.0E-5`.
fn write_java_scientific(digits: std::fmt::Arguments<'_>, out: &mut String) {
    let text = digits.to_string();
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    out.push_str(mantissa);
    if !mantissa.contains('.') {
        out.push_str(".0");
    }
    out.push('E');
    out.push_str(exponent);
}

/// The digits of `|unscaled|` and whether it is negative.
fn decimal_digits(unscaled: i128) -> (bool, String) {
    (unscaled < 0, unscaled.unsigned_abs().to_string())
}

/// `BigDecimal.toPlainString`: `90.800`, `-0.05`, `1200` for a negative scale.
fn write_decimal_plain(unscaled: i128, scale: i32, out: &mut String) {
    let (negative, digits) = decimal_digits(unscaled);
    if negative {
        out.push('-');
    }
    write_plain_digits(&digits, scale, out);
}

fn write_plain_digits(digits: &str, scale: i32, out: &mut String) {
    if scale <= 0 {
        out.push_str(digits);
        for _ in 0..-scale {
            out.push('0');
        }
        return;
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    } else {
        out.push_str("0.");
        for _ in 0..scale - digits.len() {
            out.push('0');
        }
        out.push_str(digits);
    }
}

/// `BigDecimal.toString`: plain when the scale is non-negative and the adjusted exponent is at
/// least -6, otherwise scientific (`1E-7`, `1.23E+5`).
fn write_big_decimal(unscaled: i128, scale: i32, out: &mut String) {
    let (negative, digits) = decimal_digits(unscaled);
    let adjusted = digits.len() as i64 - 1 - i64::from(scale);
    if negative {
        out.push('-');
    }
    if scale >= 0 && adjusted >= -6 {
        write_plain_digits(&digits, scale, out);
        return;
    }
    let (first, rest) = digits.split_at(1);
    out.push_str(first);
    if !rest.is_empty() {
        out.push('.');
        out.push_str(rest);
    }
    let _ = write!(out, "E{}{}", if adjusted >= 0 { "+" } else { "" }, adjusted);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Java's `LocalDate` year form: four digits, `+` beyond 9999, `-` before year 0.
fn write_year(year: i64, out: &mut String) {
    if year > 9_999 {
        let _ = write!(out, "+{year}");
    } else if year < 0 {
        let _ = write!(out, "-{:04}", -year);
    } else {
        let _ = write!(out, "{year:04}");
    }
}

/// `yyyy-MM-dd` (both renderings).
fn write_date(days: i64, out: &mut String) {
    let (year, month, day) = civil_from_days(days);
    write_year(year, out);
    let _ = write!(out, "-{month:02}-{day:02}");
}

/// A point in time split into whole seconds since the epoch and nanoseconds (0..1e9).
struct Timestamp {
    seconds: i64,
    nanos: i64,
}

impl Timestamp {
    fn write_date_and_minutes(&self, separator: char, out: &mut String) -> i64 {
        let days = self.seconds.div_euclid(86_400);
        let second_of_day = self.seconds.rem_euclid(86_400);
        write_date(days, out);
        let _ = write!(
            out,
            "{separator}{:02}:{:02}",
            second_of_day / 3_600,
            second_of_day / 60 % 60
        );
        second_of_day % 60
    }

    /// `CAST(ts AS STRING)`: `yyyy-MM-dd HH:mm:ss` plus as many fraction digits as the column's
    /// precision (3 for Weir's millisecond `TIMESTAMP(3)`).
    fn write_sql(&self, unit: TimeUnit, out: &mut String) {
        let second = self.write_date_and_minutes(' ', out);
        let _ = write!(out, ":{second:02}");
        match unit {
            TimeUnit::Second => {}
            TimeUnit::Millisecond => {
                let _ = write!(out, ".{:03}", self.nanos / 1_000_000);
            }
            TimeUnit::Microsecond => {
                let _ = write!(out, ".{:06}", self.nanos / 1_000);
            }
            TimeUnit::Nanosecond => {
                let _ = write!(out, ".{:09}", self.nanos);
            }
        }
    }

    /// Java's `LocalDateTime.toString`: `HH:mm`, then `:ss` unless seconds and fraction are
    /// zero, then the fraction in groups of three digits as needed.
    fn write_local_date_time(&self, out: &mut String) {
        let second = self.write_date_and_minutes('T', out);
        if second != 0 || self.nanos != 0 {
            let _ = write!(out, ":{second:02}");
            self.write_fraction_groups(out);
        }
    }

    /// Java's `Instant.toString` (ISO-8601 in UTC): seconds always, fraction in groups of
    /// three digits as needed, then `Z`.
    fn write_instant(&self, out: &mut String) {
        let second = self.write_date_and_minutes('T', out);
        let _ = write!(out, ":{second:02}");
        self.write_fraction_groups(out);
        out.push('Z');
    }

    fn write_fraction_groups(&self, out: &mut String) {
        let nanos = self.nanos;
        if nanos == 0 {
        } else if nanos % 1_000_000 == 0 {
            let _ = write!(out, ".{:03}", nanos / 1_000_000);
        } else if nanos % 1_000 == 0 {
            let _ = write!(out, ".{:06}", nanos / 1_000);
        } else {
            let _ = write!(out, ".{nanos:09}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
        Int8Array, Int32Array, StringArray, TimestampMillisecondArray,
    };
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::dataflow::message::ROW_KIND_COLUMN;

    fn cast(array: &dyn Array, row: usize) -> String {
        let mut out = String::new();
        format_value(array, row, &mut out);
        out
    }

    fn printed(array: &dyn Array, row: usize) -> String {
        let mut out = String::new();
        format_print_value(array, row, &mut out);
        out
    }

    fn double(value: f64) -> String {
        let mut out = String::new();
        write_java_double(value, &mut out);
        out
    }

    #[test]
    fn doubles_render_like_java_double_to_string() {
        let cases = [
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1234567.0, "1234567.0"),
            (9999999.0, "9999999.0"),
            (1e7, "1.0E7"),
            (1.5e10, "1.5E10"),
            (-2.5e-5, "-2.5E-5"),
            (123456789.123, "1.23456789123E8"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (value, expected) in cases {
            assert_eq!(double(value), expected, "{value:?}");
        }
        let mut out = String::new();
        write_java_float(0.1f32, &mut out);
        assert_eq!(out, "0.1");
        out.clear();
        write_java_float(3.0e10f32, &mut out);
        assert_eq!(out, "3.0E10");
    }

    #[test]
    fn cast_to_string_follows_flink_cast_rules() {
        let booleans = BooleanArray::from(vec![Some(true), Some(false), None]);
        assert_eq!(cast(&booleans, 0), "TRUE");
        assert_eq!(cast(&booleans, 1), "FALSE");
        assert_eq!(cast(&booleans, 2), "NULL");

        let ts = TimestampMillisecondArray::from(vec![1_586_937_900_000, 1_586_937_900_007, -1]);
        assert_eq!(cast(&ts, 0), "2020-04-15 08:05:00.000");
        assert_eq!(cast(&ts, 1), "2020-04-15 08:05:00.007");
        assert_eq!(cast(&ts, 2), "1969-12-31 23:59:59.999");
        let ltz = ts.clone().with_timezone("UTC");
        assert_eq!(cast(&ltz, 0), "2020-04-15 08:05:00.000");

        let decimals = Decimal128Array::from(vec![90_800, -5, 0])
            .with_precision_and_scale(10, 3)
            .expect("valid decimal type");
        assert_eq!(cast(&decimals, 0), "90.800");
        assert_eq!(cast(&decimals, 1), "-0.005");
        assert_eq!(cast(&decimals, 2), "0.000");

        let dates = Date32Array::from(vec![18_367, 0, -1]);
        assert_eq!(cast(&dates, 0), "2020-04-15");
        assert_eq!(cast(&dates, 1), "1970-01-01");
        assert_eq!(cast(&dates, 2), "1969-12-31");

        assert_eq!(cast(&Float64Array::from(vec![1.5e10]), 0), "1.5E10");
        assert_eq!(cast(&Float32Array::from(vec![2.0f32]), 0), "2.0");
        assert_eq!(cast(&Int8Array::from(vec![-7i8]), 0), "-7");
    }

    #[test]
    fn print_values_are_java_to_string_of_external_classes() {
        let booleans = BooleanArray::from(vec![Some(true), None]);
        assert_eq!(printed(&booleans, 0), "true");
        assert_eq!(printed(&booleans, 1), "null");

        // LocalDateTime.toString drops zero seconds and fraction.
        let ts = TimestampMillisecondArray::from(vec![
            1_586_937_900_000,
            1_586_937_901_000,
            1_586_937_900_120,
        ]);
        assert_eq!(printed(&ts, 0), "2020-04-15T08:05");
        assert_eq!(printed(&ts, 1), "2020-04-15T08:05:01");
        assert_eq!(printed(&ts, 2), "2020-04-15T08:05:00.120");
        // Instant.toString always shows seconds and ends in Z.
        let ltz = ts.with_timezone("UTC");
        assert_eq!(printed(&ltz, 0), "2020-04-15T08:05:00Z");
        assert_eq!(printed(&ltz, 2), "2020-04-15T08:05:00.120Z");

        let decimals = Decimal128Array::from(vec![90_800, 1, 0])
            .with_precision_and_scale(20, 3)
            .expect("valid decimal type");
        assert_eq!(printed(&decimals, 0), "90.800");
        assert_eq!(printed(&decimals, 1), "0.001");
        let tiny = Decimal128Array::from(vec![1, 0])
            .with_precision_and_scale(20, 8)
            .expect("valid decimal type");
        assert_eq!(printed(&tiny, 0), "1E-8");
        assert_eq!(printed(&tiny, 1), "0E-8");
    }

    #[test]
    fn print_formats_a_changelog_batch_as_flink_does() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("ts", crate::types::timestamp_type(), true),
            Field::new(ROW_KIND_COLUMN, DataType::Int8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![Some(1), Some(1), None])),
            Arc::new(StringArray::from(vec![Some("foo"), Some("bar"), None])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_586_937_900_000),
                Some(1_586_937_900_500),
                None,
            ])),
            Arc::new(Int8Array::from(vec![
                RowKind::UpdateBefore as i8,
                RowKind::UpdateAfter as i8,
                RowKind::Delete as i8,
            ])),
        ];
        let batch = RecordBatch::try_new(schema, columns).expect("valid batch");
        let rows: Vec<String> = (0..3).map(|row| format_row(&batch, row)).collect();
        assert_eq!(
            rows,
            [
                "-U[1, foo, 2020-04-15T08:05]",
                "+U[1, bar, 2020-04-15T08:05:00.500]",
                "-D[null, null, null]",
            ]
        );

        let insert_only = batch.project(&[0, 1]).expect("valid projection");
        assert_eq!(format_row(&insert_only, 0), "+I[1, foo]");
    }
}
