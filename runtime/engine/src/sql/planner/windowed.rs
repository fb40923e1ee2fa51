//! Window aggregation over window columns: a `GROUP BY` that includes a `window_start` and a
//! `window_end` column of its input (propagated from an earlier window TVF or window
//! aggregation, see [`super::attributes`]) is Flink's window aggregation with the window
//! attached to the input. It reads each row's window from those columns instead of assigning
//! one, and emits when the watermark passes `window_end`, as Nexmark q5's `MAX(num) … GROUP BY
//! starttime, endtime` over per-auction counts does.

use std::sync::Arc;

use datafusion_expr::Expr;
use datafusion_expr::logical_plan::Aggregate;

use super::attributes::{Attributes, WindowColumns, passed_through};
use super::{Planner, Stream, describe_window, field_list, unqualified_schema};
use crate::catalog::WindowFunction;
use crate::dataflow::graph::{NodeKind, Partitioning};
use crate::dataflow::operator::{Operator, TaskInfo};
use crate::dataflow::state::StateProvider;
use crate::error::{Error, Result};
use crate::operators::window_aggregate::{
    ColumnWindowSpec, OutputColumn, WindowAggregateFromColumns,
};

/// The window columns of a window aggregation's output, from its output layout.
pub(super) fn output_attributes(output: &[OutputColumn], function: WindowFunction) -> Attributes {
    let positions = |wanted: OutputColumn| {
        output
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == wanted)
            .map(|(i, _)| i)
            .collect()
    };
    let times: std::collections::BTreeSet<usize> = positions(OutputColumn::WindowTime);
    Attributes {
        time: times.clone(),
        window: Some(WindowColumns {
            starts: positions(OutputColumn::WindowStart),
            ends: positions(OutputColumn::WindowEnd),
            times,
            function,
        }),
    }
}

/// How one GROUP BY expression over a windowed input maps to the output.
enum Grouping {
    Start(usize),
    End(usize),
    Time,
    Key,
}

fn classify(expr: &Expr, input: &Stream) -> Grouping {
    match passed_through(expr, |c| input.index_of(c)) {
        Some(i) if input.attrs.is_window_start(i) => Grouping::Start(i),
        Some(i) if input.attrs.is_window_end(i) => Grouping::End(i),
        Some(i) if input.attrs.is_window_time(i) => Grouping::Time,
        _ => Grouping::Key,
    }
}

impl Planner<'_> {
    /// The input's window when `agg` groups by one of its `window_start` columns and one of its
    /// `window_end` columns (Flink's `groupingContainsWindowStartEnd`).
    pub(super) fn window_of_grouping(
        &self,
        agg: &Aggregate,
        input: &Stream,
    ) -> Result<Option<WindowFunction>> {
        let Some(window) = &input.attrs.window else {
            return Ok(None);
        };
        let groups: Vec<Grouping> = agg.group_expr.iter().map(|e| classify(e, input)).collect();
        let has_start = groups.iter().any(|g| matches!(g, Grouping::Start(_)));
        let has_end = groups.iter().any(|g| matches!(g, Grouping::End(_)));
        if !(has_start && has_end) {
            return Ok(None);
        }
        if input.updating {
            return Err(Error::unsupported(
                self.location,
                "a window aggregation over an updating (changelog) input is not supported",
            ));
        }
        Ok(Some(window.function))
    }

    /// A window aggregate over `input`, whose windows are read from its window columns.
    pub(super) fn window_aggregate_over_columns(
        &mut self,
        agg: &Aggregate,
        input: Stream,
        function: WindowFunction,
    ) -> Result<Stream> {
        let mut output = Vec::new();
        let mut key_exprs = Vec::new();
        let (mut start, mut end) = (None, None);
        for expr in &agg.group_expr {
            match classify(expr, &input) {
                Grouping::Start(i) => {
                    start.get_or_insert(i);
                    output.push(OutputColumn::WindowStart);
                }
                Grouping::End(i) => {
                    end.get_or_insert(i);
                    output.push(OutputColumn::WindowEnd);
                }
                Grouping::Time => output.push(OutputColumn::WindowTime),
                Grouping::Key => {
                    output.push(OutputColumn::Key(key_exprs.len()));
                    key_exprs.push(expr.clone());
                }
            }
        }
        let (Some(start), Some(end)) = (start, end) else {
            return Err(Error::execution(
                "planner",
                "internal: a window aggregation over columns without window_start and window_end",
            ));
        };
        let (calls, arg_exprs) = self.aggregate_calls(agg, 2 + key_exprs.len())?;
        for j in 0..calls.len() {
            output.push(OutputColumn::Aggregate(j));
        }
        // Pre-projection: window_start, window_end, keys, aggregate arguments.
        let mut exprs = vec![input.column(start), input.column(end)];
        exprs.extend(key_exprs.iter().cloned());
        exprs.extend(arg_exprs);
        let pre = self.project_positional(&input, exprs, "window aggregate input")?;
        let keys: Vec<usize> = (2..2 + key_exprs.len()).collect();
        let output_schema = unqualified_schema(agg.schema.as_arrow());
        let spec = ColumnWindowSpec {
            start_column: 0,
            end_column: 1,
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
            "WindowAggregate(window=[{}, win_start=[{}], win_end=[{}]], groupBy=[{}], select=[{}])",
            describe_window(&function),
            input.schema.field(start).name(),
            input.schema.field(end).name(),
            key_exprs
                .iter()
                .map(|e| e.human_display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            field_list(&output_schema)
        );
        let input_schema = pre.schema.clone();
        let node = self.graph.add_node(
            name,
            parallelism,
            NodeKind::Operator {
                factory: Arc::new(move |task: &TaskInfo, state: &StateProvider| {
                    let backend = state.open(&task.uid, task.subtask)?;
                    Ok(Box::new(
                        WindowAggregateFromColumns::new(
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
        let attrs = output_attributes(&output, function);
        Ok(Stream::new(node, output_schema, false, parallelism)?.with_attrs(attrs))
    }
}
