use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int8Array,
    Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::DataType;

use super::*;
use crate::connectors::SourceEvent;
use crate::connectors::test_util::{run_source, source_context, table};
use crate::types::timestamp_type;

fn all(batches: &[RecordBatch]) -> RecordBatch {
    let schema = batches[0].schema();
    concat_batches(&schema, batches).expect("same schema")
}

fn int64s(batch: &RecordBatch, column: usize) -> Vec<i64> {
    let array = batch.column(column).as_any().downcast_ref::<Int64Array>();
    array.expect("BIGINT column").values().to_vec()
}

fn error_of(def: &TableDef) -> String {
    DatagenConnector
        .validate(def, true)
        .expect_err("options are invalid")
        .to_string()
}

#[test]
fn sequence_values_over_four_subtasks_are_exactly_start_to_end_without_overlap() {
    let def = table(
        "seq",
        &[("id", DataType::Int64), ("n", DataType::Int32)],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "0"),
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "-3"),
            ("fields.id.end", "1000"),
        ],
    );
    DatagenConnector
        .validate(&def, true)
        .expect("valid options");
    let mut seen = Vec::new();
    for subtask in 0..4 {
        let batches = run_source(&DatagenConnector, &def, subtask, 4, 77).expect("runs");
        let values = int64s(&all(&batches), 0);
        // Interleaved like Flink's SequenceGenerator: start + i, start + i + p, ...
        let expected: Vec<i64> = (-3 + subtask as i64..=1000).step_by(4).collect();
        assert_eq!(values, expected, "subtask {subtask}");
        seen.extend(values);
    }
    seen.sort_unstable();
    assert_eq!(seen, (-3..=1000).collect::<Vec<i64>>());
}

#[test]
fn sequence_works_for_every_sequenceable_type_and_at_the_extremes() {
    let def = table(
        "seq",
        &[
            ("a", DataType::Int8),
            ("b", DataType::Utf8),
            ("c", DataType::Decimal128(6, 2)),
            ("d", DataType::Float64),
            ("e", DataType::Int64),
        ],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "-1"),
            ("fields.a.kind", "sequence"),
            ("fields.a.start", "-128"),
            ("fields.a.end", "127"),
            ("fields.b.kind", "sequence"),
            ("fields.b.start", "0"),
            ("fields.b.end", "1000"),
            ("fields.c.kind", "sequence"),
            ("fields.c.start", "10"),
            ("fields.c.end", "9999"),
            ("fields.d.kind", "sequence"),
            ("fields.d.start", "5"),
            ("fields.d.end", "500"),
            ("fields.e.kind", "sequence"),
            ("fields.e.start", "9223372036854775000"),
            ("fields.e.end", "9223372036854775807"),
        ],
    );
    let batch = all(&run_source(&DatagenConnector, &def, 0, 1, 100).expect("runs"));
    // The shortest sequence (a: 256 values) ends the source, as in Flink.
    assert_eq!(batch.num_rows(), 256);
    let a = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int8Array>()
        .expect("TINYINT");
    assert_eq!((a.value(0), a.value(255)), (-128, 127));
    let b = batch.column(1).as_string::<i32>();
    assert_eq!((b.value(0), b.value(255)), ("0", "255"));
    let c = batch
        .column(2)
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .expect("DECIMAL");
    assert_eq!(c.value(1), 1_100);
    assert_eq!(c.data_type(), &DataType::Decimal128(6, 2));
    let d = batch
        .column(3)
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("DOUBLE");
    assert_eq!(d.value(2), 7.0);
    assert_eq!(int64s(&batch, 4)[255], 9_223_372_036_854_775_255);
}

#[test]
fn number_of_rows_is_honoured_across_subtasks() {
    let def = table(
        "rows",
        &[("id", DataType::Int64), ("v", DataType::Int32)],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "0"),
            ("number-of-rows", "1003"),
        ],
    );
    let counts: Vec<usize> = (0..4)
        .map(|subtask| {
            let batches = run_source(&DatagenConnector, &def, subtask, 4, 100).expect("runs");
            batches.iter().map(RecordBatch::num_rows).sum()
        })
        .collect();
    assert_eq!(counts, [251, 251, 251, 250]);

    // A sequence shorter than number-of-rows ends the source first.
    let bounded = table(
        "rows",
        &[("id", DataType::Int64)],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "0"),
            ("number-of-rows", "100"),
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "1"),
            ("fields.id.end", "10"),
        ],
    );
    let batches = run_source(&DatagenConnector, &bounded, 0, 1, 100).expect("runs");
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 10);
}

#[test]
fn random_values_respect_min_max_and_length() {
    let def = table(
        "random",
        &[
            ("i", DataType::Int32),
            ("d", DataType::Float64),
            ("s", DataType::Utf8),
            ("v", DataType::Utf8),
            ("t", DataType::Int8),
            ("m", DataType::Decimal128(5, 2)),
            ("b", DataType::Boolean),
            ("ts", timestamp_type()),
            ("day", DataType::Date32),
            ("maybe", DataType::Int64),
        ],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "0"),
            ("number-of-rows", "5000"),
            ("fields.i.min", "-5"),
            ("fields.i.max", "5"),
            ("fields.d.min", "1.5"),
            ("fields.d.max", "2.5"),
            ("fields.s.length", "7"),
            ("fields.v.length", "20"),
            ("fields.v.var-len", "true"),
            ("fields.m.min", "1"),
            ("fields.m.max", "2"),
            ("fields.ts.max-past", "10 s"),
            ("fields.maybe.null-rate", "0.5"),
        ],
    );
    DatagenConnector
        .validate(&def, true)
        .expect("valid options");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let batch = all(&run_source(&DatagenConnector, &def, 0, 1, 999).expect("runs"));
    assert_eq!(batch.num_rows(), 5000);

    let i = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int32Array>()
        .expect("INT");
    assert!(i.values().iter().all(|v| (-5..=5).contains(v)));
    assert!(i.values().contains(&-5) && i.values().contains(&5));
    let d = batch
        .column(1)
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("DOUBLE");
    assert!(d.values().iter().all(|v| (1.5..=2.5).contains(v)));
    let s = batch
        .column(2)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("STRING");
    assert!(
        s.iter()
            .flatten()
            .all(|v| v.len() == 7 && v.bytes().all(|c| c.is_ascii_hexdigit()))
    );
    let v = batch
        .column(3)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("STRING");
    assert!(v.iter().flatten().all(|v| (1..=20).contains(&v.len())));
    assert!(v.iter().flatten().any(|v| v.len() < 20));
    let t = batch
        .column(4)
        .as_any()
        .downcast_ref::<Int8Array>()
        .expect("TINYINT");
    assert!(t.values().iter().any(|v| *v < 0) && t.values().iter().any(|v| *v > 0));
    let m = batch
        .column(5)
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .expect("DECIMAL");
    assert!(m.values().iter().all(|v| (100..=200).contains(v)));
    let b = batch
        .column(6)
        .as_any()
        .downcast_ref::<BooleanArray>()
        .expect("BOOLEAN");
    assert!(b.true_count() > 2000 && b.false_count() > 2000);
    let ts = batch
        .column(7)
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>();
    let ts = ts.expect("TIMESTAMP(3)");
    assert!(
        ts.values()
            .iter()
            .all(|v| *v >= before - 10_000 && *v <= before + 60_000)
    );
    let day = batch
        .column(8)
        .as_any()
        .downcast_ref::<Date32Array>()
        .expect("DATE");
    assert!((day.value(0) as i64 - before / 86_400_000).abs() <= 1);
    let maybe = batch.column(9);
    assert!(maybe.null_count() > 2000 && maybe.null_count() < 3000);
}

#[test]
fn random_values_repeat_for_the_same_subtask_whatever_the_batch_size() {
    let def = table(
        "random",
        &[
            ("i", DataType::Int64),
            ("b", DataType::Boolean),
            ("s", DataType::Utf8),
        ],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "0"),
            ("number-of-rows", "500"),
            ("fields.s.length", "5"),
            ("fields.s.null-rate", "0.2"),
        ],
    );
    let small = all(&run_source(&DatagenConnector, &def, 1, 2, 7).expect("runs"));
    let large = all(&run_source(&DatagenConnector, &def, 1, 2, 1000).expect("runs"));
    assert_eq!(small, large);
    let other = all(&run_source(&DatagenConnector, &def, 0, 2, 1000).expect("runs"));
    assert_ne!(int64s(&other, 0), int64s(&large, 0));
}

#[test]
fn rows_per_second_throttles_in_small_buckets() {
    let def = table(
        "slow",
        &[("id", DataType::Int64)],
        &[("connector", "datagen"), ("rows-per-second", "100")],
    );
    let mut source = DatagenConnector
        .create_source(source_context(&def, 0, 1, 1000))
        .expect("creates");
    // 100 rows/s: the first bucket is 50 ms of rows, not a full batch of 1000.
    match source.poll_next().expect("polls") {
        SourceEvent::Batch(batch) => assert!(batch.num_rows() <= 6, "{}", batch.num_rows()),
        other => panic!("expected a batch, got {other:?}"),
    }
}

#[test]
fn bad_options_give_errors_naming_the_option_and_listing_valid_ones() {
    let base = |extra: &[(&str, &str)]| {
        let mut options = vec![("connector", "datagen")];
        options.extend_from_slice(extra);
        table(
            "gen",
            &[("id", DataType::Int64), ("name", DataType::Utf8)],
            &options,
        )
    };

    let message = error_of(&base(&[("rows-per-sec", "5")]));
    assert!(message.contains("'rows-per-sec'"), "{message}");
    assert!(
        message.contains("rows-per-second") && message.contains("fields.#.kind"),
        "{message}"
    );

    let message = error_of(&base(&[("fields.nope.kind", "random")]));
    assert!(
        message.contains("'fields.nope.kind'") && message.contains("id, name"),
        "{message}"
    );

    let message = error_of(&base(&[
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "1"),
    ]));
    assert!(message.contains("'fields.id.end'"), "{message}");

    let message = error_of(&base(&[("fields.id.min", "10"), ("fields.id.max", "5")]));
    assert!(
        message.contains("'fields.id.min' = '10'") && message.contains("'fields.id.max'"),
        "{message}"
    );

    let message = error_of(&base(&[("fields.id.length", "5")]));
    assert!(message.contains("'fields.id.length'"), "{message}");
    assert!(
        message.contains("fields.id.min, fields.id.max"),
        "{message}"
    );

    let message = error_of(&base(&[
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "1"),
        ("fields.id.end", "9"),
        ("fields.id.min", "1"),
    ]));
    assert!(
        message.contains("'fields.id.min'") && message.contains("fields.id.start"),
        "{message}"
    );

    let message = error_of(&base(&[("fields.id.kind", "zigzag")]));
    assert!(message.contains("'fields.id.kind' = 'zigzag'"), "{message}");

    let message = error_of(&base(&[("fields.name.null-rate", "2")]));
    assert!(message.contains("'fields.name.null-rate'"), "{message}");

    let message = error_of(&base(&[("number-of-rows", "-4")]));
    assert!(message.contains("'number-of-rows'"), "{message}");

    let small = table(
        "gen",
        &[("t", DataType::Int8)],
        &[("connector", "datagen"), ("fields.t.max", "300")],
    );
    assert!(error_of(&small).contains("'fields.t.max' = '300' is out of range for TINYINT"));

    let timestamps = table(
        "gen",
        &[("ts", timestamp_type())],
        &[
            ("connector", "datagen"),
            ("fields.ts.kind", "sequence"),
            ("fields.ts.start", "1"),
            ("fields.ts.end", "2"),
        ],
    );
    assert!(error_of(&timestamps).contains("max-past"));

    let nested = table(
        "gen",
        &[("xs", DataType::new_list(DataType::Int32, true))],
        &[("connector", "datagen")],
    );
    let message = error_of(&nested);
    assert!(
        message.contains("'xs'") && message.contains("supported types"),
        "{message}"
    );

    assert!(DatagenConnector.validate(&base(&[]), false).is_err());
}

#[test]
fn varchar_length_defaults_to_the_declared_length() {
    assert_eq!(declared_length("VARCHAR(12)"), Some(12));
    assert_eq!(declared_length("char( 3 )"), Some(3));
    assert_eq!(declared_length("STRING"), None);
}

/// Measures single-core throughput; run with `--ignored` on an idle machine.
#[test]
#[ignore = "benchmark"]
fn datagen_throughput_on_one_core() {
    let def = table(
        "bench",
        &[
            ("id", DataType::Int64),
            ("v", DataType::Int32),
            ("price", DataType::Float64),
        ],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "0"),
            ("number-of-rows", "50000000"),
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "1"),
            ("fields.id.end", "100000000"),
            ("fields.v.min", "0"),
            ("fields.v.max", "1000"),
        ],
    );
    let mut source = DatagenConnector
        .create_source(source_context(&def, 0, 1, 8192))
        .expect("creates");
    let start = std::time::Instant::now();
    let mut rows = 0;
    while let SourceEvent::Batch(batch) = source.poll_next().expect("polls") {
        rows += batch.num_rows();
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64();
    eprintln!("datagen: {rows} rows, {:.1} M rows/s", rate / 1e6);
}
