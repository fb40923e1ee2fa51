//! How the interval join's state is laid out in the backend and in a checkpoint.
//!
//! Keyed state, one backend entry per cached row and per pending cleanup timer:
//!
//! - `[side: u8][key length: u32 BE][key bytes][time: sortable i64][seq: u64 BE]` → row bytes;
//! - `[2 + side: u8][key length: u32 BE][key bytes]` → the time of that side's cleanup timer
//!   (sortable i64), like Flink's per-key timer state.
//!
//! Rows are written at watermarks (only those still cached) and at barriers; timers as they are
//! set and cleared. So after the flush at a barrier the backend holds exactly the in-memory
//! caches and timers, and a restore rebuilds them from it, at any parallelism (every entry
//! belongs to its key's key group).
//!
//! What is not per key goes into the operator state, one item per subtask
//! ([`checkpoint_item`]): the watermark and Flink's two expiration times, which belong to an
//! operator instance. Flink itself does not checkpoint the expiration times (they restart at 0);
//! keeping them makes a restore at the same parallelism continue exactly as the failure-free
//! run, late rows included. After a rescale the smallest of the old subtasks' values is taken: a
//! smaller expiration time only makes the join look into its caches more often, so it can never
//! miss a match an old subtask would have found.

use crate::dataflow::message::Timestamp;
use crate::dataflow::operator::TaskInfo;
use crate::operators::join::{StateKey, sortable_time};

/// The first byte of a timer entry is this plus the side.
const TIMER_TAG: usize = 2;

/// The backend key of a cached row.
pub(super) fn row_state_key(side: usize, key: &[u8], time: Timestamp, seq: u64) -> Vec<u8> {
    StateKey::new(side, key.len() + 16)
        .bytes(key)
        .time(time)
        .seq(seq)
        .build()
}

/// The backend key of the cleanup timer of `side`'s cache of `key`.
pub(super) fn timer_state_key(side: usize, key: &[u8]) -> Vec<u8> {
    StateKey::new(TIMER_TAG + side, key.len())
        .bytes(key)
        .build()
}

pub(super) fn timer_value(time: Timestamp) -> Vec<u8> {
    sortable_time(time).to_vec()
}

/// One backend entry, decoded.
pub(super) enum Stored<'a> {
    Row {
        side: usize,
        key: &'a [u8],
        time: Timestamp,
        seq: u64,
        row: &'a [u8],
    },
    Timer {
        side: usize,
        key: &'a [u8],
        time: Timestamp,
    },
}

/// Decode a backend entry; `None` when it is not one this operator writes.
pub(super) fn decode<'a>(key: &'a [u8], value: &'a [u8]) -> Option<Stored<'a>> {
    let (&tag, rest) = key.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let join_key = rest.get(4..4usize.checked_add(len)?)?;
    let tail = rest.get(4 + len..)?;
    match usize::from(tag) {
        side @ 0..TIMER_TAG => {
            if tail.len() != 16 {
                return None;
            }
            Some(Stored::Row {
                side,
                key: join_key,
                time: unsortable(tail.get(..8)?)?,
                seq: u64::from_be_bytes(tail.get(8..16)?.try_into().ok()?),
                row: value,
            })
        }
        tag if (TIMER_TAG..TIMER_TAG + 2).contains(&tag) && tail.is_empty() => {
            Some(Stored::Timer {
                side: tag - TIMER_TAG,
                key: join_key,
                time: unsortable(value)?,
            })
        }
        _ => None,
    }
}

fn unsortable(bytes: &[u8]) -> Option<Timestamp> {
    let bytes: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// The operator-state item of one subtask: its watermark (read back by
/// [`crate::dataflow::operator::restored_watermark`]), its expiration times, and which subtask
/// of which parallelism it was, so a restore at the same parallelism finds its own values.
pub(super) fn checkpoint_item(
    watermark: Timestamp,
    expiration: [Timestamp; 2],
    task: &TaskInfo,
) -> serde_json::Value {
    serde_json::json!({
        "watermark": watermark,
        "expiration": expiration,
        "subtask": task.subtask,
        "parallelism": task.parallelism,
    })
}

/// The expiration times to resume with: this subtask's own at the same parallelism, else the
/// element-wise minimum over the old subtasks (see the module docs); `None` without any item.
pub(super) fn restored_expiration(
    items: &[serde_json::Value],
    task: &TaskInfo,
) -> Option<[Timestamp; 2]> {
    let parse = |item: &serde_json::Value| -> Option<[Timestamp; 2]> {
        let values = item.get("expiration")?.as_array()?;
        Some([values.first()?.as_i64()?, values.get(1)?.as_i64()?])
    };
    let same_task = |item: &&serde_json::Value| {
        item.get("subtask").and_then(serde_json::Value::as_u64) == Some(task.subtask as u64)
            && item.get("parallelism").and_then(serde_json::Value::as_u64)
                == Some(task.parallelism as u64)
    };
    if let Some(own) = items.iter().find(same_task).and_then(parse) {
        return Some(own);
    }
    items
        .iter()
        .filter_map(parse)
        .reduce(|a, b| [a[0].min(b[0]), a[1].min(b[1])])
}
