//! Flink scalar functions that DataFusion lacks or defines differently, as DataFusion
//! [`ScalarUDF`]s. The planner looks names up here before DataFusion's defaults, so a Flink
//! name (`CONCAT`, `FROM_UNIXTIME`) gets Flink's semantics.
//!
//! - `TO_TIMESTAMP_LTZ(numeric[, precision])`, `TO_TIMESTAMP(string[, format])`,
//!   `DATE_FORMAT(timestamp|string, format)`, `UNIX_TIMESTAMP([string[, format]])`,
//!   `FROM_UNIXTIME(seconds[, format])` — date formats are Java patterns ([`java_format`]);
//! - `CONCAT` (NULL if any argument is NULL; DataFusion skips NULLs), `SPLIT_INDEX`;
//! - `MOD` (DataFusion only has the `%` operator).
//!
//! Not here because DataFusion already matches Flink: `CHAR_LENGTH` (alias of
//! `character_length`), `POWER` (always DOUBLE), `CONCAT_WS` (skips NULLs, NULL separator gives
//! NULL), `IFNULL` (alias of `nvl`).
//!
//! The session time zone is UTC: TIMESTAMP_LTZ values are shown and read as UTC wall-clock
//! time, and strings without an offset are read as UTC.

mod datetime;
mod java_format;
mod math;
mod string;

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use datafusion_common::{Result, ScalarValue, plan_err};
use datafusion_expr::{ColumnarValue, ScalarUDF};

/// Every Flink function of this module, to be looked up by name (case-insensitively) before
/// DataFusion's built-ins.
pub fn flink_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::new_from_impl(datetime::ToTimestampLtz::new())),
        Arc::new(ScalarUDF::new_from_impl(datetime::ToTimestamp::new())),
        Arc::new(ScalarUDF::new_from_impl(datetime::DateFormat::new())),
        Arc::new(ScalarUDF::new_from_impl(datetime::UnixTimestamp::new())),
        Arc::new(ScalarUDF::new_from_impl(datetime::FromUnixtime::new())),
        Arc::new(ScalarUDF::new_from_impl(string::Concat::new())),
        Arc::new(ScalarUDF::new_from_impl(string::SplitIndex::new())),
        Arc::new(ScalarUDF::new_from_impl(math::Mod::new())),
    ]
}

/// Runs `f` over the arguments as arrays of equal length; when every argument is a scalar the
/// result is a scalar too.
fn invoke_arrays(
    args: &[ColumnarValue],
    f: impl FnOnce(&[ArrayRef]) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let all_scalars = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let result = f(&arrays)?;
    if all_scalars {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &result, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(result))
    }
}

/// The coerced type of a string argument: any string type (or NULL) becomes Utf8.
fn string_argument(function: &str, position: usize, data_type: &DataType) -> Result<DataType> {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            Ok(DataType::Utf8)
        }
        other => plan_err!(
            "{function} expects a STRING as argument {position}, got {}",
            crate::types::flink_type_name(other)
        ),
    }
}

/// The coerced type of an integer argument: any integer type (or NULL) becomes `target`.
fn integer_argument(
    function: &str,
    position: usize,
    data_type: &DataType,
    target: DataType,
) -> Result<DataType> {
    if data_type.is_integer() || data_type == &DataType::Null {
        Ok(target)
    } else {
        plan_err!(
            "{function} expects an integer as argument {position}, got {}",
            crate::types::flink_type_name(data_type)
        )
    }
}

fn argument_count(
    function: &str,
    count: usize,
    allowed: std::ops::RangeInclusive<usize>,
) -> Result<()> {
    if allowed.contains(&count) {
        return Ok(());
    }
    let (min, max) = (allowed.start(), allowed.end());
    let expected = if min == max {
        format!("{min}")
    } else {
        format!("{min} to {max}")
    };
    plan_err!("{function} takes {expected} argument(s), got {count}")
}

#[cfg(test)]
mod tests;
