//! Generates watermarks from `WATERMARK FOR col AS expr`, exactly as Flink's
//! `WatermarkAssignerOperator` does, so the same rows are late in both:
//!
//! - the current watermark is the maximum of `expr` over the rows seen so far (starting at 0);
//! - it is emitted right after a row when it is more than `pipeline.auto-watermark-interval`
//!   (200 ms by default) ahead of the last emitted one, and otherwise periodically in
//!   processing time (we check the clock at the end of each batch);
//! - a row whose time attribute is NULL fails the job, as in Flink;
//! - watermarks from upstream are ignored except the final `MAX_WATERMARK`.
//!
//! To emit a watermark "right after a row" the batch is split at that row.
//!
//! Almost every watermark is `rowtime - INTERVAL '…'`. Arrow evaluates a timestamp minus an
//! interval row by row through chrono (and chrono-tz for `TIMESTAMP_LTZ`), which took 70% of the
//! time of a `datagen` → filter → `blackhole` job; [`Offset`] computes such an expression as one
//! subtraction per row instead, with the same results.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion_common::ScalarValue;
use datafusion_expr::Operator as BinaryOp;
use datafusion_physical_expr::PhysicalExpr;
use datafusion_physical_expr::expressions::{BinaryExpr, Column, Literal};

use crate::dataflow::message::{MAX_WATERMARK, Timestamp};
use crate::dataflow::operator::{Operator, Output};
use crate::error::{Error, Result};

pub struct WatermarkAssigner {
    name: String,
    rowtime_column: usize,
    rowtime_name: String,
    expr: Arc<dyn PhysicalExpr>,
    /// `expr` when it is the rowtime column plus a constant.
    offset: Option<Offset>,
    schema: SchemaRef,
    interval: i64,
    current: Timestamp,
    last_emitted: Timestamp,
    last_periodic: Instant,
}

impl WatermarkAssigner {
    pub fn new(
        name: String,
        rowtime_column: usize,
        expr: Arc<dyn PhysicalExpr>,
        schema: SchemaRef,
        interval: Duration,
    ) -> Self {
        WatermarkAssigner {
            offset: Offset::of(&expr, &schema),
            name,
            rowtime_name: schema.field(rowtime_column).name().clone(),
            rowtime_column,
            expr,
            schema,
            interval: interval.as_millis() as i64,
            current: 0,
            last_emitted: 0,
            last_periodic: Instant::now(),
        }
    }

    /// Track the watermark over `values` (one per row of `batch`, `None` for NULL), emitting
    /// every row up to one that moves it on by more than the interval, then the watermark.
    /// Returns the first row not emitted yet.
    fn split(
        &mut self,
        batch: &RecordBatch,
        values: impl Iterator<Item = Option<Timestamp>>,
        out: &mut Output,
    ) -> usize {
        let mut start = 0;
        for (row, value) in values.enumerate() {
            if let Some(value) = value {
                self.current = self.current.max(value);
            }
            if self.current.saturating_sub(self.last_emitted) > self.interval {
                out.batch(batch.slice(start, row + 1 - start));
                start = row + 1;
                self.advance(out);
            }
        }
        start
    }

    /// [`Self::split`] for the watermarks `times[i] + ms` of an [`Offset`] expression: a plain
    /// comparison scan finds the next row to split after, and the rest of the batch only needs
    /// its maximum, instead of a maximum and a subtraction per row.
    fn split_offset(
        &mut self,
        batch: &RecordBatch,
        times: &[i64],
        ms: i64,
        out: &mut Output,
    ) -> usize {
        let mut start = 0;
        while start < times.len() {
            // The watermark so far is at most `last_emitted + interval` (or it would have been
            // emitted), so the first row whose own watermark is above that is the next split,
            // and the watermark becomes that row's.
            let threshold = self.last_emitted.saturating_add(self.interval);
            let rest = &times[start..];
            match rest.iter().position(|&t| t + ms > threshold) {
                Some(k) => {
                    self.current = rest[k] + ms;
                    out.batch(batch.slice(start, k + 1));
                    start += k + 1;
                    self.advance(out);
                }
                None => {
                    if let Some(max) = rest.iter().max() {
                        self.current = self.current.max(max + ms);
                    }
                    break;
                }
            }
        }
        start
    }

    fn advance(&mut self, out: &mut Output) {
        if self.current > self.last_emitted {
            self.last_emitted = self.current;
            out.watermark(self.current);
        }
    }
}

impl Operator for WatermarkAssigner {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.column(self.rowtime_column).null_count() > 0 {
            return Err(Error::execution(
                &self.name,
                format!(
                    "the time attribute `{}` is NULL in an input row; Flink fails on this too — filter such rows or give the column a default",
                    self.rowtime_name
                ),
            ));
        }
        let start = match self.offset.as_ref().and_then(|o| o.rowtimes(&batch)) {
            Some((times, ms)) => self.split_offset(&batch, times, ms, out),
            None => {
                let values = self.expr.evaluate(&batch)?.into_array(batch.num_rows())?;
                // A zone changes no value of a millisecond timestamp (the cast to zoneless
                // keeps the instants), so only other units need converting.
                let values = match values.data_type() {
                    DataType::Timestamp(TimeUnit::Millisecond, _) => values,
                    _ => arrow::compute::cast(
                        &values,
                        &DataType::Timestamp(TimeUnit::Millisecond, None),
                    )?,
                };
                let values = values.as_primitive::<TimestampMillisecondType>();
                self.split(&batch, values.iter(), out)
            }
        };
        if start < batch.num_rows() {
            out.batch(batch.slice(start, batch.num_rows() - start));
        }
        if self.last_periodic.elapsed().as_millis() as i64 >= self.interval.max(1) {
            self.last_periodic = Instant::now();
            self.advance(out);
        }
        Ok(())
    }

    fn process_watermark(&mut self, watermark: Timestamp, out: &mut Output) -> Result<()> {
        if watermark == MAX_WATERMARK && self.current != MAX_WATERMARK {
            self.current = MAX_WATERMARK;
            self.last_emitted = MAX_WATERMARK;
            out.watermark(MAX_WATERMARK);
        }
        Ok(())
    }
}

/// A watermark expression `column ± interval` whose interval is a fixed number of milliseconds
/// (no months, and no days unless the column is UTC or zoneless, where a day is always
/// 86,400 s): a row's watermark is then `column + ms`, exactly what Arrow's chrono-based
/// arithmetic returns (which floors to the millisecond, as `div_euclid` does here).
#[derive(Debug, Clone, Copy)]
struct Offset {
    column: usize,
    ms: i64,
}

/// Timestamps within `±SAFE_MS` (about ±250,000 years) and their watermarks are inside chrono's
/// range (±262,000 years), where Arrow cannot fail. A batch with a value beyond takes the
/// general path, which reports the overflow as before.
const SAFE_MS: i64 = 8_000_000_000_000_000;

impl Offset {
    fn of(expr: &Arc<dyn PhysicalExpr>, schema: &SchemaRef) -> Option<Offset> {
        let binary = expr.as_ref().downcast_ref::<BinaryExpr>()?;
        let column = binary.left().downcast_ref::<Column>()?;
        let literal = binary.right().downcast_ref::<Literal>()?;
        let zone = match schema.fields().get(column.index())?.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, zone) => zone.clone(),
            _ => return None,
        };
        let (days, nanos) = match literal.value() {
            ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
                (i128::from(v.days), i128::from(v.nanoseconds))
            }
            ScalarValue::IntervalDayTime(Some(v)) => {
                (i128::from(v.days), i128::from(v.milliseconds) * 1_000_000)
            }
            _ => return None,
        };
        if days != 0 && !matches!(zone.as_deref(), None | Some("UTC" | "+00:00")) {
            return None;
        }
        // Arrow moves by the days first: keep that step inside chrono's range too.
        if days.abs() * 86_400_000 >= i128::from(SAFE_MS / 2) {
            return None;
        }
        let delta_ns = days * 86_400_000_000_000 + nanos;
        let added_ns = match binary.op() {
            BinaryOp::Plus => delta_ns,
            BinaryOp::Minus => -delta_ns,
            _ => return None,
        };
        let ms = i64::try_from(added_ns.div_euclid(1_000_000)).ok()?;
        (ms.abs() < SAFE_MS / 2).then_some(Offset {
            column: column.index(),
            ms,
        })
    }

    /// The column's values and the milliseconds to add to them, unless a value is NULL or
    /// outside the safe range (the general path then decides).
    fn rowtimes<'a>(&self, batch: &'a RecordBatch) -> Option<(&'a [i64], i64)> {
        let column = batch.columns().get(self.column)?;
        if column.null_count() > 0 {
            return None;
        }
        let times = column
            .as_primitive_opt::<TimestampMillisecondType>()?
            .values();
        let limit = SAFE_MS / 2;
        let in_range = times
            .iter()
            .fold(true, |ok, &t| ok & (-limit..=limit).contains(&t));
        in_range.then_some((&times[..], self.ms))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use arrow::array::TimestampMillisecondArray;
    use arrow::datatypes::{Field, Schema};
    use arrow::datatypes::{IntervalDayTime, IntervalMonthDayNano};
    use datafusion_physical_expr::expressions::{binary, col, lit};
    use proptest::prelude::*;

    use super::*;

    fn schema(zone: Option<&str>) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, zone.map(Into::into)),
                true,
            ),
        ]))
    }

    fn batch(schema: &SchemaRef, times: Vec<Option<i64>>) -> RecordBatch {
        let zone = match schema.field(1).data_type() {
            DataType::Timestamp(_, zone) => zone.clone(),
            _ => None,
        };
        let ids = arrow::array::Int64Array::from_iter_values(0..times.len() as i64);
        let ts = TimestampMillisecondArray::from(times).with_timezone_opt(zone);
        RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(ts)]).unwrap()
    }

    fn watermark_expr(
        schema: &SchemaRef,
        op: BinaryOp,
        interval: ScalarValue,
    ) -> Arc<dyn PhysicalExpr> {
        binary(col("ts", schema).unwrap(), op, lit(interval), schema).unwrap()
    }

    fn month_day_nano(months: i32, days: i32, nanoseconds: i64) -> ScalarValue {
        ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano {
            months,
            days,
            nanoseconds,
        }))
    }

    /// The fast path's watermarks and Arrow's, for the same expression and batch.
    fn both_ways(
        zone: Option<&str>,
        op: BinaryOp,
        interval: ScalarValue,
        times: Vec<i64>,
    ) -> Option<(Vec<i64>, Vec<i64>)> {
        let schema = schema(zone);
        let expr = watermark_expr(&schema, op, interval);
        let batch = batch(&schema, times.into_iter().map(Some).collect());
        let (times, ms) = Offset::of(&expr, &schema)?.rowtimes(&batch)?;
        let fast = times.iter().map(|t| t + ms).collect();
        let arrow = expr
            .evaluate(&batch)
            .unwrap()
            .into_array(batch.num_rows())
            .unwrap();
        let arrow = arrow
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .to_vec();
        Some((fast, arrow))
    }

    proptest! {
        #[test]
        fn offset_watermarks_equal_arrows_interval_arithmetic(
            times in proptest::collection::vec(-4_000_000_000_000_000i64..4_000_000_000_000_000, 1..20),
            zone in prop_oneof![Just(None), Just(Some("UTC")), Just(Some("+00:00")), Just(Some("Europe/Berlin"))],
            minus in any::<bool>(),
            days in -1000i32..1000,
            nanoseconds in -10_000_000_000_000i64..10_000_000_000_000,
        ) {
            let op = if minus { BinaryOp::Minus } else { BinaryOp::Plus };
            // The fast path takes Berlin only without days (a day there may be 23 or 25 hours).
            let days = if zone == Some("Europe/Berlin") { 0 } else { days };
            let (fast, arrow) = both_ways(zone, op, month_day_nano(0, days, nanoseconds), times)
                .expect("the fast path applies");
            prop_assert_eq!(fast, arrow);
        }
    }

    #[test]
    fn sub_millisecond_intervals_floor_like_arrow() {
        for nanoseconds in [1, 999_999, 1_000_001, -1, -1_500_000] {
            for op in [BinaryOp::Minus, BinaryOp::Plus] {
                let (fast, arrow) =
                    both_ways(None, op, month_day_nano(0, 0, nanoseconds), vec![-3, 0, 7]).unwrap();
                assert_eq!(fast, arrow, "{op} {nanoseconds} ns");
            }
        }
        let day_time = ScalarValue::IntervalDayTime(Some(IntervalDayTime::new(2, 4_000)));
        let (fast, arrow) = both_ways(Some("UTC"), BinaryOp::Minus, day_time, vec![0, 1]).unwrap();
        assert_eq!(fast, arrow);
    }

    #[test]
    fn calendar_intervals_and_extreme_times_take_the_general_path() {
        let s = schema(None);
        let months = watermark_expr(&s, BinaryOp::Minus, month_day_nano(1, 0, 0));
        assert!(Offset::of(&months, &s).is_none());
        let berlin = schema(Some("Europe/Berlin"));
        let days = watermark_expr(&berlin, BinaryOp::Minus, month_day_nano(0, 1, 0));
        assert!(Offset::of(&days, &berlin).is_none());
        let seconds = watermark_expr(&s, BinaryOp::Minus, month_day_nano(0, 0, 4_000_000_000));
        let offset = Offset::of(&seconds, &s).unwrap();
        assert!(offset.rowtimes(&batch(&s, vec![Some(i64::MAX)])).is_none());
        assert!(offset.rowtimes(&batch(&s, vec![Some(1), None])).is_none());
        assert_eq!(
            offset.rowtimes(&batch(&s, vec![Some(1)])).unwrap().1,
            -4_000
        );
    }

    #[test]
    fn a_watermark_follows_the_row_that_moves_it_past_the_interval() {
        let s = schema(Some("UTC"));
        let expr = watermark_expr(&s, BinaryOp::Minus, month_day_nano(0, 0, 4_000_000_000));
        for expr in [
            expr.clone(),
            Arc::new(NoFastPath(expr)) as Arc<dyn PhysicalExpr>,
        ] {
            let mut assigner =
                WatermarkAssigner::new("wm".into(), 1, expr, s.clone(), Duration::from_secs(3600));
            assigner.interval = 200;
            assigner.last_periodic = Instant::now() + Duration::from_secs(3600);
            let mut out = Output::default();
            let times = [5_000, 5_100, 5_300, 5_301, 4_000, 5_600, 5_601];
            let batch = batch(&s, times.iter().map(|&t| Some(t)).collect());
            assigner.process_batch(0, batch, &mut out).unwrap();
            let shape: Vec<String> = out
                .items
                .iter()
                .map(|item| match item {
                    crate::dataflow::operator::Emitted::Batch(b) => {
                        format!("rows {}", b.num_rows())
                    }
                    crate::dataflow::operator::Emitted::Watermark(w) => format!("wm {w}"),
                })
                .collect();
            assert_eq!(
                shape,
                [
                    "rows 1", "wm 1000", "rows 2", "wm 1300", "rows 3", "wm 1600", "rows 1"
                ]
            );
        }
    }

    /// What an assigner emits for `batches`: row counts and watermarks, in order.
    fn emitted(expr: Arc<dyn PhysicalExpr>, interval: i64, batches: &[Vec<i64>]) -> Vec<String> {
        let s = schema(Some("UTC"));
        let mut assigner =
            WatermarkAssigner::new("wm".into(), 1, expr, s.clone(), Duration::from_secs(3600));
        assigner.interval = interval;
        assigner.last_periodic = Instant::now() + Duration::from_secs(3600);
        let mut out = Output::default();
        for times in batches {
            let batch = batch(&s, times.iter().map(|&t| Some(t)).collect());
            assigner.process_batch(0, batch, &mut out).unwrap();
        }
        out.items
            .iter()
            .map(|item| match item {
                crate::dataflow::operator::Emitted::Batch(b) => {
                    let ids = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
                    format!("rows {:?}", ids.values())
                }
                crate::dataflow::operator::Emitted::Watermark(w) => format!("wm {w}"),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn the_offset_path_splits_batches_where_the_general_path_does(
            batches in proptest::collection::vec(
                proptest::collection::vec(-2_000i64..20_000, 0..40), 1..5),
            interval in 0i64..500,
            nanoseconds in -3_000_000_000i64..3_000_000_000,
        ) {
            let s = schema(Some("UTC"));
            let expr = watermark_expr(&s, BinaryOp::Minus, month_day_nano(0, 0, nanoseconds));
            let general = Arc::new(NoFastPath(expr.clone())) as Arc<dyn PhysicalExpr>;
            prop_assert_eq!(
                emitted(expr, interval, &batches),
                emitted(general, interval, &batches)
            );
        }
    }

    /// Hides an expression's type so the assigner evaluates it the general way.
    #[derive(Debug)]
    struct NoFastPath(Arc<dyn PhysicalExpr>);

    impl PartialEq for NoFastPath {
        fn eq(&self, other: &Self) -> bool {
            self.0.eq(&other.0)
        }
    }

    impl Eq for NoFastPath {}

    impl std::hash::Hash for NoFastPath {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }

    impl std::fmt::Display for NoFastPath {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }

    impl PhysicalExpr for NoFastPath {
        fn data_type(&self, schema: &Schema) -> datafusion_common::Result<DataType> {
            self.0.data_type(schema)
        }
        fn nullable(&self, schema: &Schema) -> datafusion_common::Result<bool> {
            self.0.nullable(schema)
        }
        fn evaluate(
            &self,
            batch: &RecordBatch,
        ) -> datafusion_common::Result<datafusion_expr::ColumnarValue> {
            self.0.evaluate(batch)
        }
        fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
            vec![&self.0]
        }
        fn with_new_children(
            self: Arc<Self>,
            children: Vec<Arc<dyn PhysicalExpr>>,
        ) -> datafusion_common::Result<Arc<dyn PhysicalExpr>> {
            Ok(Arc::new(NoFastPath(children[0].clone())))
        }
        fn fmt_sql(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt_sql(f)
        }
    }
}
