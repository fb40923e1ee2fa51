//! Generates watermarks from `WATERMARK FOR col AS expr`, exactly as Flink's
//! `WatermarkAssignerOperator` does, so the same rows are late in both:
//!
//! - the current watermark is the maximum of `expr` over the rows seen so far (starting at 0);
//! - it is emitted right after a row when it is more than `pipeline.auto-watermark-interval`
//!   (200 ms by default) ahead of the last emitted one, and otherwise periodically in
//!   processing time (we check the clock at the end of each batch);
//! - a row whose time attribute is NULL fails the job, as in Flink;
//! - watermarks from upstream are ignored except the final `MAX_WATERMARK`.
//!
//! To emit a watermark "right after a row" the batch is split at that row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion_physical_expr::PhysicalExpr;

use crate::dataflow::message::{MAX_WATERMARK, Timestamp};
use crate::dataflow::operator::{Operator, Output};
use crate::error::{Error, Result};

pub struct WatermarkAssigner {
    name: String,
    rowtime_column: usize,
    rowtime_name: String,
    expr: Arc<dyn PhysicalExpr>,
    schema: SchemaRef,
    interval: i64,
    current: Timestamp,
    last_emitted: Timestamp,
    last_periodic: Instant,
}

impl WatermarkAssigner {
    pub fn new(
        name: String,
        rowtime_column: usize,
        expr: Arc<dyn PhysicalExpr>,
        schema: SchemaRef,
        interval: Duration,
    ) -> Self {
        WatermarkAssigner {
            name,
            rowtime_name: schema.field(rowtime_column).name().clone(),
            rowtime_column,
            expr,
            schema,
            interval: interval.as_millis() as i64,
            current: 0,
            last_emitted: 0,
            last_periodic: Instant::now(),
        }
    }

    fn advance(&mut self, out: &mut Output) {
        if self.current > self.last_emitted {
            self.last_emitted = self.current;
            out.watermark(self.current);
        }
    }
}

impl Operator for WatermarkAssigner {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.column(self.rowtime_column).null_count() > 0 {
            return Err(Error::execution(
                &self.name,
                format!(
                    "the time attribute `{}` is NULL in an input row; Flink fails on this too — filter such rows or give the column a default",
                    self.rowtime_name
                ),
            ));
        }
        let values = self.expr.evaluate(&batch)?.into_array(batch.num_rows())?;
        let values = if values.data_type() == &DataType::Timestamp(TimeUnit::Millisecond, None) {
            values
        } else {
            arrow::compute::cast(&values, &DataType::Timestamp(TimeUnit::Millisecond, None))?
        };
        let values = values.as_primitive::<TimestampMillisecondType>();
        let mut start = 0;
        for row in 0..batch.num_rows() {
            if values.is_valid(row) {
                self.current = self.current.max(values.value(row));
            }
            if self.current.saturating_sub(self.last_emitted) > self.interval {
                out.batch(batch.slice(start, row + 1 - start));
                start = row + 1;
                self.advance(out);
            }
        }
        if start < batch.num_rows() {
            out.batch(batch.slice(start, batch.num_rows() - start));
        }
        if self.last_periodic.elapsed().as_millis() as i64 >= self.interval.max(1) {
            self.last_periodic = Instant::now();
            self.advance(out);
        }
        Ok(())
    }

    fn process_watermark(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        if watermark == MAX_WATERMARK && self.current != MAX_WATERMARK {
            self.current = MAX_WATERMARK;
            self.last_emitted = MAX_WATERMARK;
            out.watermark(MAX_WATERMARK);
        }
        Ok(())
    }
}
