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
    /// After a restore: the splits this subtask resumes from (see [`Source::snapshot_splits`]);
    /// an empty list means there is nothing left to read. `None` for a fresh start.
    pub restored_splits: Option<Vec<serde_json::Value>>,
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

    /// The read position, as splits: what is left to read, each a JSON value the source can
    /// resume from (a sequence range, a file and offset). Called between polls at a checkpoint
    /// barrier. On a restore at another parallelism the splits of all old subtasks are dealt
    /// out round-robin, so a split must make sense on its own.
    fn snapshot_splits(&mut self) -> Result<Vec<serde_json::Value>> {
        Err(Error::execution(
            "source",
            "this source cannot record its read position for a checkpoint",
        ))
    }
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
    /// Checkpointing is on: output becomes visible only when a checkpoint that covers it
    /// completes ([`Sink::pre_commit`], then [`Connector::commit`]), never in [`Sink::finish`].
    pub exactly_once: bool,
}

/// One parallel instance of a sink.
pub trait Sink: Send {
    /// Write a batch. For an updating input the batch's last column is the row kind.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;

    /// The input ended: flush and close what is open. Without checkpointing this also makes
    /// the output visible; with it, the engine calls [`Sink::pre_commit`] for a final
    /// checkpoint instead and commits after that checkpoint completes.
    fn finish(&mut self) -> Result<()>;

    /// A checkpoint barrier reached the sink: make everything written so far durable but not
    /// yet visible, and return what [`Connector::commit`] needs to publish it once the
    /// checkpoint is complete (two-phase commit). `None` when there is nothing to commit.
    /// Sinks that are not transactional (print, blackhole) keep the default.
    fn pre_commit(&mut self, _checkpoint_id: u64) -> Result<Option<serde_json::Value>> {
        Ok(None)
    }
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

    /// Publish what a sink subtask pre-committed for a checkpoint that is now complete. Runs
    /// on the coordinator, possibly again for the same committable after a restore, so it
    /// must be idempotent.
    fn commit(&self, table: &TableDef, _committable: &serde_json::Value) -> Result<()> {
        Err(Error::table_options(
            &table.name,
            format!("connector '{}' has nothing to commit", self.name()),
        ))
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
