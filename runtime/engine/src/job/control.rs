//! The engine's side of the control API (`weir_rpc::JobControl`): a [`LiveJob`] follows one
//! job through its attempts (the run loop tells it when an attempt starts, restarts and
//! ends) and answers status, metrics, checkpoint figures, savepoint triggers and cancel.
//!
//! Savepoints go through the current attempt's checkpoint coordinator
//! (`Command::Savepoint`); its reply arrives later on a channel kept under the trigger id,
//! read when a client asks (`GetSavepoint`). A trigger carrying a request id seen before
//! answers the first trigger's id and starts nothing. An attempt that restarts gets a new
//! command channel and new metrics; the [`LiveJob`] always uses the current ones. The
//! upgrade helpers (compatibility check, savepoint disposal) are in `upgrade.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use weir_rpc::{
    Checkpoint, CheckpointKind, CheckpointStatus, Checkpoints, Compatibility, Job, JobState,
    Operator, Savepoint, SavepointRequest, SavepointStatus,
};

use self::upgrade::{RunningJob, RunningNode};

use super::{JobSummary, PlannedJob};
use crate::checkpoint::coordinator::{
    CheckpointRecord, CheckpointStats, CheckpointStatus as RecordStatus, Command,
};
use crate::dataflow::graph::NodeKind;
use crate::dataflow::metrics::JobMetrics;
use crate::error::{Error, Result};

/// A graph node as the API lists it, and the node whose output edges its task blocks on.
struct NodeInfo {
    uid: String,
    name: String,
    parallelism: usize,
    blocked_on: String,
}

/// The attempt running now.
struct Current {
    cancel: Arc<AtomicBool>,
    /// To the checkpoint coordinator; `None` when the job takes no snapshots.
    commands: Option<Sender<Command>>,
}

struct Triggered {
    stop: bool,
    reply: Option<Receiver<Result<String>>>,
    status: SavepointStatus,
    path: Option<String>,
    failure: Option<String>,
    /// A client has seen the final status (so `weir run` need not wait for one to ask).
    delivered: bool,
}

/// Back-pressure samples: per node, when and how many blocked nanoseconds, and the rate.
type Samples = HashMap<String, (Instant, u64, f64)>;

struct State {
    state: JobState,
    attempt: u64,
    restarts: u32,
    last_error: Option<String>,
    cancel_requested: bool,
    current: Option<Current>,
    /// The last attempt's metrics stay readable after it ended.
    metrics: Option<Arc<JobMetrics>>,
    stats: Option<Arc<Mutex<CheckpointStats>>>,
    samples: Samples,
    triggers: HashMap<String, Triggered>,
    /// Trigger ids by the request id their trigger carried.
    requests: HashMap<String, String>,
}

/// One job as the control API sees it.
pub struct LiveJob {
    job_id: String,
    parallelism: usize,
    max_parallelism: usize,
    nodes: Vec<NodeInfo>,
    /// The plan as the compatibility check compares it.
    running: Vec<RunningNode>,
    /// `--restore`: the state the job started from.
    restored_from: Option<String>,
    started: Instant,
    start_time_ms: i64,
    state: Mutex<State>,
}

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl LiveJob {
    pub fn new(job: &PlannedJob) -> Arc<LiveJob> {
        let graph = &job.graph;
        let mut nodes = Vec::new();
        for chain in graph.chains() {
            // The task's output edges belong to its last source or operator node.
            let sender = chain
                .iter()
                .rev()
                .find(|n| !matches!(graph.nodes[**n].kind, NodeKind::Sink { .. }))
                .map(|n| graph.nodes[*n].uid.clone())
                .unwrap_or_default();
            for n in chain {
                let node = &graph.nodes[n];
                nodes.push(NodeInfo {
                    uid: node.uid.clone(),
                    name: node.name.clone(),
                    parallelism: node.parallelism,
                    blocked_on: sender.clone(),
                });
            }
        }
        let running = graph
            .nodes
            .iter()
            .map(|n| RunningNode {
                uid: n.uid.clone(),
                name: n.name.clone(),
                may_hold_state: !matches!(n.kind, NodeKind::Sink { .. }),
            })
            .collect();
        Arc::new(LiveJob {
            job_id: job.settings.checkpoint.job_id.clone(),
            parallelism: job.settings.parallelism,
            max_parallelism: graph.max_parallelism,
            nodes,
            running,
            restored_from: job.settings.restore.clone().filter(|r| r != "latest"),
            started: Instant::now(),
            start_time_ms: epoch_ms(SystemTime::now()),
            state: Mutex::new(State {
                state: JobState::Created,
                attempt: 0,
                restarts: 0,
                last_error: None,
                cancel_requested: false,
                current: None,
                metrics: None,
                stats: None,
                samples: HashMap::new(),
                triggers: HashMap::new(),
                requests: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An attempt's tasks are running. `commands` reaches its checkpoint coordinator, if any.
    pub fn attempt_started(
        &self,
        attempt: u64,
        metrics: Arc<JobMetrics>,
        cancel: Arc<AtomicBool>,
        commands: Option<Sender<Command>>,
        stats: &Arc<Mutex<CheckpointStats>>,
    ) {
        let mut s = self.lock();
        if s.cancel_requested {
            cancel.store(true, Ordering::SeqCst);
        } else {
            s.state = JobState::Running;
        }
        s.attempt = attempt;
        s.metrics = Some(metrics);
        s.stats = Some(stats.clone());
        s.samples.clear();
        s.current = Some(Current { cancel, commands });
    }

    /// The attempt's tasks are gone; no command can reach it any more.
    pub fn attempt_ended(&self) {
        self.lock().current = None;
    }

    /// A task failed and the job restarts (restart number `restarts`).
    pub fn restarting(&self, restarts: u32, error: &Error) {
        let mut s = self.lock();
        s.state = JobState::Restarting;
        s.restarts = restarts;
        s.last_error = Some(error.to_string());
    }

    /// Cancel was asked for: the run loop must not restart the job.
    pub fn cancel_requested(&self) -> bool {
        self.lock().cancel_requested
    }

    /// The run loop returned.
    pub fn finished(&self, result: &Result<JobSummary>) {
        let mut s = self.lock();
        s.current = None;
        s.state = match result {
            Ok(summary) if !summary.cancelled => JobState::Finished,
            // Flink reports a job stopped with a savepoint as FINISHED.
            Ok(_) if stopped_with_savepoint(&mut s.triggers) => JobState::Finished,
            Ok(_) => JobState::Canceled,
            Err(e) => {
                s.last_error = Some(e.to_string());
                JobState::Failed
            }
        };
    }

    /// Wait up to `limit` for clients to read the outcome of the savepoints they triggered
    /// (`weir job savepoint --stop` polls after the job stopped).
    pub fn wait_for_savepoint_readers(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            let waiting = {
                let mut s = self.lock();
                s.triggers.values_mut().any(|t| {
                    t.poll();
                    !t.delivered
                })
            };
            if !waiting {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn operators(&self, s: &mut State) -> Vec<Operator> {
        let now = Instant::now();
        let metrics = s.metrics.clone();
        let figures = |uid: &str| metrics.as_ref().and_then(|m| m.node(uid));
        self.nodes
            .iter()
            .map(|node| {
                let own = figures(&node.uid).unwrap_or_default();
                let blocked = figures(&node.blocked_on).map_or(0, |f| f.back_pressured_nanos);
                let rate = back_pressure_rate(&mut s.samples, &node.blocked_on, now, blocked)
                    / node.parallelism.max(1) as f64;
                Operator {
                    uid: node.uid.clone(),
                    name: node.name.clone(),
                    parallelism: node.parallelism as u32,
                    num_records_in: own.records_in,
                    num_records_out: own.records_out,
                    back_pressured_time_ms_per_second: rate.min(1000.0),
                    current_output_watermark_ms: own.output_watermark,
                }
            })
            .collect()
    }
}

/// Milliseconds blocked per second since the previous sample (at least a second ago), or
/// the last rate when the previous sample is more recent.
fn back_pressure_rate(samples: &mut Samples, uid: &str, now: Instant, nanos: u64) -> f64 {
    match samples.get(uid) {
        Some((at, _, rate)) if now.duration_since(*at) < Duration::from_secs(1) => *rate,
        Some((at, previous, _)) if nanos >= *previous => {
            let seconds = now.duration_since(*at).as_secs_f64();
            let rate = (nanos - previous) as f64 / 1e6 / seconds;
            samples.insert(uid.to_string(), (now, nanos, rate));
            rate
        }
        _ => {
            samples.insert(uid.to_string(), (now, nanos, 0.0));
            0.0
        }
    }
}

fn checkpoint(record: &CheckpointRecord) -> Checkpoint {
    let (status, failure) = match &record.status {
        RecordStatus::Completed => (CheckpointStatus::Completed, None),
        RecordStatus::Failed { reason } => (CheckpointStatus::Failed, Some(reason.clone())),
    };
    let completed = failure.is_none();
    Checkpoint {
        id: record.id,
        kind: if record.savepoint {
            CheckpointKind::Savepoint
        } else {
            CheckpointKind::Checkpoint
        },
        status,
        trigger_time_ms: Some(record.triggered_ms),
        duration_ms: Some(record.duration.as_millis() as u64),
        size_bytes: completed.then_some(record.size_bytes),
        alignment_ms: Some(record.alignment.as_millis() as u64),
        path: completed.then(|| record.path.clone()),
        failure,
    }
}

fn stopped_with_savepoint(triggers: &mut HashMap<String, Triggered>) -> bool {
    triggers.values_mut().any(|t| {
        t.poll();
        t.stop && t.status == SavepointStatus::Completed
    })
}

impl Triggered {
    /// Take the coordinator's reply if it arrived.
    fn poll(&mut self) {
        let Some(reply) = &self.reply else {
            return;
        };
        let outcome = match reply.try_recv() {
            Ok(Ok(path)) => (SavepointStatus::Completed, Some(path), None),
            Ok(Err(e)) => (SavepointStatus::Failed, None, Some(e.to_string())),
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => (
                SavepointStatus::Failed,
                None,
                Some("the job stopped before the savepoint completed".into()),
            ),
        };
        (self.status, self.path, self.failure) = outcome;
        self.reply = None;
    }
}

impl weir_rpc::JobControl for LiveJob {
    fn job(&self) -> weir_rpc::Result<Job> {
        let mut s = self.lock();
        let operators = self.operators(&mut s);
        let metrics = s.metrics.clone();
        Ok(Job {
            job_id: self.job_id.clone(),
            name: self.job_id.clone(),
            state: s.state,
            start_time_ms: self.start_time_ms,
            uptime_ms: self.started.elapsed().as_millis() as u64,
            parallelism: self.parallelism as u32,
            max_parallelism: self.max_parallelism as u32,
            attempt: s.attempt,
            restarts: s.restarts,
            num_records_in: metrics.as_ref().map_or(0, |m| m.rows_in()),
            num_records_out: metrics.as_ref().map_or(0, |m| m.rows_out()),
            watermark_ms: metrics.as_ref().and_then(|m| m.watermark()),
            last_error: s.last_error.clone(),
            operators,
            network: metrics.as_ref().and_then(|m| m.network()),
        })
    }

    fn checkpoints(&self) -> weir_rpc::Result<Checkpoints> {
        let stats = self.lock().stats.clone();
        let Some(stats) = stats else {
            return Ok(Checkpoints::default());
        };
        let stats = stats.lock().map(|s| s.clone()).unwrap_or_default();
        let history: Vec<Checkpoint> = stats.history.iter().rev().map(checkpoint).collect();
        let completed = history
            .iter()
            .find(|c| c.status == CheckpointStatus::Completed)
            .cloned();
        // The final checkpoint at the end of input is counted but has no record.
        let latest = match (completed, stats.last_id) {
            (Some(c), Some(id)) if c.id >= id => Some(c),
            (_, Some(id)) => Some(Checkpoint {
                id,
                kind: CheckpointKind::Checkpoint,
                status: CheckpointStatus::Completed,
                trigger_time_ms: None,
                duration_ms: stats.last_duration.map(|d| d.as_millis() as u64),
                size_bytes: stats.last_duration.map(|_| stats.last_size),
                alignment_ms: None,
                path: stats.last_location.clone(),
                failure: None,
            }),
            (completed, None) => completed,
        };
        Ok(Checkpoints {
            number_of_completed_checkpoints: stats.completed,
            number_of_failed_checkpoints: stats.failed,
            number_of_in_progress_checkpoints: 0,
            latest_completed: latest,
            history,
        })
    }

    fn trigger_savepoint(&self, request: SavepointRequest) -> weir_rpc::Result<String> {
        let mut s = self.lock();
        // A repeat (the caller lost the answer, or restarted) starts nothing, even once the
        // first trigger stopped the job.
        if let Some(id) = request.request_id.as_ref().and_then(|r| s.requests.get(r)) {
            tracing::info!(trigger_id = %id, request_id = ?request.request_id, "savepoint trigger repeated");
            return Ok(id.clone());
        }
        if s.state.is_terminal() {
            return Err(weir_rpc::Error::Rejected(format!("the job is {}", s.state)));
        }
        let Some(current) = &s.current else {
            return Err(weir_rpc::Error::Unavailable(format!(
                "the job is {}; try again once it runs",
                s.state
            )));
        };
        let Some(commands) = &current.commands else {
            return Err(weir_rpc::Error::Rejected(
                "the job takes no snapshots: start it with --savepoint-dir (or \
                 --checkpoint-dir) to take savepoints"
                    .into(),
            ));
        };
        let (reply, rx) = crossbeam_channel::bounded(1);
        let command = Command::Savepoint {
            dir: request.dir,
            stop: request.stop,
            reply,
        };
        commands.send(command).map_err(|_| {
            weir_rpc::Error::Unavailable("the checkpoint coordinator has stopped".into())
        })?;
        let trigger_id = format!("{:x}-{}", self.start_time_ms, s.triggers.len() + 1);
        tracing::info!(
            trigger_id,
            stop = request.stop,
            request_id = ?request.request_id,
            "savepoint triggered through the control API"
        );
        if let Some(request_id) = request.request_id {
            s.requests.insert(request_id, trigger_id.clone());
        }
        s.triggers.insert(
            trigger_id.clone(),
            Triggered {
                stop: request.stop,
                reply: Some(rx),
                status: SavepointStatus::InProgress,
                path: None,
                failure: None,
                delivered: false,
            },
        );
        Ok(trigger_id)
    }

    fn savepoint(&self, trigger_id: &str) -> weir_rpc::Result<Savepoint> {
        let mut s = self.lock();
        let Some(t) = s.triggers.get_mut(trigger_id) else {
            return Err(weir_rpc::Error::NotFound(format!(
                "no savepoint was triggered with id '{trigger_id}'"
            )));
        };
        t.poll();
        t.delivered |= t.status != SavepointStatus::InProgress;
        Ok(Savepoint {
            trigger_id: trigger_id.to_string(),
            status: t.status,
            stop: t.stop,
            path: t.path.clone(),
            failure: t.failure.clone(),
        })
    }

    fn cancel(&self) -> weir_rpc::Result<Job> {
        {
            let mut s = self.lock();
            if s.state.is_terminal() {
                return Err(weir_rpc::Error::Rejected(format!(
                    "the job is already {}",
                    s.state
                )));
            }
            s.cancel_requested = true;
            s.state = JobState::Cancelling;
            if let Some(current) = &s.current {
                current.cancel.store(true, Ordering::SeqCst);
            }
        }
        tracing::info!("job cancelled through the control API");
        weir_rpc::JobControl::job(self)
    }

    fn check_compatibility(
        &self,
        sql: &str,
        settings: &BTreeMap<String, String>,
    ) -> weir_rpc::Result<Compatibility> {
        let stats = self.lock().stats.clone();
        let latest =
            stats.and_then(|stats| stats.lock().ok().and_then(|s| latest_completed_path(&s)));
        let running = RunningJob {
            job_id: &self.job_id,
            max_parallelism: self.max_parallelism,
            nodes: &self.running,
            snapshot: latest.or_else(|| self.restored_from.clone()),
        };
        upgrade::check_compatibility(&running, sql, settings)
    }

    fn dispose_savepoint(&self, path: &str) -> weir_rpc::Result<()> {
        upgrade::dispose_savepoint(path)
    }
}

/// Where the latest completed checkpoint or savepoint is.
fn latest_completed_path(stats: &CheckpointStats) -> Option<String> {
    let recorded = stats
        .history
        .iter()
        .rev()
        .find(|r| r.status == RecordStatus::Completed);
    match (recorded, stats.last_id) {
        (Some(r), Some(id)) if r.id >= id => Some(r.path.clone()),
        (_, Some(_)) => stats.last_location.clone(),
        (r, None) => r.map(|r| r.path.clone()),
    }
}

#[cfg(test)]
mod tests;
mod upgrade;
