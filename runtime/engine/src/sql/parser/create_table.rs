//! `CREATE TABLE`: columns (physical and computed), the watermark, the primary key and the
//! `WITH` options, validated once the whole column list is known.

use std::collections::BTreeMap;

use sqlparser::tokenizer::Token;

use super::ScriptParser;
use crate::catalog::{ColumnDef, ColumnKind, TableDef, WatermarkDef};
use crate::error::{Error, Result, SqlLocation};
use crate::types;

impl ScriptParser<'_> {
    /// After `CREATE [TEMPORARY] TABLE`; `None` for `IF NOT EXISTS` on an existing name.
    pub(super) fn create_table(&mut self) -> Result<Option<TableDef>> {
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
                self.peek_word(w)
                    && !matches!(self.parser.peek_nth_token_ref(1).token, Token::Word(_))
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
    fn column(&mut self, primary_key: &mut Option<PrimaryKey>) -> Result<ColumnDef> {
        let (name, location) = self.identifier("a column name, WATERMARK or PRIMARY KEY")?;
        if self.eat_word("AS") {
            let expr = self.expr()?;
            if self.eat_word("COMMENT") {
                self.string_literal("the column comment")?;
            }
            return Ok(ColumnDef {
                name,
                kind: ColumnKind::Computed {
                    expr: Box::new(expr),
                },
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
        return Err(Error::sql(
            location,
            "a table can declare only one PRIMARY KEY",
        ));
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
                    format!(
                        "primary key column `{key}` is a computed column; keys must be physical columns"
                    ),
                ));
            }
            None => {
                return Err(Error::sql(
                    at,
                    format!(
                        "primary key column `{key}` is not a column of table `{}`",
                        table.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
