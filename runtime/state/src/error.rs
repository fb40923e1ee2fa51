//! The one error type of `weir-state`.
//!
//! Each variant names the step that failed. RocksDB failures carry the database directory so the
//! message points at the task's state on disk; the RocksDB error itself stays in `source`, so the
//! messages here do not repeat it.

use std::path::PathBuf;

/// Why a state backend operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory could not be created before opening RocksDB in it.
    #[error("failed to create state directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    /// RocksDB refused to open (or create) its database in the state directory.
    #[error("failed to open rocksdb state at {}", path.display())]
    Open {
        path: PathBuf,
        source: rocksdb::Error,
    },

    /// A point read or an iterator over the database failed.
    #[error("failed to read rocksdb state at {}", path.display())]
    Read {
        path: PathBuf,
        source: rocksdb::Error,
    },

    /// A put, delete or write batch failed.
    #[error("failed to write rocksdb state at {}", path.display())]
    Write {
        path: PathBuf,
        source: rocksdb::Error,
    },

    /// Flushing the memtables to SST files failed.
    #[error("failed to flush rocksdb state at {}", path.display())]
    Flush {
        path: PathBuf,
        source: rocksdb::Error,
    },

    /// A stored key is too short to hold the key-group and state-id prefix.
    #[error("corrupt state key {key:02x?}: shorter than the 4-byte key-group and state-id prefix")]
    CorruptKey { key: Vec<u8> },

    /// The scratch directory of a snapshot could not be prepared or read back.
    #[error("failed to prepare snapshot directory {}", path.display())]
    Scratch {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The scratch directory of a snapshot already holds files; a snapshot never overwrites them.
    #[error("snapshot directory {} is not empty", path.display())]
    ScratchNotEmpty { path: PathBuf },

    /// A folder given to [`RocksDbBackend::open_read_only`] holds no RocksDB checkpoint.
    ///
    /// [`RocksDbBackend::open_read_only`]: crate::RocksDbBackend::open_read_only
    #[error("no rocksdb checkpoint at {}: no CURRENT file", path.display())]
    NoCheckpoint { path: PathBuf },

    /// RocksDB could not create its native checkpoint of the database.
    #[error("failed to create a rocksdb checkpoint of {} in {}", path.display(), scratch.display())]
    Snapshot {
        path: PathBuf,
        scratch: PathBuf,
        source: rocksdb::Error,
    },

    /// A bulk load's entries were not in strictly increasing key order.
    #[error("bulk load into {} got keys out of order: {key:02x?} after a larger or equal key", path.display())]
    Unsorted { path: PathBuf, key: Vec<u8> },

    /// A canonical key-group file is truncated, damaged or of an unknown version.
    #[error("corrupt canonical key-group file: {reason}")]
    Corrupt { reason: String },

    /// The caller's function passed to [`StateBackend::for_each_entry`] failed; iteration stopped.
    ///
    /// [`StateBackend::for_each_entry`]: crate::StateBackend::for_each_entry
    #[error("entry visitor stopped the iteration")]
    Visitor {
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Wraps any error of a [`StateBackend::for_each_entry`] visitor, so the visitor can use `?`
    /// on its own errors (`.map_err(Error::visitor)`).
    ///
    /// [`StateBackend::for_each_entry`]: crate::StateBackend::for_each_entry
    pub fn visitor(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Visitor {
            source: source.into(),
        }
    }
}
