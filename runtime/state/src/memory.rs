//! [`MemoryBackend`]: keyed state in a `BTreeMap`, for tests and small jobs.
//!
//! It stores the same encoded keys as [`RocksDbBackend`](crate::RocksDbBackend) in the same
//! order, so it answers every [`StateBackend`] call exactly as RocksDB would, without touching
//! disk. Nothing survives the process; [`StateBackend::flush`] does nothing, and a snapshot is a
//! copy of every entry ([`LocalSnapshot::Entries`]).

use std::collections::BTreeMap;
use std::ops::{Bound, RangeInclusive};
use std::path::Path;

use crate::key::{key_group_bounds, prefix_successor, user_key_bounds};
use crate::{
    Entry, KeyGroup, LocalSnapshot, Result, StateBackend, StateId, WriteOp, decode_key, encode_key,
};

/// Keyed state held in memory, ordered by encoded key.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries whose encoded key starts with `prefix`, in key order.
    fn range_with_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> + 'a {
        let upper = match prefix_successor(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        self.entries
            .range::<[u8], _>((Bound::Included(prefix), upper.as_ref().map(Vec::as_slice)))
    }
}

impl StateBackend for MemoryBackend {
    fn get(&self, state: StateId, key_group: KeyGroup, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .entries
            .get(&encode_key(key_group, state, key))
            .cloned())
    }

    fn put(&mut self, state: StateId, key_group: KeyGroup, key: &[u8], value: &[u8]) -> Result<()> {
        self.entries
            .insert(encode_key(key_group, state, key), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, state: StateId, key_group: KeyGroup, key: &[u8]) -> Result<()> {
        self.entries.remove(&encode_key(key_group, state, key));
        Ok(())
    }

    fn write_batch(&mut self, ops: Vec<WriteOp>) -> Result<()> {
        for op in ops {
            match op {
                WriteOp::Put {
                    state,
                    key_group,
                    key,
                    value,
                } => {
                    self.entries
                        .insert(encode_key(key_group, state, &key), value);
                }
                WriteOp::Delete {
                    state,
                    key_group,
                    key,
                } => {
                    self.entries.remove(&encode_key(key_group, state, &key));
                }
            }
        }
        Ok(())
    }

    fn delete_range(
        &mut self,
        state: StateId,
        key_group: KeyGroup,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<()> {
        let (lower, upper) = user_key_bounds(key_group, state, start, end);
        if upper.as_ref().is_some_and(|upper| *upper <= lower) {
            return Ok(());
        }
        let upper = match &upper {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        let doomed: Vec<Vec<u8>> = self
            .entries
            .range::<[u8], _>((Bound::Included(lower.as_slice()), upper))
            .map(|(key, _)| key.clone())
            .collect();
        for key in doomed {
            self.entries.remove(&key);
        }
        Ok(())
    }

    fn scan_prefix(
        &self,
        state: StateId,
        key_group: KeyGroup,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let full_prefix = encode_key(key_group, state, prefix);
        self.range_with_prefix(&full_prefix)
            .map(|(key, value)| {
                let (_, _, user_key) = decode_key(key)?;
                Ok((user_key.to_vec(), value.clone()))
            })
            .collect()
    }

    fn scan_state(&self, state: StateId) -> Result<Vec<(KeyGroup, Vec<u8>, Vec<u8>)>> {
        // A full pass: fixing the state id in keys sorted by (key group, state, user key) leaves
        // them sorted by (key group, user key), the order the trait promises.
        let mut out = Vec::new();
        for (key, value) in &self.entries {
            let (key_group, entry_state, user_key) = decode_key(key)?;
            if entry_state == state {
                out.push((key_group, user_key.to_vec(), value.clone()));
            }
        }
        Ok(out)
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Copies every entry: the copy is the point-in-time view, so `scratch` is not used.
    fn snapshot(&mut self, _scratch: &Path) -> Result<LocalSnapshot> {
        let mut groups: BTreeMap<KeyGroup, Vec<Entry>> = BTreeMap::new();
        for (key, value) in &self.entries {
            let (key_group, state, user_key) = decode_key(key)?;
            groups.entry(key_group).or_default().push(Entry {
                state,
                key: user_key.to_vec(),
                value: value.clone(),
            });
        }
        Ok(LocalSnapshot::Entries(groups))
    }

    fn for_each_entry(
        &self,
        key_groups: RangeInclusive<KeyGroup>,
        f: &mut dyn FnMut(KeyGroup, &Entry) -> Result<()>,
    ) -> Result<()> {
        let Some((lower, upper)) = key_group_bounds(&key_groups) else {
            return Ok(());
        };
        let upper = match &upper {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        for (key, value) in self
            .entries
            .range::<[u8], _>((Bound::Included(lower.as_slice()), upper))
        {
            let (key_group, state, user_key) = decode_key(key)?;
            let entry = Entry {
                state,
                key: user_key.to_vec(),
                value: value.clone(),
            };
            f(key_group, &entry)?;
        }
        Ok(())
    }
}
