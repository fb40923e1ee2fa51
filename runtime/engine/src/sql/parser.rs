//! Parses a Flink SQL script into a [`Script`]: the tables, views, settings and INSERTs it
//! declares, with every error naming the line and column of the offending token.
//!
//! The script is tokenized by sqlparser (generic dialect: backtick identifiers, `--` and
//! `/* */` comments), window TVF calls are rewritten into synthetic table references
//! ([`rewrite_window_tvfs`]), and the statements are then parsed one by one: the Flink-specific
//! DDL (`CREATE TABLE … WITH (…)`, `WATERMARK FOR`, `SET`, statement sets) by hand with the
//! parser's primitives, expressions and queries by sqlparser. Every query is checked against
//! what the streaming planner runs ([`check_supported`]).

mod create_table;
mod cursor;
mod data_type;
mod supported;

use sqlparser::ast::{Expr, Query};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::catalog::{InsertDef, Script, ViewDef};
use crate::error::{Error, Result, SqlLocation};
use crate::sql::window_tvf::rewrite_window_tvfs;

pub use supported::check_supported;

/// The dialect closest to Flink's: backtick-quoted identifiers, single-quoted strings.
static DIALECT: GenericDialect = GenericDialect {};

/// A sqlparser location as ours (both 1-based).
pub(crate) fn sql_location(location: Location) -> SqlLocation {
    SqlLocation {
        line: location.line,
        column: location.column,
    }
}

/// Parses a whole script. Statements are separated by `;` (the last one is optional).
pub fn parse_script(sql: &str) -> Result<Script> {
    let tokens = Tokenizer::new(&DIALECT, sql)
        .tokenize_with_location()
        .map_err(|e| Error::sql(sql_location(e.location), e.message))?;
    reject_hints(&tokens)?;
    let end = tokens
        .iter()
        .rev()
        .find(|t| !matches!(t.token, Token::Whitespace(_)))
        .map_or(SqlLocation { line: 1, column: 1 }, |t| {
            sql_location(t.span.end)
        });
    let (tokens, windows) = rewrite_window_tvfs(tokens)?;
    let mut parser = ScriptParser {
        parser: Parser::new(&DIALECT).with_tokens_with_locations(tokens.clone()),
        tokens,
        source: sql,
        end,
        script: Script {
            windows,
            ..Script::default()
        },
    };
    parser.parse_statements()?;
    Ok(parser.script)
}

/// `/*+ OPTIONS(...) */` changes what a query reads; ignoring it silently would be wrong.
fn reject_hints(tokens: &[TokenWithSpan]) -> Result<()> {
    for t in tokens {
        if let Token::Whitespace(Whitespace::MultiLineComment(text)) = &t.token
            && text.starts_with('+')
        {
            return Err(Error::unsupported(
                sql_location(t.span.start),
                "SQL hints (/*+ ... */) are not supported",
            ));
        }
    }
    Ok(())
}

struct ScriptParser<'a> {
    parser: Parser<'a>,
    /// The script's tokens after the window TVF rewrite, without whitespace: the query checks
    /// use them to point at keywords the AST does not keep.
    tokens: Vec<TokenWithSpan>,
    source: &'a str,
    /// Just past the last token: where "unexpected end of script" errors point.
    end: SqlLocation,
    script: Script,
}

impl ScriptParser<'_> {
    fn parse_statements(&mut self) -> Result<()> {
        loop {
            while self.eat(&Token::SemiColon) {}
            if self.at_end() {
                return Ok(());
            }
            self.statement()?;
            if !self.at_end() && !self.eat(&Token::SemiColon) {
                return Err(self.error_here(format!(
                    "expected `;` after the statement, found {}",
                    self.found()
                )));
            }
        }
    }

    fn statement(&mut self) -> Result<()> {
        let start = self.here();
        if self.peek_word("CREATE") {
            self.create()
        } else if self.peek_word("SET") {
            self.set()
        } else if self.peek_word("INSERT") {
            let insert = self.insert()?;
            self.script.inserts.push(insert);
            Ok(())
        } else if self.peek_word("EXECUTE") {
            self.advance();
            if self.peek_word("STATEMENT") {
                self.advance();
                self.expect_word("SET", "after EXECUTE STATEMENT")?;
                self.expect_word("BEGIN", "after EXECUTE STATEMENT SET")?;
                self.statement_set(start)
            } else if self.peek_word("INSERT") {
                let insert = self.insert()?;
                self.script.inserts.push(insert);
                Ok(())
            } else {
                Err(Error::unsupported(
                    start,
                    format!(
                        "EXECUTE {} is not supported: a script runs INSERT statements and \
                         statement sets",
                        self.peek_text()
                    ),
                ))
            }
        } else if self.peek_word("BEGIN") && self.peek_nth_word(1, "STATEMENT") {
            self.advance();
            self.advance();
            self.expect_word("SET", "after BEGIN STATEMENT")?;
            self.expect(&Token::SemiColon, "`;` after BEGIN STATEMENT SET")?;
            self.statement_set(start)
        } else if self.peek_word("SELECT")
            || self.peek_word("WITH")
            || self.peek_word("VALUES")
            || self.peek_is(&Token::LParen)
        {
            Err(Error::unsupported(
                start,
                "a SELECT on its own has no sink; write INSERT INTO <table> SELECT ...",
            ))
        } else if self.peek_word("RESET") {
            Err(Error::unsupported(
                start,
                "RESET is not supported: a script's settings are fixed when it starts",
            ))
        } else if matches!(self.peek().token, Token::Word(_)) {
            Err(Error::unsupported(
                start,
                format!(
                    "{} statements are not supported: a script holds CREATE TABLE, CREATE \
                     VIEW, SET and INSERT statements",
                    self.statement_kind()
                ),
            ))
        } else {
            Err(self.error_here(format!("expected a statement, found {}", self.found())))
        }
    }

    /// `DROP TABLE`, `SHOW TABLES`, `CREATE FUNCTION`, …: the first word or two of the
    /// statement at the cursor, for messages.
    fn statement_kind(&self) -> String {
        let word = |n: usize| match &self.parser.peek_nth_token_ref(n).token {
            Token::Word(w) => Some(w.value.to_uppercase()),
            _ => None,
        };
        let first = word(0).unwrap_or_default();
        let mut n = 1;
        if first == "CREATE" {
            while matches!(
                word(n).as_deref(),
                Some("TEMPORARY" | "SYSTEM" | "OR" | "REPLACE")
            ) {
                n += 1;
            }
        }
        match (first.as_str(), word(n)) {
            (
                "CREATE" | "DROP" | "ALTER" | "SHOW" | "LOAD" | "UNLOAD" | "ADD" | "REMOVE",
                Some(second),
            ) => {
                format!("{first} {second}")
            }
            _ => first,
        }
    }

    /// After `EXECUTE STATEMENT SET BEGIN` or `BEGIN STATEMENT SET;`: INSERTs up to `END`.
    fn statement_set(&mut self, start: SqlLocation) -> Result<()> {
        loop {
            while self.eat(&Token::SemiColon) {}
            if self.eat_word("END") {
                return Ok(());
            }
            if self.at_end() {
                return Err(Error::sql(
                    start,
                    "this STATEMENT SET is never closed with END",
                ));
            }
            if !self.peek_word("INSERT") {
                return Err(self.error_here(format!(
                    "only INSERT statements are allowed in a STATEMENT SET, found {}",
                    self.found()
                )));
            }
            let insert = self.insert()?;
            self.script.inserts.push(insert);
            self.expect(&Token::SemiColon, "`;` after the INSERT in a STATEMENT SET")?;
        }
    }

    /// `INSERT INTO name [(columns)] query`.
    fn insert(&mut self) -> Result<InsertDef> {
        self.expect_word("INSERT", "")?;
        if self.peek_word("OVERWRITE") {
            return Err(Error::unsupported(
                self.here(),
                "INSERT OVERWRITE is not supported in streaming jobs; use INSERT INTO",
            ));
        }
        self.expect_word("INTO", "after INSERT")?;
        let (table, location) = self.object_name("a table name after INSERT INTO")?;
        if self.peek_word("PARTITION") {
            return Err(Error::unsupported(
                self.here(),
                "INSERT INTO ... PARTITION (...) is not supported",
            ));
        }
        let mut columns = Vec::new();
        let query_follows = |p: &Self| {
            p.peek_nth_word(1, "SELECT")
                || p.peek_nth_word(1, "WITH")
                || p.peek_nth_word(1, "VALUES")
                || p.parser.peek_nth_token_ref(1).token == Token::LParen
        };
        if self.peek_is(&Token::LParen) && !query_follows(self) {
            columns = self.column_list("a column name in the INSERT column list")?;
        }
        let query = self.query()?;
        Ok(InsertDef {
            table,
            columns,
            query,
            location,
        })
    }

    /// `SET 'key' = 'value'` (or unquoted `SET key = value`).
    fn set(&mut self) -> Result<()> {
        let start = self.here();
        self.advance();
        if self.at_end() || self.peek_is(&Token::SemiColon) {
            return Err(Error::unsupported(
                start,
                "SET without a key lists the session settings in Flink's SQL client; a script \
                 needs SET 'key' = 'value'",
            ));
        }
        let key = self.setting_text("a setting key", |t| *t == Token::Eq)?;
        self.expect(&Token::Eq, "`=` after the setting key")?;
        let value = self.setting_text("a setting value", |t| *t == Token::SemiColon)?;
        self.script.settings.push((key, value));
        Ok(())
    }

    /// A quoted string, or the raw text of the tokens up to (not including) `stop`.
    fn setting_text(&mut self, what: &str, stop: impl Fn(&Token) -> bool) -> Result<String> {
        if let Token::SingleQuotedString(s) = &self.peek().token {
            let s = s.clone();
            self.advance();
            return Ok(s);
        }
        let first = self.peek().clone();
        let mut last = None;
        while !self.at_end() && !stop(&self.peek().token) {
            last = Some(self.parser.next_token());
        }
        match last {
            Some(last) => Ok(self.source_text(first.span.start, last.span.end)),
            None => Err(self.error_here(format!("expected {what}, found {}", self.found()))),
        }
    }

    /// The script text between two token locations.
    fn source_text(&self, start: Location, end: Location) -> String {
        let offset = |location: Location| -> usize {
            let Some(line) = self
                .source
                .split_inclusive('\n')
                .nth(location.line.saturating_sub(1) as usize)
            else {
                return self.source.len();
            };
            let line_start = line.as_ptr() as usize - self.source.as_ptr() as usize;
            let column = line
                .char_indices()
                .nth(location.column.saturating_sub(1) as usize)
                .map_or(line.len(), |(i, _)| i);
            line_start + column
        };
        self.source
            .get(offset(start)..offset(end))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn create(&mut self) -> Result<()> {
        let start = self.here();
        let kind = self.statement_kind();
        self.advance();
        if self.peek_word("OR") {
            return Err(Error::unsupported(
                start,
                "CREATE OR REPLACE is not supported",
            ));
        }
        self.eat_word("TEMPORARY");
        if self.eat_word("TABLE") {
            let table = self.create_table()?;
            if let Some(table) = table {
                self.script.tables.push(table);
            }
            Ok(())
        } else if self.eat_word("VIEW") {
            let view = self.create_view()?;
            if let Some(view) = view {
                self.script.views.push(view);
            }
            Ok(())
        } else {
            Err(Error::unsupported(
                start,
                format!(
                    "{kind} statements are not supported: a script holds CREATE TABLE, CREATE \
                     VIEW, SET and INSERT statements"
                ),
            ))
        }
    }

    /// Whether `name` is already a table or view; with IF NOT EXISTS the new one is skipped.
    fn check_new_name(
        &self,
        name: &str,
        location: SqlLocation,
        if_not_exists: bool,
    ) -> Result<bool> {
        let exists = self.script.table(name).is_some() || self.script.view(name).is_some();
        if exists && !if_not_exists {
            return Err(Error::sql(
                location,
                format!("a table or view named `{name}` already exists"),
            ));
        }
        Ok(!exists)
    }

    /// After `CREATE [TEMPORARY] VIEW`; `None` for `IF NOT EXISTS` on an existing name.
    fn create_view(&mut self) -> Result<Option<ViewDef>> {
        let if_not_exists = self.if_not_exists()?;
        let (name, location) = self.object_name("a view name")?;
        let columns = if self.peek_is(&Token::LParen) {
            self.column_list("a column name in the view's column list")?
        } else {
            Vec::new()
        };
        if self.eat_word("COMMENT") {
            self.string_literal("the view comment")?;
        }
        self.expect_word("AS", "before the view's query")?;
        let query = self.query()?;
        if !self.check_new_name(&name, location, if_not_exists)? {
            return Ok(None);
        }
        Ok(Some(ViewDef {
            name,
            columns,
            query,
            location,
        }))
    }

    fn if_not_exists(&mut self) -> Result<bool> {
        if self.eat_word("IF") {
            self.expect_word("NOT", "after IF")?;
            self.expect_word("EXISTS", "after IF NOT")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// `(a, b, …)`.
    fn column_list(&mut self, what: &str) -> Result<Vec<String>> {
        self.expect(&Token::LParen, "`(`")?;
        let mut columns = Vec::new();
        loop {
            columns.push(self.identifier(what)?.0);
            if self.eat(&Token::Comma) {
                continue;
            }
            self.expect(&Token::RParen, "`,` or `)`")?;
            return Ok(columns);
        }
    }

    fn expr(&mut self) -> Result<Expr> {
        let fallback = self.here();
        self.parser
            .parse_expr()
            .map_err(|e| parser_error(e, fallback, self.end))
    }

    fn query(&mut self) -> Result<Box<Query>> {
        let fallback = self.here();
        let query = self
            .parser
            .parse_query()
            .map_err(|e| parser_error(e, fallback, self.end))?;
        supported::check_query(&query, &self.tokens)?;
        Ok(query)
    }
}

/// A sqlparser error as ours: its message ends with ` at Line: l, Column: c` when it knows
/// where; otherwise it is placed at `fallback` (or the end of the script, for EOF).
fn parser_error(error: ParserError, fallback: SqlLocation, end: SqlLocation) -> Error {
    let message = match error {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "the statement is nested too deeply".into(),
    };
    if let Some(index) = message.rfind(" at Line: ")
        && let Some((line, column)) = message[index + " at Line: ".len()..].split_once(", Column: ")
        && let (Ok(line), Ok(column)) = (line.trim().parse(), column.trim().parse())
    {
        return Error::sql(SqlLocation { line, column }, &message[..index]);
    }
    let at = if message.ends_with("found: EOF") {
        end
    } else {
        fallback
    };
    Error::sql(at, message)
}

#[cfg(test)]
mod tests;
