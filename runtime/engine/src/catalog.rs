//! The tables and views a script declares, as the SQL front end hands them to the planner and
//! to connectors. Types are already resolved to Arrow types; expressions stay as SQL ASTs until
//! the planner binds them against a schema.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sqlparser::ast::{Expr, Query};

use crate::error::SqlLocation;

/// One column of a `CREATE TABLE`, in declared order.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub kind: ColumnKind,
    pub location: SqlLocation,
}

#[derive(Debug, Clone)]
pub enum ColumnKind {
    /// Read from (or written to) the connector. `sql_type` is the type as written, for messages.
    Physical {
        data_type: DataType,
        nullable: bool,
        sql_type: String,
    },
    /// `name AS expr`: computed from the physical columns when the row is read.
    Computed { expr: Box<Expr> },
}

/// `WATERMARK FOR column AS expr`.
#[derive(Debug, Clone)]
pub struct WatermarkDef {
    pub column: String,
    pub expr: Expr,
    pub location: SqlLocation,
}

#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub watermark: Option<WatermarkDef>,
    /// The `WITH ('key' = 'value', ...)` options, keys as written.
    pub options: BTreeMap<String, String>,
    pub location: SqlLocation,
}

impl TableDef {
    /// The `connector` option, if any.
    pub fn connector(&self) -> Option<&str> {
        self.options.get("connector").map(String::as_str)
    }

    /// The columns the connector reads or writes: physical columns in declared order.
    pub fn physical_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .filter_map(|c| match &c.kind {
                ColumnKind::Physical {
                    data_type,
                    nullable,
                    ..
                } => Some(Field::new(&c.name, data_type.clone(), *nullable)),
                ColumnKind::Computed { .. } => None,
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// `CREATE VIEW name [(columns)] AS query`.
#[derive(Debug, Clone)]
pub struct ViewDef {
    pub name: String,
    /// `CREATE VIEW v (a, b) AS ...`: names for the query's columns, in order; empty when the
    /// query's own names are used.
    pub columns: Vec<String>,
    pub query: Box<Query>,
    pub location: SqlLocation,
}

/// `INSERT INTO table SELECT ...`.
#[derive(Debug, Clone)]
pub struct InsertDef {
    pub table: String,
    /// Optional explicit column list: `INSERT INTO t (a, b) SELECT ...`.
    pub columns: Vec<String>,
    pub query: Box<Query>,
    pub location: SqlLocation,
}

/// Everything a script declares, in order of declaration where order matters.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub tables: Vec<TableDef>,
    pub views: Vec<ViewDef>,
    /// `SET 'key' = 'value'` in script order (later ones win).
    pub settings: Vec<(String, String)>,
    /// All INSERTs, whether single statements or inside `EXECUTE STATEMENT SET`.
    pub inserts: Vec<InsertDef>,
    /// Window TVF calls, replaced in the queries above by references to their `name`.
    pub windows: Vec<WindowTvfDef>,
}

impl Script {
    pub fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    pub fn view(&self, name: &str) -> Option<&ViewDef> {
        self.views
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
    }

    pub fn window(&self, name: &str) -> Option<&WindowTvfDef> {
        self.windows
            .iter()
            .find(|w| w.name.eq_ignore_ascii_case(name))
    }
}

/// A windowing table-valued function call, `TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), …))`.
///
/// The SQL front end replaces each call in the script by a reference to a synthetic table named
/// [`WindowTvfDef::name`] (`__weir_window_0`, …) whose columns are the input's columns followed
/// by `window_start`, `window_end` and `window_time`; the planner turns that table back into a
/// window assignment (or, under a `GROUP BY window_start, window_end`, a window aggregate).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowTvfDef {
    pub name: String,
    pub function: WindowFunction,
    /// The table or view passed as `TABLE name`.
    pub input: String,
    /// The time attribute column passed as `DESCRIPTOR(col)`.
    pub time_column: String,
    /// `SESSION(TABLE t PARTITION BY k1, k2, …)`: empty for the others.
    pub partition_by: Vec<String>,
    pub location: SqlLocation,
}

/// Window sizes in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowFunction {
    Tumble {
        size: i64,
        offset: i64,
    },
    Hop {
        slide: i64,
        size: i64,
        offset: i64,
    },
    Cumulate {
        step: i64,
        max_size: i64,
        offset: i64,
    },
    Session {
        gap: i64,
    },
}
