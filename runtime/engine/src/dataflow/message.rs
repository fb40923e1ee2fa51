//! What travels between operators: batches of rows, watermarks, checkpoint barriers, and the
//! end of the stream.
//!
//! Watermarks are in-band messages, so an operator sees them in order with the data
//! (a watermark promises that no row with a smaller event time follows on that input).

use arrow::array::{Array, Int8Array, RecordBatch};

/// Event time and watermarks are milliseconds since the epoch, like Flink's `long` timestamps.
pub type Timestamp = i64;

/// The watermark that fires everything: sent when a bounded input ends.
pub const MAX_WATERMARK: Timestamp = i64::MAX;

/// Name of the hidden last column that carries the row kind in an updating (changelog) stream.
pub const ROW_KIND_COLUMN: &str = "__weir_row_kind";

/// Flink's `RowKind`: how a row of a changelog stream changes the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum RowKind {
    Insert = 0,
    UpdateBefore = 1,
    UpdateAfter = 2,
    Delete = 3,
}

impl RowKind {
    /// The short form Flink's print sink shows: `+I`, `-U`, `+U`, `-D`.
    pub fn short_string(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    pub fn from_i8(value: i8) -> Option<RowKind> {
        match value {
            0 => Some(RowKind::Insert),
            1 => Some(RowKind::UpdateBefore),
            2 => Some(RowKind::UpdateAfter),
            3 => Some(RowKind::Delete),
            _ => None,
        }
    }

    /// Insert and update-after add a row to the result; the other two take one away.
    pub fn is_addition(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }
}

/// The row kinds of a batch: `None` for an insert-only batch, else the hidden column's values.
pub fn row_kinds(batch: &RecordBatch) -> Option<&Int8Array> {
    let schema = batch.schema();
    let last = schema.fields().last()?;
    if last.name() != ROW_KIND_COLUMN {
        return None;
    }
    batch
        .column(batch.num_columns() - 1)
        .as_any()
        .downcast_ref::<Int8Array>()
}

/// A batch without its hidden row-kind column (the columns a user declared).
pub fn visible_columns(batch: &RecordBatch) -> RecordBatch {
    if row_kinds(batch).is_some() {
        let keep: Vec<usize> = (0..batch.num_columns() - 1).collect();
        batch.project(&keep).unwrap_or_else(|_| batch.clone())
    } else {
        batch.clone()
    }
}

/// A checkpoint barrier: everything before it on a channel belongs to checkpoint `id`,
/// everything after it to later ones (Chandy–Lamport, aligned as in Flink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Barrier {
    pub id: u64,
    pub kind: BarrierKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BarrierKind {
    /// A periodic checkpoint: keyed state may be stored incrementally.
    Checkpoint,
    /// A savepoint: self-contained, canonical state.
    Savepoint,
}

impl Barrier {
    pub fn is_savepoint(&self) -> bool {
        self.kind == BarrierKind::Savepoint
    }
}

/// One message on a channel between tasks.
#[derive(Debug, Clone)]
pub enum Message {
    Batch(RecordBatch),
    Watermark(Timestamp),
    Barrier(Barrier),
    /// The input is marked idle (no data for `table.exec.source.idle-timeout`): leave it out of
    /// the minimum until it sends data or a watermark again.
    Idle,
    /// The sender has finished; no more messages follow from it.
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_kind_round_trips_through_i8() {
        for kind in [
            RowKind::Insert,
            RowKind::UpdateBefore,
            RowKind::UpdateAfter,
            RowKind::Delete,
        ] {
            assert_eq!(RowKind::from_i8(kind as i8), Some(kind));
        }
        assert_eq!(RowKind::from_i8(9), None);
    }
}
