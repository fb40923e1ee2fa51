//! Flink's window join (`WindowJoinOperator`: inner, left, right and full outer): both inputs
//! come out of a window table-valued function or window aggregation and the equi keys include
//! both window bounds, so only rows of the same window meet.
//!
//! Rows are buffered per `window_end` and key. When the watermark reaches `window_end - 1` the
//! window fires: for every key, each left row is paired with each right row (left-major, in
//! arrival order, as Flink's nested loop), the non-equi condition is applied, the result is
//! emitted as inserts, and the window's rows are dropped; then the watermark is forwarded
//! unchanged. An outer join then also emits, padded with NULLs, every row of a preserved side
//! that matched nothing in its window (Flink's `LeftOuterJoinOperator` and friends). A row whose
//! window has already fired (`window_end - 1 <= watermark`) is late: dropped and counted in
//! [`Operator::late_rows_dropped`], as Flink's `numLateRecordsDropped`. A window ending at
//! `i64::MAX` is never late (Flink's `isWindowFired`). Rows with a NULL key never match
//! (Flink's `JoinConditionWithNullFilters`): an inner join does not buffer them, an outer join
//! emits those of a preserved side padded.
//!
//! Inputs are append streams: `+I` and `+U` rows are buffered, a `-U`/`-D` row is an error (as
//! in Flink, which plans window joins over insert-only inputs only).
//!
//! State layout in the backend, one entry per buffered row:
//! `[tag: u8][window_end: sortable i64][key length: u32 BE][key bytes][seq: u64 BE]` → row
//! bytes, where the tag is the side, plus 2 for a row whose key holds a NULL (only outer joins
//! keep those). The windows live in memory; a checkpoint writes the rows that arrived since
//! the last one and are still buffered, and records the watermark; a row that was written is
//! deleted when its window fires. So a row whose window fires before the next checkpoint never
//! touches the backend (writing at every watermark cost the Nexmark joins most of their time
//! when their inputs' watermarks drifted apart), and a job without checkpoints writes nothing.
//! A restore rebuilds the windows from the backend.

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, RecordBatch, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use weir_state::{StateBackend, StateId};

use crate::dataflow::key_group::KeyGroup;
use crate::dataflow::message::{RowKind, Timestamp};
use crate::dataflow::operator::{
    Operator, OperatorSnapshot, Output, SnapshotContext, TaskInfo, restored_watermark,
    watermark_state,
};
use crate::error::Result;
use crate::operators::join::{
    FixedMap, JoinCore, JoinSpec, LEFT, PendingWrites, RIGHT, RowArena, StateKey, time_millis,
};

/// The rows of one key in one window: (sequence number, row bytes) per side, in arrival order.
struct WindowKey {
    key_group: KeyGroup,
    /// The key holds a NULL: its rows never match (only an outer join buffers them).
    null_key: bool,
    rows: [Vec<(u64, Box<[u8]>)>; 2],
}

/// Which rows without a partner a window join still emits (padded with NULLs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowJoinType {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
}

impl WindowJoinType {
    /// Whether unmatched rows of input `side` are emitted.
    pub fn preserves(self, side: usize) -> bool {
        match self {
            WindowJoinType::Inner => false,
            WindowJoinType::LeftOuter => side == LEFT,
            WindowJoinType::RightOuter => side == RIGHT,
            WindowJoinType::FullOuter => true,
        }
    }
}

type Window = FixedMap<Box<[u8]>, WindowKey>;

pub struct WindowJoin {
    core: JoinCore,
    state_id: StateId,
    join_type: WindowJoinType,
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
            state_id,
            join_type: WindowJoinType::Inner,
            window_end_columns: [left_window_end, right_window_end],
            windows: BTreeMap::new(),
            watermark: Timestamp::MIN,
            late_rows: 0,
            backend: state,
            pending: PendingWrites::new(state_id),
            next_seq: 0,
            flushed_seq: 0,
        })
    }

    /// Emit unmatched rows of the sides `join_type` preserves (the output schema's columns must
    /// then be nullable).
    pub fn with_join_type(mut self, join_type: WindowJoinType) -> Self {
        self.join_type = join_type;
        self
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
            let null_key = keys.is_null(i);
            if null_key && !self.join_type.preserves(input) {
                continue;
            }
            let end = ends.value(i);
            let key = keys.key(i);
            let window = self.windows.entry(end).or_default();
            let entry = match window.get_mut(key) {
                Some(entry) => entry,
                None => window.entry(key.into()).or_insert(WindowKey {
                    key_group: keys.groups[i],
                    null_key,
                    rows: [Vec::new(), Vec::new()],
                }),
            };
            let seq = self.next_seq;
            self.next_seq += 1;
            entry.rows[input].push((seq, rows.row(i).data().into()));
        }
        Ok(())
    }

    /// Join and drop the rows of one window.
    fn fire(&mut self, window_end: Timestamp, window: Window, out: &mut Output) -> Result<()> {
        let preserved = [
            self.join_type.preserves(LEFT),
            self.join_type.preserves(RIGHT),
        ];
        let mut arenas = [RowArena::default(), RowArena::default()];
        let mut pairs: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
        for (key, entry) in &window {
            for side in [LEFT, RIGHT] {
                for (seq, _) in &entry.rows[side] {
                    if *seq < self.flushed_seq {
                        let state_key = row_state_key(tag(side, entry), window_end, key, *seq);
                        self.pending.delete(entry.key_group, state_key);
                    }
                }
            }
            let [left, right] = &entry.rows;
            let joinable = !entry.null_key && !left.is_empty() && !right.is_empty();
            let (l0, r0) = (arenas[LEFT].len() as u32, arenas[RIGHT].len() as u32);
            for side in [LEFT, RIGHT] {
                if joinable || preserved[side] {
                    for (_, row) in &entry.rows[side] {
                        arenas[side].push(row);
                    }
                }
            }
            if !joinable {
                continue;
            }
            for li in 0..left.len() as u32 {
                for ri in 0..right.len() as u32 {
                    pairs[LEFT].push(l0 + li);
                    pairs[RIGHT].push(r0 + ri);
                }
            }
        }
        let mut decoded: [Option<Vec<ArrayRef>>; 2] = [None, None];
        let mut matched = [
            vec![false; arenas[LEFT].len()],
            vec![false; arenas[RIGHT].len()],
        ];
        if !pairs[LEFT].is_empty() {
            let left = self.core.decode_rows(LEFT, arenas[LEFT].iter())?;
            let right = self.core.decode_rows(RIGHT, arenas[RIGHT].iter())?;
            let joined = self.core.emit(
                JoinCore::take_columns(&left, &pairs[LEFT])?,
                JoinCore::take_columns(&right, &pairs[RIGHT])?,
                None,
                pairs[LEFT].len(),
            )?;
            for j in 0..pairs[LEFT].len() {
                if joined.kept(j) {
                    matched[LEFT][pairs[LEFT][j] as usize] = true;
                    matched[RIGHT][pairs[RIGHT][j] as usize] = true;
                }
            }
            out.batch(joined.batch);
            decoded = [Some(left), Some(right)];
        }
        for side in [LEFT, RIGHT] {
            if !preserved[side] {
                continue;
            }
            let unmatched: Vec<u32> = (0..arenas[side].len() as u32)
                .filter(|&i| !matched[side][i as usize])
                .collect();
            if unmatched.is_empty() {
                continue;
            }
            let rows = match decoded[side].take() {
                Some(rows) => rows,
                None => self.core.decode_rows(side, arenas[side].iter())?,
            };
            let rows = JoinCore::take_columns(&rows, &unmatched)?;
            out.batch(self.padded(side, rows, unmatched.len())?);
        }
        Ok(())
    }

    /// Rows of `side` joined with NULLs for every column of the other side.
    fn padded(&self, side: usize, rows: Vec<ArrayRef>, n: usize) -> Result<RecordBatch> {
        let schema = self.core.output_schema();
        let left_width = self.core.spec.left_width;
        let mut rows = rows.into_iter();
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (i, field) in schema.fields().iter().enumerate() {
            let from_side = if i < left_width { LEFT } else { RIGHT };
            let column = if from_side == side {
                let column = rows
                    .next()
                    .ok_or_else(|| self.core.error("a padded row is missing columns"))?;
                if column.data_type() == field.data_type() {
                    column
                } else {
                    cast(&column, field.data_type())?
                }
            } else {
                new_null_array(field.data_type(), n)
            };
            columns.push(column);
        }
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// Write the buffered rows that arrived since the last flush, and the deletions of written
    /// rows whose window fired since.
    fn flush(&mut self) -> Result<()> {
        // With no row since the last flush there are only fired windows' deletions to write:
        // the open windows are not looked through.
        let has_new_rows = self.next_seq > self.flushed_seq;
        for (window_end, window) in self.windows.iter().filter(|_| has_new_rows) {
            for (key, entry) in window.iter() {
                for side in [LEFT, RIGHT] {
                    // Rows are in arrival (sequence) order: the new ones are at the end.
                    let rows = &entry.rows[side];
                    let new = rows.partition_point(|(seq, _)| *seq < self.flushed_seq);
                    for (seq, row) in &rows[new..] {
                        let state_key = row_state_key(tag(side, entry), *window_end, key, *seq);
                        self.pending.put(entry.key_group, state_key, row.to_vec());
                    }
                }
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
        out.watermark(watermark);
        Ok(())
    }
}

impl WindowJoin {
    /// Rebuild the buffered windows from the backend (after a restore).
    fn load(&mut self) -> Result<()> {
        let entries = self.backend.scan_state(self.state_id)?;
        for (key_group, key, row) in entries {
            let corrupt = || {
                self.core
                    .error("corrupt window join state entry in a checkpoint")
            };
            let (&tag, rest) = key.split_first().ok_or_else(corrupt)?;
            let fixed = |bytes: Option<&[u8]>| -> Option<[u8; 8]> { bytes?.try_into().ok() };
            let end = fixed(rest.get(..8)).ok_or_else(corrupt)?;
            let window_end = (u64::from_be_bytes(end) ^ (1 << 63)) as i64;
            let len: [u8; 4] = rest
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(corrupt)?;
            let len = u32::from_be_bytes(len) as usize;
            let join_key = rest.get(12..12 + len).ok_or_else(corrupt)?;
            let seq = fixed(rest.get(12 + len..)).ok_or_else(corrupt)?;
            let seq = u64::from_be_bytes(seq);
            let side = usize::from(tag % 2);
            let entry = self
                .windows
                .entry(window_end)
                .or_default()
                .entry(join_key.into())
                .or_insert(WindowKey {
                    key_group,
                    null_key: tag >= 2,
                    rows: [Vec::new(), Vec::new()],
                });
            entry.rows[side].push((seq, row.into()));
            self.next_seq = self.next_seq.max(seq + 1);
        }
        // Arrival order within a key is the sequence order.
        for window in self.windows.values_mut() {
            for entry in window.values_mut() {
                for rows in &mut entry.rows {
                    rows.sort_unstable_by_key(|(seq, _)| *seq);
                }
            }
        }
        self.flushed_seq = self.next_seq;
        Ok(())
    }
}

/// The state key's first byte: the side, plus 2 for a NULL key.
fn tag(side: usize, entry: &WindowKey) -> usize {
    side + if entry.null_key { 2 } else { 0 }
}

fn row_state_key(tag: usize, window_end: Timestamp, key: &[u8], seq: u64) -> Vec<u8> {
    StateKey::new(tag, key.len() + 20)
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

    fn snapshot(&mut self, ctx: &SnapshotContext) -> Result<Option<OperatorSnapshot>> {
        self.flush().map_err(|e| self.core.tag(e))?;
        let state = watermark_state(self.watermark);
        OperatorSnapshot::of_backend(self.backend.as_mut(), ctx, vec![state]).map(Some)
    }

    fn restore(&mut self, operator_state: Vec<serde_json::Value>) -> Result<()> {
        if let Some(w) = restored_watermark(&operator_state) {
            self.watermark = self.watermark.max(w);
        }
        self.load().map_err(|e| self.core.tag(e))
    }

    fn late_rows_dropped(&self) -> u64 {
        self.late_rows
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
