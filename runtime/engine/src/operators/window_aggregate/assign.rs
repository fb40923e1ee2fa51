//! Assigning a batch's rows to (window, key) slots and updating the accumulators.
//!
//! Aligned windows (TUMBLE, HOP, CUMULATE) go one pass per window position: pass `p` gives each
//! row its `p`-th window, looks the (window, key) slot up (consecutive rows mostly share a
//! window, so the window map is only consulted when it changes) and then every aggregate updates
//! the batch in one loop. SESSION windows go row by row, merging the row's `[ts, ts + gap)` with
//! the key's live sessions it intersects (Flink's `TimeWindow.intersects`, which counts touching
//! windows as intersecting); slots merged away mid-batch are redirected to the surviving slot
//! before the accumulators are updated, which is sound because every aggregate is commutative.

use arrow::array::{Array, ArrayRef, TimestampMillisecondArray};

use super::spill::{Store, restore_spilled_key};
use super::{Core, WindowEntry, WindowKind, Windows, fired};
use crate::dataflow::message::Timestamp;
use crate::error::Result;
use crate::operators::aggregate::{FastMap, KeyRows, LazyKeyGroups, NO_SLOT};

/// A row's cell `[lo, hi)` and the window (end, start) it falls in, if any.
type CachedCell = (Timestamp, Timestamp, Option<(Timestamp, Timestamp)>);

/// The operator state a batch updates.
pub(super) struct Context<'a> {
    pub(super) windows: &'a mut Windows,
    pub(super) core: &'a mut Core,
    pub(super) store: &'a mut Store,
    pub(super) watermark: Timestamp,
    pub(super) slots: &'a mut Vec<u32>,
    pub(super) late_rows: &'a mut u64,
}

/// How many windows an aligned window function puts each row in.
fn passes(kind: WindowKind) -> i64 {
    match kind {
        WindowKind::Tumble { .. } | WindowKind::Session { .. } => 1,
        WindowKind::Hop { size, slide, .. } => size / slide,
        WindowKind::Cumulate { max_size, step, .. } => max_size / step,
    }
}

/// The `pass`-th window `(start, end)` of a row at `t`, if it has one.
#[inline]
fn window(kind: WindowKind, t: Timestamp, pass: i64) -> Option<(Timestamp, Timestamp)> {
    match kind {
        WindowKind::Tumble { size, offset } => {
            let start = t.wrapping_sub(t.wrapping_sub(offset).rem_euclid(size));
            Some((start, start.wrapping_add(size)))
        }
        WindowKind::Hop {
            size,
            slide,
            offset,
        } => {
            let last = t.wrapping_sub(t.wrapping_sub(offset).rem_euclid(slide));
            let start = last.wrapping_sub(pass.wrapping_mul(slide));
            Some((start, start.wrapping_add(size)))
        }
        WindowKind::Cumulate {
            max_size,
            step,
            offset,
        } => {
            let start = t.wrapping_sub(t.wrapping_sub(offset).rem_euclid(max_size));
            let end = start.wrapping_add((pass + 1).wrapping_mul(step));
            (end > t).then_some((start, end))
        }
        WindowKind::Session { .. } => None,
    }
}

/// Every window `[start, end)` of an aligned window function (TUMBLE, HOP, CUMULATE) that holds
/// `t`, in order of start then end, into `out` (cleared first). SESSION windows depend on other
/// rows, so they have none here.
pub(crate) fn aligned_windows(
    kind: WindowKind,
    t: Timestamp,
    out: &mut Vec<(Timestamp, Timestamp)>,
) {
    out.clear();
    let n = passes(kind);
    // HOP's passes go from the latest start backwards; CUMULATE's from the shortest window on.
    let order: Box<dyn Iterator<Item = i64>> = match kind {
        WindowKind::Hop { .. } => Box::new((0..n).rev()),
        _ => Box::new(0..n),
    };
    out.extend(order.filter_map(|pass| window(kind, t, pass)));
}

/// Assign a batch to TUMBLE, HOP or CUMULATE windows and update the accumulators.
pub(super) fn aligned(
    ctx: &mut Context<'_>,
    kind: WindowKind,
    times: &TimestampMillisecondArray,
    keys: &KeyRows,
    key_groups: &mut LazyKeyGroups<'_>,
    args: &[Option<ArrayRef>],
    contributed: &mut Vec<bool>,
) -> Result<()> {
    let n = times.len();
    let values = times.values();
    let nulls = times.nulls().filter(|n| n.null_count() > 0);
    contributed.clear();
    contributed.resize(n, false);
    // TUMBLE and HOP give every time in one `cell` (a window, a slide) the same windows.
    let cell = match kind {
        WindowKind::Tumble { size, offset } => Some((size, offset)),
        WindowKind::Hop { slide, offset, .. } => Some((slide, offset)),
        _ => None,
    };
    for pass in 0..passes(kind) {
        ctx.slots.clear();
        ctx.slots.resize(n, NO_SLOT);
        // The window of the previous row and its entry, reused while rows stay in it.
        let mut current: Option<(Timestamp, Timestamp)> = None;
        let mut entry = None;
        // The previous row's cell `[lo, hi)` and window: rows mostly come in time order, so
        // a range check usually replaces the division that finds a row's window.
        let mut cached: Option<CachedCell> = None;
        for (i, &t) in values.iter().enumerate() {
            if nulls.is_some_and(|nulls| nulls.is_null(i)) {
                continue;
            }
            let found = match cached {
                Some((lo, hi, found)) if lo <= t && t < hi => found,
                _ => {
                    let found = window(kind, t, pass);
                    if let Some((width, offset)) = cell {
                        let lo = t.wrapping_sub(t.wrapping_sub(offset).rem_euclid(width));
                        cached = Some((lo, lo.wrapping_add(width), found));
                    }
                    found
                }
            };
            let Some((start, end)) = found else {
                continue;
            };
            if fired(end, ctx.watermark) {
                continue;
            }
            if current != Some((start, end)) {
                current = Some((start, end));
                let typical = ctx.windows.typical_keys;
                entry = Some(
                    ctx.windows
                        .map
                        .entry((end, start))
                        .or_insert_with(|| WindowEntry::with_capacity(typical)),
                );
            }
            let Some(entry) = entry.as_deref_mut() else {
                continue;
            };
            let key = keys.get(i);
            let slot = match entry.groups.get(key) {
                Some(&slot) => slot,
                None => {
                    let slot = ctx.core.alloc(key_groups.get(i)?);
                    entry.groups.insert(key, slot);
                    ctx.windows.in_memory += 1;
                    slot
                }
            };
            ctx.slots[i] = slot;
            contributed[i] = true;
        }
        ctx.core.accs.update_batch(args, ctx.slots)?;
    }
    *ctx.late_rows += contributed.iter().filter(|&&c| !c).count() as u64;
    Ok(())
}

/// Assign a batch to SESSION windows, merging sessions, and update the accumulators.
pub(super) fn sessions(
    ctx: &mut Context<'_>,
    gap: i64,
    times: &TimestampMillisecondArray,
    keys: &KeyRows,
    key_groups: &mut LazyKeyGroups<'_>,
    args: &[Option<ArrayRef>],
) -> Result<()> {
    let n = times.len();
    ctx.slots.clear();
    ctx.slots.resize(n, NO_SLOT);
    // Slots merged into another during this batch: rows already pointing at them move on.
    let mut redirect: FastMap<u32, u32> = FastMap::default();
    let mut retired: Vec<u32> = Vec::new();
    let mut overlapping: Vec<(Timestamp, Timestamp)> = Vec::new();
    for i in 0..n {
        if times.is_null(i) {
            *ctx.late_rows += 1;
            continue;
        }
        let t = times.value(i);
        let (new_start, new_end) = (t, t.saturating_add(gap));
        let key = keys.get(i);
        overlapping.clear();
        if let Some(list) = ctx.windows.sessions.get(key) {
            overlapping.extend(
                list.iter()
                    .copied()
                    .filter(|&(s, e)| s <= new_end && e >= new_start),
            );
        }
        if overlapping.is_empty() {
            if fired(new_end, ctx.watermark) {
                *ctx.late_rows += 1;
                continue;
            }
            let slot = ctx.core.alloc(key_groups.get(i)?);
            ctx.windows
                .map
                .entry((new_end, new_start))
                .or_default()
                .groups
                .insert(key, slot);
            ctx.windows.in_memory += 1;
            let list = ctx.windows.sessions.get_or_insert_with(key, Vec::new);
            list.push((new_start, new_end));
            list.sort_unstable();
            ctx.slots[i] = slot;
            continue;
        }
        let merged_start = overlapping
            .iter()
            .map(|w| w.0)
            .fold(new_start, Timestamp::min);
        let merged_end = overlapping
            .iter()
            .map(|w| w.1)
            .fold(new_end, Timestamp::max);
        if overlapping.len() == 1 && overlapping[0] == (merged_start, merged_end) {
            // Inside one live session: add to it (its entry may have been spilled).
            let entry = ctx
                .windows
                .map
                .entry((merged_end, merged_start))
                .or_default();
            let slot = match entry.groups.get(key) {
                Some(&slot) => slot,
                None => {
                    let slot = ctx.core.alloc(key_groups.get(i)?);
                    entry.groups.insert(key, slot);
                    ctx.windows.in_memory += 1;
                    slot
                }
            };
            ctx.slots[i] = slot;
            continue;
        }
        // The row joins (and maybe bridges) sessions: move them into the merged window.
        let key_group = key_groups.get(i)?;
        let mut target: Option<u32> = None;
        for &(s, e) in &overlapping {
            let mut old_slot = None;
            let mut spilled_here = false;
            if let Some(entry) = ctx.windows.map.get_mut(&(e, s)) {
                old_slot = entry.groups.remove(key);
                spilled_here = entry.spilled.contains(&key_group);
                if entry.groups.is_empty() && entry.spilled.is_empty() {
                    ctx.windows.map.remove(&(e, s));
                }
            }
            if let Some(old) = old_slot {
                ctx.windows.in_memory -= 1;
                match target {
                    None => target = Some(old),
                    Some(t) => {
                        ctx.core.accs.merge(t, old);
                        redirect.insert(old, t);
                        retired.push(old);
                    }
                }
            }
            if spilled_here {
                let t = match target {
                    Some(t) => t,
                    None => {
                        let t = ctx.core.alloc(key_group);
                        target = Some(t);
                        t
                    }
                };
                restore_spilled_key(ctx.store, ctx.core, key_group, (e, s), key, t)?;
            }
        }
        let target = match target {
            Some(t) => t,
            None => ctx.core.alloc(key_group),
        };
        ctx.windows
            .map
            .entry((merged_end, merged_start))
            .or_default()
            .groups
            .insert(key, target);
        ctx.windows.in_memory += 1;
        if let Some(list) = ctx.windows.sessions.get_mut(key) {
            list.retain(|w| !overlapping.contains(w));
            list.push((merged_start, merged_end));
            list.sort_unstable();
        }
        ctx.slots[i] = target;
    }
    if !redirect.is_empty() {
        for slot in ctx.slots.iter_mut() {
            while let Some(&next) = redirect.get(slot) {
                *slot = next;
            }
        }
    }
    ctx.core.accs.update_batch(args, ctx.slots)?;
    for slot in retired {
        ctx.core.accs.release(slot);
    }
    Ok(())
}
