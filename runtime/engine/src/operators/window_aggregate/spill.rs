//! Spilling (window, key) entries to the state backend and merging them back.
//!
//! A spilled entry is one key-value pair in its key's key group: the key is
//! `order(end) ++ order(start) ++ key bytes ++ spill round (u64 big-endian)`, where `order(v)` is
//! `v` with its sign bit flipped, big-endian, so keys sort by window; the value is the slot's
//! accumulator state. The round suffix keeps the partial states of an entry spilled more than
//! once apart, so spilling never reads. A window's entries are found with one prefix scan
//! (`order(end) ++ order(start)`) per key group it spilled to, and deleted entry by entry in
//! one batch when the window fires (see [`restore_spilled`] for why not by range).
//!
//! Checkpoints do not spill (see [`super::snapshot`]); the copies a checkpoint leaves in the
//! backend beside spilled windows become spilled entries when the job is restored.

use std::collections::BTreeSet;

use weir_state::{StateBackend, StateId, WriteOp};

use super::{Core, Windows};
use crate::dataflow::key_group::KeyGroup;
use crate::dataflow::message::Timestamp;
use crate::error::Result;
use crate::operators::aggregate::KeyMap;

/// The state backend and where this operator's state lives in it.
pub(super) struct Store {
    pub(super) backend: Box<dyn StateBackend>,
    pub(super) id: StateId,
    /// Counts spill rounds; the suffix that keeps one entry's spills apart.
    pub(super) round: u64,
    /// Key groups holding checkpoint copies of in-memory entries (see [`super::snapshot`]).
    pub(super) copied: BTreeSet<KeyGroup>,
}

impl Store {
    pub(super) fn new(backend: Box<dyn StateBackend>, id: StateId) -> Store {
        Store {
            backend,
            id,
            round: 0,
            copied: BTreeSet::new(),
        }
    }

    /// The state id of checkpoint copies: the one after the spill state's.
    pub(super) fn copy_id(&self) -> StateId {
        StateId(self.id.0.wrapping_add(1))
    }
}

/// `v` as 8 bytes that sort like the number.
fn order_bytes(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn window_prefix(end: Timestamp, start: Timestamp) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(16);
    prefix.extend_from_slice(&order_bytes(end));
    prefix.extend_from_slice(&order_bytes(start));
    prefix
}

pub(super) const SPILL_SUFFIX: usize = 8;

/// Spill whole windows, latest first, until at most half of `limit` entries are in memory.
pub(super) fn maybe_spill(
    windows: &mut Windows,
    core: Option<&mut Core>,
    store: &mut Store,
    limit: usize,
    operator: &str,
) -> Result<()> {
    if windows.in_memory <= limit {
        return Ok(());
    }
    spill_down_to(windows, core, store, limit / 2, operator)
}

/// Spill whole windows, latest first, until at most `target` entries are in memory.
pub(super) fn spill_down_to(
    windows: &mut Windows,
    core: Option<&mut Core>,
    store: &mut Store,
    target: usize,
    operator: &str,
) -> Result<()> {
    let Some(core) = core else {
        return Ok(());
    };
    if windows.in_memory <= target {
        return Ok(());
    }
    let round = store.round;
    store.round += 1;
    let mut ops = Vec::new();
    for (&(end, start), entry) in windows.map.iter_mut().rev() {
        if windows.in_memory <= target {
            break;
        }
        if entry.groups.is_empty() {
            continue;
        }
        let prefix = window_prefix(end, start);
        for (key, slot) in entry.groups.drain() {
            let key_group = core.slot_key_group[slot as usize];
            let mut k = Vec::with_capacity(prefix.len() + key.len() + SPILL_SUFFIX);
            k.extend_from_slice(&prefix);
            k.extend_from_slice(&key);
            k.extend_from_slice(&round.to_be_bytes());
            let mut value = Vec::new();
            core.accs.write_state(slot, &mut value);
            ops.push(WriteOp::Put {
                state: store.id,
                key_group,
                key: k,
                value,
            });
            entry.spilled.insert(key_group);
            core.accs.release(slot);
            windows.in_memory -= 1;
        }
    }
    tracing::debug!(
        operator = %operator,
        entries = ops.len(),
        "spilled window aggregate state"
    );
    store.backend.write_batch(ops)?;
    Ok(())
}

/// Merge the spilled partial states of window (`end`, `start`) into `groups` (allocating slots
/// for keys that are only spilled) and delete them from the backend.
///
/// The entries are deleted one by one, in one batch, not with a range deletion per key group:
/// RocksDB fragments every range tombstone in the memtable again for each new iterator, so
/// with a range per key group per fired window each later scan grew slower (a window job whose
/// sources drifted apart spent most of its time in `FragmentTombstones`).
pub(super) fn restore_spilled(
    store: &mut Store,
    core: &mut Core,
    key_groups: &BTreeSet<KeyGroup>,
    end: Timestamp,
    start: Timestamp,
    groups: &mut KeyMap<u32>,
) -> Result<()> {
    let prefix = window_prefix(end, start);
    let mut deletes = Vec::new();
    for &key_group in key_groups {
        merge_spilled(
            store,
            core,
            key_group,
            &prefix,
            &mut deletes,
            |core, key| {
                Some(match groups.get(key) {
                    Some(&slot) => slot,
                    None => {
                        let slot = core.alloc(key_group);
                        groups.insert(key, slot);
                        slot
                    }
                })
            },
        )?;
    }
    store.backend.write_batch(deletes)?;
    Ok(())
}

/// Merge the spilled partial states of `key` in session (`end`, `start`) into `slot` and delete
/// them from the backend.
pub(super) fn restore_spilled_key(
    store: &mut Store,
    core: &mut Core,
    key_group: KeyGroup,
    (end, start): (Timestamp, Timestamp),
    key: &[u8],
    slot: u32,
) -> Result<()> {
    let mut prefix = window_prefix(end, start);
    prefix.extend_from_slice(key);
    let mut deletes = Vec::new();
    // Only this key, not a longer key that starts with the same bytes.
    merge_spilled(store, core, key_group, &prefix, &mut deletes, |_, rest| {
        rest.is_empty().then_some(slot)
    })?;
    store.backend.write_batch(deletes)?;
    Ok(())
}

/// Merge each spilled entry under `prefix` in `key_group` into the slot `slot_of` gives for
/// its key bytes after the prefix (entries it gives none are left alone), and queue the
/// merged entries' deletion.
fn merge_spilled(
    store: &Store,
    core: &mut Core,
    key_group: KeyGroup,
    prefix: &[u8],
    deletes: &mut Vec<WriteOp>,
    mut slot_of: impl FnMut(&mut Core, &[u8]) -> Option<u32>,
) -> Result<()> {
    for (k, value) in store.backend.scan_prefix(store.id, key_group, prefix)? {
        if k.len() < prefix.len() + SPILL_SUFFIX {
            continue;
        }
        let Some(slot) = slot_of(core, &k[prefix.len()..k.len() - SPILL_SUFFIX]) else {
            continue;
        };
        core.accs.merge_encoded(slot, &value)?;
        deletes.push(WriteOp::Delete {
            state: store.id,
            key_group,
            key: k,
        });
    }
    Ok(())
}

const WINDOW_LEN: usize = 16;

/// After a restore: find every window (and, for SESSION, every key's sessions) whose entries
/// are in the backend, and continue spill rounds after the highest one found, so a new spill
/// never overwrites a restored one. Checkpoint copies of in-memory entries become spilled
/// entries of one new round (a key has at most one copy per window, so they cannot collide).
pub(super) fn rediscover(windows: &mut Windows, store: &mut Store, sessions: bool) -> Result<()> {
    for (key_group, k, _) in store.backend.scan_state(store.id)? {
        if k.len() < WINDOW_LEN + SPILL_SUFFIX {
            continue;
        }
        let mut round = [0u8; SPILL_SUFFIX];
        round.copy_from_slice(&k[k.len() - SPILL_SUFFIX..]);
        store.round = store.round.max(u64::from_be_bytes(round) + 1);
        note_spilled(windows, key_group, &k, sessions);
    }
    let copy_id = store.copy_id();
    let copies = store.backend.scan_state(copy_id)?;
    if copies.is_empty() {
        return Ok(());
    }
    let round = store.round;
    store.round += 1;
    let mut key_groups = BTreeSet::new();
    let mut ops = Vec::with_capacity(copies.len());
    for (key_group, mut k, value) in copies {
        key_groups.insert(key_group);
        if k.len() < WINDOW_LEN {
            continue;
        }
        k.extend_from_slice(&round.to_be_bytes());
        note_spilled(windows, key_group, &k, sessions);
        ops.push(WriteOp::Put {
            state: store.id,
            key_group,
            key: k,
            value,
        });
    }
    store.backend.write_batch(ops)?;
    for key_group in key_groups {
        store.backend.delete_range(copy_id, key_group, b"", None)?;
    }
    Ok(())
}

/// Record that the spilled entry `k` (in the spill key layout) is in `key_group`.
fn note_spilled(windows: &mut Windows, key_group: KeyGroup, k: &[u8], sessions: bool) {
    let end = unorder(&k[0..8]);
    let start = unorder(&k[8..16]);
    windows
        .map
        .entry((end, start))
        .or_default()
        .spilled
        .insert(key_group);
    if sessions {
        let key = &k[WINDOW_LEN..k.len() - SPILL_SUFFIX];
        match windows.sessions.get_mut(key) {
            Some(list) => {
                if !list.contains(&(start, end)) {
                    list.push((start, end));
                    list.sort_unstable();
                }
            }
            None => {
                windows.sessions.insert(key, vec![(start, end)]);
            }
        }
    }
}

/// The inverse of [`order_bytes`].
fn unorder(bytes: &[u8]) -> Timestamp {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}
