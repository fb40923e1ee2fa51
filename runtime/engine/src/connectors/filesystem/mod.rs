//! Flink's `filesystem` connector on local paths: a bounded source over a file or a directory
//! tree, and a sink writing rolling part files, in the `csv`, `json` or `parquet` format.
//!
//! ```sql
//! CREATE TABLE bids (auction BIGINT, price DECIMAL(10, 2), ts TIMESTAMP(3))
//! WITH ('connector' = 'filesystem', 'path' = 'file:///data/bids', 'format' = 'csv');
//! ```
//!
//! The source lists the files when it starts and records, at a checkpoint, which files are
//! left and where it is in the current one (see [`source`]). The sink writes hidden in-progress
//! files; without checkpointing it renames them to their final names when they roll or the
//! input ends, with checkpointing only when the checkpoint that covers them completes
//! (two-phase commit, see [`sink`]). Partitioned tables and directory monitoring
//! (`source.monitor-interval`) are not implemented yet.

mod commit;
pub mod csv;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod json;
pub mod options;
pub mod parquet;
pub mod sink;
pub mod source;
mod split;
mod text;
mod values;

use std::path::Path;

use crate::catalog::TableDef;
use crate::connectors::{Connector, Sink, SinkContext, Source, SourceContext};
use crate::error::{Error, Result};

pub use options::{CsvOptions, FilesystemOptions, Format, JsonOptions, parse_memory_size};
pub use sink::FileSink;
pub use source::{FileSource, list_files};

/// The `filesystem` connector.
pub struct FilesystemConnector;

impl Connector for FilesystemConnector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        options::ALL_KEYS
    }

    fn validate(&self, table: &TableDef, as_source: bool) -> Result<()> {
        let options = FilesystemOptions::from_table(table)?;
        if !matches!(options.format, Format::Parquet) {
            values::kinds_of(&table.physical_schema())
                .map_err(|message| Error::table_options(&table.name, message))?;
        }
        let path = &options.path;
        if as_source && !path.exists() {
            return Err(Error::table_options(
                &table.name,
                format!("path '{}' does not exist", path.display()),
            ));
        }
        if !as_source && path.is_file() {
            return Err(Error::table_options(
                &table.name,
                format!(
                    "path '{}' is a file; a filesystem sink writes into a directory",
                    path.display()
                ),
            ));
        }
        Ok(())
    }

    fn create_source(&self, ctx: SourceContext) -> Result<Box<dyn Source>> {
        Ok(Box::new(FileSource::open(ctx)?))
    }

    fn create_sink(&self, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(FileSink::create(ctx)?))
    }

    fn commit(&self, table: &TableDef, committable: &serde_json::Value) -> Result<()> {
        let options = FilesystemOptions::from_table(table)?;
        sink::commit(&table.name, &options.path, committable)
    }
}

/// The error for a file that cannot be read as the table's format, outside any one line.
fn file_error(table: &str, path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Connector {
        connector: "filesystem".into(),
        table: table.into(),
        message: format!("{}: {message}", path.display()),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;

    use super::*;
    use crate::connectors::filesystem::fixtures::table;

    #[test]
    fn unknown_option_error_lists_the_valid_options_of_the_format() {
        let t = table(
            &[("a", DataType::Int32)],
            &[("path", "/tmp"), ("format", "csv"), ("csv.delimiter", ";")],
        );
        let message = FilesystemConnector
            .validate(&t, false)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("unsupported option 'csv.delimiter'"),
            "{message}"
        );
        assert!(message.contains("csv.field-delimiter"), "{message}");
        assert!(message.contains("path"), "{message}");
        assert!(!message.contains("json.ignore-parse-errors"), "{message}");
    }

    #[test]
    fn options_of_another_format_are_rejected() {
        let t = table(
            &[("a", DataType::Int32)],
            &[
                ("path", "/tmp"),
                ("format", "json"),
                ("csv.null-literal", "N"),
            ],
        );
        let message = FilesystemConnector
            .validate(&t, false)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("unsupported option 'csv.null-literal'"),
            "{message}"
        );
    }

    #[test]
    fn missing_source_path_fails_validation_naming_it() {
        let t = table(
            &[("a", DataType::Int32)],
            &[("path", "file:///no/such/dir/weir"), ("format", "csv")],
        );
        let message = FilesystemConnector
            .validate(&t, true)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'/no/such/dir/weir' does not exist"),
            "{message}"
        );
        // A sink creates its directory.
        FilesystemConnector.validate(&t, false).unwrap();
    }

    #[test]
    fn format_and_path_are_required() {
        let t = table(&[("a", DataType::Int32)], &[("path", "/tmp")]);
        let message = FilesystemConnector
            .validate(&t, true)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("missing required option 'format'"),
            "{message}"
        );
        let t = table(
            &[("a", DataType::Int32)],
            &[("format", "avro"), ("path", "/tmp")],
        );
        let message = FilesystemConnector
            .validate(&t, true)
            .unwrap_err()
            .to_string();
        assert!(message.contains("unsupported format 'avro'"), "{message}");
        let t = table(&[("a", DataType::Int32)], &[("format", "csv")]);
        let message = FilesystemConnector
            .validate(&t, true)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("missing required option 'path'"),
            "{message}"
        );
        let t = table(
            &[("a", DataType::Int32)],
            &[("format", "csv"), ("path", "s3://b/k")],
        );
        let message = FilesystemConnector
            .validate(&t, true)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("scheme 's3' is not supported"),
            "{message}"
        );
    }

    #[test]
    fn unsupported_column_types_fail_validation_for_text_formats() {
        let list = DataType::new_list(DataType::Int32, true);
        let t = table(&[("xs", list)], &[("path", "/tmp"), ("format", "json")]);
        let message = FilesystemConnector
            .validate(&t, false)
            .unwrap_err()
            .to_string();
        assert!(message.contains("column `xs`"), "{message}");
    }
}
