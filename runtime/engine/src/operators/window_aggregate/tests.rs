//! Each test runs the operator and a naive reference (a map from window and key to the list of
//! values that arrived in time) over the same input and compares what fires at each watermark.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::util::display::array_value_to_string;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_state::{MemoryBackend, StateId};

use super::*;
use crate::dataflow::operator::Emitted;
use crate::operators::aggregate::{AggFunction, AggregateCall};

fn task() -> TaskInfo {
    TaskInfo {
        operator: "window-aggregate-test".into(),
        uid: "test-op".into(),
        subtask: 0,
        parallelism: 1,
        max_parallelism: 128,
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

fn input_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", ts_type(), true),
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
    ]))
}

/// One input row: event time, key, value.
type Row = (Option<i64>, i64, Option<i64>);

fn batch(rows: &[Row]) -> RecordBatch {
    let ts: TimestampMillisecondArray = rows.iter().map(|r| r.0).collect();
    let k: Int64Array = rows.iter().map(|r| Some(r.1)).collect();
    let v: Int64Array = rows.iter().map(|r| r.2).collect();
    RecordBatch::try_new(input_schema(), vec![Arc::new(ts), Arc::new(k), Arc::new(v)]).unwrap()
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

/// key, window_start, window_end, window_time, then every function of `FUNCTIONS` over `v`.
fn spec(window: WindowKind) -> WindowAggregateSpec {
    let aggregates: Vec<AggregateCall> = FUNCTIONS
        .iter()
        .map(|&function| AggregateCall {
            function,
            arg: (function != AggFunction::CountStar).then_some(2),
            output_type: DataType::Int64,
        })
        .collect();
    let mut fields = vec![
        Field::new("k", DataType::Int64, false),
        Field::new("window_start", ts_type(), false),
        Field::new("window_end", ts_type(), false),
        Field::new("window_time", ts_type(), false),
    ];
    let mut output = vec![
        OutputColumn::Key(0),
        OutputColumn::WindowStart,
        OutputColumn::WindowEnd,
        OutputColumn::WindowTime,
    ];
    for (j, f) in FUNCTIONS.iter().enumerate() {
        fields.push(Field::new(format!("{f:?}"), DataType::Int64, true));
        output.push(OutputColumn::Aggregate(j));
    }
    WindowAggregateSpec {
        window,
        time_column: 0,
        key_columns: vec![1],
        aggregates,
        output,
        output_schema: Arc::new(Schema::new(fields)),
    }
}

fn operator(spec: WindowAggregateSpec, memory_limit: Option<usize>) -> WindowAggregate {
    let op =
        WindowAggregate::new(spec, task(), Box::new(MemoryBackend::new()), StateId(7)).unwrap();
    match memory_limit {
        Some(limit) => op.with_memory_limit(limit),
        None => op,
    }
}

fn cell(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    let array = match array.data_type() {
        DataType::Timestamp(_, _) => arrow::compute::cast(array, &DataType::Int64).unwrap(),
        _ => Arc::clone(array),
    };
    array_value_to_string(array.as_ref(), row).unwrap()
}

fn rows_of(batch: &RecordBatch) -> Vec<Vec<String>> {
    (0..batch.num_rows())
        .map(|r| batch.columns().iter().map(|c| cell(c, r)).collect())
        .collect()
}

/// A step of a test: a batch of rows or a watermark.
#[derive(Debug, Clone)]
enum Step {
    Rows(Vec<Row>),
    Watermark(i64),
}

/// What the operator emits at each watermark (rows in emission order).
fn run(op: &mut WindowAggregate, steps: &[Step]) -> FiredLog {
    let mut fired = Vec::new();
    for step in steps {
        let mut out = Output::default();
        match step {
            Step::Rows(rows) => {
                op.process_batch(0, batch(rows), &mut out).unwrap();
                assert!(out.items.is_empty(), "a batch alone emits nothing");
            }
            Step::Watermark(wm) => {
                op.process_watermark(*wm, &mut out).unwrap();
                let mut rows = Vec::new();
                let n = out.items.len();
                for (i, item) in out.items.into_iter().enumerate() {
                    match item {
                        Emitted::Batch(b) => rows.extend(rows_of(&b)),
                        Emitted::Watermark(w) => {
                            assert_eq!(i, n - 1, "the watermark is forwarded after the results");
                            assert_eq!(w, *wm);
                        }
                    }
                }
                fired.push((*wm, rows));
            }
        }
    }
    fired
}

/// Values that arrived in time for one window and key.
type Values = Vec<Option<i64>>;
/// A live session: start, end, values.
type Session = (i64, i64, Values);
/// The rows fired at each watermark.
type FiredLog = Vec<(i64, Vec<Vec<String>>)>;

/// The naive reference: windows of each row computed by brute force over candidate starts,
/// sessions merged by scanning every live session of the key.
struct Reference {
    window: WindowKind,
    watermark: i64,
    /// (end, start, key) → values that arrived in time.
    windows: BTreeMap<(i64, i64, i64), Values>,
    /// key → live sessions (start, end, values).
    sessions: BTreeMap<i64, Vec<Session>>,
    late: u64,
}

impl Reference {
    fn new(window: WindowKind) -> Self {
        Reference {
            window,
            watermark: i64::MIN,
            windows: BTreeMap::new(),
            sessions: BTreeMap::new(),
            late: 0,
        }
    }

    fn windows_of(&self, ts: i64) -> Vec<(i64, i64)> {
        let aligned = |s: i64, offset: i64, unit: i64| (s - offset).rem_euclid(unit) == 0;
        match self.window {
            WindowKind::Tumble { size, offset } => ((ts - size + 1)..=ts)
                .filter(|&s| aligned(s, offset, size))
                .map(|s| (s, s + size))
                .collect(),
            WindowKind::Hop {
                size,
                slide,
                offset,
            } => ((ts - size + 1)..=ts)
                .filter(|&s| aligned(s, offset, slide))
                .map(|s| (s, s + size))
                .collect(),
            WindowKind::Cumulate {
                max_size,
                step,
                offset,
            } => ((ts - max_size + 1)..=ts)
                .filter(|&s| aligned(s, offset, max_size))
                .flat_map(|s| (1..=max_size / step).map(move |k| (s, s + k * step)))
                .filter(|&(_, e)| e > ts)
                .collect(),
            WindowKind::Session { .. } => unreachable!(),
        }
    }

    fn row(&mut self, (ts, key, v): Row) {
        let Some(ts) = ts else {
            self.late += 1;
            return;
        };
        if let WindowKind::Session { gap } = self.window {
            let live = self.sessions.entry(key).or_default();
            let (mut start, mut end, mut values) = (ts, ts + gap, vec![v]);
            let (hit, rest): (Vec<_>, Vec<_>) = std::mem::take(live)
                .into_iter()
                .partition(|(s, e, _)| *s <= end && *e >= start);
            *live = rest;
            if hit.is_empty() && end - 1 <= self.watermark {
                self.late += 1;
                return;
            }
            for (s, e, vs) in hit {
                start = start.min(s);
                end = end.max(e);
                values.extend(vs);
            }
            live.push((start, end, values));
            return;
        }
        let mut counted = false;
        for (s, e) in self.windows_of(ts) {
            if e - 1 > self.watermark {
                self.windows.entry((e, s, key)).or_default().push(v);
                counted = true;
            }
        }
        if !counted {
            self.late += 1;
        }
    }

    fn fire(&mut self, wm: i64) -> Vec<Vec<String>> {
        self.watermark = self.watermark.max(wm);
        let mut fired: Vec<((i64, i64, i64), Values)> = Vec::new();
        let keys: Vec<_> = self
            .windows
            .keys()
            .filter(|(e, _, _)| e - 1 <= self.watermark)
            .copied()
            .collect();
        for k in keys {
            let values = self.windows.remove(&k).unwrap();
            fired.push((k, values));
        }
        for (&key, live) in self.sessions.iter_mut() {
            let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(live)
                .into_iter()
                .partition(|(_, e, _)| e - 1 <= self.watermark);
            *live = rest;
            for (s, e, values) in done {
                fired.push(((e, s, key), values));
            }
        }
        fired.sort_by_key(|(k, _)| *k);
        fired
            .into_iter()
            .map(|((e, s, key), values)| {
                let mut row = vec![
                    key.to_string(),
                    s.to_string(),
                    e.to_string(),
                    (e - 1).to_string(),
                ];
                row.extend(expected_aggregates(&values));
                row
            })
            .collect()
    }
}

/// COUNT(*), COUNT, SUM, MIN, MAX, AVG, COUNT(DISTINCT) of `values` as Flink computes them.
fn expected_aggregates(values: &[Option<i64>]) -> Vec<String> {
    let present: Vec<i64> = values.iter().flatten().copied().collect();
    let null = || "NULL".to_string();
    let sum = present.iter().fold(0i64, |a, &b| a.wrapping_add(b));
    let mut distinct = present.clone();
    distinct.sort_unstable();
    distinct.dedup();
    vec![
        values.len().to_string(),
        present.len().to_string(),
        if present.is_empty() {
            null()
        } else {
            sum.to_string()
        },
        present.iter().min().map_or_else(null, |v| v.to_string()),
        present.iter().max().map_or_else(null, |v| v.to_string()),
        if present.is_empty() {
            null()
        } else {
            (sum / present.len() as i64).to_string()
        },
        distinct.len().to_string(),
    ]
}

fn run_reference(window: WindowKind, steps: &[Step]) -> (FiredLog, u64) {
    let mut reference = Reference::new(window);
    let mut fired = Vec::new();
    for step in steps {
        match step {
            Step::Rows(rows) => rows.iter().for_each(|&r| reference.row(r)),
            Step::Watermark(wm) => fired.push((*wm, reference.fire(*wm))),
        }
    }
    (fired, reference.late)
}

/// Out-of-order rows over `keys` keys (some NULL values, a few NULL times), with a watermark that
/// trails the largest time seen by 12 ms after every few batches, then the final watermark.
fn random_steps(seed: u64, batches: usize, keys: i64) -> Vec<Step> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut steps = Vec::new();
    let mut clock = 0i64;
    let mut max_seen = i64::MIN;
    for b in 0..batches {
        let n = rng.random_range(1..20);
        let rows: Vec<Row> = (0..n)
            .map(|_| {
                clock += rng.random_range(0..3);
                let ts = clock - rng.random_range(0..25);
                max_seen = max_seen.max(ts);
                let ts = (rng.random_range(0..100) != 0).then_some(ts);
                let v = (rng.random_range(0..10) != 0).then(|| rng.random_range(-50..50));
                (ts, rng.random_range(0..keys), v)
            })
            .collect();
        steps.push(Step::Rows(rows));
        if b % 3 == 2 {
            steps.push(Step::Watermark(max_seen - 12));
        }
    }
    steps.push(Step::Watermark(MAX_WATERMARK));
    steps
}

use crate::dataflow::message::MAX_WATERMARK;

fn check_against_reference(window: WindowKind, memory_limit: Option<usize>, keys: i64) {
    for seed in 0..8 {
        let steps = random_steps(seed, 60, keys);
        let (expected, expected_late) = run_reference(window, &steps);
        let mut op = operator(spec(window), memory_limit);
        let actual = run(&mut op, &steps);
        for ((wm, want), (_, got)) in expected.iter().zip(&actual) {
            assert_eq!(
                got, want,
                "{window:?}, seed {seed}: rows fired at watermark {wm}"
            );
        }
        assert_eq!(
            op.late_rows_dropped(),
            expected_late,
            "{window:?}, seed {seed}: late rows"
        );
        assert!(expected_late > 0, "the input exercises late rows");
        assert_eq!(op.windows.in_memory, 0, "everything fired and was released");
        if let Some(core) = &op.core {
            assert_eq!(core.accs.slots_in_use(), 0, "no slot leaks");
        }
    }
}

const TUMBLE: WindowKind = WindowKind::Tumble {
    size: 10,
    offset: 0,
};
const HOP: WindowKind = WindowKind::Hop {
    size: 15,
    slide: 5,
    offset: 0,
};
const CUMULATE: WindowKind = WindowKind::Cumulate {
    max_size: 20,
    step: 5,
    offset: 0,
};
const SESSION: WindowKind = WindowKind::Session { gap: 7 };

#[test]
fn tumble_windows_equal_the_reference_at_every_watermark() {
    check_against_reference(TUMBLE, None, 5);
    check_against_reference(
        WindowKind::Tumble {
            size: 10,
            offset: 3,
        },
        None,
        5,
    );
}

#[test]
fn hop_windows_equal_the_reference_at_every_watermark() {
    check_against_reference(HOP, None, 5);
    check_against_reference(
        WindowKind::Hop {
            size: 12,
            slide: 4,
            offset: -2,
        },
        None,
        5,
    );
}

#[test]
fn cumulate_windows_equal_the_reference_at_every_watermark() {
    check_against_reference(CUMULATE, None, 5);
}

#[test]
fn session_windows_equal_the_reference_at_every_watermark() {
    check_against_reference(SESSION, None, 5);
}

#[test]
fn spilled_state_gives_the_same_results_as_unspilled() {
    for window in [TUMBLE, HOP, CUMULATE, SESSION] {
        check_against_reference(window, Some(10), 5);
        check_against_reference(window, Some(10), 40);
    }
}

#[test]
fn entries_above_the_memory_limit_are_spilled_and_merged_back_when_the_window_fires() {
    for window in [TUMBLE, HOP, CUMULATE, SESSION] {
        // 500 rows 100 ms apart over 37 keys: hundreds of (window, key) entries.
        let rows: Vec<Row> = (0..500).map(|i| (Some(i * 100), i % 37, Some(i))).collect();
        let steps = vec![Step::Rows(rows.clone()), Step::Watermark(MAX_WATERMARK)];
        let mut op = operator(spec(window), Some(10));
        op.process_batch(0, batch(&rows), &mut Output::default())
            .unwrap();
        assert!(
            op.windows.map.values().any(|w| !w.spilled.is_empty()),
            "{window:?} spilled"
        );
        assert!(
            op.windows.in_memory <= 10,
            "{window:?} kept at most the limit in memory"
        );
        let mut out = Output::default();
        op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
        let got: Vec<Vec<String>> = out
            .items
            .iter()
            .filter_map(|i| match i {
                Emitted::Batch(b) => Some(rows_of(b)),
                Emitted::Watermark(_) => None,
            })
            .flatten()
            .collect();
        let (expected, _) = run_reference(window, &steps);
        assert_eq!(got, expected[0].1, "{window:?}");
        let leftover = op.store.backend.scan_state(op.store.id).unwrap();
        assert!(
            leftover.is_empty(),
            "{window:?}: spilled entries are deleted once merged"
        );
    }
}

/// A backend holding exactly what `snapshot` captured.
fn backend_of(snapshot: &OperatorSnapshot) -> MemoryBackend {
    let mut backend = MemoryBackend::new();
    match &snapshot.keyed {
        Some(weir_state::LocalSnapshot::Entries(groups)) => {
            for (&key_group, entries) in groups {
                for e in entries {
                    backend.put(e.state, key_group, &e.key, &e.value).unwrap();
                }
            }
        }
        other => panic!("a memory-backed operator made {other:?}"),
    }
    backend
}

/// Checkpoints every few steps must change nothing the operator emits, and a restore from any
/// of them must emit exactly what the failure-free run emits after it.
fn check_checkpoints_against_reference(window: WindowKind, memory_limit: Option<usize>) {
    for seed in 0..6 {
        let steps = random_steps(seed, 60, 40);
        let (expected, _) = run_reference(window, &steps);
        let mut op = operator(spec(window), memory_limit);
        let mut fired = Vec::new();
        let mut restored_runs = 0;
        for (i, step) in steps.iter().enumerate() {
            fired.extend(run(&mut op, std::slice::from_ref(step)));
            if i % 4 != 3 {
                continue;
            }
            let ctx = SnapshotContext {
                checkpoint_id: i as u64,
                savepoint: false,
                scratch: std::env::temp_dir().join("unused"),
            };
            let snapshot = op.snapshot(&ctx).unwrap().unwrap();
            let mut restored = WindowAggregate::new(
                spec(window),
                task(),
                Box::new(backend_of(&snapshot)),
                StateId(7),
            )
            .unwrap()
            .with_input_schema(input_schema());
            if let Some(limit) = memory_limit {
                restored = restored.with_memory_limit(limit);
            }
            restored.restore(snapshot.operator_state.clone()).unwrap();
            let after = run(&mut restored, &steps[i + 1..]);
            let done = expected.len() - after.len();
            for ((wm, want), (_, got)) in expected[done..].iter().zip(&after) {
                assert_eq!(
                    got, want,
                    "{window:?}, limit {memory_limit:?}, seed {seed}, restored after step {i}: \
                     rows fired at watermark {wm}"
                );
            }
            restored_runs += 1;
        }
        assert!(restored_runs > 5);
        for ((wm, want), (_, got)) in expected.iter().zip(&fired) {
            assert_eq!(
                got, want,
                "{window:?}, limit {memory_limit:?}, seed {seed}: rows fired at watermark {wm} \
                 by the checkpointed run"
            );
        }
    }
}

#[test]
fn checkpoints_keep_memory_and_restores_equal_the_reference() {
    for window in [TUMBLE, HOP, CUMULATE, SESSION] {
        check_checkpoints_against_reference(window, None);
    }
}

#[test]
fn checkpoints_beside_spilled_windows_restore_spilled_and_copied_entries() {
    for window in [TUMBLE, HOP, CUMULATE, SESSION] {
        check_checkpoints_against_reference(window, Some(10));
    }
}

#[test]
fn a_checkpoint_without_spilled_windows_leaves_the_backend_alone() {
    let mut op = operator(spec(TUMBLE), None);
    let rows: Vec<Row> = (0..50).map(|i| (Some(i), i % 7, Some(i))).collect();
    op.process_batch(0, batch(&rows), &mut Output::default())
        .unwrap();
    let ctx = SnapshotContext {
        checkpoint_id: 1,
        savepoint: false,
        scratch: std::env::temp_dir().join("unused"),
    };
    let snapshot = op.snapshot(&ctx).unwrap().unwrap();
    let in_memory = op.windows.in_memory;
    assert!(in_memory > 0, "entries stay in memory");
    match &snapshot.keyed {
        Some(weir_state::LocalSnapshot::Entries(groups)) => {
            assert_eq!(groups.values().map(Vec::len).sum::<usize>(), in_memory);
        }
        other => panic!("expected the in-memory entries, got {other:?}"),
    }
    assert!(op.store.backend.scan_state(op.store.id).unwrap().is_empty());
    assert!(
        op.store
            .backend
            .scan_state(op.store.copy_id())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_window_fires_only_when_the_watermark_reaches_its_end_minus_one() {
    let mut op = operator(spec(TUMBLE), None);
    let steps = vec![
        Step::Rows(vec![
            (Some(1), 1, Some(5)),
            (Some(9), 1, Some(7)),
            (Some(12), 1, Some(1)),
        ]),
        Step::Watermark(8),
        Step::Watermark(9),
        Step::Watermark(19),
    ];
    let fired = run(&mut op, &steps);
    assert!(fired[0].1.is_empty(), "watermark 8 < end - 1 = 9");
    assert_eq!(
        fired[1].1,
        vec![vec![
            "1", "0", "10", "9", "2", "2", "12", "5", "7", "6", "2"
        ]]
    );
    assert_eq!(
        fired[2].1,
        vec![vec![
            "1", "10", "20", "19", "1", "1", "1", "1", "1", "1", "1"
        ]]
    );
}

#[test]
fn late_rows_are_dropped_and_counted() {
    let mut op = operator(spec(TUMBLE), None);
    let steps = vec![
        Step::Rows(vec![(Some(3), 1, Some(1))]),
        Step::Watermark(9),
        // Window [0, 10) has fired: this row is late; the next one is not.
        Step::Rows(vec![(Some(4), 1, Some(100)), (Some(10), 1, Some(2))]),
        Step::Watermark(MAX_WATERMARK),
    ];
    let fired = run(&mut op, &steps);
    assert_eq!(fired[0].1.len(), 1);
    assert_eq!(fired[1].1.len(), 1);
    assert_eq!(
        fired[1].1[0][1], "10",
        "only window [10, 20) fires at the end"
    );
    assert_eq!(op.late_rows_dropped(), 1);
}

#[test]
fn a_hop_row_late_for_its_first_window_still_counts_in_the_next() {
    // HOP(size 10, slide 5): a row at 7 is in [0, 10) and [5, 15).
    let hop = WindowKind::Hop {
        size: 10,
        slide: 5,
        offset: 0,
    };
    let mut op = operator(spec(hop), None);
    let steps = vec![
        Step::Rows(vec![(Some(1), 1, Some(1))]),
        Step::Watermark(9),
        Step::Rows(vec![(Some(7), 1, Some(10))]),
        Step::Watermark(MAX_WATERMARK),
    ];
    let fired = run(&mut op, &steps);
    // [-5, 5) and [0, 10) fired with the first row only.
    assert_eq!(fired[0].1.len(), 2);
    assert_eq!(
        fired[0].1[1][6], "1",
        "SUM of [0, 10) excludes the late row"
    );
    // [5, 15) holds the late row.
    assert_eq!(fired[1].1.len(), 1);
    assert_eq!(fired[1].1[0][1], "5");
    assert_eq!(fired[1].1[0][6], "10");
    assert_eq!(op.late_rows_dropped(), 0, "the row counted in a window");
}

#[test]
fn rows_with_null_time_are_dropped_and_null_values_are_ignored() {
    let mut op = operator(spec(TUMBLE), None);
    let steps = vec![
        Step::Rows(vec![
            (None, 1, Some(1)),
            (Some(2), 1, None),
            (Some(3), 1, None),
        ]),
        Step::Watermark(MAX_WATERMARK),
    ];
    let fired = run(&mut op, &steps);
    // COUNT(*) 2, COUNT(v) 0, SUM NULL, MIN NULL, MAX NULL, AVG NULL, COUNT(DISTINCT) 0.
    assert_eq!(
        fired[0].1,
        vec![vec![
            "1", "0", "10", "9", "2", "0", "NULL", "NULL", "NULL", "NULL", "0"
        ]]
    );
    assert_eq!(op.late_rows_dropped(), 1);
}

#[test]
fn touching_sessions_merge_like_flinks_time_window_intersects() {
    let mut op = operator(spec(SESSION), None);
    let steps = vec![
        // [0, 7) and [7, 14) touch: one session [0, 14). [20, 27) stays apart.
        Step::Rows(vec![
            (Some(0), 1, Some(1)),
            (Some(7), 1, Some(2)),
            (Some(20), 1, Some(4)),
        ]),
        Step::Watermark(MAX_WATERMARK),
    ];
    let fired = run(&mut op, &steps);
    let windows: Vec<(&str, &str, &str)> = fired[0]
        .1
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str(), r[6].as_str()))
        .collect();
    assert_eq!(windows, vec![("0", "14", "3"), ("20", "27", "4")]);
}

#[test]
fn a_row_bridging_two_sessions_merges_them() {
    // Sessions [0, 7) and [12, 19); a row at 6 gives [6, 13), which meets both.
    let mut op = operator(spec(SESSION), None);
    let steps = vec![
        Step::Rows(vec![(Some(0), 1, Some(1)), (Some(12), 1, Some(2))]),
        Step::Rows(vec![(Some(6), 1, Some(4))]),
        Step::Watermark(MAX_WATERMARK),
    ];
    let fired = run(&mut op, &steps);
    assert_eq!(fired[0].1.len(), 1);
    assert_eq!(&fired[0].1[0][1..3], &["0", "19"]);
    assert_eq!(fired[0].1[0][6], "7");
}

#[test]
fn string_keys_and_window_columns_follow_the_output_layout() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("ts", ts_type(), false),
        Field::new("price", DataType::Float64, true),
    ]));
    let ltz = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let out_schema = Arc::new(Schema::new(vec![
        Field::new("window_end", ltz.clone(), false),
        Field::new("cnt", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("avg_price", DataType::Float64, true),
        Field::new("max_name", DataType::Utf8, true),
    ]));
    let spec = WindowAggregateSpec {
        window: TUMBLE,
        time_column: 1,
        key_columns: vec![0],
        aggregates: vec![
            AggregateCall {
                function: AggFunction::CountStar,
                arg: None,
                output_type: DataType::Int64,
            },
            AggregateCall {
                function: AggFunction::Avg,
                arg: Some(2),
                output_type: DataType::Float64,
            },
            AggregateCall {
                function: AggFunction::Max,
                arg: Some(0),
                output_type: DataType::Utf8,
            },
        ],
        output: vec![
            OutputColumn::WindowEnd,
            OutputColumn::Aggregate(0),
            OutputColumn::Key(0),
            OutputColumn::Aggregate(1),
            OutputColumn::Aggregate(2),
        ],
        output_schema: out_schema.clone(),
    };
    let mut op = operator(spec, None);
    let input = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                Some("b"),
                Some("a"),
                None,
                Some("b"),
            ])),
            Arc::new(TimestampMillisecondArray::from(vec![1, 2, 3, 4])),
            Arc::new(arrow::array::Float64Array::from(vec![
                Some(1.0),
                Some(2.0),
                Some(3.0),
                Some(2.0),
            ])),
        ],
    )
    .unwrap();
    let mut out = Output::default();
    op.process_batch(0, input, &mut out).unwrap();
    op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
    let Emitted::Batch(result) = &out.items[0] else {
        panic!("expected a batch")
    };
    assert_eq!(result.schema(), out_schema);
    assert_eq!(
        rows_of(result),
        vec![
            vec!["10", "1", "NULL", "3.0", "NULL"],
            vec!["10", "1", "a", "2.0", "a"],
            vec!["10", "2", "b", "1.5", "b"],
        ]
    );
}

#[test]
fn hop_size_must_be_a_multiple_of_the_slide() {
    let hop = WindowKind::Hop {
        size: 10,
        slide: 3,
        offset: 0,
    };
    let result = WindowAggregate::new(
        spec(hop),
        task(),
        Box::new(MemoryBackend::new()),
        StateId(1),
    );
    assert!(result.is_err());
}

/// `cargo nextest run --release -p weir-runtime --run-ignored only tumble_throughput`
#[test]
#[ignore = "a throughput measurement, not a check"]
fn tumble_throughput() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, false),
        Field::new("price", DataType::Int64, false),
        Field::new("ts", ts_type(), false),
    ]));
    let spec = WindowAggregateSpec {
        window: WindowKind::Tumble {
            size: 10_000,
            offset: 0,
        },
        time_column: 2,
        key_columns: vec![0],
        aggregates: vec![
            AggregateCall {
                function: AggFunction::CountStar,
                arg: None,
                output_type: DataType::Int64,
            },
            AggregateCall {
                function: AggFunction::Max,
                arg: Some(1),
                output_type: DataType::Int64,
            },
        ],
        output: vec![
            OutputColumn::Key(0),
            OutputColumn::WindowStart,
            OutputColumn::WindowEnd,
            OutputColumn::Aggregate(0),
            OutputColumn::Aggregate(1),
        ],
        output_schema: Arc::new(Schema::new(vec![
            Field::new("auction", DataType::Int64, false),
            Field::new("window_start", ts_type(), false),
            Field::new("window_end", ts_type(), false),
            Field::new("cnt", DataType::Int64, false),
            Field::new("max_price", DataType::Int64, true),
        ])),
    };
    let mut op = operator(spec, None);
    let mut rng = SmallRng::seed_from_u64(1);
    let rows_per_batch = 8192;
    let batches: Vec<RecordBatch> = (0..200)
        .map(|b| {
            let auction: Int64Array = (0..rows_per_batch)
                .map(|_| rng.random_range(0..10_000i64))
                .collect();
            let price: Int64Array = (0..rows_per_batch)
                .map(|_| rng.random_range(1..1_000_000i64))
                .collect();
            let ts = TimestampMillisecondArray::from(
                (0..rows_per_batch)
                    .map(|i| (b * rows_per_batch + i) as i64 / 10)
                    .collect::<Vec<i64>>(),
            );
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(auction), Arc::new(price), Arc::new(ts)],
            )
            .unwrap()
        })
        .collect();
    let start = std::time::Instant::now();
    let mut out = Output::default();
    for (b, batch) in batches.into_iter().enumerate() {
        op.process_batch(0, batch, &mut out).unwrap();
        op.process_watermark(((b + 1) * rows_per_batch) as i64 / 10 - 1000, &mut out)
            .unwrap();
    }
    op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
    let elapsed = start.elapsed();
    let rows = 200.0 * rows_per_batch as f64;
    println!("{:.2} million rows/s", rows / elapsed.as_secs_f64() / 1e6);
}
