//! Exact stand-ins for the DataFusion expressions that dominated the stateless benchmark's Calcs.
//!
//! Arrow's kernels check every row for an overflow or precision loss that the operand types
//! often rule out, and divide with a hardware division per row. With the input schema known
//! (it is fixed per stream), [`optimize`] replaces such nodes once:
//!
//! - a cast of an integer to a `DECIMAL(p, s)` wide enough for every value of the integer type
//!   (`price * 0.908` casts an INT to `DECIMAL(10, 0)` first) becomes one multiplication per row;
//! - a `DECIMAL` product becomes a 64 × 64 → 128-bit multiplication per row when the operands
//!   fit in 64 bits (checked per batch), which cannot overflow;
//! - an integer divided by a constant (`seq / 10`) multiplies by a reciprocal instead of
//!   dividing ([`Divider`]).
//!
//! Each stand-in keeps the expression it replaces and evaluates that whenever its input is not
//! what it was built for, so results (values, types, nulls and errors) stay those of DataFusion.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Datum, PrimitiveArray, RecordBatch};
use arrow::compute::kernels::numeric;
use arrow::datatypes::{
    DataType, Decimal128Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema,
};
use arrow::error::ArrowError;
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{Result, ScalarValue};
use datafusion_expr::ColumnarValue;
use datafusion_expr::Operator as BinaryOp;
use datafusion_physical_expr::PhysicalExpr;
use datafusion_physical_expr::expressions::{BinaryExpr, CastExpr, Literal};

/// `expr` with its slow nodes replaced by exact faster ones, for inputs of `schema`.
pub(super) fn optimize(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Arc<dyn PhysicalExpr> {
    let rewritten = Arc::clone(expr).transform_up(|node| {
        Ok(match Fast::replace(&node, schema) {
            Some(fast) => Transformed::yes(Arc::new(fast) as Arc<dyn PhysicalExpr>),
            None => Transformed::no(node),
        })
    });
    // A failed rewrite only loses the speed-up.
    rewritten.map_or_else(|_| Arc::clone(expr), |t| t.data)
}

/// A node computed a faster way; `original` is the node it replaces (with the same children),
/// which also stands for it in comparisons.
#[derive(Debug)]
struct Fast {
    original: Arc<dyn PhysicalExpr>,
    kind: Kind,
}

impl PartialEq for Fast {
    fn eq(&self, other: &Self) -> bool {
        self.original.eq(&other.original)
    }
}

impl Eq for Fast {}

impl Hash for Fast {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.original.hash(state);
    }
}

#[derive(Debug)]
enum Kind {
    /// `CAST(integer AS DECIMAL(precision, scale))` where every value of the integer type fits.
    IntToDecimal {
        input: Arc<dyn PhysicalExpr>,
        to: DataType,
        factor: i128,
    },
    /// `decimal * decimal`.
    DecimalMul {
        left: Arc<dyn PhysicalExpr>,
        right: Arc<dyn PhysicalExpr>,
        to: DataType,
    },
    /// `integer / constant` with a constant other than 0 and -1 (which can fail).
    IntDiv {
        input: Arc<dyn PhysicalExpr>,
        divider: Divider,
    },
}

impl Fast {
    fn replace(node: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Fast> {
        let kind = if let Some(cast) = node.downcast_ref::<CastExpr>() {
            int_to_decimal(cast, schema)?
        } else if let Some(binary) = node.downcast_ref::<BinaryExpr>() {
            match binary.op() {
                BinaryOp::Multiply => decimal_mul(binary, schema)?,
                BinaryOp::Divide => int_div(binary, schema)?,
                _ => return None,
            }
        } else {
            return None;
        };
        Some(Fast {
            original: Arc::clone(node),
            kind,
        })
    }

    /// The fast result, or `None` when the input is not what this node was built for.
    fn try_evaluate(&self, batch: &RecordBatch) -> Result<Option<ColumnarValue>> {
        match &self.kind {
            Kind::IntToDecimal { input, to, factor } => {
                let ColumnarValue::Array(values) = input.evaluate(batch)? else {
                    return Ok(None);
                };
                let factor = *factor;
                let scaled: PrimitiveArray<Decimal128Type> = match values.data_type() {
                    DataType::Int8 => values
                        .as_primitive::<Int8Type>()
                        .unary(|v| i128::from(v) * factor),
                    DataType::Int16 => values
                        .as_primitive::<Int16Type>()
                        .unary(|v| i128::from(v) * factor),
                    DataType::Int32 => values
                        .as_primitive::<Int32Type>()
                        .unary(|v| i128::from(v) * factor),
                    DataType::Int64 => values
                        .as_primitive::<Int64Type>()
                        .unary(|v| i128::from(v) * factor),
                    _ => return Ok(None),
                };
                Ok(Some(array(scaled.with_data_type(to.clone()))))
            }
            Kind::DecimalMul { left, right, to } => {
                let (l, r) = (left.evaluate(batch)?, right.evaluate(batch)?);
                let decimal = |v: &ColumnarValue| matches!(v.data_type(), DataType::Decimal128(..));
                if !decimal(&l) || !decimal(&r) {
                    return Ok(None);
                }
                let product = match (&l, &r) {
                    (ColumnarValue::Array(a), ColumnarValue::Scalar(s))
                    | (ColumnarValue::Scalar(s), ColumnarValue::Array(a)) => {
                        let a = a.as_primitive::<Decimal128Type>();
                        match (small(s), fits_i64(a)) {
                            (Some(s), true) => Some(a.unary(|v| i128::from(v as i64) * s)),
                            _ => None,
                        }
                    }
                    (ColumnarValue::Array(a), ColumnarValue::Array(b)) => {
                        let (a, b) = (
                            a.as_primitive::<Decimal128Type>(),
                            b.as_primitive::<Decimal128Type>(),
                        );
                        if fits_i64(a) && fits_i64(b) {
                            let multiply =
                                |x: i128, y: i128| i128::from(x as i64) * (y as i64) as i128;
                            Some(arrow::compute::binary(a, b, multiply)?)
                        } else {
                            None
                        }
                    }
                    _ => None,
                };
                match product {
                    Some(p) => Ok(Some(array(p.with_data_type(to.clone())))),
                    // Operands beyond 64 bits: Arrow's checked kernel, as BinaryExpr calls it
                    // for decimals.
                    None => apply(&l, &r, numeric::mul).map(Some),
                }
            }
            Kind::IntDiv { input, divider } => {
                let ColumnarValue::Array(values) = input.evaluate(batch)? else {
                    return Ok(None);
                };
                let d = *divider;
                let quotients: ArrayRef = match values.data_type() {
                    DataType::Int8 => Arc::new(
                        values
                            .as_primitive::<Int8Type>()
                            .unary::<_, Int8Type>(|v| d.divide(i64::from(v)) as i8),
                    ),
                    DataType::Int16 => Arc::new(
                        values
                            .as_primitive::<Int16Type>()
                            .unary::<_, Int16Type>(|v| d.divide(i64::from(v)) as i16),
                    ),
                    DataType::Int32 => Arc::new(
                        values
                            .as_primitive::<Int32Type>()
                            .unary::<_, Int32Type>(|v| d.divide(i64::from(v)) as i32),
                    ),
                    DataType::Int64 => Arc::new(
                        values
                            .as_primitive::<Int64Type>()
                            .unary::<_, Int64Type>(|v| d.divide(v)),
                    ),
                    _ => return Ok(None),
                };
                Ok(Some(ColumnarValue::Array(quotients)))
            }
        }
    }
}

fn array(values: PrimitiveArray<Decimal128Type>) -> ColumnarValue {
    ColumnarValue::Array(Arc::new(values))
}

/// Decimal digits of the largest value of an integer type.
fn integer_digits(data_type: &DataType) -> Option<u8> {
    match data_type {
        DataType::Int8 => Some(3),
        DataType::Int16 => Some(5),
        DataType::Int32 => Some(10),
        DataType::Int64 => Some(19),
        _ => None,
    }
}

fn int_to_decimal(cast: &CastExpr, schema: &Schema) -> Option<Kind> {
    let digits = integer_digits(&cast.expr().data_type(schema).ok()?)?;
    let DataType::Decimal128(precision, scale) = *cast.cast_type() else {
        return None;
    };
    // Every value times 10^scale then has at most `precision` digits: Arrow's check of each
    // row can never fail.
    let scale = u8::try_from(scale).ok()?;
    if u32::from(digits) + u32::from(scale) > u32::from(precision) || precision > 38 {
        return None;
    }
    Some(Kind::IntToDecimal {
        input: Arc::clone(cast.expr()),
        to: cast.cast_type().clone(),
        factor: 10i128.pow(u32::from(scale)),
    })
}

fn decimal_mul(binary: &BinaryExpr, schema: &Schema) -> Option<Kind> {
    let DataType::Decimal128(p1, s1) = binary.left().data_type(schema).ok()? else {
        return None;
    };
    let DataType::Decimal128(p2, s2) = binary.right().data_type(schema).ok()? else {
        return None;
    };
    // The type Arrow's multiplication gives (it fails beyond scale 38: leave that to it).
    let scale = i16::from(s1) + i16::from(s2);
    if !(0..=38).contains(&scale) {
        return None;
    }
    let precision = (u16::from(p1) + u16::from(p2) + 1).min(38) as u8;
    Some(Kind::DecimalMul {
        left: Arc::clone(binary.left()),
        right: Arc::clone(binary.right()),
        to: DataType::Decimal128(precision, scale as i8),
    })
}

fn int_div(binary: &BinaryExpr, schema: &Schema) -> Option<Kind> {
    let data_type = binary.left().data_type(schema).ok()?;
    integer_digits(&data_type)?;
    if binary.right().data_type(schema).ok()? != data_type {
        return None;
    }
    let divisor = match constant(binary.right())? {
        ScalarValue::Int8(Some(v)) => i64::from(v),
        ScalarValue::Int16(Some(v)) => i64::from(v),
        ScalarValue::Int32(Some(v)) => i64::from(v),
        ScalarValue::Int64(Some(v)) => v,
        _ => return None,
    };
    Some(Kind::IntDiv {
        input: Arc::clone(binary.left()),
        divider: Divider::new(divisor)?,
    })
}

/// The value of a literal, possibly under casts.
fn constant(expr: &Arc<dyn PhysicalExpr>) -> Option<ScalarValue> {
    if let Some(literal) = expr.downcast_ref::<Literal>() {
        return Some(literal.value().clone());
    }
    let cast = expr.downcast_ref::<CastExpr>()?;
    constant(cast.expr())?
        .cast_to_with_options(cast.cast_type(), cast.cast_options())
        .ok()
}

/// A non-null decimal scalar's unscaled value, if it fits in 64 bits.
fn small(scalar: &ScalarValue) -> Option<i128> {
    match scalar {
        ScalarValue::Decimal128(Some(v), ..) => i64::try_from(*v).ok().map(i128::from),
        _ => None,
    }
}

/// Whether every value (NULL slots included) fits in 64 bits, so that products of two such
/// values fit in 128 bits.
fn fits_i64(values: &PrimitiveArray<Decimal128Type>) -> bool {
    values
        .values()
        .iter()
        .fold(true, |ok, &v| ok & (i128::from(v as i64) == v))
}

/// DataFusion's `apply`: an Arrow kernel over arrays and scalars.
fn apply(
    l: &ColumnarValue,
    r: &ColumnarValue,
    f: impl Fn(&dyn Datum, &dyn Datum) -> std::result::Result<ArrayRef, ArrowError>,
) -> Result<ColumnarValue> {
    Ok(match (l, r) {
        (ColumnarValue::Array(l), ColumnarValue::Array(r)) => {
            ColumnarValue::Array(f(&l.as_ref(), &r.as_ref())?)
        }
        (ColumnarValue::Scalar(l), ColumnarValue::Array(r)) => {
            ColumnarValue::Array(f(&l.to_scalar()?, &r.as_ref())?)
        }
        (ColumnarValue::Array(l), ColumnarValue::Scalar(r)) => {
            ColumnarValue::Array(f(&l.as_ref(), &r.to_scalar()?)?)
        }
        (ColumnarValue::Scalar(l), ColumnarValue::Scalar(r)) => {
            let array = f(&l.to_scalar()?, &r.to_scalar()?)?;
            ColumnarValue::Scalar(ScalarValue::try_from_array(array.as_ref(), 0)?)
        }
    })
}

impl fmt::Display for Fast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt(f)
    }
}

impl PhysicalExpr for Fast {
    fn data_type(&self, schema: &Schema) -> Result<DataType> {
        self.original.data_type(schema)
    }

    fn nullable(&self, schema: &Schema) -> Result<bool> {
        self.original.nullable(schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        match self.try_evaluate(batch)? {
            Some(value) => Ok(value),
            None => self.original.evaluate(batch),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.original.children()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        // The stand-in was built for the old children; rebuilding gives the original node.
        Arc::clone(&self.original).with_new_children(children)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt_sql(f)
    }
}

/// Division of `i64`s by a fixed divisor with a multiplication and shifts instead of a division
/// instruction (Granlund and Montgomery's method for unsigned divisors, as compilers do for
/// constant divisors), truncating toward zero like `/`. Exact for every dividend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Divider {
    negative: bool,
    /// `|divisor| = 1`: the quotient is the dividend.
    one: bool,
    magic: u64,
    /// `ceil(log2(|divisor|)) - 1`.
    shift: u32,
}

impl Divider {
    /// `None` for 0 and -1, which Arrow reports as errors (division by zero, and overflow of
    /// `i64::MIN / -1`).
    pub(super) fn new(divisor: i64) -> Option<Divider> {
        if divisor == 0 || divisor == -1 {
            return None;
        }
        let d = divisor.unsigned_abs();
        if d == 1 {
            return Some(Divider {
                negative: divisor < 0,
                one: true,
                magic: 0,
                shift: 0,
            });
        }
        let l = 64 - (d - 1).leading_zeros();
        // m = floor(2^64 * (2^l - d) / d) + 1, which is below 2^64 since 2^l - d < d.
        let magic = (((1u128 << l) - u128::from(d)) << 64) / u128::from(d) + 1;
        Some(Divider {
            negative: divisor < 0,
            one: false,
            magic: magic as u64,
            shift: l - 1,
        })
    }

    #[inline]
    fn divide_unsigned(&self, n: u64) -> u64 {
        if self.one {
            return n;
        }
        let t = ((u128::from(self.magic) * u128::from(n)) >> 64) as u64;
        (t + ((n - t) >> 1)) >> self.shift
    }

    /// `n / divisor`, rounded toward zero.
    #[inline]
    pub(super) fn divide(&self, n: i64) -> i64 {
        let q = self.divide_unsigned(n.unsigned_abs()) as i64;
        if (n < 0) != self.negative {
            q.wrapping_neg()
        } else {
            q
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use arrow::array::{Decimal128Array, Int32Array, Int64Array};
    use arrow::datatypes::Field;
    use datafusion_physical_expr::expressions::{binary, cast, col, lit};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn the_divider_divides_like_the_division_operator(n in any::<i64>(), d in any::<i64>()) {
            for d in [d, d >> 40, d >> 60, 10, -10, 1000, 7, 2, 1, -2, i64::MIN, i64::MAX] {
                if let Some(divider) = Divider::new(d) {
                    prop_assert_eq!(divider.divide(n), n / d, "{} / {}", n, d);
                }
            }
        }
    }

    #[test]
    fn the_divider_handles_the_extremes() {
        for n in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX, i64::MAX - 1] {
            for d in [1, 2, 3, -2, -3, 10, i64::MAX, i64::MIN, 1 << 62, -(1 << 62)] {
                assert_eq!(Divider::new(d).unwrap().divide(n), n / d, "{n} / {d}");
            }
        }
        assert!(Divider::new(0).is_none());
        assert!(Divider::new(-1).is_none());
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("l", DataType::Int64, true),
            Field::new("d", DataType::Decimal128(38, 2), true),
        ])
    }

    fn batch(i: Vec<Option<i32>>, l: Vec<Option<i64>>, d: Vec<Option<i128>>) -> RecordBatch {
        let d = Decimal128Array::from(d)
            .with_precision_and_scale(38, 2)
            .unwrap();
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(Int32Array::from(i)),
                Arc::new(Int64Array::from(l)),
                Arc::new(d),
            ],
        )
        .unwrap()
    }

    /// Evaluates `expr` as DataFusion does and through [`optimize`]; the second value says
    /// whether a node was replaced.
    fn both_ways(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> (String, String, bool) {
        let show = |v: Result<ColumnarValue>| match v {
            Ok(v) => {
                let array = v.into_array(batch.num_rows()).unwrap();
                format!("{:?} {:?}", array.data_type(), array)
            }
            Err(e) => format!("error: {e}"),
        };
        let fast = optimize(expr, &schema());
        let replaced =
            fast.downcast_ref::<Fast>().is_some() || fast.children().iter().any(|c| c.is::<Fast>());
        (
            show(expr.evaluate(batch)),
            show(fast.evaluate(batch)),
            replaced,
        )
    }

    fn decimal(v: i128, precision: u8, scale: i8) -> Arc<dyn PhysicalExpr> {
        lit(ScalarValue::Decimal128(Some(v), precision, scale))
    }

    proptest! {
        #[test]
        fn optimized_expressions_give_datafusions_results(
            rows in proptest::collection::vec(
                (proptest::option::of(any::<i32>()),
                 proptest::option::of(any::<i64>()),
                 proptest::option::of(prop_oneof![any::<i64>().prop_map(i128::from), any::<i128>()])),
                0..20),
            divisor in prop_oneof![Just(0i64), Just(-1), Just(10), any::<i64>()],
            factor in any::<i64>(),
        ) {
            let s = schema();
            let i = col("i", &s).unwrap();
            let l = col("l", &s).unwrap();
            let d = col("d", &s).unwrap();
            let batch = batch(
                rows.iter().map(|r| r.0).collect(),
                rows.iter().map(|r| r.1).collect(),
                rows.iter().map(|r| r.2).collect(),
            );
            let exprs: Vec<Arc<dyn PhysicalExpr>> = vec![
                cast(Arc::clone(&i), &s, DataType::Decimal128(10, 0)).unwrap(),
                cast(Arc::clone(&i), &s, DataType::Decimal128(13, 3)).unwrap(),
                cast(Arc::clone(&l), &s, DataType::Decimal128(38, 19)).unwrap(),
                // Too narrow for every value: Arrow's checked cast.
                cast(Arc::clone(&i), &s, DataType::Decimal128(9, 0)).unwrap(),
                binary(
                    cast(Arc::clone(&i), &s, DataType::Decimal128(10, 0)).unwrap(),
                    BinaryOp::Multiply,
                    decimal(908, 3, 3),
                    &s,
                ).unwrap(),
                binary(Arc::clone(&d), BinaryOp::Multiply, decimal(i128::from(factor), 20, 3), &s).unwrap(),
                binary(decimal(i128::from(factor), 20, 3), BinaryOp::Multiply, Arc::clone(&d), &s).unwrap(),
                binary(Arc::clone(&d), BinaryOp::Multiply, Arc::clone(&d), &s).unwrap(),
                binary(Arc::clone(&l), BinaryOp::Divide, lit(divisor), &s).unwrap(),
                binary(Arc::clone(&i), BinaryOp::Divide, lit(divisor as i32), &s).unwrap(),
                binary(Arc::clone(&l), BinaryOp::Divide, Arc::clone(&l), &s).unwrap(),
            ];
            for expr in &exprs {
                let (datafusion, fast, _) = both_ways(expr, &batch);
                prop_assert_eq!(datafusion, fast, "{}", expr);
            }
        }
    }

    #[test]
    fn the_benchmark_expressions_are_replaced() {
        let s = schema();
        let i = col("i", &s).unwrap();
        let l = col("l", &s).unwrap();
        let price = binary(
            cast(i, &s, DataType::Decimal128(10, 0)).unwrap(),
            BinaryOp::Multiply,
            decimal(908, 3, 3),
            &s,
        )
        .unwrap();
        let seconds = binary(l, BinaryOp::Divide, lit(10i64), &s).unwrap();
        let batch = batch(vec![Some(150)], vec![Some(12_345)], vec![None]);
        for expr in [price, seconds] {
            let (datafusion, fast, replaced) = both_ways(&expr, &batch);
            assert!(replaced, "{expr}");
            assert_eq!(datafusion, fast);
        }
    }
}
