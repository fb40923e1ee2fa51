//! Which state backend a stateful operator gets, and where its files live.
//!
//! Only operators that keep state open a backend, so a stateless job never starts RocksDB.
//! `state.backend.type` chooses: `rocksdb` (the default) or `hashmap` (in memory).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_state::{MemoryBackend, RocksDbBackend, StateBackend};

use crate::checkpoint::restore::Restore;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    RocksDb,
    Memory,
}

impl BackendKind {
    /// Parse Flink's `state.backend.type` value.
    pub fn parse(value: &str) -> Result<BackendKind> {
        match value.to_ascii_lowercase().as_str() {
            "rocksdb" => Ok(BackendKind::RocksDb),
            "hashmap" | "memory" => Ok(BackendKind::Memory),
            other => Err(Error::Config {
                key: "state.backend.type".into(),
                message: format!("unknown state backend '{other}'; valid values: rocksdb, hashmap"),
            }),
        }
    }
}

#[derive(Clone)]
pub struct StateProvider {
    kind: BackendKind,
    dir: PathBuf,
    /// The checkpoint the job restores: backends open with their key groups' state in them.
    restore: Option<Arc<Restore>>,
}

impl StateProvider {
    pub fn new(kind: BackendKind, dir: PathBuf) -> Self {
        StateProvider {
            kind,
            dir,
            restore: None,
        }
    }

    pub fn with_restore(mut self, restore: Option<Arc<Restore>>) -> Self {
        self.restore = restore;
        self
    }

    /// Where backends put local snapshots before they are uploaded.
    pub fn scratch_dir(&self) -> PathBuf {
        self.dir.join("snapshots")
    }

    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Open the backend of one subtask of one operator (one RocksDB instance per task).
    pub fn open(&self, operator_id: &str, subtask: usize) -> Result<Box<dyn StateBackend>> {
        let path = self.dir.join(format!("{operator_id}-{subtask}"));
        if let Some(restore) = &self.restore
            && let Some(backend) = restore.open_backend(operator_id, subtask, self.kind, &path)?
        {
            return Ok(backend);
        }
        match self.kind {
            BackendKind::Memory => Ok(Box::new(MemoryBackend::default())),
            BackendKind::RocksDb => Ok(Box::new(RocksDbBackend::open(&path)?)),
        }
    }
}
