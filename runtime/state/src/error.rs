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
}
