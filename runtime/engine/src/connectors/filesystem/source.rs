//! The bounded filesystem source: list the files once, give file `k` (in path order) to
//! subtask `k % parallelism`, and read each in batches of the physical columns.
//!
//! Like Flink, a directory is read recursively and names starting with `.` or `_` (hidden,
//! in-progress and marker files such as `_SUCCESS`) are skipped, files and directories alike.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::csv::CsvReader;
use super::json::JsonReader;
use super::parquet::ParquetReader;
use super::{FilesystemOptions, Format, io_error};
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
}

/// One parallel instance of the filesystem source.
pub struct FileSource {
    table: String,
    schema: SchemaRef,
    format: Format,
    batch_size: usize,
    files: VecDeque<PathBuf>,
    current: Option<Box<dyn FileReader>>,
    /// Skipped rows of the files already finished.
    skipped: u64,
    ended: bool,
}

impl FileSource {
    /// List the table's files and keep this subtask's share; nothing is opened yet.
    pub fn open(ctx: SourceContext) -> Result<Self> {
        let options = FilesystemOptions::from_table(&ctx.table)?;
        let all = list_files(&options.path)?;
        let parallelism = ctx.parallelism.max(1);
        let files = all
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % parallelism == ctx.subtask)
            .map(|(_, path)| path)
            .collect();
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

    /// The files this subtask has not finished reading, in order.
    pub fn pending_files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(PathBuf::as_path)
    }

    /// Malformed rows skipped so far because of `csv.ignore-parse-errors` or
    /// `json.ignore-parse-errors`.
    pub fn skipped_rows(&self) -> u64 {
        self.skipped + self.current.as_ref().map_or(0, |r| r.skipped_rows())
    }

    fn open_file(&self, path: &Path) -> Result<Box<dyn FileReader>> {
        let schema = self.schema.clone();
        Ok(match &self.format {
            Format::Csv(options) => Box::new(CsvReader::open(path, schema, options.clone())?),
            Format::Json(options) => Box::new(JsonReader::open(path, schema, options.clone())?),
            Format::Parquet => Box::new(ParquetReader::open(
                &self.table,
                path,
                schema,
                self.batch_size,
            )?),
        })
    }
}

impl Source for FileSource {
    fn poll_next(&mut self) -> Result<SourceEvent> {
        loop {
            if let Some(reader) = self.current.as_mut() {
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
                Some(path) => self.current = Some(self.open_file(&path)?),
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
    use crate::connectors::filesystem::fixtures::table;

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
}
