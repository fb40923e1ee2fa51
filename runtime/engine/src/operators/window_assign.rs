//! A window table-valued function on its own (no aggregation over it): every row gets the
//! `window_start`, `window_end` and `window_time` of each window it falls in (one row per
//! window for HOP and CUMULATE). Windows are aligned to the epoch plus the offset, as in Flink.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};

use crate::dataflow::message::Timestamp;
use crate::dataflow::operator::{Operator, Output};
use crate::error::{Error, Result};

/// An aligned (non-session) window function, sizes in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlignedWindow {
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
}

impl AlignedWindow {
    /// Every window `[start, end)` that holds `ts`, in order of end.
    pub fn windows(&self, ts: Timestamp, out: &mut Vec<(Timestamp, Timestamp)>) {
        out.clear();
        match *self {
            AlignedWindow::Tumble { size, offset } => {
                let start = ts - (ts - offset).rem_euclid(size);
                out.push((start, start + size));
            }
            AlignedWindow::Hop {
                size,
                slide,
                offset,
            } => {
                let last_start = ts - (ts - offset).rem_euclid(slide);
                let mut start = last_start - size + slide;
                while start <= last_start {
                    out.push((start, start + size));
                    start += slide;
                }
            }
            AlignedWindow::Cumulate {
                max_size,
                step,
                offset,
            } => {
                let start = ts - (ts - offset).rem_euclid(max_size);
                let mut end = start + step;
                while end <= start + max_size {
                    if end > ts {
                        out.push((start, end));
                    }
                    end += step;
                }
            }
        }
    }
}

pub struct WindowAssign {
    name: String,
    window: AlignedWindow,
    time_column: usize,
    schema: SchemaRef,
}

impl WindowAssign {
    /// `schema` is the input's schema plus `window_start`, `window_end`, `window_time`.
    pub fn new(name: String, window: AlignedWindow, time_column: usize, schema: SchemaRef) -> Self {
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
            self.window.windows(times.value(row), &mut windows);
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

    fn windows(w: AlignedWindow, ts: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        w.windows(ts, &mut out);
        out
    }

    #[test]
    fn tumbling_windows_align_to_the_epoch_even_before_it() {
        let w = AlignedWindow::Tumble {
            size: 10,
            offset: 0,
        };
        assert_eq!(windows(w, 25), vec![(20, 30)]);
        assert_eq!(windows(w, -1), vec![(-10, 0)]);
    }

    #[test]
    fn a_row_is_in_size_over_slide_hopping_windows() {
        let w = AlignedWindow::Hop {
            size: 10,
            slide: 5,
            offset: 0,
        };
        assert_eq!(windows(w, 12), vec![(5, 15), (10, 20)]);
    }

    #[test]
    fn cumulating_windows_hold_the_row_from_its_step_on() {
        let w = AlignedWindow::Cumulate {
            max_size: 30,
            step: 10,
            offset: 0,
        };
        assert_eq!(windows(w, 12), vec![(0, 20), (0, 30)]);
        assert_eq!(windows(w, 0), vec![(0, 10), (0, 20), (0, 30)]);
    }
}
