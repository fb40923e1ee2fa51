use std::sync::Arc;

use arrow::array::{
    Array, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int64Array,
    StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::Field;
use arrow::util::display::array_value_to_string;
use proptest::prelude::*;

use super::distinct::{float_from_key, float_key};
use super::numeric::div_half_up;
use super::*;

fn call(function: AggFunction, input: &DataType) -> AggregateCall {
    AggregateCall {
        function,
        arg: (function != AggFunction::CountStar).then_some(0),
        output_type: flink_result_type(function, Some(input)).unwrap(),
    }
}

/// Every row of `column` into one slot; the result as a display string.
fn aggregate(function: AggFunction, column: ArrayRef) -> String {
    let data_type = column.data_type().clone();
    let schema = Schema::new(vec![Field::new("x", data_type.clone(), true)]);
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![column]).unwrap();
    let call = call(function, &data_type);
    let mut accs = Accumulators::new(std::slice::from_ref(&call), &schema, false).unwrap();
    let slot = accs.alloc();
    let args = accs.prepare(&batch).unwrap();
    accs.update_batch(&args, &vec![slot; batch.num_rows()])
        .unwrap();
    show(&accs, slot, &call.output_type)
}

fn show(accs: &Accumulators, slot: u32, data_type: &DataType) -> String {
    let mut buf = Vec::new();
    accs.write_result(0, slot, &mut buf);
    let mut builder = ValueBuilder::new(data_type, 1).unwrap();
    builder.append(&mut buf.as_slice()).unwrap();
    let array = builder.finish().unwrap();
    if array.is_null(0) {
        "NULL".into()
    } else {
        array_value_to_string(array.as_ref(), 0).unwrap()
    }
}

#[test]
fn result_types_follow_flink() {
    use AggFunction::*;
    let cases = [
        (CountStar, None, DataType::Int64),
        (Count, Some(DataType::Utf8), DataType::Int64),
        (CountDistinct, Some(DataType::Int32), DataType::Int64),
        (Sum, Some(DataType::Int8), DataType::Int8),
        (Sum, Some(DataType::Int32), DataType::Int32),
        (Sum, Some(DataType::Float32), DataType::Float32),
        (
            Sum,
            Some(DataType::Decimal128(10, 2)),
            DataType::Decimal128(38, 2),
        ),
        (Avg, Some(DataType::Int16), DataType::Int16),
        (Avg, Some(DataType::Float64), DataType::Float64),
        (
            Avg,
            Some(DataType::Decimal128(10, 2)),
            DataType::Decimal128(38, 6),
        ),
        (
            Avg,
            Some(DataType::Decimal128(20, 8)),
            DataType::Decimal128(38, 8),
        ),
        (Min, Some(DataType::Utf8), DataType::Utf8),
        (Max, Some(DataType::Boolean), DataType::Boolean),
        (Max, Some(DataType::Date32), DataType::Date32),
        (
            Min,
            Some(DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("UTC".into()),
            )),
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        ),
    ];
    for (function, arg, expected) in cases {
        assert_eq!(
            flink_result_type(function, arg.as_ref()).unwrap(),
            expected,
            "{function:?}({arg:?})"
        );
    }
}

#[test]
fn unsupported_argument_types_are_refused_naming_function_and_type() {
    let err = flink_result_type(AggFunction::Sum, Some(&DataType::Utf8)).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("SUM") && message.contains("STRING"),
        "{message}"
    );
    assert!(flink_result_type(AggFunction::Avg, Some(&DataType::Boolean)).is_err());
    assert!(flink_result_type(AggFunction::Max, Some(&DataType::Binary)).is_err());
}

#[test]
fn avg_of_integers_truncates_toward_zero_like_java() {
    let column: ArrayRef = Arc::new(Int64Array::from(vec![-3, -4]));
    assert_eq!(aggregate(AggFunction::Avg, column), "-3");
    let column: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![7, 0, 0]));
    assert_eq!(aggregate(AggFunction::Avg, column), "2");
}

#[test]
fn integer_sums_wrap_in_the_width_of_the_result_type() {
    let column: ArrayRef = Arc::new(arrow::array::Int8Array::from(vec![100, 100]));
    assert_eq!(aggregate(AggFunction::Sum, column), "-56");
    let column: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, 2]));
    assert_eq!(
        aggregate(AggFunction::Sum, column),
        (i64::MIN + 1).to_string()
    );
}

#[test]
fn sum_of_float_adds_in_single_precision_and_avg_in_double() {
    let column: ArrayRef = Arc::new(Float32Array::from(vec![16_777_216.0, 1.0, 1.0]));
    assert_eq!(aggregate(AggFunction::Sum, column.clone()), "16777216.0");
    assert_eq!(aggregate(AggFunction::Avg, column), "5592406.0");
}

#[test]
fn avg_of_decimal_rounds_half_up_at_the_result_scale() {
    let values = Decimal128Array::from(vec![100, 200, 200])
        .with_precision_and_scale(10, 2)
        .unwrap();
    assert_eq!(aggregate(AggFunction::Avg, Arc::new(values)), "1.666667");
    let values = Decimal128Array::from(vec![-100, -200, -200])
        .with_precision_and_scale(10, 2)
        .unwrap();
    assert_eq!(aggregate(AggFunction::Avg, Arc::new(values)), "-1.666667");
    let values = Decimal128Array::from(vec![Some(150), None])
        .with_precision_and_scale(10, 2)
        .unwrap();
    assert_eq!(aggregate(AggFunction::Sum, Arc::new(values)), "1.50");
    assert_eq!(div_half_up(5, 2), 3);
    assert_eq!(div_half_up(-5, 2), -3);
    assert_eq!(div_half_up(4, 3), 1);
    assert_eq!(div_half_up(-4, 3), -1);
}

#[test]
fn all_null_input_gives_null_except_for_counts() {
    let column: ArrayRef = Arc::new(Int64Array::from(vec![None, None]));
    assert_eq!(aggregate(AggFunction::CountStar, column.clone()), "2");
    assert_eq!(aggregate(AggFunction::Count, column.clone()), "0");
    assert_eq!(aggregate(AggFunction::CountDistinct, column.clone()), "0");
    for function in [
        AggFunction::Sum,
        AggFunction::Min,
        AggFunction::Max,
        AggFunction::Avg,
    ] {
        assert_eq!(aggregate(function, column.clone()), "NULL", "{function:?}");
    }
}

#[test]
fn min_and_max_cover_strings_booleans_dates_and_timestamps() {
    let strings: ArrayRef = Arc::new(StringArray::from(vec![Some("pear"), None, Some("apple")]));
    assert_eq!(aggregate(AggFunction::Min, strings.clone()), "apple");
    assert_eq!(aggregate(AggFunction::Max, strings), "pear");
    let booleans: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
    assert_eq!(aggregate(AggFunction::Min, booleans.clone()), "false");
    assert_eq!(aggregate(AggFunction::Max, booleans), "true");
    let dates: ArrayRef = Arc::new(Date32Array::from(vec![19000, 18000]));
    assert_eq!(aggregate(AggFunction::Min, dates), "2019-04-14");
    let times: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![1_000, 3_000]));
    assert_eq!(aggregate(AggFunction::Max, times), "1970-01-01T00:00:03");
    let doubles: ArrayRef = Arc::new(Float64Array::from(vec![1.5, -2.5]));
    assert_eq!(aggregate(AggFunction::Min, doubles), "-2.5");
}

#[test]
fn count_distinct_tells_negative_zero_from_zero_like_java_double_equals() {
    let doubles: ArrayRef = Arc::new(Float64Array::from(vec![0.0, -0.0, 0.0, f64::NAN, f64::NAN]));
    assert_eq!(aggregate(AggFunction::CountDistinct, doubles), "3");
    let strings: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a"]));
    assert_eq!(aggregate(AggFunction::CountDistinct, strings), "2");
}

/// Encoding a slot's state and reading it into another slot, or merging two partial slots,
/// gives the result of accumulating every row into one slot.
#[test]
fn state_round_trips_and_merging_partials_equals_accumulating_everything() {
    use AggFunction::*;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![
            Some(5),
            None,
            Some(-2),
            Some(5),
            Some(9),
        ])),
        Arc::new(StringArray::from(vec![
            Some("b"),
            Some("a"),
            None,
            Some("c"),
            Some("a"),
        ])),
        Arc::new(Float64Array::from(vec![
            Some(0.5),
            Some(-0.0),
            None,
            Some(2.0),
            Some(0.5),
        ])),
        Arc::new(
            Decimal128Array::from(vec![Some(1), Some(20), None, Some(300), Some(1)])
                .with_precision_and_scale(5, 1)
                .unwrap(),
        ),
    ];
    for column in columns {
        let data_type = column.data_type().clone();
        for function in [CountStar, Count, Sum, Min, Max, Avg, CountDistinct] {
            if flink_result_type(function, Some(&data_type)).is_err() {
                continue;
            }
            for retractable in [false, true] {
                let schema = Schema::new(vec![Field::new("x", data_type.clone(), true)]);
                let batch =
                    RecordBatch::try_new(Arc::new(schema.clone()), vec![column.clone()]).unwrap();
                let call = call(function, &data_type);
                let mut accs =
                    Accumulators::new(std::slice::from_ref(&call), &schema, retractable).unwrap();
                let args = accs.prepare(&batch).unwrap();
                let (whole, left, right, copy) =
                    (accs.alloc(), accs.alloc(), accs.alloc(), accs.alloc());
                accs.update_batch(&args, &[whole; 5]).unwrap();
                accs.update_batch(&args, &[left, left, NO_SLOT, NO_SLOT, NO_SLOT])
                    .unwrap();
                accs.update_batch(&args, &[NO_SLOT, NO_SLOT, right, right, right])
                    .unwrap();
                let mut state = Vec::new();
                accs.write_state(right, &mut state);
                accs.merge_encoded(left, &state).unwrap();
                let mut whole_state = Vec::new();
                accs.write_state(whole, &mut whole_state);
                let rest = accs.read_state(copy, &whole_state).unwrap();
                assert!(rest.is_empty());
                let expected = show(&accs, whole, &call.output_type);
                let what = format!("{function:?}({data_type}), retractable {retractable}");
                assert_eq!(
                    show(&accs, left, &call.output_type),
                    expected,
                    "merged {what}"
                );
                assert_eq!(
                    show(&accs, copy, &call.output_type),
                    expected,
                    "decoded {what}"
                );
                for slot in [whole, left, right, copy] {
                    accs.release(slot);
                }
                assert_eq!(accs.slots_in_use(), 0);
            }
        }
    }
}

#[test]
fn retracting_every_row_empties_the_slot() {
    let schema = Schema::new(vec![Field::new("x", DataType::Utf8, true)]);
    let column: ArrayRef = Arc::new(StringArray::from(vec![Some("b"), Some("a"), None]));
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![column]).unwrap();
    for function in [
        AggFunction::Min,
        AggFunction::Max,
        AggFunction::CountDistinct,
        AggFunction::Count,
    ] {
        let call = call(function, &DataType::Utf8);
        let mut accs = Accumulators::new(std::slice::from_ref(&call), &schema, true).unwrap();
        let args = accs.prepare(&batch).unwrap();
        let slot = accs.alloc();
        for row in 0..3 {
            accs.update_row(&args, row, slot, false).unwrap();
        }
        for row in 0..3 {
            accs.update_row(&args, row, slot, true).unwrap();
        }
        let empty = if matches!(function, AggFunction::Min | AggFunction::Max) {
            "NULL"
        } else {
            "0"
        };
        assert_eq!(show(&accs, slot, &call.output_type), empty, "{function:?}");
    }
}

proptest! {
    #[test]
    fn float_keys_order_like_java_double_compare(a in any::<f64>(), b in any::<f64>()) {
        let canon = |v: f64| if v.is_nan() { f64::NAN } else { v };
        let (a, b) = (canon(a), canon(b));
        prop_assert_eq!(float_key(a).cmp(&float_key(b)), a.total_cmp(&b));
        prop_assert_eq!(float_from_key(float_key(a)).to_bits(), a.to_bits());
    }
}
