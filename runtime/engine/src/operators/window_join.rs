//! Flink's window join (`WindowJoinOperator`, inner): both inputs come out of a window
//! table-valued function and the equi keys include both window bounds, so only rows of the same
//! window meet.
//!
//! Rows are buffered per `window_end` and key. When the watermark reaches `window_end - 1` the
//! window fires: for every key, each left row is paired with each right row (left-major, in
//! arrival order, as Flink's nested loop), the non-equi condition is applied, the result is
//! emitted as inserts, and the window's rows are dropped; then the watermark is forwarded
//! unchanged. A row whose window has already fired (`window_end - 1 <= watermark`) is late:
//! dropped and counted in [`Operator::late_rows_dropped`], as Flink's `numLateRecordsDropped`.
//! A window ending at `i64::MAX` is never late (Flink's `isWindowFired`). Rows with a NULL key
//! never match and are not buffered.
//!
//! Inputs are append streams: `+I` and `+U` rows are buffered, a `-U`/`-D` row is an error (as
//! in Flink, which plans window joins over insert-only inputs only).
//!
//! State layout in the backend, one entry per buffered row:
//! `[side: u8][window_end: sortable i64][key length: u32 BE][key bytes][seq: u64 BE]` → row
//! bytes; rows are written at watermarks (only those of windows not fired yet) and deleted when
//! their window fires.

use std::collections::BTreeMap;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use weir_state::{StateBackend, StateId};

use crate::dataflow::key_group::KeyGroup;
use crate::dataflow::message::{RowKind, Timestamp};
use crate::dataflow::operator::{Operator, Output, TaskInfo};
use crate::error::Result;
use crate::operators::join::{
    FixedMap, JoinCore, JoinSpec, LEFT, PendingWrites, RIGHT, RowArena, StateKey, time_millis,
};

/// The rows of one key in one window: (sequence number, row bytes) per side, in arrival order.
struct WindowKey {
    key_group: KeyGroup,
    rows: [Vec<(u64, Box<[u8]>)>; 2],
}

type Window = FixedMap<Box<[u8]>, WindowKey>;

/// A buffered row not yet written to the backend.
struct Unflushed {
    side: usize,
    window_end: Timestamp,
    key: Box<[u8]>,
    index: usize,
}

pub struct WindowJoin {
    core: JoinCore,
    window_end_columns: [usize; 2],
    /// Buffered rows by window end.
    windows: BTreeMap<Timestamp, Window>,
    watermark: Timestamp,
    late_rows: u64,
    backend: Box<dyn StateBackend>,
    pending: PendingWrites,
    next_seq: u64,
    /// Rows with a smaller sequence number were written at the last flush (if still buffered).
    flushed_seq: u64,
    unflushed: Vec<Unflushed>,
}

/// Flink's `isWindowFired` (UTC windows).
fn is_fired(window_end: Timestamp, watermark: Timestamp) -> bool {
    window_end != i64::MAX && window_end.saturating_sub(1) <= watermark
}

impl WindowJoin {
    /// `left_window_end`/`right_window_end`: the `window_end` column (visible column index) of
    /// each input.
    pub fn new(
        spec: JoinSpec,
        left_window_end: usize,
        right_window_end: usize,
        task: TaskInfo,
        state: Box<dyn StateBackend>,
        state_id: StateId,
    ) -> Result<Self> {
        let core = JoinCore::new(spec, &task)?;
        if left_window_end >= core.spec.left_width || right_window_end >= core.spec.right_width {
            return Err(core.error(format!(
                "window_end column out of range: left {left_window_end}, right {right_window_end}"
            )));
        }
        Ok(WindowJoin {
            core,
            window_end_columns: [left_window_end, right_window_end],
            windows: BTreeMap::new(),
            watermark: Timestamp::MIN,
            late_rows: 0,
            backend: state,
            pending: PendingWrites::new(state_id),
            next_seq: 0,
            flushed_seq: 0,
            unflushed: Vec::new(),
        })
    }

    /// Rows buffered on both sides, in windows not fired yet.
    pub fn buffered_rows(&self) -> usize {
        self.windows
            .values()
            .flat_map(|w| w.values())
            .map(|k| k.rows[LEFT].len() + k.rows[RIGHT].len())
            .sum()
    }

    fn process(&mut self, input: usize, batch: &RecordBatch) -> Result<()> {
        let (visible, kinds) = self.core.split_input(input, batch)?;
        let n = visible.num_rows();
        if n == 0 {
            return Ok(());
        }
        if let Some(kinds) = &kinds
            && kinds
                .values()
                .iter()
                .any(|k| !RowKind::from_i8(*k).is_some_and(RowKind::is_addition))
        {
            return Err(self.core.error(format!(
                "input {input} retracts rows; a window join needs append-only inputs"
            )));
        }
        let ends = time_millis(visible.column(self.window_end_columns[input]))?;
        let keys = self.core.encode_keys(input, &visible)?;
        let rows = self.core.encode_rows(input, &visible)?;
        for i in 0..n {
            if ends.is_null(i) || is_fired(ends.value(i), self.watermark) {
                self.late_rows += 1;
                continue;
            }
            if keys.is_null(i) {
                continue;
            }
            let end = ends.value(i);
            let key = keys.key(i);
            let window = self.windows.entry(end).or_default();
            let entry = match window.get_mut(key) {
                Some(entry) => entry,
                None => window.entry(key.into()).or_insert(WindowKey {
                    key_group: keys.groups[i],
                    rows: [Vec::new(), Vec::new()],
                }),
            };
            let seq = self.next_seq;
            self.next_seq += 1;
            entry.rows[input].push((seq, rows.row(i).data().into()));
            self.unflushed.push(Unflushed {
                side: input,
                window_end: end,
                key: key.into(),
                index: entry.rows[input].len() - 1,
            });
        }
        Ok(())
    }

    /// Join and drop the rows of one window.
    fn fire(&mut self, window_end: Timestamp, window: Window, out: &mut Output) -> Result<()> {
        let mut arenas = [RowArena::default(), RowArena::default()];
        let mut pairs: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
        for (key, entry) in &window {
            for side in [LEFT, RIGHT] {
                for (seq, _) in &entry.rows[side] {
                    if *seq < self.flushed_seq {
                        self.pending
                            .delete(entry.key_group, row_state_key(side, window_end, key, *seq));
                    }
                }
            }
            let [left, right] = &entry.rows;
            if left.is_empty() || right.is_empty() {
                continue;
            }
            let (l0, r0) = (arenas[LEFT].len() as u32, arenas[RIGHT].len() as u32);
            for (_, row) in left {
                arenas[LEFT].push(row);
            }
            for (_, row) in right {
                arenas[RIGHT].push(row);
            }
            for li in 0..left.len() as u32 {
                for ri in 0..right.len() as u32 {
                    pairs[LEFT].push(l0 + li);
                    pairs[RIGHT].push(r0 + ri);
                }
            }
        }
        if pairs[LEFT].is_empty() {
            return Ok(());
        }
        let left = self.core.decode_rows(LEFT, arenas[LEFT].iter())?;
        let right = self.core.decode_rows(RIGHT, arenas[RIGHT].iter())?;
        let left = JoinCore::take_columns(&left, &pairs[LEFT])?;
        let right = JoinCore::take_columns(&right, &pairs[RIGHT])?;
        let joined = self.core.emit(left, right, None, pairs[LEFT].len())?;
        out.batch(joined.batch);
        Ok(())
    }

    /// Write rows buffered since the last flush whose window has not fired.
    fn flush(&mut self) -> Result<()> {
        for u in self.unflushed.drain(..) {
            if let Some(window) = self.windows.get(&u.window_end)
                && let Some(entry) = window.get(&u.key)
                && let Some((seq, row)) = entry.rows[u.side].get(u.index)
            {
                let state_key = row_state_key(u.side, u.window_end, &u.key, *seq);
                self.pending.put(entry.key_group, state_key, row.to_vec());
            }
        }
        self.flushed_seq = self.next_seq;
        self.pending.flush(self.backend.as_mut())
    }

    fn advance(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        self.watermark = self.watermark.max(watermark);
        // Windows with `window_end - 1 <= watermark` fire: those ending before
        // `watermark + 2`, or all of them once that overflows.
        let fired = match self.watermark.checked_add(2) {
            Some(first_kept) => {
                let kept = self.windows.split_off(&first_kept);
                std::mem::replace(&mut self.windows, kept)
            }
            None => std::mem::take(&mut self.windows),
        };
        for (window_end, window) in fired {
            self.fire(window_end, window, out)?;
        }
        self.flush()?;
        out.watermark(watermark);
        Ok(())
    }
}

fn row_state_key(side: usize, window_end: Timestamp, key: &[u8], seq: u64) -> Vec<u8> {
    StateKey::new(side, key.len() + 20)
        .time(window_end)
        .bytes(key)
        .seq(seq)
        .build()
}

impl Operator for WindowJoin {
    fn output_schema(&self) -> SchemaRef {
        self.core.output_schema()
    }

    fn process_batch(&mut self, input: usize, batch: RecordBatch, _out: &mut Output) -> Result<()> {
        self.process(input, &batch).map_err(|e| self.core.tag(e))
    }

    fn process_watermark(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        self.advance(watermark, out).map_err(|e| self.core.tag(e))
    }

    fn finish(&mut self, _out: &mut Output) -> Result<()> {
        self.flush().map_err(|e| self.core.tag(e))
    }

    fn late_rows_dropped(&self) -> u64 {
        self.late_rows
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dataflow::message::MAX_WATERMARK;
    use crate::operators::join::tests::{
        batch, drain, joined_row, sorted, spec, task, values_differ,
    };
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
        assert_eq!(op.backend.scan_state(StateId(9)).unwrap().len(), 2);

        op.process_watermark(end - 1, &mut out).unwrap();
        assert_eq!(
            drain(&mut out),
            (vec![joined_row(RowKind::Insert, l, r)], vec![end - 1])
        );
        assert_eq!(op.buffered_rows(), 0);
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

    #[test]
    fn window_join_refuses_retractions() {
        let mut op = join(false);
        let mut out = Output::default();
        let retraction = batch(&[row(1, "a", BASE)], Some(&[RowKind::Delete]));
        assert!(op.process_batch(0, retraction, &mut out).is_err());
    }
}
