//! Non-windowed `GROUP BY` aggregation producing a changelog, as Flink's `GroupAggFunction`
//! does without mini-batch or state TTL and with update-before messages.
//!
//! Rows are processed one by one in input order. For a row of key `k`, the previous result is
//! read from `k`'s accumulators (none if `k` has no state), the row is accumulated (`+I`, `+U`
//! or an insert-only input) or retracted (`-U`, `-D`), and a hidden row count moves by ±1.
//! While the count is positive: a new key emits `+I(new)`; an existing key emits
//! `-U(previous)`, `+U(new)` unless the result did not change, when it emits nothing. When the
//! count reaches 0 the key emits `-D(previous)` and its state is removed. A retraction for a key
//! without state is ignored. Each input batch gives one output batch whose last column is the
//! row kind.
//!
//! State lives in a hash map from key bytes to accumulator slots and is written through to the
//! state backend — the dirty keys' row count and accumulator states, under the key bytes in the
//! key's key group — at every watermark and at the end of input. When more keys than the memory
//! limit are held, all dirty keys are written and clean keys evicted down to half the limit;
//! after the first eviction, a key missing from memory is looked up in the backend once.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, SchemaRef};
use weir_state::{StateBackend, StateId, WriteOp};

use crate::dataflow::key_group::KeyGroup;
use crate::dataflow::message::{ROW_KIND_COLUMN, RowKind, Timestamp, row_kinds};
use crate::dataflow::operator::{Operator, OperatorSnapshot, Output, SnapshotContext, TaskInfo};
use crate::error::{Error, Result};
use crate::operators::aggregate::{
    Accumulators, AggregateCall, GroupKeys, KeyMap, LazyKeyGroups, ValueBuilder, cast_to, get_i64,
    put_i64,
};

#[derive(Debug, Clone)]
pub struct GroupAggregateSpec {
    pub key_columns: Vec<usize>,
    pub aggregates: Vec<AggregateCall>,
    /// The input is a changelog with update and delete rows (MIN and MAX then keep every value).
    pub input_updating: bool,
    /// Key columns in order, then aggregates, then the hidden Int8 row-kind column
    /// ([`ROW_KIND_COLUMN`]) last.
    pub output_schema: SchemaRef,
}

/// Keys held in memory above which clean keys are evicted.
pub const DEFAULT_MEMORY_LIMIT: usize = 1_000_000;

/// What a slot holds besides its accumulators.
#[derive(Debug, Default)]
struct SlotMeta {
    key: Box<[u8]>,
    key_group: KeyGroup,
    /// Rows accumulated minus rows retracted; 0 marks a key removed since the last write.
    count: i64,
    /// Changed since it was last written to the backend.
    dirty: bool,
    /// The backend holds a value for this key.
    persisted: bool,
}

/// What is built from the first batch's schema.
struct Core {
    keys: GroupKeys,
    accs: Accumulators,
}

pub struct GroupAggregate {
    spec: GroupAggregateSpec,
    task: TaskInfo,
    backend: Box<dyn StateBackend>,
    state_id: StateId,
    memory_limit: usize,
    core: Option<Core>,
    index: KeyMap<u32>,
    meta: Vec<SlotMeta>,
    dirty: Vec<u32>,
    /// Some key was evicted: a key missing from memory may be in the backend.
    evicted: bool,
    prev: Vec<u8>,
    next: Vec<u8>,
}

impl GroupAggregate {
    pub fn new(
        spec: GroupAggregateSpec,
        task: TaskInfo,
        state: Box<dyn StateBackend>,
        state_id: StateId,
    ) -> Result<Self> {
        let fields = spec.output_schema.fields();
        let expected = spec.key_columns.len() + spec.aggregates.len() + 1;
        let row_kind_ok = fields
            .last()
            .is_some_and(|f| f.name() == ROW_KIND_COLUMN && f.data_type() == &DataType::Int8);
        if fields.len() != expected || !row_kind_ok {
            return Err(Error::execution(
                task.operator.clone(),
                format!(
                    "the output schema must hold {} key columns, {} aggregates and the Int8 `{ROW_KIND_COLUMN}` column last; it has {} columns",
                    spec.key_columns.len(),
                    spec.aggregates.len(),
                    fields.len()
                ),
            ));
        }
        Ok(GroupAggregate {
            spec,
            task,
            backend: state,
            state_id,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            core: None,
            index: KeyMap::default(),
            meta: Vec::new(),
            dirty: Vec::new(),
            evicted: false,
            prev: Vec::new(),
            next: Vec::new(),
        })
    }

    /// Evict clean keys when more than `limit` keys are in memory.
    pub fn with_memory_limit(mut self, limit: usize) -> Self {
        self.memory_limit = limit.max(1);
        self
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::execution(self.task.operator.clone(), message)
    }

    fn meta_mut(meta: &mut Vec<SlotMeta>, slot: u32) -> &mut SlotMeta {
        let i = slot as usize;
        if meta.len() <= i {
            meta.resize_with(i + 1, SlotMeta::default);
        }
        &mut meta[i]
    }

    /// Write every dirty key to the backend; drop removed keys from memory.
    fn flush(&mut self) -> Result<()> {
        let Some(core) = self.core.as_mut() else {
            return Ok(());
        };
        let mut ops = Vec::with_capacity(self.dirty.len());
        for slot in self.dirty.drain(..) {
            let meta = &mut self.meta[slot as usize];
            if !meta.dirty {
                continue;
            }
            meta.dirty = false;
            if meta.count > 0 {
                let mut value = Vec::new();
                put_i64(&mut value, meta.count);
                core.accs.write_state(slot, &mut value);
                ops.push(WriteOp::Put {
                    state: self.state_id,
                    key_group: meta.key_group,
                    key: meta.key.to_vec(),
                    value,
                });
                meta.persisted = true;
            } else {
                if meta.persisted {
                    ops.push(WriteOp::Delete {
                        state: self.state_id,
                        key_group: meta.key_group,
                        key: meta.key.to_vec(),
                    });
                }
                self.index.remove(&meta.key);
                *meta = SlotMeta::default();
                core.accs.release(slot);
            }
        }
        if !ops.is_empty() {
            self.backend.write_batch(ops)?;
        }
        Ok(())
    }

    /// Above the memory limit: write everything, then evict keys down to half the limit.
    fn maybe_evict(&mut self) -> Result<()> {
        if self.index.len() <= self.memory_limit {
            return Ok(());
        }
        self.flush()?;
        let Some(core) = self.core.as_mut() else {
            return Ok(());
        };
        let excess = self.index.len().saturating_sub(self.memory_limit / 2);
        let victims: Vec<u32> = self.index.values().copied().take(excess).collect();
        for slot in victims {
            let meta = std::mem::take(&mut self.meta[slot as usize]);
            self.index.remove(&meta.key);
            core.accs.release(slot);
        }
        self.evicted = true;
        tracing::debug!(operator = %self.task.operator, evicted = excess, "evicted group aggregate keys");
        Ok(())
    }
}

/// Output rows of one input batch.
struct Changes {
    rows: Vec<u32>,
    kinds: Vec<i8>,
    builders: Vec<ValueBuilder>,
}

impl Changes {
    fn push(&mut self, row: usize, kind: RowKind, results: &[u8]) -> Result<()> {
        self.rows.push(row as u32);
        self.kinds.push(kind as i8);
        let mut input = results;
        for builder in &mut self.builders {
            builder.append(&mut input)?;
        }
        Ok(())
    }
}

impl Operator for GroupAggregate {
    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.spec.output_schema)
    }

    fn process_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        if self.core.is_none() {
            let schema = batch.schema();
            self.core = Some(Core {
                keys: GroupKeys::new(&self.spec.key_columns, &schema)?,
                accs: Accumulators::new(&self.spec.aggregates, &schema, self.spec.input_updating)?,
            });
        }
        let kinds = row_kinds(&batch);
        if let Some(kinds) = kinds
            && let Some(bad) = kinds
                .values()
                .iter()
                .find(|&&k| RowKind::from_i8(k).is_none())
        {
            return Err(self.error(format!("invalid row kind {bad} in the input")));
        }
        let Some(core) = self.core.as_mut() else {
            return Ok(());
        };
        let key_columns = core.keys.columns(&batch)?;
        let keys = core.keys.encode(&key_columns)?;
        let args = core.accs.prepare(&batch)?;
        let mut key_groups = LazyKeyGroups::new(&key_columns, n, self.task.max_parallelism);
        let fields = self.spec.output_schema.fields();
        let num_keys = self.spec.key_columns.len();
        let mut changes = Changes {
            rows: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            builders: fields[num_keys..fields.len() - 1]
                .iter()
                .map(|f| ValueBuilder::new(f.data_type(), n))
                .collect::<Result<_>>()?,
        };
        for i in 0..n {
            let retract = kinds.is_some_and(|k| {
                RowKind::from_i8(k.value(i)).is_some_and(|kind| !kind.is_addition())
            });
            let key = keys.get(i);
            let mut slot = self.index.get(key).copied();
            if slot.is_none() && self.evicted {
                let key_group = key_groups.get(i)?;
                if let Some(value) = self.backend.get(self.state_id, key_group, key)? {
                    let s = core.accs.alloc();
                    let mut input = value.as_slice();
                    let count = get_i64(&mut input)?;
                    core.accs.read_state(s, input)?;
                    *Self::meta_mut(&mut self.meta, s) = SlotMeta {
                        key: key.into(),
                        key_group,
                        count,
                        dirty: false,
                        persisted: true,
                    };
                    self.index.insert(key, s);
                    slot = Some(s);
                }
            }
            let prev_exists = slot.is_some_and(|s| self.meta[s as usize].count > 0);
            if retract && !prev_exists {
                // Flink creates no state for a retraction of a key it does not hold.
                continue;
            }
            let slot = match slot {
                Some(s) => s,
                None => {
                    let s = core.accs.alloc();
                    *Self::meta_mut(&mut self.meta, s) = SlotMeta {
                        key: key.into(),
                        key_group: key_groups.get(i)?,
                        ..SlotMeta::default()
                    };
                    self.index.insert(key, s);
                    s
                }
            };
            if prev_exists {
                self.prev.clear();
                core.accs.write_results(slot, &mut self.prev);
            }
            core.accs.update_row(&args, i, slot, retract)?;
            let meta = &mut self.meta[slot as usize];
            meta.count += if retract { -1 } else { 1 };
            if !meta.dirty {
                meta.dirty = true;
                self.dirty.push(slot);
            }
            if meta.count > 0 {
                self.next.clear();
                core.accs.write_results(slot, &mut self.next);
                if !prev_exists {
                    changes.push(i, RowKind::Insert, &self.next)?;
                } else if self.prev != self.next {
                    changes.push(i, RowKind::UpdateBefore, &self.prev)?;
                    changes.push(i, RowKind::UpdateAfter, &self.next)?;
                }
            } else {
                meta.count = 0;
                if prev_exists {
                    changes.push(i, RowKind::Delete, &self.prev)?;
                }
                core.accs.clear(slot);
            }
        }
        if !changes.rows.is_empty() {
            let indices = UInt32Array::from(std::mem::take(&mut changes.rows));
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len());
            for (&c, field) in self.spec.key_columns.iter().zip(fields.iter()) {
                let taken = arrow::compute::take(batch.column(c).as_ref(), &indices, None)?;
                columns.push(cast_to(&taken, field.data_type())?);
            }
            for builder in &mut changes.builders {
                columns.push(builder.finish()?);
            }
            columns.push(Arc::new(Int8Array::from(std::mem::take(
                &mut changes.kinds,
            ))));
            out.batch(RecordBatch::try_new(
                Arc::clone(&self.spec.output_schema),
                columns,
            )?);
        }
        self.maybe_evict()
    }

    fn process_watermark(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        self.flush()?;
        out.watermark(watermark);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Output) -> Result<()> {
        self.flush()
    }

    fn snapshot(&mut self, ctx: &SnapshotContext) -> Result<Option<OperatorSnapshot>> {
        self.flush()?;
        OperatorSnapshot::of_backend(self.backend.as_mut(), ctx, Vec::new()).map(Some)
    }

    fn restore(&mut self, _operator_state: Vec<serde_json::Value>) -> Result<()> {
        // The restored keys are in the backend, none in memory: look each up on first use.
        self.evicted = true;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
