//! Test fixtures for the filesystem connector: tables built in code, a batch of every type the
//! formats carry, and a sink-then-source round trip.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema};

use super::*;
use crate::connectors::SourceEvent;

/// A table `t` of the connector with these physical columns and options.
pub(crate) fn table(columns: &[(&str, DataType)], options: &[(&str, &str)]) -> Arc<TableDef> {
    let mut all = vec![("connector", "filesystem")];
    all.extend_from_slice(options);
    Arc::new(crate::connectors::test_util::table("t", columns, &all))
}

/// One batch with a column of every type the formats carry, edge values and a row of nulls.
pub(crate) fn all_types_batch() -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "b",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
            ])),
        ),
        (
            "i8",
            Arc::new(Int8Array::from(vec![
                Some(i8::MIN),
                Some(0),
                None,
                Some(i8::MAX),
            ])),
        ),
        (
            "i16",
            Arc::new(Int16Array::from(vec![
                Some(i16::MIN),
                Some(-1),
                None,
                Some(i16::MAX),
            ])),
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                Some(42),
                None,
                Some(i32::MAX),
            ])),
        ),
        (
            "i64",
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(7),
                None,
                Some(i64::MAX),
            ])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![
                Some(0.1),
                Some(-3.5e-9),
                None,
                Some(f32::MAX),
            ])),
        ),
        (
            "f64",
            Arc::new(Float64Array::from(vec![
                Some(0.1),
                Some(1e300),
                None,
                Some(-2.0),
            ])),
        ),
        (
            "d",
            Arc::new(
                Decimal128Array::from(vec![Some(1250), Some(-5), None, Some(99_999_999)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![
                Some("plain"),
                Some("with, comma and \"quotes\"\nand a new line"),
                None,
                Some(" 日本 "),
            ])),
        ),
        (
            "bin",
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00\xffab"[..]),
                Some(&b""[..]),
                None,
                Some(&b"xyz"[..]),
            ])),
        ),
        (
            "dt",
            Arc::new(Date32Array::from(vec![
                Some(0),
                Some(-719_528),
                None,
                Some(19_782),
            ])),
        ),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_709_214_306_789),
                Some(-1),
                None,
                Some(0),
            ])),
        ),
        (
            "ltz",
            Arc::new(
                TimestampMillisecondArray::from(vec![
                    Some(1_709_214_306_780),
                    Some(1),
                    None,
                    Some(0),
                ])
                .with_timezone(crate::types::LTZ_ZONE),
            ),
        ),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, array)| array).collect(),
    )
    .unwrap()
}

/// Read the whole table with one subtask: the batches (or the error) and the rows skipped.
pub(crate) fn read_table(table: &Arc<TableDef>) -> (Result<Vec<RecordBatch>>, u64) {
    let ctx = SourceContext {
        table: table.clone(),
        schema: table.physical_schema(),
        subtask: 0,
        parallelism: 1,
        batch_size: 1024,
        restored_splits: None,
    };
    let mut source = match FileSource::open(ctx) {
        Ok(source) => source,
        Err(e) => return (Err(e), 0),
    };
    let mut batches = Vec::new();
    loop {
        match source.poll_next() {
            Ok(SourceEvent::Batch(batch)) => batches.push(batch),
            Ok(SourceEvent::Pending) => {}
            Ok(SourceEvent::End) => return (Ok(batches), source.skipped_rows()),
            Err(e) => return (Err(e), source.skipped_rows()),
        }
    }
}

/// Write `batch` (in two writes) through the sink into a fresh directory and read it back:
/// (what was written, what was read), each as one batch.
pub(crate) fn round_trip(
    format: &str,
    options: &[(&str, &str)],
    batch: RecordBatch,
) -> (RecordBatch, RecordBatch) {
    let dir = tempfile::tempdir().unwrap();
    let schema = batch.schema();
    let columns: Vec<(&str, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    let mut all = vec![("path", dir.path().to_str().unwrap()), ("format", format)];
    all.extend_from_slice(options);
    let t = table(&columns, &all);
    FilesystemConnector.validate(&t, false).unwrap();
    let mut sink = FilesystemConnector
        .create_sink(SinkContext {
            table: t.clone(),
            schema: t.physical_schema(),
            subtask: 0,
            parallelism: 1,
            updating: false,
            exactly_once: false,
        })
        .unwrap();
    sink.write(&batch.slice(0, 1)).unwrap();
    sink.write(&batch.slice(1, batch.num_rows() - 1)).unwrap();
    sink.finish().unwrap();
    FilesystemConnector.validate(&t, true).unwrap();
    let read = read_table(&t).0.unwrap();
    let read = arrow::compute::concat_batches(&t.physical_schema(), &read).unwrap();
    (batch, read)
}

/// A directory of `files` files of the table's format (`id BIGINT, name STRING`), file `k`
/// holding ids `k * 100 .. k * 100 + rows_per_file`. The line formats carry blank lines and
/// (csv) quoted names spanning lines, so positions are not simply line or row counts; parquet
/// files have row groups of 3 rows, so positions fall inside and between row groups.
pub(crate) fn numbered_files(
    format: &str,
    files: usize,
    rows_per_file: i64,
) -> (tempfile::TempDir, Arc<TableDef>) {
    let dir = tempfile::tempdir().unwrap();
    let t = table(
        &[("id", DataType::Int64), ("name", DataType::Utf8)],
        &[("path", dir.path().to_str().unwrap()), ("format", format)],
    );
    for k in 0..files as i64 {
        let ids: Vec<i64> = (k * 100..k * 100 + rows_per_file).collect();
        let names: Vec<String> = ids
            .iter()
            .map(|id| {
                if id % 4 == 1 {
                    format!("n{id}, with a comma\nand a line")
                } else {
                    format!("n{id}")
                }
            })
            .collect();
        let path = dir.path().join(format!("f{k}.{format}"));
        match format {
            "csv" | "json" => {
                let mut text = String::new();
                for (id, name) in ids.iter().zip(&names) {
                    if id % 3 == 0 {
                        text.push('\n');
                    }
                    if format == "csv" {
                        text.push_str(&format!("{id},\"{name}\"\n"));
                    } else {
                        let name = name.replace('\n', "\\n");
                        text.push_str(&format!("{{\"id\": {id}, \"name\": \"{name}\"}}\n"));
                    }
                }
                std::fs::write(&path, text).unwrap();
            }
            "parquet" => {
                let batch = RecordBatch::try_new(
                    t.physical_schema(),
                    vec![
                        Arc::new(Int64Array::from(ids)),
                        Arc::new(StringArray::from(names)),
                    ],
                )
                .unwrap();
                let properties = ::parquet::file::properties::WriterProperties::builder()
                    .set_max_row_group_row_count(Some(3))
                    .build();
                let file = std::fs::File::create(&path).unwrap();
                let mut writer =
                    ::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(properties))
                        .unwrap();
                writer.write(&batch).unwrap();
                writer.close().unwrap();
            }
            other => panic!("no such format {other}"),
        }
    }
    (dir, t)
}
