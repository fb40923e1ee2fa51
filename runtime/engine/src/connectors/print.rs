//! Flink's `print` sink: one line per row on standard output (or standard error), in the
//! `+I[1, foo, 2020-04-15T08:05]` form of [`super::format::write_row`].
//!
//! Lines carry Flink's prefix (`PrintSinkOutputWriter`): `print-identifier` followed by
//! `:{subtask + 1}` when the sink runs with parallelism above one, then `> `; without an
//! identifier a parallel sink prints `{subtask + 1}> ` and a single one prints no prefix.
//! Options: `print-identifier`, `standard-error` (default false).

use std::io::{BufWriter, Write};

use arrow::array::RecordBatch;

use crate::catalog::TableDef;
use crate::connectors::format::write_row;
use crate::connectors::{Connector, ConnectorOptions, Sink, SinkContext};
use crate::error::{Error, Result};

const PRINT_IDENTIFIER: &str = "print-identifier";
const STANDARD_ERROR: &str = "standard-error";

pub struct PrintConnector;

impl Connector for PrintConnector {
    fn name(&self) -> &'static str {
        "print"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &[PRINT_IDENTIFIER, STANDARD_ERROR]
    }

    fn validate(&self, table: &TableDef, as_source: bool) -> Result<()> {
        if as_source {
            return Err(Error::table_options(
                &table.name,
                "connector 'print' can only be written to, not read",
            ));
        }
        let options = ConnectorOptions::new(table);
        options.check_known(self.option_keys())?;
        options.bool(STANDARD_ERROR)?;
        Ok(())
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    fn create_sink(&self, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        self.validate(&ctx.table, false)?;
        let options = ConnectorOptions::new(&ctx.table);
        let target = if options.bool(STANDARD_ERROR)?.unwrap_or(false) {
            Target::Stderr
        } else {
            Target::Stdout
        };
        Ok(Box::new(PrintSink {
            table: ctx.table.name.clone(),
            prefix: line_prefix(options.get(PRINT_IDENTIFIER), ctx.subtask, ctx.parallelism),
            target,
            line: String::with_capacity(256),
        }))
    }
}

/// Flink's `PrintSinkOutputWriter` prefix for one subtask.
pub fn line_prefix(identifier: Option<&str>, subtask: usize, parallelism: usize) -> String {
    let mut prefix = identifier.unwrap_or_default().to_string();
    if parallelism > 1 {
        if !prefix.is_empty() {
            prefix.push(':');
        }
        prefix.push_str(&(subtask + 1).to_string());
    }
    if !prefix.is_empty() {
        prefix.push_str("> ");
    }
    prefix
}

enum Target {
    Stdout,
    Stderr,
    #[cfg(test)]
    Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

struct PrintSink {
    table: String,
    prefix: String,
    target: Target,
    /// One line, reused across rows.
    line: String,
}

impl PrintSink {
    fn write_lines(&mut self, out: impl Write, batch: &RecordBatch) -> std::io::Result<()> {
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        for row in 0..batch.num_rows() {
            self.line.clear();
            self.line.push_str(&self.prefix);
            write_row(batch, row, &mut self.line);
            self.line.push('\n');
            out.write_all(self.line.as_bytes())?;
        }
        out.flush()
    }
}

impl Sink for PrintSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let written = match &self.target {
            Target::Stdout => {
                let lock = std::io::stdout().lock();
                self.write_lines(lock, batch)
            }
            Target::Stderr => {
                let lock = std::io::stderr().lock();
                self.write_lines(lock, batch)
            }
            #[cfg(test)]
            Target::Capture(buffer) => {
                let buffer = std::sync::Arc::clone(buffer);
                let mut guard = buffer.lock().unwrap_or_else(|e| e.into_inner());
                self.write_lines(&mut *guard, batch)
            }
        };
        written.map_err(|e| Error::Connector {
            connector: "print".into(),
            table: self.table.clone(),
            message: format!("cannot write to standard output: {e}"),
        })
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use arrow::array::{ArrayRef, Int8Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::dataflow::message::{ROW_KIND_COLUMN, RowKind};

    #[test]
    fn prefix_follows_flink_print_sink_output_writer() {
        assert_eq!(line_prefix(None, 0, 1), "");
        assert_eq!(line_prefix(None, 2, 4), "3> ");
        assert_eq!(line_prefix(Some("out"), 0, 1), "out> ");
        assert_eq!(line_prefix(Some("out"), 1, 2), "out:2> ");
    }

    #[test]
    fn print_writes_one_flink_line_per_changelog_row() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(ROW_KIND_COLUMN, DataType::Int8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 1, 2])),
            Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
            Arc::new(Int8Array::from(vec![
                RowKind::Insert as i8,
                RowKind::UpdateAfter as i8,
                RowKind::Delete as i8,
            ])),
        ];
        let batch = RecordBatch::try_new(schema, columns).expect("valid batch");
        let captured = Arc::new(Mutex::new(Vec::new()));
        let mut sink = PrintSink {
            table: "out".into(),
            prefix: line_prefix(Some("q"), 1, 2),
            target: Target::Capture(Arc::clone(&captured)),
            line: String::new(),
        };
        sink.write(&batch).expect("write succeeds");
        sink.finish().expect("finish succeeds");
        let text = String::from_utf8(captured.lock().expect("not poisoned").clone())
            .expect("utf-8 output");
        assert_eq!(text, "q:2> +I[1, a]\nq:2> +U[1, b]\nq:2> -D[2, null]\n");
    }
}
