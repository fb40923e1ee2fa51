//! The window join against hand-computed pairs: firing, lateness, outer padding, restore.

use super::*;
use std::sync::Arc;

use crate::dataflow::message::MAX_WATERMARK;
use crate::operators::join::tests::{batch, drain, joined_row, sorted, spec, task, values_differ};
use weir_state::MemoryBackend;

type Row = (Option<i64>, &'static str, i64);

const BASE: i64 = 1_700_000_000_000;
const SIZE: i64 = 1_000;

/// In these tests `t` plays `window_end`, and the key `k` stands for `(key, window bounds)`:
/// rows of different windows get different keys, as the planner's equi keys guarantee.
fn join(filter: bool) -> WindowJoin {
    WindowJoin::new(
        spec(filter.then(values_differ), false),
        2,
        2,
        task(),
        Box::new(MemoryBackend::new()),
        StateId(9),
    )
    .unwrap()
}

/// A row of key `k` in the tumbling window ending at `end`; the key encodes the window.
fn row(k: i64, v: &'static str, end: i64) -> Row {
    (Some(k * 1_000 + (end - BASE) / SIZE), v, end)
}

#[test]
fn window_join_emits_only_when_the_watermark_passes_window_end() {
    let mut op = join(false);
    let mut out = Output::default();
    let end = BASE + SIZE;
    let l = row(1, "a", end);
    let r = row(1, "b", end);
    op.process_batch(0, batch(&[l], None), &mut out).unwrap();
    op.process_batch(1, batch(&[r], None), &mut out).unwrap();
    op.process_watermark(end - 2, &mut out).unwrap();
    assert_eq!(drain(&mut out), (vec![], vec![end - 2]));
    assert_eq!(op.buffered_rows(), 2);

    op.process_watermark(end - 1, &mut out).unwrap();
    assert_eq!(
        drain(&mut out),
        (vec![joined_row(RowKind::Insert, l, r)], vec![end - 1])
    );
    assert_eq!(op.buffered_rows(), 0);
}

fn snapshot(op: &mut WindowJoin, id: u64) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = SnapshotContext {
        checkpoint_id: id,
        savepoint: false,
        scratch: dir.path().to_path_buf(),
    };
    op.snapshot(&ctx).unwrap();
}

#[test]
fn window_join_writes_buffered_rows_at_checkpoints_only_and_deletes_them_when_fired() {
    let mut op = join(false);
    let mut out = Output::default();
    let (end, next) = (BASE + SIZE, BASE + 2 * SIZE);
    op.process_batch(0, batch(&[row(1, "a", end)], None), &mut out)
        .unwrap();
    op.process_batch(1, batch(&[row(1, "b", next)], None), &mut out)
        .unwrap();
    op.process_watermark(end - 2, &mut out).unwrap();
    // Watermarks write nothing: a window that fires before the next checkpoint never
    // reaches the backend.
    assert!(op.backend.scan_state(StateId(9)).unwrap().is_empty());

    snapshot(&mut op, 1);
    assert_eq!(op.backend.scan_state(StateId(9)).unwrap().len(), 2);
    // A second checkpoint writes only what came since.
    op.process_batch(0, batch(&[row(2, "c", next)], None), &mut out)
        .unwrap();
    snapshot(&mut op, 2);
    assert_eq!(op.backend.scan_state(StateId(9)).unwrap().len(), 3);

    // The first window fires: its written row goes at the next checkpoint; the row of the
    // still-open window stays.
    op.process_watermark(end - 1, &mut out).unwrap();
    op.process_batch(0, batch(&[row(3, "d", end + 5 * SIZE)], None), &mut out)
        .unwrap();
    op.process_watermark(end, &mut out).unwrap();
    snapshot(&mut op, 3);
    assert_eq!(op.backend.scan_state(StateId(9)).unwrap().len(), 3);
    assert_eq!(op.buffered_rows(), 3);
    op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
    snapshot(&mut op, 4);
    assert!(op.backend.scan_state(StateId(9)).unwrap().is_empty());
}

#[test]
fn window_join_joins_only_rows_of_the_same_window() {
    let values = ["a", "b", "c"];
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut seed: u64 = 11;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for w in 1..=4 {
        for _ in 0..12 {
            let end = BASE + w * SIZE;
            let l = row((next() % 3) as i64, values[(next() % 3) as usize], end);
            left.push(l);
            let r = row((next() % 3) as i64, values[(next() % 3) as usize], end);
            right.push(r);
        }
    }
    let mut op = join(true);
    let mut out = Output::default();
    // Interleave the sides window by window, firing each window after the next one began.
    for w in 0..4usize {
        let rows = w * 12..(w + 1) * 12;
        op.process_batch(0, batch(&left[rows.start..rows.start + 5], None), &mut out)
            .unwrap();
        op.process_batch(1, batch(&right[rows.clone()], None), &mut out)
            .unwrap();
        op.process_batch(0, batch(&left[rows.start + 5..rows.end], None), &mut out)
            .unwrap();
        if w > 0 {
            op.process_watermark(BASE + w as i64 * SIZE - 1, &mut out)
                .unwrap();
        }
    }
    op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
    let (got, watermarks) = drain(&mut out);
    let mut expected = Vec::new();
    for l in &left {
        for r in &right {
            if l.0 == r.0 && l.2 == r.2 && l.1 != r.1 {
                expected.push(joined_row(RowKind::Insert, *l, *r));
            }
        }
    }
    assert!(expected.len() > 20);
    assert_eq!(sorted(got), sorted(expected));
    assert_eq!(watermarks.last(), Some(&MAX_WATERMARK));
    assert_eq!(op.late_rows_dropped(), 0);
    assert_eq!(op.buffered_rows(), 0);
}

#[test]
fn window_join_drops_and_counts_rows_of_fired_windows() {
    let mut op = join(false);
    let mut out = Output::default();
    let end = BASE + SIZE;
    op.process_batch(0, batch(&[row(1, "a", end)], None), &mut out)
        .unwrap();
    op.process_watermark(end - 1, &mut out).unwrap();
    let late = row(1, "b", end);
    let next = row(1, "c", end + SIZE);
    op.process_batch(1, batch(&[late, next], None), &mut out)
        .unwrap();
    assert_eq!(op.late_rows_dropped(), 1);
    assert_eq!(op.buffered_rows(), 1);
    op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
    assert_eq!(drain(&mut out).0, Vec::<String>::new());
}

fn outer(join_type: WindowJoinType) -> WindowJoin {
    let mut spec = spec(Some(values_differ()), false);
    let fields: Vec<_> = spec
        .output_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    spec.output_schema = Arc::new(arrow::datatypes::Schema::new(fields));
    WindowJoin::new(
        spec,
        2,
        2,
        task(),
        Box::new(MemoryBackend::new()),
        StateId(9),
    )
    .unwrap()
    .with_join_type(join_type)
}

fn padded(side: usize, r: Row) -> String {
    let b = batch(&[r], None);
    let cells: Vec<String> = (0..3)
        .map(|c| arrow::util::display::array_value_to_string(b.column(c), 0).unwrap())
        .collect();
    let nulls = ["", "", ""].join("|");
    if side == LEFT {
        format!("+I|{}|{nulls}", cells.join("|"))
    } else {
        format!("+I|{nulls}|{}", cells.join("|"))
    }
}

#[test]
fn outer_window_joins_pad_rows_that_matched_nothing_after_the_condition() {
    let end = BASE + SIZE;
    let (la, lb, ld) = (row(1, "a", end), row(1, "b", end), row(2, "d", end));
    let lc: Row = (None, "c", end);
    let (ra, re) = (row(1, "a", end), row(3, "e", end));
    let rf: Row = (None, "f", end);
    let matched = joined_row(RowKind::Insert, lb, ra);
    let cases = [
        (WindowJoinType::Inner, vec![matched.clone()]),
        (
            WindowJoinType::LeftOuter,
            vec![
                matched.clone(),
                padded(LEFT, la),
                padded(LEFT, lc),
                padded(LEFT, ld),
            ],
        ),
        (
            WindowJoinType::RightOuter,
            vec![matched.clone(), padded(RIGHT, re), padded(RIGHT, rf)],
        ),
        (
            WindowJoinType::FullOuter,
            vec![
                matched.clone(),
                padded(LEFT, la),
                padded(LEFT, lc),
                padded(LEFT, ld),
                padded(RIGHT, re),
                padded(RIGHT, rf),
            ],
        ),
    ];
    for (join_type, expected) in cases {
        let mut op = outer(join_type);
        let mut out = Output::default();
        op.process_batch(0, batch(&[la, lb, lc, ld], None), &mut out)
            .unwrap();
        op.process_batch(1, batch(&[ra, re, rf], None), &mut out)
            .unwrap();
        op.process_watermark(end - 1, &mut out).unwrap();
        let (got, _) = drain(&mut out);
        assert_eq!(sorted(got), sorted(expected), "{join_type:?}");
        assert_eq!(op.buffered_rows(), 0);
    }
}

#[test]
fn a_restored_window_join_emits_what_an_uninterrupted_one_does() {
    let end = BASE + SIZE;
    let first = [row(1, "a", end), row(2, "b", end), (None, "n", end)];
    let second = [row(1, "c", end), row(2, "d", end), row(3, "e", end + SIZE)];
    let run = |restart: bool| {
        let mut op = outer(WindowJoinType::FullOuter);
        let mut out = Output::default();
        op.process_batch(0, batch(&first, None), &mut out).unwrap();
        op.process_watermark(end - 10, &mut out).unwrap();
        if restart {
            let dir = tempfile::tempdir().unwrap();
            let ctx = SnapshotContext {
                checkpoint_id: 1,
                savepoint: false,
                scratch: dir.path().to_path_buf(),
            };
            let snapshot = op.snapshot(&ctx).unwrap().unwrap();
            let mut backend = MemoryBackend::new();
            let writes = op
                .backend
                .scan_state(StateId(9))
                .unwrap()
                .into_iter()
                .map(|(key_group, key, value)| weir_state::WriteOp::Put {
                    state: StateId(9),
                    key_group,
                    key,
                    value,
                })
                .collect();
            backend.write_batch(writes).unwrap();
            let mut restored = outer(WindowJoinType::FullOuter);
            restored.backend = Box::new(backend);
            restored.restore(snapshot.operator_state).unwrap();
            assert_eq!(restored.buffered_rows(), 3);
            op = restored;
        }
        op.process_batch(1, batch(&second, None), &mut out).unwrap();
        op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
        sorted(drain(&mut out).0)
    };
    let uninterrupted = run(false);
    assert_eq!(uninterrupted.len(), 4, "{uninterrupted:?}");
    assert_eq!(run(true), uninterrupted);
}

#[test]
fn window_join_refuses_retractions() {
    let mut op = join(false);
    let mut out = Output::default();
    let retraction = batch(&[row(1, "a", BASE)], Some(&[RowKind::Delete]));
    assert!(op.process_batch(0, retraction, &mut out).is_err());
}
