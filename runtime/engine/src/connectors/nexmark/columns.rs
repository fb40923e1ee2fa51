//! The three Nexmark tables' columns (nexmark-flink's names and types) and the buffers a
//! batch of one table is generated into.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, PrimitiveArray, StringBuilder};
use arrow::datatypes::{DataType, TimestampMillisecondType};

use crate::error::Result;

/// Which of the three Nexmark tables an event (or a `CREATE TABLE`) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Person,
    Auction,
    Bid,
}

/// The SQL type of a Nexmark column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NexmarkType {
    Bigint,
    String,
    Timestamp,
}

impl NexmarkType {
    pub fn sql_name(self) -> &'static str {
        match self {
            NexmarkType::Bigint => "BIGINT",
            NexmarkType::String => "STRING",
            NexmarkType::Timestamp => "TIMESTAMP(3)",
        }
    }

    /// Whether a declared Arrow type can hold this column.
    pub fn accepts(self, data_type: &DataType) -> bool {
        match self {
            NexmarkType::Bigint => *data_type == DataType::Int64,
            NexmarkType::String => *data_type == DataType::Utf8,
            NexmarkType::Timestamp => matches!(
                data_type,
                DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, _)
            ),
        }
    }
}

use NexmarkType::{Bigint, String as Str, Timestamp};

const PERSON_COLUMNS: &[(&str, NexmarkType)] = &[
    ("id", Bigint),
    ("name", Str),
    ("emailAddress", Str),
    ("creditCard", Str),
    ("city", Str),
    ("state", Str),
    ("dateTime", Timestamp),
    ("extra", Str),
];
const AUCTION_COLUMNS: &[(&str, NexmarkType)] = &[
    ("id", Bigint),
    ("itemName", Str),
    ("description", Str),
    ("initialBid", Bigint),
    ("reserve", Bigint),
    ("dateTime", Timestamp),
    ("expires", Timestamp),
    ("seller", Bigint),
    ("category", Bigint),
    ("extra", Str),
];
const BID_COLUMNS: &[(&str, NexmarkType)] = &[
    ("auction", Bigint),
    ("bidder", Bigint),
    ("price", Bigint),
    ("channel", Str),
    ("url", Str),
    ("dateTime", Timestamp),
    ("extra", Str),
];

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Person => "person",
            EventKind::Auction => "auction",
            EventKind::Bid => "bid",
        }
    }

    /// nexmark-flink's column names and types for this table, in its order.
    pub fn columns(self) -> &'static [(&'static str, NexmarkType)] {
        match self {
            EventKind::Person => PERSON_COLUMNS,
            EventKind::Auction => AUCTION_COLUMNS,
            EventKind::Bid => BID_COLUMNS,
        }
    }
}

/// One output column under construction; `Skip` for a column the table does not declare.
enum ColumnBuf {
    Long(Vec<i64>),
    Str(StringBuilder),
    Skip,
}

/// The columns of one Nexmark table for the batch being built, indexed like
/// [`EventKind::columns`].
pub struct Columns {
    bufs: Vec<ColumnBuf>,
    capacity: usize,
}

impl Columns {
    /// Buffers for the columns whose `wanted` flag is set.
    pub fn new(kind: EventKind, wanted: &[bool], capacity: usize) -> Columns {
        let bufs = kind
            .columns()
            .iter()
            .zip(wanted)
            .map(|((_, t), want)| Self::empty(*want, *t, capacity))
            .collect();
        Columns { bufs, capacity }
    }

    fn empty(want: bool, t: NexmarkType, capacity: usize) -> ColumnBuf {
        match (want, t) {
            (false, _) => ColumnBuf::Skip,
            (true, NexmarkType::String) => {
                ColumnBuf::Str(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            (true, _) => ColumnBuf::Long(Vec::with_capacity(capacity)),
        }
    }

    #[inline]
    pub(super) fn long(&mut self, column: usize, value: i64) {
        if let ColumnBuf::Long(values) = &mut self.bufs[column] {
            values.push(value);
        }
    }

    #[inline]
    pub(super) fn string(&mut self, column: usize, value: &str) {
        if let ColumnBuf::Str(strings) = &mut self.bufs[column] {
            strings.append_value(value);
        }
    }

    #[inline]
    pub(super) fn strings(&mut self, column: usize) -> Option<&mut StringBuilder> {
        match &mut self.bufs[column] {
            ColumnBuf::Str(strings) => Some(strings),
            _ => None,
        }
    }

    /// Hand over column `column` as an array of `data_type`, leaving an empty buffer.
    pub fn finish(&mut self, column: usize, data_type: &DataType) -> Result<ArrayRef> {
        let array: ArrayRef = match &mut self.bufs[column] {
            ColumnBuf::Long(values) => {
                let values = std::mem::replace(values, Vec::with_capacity(self.capacity));
                match data_type {
                    DataType::Timestamp(..) => Arc::new(
                        PrimitiveArray::<TimestampMillisecondType>::from(values)
                            .with_data_type(data_type.clone()),
                    ),
                    _ => Arc::new(Int64Array::from(values)),
                }
            }
            ColumnBuf::Str(strings) => {
                // Start the next batch with room for what this one held, so the buffers do not
                // regrow (and copy) their way up.
                let bytes = strings.values_slice().len();
                let next = StringBuilder::with_capacity(self.capacity, bytes + bytes / 8);
                Arc::new(std::mem::replace(strings, next).finish())
            }
            ColumnBuf::Skip => Arc::new(Int64Array::from(Vec::<i64>::new())),
        };
        Ok(array)
    }
}
