//! Flink SQL column types and their Arrow types.
//!
//! TIMESTAMP and TIMESTAMP_LTZ are stored at millisecond precision ([`crate::types`]), so a
//! declared precision above 3 is refused rather than silently truncated. A bare `TIMESTAMP` /
//! `TIMESTAMP_LTZ` (precision 6 in Flink) is accepted and stored in milliseconds: it is what
//! scripts usually write for event times.

use arrow::datatypes::DataType;
use sqlparser::tokenizer::Token;

use super::ScriptParser;
use crate::error::{Error, Result, SqlLocation};
use crate::types;

/// The largest DECIMAL precision Flink (and Arrow's Decimal128) allows.
const MAX_DECIMAL_PRECISION: u64 = 38;
/// The largest TIMESTAMP precision Flink allows (nanoseconds).
const MAX_TIMESTAMP_PRECISION: u64 = 9;
/// The largest precision stored without loss (milliseconds).
const STORED_TIMESTAMP_PRECISION: u64 = 3;

impl ScriptParser<'_> {
    /// A column type: its Arrow type and its normalized Flink spelling (for messages).
    pub(super) fn data_type(&mut self) -> Result<(DataType, String)> {
        let at = self.here();
        let name = match &self.peek().token {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_uppercase(),
            _ => {
                return Err(
                    self.error_here(format!("expected a column type, found {}", self.found()))
                );
            }
        };
        self.advance();
        let simple = |data_type: DataType, sql: &str| Ok((data_type, sql.to_string()));
        match name.as_str() {
            "BOOLEAN" => simple(DataType::Boolean, "BOOLEAN"),
            "TINYINT" => simple(DataType::Int8, "TINYINT"),
            "SMALLINT" => simple(DataType::Int16, "SMALLINT"),
            "INT" | "INTEGER" => simple(DataType::Int32, "INT"),
            "BIGINT" => simple(DataType::Int64, "BIGINT"),
            "FLOAT" | "REAL" => simple(DataType::Float32, "FLOAT"),
            "DOUBLE" => {
                self.eat_word("PRECISION");
                simple(DataType::Float64, "DOUBLE")
            }
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let args = self.type_arguments(&name, 2)?;
                let precision = args.first().map_or(10, |a| a.0);
                let scale = args.get(1).map_or(0, |a| a.0);
                if !(1..=MAX_DECIMAL_PRECISION).contains(&precision) {
                    return Err(Error::sql(
                        args[0].1,
                        format!(
                            "DECIMAL precision must be between 1 and {MAX_DECIMAL_PRECISION}, \
                             got {precision}"
                        ),
                    ));
                }
                if scale > precision {
                    return Err(Error::sql(
                        args[1].1,
                        format!(
                            "DECIMAL scale must be between 0 and the precision {precision}, got \
                             {scale}"
                        ),
                    ));
                }
                // Both bounded by 38 above.
                let (p, s) = (precision as u8, scale as i8);
                Ok((DataType::Decimal128(p, s), format!("DECIMAL({p}, {s})")))
            }
            "STRING" => simple(DataType::Utf8, "STRING"),
            "VARCHAR" | "CHAR" | "CHARACTER" => {
                let base = if name == "VARCHAR" || self.eat_word("VARYING") {
                    "VARCHAR"
                } else {
                    "CHAR"
                };
                let length = self.length_argument(base)?;
                Ok((DataType::Utf8, with_length(base, length)))
            }
            "BYTES" => simple(DataType::Binary, "BYTES"),
            "VARBINARY" | "BINARY" => {
                let length = self.length_argument(&name)?;
                Ok((DataType::Binary, with_length(&name, length)))
            }
            "DATE" => simple(DataType::Date32, "DATE"),
            "TIMESTAMP" => {
                let precision = self.timestamp_precision(at)?;
                let sql = with_length("TIMESTAMP", precision);
                if self.peek_word("WITH") && self.peek_nth_word(1, "LOCAL") {
                    self.advance();
                    self.advance();
                    self.expect_word("TIME", "after WITH LOCAL")?;
                    self.expect_word("ZONE", "after WITH LOCAL TIME")?;
                    Ok((
                        types::timestamp_ltz_type(),
                        format!("{sql} WITH LOCAL TIME ZONE"),
                    ))
                } else if self.peek_word("WITH") && self.peek_nth_word(1, "TIME") {
                    Err(Error::unsupported(
                        at,
                        "TIMESTAMP WITH TIME ZONE is not supported; use TIMESTAMP_LTZ",
                    ))
                } else {
                    if self.eat_word("WITHOUT") {
                        self.expect_word("TIME", "after WITHOUT")?;
                        self.expect_word("ZONE", "after WITHOUT TIME")?;
                    }
                    Ok((types::timestamp_type(), sql))
                }
            }
            "TIMESTAMP_LTZ" => {
                let precision = self.timestamp_precision(at)?;
                Ok((
                    types::timestamp_ltz_type(),
                    with_length("TIMESTAMP_LTZ", precision),
                ))
            }
            "TIME" | "INTERVAL" | "ARRAY" | "MAP" | "MULTISET" | "ROW" | "RAW" | "VARIANT"
            | "STRUCTURED" => Err(Error::unsupported(
                at,
                format!("columns of type {name} are not supported yet"),
            )),
            _ => Err(Error::sql(at, format!("unknown type `{name}`"))),
        }
    }

    /// An optional `(n, …)` of at most `max` unsigned integers, each with its location.
    fn type_arguments(&mut self, type_name: &str, max: usize) -> Result<Vec<(u64, SqlLocation)>> {
        let mut args = Vec::new();
        if !self.eat(&Token::LParen) {
            return Ok(args);
        }
        loop {
            let at = self.here();
            let value = match &self.peek().token {
                Token::Number(n, _) => n.parse::<u64>().ok(),
                _ => None,
            };
            let Some(value) = value else {
                return Err(self.error_here(format!(
                    "expected a non-negative integer argument of {type_name}, found {}",
                    self.found()
                )));
            };
            self.advance();
            args.push((value, at));
            if args.len() > max {
                return Err(Error::sql(
                    at,
                    format!("{type_name} takes at most {max} argument(s)"),
                ));
            }
            if self.eat(&Token::Comma) {
                continue;
            }
            self.expect(&Token::RParen, "`,` or `)` after a type argument")?;
            return Ok(args);
        }
    }

    fn length_argument(&mut self, type_name: &str) -> Result<Option<u64>> {
        let args = self.type_arguments(type_name, 1)?;
        match args.first() {
            Some((0, at)) => Err(Error::sql(
                *at,
                format!("the length of {type_name} must be at least 1"),
            )),
            Some((n, _)) => Ok(Some(*n)),
            None => Ok(None),
        }
    }

    /// `[(p)]` after TIMESTAMP or TIMESTAMP_LTZ; precisions above milliseconds are refused.
    fn timestamp_precision(&mut self, at: SqlLocation) -> Result<Option<u64>> {
        let args = self.type_arguments("TIMESTAMP", 1)?;
        let Some(&(precision, precision_at)) = args.first() else {
            return Ok(None);
        };
        if precision > MAX_TIMESTAMP_PRECISION {
            return Err(Error::sql(
                precision_at,
                format!(
                    "TIMESTAMP precision must be between 0 and {MAX_TIMESTAMP_PRECISION}, got \
                     {precision}"
                ),
            ));
        }
        if precision > STORED_TIMESTAMP_PRECISION {
            return Err(Error::unsupported(
                at,
                format!(
                    "TIMESTAMP({precision}) is not supported: timestamps are stored with \
                     millisecond precision; declare TIMESTAMP(3)"
                ),
            ));
        }
        Ok(Some(precision))
    }
}

fn with_length(name: &str, length: Option<u64>) -> String {
    match length {
        Some(n) => format!("{name}({n})"),
        None => name.to_string(),
    }
}
