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

mod args;

use args::{Arg, ArgCursor, ArgValue};

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
        let name = word(name_token)
            .map(|w| w.value.to_uppercase())
            .unwrap_or_default();
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
        windows.push(build_def(
            kind,
            &name,
            name_location,
            table_name.clone(),
            args,
        )?);
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
                *parameters
                    .iter()
                    .find(|p| **p == n.as_str())
                    .ok_or_else(|| {
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
                    format!(
                        "PARTITION BY is only allowed in SESSION windows, not in {function_name}"
                    ),
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
                    format!(
                        "Tumbling Window parameters must satisfy size > 0, but got size {size}ms."
                    ),
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
