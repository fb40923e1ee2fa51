//! Flink's `csv` format: no header, fields in declared column order, RFC 4180 quoting (a quote
//! inside a quoted field is doubled; a quoted field may span lines).
//!
//! Reading: an empty field is null for every type but STRING (where it is the empty string,
//! as in Flink) and a quoted `""` is an empty BYTES value; an unquoted field equal to
//! `csv.null-literal` is null; numbers and timestamps may be padded
//! with spaces; extra fields at the end of a row are ignored, missing ones are an error.
//! Empty lines, and with `csv.allow-comments` lines starting with `#`, are skipped.
//!
//! Writing: fields are quoted only when needed (they hold the delimiter, the quote, a line
//! break, are empty strings or bytes, or look like the null literal), nulls are empty (or the null
//! literal), lines end with `\n`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::CsvOptions;
use super::io_error;
use super::source::{FileReader, open_at};
use super::split::FilePosition;
use super::values::{
    ColumnReader, Kind, RowBuilder, Value, bad_value, format_value, kinds_of, parse_text,
};
use crate::error::{Error, Result};

/// Reads one CSV file.
pub(crate) struct CsvReader {
    path: PathBuf,
    input: BufReader<File>,
    options: CsvOptions,
    schema: SchemaRef,
    kinds: Vec<Kind>,
    builder: RowBuilder,
    /// Physical lines read so far.
    line: u64,
    /// Bytes read so far: where the next record starts.
    offset: u64,
    skipped: u64,
    done: bool,
    raw: Vec<u8>,
    record: Record,
}

/// The fields of one record: their unquoted text back to back, and where each one is.
#[derive(Default)]
struct Record {
    text: String,
    fields: Vec<Field>,
    field_start: usize,
    quoted: bool,
    in_quotes: bool,
    after_quote: bool,
}

struct Field {
    start: usize,
    end: usize,
    quoted: bool,
}

impl Record {
    fn clear(&mut self) {
        self.text.clear();
        self.fields.clear();
        self.field_start = 0;
        self.quoted = false;
        self.in_quotes = false;
        self.after_quote = false;
    }

    fn end_field(&mut self) {
        self.fields.push(Field {
            start: self.field_start,
            end: self.text.len(),
            quoted: self.quoted,
        });
        self.field_start = self.text.len();
        self.quoted = false;
        self.after_quote = false;
    }

    /// Add one physical line; true when the record is complete, false when a quoted field
    /// goes on to the next line.
    fn add_line(&mut self, line: &str, options: &CsvOptions) -> Result<bool, String> {
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if self.in_quotes {
                if Some(c) == options.quote {
                    if chars.peek().copied() == options.quote {
                        chars.next();
                        self.text.push(c);
                    } else {
                        self.in_quotes = false;
                        self.after_quote = true;
                    }
                } else {
                    self.text.push(c);
                }
            } else if c == options.delimiter {
                self.end_field();
            } else if self.after_quote {
                if c != ' ' && c != '\t' {
                    return Err(format!(
                        "unexpected '{c}' after the closing quote of field {}",
                        self.fields.len() + 1
                    ));
                }
            } else if Some(c) == options.quote && self.text.len() == self.field_start {
                self.in_quotes = true;
                self.quoted = true;
            } else {
                self.text.push(c);
            }
        }
        if self.in_quotes {
            self.text.push('\n');
            return Ok(false);
        }
        self.end_field();
        Ok(true)
    }
}

impl CsvReader {
    /// Open `path` to read from byte `offset`, which starts a record after `line` physical
    /// lines (0 and 0 for the whole file; other values come from [`FileReader::position`]).
    pub(crate) fn open(
        path: &Path,
        schema: SchemaRef,
        options: CsvOptions,
        offset: u64,
        line: u64,
    ) -> Result<Self> {
        let kinds = kinds_of(&schema).map_err(|message| Error::Format {
            path: path.to_path_buf(),
            line: 0,
            message,
        })?;
        let file = open_at(path, offset)?;
        Ok(CsvReader {
            path: path.to_path_buf(),
            input: BufReader::new(file),
            options,
            builder: RowBuilder::new(schema.clone(), kinds.clone())?,
            schema,
            kinds,
            line,
            offset,
            skipped: 0,
            done: false,
            raw: Vec::new(),
            record: Record::default(),
        })
    }

    /// Read the next record into `self.record`: `Ok(None)` at the end of the file, else the
    /// record's first line, or that line and why the record cannot be split.
    fn read_record(&mut self) -> Result<Option<std::result::Result<u64, (u64, String)>>> {
        self.record.clear();
        let mut start = None;
        loop {
            self.raw.clear();
            let read = self
                .input
                .read_until(b'\n', &mut self.raw)
                .map_err(|e| io_error(&self.path, e))?;
            if read == 0 {
                return Ok(start.map(|line| Err((line, "unterminated quoted field".to_string()))));
            }
            self.line += 1;
            self.offset += read as u64;
            let mut bytes = self.raw.as_slice();
            if let Some(rest) = bytes.strip_suffix(b"\n") {
                bytes = rest;
            }
            if let Some(rest) = bytes.strip_suffix(b"\r") {
                bytes = rest;
            }
            let first = *start.get_or_insert(self.line);
            let Ok(line) = std::str::from_utf8(bytes) else {
                return Ok(Some(Err((first, "the line is not valid UTF-8".into()))));
            };
            if first == self.line
                && (line.is_empty() || self.options.allow_comments && line.starts_with('#'))
            {
                start = None;
                continue;
            }
            match self.record.add_line(line, &self.options) {
                Ok(true) => return Ok(Some(Ok(first))),
                Ok(false) => continue,
                Err(message) => return Ok(Some(Err((first, message)))),
            }
        }
    }

    /// The record as one value per column.
    fn decode<'r>(
        record: &'r Record,
        kinds: &[Kind],
        schema: &SchemaRef,
        options: &CsvOptions,
    ) -> Result<Vec<Value<'r>>, String> {
        if record.fields.len() < kinds.len() {
            return Err(format!(
                "expected {} fields but found {}",
                kinds.len(),
                record.fields.len()
            ));
        }
        let mut row = Vec::with_capacity(kinds.len());
        for ((field, kind), column) in record.fields.iter().zip(kinds).zip(schema.fields()) {
            let text = &record.text[field.start..field.end];
            // A quoted empty field is an empty STRING or BYTES value; otherwise empty is null.
            let is_null = !field.quoted && options.null_literal.as_deref() == Some(text)
                || text.is_empty()
                    && *kind != Kind::Utf8
                    && !(field.quoted && *kind == Kind::Binary);
            let value = if is_null {
                Value::Null
            } else {
                parse_text(*kind, text)
                    .map_err(|reason| bad_value(column.name(), column.data_type(), text, &reason))?
            };
            if matches!(value, Value::Null) && !column.is_nullable() {
                return Err(format!(
                    "column `{}` is NOT NULL but the field is empty",
                    column.name()
                ));
            }
            row.push(value);
        }
        Ok(row)
    }

    fn reject(&mut self, line: u64, message: String) -> Result<()> {
        if self.options.ignore_parse_errors {
            self.skipped += 1;
            tracing::debug!(path = %self.path.display(), line, %message, "skipping malformed CSV row");
            Ok(())
        } else {
            Err(Error::Format {
                path: self.path.clone(),
                line,
                message,
            })
        }
    }
}

impl FileReader for CsvReader {
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>> {
        while !self.done && self.builder.rows() < max_rows {
            match self.read_record()? {
                None => self.done = true,
                Some(Ok(line)) => {
                    let decoded =
                        Self::decode(&self.record, &self.kinds, &self.schema, &self.options);
                    match decoded {
                        Ok(row) => self.builder.append(&row),
                        Err(message) => self.reject(line, message)?,
                    }
                }
                Some(Err((line, message))) => self.reject(line, message)?,
            }
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
        // Every record read so far went into a returned batch (or was skipped as malformed).
        (!self.done).then_some(FilePosition::Text {
            offset: self.offset,
            line: self.line,
        })
    }
}

/// Writes batches as CSV lines.
pub(crate) struct CsvEncoder {
    options: CsvOptions,
    kinds: Vec<Kind>,
    scratch: String,
}

impl CsvEncoder {
    pub(crate) fn new(schema: &SchemaRef, options: CsvOptions) -> Result<Self, String> {
        Ok(CsvEncoder {
            options,
            kinds: kinds_of(schema)?,
            scratch: String::new(),
        })
    }

    /// Append the batch's rows to `out`, one line each.
    pub(crate) fn encode(&mut self, batch: &RecordBatch, out: &mut String) -> Result<()> {
        let columns = batch
            .columns()
            .iter()
            .zip(&self.kinds)
            .map(|(array, kind)| ColumnReader::new(array, *kind))
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            let line_start = out.len();
            for (index, column) in columns.iter().enumerate() {
                if index > 0 {
                    out.push(self.options.delimiter);
                }
                let value = column.value(row);
                if matches!(value, Value::Null) {
                    if let Some(null) = &self.options.null_literal {
                        out.push_str(null);
                    }
                    continue;
                }
                self.scratch.clear();
                format_value(&value, column.kind(), false, &mut self.scratch);
                self.push_field(index, column.kind(), out);
            }
            if out.len() == line_start
                && let Some(quote) = self.options.quote
            {
                // An empty line would be skipped when read back: keep the row.
                out.push(quote);
                out.push(quote);
            }
            out.push('\n');
        }
        Ok(())
    }

    fn push_field(&self, index: usize, kind: Kind, out: &mut String) {
        let text = self.scratch.as_str();
        let options = &self.options;
        let Some(quote) = options.quote else {
            out.push_str(text);
            return;
        };
        let needs_quotes = text
            .chars()
            .any(|c| c == options.delimiter || c == quote || c == '\n' || c == '\r')
            || text.is_empty() && matches!(kind, Kind::Utf8 | Kind::Binary)
            || options.null_literal.as_deref() == Some(text)
            || index == 0 && options.allow_comments && text.starts_with('#');
        if !needs_quotes {
            out.push_str(text);
            return;
        }
        out.push(quote);
        for c in text.chars() {
            if c == quote {
                out.push(quote);
            }
            out.push(c);
        }
        out.push(quote);
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int32Array, StringArray};
    use arrow::datatypes::{DataType, Int32Type};

    use super::*;
    use crate::connectors::filesystem::fixtures::{all_types_batch, read_table, round_trip, table};

    fn read_csv(
        content: &str,
        columns: &[(&str, DataType)],
        options: &[(&str, &str)],
    ) -> (Result<Vec<RecordBatch>>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("input.csv");
        std::fs::write(&file, content).unwrap();
        let mut all = vec![("path", file.to_str().unwrap()), ("format", "csv")];
        all.extend_from_slice(options);
        read_table(&table(columns, &all))
    }

    #[test]
    fn csv_round_trip_through_sink_and_source_reproduces_all_types_with_nulls() {
        let (written, read) = round_trip("csv", &[], all_types_batch());
        // Without a null literal, Flink's csv cannot tell a null STRING from an empty one.
        let s = written.schema().index_of("s").unwrap();
        let strings: StringArray = written
            .column(s)
            .as_string::<i32>()
            .iter()
            .map(|v| Some(v.unwrap_or("")))
            .collect();
        let mut expected = written.columns().to_vec();
        expected[s] = std::sync::Arc::new(strings);
        assert_eq!(
            read,
            RecordBatch::try_new(written.schema(), expected).unwrap()
        );
    }

    #[test]
    fn csv_round_trip_keeps_null_strings_with_a_null_literal() {
        let (written, read) = round_trip("csv", &[("csv.null-literal", "\\N")], all_types_batch());
        assert_eq!(read, written);
    }

    #[test]
    fn csv_malformed_row_error_names_file_line_column_and_value() {
        let columns = [("id", DataType::Int32), ("name", DataType::Utf8)];
        let (result, _) = read_csv("1,a\n\"2\",\"b\nc\"\n\n3x,c\n", &columns, &[]);
        let Err(Error::Format {
            path,
            line,
            message,
        }) = result
        else {
            panic!("expected a format error, got {result:?}")
        };
        assert!(path.ends_with("input.csv"));
        assert_eq!(line, 5);
        assert!(
            message.contains("column `id`") && message.contains("'3x'"),
            "{message}"
        );
        assert!(message.contains("INT"), "{message}");
    }

    #[test]
    fn csv_ignore_parse_errors_skips_and_counts_bad_rows() {
        let columns = [("id", DataType::Int32), ("name", DataType::Utf8)];
        let content = "1,a\nnope,b\n3\n4,\"d\"x\n5,e\n";
        let (result, skipped) = read_csv(content, &columns, &[("csv.ignore-parse-errors", "true")]);
        let batches = result.unwrap();
        let ids: Vec<i32> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int32Type>().values().to_vec())
            .collect();
        assert_eq!(ids, vec![1, 5]);
        assert_eq!(skipped, 3);
    }

    #[test]
    fn csv_quoting_comments_and_empty_fields_read_like_flink() {
        let columns = [("id", DataType::Int32), ("name", DataType::Utf8)];
        let content = "# a comment\n1,\"x, \"\"y\"\"\"\n,\n3,plain,extra\n";
        let (result, _) = read_csv(content, &columns, &[("csv.allow-comments", "true")]);
        let batches = result.unwrap();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(
            batch.column(0).as_primitive::<Int32Type>(),
            &Int32Array::from(vec![Some(1), None, Some(3)])
        );
        assert_eq!(
            batch.column(1).as_string::<i32>(),
            &StringArray::from(vec!["x, \"y\"", "", "plain"])
        );
    }

    #[test]
    fn csv_encoder_quotes_only_when_needed() {
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("s", DataType::Utf8, true),
            arrow::datatypes::Field::new("n", DataType::Int32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                std::sync::Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b,c"),
                    Some("say \"hi\""),
                    Some(""),
                    None,
                ])),
                std::sync::Arc::new(Int32Array::from(vec![
                    Some(1),
                    None,
                    Some(3),
                    Some(4),
                    None,
                ])),
            ],
        )
        .unwrap();
        let mut encoder = CsvEncoder::new(&schema, CsvOptions::default()).unwrap();
        let mut out = String::new();
        encoder.encode(&batch, &mut out).unwrap();
        assert_eq!(out, "a,1\n\"b,c\",\n\"say \"\"hi\"\"\",3\n\"\",4\n,\n");
    }

    #[test]
    fn csv_unterminated_quote_is_reported_at_its_first_line() {
        let columns = [("id", DataType::Int32), ("name", DataType::Utf8)];
        let (result, _) = read_csv("1,a\n2,\"open\nstill open\n", &columns, &[]);
        let Err(Error::Format { line, message, .. }) = result else {
            panic!("expected a format error, got {result:?}")
        };
        assert_eq!(line, 2);
        assert!(message.contains("unterminated"), "{message}");
    }

    #[test]
    fn csv_lines_follow_flinks_csv_format() {
        let batch = all_types_batch();
        let mut encoder = CsvEncoder::new(&batch.schema(), CsvOptions::default()).unwrap();
        let mut out = String::new();
        encoder.encode(&batch, &mut out).unwrap();
        let expected = [
            "true,-128,-32768,-2147483648,-9223372036854775808,0.1,0.1,12.50,plain,AP9hYg==,\
             1970-01-01,2024-02-29 13:45:06.789,2024-02-29 13:45:06.78Z",
            "false,0,-1,42,7,-3.5E-9,1.0E300,-0.05,\"with, comma and \"\"quotes\"\"\nand a new line\",\"\",\
             0000-01-01,1969-12-31 23:59:59.999,1970-01-01 00:00:00.001Z",
            ",,,,,,,,,,,,",
            "true,127,32767,2147483647,9223372036854775807,3.4028235E38,-2.0,999999.99, 日本 ,eHl6,\
             2024-02-29,1970-01-01 00:00:00,1970-01-01 00:00:00Z",
        ];
        assert_eq!(out, format!("{}\n", expected.join("\n")));
    }
}
