//! Which columns of a stream are time attributes and window columns, as Flink's planner tracks
//! them (`TimeIndicatorRelDataType` and `FlinkRelMdWindowProperties`).
//!
//! - A *time attribute* is a rowtime column: the `WATERMARK FOR` column of a source, the
//!   `window_time` of a window TVF or window aggregation, or any of those passed through
//!   unchanged. A window TVF's own time column becomes a plain TIMESTAMP in its output, and a
//!   regular join or group aggregation outputs none.
//! - *Window columns* are the `window_start`/`window_end`/`window_time` of a window TVF or
//!   window aggregation (and the window join of two of them), with the window they belong to.
//!
//! Both survive projections that pass the column through (also renamed), filters, aliases and
//! views; any expression over them, even a CAST, yields a plain value. They decide whether a
//! join is a window join or an interval join, and whether a `GROUP BY window_start,
//! window_end` over an earlier window's output is a window aggregation.

use std::collections::BTreeSet;

use datafusion_expr::Expr;

use crate::catalog::WindowFunction;

/// The window columns of a stream and the window they come from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WindowColumns {
    pub starts: BTreeSet<usize>,
    pub ends: BTreeSet<usize>,
    pub times: BTreeSet<usize>,
    pub function: WindowFunction,
}

/// What a stream's columns mean to event-time operators.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Attributes {
    /// Rowtime attribute columns.
    pub time: BTreeSet<usize>,
    pub window: Option<WindowColumns>,
}

impl Attributes {
    /// Output `i` of a projection is input column `mapping[i]` passed through, or `None` for
    /// a computed value (which is never a time attribute or window column).
    pub fn project(&self, mapping: &[Option<usize>]) -> Attributes {
        let remap = |set: &BTreeSet<usize>| -> BTreeSet<usize> {
            mapping
                .iter()
                .enumerate()
                .filter(|(_, m)| m.is_some_and(|i| set.contains(&i)))
                .map(|(out, _)| out)
                .collect()
        };
        let window = self.window.as_ref().and_then(|w| {
            // Flink drops the window properties when the projection keeps no plain column.
            if mapping.iter().all(Option::is_none) {
                return None;
            }
            Some(WindowColumns {
                starts: remap(&w.starts),
                ends: remap(&w.ends),
                times: remap(&w.times),
                function: w.function,
            })
        });
        Attributes {
            time: remap(&self.time),
            window,
        }
    }

    /// The attributes of `left ++ right` (a window or interval join keeps both sides').
    pub fn concat(left: &Attributes, left_width: usize, right: &Attributes) -> Attributes {
        let shift =
            |set: &BTreeSet<usize>| -> Vec<usize> { set.iter().map(|i| i + left_width).collect() };
        let union = |a: &BTreeSet<usize>, b: &BTreeSet<usize>| -> BTreeSet<usize> {
            a.iter().copied().chain(shift(b)).collect()
        };
        let window = match (&left.window, &right.window) {
            (Some(l), Some(r)) => Some(WindowColumns {
                starts: union(&l.starts, &r.starts),
                ends: union(&l.ends, &r.ends),
                times: union(&l.times, &r.times),
                function: l.function,
            }),
            _ => None,
        };
        Attributes {
            time: union(&left.time, &right.time),
            window,
        }
    }

    /// The attributes every input of a UNION ALL agrees on (Flink's rule for window columns;
    /// a column is a time attribute only if it is one in every input).
    pub fn intersect(inputs: &[Attributes]) -> Attributes {
        let Some((first, rest)) = inputs.split_first() else {
            return Attributes::default();
        };
        let both = |a: &BTreeSet<usize>, b: &BTreeSet<usize>| a.intersection(b).copied().collect();
        let mut out = first.clone();
        for a in rest {
            out.time = both(&out.time, &a.time);
            out.window = match (&out.window, &a.window) {
                (Some(x), Some(y)) if x.function == y.function => Some(WindowColumns {
                    starts: both(&x.starts, &y.starts),
                    ends: both(&x.ends, &y.ends),
                    times: both(&x.times, &y.times),
                    function: x.function,
                }),
                _ => None,
            };
        }
        out
    }

    pub fn is_window_start(&self, i: usize) -> bool {
        self.window.as_ref().is_some_and(|w| w.starts.contains(&i))
    }

    pub fn is_window_end(&self, i: usize) -> bool {
        self.window.as_ref().is_some_and(|w| w.ends.contains(&i))
    }

    pub fn is_window_time(&self, i: usize) -> bool {
        self.window.as_ref().is_some_and(|w| w.times.contains(&i))
    }
}

/// The input column an expression passes through unchanged (under any aliases), if any.
pub(super) fn passed_through(
    expr: &Expr,
    index_of: impl Fn(&Expr) -> Option<usize>,
) -> Option<usize> {
    match expr {
        Expr::Alias(a) => passed_through(&a.expr, index_of),
        Expr::Column(_) => index_of(expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(starts: &[usize], ends: &[usize], times: &[usize]) -> WindowColumns {
        WindowColumns {
            starts: starts.iter().copied().collect(),
            ends: ends.iter().copied().collect(),
            times: times.iter().copied().collect(),
            function: WindowFunction::Tumble {
                size: 5_000,
                offset: 0,
            },
        }
    }

    #[test]
    fn a_projection_keeps_renamed_and_duplicated_window_columns_and_drops_computed_ones() {
        let attrs = Attributes {
            time: [4].into(),
            window: Some(window(&[2], &[3], &[4])),
        };
        // out0 = in3 (window_end AS endtime), out1 = f(in2), out2 = in4, out3 = in3 again.
        let out = attrs.project(&[Some(3), None, Some(4), Some(3)]);
        assert_eq!(out.time, [2].into());
        assert_eq!(out.window, Some(window(&[], &[0, 3], &[2])));
    }

    #[test]
    fn a_projection_of_only_computed_columns_loses_the_window() {
        let attrs = Attributes {
            time: [4].into(),
            window: Some(window(&[2], &[3], &[4])),
        };
        assert_eq!(attrs.project(&[None, None]), Attributes::default());
    }

    #[test]
    fn a_join_of_two_windowed_inputs_keeps_both_sides_window_columns() {
        let left = Attributes {
            time: [2].into(),
            window: Some(window(&[0], &[1], &[2])),
        };
        let right = Attributes {
            time: [1].into(),
            window: Some(window(&[0], &[], &[1])),
        };
        let joined = Attributes::concat(&left, 3, &right);
        assert_eq!(joined.time, [2, 4].into());
        assert_eq!(joined.window, Some(window(&[0, 3], &[1], &[2, 4])));
    }

    #[test]
    fn a_union_keeps_only_what_every_input_agrees_on() {
        let a = Attributes {
            time: [1, 2].into(),
            window: Some(window(&[0], &[1], &[2])),
        };
        let b = Attributes {
            time: [2].into(),
            window: Some(window(&[0], &[3], &[2])),
        };
        let out = Attributes::intersect(&[a.clone(), b]);
        assert_eq!(out.time, [2].into());
        assert_eq!(out.window, Some(window(&[0], &[], &[2])));
        let mut hop = a.clone();
        if let Some(w) = hop.window.as_mut() {
            w.function = WindowFunction::Hop {
                slide: 1_000,
                size: 5_000,
                offset: 0,
            };
        }
        assert_eq!(Attributes::intersect(&[a, hop]).window, None);
    }
}
