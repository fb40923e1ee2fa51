//! Flink's `blackhole` sink: accepts every row (inserts and changelog alike) and discards it.
//! Used to measure a job without the cost of a real sink.

use arrow::array::RecordBatch;

use crate::catalog::TableDef;
use crate::connectors::{Connector, ConnectorOptions, Sink, SinkContext};
use crate::error::{Error, Result};

pub struct BlackholeConnector;

impl Connector for BlackholeConnector {
    fn name(&self) -> &'static str {
        "blackhole"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &[]
    }

    fn validate(&self, table: &TableDef, as_source: bool) -> Result<()> {
        if as_source {
            return Err(Error::table_options(
                &table.name,
                "connector 'blackhole' can only be written to, not read",
            ));
        }
        ConnectorOptions::new(table).check_known(self.option_keys())
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    fn create_sink(&self, _ctx: SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(BlackholeSink))
    }
}

struct BlackholeSink;

impl Sink for BlackholeSink {
    fn write(&mut self, _batch: &RecordBatch) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::error::SqlLocation;

    fn table(options: &[(&str, &str)]) -> TableDef {
        TableDef {
            name: "sink".into(),
            columns: vec![],
            watermark: None,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            location: SqlLocation::default(),
        }
    }

    #[test]
    fn blackhole_takes_no_options_and_is_write_only() {
        let connector = BlackholeConnector;
        assert!(
            connector
                .validate(&table(&[("connector", "blackhole")]), false)
                .is_ok()
        );
        assert!(
            connector
                .validate(&table(&[("connector", "blackhole")]), true)
                .is_err()
        );
        let error = connector
            .validate(&table(&[("connector", "blackhole"), ("path", "x")]), false)
            .expect_err("unknown option");
        assert!(error.to_string().contains("'path'"), "{error}");
        assert!(connector.accepts_changelog());
    }
}
