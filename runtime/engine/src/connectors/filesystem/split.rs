//! The filesystem source's read position, as the splits a checkpoint records: one per file not
//! yet finished, with where to resume in it.
//!
//! ```json
//! {"path": "/data/bids/f1.csv", "offset": 8192, "line": 310}     // csv, json
//! {"path": "/data/bids/f2.parquet", "row_group": 3, "row": 1024}  // parquet
//! ```
//!
//! For the line formats `offset` is the byte offset of the first record not yet read and `line`
//! the physical lines before it (so errors after a restore still name the right line); for
//! parquet `row_group` is the row group and `row` the row within it. A file not started has
//! all of them 0, and a split holding only `path` means the same. A split is self-contained,
//! so any subtask can resume it after a rescaled restore.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Format, file_error};
use crate::error::{Error, Result};

/// Where to resume reading a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilePosition {
    /// csv and json: the byte offset of the next record, and the physical lines before it.
    Text { offset: u64, line: u64 },
    /// parquet: the row group and the row within it.
    Parquet { row_group: usize, row: u64 },
}

impl FilePosition {
    /// The start of a file of `format`.
    pub(crate) fn start(format: &Format) -> FilePosition {
        match format {
            Format::Parquet => FilePosition::Parquet {
                row_group: 0,
                row: 0,
            },
            Format::Csv(_) | Format::Json(_) => FilePosition::Text { offset: 0, line: 0 },
        }
    }
}

/// What is left of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSplit {
    pub path: PathBuf,
    pub position: FilePosition,
}

impl FileSplit {
    pub(crate) fn whole(path: PathBuf, format: &Format) -> FileSplit {
        FileSplit {
            path,
            position: FilePosition::start(format),
        }
    }

    pub(crate) fn to_json(&self, table: &str) -> Result<Value> {
        let path = self.path.to_str().ok_or_else(|| {
            file_error(
                table,
                &self.path,
                "the path is not valid UTF-8 and cannot be recorded in a checkpoint",
            )
        })?;
        Ok(match self.position {
            FilePosition::Text { offset, line } => {
                json!({ "path": path, "offset": offset, "line": line })
            }
            FilePosition::Parquet { row_group, row } => {
                json!({ "path": path, "row_group": row_group, "row": row })
            }
        })
    }

    /// A split recorded by [`FileSplit::to_json`] for a table of `format`.
    pub(crate) fn from_json(table: &str, format: &Format, value: &Value) -> Result<FileSplit> {
        let error = |message: String| Error::Connector {
            connector: "filesystem".into(),
            table: table.into(),
            message: format!("cannot resume from checkpoint split {value}: {message}"),
        };
        let path = value
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| error("'path' is not a string".into()))?;
        let number = |key: &str| -> Result<u64> {
            match value.get(key) {
                None => Ok(0),
                Some(n) => n
                    .as_u64()
                    .ok_or_else(|| error(format!("'{key}' is not a non-negative integer"))),
            }
        };
        let (mine, other) = match format {
            Format::Parquet => (["row_group", "row"], ["offset", "line"]),
            Format::Csv(_) | Format::Json(_) => (["offset", "line"], ["row_group", "row"]),
        };
        if let Some(key) = other.iter().find(|key| value.get(**key).is_some()) {
            return Err(error(format!(
                "'{key}' is a position in another format; this table reads '{}' files, \
                 positioned by '{}' and '{}'",
                format.name(),
                mine[0],
                mine[1]
            )));
        }
        let position = match format {
            Format::Parquet => FilePosition::Parquet {
                row_group: usize::try_from(number("row_group")?)
                    .map_err(|_| error("'row_group' is too large".into()))?,
                row: number("row")?,
            },
            Format::Csv(_) | Format::Json(_) => FilePosition::Text {
                offset: number("offset")?,
                line: number("line")?,
            },
        };
        Ok(FileSplit {
            path: PathBuf::from(path),
            position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::filesystem::CsvOptions;

    #[test]
    fn splits_round_trip_through_json_for_each_format() {
        let csv = Format::Csv(CsvOptions::default());
        let text = FileSplit {
            path: PathBuf::from("/d/a.csv"),
            position: FilePosition::Text {
                offset: 12,
                line: 3,
            },
        };
        let value = text.to_json("t").unwrap();
        assert_eq!(value, json!({"path": "/d/a.csv", "offset": 12, "line": 3}));
        assert_eq!(FileSplit::from_json("t", &csv, &value).unwrap(), text);

        let parquet = FileSplit {
            path: PathBuf::from("/d/a.parquet"),
            position: FilePosition::Parquet {
                row_group: 2,
                row: 7,
            },
        };
        let value = parquet.to_json("t").unwrap();
        assert_eq!(
            FileSplit::from_json("t", &Format::Parquet, &value).unwrap(),
            parquet
        );
    }

    #[test]
    fn a_split_with_only_a_path_is_the_whole_file() {
        let split = FileSplit::from_json("t", &Format::Parquet, &json!({"path": "/d/x"})).unwrap();
        assert_eq!(split, FileSplit::whole("/d/x".into(), &Format::Parquet));
    }

    #[test]
    fn a_split_of_another_format_or_without_a_path_is_refused_naming_the_table() {
        let csv = Format::Csv(CsvOptions::default());
        let value = json!({"path": "/d/x", "row_group": 1, "row": 2});
        let message = FileSplit::from_json("bids", &csv, &value)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("`bids`") && message.contains("'row_group'"),
            "{message}"
        );
        let message = FileSplit::from_json("bids", &csv, &json!({"offset": 1}))
            .unwrap_err()
            .to_string();
        assert!(message.contains("'path'"), "{message}");
    }
}
