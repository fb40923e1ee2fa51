//! Upload threads: turn the local snapshots tasks hand over at a barrier into uploaded,
//! verified state handles, so task threads go back to processing while files upload
//! (Flink's asynchronous snapshot phase).
//!
//! Checkpoints upload RocksDB's native snapshot files, reusing every SST file a completed
//! checkpoint already uploaded (incremental checkpoints). Savepoints and the in-memory backend
//! write the canonical format: one file per non-empty key group, readable at any parallelism.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::Sender;
use weir_checkpoint::CheckpointStorage;
use weir_checkpoint::metadata::{
    CheckpointMetadata, KeyGroupFile, KeyedStateHandle, OperatorState, RocksFile, SubtaskState,
};
use weir_state::{Entry, KeyGroup, LocalSnapshot, RocksDbBackend, StateBackend, canonical};

use super::{
    Event, NodeRef, NodeSnapshot, NodeState, SnapshotOf, TaskSnapshot, key_group_threads,
    on_threads,
};
use crate::dataflow::key_group::{key_group_range, split_key_groups};
use crate::error::{Error, Result};

/// Where the files of one checkpoint or savepoint go.
#[derive(Clone)]
pub struct Destination {
    /// The folder the metadata's relative paths resolve against.
    pub root: CheckpointStorage,
    /// Prefix of every file under `root` (`shared/` for checkpoints, empty for savepoints).
    pub prefix: String,
    /// Write canonical key-group files (savepoints), never native RocksDB files.
    pub canonical: bool,
}

/// SST files a completed checkpoint uploaded, per (uid, subtask): later checkpoints refer to
/// them instead of uploading them again. Only files of *completed* checkpoints are reused, so
/// a file from a failed (maybe truncated) upload is never trusted.
pub type ConfirmedFiles = Arc<Mutex<HashMap<(String, usize), HashMap<String, RocksFile>>>>;

/// Record the RocksDB files of `metadata` (a complete checkpoint) as uploaded, for the
/// operators `include` accepts, so later checkpoints refer to them instead of uploading them.
pub fn confirm_files(
    confirmed: &ConfirmedFiles,
    metadata: &CheckpointMetadata,
    include: impl Fn(&OperatorState) -> bool,
) {
    let Ok(mut confirmed) = confirmed.lock() else {
        return;
    };
    for op in metadata.operators.iter().filter(|op| include(op)) {
        for s in &op.subtasks {
            if let Some(KeyedStateHandle::RocksDb { files, .. }) = &s.keyed {
                confirmed.insert(
                    (op.uid.clone(), s.subtask as usize),
                    files.iter().map(|f| (f.name.clone(), f.clone())).collect(),
                );
            }
        }
    }
}

/// Told what the coordinator registers, so a process other than the coordinator's (a
/// worker of a distributed job) can upload: where each checkpoint's files go, and which
/// files completed checkpoints hold.
pub trait UploadObserver: Send + Sync {
    /// `Some`: checkpoint `id` is about to be triggered; `None`: it ended.
    fn destination(&self, id: u64, destination: Option<&Destination>);
    fn confirmed(&self, metadata: &CheckpointMetadata);
}

/// How long an upload waits for its checkpoint's destination. In a distributed job the
/// barrier can overtake the message that registers it.
const DESTINATION_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How many ended checkpoint ids [`UploadContext::destinations`] remembers.
const ENDED_KEPT: u64 = 1024;

/// Shared by the coordinator (which registers destinations and confirms files) and the upload
/// threads.
#[derive(Clone)]
pub struct UploadContext {
    /// Per checkpoint id: where it writes (`Some`), or that it ended (`None`, kept for the
    /// last [`ENDED_KEPT`] ids so a late upload fails at once instead of waiting).
    pub destinations: Arc<Mutex<HashMap<u64, Option<Destination>>>>,
    /// Told of every destination and confirmation (distributed jobs).
    pub observer: Option<Arc<dyn UploadObserver>>,
    /// Where final snapshots of finished tasks go: the job's checkpoint folder.
    pub final_destination: Option<Destination>,
    pub confirmed: ConfirmedFiles,
    pub attempt: u64,
    pub max_parallelism: usize,
}

impl UploadContext {
    /// Register (`Some`) or forget (`None`) where checkpoint `id` writes its files.
    pub fn set_destination(&self, id: u64, destination: Option<Destination>) {
        if let Some(observer) = &self.observer {
            observer.destination(id, destination.as_ref());
        }
        if let Ok(mut d) = self.destinations.lock() {
            let ended = destination.is_none();
            d.insert(id, destination);
            if ended {
                d.retain(|&other, dest| dest.is_some() || other + ENDED_KEPT > id);
            }
        }
    }

    /// Record a completed checkpoint's files as uploaded.
    pub fn confirm(&self, metadata: &CheckpointMetadata) {
        if let Some(observer) = &self.observer {
            observer.confirmed(metadata);
        }
        confirm_files(&self.confirmed, metadata, |_| true);
    }

    /// Where checkpoint `id` writes, waiting a little for it to be registered.
    fn destination(&self, id: u64) -> Result<Destination> {
        let deadline = std::time::Instant::now() + DESTINATION_WAIT;
        loop {
            let found = self
                .destinations
                .lock()
                .map_err(|_| Error::execution("checkpoint", "destination table poisoned"))?
                .get(&id)
                .cloned();
            match found {
                Some(Some(destination)) => return Ok(destination),
                // Not registered yet: wait, unless it took too long.
                None if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                // Ended (or never registered in time).
                _ => {
                    return Err(Error::execution(
                        "checkpoint",
                        format!("checkpoint {id} is no longer pending"),
                    ));
                }
            }
        }
    }
}

/// A pool of upload threads fed by a channel.
///
/// The snapshots of one task always go to the same thread, so its events reach the
/// coordinator in the order the task took them: a task's final snapshot is never reported
/// before the checkpoint it took just before finishing. (Were it reported first, that
/// checkpoint would complete with the final state standing in for the missing one, and the
/// sink output pre-committed for it would arrive after the job had ended, never published.)
pub struct Uploader {
    tx: Option<Sender<TaskSnapshot>>,
    threads: Vec<JoinHandle<()>>,
}

impl Uploader {
    pub fn start(threads: usize, ctx: UploadContext, events: Sender<Event>) -> Result<Uploader> {
        let spawn_error =
            |e: std::io::Error| Error::execution("checkpoint", format!("cannot start thread: {e}"));
        let (tx, rx) = crossbeam_channel::unbounded::<TaskSnapshot>();
        let mut handles = Vec::new();
        let mut lanes = Vec::new();
        for i in 0..threads.max(1) {
            let (lane, rx) = crossbeam_channel::unbounded::<TaskSnapshot>();
            lanes.push(lane);
            let ctx = ctx.clone();
            let events = events.clone();
            let handle = std::thread::Builder::new()
                .name(format!("upload-{i}"))
                .spawn(move || {
                    for snapshot in rx {
                        if events.send(upload_event(&ctx, snapshot)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(spawn_error)?;
            handles.push(handle);
        }
        // Routes each snapshot to its task's lane; ends (closing the lanes) when every
        // sender of `tx` is gone.
        let dispatcher = std::thread::Builder::new()
            .name("upload-dispatch".into())
            .spawn(move || {
                for snapshot in rx {
                    let lane = &lanes[snapshot.task % lanes.len()];
                    if lane.send(snapshot).is_err() {
                        return;
                    }
                }
            })
            .map_err(spawn_error)?;
        handles.insert(0, dispatcher);
        Ok(Uploader {
            tx: Some(tx),
            threads: handles,
        })
    }

    pub fn sender(&self) -> Option<Sender<TaskSnapshot>> {
        self.tx.clone()
    }

    /// Stop taking work and wait for the uploads under way.
    pub fn shutdown(mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Upload `snapshot` and say how it went.
fn upload_event(ctx: &UploadContext, snapshot: TaskSnapshot) -> Event {
    let (task, of, mut timing) = (snapshot.task, snapshot.of, snapshot.timing);
    let started = std::time::Instant::now();
    let committables: Vec<(NodeRef, serde_json::Value)> = snapshot
        .nodes
        .iter()
        .filter_map(|n| Some((n.node.clone(), n.committable.clone()?)))
        .collect();
    let uploaded = upload_task(ctx, snapshot);
    timing.asynchronous = started.elapsed();
    match uploaded {
        Ok(nodes) => Event::Acknowledged {
            task,
            of,
            nodes,
            timing,
        },
        Err(e) => Event::Declined {
            task,
            of,
            reason: e.to_string(),
            committables,
        },
    }
}

fn upload_task(ctx: &UploadContext, snapshot: TaskSnapshot) -> Result<Vec<NodeState>> {
    let (destination, id) = match snapshot.of {
        SnapshotOf::Barrier(barrier) => (ctx.destination(barrier.id)?, format!("c{}", barrier.id)),
        SnapshotOf::Final => (
            ctx.final_destination.clone().ok_or_else(|| {
                Error::execution("checkpoint", "final snapshot without a checkpoint dir")
            })?,
            "final".to_string(),
        ),
    };
    let mut states = Vec::with_capacity(snapshot.nodes.len());
    for node in snapshot.nodes {
        states.push(upload_node(ctx, &destination, &id, node)?);
    }
    Ok(states)
}

fn upload_node(
    ctx: &UploadContext,
    destination: &Destination,
    id: &str,
    node: NodeSnapshot,
) -> Result<NodeState> {
    let NodeSnapshot {
        node,
        keyed,
        operator_state,
        splits,
        committable,
    } = node;
    // Names never repeat: the node, its subtask, this attempt and this checkpoint.
    let stem = format!(
        "{}{}-{}-a{}-{id}",
        destination.prefix, node.uid, node.subtask, ctx.attempt
    );
    let range = key_group_range(node.subtask, ctx.max_parallelism, node.parallelism);
    let keyed = match keyed {
        None => None,
        Some(LocalSnapshot::Entries(groups)) => Some(put_key_groups(destination, &stem, &groups)?),
        Some(LocalSnapshot::RocksDb { dir, files }) => {
            let handle = if destination.canonical {
                canonical_from_rocksdb(destination, &stem, &dir, range)
            } else {
                upload_rocksdb(
                    ctx,
                    destination,
                    &stem,
                    &node.uid,
                    node.subtask,
                    &dir,
                    &files,
                )
                .map(|files| KeyedStateHandle::RocksDb {
                    key_group_start: *range.start(),
                    key_group_end: *range.end(),
                    files,
                })
            };
            // The hard links are no longer needed either way.
            let _ = std::fs::remove_dir_all(&dir);
            Some(handle?)
        }
    };
    let subtask = node.subtask;
    Ok(NodeState {
        node,
        state: SubtaskState {
            subtask: subtask as u32,
            keyed,
            operator_state,
            splits,
            // A list: pre-commits of failed checkpoints join the next one (coordinator).
            committable: committable.map(|c| serde_json::Value::Array(vec![c])),
        },
    })
}

/// Entries of several key groups as one file: each key group's canonical bytes one after
/// the other, located by offset. One file per subtask and checkpoint instead of one per key
/// group: creating and deleting up to 128 small files per checkpoint cost the file system (and
/// an object store) far more than the bytes.
fn put_key_groups(
    destination: &Destination,
    stem: &str,
    groups: &std::collections::BTreeMap<KeyGroup, Vec<Entry>>,
) -> Result<KeyedStateHandle> {
    if groups.is_empty() {
        return Ok(KeyedStateHandle::Canonical { key_groups: vec![] });
    }
    let file = format!("{stem}-kgs");
    let mut bytes = Vec::new();
    let mut key_groups = Vec::with_capacity(groups.len());
    for (&key_group, entries) in groups {
        let offset = bytes.len() as u64;
        bytes.extend_from_slice(&canonical::encode(key_group, entries));
        key_groups.push(KeyGroupFile {
            key_group,
            file: file.clone(),
            size: bytes.len() as u64 - offset,
            offset,
        });
    }
    let bytes = Bytes::from(bytes);
    with_retries(|| destination.root.put_verified(&file, bytes.clone()))?;
    Ok(KeyedStateHandle::Canonical { key_groups })
}

/// A savepoint of RocksDB state: iterate the native snapshot and write one canonical file per
/// key group, encoding entries straight from the iterator, one key group in memory at a time
/// per thread. The subtask's key-group range is split over [`key_group_threads`] threads, each
/// with its own iterator on one read-only database.
fn canonical_from_rocksdb(
    destination: &Destination,
    stem: &str,
    dir: &Path,
    range: std::ops::RangeInclusive<KeyGroup>,
) -> Result<KeyedStateHandle> {
    let db = RocksDbBackend::open_read_only(dir)?;
    let parts = split_key_groups(&range, key_group_threads());
    let written = on_threads(parts, |part| {
        write_canonical_range(&db, destination, stem, part)
    })?;
    Ok(KeyedStateHandle::Canonical {
        key_groups: written.into_iter().flatten().collect(),
    })
}

/// The canonical files of the key groups of `range` in `db`, in key-group order.
fn write_canonical_range(
    db: &RocksDbBackend,
    destination: &Destination,
    stem: &str,
    range: std::ops::RangeInclusive<KeyGroup>,
) -> Result<Vec<KeyGroupFile>> {
    let mut files = Vec::new();
    let mut current: Option<(KeyGroup, canonical::Encoder)> = None;
    let put = |key_group: KeyGroup, encoder: canonical::Encoder| -> Result<KeyGroupFile> {
        let file = format!("{stem}-kg{key_group}");
        let bytes = Bytes::from(encoder.finish());
        let size = with_retries(|| destination.root.put_verified(&file, bytes.clone()))?;
        Ok(KeyGroupFile {
            key_group,
            file,
            size,
            offset: 0,
        })
    };
    db.for_each_entry(range, &mut |key_group, entry| {
        if current.as_ref().is_none_or(|(kg, _)| *kg != key_group) {
            if let Some((done, encoder)) = current.take() {
                files.push(put(done, encoder).map_err(weir_state::Error::visitor)?);
            }
            current = Some((key_group, canonical::Encoder::new(key_group)));
        }
        if let Some((_, encoder)) = current.as_mut() {
            encoder.push(entry.state, &entry.key, &entry.value);
        }
        Ok(())
    })?;
    if let Some((done, encoder)) = current.take() {
        files.push(put(done, encoder)?);
    }
    Ok(files)
}

/// Upload a native RocksDB snapshot: SST files a completed checkpoint already holds are
/// referred to, everything else is uploaded under a new name.
fn upload_rocksdb(
    ctx: &UploadContext,
    destination: &Destination,
    stem: &str,
    uid: &str,
    subtask: usize,
    dir: &Path,
    files: &[String],
) -> Result<Vec<RocksFile>> {
    let confirmed: HashMap<String, RocksFile> = ctx
        .confirmed
        .lock()
        .map_err(|_| Error::execution("checkpoint", "confirmed-file table poisoned"))?
        .get(&(uid.to_string(), subtask))
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::with_capacity(files.len());
    for name in files {
        if name.ends_with(".sst")
            && let Some(file) = confirmed.get(name)
        {
            out.push(file.clone());
            continue;
        }
        let file = format!("{stem}-{name}");
        let local = dir.join(name);
        let size = with_retries(|| destination.root.upload_file(&file, &local))?;
        out.push(RocksFile {
            name: name.clone(),
            file,
            size,
        });
    }
    Ok(out)
}

/// Uploads retried this many times after a failure (a failed or short write): object stores
/// fail single requests now and then, and one bad request should not cost a checkpoint.
const UPLOAD_RETRIES: u32 = 3;

fn with_retries<T>(mut upload: impl FnMut() -> weir_checkpoint::Result<T>) -> Result<T> {
    let mut delay = std::time::Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        match upload() {
            Ok(value) => return Ok(value),
            Err(e) if attempt < UPLOAD_RETRIES => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "upload failed; retrying");
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
