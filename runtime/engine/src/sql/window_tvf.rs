//! Windowing table-valued functions, rewritten at the token level before the SQL parser runs.
//!
//! sqlparser does not know Flink's `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE))`
//! (the `TABLE t` and `DESCRIPTOR(...)` arguments, `=>` named arguments with table values), so
//! [`rewrite_window_tvfs`] finds each `TABLE ( TUMBLE | HOP | CUMULATE | SESSION ( … ) )` in the
//! token stream, replaces the whole range by one identifier token `__weir_window_{n}`, and
//! returns a [`WindowTvfDef`] describing the call. The query then reads from that synthetic table
//! like from any other, and the planner turns it back into a window assignment.
//!
//! Arguments follow Flink: positional (`TUMBLE(TABLE t, DESCRIPTOR(ts), size [, offset])`,
//! `HOP(…, slide, size [, offset])`, `CUMULATE(…, step, size [, offset])`,
//! `SESSION(TABLE t [PARTITION BY k, …], DESCRIPTOR(ts), gap)`) or named
//! (`DATA =>`, `TIMECOL =>`, `SIZE =>`, `SLIDE =>`, `STEP =>`, `GAP =>`, `OFFSET =>`) in any
//! order. Durations are day-time interval literals, converted to milliseconds.

use std::collections::BTreeMap;

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Span, Token, TokenWithSpan, Word};

use crate::catalog::{WindowFunction, WindowTvfDef};
use crate::error::{Error, Result, SqlLocation};
use crate::sql::parser::sql_location;

/// The prefix of the synthetic table names that replace window TVF calls.
pub const WINDOW_TABLE_PREFIX: &str = "__weir_window_";

/// Replaces every window TVF call in `tokens` by an identifier token naming a synthetic table,
/// and describes the calls in order of appearance. Whitespace and comment tokens are dropped.
pub fn rewrite_window_tvfs(
    tokens: Vec<TokenWithSpan>,
) -> Result<(Vec<TokenWithSpan>, Vec<WindowTvfDef>)> {
    let tokens: Vec<TokenWithSpan> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut out = Vec::with_capacity(tokens.len());
    let mut windows = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !is_tvf_start(&tokens, i) {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        if is_word(out.last(), "LATERAL") {
            return Err(Error::unsupported(
                sql_location(out[out.len() - 1].span.start),
                "LATERAL TABLE (user-defined table functions) is not supported",
            ));
        }
        let name_token = &tokens[i + 2];
        let name_location = sql_location(name_token.span.start);
        let name = word(name_token).map(|w| w.value.to_uppercase()).unwrap_or_default();
        let kind = match name.as_str() {
            "TUMBLE" => Kind::Tumble,
            "HOP" => Kind::Hop,
            "CUMULATE" => Kind::Cumulate,
            "SESSION" => Kind::Session,
            _ => {
                return Err(Error::sql(
                    name_location,
                    format!(
                        "unknown window function `{name}` in TABLE(...): expected TUMBLE, HOP, \
                         CUMULATE or SESSION"
                    ),
                ));
            }
        };
        let inner_close = matching_paren(&tokens, i + 3)?;
        let outer_close = inner_close + 1;
        match tokens.get(outer_close) {
            Some(t) if t.token == Token::RParen => {}
            other => {
                let at = other.map_or(tokens[inner_close].span.end, |t| t.span.start);
                return Err(Error::sql(
                    sql_location(at),
                    format!("expected `)` to close TABLE({name}(...))"),
                ));
            }
        }
        let args = ArgCursor {
            tokens: &tokens[i + 4..inner_close],
            pos: 0,
            end: tokens[inner_close].span,
        }
        .parse_args()?;
        let table_name = format!("{WINDOW_TABLE_PREFIX}{}", windows.len());
        windows.push(build_def(kind, &name, name_location, table_name.clone(), args)?);
        out.push(TokenWithSpan::new(
            Token::Word(Word {
                value: table_name,
                quote_style: None,
                keyword: Keyword::NoKeyword,
            }),
            Span::new(tokens[i].span.start, tokens[outer_close].span.end),
        ));
        i = outer_close + 1;
    }
    Ok((out, windows))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tumble,
    Hop,
    Cumulate,
    Session,
}

impl Kind {
    /// Flink's parameter names, in positional order.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Kind::Tumble => &["DATA", "TIMECOL", "SIZE", "OFFSET"],
            Kind::Hop => &["DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"],
            Kind::Cumulate => &["DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"],
            Kind::Session => &["DATA", "TIMECOL", "GAP"],
        }
    }
}

fn word(t: &TokenWithSpan) -> Option<&Word> {
    match &t.token {
        Token::Word(w) => Some(w),
        _ => None,
    }
}

/// Whether `t` is the unquoted word `name` (case-insensitive; not all of Flink's words are
/// sqlparser keywords).
fn is_word(t: Option<&TokenWithSpan>, name: &str) -> bool {
    t.and_then(word)
        .is_some_and(|w| w.quote_style.is_none() && w.value.eq_ignore_ascii_case(name))
}

/// `TABLE ( name (` at `i`.
fn is_tvf_start(tokens: &[TokenWithSpan], i: usize) -> bool {
    is_word(tokens.get(i), "TABLE")
        && tokens.get(i + 1).is_some_and(|t| t.token == Token::LParen)
        && tokens
            .get(i + 2)
            .and_then(word)
            .is_some_and(|w| w.quote_style.is_none())
        && tokens.get(i + 3).is_some_and(|t| t.token == Token::LParen)
}

/// The index of the `)` matching the `(` at `open`.
fn matching_paren(tokens: &[TokenWithSpan], open: usize) -> Result<usize> {
    let mut depth = 0usize;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j);
                }
            }
            _ => {}
        }
    }
    Err(Error::sql(
        sql_location(tokens[open].span.start),
        "this `(` is never closed",
    ))
}

#[derive(Debug)]
enum ArgValue {
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
    fn describe(&self) -> &'static str {
        match self {
            ArgValue::Table { .. } => "a TABLE argument",
            ArgValue::Descriptor(_) => "a DESCRIPTOR",
            ArgValue::Interval(_) => "an INTERVAL",
        }
    }
}

#[derive(Debug)]
struct Arg {
    name: Option<String>,
    value: ArgValue,
    location: SqlLocation,
}

/// A cursor over the tokens between the parentheses of the window function call.
struct ArgCursor<'a> {
    tokens: &'a [TokenWithSpan],
    pos: usize,
    /// The closing parenthesis, for errors at the end of the arguments.
    end: Span,
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

    fn parse_args(mut self) -> Result<Vec<Arg>> {
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
                return Err(self.error(format!("expected BY after PARTITION, found {}", self.found())));
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
    let fraction_millis: i64 = format!("{significant:0<3}").parse().map_err(|_| invalid())?;
    whole
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(fraction_millis))
        .ok_or_else(|| format!("interval '{s}' is too large"))
}

/// Matches arguments to parameters, checks their kinds and validates the window like Flink.
fn build_def(
    kind: Kind,
    function_name: &str,
    location: SqlLocation,
    name: String,
    args: Vec<Arg>,
) -> Result<WindowTvfDef> {
    let parameters = kind.parameters();
    let mut assigned: BTreeMap<&'static str, Arg> = BTreeMap::new();
    let mut seen_named = false;
    for (position, arg) in args.into_iter().enumerate() {
        let parameter = match &arg.name {
            Some(n) => {
                seen_named = true;
                *parameters.iter().find(|p| **p == n.as_str()).ok_or_else(|| {
                    Error::sql(
                        arg.location,
                        format!(
                            "{function_name} has no parameter `{n}`; its parameters are {}",
                            parameters.join(", ")
                        ),
                    )
                })?
            }
            None if seen_named => {
                return Err(Error::sql(
                    arg.location,
                    "a positional argument cannot follow named (`NAME => value`) arguments",
                ));
            }
            None => *parameters.get(position).ok_or_else(|| {
                Error::sql(
                    arg.location,
                    format!(
                        "too many arguments for {function_name}: it takes {}",
                        parameters.join(", ")
                    ),
                )
            })?,
        };
        if assigned.contains_key(parameter) {
            return Err(Error::sql(
                arg.location,
                format!("{function_name} parameter {parameter} is given twice"),
            ));
        }
        assigned.insert(parameter, arg);
    }

    let missing = |parameter: &str| {
        Error::sql(
            location,
            format!("{function_name} is missing its {parameter} argument"),
        )
    };
    let wrong_kind = |parameter: &str, arg: &Arg, expected: &str| {
        Error::sql(
            arg.location,
            format!(
                "{function_name} parameter {parameter} expects {expected}, found {}",
                arg.value.describe()
            ),
        )
    };
    let (input, partition_by) = match assigned.remove("DATA") {
        Some(Arg {
            value:
                ArgValue::Table {
                    name,
                    partition_by,
                    partition_location,
                },
            ..
        }) => {
            if let Some(at) = partition_location
                && kind != Kind::Session
            {
                return Err(Error::sql(
                    at,
                    format!("PARTITION BY is only allowed in SESSION windows, not in {function_name}"),
                ));
            }
            (name, partition_by)
        }
        Some(arg) => return Err(wrong_kind("DATA", &arg, "TABLE <name>")),
        None => return Err(missing("DATA")),
    };
    let time_column = match assigned.remove("TIMECOL") {
        Some(Arg {
            value: ArgValue::Descriptor(column),
            ..
        }) => column,
        Some(arg) => return Err(wrong_kind("TIMECOL", &arg, "DESCRIPTOR(<column>)")),
        None => return Err(missing("TIMECOL")),
    };
    let mut interval = |parameter: &'static str, required: bool| -> Result<Option<i64>> {
        match assigned.remove(parameter) {
            Some(Arg {
                value: ArgValue::Interval(ms),
                ..
            }) => Ok(Some(ms)),
            Some(arg) => Err(wrong_kind(parameter, &arg, "an INTERVAL")),
            None if required => Err(missing(parameter)),
            None => Ok(None),
        }
    };
    let function = match kind {
        Kind::Tumble => {
            let size = interval("SIZE", true)?.unwrap_or_default();
            let offset = interval("OFFSET", false)?.unwrap_or_default();
            if size <= 0 {
                return Err(Error::sql(
                    location,
                    format!("Tumbling Window parameters must satisfy size > 0, but got size {size}ms."),
                ));
            }
            if offset.abs() >= size {
                return Err(Error::sql(
                    location,
                    format!(
                        "Tumbling Window parameters must satisfy abs(offset) < size, but got \
                         size {size}ms and offset {offset}ms."
                    ),
                ));
            }
            WindowFunction::Tumble { size, offset }
        }
        Kind::Hop => {
            let slide = interval("SLIDE", true)?.unwrap_or_default();
            let size = interval("SIZE", true)?.unwrap_or_default();
            let offset = interval("OFFSET", false)?.unwrap_or_default();
            if size <= 0 || slide <= 0 {
                return Err(Error::sql(
                    location,
                    format!(
                        "Hopping Window must satisfy slide > 0 and size > 0, but got slide \
                         {slide}ms and size {size}ms."
                    ),
                ));
            }
            if size % slide != 0 {
                return Err(Error::sql(
                    location,
                    format!(
                        "HOP table function based aggregate requires size must be an integral \
                         multiple of slide, but got size {size} ms and slide {slide} ms"
                    ),
                ));
            }
            WindowFunction::Hop {
                slide,
                size,
                offset,
            }
        }
        Kind::Cumulate => {
            let step = interval("STEP", true)?.unwrap_or_default();
            let max_size = interval("SIZE", true)?.unwrap_or_default();
            let offset = interval("OFFSET", false)?.unwrap_or_default();
            if max_size <= 0 || step <= 0 {
                return Err(Error::sql(
                    location,
                    format!(
                        "Cumulative Window parameters must satisfy maxSize > 0 and step > 0, but \
                         got maxSize {max_size}ms and step {step}ms."
                    ),
                ));
            }
            if max_size % step != 0 {
                return Err(Error::sql(
                    location,
                    format!(
                        "CUMULATE table function based aggregate requires maxSize must be an \
                         integral multiple of step, but got maxSize {max_size} ms and step \
                         {step} ms"
                    ),
                ));
            }
            WindowFunction::Cumulate {
                step,
                max_size,
                offset,
            }
        }
        Kind::Session => {
            let gap = interval("GAP", true)?.unwrap_or_default();
            if gap <= 0 {
                return Err(Error::sql(
                    location,
                    format!("Session Window must satisfy gap > 0, but got gap {gap}ms."),
                ));
            }
            WindowFunction::Session { gap }
        }
    };
    Ok(WindowTvfDef {
        name,
        function,
        input,
        time_column,
        partition_by,
        location,
    })
}

#[cfg(test)]
mod tests;
