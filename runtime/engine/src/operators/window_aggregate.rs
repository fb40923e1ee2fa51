//! Window TVF aggregation in event time — `GROUP BY window_start, window_end, keys` over TUMBLE,
//! HOP, CUMULATE or SESSION — with Flink's semantics: windows are epoch-aligned (plus an
//! offset), a window fires when the watermark reaches `window_end - 1`, and a row's
//! contribution to a window that has already fired is dropped (per window: a HOP or CUMULATE row
//! still counts in the later windows it belongs to).
//!
//! State is a map from (window end, window start) to that window's groups, each a key (in
//! Arrow's row format) and an accumulator slot ([`Accumulators`]). A batch is assigned to
//! slots one window "pass" at a time (a HOP row is in `size / slide` windows: one pass each) and
//! each aggregate then updates the whole batch in one loop. SESSION windows are kept per key and
//! merged as rows arrive, as Flink's `MergingWindowSet` does.
//!
//! When more (window, key) entries are in memory than the memory limit, whole windows are
//! spilled to the state backend, latest end first, until half the limit is left; a window's
//! spilled partial states are merged back when it fires (or when a session merges) and deleted.
//! The key layout is described in [`spill`]. Checkpoints copy the in-memory entries and keep
//! them (see [`snapshot`]), so a checkpoint does not make windows fire from the backend.

mod assign;
mod from_columns;

pub(crate) use assign::aligned_windows;
pub use from_columns::{ColumnWindowSpec, WindowAggregateFromColumns};
mod snapshot;
mod spill;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use weir_state::{StateBackend, StateId};

use spill::Store;

use crate::dataflow::key_group::KeyGroup;
use crate::dataflow::message::{RowKind, Timestamp, row_kinds};
use crate::dataflow::operator::{
    Operator, OperatorSnapshot, Output, SnapshotContext, TaskInfo, restored_watermark,
    watermark_state,
};
use crate::error::{Error, Result};
use crate::operators::aggregate::{
    Accumulators, AggregateCall, GroupKeys, KeyMap, LazyKeyGroups, ValueBuilder,
};

/// A window of the window TVFs; all lengths in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumble {
        size: i64,
        offset: i64,
    },
    Hop {
        size: i64,
        slide: i64,
        offset: i64,
    },
    Cumulate {
        max_size: i64,
        step: i64,
        offset: i64,
    },
    Session {
        gap: i64,
    },
}

/// One column of the output, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputColumn {
    /// A key column: an index into `key_columns`.
    Key(usize),
    WindowStart,
    WindowEnd,
    /// `window_end - 1`, the rowtime of the result.
    WindowTime,
    /// An aggregate: an index into `aggregates`.
    Aggregate(usize),
}

#[derive(Debug, Clone)]
pub struct WindowAggregateSpec {
    pub window: WindowKind,
    /// The event-time column (an Arrow millisecond timestamp).
    pub time_column: usize,
    pub key_columns: Vec<usize>,
    pub aggregates: Vec<AggregateCall>,
    pub output: Vec<OutputColumn>,
    pub output_schema: SchemaRef,
}

/// In-memory (window, key) entries above which partial accumulators are spilled.
pub const DEFAULT_MEMORY_LIMIT: usize = 1_000_000;

/// Fired windows are emitted in batches of about this many rows.
const OUTPUT_BATCH_ROWS: usize = 8192;

/// Whether a window ending at `end` has fired once the watermark is `watermark`.
#[inline]
fn fired(end: Timestamp, watermark: Timestamp) -> bool {
    end.saturating_sub(1) <= watermark
}

/// The window's groups: key bytes → slot, and the key groups its spilled entries went to.
#[derive(Default)]
struct WindowEntry {
    groups: KeyMap<u32>,
    spilled: BTreeSet<KeyGroup>,
}

impl WindowEntry {
    fn with_capacity(keys: usize) -> Self {
        WindowEntry {
            groups: KeyMap::with_capacity(keys),
            spilled: BTreeSet::new(),
        }
    }
}

/// The windows and their entries.
#[derive(Default)]
struct Windows {
    /// (end, start) → the window's groups.
    map: BTreeMap<(Timestamp, Timestamp), WindowEntry>,
    /// SESSION only: key → its live sessions as (start, end), sorted.
    sessions: KeyMap<Vec<(Timestamp, Timestamp)>>,
    /// (window, key) entries held in memory.
    in_memory: usize,
    /// Keys in the last window that fired: the capacity new windows start with.
    typical_keys: usize,
}

/// What is built from the first batch's schema: key encoding and accumulators.
struct Core {
    keys: GroupKeys,
    accs: Accumulators,
    /// The key group of each slot's key (where a spilled entry goes).
    slot_key_group: Vec<KeyGroup>,
}

impl Core {
    fn alloc(&mut self, key_group: KeyGroup) -> u32 {
        let slot = self.accs.alloc();
        let i = slot as usize;
        if self.slot_key_group.len() <= i {
            self.slot_key_group.resize(i + 1, 0);
        }
        self.slot_key_group[i] = key_group;
        slot
    }
}

pub struct WindowAggregate {
    spec: WindowAggregateSpec,
    task: TaskInfo,
    store: Store,
    memory_limit: usize,
    core: Option<Core>,
    windows: Windows,
    watermark: Timestamp,
    late_rows: u64,
    slots: Vec<u32>,
    contributed: Vec<bool>,
    /// The input's schema, when known before the first batch: a restored operator may have
    /// windows to fire before any row arrives.
    input_schema: Option<SchemaRef>,
}

impl WindowAggregate {
    pub fn new(
        spec: WindowAggregateSpec,
        task: TaskInfo,
        state: Box<dyn StateBackend>,
        state_id: StateId,
    ) -> Result<Self> {
        validate(&spec, &task)?;
        Ok(WindowAggregate {
            spec,
            task,
            store: Store::new(state, state_id),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            core: None,
            windows: Windows::default(),
            watermark: i64::MIN,
            late_rows: 0,
            slots: Vec::new(),
            contributed: Vec::new(),
            input_schema: None,
        })
    }

    /// Declare the input schema up front (the planner knows it), so restored windows can fire
    /// before the first batch.
    pub fn with_input_schema(mut self, schema: SchemaRef) -> Self {
        self.input_schema = Some(schema);
        self
    }

    /// Build the key encoding and accumulators for `schema` once.
    fn ensure_core(&mut self, schema: &SchemaRef) -> Result<()> {
        if self.core.is_none() {
            self.core = Some(Core {
                keys: GroupKeys::new(&self.spec.key_columns, schema)?,
                accs: Accumulators::new(&self.spec.aggregates, schema, false)?,
                slot_key_group: Vec::new(),
            });
        }
        Ok(())
    }

    /// Spill when more than `limit` (window, key) entries are in memory.
    pub fn with_memory_limit(mut self, limit: usize) -> Self {
        self.memory_limit = limit.max(1);
        self
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::execution(self.task.operator.clone(), message)
    }

    /// Emit every window that fires at `watermark`, ordered by end, start, then key.
    fn fire(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        let Some(core) = self.core.as_mut() else {
            return Ok(());
        };
        let mut pending = Fired::default();
        while let Some((&(end, start), _)) = self.windows.map.first_key_value() {
            if !fired(end, watermark) {
                break;
            }
            let Some(entry) = self.windows.map.remove(&(end, start)) else {
                break;
            };
            let mut groups = entry.groups;
            self.windows.in_memory -= groups.len();
            if !entry.spilled.is_empty() {
                spill::restore_spilled(
                    &mut self.store,
                    core,
                    &entry.spilled,
                    end,
                    start,
                    &mut groups,
                )?;
            }
            let mut items = groups.into_entries();
            items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            self.windows.typical_keys = items.len();
            for (key, slot) in items {
                if let Some(list) = self.windows.sessions.get_mut(&key) {
                    list.retain(|&w| w != (start, end));
                    if list.is_empty() {
                        self.windows.sessions.remove(&key);
                    }
                }
                pending.starts.push(start);
                pending.ends.push(end);
                pending.keys.push(key);
                pending.slots.push(slot);
            }
            if pending.slots.len() >= OUTPUT_BATCH_ROWS {
                emit(&self.spec, core, &mut pending, out)?;
            }
        }
        emit(&self.spec, core, &mut pending, out)
    }
}

/// Fired (window, key) rows waiting to be emitted.
#[derive(Default)]
struct Fired {
    starts: Vec<Timestamp>,
    ends: Vec<Timestamp>,
    keys: Vec<Vec<u8>>,
    slots: Vec<u32>,
}

/// Emit the pending fired rows as one batch and release their slots.
fn emit(
    spec: &WindowAggregateSpec,
    core: &mut Core,
    pending: &mut Fired,
    out: &mut Output,
) -> Result<()> {
    if pending.slots.is_empty() {
        return Ok(());
    }
    let schema = &spec.output_schema;
    let needs_keys = spec
        .output
        .iter()
        .any(|c| matches!(c, OutputColumn::Key(_)));
    let key_arrays = if needs_keys {
        core.keys.decode(pending.keys.iter().map(|k| &k[..]))?
    } else {
        Vec::new()
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(spec.output.len());
    let mut buf = Vec::new();
    for (column, field) in spec.output.iter().zip(schema.fields()) {
        let array: ArrayRef = match *column {
            OutputColumn::Key(i) => {
                let key = key_arrays.get(i).ok_or_else(|| {
                    Error::execution("window aggregate", format!("no key column {i}"))
                })?;
                crate::operators::aggregate::cast_to(key, field.data_type())?
            }
            OutputColumn::WindowStart => timestamps(pending.starts.clone(), field.data_type())?,
            OutputColumn::WindowEnd => timestamps(pending.ends.clone(), field.data_type())?,
            OutputColumn::WindowTime => timestamps(
                pending.ends.iter().map(|e| e.saturating_sub(1)).collect(),
                field.data_type(),
            )?,
            OutputColumn::Aggregate(j) => {
                let mut builder = ValueBuilder::new(field.data_type(), pending.slots.len())?;
                for &slot in &pending.slots {
                    buf.clear();
                    core.accs.write_result(j, slot, &mut buf);
                    builder.append(&mut buf.as_slice())?;
                }
                builder.finish()?
            }
        };
        columns.push(array);
    }
    let batch = RecordBatch::try_new(Arc::clone(schema), columns)?;
    for &slot in &pending.slots {
        core.accs.release(slot);
    }
    pending.starts.clear();
    pending.ends.clear();
    pending.keys.clear();
    pending.slots.clear();
    out.batch(batch);
    Ok(())
}

/// A timestamp column of the output field's type (normally millisecond, maybe with a zone).
fn timestamps(values: Vec<Timestamp>, data_type: &DataType) -> Result<ArrayRef> {
    match data_type {
        DataType::Timestamp(TimeUnit::Millisecond, tz) => Ok(Arc::new(
            TimestampMillisecondArray::from(values).with_timezone_opt(tz.clone()),
        )),
        other => {
            let array: ArrayRef = Arc::new(TimestampMillisecondArray::from(values));
            Ok(arrow::compute::cast(&array, other)?)
        }
    }
}

/// The event times of a batch as milliseconds.
fn event_times(column: &ArrayRef) -> Result<TimestampMillisecondArray> {
    match column.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Ok(column.as_primitive::<TimestampMillisecondType>().clone())
        }
        DataType::Timestamp(_, _) | DataType::Int64 | DataType::Date32 | DataType::Date64 => {
            let cast =
                arrow::compute::cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            Ok(cast.as_primitive::<TimestampMillisecondType>().clone())
        }
        other => Err(Error::execution(
            "window aggregate",
            format!("the time attribute must be a timestamp, not {other}"),
        )),
    }
}

fn validate(spec: &WindowAggregateSpec, task: &TaskInfo) -> Result<()> {
    let fail = |message: String| Err(Error::execution(task.operator.clone(), message));
    match spec.window {
        WindowKind::Tumble { size, .. } if size <= 0 => {
            return fail(format!("TUMBLE size must be positive, got {size} ms"));
        }
        WindowKind::Hop { size, slide, .. } if slide <= 0 || size <= 0 || size % slide != 0 => {
            return fail(format!(
                "HOP size ({size} ms) must be a positive multiple of the slide ({slide} ms)"
            ));
        }
        WindowKind::Cumulate { max_size, step, .. }
            if step <= 0 || max_size <= 0 || max_size % step != 0 =>
        {
            return fail(format!(
                "CUMULATE max size ({max_size} ms) must be a positive multiple of the step ({step} ms)"
            ));
        }
        WindowKind::Session { gap } if gap <= 0 => {
            return fail(format!("SESSION gap must be positive, got {gap} ms"));
        }
        _ => {}
    }
    let fields = spec.output_schema.fields();
    if fields.len() != spec.output.len() {
        return fail(format!(
            "the output schema has {} columns but {} output columns are listed",
            fields.len(),
            spec.output.len()
        ));
    }
    for (column, field) in spec.output.iter().zip(fields) {
        match *column {
            OutputColumn::Key(i) if i >= spec.key_columns.len() => {
                return fail(format!("output column `{}` names key {i}", field.name()));
            }
            OutputColumn::Aggregate(j) if j >= spec.aggregates.len() => {
                return fail(format!(
                    "output column `{}` names aggregate {j}",
                    field.name()
                ));
            }
            OutputColumn::WindowStart | OutputColumn::WindowEnd | OutputColumn::WindowTime
                if !matches!(field.data_type(), DataType::Timestamp(_, _)) =>
            {
                return fail(format!(
                    "window column `{}` must be a timestamp, not {}",
                    field.name(),
                    field.data_type()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

impl Operator for WindowAggregate {
    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.spec.output_schema)
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        _out: &mut Output,
    ) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        if let Some(kinds) = row_kinds(&batch)
            && kinds.values().iter().any(|&k| k != RowKind::Insert as i8)
        {
            return Err(self.error(
                "window aggregation over an updating input (update or delete rows) is not supported",
            ));
        }
        let time_column = batch
            .columns()
            .get(self.spec.time_column)
            .ok_or_else(|| self.error("the time column is missing from the input"))?;
        let times = event_times(time_column)?;
        self.ensure_core(&batch.schema())?;
        let Some(core) = self.core.as_mut() else {
            return Ok(());
        };
        let key_columns = core.keys.columns(&batch)?;
        let keys = core.keys.encode(&key_columns)?;
        let args = core.accs.prepare(&batch)?;
        let mut key_groups = LazyKeyGroups::new(&key_columns, n, self.task.max_parallelism);
        let mut ctx = assign::Context {
            windows: &mut self.windows,
            core,
            store: &mut self.store,
            watermark: self.watermark,
            slots: &mut self.slots,
            late_rows: &mut self.late_rows,
        };
        match self.spec.window {
            WindowKind::Session { gap } => {
                assign::sessions(&mut ctx, gap, &times, &keys, &mut key_groups, &args)?
            }
            kind => assign::aligned(
                &mut ctx,
                kind,
                &times,
                &keys,
                &mut key_groups,
                &args,
                &mut self.contributed,
            )?,
        }
        spill::maybe_spill(
            &mut self.windows,
            self.core.as_mut(),
            &mut self.store,
            self.memory_limit,
            &self.task.operator,
        )
    }

    fn process_watermark(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        self.watermark = self.watermark.max(watermark);
        if self.core.is_none()
            && !self.windows.map.is_empty()
            && let Some(schema) = self.input_schema.clone()
        {
            self.ensure_core(&schema)?;
        }
        self.fire(self.watermark, out)?;
        out.watermark(watermark);
        Ok(())
    }

    fn late_rows_dropped(&self) -> u64 {
        self.late_rows
    }

    /// The in-memory entries are copied into the snapshot and kept (see [`snapshot`]); the
    /// watermark goes beside them, so rows that were late before a restore are late after it.
    fn snapshot(&mut self, ctx: &SnapshotContext) -> Result<Option<OperatorSnapshot>> {
        let state = watermark_state(self.watermark);
        snapshot::snapshot(
            &self.windows,
            self.core.as_ref(),
            &mut self.store,
            ctx,
            vec![state],
        )
        .map(Some)
    }

    fn restore(&mut self, operator_state: Vec<serde_json::Value>) -> Result<()> {
        if let Some(w) = restored_watermark(&operator_state) {
            self.watermark = self.watermark.max(w);
        }
        let sessions = matches!(self.spec.window, WindowKind::Session { .. });
        spill::rediscover(&mut self.windows, &mut self.store, sessions)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
