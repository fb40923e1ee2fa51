//! Tests of the interval join: the pairs it emits, lateness, state cleanup, and checkpoints.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::dataflow::key_group::{hash_columns, key_group, key_group_range, subtask_for_key_group};
use crate::dataflow::message::RowKind;
use crate::operators::join::tests::{batch, drain, joined_row, sorted, spec, task, values_differ};
use weir_state::MemoryBackend;

type Row = (Option<i64>, &'static str, i64);

const BASE: i64 = 1_700_000_000_000;

fn join(lower: i64, upper: i64, filter: bool) -> IntervalJoin {
    IntervalJoin::new(
        spec(filter.then(values_differ), false),
        2,
        2,
        lower,
        upper,
        task(),
        Box::new(MemoryBackend::new()),
        StateId(3),
    )
    .unwrap()
}

fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

/// Rows in roughly increasing time (out of order by less than `disorder`).
fn rows(seed: &mut u64, count: usize, disorder: i64) -> Vec<Row> {
    let values = ["a", "b"];
    (0..count)
        .map(|i| {
            let jitter = (lcg(seed) % disorder as u64) as i64;
            let k = lcg(seed) % 4;
            let key = if k == 3 { None } else { Some(k as i64) };
            (
                key,
                values[(lcg(seed) % 2) as usize],
                BASE + i as i64 * 40 + jitter,
            )
        })
        .collect()
}

fn reference(left: &[Row], right: &[Row], lower: i64, upper: i64) -> Vec<String> {
    let mut expected = Vec::new();
    for l in left {
        for r in right {
            if l.0.is_some() && l.0 == r.0 && l.1 != r.1 && l.2 + lower <= r.2 && r.2 <= l.2 + upper
            {
                expected.push(joined_row(RowKind::Insert, *l, *r));
            }
        }
    }
    expected
}

#[test]
fn interval_join_emits_exactly_the_pairs_within_inclusive_bounds() {
    for (lower, upper) in [(-100, 100), (0, 250), (-300, -40), (-20, 20)] {
        let mut seed = 7;
        let disorder = 30;
        let left = rows(&mut seed, 80, disorder);
        let right = rows(&mut seed, 70, disorder);
        let mut op = join(lower, upper, true);
        let mut out = Output::default();
        let (mut li, mut ri) = (0, 0);
        let (mut max_l, mut max_r) = (i64::MIN, i64::MIN);
        while li < left.len() || ri < right.len() {
            let size = 1 + (lcg(&mut seed) % 5) as usize;
            if (lcg(&mut seed).is_multiple_of(2) && li < left.len()) || ri >= right.len() {
                let end = (li + size).min(left.len());
                op.process_batch(0, batch(&left[li..end], None), &mut out)
                    .unwrap();
                max_l = left[li..end].iter().map(|r| r.2).fold(max_l, i64::max);
                li = end;
            } else {
                let end = (ri + size).min(right.len());
                op.process_batch(1, batch(&right[ri..end], None), &mut out)
                    .unwrap();
                max_r = right[ri..end].iter().map(|r| r.2).fold(max_r, i64::max);
                ri = end;
            }
            // A bounded-out-of-orderness watermark: no row is ever late.
            let wm = max_l.min(max_r).saturating_sub(disorder + 1);
            if wm > i64::MIN {
                op.process_watermark(wm, &mut out).unwrap();
            }
        }
        op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
        let (got, _) = drain(&mut out);
        let expected = reference(&left, &right, lower, upper);
        assert!(
            !expected.is_empty(),
            "bounds ({lower}, {upper}) match something"
        );
        assert_eq!(sorted(got), sorted(expected), "bounds ({lower}, {upper})");
        assert_eq!(op.late_rows_dropped(), 0);
        assert_eq!(op.buffered_rows(), 0);
    }
}

#[test]
fn interval_join_drops_and_counts_rows_that_can_no_longer_match() {
    let mut op = join(-100, 100, false);
    let mut out = Output::default();
    let l: Row = (Some(1), "a", BASE + 1_000);
    op.process_batch(0, batch(&[l], None), &mut out).unwrap();
    op.process_watermark(BASE + 10_000, &mut out).unwrap();
    // Far behind the watermark: its partner expired, and it is never cached.
    op.process_batch(1, batch(&[(Some(1), "x", BASE + 1_000)], None), &mut out)
        .unwrap();
    // Behind the watermark but still able to meet a future left row: kept, not late.
    let r: Row = (Some(1), "y", BASE + 9_950);
    op.process_batch(1, batch(&[r], None), &mut out).unwrap();
    let l2: Row = (Some(1), "b", BASE + 10_001);
    op.process_batch(0, batch(&[l2], None), &mut out).unwrap();
    let (rows, watermarks) = drain(&mut out);
    assert_eq!(rows, vec![joined_row(RowKind::Insert, l2, r)]);
    assert_eq!(op.late_rows_dropped(), 1);
    // The watermark is held back by the larger relative bound.
    assert_eq!(watermarks, vec![BASE + 10_000 - 100]);
}

#[test]
fn interval_join_writes_cached_rows_at_checkpoints_only_and_deletes_them_once_expired() {
    let mut op = join(0, 1_000, false);
    let mut out = Output::default();
    let stored = |op: &IntervalJoin| {
        let stored = op.backend.scan_state(StateId(3)).unwrap();
        let rows = stored.iter().filter(|(_, key, _)| key[0] < 2).count();
        (rows, stored.len() - rows)
    };
    let left: Vec<Row> = (0..10).map(|i| (Some(i), "a", BASE + i * 10)).collect();
    let right: Vec<Row> = (0..10)
        .map(|i| (Some(i), "b", BASE + 500 + i * 10))
        .collect();
    op.process_batch(0, batch(&left, None), &mut out).unwrap();
    op.process_watermark(BASE, &mut out).unwrap();
    // Watermarks write no rows: a row that expires before the next checkpoint never reaches
    // the backend (and the few timer changes wait too).
    assert_eq!(stored(&op), (0, 0));
    // A checkpoint writes the ten rows and each key's cleanup timer of the left side.
    checkpoint(&mut op, 1);
    assert_eq!(stored(&op), (10, 10));
    op.process_batch(1, batch(&right, None), &mut out).unwrap();
    assert_eq!(drain(&mut out).0.len(), 10);
    assert_eq!(op.buffered_rows(), 20);
    // The next one writes only what came since: the right rows and their timers.
    checkpoint(&mut op, 2);
    assert_eq!(stored(&op), (20, 20));
    checkpoint(&mut op, 3);
    assert_eq!(stored(&op), (20, 20));

    // Left rows can match right rows up to l.t + 1000; right rows left rows from r.t - 1000.
    // The cleanup timers fire at t + relative + (upper - lower) / 2 + 1.
    op.process_watermark(BASE + 1_700, &mut out).unwrap();
    assert_eq!(op.buffered_rows(), 0, "both sides expired");
    assert!(op.keys.is_empty() && op.timers.is_empty());
    // The deletions go at the next checkpoint.
    checkpoint(&mut op, 4);
    assert!(op.backend.scan_state(StateId(3)).unwrap().is_empty());
}

#[test]
fn interval_join_refuses_updating_input() {
    let mut op = join(-10, 10, false);
    let mut out = Output::default();
    let updating = batch(&[(Some(1), "a", BASE)], Some(&[RowKind::Insert]));
    assert!(op.process_batch(0, updating, &mut out).is_err());
}

#[test]
fn interval_join_with_lower_above_upper_emits_nothing_and_does_not_delay_watermarks() {
    let mut op = join(10, -10, false);
    let mut out = Output::default();
    op.process_batch(0, batch(&[(Some(1), "a", BASE)], None), &mut out)
        .unwrap();
    op.process_batch(1, batch(&[(Some(1), "b", BASE)], None), &mut out)
        .unwrap();
    op.process_watermark(BASE, &mut out).unwrap();
    assert_eq!(drain(&mut out), (vec![], vec![BASE]));
    assert_eq!(op.buffered_rows(), 0);
}

// Checkpoints.

/// One step of a test input: rows on one side, or the combined watermark.
#[derive(Clone, Debug)]
enum Step {
    Rows(usize, Vec<Row>),
    Watermark(Timestamp),
}

/// `count` random steps over `keys` keys (and NULL keys), both sides in roughly increasing
/// time. With `late`, watermarks sometimes run ahead of the rows, so some rows arrive late;
/// without, the watermark trails the rows by more than their disorder and no row is late.
fn random_steps(seed: u64, count: usize, keys: u64, late: bool) -> Vec<Step> {
    let mut state = seed.wrapping_mul(31).wrapping_add(1);
    let values = ["a", "b"];
    let disorder = 30;
    let mut clock = [BASE; 2];
    let mut max = [i64::MIN; 2];
    let mut watermark = i64::MIN;
    let mut steps = Vec::new();
    for _ in 0..count {
        if lcg(&mut state).is_multiple_of(3) {
            let mut wm = max[0].min(max[1]).saturating_sub(disorder + 1);
            if late && lcg(&mut state).is_multiple_of(3) {
                wm = wm.saturating_add((lcg(&mut state) % 400) as i64);
            }
            if wm > watermark && max[0].min(max[1]) > i64::MIN {
                watermark = wm;
                steps.push(Step::Watermark(wm));
            }
            continue;
        }
        let side = (lcg(&mut state) % 2) as usize;
        let size = 1 + lcg(&mut state) % 6;
        let rows = (0..size)
            .map(|_| {
                clock[side] += (lcg(&mut state) % 40) as i64;
                let t = clock[side] + (lcg(&mut state) % disorder as u64) as i64;
                max[side] = max[side].max(t);
                let k = lcg(&mut state) % (keys + 1);
                let key = (k < keys).then_some(k as i64);
                (key, values[(lcg(&mut state) % 2) as usize], t)
            })
            .collect();
        steps.push(Step::Rows(side, rows));
    }
    steps.push(Step::Watermark(MAX_WATERMARK));
    steps
}

/// Run `steps`; per step, the rows emitted (sorted) and the watermarks.
fn run(op: &mut IntervalJoin, steps: &[Step]) -> Vec<(Vec<String>, Vec<Timestamp>)> {
    steps
        .iter()
        .map(|step| {
            let mut out = Output::default();
            match step {
                Step::Rows(side, rows) => op
                    .process_batch(*side, batch(rows, None), &mut out)
                    .unwrap(),
                Step::Watermark(wm) => op.process_watermark(*wm, &mut out).unwrap(),
            }
            let (rows, watermarks) = drain(&mut out);
            (sorted(rows), watermarks)
        })
        .collect()
}

fn checkpoint(op: &mut IntervalJoin, id: u64) -> OperatorSnapshot {
    let ctx = SnapshotContext {
        checkpoint_id: id,
        savepoint: false,
        scratch: std::env::temp_dir().join("unused"),
    };
    op.snapshot(&ctx).unwrap().unwrap()
}

/// The entries of a memory-backed snapshot, with their key groups.
fn entries(snapshot: &OperatorSnapshot) -> Vec<(KeyGroup, weir_state::Entry)> {
    match &snapshot.keyed {
        Some(weir_state::LocalSnapshot::Entries(groups)) => groups
            .iter()
            .flat_map(|(&group, entries)| entries.iter().map(move |e| (group, e.clone())))
            .collect(),
        other => panic!("a memory-backed operator made {other:?}"),
    }
}

/// A fresh operator for subtask `subtask` of `parallelism`, restored from the entries of
/// `snapshots` in the key groups it owns and from all their operator state.
fn restored(
    lower: i64,
    upper: i64,
    subtask: usize,
    parallelism: usize,
    snapshots: &[OperatorSnapshot],
) -> IntervalJoin {
    let task = TaskInfo {
        subtask,
        parallelism,
        ..task()
    };
    let owned = key_group_range(subtask, task.max_parallelism, parallelism);
    let mut backend = MemoryBackend::new();
    for snapshot in snapshots {
        for (group, e) in entries(snapshot) {
            if owned.contains(&group) {
                backend.put(e.state, group, &e.key, &e.value).unwrap();
            }
        }
    }
    let mut op = IntervalJoin::new(
        spec(Some(values_differ()), false),
        2,
        2,
        lower,
        upper,
        task,
        Box::new(backend),
        StateId(3),
    )
    .unwrap();
    let items = snapshots
        .iter()
        .flat_map(|s| s.operator_state.clone())
        .collect();
    op.restore(items).unwrap();
    op
}

/// Everything that decides what the operator emits later, in a comparable form.
#[allow(clippy::type_complexity)]
fn state_of(
    op: &IntervalJoin,
) -> (
    BTreeMap<
        Vec<u8>,
        (
            KeyGroup,
            Vec<Vec<(Timestamp, u64, Vec<u8>)>>,
            [Option<Timestamp>; 2],
        ),
    >,
    BTreeSet<(Timestamp, Box<[u8]>)>,
    Timestamp,
    [Timestamp; 2],
) {
    let keys = op
        .keys
        .iter()
        .map(|(key, cache)| {
            let rows = cache
                .rows
                .iter()
                .map(|side| {
                    side.iter()
                        .map(|(&(t, seq), row)| (t, seq, row.to_vec()))
                        .collect()
                })
                .collect();
            (key.to_vec(), (cache.key_group, rows, cache.cleanup))
        })
        .collect();
    (keys, op.timers.clone(), op.watermark, op.expiration)
}

const BOUNDS: [(i64, i64); 4] = [(-100, 100), (0, 250), (-300, -40), (-20, 20)];

/// Checkpoints every few steps must change nothing the operator emits, and an operator
/// restored from any of them must hold the same state and emit exactly what the uninterrupted
/// run emits after it, late rows included.
#[test]
fn interval_join_restored_from_any_checkpoint_continues_exactly_like_the_uninterrupted_run() {
    for (lower, upper) in BOUNDS {
        let mut late = 0;
        for seed in 0..5 {
            let steps = random_steps(seed, 90, 4, true);
            let mut reference = join(lower, upper, true);
            let expected = run(&mut reference, &steps);
            assert!(
                expected.iter().any(|(rows, _)| !rows.is_empty()),
                "bounds ({lower}, {upper}), seed {seed}: something matches"
            );
            let mut op = join(lower, upper, true);
            let mut late_before = Vec::new();
            let mut restores = 0;
            for (i, step) in steps.iter().enumerate() {
                let got = run(&mut op, std::slice::from_ref(step));
                assert_eq!(
                    got[0], expected[i],
                    "({lower}, {upper}) seed {seed} step {i}"
                );
                late_before.push(op.late_rows_dropped());
                if i % 3 != 1 {
                    continue;
                }
                let snapshot = checkpoint(&mut op, i as u64);
                let mut back = restored(lower, upper, 0, 1, std::slice::from_ref(&snapshot));
                assert!(
                    state_of(&back) == state_of(&op),
                    "({lower}, {upper}) seed {seed}: state restored after step {i}"
                );
                let after = run(&mut back, &steps[i + 1..]);
                assert_eq!(
                    after,
                    expected[i + 1..],
                    "({lower}, {upper}) seed {seed}: output after a restore after step {i}"
                );
                assert_eq!(
                    back.late_rows_dropped(),
                    reference.late_rows_dropped() - late_before[i],
                    "({lower}, {upper}) seed {seed}: late rows after a restore after step {i}"
                );
                assert_eq!(back.buffered_rows(), 0);
                restores += 1;
            }
            assert!(restores > 10);
            late += reference.late_rows_dropped();
        }
        assert!(late > 0, "({lower}, {upper}): the inputs have late rows");
    }
}

/// The subtask of `parallelism` that receives a row with join key `key`.
fn subtask_of(key: Option<i64>, parallelism: usize) -> usize {
    let column: arrow::array::ArrayRef =
        std::sync::Arc::new(arrow::array::Int64Array::from(vec![key]));
    let hash = hash_columns(&[column], 1).unwrap()[0];
    subtask_for_key_group(key_group(hash, 128), 128, parallelism)
}

/// Run `steps` on subtasks: rows to the subtask of their key, watermarks to all.
fn run_partitioned(ops: &mut [IntervalJoin], steps: &[Step]) -> Vec<String> {
    let parallelism = ops.len();
    let mut rows_out = Vec::new();
    for step in steps {
        for (subtask, op) in ops.iter_mut().enumerate() {
            let part = match step {
                Step::Rows(side, rows) => {
                    let mine: Vec<Row> = rows
                        .iter()
                        .filter(|r| subtask_of(r.0, parallelism) == subtask)
                        .copied()
                        .collect();
                    if mine.is_empty() {
                        continue;
                    }
                    Step::Rows(*side, mine)
                }
                Step::Watermark(wm) => Step::Watermark(*wm),
            };
            for (rows, _) in run(op, &[part]) {
                rows_out.extend(rows);
            }
        }
    }
    rows_out
}

/// A snapshot taken at one parallelism and restored at another (key groups redistributed,
/// operator state unioned) must still join every pair exactly once.
#[test]
fn interval_join_rescaled_restore_joins_every_pair_exactly_once() {
    for (from, to) in [(2, 3), (2, 1), (1, 4), (3, 2)] {
        for (lower, upper) in BOUNDS {
            let seed = (from * 10 + to) as u64;
            let steps = random_steps(seed, 120, 16, false);
            let rows_of = |wanted: usize| -> Vec<Row> {
                steps
                    .iter()
                    .filter_map(|s| match s {
                        Step::Rows(side, rows) if *side == wanted => Some(rows.clone()),
                        _ => None,
                    })
                    .flatten()
                    .collect()
            };
            let expected = reference(&rows_of(0), &rows_of(1), lower, upper);
            assert!(!expected.is_empty());
            let cut = steps.len() / 2;
            let mut before: Vec<IntervalJoin> = (0..from)
                .map(|subtask| restored(lower, upper, subtask, from, &[]))
                .collect();
            let mut got = run_partitioned(&mut before, &steps[..cut]);
            let snapshots: Vec<OperatorSnapshot> =
                before.iter_mut().map(|op| checkpoint(op, 1)).collect();
            let buffered: usize = before.iter().map(IntervalJoin::buffered_rows).sum();
            assert!(buffered > 0, "state is carried over");
            let mut after: Vec<IntervalJoin> = (0..to)
                .map(|subtask| restored(lower, upper, subtask, to, &snapshots))
                .collect();
            assert_eq!(
                after.iter().map(IntervalJoin::buffered_rows).sum::<usize>(),
                buffered
            );
            got.extend(run_partitioned(&mut after, &steps[cut..]));
            assert_eq!(
                sorted(got),
                sorted(expected),
                "{from} -> {to}, bounds ({lower}, {upper})"
            );
            for op in &after {
                assert_eq!(op.buffered_rows(), 0);
            }
        }
    }
}

#[test]
fn interval_join_restore_at_the_same_parallelism_takes_its_own_expiration_times() {
    let task_of = |subtask, parallelism| TaskInfo {
        subtask,
        parallelism,
        ..task()
    };
    let items = vec![
        state::checkpoint_item(50, [10, 20], &task_of(0, 2)),
        state::checkpoint_item(50, [5, 30], &task_of(1, 2)),
    ];
    assert_eq!(
        state::restored_expiration(&items, &task_of(1, 2)),
        Some([5, 30])
    );
    assert_eq!(
        state::restored_expiration(&items, &task_of(0, 3)),
        Some([5, 20])
    );
    assert_eq!(state::restored_expiration(&[], &task_of(0, 1)), None);
    assert_eq!(restored_watermark(&items), Some(50));
}
