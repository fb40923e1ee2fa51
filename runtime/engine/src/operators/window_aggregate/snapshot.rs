//! Checkpoints of a window aggregate without giving up its in-memory state.
//!
//! At a barrier the operator copies its in-memory (window, key) entries into the snapshot and
//! keeps them: the windows fire later from memory, as they would without checkpoints, instead
//! of reading back what a checkpoint wrote. Two cases:
//!
//! - **Nothing is spilled** (the common case: the state fits under the memory limit). The
//!   snapshot is the in-memory entries alone, encoded on the task thread in the spill format
//!   (see [`super::spill`]) under a fresh spill round, as a [`LocalSnapshot::Entries`] that the
//!   upload threads write as canonical key-group files. The backend is not touched: no write,
//!   no flush, no native checkpoint on the task thread.
//! - **Some windows are spilled.** The backend holds part of the state, so the snapshot is the
//!   backend's own (a RocksDB native checkpoint), and the in-memory entries are written into
//!   the backend beside the spilled ones as *copies*: under the copy state id (the spill state
//!   id plus one), keyed `order(end) ++ order(start) ++ key bytes`, without a round. Copies are
//!   never read while the job runs; the next such barrier deletes the previous copies (one
//!   `delete_range` per key group) before writing new ones.
//!
//! A restore finds the state in the backend either way: copies are turned into spilled
//! entries of a new round (see [`super::spill::rediscover`]), so every restored window merges
//! its parts when it fires, exactly as spilled windows do.

use std::collections::BTreeMap;

use weir_state::{Entry, KeyGroup, LocalSnapshot, WriteOp};

use super::spill::{SPILL_SUFFIX, Store, window_prefix};
use super::{Core, Windows};
use crate::dataflow::operator::{OperatorSnapshot, SnapshotContext};
use crate::error::Result;

/// Snapshot the operator's keyed state (see the module docs) with `operator_state` beside it.
pub(super) fn snapshot(
    windows: &Windows,
    core: Option<&Core>,
    store: &mut Store,
    ctx: &SnapshotContext,
    operator_state: Vec<serde_json::Value>,
) -> Result<OperatorSnapshot> {
    let spilled = windows.map.values().any(|w| !w.spilled.is_empty());
    if !spilled {
        let round = store.round;
        store.round += 1;
        let mut groups: BTreeMap<KeyGroup, Vec<Entry>> = BTreeMap::new();
        for_each_in_memory(windows, core, |key_group, prefix, key, value| {
            let mut k = Vec::with_capacity(prefix.len() + key.len() + SPILL_SUFFIX);
            k.extend_from_slice(prefix);
            k.extend_from_slice(key);
            k.extend_from_slice(&round.to_be_bytes());
            groups.entry(key_group).or_default().push(Entry {
                state: store.id,
                key: k,
                value,
            });
        });
        for entries in groups.values_mut() {
            entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        }
        return Ok(OperatorSnapshot {
            keyed: Some(LocalSnapshot::Entries(groups)),
            operator_state,
        });
    }
    let copy_id = store.copy_id();
    for key_group in std::mem::take(&mut store.copied) {
        store.backend.delete_range(copy_id, key_group, b"", None)?;
    }
    let mut ops = Vec::new();
    for_each_in_memory(windows, core, |key_group, prefix, key, value| {
        let mut k = Vec::with_capacity(prefix.len() + key.len());
        k.extend_from_slice(prefix);
        k.extend_from_slice(key);
        ops.push(WriteOp::Put {
            state: copy_id,
            key_group,
            key: k,
            value,
        });
        store.copied.insert(key_group);
    });
    store.backend.write_batch(ops)?;
    OperatorSnapshot::of_backend(store.backend.as_mut(), ctx, operator_state)
}

/// Calls `f(key group, window prefix, key bytes, accumulator state)` for every in-memory entry.
fn for_each_in_memory(
    windows: &Windows,
    core: Option<&Core>,
    mut f: impl FnMut(KeyGroup, &[u8], &[u8], Vec<u8>),
) {
    let Some(core) = core else {
        return;
    };
    for (&(end, start), entry) in &windows.map {
        if entry.groups.is_empty() {
            continue;
        }
        let prefix = window_prefix(end, start);
        for (key, &slot) in entry.groups.iter() {
            let mut value = Vec::new();
            core.accs.write_state(slot, &mut value);
            f(core.slot_key_group[slot as usize], &prefix, &key, value);
        }
    }
}
