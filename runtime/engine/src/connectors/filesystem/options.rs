//! The connector's options, with Flink's names and defaults: `path`, `format`, the
//! `sink.rolling-policy.*` options, and the `csv.*` / `json.*` options of the chosen format
//! (options of another format are errors, as in Flink).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::TableDef;
use crate::connectors::ConnectorOptions;
use crate::error::{Error, Result};

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

pub(super) const ALL_KEYS: &[&str] = &[
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
    /// The `format` option's value.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Csv(_) => "csv",
            Format::Json(_) => "json",
            Format::Parquet => "parquet",
        }
    }

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

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;

    use super::*;
    use crate::connectors::filesystem::fixtures::table;

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
    fn memory_sizes_parse_like_flink() {
        assert_eq!(parse_memory_size("128MB"), Some(128 << 20));
        assert_eq!(parse_memory_size("64 kb"), Some(64 << 10));
        assert_eq!(parse_memory_size("1000"), Some(1000));
        assert_eq!(parse_memory_size("lots"), None);
    }
}
