//! Changelog tests: each expected sequence is computed by a naive reference of Flink's
//! `GroupAggFunction` (a BTreeMap from key to the multiset of live values, results recomputed
//! from scratch for every row) or written out by hand from Flink's behaviour.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, Int8Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::array_value_to_string;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_state::{MemoryBackend, StateId};

use super::*;
use crate::dataflow::operator::Emitted;
use crate::operators::aggregate::{AggFunction, AggregateCall};

fn task() -> TaskInfo {
    TaskInfo {
        operator: "group-aggregate-test".into(),
        uid: "test-op".into(),
        subtask: 0,
        parallelism: 1,
        max_parallelism: 128,
    }
}

const FUNCTIONS: [AggFunction; 7] = [
    AggFunction::CountStar,
    AggFunction::Count,
    AggFunction::Sum,
    AggFunction::Min,
    AggFunction::Max,
    AggFunction::Avg,
    AggFunction::CountDistinct,
];

/// Input: `k` STRING, `v` INT, and the row kind when `updating`.
fn input_schema(updating: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Int32, true),
    ];
    if updating {
        fields.push(Field::new(ROW_KIND_COLUMN, DataType::Int8, false));
    }
    Arc::new(Schema::new(fields))
}

/// GROUP BY k with the given functions over `v` (INT results for SUM, MIN, MAX, AVG).
fn spec(functions: &[AggFunction], updating: bool) -> GroupAggregateSpec {
    let mut fields = vec![Field::new("k", DataType::Utf8, true)];
    let aggregates = functions
        .iter()
        .map(|&function| {
            let output_type = match function {
                AggFunction::CountStar | AggFunction::Count | AggFunction::CountDistinct => {
                    DataType::Int64
                }
                _ => DataType::Int32,
            };
            fields.push(Field::new(
                format!("{function:?}"),
                output_type.clone(),
                true,
            ));
            AggregateCall {
                function,
                arg: (function != AggFunction::CountStar).then_some(1),
                output_type,
            }
        })
        .collect();
    fields.push(Field::new(ROW_KIND_COLUMN, DataType::Int8, false));
    GroupAggregateSpec {
        key_columns: vec![0],
        aggregates,
        input_updating: updating,
        output_schema: Arc::new(Schema::new(fields)),
    }
}

fn operator(spec: GroupAggregateSpec) -> GroupAggregate {
    GroupAggregate::new(spec, task(), Box::new(MemoryBackend::new()), StateId(3)).unwrap()
}

/// One input row: kind, key, value.
type Row = (RowKind, &'static str, Option<i32>);

fn batch(rows: &[Row], updating: bool) -> RecordBatch {
    let k: StringArray = rows.iter().map(|r| Some(r.1)).collect();
    let v: Int32Array = rows.iter().map(|r| r.2).collect();
    let mut columns: Vec<ArrayRef> = vec![Arc::new(k), Arc::new(v)];
    if updating {
        columns.push(Arc::new(Int8Array::from_iter_values(
            rows.iter().map(|r| r.0 as i8),
        )));
    }
    RecordBatch::try_new(input_schema(updating), columns).unwrap()
}

/// Output rows as "+I[k, a, b, ...]" strings, in order.
fn changelog(out: Output) -> Vec<String> {
    let mut rows = Vec::new();
    for item in out.items {
        let Emitted::Batch(b) = item else { continue };
        let kinds = b
            .column(b.num_columns() - 1)
            .as_any()
            .downcast_ref::<Int8Array>()
            .unwrap();
        for r in 0..b.num_rows() {
            let cells: Vec<String> = (0..b.num_columns() - 1)
                .map(|c| {
                    let col = b.column(c);
                    if col.is_null(r) {
                        "NULL".to_string()
                    } else {
                        array_value_to_string(col.as_ref(), r).unwrap()
                    }
                })
                .collect();
            let kind = RowKind::from_i8(kinds.value(r)).unwrap();
            rows.push(format!("{}[{}]", kind.short_string(), cells.join(", ")));
        }
    }
    rows
}

fn run(op: &mut GroupAggregate, batches: &[Vec<Row>], updating: bool) -> Vec<String> {
    let mut log = Vec::new();
    for rows in batches {
        let mut out = Output::default();
        op.process_batch(0, batch(rows, updating), &mut out)
            .unwrap();
        log.extend(changelog(out));
    }
    log
}

use RowKind::{Delete as D, Insert as I, UpdateAfter as UA, UpdateBefore as UB};

#[test]
fn insert_only_input_gives_flinks_changelog() {
    let mut op = operator(spec(&[AggFunction::Sum, AggFunction::Max], false));
    let log = run(
        &mut op,
        &[
            vec![(I, "a", Some(1)), (I, "a", Some(2)), (I, "b", Some(5))],
            vec![(I, "a", Some(0)), (I, "a", Some(4))],
        ],
        false,
    );
    assert_eq!(
        log,
        vec![
            "+I[a, 1, 1]",
            "-U[a, 1, 1]",
            "+U[a, 3, 2]",
            "+I[b, 5, 5]",
            // SUM + 0 and MAX(2, 0) leave the result unchanged: nothing is emitted.
            "-U[a, 3, 2]",
            "+U[a, 7, 4]",
        ]
    );
}

#[test]
fn an_unchanged_result_emits_nothing() {
    let mut op = operator(spec(&[AggFunction::Max], false));
    let log = run(
        &mut op,
        &[vec![
            (I, "a", Some(5)),
            (I, "a", Some(3)),
            (I, "a", None),
            (I, "a", Some(5)),
        ]],
        false,
    );
    assert_eq!(log, vec!["+I[a, 5]"]);
}

#[test]
fn retracting_input_emits_a_delete_when_the_count_reaches_zero() {
    let mut op = operator(spec(&[AggFunction::CountStar, AggFunction::Sum], true));
    let log = run(
        &mut op,
        &[
            vec![(I, "a", Some(1)), (I, "a", Some(2))],
            vec![(UB, "a", Some(1)), (D, "a", Some(2)), (I, "a", Some(7))],
        ],
        true,
    );
    assert_eq!(
        log,
        vec![
            "+I[a, 1, 1]",
            "-U[a, 1, 1]",
            "+U[a, 2, 3]",
            "-U[a, 2, 3]",
            "+U[a, 1, 2]",
            "-D[a, 1, 2]",
            // The key is new again.
            "+I[a, 1, 7]",
        ]
    );
}

#[test]
fn a_retraction_of_an_unknown_key_is_ignored() {
    let mut op = operator(spec(&[AggFunction::CountStar], true));
    let log = run(&mut op, &[vec![(D, "x", Some(1)), (I, "x", Some(1))]], true);
    assert_eq!(log, vec!["+I[x, 1]"]);
}

#[test]
fn min_and_max_fall_back_to_the_remaining_values_on_retraction() {
    let mut op = operator(spec(&[AggFunction::Min, AggFunction::Max], true));
    let log = run(
        &mut op,
        &[vec![
            (I, "a", Some(3)),
            (I, "a", Some(9)),
            (I, "a", Some(1)),
            (D, "a", Some(1)),
            (D, "a", Some(9)),
        ]],
        true,
    );
    assert_eq!(
        log,
        vec![
            "+I[a, 3, 3]",
            "-U[a, 3, 3]",
            "+U[a, 3, 9]",
            "-U[a, 3, 9]",
            "+U[a, 1, 9]",
            "-U[a, 1, 9]",
            "+U[a, 3, 9]",
            "-U[a, 3, 9]",
            "+U[a, 3, 3]",
        ]
    );
}

#[test]
fn avg_of_int_truncates_toward_zero_like_java() {
    let mut op = operator(spec(&[AggFunction::Avg], false));
    let log = run(
        &mut op,
        &[vec![(I, "a", Some(-3)), (I, "a", Some(-4))]],
        false,
    );
    // AVG becomes -7 / 2, which is -3 in Java (not -4): unchanged, so nothing follows.
    assert_eq!(log, vec!["+I[a, -3]"]);
    let mut op = operator(spec(&[AggFunction::Avg], false));
    let log = run(
        &mut op,
        &[vec![(I, "a", Some(7)), (I, "a", Some(0))]],
        false,
    );
    assert_eq!(log, vec!["+I[a, 7]", "-U[a, 7]", "+U[a, 3]"]);
}

#[test]
fn sum_of_int_wraps_on_overflow_like_java() {
    let mut op = operator(spec(&[AggFunction::Sum], false));
    let log = run(
        &mut op,
        &[vec![(I, "a", Some(i32::MAX)), (I, "a", Some(1))]],
        false,
    );
    assert_eq!(
        log,
        vec![
            format!("+I[a, {}]", i32::MAX),
            format!("-U[a, {}]", i32::MAX),
            format!("+U[a, {}]", i32::MIN),
        ]
    );
}

/// The naive reference: key → live values; every result recomputed from the multiset.
fn reference(rows: &[Row]) -> Vec<String> {
    let mut state: BTreeMap<&str, Vec<Option<i32>>> = BTreeMap::new();
    let mut log = Vec::new();
    let show = |values: &Vec<Option<i32>>| -> String {
        let present: Vec<i64> = values.iter().flatten().map(|&v| i64::from(v)).collect();
        let sum: i64 = present.iter().sum();
        let mut distinct = present.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let opt = |v: Option<i64>| v.map_or("NULL".to_string(), |v| v.to_string());
        [
            values.len().to_string(),
            present.len().to_string(),
            opt((!present.is_empty()).then_some(i64::from(sum as i32))),
            opt(present.iter().min().copied()),
            opt(present.iter().max().copied()),
            opt((!present.is_empty()).then(|| i64::from((sum / present.len() as i64) as i32))),
            distinct.len().to_string(),
        ]
        .join(", ")
    };
    for &(kind, key, v) in rows {
        let prev = state.get(key).filter(|vs| !vs.is_empty()).map(show);
        if !kind.is_addition() && prev.is_none() {
            continue;
        }
        let values = state.entry(key).or_default();
        if kind.is_addition() {
            values.push(v);
        } else if let Some(pos) = values.iter().position(|x| *x == v) {
            values.remove(pos);
        }
        if values.is_empty() {
            log.push(format!("-D[{key}, {}]", prev.unwrap()));
            state.remove(key);
            continue;
        }
        let next = show(values);
        match prev {
            None => log.push(format!("+I[{key}, {next}]")),
            Some(prev) if prev != next => {
                log.push(format!("-U[{key}, {prev}]"));
                log.push(format!("+U[{key}, {next}]"));
            }
            Some(_) => {}
        }
    }
    log
}

const KEYS: [&str; 40] = [
    "k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11", "k12",
    "k13", "k14", "k15", "k16", "k17", "k18", "k19", "k20", "k21", "k22", "k23", "k24", "k25",
    "k26", "k27", "k28", "k29", "k30", "k31", "k32", "k33", "k34", "k35", "k36", "k37", "k38",
    "k39",
];

/// A random changelog: inserts, and retractions of rows inserted earlier (as -U/+U pairs or -D).
fn random_changelog(seed: u64, len: usize, keys: usize) -> Vec<Row> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut live: Vec<(&'static str, Option<i32>)> = Vec::new();
    let mut rows = Vec::new();
    while rows.len() < len {
        if !live.is_empty() && rng.random_range(0..3) == 0 {
            let (key, v) = live.swap_remove(rng.random_range(0..live.len()));
            if rng.random_bool(0.5) {
                let nv = (rng.random_range(0..8) != 0).then(|| rng.random_range(-20..20));
                rows.push((UB, key, v));
                rows.push((UA, key, nv));
                live.push((key, nv));
            } else {
                rows.push((D, key, v));
            }
        } else {
            let key = KEYS[rng.random_range(0..keys)];
            let v = (rng.random_range(0..8) != 0).then(|| rng.random_range(-20..20));
            rows.push((I, key, v));
            live.push((key, v));
        }
    }
    rows
}

#[test]
fn a_random_changelog_equals_the_reference() {
    for seed in 0..10 {
        let rows = random_changelog(seed, 400, 6);
        let mut op = operator(spec(&FUNCTIONS, true));
        let batches: Vec<Vec<Row>> = rows.chunks(17).map(<[Row]>::to_vec).collect();
        assert_eq!(
            run(&mut op, &batches, true),
            reference(&rows),
            "seed {seed}"
        );
    }
}

#[test]
fn evicting_keys_above_the_memory_limit_keeps_the_changelog() {
    for seed in 0..5 {
        let rows = random_changelog(seed, 1500, 40);
        let batches: Vec<Vec<Row>> = rows.chunks(23).map(<[Row]>::to_vec).collect();
        let mut op = operator(spec(&FUNCTIONS, true)).with_memory_limit(10);
        let mut log = Vec::new();
        for (b, rows) in batches.iter().enumerate() {
            let mut out = Output::default();
            op.process_batch(0, batch(rows, true), &mut out).unwrap();
            if b % 4 == 3 {
                op.process_watermark(b as i64, &mut out).unwrap();
            }
            log.extend(changelog(out));
            assert!(
                op.index.len() <= 10 + rows.len(),
                "memory stays near the limit"
            );
        }
        assert!(op.evicted, "the limit was reached");
        assert_eq!(log, reference(&rows), "seed {seed}");
    }
}

#[test]
fn state_is_written_through_at_watermarks_and_removed_keys_are_deleted() {
    let mut op = operator(spec(&[AggFunction::CountStar], true));
    let mut out = Output::default();
    op.process_batch(
        0,
        batch(&[(I, "a", Some(1)), (I, "b", Some(2))], true),
        &mut out,
    )
    .unwrap();
    assert!(
        op.backend.scan_state(op.state_id).unwrap().is_empty(),
        "nothing written yet"
    );
    op.process_watermark(10, &mut out).unwrap();
    assert_eq!(op.backend.scan_state(op.state_id).unwrap().len(), 2);
    op.process_batch(0, batch(&[(D, "a", Some(1))], true), &mut out)
        .unwrap();
    op.finish(&mut out).unwrap();
    let stored = op.backend.scan_state(op.state_id).unwrap();
    assert_eq!(stored.len(), 1, "a's state was deleted");
    assert!(matches!(out.items.last(), Some(Emitted::Batch(_))));
}

#[test]
fn keys_of_several_columns_and_an_output_of_int64_sums() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let spec = GroupAggregateSpec {
        key_columns: vec![1, 0],
        aggregates: vec![AggregateCall {
            function: AggFunction::Sum,
            arg: Some(2),
            output_type: DataType::Int64,
        }],
        input_updating: false,
        output_schema: Arc::new(Schema::new(vec![
            Field::new("b", DataType::Utf8, false),
            Field::new("a", DataType::Int64, false),
            Field::new("s", DataType::Int64, true),
            Field::new(ROW_KIND_COLUMN, DataType::Int8, false),
        ])),
    };
    let mut op = operator(spec);
    let input = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 1, 2])),
            Arc::new(StringArray::from(vec!["x", "x", "x"])),
            Arc::new(Int64Array::from(vec![10, 20, 30])),
        ],
    )
    .unwrap();
    let mut out = Output::default();
    op.process_batch(0, input, &mut out).unwrap();
    assert_eq!(
        changelog(out),
        vec![
            "+I[x, 1, 10]",
            "-U[x, 1, 10]",
            "+U[x, 1, 30]",
            "+I[x, 2, 30]"
        ]
    );
}
