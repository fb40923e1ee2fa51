//! Counters a running job exposes: rows in and out, the watermark at the sinks, late rows.
//! Shared between task threads and the progress display with relaxed atomics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::dataflow::message::Timestamp;

#[derive(Debug)]
pub struct JobMetrics {
    rows_in: AtomicU64,
    rows_out: AtomicU64,
    late_rows: AtomicU64,
    /// Per sink subtask: the last watermark it saw. The job's watermark is their minimum.
    sink_watermarks: Vec<AtomicI64>,
}

impl JobMetrics {
    pub fn new(sink_subtasks: usize) -> Self {
        JobMetrics {
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            sink_watermarks: (0..sink_subtasks)
                .map(|_| AtomicI64::new(Timestamp::MIN))
                .collect(),
        }
    }

    pub fn add_rows_in(&self, n: u64) {
        self.rows_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_rows_out(&self, n: u64) {
        self.rows_out.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_late_rows(&self, n: u64) {
        self.late_rows.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set_sink_watermark(&self, sink_subtask: usize, watermark: Timestamp) {
        if let Some(w) = self.sink_watermarks.get(sink_subtask) {
            w.fetch_max(watermark, Ordering::Relaxed);
        }
    }

    pub fn rows_in(&self) -> u64 {
        self.rows_in.load(Ordering::Relaxed)
    }

    pub fn rows_out(&self) -> u64 {
        self.rows_out.load(Ordering::Relaxed)
    }

    pub fn late_rows(&self) -> u64 {
        self.late_rows.load(Ordering::Relaxed)
    }

    /// The minimum watermark over sink subtasks, `None` before every sink has seen one.
    pub fn watermark(&self) -> Option<Timestamp> {
        let min = self
            .sink_watermarks
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .min()?;
        (min != Timestamp::MIN).then_some(min)
    }
}
