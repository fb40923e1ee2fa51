//! Keyed state for Weir's stream operators.
//!
//! A [`StateBackend`] stores byte keys and values, each filed under a key group (so state can be
//! redistributed by key-group range when the job is rescaled) and a [`StateId`] (so several
//! operators chained in one task share one backend without their keys colliding). Two backends
//! implement it: [`RocksDbBackend`], the real one, one RocksDB instance per task under the job's
//! state directory, and [`MemoryBackend`], for tests and small jobs.
//!
//! Operators are expected to keep hot state in memory and write through to the backend at
//! watermark or checkpoint boundaries (or when memory is short), never once per row.
//!
//! At a checkpoint a backend takes a [`LocalSnapshot`] (a RocksDB native checkpoint, or a copy
//! of the in-memory entries) that the engine uploads while processing goes on; savepoints and
//! rescaled restores move state as [`canonical`] key-group files, read with
//! [`StateBackend::for_each_entry`]. See `docs/checkpoints.md` for the whole design.

pub mod canonical;
mod error;
mod key;
mod memory;
mod rocks;
mod snapshot;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod snapshot_conformance;

use std::ops::RangeInclusive;
use std::path::Path;

pub use error::Error;
pub use key::{KeyGroup, StateId, decode_key, encode_key, prefix_successor};
pub use memory::MemoryBackend;
pub use rocks::{LoadSink, RocksDbBackend, SortedFiles};
pub use snapshot::{Entry, LocalSnapshot};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One write in a [`StateBackend::write_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put {
        state: StateId,
        key_group: KeyGroup,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        state: StateId,
        key_group: KeyGroup,
        key: Vec<u8>,
    },
}

/// Byte-keyed state, namespaced by state id and key group.
pub trait StateBackend: Send {
    fn get(&self, state: StateId, key_group: KeyGroup, key: &[u8]) -> Result<Option<Vec<u8>>>;

    fn put(&mut self, state: StateId, key_group: KeyGroup, key: &[u8], value: &[u8]) -> Result<()>;

    fn delete(&mut self, state: StateId, key_group: KeyGroup, key: &[u8]) -> Result<()>;

    /// Apply many writes at once (atomically where the backend can).
    fn write_batch(&mut self, ops: Vec<WriteOp>) -> Result<()>;

    /// Delete every entry of `state` in `key_group` whose user key is in `[start, end)`;
    /// `end = None` runs to the last key of `state` in `key_group`. One range tombstone in
    /// RocksDB, however many entries it covers; an empty range deletes nothing.
    fn delete_range(
        &mut self,
        state: StateId,
        key_group: KeyGroup,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<()>;

    /// All entries of `state` in `key_group` whose key starts with `prefix`, in key order.
    fn scan_prefix(
        &self,
        state: StateId,
        key_group: KeyGroup,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// All entries of `state` across every key group, in (key group, key) order.
    #[expect(
        clippy::type_complexity,
        reason = "the tuple is the documented (key group, key, value) entry of the fixed API"
    )]
    fn scan_state(&self, state: StateId) -> Result<Vec<(KeyGroup, Vec<u8>, Vec<u8>)>>;

    /// Make everything written so far durable in the backend's own storage (a RocksDB flush).
    fn flush(&mut self) -> Result<()>;

    /// Take a point-in-time local snapshot: later writes never show in it.
    ///
    /// `scratch` is an empty-or-missing directory the backend may create and fill (its parent
    /// is created if missing); a non-empty one is refused with [`Error::ScratchNotEmpty`].
    /// RocksDB flushes and makes a native checkpoint there; the in-memory backend ignores it.
    fn snapshot(&mut self, scratch: &Path) -> Result<LocalSnapshot>;

    /// Calls `f` with every entry whose key group is in `key_groups`, in (key group, state, key)
    /// order. An error from `f` stops the iteration and is returned as is; wrap foreign errors
    /// with [`Error::visitor`].
    ///
    /// The `&Entry` is only valid during the call (backends reuse its buffers): clone it to keep
    /// it.
    fn for_each_entry(
        &self,
        key_groups: RangeInclusive<KeyGroup>,
        f: &mut dyn FnMut(KeyGroup, &Entry) -> Result<()>,
    ) -> Result<()>;
}
