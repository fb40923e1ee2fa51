//! The arguments of a window function call, read from its tokens: `TABLE name [PARTITION BY
//! …]`, `DESCRIPTOR(column)` and day-time interval literals, each optionally named (`SIZE =>`).

use sqlparser::tokenizer::{Span, Token, TokenWithSpan};

use super::{is_word, word};
use crate::error::{Error, Result, SqlLocation};
use crate::sql::parser::sql_location;

#[derive(Debug)]
pub(super) enum ArgValue {
    Table {
        name: String,
        partition_by: Vec<String>,
        partition_location: Option<SqlLocation>,
    },
    Descriptor(String),
    /// Milliseconds.
    Interval(i64),
}

impl ArgValue {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            ArgValue::Table { .. } => "a TABLE argument",
            ArgValue::Descriptor(_) => "a DESCRIPTOR",
            ArgValue::Interval(_) => "an INTERVAL",
        }
    }
}

#[derive(Debug)]
pub(super) struct Arg {
    pub(super) name: Option<String>,
    pub(super) value: ArgValue,
    pub(super) location: SqlLocation,
}

/// A cursor over the tokens between the parentheses of the window function call.
pub(super) struct ArgCursor<'a> {
    pub(super) tokens: &'a [TokenWithSpan],
    pub(super) pos: usize,
    /// The closing parenthesis, for errors at the end of the arguments.
    pub(super) end: Span,
}

impl ArgCursor<'_> {
    fn peek(&self) -> Option<&TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    fn peek_nth(&self, n: usize) -> Option<&TokenWithSpan> {
        self.tokens.get(self.pos + n)
    }

    fn location(&self) -> SqlLocation {
        sql_location(self.peek().map_or(self.end.start, |t| t.span.start))
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::sql(self.location(), message)
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(t) => format!("`{}`", t.token),
            None => "`)`".into(),
        }
    }

    fn next_is(&self, token: &Token) -> bool {
        self.peek().is_some_and(|t| &t.token == token)
    }

    fn next_is_word(&self, name: &str) -> bool {
        is_word(self.peek(), name)
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<()> {
        if self.next_is(token) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", self.found())))
        }
    }

    fn identifier(&mut self, what: &str) -> Result<String> {
        match self.peek().and_then(word) {
            Some(w) => {
                let value = w.value.clone();
                self.pos += 1;
                Ok(value)
            }
            None => Err(self.error(format!("expected {what}, found {}", self.found()))),
        }
    }

    /// `a` or `a.b.c`, joined with dots.
    fn object_name(&mut self, what: &str) -> Result<String> {
        let mut name = self.identifier(what)?;
        while self.next_is(&Token::Period) {
            self.pos += 1;
            name.push('.');
            name.push_str(&self.identifier(what)?);
        }
        Ok(name)
    }

    pub(super) fn parse_args(mut self) -> Result<Vec<Arg>> {
        let mut args = Vec::new();
        if self.peek().is_none() {
            return Ok(args);
        }
        loop {
            args.push(self.parse_arg()?);
            match self.peek() {
                None => return Ok(args),
                Some(t) if t.token == Token::Comma => self.pos += 1,
                Some(_) => {
                    return Err(self.error(format!(
                        "expected `,` or `)` after a window function argument, found {}",
                        self.found()
                    )));
                }
            }
        }
    }

    fn parse_arg(&mut self) -> Result<Arg> {
        let location = self.location();
        let name = match (self.peek().and_then(word), self.peek_nth(1)) {
            (Some(w), Some(arrow)) if arrow.token == Token::RArrow => {
                let name = w.value.to_uppercase();
                self.pos += 2;
                Some(name)
            }
            _ => None,
        };
        let value = if self.next_is_word("TABLE") {
            self.pos += 1;
            self.table_arg()?
        } else if self.next_is_word("DESCRIPTOR") {
            self.pos += 1;
            self.expect(&Token::LParen, "`(` after DESCRIPTOR")?;
            let column = self.identifier("a time attribute column in DESCRIPTOR(...)")?;
            if self.next_is(&Token::Comma) {
                return Err(self.error("a window DESCRIPTOR names exactly one time column"));
            }
            self.expect(&Token::RParen, "`)` after the DESCRIPTOR column")?;
            ArgValue::Descriptor(column)
        } else if self.next_is_word("INTERVAL") {
            ArgValue::Interval(self.interval()?)
        } else {
            return Err(self.error(format!(
                "expected TABLE <name>, DESCRIPTOR(<column>) or an INTERVAL literal as a \
                 window function argument, found {}",
                self.found()
            )));
        };
        Ok(Arg {
            name,
            value,
            location,
        })
    }

    /// After `TABLE`: `name [PARTITION BY k1, k2 | PARTITION BY (k1, k2)]`.
    fn table_arg(&mut self) -> Result<ArgValue> {
        let name = self.object_name("a table name after TABLE")?;
        let mut partition_by = Vec::new();
        let mut partition_location = None;
        if self.next_is_word("PARTITION") {
            partition_location = Some(self.location());
            self.pos += 1;
            if !self.next_is_word("BY") {
                return Err(self.error(format!(
                    "expected BY after PARTITION, found {}",
                    self.found()
                )));
            }
            self.pos += 1;
            if self.next_is(&Token::LParen) {
                self.pos += 1;
                loop {
                    partition_by.push(self.identifier("a PARTITION BY column")?);
                    if self.next_is(&Token::Comma) {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.expect(&Token::RParen, "`)` after the PARTITION BY columns")?;
            } else {
                partition_by.push(self.identifier("a PARTITION BY column")?);
                // `k1, k2, DESCRIPTOR(ts)`: a comma continues the key list only when a plain
                // column name follows (not the next argument).
                while self.next_is(&Token::Comma) && self.is_partition_column(1) {
                    self.pos += 1;
                    partition_by.push(self.identifier("a PARTITION BY column")?);
                }
            }
        }
        Ok(ArgValue::Table {
            name,
            partition_by,
            partition_location,
        })
    }

    /// Whether the token `n` ahead is a column name continuing a PARTITION BY list.
    fn is_partition_column(&self, n: usize) -> bool {
        let Some(w) = self.peek_nth(n).and_then(word) else {
            return false;
        };
        let starts_argument = w.quote_style.is_none()
            && ["TABLE", "DESCRIPTOR", "INTERVAL"]
                .iter()
                .any(|k| w.value.eq_ignore_ascii_case(k));
        let followed_by = self.peek_nth(n + 1).map(|t| &t.token);
        !starts_argument && !matches!(followed_by, Some(Token::RArrow | Token::LParen))
    }

    /// `INTERVAL ['-']'value' unit [(p)] [TO unit [(p)]]`, in milliseconds.
    fn interval(&mut self) -> Result<i64> {
        self.pos += 1;
        let mut negative = false;
        if self.next_is(&Token::Minus) {
            negative = true;
            self.pos += 1;
        } else if self.next_is(&Token::Plus) {
            self.pos += 1;
        }
        let value_location = self.location();
        let value = match self.peek().map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => s.trim().to_string(),
            Some(Token::Number(n, _)) => n.clone(),
            _ => {
                return Err(self.error(format!(
                    "expected a quoted interval value like INTERVAL '10' SECOND, found {}",
                    self.found()
                )));
            }
        };
        self.pos += 1;
        let leading = self.unit()?;
        self.skip_precision()?;
        let trailing = if self.next_is_word("TO") {
            self.pos += 1;
            let unit = self.unit()?;
            self.skip_precision()?;
            Some(unit)
        } else {
            None
        };
        let millis = interval_millis(&value, leading, trailing)
            .map_err(|message| Error::sql(value_location, message))?;
        let millis = if negative { -millis } else { millis };
        Ok(millis)
    }

    fn unit(&mut self) -> Result<Unit> {
        let unit = self.peek().and_then(word).and_then(|w| {
            Some(match w.value.to_uppercase().as_str() {
                "DAY" | "DAYS" => Unit::Day,
                "HOUR" | "HOURS" => Unit::Hour,
                "MINUTE" | "MINUTES" => Unit::Minute,
                "SECOND" | "SECONDS" => Unit::Second,
                "MILLISECOND" | "MILLISECONDS" => Unit::Millisecond,
                "YEAR" | "YEARS" | "MONTH" | "MONTHS" => Unit::YearMonth,
                _ => return None,
            })
        });
        match unit {
            Some(Unit::YearMonth) => Err(self.error(
                "window sizes must be day-time intervals (DAY, HOUR, MINUTE, SECOND); \
                 YEAR and MONTH intervals are not allowed",
            )),
            Some(unit) => {
                self.pos += 1;
                Ok(unit)
            }
            None => Err(self.error(format!(
                "expected an interval unit (DAY, HOUR, MINUTE, SECOND), found {}",
                self.found()
            ))),
        }
    }

    /// An optional `(p)` or `(p, s)` after an interval unit.
    fn skip_precision(&mut self) -> Result<()> {
        if !self.next_is(&Token::LParen) {
            return Ok(());
        }
        self.pos += 1;
        loop {
            match self.peek().map(|t| &t.token) {
                Some(Token::Number(..)) => self.pos += 1,
                _ => {
                    return Err(self.error(format!(
                        "expected an interval precision, found {}",
                        self.found()
                    )));
                }
            }
            if self.next_is(&Token::Comma) {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.expect(&Token::RParen, "`)` after the interval precision")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    YearMonth,
}

impl Unit {
    fn millis(self) -> i64 {
        match self {
            Unit::Day => 86_400_000,
            Unit::Hour => 3_600_000,
            Unit::Minute => 60_000,
            Unit::Second => 1_000,
            Unit::Millisecond | Unit::YearMonth => 1,
        }
    }
}

/// The interval literal `value` with qualifier `leading [TO trailing]`, in milliseconds.
/// Multi-field literals use Calcite's layout: `'d h:m:s.fff'`, `'h:m'`, `'m:s'`, ….
fn interval_millis(
    value: &str,
    leading: Unit,
    trailing: Option<Unit>,
) -> std::result::Result<i64, String> {
    let (negative, value) = match value.strip_prefix('-') {
        Some(rest) => (true, rest.trim()),
        None => (false, value.strip_prefix('+').unwrap_or(value).trim()),
    };
    let units: Vec<Unit> = match trailing {
        None => vec![leading],
        Some(trailing) => {
            let all = [Unit::Day, Unit::Hour, Unit::Minute, Unit::Second];
            if leading >= trailing || !all.contains(&leading) || !all.contains(&trailing) {
                return Err(format!(
                    "invalid interval qualifier {leading:?} TO {trailing:?}"
                ));
            }
            all.into_iter()
                .filter(|u| *u >= leading && *u <= trailing)
                .collect()
        }
    };
    let parts: Vec<&str> = value.split([' ', ':']).filter(|p| !p.is_empty()).collect();
    if parts.len() != units.len() {
        return Err(format!(
            "interval value '{value}' does not match its qualifier: expected {} field(s)",
            units.len()
        ));
    }
    let mut total: i64 = 0;
    for (part, unit) in parts.iter().zip(&units) {
        let millis = if *unit == Unit::Second {
            seconds_to_millis(part)?
        } else {
            let n: i64 = part
                .parse()
                .map_err(|_| format!("invalid interval value '{value}'"))?;
            n.checked_mul(unit.millis())
                .ok_or_else(|| format!("interval '{value}' is too large"))?
        };
        total = total
            .checked_add(millis)
            .ok_or_else(|| format!("interval '{value}' is too large"))?;
    }
    Ok(if negative { -total } else { total })
}

/// `"12"` or `"2.5"` seconds in milliseconds; finer than a millisecond is refused.
fn seconds_to_millis(s: &str) -> std::result::Result<i64, String> {
    let invalid = || format!("invalid seconds value '{s}'");
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| invalid())?
    };
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let significant = fraction.trim_end_matches('0');
    if significant.len() > 3 {
        return Err(format!(
            "interval '{s}' is finer than a millisecond; windows have millisecond precision"
        ));
    }
    let fraction_millis: i64 = format!("{significant:0<3}")
        .parse()
        .map_err(|_| invalid())?;
    whole
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(fraction_millis))
        .ok_or_else(|| format!("interval '{s}' is too large"))
}
