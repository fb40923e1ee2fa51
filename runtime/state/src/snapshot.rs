//! What a backend hands over at a checkpoint: [`LocalSnapshot`], and the [`Entry`] it is made of.
//!
//! A snapshot is taken on the task thread at the barrier and must not change afterwards, however
//! the live state moves on: the upload thread reads it while the task keeps processing. RocksDB
//! gives that for free with a native checkpoint (hard links to immutable SST files); the in-memory
//! backend copies its entries.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::{KeyGroup, StateId};

/// One stored entry of one piece of state, without its key group (which the caller knows).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    pub state: StateId,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A point-in-time copy of a backend's state, ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalSnapshot {
    /// A RocksDB native checkpoint folder (hard links of the live SSTs plus
    /// MANIFEST/CURRENT/OPTIONS), made after a flush.
    ///
    /// `files` are names relative to `dir`, sorted. The caller uploads them and then removes
    /// `dir`. SST file names never repeat within one database, so a name seen in an earlier
    /// snapshot of the same backend is the same immutable file: upload it once.
    RocksDb { dir: PathBuf, files: Vec<String> },
    /// A copy of every entry, grouped by key group in key order (the in-memory backend).
    Entries(BTreeMap<KeyGroup, Vec<Entry>>),
}

impl LocalSnapshot {
    /// The SST files of a RocksDB snapshot (the files that later snapshots may share); empty for
    /// an in-memory snapshot.
    pub fn sst_files(&self) -> impl Iterator<Item = &str> {
        let files = match self {
            Self::RocksDb { files, .. } => files.as_slice(),
            Self::Entries(_) => &[],
        };
        files
            .iter()
            .map(String::as_str)
            .filter(|name| name.ends_with(".sst"))
    }
}
