//! Restoring a job from a checkpoint or savepoint: which old state each new subtask gets.
//!
//! State is matched to the new plan by operator uid. Keyed state moves by key group: a new
//! subtask that owns exactly the key groups of one old RocksDB subtask downloads its files and
//! opens them (the fast path, the common case of a restart at the same parallelism); any other
//! subtask reads the key groups it owns out of every old subtask that held some of them.
//! Operator state is handed to every new subtask (union), source splits are dealt out.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde_json::Value;
use weir_checkpoint::metadata::{CheckpointMetadata, KeyedStateHandle, OperatorState};
use weir_checkpoint::{CheckpointStorage, Restorable};
use weir_state::{KeyGroup, MemoryBackend, RocksDbBackend, StateBackend, WriteOp, canonical};

use super::upload::{ConfirmedFiles, confirm_files};
use crate::dataflow::graph::JobGraph;
use crate::dataflow::key_group::key_group_range;
use crate::dataflow::state::BackendKind;
use crate::error::{Error, Result};

/// Writes per batch when copying entries into a new backend: bounds memory, keeps batches big.
const INGEST_BATCH: usize = 16 * 1024;

/// A checkpoint or savepoint, checked against the plan that restores it.
pub struct Restore {
    pub location: String,
    pub metadata: CheckpointMetadata,
    root: CheckpointStorage,
    by_uid: HashMap<String, usize>,
    /// The new plan's parallelism of each node, by uid.
    parallelism: HashMap<String, usize>,
    scratch: PathBuf,
}

impl Restore {
    /// Check `restorable` against `graph`: same max parallelism, and every piece of state
    /// finds its operator unless `allow_non_restored_state`.
    pub fn new(
        restorable: Restorable,
        graph: &JobGraph,
        allow_non_restored_state: bool,
        scratch: PathBuf,
    ) -> Result<Restore> {
        let Restorable {
            metadata,
            root,
            location,
        } = restorable;
        if metadata.max_parallelism as usize != graph.max_parallelism {
            return Err(Error::Restore {
                location,
                message: format!(
                    "it was taken with max parallelism {}, this job has {}; \
                     key groups cannot be mapped (set pipeline.max-parallelism = {})",
                    metadata.max_parallelism, graph.max_parallelism, metadata.max_parallelism
                ),
            });
        }
        let parallelism: HashMap<String, usize> = graph
            .nodes
            .iter()
            .map(|n| (n.uid.clone(), n.parallelism))
            .collect();
        let mut by_uid = HashMap::new();
        for (i, op) in metadata.operators.iter().enumerate() {
            // A sink's state is only its pending commits, published before the job starts.
            let holds_state = op
                .subtasks
                .iter()
                .any(|s| s.keyed.is_some() || !s.operator_state.is_empty() || !s.splits.is_empty());
            if parallelism.contains_key(&op.uid) {
                by_uid.insert(op.uid.clone(), i);
            } else if !holds_state {
                tracing::debug!(operator = %op.name, "no state to restore");
            } else if allow_non_restored_state {
                tracing::warn!(operator = %op.name, uid = %op.uid, "state not restored: no such operator in this job");
            } else {
                return Err(Error::Restore {
                    location,
                    message: format!(
                        "the state of operator {} (uid {}) matches no operator of this job; \
                         the query changed what it computes. Run with --allow-non-restored-state \
                         to drop that state",
                        op.name, op.uid
                    ),
                });
            }
        }
        Ok(Restore {
            location,
            metadata,
            root,
            by_uid,
            parallelism,
            scratch,
        })
    }

    fn operator(&self, uid: &str) -> Option<&OperatorState> {
        self.by_uid.get(uid).map(|i| &self.metadata.operators[*i])
    }

    /// Whether the checkpoint holds state for this operator.
    pub fn has(&self, uid: &str) -> bool {
        self.by_uid.contains_key(uid)
    }

    /// The operator state of every old subtask (union redistribution).
    pub fn operator_state(&self, uid: &str) -> Vec<Value> {
        self.operator(uid)
            .map(|op| {
                op.subtasks
                    .iter()
                    .flat_map(|s| s.operator_state.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The splits source subtask `subtask` resumes from; `None` for a source the checkpoint
    /// does not know (it starts from the beginning).
    pub fn splits(&self, uid: &str, subtask: usize, parallelism: usize) -> Option<Vec<Value>> {
        let op = self.operator(uid)?;
        if op.parallelism as usize == parallelism {
            let own = op.subtasks.iter().find(|s| s.subtask as usize == subtask);
            return Some(own.map(|s| s.splits.clone()).unwrap_or_default());
        }
        let all: Vec<Value> = op
            .subtasks
            .iter()
            .flat_map(|s| s.splits.iter().cloned())
            .collect();
        Some(all.into_iter().skip(subtask).step_by(parallelism).collect())
    }

    /// The backend of `uid`'s subtask `subtask`, filled with its key groups' state; `None`
    /// when the checkpoint has no keyed state for the operator.
    pub fn open_backend(
        &self,
        uid: &str,
        subtask: usize,
        kind: BackendKind,
        dir: &Path,
    ) -> Result<Option<Box<dyn StateBackend>>> {
        let Some(op) = self.operator(uid) else {
            return Ok(None);
        };
        if op.subtasks.iter().all(|s| s.keyed.is_none()) {
            return Ok(None);
        }
        let parallelism = self
            .parallelism
            .get(uid)
            .copied()
            .unwrap_or(op.parallelism as usize);
        let range = key_group_range(subtask, self.metadata.max_parallelism as usize, parallelism);
        let handles: Vec<&KeyedStateHandle> = op
            .subtasks
            .iter()
            .filter_map(|s| s.keyed.as_ref())
            .filter(|h| overlaps(h, &range))
            .collect();
        if kind == BackendKind::RocksDb
            && let [
                KeyedStateHandle::RocksDb {
                    key_group_start,
                    key_group_end,
                    files,
                },
            ] = handles.as_slice()
            && *key_group_start == *range.start()
            && *key_group_end == *range.end()
        {
            let _ = std::fs::remove_dir_all(dir);
            self.download(files.iter().map(|f| (&f.file, &f.name)), dir)?;
            return Ok(Some(Box::new(RocksDbBackend::open(dir)?)));
        }
        let mut backend: Box<dyn StateBackend> = match kind {
            BackendKind::RocksDb => {
                let _ = std::fs::remove_dir_all(dir);
                Box::new(RocksDbBackend::open(dir)?)
            }
            BackendKind::Memory => Box::new(MemoryBackend::default()),
        };
        for (i, handle) in handles.into_iter().enumerate() {
            self.ingest(
                handle,
                &range,
                backend.as_mut(),
                &format!("{uid}-{subtask}-{i}"),
            )?;
        }
        Ok(Some(backend))
    }

    /// Copy the entries of `range` out of one old subtask's state into `backend`.
    fn ingest(
        &self,
        handle: &KeyedStateHandle,
        range: &RangeInclusive<KeyGroup>,
        backend: &mut dyn StateBackend,
        tag: &str,
    ) -> Result<()> {
        match handle {
            KeyedStateHandle::Canonical { key_groups } => {
                for file in key_groups.iter().filter(|f| range.contains(&f.key_group)) {
                    let bytes = self.root.get(&file.file)?;
                    let (key_group, entries) =
                        canonical::decode(&bytes).map_err(|e| Error::Restore {
                            location: format!("{}/{}", self.root.uri(), file.file),
                            message: e.to_string(),
                        })?;
                    let ops = entries
                        .into_iter()
                        .map(|e| WriteOp::Put {
                            state: e.state,
                            key_group,
                            key: e.key,
                            value: e.value,
                        })
                        .collect::<Vec<_>>();
                    for chunk in ops.chunks(INGEST_BATCH) {
                        backend.write_batch(chunk.to_vec())?;
                    }
                }
            }
            KeyedStateHandle::RocksDb { files, .. } => {
                let dir = self.scratch.join(format!("restore-{tag}"));
                let _ = std::fs::remove_dir_all(&dir);
                self.download(files.iter().map(|f| (&f.file, &f.name)), &dir)?;
                let old = RocksDbBackend::open_read_only(&dir)?;
                let mut ops = Vec::with_capacity(INGEST_BATCH);
                old.for_each_entry(range.clone(), &mut |key_group, entry| {
                    ops.push(WriteOp::Put {
                        state: entry.state,
                        key_group,
                        key: entry.key.clone(),
                        value: entry.value.clone(),
                    });
                    if ops.len() >= INGEST_BATCH {
                        backend.write_batch(std::mem::take(&mut ops))?;
                    }
                    Ok(())
                })?;
                if !ops.is_empty() {
                    backend.write_batch(ops)?;
                }
                drop(old);
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        Ok(())
    }

    fn download<'a>(
        &self,
        files: impl Iterator<Item = (&'a String, &'a String)>,
        dir: &Path,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        for (file, name) in files {
            self.root.download_file(file, &dir.join(name))?;
        }
        Ok(())
    }

    /// When the checkpoint lives in this job's own folder, its SST files need no second upload.
    pub fn seed_confirmed(&self, job_root: &CheckpointStorage, confirmed: &ConfirmedFiles) {
        if self.root.uri() != job_root.uri() {
            return;
        }
        // Only subtasks that keep their key-group range reopen the same files.
        confirm_files(confirmed, &self.metadata, |op| {
            self.parallelism.get(&op.uid) == Some(&(op.parallelism as usize))
        });
    }
}

fn overlaps(handle: &KeyedStateHandle, range: &RangeInclusive<KeyGroup>) -> bool {
    match handle {
        KeyedStateHandle::Canonical { key_groups } => {
            key_groups.iter().any(|f| range.contains(&f.key_group))
        }
        KeyedStateHandle::RocksDb {
            key_group_start,
            key_group_end,
            ..
        } => key_group_start <= range.end() && range.start() <= key_group_end,
    }
}
