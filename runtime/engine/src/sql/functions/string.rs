//! Flink's string functions whose NULL handling or existence differs from DataFusion's.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Int32Type};
use datafusion_common::Result;
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::{argument_count, integer_argument, invoke_arrays, string_argument};

/// `CONCAT(s1, s2, …)`: NULL if any argument is NULL (DataFusion's `concat` skips NULLs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Concat {
    signature: Signature,
}

impl Concat {
    pub(super) fn new() -> Self {
        Concat {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Concat {
    fn name(&self) -> &str {
        "concat"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        argument_count("CONCAT", arg_types.len(), 1..=usize::MAX)?;
        arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| string_argument("CONCAT", i + 1, t))
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke_arrays(&args.args, |arrays| {
            let strings: Vec<_> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
            let rows = arrays.first().map_or(0, |a| a.len());
            let nulls = strings.iter().fold(None, |acc: Option<NullBuffer>, s| {
                NullBuffer::union(acc.as_ref(), s.nulls())
            });
            let bytes: usize = strings.iter().map(|s| s.value_data().len()).sum();
            let mut builder = StringBuilder::with_capacity(rows, bytes);
            let mut row_text = String::new();
            for row in 0..rows {
                if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    builder.append_null();
                    continue;
                }
                row_text.clear();
                for s in &strings {
                    row_text.push_str(s.value(row));
                }
                builder.append_value(&row_text);
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        })
    }
}

/// `SPLIT_INDEX(str, separator, index)`: the `index`-th (0-based) part of `str` split by the
/// whole `separator` (empty parts kept; an empty separator splits on whitespace). NULL for a
/// negative or out-of-range index, an empty `str`, or any NULL argument.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct SplitIndex {
    signature: Signature,
}

impl SplitIndex {
    pub(super) fn new() -> Self {
        SplitIndex {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn split_index<'s>(text: &'s str, separator: &str, index: i32) -> Option<&'s str> {
    let index = usize::try_from(index).ok()?;
    if text.is_empty() {
        return None;
    }
    if separator.is_empty() {
        text.split(char::is_whitespace).nth(index)
    } else {
        text.split(separator).nth(index)
    }
}

impl ScalarUDFImpl for SplitIndex {
    fn name(&self) -> &str {
        "split_index"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        argument_count("SPLIT_INDEX", arg_types.len(), 3..=3)?;
        Ok(vec![
            string_argument("SPLIT_INDEX", 1, &arg_types[0])?,
            string_argument("SPLIT_INDEX", 2, &arg_types[1])?,
            integer_argument("SPLIT_INDEX", 3, &arg_types[2], DataType::Int32)?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke_arrays(&args.args, |arrays| {
            let texts = arrays[0].as_string::<i32>();
            let separators = arrays[1].as_string::<i32>();
            let indexes = arrays[2].as_primitive::<Int32Type>();
            let mut builder = StringBuilder::with_capacity(texts.len(), texts.value_data().len());
            for row in 0..texts.len() {
                let part = (texts.is_valid(row)
                    && separators.is_valid(row)
                    && indexes.is_valid(row))
                .then(|| split_index(texts.value(row), separators.value(row), indexes.value(row)))
                .flatten();
                builder.append_option(part);
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_index_counts_from_zero_and_keeps_empty_parts() {
        assert_eq!(split_index("a,b,,c", ",", 0), Some("a"));
        assert_eq!(split_index("a,b,,c", ",", 2), Some(""));
        assert_eq!(split_index("a,b,,c", ",", 3), Some("c"));
        assert_eq!(split_index("a,b,,c", ",", 4), None);
        assert_eq!(split_index("a,b", ",", -1), None);
        assert_eq!(split_index("a::b", "::", 1), Some("b"));
        assert_eq!(split_index("", ",", 0), None);
    }
}
