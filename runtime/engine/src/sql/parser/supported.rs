//! The query constructs the streaming planner does not run, refused at parse time with the
//! place they are written.
//!
//! Refused: ORDER BY, LIMIT/OFFSET/FETCH, window functions (`OVER`), SELECT DISTINCT, set
//! operations other than UNION ALL, subqueries in expressions, LATERAL/UNNEST, table functions,
//! MATCH_RECOGNIZE, GROUPING SETS/ROLLUP/CUBE, and joins other than `[INNER | LEFT | RIGHT |
//! FULL [OUTER]] JOIN … ON` (the planner decides which outer joins it can run: window joins).
//! Locations come from the AST's spans; when the script's tokens are at hand they are used to
//! point at the keyword itself (`ORDER`, `UNION`, `LEFT`, …), which the AST does not keep.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, JoinConstraint, JoinOperator, LimitClause, OrderByKind, Query,
    Select, SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor, TableWithJoins, Visit,
    Visitor,
};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use super::sql_location;
use crate::error::{Error, Result, SqlLocation};

/// Checks that `query` (and every query nested in it) uses only what the streaming planner
/// runs. Without the script's tokens, errors point at the nearest AST node.
pub fn check_supported(query: &Query) -> Result<()> {
    check_query(query, &[])
}

/// [`check_supported`], pointing at keywords found in `tokens` (the script's tokens without
/// whitespace, in order).
pub(super) fn check_query(query: &Query, tokens: &[TokenWithSpan]) -> Result<()> {
    let mut checker = Checker {
        tokens,
        fallback: Location::new(1, 1),
    };
    match query.visit(&mut checker) {
        ControlFlow::Break(error) => Err(*error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Checker<'a> {
    tokens: &'a [TokenWithSpan],
    /// The start of the innermost query, for nodes without a span.
    fallback: Location,
}

type Flow = ControlFlow<Box<Error>>;

fn refuse(at: SqlLocation, message: impl Into<String>) -> Flow {
    ControlFlow::Break(Box::new(Error::unsupported(at, message)))
}

const JOIN_WORDS: &[&str] = &[
    "NATURAL", "LEFT", "RIGHT", "FULL", "OUTER", "INNER", "CROSS", "SEMI", "ANTI", "GLOBAL",
];

fn is_word(token: &Token, names: &[&str]) -> bool {
    matches!(token, Token::Word(w)
        if w.quote_style.is_none() && names.iter().any(|n| w.value.eq_ignore_ascii_case(n)))
}

impl Checker<'_> {
    /// `location`, or the enclosing query's start for an empty span.
    fn at(&self, location: Location) -> SqlLocation {
        if location.line == 0 {
            sql_location(self.fallback)
        } else {
            sql_location(location)
        }
    }

    /// The index of the first token starting at or after `location`.
    fn index_at(&self, location: Location) -> usize {
        self.tokens.partition_point(|t| t.span.start < location)
    }

    /// The nearest of the `max` tokens before `location` that is one of the words `names`.
    fn word_before(&self, location: Location, names: &[&str], max: usize) -> SqlLocation {
        let index = self.index_at(location);
        self.tokens[..index]
            .iter()
            .rev()
            .take(max)
            .find(|t| is_word(&t.token, names))
            .map_or_else(|| self.at(location), |t| sql_location(t.span.start))
    }

    /// The first of the `max` tokens from `location` on that is one of the words `names`.
    fn word_after(&self, location: Location, names: &[&str], max: usize) -> SqlLocation {
        let index = self.index_at(location);
        self.tokens[index..]
            .iter()
            .take(max)
            .find(|t| is_word(&t.token, names))
            .map_or_else(|| self.at(location), |t| sql_location(t.span.start))
    }

    /// The first word of `LEFT OUTER JOIN` (…) before the joined relation at `location`.
    fn join_keyword(&self, location: Location) -> SqlLocation {
        let index = self.index_at(location);
        let before = &self.tokens[..index];
        let Some(join) = before
            .iter()
            .rposition(|t| is_word(&t.token, &["JOIN"]))
            .filter(|j| index - j <= 3)
        else {
            return self.at(location);
        };
        let mut first = join;
        while first > 0 && is_word(&before[first - 1].token, JOIN_WORDS) {
            first -= 1;
        }
        sql_location(before[first].span.start)
    }

    fn check_query(&mut self, query: &Query) -> Flow {
        let body_end = query.body.span().end;
        if let Some(order_by) = &query.order_by {
            let at = match &order_by.kind {
                OrderByKind::Expressions(exprs) if !exprs.is_empty() => {
                    self.word_before(exprs[0].span().start, &["ORDER"], 2)
                }
                _ => self.word_after(body_end, &["ORDER"], 4),
            };
            return refuse(
                at,
                "ORDER BY is not supported in streaming queries: a stream has no last row to \
                 sort by",
            );
        }
        if let Some(limit) = &query.limit_clause {
            let at = match limit {
                LimitClause::LimitOffset {
                    limit: Some(limit), ..
                } => self.word_before(limit.span().start, &["LIMIT"], 1),
                LimitClause::LimitOffset {
                    offset: Some(offset),
                    ..
                } => self.word_before(offset.value.span().start, &["OFFSET"], 1),
                LimitClause::OffsetCommaLimit { offset, .. } => {
                    self.word_before(offset.span().start, &["LIMIT"], 1)
                }
                LimitClause::LimitOffset { .. } => self.word_after(body_end, &["LIMIT"], 4),
            };
            return refuse(
                at,
                "LIMIT and OFFSET are not supported in streaming queries",
            );
        }
        if query.fetch.is_some() {
            let at = self.word_after(body_end, &["FETCH"], 4);
            return refuse(at, "FETCH is not supported in streaming queries");
        }
        if !query.locks.is_empty() || query.for_clause.is_some() {
            let at = self.word_after(body_end, &["FOR"], 4);
            return refuse(at, "FOR clauses are not supported in streaming queries");
        }
        if query.settings.is_some()
            || query.format_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return refuse(
                self.at(body_end),
                "this clause is not supported in streaming queries",
            );
        }
        self.check_set_expr(&query.body)
    }

    fn check_set_expr(&mut self, body: &SetExpr) -> Flow {
        match body {
            SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::Values(_) => {
                ControlFlow::Continue(())
            }
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let keyword = self.word_after(
                    left.span().end,
                    &["UNION", "INTERSECT", "EXCEPT", "MINUS"],
                    6,
                );
                match (op, set_quantifier) {
                    (SetOperator::Union, SetQuantifier::All) => {}
                    (SetOperator::Union, _) => {
                        return refuse(
                            keyword,
                            "UNION (which removes duplicates) is not supported in streaming \
                             queries; use UNION ALL",
                        );
                    }
                    (op, _) => {
                        return refuse(
                            keyword,
                            format!("{op} is not supported in streaming queries"),
                        );
                    }
                }
                self.check_set_expr(left)?;
                self.check_set_expr(right)
            }
            SetExpr::Table(_) => refuse(
                self.at(body.span().start),
                "TABLE <name> as a query is not supported; write SELECT * FROM <name>",
            ),
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                refuse(
                    self.at(body.span().start),
                    "a data-changing statement inside a query is not supported",
                )
            }
        }
    }

    fn check_select(&mut self, select: &Select) -> Flow {
        let select_at = select.select_token.0.span.start;
        if matches!(select.distinct, Some(Distinct::Distinct | Distinct::On(_))) {
            return refuse(
                self.word_after(select_at, &["DISTINCT"], 3),
                "SELECT DISTINCT is not supported in streaming queries; use GROUP BY",
            );
        }
        if select.top.is_some() || select.into.is_some() {
            return refuse(self.at(select_at), "SELECT TOP / INTO is not supported");
        }
        if let Some(lateral) = select.lateral_views.first() {
            return refuse(
                self.word_before(lateral.lateral_view.span().start, &["LATERAL"], 2),
                "LATERAL VIEW is not supported in streaming queries",
            );
        }
        if let Some(window) = select.named_window.first() {
            return refuse(
                self.word_before(window.0.span.start, &["WINDOW"], 1),
                "named windows (WINDOW ... AS) are not supported: window functions (OVER) are \
                 not supported in streaming queries",
            );
        }
        if let Some(qualify) = &select.qualify {
            return refuse(
                self.word_before(qualify.span().start, &["QUALIFY"], 1),
                "QUALIFY is not supported in streaming queries",
            );
        }
        if !select.cluster_by.is_empty()
            || !select.distribute_by.is_empty()
            || !select.sort_by.is_empty()
            || !select.connect_by.is_empty()
            || select.prewhere.is_some()
        {
            return refuse(
                self.at(select_at),
                "CLUSTER BY / DISTRIBUTE BY / SORT BY / CONNECT BY / PREWHERE are not supported",
            );
        }
        match &select.group_by {
            GroupByExpr::All(_) => {
                return refuse(
                    self.word_after(select_at, &["GROUP"], usize::MAX),
                    "GROUP BY ALL is not supported; name the grouping columns",
                );
            }
            GroupByExpr::Expressions(exprs, modifiers) if !modifiers.is_empty() => {
                let at = exprs.last().map_or(select_at, |e| e.span().end);
                return refuse(
                    self.word_after(at, &["WITH"], 2),
                    "GROUP BY ... WITH ROLLUP/CUBE/TOTALS is not supported in streaming queries",
                );
            }
            GroupByExpr::Expressions(..) => {}
        }
        if let Some(second) = select.from.get(1) {
            let at = second.relation.span().start;
            return refuse(
                self.at(at),
                "comma-separated FROM lists (implicit cross joins) are not supported; write \
                 INNER JOIN ... ON",
            );
        }
        for table in &select.from {
            self.check_joins(table)?;
        }
        ControlFlow::Continue(())
    }

    fn check_joins(&mut self, table: &TableWithJoins) -> Flow {
        for join in &table.joins {
            let relation = join.relation.span();
            let at = self.join_keyword(relation.start);
            let constraint = match &join.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => c,
                // Outer window joins run; the planner refuses the other outer joins.
                JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c) => c,
                JoinOperator::CrossJoin(_) => return refuse(at, unsupported_join("CROSS JOIN")),
                _ => return refuse(at, unsupported_join("this kind of join")),
            };
            match constraint {
                JoinConstraint::On(_) => {}
                JoinConstraint::Natural => return refuse(at, unsupported_join("NATURAL JOIN")),
                JoinConstraint::Using(_) => {
                    return refuse(
                        self.word_after(relation.end, &["USING"], 3),
                        "JOIN ... USING is not supported; write JOIN ... ON",
                    );
                }
                JoinConstraint::None => {
                    return refuse(
                        at,
                        "a JOIN needs an ON condition: cross joins are not supported",
                    );
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn check_table_factor(&mut self, factor: &TableFactor) -> Flow {
        let start = factor.span().start;
        match factor {
            TableFactor::Table {
                name,
                args,
                version,
                sample,
                ..
            } => {
                if args.is_some() {
                    return refuse(
                        self.at(name.span().start),
                        "table functions are not supported; only the window functions \
                         TABLE(TUMBLE|HOP|CUMULATE|SESSION(...)) are",
                    );
                }
                if version.is_some() {
                    return refuse(
                        self.word_after(name.span().end, &["FOR"], 3),
                        "FOR SYSTEM_TIME AS OF (temporal joins) is not supported",
                    );
                }
                if sample.is_some() {
                    return refuse(
                        self.word_after(name.span().end, &["TABLESAMPLE"], 4),
                        "TABLESAMPLE is not supported in streaming queries",
                    );
                }
                ControlFlow::Continue(())
            }
            TableFactor::Derived {
                lateral: true,
                subquery,
                ..
            } => refuse(
                self.word_before(subquery.span().start, &["LATERAL"], 3),
                "LATERAL subqueries are not supported in streaming queries",
            ),
            TableFactor::Derived { .. } => ControlFlow::Continue(()),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.check_joins(table_with_joins),
            TableFactor::Function { lateral: true, .. } => refuse(
                self.word_before(start, &["LATERAL"], 1),
                "LATERAL table functions are not supported in streaming queries",
            ),
            TableFactor::TableFunction { .. } | TableFactor::Function { .. } => refuse(
                self.at(start),
                "table functions are not supported; only the window functions \
                 TABLE(TUMBLE|HOP|CUMULATE|SESSION(...)) are",
            ),
            TableFactor::UNNEST { .. } => refuse(
                self.word_before(start, &["UNNEST"], 16),
                "UNNEST is not supported in streaming queries",
            ),
            TableFactor::MatchRecognize { table, .. } => refuse(
                self.word_after(table.span().end, &["MATCH_RECOGNIZE"], 4),
                "MATCH_RECOGNIZE is not supported in streaming queries",
            ),
            _ => refuse(
                self.at(start),
                "this table expression (PIVOT, UNPIVOT, JSON_TABLE, ...) is not supported",
            ),
        }
    }

    fn check_expr(&mut self, expr: &Expr) -> Flow {
        match expr {
            Expr::Subquery(query) => refuse(
                self.at(query.span().start),
                "scalar subqueries are not supported in streaming queries",
            ),
            Expr::InSubquery { subquery, .. } => refuse(
                self.word_before(subquery.span().start, &["IN"], 3),
                "IN (SELECT ...) subqueries are not supported in streaming queries",
            ),
            Expr::Exists { subquery, .. } => refuse(
                self.word_before(subquery.span().start, &["EXISTS"], 3),
                "EXISTS subqueries are not supported in streaming queries",
            ),
            Expr::Function(function) if function.over.is_some() => refuse(
                self.at(function.name.span().start),
                "window functions (OVER) are not supported in streaming queries",
            ),
            Expr::GroupingSets(_) | Expr::Cube(_) | Expr::Rollup(_) => refuse(
                self.word_before(expr.span().start, &["GROUPING", "ROLLUP", "CUBE"], 6),
                "GROUPING SETS, ROLLUP and CUBE are not supported in streaming queries",
            ),
            _ => ControlFlow::Continue(()),
        }
    }
}

fn unsupported_join(kind: &str) -> String {
    format!("{kind} is not supported in streaming queries; only INNER JOIN ... ON is")
}

impl Visitor for Checker<'_> {
    type Break = Box<Error>;

    fn pre_visit_query(&mut self, query: &Query) -> Flow {
        let start = query.span().start;
        if start.line != 0 {
            self.fallback = start;
        }
        self.check_query(query)
    }

    fn pre_visit_select(&mut self, select: &Select) -> Flow {
        self.check_select(select)
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> Flow {
        self.check_table_factor(factor)
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> Flow {
        self.check_expr(expr)
    }
}
