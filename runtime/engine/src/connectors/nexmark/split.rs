//! A nexmark source's read position, as the splits a checkpoint records.
//!
//! A subtask walks the events of its table's type in the epochs `subtask, subtask + p, …`
//! ([`Walk`]). Since every event is a pure function of its number, the position is just the
//! next event number of that walk, so a split is
//!
//! ```json
//! {"table": "bid", "next": 1304, "epoch_stride": 2, "epoch_events": 50, "end": 100000}
//! ```
//!
//! `next` is the next event (of the table's type) to generate, `epoch_stride` the epochs between
//! two of the walk's epochs (the parallelism it was started with), `epoch_events` the events
//! per epoch (the sum of the proportions, checked on restore so a changed proportion fails
//! instead of silently producing other events), and `end` one past the last event, `null`
//! when unbounded. A split is self-contained: any subtask of any parallelism can resume it and
//! produces exactly the events the original subtask had left, with the same content and event
//! times.

use serde_json::{Value, json};

use super::columns::EventKind;
use super::generator::{GeneratorConfig, Position, Walk};
use crate::error::{Error, Result};

/// What is left of one walk.
#[derive(Debug, Clone, Copy)]
pub(super) struct Split {
    pub next: Position,
    pub walk: Walk,
    /// One past the last event; `u64::MAX` when unbounded.
    pub end: u64,
}

impl Split {
    /// The walk of `subtask` of `parallelism` from its start.
    pub fn initial(
        config: &GeneratorConfig,
        kind: EventKind,
        subtask: usize,
        parallelism: usize,
        end: u64,
    ) -> Split {
        let (next, walk) = config.walk(kind, subtask as u64, parallelism.max(1) as u64);
        Split { next, walk, end }
    }

    /// Whether any event is left.
    pub fn has_next(&self) -> bool {
        self.next.event < self.end
    }

    /// The fraction of the whole event stream this split walks: one epoch in `epoch_stride`.
    pub fn share(&self) -> f64 {
        1.0 / self.walk.epoch_stride() as f64
    }

    pub fn to_json(self, kind: EventKind, config: &GeneratorConfig) -> Value {
        let end = (self.end != u64::MAX).then_some(self.end);
        json!({
            "table": kind.name(),
            "next": self.next.event,
            "epoch_stride": self.walk.epoch_stride(),
            "epoch_events": config.total_proportion(),
            "end": end,
        })
    }

    /// A split recorded by [`Split::to_json`], checked against this table's type and
    /// proportions.
    pub fn from_json(
        table: &str,
        kind: EventKind,
        config: &GeneratorConfig,
        value: &Value,
    ) -> Result<Split> {
        let error = |message: String| Error::Connector {
            connector: "nexmark".into(),
            table: table.into(),
            message: format!("cannot resume from checkpoint split {value}: {message}"),
        };
        let number = |key: &str| -> Result<u64> {
            value
                .get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| error(format!("'{key}' is not a non-negative integer")))
        };
        let recorded = value.get("table").and_then(Value::as_str);
        if recorded != Some(kind.name()) {
            return Err(error(format!(
                "it was recorded for nexmark table '{}', this table is '{}'",
                recorded.unwrap_or("?"),
                kind.name()
            )));
        }
        let epoch_events = number("epoch_events")?;
        if epoch_events != config.total_proportion() {
            return Err(error(format!(
                "it was recorded with proportions adding up to {epoch_events}, they now add \
                 up to {}",
                config.total_proportion()
            )));
        }
        let stride = number("epoch_stride")?;
        if stride == 0 {
            return Err(error("'epoch_stride' must be positive".into()));
        }
        let end = match value.get("end") {
            None | Some(Value::Null) => u64::MAX,
            Some(_) => number("end")?,
        };
        let event = number("next")?;
        let (next, walk) = config
            .walk_from(kind, event, stride)
            .ok_or_else(|| error(format!("event {event} is not a '{}' event", kind.name())))?;
        Ok(Split { next, walk, end })
    }
}
