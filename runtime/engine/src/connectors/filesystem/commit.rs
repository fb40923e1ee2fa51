//! The second phase of the filesystem sink's two-phase commit: publishing the part files a
//! checkpoint covers by renaming them from their hidden in-progress names.
//!
//! A sink subtask's committable (from [`Sink::pre_commit`]) lists file names relative to the
//! table's `path`:
//!
//! ```json
//! {"checkpoint_id": 7, "subtask": 1,
//!  "files": [{"in_progress": ".part-<uuid>-1-4.csv.inprogress", "final": "part-<uuid>-1-4.csv"}]}
//! ```
//!
//! [`commit`] runs on the coordinator once the checkpoint's `_metadata` is written, and again
//! for the same committable after a restore from that checkpoint, possibly in another process.
//! It therefore relies only on the directory: an in-progress file that exists is renamed; a
//! final file that exists while its in-progress file is gone was committed before and is left
//! alone; a file that is neither is an error, since its rows would be lost.
//!
//! [`Sink::pre_commit`]: crate::connectors::Sink::pre_commit

use std::fs::File;
use std::path::Path;

use serde_json::{Value, json};

use super::io_error;
use crate::error::{Error, Result};

/// A part file's two names in the sink's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartFile {
    /// The hidden name it is written under.
    pub in_progress: String,
    /// The name it is published under.
    pub final_name: String,
}

/// What [`commit`] needs to publish `files`, written by `subtask` before checkpoint
/// `checkpoint_id`'s barrier.
pub(crate) fn committable(checkpoint_id: u64, subtask: usize, files: &[PartFile]) -> Value {
    let files: Vec<Value> = files
        .iter()
        .map(|file| json!({ "in_progress": file.in_progress, "final": file.final_name }))
        .collect();
    json!({ "checkpoint_id": checkpoint_id, "subtask": subtask, "files": files })
}

/// Publish the files of one committable in `directory`, the table's `path`. Idempotent.
pub fn commit(table: &str, directory: &Path, committable: &Value) -> Result<()> {
    let error = |message: String| Error::Connector {
        connector: "filesystem".into(),
        table: table.into(),
        message,
    };
    let files = parse(committable).map_err(|message| {
        error(format!(
            "cannot commit {committable}: {message} (not a committable of the filesystem sink)"
        ))
    })?;
    let checkpoint = committable
        .get("checkpoint_id")
        .map_or_else(|| "?".to_string(), Value::to_string);
    let mut renamed = 0;
    for file in &files {
        let in_progress = directory.join(&file.in_progress);
        let final_path = directory.join(&file.final_name);
        if exists(&in_progress)? {
            std::fs::rename(&in_progress, &final_path).map_err(|e| io_error(&final_path, e))?;
            renamed += 1;
        } else if !exists(&final_path)? {
            return Err(error(format!(
                "cannot commit checkpoint {checkpoint}: neither the part file '{}' nor its \
                 in-progress file '{}' exists; its rows are lost",
                final_path.display(),
                in_progress.display()
            )));
        }
        // Else the final file exists and the in-progress one is gone: committed before.
    }
    if renamed > 0 {
        // Make the renames durable before the checkpoint is considered published.
        sync_directory(directory)?;
    }
    tracing::debug!(
        table,
        checkpoint = %checkpoint,
        files = files.len(),
        renamed,
        "filesystem sink committed"
    );
    Ok(())
}

/// The file names of a committable, each a plain name in the directory (a committable that
/// names a path elsewhere is refused rather than followed).
fn parse(committable: &Value) -> std::result::Result<Vec<PartFile>, String> {
    let files = committable
        .get("files")
        .and_then(Value::as_array)
        .ok_or("'files' is not a list")?;
    files
        .iter()
        .map(|file| {
            let name = |key: &str| -> std::result::Result<String, String> {
                let name = file
                    .get(key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("'{key}' of {file} is not a string"))?;
                let plain = Path::new(name).file_name().and_then(|n| n.to_str()) == Some(name);
                if !plain {
                    return Err(format!("'{key}' of {file} is not a file name"));
                }
                Ok(name.to_string())
            };
            let in_progress = name("in_progress")?;
            if !in_progress.starts_with('.') {
                return Err(format!("'in_progress' of {file} is not a hidden file name"));
            }
            Ok(PartFile {
                in_progress,
                final_name: name("final")?,
            })
        })
        .collect()
}

fn exists(path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Sync a directory, so the names of the files created or renamed in it survive a crash.
pub(crate) fn sync_directory(directory: &Path) -> Result<()> {
    File::open(directory)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(directory, e))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Int64Type};

    use super::*;
    use crate::catalog::TableDef;
    use crate::connectors::filesystem::FilesystemConnector;
    use crate::connectors::filesystem::fixtures::{read_table, table};
    use crate::connectors::{Connector, Sink, SinkContext};

    fn exactly_once_sink(table: &Arc<TableDef>, subtask: usize) -> Box<dyn Sink> {
        FilesystemConnector
            .create_sink(SinkContext {
                table: table.clone(),
                schema: table.physical_schema(),
                subtask,
                parallelism: 2,
                updating: false,
                exactly_once: true,
            })
            .unwrap()
    }

    fn numbers(table: &TableDef, range: std::ops::Range<i64>) -> RecordBatch {
        RecordBatch::try_new(
            table.physical_schema(),
            vec![Arc::new(Int64Array::from_iter_values(range))],
        )
        .unwrap()
    }

    /// The rows a reader of the directory sees, sorted.
    fn visible(table: &Arc<TableDef>) -> Vec<i64> {
        let mut rows: Vec<i64> = read_table(table)
            .0
            .unwrap()
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        rows.sort_unstable();
        rows
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn output_table(dir: &Path, format: &str, extra: &[(&str, &str)]) -> Arc<TableDef> {
        let mut options = vec![("path", dir.to_str().unwrap()), ("format", format)];
        options.extend_from_slice(extra);
        table(&[("v", DataType::Int64)], &options)
    }

    #[test]
    fn commit_publishes_exactly_the_rows_written_before_the_barrier() {
        for format in ["csv", "json", "parquet"] {
            let dir = tempfile::tempdir().unwrap();
            let t = output_table(dir.path(), format, &[]);
            let mut sink = exactly_once_sink(&t, 0);
            sink.write(&numbers(&t, 0..3)).unwrap();
            sink.write(&numbers(&t, 3..5)).unwrap();
            let first = sink.pre_commit(1).unwrap().expect("rows to commit");
            sink.write(&numbers(&t, 5..8)).unwrap();
            assert_eq!(
                visible(&t),
                Vec::<i64>::new(),
                "{format}: before the commit"
            );

            FilesystemConnector.commit(&t, &first).unwrap();
            assert_eq!(visible(&t), (0..5).collect::<Vec<_>>(), "{format}");

            let second = sink.pre_commit(2).unwrap().expect("rows to commit");
            assert_eq!(visible(&t), (0..5).collect::<Vec<_>>(), "{format}");
            FilesystemConnector.commit(&t, &second).unwrap();
            assert_eq!(visible(&t), (0..8).collect::<Vec<_>>(), "{format}");
            let files = names(dir.path());
            assert!(
                files.len() == 2 && files.iter().all(|f| f.starts_with("part-")),
                "{format}: {files:?}"
            );
        }
    }

    #[test]
    fn committing_again_even_in_another_process_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let t = output_table(dir.path(), "csv", &[]);
        let mut sink = exactly_once_sink(&t, 1);
        sink.write(&numbers(&t, 0..4)).unwrap();
        let committable = sink.pre_commit(7).unwrap().expect("rows to commit");
        assert_eq!(committable["checkpoint_id"], 7);
        assert_eq!(committable["subtask"], 1);
        FilesystemConnector.commit(&t, &committable).unwrap();
        let after_first = names(dir.path());
        // A restore commits the restored checkpoint's committables again, from `_metadata`.
        let stored: Value = serde_json::from_str(&committable.to_string()).unwrap();
        FilesystemConnector.commit(&t, &stored).unwrap();
        FilesystemConnector.commit(&t, &stored).unwrap();
        assert_eq!(names(dir.path()), after_first);
        assert_eq!(visible(&t), vec![0, 1, 2, 3]);
    }

    #[test]
    fn rows_after_the_last_pre_commit_stay_hidden_and_the_source_skips_them() {
        let dir = tempfile::tempdir().unwrap();
        let t = output_table(dir.path(), "json", &[]);
        let mut sink = exactly_once_sink(&t, 0);
        sink.write(&numbers(&t, 0..2)).unwrap();
        let committable = sink.pre_commit(1).unwrap().expect("rows to commit");
        FilesystemConnector.commit(&t, &committable).unwrap();
        sink.write(&numbers(&t, 2..5)).unwrap();
        // The input ends but the job fails before the final checkpoint completes.
        sink.finish().unwrap();
        drop(sink);
        let files = names(dir.path());
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(
            files
                .iter()
                .any(|f| f.starts_with(".part-") && f.ends_with(".inprogress")),
            "{files:?}"
        );
        assert_eq!(visible(&t), vec![0, 1]);
    }

    #[test]
    fn pre_commit_without_new_rows_has_nothing_to_commit() {
        let dir = tempfile::tempdir().unwrap();
        let t = output_table(dir.path(), "parquet", &[]);
        let mut sink = exactly_once_sink(&t, 0);
        assert!(sink.pre_commit(1).unwrap().is_none());
        sink.write(&numbers(&t, 0..2)).unwrap();
        assert!(sink.pre_commit(2).unwrap().is_some());
        assert!(sink.pre_commit(3).unwrap().is_none());
        sink.finish().unwrap();
        assert!(sink.pre_commit(4).unwrap().is_none());
    }

    #[test]
    fn files_rolled_between_barriers_wait_for_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let t = output_table(
            dir.path(),
            "csv",
            &[("sink.rolling-policy.file-size", "4b")],
        );
        let mut sink = exactly_once_sink(&t, 0);
        for start in [0, 10, 20] {
            sink.write(&numbers(&t, start..start + 2)).unwrap();
        }
        assert!(names(dir.path()).iter().all(|f| f.starts_with('.')));
        let committable = sink.pre_commit(1).unwrap().expect("rows to commit");
        assert_eq!(committable["files"].as_array().unwrap().len(), 3);
        FilesystemConnector.commit(&t, &committable).unwrap();
        assert_eq!(visible(&t), vec![0, 1, 10, 11, 20, 21]);
    }

    #[test]
    fn a_replayed_attempt_writes_new_names_and_never_overwrites_committed_output() {
        let dir = tempfile::tempdir().unwrap();
        let t = output_table(dir.path(), "csv", &[]);
        let mut committables = Vec::new();
        for _attempt in 0..2 {
            // The same subtask writes the same rows again after a restore.
            let mut sink = exactly_once_sink(&t, 0);
            sink.write(&numbers(&t, 0..3)).unwrap();
            committables.push(sink.pre_commit(1).unwrap().expect("rows to commit"));
        }
        let finals: Vec<&Value> = committables
            .iter()
            .map(|c| &c["files"][0]["final"])
            .collect();
        assert_ne!(finals[0], finals[1]);
        FilesystemConnector.commit(&t, &committables[0]).unwrap();
        assert_eq!(visible(&t), vec![0, 1, 2]);
    }

    #[test]
    fn commit_of_a_file_that_is_gone_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let t = output_table(dir.path(), "csv", &[]);
        let mut sink = exactly_once_sink(&t, 0);
        sink.write(&numbers(&t, 0..3)).unwrap();
        let committable = sink.pre_commit(1).unwrap().expect("rows to commit");
        let in_progress = committable["files"][0]["in_progress"].as_str().unwrap();
        std::fs::remove_file(dir.path().join(in_progress)).unwrap();
        let message = FilesystemConnector
            .commit(&t, &committable)
            .unwrap_err()
            .to_string();
        let final_name = committable["files"][0]["final"].as_str().unwrap();
        assert!(
            message.contains(final_name) && message.contains(in_progress),
            "{message}"
        );
        assert!(
            message.contains("`t`") && message.contains("checkpoint 1"),
            "{message}"
        );
    }

    #[test]
    fn a_committable_naming_a_path_outside_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = output_table(dir.path(), "csv", &[]);
        for (in_progress, final_name) in [
            (".part-a.inprogress", "../escaped.csv"),
            ("/etc/passwd", "part-a.csv"),
            ("part-a.inprogress", "part-a.csv"),
        ] {
            let committable = serde_json::json!({
                "checkpoint_id": 1,
                "files": [{ "in_progress": in_progress, "final": final_name }]
            });
            let message = FilesystemConnector
                .commit(&t, &committable)
                .unwrap_err()
                .to_string();
            assert!(message.contains("not a committable"), "{message}");
        }
    }
}
