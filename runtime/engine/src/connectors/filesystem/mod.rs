//! Flink's `filesystem` connector on local paths: a bounded source over a file or a directory
//! tree, and a sink writing rolling part files, in the `csv`, `json` or `parquet` format.
//!
//! ```sql
//! CREATE TABLE bids (auction BIGINT, price DECIMAL(10, 2), ts TIMESTAMP(3))
//! WITH ('connector' = 'filesystem', 'path' = 'file:///data/bids', 'format' = 'csv');
//! ```
//!
//! The source lists the files when it starts (see [`source`]); the sink writes hidden
//! in-progress files and renames them to their final names when they roll or the input ends
//! (see [`sink`]). Checkpoint-aligned commits, partitioned tables and directory monitoring
//! (`source.monitor-interval`) are not implemented yet.

pub mod csv;
pub mod json;
pub mod parquet;
pub mod sink;
pub mod source;
mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::TableDef;
use crate::connectors::{Connector, ConnectorOptions, Sink, SinkContext, Source, SourceContext};
use crate::error::{Error, Result};

pub use sink::FileSink;
pub use source::{FileSource, list_files};

/// Options every table of this connector accepts.
const COMMON_KEYS: &[&str] = &[
    "path",
    "format",
    "sink.rolling-policy.file-size",
    "sink.rolling-policy.rollover-interval",
];

const CSV_KEYS: &[&str] = &[
    "csv.field-delimiter",
    "csv.quote-character",
    "csv.disable-quote-character",
    "csv.allow-comments",
    "csv.ignore-parse-errors",
    "csv.null-literal",
];

const JSON_KEYS: &[&str] = &[
    "json.ignore-parse-errors",
    "json.fail-on-missing-field",
    "json.timestamp-format.standard",
    "json.encode.ignore-null-fields",
];

const ALL_KEYS: &[&str] = &[
    "path",
    "format",
    "sink.rolling-policy.file-size",
    "sink.rolling-policy.rollover-interval",
    "csv.field-delimiter",
    "csv.quote-character",
    "csv.disable-quote-character",
    "csv.allow-comments",
    "csv.ignore-parse-errors",
    "csv.null-literal",
    "json.ignore-parse-errors",
    "json.fail-on-missing-field",
    "json.timestamp-format.standard",
    "json.encode.ignore-null-fields",
];

/// Flink's default `sink.rolling-policy.file-size`.
const DEFAULT_FILE_SIZE: u64 = 128 * 1024 * 1024;

/// Flink's default `sink.rolling-policy.rollover-interval`.
const DEFAULT_ROLLOVER: Duration = Duration::from_secs(30 * 60);

/// The `filesystem` connector.
pub struct FilesystemConnector;

impl Connector for FilesystemConnector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        ALL_KEYS
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
}

/// A table's `filesystem` options, checked.
#[derive(Debug, Clone)]
pub struct FilesystemOptions {
    /// The local path, without a `file://` prefix.
    pub path: PathBuf,
    pub format: Format,
    /// `sink.rolling-policy.file-size`: a part file is closed once it reaches this many bytes.
    pub rolling_file_size: u64,
    /// `sink.rolling-policy.rollover-interval`: a part file is closed once it is this old
    /// (checked when a batch arrives).
    pub rollover_interval: Duration,
}

#[derive(Debug, Clone)]
pub enum Format {
    Csv(CsvOptions),
    Json(JsonOptions),
    Parquet,
}

impl Format {
    /// The suffix of part files the sink writes.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Csv(_) => ".csv",
            Format::Json(_) => ".json",
            Format::Parquet => ".parquet",
        }
    }
}

/// Flink's `csv` format options.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// `csv.field-delimiter`, default `,`.
    pub delimiter: char,
    /// `csv.quote-character`, default `"`; `None` with `csv.disable-quote-character`.
    pub quote: Option<char>,
    /// `csv.allow-comments`: skip lines starting with `#`.
    pub allow_comments: bool,
    /// `csv.ignore-parse-errors`: skip malformed rows instead of failing.
    pub ignore_parse_errors: bool,
    /// `csv.null-literal`: an unquoted field with this text is null, and nulls are written so.
    pub null_literal: Option<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ',',
            quote: Some('"'),
            allow_comments: false,
            ignore_parse_errors: false,
            null_literal: None,
        }
    }
}

/// Flink's `json` format options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonOptions {
    /// `json.ignore-parse-errors`: skip malformed rows instead of failing.
    pub ignore_parse_errors: bool,
    /// `json.fail-on-missing-field`: a missing field is an error rather than null.
    pub fail_on_missing_field: bool,
    /// `json.timestamp-format.standard` = `ISO-8601`: write `T` between date and time
    /// (both forms are read either way).
    pub iso_timestamps: bool,
    /// `json.encode.ignore-null-fields`: leave null fields out of written objects.
    pub ignore_null_fields: bool,
}

impl FilesystemOptions {
    pub fn from_table(table: &TableDef) -> Result<Self> {
        let options = ConnectorOptions::new(table);
        let error = |message: String| Error::table_options(&table.name, message);
        let format_name = options.required("format")?;
        let mut valid: Vec<&str> = COMMON_KEYS.to_vec();
        let format = match format_name {
            "csv" => {
                valid.extend(CSV_KEYS);
                options.check_known(&valid)?;
                Format::Csv(csv_options(&options, &error)?)
            }
            "json" => {
                valid.extend(JSON_KEYS);
                options.check_known(&valid)?;
                let iso_timestamps = match options.get("json.timestamp-format.standard") {
                    None | Some("SQL") => false,
                    Some("ISO-8601") => true,
                    Some(other) => {
                        return Err(error(format!(
                            "option 'json.timestamp-format.standard' = '{other}' must be 'SQL' or 'ISO-8601'"
                        )));
                    }
                };
                Format::Json(JsonOptions {
                    ignore_parse_errors: options.bool("json.ignore-parse-errors")?.unwrap_or(false),
                    fail_on_missing_field: options
                        .bool("json.fail-on-missing-field")?
                        .unwrap_or(false),
                    iso_timestamps,
                    ignore_null_fields: options
                        .bool("json.encode.ignore-null-fields")?
                        .unwrap_or(false),
                })
            }
            "parquet" => {
                options.check_known(&valid)?;
                Format::Parquet
            }
            other => {
                return Err(error(format!(
                    "unsupported format '{other}' for the filesystem connector; supported formats: csv, json, parquet"
                )));
            }
        };
        let path = local_path(options.required("path")?).map_err(error)?;
        let rolling_file_size = match options.get("sink.rolling-policy.file-size") {
            None => DEFAULT_FILE_SIZE,
            Some(raw) => parse_memory_size(raw).filter(|size| *size > 0).ok_or_else(|| {
                error(format!(
                    "option 'sink.rolling-policy.file-size' = '{raw}' is not a size like '128MB' or '64 kb'"
                ))
            })?,
        };
        let rollover_interval = options
            .duration("sink.rolling-policy.rollover-interval")?
            .unwrap_or(DEFAULT_ROLLOVER);
        Ok(FilesystemOptions {
            path,
            format,
            rolling_file_size,
            rollover_interval,
        })
    }
}

fn csv_options(
    options: &ConnectorOptions<'_>,
    error: &impl Fn(String) -> Error,
) -> Result<CsvOptions> {
    let defaults = CsvOptions::default();
    let single_char = |key: &str, default: char| -> Result<char> {
        match options.get(key) {
            None => Ok(default),
            Some(raw) => {
                let text = unescape(raw);
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c != '\n' && c != '\r' => Ok(c),
                    _ => Err(error(format!(
                        "option '{key}' = '{raw}' must be a single character (like ',' or '\\t')"
                    ))),
                }
            }
        }
    };
    let delimiter = single_char("csv.field-delimiter", ',')?;
    let quote = if options
        .bool("csv.disable-quote-character")?
        .unwrap_or(false)
    {
        if options.get("csv.quote-character").is_some() {
            return Err(error(
                "options 'csv.disable-quote-character' and 'csv.quote-character' exclude each other"
                    .into(),
            ));
        }
        None
    } else {
        Some(single_char("csv.quote-character", '"')?)
    };
    if quote == Some(delimiter) {
        return Err(error(format!(
            "the quote character and the field delimiter are both '{delimiter}'"
        )));
    }
    Ok(CsvOptions {
        delimiter,
        quote,
        allow_comments: options
            .bool("csv.allow-comments")?
            .unwrap_or(defaults.allow_comments),
        ignore_parse_errors: options
            .bool("csv.ignore-parse-errors")?
            .unwrap_or(defaults.ignore_parse_errors),
        null_literal: options.get("csv.null-literal").map(str::to_string),
    })
}

/// Flink unescapes single-character options Java-style: `'\t'` is a tab, `'\u0001'` is SOH.
fn unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A `path` option as a local path: plain, `file:///abs`, or `file:/abs`.
fn local_path(raw: &str) -> std::result::Result<PathBuf, String> {
    let path = if let Some(rest) = raw.strip_prefix("file://") {
        rest
    } else if let Some(rest) = raw.strip_prefix("file:") {
        rest
    } else if let Some((scheme, _)) = raw.split_once("://") {
        return Err(format!(
            "path '{raw}': scheme '{scheme}' is not supported; only local paths and file:// are"
        ));
    } else {
        raw
    };
    if path.is_empty() {
        return Err("option 'path' is empty".into());
    }
    Ok(Path::new(path).to_path_buf())
}

/// Flink's `MemorySize` syntax: a number and an optional unit (`b`, `kb`, `mb`, `gb`, `tb`, and
/// their long forms), counted in powers of 1024; no unit means bytes.
pub fn parse_memory_size(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: u64 = number.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 0,
        "k" | "kb" | "kibibytes" => 10,
        "m" | "mb" | "mebibytes" => 20,
        "g" | "gb" | "gibibytes" => 30,
        "t" | "tb" | "tebibytes" => 40,
        _ => return None,
    };
    value.checked_mul(1 << shift)
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
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
        Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
        TimestampMillisecondArray,
    };
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::connectors::SourceEvent;

    /// A table `t` of the connector with these physical columns and options.
    pub(crate) fn table(columns: &[(&str, DataType)], options: &[(&str, &str)]) -> Arc<TableDef> {
        let mut all = vec![("connector", "filesystem")];
        all.extend_from_slice(options);
        Arc::new(crate::connectors::test_util::table("t", columns, &all))
    }

    /// One batch with a column of every type the formats carry, edge values and a row of nulls.
    pub(crate) fn all_types_batch() -> RecordBatch {
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "b",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                ])),
            ),
            (
                "i8",
                Arc::new(Int8Array::from(vec![
                    Some(i8::MIN),
                    Some(0),
                    None,
                    Some(i8::MAX),
                ])),
            ),
            (
                "i16",
                Arc::new(Int16Array::from(vec![
                    Some(i16::MIN),
                    Some(-1),
                    None,
                    Some(i16::MAX),
                ])),
            ),
            (
                "i32",
                Arc::new(Int32Array::from(vec![
                    Some(i32::MIN),
                    Some(42),
                    None,
                    Some(i32::MAX),
                ])),
            ),
            (
                "i64",
                Arc::new(Int64Array::from(vec![
                    Some(i64::MIN),
                    Some(7),
                    None,
                    Some(i64::MAX),
                ])),
            ),
            (
                "f32",
                Arc::new(Float32Array::from(vec![
                    Some(0.1),
                    Some(-3.5e-9),
                    None,
                    Some(f32::MAX),
                ])),
            ),
            (
                "f64",
                Arc::new(Float64Array::from(vec![
                    Some(0.1),
                    Some(1e300),
                    None,
                    Some(-2.0),
                ])),
            ),
            (
                "d",
                Arc::new(
                    Decimal128Array::from(vec![Some(1250), Some(-5), None, Some(99_999_999)])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![
                    Some("plain"),
                    Some("with, comma and \"quotes\"\nand a new line"),
                    None,
                    Some(" 日本 "),
                ])),
            ),
            (
                "bin",
                Arc::new(BinaryArray::from(vec![
                    Some(&b"\x00\xffab"[..]),
                    Some(&b""[..]),
                    None,
                    Some(&b"xyz"[..]),
                ])),
            ),
            (
                "dt",
                Arc::new(Date32Array::from(vec![
                    Some(0),
                    Some(-719_528),
                    None,
                    Some(19_782),
                ])),
            ),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(1_709_214_306_789),
                    Some(-1),
                    None,
                    Some(0),
                ])),
            ),
            (
                "ltz",
                Arc::new(
                    TimestampMillisecondArray::from(vec![
                        Some(1_709_214_306_780),
                        Some(1),
                        None,
                        Some(0),
                    ])
                    .with_timezone(crate::types::LTZ_ZONE),
                ),
            ),
        ];
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, array)| array).collect(),
        )
        .unwrap()
    }

    /// Read the whole table with one subtask: the batches (or the error) and the rows skipped.
    pub(crate) fn read_table(table: &Arc<TableDef>) -> (Result<Vec<RecordBatch>>, u64) {
        let ctx = SourceContext {
            table: table.clone(),
            schema: table.physical_schema(),
            subtask: 0,
            parallelism: 1,
            batch_size: 1024,
        };
        let mut source = match FileSource::open(ctx) {
            Ok(source) => source,
            Err(e) => return (Err(e), 0),
        };
        let mut batches = Vec::new();
        loop {
            match source.poll_next() {
                Ok(SourceEvent::Batch(batch)) => batches.push(batch),
                Ok(SourceEvent::Pending) => {}
                Ok(SourceEvent::End) => return (Ok(batches), source.skipped_rows()),
                Err(e) => return (Err(e), source.skipped_rows()),
            }
        }
    }

    /// Write `batch` (in two writes) through the sink into a fresh directory and read it back:
    /// (what was written, what was read), each as one batch.
    pub(crate) fn round_trip(
        format: &str,
        options: &[(&str, &str)],
        batch: RecordBatch,
    ) -> (RecordBatch, RecordBatch) {
        let dir = tempfile::tempdir().unwrap();
        let schema = batch.schema();
        let columns: Vec<(&str, DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect();
        let mut all = vec![("path", dir.path().to_str().unwrap()), ("format", format)];
        all.extend_from_slice(options);
        let t = table(&columns, &all);
        FilesystemConnector.validate(&t, false).unwrap();
        let mut sink = FilesystemConnector
            .create_sink(SinkContext {
                table: t.clone(),
                schema: t.physical_schema(),
                subtask: 0,
                parallelism: 1,
                updating: false,
            })
            .unwrap();
        sink.write(&batch.slice(0, 1)).unwrap();
        sink.write(&batch.slice(1, batch.num_rows() - 1)).unwrap();
        sink.finish().unwrap();
        FilesystemConnector.validate(&t, true).unwrap();
        let read = read_table(&t).0.unwrap();
        let read = arrow::compute::concat_batches(&t.physical_schema(), &read).unwrap();
        (batch, read)
    }

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
    fn csv_options_unescape_like_flink() {
        let t = table(
            &[("a", DataType::Int32)],
            &[
                ("path", "/tmp"),
                ("format", "csv"),
                ("csv.field-delimiter", "\\t"),
                ("csv.null-literal", "\\N"),
                ("csv.ignore-parse-errors", "true"),
            ],
        );
        let options = FilesystemOptions::from_table(&t).unwrap();
        let Format::Csv(csv) = options.format else {
            panic!("not csv")
        };
        assert_eq!(csv.delimiter, '\t');
        assert_eq!(csv.null_literal.as_deref(), Some("\\N"));
        assert!(csv.ignore_parse_errors);
        let t = table(
            &[("a", DataType::Int32)],
            &[
                ("path", "/tmp"),
                ("format", "csv"),
                ("csv.field-delimiter", ";;"),
            ],
        );
        assert!(FilesystemOptions::from_table(&t).is_err());
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

    #[test]
    fn memory_sizes_parse_like_flink() {
        assert_eq!(parse_memory_size("128MB"), Some(128 << 20));
        assert_eq!(parse_memory_size("64 kb"), Some(64 << 10));
        assert_eq!(parse_memory_size("1000"), Some(1000));
        assert_eq!(parse_memory_size("lots"), None);
    }
}
