//! Window joins, chosen as Flink's `WindowJoinUtil.satisfyWindowJoin` does: both inputs carry
//! window columns (of a window TVF, a window aggregation or a window join) of the same window,
//! and the ON clause has an equality between a `window_start` of each side and one between a
//! `window_end` of each side. Those equalities stay join keys, so both inputs are partitioned by
//! window and key; the operator buffers rows per `window_end` and joins a window when the
//! watermark passes its end, dropping rows of windows that already fired.
//!
//! Flink falls back to a regular join when only one of the two equalities is there or when the
//! two windows differ; so does this planner, and a regular join must be INNER.

use datafusion_expr::Expr;
use datafusion_expr::logical_plan::{Join, JoinType};

use super::join::JoinChoice;
use super::{Planner, Stream, describe_window};
use crate::error::{Error, Result};
use crate::operators::window_join::WindowJoinType;

impl Planner<'_> {
    /// The window join for `join` with equality `keys`, or `None` when it is not one.
    pub(super) fn window_join_choice(
        &self,
        join: &Join,
        left: &Stream,
        right: &Stream,
        keys: &[(Expr, Expr)],
    ) -> Result<Option<JoinChoice>> {
        let (Some(lw), Some(rw)) = (&left.attrs.window, &right.attrs.window) else {
            return Ok(None);
        };
        let mut start_equality = false;
        let mut end_equality = None;
        for (l, r) in keys {
            let (Some(li), Some(ri)) = (left.index_of(l), right.index_of(r)) else {
                continue;
            };
            if lw.starts.contains(&li) && rw.starts.contains(&ri) {
                start_equality = true;
            } else if lw.ends.contains(&li) && rw.ends.contains(&ri) {
                end_equality.get_or_insert((li, ri));
            }
        }
        let (true, Some((left_end, right_end))) = (start_equality, end_equality) else {
            return Ok(None);
        };
        if lw.function != rw.function {
            if join.join_type != JoinType::Inner {
                return Err(Error::unsupported(
                    self.location,
                    format!(
                        "a window join needs the same window on both inputs, but the left is {} and the right {}; as a regular join, only INNER is supported",
                        describe_window(&lw.function),
                        describe_window(&rw.function)
                    ),
                ));
            }
            return Ok(None);
        }
        let join_type = match join.join_type {
            JoinType::Inner => WindowJoinType::Inner,
            JoinType::Left => WindowJoinType::LeftOuter,
            JoinType::Right => WindowJoinType::RightOuter,
            JoinType::Full => WindowJoinType::FullOuter,
            other => {
                return Err(Error::unsupported(
                    self.location,
                    format!(
                        "{} window joins are not supported; only INNER, LEFT, RIGHT and FULL OUTER",
                        other.to_string().to_uppercase()
                    ),
                ));
            }
        };
        if left.updating || right.updating {
            return Err(Error::unsupported(
                self.location,
                "a window join over an updating (changelog) input is not supported",
            ));
        }
        Ok(Some(JoinChoice::Window {
            left_end,
            right_end,
            join_type,
            window: lw.function,
        }))
    }
}
