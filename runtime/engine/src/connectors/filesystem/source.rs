//! The bounded filesystem source: list the files once, give file `k` (in path order) to
//! subtask `k % parallelism`, and read each in batches of the physical columns.
//!
//! Like Flink, a directory is read recursively and names starting with `.` or `_` (hidden,
//! in-progress and marker files such as `_SUCCESS`) are skipped, files and directories alike,
//! so the sink's uncommitted in-progress files are never read.
//!
//! At a checkpoint the source records the file it is reading, with its position, and the files
//! it has not started, one split each (see [`super::split`]). A restored source reads exactly
//! its splits, in order, and lists nothing: files added after the job started are not read, as
//! they were not before the restore.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::csv::CsvReader;
use super::json::JsonReader;
use super::parquet::ParquetReader;
use super::split::{FilePosition, FileSplit};
use super::{FilesystemOptions, Format, file_error, io_error};
use crate::connectors::{Source, SourceContext, SourceEvent};
use crate::error::Result;

/// Reads one file in batches.
pub(crate) trait FileReader: Send {
    /// The next batch of at most `max_rows` rows, or `None` at the end of the file.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>>;

    /// Malformed rows skipped so far (with `*.ignore-parse-errors`).
    fn skipped_rows(&self) -> u64 {
        0
    }

    /// Where the rows not yet returned begin, to resume from after a restore; `None` when the
    /// file is known to be finished.
    fn position(&self) -> Option<FilePosition>;
}

/// One parallel instance of the filesystem source.
pub struct FileSource {
    table: String,
    schema: SchemaRef,
    format: Format,
    batch_size: usize,
    /// The files not yet started (or, after a restore, not yet resumed), in order.
    files: VecDeque<FileSplit>,
    /// The file being read.
    current: Option<(PathBuf, Box<dyn FileReader>)>,
    /// Skipped rows of the files already finished.
    skipped: u64,
    ended: bool,
}

impl FileSource {
    /// Keep this subtask's share of the table's files (or, after a restore, the splits it was
    /// given); nothing is opened yet.
    pub fn open(ctx: SourceContext) -> Result<Self> {
        let options = FilesystemOptions::from_table(&ctx.table)?;
        let files = match &ctx.restored_splits {
            Some(splits) => splits
                .iter()
                .map(|value| FileSplit::from_json(&ctx.table.name, &options.format, value))
                .collect::<Result<VecDeque<_>>>()?,
            None => {
                let parallelism = ctx.parallelism.max(1);
                list_files(&options.path)?
                    .into_iter()
                    .enumerate()
                    .filter(|(k, _)| k % parallelism == ctx.subtask)
                    .map(|(_, path)| FileSplit::whole(path, &options.format))
                    .collect()
            }
        };
        Ok(FileSource {
            table: ctx.table.name.clone(),
            schema: ctx.schema,
            format: options.format,
            batch_size: ctx.batch_size.max(1),
            files,
            current: None,
            skipped: 0,
            ended: false,
        })
    }

    /// The files this subtask has not started reading, in order.
    pub fn pending_files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|split| split.path.as_path())
    }

    /// Malformed rows skipped so far because of `csv.ignore-parse-errors` or
    /// `json.ignore-parse-errors`.
    pub fn skipped_rows(&self) -> u64 {
        self.skipped + self.current.as_ref().map_or(0, |(_, r)| r.skipped_rows())
    }

    fn open_file(&self, split: &FileSplit) -> Result<Box<dyn FileReader>> {
        let path = split.path.as_path();
        let schema = self.schema.clone();
        let mismatch = || {
            file_error(
                &self.table,
                path,
                format!(
                    "the checkpoint position {:?} is not one of a '{}' file",
                    split.position,
                    self.format.name()
                ),
            )
        };
        Ok(match (&self.format, split.position) {
            (Format::Csv(options), FilePosition::Text { offset, line }) => Box::new(
                CsvReader::open(path, schema, options.clone(), offset, line)?,
            ),
            (Format::Json(options), FilePosition::Text { offset, line }) => Box::new(
                JsonReader::open(path, schema, options.clone(), offset, line)?,
            ),
            (Format::Parquet, FilePosition::Parquet { row_group, row }) => Box::new(
                ParquetReader::open(&self.table, path, schema, self.batch_size, row_group, row)?,
            ),
            _ => return Err(mismatch()),
        })
    }
}

impl Source for FileSource {
    fn poll_next(&mut self) -> Result<SourceEvent> {
        loop {
            if let Some((_, reader)) = self.current.as_mut() {
                match reader.next_batch(self.batch_size)? {
                    Some(batch) if batch.num_rows() > 0 => return Ok(SourceEvent::Batch(batch)),
                    Some(_) => continue,
                    None => {
                        self.skipped += reader.skipped_rows();
                        self.current = None;
                    }
                }
            }
            match self.files.pop_front() {
                Some(split) => {
                    let reader = self.open_file(&split)?;
                    self.current = Some((split.path, reader));
                }
                None => {
                    if !self.ended && self.skipped > 0 {
                        tracing::warn!(
                            table = %self.table,
                            skipped = self.skipped,
                            "filesystem source skipped malformed rows"
                        );
                    }
                    self.ended = true;
                    return Ok(SourceEvent::End);
                }
            }
        }
    }

    /// The file being read at its position (unless finished), then the files not started.
    fn snapshot_splits(&mut self) -> Result<Vec<serde_json::Value>> {
        let current = self.current.as_ref().and_then(|(path, reader)| {
            reader.position().map(|position| FileSplit {
                path: path.clone(),
                position,
            })
        });
        current
            .iter()
            .chain(&self.files)
            .map(|split| split.to_json(&self.table))
            .collect()
    }
}

/// `path` opened for reading at byte `offset`, which must not be past its end.
pub(crate) fn open_at(path: &Path, offset: u64) -> Result<File> {
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    if offset > 0 {
        let length = file.metadata().map_err(|e| io_error(path, e))?.len();
        if offset > length {
            let message = format!(
                "the checkpoint resumes at byte {offset}, but the file has only {length} bytes \
                 (was it replaced?)"
            );
            return Err(io_error(path, std::io::Error::other(message)));
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| io_error(path, e))?;
    }
    Ok(file)
}

/// The files under `path`, sorted: `path` itself if it is a file, else every regular file in
/// the directory tree whose name (and whose directories' names) does not start with `.` or `_`.
pub fn list_files(path: &Path) -> Result<Vec<PathBuf>> {
    let metadata = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut directories = vec![path.to_path_buf()];
    while let Some(directory) = directories.pop() {
        let entries = std::fs::read_dir(&directory).map_err(|e| io_error(&directory, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&directory, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let child = entry.path();
            // Follows symbolic links, like Flink's local file system.
            let metadata = std::fs::metadata(&child).map_err(|e| io_error(&child, e))?;
            if metadata.is_dir() {
                directories.push(child);
            } else if metadata.is_file() {
                files.push(child);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Int64Type};

    use super::*;
    use crate::connectors::Connector;
    use crate::connectors::filesystem::FilesystemConnector;
    use crate::connectors::filesystem::fixtures::{numbered_files, table};
    use crate::connectors::test_util::{assert_restore_is_exact, source_context};

    fn context(
        table: Arc<crate::catalog::TableDef>,
        subtask: usize,
        parallelism: usize,
    ) -> SourceContext {
        SourceContext {
            schema: table.physical_schema(),
            table,
            subtask,
            parallelism,
            batch_size: 2,
            restored_splits: None,
        }
    }

    fn drain(source: &mut FileSource) -> Vec<RecordBatch> {
        let mut batches = Vec::new();
        loop {
            match source.poll_next().unwrap() {
                SourceEvent::Batch(batch) => batches.push(batch),
                SourceEvent::Pending => {}
                SourceEvent::End => return batches,
            }
        }
    }

    #[test]
    fn directory_of_five_files_over_two_subtasks_is_read_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("nested");
        std::fs::create_dir(&nested).unwrap();
        let top = dir.path().to_path_buf();
        for k in 0..5_i64 {
            let parent = if k == 3 { &nested } else { &top };
            let rows: String = (0..3).map(|r| format!("{}\n", k * 10 + r)).collect();
            std::fs::write(parent.join(format!("f{k}.csv")), rows).unwrap();
        }
        // Hidden, in-progress and marker files are not data.
        std::fs::write(dir.path().join(".part-x.inprogress"), "99\n").unwrap();
        std::fs::write(dir.path().join("_SUCCESS"), "").unwrap();
        std::fs::create_dir(dir.path().join("_temporary")).unwrap();
        std::fs::write(dir.path().join("_temporary").join("f9.csv"), "98\n").unwrap();

        let path = dir.path().to_str().unwrap();
        let t = table(
            &[("v", DataType::Int64)],
            &[("path", path), ("format", "csv")],
        );
        let mut seen = Vec::new();
        let mut files_per_subtask = Vec::new();
        for subtask in 0..2 {
            let mut source = FileSource::open(context(t.clone(), subtask, 2)).unwrap();
            files_per_subtask.push(source.pending_files().count());
            for batch in drain(&mut source) {
                assert!(batch.num_rows() <= 2);
                seen.extend(
                    batch
                        .column(0)
                        .as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .copied(),
                );
            }
        }
        assert_eq!(files_per_subtask, vec![3, 2]);
        seen.sort_unstable();
        let expected: Vec<i64> = (0..5)
            .flat_map(|k| (0..3).map(move |r| k * 10 + r))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn subtask_without_files_ends_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("one.csv");
        std::fs::write(&file, "1\n").unwrap();
        let t = table(
            &[("v", DataType::Int64)],
            &[("path", file.to_str().unwrap()), ("format", "csv")],
        );
        let mut idle = FileSource::open(context(t.clone(), 1, 2)).unwrap();
        assert!(matches!(idle.poll_next().unwrap(), SourceEvent::End));
        let mut busy = FileSource::open(context(t, 0, 2)).unwrap();
        let batches = drain(&mut busy);
        assert_eq!(batches.len(), 1);
        let expected = Int64Array::from(vec![1]);
        assert_eq!(batches[0].column(0).as_primitive::<Int64Type>(), &expected);
    }

    #[test]
    fn missing_path_error_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let t = table(
            &[("v", DataType::Int64)],
            &[("path", gone.to_str().unwrap()), ("format", "csv")],
        );
        let Err(error) = FileSource::open(context(t, 0, 1)) else {
            panic!("opened a missing path")
        };
        assert!(
            error.to_string().contains(gone.to_str().unwrap()),
            "{error}"
        );
    }

    #[test]
    fn restored_source_resumes_mid_file_like_a_failure_free_run() {
        for format in ["csv", "json", "parquet"] {
            let (_dir, t) = numbered_files(format, 5, 7);
            for parallelism in [1, 2] {
                let splits = assert_restore_is_exact(
                    &FilesystemConnector,
                    &t,
                    parallelism,
                    parallelism,
                    2,
                    |i| 3 + i,
                );
                // Three polls of two rows stop inside the first file.
                let first = &splits[0][0];
                let inside = match format {
                    "parquet" => first["row_group"] == 2 && first["row"] == 0,
                    _ => first["offset"].as_u64() > Some(0) && first["line"].as_u64() > Some(6),
                };
                assert!(inside, "{format}: {first}");
            }
        }
    }

    #[test]
    fn rescaled_restore_reads_each_remaining_row_exactly_once() {
        for format in ["csv", "json", "parquet"] {
            let (_dir, t) = numbered_files(format, 5, 7);
            for (old, new) in [(2, 3), (2, 1), (3, 2)] {
                // Subtasks stop at different places: inside a file, between files, at the end.
                let polls = [0, 5, 40];
                assert_restore_is_exact(&FilesystemConnector, &t, old, new, 2, |i| polls[i]);
                assert_restore_is_exact(&FilesystemConnector, &t, old, new, 3, |i| 4 - i);
            }
        }
    }

    #[test]
    fn finished_source_records_no_splits_and_one_not_started_records_its_files() {
        let (_dir, t) = numbered_files("csv", 3, 2);
        let mut source = FileSource::open(context(t.clone(), 0, 1)).unwrap();
        let splits = source.snapshot_splits().unwrap();
        assert_eq!(splits.len(), 3);
        assert_eq!(splits[0]["offset"], 0);
        assert!(
            splits[2]["path"].as_str().unwrap().ends_with("f2.csv"),
            "{splits:?}"
        );
        drain(&mut source);
        assert!(source.snapshot_splits().unwrap().is_empty());
    }

    #[test]
    fn split_past_the_end_of_a_replaced_file_is_an_error_naming_it() {
        for format in ["csv", "parquet"] {
            let (dir, t) = numbered_files(format, 1, 7);
            let mut source = FilesystemConnector
                .create_source(source_context(&t, 0, 1, 5))
                .unwrap();
            source.poll_next().unwrap();
            let splits = source.snapshot_splits().unwrap();
            let file = dir.path().join(format!("f0.{format}"));
            // The file is replaced by a shorter one with a single row (group).
            let (_other, short) = numbered_files(format, 1, 1);
            let short_file =
                std::path::Path::new(short.options["path"].as_str()).join(format!("f0.{format}"));
            std::fs::copy(short_file, &file).unwrap();
            let mut ctx = source_context(&t, 0, 1, 5);
            ctx.restored_splits = Some(splits);
            let error = match FilesystemConnector.create_source(ctx) {
                Ok(mut source) => source.poll_next().unwrap_err(),
                Err(error) => error,
            };
            let message = error.to_string();
            assert!(
                message.contains(file.to_str().unwrap()) && message.contains("replaced"),
                "{format}: {message}"
            );
        }
    }
}
