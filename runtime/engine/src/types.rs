//! Flink SQL types and their Arrow representation.
//!
//! TIMESTAMP(p) is an Arrow timestamp without a time zone; TIMESTAMP_LTZ(p) carries the zone
//! `UTC`, so the two stay distinguishable through the plan (Flink treats them differently in
//! windowing and display). Both are stored in milliseconds: Flink's time attributes are
//! millisecond precision.

use arrow::datatypes::{DataType, TimeUnit};

pub const LTZ_ZONE: &str = "UTC";

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

pub fn timestamp_ltz_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(LTZ_ZONE.into()))
}

pub fn is_timestamp(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(_, _))
}

/// The Flink SQL name of an Arrow type, for error messages and `weir explain`.
pub fn flink_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Binary | DataType::LargeBinary => "BYTES".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP(3)".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP_LTZ(3)".into(),
        DataType::Null => "NULL".into(),
        other => format!("{other}"),
    }
}
