//! The operator trait: one required method (process a batch) and defaulted hooks for
//! watermarks, checkpoints (snapshot and restore) and the end of input. Operators are chained inside a task; each call appends
//! what the operator emits to an output buffer that feeds the next operator in the chain.

use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use weir_state::{LocalSnapshot, StateBackend};

use crate::dataflow::message::Timestamp;
use crate::error::Result;

/// What an operator emits: batches and watermarks, in order.
#[derive(Debug, Default)]
pub struct Output {
    pub items: Vec<Emitted>,
}

#[derive(Debug)]
pub enum Emitted {
    Batch(RecordBatch),
    Watermark(Timestamp),
}

impl Output {
    pub fn batch(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.items.push(Emitted::Batch(batch));
        }
    }

    pub fn watermark(&mut self, watermark: Timestamp) {
        self.items.push(Emitted::Watermark(watermark));
    }
}

/// Per-task facts an operator may need when it is opened.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// Operator name as shown by `weir explain`, for error messages.
    pub operator: String,
    /// The node's stable state id (see [`crate::dataflow::graph::Node::uid`]); stateful
    /// operators open their state backend under it.
    pub uid: String,
    pub subtask: usize,
    pub parallelism: usize,
    pub max_parallelism: usize,
}

/// What a checkpoint asks of an operator.
#[derive(Debug, Clone)]
pub struct SnapshotContext {
    pub checkpoint_id: u64,
    /// Savepoints need the whole state, not an incremental native snapshot.
    pub savepoint: bool,
    /// An empty directory the operator's backend may fill with its local snapshot.
    pub scratch: PathBuf,
}

/// An operator's part of a checkpoint.
#[derive(Debug, Default)]
pub struct OperatorSnapshot {
    /// The keyed state, from [`StateBackend::snapshot`], taken after the operator wrote its
    /// dirty in-memory state through to the backend.
    pub keyed: Option<LocalSnapshot>,
    /// Non-keyed state (the operator's current watermark, say). On restore every subtask gets
    /// the items of every old subtask (Flink's union redistribution).
    pub operator_state: Vec<serde_json::Value>,
}

impl OperatorSnapshot {
    /// Snapshot `backend` (already holding everything) together with `operator_state`.
    pub fn of_backend(
        backend: &mut dyn StateBackend,
        ctx: &SnapshotContext,
        operator_state: Vec<serde_json::Value>,
    ) -> Result<OperatorSnapshot> {
        Ok(OperatorSnapshot {
            keyed: Some(backend.snapshot(&ctx.scratch)?),
            operator_state,
        })
    }
}

/// An operator's current watermark as an operator-state item, so rows that were late before a
/// restore are late after it.
pub fn watermark_state(watermark: Timestamp) -> serde_json::Value {
    serde_json::json!({ "watermark": watermark })
}

/// The watermark to resume with from the items of [`watermark_state`] of every old subtask.
/// Aligned barriers mean every subtask saw the same watermarks before the barrier, so the
/// values agree; the largest is the safe pick after a rescale.
pub fn restored_watermark(operator_state: &[serde_json::Value]) -> Option<Timestamp> {
    operator_state
        .iter()
        .filter_map(|v| v.get("watermark")?.as_i64())
        .max()
}

/// A stream operator. Implementations must not block on I/O outside their own state backend.
pub trait Operator: Send {
    /// The schema of the batches this operator emits.
    fn output_schema(&self) -> SchemaRef;

    /// Process one batch from input `input` (0 for single-input operators; 0 = left, 1 = right
    /// for two-input operators).
    fn process_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()>;

    /// The combined watermark of all inputs advanced to `watermark`. The default forwards it.
    fn process_watermark(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        out.watermark(watermark);
        Ok(())
    }

    /// All inputs ended (a final `MAX_WATERMARK` was already delivered for event-time jobs).
    fn finish(&mut self, _out: &mut Output) -> Result<()> {
        Ok(())
    }

    /// A checkpoint barrier reached this operator: every earlier row was processed. Write the
    /// dirty in-memory state through to the backend and snapshot it. Stateless operators keep
    /// the default (no state).
    fn snapshot(&mut self, _ctx: &SnapshotContext) -> Result<Option<OperatorSnapshot>> {
        Ok(None)
    }

    /// The job was restored from a checkpoint: the operator's keyed state is already in the
    /// backend it was created with; `operator_state` holds the items every old subtask stored.
    /// Rebuild in-memory indexes here.
    fn restore(&mut self, _operator_state: Vec<serde_json::Value>) -> Result<()> {
        Ok(())
    }

    /// Rows this operator dropped because they arrived after the watermark passed their window.
    fn late_rows_dropped(&self) -> u64 {
        0
    }
}
