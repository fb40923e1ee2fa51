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
//! Inputs must be insert-only. The caches and timers live in memory; the state backend only
//! serves checkpoints. A checkpoint writes the rows cached since the last one and still cached,
//! and the deletions of written rows that expired since, so a row that expires between two
//! checkpoints never reaches the backend and a job without checkpoints writes no rows. Timer
//! changes (one entry per key and side) go to the backend whenever enough have gathered, so
//! they take bounded memory without checkpoints. At a checkpoint the backend thus holds all
//! keyed state, and a restore rebuilds the caches from it (layout and restore rules in
//! [`state`]).

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use weir_state::{StateBackend, StateId, WriteOp};

use crate::dataflow::key_group::KeyGroup;
use crate::dataflow::message::{MAX_WATERMARK, Timestamp};
use crate::dataflow::operator::{
    Operator, OperatorSnapshot, Output, SnapshotContext, TaskInfo, restored_watermark,
};
use crate::error::Result;
use crate::operators::join::{
    FixedMap, JoinCore, JoinSpec, LEFT, PendingWrites, RIGHT, RowArena, time_millis,
};

mod state;

use state::{Stored, row_state_key, timer_state_key, timer_value};

/// Cached rows of one side of one key: (time, sequence number) → row bytes.
type Cache = BTreeMap<(Timestamp, u64), Box<[u8]>>;

/// Everything kept for one join key.
struct KeyCache {
    key_group: KeyGroup,
    rows: [Cache; 2],
    /// The pending cleanup timer of each side's cache (Flink's `rightTimerState` cleans the left
    /// cache and `leftTimerState` the right one).
    cleanup: [Option<Timestamp>; 2],
    /// Per side, the sequence number of the newest row cached (0: none): a checkpoint only
    /// looks through a side that got rows since the last one.
    newest_seq: [u64; 2],
}

impl KeyCache {
    fn is_idle(&self) -> bool {
        self.rows.iter().all(BTreeMap::is_empty) && self.cleanup.iter().all(Option::is_none)
    }
}

/// Timer changes gathered before they go to the backend between checkpoints.
const TIMER_WRITES_THRESHOLD: usize = 16 * 1024;
/// New rows a checkpoint writes per backend batch.
const ROW_WRITE_CHUNK: usize = 16 * 1024;

pub struct IntervalJoin {
    core: JoinCore,
    task: TaskInfo,
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
    state_id: StateId,
    pending: PendingWrites,
    /// Orders rows of equal time within a key and side and makes their backend keys unique.
    /// After a restore it starts above every restored row's, so new rows never collide with
    /// restored ones (a key's rows all come from the one old subtask that owned its key group).
    next_seq: u64,
    /// Rows with a smaller sequence number were written at the last checkpoint (if still
    /// cached).
    flushed_seq: u64,
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
            task,
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
            state_id,
            pending: PendingWrites::new(state_id),
            next_seq: 0,
            flushed_seq: 0,
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
                        newest_seq: [0, 0],
                    }),
                };
                let seq = self.next_seq;
                self.next_seq += 1;
                cache.rows[side].insert((t, seq), rows.row(i).data().into());
                cache.newest_seq[side] = seq;
                if cache.cleanup[side].is_none() {
                    let timer = row_time_cleanup(t, self.relative[side], self.min_cleanup_interval);
                    cache.cleanup[side] = Some(timer);
                    self.timers.insert((timer, key.into()));
                    self.pending.put(
                        cache.key_group,
                        timer_state_key(side, key),
                        timer_value(timer),
                    );
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
                    self.pending.put(
                        cache.key_group,
                        timer_state_key(side, &key),
                        timer_value(timer),
                    );
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
                    self.pending
                        .delete(cache.key_group, timer_state_key(side, &key));
                }
                None => {
                    cache.cleanup[side] = None;
                    self.pending
                        .delete(cache.key_group, timer_state_key(side, &key));
                }
            }
        }
        if cache.is_idle() {
            self.keys.remove(&key);
        }
    }

    /// For a checkpoint: write the rows cached since the last one (and still cached), and
    /// the deletions and timer changes gathered since.
    fn flush(&mut self) -> Result<()> {
        if self.next_seq > self.flushed_seq {
            // New rows have keys of their own (their sequence numbers are new), so they go
            // straight to the backend in chunks rather than through `pending`: a checkpoint
            // then holds at most a chunk of copies in memory.
            let mut chunk = Vec::with_capacity(ROW_WRITE_CHUNK);
            for (key, cache) in self.keys.iter() {
                for side in [LEFT, RIGHT] {
                    if cache.rows[side].is_empty() || cache.newest_seq[side] < self.flushed_seq {
                        continue;
                    }
                    for ((time, seq), row) in &cache.rows[side] {
                        if *seq < self.flushed_seq {
                            continue;
                        }
                        chunk.push(WriteOp::Put {
                            state: self.state_id,
                            key_group: cache.key_group,
                            key: row_state_key(side, key, *time, *seq),
                            value: row.to_vec(),
                        });
                        if chunk.len() == ROW_WRITE_CHUNK {
                            let full =
                                std::mem::replace(&mut chunk, Vec::with_capacity(ROW_WRITE_CHUNK));
                            self.backend.write_batch(full)?;
                        }
                    }
                }
            }
            if !chunk.is_empty() {
                self.backend.write_batch(chunk)?;
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
        if self.pending.len() > TIMER_WRITES_THRESHOLD {
            self.pending.flush(self.backend.as_mut())?;
        }
        out.watermark(if watermark == MAX_WATERMARK {
            MAX_WATERMARK
        } else {
            watermark.saturating_sub(self.output_delay)
        });
        Ok(())
    }

    /// Rebuild the caches and timers from the backend (after a restore).
    fn load(&mut self) -> Result<()> {
        for (key_group, key, value) in self.backend.scan_state(self.state_id)? {
            let stored = state::decode(&key, &value).ok_or_else(|| {
                self.core
                    .error("corrupt interval join state entry in a checkpoint")
            })?;
            let join_key = match &stored {
                Stored::Row { key, .. } | Stored::Timer { key, .. } => *key,
            };
            let cache = match self.keys.get_mut(join_key) {
                Some(cache) => cache,
                None => self.keys.entry(join_key.into()).or_insert(KeyCache {
                    key_group,
                    rows: [Cache::new(), Cache::new()],
                    cleanup: [None, None],
                    newest_seq: [0, 0],
                }),
            };
            match stored {
                Stored::Row {
                    side,
                    time,
                    seq,
                    row,
                    ..
                } => {
                    cache.rows[side].insert((time, seq), row.into());
                    self.next_seq = self.next_seq.max(seq.saturating_add(1));
                }
                Stored::Timer { side, time, .. } => {
                    cache.cleanup[side] = Some(time);
                    self.timers.insert((time, join_key.into()));
                }
            }
        }
        self.flushed_seq = self.next_seq;
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

impl Operator for IntervalJoin {
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

    fn snapshot(&mut self, ctx: &SnapshotContext) -> Result<Option<OperatorSnapshot>> {
        self.flush().map_err(|e| self.core.tag(e))?;
        let item = state::checkpoint_item(self.watermark, self.expiration, &self.task);
        OperatorSnapshot::of_backend(self.backend.as_mut(), ctx, vec![item]).map(Some)
    }

    fn restore(&mut self, operator_state: Vec<serde_json::Value>) -> Result<()> {
        if let Some(w) = restored_watermark(&operator_state) {
            self.watermark = self.watermark.max(w);
        }
        if let Some(expiration) = state::restored_expiration(&operator_state, &self.task) {
            self.expiration = expiration;
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
