//! The filesystem sink: each subtask writes rolling part files into the `path` directory.
//!
//! A part file is named like Flink's, `part-{uuid}-{subtask}-{counter}` plus the format's
//! suffix (`.csv`, `.json`, `.parquet`), where the uuid is drawn once per sink instance, so a
//! restarted or restored job never reuses a name. It is written as the hidden
//! `.part-….inprogress` in the same directory (so publishing it is a same-filesystem rename),
//! and rolls (is closed, and a new one opened with the next row) at
//! `sink.rolling-policy.file-size` or `sink.rolling-policy.rollover-interval` (checked when a
//! batch arrives). A reader of the directory never sees half a file: the filesystem source
//! skips hidden files.
//!
//! When a rolled file becomes visible depends on checkpointing ([`SinkContext::exactly_once`]):
//! - without it, a file is renamed to its final name as soon as it rolls or the input ends;
//! - with it (Flink's two-phase commit), rolled files wait. At a checkpoint barrier
//!   [`Sink::pre_commit`] closes the open file (footer written, data synced to disk) and
//!   returns every file closed since the last barrier; [`commit`] renames them once the
//!   checkpoint is complete. Rows written after the last completed checkpoint stay in hidden
//!   files and are replayed by the restored job into new files, so each row is published
//!   exactly once. A failed attempt's uncommitted in-progress files are left behind, hidden.
//!
//! Like Flink's, this sink takes only insert-only input: an updating (changelog) stream is
//! refused when the job is planned ([`Connector::accepts_changelog`] is false).
//!
//! [`Connector::accepts_changelog`]: crate::connectors::Connector::accepts_changelog

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;

use super::commit::{PartFile, committable, sync_directory};
use super::csv::CsvEncoder;
use super::json::JsonEncoder;
use super::parquet::ParquetWriter;
use super::{FilesystemOptions, Format, io_error};
use crate::connectors::{Sink, SinkContext};
use crate::dataflow::message::visible_columns;
use crate::error::{Error, Result};

pub use super::commit::commit;

/// One parallel instance of the filesystem sink.
pub struct FileSink {
    table: String,
    directory: PathBuf,
    schema: SchemaRef,
    format: Format,
    subtask: usize,
    /// `part-{uuid}-{subtask}-`.
    prefix: String,
    counter: u64,
    rolling_file_size: u64,
    rollover_interval: Duration,
    /// Publish files only through [`Sink::pre_commit`] and [`commit`].
    exactly_once: bool,
    current: Option<OpenPart>,
    /// With `exactly_once`: files closed since the last [`Sink::pre_commit`], still hidden.
    closed: Vec<PartFile>,
    committed: Vec<PathBuf>,
}

struct OpenPart {
    writer: PartWriter,
    file: PartFile,
    in_progress: PathBuf,
    opened: Instant,
}

enum PartWriter {
    Text {
        out: BufWriter<File>,
        encoder: TextEncoder,
        written: u64,
        buffer: String,
    },
    Parquet(Box<ParquetWriter>),
}

enum TextEncoder {
    Csv(CsvEncoder),
    Json(JsonEncoder),
}

impl FileSink {
    /// Create the directory if needed; the first part file opens with the first row.
    pub fn create(ctx: SinkContext) -> Result<Self> {
        if ctx.updating {
            return Err(Error::table_options(
                &ctx.table.name,
                "the filesystem sink cannot write an updating (changelog) stream; \
                 it accepts insert-only input",
            ));
        }
        let options = FilesystemOptions::from_table(&ctx.table)?;
        std::fs::create_dir_all(&options.path).map_err(|e| io_error(&options.path, e))?;
        let uuid = random_uuid();
        Ok(FileSink {
            table: ctx.table.name.clone(),
            directory: options.path,
            schema: ctx.schema,
            format: options.format,
            subtask: ctx.subtask,
            prefix: format!("part-{uuid}-{}-", ctx.subtask),
            counter: 0,
            rolling_file_size: options.rolling_file_size,
            rollover_interval: options.rollover_interval,
            exactly_once: ctx.exactly_once,
            current: None,
            closed: Vec::new(),
            committed: Vec::new(),
        })
    }

    /// The part files this instance has renamed to their final names itself, in order (never
    /// any with `exactly_once`, where [`commit`] publishes them).
    pub fn committed_files(&self) -> &[PathBuf] {
        &self.committed
    }

    /// The hidden file being written now, if any.
    pub fn in_progress_file(&self) -> Option<&Path> {
        self.current.as_ref().map(|part| part.in_progress.as_path())
    }

    fn open_part(&mut self) -> Result<OpenPart> {
        let name = format!("{}{}{}", self.prefix, self.counter, self.format.extension());
        self.counter += 1;
        let file = PartFile {
            in_progress: format!(".{name}.inprogress"),
            final_name: name,
        };
        let in_progress = self.directory.join(&file.in_progress);
        let text_error = |message: String| Error::table_options(&self.table, message);
        let writer = match &self.format {
            Format::Parquet => PartWriter::Parquet(Box::new(ParquetWriter::create(
                &in_progress,
                self.schema.clone(),
            )?)),
            Format::Csv(options) => PartWriter::text(
                &in_progress,
                TextEncoder::Csv(
                    CsvEncoder::new(&self.schema, options.clone()).map_err(text_error)?,
                ),
            )?,
            Format::Json(options) => PartWriter::text(
                &in_progress,
                TextEncoder::Json(
                    JsonEncoder::new(&self.schema, options.clone()).map_err(text_error)?,
                ),
            )?,
        };
        Ok(OpenPart {
            writer,
            file,
            in_progress,
            opened: Instant::now(),
        })
    }

    /// Close the open part file (complete and synced to disk); without `exactly_once` give it
    /// its final name, with it keep it hidden for the next [`Sink::pre_commit`].
    fn roll(&mut self) -> Result<()> {
        let Some(part) = self.current.take() else {
            return Ok(());
        };
        part.writer.close(&part.in_progress)?;
        if self.exactly_once {
            self.closed.push(part.file);
            return Ok(());
        }
        let final_path = self.directory.join(&part.file.final_name);
        std::fs::rename(&part.in_progress, &final_path).map_err(|e| io_error(&final_path, e))?;
        tracing::debug!(table = %self.table, file = %final_path.display(), "part file finished");
        self.committed.push(final_path);
        Ok(())
    }

    /// The batch with the declared schema: same columns, cast where the planner's types differ.
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let batch = visible_columns(batch);
        if batch.schema() == self.schema {
            return Ok(batch);
        }
        if batch.num_columns() != self.schema.fields().len() {
            return Err(Error::Connector {
                connector: "filesystem".into(),
                table: self.table.clone(),
                message: format!(
                    "got rows of {} columns for a table of {}",
                    batch.num_columns(),
                    self.schema.fields().len()
                ),
            });
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    Ok(cast(column, field.data_type())?)
                }
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = self.conform(batch)?;
        if self
            .current
            .as_ref()
            .is_some_and(|part| part.opened.elapsed() >= self.rollover_interval)
        {
            self.roll()?;
        }
        let mut part = match self.current.take() {
            Some(part) => part,
            None => self.open_part()?,
        };
        let written = part.writer.write(&batch, &part.in_progress);
        let size = part.writer.size();
        self.current = Some(part);
        written?;
        if size >= self.rolling_file_size {
            self.roll()?;
        }
        Ok(())
    }

    /// Close the open file; without `exactly_once` it becomes visible now, with it at the
    /// commit of the checkpoint whose [`Sink::pre_commit`] follows.
    fn finish(&mut self) -> Result<()> {
        self.roll()
    }

    /// Close the open file and hand over every file closed since the last barrier: the
    /// committable `{"checkpoint_id", "subtask", "files": [{"in_progress", "final"}, …]}`
    /// for [`commit`]. `None` when no row arrived since.
    fn pre_commit(&mut self, checkpoint_id: u64) -> Result<Option<serde_json::Value>> {
        self.roll()?;
        if self.closed.is_empty() {
            return Ok(None);
        }
        // The files' data is synced; syncing the directory makes their names durable too.
        sync_directory(&self.directory)?;
        let files = std::mem::take(&mut self.closed);
        tracing::debug!(
            table = %self.table,
            checkpoint_id,
            files = files.len(),
            "part files pre-committed"
        );
        Ok(Some(committable(checkpoint_id, self.subtask, &files)))
    }
}

impl PartWriter {
    fn text(path: &Path, encoder: TextEncoder) -> Result<Self> {
        let file = File::create(path).map_err(|e| io_error(path, e))?;
        Ok(PartWriter::Text {
            out: BufWriter::new(file),
            encoder,
            written: 0,
            buffer: String::new(),
        })
    }

    fn write(&mut self, batch: &RecordBatch, path: &Path) -> Result<()> {
        match self {
            PartWriter::Parquet(writer) => writer.write(batch),
            PartWriter::Text {
                out,
                encoder,
                written,
                buffer,
            } => {
                buffer.clear();
                match encoder {
                    TextEncoder::Csv(csv) => csv.encode(batch, buffer)?,
                    TextEncoder::Json(json) => json.encode(batch, buffer)?,
                }
                out.write_all(buffer.as_bytes())
                    .map_err(|e| io_error(path, e))?;
                *written += buffer.len() as u64;
                Ok(())
            }
        }
    }

    fn size(&self) -> u64 {
        match self {
            PartWriter::Parquet(writer) => writer.size(),
            PartWriter::Text { written, .. } => *written,
        }
    }

    fn close(self, path: &Path) -> Result<()> {
        match self {
            PartWriter::Parquet(writer) => writer.close(),
            PartWriter::Text { out, .. } => {
                let file = out
                    .into_inner()
                    .map_err(|e| io_error(path, e.into_error()))?;
                file.sync_all().map_err(|e| io_error(path, e))
            }
        }
    }
}

/// A random version-4 UUID, as Flink names part files.
fn random_uuid() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::DataType;

    use super::*;
    use crate::catalog::TableDef;
    use crate::connectors::Connector;
    use crate::connectors::filesystem::FilesystemConnector;
    use crate::connectors::filesystem::fixtures::{read_table, table};

    fn sink_context(table: Arc<TableDef>, subtask: usize) -> SinkContext {
        SinkContext {
            schema: table.physical_schema(),
            table,
            subtask,
            parallelism: 2,
            updating: false,
            exactly_once: false,
        }
    }

    fn numbers(table: &TableDef, range: std::ops::Range<i64>) -> RecordBatch {
        RecordBatch::try_new(
            table.physical_schema(),
            vec![Arc::new(Int64Array::from_iter_values(range))],
        )
        .unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn part_files_stay_hidden_until_finish() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let t = table(
            &[("v", DataType::Int64)],
            &[("path", out.to_str().unwrap()), ("format", "csv")],
        );
        let mut sink = FileSink::create(sink_context(t.clone(), 1)).unwrap();
        sink.write(&numbers(&t, 0..3)).unwrap();
        let hidden = names(&out);
        assert_eq!(hidden.len(), 1);
        assert!(
            hidden[0].starts_with(".part-") && hidden[0].ends_with("-1-0.csv.inprogress"),
            "{hidden:?}"
        );
        // A reader of the directory sees nothing yet.
        assert_eq!(read_table(&t).0.unwrap().len(), 0);
        sink.finish().unwrap();
        let visible = names(&out);
        assert_eq!(visible.len(), 1);
        assert!(
            visible[0].starts_with("part-") && visible[0].ends_with("-1-0.csv"),
            "{visible:?}"
        );
        assert_eq!(
            std::fs::read_to_string(out.join(&visible[0])).unwrap(),
            "0\n1\n2\n"
        );
        assert_eq!(sink.committed_files(), &[out.join(&visible[0])]);
    }

    #[test]
    fn part_files_roll_at_the_configured_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let t = table(
            &[("v", DataType::Int64)],
            &[
                ("path", path),
                ("format", "json"),
                ("sink.rolling-policy.file-size", "10b"),
            ],
        );
        let mut sink = FileSink::create(sink_context(t.clone(), 0)).unwrap();
        for start in [0, 2, 4] {
            sink.write(&numbers(&t, start..start + 2)).unwrap();
        }
        sink.finish().unwrap();
        let files = names(dir.path());
        assert_eq!(files.len(), 3, "{files:?}");
        assert!(
            files
                .iter()
                .all(|f| f.starts_with("part-") && f.ends_with(".json"))
        );
        let counters: Vec<&str> = files.iter().map(|f| &f[f.len() - 6..f.len() - 5]).collect();
        assert_eq!(counters, vec!["0", "1", "2"]);
        let (read, _) = read_table(&t);
        let rows: usize = read.unwrap().iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 6);
    }

    #[test]
    fn two_subtasks_write_distinct_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let t = table(
            &[("v", DataType::Int64)],
            &[("path", path), ("format", "parquet")],
        );
        for subtask in 0..2 {
            let mut sink = FileSink::create(sink_context(t.clone(), subtask)).unwrap();
            sink.write(&numbers(&t, 0..10)).unwrap();
            sink.finish().unwrap();
        }
        assert_eq!(names(dir.path()).len(), 2);
        let rows: usize = read_table(&t)
            .0
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 20);
    }

    #[test]
    fn sink_refuses_changelog_input() {
        assert!(!FilesystemConnector.accepts_changelog());
        let dir = tempfile::tempdir().unwrap();
        let t = table(
            &[("v", DataType::Int64)],
            &[("path", dir.path().to_str().unwrap()), ("format", "csv")],
        );
        let mut ctx = sink_context(t, 0);
        ctx.updating = true;
        let Err(error) = FileSink::create(ctx) else {
            panic!("accepted a changelog")
        };
        assert!(error.to_string().contains("changelog"), "{error}");
    }

    #[test]
    fn uuids_look_like_version_4() {
        let uuid = random_uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert_ne!(uuid, random_uuid());
    }
}
