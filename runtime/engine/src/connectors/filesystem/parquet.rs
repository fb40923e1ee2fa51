//! The `parquet` format: columns are found by name (exact, else case-insensitively when that is
//! unambiguous), only the declared ones are decoded, and each is cast to its declared type
//! (a file with `TIMESTAMP(6)` or `INT` columns reads into `TIMESTAMP(3)` or `BIGINT`).
//! Part files are written with Snappy compression, Flink's default.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{can_cast_types, cast};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::source::FileReader;
use super::split::FilePosition;
use super::{file_error, io_error};
use crate::error::{Error, Result};
use crate::types::flink_type_name;

/// Reads one Parquet file.
pub(crate) struct ParquetReader {
    table: String,
    path: PathBuf,
    schema: SchemaRef,
    reader: ParquetRecordBatchReader,
    /// For each declared column, its position in the projected batches.
    positions: Vec<usize>,
    /// The rows of each row group, to turn a row count into a (row group, row) position.
    row_group_rows: Vec<u64>,
    /// Rows of the file before the next one to be returned.
    rows_read: u64,
}

impl ParquetReader {
    /// Open `path` to read from row `row` of row group `row_group` (0 and 0 for the whole
    /// file; other values come from [`FileReader::position`]).
    pub(crate) fn open(
        table: &str,
        path: &Path,
        schema: SchemaRef,
        batch_size: usize,
        row_group: usize,
        row: u64,
    ) -> Result<Self> {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| file_error(table, path, format!("not a readable Parquet file: {e}")))?;
        let row_group_rows: Vec<u64> = builder
            .metadata()
            .row_groups()
            .iter()
            .map(|group| u64::try_from(group.num_rows()).unwrap_or_default())
            .collect();
        let groups = row_group_rows.len();
        let rows_in_group = row_group_rows.get(row_group).copied().unwrap_or_default();
        // A position at the very end (a finished file) is valid; anything past it is not.
        if row_group > groups || row_group == groups && row > 0 || row > rows_in_group {
            return Err(file_error(
                table,
                path,
                format!(
                    "the checkpoint resumes at row {row} of row group {row_group}, but the file                      has {groups} row groups (was it replaced?)"
                ),
            ));
        }
        let rows_read = row_group_rows[..row_group].iter().sum::<u64>() + row;
        let skip = usize::try_from(row).map_err(|e| file_error(table, path, e))?;
        let file_schema = builder.schema().clone();
        let mut indices = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let name = field.name();
            let index = match file_schema.index_of(name) {
                Ok(index) => index,
                Err(_) => {
                    let mut matches = file_schema
                        .fields()
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| f.name().eq_ignore_ascii_case(name));
                    match (matches.next(), matches.next()) {
                        (Some((index, _)), None) => index,
                        _ => {
                            let names: Vec<&str> = file_schema
                                .fields()
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect();
                            return Err(file_error(
                                table,
                                path,
                                format!(
                                    "no column `{name}` in the file; its columns: {}",
                                    names.join(", ")
                                ),
                            ));
                        }
                    }
                }
            };
            let found = file_schema.field(index).data_type();
            if !can_cast_types(found, field.data_type()) {
                return Err(file_error(
                    table,
                    path,
                    format!(
                        "column `{name}` is {} in the file and cannot be read as {}",
                        flink_type_name(found),
                        flink_type_name(field.data_type())
                    ),
                ));
            }
            indices.push(index);
        }
        // The projected batches hold the chosen columns in file order.
        let mut projected = indices.clone();
        projected.sort_unstable();
        projected.dedup();
        let positions = indices
            .iter()
            .map(|index| projected.binary_search(index).unwrap_or_default())
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), projected);
        let reader = builder
            .with_projection(mask)
            .with_row_groups((row_group..groups).collect())
            .with_offset(skip)
            .with_batch_size(batch_size)
            .build()
            .map_err(|e| file_error(table, path, e))?;
        Ok(ParquetReader {
            table: table.to_string(),
            path: path.to_path_buf(),
            schema,
            reader,
            positions,
            row_group_rows,
            rows_read,
        })
    }

    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .positions
            .iter()
            .zip(self.schema.fields())
            .map(|(position, field)| {
                let column = batch.column(*position);
                if column.data_type() == field.data_type() {
                    return Ok(column.clone());
                }
                cast(column, field.data_type()).map_err(|e| {
                    file_error(
                        &self.table,
                        &self.path,
                        format!("column `{}`: {e}", field.name()),
                    )
                })
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| file_error(&self.table, &self.path, e))
    }
}

impl FileReader for ParquetReader {
    fn next_batch(&mut self, _max_rows: usize) -> Result<Option<RecordBatch>> {
        match self.reader.next() {
            None => Ok(None),
            Some(Err(e)) => Err(file_error(&self.table, &self.path, e)),
            Some(Ok(batch)) => {
                self.rows_read += batch.num_rows() as u64;
                self.conform(&batch).map(Some)
            }
        }
    }

    fn position(&self) -> Option<FilePosition> {
        let mut row = self.rows_read;
        for (row_group, rows) in self.row_group_rows.iter().enumerate() {
            if row < *rows {
                return Some(FilePosition::Parquet { row_group, row });
            }
            row -= rows;
        }
        None
    }
}

/// An open Parquet part file.
pub(crate) struct ParquetWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
}

impl ParquetWriter {
    pub(crate) fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let file = File::create(path).map_err(|e| io_error(path, e))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(properties))
            .map_err(|e| parquet_error(path, e))?;
        Ok(ParquetWriter {
            path: path.to_path_buf(),
            writer,
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer
            .write(batch)
            .map_err(|e| parquet_error(&self.path, e))
    }

    /// Bytes written so far plus those buffered for the open row group.
    pub(crate) fn size(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    /// Write the footer and sync the file to disk, so the file is complete and durable.
    pub(crate) fn close(mut self) -> Result<()> {
        self.writer
            .finish()
            .map_err(|e| parquet_error(&self.path, e))?;
        self.writer
            .inner()
            .sync_all()
            .map_err(|e| io_error(&self.path, e))
    }
}

fn parquet_error(path: &Path, error: parquet::errors::ParquetError) -> Error {
    match error {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => io_error(path, *io),
                Err(other) => io_error(path, std::io::Error::other(other)),
            }
        }
        other => io_error(path, std::io::Error::other(other)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;
    use crate::connectors::filesystem::fixtures::{all_types_batch, read_table, round_trip, table};
    use crate::types::timestamp_type;

    #[test]
    fn parquet_round_trip_through_sink_and_source_reproduces_all_types_with_nulls() {
        let (written, read) = round_trip("parquet", &[], all_types_batch());
        assert_eq!(read, written);
    }

    fn write_file(path: &Path, batch: &RecordBatch) {
        let mut writer = ParquetWriter::create(path, batch.schema()).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn parquet_source_projects_by_name_and_casts_to_declared_types() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("unused", DataType::Utf8, true),
            Field::new("TS", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("id", DataType::Int32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["x", "y"])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_500_999), None])),
                Arc::new(Int32Array::from(vec![7, 8])),
            ],
        )
        .unwrap();
        write_file(&file, &batch);
        let t = table(
            &[("id", DataType::Int64), ("ts", timestamp_type())],
            &[("path", file.to_str().unwrap()), ("format", "parquet")],
        );
        let (result, _) = read_table(&t);
        let batches = result.unwrap();
        assert_eq!(batches.len(), 1);
        let expected = RecordBatch::try_new(
            t.physical_schema(),
            vec![
                Arc::new(arrow::array::Int64Array::from(vec![7, 8])),
                Arc::new(arrow::array::TimestampMillisecondArray::from(vec![
                    Some(1_500),
                    None,
                ])),
            ],
        )
        .unwrap();
        assert_eq!(batches[0], expected);
    }

    #[test]
    fn parquet_missing_column_error_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, true)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![1]))]).unwrap();
        write_file(&file, &batch);
        let t = table(
            &[("id", DataType::Int32), ("price", DataType::Float64)],
            &[("path", file.to_str().unwrap()), ("format", "parquet")],
        );
        let (result, _) = read_table(&t);
        let message = result.unwrap_err().to_string();
        assert!(message.contains("data.parquet"), "{message}");
        assert!(
            message.contains("no column `price`") && message.contains("columns: id"),
            "{message}"
        );
    }

    #[test]
    fn parquet_source_rejects_a_non_parquet_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.parquet");
        std::fs::write(&file, "id\n1\n").unwrap();
        let t = table(
            &[("id", DataType::Int32)],
            &[("path", file.to_str().unwrap()), ("format", "parquet")],
        );
        let message = read_table(&t).0.unwrap_err().to_string();
        assert!(message.contains("not a readable Parquet file"), "{message}");
    }
}
