//! Restoring a job from a checkpoint or savepoint: which old state each new subtask gets.
//!
//! State is matched to the new plan by operator uid. Keyed state moves by key group: a new
//! subtask that owns exactly the key groups of one old RocksDB subtask downloads its files and
//! opens them (the fast path, the common case of a restart at the same parallelism); any other
//! subtask reads the key groups it owns out of every old subtask that held some of them, in key
//! order, into SST files that RocksDB ingests whole (no memtable, no compaction). An old RocksDB
//! checkpoint that several new subtasks read is downloaded once.
//! Operator state is handed to every new subtask (union), source splits are dealt out.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use serde_json::Value;
use weir_checkpoint::metadata::{
    CheckpointMetadata, KeyGroupFile, KeyedStateHandle, OperatorState,
};
use weir_checkpoint::{CheckpointStorage, Restorable};
use weir_state::{
    KeyGroup, LoadSink, MemoryBackend, RocksDbBackend, StateBackend, WriteOp, canonical,
};

use super::upload::{ConfirmedFiles, confirm_files};
use super::{key_group_threads, on_threads};
use crate::dataflow::graph::JobGraph;
use crate::dataflow::key_group::{key_group_range, split_key_groups};
use crate::dataflow::state::BackendKind;
use crate::error::{Error, Result};

/// Files of one RocksDB checkpoint downloaded at once.
const DOWNLOAD_THREADS: usize = 4;

/// A checkpoint or savepoint, checked against the plan that restores it.
pub struct Restore {
    pub location: String,
    pub metadata: CheckpointMetadata,
    root: CheckpointStorage,
    by_uid: HashMap<String, usize>,
    /// The new plan's parallelism of each node, by uid.
    parallelism: HashMap<String, usize>,
    scratch: PathBuf,
    /// Old RocksDB checkpoints downloaded for a rescale, by [`download_key`]: where, and how
    /// many new subtasks have yet to read them.
    downloads: Mutex<HashMap<String, (PathBuf, usize)>>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Ok(downloads) = self.downloads.get_mut() {
            for (dir, _) in downloads.values() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
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
        for mismatch in mismatches(&metadata, graph) {
            match &mismatch {
                Mismatch::UnmatchedState { name, uid } if allow_non_restored_state => {
                    tracing::warn!(operator = %name, %uid, "state not restored: no such operator in this job");
                }
                _ => {
                    return Err(Error::Restore {
                        location,
                        message: mismatch.to_string(),
                    });
                }
            }
        }
        let parallelism: HashMap<String, usize> = graph
            .nodes
            .iter()
            .map(|n| (n.uid.clone(), n.parallelism))
            .collect();
        let mut by_uid = HashMap::new();
        for (i, op) in metadata.operators.iter().enumerate() {
            if parallelism.contains_key(&op.uid) {
                by_uid.insert(op.uid.clone(), i);
            } else if !holds_state(op) {
                tracing::debug!(operator = %op.name, "no state to restore");
            }
        }
        Ok(Restore {
            location,
            metadata,
            root,
            by_uid,
            parallelism,
            scratch,
            downloads: Mutex::new(HashMap::new()),
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
    /// when the checkpoint has no keyed state for the operator. Logs how long it took.
    pub fn open_backend(
        &self,
        uid: &str,
        subtask: usize,
        kind: BackendKind,
        dir: &Path,
    ) -> Result<Option<Box<dyn StateBackend>>> {
        let started = std::time::Instant::now();
        let backend = self.open_backend_inner(uid, subtask, kind, dir)?;
        if backend.is_some() {
            tracing::info!(
                operator = uid,
                subtask,
                duration_ms = started.elapsed().as_millis() as u64,
                "restored keyed state"
            );
        }
        Ok(backend)
    }

    fn open_backend_inner(
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
        let mut handles: Vec<&KeyedStateHandle> = op
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
        handles.sort_by_key(|h| first_key_group(h));
        let tag = format!("{uid}-{subtask}");
        let mut olds = Vec::with_capacity(handles.len());
        let mut opened = Ok(());
        for handle in handles {
            match self.open_old(uid, parallelism, handle, &tag) {
                Ok(old) => olds.push(old),
                Err(e) => {
                    opened = Err(e);
                    break;
                }
            }
        }
        let loaded = opened.and_then(|()| match kind {
            BackendKind::RocksDb => self.load_rocksdb(&olds, &range, &tag, dir),
            BackendKind::Memory => load_memory(self, &olds, &range),
        });
        for old in olds {
            if let OldState::RocksDb { db, handle } = old {
                drop(db);
                self.release_download(handle);
            }
        }
        loaded.map(Some)
    }

    /// Where an old subtask's keyed state is read from: its canonical files, or its RocksDB
    /// checkpoint downloaded and opened read-only.
    fn open_old<'a>(
        &self,
        uid: &str,
        parallelism: usize,
        handle: &'a KeyedStateHandle,
        tag: &str,
    ) -> Result<OldState<'a>> {
        match handle {
            KeyedStateHandle::Canonical { key_groups } => Ok(OldState::Canonical(key_groups)),
            KeyedStateHandle::RocksDb { .. } => {
                let dir = self.downloaded(uid, parallelism, handle, tag)?;
                match RocksDbBackend::open_read_only(&dir) {
                    Ok(db) => Ok(OldState::RocksDb { db, handle }),
                    Err(e) => {
                        self.release_download(handle);
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// A new RocksDB database in `dir` holding the entries of `range` in `olds`. The range is
    /// split over [`key_group_threads`] threads, each writing the SST files of its part; one
    /// ingestion takes them all.
    fn load_rocksdb(
        &self,
        olds: &[OldState<'_>],
        range: &RangeInclusive<KeyGroup>,
        tag: &str,
        dir: &Path,
    ) -> Result<Box<dyn StateBackend>> {
        let _ = std::fs::remove_dir_all(dir);
        let mut backend = RocksDbBackend::open(dir)?;
        let scratch = self.scratch.join(format!("load-{tag}"));
        let parts: Vec<_> = split_key_groups(range, key_group_threads())
            .into_iter()
            .enumerate()
            .collect();
        let written = on_threads(parts, |(i, part)| {
            let mut failed = None;
            let written =
                RocksDbBackend::write_sorted(&scratch.join(format!("part-{i}")), &mut |sink| {
                    for old in olds {
                        self.read_old(old, &part, sink).map_err(|e| {
                            let message = e.to_string();
                            failed = Some(e);
                            weir_state::Error::visitor(std::io::Error::other(message))
                        })?;
                    }
                    Ok(())
                });
            match failed {
                Some(e) => Err(e),
                None => Ok(written?),
            }
        });
        let ingested = written.and_then(|parts| Ok(backend.ingest(parts.into_iter().collect())?));
        let _ = std::fs::remove_dir_all(&scratch);
        ingested?;
        Ok(Box::new(backend))
    }

    /// Calls `f` with the entries of `range` in one old subtask's state, in (key group, state,
    /// key) order.
    fn read_old(
        &self,
        old: &OldState<'_>,
        range: &RangeInclusive<KeyGroup>,
        f: &mut LoadSink<'_>,
    ) -> Result<()> {
        match old {
            OldState::Canonical(key_groups) => {
                let mut files: Vec<_> = key_groups
                    .iter()
                    .filter(|f| range.contains(&f.key_group))
                    .collect();
                files.sort_by_key(|f| f.key_group);
                // Key groups packed into one file come one after the other: read it once.
                let mut current: Option<(&str, Bytes)> = None;
                for file in files {
                    let whole = match &current {
                        Some((name, bytes)) if *name == file.file => bytes.clone(),
                        _ => {
                            let bytes = self.root.get(&file.file)?;
                            current = Some((&file.file, bytes.clone()));
                            bytes
                        }
                    };
                    let (start, end) = (file.offset as usize, (file.offset + file.size) as usize);
                    let bytes = whole.get(start..end).ok_or_else(|| Error::Restore {
                        location: format!("{}/{}", self.root.uri(), file.file),
                        message: format!(
                            "key group {} is at bytes {start}..{end} of a {}-byte file",
                            file.key_group,
                            whole.len()
                        ),
                    })?;
                    let key_group = file.key_group;
                    let mut sink_failed = None;
                    let decoded = canonical::decode_each(bytes, &mut |state, key, value| {
                        f(key_group, state, key, value).map_err(|e| {
                            let message = e.to_string();
                            sink_failed = Some(e);
                            weir_state::Error::visitor(std::io::Error::other(message))
                        })
                    });
                    if let Some(e) = sink_failed {
                        return Err(e.into());
                    }
                    let found = decoded.map_err(|e| Error::Restore {
                        location: format!("{}/{}", self.root.uri(), file.file),
                        message: e.to_string(),
                    })?;
                    if found != key_group {
                        return Err(Error::Restore {
                            location: format!("{}/{}", self.root.uri(), file.file),
                            message: format!(
                                "the file holds key group {found}, the metadata says {key_group}"
                            ),
                        });
                    }
                }
            }
            OldState::RocksDb { db, .. } => {
                db.for_each_entry(range.clone(), &mut |key_group, e| {
                    f(key_group, e.state, &e.key, &e.value)
                })?;
            }
        }
        Ok(())
    }

    /// The local copy of an old subtask's RocksDB checkpoint, downloaded by the first new
    /// subtask that needs it and kept until every new subtask overlapping it has read its key
    /// groups (a rescale reads one old checkpoint from several new subtasks).
    fn downloaded(
        &self,
        uid: &str,
        parallelism: usize,
        handle: &KeyedStateHandle,
        tag: &str,
    ) -> Result<PathBuf> {
        let KeyedStateHandle::RocksDb { files, .. } = handle else {
            return Err(Error::execution("restore", "not a rocksdb state handle"));
        };
        let key = download_key(handle);
        let mut downloads = self
            .downloads
            .lock()
            .map_err(|_| Error::execution("restore", "download table poisoned"))?;
        if let Some((dir, _)) = downloads.get(&key) {
            return Ok(dir.clone());
        }
        let max_parallelism = self.metadata.max_parallelism as usize;
        let readers = (0..parallelism)
            .filter(|&s| overlaps(handle, &key_group_range(s, max_parallelism, parallelism)))
            .count();
        // One folder per old subtask: a new subtask holds all of its old ones open at once.
        let dir = self
            .scratch
            .join(format!("restore-{tag}-{}", first_key_group(handle)));
        let _ = std::fs::remove_dir_all(&dir);
        tracing::debug!(operator = uid, files = files.len(), dir = %dir.display(), "downloading");
        self.download(files.iter().map(|f| (&f.file, &f.name)), &dir)?;
        downloads.insert(key, (dir.clone(), readers));
        Ok(dir)
    }

    /// One reader of a downloaded checkpoint is done; the last one deletes it.
    fn release_download(&self, handle: &KeyedStateHandle) {
        let key = download_key(handle);
        let Ok(mut downloads) = self.downloads.lock() else {
            return;
        };
        if let Some((dir, readers)) = downloads.get_mut(&key) {
            *readers = readers.saturating_sub(1);
            if *readers == 0 {
                let _ = std::fs::remove_dir_all(&*dir);
                downloads.remove(&key);
            }
        }
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
        // Several downloads at once: one request at a time leaves an object store's
        // bandwidth unused.
        let mut shares: Vec<Vec<(&String, &String)>> = vec![Vec::new(); DOWNLOAD_THREADS];
        for (i, file) in files.enumerate() {
            shares[i % DOWNLOAD_THREADS].push(file);
        }
        shares.retain(|share| !share.is_empty());
        on_threads(shares, |share| {
            for (file, name) in share {
                self.root.download_file(file, &dir.join(name))?;
            }
            Ok(())
        })?;
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

/// What keeps a checkpoint from being restored by a plan: the checks [`Restore::new`] makes,
/// also asked by the control API's compatibility check before an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Another `pipeline.max-parallelism`: key groups cannot be mapped.
    MaxParallelism { old: u32, new: usize },
    /// An operator's state matches no operator of the plan (a restore refuses it unless
    /// allow-non-restored-state).
    UnmatchedState { name: String, uid: String },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::MaxParallelism { old, new } => write!(
                f,
                "it was taken with max parallelism {old}, this job has {new}; key groups cannot \
                 be mapped (set pipeline.max-parallelism = {old})"
            ),
            Mismatch::UnmatchedState { name, uid } => write!(
                f,
                "the state of operator {name} (uid {uid}) matches no operator of this job; the \
                 query changed what it computes. Run with --allow-non-restored-state to drop \
                 that state"
            ),
        }
    }
}

/// Every mismatch between `metadata` and `graph`, max parallelism first, then each operator
/// whose state no node of `graph` takes (operators without state never mismatch).
pub fn mismatches(metadata: &CheckpointMetadata, graph: &JobGraph) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if metadata.max_parallelism as usize != graph.max_parallelism {
        out.push(Mismatch::MaxParallelism {
            old: metadata.max_parallelism,
            new: graph.max_parallelism,
        });
    }
    for op in &metadata.operators {
        if holds_state(op) && !graph.nodes.iter().any(|n| n.uid == op.uid) {
            out.push(Mismatch::UnmatchedState {
                name: op.name.clone(),
                uid: op.uid.clone(),
            });
        }
    }
    out
}

/// Whether a checkpointed operator has state to restore. A sink's state is only its pending
/// commits, published before the job starts.
fn holds_state(op: &OperatorState) -> bool {
    op.subtasks
        .iter()
        .any(|s| s.keyed.is_some() || !s.operator_state.is_empty() || !s.splits.is_empty())
}

/// One old subtask's keyed state, ready to be read by key-group range.
enum OldState<'a> {
    Canonical(&'a [KeyGroupFile]),
    /// Downloaded and opened read-only; released (and maybe deleted) once read.
    RocksDb {
        db: RocksDbBackend,
        handle: &'a KeyedStateHandle,
    },
}

/// An in-memory backend holding the entries of `range` in `olds`.
fn load_memory(
    restore: &Restore,
    olds: &[OldState<'_>],
    range: &RangeInclusive<KeyGroup>,
) -> Result<Box<dyn StateBackend>> {
    let mut backend = MemoryBackend::default();
    for old in olds {
        let mut ops = Vec::new();
        restore.read_old(old, range, &mut |key_group, state, key, value| {
            ops.push(WriteOp::Put {
                state,
                key_group,
                key: key.to_vec(),
                value: value.to_vec(),
            });
            Ok(())
        })?;
        backend.write_batch(ops)?;
    }
    Ok(Box::new(backend))
}

/// The lowest key group a handle holds (handles of one operator never share key groups).
fn first_key_group(handle: &KeyedStateHandle) -> KeyGroup {
    match handle {
        KeyedStateHandle::Canonical { key_groups } => key_groups
            .iter()
            .map(|f| f.key_group)
            .min()
            .unwrap_or(KeyGroup::MAX),
        KeyedStateHandle::RocksDb {
            key_group_start, ..
        } => *key_group_start,
    }
}

/// Names a RocksDB handle in the download table: its first file is unique to it.
fn download_key(handle: &KeyedStateHandle) -> String {
    match handle {
        KeyedStateHandle::RocksDb { files, .. } => {
            files.first().map(|f| f.file.clone()).unwrap_or_default()
        }
        KeyedStateHandle::Canonical { .. } => String::new(),
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
