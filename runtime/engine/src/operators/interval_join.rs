//! Flink's event-time interval join (`RowTimeIntervalJoin`, inner): a left row at `l.t` and a
//! right row at `r.t` with equal keys match when `l.t + lower <= r.t <= l.t + upper`.
//!
//! This follows Flink's `TimeIntervalJoin` step by step, so that rows arriving late get the same
//! answer as in Flink, not just on-time rows. In Flink's terms `leftRelativeSize = upper` and
//! `rightRelativeSize = -lower`; the *operator time* `T` is the watermark, or 0 while it is
//! negative. A row at `t` on one side:
//!
//! 1. may match other-side rows in `[t - otherRelative, t + ownRelative]`;
//! 2. if the other side's *expiration time* (one value per operator instance, not per key) is
//!    below that upper end, the expiration time becomes `T - otherRelative - 1`, the row is
//!    joined with the cached other-side rows of its key in that range, and the other side's
//!    rows at or before the expiration time are dropped;
//! 3. it is cached if `T` is still below that upper end (a future other-side row, later than the
//!    watermark, can still match it); the first cached row of a key on a side sets a cleanup
//!    timer at `t + ownRelative + (upper - lower) / 2 + 1`.
//!
//! When the watermark passes a cleanup timer, that side's expiration time becomes
//! `T - ownRelative - 1`, the key's rows at or before it are dropped, and a new timer is set from
//! the earliest row left (Flink's `removeExpiredRows`, including its quirk of dropping all
//! remaining rows when the earliest is at or before the epoch). So a left row at `l.t` is freed
//! once the watermark has passed `l.t + upper` (no right row later than the watermark can fall in
//! its range) and its key's timer fired; right rows likewise after `r.t - lower`.
//!
//! A row that is neither cached nor joined with anything is *late*: dropped and counted in
//! [`Operator::late_rows_dropped`]. Rows with a NULL time count as late too; rows with a NULL key
//! never match but still move the expiration time, as in Flink.
//!
//! The output watermark is held back by `max(upper, -lower)` (Flink's
//! `KeyedCoProcessOperatorWithWatermarkDelay`), since an output row may be that much older than
//! the input watermark; `MAX_WATERMARK` passes unchanged. With `lower > upper` nothing can match:
//! every row is ignored and watermarks pass undelayed, as in Flink's negative-window plan.
//!
//! Inputs must be insert-only. State layout in the backend, one entry per cached row:
//! `[side: u8][key length: u32 BE][key bytes][time: sortable i64][seq: u64 BE]` → row bytes;
//! rows are written at watermarks (only those still cached) and deleted once they expire.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use weir_state::{StateBackend, StateId};

use crate::dataflow::key_group::KeyGroup;
use crate::dataflow::message::{MAX_WATERMARK, Timestamp};
use crate::dataflow::operator::{Operator, Output, TaskInfo};
use crate::error::Result;
use crate::operators::join::{
    FixedMap, JoinCore, JoinSpec, LEFT, PendingWrites, RIGHT, RowArena, StateKey, time_millis,
};

/// Cached rows of one side of one key: (time, sequence number) → row bytes.
type Cache = BTreeMap<(Timestamp, u64), Box<[u8]>>;

/// Everything kept for one join key.
struct KeyCache {
    key_group: KeyGroup,
    rows: [Cache; 2],
    /// The pending cleanup timer of each side's cache (Flink's `rightTimerState` cleans the left
    /// cache and `leftTimerState` the right one).
    cleanup: [Option<Timestamp>; 2],
}

impl KeyCache {
    fn is_idle(&self) -> bool {
        self.rows.iter().all(BTreeMap::is_empty) && self.cleanup.iter().all(Option::is_none)
    }
}

/// A cached row not yet written to the backend.
struct Unflushed {
    side: usize,
    key: Box<[u8]>,
    time: Timestamp,
    seq: u64,
}

pub struct IntervalJoin {
    core: JoinCore,
    time_columns: [usize; 2],
    /// Flink's `[leftRelativeSize, rightRelativeSize]` = `[upper, -lower]`.
    relative: [i64; 2],
    min_cleanup_interval: i64,
    output_delay: i64,
    /// `lower > upper`: no pair can match.
    empty: bool,
    keys: FixedMap<Box<[u8]>, KeyCache>,
    /// Pending cleanup timers, in firing order.
    timers: BTreeSet<(Timestamp, Box<[u8]>)>,
    watermark: Timestamp,
    /// Flink's `[leftExpirationTime, rightExpirationTime]`: per operator instance.
    expiration: [Timestamp; 2],
    late_rows: u64,
    backend: Box<dyn StateBackend>,
    pending: PendingWrites,
    next_seq: u64,
    /// Rows with a smaller sequence number were written at the last flush (if still cached).
    flushed_seq: u64,
    unflushed: Vec<Unflushed>,
}

impl IntervalJoin {
    /// `left_time`/`right_time`: the time attribute columns (visible column indices) of each
    /// input; `lower`/`upper`: the inclusive bounds of `r.t - l.t`, in milliseconds.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: JoinSpec,
        left_time: usize,
        right_time: usize,
        lower: i64,
        upper: i64,
        task: TaskInfo,
        state: Box<dyn StateBackend>,
        state_id: StateId,
    ) -> Result<Self> {
        let core = JoinCore::new(spec, &task)?;
        if left_time >= core.spec.left_width || right_time >= core.spec.right_width {
            return Err(core.error(format!(
                "time column out of range: left {left_time}, right {right_time}"
            )));
        }
        let neg_lower = lower
            .checked_neg()
            .ok_or_else(|| core.error("interval join lower bound out of range"))?;
        let relative = [upper, neg_lower];
        let empty = lower > upper;
        let min_cleanup_interval = relative[0].saturating_add(relative[1]).max(0) / 2;
        let output_delay = if empty {
            0
        } else {
            relative[0].max(relative[1])
        };
        Ok(IntervalJoin {
            core,
            time_columns: [left_time, right_time],
            relative,
            min_cleanup_interval,
            output_delay,
            empty,
            keys: FixedMap::default(),
            timers: BTreeSet::new(),
            watermark: Timestamp::MIN,
            expiration: [0, 0],
            late_rows: 0,
            backend: state,
            pending: PendingWrites::new(state_id),
            next_seq: 0,
            flushed_seq: 0,
            unflushed: Vec::new(),
        })
    }

    /// Rows cached on both sides.
    pub fn buffered_rows(&self) -> usize {
        self.keys
            .values()
            .map(|k| k.rows.iter().map(BTreeMap::len).sum::<usize>())
            .sum()
    }

    /// Flink's operator time: the watermark, but never below 0.
    fn operator_time(&self) -> Timestamp {
        self.watermark.max(0)
    }

    /// Flink's `calExpirationTime` (allowed lateness 0).
    fn expiration_time(operator_time: Timestamp, relative: i64) -> Timestamp {
        if operator_time < MAX_WATERMARK {
            operator_time.saturating_sub(relative).saturating_sub(1)
        } else {
            MAX_WATERMARK
        }
    }

    fn process(&mut self, input: usize, batch: &RecordBatch, out: &mut Output) -> Result<()> {
        let (visible, kinds) = self.core.split_input(input, batch)?;
        if kinds.is_some() {
            return Err(self.core.error(format!(
                "input {input} is updating; an interval join needs insert-only inputs"
            )));
        }
        let n = visible.num_rows();
        if n == 0 || self.empty {
            return Ok(());
        }
        let times = time_millis(visible.column(self.time_columns[input]))?;
        let keys = self.core.encode_keys(input, &visible)?;
        let rows = self.core.encode_rows(input, &visible)?;
        let side = input;
        let other = 1 - side;
        let operator_time = self.operator_time();

        let mut probe: Vec<u32> = Vec::new();
        let mut arena = RowArena::default();
        // Rows that were not cached: late unless they joined something.
        let mut uncached: Vec<usize> = Vec::new();
        for i in 0..n {
            if times.is_null(i) {
                self.late_rows += 1;
                continue;
            }
            let t = times.value(i);
            let lo = t.saturating_sub(self.relative[other]);
            let hi = t.saturating_add(self.relative[side]);
            let key = keys.key(i);
            let key_null = keys.is_null(i);
            if self.expiration[other] < hi {
                let expiration = Self::expiration_time(operator_time, self.relative[other]);
                self.expiration[other] = expiration;
                if !key_null && let Some(cache) = self.keys.get_mut(key) {
                    for (_, row) in cache.rows[other].range((lo, 0)..=(hi, u64::MAX)) {
                        probe.push(i as u32);
                        arena.push(row);
                    }
                    let expired = take_until(&mut cache.rows[other], expiration);
                    forget(
                        &mut self.pending,
                        self.flushed_seq,
                        other,
                        key,
                        cache.key_group,
                        expired,
                    );
                }
            }
            if operator_time < hi {
                if key_null {
                    continue;
                }
                let cache = match self.keys.get_mut(key) {
                    Some(cache) => cache,
                    None => self.keys.entry(key.into()).or_insert(KeyCache {
                        key_group: keys.groups[i],
                        rows: [Cache::new(), Cache::new()],
                        cleanup: [None, None],
                    }),
                };
                let seq = self.next_seq;
                self.next_seq += 1;
                cache.rows[side].insert((t, seq), rows.row(i).data().into());
                self.unflushed.push(Unflushed {
                    side,
                    key: key.into(),
                    time: t,
                    seq,
                });
                if cache.cleanup[side].is_none() {
                    let timer = row_time_cleanup(t, self.relative[side], self.min_cleanup_interval);
                    cache.cleanup[side] = Some(timer);
                    self.timers.insert((timer, key.into()));
                }
            } else {
                uncached.push(i);
            }
        }

        let mut joined_any = vec![false; n];
        if !probe.is_empty() {
            let probing = JoinCore::take_columns(visible.columns(), &probe)?;
            let stored = self.core.decode_rows(other, arena.iter())?;
            let (l, r) = JoinCore::order_sides(side, probing, stored);
            let joined = self.core.emit(l, r, None, probe.len())?;
            for (j, &i) in probe.iter().enumerate() {
                if joined.kept(j) {
                    joined_any[i as usize] = true;
                }
            }
            out.batch(joined.batch);
        }
        self.late_rows += uncached.iter().filter(|&&i| !joined_any[i]).count() as u64;
        Ok(())
    }

    /// A cleanup timer fired for `key` (Flink's `onTimer`).
    fn on_timer(&mut self, time: Timestamp, key: Box<[u8]>) {
        let operator_time = self.operator_time();
        let Some(cache) = self.keys.get_mut(&key) else {
            return;
        };
        for side in [RIGHT, LEFT] {
            if cache.cleanup[side] != Some(time) {
                continue;
            }
            let expiration = Self::expiration_time(operator_time, self.relative[side]);
            self.expiration[side] = expiration;
            let expired = take_until(&mut cache.rows[side], expiration);
            forget(
                &mut self.pending,
                self.flushed_seq,
                side,
                &key,
                cache.key_group,
                expired,
            );
            match cache.rows[side].first_key_value() {
                Some(((earliest, _), _)) if *earliest > 0 => {
                    let timer =
                        row_time_cleanup(*earliest, self.relative[side], self.min_cleanup_interval);
                    cache.cleanup[side] = Some(timer);
                    self.timers.insert((timer, key.clone()));
                }
                Some(_) => {
                    // Flink clears the whole cache when the earliest row left is at or before
                    // the epoch.
                    let rest = std::mem::take(&mut cache.rows[side]);
                    forget(
                        &mut self.pending,
                        self.flushed_seq,
                        side,
                        &key,
                        cache.key_group,
                        rest,
                    );
                    cache.cleanup[side] = None;
                }
                None => cache.cleanup[side] = None,
            }
        }
        if cache.is_idle() {
            self.keys.remove(&key);
        }
    }

    /// Write rows cached since the last flush (and still cached), and the deletions of expired
    /// rows that had been written.
    fn flush(&mut self) -> Result<()> {
        for u in self.unflushed.drain(..) {
            if let Some(cache) = self.keys.get(&u.key)
                && let Some(row) = cache.rows[u.side].get(&(u.time, u.seq))
            {
                let state_key = row_state_key(u.side, &u.key, u.time, u.seq);
                self.pending.put(cache.key_group, state_key, row.to_vec());
            }
        }
        self.flushed_seq = self.next_seq;
        self.pending.flush(self.backend.as_mut())
    }

    fn advance(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        self.watermark = self.watermark.max(watermark);
        while let Some((time, _)) = self.timers.first()
            && *time <= self.watermark
        {
            if let Some((time, key)) = self.timers.pop_first() {
                self.on_timer(time, key);
            }
        }
        self.flush()?;
        out.watermark(if watermark == MAX_WATERMARK {
            MAX_WATERMARK
        } else {
            watermark.saturating_sub(self.output_delay)
        });
        Ok(())
    }
}

/// Flink's `registerCleanUpTimer` time for a row at `row_time` (allowed lateness 0).
fn row_time_cleanup(row_time: Timestamp, relative: i64, min_cleanup_interval: i64) -> Timestamp {
    row_time
        .saturating_add(relative)
        .saturating_add(min_cleanup_interval)
        .saturating_add(1)
}

/// Remove and return the rows at or before `expiration`.
fn take_until(cache: &mut Cache, expiration: Timestamp) -> Cache {
    match expiration.checked_add(1) {
        Some(first_kept) => {
            let kept = cache.split_off(&(first_kept, 0));
            std::mem::replace(cache, kept)
        }
        None => std::mem::take(cache),
    }
}

/// Delete from the backend the removed rows that had been written to it.
fn forget(
    pending: &mut PendingWrites,
    flushed_seq: u64,
    side: usize,
    key: &[u8],
    key_group: KeyGroup,
    removed: Cache,
) {
    for (time, seq) in removed.into_keys() {
        if seq < flushed_seq {
            pending.delete(key_group, row_state_key(side, key, time, seq));
        }
    }
}

fn row_state_key(side: usize, key: &[u8], time: Timestamp, seq: u64) -> Vec<u8> {
    StateKey::new(side, key.len() + 16)
        .bytes(key)
        .time(time)
        .seq(seq)
        .build()
}

impl Operator for IntervalJoin {
    /// Its rows live in memory and are only written through; restoring them is not built
    /// yet, so checkpointed jobs refuse this operator instead of losing its state.
    fn supports_checkpoints(&self) -> bool {
        false
    }

    fn output_schema(&self) -> SchemaRef {
        self.core.output_schema()
    }

    fn process_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        self.process(input, &batch, out)
            .map_err(|e| self.core.tag(e))
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
    use crate::dataflow::message::RowKind;
    use crate::operators::join::tests::{
        batch, drain, joined_row, sorted, spec, task, values_differ,
    };
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
                if l.0.is_some()
                    && l.0 == r.0
                    && l.1 != r.1
                    && l.2 + lower <= r.2
                    && r.2 <= l.2 + upper
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
    fn interval_join_frees_state_once_the_watermark_passes_and_deletes_it_from_the_backend() {
        let mut op = join(0, 1_000, false);
        let mut out = Output::default();
        let left: Vec<Row> = (0..10).map(|i| (Some(i), "a", BASE + i * 10)).collect();
        let right: Vec<Row> = (0..10)
            .map(|i| (Some(i), "b", BASE + 500 + i * 10))
            .collect();
        op.process_batch(0, batch(&left, None), &mut out).unwrap();
        op.process_watermark(BASE, &mut out).unwrap();
        assert_eq!(op.backend.scan_state(StateId(3)).unwrap().len(), 10);
        op.process_batch(1, batch(&right, None), &mut out).unwrap();
        assert_eq!(drain(&mut out).0.len(), 10);
        assert_eq!(op.buffered_rows(), 20);

        // Left rows can match right rows up to l.t + 1000; right rows left rows from r.t - 1000.
        // The cleanup timers fire at t + relative + (upper - lower) / 2 + 1.
        op.process_watermark(BASE + 1_700, &mut out).unwrap();
        assert_eq!(op.buffered_rows(), 0, "both sides expired");
        assert!(op.keys.is_empty() && op.timers.is_empty());
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
}
