//! Flink's `json` format: one JSON object per line, field names equal to column names
//! (case-sensitive), unknown fields ignored, a missing field null (or an error with
//! `json.fail-on-missing-field`).
//!
//! Values convert like Flink's `JsonToRowDataConverters`: numbers may also come as strings, a
//! STRING column takes any scalar's text (and a nested object or array as its JSON text),
//! timestamps are `yyyy-MM-dd HH:mm:ss[.fraction]` or ISO-8601 with `T`, TIMESTAMP_LTZ with
//! a trailing `Z`, bytes are base64. Written objects list every column in declared order,
//! nulls as `null`, NaN and infinities as strings like Jackson writes them.

mod parser;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use self::parser::{Json, Parser};
use super::JsonOptions;
use super::io_error;
use super::source::{FileReader, open_at};
use super::split::FilePosition;
use super::values::{
    ColumnReader, Kind, RowBuilder, Value, bad_value, format_value, kinds_of, parse_text,
};
use crate::error::{Error, Result};

/// Reads one JSON-lines file.
pub(crate) struct JsonReader {
    path: PathBuf,
    input: BufReader<File>,
    options: JsonOptions,
    schema: SchemaRef,
    kinds: Vec<Kind>,
    columns: HashMap<String, usize>,
    builder: RowBuilder,
    line: u64,
    /// Bytes read so far: where the next line starts.
    offset: u64,
    skipped: u64,
    done: bool,
    raw: Vec<u8>,
}

impl JsonReader {
    /// Open `path` to read from byte `offset`, which starts a line after `line` lines (0 and
    /// 0 for the whole file; other values come from [`FileReader::position`]).
    pub(crate) fn open(
        path: &Path,
        schema: SchemaRef,
        options: JsonOptions,
        offset: u64,
        line: u64,
    ) -> Result<Self> {
        let kinds = kinds_of(&schema).map_err(|message| Error::Format {
            path: path.to_path_buf(),
            line: 0,
            message,
        })?;
        let file = open_at(path, offset)?;
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(index, field)| (field.name().clone(), index))
            .collect();
        Ok(JsonReader {
            path: path.to_path_buf(),
            input: BufReader::new(file),
            options,
            builder: RowBuilder::new(schema.clone(), kinds.clone())?,
            schema,
            kinds,
            columns,
            line,
            offset,
            skipped: 0,
            done: false,
            raw: Vec::new(),
        })
    }

    /// Read the next non-blank line into `self.raw`; false at the end of the file.
    fn read_line(&mut self) -> Result<bool> {
        loop {
            self.raw.clear();
            let read = self
                .input
                .read_until(b'\n', &mut self.raw)
                .map_err(|e| io_error(&self.path, e))?;
            if read == 0 {
                return Ok(false);
            }
            self.line += 1;
            self.offset += read as u64;
            if !self.raw.iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }

    /// A line as one value per column.
    fn decode<'l>(&self, raw: &'l [u8]) -> Result<Vec<Value<'l>>, String> {
        let line =
            std::str::from_utf8(raw).map_err(|_| "the line is not valid UTF-8".to_string())?;
        let mut found: Vec<Option<Json<'l>>> = vec![None; self.kinds.len()];
        Parser::new(line.trim_end()).object(|name, value| {
            if let Some(index) = self.columns.get(name.as_ref()) {
                found[*index] = Some(value);
            }
        })?;
        let mut row = Vec::with_capacity(self.kinds.len());
        for ((json, kind), column) in found.into_iter().zip(&self.kinds).zip(self.schema.fields()) {
            let value = match json {
                None if self.options.fail_on_missing_field => {
                    return Err(format!("field `{}` is missing", column.name()));
                }
                None => Value::Null,
                Some(json) => convert(json, *kind).map_err(|(text, reason)| {
                    bad_value(column.name(), column.data_type(), &text, &reason)
                })?,
            };
            if matches!(value, Value::Null) && !column.is_nullable() {
                return Err(format!(
                    "column `{}` is NOT NULL but the value is null",
                    column.name()
                ));
            }
            row.push(value);
        }
        Ok(row)
    }

    fn reject(&mut self, message: String) -> Result<()> {
        if self.options.ignore_parse_errors {
            self.skipped += 1;
            tracing::debug!(path = %self.path.display(), line = self.line, %message, "skipping malformed JSON row");
            Ok(())
        } else {
            Err(Error::Format {
                path: self.path.clone(),
                line: self.line,
                message,
            })
        }
    }
}

/// A JSON value as a column value; the error is the value's text and the reason.
fn convert(json: Json<'_>, kind: Kind) -> Result<Value<'_>, (String, String)> {
    let misfit = |what: &str| format!("a JSON {what} does not fit the column");
    match json {
        Json::Null => Ok(Value::Null),
        Json::Bool(b) => match kind {
            Kind::Bool => Ok(Value::Bool(b)),
            Kind::Utf8 => Ok(Value::Str(Cow::Borrowed(if b { "true" } else { "false" }))),
            _ => Err((b.to_string(), misfit("boolean"))),
        },
        Json::Number(text) => match kind {
            Kind::Utf8 => Ok(Value::Str(Cow::Borrowed(text))),
            kind if is_numeric(kind) => {
                parse_text(kind, text).map_err(|reason| (text.to_string(), reason))
            }
            _ => Err((text.to_string(), misfit("number"))),
        },
        Json::Nested(text) => match kind {
            Kind::Utf8 => Ok(Value::Str(Cow::Borrowed(text))),
            _ => {
                let what = if text.starts_with('[') {
                    "array"
                } else {
                    "object"
                };
                Err((text.to_string(), misfit(what)))
            }
        },
        // A string is parsed from its text for any column type, as Flink does.
        Json::Str(Cow::Borrowed(text)) => {
            parse_text(kind, text).map_err(|reason| (format!("\"{text}\""), reason))
        }
        Json::Str(Cow::Owned(text)) => parse_text(kind, &text)
            .map(Value::into_static)
            .map_err(|reason| (format!("\"{text}\""), reason)),
    }
}

fn is_numeric(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Int8
            | Kind::Int16
            | Kind::Int32
            | Kind::Int64
            | Kind::Float32
            | Kind::Float64
            | Kind::Decimal { .. }
    )
}

impl FileReader for JsonReader {
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>> {
        while !self.done && self.builder.rows() < max_rows {
            if !self.read_line()? {
                self.done = true;
                break;
            }
            let raw = std::mem::take(&mut self.raw);
            let decoded = self.decode(&raw);
            match decoded {
                Ok(row) => self.builder.append(&row),
                Err(message) => self.reject(message)?,
            }
            self.raw = raw;
        }
        if self.builder.rows() == 0 {
            return Ok(None);
        }
        self.builder.finish().map(Some)
    }

    fn skipped_rows(&self) -> u64 {
        self.skipped
    }

    fn position(&self) -> Option<FilePosition> {
        // Every line read so far went into a returned batch (or was skipped as malformed).
        (!self.done).then_some(FilePosition::Text {
            offset: self.offset,
            line: self.line,
        })
    }
}

/// Writes batches as JSON lines.
pub(crate) struct JsonEncoder {
    options: JsonOptions,
    kinds: Vec<Kind>,
    /// Each column's name, already quoted and escaped, with the colon.
    keys: Vec<String>,
    scratch: String,
}

impl JsonEncoder {
    pub(crate) fn new(schema: &SchemaRef, options: JsonOptions) -> Result<Self, String> {
        let keys = schema
            .fields()
            .iter()
            .map(|field| {
                let mut key = String::new();
                push_json_string(field.name(), &mut key);
                key.push(':');
                key
            })
            .collect();
        Ok(JsonEncoder {
            options,
            kinds: kinds_of(schema)?,
            keys,
            scratch: String::new(),
        })
    }

    /// Append the batch's rows to `out`, one object per line.
    pub(crate) fn encode(&mut self, batch: &RecordBatch, out: &mut String) -> Result<()> {
        let columns = batch
            .columns()
            .iter()
            .zip(&self.kinds)
            .map(|(array, kind)| ColumnReader::new(array, *kind))
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            out.push('{');
            let mut first = true;
            for (column, key) in columns.iter().zip(&self.keys) {
                let value = column.value(row);
                if matches!(value, Value::Null) && self.options.ignore_null_fields {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(key);
                self.scratch.clear();
                format_value(
                    &value,
                    column.kind(),
                    self.options.iso_timestamps,
                    &mut self.scratch,
                );
                let bare = match value {
                    Value::Null => {
                        out.push_str("null");
                        continue;
                    }
                    Value::Bool(_) | Value::Int(_) | Value::Decimal(_) => true,
                    Value::Float32(v) => v.is_finite(),
                    Value::Float64(v) => v.is_finite(),
                    Value::Str(_) | Value::Bytes(_) | Value::Date(_) | Value::Timestamp(_) => false,
                };
                if bare {
                    out.push_str(&self.scratch);
                } else {
                    push_json_string(&self.scratch, out);
                }
            }
            out.push_str("}\n");
        }
        Ok(())
    }
}

/// `text` as a JSON string: quoted, with `"`, `\` and control characters escaped.
fn push_json_string(text: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int32Array, StringArray};
    use arrow::datatypes::{DataType, Int32Type};

    use super::*;
    use crate::connectors::filesystem::fixtures::{all_types_batch, read_table, round_trip, table};

    fn read_json(
        content: &str,
        columns: &[(&str, DataType)],
        options: &[(&str, &str)],
    ) -> (Result<Vec<RecordBatch>>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("input.json");
        std::fs::write(&file, content).unwrap();
        let mut all = vec![("path", file.to_str().unwrap()), ("format", "json")];
        all.extend_from_slice(options);
        read_table(&table(columns, &all))
    }

    #[test]
    fn json_round_trip_through_sink_and_source_reproduces_all_types_with_nulls() {
        let (written, read) = round_trip("json", &[], all_types_batch());
        assert_eq!(read, written);
    }

    #[test]
    fn json_round_trip_with_iso_timestamps() {
        let options = [("json.timestamp-format.standard", "ISO-8601")];
        let (written, read) = round_trip("json", &options, all_types_batch());
        assert_eq!(read, written);
    }

    #[test]
    fn json_missing_fields_are_null_and_names_are_case_sensitive() {
        let columns = [("id", DataType::Int32), ("Name", DataType::Utf8)];
        let content = "{\"id\": 1, \"name\": \"lower\", \"extra\": [1, {\"a\": null}]}\n\n{\"Name\": \"x\\u00e9\\n\", \"id\": \"2\"}\n";
        let (result, _) = read_json(content, &columns, &[]);
        let batches = result.unwrap();
        let batch = &batches[0];
        assert_eq!(
            batch.column(0).as_primitive::<Int32Type>(),
            &Int32Array::from(vec![1, 2])
        );
        assert_eq!(
            batch.column(1).as_string::<i32>(),
            &StringArray::from(vec![None, Some("xé\n")])
        );
    }

    #[test]
    fn json_fail_on_missing_field_names_the_field_and_line() {
        let columns = [("id", DataType::Int32), ("name", DataType::Utf8)];
        let content = "{\"id\": 1, \"name\": \"a\"}\n{\"id\": 2}\n";
        let (result, _) = read_json(content, &columns, &[("json.fail-on-missing-field", "true")]);
        let Err(Error::Format { line, message, .. }) = result else {
            panic!("expected a format error, got {result:?}")
        };
        assert_eq!(line, 2);
        assert!(message.contains("`name` is missing"), "{message}");
    }

    #[test]
    fn json_malformed_row_error_names_file_line_column_and_value() {
        let columns = [
            ("id", DataType::Int32),
            (
                "ts",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
            ),
        ];
        let content =
            "{\"id\": 1, \"ts\": \"2024-01-01 00:00:00\"}\n{\"id\": 2, \"ts\": \"yesterday\"}\n";
        let (result, _) = read_json(content, &columns, &[]);
        let Err(Error::Format {
            path,
            line,
            message,
        }) = result
        else {
            panic!("expected a format error, got {result:?}")
        };
        assert!(path.ends_with("input.json"));
        assert_eq!(line, 2);
        assert!(
            message.contains("column `ts`") && message.contains("yesterday"),
            "{message}"
        );
    }

    #[test]
    fn json_ignore_parse_errors_skips_and_counts_bad_rows() {
        let columns = [("id", DataType::Int32)];
        let content = "{\"id\": 1}\n{\"id\": }\nnot json\n{\"id\": 3000000000}\n{\"id\": 5}\n";
        let (result, skipped) =
            read_json(content, &columns, &[("json.ignore-parse-errors", "true")]);
        let ids: Vec<i32> = result
            .unwrap()
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int32Type>().values().to_vec())
            .collect();
        assert_eq!(ids, vec![1, 5]);
        assert_eq!(skipped, 3);
    }

    #[test]
    fn json_encoder_writes_flink_style_objects() {
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("s", DataType::Utf8, true),
            arrow::datatypes::Field::new("n", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                std::sync::Arc::new(StringArray::from(vec![Some("a\"b"), None])),
                std::sync::Arc::new(arrow::array::Float64Array::from(vec![
                    Some(f64::NAN),
                    Some(2.5),
                ])),
            ],
        )
        .unwrap();
        let mut encoder = JsonEncoder::new(&schema, JsonOptions::default()).unwrap();
        let mut out = String::new();
        encoder.encode(&batch, &mut out).unwrap();
        assert_eq!(
            out,
            "{\"s\":\"a\\\"b\",\"n\":\"NaN\"}\n{\"s\":null,\"n\":2.5}\n"
        );
    }

    #[test]
    fn json_lines_follow_flinks_json_format() {
        let batch = all_types_batch().slice(1, 2);
        let mut encoder = JsonEncoder::new(&batch.schema(), JsonOptions::default()).unwrap();
        let mut out = String::new();
        encoder.encode(&batch, &mut out).unwrap();
        let expected = [
            r#"{"b":false,"i8":0,"i16":-1,"i32":42,"i64":7,"f32":-3.5E-9,"f64":1.0E300,"d":-0.05,"#,
            r#""s":"with, comma and \"quotes\"\nand a new line","bin":"","dt":"0000-01-01","#,
            r#""ts":"1969-12-31 23:59:59.999","ltz":"1970-01-01 00:00:00.001Z"}"#,
            "\n",
            r#"{"b":null,"i8":null,"i16":null,"i32":null,"i64":null,"f32":null,"f64":null,"#,
            r#""d":null,"s":null,"bin":null,"dt":null,"ts":null,"ltz":null}"#,
            "\n",
        ];
        assert_eq!(out, expected.concat());
    }
}
