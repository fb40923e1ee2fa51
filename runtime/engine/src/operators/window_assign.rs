//! A window table-valued function on its own (no aggregation over it): every row gets the
//! `window_start`, `window_end` and `window_time` of each window it falls in (one row per
//! window for HOP and CUMULATE). Windows are aligned to the epoch plus the offset, as in Flink.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};

use crate::dataflow::operator::{Operator, Output};
use crate::error::{Error, Result};
use crate::operators::window_aggregate::{WindowKind, aligned_windows};

pub struct WindowAssign {
    name: String,
    window: WindowKind,
    time_column: usize,
    schema: SchemaRef,
}

impl WindowAssign {
    /// `schema` is the input's schema plus `window_start`, `window_end`, `window_time`.
    pub fn new(name: String, window: WindowKind, time_column: usize, schema: SchemaRef) -> Self {
        WindowAssign {
            name,
            window,
            time_column,
            schema,
        }
    }
}

impl Operator for WindowAssign {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let times = arrow::compute::cast(
            batch.column(self.time_column),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?;
        let times = times.as_primitive::<TimestampMillisecondType>();
        let mut rows = Vec::with_capacity(batch.num_rows());
        let mut starts = Vec::with_capacity(batch.num_rows());
        let mut ends = Vec::with_capacity(batch.num_rows());
        let mut windows = Vec::new();
        for row in 0..batch.num_rows() {
            if times.is_null(row) {
                return Err(Error::execution(
                    &self.name,
                    "the window's time attribute is NULL in an input row",
                ));
            }
            aligned_windows(self.window, times.value(row), &mut windows);
            for (start, end) in &windows {
                rows.push(row as u32);
                starts.push(*start);
                ends.push(*end);
            }
        }
        let taken = if rows.len() == batch.num_rows() {
            batch
        } else {
            take_record_batch(&batch, &UInt32Array::from(rows))?
        };
        let n = self.schema.fields().len();
        let time_type = self.schema.field(n - 1).data_type().clone();
        let window_time: ArrayRef = arrow::compute::cast(
            &(Arc::new(TimestampMillisecondArray::from(
                ends.iter().map(|e| e - 1).collect::<Vec<_>>(),
            )) as ArrayRef),
            &time_type,
        )?;
        let mut columns = taken.columns().to_vec();
        columns.push(Arc::new(TimestampMillisecondArray::from(starts)));
        columns.push(Arc::new(TimestampMillisecondArray::from(ends)));
        columns.push(window_time);
        out.batch(RecordBatch::try_new(self.schema.clone(), columns)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(w: WindowKind, ts: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        aligned_windows(w, ts, &mut out);
        out
    }

    #[test]
    fn tumbling_windows_align_to_the_epoch_even_before_it() {
        let w = WindowKind::Tumble {
            size: 10,
            offset: 0,
        };
        assert_eq!(windows(w, 25), vec![(20, 30)]);
        assert_eq!(windows(w, -1), vec![(-10, 0)]);
    }

    #[test]
    fn a_row_is_in_size_over_slide_hopping_windows() {
        let w = WindowKind::Hop {
            size: 10,
            slide: 5,
            offset: 0,
        };
        assert_eq!(windows(w, 12), vec![(5, 15), (10, 20)]);
    }

    #[test]
    fn cumulating_windows_hold_the_row_from_its_step_on() {
        let w = WindowKind::Cumulate {
            max_size: 30,
            step: 10,
            offset: 0,
        };
        assert_eq!(windows(w, 12), vec![(0, 20), (0, 30)]);
        assert_eq!(windows(w, 0), vec![(0, 10), (0, 20), (0, 30)]);
    }
}
