use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, TimestampMillisecondType};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{Result, ScalarValue};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::flink_functions;
use crate::types;

/// Calls the Flink function `name` the way DataFusion does: coerce, then invoke.
fn call(name: &str, args: Vec<ColumnarValue>) -> Result<ColumnarValue> {
    let udf: Arc<ScalarUDF> = flink_functions()
        .into_iter()
        .find(|f| f.name() == name)
        .expect("function is registered");
    let arg_types: Vec<DataType> = args.iter().map(ColumnarValue::data_type).collect();
    let coerced = udf.coerce_types(&arg_types)?;
    let args = args
        .iter()
        .zip(&coerced)
        .map(|(a, t)| a.cast_to(t, None))
        .collect::<Result<Vec<_>>>()?;
    let number_rows = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    let return_type = udf.return_type(&coerced)?;
    udf.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields: coerced
            .iter()
            .map(|t| Arc::new(Field::new("arg", t.clone(), true)))
            .collect(),
        number_rows,
        return_field: Arc::new(Field::new(name, return_type, true)),
        config_options: Arc::new(ConfigOptions::default()),
    })
}

fn array(value: ColumnarValue) -> ArrayRef {
    match value {
        ColumnarValue::Array(a) => a,
        ColumnarValue::Scalar(s) => s.to_array().expect("scalar to array"),
    }
}

fn col(a: impl Array + 'static) -> ColumnarValue {
    ColumnarValue::Array(Arc::new(a))
}

fn lit(s: ScalarValue) -> ColumnarValue {
    ColumnarValue::Scalar(s)
}

fn utf8(s: &str) -> ColumnarValue {
    lit(ScalarValue::Utf8(Some(s.to_string())))
}

fn strings(value: ColumnarValue) -> Vec<Option<String>> {
    array(value)
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// 2024-03-07 09:05:02.045 UTC.
const MILLIS: i64 = 1_709_802_302_045;

#[test]
fn to_timestamp_ltz_keeps_milliseconds_and_nulls_whether_or_not_all_are_in_range() {
    let in_range = vec![Some(MILLIS), None, Some(-1)];
    let mut out_of_range = in_range.clone();
    out_of_range.push(Some(i64::MAX));
    for values in [in_range, out_of_range] {
        let result = call(
            "to_timestamp_ltz",
            vec![
                col(Int64Array::from(values.clone())),
                lit(ScalarValue::Int32(Some(3))),
            ],
        )
        .expect("to_timestamp_ltz");
        let result = array(result);
        assert_eq!(result.data_type(), &types::timestamp_ltz_type());
        let result: Vec<Option<i64>> = result
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect();
        let expected: Vec<Option<i64>> = values
            .iter()
            .map(|v| v.filter(|&ms| ms != i64::MAX))
            .collect();
        assert_eq!(result, expected);
    }
}

#[test]
fn to_timestamp_ltz_reads_seconds_and_milliseconds_of_any_numeric_type() {
    let seconds = call(
        "to_timestamp_ltz",
        vec![
            col(Int64Array::from(vec![
                Some(1_709_802_302),
                None,
                Some(i64::MAX),
            ])),
            lit(ScalarValue::Int32(Some(0))),
        ],
    )
    .expect("to_timestamp_ltz");
    let seconds = array(seconds);
    assert_eq!(seconds.data_type(), &types::timestamp_ltz_type());
    let seconds = seconds.as_primitive::<TimestampMillisecondType>();
    assert_eq!(seconds.value(0), 1_709_802_302_000);
    assert!(seconds.is_null(1));
    assert!(seconds.is_null(2), "out of range gives NULL");

    let millis = call(
        "to_timestamp_ltz",
        vec![
            col(Int32Array::from(vec![1_500])),
            lit(ScalarValue::Int32(Some(3))),
        ],
    )
    .expect("to_timestamp_ltz");
    assert_eq!(
        array(millis)
            .as_primitive::<TimestampMillisecondType>()
            .value(0),
        1_500
    );

    let decimal = Decimal128Array::from(vec![1_709_802_302_045_i128, -1_500])
        .with_precision_and_scale(16, 3)
        .expect("decimal type");
    let decimal = call(
        "to_timestamp_ltz",
        vec![col(decimal), lit(ScalarValue::Int32(Some(0)))],
    )
    .expect("to_timestamp_ltz");
    let decimal = array(decimal);
    let decimal = decimal.as_primitive::<TimestampMillisecondType>();
    assert_eq!(decimal.value(0), MILLIS);
    assert_eq!(decimal.value(1), -1_500);

    let double = call(
        "to_timestamp_ltz",
        vec![
            col(Float64Array::from(vec![1.5, f64::NAN])),
            lit(ScalarValue::Int32(Some(0))),
        ],
    )
    .expect("to_timestamp_ltz");
    let double = array(double);
    let double = double.as_primitive::<TimestampMillisecondType>();
    assert_eq!(double.value(0), 1_500);
    assert!(double.is_null(1));

    let default_precision = call(
        "to_timestamp_ltz",
        vec![lit(ScalarValue::Int64(Some(MILLIS)))],
    )
    .expect("to_timestamp_ltz");
    assert!(matches!(
        default_precision,
        ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(Some(MILLIS), Some(ref zone)))
            if zone.as_ref() == types::LTZ_ZONE
    ));
}

#[test]
fn to_timestamp_ltz_refuses_precisions_other_than_0_and_3() {
    let error = call(
        "to_timestamp_ltz",
        vec![
            lit(ScalarValue::Int64(Some(1))),
            lit(ScalarValue::Int32(Some(6))),
        ],
    )
    .expect_err("precision 6");
    assert!(error.to_string().contains("precision value '6'"), "{error}");
}

#[test]
fn date_format_prints_timestamps_and_timestamp_strings_with_java_patterns() {
    let timestamps = TimestampMillisecondArray::from(vec![Some(MILLIS), None]);
    let formatted = call(
        "date_format",
        vec![col(timestamps), utf8("yyyy-MM-dd HH:mm:ss.SSS")],
    )
    .expect("date_format");
    assert_eq!(
        strings(formatted),
        vec![Some("2024-03-07 09:05:02.045".to_string()), None]
    );

    let ltz = TimestampMillisecondArray::from(vec![MILLIS]).with_timezone(types::LTZ_ZONE);
    let formatted = call("date_format", vec![col(ltz), utf8("HH:mm")]).expect("date_format");
    assert_eq!(strings(formatted), vec![Some("09:05".to_string())]);

    let text = call(
        "date_format",
        vec![
            col(StringArray::from(vec![
                Some("2024-03-07 09:05:02"),
                Some("garbage"),
            ])),
            utf8("yyyyMMdd"),
        ],
    )
    .expect("date_format");
    assert_eq!(strings(text), vec![Some("20240307".to_string()), None]);
}

#[test]
fn to_timestamp_parses_leniently_by_default_and_strictly_with_a_format() {
    let parsed = call(
        "to_timestamp",
        vec![col(StringArray::from(vec![
            Some("2024-03-07 09:05:02.045"),
            Some("2024-03-07"),
            Some("nope"),
            None,
        ]))],
    )
    .expect("to_timestamp");
    let parsed = array(parsed);
    assert_eq!(parsed.data_type(), &types::timestamp_type());
    let parsed = parsed.as_primitive::<TimestampMillisecondType>();
    assert_eq!(parsed.value(0), MILLIS);
    assert_eq!(parsed.value(1), 1_709_769_600_000);
    assert!(parsed.is_null(2) && parsed.is_null(3));

    let formatted = call(
        "to_timestamp",
        vec![utf8("07/03/2024 09:05"), utf8("dd/MM/yyyy HH:mm")],
    )
    .expect("to_timestamp");
    assert!(matches!(
        formatted,
        ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
            Some(1_709_802_300_000),
            None
        ))
    ));
}

#[test]
fn unix_timestamp_gives_seconds_or_long_min_value_when_unparsable() {
    let seconds = call(
        "unix_timestamp",
        vec![col(StringArray::from(vec![
            Some("2024-03-07 09:05:02"),
            Some("x"),
            None,
        ]))],
    )
    .expect("unix_timestamp");
    let seconds = array(seconds);
    let seconds = seconds.as_primitive::<Int64Type>();
    assert_eq!(seconds.value(0), 1_709_802_302);
    assert_eq!(seconds.value(1), i64::MIN);
    assert!(seconds.is_null(2));

    let with_format =
        call("unix_timestamp", vec![utf8("20240307"), utf8("yyyyMMdd")]).expect("unix_timestamp");
    assert!(matches!(
        with_format,
        ColumnarValue::Scalar(ScalarValue::Int64(Some(1_709_769_600)))
    ));

    let now = call("unix_timestamp", vec![]).expect("unix_timestamp()");
    assert!(matches!(now, ColumnarValue::Scalar(ScalarValue::Int64(Some(s))) if s > 1_700_000_000));
}

#[test]
fn from_unixtime_formats_seconds_as_a_string() {
    let text = call(
        "from_unixtime",
        vec![col(Int64Array::from(vec![Some(1_709_802_302), None]))],
    )
    .expect("from_unixtime");
    assert_eq!(
        strings(text),
        vec![Some("2024-03-07 09:05:02".to_string()), None]
    );
    let text = call(
        "from_unixtime",
        vec![lit(ScalarValue::Int32(Some(0))), utf8("yyyy")],
    )
    .expect("from_unixtime");
    assert_eq!(strings(text), vec![Some("1970".to_string())]);
}

#[test]
fn concat_is_null_when_any_argument_is_null() {
    let joined = call(
        "concat",
        vec![
            col(StringArray::from(vec![Some("a"), Some("b"), None])),
            utf8("-"),
            col(StringArray::from(vec![Some("x"), None, Some("z")])),
        ],
    )
    .expect("concat");
    assert_eq!(strings(joined), vec![Some("a-x".to_string()), None, None]);
}

#[test]
fn split_index_picks_a_part_or_null() {
    let parts = call(
        "split_index",
        vec![
            col(StringArray::from(vec![Some("a,b,c"), Some("a,b,c"), None])),
            utf8(","),
            col(Int32Array::from(vec![1, 5, 0])),
        ],
    )
    .expect("split_index");
    assert_eq!(strings(parts), vec![Some("b".to_string()), None, None]);
}

#[test]
fn mod_keeps_the_sign_of_the_dividend_and_the_type_of_the_divisor() {
    let remainders = call(
        "mod",
        vec![
            col(Int64Array::from(vec![7, -7, 7])),
            col(Int32Array::from(vec![3, 3, -3])),
        ],
    )
    .expect("mod");
    let remainders = array(remainders);
    assert_eq!(remainders.data_type(), &DataType::Int32);
    let remainders = remainders.as_primitive::<Int32Type>();
    assert_eq!(remainders.values().to_vec(), vec![1, -1, 1]);

    let decimal = Decimal128Array::from(vec![755_i128])
        .with_precision_and_scale(5, 2)
        .expect("decimal type");
    let remainder = call("mod", vec![col(decimal), lit(ScalarValue::Int32(Some(2)))]).expect("mod");
    let remainder = array(remainder);
    let DataType::Decimal128(_, scale) = remainder.data_type() else {
        panic!("decimal remainder, got {}", remainder.data_type());
    };
    assert_eq!(*scale, 2);
    assert_eq!(
        remainder
            .as_primitive::<arrow::datatypes::Decimal128Type>()
            .value(0),
        155
    );

    let error = call(
        "mod",
        vec![
            lit(ScalarValue::Int64(Some(1))),
            lit(ScalarValue::Int64(Some(0))),
        ],
    )
    .expect_err("division by zero");
    assert!(
        error.to_string().to_lowercase().contains("divide by zero"),
        "{error}"
    );
}
