//! Interval joins: a join whose condition bounds one input's time attribute by the other's
//! from both sides, `l.ts BETWEEN r.ts - INTERVAL '5' SECOND AND r.ts + INTERVAL '5' SECOND`
//! or the same with `>=`, `>`, `<=`, `<`, becomes Flink's `IntervalJoin` (bounded state)
//! instead of a regular join. As in Flink's `IntervalJoinUtil.extractWindowBoundsFromPredicate`:
//!
//! - a *time predicate* compares `time attribute [± interval]` of one input with the same of the
//!   other input, nothing else; `>`/`<` tighten the bound by one millisecond;
//! - there must be exactly one lower and one upper bound on `l.ts - r.ts`, over the same pair of
//!   time attributes (more than two time predicates, or two of a kind, keep a regular join);
//! - the time predicates leave the join condition; the rest is evaluated on the joined rows.
//!
//! A join on time attributes without such bounds stays a regular join, whose output then has
//! no time attribute (Flink materializes them).

use datafusion_common::ScalarValue;
use datafusion_expr::logical_plan::{Join, JoinType};
use datafusion_expr::{Between, BinaryExpr, Expr, Operator as BinaryOperator};

use super::Stream;
use super::join::JoinChoice;
use crate::error::{Error, Result, SqlLocation};

const LEFT: usize = 0;
const RIGHT: usize = 1;

/// `l.ts - r.ts >= lower` or `l.ts - r.ts <= upper`, over one pair of time attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimePredicate {
    left_time: usize,
    right_time: usize,
    bound: Bound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Lower(i64),
    Upper(i64),
}

/// The interval join for `join`, with the non-time conjuncts of `rest` left to evaluate, or
/// `None` when its condition has no interval bounds.
pub(super) fn interval_join_choice(
    join: &Join,
    left: &Stream,
    right: &Stream,
    rest: &[Expr],
    location: SqlLocation,
) -> Result<Option<(JoinChoice, Vec<Expr>)>> {
    let mut predicates = Vec::new();
    let mut remaining = Vec::new();
    for conjunct in rest {
        let found = match conjunct {
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                let low = time_predicate(&binary(expr, BinaryOperator::GtEq, low), left, right);
                let high = time_predicate(&binary(expr, BinaryOperator::LtEq, high), left, right);
                low.zip(high).map(|(a, b)| vec![a, b])
            }
            other => time_predicate(other, left, right).map(|p| vec![p]),
        };
        match found {
            Some(found) => predicates.extend(found),
            None => remaining.push(conjunct.clone()),
        }
    }
    let lowers: Vec<&TimePredicate> = predicates
        .iter()
        .filter(|p| matches!(p.bound, Bound::Lower(_)))
        .collect();
    let uppers: Vec<&TimePredicate> = predicates
        .iter()
        .filter(|p| matches!(p.bound, Bound::Upper(_)))
        .collect();
    let (&[lower], &[upper]) = (lowers.as_slice(), uppers.as_slice()) else {
        return Ok(None);
    };
    if (lower.left_time, lower.right_time) != (upper.left_time, upper.right_time) {
        return Ok(None);
    }
    let (Bound::Lower(lo), Bound::Upper(hi)) = (lower.bound, upper.bound) else {
        return Ok(None);
    };
    if join.join_type != JoinType::Inner {
        return Err(Error::unsupported(
            location,
            format!(
                "{} interval joins are not supported yet; only INNER interval joins (the join condition bounds `{}` by `{}`)",
                join.join_type.to_string().to_uppercase(),
                left.schema.field(lower.left_time).name(),
                right.schema.field(lower.right_time).name()
            ),
        ));
    }
    if left.updating || right.updating {
        return Err(Error::unsupported(
            location,
            "an interval join over an updating (changelog) input is not supported",
        ));
    }
    // The operator takes the bounds of `r.ts - l.ts`.
    let (Some(op_lower), Some(op_upper)) = (hi.checked_neg(), lo.checked_neg()) else {
        return Err(Error::sql(location, "interval join bounds out of range"));
    };
    let choice = JoinChoice::Interval {
        left_time: lower.left_time,
        right_time: lower.right_time,
        lower: op_lower,
        upper: op_upper,
    };
    Ok(Some((choice, remaining)))
}

fn binary(left: &Expr, op: BinaryOperator, right: &Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(
        Box::new(left.clone()),
        op,
        Box::new(right.clone()),
    ))
}

fn time_predicate(expr: &Expr, left: &Stream, right: &Stream) -> Option<TimePredicate> {
    let Expr::BinaryExpr(BinaryExpr {
        left: a,
        op,
        right: b,
    }) = expr
    else {
        return None;
    };
    let (sa, ca, oa) = shifted_time(a, left, right)?;
    let (sb, cb, ob) = shifted_time(b, left, right)?;
    if sa == sb {
        return None;
    }
    // Written as `l.ts - r.ts <op> c`.
    let (op, c, lcol, rcol) = if sa == LEFT {
        (*op, ob.checked_sub(oa)?, ca, cb)
    } else {
        (flip(*op)?, oa.checked_sub(ob)?, cb, ca)
    };
    let bound = match op {
        BinaryOperator::GtEq => Bound::Lower(c),
        BinaryOperator::Gt => Bound::Lower(c.checked_add(1)?),
        BinaryOperator::LtEq => Bound::Upper(c),
        BinaryOperator::Lt => Bound::Upper(c.checked_sub(1)?),
        _ => return None,
    };
    Some(TimePredicate {
        left_time: lcol,
        right_time: rcol,
        bound,
    })
}

fn flip(op: BinaryOperator) -> Option<BinaryOperator> {
    Some(match op {
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        _ => return None,
    })
}

/// `time attribute ± constant interval` of one input: (side, column, offset in ms).
fn shifted_time(expr: &Expr, left: &Stream, right: &Stream) -> Option<(usize, usize, i64)> {
    match expr {
        Expr::Alias(a) => shifted_time(&a.expr, left, right),
        Expr::Column(_) => {
            let side = match (left.index_of(expr), right.index_of(expr)) {
                (Some(i), None) if left.attrs.time.contains(&i) => (LEFT, i),
                (None, Some(i)) if right.attrs.time.contains(&i) => (RIGHT, i),
                _ => return None,
            };
            Some((side.0, side.1, 0))
        }
        Expr::BinaryExpr(BinaryExpr {
            left: a,
            op: BinaryOperator::Plus,
            right: b,
        }) => match (interval_millis(a), interval_millis(b)) {
            (None, Some(ms)) => {
                let (s, c, o) = shifted_time(a, left, right)?;
                Some((s, c, o.checked_add(ms)?))
            }
            (Some(ms), None) => {
                let (s, c, o) = shifted_time(b, left, right)?;
                Some((s, c, o.checked_add(ms)?))
            }
            _ => None,
        },
        Expr::BinaryExpr(BinaryExpr {
            left: a,
            op: BinaryOperator::Minus,
            right: b,
        }) => {
            let ms = interval_millis(b)?;
            let (s, c, o) = shifted_time(a, left, right)?;
            Some((s, c, o.checked_sub(ms)?))
        }
        _ => None,
    }
}

/// A day-time interval literal in milliseconds.
fn interval_millis(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
            i64::from(v.days)
                .checked_mul(86_400_000)?
                .checked_add(v.nanoseconds / 1_000_000)
        }
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => i64::from(v.days)
            .checked_mul(86_400_000)?
            .checked_add(i64::from(v.milliseconds)),
        Expr::Cast(c) => interval_millis(&c.expr),
        _ => None,
    }
}
