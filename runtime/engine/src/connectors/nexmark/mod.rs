//! The Nexmark benchmark source: persons, auctions and bids of an online auction, generated as
//! nexmark-flink does (see [`generator`]), one `CREATE TABLE` per event type.
//!
//! Options:
//! - `table` (required): `person`, `auction` or `bid` — which events this table exposes. Its
//!   columns must be a subset of that table's columns ([`PERSON_DDL`], [`AUCTION_DDL`],
//!   [`BID_DDL`]; names case-insensitive), in any order; only those are generated.
//! - `events.num`: total events over all three types, numbered 0..events.num; absent or 0
//!   means unbounded (as in nexmark-flink).
//! - `first-event.rate`, `next-event.rate` (events per second, default 10000; `next` defaults
//!   to `first`), `rate.period` (default 600 s): event-time spacing, see [`generator`].
//! - `events.rate`: a wall-clock limit in events per second (all types counted) for the whole
//!   table, split over the subtasks; absent or 0 means as fast as possible.
//! - `person.proportion`, `auction.proportion`, `bid.proportion` (1, 3, 46).
//!
//! Parallel subtasks interleave whole cycles of the proportions ("epochs" of 50 events by
//! default): subtask `i` of `p` takes epochs `i, i + p, i + 2p, …`, so together they produce
//! exactly the single-subtask stream, every subtask sees all three types in proportion (none
//! sits idle holding back the watermark), and each subtask's event time advances steadily. A
//! table instance visits only the events of its own type.
//!
//! At a checkpoint each subtask records the next event number of its walk (see [`split`]);
//! a restore at any parallelism resumes exactly the events that were left, with the same
//! content and event times, and with `events.rate` the restored subtasks together keep the
//! table's rate (counted afresh from the restore, so there is no burst to catch up).

pub mod columns;
pub mod generator;
mod pools;
mod split;

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};

use crate::catalog::{ColumnKind, TableDef};
use crate::connectors::generate::{Throttle, make_batch};
use crate::connectors::{Connector, ConnectorOptions, Source, SourceContext, SourceEvent};
use crate::error::{Error, Result};
use crate::types::flink_type_name;

use columns::{Columns, EventKind};
use generator::{GeneratorConfig, Position};
use split::Split;

/// The `person` table as nexmark-flink declares it, with its 4-second watermark delay.
pub const PERSON_DDL: &str = "CREATE TABLE person (
    id BIGINT,
    name STRING,
    emailAddress STRING,
    creditCard STRING,
    city STRING,
    state STRING,
    dateTime TIMESTAMP(3),
    extra STRING,
    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
    'connector' = 'nexmark',
    'table' = 'person'
)";

/// The `auction` table as nexmark-flink declares it.
pub const AUCTION_DDL: &str = "CREATE TABLE auction (
    id BIGINT,
    itemName STRING,
    description STRING,
    initialBid BIGINT,
    reserve BIGINT,
    dateTime TIMESTAMP(3),
    expires TIMESTAMP(3),
    seller BIGINT,
    category BIGINT,
    extra STRING,
    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
    'connector' = 'nexmark',
    'table' = 'auction'
)";

/// The `bid` table as nexmark-flink declares it.
pub const BID_DDL: &str = "CREATE TABLE bid (
    auction BIGINT,
    bidder BIGINT,
    price BIGINT,
    channel STRING,
    url STRING,
    dateTime TIMESTAMP(3),
    extra STRING,
    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
    'connector' = 'nexmark',
    'table' = 'bid'
)";

const TABLE: &str = "table";
const EVENTS_NUM: &str = "events.num";
const FIRST_EVENT_RATE: &str = "first-event.rate";
const NEXT_EVENT_RATE: &str = "next-event.rate";
const RATE_PERIOD: &str = "rate.period";
const EVENTS_RATE: &str = "events.rate";
const PERSON_PROPORTION: &str = "person.proportion";
const AUCTION_PROPORTION: &str = "auction.proportion";
const BID_PROPORTION: &str = "bid.proportion";

const OPTION_KEYS: &[&str] = &[
    TABLE,
    EVENTS_NUM,
    FIRST_EVENT_RATE,
    NEXT_EVENT_RATE,
    RATE_PERIOD,
    EVENTS_RATE,
    PERSON_PROPORTION,
    AUCTION_PROPORTION,
    BID_PROPORTION,
];

const DEFAULT_EVENT_RATE: u64 = 10_000;
const DEFAULT_RATE_PERIOD_SEC: u64 = 600;

pub struct NexmarkConnector;

impl Connector for NexmarkConnector {
    fn name(&self) -> &'static str {
        "nexmark"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        OPTION_KEYS
    }

    fn validate(&self, table: &TableDef, as_source: bool) -> Result<()> {
        if !as_source {
            return Err(Error::table_options(
                &table.name,
                "connector 'nexmark' can only be read, not written",
            ));
        }
        let spec = NexmarkSpec::parse(table)?;
        let declared: Vec<(&str, &DataType)> = table
            .columns
            .iter()
            .filter_map(|c| match &c.kind {
                ColumnKind::Physical { data_type, .. } => Some((c.name.as_str(), data_type)),
                ColumnKind::Computed { .. } => None,
            })
            .collect();
        projection(&table.name, spec.kind, &declared).map(|_| ())
    }

    fn create_source(&self, ctx: SourceContext) -> Result<Box<dyn Source>> {
        let spec = NexmarkSpec::parse(&ctx.table)?;
        Ok(Box::new(NexmarkSource::new(spec, &ctx)?))
    }
}

/// A nexmark table's options, checked.
#[derive(Debug, Clone)]
struct NexmarkSpec {
    kind: EventKind,
    /// One past the last event number; `u64::MAX` when unbounded.
    end: u64,
    /// Wall-clock events per second for the whole table; 0 = unthrottled.
    events_rate: f64,
    config: GeneratorConfig,
}

impl NexmarkSpec {
    fn parse(table: &TableDef) -> Result<NexmarkSpec> {
        let options = ConnectorOptions::new(table);
        options.check_known(OPTION_KEYS)?;
        let error = |message: String| Error::table_options(&table.name, message);

        let raw = options.required(TABLE)?;
        let kind = match raw.trim().to_ascii_lowercase().as_str() {
            "person" => EventKind::Person,
            "auction" => EventKind::Auction,
            "bid" => EventKind::Bid,
            _ => {
                return Err(error(format!(
                    "option '{TABLE}' = '{raw}' must be 'person', 'auction' or 'bid'"
                )));
            }
        };
        let end = match options.parse::<u64>(EVENTS_NUM, "non-negative integer")? {
            None | Some(0) => u64::MAX,
            Some(n) => n,
        };
        let positive = |key: &str, default: u64| -> Result<u64> {
            match options.parse::<u64>(key, "positive integer")? {
                Some(0) => Err(error(format!("option '{key}' must be positive"))),
                value => Ok(value.unwrap_or(default)),
            }
        };
        let first_rate = positive(FIRST_EVENT_RATE, DEFAULT_EVENT_RATE)?;
        let next_rate = positive(NEXT_EVENT_RATE, first_rate)?;
        let rate_period = match options.duration(RATE_PERIOD)? {
            None => DEFAULT_RATE_PERIOD_SEC,
            Some(d) if d.as_secs() > 0 => d.as_secs(),
            Some(_) => {
                return Err(error(format!(
                    "option '{RATE_PERIOD}' must be at least 1 s"
                )));
            }
        };
        let events_rate = options.parse::<f64>(EVENTS_RATE, "number")?.unwrap_or(0.0);
        if !(events_rate >= 0.0 && events_rate.is_finite()) {
            return Err(error(format!(
                "option '{EVENTS_RATE}' must be 0 or positive"
            )));
        }
        let proportion = |key: &str, default: u64| -> Result<u64> {
            Ok(options
                .parse::<u64>(key, "non-negative integer")?
                .unwrap_or(default))
        };
        let proportions = (
            proportion(PERSON_PROPORTION, 1)?,
            proportion(AUCTION_PROPORTION, 3)?,
            proportion(BID_PROPORTION, 46)?,
        );
        let total = proportions
            .0
            .checked_add(proportions.1)
            .and_then(|s| s.checked_add(proportions.2));
        if total.is_none_or(|t| t == 0 || t > 1 << 32) {
            return Err(error(format!(
                "options '{PERSON_PROPORTION}', '{AUCTION_PROPORTION}' and '{BID_PROPORTION}' \
                 must add up to between 1 and 2^32"
            )));
        }
        Ok(NexmarkSpec {
            kind,
            end,
            events_rate,
            config: GeneratorConfig::new(proportions, first_rate, next_rate, rate_period),
        })
    }
}

/// For each declared column (name, type), its index among the Nexmark table's columns.
fn projection(table: &str, kind: EventKind, declared: &[(&str, &DataType)]) -> Result<Vec<usize>> {
    let columns = kind.columns();
    declared
        .iter()
        .map(|(name, data_type)| {
            let index = columns
                .iter()
                .position(|(column, _)| column.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let listed: Vec<String> = columns
                        .iter()
                        .map(|(c, t)| format!("{c} {}", t.sql_name()))
                        .collect();
                    Error::table_options(
                        table,
                        format!(
                            "column '{name}' is not a column of nexmark table '{}'; its \
                             columns are: {}",
                            kind.name(),
                            listed.join(", ")
                        ),
                    )
                })?;
            let (column, expected) = columns[index];
            if !expected.accepts(data_type) {
                return Err(Error::table_options(
                    table,
                    format!(
                        "column '{name}' is declared {} but nexmark's '{}.{column}' is {}",
                        flink_type_name(data_type),
                        kind.name(),
                        expected.sql_name()
                    ),
                ));
            }
            Ok(index)
        })
        .collect()
}

struct NexmarkSource {
    table: String,
    schema: SchemaRef,
    kind: EventKind,
    config: GeneratorConfig,
    /// For each output column, its index among the table's columns.
    projection: Vec<usize>,
    columns: Columns,
    /// The walks this subtask generates, none exhausted: one on a fresh start, any number
    /// after a rescaled restore.
    splits: Vec<Split>,
    batch_size: usize,
    throttle: Option<Throttle>,
}

impl NexmarkSource {
    fn new(spec: NexmarkSpec, ctx: &SourceContext) -> Result<NexmarkSource> {
        let declared: Vec<(&str, &DataType)> = ctx
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        let projection = projection(&ctx.table.name, spec.kind, &declared)?;
        let mut wanted = vec![false; spec.kind.columns().len()];
        for index in &projection {
            wanted[*index] = true;
        }
        let batch_size = ctx.batch_size.max(1);
        let splits = match &ctx.restored_splits {
            // A type with proportion 0 has no events, and its walk would be meaningless.
            None if spec.config.proportion(spec.kind) == 0 => Vec::new(),
            None => vec![Split::initial(
                &spec.config,
                spec.kind,
                ctx.subtask,
                ctx.parallelism,
                spec.end,
            )],
            Some(values) => values
                .iter()
                .map(|value| Split::from_json(&ctx.table.name, spec.kind, &spec.config, value))
                .collect::<Result<Vec<_>>>()?,
        };
        let splits: Vec<Split> = splits.into_iter().filter(Split::has_next).collect();
        // `events.rate` counts events of all types over the whole table; each split walks a
        // share of them, and this table emits its type's share of those. Summing over the
        // splits keeps the table's total rate after a rescaled restore.
        let kind_share =
            spec.config.proportion(spec.kind) as f64 / spec.config.total_proportion() as f64;
        let split_share: f64 = splits.iter().map(Split::share).sum();
        Ok(NexmarkSource {
            table: ctx.table.name.clone(),
            schema: Arc::clone(&ctx.schema),
            kind: spec.kind,
            columns: Columns::new(spec.kind, &wanted, batch_size),
            splits,
            config: spec.config,
            projection,
            batch_size,
            throttle: Throttle::new(spec.events_rate * kind_share * split_share),
        })
    }

    /// Generate up to `limit` rows of this subtask's events, in event-number order over all
    /// its splits (so event time never goes back); returns how many it generated.
    fn generate(
        &mut self,
        limit: usize,
        push: impl Fn(&GeneratorConfig, Position, &mut Columns),
    ) -> usize {
        let mut rows = 0;
        while rows < limit {
            // The split whose next event comes first runs until another split's next event
            // or its end; with one split (the usual case) that is a plain loop.
            let Some(first) = (0..self.splits.len()).min_by_key(|i| self.splits[*i].next.event)
            else {
                break;
            };
            let until = self
                .splits
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != first)
                .map(|(_, split)| split.next.event)
                .fold(self.splits[first].end, u64::min);
            let split = &mut self.splits[first];
            // At least one event per round, so overlapping splits cannot stall the loop.
            loop {
                push(&self.config, split.next, &mut self.columns);
                split.next = self.config.advance(split.next, split.walk);
                rows += 1;
                if rows >= limit || split.next.event >= until {
                    break;
                }
            }
            if !split.has_next() {
                self.splits.swap_remove(first);
            }
        }
        rows
    }
}

impl Source for NexmarkSource {
    fn poll_next(&mut self) -> Result<SourceEvent> {
        if self.splits.is_empty() {
            return Ok(SourceEvent::End);
        }
        let limit = match &mut self.throttle {
            None => self.batch_size,
            Some(throttle) => match throttle.acquire(self.batch_size as u64) {
                0 => return Ok(SourceEvent::Pending),
                granted => granted as usize,
            },
        };
        let rows = match self.kind {
            EventKind::Person => self.generate(limit, GeneratorConfig::push_person),
            EventKind::Auction => self.generate(limit, GeneratorConfig::push_auction),
            EventKind::Bid => self.generate(limit, GeneratorConfig::push_bid),
        };
        let arrays = self
            .projection
            .iter()
            .zip(self.schema.fields())
            .map(|(index, field)| self.columns.finish(*index, field.data_type()))
            .collect::<Result<Vec<_>>>()?;
        Ok(SourceEvent::Batch(make_batch(&self.schema, arrays, rows)?))
    }

    /// One split per walk with events left, ordered by next event; empty once all are done.
    fn snapshot_splits(&mut self) -> Result<Vec<serde_json::Value>> {
        let mut splits = self.splits.clone();
        splits.sort_by_key(|split| split.next.event);
        tracing::debug!(table = %self.table, splits = splits.len(), "nexmark position recorded");
        Ok(splits
            .into_iter()
            .map(|split| split.to_json(self.kind, &self.config))
            .collect())
    }
}

#[cfg(test)]
mod tests;
