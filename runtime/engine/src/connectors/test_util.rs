//! Fixtures for connector tests: tables built in code, and sources run to the end.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;

use crate::catalog::{ColumnDef, ColumnKind, TableDef};
use crate::connectors::{Connector, SourceContext, SourceEvent};
use crate::error::{Result, SqlLocation};
use crate::types::flink_type_name;

/// A table with physical columns and options, as the SQL front end would declare it.
pub fn table(name: &str, columns: &[(&str, DataType)], options: &[(&str, &str)]) -> TableDef {
    TableDef {
        name: name.into(),
        columns: columns
            .iter()
            .map(|(column, data_type)| ColumnDef {
                name: column.to_string(),
                kind: ColumnKind::Physical {
                    data_type: data_type.clone(),
                    nullable: true,
                    sql_type: flink_type_name(data_type),
                },
                location: SqlLocation::default(),
            })
            .collect(),
        watermark: None,
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        location: SqlLocation::default(),
    }
}

pub fn source_context(
    table: &TableDef,
    subtask: usize,
    parallelism: usize,
    batch_size: usize,
) -> SourceContext {
    SourceContext {
        table: Arc::new(table.clone()),
        schema: table.physical_schema(),
        subtask,
        parallelism,
        batch_size,
    }
}

/// Every batch one subtask produces until it ends (panics after `max_polls` polls).
pub fn run_source(
    connector: &dyn Connector,
    table: &TableDef,
    subtask: usize,
    parallelism: usize,
    batch_size: usize,
) -> Result<Vec<RecordBatch>> {
    let mut source =
        connector.create_source(source_context(table, subtask, parallelism, batch_size))?;
    let mut batches = Vec::new();
    for _ in 0..1_000_000 {
        match source.poll_next()? {
            SourceEvent::Batch(batch) => batches.push(batch),
            SourceEvent::Pending => {}
            SourceEvent::End => return Ok(batches),
        }
    }
    panic!("source did not end");
}

/// All rows of some batches in the print sink's text form.
pub fn rows_as_text(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(move |row| super::format::format_row(b, row)))
        .collect()
}
