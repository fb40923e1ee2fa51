//! Flink's `datagen` source: rows of random or sequential values, for demos, tests and
//! benchmarks.
//!
//! Options (Flink's names and defaults):
//! - `rows-per-second` (default 10000): the rate of the whole table, split evenly over the
//!   parallel subtasks. **Weir extension:** a value of 0 or below means unthrottled (Flink has no
//!   such setting), which benchmarks use. As in Flink, a subtask held back (back-pressure,
//!   watermark alignment) stores up at most a second's rows, then goes on at the rate.
//! - `number-of-rows`: the total number of rows (divided over the subtasks, the remainder going
//!   to the first ones); absent means unbounded unless a sequence field bounds the source.
//! - `fields.#.kind`: `random` (default) or `sequence`.
//! - `fields.#.start`, `fields.#.end`: the inclusive bounds of a sequence (both required).
//!   Subtask `i` of `p` emits `start + i, start + i + p, …` like Flink's `SequenceGenerator`, so
//!   the subtasks together emit each value once. As in Flink, the source ends when the first
//!   sequence field runs out (or `number-of-rows` is reached, whichever comes first).
//! - `fields.#.min`, `fields.#.max`: bounds of random numbers (default: the type's range; for
//!   `FLOAT`/`DOUBLE`/`DECIMAL` Flink's `MIN_VALUE..MAX_VALUE`, i.e. effectively non-negative).
//! - `fields.#.length` (strings, default 100 or the `VARCHAR(n)` length), `fields.#.var-len`
//!   (random length in `1..=length`), `fields.#.null-rate` (fraction of nulls, default 0),
//!   `fields.#.max-past` (timestamps: now minus a random duration up to this, default 0).
//!
//! Random strings are lowercase hex like Flink's. Random timestamps are wall-clock based; all
//! other values come from a seeded `SmallRng` per column and subtask, so a run with the same
//! parallelism repeats exactly (whatever the batch sizes). `DATE` columns hold today's date, as
//! in Flink. Sequences work for the integer types, `FLOAT`, `DOUBLE`, `DECIMAL` and `STRING`.

mod source;

use arrow::datatypes::{DataType, TimeUnit};

use crate::catalog::{ColumnKind, TableDef};
use crate::connectors::{Connector, ConnectorOptions, Source, SourceContext};
use crate::error::{Error, Result};
use crate::types::flink_type_name;

const ROWS_PER_SECOND: &str = "rows-per-second";
const NUMBER_OF_ROWS: &str = "number-of-rows";
const DEFAULT_ROWS_PER_SECOND: i64 = 10_000;
const DEFAULT_STRING_LENGTH: usize = 100;

const KIND: &str = "kind";
const START: &str = "start";
const END: &str = "end";
const MIN: &str = "min";
const MAX: &str = "max";
const MAX_PAST: &str = "max-past";
const LENGTH: &str = "length";
const VAR_LEN: &str = "var-len";
const NULL_RATE: &str = "null-rate";

const OPTION_KEYS: &[&str] = &[
    ROWS_PER_SECOND,
    NUMBER_OF_ROWS,
    "fields.#.kind",
    "fields.#.start",
    "fields.#.end",
    "fields.#.min",
    "fields.#.max",
    "fields.#.max-past",
    "fields.#.length",
    "fields.#.var-len",
    "fields.#.null-rate",
];

const SUPPORTED_TYPES: &str = "BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, \
     DECIMAL(p, s), STRING, TIMESTAMP(3), TIMESTAMP_LTZ(3), DATE";

pub struct DatagenConnector;

impl Connector for DatagenConnector {
    fn name(&self) -> &'static str {
        "datagen"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        OPTION_KEYS
    }

    fn validate(&self, table: &TableDef, as_source: bool) -> Result<()> {
        if !as_source {
            return Err(Error::table_options(
                &table.name,
                "connector 'datagen' can only be read, not written",
            ));
        }
        DatagenSpec::parse(table).map(|_| ())
    }

    fn create_source(&self, ctx: SourceContext) -> Result<Box<dyn Source>> {
        let spec = DatagenSpec::parse(&ctx.table)?;
        Ok(Box::new(source::DatagenSource::new(spec, &ctx)?))
    }
}

/// A datagen table's options, checked and typed.
#[derive(Debug, Clone)]
struct DatagenSpec {
    table: String,
    rows_per_second: i64,
    number_of_rows: Option<u64>,
    /// One per physical column, in declared order.
    fields: Vec<FieldSpec>,
}

#[derive(Debug, Clone)]
struct FieldSpec {
    name: String,
    data_type: DataType,
    generator: Generator,
    null_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Generator {
    /// Integer steps from `start` to `end` inclusive, converted to the column type.
    Sequence {
        start: i64,
        end: i64,
    },
    Int {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    /// Bounds as unscaled values of the column's `DECIMAL(p, s)`.
    Decimal {
        min: i128,
        max: i128,
    },
    Bool,
    Hex {
        length: usize,
        var_len: bool,
    },
    /// Now minus a random duration up to `max_past_ms`.
    PastTimestamp {
        max_past_ms: i64,
    },
    Today,
}

impl DatagenSpec {
    fn parse(table: &TableDef) -> Result<DatagenSpec> {
        let options = ConnectorOptions::new(table);
        options.check_known(OPTION_KEYS)?;
        let error = |message: String| Error::table_options(&table.name, message);

        let rows_per_second = options
            .parse::<i64>(ROWS_PER_SECOND, "integer")?
            .unwrap_or(DEFAULT_ROWS_PER_SECOND);
        let number_of_rows = options.parse::<u64>(NUMBER_OF_ROWS, "non-negative integer")?;

        let physical: Vec<(&str, &DataType, &str)> = table
            .columns
            .iter()
            .filter_map(|c| match &c.kind {
                ColumnKind::Physical {
                    data_type,
                    sql_type,
                    ..
                } => Some((c.name.as_str(), data_type, sql_type.as_str())),
                ColumnKind::Computed { .. } => None,
            })
            .collect();

        // Every `fields.X.*` option must name a physical column.
        for key in table.options.keys() {
            let Some((field, _)) = field_option(key) else {
                continue;
            };
            if !physical
                .iter()
                .any(|(name, ..)| name.eq_ignore_ascii_case(field))
            {
                let names: Vec<&str> = physical.iter().map(|(name, ..)| *name).collect();
                return Err(error(format!(
                    "option '{key}' names no column '{field}'; the table's columns are: {}",
                    names.join(", ")
                )));
            }
        }

        let fields = physical
            .iter()
            .map(|(name, data_type, sql_type)| {
                FieldOptions { table, field: name }.parse(data_type, sql_type)
            })
            .collect::<Result<Vec<_>>>()?;

        Ok(DatagenSpec {
            table: table.name.clone(),
            rows_per_second,
            number_of_rows,
            fields,
        })
    }
}

/// Splits `fields.NAME.SUFFIX` into (NAME, SUFFIX).
fn field_option(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix("fields.")?
        .rsplit_once('.')
        .filter(|(field, suffix)| !field.is_empty() && !suffix.is_empty())
}

/// The `fields.NAME.*` options of one column.
struct FieldOptions<'a> {
    table: &'a TableDef,
    field: &'a str,
}

impl FieldOptions<'_> {
    fn key(&self, suffix: &str) -> String {
        format!("fields.{}.{suffix}", self.field)
    }

    fn error(&self, message: String) -> Error {
        Error::table_options(&self.table.name, message)
    }

    /// The raw value of `fields.NAME.suffix` (the column name matched case-insensitively) and
    /// the key as written.
    fn raw(&self, suffix: &str) -> Option<(&str, &str)> {
        self.table.options.iter().find_map(|(key, value)| {
            let (field, s) = field_option(key)?;
            (s == suffix && field.eq_ignore_ascii_case(self.field))
                .then_some((key.as_str(), value.as_str()))
        })
    }

    fn parse_as<T: std::str::FromStr>(&self, suffix: &str, what: &str) -> Result<Option<T>> {
        match self.raw(suffix) {
            None => Ok(None),
            Some((key, raw)) => {
                raw.trim().parse::<T>().map(Some).map_err(|_| {
                    self.error(format!("option '{key}' = '{raw}' is not a valid {what}"))
                })
            }
        }
    }

    fn required<T: std::str::FromStr>(&self, suffix: &str, what: &str, role: &str) -> Result<T> {
        self.parse_as(suffix, what)?.ok_or_else(|| {
            self.error(format!(
                "missing required option '{}' for {role} field '{}'",
                self.key(suffix),
                self.field
            ))
        })
    }

    /// Fail on a `fields.NAME.*` option that does not apply to this field's kind and type.
    fn check_applicable(&self, valid: &[&str], role: &str, type_name: &str) -> Result<()> {
        for (key, _) in self.table.options.iter() {
            let Some((field, suffix)) = field_option(key) else {
                continue;
            };
            if !field.eq_ignore_ascii_case(self.field) || valid.contains(&suffix) {
                continue;
            }
            let listed: Vec<String> = valid.iter().map(|s| self.key(s)).collect();
            return Err(self.error(format!(
                "option '{key}' does not apply to {role} field '{}' of type {type_name}; \
                 valid options for this field: {}",
                self.field,
                listed.join(", ")
            )));
        }
        Ok(())
    }

    fn parse(&self, data_type: &DataType, sql_type: &str) -> Result<FieldSpec> {
        let type_name = flink_type_name(data_type);
        if !is_supported(data_type) {
            return Err(self.error(format!(
                "column '{}' has type {sql_type}, which datagen cannot generate; \
                 supported types: {SUPPORTED_TYPES}",
                self.field
            )));
        }
        let kind = self.raw(KIND).map(|(_, v)| v.trim()).unwrap_or("random");
        let (generator, null_rate) = match kind.to_ascii_lowercase().as_str() {
            "sequence" => (self.sequence(data_type, &type_name)?, 0.0),
            "random" => self.random(data_type, sql_type, &type_name)?,
            _ => {
                return Err(self.error(format!(
                    "option '{}' = '{kind}' must be 'random' or 'sequence'",
                    self.key(KIND)
                )));
            }
        };
        Ok(FieldSpec {
            name: self.field.to_string(),
            data_type: data_type.clone(),
            generator,
            null_rate,
        })
    }

    fn sequence(&self, data_type: &DataType, type_name: &str) -> Result<Generator> {
        let sequenceable = matches!(
            data_type,
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal128(..)
                | DataType::Utf8
        );
        if !sequenceable {
            return Err(self.error(format!(
                "option '{}' = 'sequence' is not supported for column '{}' of type {type_name}; \
                 sequences work for TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL and \
                 STRING (use 'random'{})",
                self.key(KIND),
                self.field,
                if matches!(data_type, DataType::Timestamp(..)) {
                    " with 'max-past' for timestamps"
                } else {
                    ""
                }
            )));
        }
        self.check_applicable(&[KIND, START, END], "sequence", type_name)?;
        let start: i64 = self.required(START, "integer", "sequence")?;
        let end: i64 = self.required(END, "integer", "sequence")?;
        if start > end {
            return Err(self.error(format!(
                "option '{}' = '{start}' is greater than '{}' = '{end}'",
                self.key(START),
                self.key(END)
            )));
        }
        for (suffix, value) in [(START, start), (END, end)] {
            self.check_fits(data_type, type_name, suffix, value)?;
        }
        Ok(Generator::Sequence { start, end })
    }

    /// A sequence bound or random bound must be a value of the column's type.
    fn check_fits(
        &self,
        data_type: &DataType,
        type_name: &str,
        suffix: &str,
        value: i64,
    ) -> Result<()> {
        let fits = match data_type {
            DataType::Decimal128(precision, scale) => decimal_unscaled(value as f64, *scale)
                .is_some_and(|unscaled| {
                    unscaled.unsigned_abs() <= decimal_max_unscaled(*precision) as u128
                }),
            _ => integer_range(data_type).is_none_or(|(lo, hi)| (lo..=hi).contains(&value)),
        };
        if fits {
            Ok(())
        } else {
            Err(self.error(format!(
                "option '{}' = '{value}' is out of range for {type_name}",
                self.key(suffix)
            )))
        }
    }

    fn random(
        &self,
        data_type: &DataType,
        sql_type: &str,
        type_name: &str,
    ) -> Result<(Generator, f64)> {
        let (valid, generator): (&[&str], Generator) = match data_type {
            DataType::Boolean => (&[KIND, NULL_RATE], Generator::Bool),
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                self.check_applicable(&[KIND, MIN, MAX, NULL_RATE], "random", type_name)?;
                let (lo, hi) = integer_range(data_type).unwrap_or((i64::MIN, i64::MAX));
                let min = self.parse_as::<i64>(MIN, "integer")?.unwrap_or(lo);
                let max = self.parse_as::<i64>(MAX, "integer")?.unwrap_or(hi);
                self.check_fits(data_type, type_name, MIN, min)?;
                self.check_fits(data_type, type_name, MAX, max)?;
                self.check_order(min as f64, max as f64)?;
                (&[KIND, MIN, MAX, NULL_RATE], Generator::Int { min, max })
            }
            DataType::Float32 | DataType::Float64 => {
                self.check_applicable(&[KIND, MIN, MAX, NULL_RATE], "random", type_name)?;
                let (lo, hi) = match data_type {
                    DataType::Float32 => (f64::from(f32::from_bits(1)), f64::from(f32::MAX)),
                    _ => (f64::from_bits(1), f64::MAX),
                };
                let min = self.parse_as::<f64>(MIN, "number")?.unwrap_or(lo);
                let max = self.parse_as::<f64>(MAX, "number")?.unwrap_or(hi);
                if !min.is_finite() || !max.is_finite() || min < -hi || max > hi {
                    return Err(self.error(format!(
                        "options '{}' and '{}' must be finite {type_name} values",
                        self.key(MIN),
                        self.key(MAX)
                    )));
                }
                self.check_order(min, max)?;
                (&[KIND, MIN, MAX, NULL_RATE], Generator::Float { min, max })
            }
            DataType::Decimal128(precision, scale) => {
                self.check_applicable(&[KIND, MIN, MAX, NULL_RATE], "random", type_name)?;
                let min = self
                    .parse_as::<f64>(MIN, "number")?
                    .unwrap_or(f64::from_bits(1));
                let max = self.parse_as::<f64>(MAX, "number")?.unwrap_or(f64::MAX);
                self.check_order(min, max)?;
                // Like Flink's DecimalDataRandomGenerator: clamp to what the type can hold.
                let largest = decimal_max_unscaled(*precision);
                let clamp = |x: f64| {
                    decimal_unscaled(x, *scale)
                        .unwrap_or(if x < 0.0 { -largest } else { largest })
                        .clamp(-largest, largest)
                };
                let (min, max) = (clamp(min), clamp(max));
                (
                    &[KIND, MIN, MAX, NULL_RATE],
                    Generator::Decimal { min, max },
                )
            }
            DataType::Utf8 => {
                let default = declared_length(sql_type).unwrap_or(DEFAULT_STRING_LENGTH);
                let length = self.parse_as::<usize>(LENGTH, "length")?.unwrap_or(default);
                let var_len = match self.raw(VAR_LEN) {
                    None => false,
                    Some((key, raw)) => parse_bool(raw).ok_or_else(|| {
                        self.error(format!(
                            "option '{key}' = '{raw}' must be 'true' or 'false'"
                        ))
                    })?,
                };
                (
                    &[KIND, LENGTH, VAR_LEN, NULL_RATE],
                    Generator::Hex { length, var_len },
                )
            }
            DataType::Timestamp(..) => {
                let max_past = match self.raw(MAX_PAST) {
                    None => 0,
                    Some((key, raw)) => super::options::parse_duration(raw)
                        .and_then(|d| i64::try_from(d.as_millis()).ok())
                        .ok_or_else(|| {
                            self.error(format!(
                                "option '{key}' = '{raw}' is not a duration like '5s' or '200 ms'"
                            ))
                        })?,
                };
                (
                    &[KIND, MAX_PAST, NULL_RATE],
                    Generator::PastTimestamp {
                        max_past_ms: max_past,
                    },
                )
            }
            _ => (&[KIND], Generator::Today),
        };
        self.check_applicable(valid, "random", type_name)?;
        let null_rate = self.parse_as::<f64>(NULL_RATE, "number")?.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&null_rate) {
            return Err(self.error(format!(
                "option '{}' = '{null_rate}' must be between 0 and 1",
                self.key(NULL_RATE)
            )));
        }
        Ok((generator, null_rate))
    }

    fn check_order(&self, min: f64, max: f64) -> Result<()> {
        if min > max {
            let value = |suffix| self.raw(suffix).map(|(_, v)| v).unwrap_or("default");
            return Err(self.error(format!(
                "option '{}' = '{}' is greater than '{}' = '{}'",
                self.key(MIN),
                value(MIN),
                self.key(MAX),
                value(MAX)
            )));
        }
        Ok(())
    }
}

fn is_supported(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Millisecond, _)
    )
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The range of an integer type, `None` for the others.
fn integer_range(data_type: &DataType) -> Option<(i64, i64)> {
    match data_type {
        DataType::Int8 => Some((i8::MIN.into(), i8::MAX.into())),
        DataType::Int16 => Some((i16::MIN.into(), i16::MAX.into())),
        DataType::Int32 => Some((i32::MIN.into(), i32::MAX.into())),
        DataType::Int64 => Some((i64::MIN, i64::MAX)),
        _ => None,
    }
}

/// `10^precision - 1`: the largest unscaled value of a `DECIMAL(precision, _)`.
fn decimal_max_unscaled(precision: u8) -> i128 {
    10i128.saturating_pow(u32::from(precision.min(38))) - 1
}

/// `x` as an unscaled decimal of the given scale, rounded; `None` if it does not fit in i128.
fn decimal_unscaled(x: f64, scale: i8) -> Option<i128> {
    let scaled = (x * 10f64.powi(i32::from(scale))).round();
    (scaled.is_finite() && scaled.abs() < 1.0e38).then_some(scaled as i128)
}

/// The `n` of a declared `VARCHAR(n)` / `CHAR(n)`.
fn declared_length(sql_type: &str) -> Option<usize> {
    let upper = sql_type.trim().to_ascii_uppercase();
    let rest = upper
        .strip_prefix("VARCHAR")
        .or_else(|| upper.strip_prefix("CHAR"))?;
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner.trim().parse().ok()
}

#[cfg(test)]
mod tests;
