//! Flink's date-time conversion functions. The session time zone is UTC.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, StringArray, StringBuilder, TimestampMillisecondArray,
};
use arrow::datatypes::{
    DataType, Decimal128Type, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType,
};
use chrono::{DateTime, NaiveDateTime, Utc};
use datafusion_common::{Result, ScalarValue, exec_err, plan_err};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::java_format::{JavaFormat, parse_default_timestamp};
use super::{argument_count, integer_argument, invoke_arrays, string_argument};
use crate::types::{self, LTZ_ZONE};

/// The earliest and latest instants Flink represents: 0000-01-01 and 9999-12-31 23:59:59.999.
const MIN_EPOCH_MILLIS: i64 = -62_167_219_200_000;
const MAX_EPOCH_MILLIS: i64 = 253_402_300_799_999;

/// The pattern FROM_UNIXTIME and UNIX_TIMESTAMP use without one.
const DEFAULT_FORMAT: &str = "yyyy-MM-dd HH:mm:ss";

fn in_range(millis: i64) -> bool {
    (MIN_EPOCH_MILLIS..=MAX_EPOCH_MILLIS).contains(&millis)
}

/// The per-row format argument of a function, translated once per distinct pattern.
struct Formats<'a> {
    patterns: Option<&'a StringArray>,
    default: Option<Arc<JavaFormat>>,
    cached: Option<(String, Arc<JavaFormat>)>,
    function: &'static str,
}

enum FormatAt {
    /// The function's default: a fixed pattern, or (`None`) Flink's lenient timestamp parser.
    Default,
    Java(Arc<JavaFormat>),
    /// A NULL format: the result is NULL.
    Null,
}

impl<'a> Formats<'a> {
    fn new(
        function: &'static str,
        patterns: Option<&'a ArrayRef>,
        default: Option<&str>,
    ) -> Result<Self> {
        let default = match default {
            Some(pattern) => Some(Arc::new(java_format(function, pattern)?)),
            None => None,
        };
        Ok(Formats {
            patterns: patterns.map(|p| p.as_string::<i32>()),
            default,
            cached: None,
            function,
        })
    }

    fn at(&mut self, row: usize) -> Result<FormatAt> {
        let Some(patterns) = self.patterns else {
            return Ok(FormatAt::Default);
        };
        if patterns.is_null(row) {
            return Ok(FormatAt::Null);
        }
        let pattern = patterns.value(row);
        if let Some((cached, format)) = &self.cached
            && cached == pattern
        {
            return Ok(FormatAt::Java(Arc::clone(format)));
        }
        let format = Arc::new(java_format(self.function, pattern)?);
        self.cached = Some((pattern.to_string(), Arc::clone(&format)));
        Ok(FormatAt::Java(format))
    }

    /// Parses `text` with the row's format (or the default); `None` if it does not parse.
    fn parse(
        &mut self,
        row: usize,
        text: &str,
        allow_trailing: bool,
    ) -> Result<Option<NaiveDateTime>> {
        Ok(match self.at(row)? {
            FormatAt::Null => None,
            FormatAt::Java(format) => format.parse(text, allow_trailing),
            FormatAt::Default => match &self.default {
                Some(format) => format.parse(text, allow_trailing),
                None => parse_default_timestamp(text),
            },
        })
    }

    /// Formats `t` with the row's format (or the default) into `out`; false for a NULL format.
    fn format(&mut self, row: usize, t: NaiveDateTime, out: &mut String) -> Result<bool> {
        let format = match self.at(row)? {
            FormatAt::Null => return Ok(false),
            FormatAt::Java(format) => format,
            FormatAt::Default => match &self.default {
                Some(format) => Arc::clone(format),
                None => return exec_err!("{} needs a format", self.function),
            },
        };
        out.clear();
        let t: DateTime<Utc> = t.and_utc();
        if write!(out, "{}", t.format_with_items(format.items())).is_err() {
            return exec_err!("{}: the date format cannot print this value", self.function);
        }
        Ok(true)
    }
}

fn java_format(function: &str, pattern: &str) -> Result<JavaFormat> {
    match JavaFormat::new(pattern) {
        Ok(format) => Ok(format),
        Err(message) => exec_err!("{function}: {message}"),
    }
}

fn naive_from_millis(millis: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(millis).map(|t| t.naive_utc())
}

/// `TO_TIMESTAMP_LTZ(numeric[, precision])`: epoch seconds (precision 0) or milliseconds
/// (precision 3, the default) as a TIMESTAMP_LTZ(3). Out-of-range values give NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ToTimestampLtz {
    signature: Signature,
}

impl ToTimestampLtz {
    pub(super) fn new() -> Self {
        ToTimestampLtz {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToTimestampLtz {
    fn name(&self) -> &str {
        "to_timestamp_ltz"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        argument_count("TO_TIMESTAMP_LTZ", arg_types.len(), 1..=2)?;
        let value = match &arg_types[0] {
            t if t.is_integer() || t == &DataType::Null => DataType::Int64,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
            DataType::Decimal128(p, s) => DataType::Decimal128(*p, *s),
            DataType::Decimal32(_, s) | DataType::Decimal64(_, s) => DataType::Decimal128(38, *s),
            other => {
                return plan_err!(
                    "TO_TIMESTAMP_LTZ expects a numeric epoch value, got {}",
                    types::flink_type_name(other)
                );
            }
        };
        let mut coerced = vec![value];
        if let Some(precision) = arg_types.get(1) {
            coerced.push(integer_argument(
                "TO_TIMESTAMP_LTZ",
                2,
                precision,
                DataType::Int32,
            )?);
        }
        Ok(coerced)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(types::timestamp_ltz_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let precision = match args.args.get(1) {
            None => Some(3),
            Some(ColumnarValue::Scalar(ScalarValue::Int32(p))) => *p,
            Some(ColumnarValue::Scalar(ScalarValue::Null)) => None,
            Some(_) => {
                return exec_err!("TO_TIMESTAMP_LTZ: the precision must be a constant 0 or 3");
            }
        };
        let Some(precision) = precision else {
            return Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
                None,
                Some(LTZ_ZONE.into()),
            )));
        };
        let factor: i64 = match precision {
            0 => 1000,
            3 => 1,
            p => {
                return exec_err!(
                    "The precision value '{p}' for function TO_TIMESTAMP_LTZ(numeric, precision) \
                     is unsupported, the supported value is '0' for second or '3' for millisecond."
                );
            }
        };
        invoke_arrays(&args.args[..1], |arrays| {
            let values = &arrays[0];
            let millis: TimestampMillisecondArray = match values.data_type() {
                DataType::Int64 => {
                    let values = values.as_primitive::<Int64Type>();
                    if factor == 1 && values.values().iter().all(|&v| in_range(v)) {
                        // Milliseconds already in range (the usual case, as in a `datagen`
                        // table's rowtime) are the result as they are: share the buffer
                        // instead of copying it and building a validity mask row by row.
                        TimestampMillisecondArray::new(
                            values.values().clone(),
                            values.nulls().cloned(),
                        )
                    } else {
                        values.unary_opt(|v| v.checked_mul(factor).filter(|ms| in_range(*ms)))
                    }
                }
                DataType::Float64 => values.as_primitive::<Float64Type>().unary_opt(|v| {
                    let ms = (v * factor as f64).trunc();
                    (ms.is_finite()
                        && ms >= MIN_EPOCH_MILLIS as f64
                        && ms <= MAX_EPOCH_MILLIS as f64)
                        .then_some(ms as i64)
                }),
                DataType::Decimal128(_, scale) => {
                    let scale = u32::try_from(*scale).unwrap_or(0);
                    let divisor = 10i128.checked_pow(scale).unwrap_or(i128::MAX);
                    values.as_primitive::<Decimal128Type>().unary_opt(|v| {
                        // Truncates toward zero, like Java's BigDecimal.longValue().
                        let ms = v.checked_mul(i128::from(factor))? / divisor;
                        i64::try_from(ms).ok().filter(|ms| in_range(*ms))
                    })
                }
                DataType::Null => TimestampMillisecondArray::new_null(values.len()),
                other => return exec_err!("TO_TIMESTAMP_LTZ: unexpected argument type {other}"),
            };
            Ok(Arc::new(millis.with_timezone(LTZ_ZONE)) as ArrayRef)
        })
    }
}

/// `TO_TIMESTAMP(string[, format])`: a TIMESTAMP(3) parsed with a Java pattern, or leniently
/// (`yyyy-MM-dd[ HH:mm[:ss[.fff]]]`) without one. Unparsable strings give NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ToTimestamp {
    signature: Signature,
}

impl ToTimestamp {
    pub(super) fn new() -> Self {
        ToTimestamp {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToTimestamp {
    fn name(&self) -> &str {
        "to_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        argument_count("TO_TIMESTAMP", arg_types.len(), 1..=2)?;
        arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| string_argument("TO_TIMESTAMP", i + 1, t))
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(types::timestamp_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke_arrays(&args.args, |arrays| {
            let texts = arrays[0].as_string::<i32>();
            let mut formats = Formats::new("TO_TIMESTAMP", arrays.get(1), None)?;
            let mut out = Vec::with_capacity(texts.len());
            for (row, text) in texts.iter().enumerate() {
                out.push(match text {
                    Some(text) => formats
                        .parse(row, text, false)?
                        .map(|t| t.and_utc().timestamp_millis()),
                    None => None,
                });
            }
            Ok(Arc::new(TimestampMillisecondArray::from(out)) as ArrayRef)
        })
    }
}

/// `DATE_FORMAT(timestamp | string, format)`: the timestamp (a string is read leniently first)
/// printed with a Java pattern.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct DateFormat {
    signature: Signature,
}

impl DateFormat {
    pub(super) fn new() -> Self {
        DateFormat {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DateFormat {
    fn name(&self) -> &str {
        "date_format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        argument_count("DATE_FORMAT", arg_types.len(), 2..=2)?;
        let value = match &arg_types[0] {
            DataType::Timestamp(_, zone) => {
                DataType::Timestamp(TimeUnit::Millisecond, zone.clone())
            }
            DataType::Date32 | DataType::Date64 => types::timestamp_type(),
            other => string_argument("DATE_FORMAT", 1, other).or_else(|_| {
                plan_err!(
                    "DATE_FORMAT expects a TIMESTAMP or a STRING, got {}",
                    types::flink_type_name(other)
                )
            })?,
        };
        Ok(vec![
            value,
            string_argument("DATE_FORMAT", 2, &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke_arrays(&args.args, |arrays| {
            let values = &arrays[0];
            let mut formats = Formats::new("DATE_FORMAT", arrays.get(1), None)?;
            let instant = |row: usize| -> Option<NaiveDateTime> {
                if values.is_null(row) {
                    return None;
                }
                match values.data_type() {
                    DataType::Timestamp(..) => naive_from_millis(
                        values.as_primitive::<TimestampMillisecondType>().value(row),
                    ),
                    DataType::Utf8 => parse_default_timestamp(values.as_string::<i32>().value(row)),
                    _ => None,
                }
            };
            let mut builder = StringBuilder::with_capacity(values.len(), values.len() * 20);
            let mut text = String::new();
            for row in 0..values.len() {
                match instant(row) {
                    Some(t) if formats.format(row, t, &mut text)? => builder.append_value(&text),
                    _ => builder.append_null(),
                }
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        })
    }
}

/// `UNIX_TIMESTAMP()`: the current epoch second; `UNIX_TIMESTAMP(string[, format])`: the
/// string (default pattern `yyyy-MM-dd HH:mm:ss`) in epoch seconds, or `Long.MIN_VALUE` when it
/// does not parse, as Flink returns.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct UnixTimestamp {
    signature: Signature,
}

impl UnixTimestamp {
    pub(super) fn new() -> Self {
        UnixTimestamp {
            signature: Signature::user_defined(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for UnixTimestamp {
    fn name(&self) -> &str {
        "unix_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        argument_count("UNIX_TIMESTAMP", arg_types.len(), 0..=2)?;
        arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| string_argument("UNIX_TIMESTAMP", i + 1, t))
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.is_empty() {
            return Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(
                Utc::now().timestamp(),
            ))));
        }
        invoke_arrays(&args.args, |arrays| {
            let texts = arrays[0].as_string::<i32>();
            let mut formats = Formats::new("UNIX_TIMESTAMP", arrays.get(1), Some(DEFAULT_FORMAT))?;
            let mut out = Vec::with_capacity(texts.len());
            for (row, text) in texts.iter().enumerate() {
                out.push(match text {
                    Some(text) => {
                        let is_null_format = matches!(formats.at(row)?, FormatAt::Null);
                        if is_null_format {
                            None
                        } else {
                            Some(
                                formats
                                    .parse(row, text, true)?
                                    .map_or(i64::MIN, |t| t.and_utc().timestamp()),
                            )
                        }
                    }
                    None => None,
                });
            }
            Ok(Arc::new(Int64Array::from(out)) as ArrayRef)
        })
    }
}

/// `FROM_UNIXTIME(seconds[, format])`: epoch seconds as a string (default pattern
/// `yyyy-MM-dd HH:mm:ss`). Unlike DataFusion's `from_unixtime`, which returns a timestamp.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct FromUnixtime {
    signature: Signature,
}

impl FromUnixtime {
    pub(super) fn new() -> Self {
        FromUnixtime {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FromUnixtime {
    fn name(&self) -> &str {
        "from_unixtime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        argument_count("FROM_UNIXTIME", arg_types.len(), 1..=2)?;
        let mut coerced = vec![integer_argument(
            "FROM_UNIXTIME",
            1,
            &arg_types[0],
            DataType::Int64,
        )?];
        if let Some(format) = arg_types.get(1) {
            coerced.push(string_argument("FROM_UNIXTIME", 2, format)?);
        }
        Ok(coerced)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke_arrays(&args.args, |arrays| {
            let seconds = arrays[0].as_primitive::<Int64Type>();
            let mut formats = Formats::new("FROM_UNIXTIME", arrays.get(1), Some(DEFAULT_FORMAT))?;
            let mut builder = StringBuilder::with_capacity(seconds.len(), seconds.len() * 19);
            let mut text = String::new();
            for (row, s) in seconds.iter().enumerate() {
                let t = s
                    .and_then(|s| s.checked_mul(1000))
                    .filter(|ms| in_range(*ms))
                    .and_then(naive_from_millis);
                match t {
                    Some(t) if formats.format(row, t, &mut text)? => builder.append_value(&text),
                    _ => builder.append_null(),
                }
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        })
    }
}
