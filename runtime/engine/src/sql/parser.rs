//! Parses a Flink SQL script into a [`Script`]: the tables, views, settings and INSERTs it
//! declares, with every error naming the line and column of the offending token.
//!
//! The script is tokenized by sqlparser (generic dialect: backtick identifiers, `--` and
//! `/* */` comments), window TVF calls are rewritten into synthetic table references
//! ([`rewrite_window_tvfs`]), and the statements are then parsed one by one: the Flink-specific
//! DDL (`CREATE TABLE … WITH (…)`, `WATERMARK FOR`, `SET`, statement sets) by hand with the
//! parser's primitives, expressions and queries by sqlparser. Every query is checked against
//! what the streaming planner runs ([`check_supported`]).

mod data_type;
mod supported;

use std::collections::BTreeMap;

use sqlparser::ast::{Expr, Query};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::catalog::{ColumnDef, ColumnKind, InsertDef, Script, TableDef, ViewDef, WatermarkDef};
use crate::error::{Error, Result, SqlLocation};
use crate::sql::window_tvf::rewrite_window_tvfs;
use crate::types;

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
            ("CREATE" | "DROP" | "ALTER" | "SHOW" | "LOAD" | "UNLOAD" | "ADD" | "REMOVE", Some(second)) => {
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
    fn check_new_name(&self, name: &str, location: SqlLocation, if_not_exists: bool) -> Result<bool> {
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

    /// After `CREATE [TEMPORARY] TABLE`; `None` for `IF NOT EXISTS` on an existing name.
    fn create_table(&mut self) -> Result<Option<TableDef>> {
        let if_not_exists = self.if_not_exists()?;
        let (name, location) = self.object_name("a table name")?;
        self.reject_table_clause()?;
        self.expect(&Token::LParen, "`(` and the table's columns")?;
        let mut table = TableDef {
            name,
            columns: Vec::new(),
            watermark: None,
            options: BTreeMap::new(),
            location,
        };
        // Validated once all columns are known: the list may name columns declared later.
        let mut watermark_column_location = None;
        let mut primary_key = None;
        loop {
            if self.peek_word("WATERMARK") && self.peek_nth_word(1, "FOR") {
                let at = self.here();
                if table.watermark.is_some() {
                    return Err(Error::sql(at, "a table can declare only one WATERMARK"));
                }
                self.advance();
                self.advance();
                let (column, column_location) = self.identifier("the watermark's time column")?;
                self.expect_word("AS", "after WATERMARK FOR <column>")?;
                let expr = self.expr()?;
                watermark_column_location = Some(column_location);
                table.watermark = Some(WatermarkDef {
                    column,
                    expr,
                    location: at,
                });
            } else if self.peek_word("PRIMARY")
                || (self.peek_word("CONSTRAINT") && self.peek_nth_word(2, "PRIMARY"))
            {
                let at = self.here();
                self.primary_key_prefix()?;
                let columns = self.column_list("a primary key column")?;
                self.not_enforced(at)?;
                set_primary_key(&mut primary_key, columns, at)?;
            } else if ["UNIQUE", "FOREIGN", "CHECK"].iter().any(|w| {
                self.peek_word(w) && !matches!(self.parser.peek_nth_token_ref(1).token, Token::Word(_))
            }) {
                return Err(Error::unsupported(
                    self.here(),
                    "only PRIMARY KEY (...) NOT ENFORCED constraints are supported",
                ));
            } else {
                let column = self.column(&mut primary_key)?;
                if table.column(&column.name).is_some() {
                    return Err(Error::sql(
                        column.location,
                        format!("column `{}` is declared twice", column.name),
                    ));
                }
                table.columns.push(column);
            }
            if self.eat(&Token::Comma) {
                continue;
            }
            self.expect(&Token::RParen, "`,` or `)` after a column")?;
            break;
        }
        self.table_clauses(&mut table)?;
        if let Some(at) = watermark_column_location {
            check_watermark(&table, at)?;
        }
        if let Some(key) = &primary_key {
            check_primary_key(&mut table, key)?;
        }
        if !self.check_new_name(&table.name, location, if_not_exists)? {
            return Ok(None);
        }
        Ok(Some(table))
    }

    /// Clauses Flink allows around a table definition that Weir does not run.
    fn reject_table_clause(&self) -> Result<()> {
        let message = if self.peek_word("AS") {
            "CREATE TABLE ... AS SELECT is not supported; declare the table and INSERT INTO it"
        } else if self.peek_word("LIKE") {
            "CREATE TABLE ... LIKE is not supported; declare the columns and options"
        } else if self.peek_word("PARTITIONED") {
            "PARTITIONED BY is not supported"
        } else if self.peek_word("DISTRIBUTED") {
            "DISTRIBUTED BY is not supported"
        } else {
            return Ok(());
        };
        Err(Error::unsupported(self.here(), message))
    }

    /// After the column list: `[COMMENT '…'] [WITH (…)]`.
    fn table_clauses(&mut self, table: &mut TableDef) -> Result<()> {
        loop {
            self.reject_table_clause()?;
            if self.eat_word("COMMENT") {
                self.string_literal("the table comment")?;
            } else if self.eat_word("WITH") {
                self.options(table)?;
            } else if self.at_end() || self.peek_is(&Token::SemiColon) {
                return Ok(());
            } else {
                return Err(self.error_here(format!(
                    "expected WITH (...) or `;` after the table's columns, found {}",
                    self.found()
                )));
            }
        }
    }

    /// After `WITH`: `('key' = 'value', …)`.
    fn options(&mut self, table: &mut TableDef) -> Result<()> {
        self.expect(&Token::LParen, "`(` after WITH")?;
        if self.eat(&Token::RParen) {
            return Ok(());
        }
        loop {
            let at = self.here();
            let key = self.string_literal("a quoted option key like 'connector'")?;
            self.expect(&Token::Eq, "`=` after the option key")?;
            let value = self.string_literal("a quoted option value")?;
            if table.options.insert(key.clone(), value).is_some() {
                return Err(Error::sql(at, format!("option '{key}' is given twice")));
            }
            if self.eat(&Token::Comma) {
                continue;
            }
            self.expect(&Token::RParen, "`,` or `)` after an option")?;
            return Ok(());
        }
    }

    /// `[CONSTRAINT name] PRIMARY KEY`.
    fn primary_key_prefix(&mut self) -> Result<()> {
        if self.eat_word("CONSTRAINT") {
            self.identifier("the constraint name")?;
        }
        self.expect_word("PRIMARY", "")?;
        self.expect_word("KEY", "after PRIMARY")?;
        Ok(())
    }

    /// Flink owns no data, so it can only trust a key: `NOT ENFORCED` is required.
    fn not_enforced(&mut self, at: SqlLocation) -> Result<()> {
        if self.eat_word("NOT") {
            self.expect_word("ENFORCED", "after NOT")?;
            return Ok(());
        }
        let message = "Flink doesn't support ENFORCED mode for PRIMARY KEY constraint: the key \
                       must be declared NOT ENFORCED";
        if self.peek_word("ENFORCED") {
            return Err(Error::sql(self.here(), message));
        }
        Err(Error::sql(at, message))
    }

    /// `name TYPE [NOT NULL] [PRIMARY KEY NOT ENFORCED] [COMMENT '…']` or
    /// `name AS expr [COMMENT '…']`.
    fn column(
        &mut self,
        primary_key: &mut Option<PrimaryKey>,
    ) -> Result<ColumnDef> {
        let (name, location) = self.identifier("a column name, WATERMARK or PRIMARY KEY")?;
        if self.eat_word("AS") {
            let expr = self.expr()?;
            if self.eat_word("COMMENT") {
                self.string_literal("the column comment")?;
            }
            return Ok(ColumnDef {
                name,
                kind: ColumnKind::Computed { expr },
                location,
            });
        }
        let (data_type, sql_type) = self.data_type()?;
        let mut nullable = true;
        loop {
            if self.peek_word("NOT") && self.peek_nth_word(1, "NULL") {
                self.advance();
                self.advance();
                nullable = false;
            } else if self.eat_word("NULL") {
                nullable = true;
            } else if self.peek_word("METADATA") {
                return Err(Error::unsupported(
                    self.here(),
                    "METADATA columns are not supported",
                ));
            } else if self.peek_word("PRIMARY")
                || (self.peek_word("CONSTRAINT") && self.peek_nth_word(2, "PRIMARY"))
            {
                let at = self.here();
                self.primary_key_prefix()?;
                self.not_enforced(at)?;
                set_primary_key(primary_key, vec![name.clone()], at)?;
            } else if self.eat_word("COMMENT") {
                self.string_literal("the column comment")?;
            } else {
                break;
            }
        }
        Ok(ColumnDef {
            name,
            kind: ColumnKind::Physical {
                data_type,
                nullable,
                sql_type,
            },
            location,
        })
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

    // Token primitives over the sqlparser `Parser`.

    fn peek(&self) -> &TokenWithSpan {
        self.parser.peek_token_ref()
    }

    fn advance(&mut self) {
        self.parser.advance_token();
    }

    fn at_end(&self) -> bool {
        self.peek().token == Token::EOF
    }

    fn peek_is(&self, token: &Token) -> bool {
        &self.peek().token == token
    }

    /// Whether the `n`th next token is the unquoted word `name`, case-insensitively (many of
    /// Flink's words are not sqlparser keywords).
    fn peek_nth_word(&self, n: usize, name: &str) -> bool {
        matches!(&self.parser.peek_nth_token_ref(n).token,
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(name))
    }

    fn peek_word(&self, name: &str) -> bool {
        self.peek_nth_word(0, name)
    }

    fn eat_word(&mut self, name: &str) -> bool {
        let found = self.peek_word(name);
        if found {
            self.advance();
        }
        found
    }

    fn expect_word(&mut self, name: &str, context: &str) -> Result<()> {
        if self.eat_word(name) {
            return Ok(());
        }
        let context = if context.is_empty() {
            String::new()
        } else {
            format!(" {context}")
        };
        Err(self.error_here(format!(
            "expected {name}{context}, found {}",
            self.found()
        )))
    }

    fn eat(&mut self, token: &Token) -> bool {
        self.parser.consume_token(token)
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error_here(format!("expected {what}, found {}", self.found())))
        }
    }

    /// A plain or backtick-quoted identifier.
    fn identifier(&mut self, what: &str) -> Result<(String, SqlLocation)> {
        let at = self.here();
        match &self.peek().token {
            Token::Word(w) => {
                let value = w.value.clone();
                self.advance();
                Ok((value, at))
            }
            _ => Err(self.error_here(format!("expected {what}, found {}", self.found()))),
        }
    }

    /// `name` or `catalog.database.name`, joined with dots.
    fn object_name(&mut self, what: &str) -> Result<(String, SqlLocation)> {
        let (mut name, at) = self.identifier(what)?;
        while self.eat(&Token::Period) {
            name.push('.');
            name.push_str(&self.identifier(what)?.0);
        }
        Ok((name, at))
    }

    fn string_literal(&mut self, what: &str) -> Result<String> {
        match &self.peek().token {
            Token::SingleQuotedString(s) => {
                let s = s.clone();
                self.advance();
                Ok(s)
            }
            _ => Err(self.error_here(format!("expected {what}, found {}", self.found()))),
        }
    }

    fn location_of(&self, token: &TokenWithSpan) -> SqlLocation {
        if token.span.start.line == 0 {
            self.end
        } else {
            sql_location(token.span.start)
        }
    }

    /// Where the next token starts (the end of the script at its end).
    fn here(&self) -> SqlLocation {
        self.location_of(self.peek())
    }

    /// The next token as written, for messages.
    fn found(&self) -> String {
        match &self.peek().token {
            Token::EOF => "the end of the script".into(),
            token => format!("`{token}`"),
        }
    }

    fn peek_text(&self) -> String {
        match &self.peek().token {
            Token::Word(w) => w.value.to_uppercase(),
            token => token.to_string(),
        }
    }

    fn error_here(&self, message: impl Into<String>) -> Error {
        Error::sql(self.here(), message)
    }
}

/// The watermark's column exists and, when physical, is a TIMESTAMP(3) or TIMESTAMP_LTZ(3).
/// A computed column's type is only known once the planner binds its expression.
fn check_watermark(table: &TableDef, at: SqlLocation) -> Result<()> {
    let Some(watermark) = &table.watermark else {
        return Ok(());
    };
    let Some(column) = table.column(&watermark.column) else {
        return Err(Error::sql(
            at,
            format!(
                "the watermark's time column `{}` is not a column of table `{}`",
                watermark.column, table.name
            ),
        ));
    };
    match &column.kind {
        ColumnKind::Physical {
            data_type,
            sql_type,
            ..
        } if !types::is_timestamp(data_type) => Err(Error::sql(
            at,
            format!(
                "Invalid data type of time field for watermark definition. The field must be of \
                 type TIMESTAMP(p) or TIMESTAMP_LTZ(p), the supported precision 'p' is from 0 to \
                 3, but the time field type is {sql_type}"
            ),
        )),
        _ => Ok(()),
    }
}

/// `PRIMARY KEY (columns) NOT ENFORCED`. Validated, and its columns made NOT NULL, but not kept
/// in the [`TableDef`] yet: nothing downstream uses keys so far.
struct PrimaryKey {
    columns: Vec<String>,
    location: SqlLocation,
}

fn set_primary_key(
    primary_key: &mut Option<PrimaryKey>,
    columns: Vec<String>,
    location: SqlLocation,
) -> Result<()> {
    if primary_key.is_some() {
        return Err(Error::sql(location, "a table can declare only one PRIMARY KEY"));
    }
    *primary_key = Some(PrimaryKey { columns, location });
    Ok(())
}

/// Key columns exist and are physical; like Flink, they become NOT NULL.
fn check_primary_key(table: &mut TableDef, key: &PrimaryKey) -> Result<()> {
    let at = key.location;
    for key in &key.columns {
        let column = table
            .columns
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(key));
        match column.map(|c| &mut c.kind) {
            Some(ColumnKind::Physical { nullable, .. }) => *nullable = false,
            Some(ColumnKind::Computed { .. }) => {
                return Err(Error::sql(
                    at,
                    format!("primary key column `{key}` is a computed column; keys must be physical columns"),
                ));
            }
            None => {
                return Err(Error::sql(
                    at,
                    format!("primary key column `{key}` is not a column of table `{}`", table.name),
                ));
            }
        }
    }
    Ok(())
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
