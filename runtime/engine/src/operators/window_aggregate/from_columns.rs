//! Window aggregation whose windows come from the input's columns: a `GROUP BY window_start,
//! window_end, keys` over the output of an earlier window TVF or window aggregation (Flink's
//! `WindowAggregate` with a window attached to the input, `WindowAttachedWindowingStrategy`),
//! as in Nexmark q5's `MAX(num) … GROUP BY starttime, endtime` over per-auction counts.
//!
//! Nothing is assigned: each row belongs to exactly the window `[window_start, window_end)` its
//! columns name. Everything else is the window aggregate's: the same (window, key) slots,
//! accumulators, spilling, and firing when the watermark reaches `window_end - 1`. A row whose
//! window has already fired is late: dropped and counted, as Flink's `WindowedSliceAssigner`
//! does (its last window is its own). Upstream window operators emit a window's rows before the
//! watermark that fires it, so on-time input is never late here.

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use weir_state::{StateBackend, StateId};

use super::spill;
use super::{
    OutputColumn, WindowAggregate, WindowAggregateSpec, WindowEntry, WindowKind, event_times, fired,
};
use crate::dataflow::message::{RowKind, Timestamp, row_kinds};
use crate::dataflow::operator::{Operator, OperatorSnapshot, Output, SnapshotContext, TaskInfo};
use crate::error::Result;
use crate::operators::aggregate::{AggregateCall, LazyKeyGroups, NO_SLOT};

/// What the planner hands a window aggregation over window columns.
#[derive(Debug, Clone)]
pub struct ColumnWindowSpec {
    /// The `window_start` column (a timestamp).
    pub start_column: usize,
    /// The `window_end` column (a timestamp).
    pub end_column: usize,
    pub key_columns: Vec<usize>,
    pub aggregates: Vec<AggregateCall>,
    pub output: Vec<OutputColumn>,
    pub output_schema: SchemaRef,
}

pub struct WindowAggregateFromColumns {
    /// The window aggregate whose state and firing this mode shares; its window kind is never
    /// used, since no row is assigned.
    inner: WindowAggregate,
    start_column: usize,
    end_column: usize,
}

impl WindowAggregateFromColumns {
    pub fn new(
        spec: ColumnWindowSpec,
        task: TaskInfo,
        state: Box<dyn StateBackend>,
        state_id: StateId,
    ) -> Result<Self> {
        let inner = WindowAggregate::new(
            WindowAggregateSpec {
                // Validated but unused: windows come from the columns.
                window: WindowKind::Tumble { size: 1, offset: 0 },
                time_column: spec.end_column,
                key_columns: spec.key_columns,
                aggregates: spec.aggregates,
                output: spec.output,
                output_schema: spec.output_schema,
            },
            task,
            state,
            state_id,
        )?;
        Ok(WindowAggregateFromColumns {
            inner,
            start_column: spec.start_column,
            end_column: spec.end_column,
        })
    }

    /// Declare the input schema up front, so windows restored from a checkpoint can fire before
    /// the first batch.
    pub fn with_input_schema(mut self, schema: SchemaRef) -> Self {
        self.inner = self.inner.with_input_schema(schema);
        self
    }

    /// Spill when more than `limit` (window, key) entries are in memory.
    pub fn with_memory_limit(mut self, limit: usize) -> Self {
        self.inner = self.inner.with_memory_limit(limit);
        self
    }

    fn process(&mut self, batch: &RecordBatch) -> Result<()> {
        let op = &mut self.inner;
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        if let Some(kinds) = row_kinds(batch)
            && kinds.values().iter().any(|&k| k != RowKind::Insert as i8)
        {
            return Err(op.error(
                "window aggregation over an updating input (update or delete rows) is not supported",
            ));
        }
        let column = |i: usize| {
            batch
                .columns()
                .get(i)
                .ok_or_else(|| op.error(format!("the input has no window column {i}")))
        };
        let starts = event_times(column(self.start_column)?)?;
        let ends = event_times(column(self.end_column)?)?;
        op.ensure_core(&batch.schema())?;
        let Some(core) = op.core.as_mut() else {
            return Ok(());
        };
        let key_columns = core.keys.columns(batch)?;
        let keys = core.keys.encode(&key_columns)?;
        let args = core.accs.prepare(batch)?;
        let mut key_groups = LazyKeyGroups::new(&key_columns, n, op.task.max_parallelism);
        op.slots.clear();
        op.slots.resize(n, NO_SLOT);
        // Consecutive rows mostly share a window: look its entry up only when it changes.
        let mut current: Option<(Timestamp, Timestamp)> = None;
        let mut entry = None;
        for i in 0..n {
            if starts.is_null(i) || ends.is_null(i) {
                op.late_rows += 1;
                continue;
            }
            let (start, end) = (starts.value(i), ends.value(i));
            if fired(end, op.watermark) {
                op.late_rows += 1;
                continue;
            }
            if current != Some((start, end)) {
                current = Some((start, end));
                let typical = op.windows.typical_keys;
                entry = Some(
                    op.windows
                        .map
                        .entry((end, start))
                        .or_insert_with(|| WindowEntry::with_capacity(typical)),
                );
            }
            let Some(entry) = entry.as_deref_mut() else {
                continue;
            };
            let key = keys.get(i);
            op.slots[i] = match entry.groups.get(key) {
                Some(&slot) => slot,
                None => {
                    let slot = core.alloc(key_groups.get(i)?);
                    entry.groups.insert(key, slot);
                    op.windows.in_memory += 1;
                    slot
                }
            };
        }
        core.accs.update_batch(&args, &op.slots)?;
        spill::maybe_spill(
            &mut op.windows,
            op.core.as_mut(),
            &mut op.store,
            op.memory_limit,
            &op.task.operator,
        )
    }
}

impl Operator for WindowAggregateFromColumns {
    fn output_schema(&self) -> SchemaRef {
        self.inner.output_schema()
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        _out: &mut Output,
    ) -> Result<()> {
        self.process(&batch)
    }

    fn process_watermark(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        self.inner.process_watermark(watermark, out)
    }

    fn snapshot(&mut self, ctx: &SnapshotContext) -> Result<Option<OperatorSnapshot>> {
        self.inner.snapshot(ctx)
    }

    fn restore(&mut self, operator_state: Vec<serde_json::Value>) -> Result<()> {
        self.inner.restore(operator_state)
    }

    fn late_rows_dropped(&self) -> u64 {
        self.inner.late_rows_dropped()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::{Int64Array, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use arrow::util::display::array_value_to_string;
    use weir_state::MemoryBackend;

    use super::*;
    use crate::dataflow::message::MAX_WATERMARK;
    use crate::dataflow::operator::Emitted;
    use crate::operators::aggregate::AggFunction;

    const BASE: i64 = 1_700_000_000_000;

    fn ts_type() -> DataType {
        DataType::Timestamp(TimeUnit::Millisecond, None)
    }

    fn task() -> TaskInfo {
        TaskInfo {
            operator: "window-aggregate-from-columns-test".into(),
            uid: "test-op".into(),
            subtask: 0,
            parallelism: 1,
            max_parallelism: 128,
        }
    }

    /// Input `(window_start, window_end, k, num)`; output `(window_start, window_end, k,
    /// MAX(num), COUNT(*))`, or without `k` when `keyed` is false.
    fn operator(keyed: bool, memory_limit: usize) -> WindowAggregateFromColumns {
        let mut fields = vec![
            Field::new("window_start", ts_type(), false),
            Field::new("window_end", ts_type(), false),
        ];
        let mut output = vec![OutputColumn::WindowStart, OutputColumn::WindowEnd];
        if keyed {
            fields.push(Field::new("k", DataType::Int64, true));
            output.push(OutputColumn::Key(0));
        }
        fields.push(Field::new("maxn", DataType::Int64, true));
        fields.push(Field::new("cnt", DataType::Int64, false));
        output.extend([OutputColumn::Aggregate(0), OutputColumn::Aggregate(1)]);
        let spec = ColumnWindowSpec {
            start_column: 0,
            end_column: 1,
            key_columns: if keyed { vec![2] } else { vec![] },
            aggregates: vec![
                AggregateCall {
                    function: AggFunction::Max,
                    arg: Some(3),
                    output_type: DataType::Int64,
                },
                AggregateCall {
                    function: AggFunction::CountStar,
                    arg: None,
                    output_type: DataType::Int64,
                },
            ],
            output,
            output_schema: Arc::new(Schema::new(fields)),
        };
        WindowAggregateFromColumns::new(spec, task(), Box::new(MemoryBackend::new()), StateId(1))
            .unwrap()
            .with_memory_limit(memory_limit)
    }

    /// Rows `(window_start, window_end, k, num)`.
    fn batch(rows: &[(i64, i64, i64, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("window_start", ts_type(), false),
            Field::new("window_end", ts_type(), false),
            Field::new("k", DataType::Int64, true),
            Field::new("num", DataType::Int64, true),
        ]));
        let starts: TimestampMillisecondArray = rows.iter().map(|r| Some(r.0)).collect();
        let ends: TimestampMillisecondArray = rows.iter().map(|r| Some(r.1)).collect();
        let keys: Int64Array = rows.iter().map(|r| Some(r.2)).collect();
        let nums: Int64Array = rows.iter().map(|r| Some(r.3)).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(starts),
                Arc::new(ends),
                Arc::new(keys),
                Arc::new(nums),
            ],
        )
        .unwrap()
    }

    fn drain(out: &mut Output) -> Vec<String> {
        let mut rows = Vec::new();
        for item in out.items.drain(..) {
            if let Emitted::Batch(b) = item {
                for i in 0..b.num_rows() {
                    let cells: Vec<String> = (0..b.num_columns())
                        .map(|c| array_value_to_string(b.column(c), i).unwrap())
                        .collect();
                    rows.push(cells.join("|"));
                }
            }
        }
        rows.sort();
        rows
    }

    fn millis(ms: i64) -> String {
        let a = TimestampMillisecondArray::from(vec![ms]);
        array_value_to_string(&a, 0).unwrap()
    }

    #[test]
    fn windows_are_read_from_the_columns_and_fire_when_the_watermark_passes_their_end() {
        let mut op = operator(false, 1_000_000);
        let mut out = Output::default();
        // Two overlapping HOP windows, rows interleaved.
        let (a, b) = ((BASE, BASE + 10_000), (BASE + 2_000, BASE + 12_000));
        op.process_batch(
            0,
            batch(&[(a.0, a.1, 1, 3), (b.0, b.1, 1, 7), (a.0, a.1, 2, 5)]),
            &mut out,
        )
        .unwrap();
        op.process_watermark(a.1 - 2, &mut out).unwrap();
        assert!(drain(&mut out).is_empty());
        op.process_watermark(a.1 - 1, &mut out).unwrap();
        assert_eq!(
            drain(&mut out),
            vec![format!("{}|{}|5|2", millis(a.0), millis(a.1))]
        );
        op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
        assert_eq!(
            drain(&mut out),
            vec![format!("{}|{}|7|1", millis(b.0), millis(b.1))]
        );
        assert_eq!(op.late_rows_dropped(), 0);
    }

    #[test]
    fn rows_of_a_fired_window_are_dropped_and_counted_as_late() {
        let mut op = operator(true, 1_000_000);
        let mut out = Output::default();
        let end = BASE + 5_000;
        op.process_batch(0, batch(&[(BASE, end, 1, 1)]), &mut out)
            .unwrap();
        op.process_watermark(end - 1, &mut out).unwrap();
        assert_eq!(drain(&mut out).len(), 1);
        op.process_batch(
            0,
            batch(&[(BASE, end, 1, 9), (end, end + 5_000, 1, 2)]),
            &mut out,
        )
        .unwrap();
        assert_eq!(op.late_rows_dropped(), 1);
        op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
        assert_eq!(
            drain(&mut out),
            vec![format!("{}|{}|1|2|1", millis(end), millis(end + 5_000))]
        );
    }

    #[test]
    fn spilled_windows_give_the_same_results_as_in_memory_ones() {
        let mut rows = Vec::new();
        let mut expected: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
        for i in 0..400i64 {
            let start = BASE + (i % 7) * 2_000;
            let (k, num) = (i % 13, (i * 37) % 101);
            rows.push((start, start + 10_000, k, num));
            let e = expected.entry((start, k)).or_insert((i64::MIN, 0));
            e.0 = e.0.max(num);
            e.1 += 1;
        }
        let mut results = Vec::new();
        for limit in [1_000_000, 5] {
            let mut op = operator(true, limit);
            let mut out = Output::default();
            for chunk in rows.chunks(17) {
                op.process_batch(0, batch(chunk), &mut out).unwrap();
            }
            op.process_watermark(MAX_WATERMARK, &mut out).unwrap();
            results.push(drain(&mut out));
        }
        let want: Vec<String> = {
            let mut v: Vec<String> = expected
                .iter()
                .map(|((s, k), (m, c))| {
                    format!("{}|{}|{k}|{m}|{c}", millis(*s), millis(s + 10_000))
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(results[0], want);
        assert_eq!(results[1], want);
    }
}
