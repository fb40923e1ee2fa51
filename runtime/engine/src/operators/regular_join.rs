//! Flink's regular (unbounded) inner join (`StreamingJoinOperator` with both sides inner).
//!
//! Each side's rows are kept forever, per equi key, as a multiset (row → count), like Flink's
//! `JoinRecordStateView` for an input without a unique key. A row arriving on one side is joined
//! with every row of the other side under the same key that passes the non-equi condition (a
//! stored row with count n joins n times), then added to (or, for `-U`/`-D`, taken out of) its
//! own side's multiset. As in Flink's inner join, every output row carries the row kind of the
//! input row that produced it: `+I`→`+I`, `+U`→`+U`, `-U`→`-U`, `-D`→`-D`. A retraction of a
//! row that is not in state changes nothing but still retracts its matches, as in Flink.
//!
//! State layout in the backend (one entry per distinct stored row):
//! `[side: u8][key length: u32 BE][key bytes][row bytes]` → count (`u32` BE), where key and row
//! bytes are the Arrow row format of the (coerced) key columns and of the visible columns.
//! Changes are collected in memory and written at watermarks, at the end of input, and whenever
//! more than [`FLUSH_THRESHOLD`] distinct rows changed (a regular join may see no watermark).

use std::collections::BTreeMap;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use weir_state::{StateBackend, StateId};

use crate::dataflow::key_group::KeyGroup;
use crate::dataflow::message::{RowKind, Timestamp};
use crate::dataflow::operator::{Operator, OperatorSnapshot, Output, SnapshotContext, TaskInfo};
use crate::error::Result;
use crate::operators::join::{
    FixedMap, JoinCore, JoinSpec, LEFT, PendingWrites, RIGHT, RowArena, StateKey,
};

/// Distinct changed rows after which pending state writes go to the backend between watermarks.
pub const FLUSH_THRESHOLD: usize = 16 * 1024;

/// The stored rows of one side under one key.
struct KeyRows {
    key_group: KeyGroup,
    /// Row bytes → how many times the row is in the multiset (never 0).
    rows: BTreeMap<Box<[u8]>, u32>,
}

type SideState = FixedMap<Box<[u8]>, KeyRows>;

pub struct RegularJoin {
    core: JoinCore,
    sides: [SideState; 2],
    backend: Box<dyn StateBackend>,
    state_id: StateId,
    pending: PendingWrites,
}

impl RegularJoin {
    /// `left_updating`/`right_updating`: whether that input is a changelog (its batches carry
    /// the row-kind column last); then the output must be updating too.
    pub fn new(
        spec: JoinSpec,
        left_updating: bool,
        right_updating: bool,
        task: TaskInfo,
        state: Box<dyn StateBackend>,
        state_id: StateId,
    ) -> Result<Self> {
        let core = JoinCore::new(spec, &task)?;
        if (left_updating || right_updating) && !core.output_is_updating() {
            return Err(
                core.error("an updating input needs an updating output (a row-kind column last)")
            );
        }
        Ok(RegularJoin {
            core,
            sides: [SideState::default(), SideState::default()],
            backend: state,
            state_id,
            pending: PendingWrites::new(state_id),
        })
    }

    /// Rebuild both sides' multisets from the backend (after a restore): the join keeps its
    /// state in memory and only writes it through.
    fn load(&mut self) -> Result<()> {
        for (key_group, key, value) in self.backend.scan_state(self.state_id)? {
            let corrupt = || self.core.error("corrupt join state entry in a checkpoint");
            let (&side, rest) = key.split_first().ok_or_else(corrupt)?;
            let len_bytes: [u8; 4] = rest
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(corrupt)?;
            let len = u32::from_be_bytes(len_bytes) as usize;
            let join_key = rest.get(4..4 + len).ok_or_else(corrupt)?;
            let row = rest.get(4 + len..).ok_or_else(corrupt)?;
            let count_bytes: [u8; 4] = value.as_slice().try_into().map_err(|_| corrupt())?;
            let count = u32::from_be_bytes(count_bytes);
            let own = self.sides.get_mut(usize::from(side)).ok_or_else(corrupt)?;
            let entry = match own.get_mut(join_key) {
                Some(entry) => entry,
                None => own.entry(join_key.into()).or_insert(KeyRows {
                    key_group,
                    rows: BTreeMap::new(),
                }),
            };
            entry.rows.insert(row.into(), count);
        }
        Ok(())
    }

    /// Rows held in state on both sides, duplicates counted.
    pub fn buffered_rows(&self) -> usize {
        self.sides
            .iter()
            .flat_map(|side| side.values())
            .flat_map(|entry| entry.rows.values())
            .map(|count| *count as usize)
            .sum()
    }

    fn process(&mut self, input: usize, batch: &RecordBatch, out: &mut Output) -> Result<()> {
        let (visible, kinds) = self.core.split_input(input, batch)?;
        if kinds.is_some() && !self.core.output_is_updating() {
            return Err(self.core.error(format!(
                "input {input} is updating but the join's output is insert-only"
            )));
        }
        let n = visible.num_rows();
        if n == 0 {
            return Ok(());
        }
        let keys = self.core.encode_keys(input, &visible)?;
        let rows = self.core.encode_rows(input, &visible)?;

        let mut probe: Vec<u32> = Vec::new();
        let mut arena = RowArena::default();
        let [left, right] = &mut self.sides;
        let (own, other) = if input == LEFT {
            (left, &*right)
        } else {
            (right, &*left)
        };
        for i in 0..n {
            if keys.is_null(i) {
                continue;
            }
            let kind = match &kinds {
                None => RowKind::Insert,
                Some(kinds) => RowKind::from_i8(kinds.value(i)).ok_or_else(|| {
                    self.core
                        .error(format!("invalid row kind {}", kinds.value(i)))
                })?,
            };
            let key = keys.key(i);
            let row = rows.row(i).data();
            if let Some(stored) = other.get(key) {
                for (other_row, count) in &stored.rows {
                    for _ in 0..*count {
                        probe.push(i as u32);
                        arena.push(other_row);
                    }
                }
            }
            let changed = if kind.is_addition() {
                Some(add(own, key, keys.groups[i], row))
            } else {
                retract(own, key, row)
            };
            if let Some((key_group, count)) = changed {
                let state_key = StateKey::new(input, key.len() + row.len())
                    .bytes(key)
                    .tail(row)
                    .build();
                if count == 0 {
                    self.pending.delete(key_group, state_key);
                } else {
                    self.pending
                        .put(key_group, state_key, count.to_be_bytes().to_vec());
                }
            }
        }

        if !probe.is_empty() {
            let stored_side = if input == LEFT { RIGHT } else { LEFT };
            let probing = JoinCore::take_columns(visible.columns(), &probe)?;
            let stored = self.core.decode_rows(stored_side, arena.iter())?;
            let out_kinds: Option<ArrayRef> = match &kinds {
                Some(kinds) if self.core.output_is_updating() => Some(take(
                    kinds,
                    &arrow::array::UInt32Array::from(probe.clone()),
                    None,
                )?),
                _ => None,
            };
            let (l, r) = JoinCore::order_sides(input, probing, stored);
            let joined = self.core.emit(l, r, out_kinds, probe.len())?;
            out.batch(joined.batch);
        }
        if self.pending.len() >= FLUSH_THRESHOLD {
            self.pending.flush(self.backend.as_mut())?;
        }
        Ok(())
    }
}

/// Add one occurrence of `row` under `key`; returns the key group and the new count.
fn add(side: &mut SideState, key: &[u8], key_group: KeyGroup, row: &[u8]) -> (KeyGroup, u32) {
    let entry = match side.get_mut(key) {
        Some(entry) => entry,
        None => side.entry(key.into()).or_insert(KeyRows {
            key_group,
            rows: BTreeMap::new(),
        }),
    };
    let count = match entry.rows.get_mut(row) {
        Some(count) => {
            *count = count.saturating_add(1);
            *count
        }
        None => {
            entry.rows.insert(row.into(), 1);
            1
        }
    };
    (entry.key_group, count)
}

/// Take one occurrence of `row` out of `key`'s multiset; returns the key group and the new
/// count, or `None` when the row was not there (Flink ignores such a retraction in state).
fn retract(side: &mut SideState, key: &[u8], row: &[u8]) -> Option<(KeyGroup, u32)> {
    let entry = side.get_mut(key)?;
    let key_group = entry.key_group;
    let count = entry.rows.get_mut(row)?;
    *count -= 1;
    let count = *count;
    if count == 0 {
        entry.rows.remove(row);
        if entry.rows.is_empty() {
            side.remove(key);
        }
    }
    Some((key_group, count))
}

impl Operator for RegularJoin {
    fn output_schema(&self) -> SchemaRef {
        self.core.output_schema()
    }

    fn process_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        self.process(input, &batch, out)
            .map_err(|e| self.core.tag(e))
    }

    fn process_watermark(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        self.pending
            .flush(self.backend.as_mut())
            .map_err(|e| self.core.tag(e))?;
        out.watermark(watermark);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Output) -> Result<()> {
        self.pending
            .flush(self.backend.as_mut())
            .map_err(|e| self.core.tag(e))
    }

    fn snapshot(&mut self, ctx: &SnapshotContext) -> Result<Option<OperatorSnapshot>> {
        self.pending
            .flush(self.backend.as_mut())
            .map_err(|e| self.core.tag(e))?;
        OperatorSnapshot::of_backend(self.backend.as_mut(), ctx, Vec::new()).map(Some)
    }

    fn restore(&mut self, _operator_state: Vec<serde_json::Value>) -> Result<()> {
        self.load().map_err(|e| self.core.tag(e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::operators::join::tests::{
        batch, drain, joined_row, sorted, spec, task, values_differ,
    };
    use weir_state::MemoryBackend;

    type Row = (Option<i64>, &'static str, i64);

    fn join(filter: bool, updating: bool) -> RegularJoin {
        RegularJoin::new(
            spec(filter.then(values_differ), updating),
            updating,
            false,
            task(),
            Box::new(MemoryBackend::new()),
            StateId(7),
        )
        .unwrap()
    }

    /// A tiny deterministic generator, so the test needs no seed handling.
    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state >> 33
    }

    #[test]
    fn regular_join_of_insert_only_inputs_matches_a_nested_loop_with_filter_and_interleaving() {
        let values = ["a", "b", "c"];
        let mut seed = 42;
        let mut gen_rows = |count: usize| -> Vec<Row> {
            (0..count)
                .map(|i| {
                    let k = lcg(&mut seed) % 5;
                    let key = if k == 4 { None } else { Some(k as i64) };
                    (key, values[(lcg(&mut seed) % 3) as usize], i as i64)
                })
                .collect()
        };
        let left = gen_rows(60);
        let right = gen_rows(50);

        let mut op = join(true, false);
        let mut out = Output::default();
        let (mut li, mut ri) = (0, 0);
        let mut step = 0u64;
        while li < left.len() || ri < right.len() {
            step += 1;
            let size = 1 + (lcg(&mut seed) % 7) as usize;
            if (step.is_multiple_of(2) && li < left.len()) || ri >= right.len() {
                let end = (li + size).min(left.len());
                op.process_batch(0, batch(&left[li..end], None), &mut out)
                    .unwrap();
                li = end;
            } else {
                let end = (ri + size).min(right.len());
                op.process_batch(1, batch(&right[ri..end], None), &mut out)
                    .unwrap();
                ri = end;
            }
        }
        let (rows, _) = drain(&mut out);

        let mut expected = Vec::new();
        for l in &left {
            for r in &right {
                if l.0.is_some() && l.0 == r.0 && l.1 != r.1 {
                    expected.push(joined_row(RowKind::Insert, *l, *r));
                }
            }
        }
        assert!(expected.len() > 50, "the case exercises many matches");
        assert_eq!(sorted(rows), sorted(expected));
        // Insert-only output has no row-kind column.
        assert_eq!(op.output_schema().fields().len(), 6);
    }

    #[test]
    fn regular_join_with_an_updating_left_input_forwards_retractions_per_match() {
        use RowKind::*;
        let mut op = join(false, true);
        let mut out = Output::default();
        let a: Row = (Some(1), "a", 0);
        let b: Row = (Some(2), "b", 0);
        let c: Row = (Some(1), "c", 0);
        let x: Row = (Some(1), "x", 0);
        let y: Row = (Some(1), "y", 0);

        op.process_batch(1, batch(&[x], None), &mut out).unwrap();
        op.process_batch(
            0,
            batch(&[a, b, a], Some(&[Insert, Insert, Insert])),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            drain(&mut out).0,
            vec![joined_row(Insert, a, x), joined_row(Insert, a, x)]
        );

        op.process_batch(1, batch(&[y], None), &mut out).unwrap();
        assert_eq!(
            drain(&mut out).0,
            vec![joined_row(Insert, a, y), joined_row(Insert, a, y)]
        );

        op.process_batch(
            0,
            batch(&[a, c], Some(&[UpdateBefore, UpdateAfter])),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            sorted(drain(&mut out).0),
            sorted(vec![
                joined_row(UpdateBefore, a, x),
                joined_row(UpdateBefore, a, y),
                joined_row(UpdateAfter, c, x),
                joined_row(UpdateAfter, c, y),
            ])
        );

        op.process_batch(0, batch(&[a], Some(&[Delete])), &mut out)
            .unwrap();
        assert_eq!(
            sorted(drain(&mut out).0),
            sorted(vec![joined_row(Delete, a, x), joined_row(Delete, a, y)])
        );
        // Left now holds b and c, right x and y; a is gone from state.
        assert_eq!(op.buffered_rows(), 4);
        op.process_batch(1, batch(&[(Some(1), "z", 0)], None), &mut out)
            .unwrap();
        assert_eq!(
            drain(&mut out).0,
            vec![joined_row(Insert, c, (Some(1), "z", 0))]
        );
    }

    #[test]
    fn regular_join_state_is_written_through_at_watermarks_and_retractions_delete_it() {
        use RowKind::*;
        let mut op = join(false, true);
        let mut out = Output::default();
        let a: Row = (Some(1), "a", 0);
        op.process_batch(0, batch(&[a, a], Some(&[Insert, Insert])), &mut out)
            .unwrap();
        op.process_batch(1, batch(&[(Some(1), "x", 0)], None), &mut out)
            .unwrap();
        assert!(op.backend.scan_state(StateId(7)).unwrap().is_empty());
        op.process_watermark(5, &mut out).unwrap();
        let entries = op.backend.scan_state(StateId(7)).unwrap();
        assert_eq!(entries.len(), 2, "one entry per distinct row and side");
        assert!(entries.iter().any(|(_, _, v)| v == &2u32.to_be_bytes()));

        op.process_batch(0, batch(&[a, a], Some(&[Delete, Delete])), &mut out)
            .unwrap();
        op.finish(&mut out).unwrap();
        assert_eq!(op.backend.scan_state(StateId(7)).unwrap().len(), 1);
        let (_, watermarks) = drain(&mut out);
        assert_eq!(watermarks, vec![5]);
    }

    #[test]
    fn regular_join_refuses_an_updating_input_with_an_insert_only_output() {
        let result = RegularJoin::new(
            spec(None, false),
            true,
            false,
            task(),
            Box::new(MemoryBackend::new()),
            StateId(0),
        );
        assert!(result.is_err());
    }
}
