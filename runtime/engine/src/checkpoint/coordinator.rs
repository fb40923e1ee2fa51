//! The checkpoint coordinator of a running job (the part of Flink's JobManager that runs
//! `CheckpointCoordinator`): it triggers barriers at the sources, collects every task's
//! acknowledgement, completes the checkpoint by writing `_metadata` last, commits the sinks'
//! pre-committed output, and applies retention.
//!
//! One checkpoint or savepoint is in flight at a time. A task that finished acknowledges every
//! later checkpoint with its final snapshot. When every task has finished, the coordinator
//! writes a final checkpoint and commits what the sinks pre-committed at the end of input.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, select};
use weir_checkpoint::metadata::{CheckpointKind, CheckpointMetadata, OperatorState};
use weir_checkpoint::{CheckpointStorage, JobCheckpoints, savepoint_folder_name};

use super::upload::{Destination, UploadContext};
use super::{CheckpointSettings, Event, NodeRef, NodeState, SnapshotOf, SnapshotTiming, Trigger};
use crate::catalog::TableDef;
use crate::connectors;
use crate::dataflow::message::{Barrier, BarrierKind};
use crate::error::{Error, Result};

/// A request from the job runner (Ctrl-C, or a future control API).
#[derive(Debug)]
pub enum Command {
    /// Take a savepoint into `dir` (or the configured savepoint dir); with `stop`, stop the
    /// job once it is complete. The reply is the savepoint's location.
    Savepoint {
        dir: Option<String>,
        stop: bool,
        reply: Sender<Result<String>>,
    },
    /// Take a checkpoint and stop the job once it is complete (Ctrl-C without a savepoint dir).
    StopWithCheckpoint { reply: Sender<Result<String>> },
}

/// Figures about the job's checkpoints, read by the progress display, the summary and (later)
/// the control API: counts, the last complete checkpoint, and the recent history.
#[derive(Debug, Clone, Default)]
pub struct CheckpointStats {
    pub completed: u64,
    pub failed: u64,
    pub last_id: Option<u64>,
    pub last_location: Option<String>,
    pub last_duration: Option<Duration>,
    pub last_size: u64,
    /// The last [`HISTORY`] checkpoints and savepoints that ended (complete or failed), oldest
    /// first.
    pub history: VecDeque<CheckpointRecord>,
}

/// Checkpoints kept in [`CheckpointStats::history`].
pub const HISTORY: usize = 64;

impl CheckpointStats {
    /// The newest record of the history, complete or failed.
    pub fn latest(&self) -> Option<&CheckpointRecord> {
        self.history.back()
    }

    fn record(&mut self, record: CheckpointRecord) {
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(record);
    }
}

/// One checkpoint or savepoint as the coordinator saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckpointRecord {
    pub id: u64,
    pub savepoint: bool,
    pub status: CheckpointStatus,
    /// Where it was written (the `chk-<id>` folder or the savepoint folder).
    pub path: String,
    /// When it was triggered, in milliseconds since the epoch.
    pub triggered_ms: i64,
    /// From the trigger to `_metadata` written (or to the failure).
    pub duration: Duration,
    /// Bytes of state it refers to (shared files included); 0 when it failed.
    pub size_bytes: u64,
    /// The longest barrier alignment of any task (first input's barrier to the last one's).
    pub alignment: Duration,
    /// The longest synchronous snapshot of any task (processing paused meanwhile).
    pub sync: Duration,
    /// Tasks that acknowledged.
    pub acknowledged: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointStatus {
    Completed,
    Failed { reason: String },
}

/// The job's tasks as the coordinator sees them.
pub struct TaskTriggers {
    /// Per task: the sender of triggers for source tasks, `None` for the others.
    pub triggers: Vec<Option<Sender<Trigger>>>,
}

/// A sink node: its table, for commits.
pub type SinkTables = HashMap<String, Arc<TableDef>>;

struct Pending {
    barrier: Barrier,
    started: Instant,
    triggered_ms: i64,
    /// The largest alignment and synchronous snapshot time of the tasks that acknowledged.
    timing: SnapshotTiming,
    location: String,
    root: Option<CheckpointStorage>,
    acks: HashMap<usize, Vec<NodeState>>,
    stop: bool,
    reply: Option<Sender<Result<String>>>,
}

impl Pending {
    /// What the history keeps of this checkpoint once it ended with `status`.
    fn record(&self, status: CheckpointStatus, size_bytes: u64) -> CheckpointRecord {
        CheckpointRecord {
            id: self.barrier.id,
            savepoint: self.barrier.is_savepoint(),
            status,
            path: self.location.clone(),
            triggered_ms: self.triggered_ms,
            duration: self.started.elapsed(),
            size_bytes,
            alignment: self.timing.alignment,
            sync: self.timing.sync,
            acknowledged: self.acks.len(),
        }
    }
}

pub struct Coordinator {
    pub settings: CheckpointSettings,
    pub job: Option<JobCheckpoints>,
    pub attempt: u64,
    pub max_parallelism: usize,
    pub tasks: TaskTriggers,
    pub sinks: SinkTables,
    pub uploads: UploadContext,
    pub events: Receiver<Event>,
    pub commands: Receiver<Command>,
    pub next_id: u64,
    /// Set to stop every task (after a stop-with-savepoint, or on a failure here).
    pub cancel: Arc<AtomicBool>,
    /// Set by the job runner once the tasks are gone (failed or cancelled).
    pub tasks_gone: Arc<AtomicBool>,
    pub stats: Arc<Mutex<CheckpointStats>>,
    /// Sink pre-commits of checkpoints that failed, per (sink uid, subtask): published with
    /// the next checkpoint that completes (and recorded in it, so a restore publishes them).
    pub carried: HashMap<(String, usize), Vec<serde_json::Value>>,
}

impl Coordinator {
    /// Run until every task finished (then write the final checkpoint) or the tasks are gone.
    pub fn run(mut self) -> Result<()> {
        let mut finals: HashMap<usize, Vec<NodeState>> = HashMap::new();
        let mut pending: Option<Pending> = None;
        let mut queued: VecDeque<Command> = VecDeque::new();
        let mut consecutive_failures = 0u32;
        let mut last_trigger = Instant::now();
        let task_count = self.tasks.triggers.len();
        loop {
            if self.tasks_gone.load(Ordering::SeqCst) {
                if let Some(p) = pending.take() {
                    self.fail(p, "the job stopped before the checkpoint completed");
                }
                for command in queued.drain(..) {
                    reply_stopped(command);
                }
                return Ok(());
            }
            if finals.len() == task_count && pending.is_none() {
                return self.finish(finals);
            }
            if pending.is_none()
                && let Some(command) = queued.pop_front()
            {
                pending = self.trigger_command(command, &finals);
            }
            if pending.is_none()
                && let Some(interval) = self.settings.interval
                && self.job.is_some()
                && last_trigger.elapsed() >= interval
            {
                last_trigger = Instant::now();
                pending =
                    Some(self.trigger(BarrierKind::Checkpoint, None, false, None, &finals)?);
            }
            let wait = Duration::from_millis(20);
            select! {
                recv(self.events) -> event => match event {
                    Ok(Event::Acknowledged { task, of, nodes, timing }) => match of {
                        SnapshotOf::Final => {
                            finals.insert(task, nodes);
                        }
                        SnapshotOf::Barrier(b) => match pending.as_mut() {
                            Some(p) if p.barrier.id == b.id => {
                                p.timing.alignment = p.timing.alignment.max(timing.alignment);
                                p.timing.sync = p.timing.sync.max(timing.sync);
                                p.timing.asynchronous =
                                    p.timing.asynchronous.max(timing.asynchronous);
                                p.acks.insert(task, nodes);
                            }
                            _ => {
                                self.carry_all(&nodes);
                                self.discard_late(b.id, &nodes);
                            }
                        },
                    },
                    Ok(Event::Declined { task, of, reason, committables }) => {
                        for (node, committable) in committables {
                            self.carry(&node, committable);
                        }
                        if let SnapshotOf::Barrier(b) = of
                            && let Some(p) = pending.take_if(|p| p.barrier.id == b.id)
                        {
                            self.fail(p, &format!("task {task} declined: {reason}"));
                            consecutive_failures += 1;
                        } else if of == SnapshotOf::Final {
                            // Without its final snapshot no later checkpoint can complete.
                            self.cancel.store(true, Ordering::SeqCst);
                            return Err(Error::execution(
                                "checkpoint",
                                format!("the final snapshot of task {task} failed: {reason}"),
                            ));
                        }
                    }
                    Err(_) => return Ok(()),
                },
                recv(self.commands) -> command => {
                    if let Ok(command) = command {
                        queued.push_back(command);
                    }
                }
                default(wait) => {}
            }
            if let Some(p) = pending.take() {
                let acked =
                    (0..task_count).all(|t| p.acks.contains_key(&t) || finals.contains_key(&t));
                if acked {
                    match self.complete(p, &finals) {
                        Ok(true) => consecutive_failures = 0,
                        Ok(false) => consecutive_failures += 1,
                        Err(e) => {
                            self.cancel.store(true, Ordering::SeqCst);
                            return Err(e);
                        }
                    }
                } else if p.started.elapsed() > self.settings.timeout {
                    let timeout = self.settings.timeout;
                    self.fail(p, &format!("not complete after {timeout:?}"));
                    consecutive_failures += 1;
                } else {
                    pending = Some(p);
                }
            }
            if let Some(limit) = self.settings.tolerable_failures
                && consecutive_failures > limit
            {
                self.cancel.store(true, Ordering::SeqCst);
                return Err(Error::execution(
                    "checkpoint",
                    format!(
                        "{consecutive_failures} checkpoints failed in a row \
                         (execution.checkpointing.tolerable-failed-checkpoints = {limit})"
                    ),
                ));
            }
        }
    }

    /// Start what `command` asks for. A request that cannot start (no savepoint directory, a
    /// folder that cannot be opened) is answered with the error; the job goes on.
    fn trigger_command(
        &mut self,
        command: Command,
        finals: &HashMap<usize, Vec<NodeState>>,
    ) -> Option<Pending> {
        let (kind, dir, stop, reply) = match command {
            Command::Savepoint { dir, stop, reply } => {
                match dir.or_else(|| self.settings.savepoint_dir.clone()) {
                    Some(dir) => (BarrierKind::Savepoint, Some(dir), stop, reply),
                    None => {
                        let _ = reply.send(Err(Error::Config {
                            key: "state.savepoints.dir".into(),
                            message: "no savepoint directory: pass --savepoint-dir".into(),
                        }));
                        return None;
                    }
                }
            }
            Command::StopWithCheckpoint { reply } => (BarrierKind::Checkpoint, None, true, reply),
        };
        match self.trigger(kind, dir, stop, Some(reply.clone()), finals) {
            Ok(pending) => Some(pending),
            Err(e) => {
                let _ = reply.send(Err(e));
                None
            }
        }
    }

    fn trigger(
        &mut self,
        kind: BarrierKind,
        savepoint_dir: Option<String>,
        stop: bool,
        reply: Option<Sender<Result<String>>>,
        finals: &HashMap<usize, Vec<NodeState>>,
    ) -> Result<Pending> {
        let id = self.next_id;
        self.next_id += 1;
        let barrier = Barrier { id, kind };
        let (root, location, destination) = match (&kind, savepoint_dir) {
            (BarrierKind::Savepoint, Some(dir)) => {
                let parent = CheckpointStorage::open(&dir)?;
                let folder = savepoint_folder_name(&self.settings.job_id, id);
                let root = parent.child(&folder);
                let location = root.uri().to_string();
                let destination = Destination {
                    root: root.clone(),
                    prefix: String::new(),
                    canonical: true,
                };
                (Some(root), location, destination)
            }
            _ => {
                let job = self.job.as_ref().ok_or_else(|| {
                    Error::execution("checkpoint", "no checkpoint directory is configured")
                })?;
                let root = job.storage().clone();
                let location = root.uri_of(&format!("chk-{id}"));
                let destination = Destination {
                    root: root.clone(),
                    prefix: "shared/".into(),
                    canonical: false,
                };
                (Some(root), location, destination)
            }
        };
        self.uploads.set_destination(id, Some(destination));
        tracing::debug!(id, ?kind, "triggering");
        for (task, trigger) in self.tasks.triggers.iter().enumerate() {
            if let Some(tx) = trigger
                && !finals.contains_key(&task)
            {
                // A source that just finished no longer listens; its final snapshot answers.
                let _ = tx.send(Trigger { barrier, stop });
            }
        }
        Ok(Pending {
            barrier,
            started: Instant::now(),
            triggered_ms: now_ms(),
            timing: SnapshotTiming::default(),
            location,
            root,
            acks: HashMap::new(),
            stop,
            reply,
        })
    }

    fn metadata(
        &self,
        id: u64,
        kind: CheckpointKind,
        acks: &HashMap<usize, Vec<NodeState>>,
        finals: &HashMap<usize, Vec<NodeState>>,
    ) -> CheckpointMetadata {
        let mut operators: BTreeMap<String, OperatorState> = BTreeMap::new();
        let tasks = self.tasks.triggers.len();
        for task in 0..tasks {
            let Some(nodes) = acks.get(&task).or_else(|| finals.get(&task)) else {
                continue;
            };
            for node in nodes {
                let mut state = node.state.clone();
                if let Some(carried) = self
                    .carried
                    .get(&(node.node.uid.clone(), node.node.subtask))
                {
                    let mut all = carried.clone();
                    all.extend(committables_of(&state));
                    state.committable = (!all.is_empty()).then_some(serde_json::Value::Array(all));
                }
                let op = operators
                    .entry(node.node.uid.clone())
                    .or_insert_with(|| OperatorState {
                        uid: node.node.uid.clone(),
                        name: node.node.name.clone(),
                        parallelism: node.node.parallelism as u32,
                        subtasks: Vec::new(),
                    });
                op.subtasks.push(state);
            }
        }
        let mut operators: Vec<OperatorState> = operators.into_values().collect();
        for op in &mut operators {
            op.subtasks.sort_by_key(|s| s.subtask);
        }
        CheckpointMetadata {
            format_version: weir_checkpoint::metadata::FORMAT_VERSION,
            job_id: self.settings.job_id.clone(),
            checkpoint_id: id,
            attempt: self.attempt,
            kind,
            timestamp_ms: now_ms(),
            max_parallelism: self.max_parallelism as u32,
            operators,
        }
    }

    /// Complete a checkpoint every task acknowledged: `Ok(false)` when it failed and the job
    /// may go on with the next one; an error when the job must stop (fenced off by a newer
    /// attempt, or a commit failed).
    fn complete(&mut self, p: Pending, finals: &HashMap<usize, Vec<NodeState>>) -> Result<bool> {
        let id = p.barrier.id;
        let kind = if p.barrier.is_savepoint() {
            CheckpointKind::Savepoint
        } else {
            CheckpointKind::Checkpoint
        };
        let metadata = self.metadata(id, kind, &p.acks, finals);
        let result = self.write_metadata(&metadata, p.root.as_ref());
        self.uploads.set_destination(id, None);
        match result {
            Ok(()) => {}
            Err(Fenced(e)) => return Err(e),
            Err(Failed(e)) => {
                tracing::warn!(id, error = %e, "checkpoint failed");
                for nodes in p.acks.values() {
                    self.carry_all(nodes);
                }
                if let Some(reply) = &p.reply {
                    let _ = reply.send(Err(Error::execution("checkpoint", e.to_string())));
                }
                self.discard(&p.acks, id);
                self.record_failure(p.record(
                    CheckpointStatus::Failed {
                        reason: e.to_string(),
                    },
                    0,
                ));
                return Ok(false);
            }
        }
        // The checkpoint is durable: what the sinks pre-committed for it (and for failed ones
        // before it) may be published.
        self.commit(&metadata)?;
        self.carried.clear();
        if kind == CheckpointKind::Checkpoint {
            self.confirm(&metadata);
            if let Some(job) = &self.job
                && let Err(e) = job.apply_retention(self.settings.retained.max(1))
            {
                tracing::warn!(error = %e, "could not delete old checkpoints");
            }
        }
        let size: u64 = metadata.total_size();
        let record = p.record(CheckpointStatus::Completed, size);
        tracing::info!(
            id,
            location = %p.location,
            duration_ms = record.duration.as_millis() as u64,
            size,
            alignment_ms = record.alignment.as_millis() as u64,
            sync_ms = record.sync.as_millis() as u64,
            async_ms = p.timing.asynchronous.as_millis() as u64,
            "{} complete",
            if p.barrier.is_savepoint() { "savepoint" } else { "checkpoint" }
        );
        if let Ok(mut stats) = self.stats.lock() {
            stats.completed += 1;
            stats.last_id = Some(id);
            stats.last_location = Some(p.location.clone());
            stats.last_duration = Some(record.duration);
            stats.last_size = size;
            stats.record(record);
        }
        if let Some(reply) = p.reply {
            let _ = reply.send(Ok(p.location.clone()));
        }
        if p.stop {
            self.cancel.store(true, Ordering::SeqCst);
        }
        Ok(true)
    }

    fn write_metadata(
        &self,
        metadata: &CheckpointMetadata,
        root: Option<&CheckpointStorage>,
    ) -> std::result::Result<(), WriteFailure> {
        if let Some(job) = &self.job
            && let Some(newer) = job
                .newer_attempt(self.attempt)
                .map_err(|e| Failed(e.into()))?
        {
            return Err(Fenced(Error::execution(
                "checkpoint",
                format!(
                    "attempt {} is fenced off: attempt {newer} of job '{}' is running",
                    self.attempt, self.settings.job_id
                ),
            )));
        }
        let failed = |e: Error| Failed(e);
        match metadata.kind {
            CheckpointKind::Checkpoint => {
                let job = self.job.as_ref().ok_or_else(|| {
                    failed(Error::execution(
                        "checkpoint",
                        "no checkpoint directory is configured",
                    ))
                })?;
                // Fenced before or right after the write: stop without publishing anything
                // (a newer attempt runs, and publishes it if it restores from this one).
                job.complete(metadata).map_err(|e| match e {
                    weir_checkpoint::Error::Fenced { .. } => Fenced(e.into()),
                    e => failed(e.into()),
                })?;
            }
            CheckpointKind::Savepoint => {
                let root = root.ok_or_else(|| {
                    failed(Error::execution(
                        "savepoint",
                        "no savepoint directory is configured",
                    ))
                })?;
                weir_checkpoint::write_savepoint(root, metadata).map_err(|e| failed(e.into()))?;
            }
        }
        Ok(())
    }

    /// Publish the sinks' output of a complete checkpoint.
    fn commit(&self, metadata: &CheckpointMetadata) -> Result<()> {
        commit_all(metadata, &self.sinks)
    }

    /// Remember the SST files of a complete checkpoint, so later ones refer to them.
    fn confirm(&self, metadata: &CheckpointMetadata) {
        self.uploads.confirm(metadata);
    }

    /// All tasks finished: a final checkpoint records their end state, then the sinks'
    /// last output is committed.
    fn finish(&mut self, finals: HashMap<usize, Vec<NodeState>>) -> Result<()> {
        let id = self.next_id;
        let metadata = self.metadata(id, CheckpointKind::Checkpoint, &HashMap::new(), &finals);
        if self.job.is_some() {
            self.write_metadata(&metadata, None).map_err(|e| match e {
                Fenced(e) | Failed(e) => e,
            })?;
            if let Some(job) = &self.job
                && let Err(e) = job.apply_retention(self.settings.retained.max(1))
            {
                tracing::warn!(error = %e, "could not delete old checkpoints");
            }
            if let Ok(mut stats) = self.stats.lock() {
                stats.completed += 1;
                stats.last_id = Some(id);
                stats.last_location = self
                    .job
                    .as_ref()
                    .map(|job| job.storage().uri_of(&format!("chk-{id}")));
            }
        }
        self.commit(&metadata)
    }

    /// Keep a sink's pre-commit of a failed checkpoint for the next one.
    fn carry(&mut self, node: &NodeRef, committable: serde_json::Value) {
        self.carried
            .entry((node.uid.clone(), node.subtask))
            .or_default()
            .push(committable);
    }

    /// Keep the sinks' pre-commits of a checkpoint that will not complete.
    fn carry_all(&mut self, nodes: &[NodeState]) {
        for n in nodes {
            for c in committables_of(&n.state) {
                self.carry(&n.node, c);
            }
        }
    }

    fn fail(&mut self, p: Pending, reason: &str) {
        tracing::warn!(id = p.barrier.id, reason, "checkpoint failed");
        self.uploads.set_destination(p.barrier.id, None);
        for nodes in p.acks.values() {
            self.carry_all(nodes);
        }
        self.discard(&p.acks, p.barrier.id);
        self.record_failure(p.record(
            CheckpointStatus::Failed {
                reason: reason.to_string(),
            },
            0,
        ));
        if let Some(reply) = p.reply {
            let _ = reply.send(Err(Error::execution("checkpoint", reason.to_string())));
        }
    }

    fn record_failure(&self, record: CheckpointRecord) {
        if let Ok(mut stats) = self.stats.lock() {
            stats.failed += 1;
            stats.record(record);
        }
    }

    /// Delete what a failed checkpoint uploaded (never files reused from earlier ones).
    fn discard(&self, acks: &HashMap<usize, Vec<NodeState>>, id: u64) {
        for nodes in acks.values() {
            self.discard_late(id, nodes);
        }
    }

    fn discard_late(&self, id: u64, nodes: &[NodeState]) {
        let Some(job) = &self.job else { return };
        let marker = format!("-a{}-c{id}-", self.attempt);
        let files: Vec<String> = nodes
            .iter()
            .flat_map(|n| files_of(&n.state))
            .filter(|f| f.contains(&marker))
            .collect();
        job.discard_files(&files);
    }
}

/// Publish every sink committable of `metadata` (idempotent, so also used after a restore).
pub fn commit_all(metadata: &CheckpointMetadata, sinks: &SinkTables) -> Result<()> {
    for op in &metadata.operators {
        let Some(table) = sinks.get(&op.uid) else {
            continue;
        };
        let connector = connectors::connector_for(table)?;
        for s in &op.subtasks {
            for committable in committables_of(s) {
                connector.commit(table, &committable)?;
            }
        }
    }
    Ok(())
}

/// A subtask's committables: the engine stores a list (see [`Coordinator::carried`]).
fn committables_of(state: &weir_checkpoint::metadata::SubtaskState) -> Vec<serde_json::Value> {
    match &state.committable {
        Some(serde_json::Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
        None => Vec::new(),
    }
}

fn files_of(state: &weir_checkpoint::metadata::SubtaskState) -> Vec<String> {
    state
        .files()
        .into_iter()
        .map(|(file, _)| file.to_owned())
        .collect()
}

/// Why `_metadata` was not written.
enum WriteFailure {
    /// A newer attempt of the job exists: this one must stop.
    Fenced(Error),
    /// This checkpoint failed; the next one may succeed.
    Failed(Error),
}
use WriteFailure::{Failed, Fenced};

fn reply_stopped(command: Command) {
    let reply = match command {
        Command::Savepoint { reply, .. } | Command::StopWithCheckpoint { reply } => reply,
    };
    let _ = reply.send(Err(Error::execution(
        "checkpoint",
        "the job stopped before the savepoint could be taken",
    )));
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
