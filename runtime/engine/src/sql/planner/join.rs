//! Joins. Both inputs are hash-partitioned on the equality keys so each subtask sees every row
//! of its keys, and the join becomes one of three operators, chosen as Flink's planner does:
//!
//! - a window join ([`super::window_join`]) when both inputs carry window columns of the same
//!   window and the ON clause equates both their `window_start`s and their `window_end`s;
//! - else an interval join ([`super::interval`]) when the ON clause bounds one input's time
//!   attribute by the other's from both sides;
//! - else a regular join (INNER only), which keeps every row in state and outputs no time
//!   attribute.
//!
//! Other conditions of the ON clause are evaluated on the joined rows.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};
use datafusion_common::Column;
use datafusion_expr::logical_plan::{Join, JoinType};
use datafusion_expr::utils::split_conjunction;
use datafusion_expr::{BinaryExpr, Expr, ExprSchemable, Operator as BinaryOperator};

use super::attributes::Attributes;
use super::{Planner, Stream, describe_window, field_list, physical_expr, with_row_kind};
use crate::catalog::WindowFunction;
use crate::dataflow::graph::{NodeKind, OperatorFactory, Partitioning};
use crate::dataflow::operator::{Operator, TaskInfo};
use crate::dataflow::state::StateProvider;
use crate::error::{Error, Result};
use crate::operators::interval_join::IntervalJoin;
use crate::operators::join::JoinSpec;
use crate::operators::regular_join::RegularJoin;
use crate::operators::window_join::{WindowJoin, WindowJoinType};

/// The operator a join becomes, with what it needs beyond the keys and the condition.
#[derive(Debug, Clone)]
pub(super) enum JoinChoice {
    Regular,
    Window {
        /// The `window_end` column of each input.
        left_end: usize,
        right_end: usize,
        join_type: WindowJoinType,
        window: WindowFunction,
    },
    Interval {
        /// The time attribute of each input.
        left_time: usize,
        right_time: usize,
        /// Inclusive bounds of `right time - left time`, in milliseconds.
        lower: i64,
        upper: i64,
    },
}

impl Planner<'_> {
    pub(super) fn plan_join(&mut self, join: &Join) -> Result<Stream> {
        let left = self.translate(&join.left)?;
        let right = self.translate(&join.right)?;
        let (keys, rest) = split_condition(join, &left, &right);
        if let Some(choice) = self.window_join_choice(join, &left, &right, &keys)? {
            return self.build_join(join, &left, &right, &keys, rest, choice);
        }
        if let Some((choice, rest)) =
            super::interval::interval_join_choice(join, &left, &right, &rest, self.location)?
        {
            return self.build_join(join, &left, &right, &keys, rest, choice);
        }
        if join.join_type != JoinType::Inner {
            return Err(Error::unsupported(
                self.location,
                format!(
                    "{} joins are supported only as window joins (both inputs windowed by the same window TVF, ON equating their window_start and window_end); a regular join must be INNER",
                    join.join_type.to_string().to_uppercase()
                ),
            ));
        }
        if keys.is_empty() {
            return Err(Error::unsupported(
                self.location,
                "a join needs at least one equality between columns of its two inputs; cross joins are not supported",
            ));
        }
        self.build_join(join, &left, &right, &keys, rest, JoinChoice::Regular)
    }

    /// Add the join operator: key columns, condition, exchanges, and the output's attributes.
    fn build_join(
        &mut self,
        join: &Join,
        left: &Stream,
        right: &Stream,
        keys: &[(Expr, Expr)],
        rest: Vec<Expr>,
        choice: JoinChoice,
    ) -> Result<Stream> {
        // Key columns: a plain column where both sides agree on the type, else a computed one
        // appended to the input (and dropped again after the join).
        let (left_in, left_keys, right_in, right_keys) = self.key_columns(left, right, keys)?;
        let extra = left_in.schema.fields().len() != left.schema.fields().len()
            || right_in.schema.fields().len() != right.schema.fields().len();

        let updating = left.updating || right.updating;
        let mut fields: Vec<Field> = left_in
            .schema
            .fields()
            .iter()
            .chain(right_in.schema.fields().iter())
            .map(|f| f.as_ref().clone())
            .collect();
        // Names may repeat across the sides; keep them, positions are what count. Nullable:
        // an outer join pads with NULLs.
        for f in fields.iter_mut() {
            *f = f.clone().with_nullable(true);
        }
        let joined = Arc::new(Schema::new(fields));
        let p = if keys.is_empty() {
            1
        } else {
            self.options.parallelism
        };
        let joined_stream = Stream::new(0, joined.clone(), updating, p)?;
        // The ON filter refers to columns as the join's logical schema names them: left columns
        // then right columns, which is the joined layout when no key column was added.
        let condition = rest.into_iter().reduce(|a, b| a.and(b));
        let filter = match &condition {
            None => None,
            Some(condition) => {
                let df = if extra {
                    self.joined_df(&left_in, &right_in)?
                } else {
                    join.schema.clone()
                };
                Some(physical_expr(condition, &df).map_err(|e| self.relocate(e))?)
            }
        };
        let spec = JoinSpec {
            left_keys: left_keys.clone(),
            right_keys: right_keys.clone(),
            left_width: left_in.schema.fields().len(),
            right_width: right_in.schema.fields().len(),
            filter,
            output_schema: with_row_kind(&joined, updating),
        };
        let described = describe_condition(keys, condition.as_ref());
        let (name, factory) = join_operator(&choice, spec, left, right, &described, &joined);
        let node = self.graph.add_node(
            name,
            p,
            NodeKind::Operator { factory },
            with_row_kind(&joined, updating),
            updating,
        );
        self.graph
            .connect(left_in.node, node, 0, Partitioning::Hash(left_keys));
        self.graph
            .connect(right_in.node, node, 1, Partitioning::Hash(right_keys));
        let left_width = left.schema.fields().len();
        let attrs = match &choice {
            JoinChoice::Regular => Attributes::default(),
            JoinChoice::Window { .. } => Attributes::concat(&left.attrs, left_width, &right.attrs),
            JoinChoice::Interval { .. } => Attributes {
                window: None,
                ..Attributes::concat(&left.attrs, left_width, &right.attrs)
            },
        };
        let stream = Stream {
            node,
            ..joined_stream
        };
        if !extra {
            return Ok(stream.with_attrs(attrs));
        }
        // Drop the appended key columns: left columns, then right columns.
        let keep: Vec<usize> = (0..left_width)
            .chain((0..right.schema.fields().len()).map(|i| left_in.schema.fields().len() + i))
            .collect();
        let exprs: Vec<Expr> = keep.iter().map(|i| stream.column(*i)).collect();
        let schema = Arc::new(stream.schema.project(&keep)?);
        Ok(self
            .add_calc(
                &stream,
                None,
                Some((exprs, schema)),
                "Calc(drop join keys)".into(),
            )?
            .with_attrs(attrs))
    }

    /// The inputs to join (with computed key columns appended where needed) and the key
    /// column indices on each side.
    fn key_columns(
        &mut self,
        left: &Stream,
        right: &Stream,
        keys: &[(Expr, Expr)],
    ) -> Result<(Stream, Vec<usize>, Stream, Vec<usize>)> {
        let plain = |stream: &Stream, e: &Expr| -> Option<usize> {
            match e {
                Expr::Column(c) => stream.df.index_of_column(c).ok(),
                _ => None,
            }
        };
        let direct: Option<(Vec<usize>, Vec<usize>)> = keys
            .iter()
            .map(|(l, r)| {
                let (li, ri) = (plain(left, l)?, plain(right, r)?);
                (left.schema.field(li).data_type() == right.schema.field(ri).data_type())
                    .then_some((li, ri))
            })
            .collect::<Option<Vec<_>>>()
            .map(|pairs| pairs.into_iter().unzip());
        if let Some((lk, rk)) = direct {
            return Ok((left.clone(), lk, right.clone(), rk));
        }
        let mut left_exprs: Vec<Expr> = (0..left.schema.fields().len())
            .map(|i| left.column(i))
            .collect();
        let mut right_exprs: Vec<Expr> = (0..right.schema.fields().len())
            .map(|i| right.column(i))
            .collect();
        let mut left_fields: Vec<Field> = left
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut right_fields: Vec<Field> = right
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut lk = Vec::new();
        let mut rk = Vec::new();
        for (i, (l, r)) in keys.iter().enumerate() {
            let lt = physical_expr(l, &left.df)?.data_type(&left.schema)?;
            let rt = physical_expr(r, &right.df)?.data_type(&right.schema)?;
            let common = datafusion_expr::type_coercion::binary::comparison_coercion(&lt, &rt)
                .ok_or_else(|| {
                    Error::sql(
                        self.location,
                        format!(
                            "join keys {} and {} have incomparable types",
                            l.human_display(),
                            r.human_display()
                        ),
                    )
                })?;
            let name = format!("__weir_key{i}");
            lk.push(left_exprs.len());
            rk.push(right_exprs.len());
            left_exprs.push(l.clone().cast_to(&common, left.df.as_ref())?.alias(&name));
            right_exprs.push(r.clone().cast_to(&common, right.df.as_ref())?.alias(&name));
            left_fields.push(Field::new(&name, common.clone(), true));
            right_fields.push(Field::new(&name, common, true));
        }
        let left_in = self.add_calc(
            left,
            None,
            Some((left_exprs, Arc::new(Schema::new(left_fields)))),
            "Calc(join keys)".into(),
        )?;
        let right_in = self.add_calc(
            right,
            None,
            Some((right_exprs, Arc::new(Schema::new(right_fields)))),
            "Calc(join keys)".into(),
        )?;
        // Keep the original qualifiers for the original columns.
        Ok((
            self.requalify(left_in, left)?,
            lk,
            self.requalify(right_in, right)?,
            rk,
        ))
    }

    /// `extended` is `original` plus appended columns: give the original columns back their
    /// qualified names.
    fn requalify(&self, extended: Stream, original: &Stream) -> Result<Stream> {
        let mut fields: Vec<(Option<datafusion_common::TableReference>, Arc<Field>)> = original
            .df
            .iter()
            .map(|(q, f)| (q.cloned(), f.clone()))
            .collect();
        for f in extended.schema.fields().iter().skip(fields.len()) {
            fields.push((None, f.clone()));
        }
        Ok(Stream {
            df: Arc::new(datafusion_common::DFSchema::new_with_metadata(
                fields,
                Default::default(),
            )?),
            ..extended
        })
    }

    /// The joined layout's names when key columns were appended: left (qualified, then keys),
    /// right (qualified, then keys).
    fn joined_df(
        &self,
        left_in: &Stream,
        right_in: &Stream,
    ) -> Result<Arc<datafusion_common::DFSchema>> {
        let mut fields = Vec::new();
        for (i, (q, f)) in left_in.df.iter().chain(right_in.df.iter()).enumerate() {
            let q = q.cloned().or_else(|| {
                Some(datafusion_common::TableReference::bare(format!(
                    "__weir_k{i}"
                )))
            });
            fields.push((q, f.clone()));
        }
        Ok(Arc::new(datafusion_common::DFSchema::new_with_metadata(
            fields,
            Default::default(),
        )?))
    }
}

fn refers_only_to(expr: &Expr, stream: &Stream) -> bool {
    let refs = expr.column_refs();
    !refs.is_empty()
        && refs
            .iter()
            .all(|c: &&Column| stream.df.index_of_column(c).is_ok())
}

/// Equality conditions between the sides are the keys; the rest is a filter.
fn split_condition(join: &Join, left: &Stream, right: &Stream) -> (Vec<(Expr, Expr)>, Vec<Expr>) {
    let mut keys: Vec<(Expr, Expr)> = join.on.clone();
    let mut rest: Vec<Expr> = Vec::new();
    if let Some(filter) = &join.filter {
        for conjunct in split_conjunction(filter) {
            match conjunct {
                Expr::BinaryExpr(BinaryExpr {
                    left: l,
                    op: BinaryOperator::Eq,
                    right: r,
                }) if refers_only_to(l, left) && refers_only_to(r, right) => {
                    keys.push((l.as_ref().clone(), r.as_ref().clone()))
                }
                Expr::BinaryExpr(BinaryExpr {
                    left: l,
                    op: BinaryOperator::Eq,
                    right: r,
                }) if refers_only_to(l, right) && refers_only_to(r, left) => {
                    keys.push((r.as_ref().clone(), l.as_ref().clone()))
                }
                other => rest.push(other.clone()),
            }
        }
    }
    (keys, rest)
}

fn describe_condition(keys: &[(Expr, Expr)], rest: Option<&Expr>) -> String {
    keys.iter()
        .map(|(l, r)| format!("{} = {}", l.human_display(), r.human_display()))
        .chain(rest.map(|r| r.human_display().to_string()))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn join_type_name(join_type: WindowJoinType) -> &'static str {
    match join_type {
        WindowJoinType::Inner => "InnerJoin",
        WindowJoinType::LeftOuter => "LeftOuterJoin",
        WindowJoinType::RightOuter => "RightOuterJoin",
        WindowJoinType::FullOuter => "FullOuterJoin",
    }
}

/// The operator's name in `weir explain` and its factory.
fn join_operator(
    choice: &JoinChoice,
    spec: JoinSpec,
    left: &Stream,
    right: &Stream,
    condition: &str,
    joined: &Arc<Schema>,
) -> (String, Arc<dyn OperatorFactory>) {
    let select = field_list(joined);
    match *choice {
        JoinChoice::Regular => {
            let (left_updating, right_updating) = (left.updating, right.updating);
            let name =
                format!("Join(joinType=[InnerJoin], where=[{condition}], select=[{select}])");
            let factory = Arc::new(move |task: &TaskInfo, state: &StateProvider| {
                let backend = state.open(&task.uid, task.subtask)?;
                Ok(Box::new(RegularJoin::new(
                    spec.clone(),
                    left_updating,
                    right_updating,
                    task.clone(),
                    backend,
                    weir_state::StateId(0),
                )?) as Box<dyn Operator>)
            });
            (name, factory)
        }
        JoinChoice::Window {
            left_end,
            right_end,
            join_type,
            window,
        } => {
            let name = format!(
                "WindowJoin(leftWindow=[{w}, win_end=[{}]], rightWindow=[{w}, win_end=[{}]], joinType=[{}], where=[{condition}], select=[{select}])",
                left.schema.field(left_end).name(),
                right.schema.field(right_end).name(),
                join_type_name(join_type),
                w = describe_window(&window),
            );
            let factory = Arc::new(move |task: &TaskInfo, state: &StateProvider| {
                let backend = state.open(&task.uid, task.subtask)?;
                Ok(Box::new(
                    WindowJoin::new(
                        spec.clone(),
                        left_end,
                        right_end,
                        task.clone(),
                        backend,
                        weir_state::StateId(0),
                    )?
                    .with_join_type(join_type),
                ) as Box<dyn Operator>)
            });
            (name, factory)
        }
        JoinChoice::Interval {
            left_time,
            right_time,
            lower,
            upper,
        } => {
            // Flink shows the bounds of the left time relative to the right one.
            let name = format!(
                "IntervalJoin(joinType=[InnerJoin], windowBounds=[isRowTime=true, leftLowerBound={}, leftUpperBound={}, leftTimeIndex={left_time}, rightTimeIndex={right_time}], where=[{condition}], select=[{select}])",
                -upper, -lower,
            );
            let factory = Arc::new(move |task: &TaskInfo, state: &StateProvider| {
                let backend = state.open(&task.uid, task.subtask)?;
                Ok(Box::new(IntervalJoin::new(
                    spec.clone(),
                    left_time,
                    right_time,
                    lower,
                    upper,
                    task.clone(),
                    backend,
                    weir_state::StateId(0),
                )?) as Box<dyn Operator>)
            });
            (name, factory)
        }
    }
}
