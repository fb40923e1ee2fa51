//! The operator trait: one required method (process a batch) and defaulted hooks for
//! watermarks and the end of input. Operators are chained inside a task; each call appends
//! what the operator emits to an output buffer that feeds the next operator in the chain.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

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

    /// Rows this operator dropped because they arrived after the watermark passed their window.
    fn late_rows_dropped(&self) -> u64 {
        0
    }
}
