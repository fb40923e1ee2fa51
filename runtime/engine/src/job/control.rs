//! The engine's side of the control API (`weir_rpc::JobControl`): a [`LiveJob`] follows one
//! job through its attempts (the run loop tells it when an attempt starts, restarts and
//! ends) and answers status, metrics, checkpoint figures, savepoint triggers and cancel.
//!
//! Savepoints go through the current attempt's checkpoint coordinator
//! (`Command::Savepoint`); its reply arrives later on a channel kept under the trigger id,
//! read when a client asks (`GetSavepoint`). An attempt that restarts gets a new command
//! channel and new metrics; the [`LiveJob`] always uses the current ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use weir_rpc::{
    Checkpoint, CheckpointKind, CheckpointStatus, Checkpoints, Job, JobState, Operator, Savepoint,
    SavepointRequest, SavepointStatus,
};

use super::{JobSummary, PlannedJob};
use crate::checkpoint::coordinator::{CheckpointStats, Command};
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
}

/// One job as the control API sees it.
pub struct LiveJob {
    job_id: String,
    parallelism: usize,
    max_parallelism: usize,
    nodes: Vec<NodeInfo>,
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
        Arc::new(LiveJob {
            job_id: job.settings.checkpoint.job_id.clone(),
            parallelism: job.settings.parallelism,
            max_parallelism: graph.max_parallelism,
            nodes,
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
        })
    }

    fn checkpoints(&self) -> weir_rpc::Result<Checkpoints> {
        let stats = self.lock().stats.clone();
        let Some(stats) = stats else {
            return Ok(Checkpoints::default());
        };
        let stats = stats.lock().map(|s| s.clone()).unwrap_or_default();
        let latest = stats.last_id.map(|id| Checkpoint {
            id,
            kind: match &stats.last_location {
                Some(path) if path.contains("/savepoint-") => CheckpointKind::Savepoint,
                _ => CheckpointKind::Checkpoint,
            },
            status: CheckpointStatus::Completed,
            trigger_time_ms: None,
            duration_ms: stats.last_duration.map(|d| d.as_millis() as u64),
            size_bytes: stats.last_duration.map(|_| stats.last_size),
            alignment_ms: None,
            path: stats.last_location.clone(),
            failure: None,
        });
        Ok(Checkpoints {
            number_of_completed_checkpoints: stats.completed,
            number_of_failed_checkpoints: stats.failed,
            number_of_in_progress_checkpoints: 0,
            history: latest.iter().cloned().collect(),
            latest_completed: latest,
        })
    }

    fn trigger_savepoint(&self, request: SavepointRequest) -> weir_rpc::Result<String> {
        let mut s = self.lock();
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
            "savepoint triggered through the control API"
        );
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
}

#[cfg(test)]
mod tests {
    use weir_rpc::JobControl;

    use super::*;

    fn live() -> (
        Arc<LiveJob>,
        crossbeam_channel::Receiver<Command>,
        Arc<AtomicBool>,
    ) {
        let sql = "CREATE TABLE src (x BIGINT) WITH ('connector' = 'datagen');
            CREATE TABLE out (x BIGINT) WITH ('connector' = 'blackhole');
            INSERT INTO out SELECT x + 1 FROM src;";
        let job = crate::job::plan_sql(sql, &[]).unwrap();
        let live = LiveJob::new(&job);
        let (tx, rx) = crossbeam_channel::unbounded();
        let cancel = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(CheckpointStats::default()));
        let metrics = Arc::new(JobMetrics::new(1));
        live.attempt_started(1, metrics, cancel.clone(), Some(tx), &stats);
        (live, rx, cancel)
    }

    #[test]
    fn a_savepoint_reply_arriving_later_completes_its_trigger_and_the_job_finishes() {
        let (live, commands, _) = live();
        assert_eq!(live.job().unwrap().state, JobState::Running);
        assert!(live.job().unwrap().operators.len() >= 2);
        let request = SavepointRequest {
            dir: Some("file:///sp".into()),
            stop: true,
        };
        let id = live.trigger_savepoint(request).unwrap();
        assert_eq!(
            live.savepoint(&id).unwrap().status,
            SavepointStatus::InProgress
        );
        let Ok(Command::Savepoint { dir, stop, reply }) = commands.try_recv() else {
            panic!("no savepoint command");
        };
        assert_eq!((dir.as_deref(), stop), (Some("file:///sp"), true));
        reply.send(Ok("file:///sp/savepoint-1".into())).unwrap();
        let done = live.savepoint(&id).unwrap();
        assert_eq!(done.status, SavepointStatus::Completed);
        assert_eq!(done.path.as_deref(), Some("file:///sp/savepoint-1"));
        live.wait_for_savepoint_readers(Duration::from_secs(5));
        let summary = JobSummary {
            rows_in: 0,
            rows_out: 0,
            late_rows_dropped: 0,
            elapsed: Duration::ZERO,
            cancelled: true,
            savepoint: None,
            last_checkpoint: None,
            checkpoints_completed: 0,
            checkpoints_failed: 0,
            restarts: 0,
        };
        live.finished(&Ok(summary));
        assert_eq!(live.job().unwrap().state, JobState::Finished);
        assert!(matches!(
            live.savepoint("other"),
            Err(weir_rpc::Error::NotFound(_))
        ));
    }

    #[test]
    fn cancel_stops_the_attempt_and_later_ones_and_a_lost_reply_fails_the_savepoint() {
        let (live, commands, cancel) = live();
        let id = live.trigger_savepoint(SavepointRequest::default()).unwrap();
        drop(commands);
        assert_eq!(live.cancel().unwrap().state, JobState::Cancelling);
        assert!(cancel.load(Ordering::SeqCst) && live.cancel_requested());
        let failed = live.savepoint(&id).unwrap();
        assert_eq!(failed.status, SavepointStatus::Failed);
        assert!(failed.failure.unwrap().contains("stopped"));
        live.attempt_ended();
        let next = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(CheckpointStats::default()));
        live.attempt_started(2, Arc::new(JobMetrics::new(1)), next.clone(), None, &stats);
        assert!(
            next.load(Ordering::SeqCst),
            "a new attempt after cancel is cancelled at once"
        );
        let refused = live
            .trigger_savepoint(SavepointRequest::default())
            .unwrap_err();
        assert!(refused.to_string().contains("--savepoint-dir"), "{refused}");
    }
}
