//! From a parsed script to a job graph.
//!
//! DataFusion's SQL planner turns each query into a logical plan (name resolution, type
//! coercion, functions); this module walks that plan and builds streaming operators:
//!
//! - a table scan becomes a source, a Calc for computed columns and a watermark assigner;
//! - projections and filters become Calcs (chained into the task before them);
//! - an aggregate over a window TVF grouped by `window_start, window_end` becomes a keyed
//!   window aggregate; any other aggregate becomes an updating (changelog) group aggregate;
//! - `UNION ALL` becomes a union; an `INSERT INTO` becomes a sink.
//!
//! Anything else in a plan is refused before the job starts, with the statement's location.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{Column, DFSchema, DataFusionError, ScalarValue};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::logical_plan::builder::LogicalPlanBuilder;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::{Expr, LogicalPlan};
use datafusion_optimizer::Analyzer;
use datafusion_physical_expr::{PhysicalExpr, create_physical_expr};
use datafusion_sql::planner::{ParserOptions, PlannerContext, SqlToRel};
use sqlparser::ast::Statement;

use crate::catalog::{ColumnKind, InsertDef, Script, TableDef, WindowFunction, WindowTvfDef};
use crate::connectors;
use crate::dataflow::alignment::AlignmentSpec;
use crate::dataflow::graph::{JobGraph, NodeId, NodeKind, Partitioning};
use crate::dataflow::message::ROW_KIND_COLUMN;
use crate::dataflow::operator::{Operator, TaskInfo};
use crate::dataflow::state::StateProvider;
use crate::error::{Error, Result, SqlLocation};
use crate::operators::aggregate::{AggFunction, AggregateCall};
use crate::operators::calc::Calc;
use crate::operators::group_aggregate::{GroupAggregate, GroupAggregateSpec};
use crate::operators::union::Union;
use crate::operators::watermark_assigner::WatermarkAssigner;
use crate::operators::window_aggregate::{
    OutputColumn, WindowAggregate, WindowAggregateSpec, WindowKind,
};
use crate::operators::window_assign::WindowAssign;
use crate::sql::context::PlanningContext;
use crate::types;

mod attributes;
mod interval;
mod join;
mod window_join;
mod windowed;

use attributes::{Attributes, passed_through};

/// Job-wide settings that shape the plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub parallelism: usize,
    pub max_parallelism: usize,
    /// `pipeline.auto-watermark-interval`.
    pub watermark_interval: Duration,
}

/// Plan every INSERT of the script into one job graph.
pub fn plan_script(script: &Script, options: &PlanOptions) -> Result<JobGraph> {
    if script.inserts.is_empty() {
        return Err(Error::sql(
            SqlLocation { line: 1, column: 1 },
            "the script has no INSERT INTO statement, so the job would have no sink",
        ));
    }
    let mut planner = Planner::new(script, options);
    planner.register_tables()?;
    planner.register_views_and_windows()?;
    for insert in &script.inserts {
        planner.plan_insert(insert)?;
    }
    Ok(planner.graph)
}

/// A source table with its computed columns and watermark bound to expressions.
struct BoundTable {
    def: Arc<TableDef>,
    /// Physical then computed columns, in declared order.
    full_schema: SchemaRef,
    /// One expression per column of `full_schema`, over the physical columns; `None` when the
    /// full schema is just the physical columns.
    computed: Option<Vec<Expr>>,
    /// The rowtime column (in the full schema) and the watermark expression over the full schema.
    watermark: Option<(usize, Expr)>,
}

/// A stream being built: the node that produces it and what its batches look like.
#[derive(Clone)]
struct Stream {
    node: NodeId,
    /// Visible columns (no row-kind column).
    schema: SchemaRef,
    /// The same columns as the logical plan names them (with table qualifiers), which is what
    /// the plan's expressions over this stream refer to.
    df: Arc<DFSchema>,
    updating: bool,
    parallelism: usize,
    /// Time attributes and window columns.
    attrs: Attributes,
}

impl Stream {
    fn new(node: NodeId, schema: SchemaRef, updating: bool, parallelism: usize) -> Result<Self> {
        Ok(Stream {
            node,
            df: plain_df(&schema)?,
            schema,
            updating,
            parallelism,
            attrs: Attributes::default(),
        })
    }

    fn with_attrs(mut self, attrs: Attributes) -> Self {
        self.attrs = attrs;
        self
    }

    /// The index of a plain column reference into this stream.
    fn index_of(&self, expr: &Expr) -> Option<usize> {
        match expr {
            Expr::Column(c) => self.df.index_of_column(c).ok(),
            _ => None,
        }
    }

    /// A reference to column `i`, as the plan's expressions over this stream name it.
    fn column(&self, i: usize) -> Expr {
        Expr::Column(Column::from(self.df.qualified_field(i)))
    }

    /// Forget the qualifiers (for expressions written against a window TVF's table).
    fn unqualified(mut self) -> Result<Self> {
        self.df = plain_df(&self.schema)?;
        Ok(self)
    }
}

/// An unqualified DataFusion schema for an Arrow schema. Columns whose names repeat (a join's
/// output before a projection renames them) get a positional qualifier each, so the schema is
/// valid; the planner overwrites it with the plan's own names where the plan has them.
fn plain_df(schema: &SchemaRef) -> Result<Arc<DFSchema>> {
    match DFSchema::try_from(schema.as_ref().clone()) {
        Ok(df) => Ok(Arc::new(df)),
        Err(_) => {
            let fields = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    (
                        Some(datafusion_common::TableReference::bare(format!(
                            "__weir_{i}"
                        ))),
                        f.clone(),
                    )
                })
                .collect();
            Ok(Arc::new(DFSchema::new_with_metadata(
                fields,
                Default::default(),
            )?))
        }
    }
}

struct Planner<'a> {
    script: &'a Script,
    options: &'a PlanOptions,
    context: PlanningContext,
    graph: JobGraph,
    tables: HashMap<String, BoundTable>,
    views: HashMap<String, LogicalPlan>,
    windows: HashMap<String, WindowTvfDef>,
    /// Each source table is read once, whatever reads it (Flink's
    /// `table.optimizer.reuse-source-enabled`): the streams built so far, by table.
    sources: HashMap<String, Stream>,
    /// The statement being planned, for errors that have no finer location.
    location: SqlLocation,
}

fn parser_options() -> ParserOptions {
    ParserOptions::new()
        .with_parse_float_as_decimal(true)
        .with_enable_ident_normalization(false)
        .with_collect_spans(true)
}

impl<'a> Planner<'a> {
    fn new(script: &'a Script, options: &'a PlanOptions) -> Self {
        Planner {
            script,
            options,
            context: PlanningContext::new(),
            graph: JobGraph::new(options.max_parallelism),
            tables: HashMap::new(),
            views: HashMap::new(),
            windows: HashMap::new(),
            sources: HashMap::new(),
            location: SqlLocation { line: 1, column: 1 },
        }
    }

    fn df_error(&self, e: DataFusionError) -> Error {
        df_error(e, self.location)
    }

    /// Bind computed columns and watermarks, and register every table's full schema.
    fn register_tables(&mut self) -> Result<()> {
        for def in &self.script.tables {
            self.location = def.location;
            let bound = self.bind_table(def)?;
            self.context.register(&def.name, bound.full_schema.clone());
            self.tables.insert(def.name.clone(), bound);
        }
        Ok(())
    }

    fn bind_table(&self, def: &TableDef) -> Result<BoundTable> {
        let physical = def.physical_schema();
        let physical_df = DFSchema::try_from(physical.as_ref().clone())?;
        let sql = SqlToRel::new_with_options(&self.context, parser_options());
        let has_computed = def
            .columns
            .iter()
            .any(|c| matches!(c.kind, ColumnKind::Computed { .. }));
        let mut exprs = Vec::new();
        for column in &def.columns {
            match &column.kind {
                ColumnKind::Physical { .. } => {
                    exprs.push(Expr::Column(Column::new_unqualified(&column.name)))
                }
                ColumnKind::Computed { expr } => {
                    let bound = sql
                        .sql_to_expr(
                            expr.as_ref().clone(),
                            &physical_df,
                            &mut PlannerContext::new(),
                        )
                        .map_err(|e| df_error(e, column.location))?;
                    exprs.push(bound.alias(&column.name));
                }
            }
        }
        let (full_schema, computed) = if has_computed {
            let (schema, exprs) =
                coerce_projection(&physical, exprs).map_err(|e| df_error(e, def.location))?;
            (schema, Some(exprs))
        } else {
            (physical.clone(), None)
        };
        let watermark = match &def.watermark {
            None => None,
            Some(wm) => {
                let index = full_schema.index_of(&wm.column).map_err(|_| {
                    Error::sql(
                        wm.location,
                        format!(
                            "the watermark column `{}` is not a column of table `{}`",
                            wm.column, def.name
                        ),
                    )
                })?;
                let rowtime_type = full_schema.field(index).data_type();
                if !types::is_timestamp(rowtime_type) {
                    return Err(Error::sql(
                        wm.location,
                        format!(
                            "the watermark column `{}` must be TIMESTAMP(3) or TIMESTAMP_LTZ(3), but is {}",
                            wm.column,
                            types::flink_type_name(rowtime_type)
                        ),
                    ));
                }
                let full_df = DFSchema::try_from(full_schema.as_ref().clone())?;
                let bound = sql
                    .sql_to_expr(wm.expr.clone(), &full_df, &mut PlannerContext::new())
                    .map_err(|e| df_error(e, wm.location))?;
                let (schema, mut exprs) = coerce_projection(&full_schema, vec![bound])
                    .map_err(|e| df_error(e, wm.location))?;
                if !types::is_timestamp(schema.field(0).data_type()) {
                    return Err(Error::sql(
                        wm.location,
                        format!(
                            "the watermark expression must return a TIMESTAMP(3) or TIMESTAMP_LTZ(3), but returns {}",
                            types::flink_type_name(schema.field(0).data_type())
                        ),
                    ));
                }
                Some((index, exprs.remove(0)))
            }
        };
        Ok(BoundTable {
            def: Arc::new(def.clone()),
            full_schema,
            computed,
            watermark,
        })
    }

    /// Views and window TVFs may refer to each other in any order the script allows, so
    /// register whatever can be planned until nothing more can.
    fn register_views_and_windows(&mut self) -> Result<()> {
        let mut pending_views: Vec<_> = self.script.views.iter().collect();
        let mut pending_windows: Vec<_> = self.script.windows.iter().collect();
        loop {
            let before = pending_views.len() + pending_windows.len();
            let mut first_error = None;
            pending_windows.retain(|w| {
                let Some(input_schema) = self.schema_of(&w.input) else {
                    return true;
                };
                match window_schema(w, &input_schema) {
                    Ok(schema) => {
                        self.context.register(&w.name, schema);
                        self.windows.insert(w.name.clone(), (*w).clone());
                        false
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                        true
                    }
                }
            });
            pending_views.retain(|v| {
                self.location = v.location;
                match self.plan_query(&v.query) {
                    Ok(plan) => {
                        let schema = unqualified_schema(plan.schema().as_arrow());
                        self.context.register(&v.name, schema);
                        self.views.insert(v.name.clone(), plan);
                        false
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                        true
                    }
                }
            });
            if pending_views.is_empty() && pending_windows.is_empty() {
                return Ok(());
            }
            if pending_views.len() + pending_windows.len() == before {
                if let Some(e) = first_error {
                    return Err(e);
                }
                let w = pending_windows
                    .first()
                    .map(|w| (w.location, w.input.clone()));
                let (location, input) = w.unwrap_or_default();
                return Err(Error::sql(
                    location,
                    format!("window function over unknown table or view `{input}`"),
                ));
            }
        }
    }

    fn schema_of(&self, name: &str) -> Option<SchemaRef> {
        if let Some(t) = self.tables.get(name) {
            return Some(t.full_schema.clone());
        }
        self.views
            .get(name)
            .map(|plan| unqualified_schema(plan.schema().as_arrow()))
    }

    fn plan_query(&self, query: &sqlparser::ast::Query) -> Result<LogicalPlan> {
        let sql = SqlToRel::new_with_options(&self.context, parser_options());
        let plan = sql
            .sql_statement_to_plan(Statement::Query(Box::new(query.clone())))
            .and_then(flink_integer_literals)
            .map_err(|e| self.df_error(e))?;
        Analyzer::new()
            .execute_and_check(plan, self.context_options(), |_, _| {})
            .map_err(|e| self.df_error(e))
    }

    fn context_options(&self) -> &datafusion_common::config::ConfigOptions {
        use datafusion_expr::planner::ContextProvider;
        self.context.options()
    }

    fn plan_insert(&mut self, insert: &InsertDef) -> Result<()> {
        self.location = insert.location;
        let table = self.script.table(&insert.table).ok_or_else(|| {
            Error::sql(
                insert.location,
                format!("INSERT INTO unknown table `{}`", insert.table),
            )
        })?;
        let connector = connectors::connector_for(table)?;
        connector.validate(table, false)?;
        let plan = self.plan_query(&insert.query)?;
        let stream = self.translate(&plan)?;
        let sink_schema = table.physical_schema();
        let stream = self.conform_to_sink(stream, &sink_schema, table, &insert.columns)?;
        if stream.updating && !connector.accepts_changelog() {
            return Err(Error::unsupported(
                insert.location,
                format!(
                    "table sink `{}` (connector '{}') doesn't support consuming update changes, which the query produces with a non-windowed GROUP BY; use a window aggregation, or a sink that accepts a changelog (print, blackhole)",
                    table.name,
                    connector.name()
                ),
            ));
        }
        let node_schema = with_row_kind(&sink_schema, stream.updating);
        let sink = self.graph.add_node(
            format!(
                "Sink(table=[{}], connector=[{}])",
                table.name,
                connector.name()
            ),
            stream.parallelism,
            NodeKind::Sink {
                table: Arc::new(table.clone()),
                updating: stream.updating,
            },
            node_schema,
            stream.updating,
        );
        self.graph
            .connect(stream.node, sink, 0, Partitioning::Forward);
        Ok(())
    }

    /// Reorder (for an explicit column list) and cast the query's columns to the sink's.
    fn conform_to_sink(
        &mut self,
        stream: Stream,
        sink: &SchemaRef,
        table: &TableDef,
        columns: &[String],
    ) -> Result<Stream> {
        let source_fields = stream.schema.fields();
        // For each sink column, the query column feeding it (None: NULL).
        let mapping: Vec<Option<usize>> = if columns.is_empty() {
            if source_fields.len() != sink.fields().len() {
                return Err(Error::sql(
                    self.location,
                    format!(
                        "the query returns {} columns but sink table `{}` has {} ({})",
                        source_fields.len(),
                        table.name,
                        sink.fields().len(),
                        field_list(sink)
                    ),
                ));
            }
            (0..sink.fields().len()).map(Some).collect()
        } else {
            if columns.len() != source_fields.len() {
                return Err(Error::sql(
                    self.location,
                    format!(
                        "the INSERT lists {} columns but the query returns {}",
                        columns.len(),
                        source_fields.len()
                    ),
                ));
            }
            for c in columns {
                if sink.index_of(c).is_err() {
                    return Err(Error::sql(
                        self.location,
                        format!("unknown column `{c}` of sink table `{}`", table.name),
                    ));
                }
            }
            sink.fields()
                .iter()
                .map(|f| columns.iter().position(|c| c == f.name()))
                .collect()
        };
        let identity = mapping.iter().enumerate().all(|(i, m)| *m == Some(i))
            && sink
                .fields()
                .iter()
                .zip(source_fields.iter())
                .all(|(s, q)| s.data_type() == q.data_type() && s.name() == q.name());
        if identity {
            return Ok(stream);
        }
        let mut exprs = Vec::new();
        for (i, field) in sink.fields().iter().enumerate() {
            let expr = match mapping[i] {
                None => Expr::Literal(ScalarValue::try_from(field.data_type())?, None),
                Some(q) => {
                    let from = source_fields[q].data_type();
                    let column = stream.column(q);
                    if from == field.data_type() {
                        column
                    } else if implicitly_castable(from, field.data_type()) {
                        Expr::Cast(datafusion_expr::Cast::new(
                            Box::new(column),
                            field.data_type().clone(),
                        ))
                    } else {
                        return Err(Error::sql(
                            self.location,
                            format!(
                                "column types of query result and sink `{}` do not match: column `{}` is {} in the query but {} in the sink",
                                table.name,
                                field.name(),
                                types::flink_type_name(from),
                                types::flink_type_name(field.data_type())
                            ),
                        ));
                    }
                }
            };
            exprs.push(expr.alias(field.name()));
        }
        let out_schema = Arc::new(Schema::new(
            sink.fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        self.add_calc(
            &stream,
            None,
            Some((exprs, out_schema)),
            "Calc(cast to sink)".into(),
        )
    }

    /// Build the operators of `plan`; the stream's columns are named as the plan names them.
    fn translate(&mut self, plan: &LogicalPlan) -> Result<Stream> {
        let mut stream = self.translate_node(plan)?;
        let df = plan.schema();
        if df.fields().len() != stream.schema.fields().len() {
            return Err(Error::execution(
                "planner",
                format!(
                    "internal: {} columns planned where the plan has {}",
                    stream.schema.fields().len(),
                    df.fields().len()
                ),
            ));
        }
        stream.df = df.clone();
        Ok(stream)
    }

    fn translate_node(&mut self, plan: &LogicalPlan) -> Result<Stream> {
        match plan {
            LogicalPlan::Projection(p) => {
                let input = self.translate(&p.input)?;
                let schema = unqualified_schema(p.schema.as_arrow());
                let name = format!("Calc(select=[{}])", field_list(&schema));
                let mapping: Vec<Option<usize>> = p
                    .expr
                    .iter()
                    .map(|e| passed_through(e, |c| input.index_of(c)))
                    .collect();
                let attrs = input.attrs.project(&mapping);
                Ok(self
                    .add_calc(&input, None, Some((p.expr.clone(), schema)), name)?
                    .with_attrs(attrs))
            }
            LogicalPlan::Filter(f) => {
                let input = self.translate(&f.input)?;
                let name = format!("Calc(where=[{}])", f.predicate.human_display());
                let attrs = input.attrs.clone();
                Ok(self
                    .add_calc(&input, Some(&f.predicate), None, name)?
                    .with_attrs(attrs))
            }
            LogicalPlan::SubqueryAlias(a) => self.translate(&a.input),
            LogicalPlan::TableScan(scan) => {
                let name = scan.table_name.table().to_string();
                let stream = if self.tables.contains_key(&name) {
                    self.source_stream(&name)?
                } else if let Some(view) = self.views.get(&name).cloned() {
                    self.translate(&view)?
                } else if let Some(window) = self.windows.get(&name).cloned() {
                    self.window_assign_stream(&window)?
                } else {
                    return Err(Error::sql(self.location, format!("unknown table `{name}`")));
                };
                match &scan.projection {
                    Some(indices) if !is_identity(indices, stream.schema.fields().len()) => {
                        let exprs: Vec<Expr> = indices.iter().map(|i| stream.column(*i)).collect();
                        let schema = Arc::new(stream.schema.project(indices)?);
                        let name = format!("Calc(select=[{}])", field_list(&schema));
                        let mapping: Vec<Option<usize>> =
                            indices.iter().map(|i| Some(*i)).collect();
                        let attrs = stream.attrs.project(&mapping);
                        Ok(self
                            .add_calc(&stream, None, Some((exprs, schema)), name)?
                            .with_attrs(attrs))
                    }
                    _ => Ok(stream),
                }
            }
            LogicalPlan::Aggregate(agg) => match self.find_window(&agg.input)? {
                Some((window, filters)) => self.window_aggregate(agg, &window, &filters),
                None => {
                    let input = self.translate(&agg.input)?;
                    match self.window_of_grouping(agg, &input)? {
                        Some(window) => self.window_aggregate_over_columns(agg, input, window),
                        None => self.group_aggregate(agg, input),
                    }
                }
            },
            LogicalPlan::Union(u) => {
                let mut inputs = Vec::new();
                for input in &u.inputs {
                    inputs.push(self.translate(input)?);
                }
                let attrs: Vec<Attributes> = inputs.iter().map(|s| s.attrs.clone()).collect();
                Ok(self
                    .union(inputs, unqualified_schema(u.schema.as_arrow()))?
                    .with_attrs(Attributes::intersect(&attrs)))
            }
            LogicalPlan::Join(join) => self.plan_join(join),
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => Err(Error::unsupported(
                self.location,
                "a query must read from a table: VALUES and SELECT without FROM are not supported",
            )),
            other => Err(Error::unsupported(
                self.location,
                format!(
                    "{} is not supported in streaming queries",
                    other
                        .display()
                        .to_string()
                        .split('(')
                        .next()
                        .unwrap_or("this operation")
                ),
            )),
        }
    }

    fn source_stream(&mut self, name: &str) -> Result<Stream> {
        if let Some(stream) = self.sources.get(name) {
            return Ok(stream.clone());
        }
        let table = &self.tables[name];
        let def = table.def.clone();
        let connector = connectors::connector_for(&def)?;
        connector.validate(&def, true)?;
        AlignmentSpec::of_table(&def)?;
        let p = self.options.parallelism;
        let physical = def.physical_schema();
        let full_schema = table.full_schema.clone();
        let computed = table.computed.clone();
        let watermark = table.watermark.clone();
        let source = self.graph.add_node(
            format!(
                "Source(table=[{}], connector=[{}], fields=[{}])",
                def.name,
                connector.name(),
                field_list(&physical)
            ),
            p,
            NodeKind::Source { table: def.clone() },
            physical.clone(),
            false,
        );
        let mut stream = Stream::new(source, physical, false, p)?;
        if let Some(exprs) = computed {
            let name = format!("Calc(computed=[{}])", field_list(&full_schema));
            stream = self.add_calc(&stream, None, Some((exprs, full_schema.clone())), name)?;
        }
        if let Some((rowtime, expr)) = watermark {
            let physical_expr = physical_expr(&expr, &stream.df)?;
            let schema = stream.schema.clone();
            let interval = self.options.watermark_interval;
            let name = format!(
                "WatermarkAssigner(rowtime=[{}], watermark=[{}])",
                schema.field(rowtime).name(),
                expr.human_display()
            );
            let op_name = name.clone();
            let node = self.graph.add_node(
                name,
                p,
                NodeKind::Operator {
                    factory: Arc::new(move |_: &TaskInfo, _: &StateProvider| {
                        Ok(Box::new(WatermarkAssigner::new(
                            op_name.clone(),
                            rowtime,
                            physical_expr.clone(),
                            schema.clone(),
                            interval,
                        )) as Box<dyn Operator>)
                    }),
                },
                stream.schema.clone(),
                false,
            );
            self.graph
                .connect(stream.node, node, 0, Partitioning::Forward);
            stream.node = node;
            stream.attrs.time.insert(rowtime);
        }
        self.sources.insert(name.to_string(), stream.clone());
        Ok(stream)
    }

    /// The stream of a window TVF's input (a table or view), before any window is assigned.
    fn window_input(&mut self, window: &WindowTvfDef) -> Result<Stream> {
        let input = if self.tables.contains_key(&window.input) {
            self.source_stream(&window.input)?.unqualified()?
        } else if let Some(view) = self.views.get(&window.input).cloned() {
            self.translate(&view)?.unqualified()?
        } else {
            return Err(Error::sql(
                window.location,
                format!("unknown table or view `{}`", window.input),
            ));
        };
        // Flink's check: the DESCRIPTOR column must still be a rowtime attribute.
        let time = time_column_index(window, &input.schema)?;
        if !input.attrs.time.contains(&time) {
            return Err(Error::sql(
                window.location,
                format!(
                    "the window function requires the time column `{}` to be a time attribute, but it is a regular {} in `{}` (declare a WATERMARK for it on the source table; a computed expression, a regular join or a GROUP BY turns a time attribute into a regular timestamp)",
                    window.time_column,
                    types::flink_type_name(input.schema.field(time).data_type()),
                    window.input
                ),
            ));
        }
        Ok(input)
    }

    fn window_assign_stream(&mut self, window: &WindowTvfDef) -> Result<Stream> {
        let input = self.window_input(window)?;
        if input.updating {
            return Err(Error::unsupported(
                window.location,
                "a window function over an updating (changelog) input is not supported",
            ));
        }
        if let WindowFunction::Session { .. } = window.function {
            return Err(Error::unsupported(
                window.location,
                "SESSION windows are supported only under a GROUP BY window_start, window_end aggregation",
            ));
        }
        let aligned = window_kind(&window.function);
        let time = time_column_index(window, &input.schema)?;
        let schema = window_schema(window, &input.schema)?;
        let name = format!(
            "WindowTableFunction(window=[{}], time=[{}])",
            describe_window(&window.function),
            window.time_column
        );
        let op_name = name.clone();
        let op_schema = schema.clone();
        let node = self.graph.add_node(
            name,
            input.parallelism,
            NodeKind::Operator {
                factory: Arc::new(move |_: &TaskInfo, _: &StateProvider| {
                    Ok(Box::new(WindowAssign::new(
                        op_name.clone(),
                        aligned,
                        time,
                        op_schema.clone(),
                    )) as Box<dyn Operator>)
                }),
            },
            schema.clone(),
            false,
        );
        self.graph
            .connect(input.node, node, 0, Partitioning::Forward);
        let n = schema.fields().len();
        let attrs = Attributes {
            time: [n - 1].into(),
            window: Some(attributes::WindowColumns {
                starts: [n - 3].into(),
                ends: [n - 2].into(),
                times: [n - 1].into(),
                function: window.function,
            }),
        };
        Ok(Stream::new(node, schema, false, input.parallelism)?.with_attrs(attrs))
    }

    /// Below an aggregate: a window TVF reached through aliases and filters, if there is one.
    fn find_window(&self, plan: &LogicalPlan) -> Result<Option<(WindowTvfDef, Vec<Expr>)>> {
        let mut filters = Vec::new();
        let mut current = plan;
        loop {
            match current {
                LogicalPlan::SubqueryAlias(a) => current = &a.input,
                LogicalPlan::Filter(f) => {
                    filters.push(f.predicate.clone());
                    current = &f.input;
                }
                LogicalPlan::TableScan(scan) => {
                    let Some(window) = self.windows.get(scan.table_name.table()) else {
                        return Ok(None);
                    };
                    for filter in &filters {
                        if references_window_columns(filter) {
                            return Err(Error::unsupported(
                                window.location,
                                "a WHERE condition on window_start, window_end or window_time before the window aggregation is not supported; filter the aggregated result instead",
                            ));
                        }
                    }
                    return Ok(Some((window.clone(), filters)));
                }
                _ => return Ok(None),
            }
        }
    }

    fn window_aggregate(
        &mut self,
        agg: &datafusion_expr::logical_plan::Aggregate,
        window: &WindowTvfDef,
        filters: &[Expr],
    ) -> Result<Stream> {
        let mut input = self.window_input(window)?;
        if input.updating {
            return Err(Error::unsupported(
                window.location,
                "a window aggregation over an updating (changelog) input is not supported",
            ));
        }
        for filter in filters {
            let name = format!("Calc(where=[{}])", filter.human_display());
            input = self.add_calc(&input, Some(&unqualify(filter.clone())), None, name)?;
        }
        let time = time_column_index(window, &input.schema)?;
        let mut output = Vec::new();
        let mut key_exprs = Vec::new();
        for expr in &agg.group_expr {
            let column = match unalias(expr) {
                Expr::Column(c) => Some(c.name.as_str()),
                _ => None,
            };
            match column {
                Some("window_start") => output.push(OutputColumn::WindowStart),
                Some("window_end") => output.push(OutputColumn::WindowEnd),
                Some("window_time") => output.push(OutputColumn::WindowTime),
                _ => {
                    if references_window_columns(expr) {
                        return Err(Error::unsupported(
                            self.location,
                            format!(
                                "GROUP BY expression {} on window columns is not supported; group by window_start and window_end themselves",
                                expr.human_display()
                            ),
                        ));
                    }
                    output.push(OutputColumn::Key(key_exprs.len()));
                    key_exprs.push(expr.clone());
                }
            }
        }
        if !output.contains(&OutputColumn::WindowStart)
            || !output.contains(&OutputColumn::WindowEnd)
        {
            return Err(Error::unsupported(
                self.location,
                "an aggregation over a window function must GROUP BY both window_start and window_end",
            ));
        }
        let (calls, arg_exprs) = self.aggregate_calls(agg, 1 + key_exprs.len())?;
        for j in 0..calls.len() {
            output.push(OutputColumn::Aggregate(j));
        }
        // Pre-projection: time, keys, aggregate arguments.
        let mut exprs = vec![input.column(time)];
        exprs.extend(key_exprs.iter().cloned().map(unqualify));
        exprs.extend(arg_exprs.into_iter().map(unqualify));
        let pre = self.project_positional(&input, exprs, "window aggregate input")?;
        let keys: Vec<usize> = (1..=key_exprs.len()).collect();
        let output_schema = unqualified_schema(agg.schema.as_arrow());
        let kind = window_kind(&window.function);
        let input_schema = pre.schema.clone();
        let spec = WindowAggregateSpec {
            window: kind,
            time_column: 0,
            key_columns: keys.clone(),
            aggregates: calls,
            output: output.clone(),
            output_schema: output_schema.clone(),
        };
        let parallelism = if keys.is_empty() {
            1
        } else {
            self.options.parallelism
        };
        let name = format!(
            "WindowAggregate(window=[{}], groupBy=[{}], select=[{}])",
            describe_window(&window.function),
            agg.group_expr
                .iter()
                .map(|e| e.human_display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            field_list(&output_schema)
        );
        let node = self.graph.add_node(
            name,
            parallelism,
            NodeKind::Operator {
                factory: Arc::new(move |task: &TaskInfo, state: &StateProvider| {
                    let backend = state.open(&task.uid, task.subtask)?;
                    Ok(Box::new(
                        WindowAggregate::new(
                            spec.clone(),
                            task.clone(),
                            backend,
                            weir_state::StateId(0),
                        )?
                        .with_input_schema(input_schema.clone()),
                    ) as Box<dyn Operator>)
                }),
            },
            output_schema.clone(),
            false,
        );
        self.graph
            .connect(pre.node, node, 0, Partitioning::Hash(keys));
        let attrs = windowed::output_attributes(&output, window.function);
        Ok(Stream::new(node, output_schema, false, parallelism)?.with_attrs(attrs))
    }

    fn group_aggregate(
        &mut self,
        agg: &datafusion_expr::logical_plan::Aggregate,
        input: Stream,
    ) -> Result<Stream> {
        let key_count = agg.group_expr.len();
        let (calls, arg_exprs) = self.aggregate_calls(agg, key_count)?;
        let mut exprs: Vec<Expr> = agg.group_expr.clone();
        exprs.extend(arg_exprs);
        let pre = self.project_positional(&input, exprs, "group aggregate input")?;
        let keys: Vec<usize> = (0..key_count).collect();
        let visible = unqualified_schema(agg.schema.as_arrow());
        let spec = GroupAggregateSpec {
            key_columns: keys.clone(),
            aggregates: calls,
            input_updating: input.updating,
            output_schema: with_row_kind(&visible, true),
        };
        let parallelism = if keys.is_empty() {
            1
        } else {
            self.options.parallelism
        };
        let name = format!(
            "GroupAggregate(groupBy=[{}], select=[{}])",
            agg.group_expr
                .iter()
                .map(|e| e.human_display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            field_list(&visible)
        );
        let node = self.graph.add_node(
            name,
            parallelism,
            NodeKind::Operator {
                factory: Arc::new(move |task: &TaskInfo, state: &StateProvider| {
                    let backend = state.open(&task.uid, task.subtask)?;
                    Ok(Box::new(GroupAggregate::new(
                        spec.clone(),
                        task.clone(),
                        backend,
                        weir_state::StateId(0),
                    )?) as Box<dyn Operator>)
                }),
            },
            with_row_kind(&visible, true),
            true,
        );
        self.graph
            .connect(pre.node, node, 0, Partitioning::Hash(keys));
        Stream::new(node, visible, true, parallelism)
    }

    /// The aggregate calls of `agg`, with argument columns numbered from `first_arg`, and the
    /// argument expressions to project.
    fn aggregate_calls(
        &self,
        agg: &datafusion_expr::logical_plan::Aggregate,
        first_arg: usize,
    ) -> Result<(Vec<AggregateCall>, Vec<Expr>)> {
        let mut calls = Vec::new();
        let mut args = Vec::new();
        let output_fields = agg.schema.fields();
        for (j, expr) in agg.aggr_expr.iter().enumerate() {
            let Expr::AggregateFunction(f) = unalias(expr) else {
                return Err(Error::unsupported(
                    self.location,
                    format!("unsupported aggregate expression {}", expr.human_display()),
                ));
            };
            let params = &f.params;
            if params.filter.is_some() || !params.order_by.is_empty() {
                return Err(Error::unsupported(
                    self.location,
                    format!(
                        "FILTER and WITHIN GROUP on aggregates are not supported: {}",
                        expr.human_display()
                    ),
                ));
            }
            let name = f.func.name().to_ascii_lowercase();
            let is_count_star = name == "count"
                && !params.distinct
                && (params.args.is_empty()
                    || matches!(params.args.as_slice(), [Expr::Literal(v, _)] if !v.is_null()));
            let function = match (name.as_str(), params.distinct) {
                ("count", _) if is_count_star => AggFunction::CountStar,
                ("count", true) => AggFunction::CountDistinct,
                ("count", false) => AggFunction::Count,
                ("sum", false) => AggFunction::Sum,
                ("min", _) => AggFunction::Min,
                ("max", _) => AggFunction::Max,
                ("avg", false) => AggFunction::Avg,
                (other, distinct) => {
                    let distinct = if distinct { "DISTINCT " } else { "" };
                    return Err(Error::unsupported(
                        self.location,
                        format!(
                            "aggregate function {}({distinct}…) is not supported; supported: COUNT, COUNT(DISTINCT), SUM, MIN, MAX, AVG",
                            other.to_ascii_uppercase()
                        ),
                    ));
                }
            };
            let arg = if function == AggFunction::CountStar {
                None
            } else {
                if params.args.len() != 1 {
                    return Err(Error::unsupported(
                        self.location,
                        format!("{} takes one argument", name.to_ascii_uppercase()),
                    ));
                }
                args.push(params.args[0].clone());
                Some(first_arg + args.len() - 1)
            };
            let output_type = output_fields[agg.group_expr.len() + j].data_type().clone();
            calls.push(AggregateCall {
                function,
                arg,
                output_type,
            });
        }
        Ok((calls, args))
    }

    /// A Calc computing `exprs` into columns named `c0`, `c1`, … (positions matter, not names).
    fn project_positional(
        &mut self,
        input: &Stream,
        exprs: Vec<Expr>,
        what: &str,
    ) -> Result<Stream> {
        let mut fields = Vec::new();
        let mut named = Vec::new();
        for (i, expr) in exprs.into_iter().enumerate() {
            let expr = unalias(&expr).clone();
            let physical = create_physical_expr(
                &expr,
                &input.df,
                &ExecutionProps::new(),
                &PhysicalPlanningContext::default(),
            )
            .map_err(|e| self.df_error(e))?;
            let data_type = physical.data_type(&input.schema)?;
            fields.push(Field::new(format!("c{i}"), data_type, true));
            named.push(expr.alias(format!("c{i}")));
        }
        let schema = Arc::new(Schema::new(fields));
        self.add_calc(input, None, Some((named, schema)), format!("Calc({what})"))
    }

    fn union(&mut self, inputs: Vec<Stream>, schema: SchemaRef) -> Result<Stream> {
        let updating = inputs.iter().any(|s| s.updating);
        let p = self.options.parallelism;
        let node_schema = with_row_kind(&schema, updating);
        let op_schema = node_schema.clone();
        let node = self.graph.add_node(
            "Union(all=[true])",
            p,
            NodeKind::Operator {
                factory: Arc::new(move |_: &TaskInfo, _: &StateProvider| {
                    Ok(Box::new(Union::new(op_schema.clone())) as Box<dyn Operator>)
                }),
            },
            node_schema,
            updating,
        );
        for input in inputs {
            let input = if updating && !input.updating {
                self.add_insert_row_kind(&input)?
            } else {
                input
            };
            let partitioning = if input.parallelism == p {
                Partitioning::Forward
            } else {
                Partitioning::Rebalance
            };
            self.graph.connect(input.node, node, 0, partitioning);
        }
        Stream::new(node, schema, updating, p)
    }

    /// Turn an insert-only stream into a changelog of `+I` rows (to union it with one).
    fn add_insert_row_kind(&mut self, input: &Stream) -> Result<Stream> {
        let mut exprs: Vec<Expr> = (0..input.schema.fields().len())
            .map(|i| input.column(i))
            .collect();
        exprs.push(Expr::Literal(ScalarValue::Int8(Some(0)), None).alias(ROW_KIND_COLUMN));
        let schema = with_row_kind(&input.schema, true);
        let stream = self.add_calc(input, None, Some((exprs, schema)), "Calc(+I)".into())?;
        Ok(Stream {
            schema: input.schema.clone(),
            df: input.df.clone(),
            updating: true,
            ..stream
        })
    }

    /// Add a Calc after `input`; `projection` is the expressions and their output schema
    /// (visible columns). Chained into the input's task.
    fn add_calc(
        &mut self,
        input: &Stream,
        predicate: Option<&Expr>,
        projection: Option<(Vec<Expr>, SchemaRef)>,
        name: String,
    ) -> Result<Stream> {
        let predicate = match predicate {
            Some(p) => Some(physical_expr(p, &input.df).map_err(|e| self.relocate(e))?),
            None => None,
        };
        let (exprs, visible) = match projection {
            Some((exprs, schema)) => {
                let mut physical = Vec::with_capacity(exprs.len());
                for e in &exprs {
                    physical.push(physical_expr(e, &input.df).map_err(|e| self.relocate(e))?);
                }
                (Some(physical), schema)
            }
            None => (None, input.schema.clone()),
        };
        let node_schema = with_row_kind(&visible, input.updating);
        let op_schema = node_schema.clone();
        let updating = input.updating;
        let op_name = name.clone();
        let node = self.graph.add_node(
            name,
            input.parallelism,
            NodeKind::Operator {
                factory: Arc::new(move |_: &TaskInfo, _: &StateProvider| {
                    Ok(Box::new(Calc::new(
                        op_name.clone(),
                        predicate.clone(),
                        exprs.clone(),
                        op_schema.clone(),
                        updating,
                    )) as Box<dyn Operator>)
                }),
            },
            node_schema,
            updating,
        );
        self.graph
            .connect(input.node, node, 0, Partitioning::Forward);
        Stream::new(node, visible, updating, input.parallelism)
    }

    fn relocate(&self, e: Error) -> Error {
        match e {
            Error::DataFusion(e) => self.df_error(e),
            other => other,
        }
    }
}

/// Flink types an integer literal that fits in 32 bits as INT (so `int_col * 2` stays INT);
/// DataFusion makes every integer literal BIGINT. Narrow them in projections and filters
/// before type coercion (keeping each projected column's name), then recompute the schemas
/// above.
fn flink_integer_literals(plan: LogicalPlan) -> datafusion_common::Result<LogicalPlan> {
    fn narrow(expr: Expr) -> datafusion_common::Result<Transformed<Expr>> {
        expr.transform(|e| {
            Ok(match e {
                Expr::Literal(ScalarValue::Int64(Some(v)), meta) if i32::try_from(v).is_ok() => {
                    Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(v as i32)), meta))
                }
                other => Transformed::no(other),
            })
        })
    }
    plan.transform_up(|node| {
        let node = match node {
            LogicalPlan::Projection(_) => node.map_expressions(|expr| {
                let name = expr.schema_name().to_string();
                let keep_name = !matches!(expr, Expr::Alias(_) | Expr::Column(_));
                let narrowed = narrow(expr)?;
                Ok(if narrowed.transformed && keep_name {
                    Transformed::yes(narrowed.data.alias(name))
                } else {
                    narrowed
                })
            })?,
            LogicalPlan::Filter(_) => node.map_expressions(narrow)?,
            other => Transformed::no(other),
        };
        node.map_data(|n| n.recompute_schema())
    })
    .map(|t| t.data)
}

/// Plan `exprs` over a table with `input` as its schema and coerce their types, returning the
/// output schema (unqualified) and the coerced expressions.
fn coerce_projection(
    input: &SchemaRef,
    exprs: Vec<Expr>,
) -> datafusion_common::Result<(SchemaRef, Vec<Expr>)> {
    let source = crate::sql::context::SchemaSource::shared(input.clone());
    let plan = LogicalPlanBuilder::scan("__weir_input", source, None)?
        .project(exprs)?
        .build()?;
    let context = PlanningContext::new();
    use datafusion_expr::planner::ContextProvider;
    let plan = Analyzer::new().execute_and_check(plan, context.options(), |_, _| {})?;
    match plan {
        LogicalPlan::Projection(p) => Ok((
            unqualified_schema(p.schema.as_arrow()),
            p.expr.into_iter().map(unqualify).collect(),
        )),
        other => Err(DataFusionError::Internal(format!(
            "expected a projection, got {}",
            other.display()
        ))),
    }
}

fn physical_expr(expr: &Expr, df: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
    let expr = unalias(expr);
    Ok(create_physical_expr(
        expr,
        df,
        &ExecutionProps::new(),
        &PhysicalPlanningContext::default(),
    )?)
}

/// Drop table qualifiers from column references: streams carry unqualified names.
fn unqualify(expr: Expr) -> Expr {
    expr.transform(|e| {
        Ok(match e {
            Expr::Column(c) if c.relation.is_some() => {
                Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))
            }
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
    .unwrap_or_else(|e| Expr::Literal(ScalarValue::Utf8(Some(e.to_string())), None))
}

fn unalias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

fn references_window_columns(expr: &Expr) -> bool {
    expr.column_refs().iter().any(|c| {
        matches!(
            c.name.as_str(),
            "window_start" | "window_end" | "window_time"
        )
    })
}

fn unqualified_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect::<Vec<_>>(),
    ))
}

fn with_row_kind(schema: &SchemaRef, updating: bool) -> SchemaRef {
    if !updating {
        return schema.clone();
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(ROW_KIND_COLUMN, DataType::Int8, false));
    Arc::new(Schema::new(fields))
}

fn field_list(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_identity(indices: &[usize], len: usize) -> bool {
    indices.len() == len && indices.iter().enumerate().all(|(i, j)| i == *j)
}

fn time_column_index(window: &WindowTvfDef, schema: &SchemaRef) -> Result<usize> {
    let index = schema.index_of(&window.time_column).map_err(|_| {
        Error::sql(
            window.location,
            format!(
                "DESCRIPTOR({}) names no column of `{}`; its columns: {}",
                window.time_column,
                window.input,
                field_list(schema)
            ),
        )
    })?;
    let data_type = schema.field(index).data_type();
    if !types::is_timestamp(data_type) {
        return Err(Error::sql(
            window.location,
            format!(
                "the window function requires the time column `{}` to be a time attribute (TIMESTAMP(3) or TIMESTAMP_LTZ(3) with a WATERMARK), but it is {}",
                window.time_column,
                types::flink_type_name(data_type)
            ),
        ));
    }
    Ok(index)
}

/// A window TVF's output: its input's columns, then window_start, window_end, window_time.
fn window_schema(window: &WindowTvfDef, input: &SchemaRef) -> Result<SchemaRef> {
    let time = time_column_index(window, input)?;
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("window_start", types::timestamp_type(), false));
    fields.push(Field::new("window_end", types::timestamp_type(), false));
    fields.push(Field::new(
        "window_time",
        input.field(time).data_type().clone(),
        false,
    ));
    Ok(Arc::new(Schema::new(fields)))
}

/// The operators' window for a window TVF of the script.
fn window_kind(function: &WindowFunction) -> WindowKind {
    match *function {
        WindowFunction::Tumble { size, offset } => WindowKind::Tumble { size, offset },
        WindowFunction::Hop {
            slide,
            size,
            offset,
        } => WindowKind::Hop {
            size,
            slide,
            offset,
        },
        WindowFunction::Cumulate {
            step,
            max_size,
            offset,
        } => WindowKind::Cumulate {
            max_size,
            step,
            offset,
        },
        WindowFunction::Session { gap } => WindowKind::Session { gap },
    }
}

fn describe_window(function: &WindowFunction) -> String {
    let ms = |v: i64| format!("{v} ms");
    match *function {
        WindowFunction::Tumble { size, .. } => format!("TUMBLE(size={})", ms(size)),
        WindowFunction::Hop { slide, size, .. } => {
            format!("HOP(slide={}, size={})", ms(slide), ms(size))
        }
        WindowFunction::Cumulate { step, max_size, .. } => {
            format!("CUMULATE(step={}, max_size={})", ms(step), ms(max_size))
        }
        WindowFunction::Session { gap } => format!("SESSION(gap={})", ms(gap)),
    }
}

/// Flink's implicit casts into a sink column: numeric widening and NULLs; anything else must
/// be CAST explicitly in the query.
fn implicitly_castable(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let rank = |t: &DataType| match t {
        Int8 => Some(1),
        Int16 => Some(2),
        Int32 => Some(3),
        Int64 => Some(4),
        Decimal128(_, _) => Some(5),
        Float32 => Some(6),
        Float64 => Some(7),
        _ => None,
    };
    match (from, to) {
        (Null, _) => true,
        (Timestamp(_, _), Timestamp(_, _)) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Decimal128(_, _), Decimal128(_, _)) => true,
        _ => matches!((rank(from), rank(to)), (Some(a), Some(b)) if a <= b),
    }
}

/// A DataFusion planning error in the user's words, at its span when it has one.
fn df_error(e: DataFusionError, fallback: SqlLocation) -> Error {
    let location = e
        .diagnostic()
        .and_then(|d| d.span)
        .map(|span| SqlLocation {
            line: span.start.line,
            column: span.start.column,
        })
        .filter(|l| l.line > 0)
        .unwrap_or(fallback);
    let message = e.strip_backtrace();
    let message = message
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .to_string();
    Error::sql(location, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
