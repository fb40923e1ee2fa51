//! Connectors: one source trait and one sink trait, and a registry by `'connector' = '…'` name.
//!
//! The engine only sees [`Source`] and [`Sink`]; a new connector (Kafka, PostgreSQL CDC, …)
//! implements [`Connector`] and is added to [`registry`] without touching the engine.

pub mod blackhole;
pub mod datagen;
pub mod filesystem;
pub mod format;
pub mod generate;
pub mod nexmark;
pub mod options;
pub mod print;
#[cfg(test)]
pub(crate) mod test_util;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::catalog::TableDef;
use crate::error::{Error, Result};

pub use options::ConnectorOptions;

/// Facts a source task needs: which table, which of the parallel subtasks it is.
#[derive(Debug, Clone)]
pub struct SourceContext {
    pub table: Arc<TableDef>,
    /// The physical columns, in declared order: every batch the source returns has this schema.
    pub schema: SchemaRef,
    pub subtask: usize,
    pub parallelism: usize,
    /// Preferred number of rows per batch.
    pub batch_size: usize,
}

/// What a source returns on each poll.
#[derive(Debug)]
pub enum SourceEvent {
    Batch(RecordBatch),
    /// Nothing available right now (throttled, or waiting for data); poll again soon.
    Pending,
    /// A bounded source has nothing more to read.
    End,
}

/// One parallel instance of a source. Runs on its own thread, so it may block briefly
/// (throttling sleeps, file reads), but should return `Pending` rather than block for long.
pub trait Source: Send {
    fn poll_next(&mut self) -> Result<SourceEvent>;
}

#[derive(Debug, Clone)]
pub struct SinkContext {
    pub table: Arc<TableDef>,
    /// The columns written, without the hidden row-kind column.
    pub schema: SchemaRef,
    pub subtask: usize,
    pub parallelism: usize,
    /// True when the input is an updating (changelog) stream: batches carry the hidden
    /// row-kind column (see [`crate::dataflow::message::row_kinds`]).
    pub updating: bool,
}

/// One parallel instance of a sink.
pub trait Sink: Send {
    /// Write a batch. For an updating input the batch's last column is the row kind.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;

    /// The input ended: flush and close what is open.
    fn finish(&mut self) -> Result<()>;
}

/// A connector type, known by its `connector` option value.
pub trait Connector: Sync + Send {
    /// The value of `'connector' = '…'`.
    fn name(&self) -> &'static str;

    /// Option keys this connector accepts (besides `connector`), as listed in error messages.
    /// A key ending in `.#.suffix` stands for a per-field option (`fields.#.kind`).
    fn option_keys(&self) -> &'static [&'static str];

    /// Check the table's options and column types before the job starts. `as_source` says
    /// whether the table is read (true) or written (false) by the job.
    fn validate(&self, table: &TableDef, as_source: bool) -> Result<()>;

    /// Whether the sink can consume an updating (changelog) stream.
    fn accepts_changelog(&self) -> bool {
        false
    }

    fn create_source(&self, ctx: SourceContext) -> Result<Box<dyn Source>> {
        Err(Error::table_options(
            &ctx.table.name,
            format!("connector '{}' cannot be used as a source", self.name()),
        ))
    }

    fn create_sink(&self, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Err(Error::table_options(
            &ctx.table.name,
            format!("connector '{}' cannot be used as a sink", self.name()),
        ))
    }
}

/// All connectors Weir ships.
pub fn registry() -> &'static [&'static dyn Connector] {
    &[
        &datagen::DatagenConnector,
        &nexmark::NexmarkConnector,
        &print::PrintConnector,
        &blackhole::BlackholeConnector,
        &filesystem::FilesystemConnector,
    ]
}

/// The connector a table names, or an error listing the ones that exist.
pub fn connector_for(table: &TableDef) -> Result<&'static dyn Connector> {
    let name = table.connector().ok_or_else(|| {
        Error::table_options(
            &table.name,
            format!(
                "missing option 'connector'; available connectors: {}",
                connector_names()
            ),
        )
    })?;
    registry()
        .iter()
        .copied()
        .find(|c| c.name() == name)
        .ok_or_else(|| {
            Error::table_options(
                &table.name,
                format!(
                    "unknown connector '{name}'; available connectors: {}",
                    connector_names()
                ),
            )
        })
}

fn connector_names() -> String {
    registry()
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}
