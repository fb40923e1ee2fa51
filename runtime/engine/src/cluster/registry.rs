//! The coordinator's view of its workers, and the `Coordinator` gRPC service that keeps it.
//!
//! A worker registers (slots, data address), then holds a session stream: heartbeats and
//! task events come in, commands go out. A worker whose stream breaks, or whose heartbeats
//! stop for the heartbeat timeout, is *lost*: it leaves the registry, and an attempt that had
//! tasks on it fails (the run loop then restarts the job from the latest checkpoint on the
//! workers present). A lost worker that is in fact alive sees its stream close and registers
//! again as a new worker.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};
use weir_rpc::cluster::coordinator_server::Coordinator;
use weir_rpc::cluster::{
    CoordinatorMessage, DataPlaneMetrics, GroupMinimum, GroupWatermarks, Heartbeat,
    OperatorMetrics, RegisterRequest, RegisterResponse, WorkerMessage, coordinator_message,
    worker_message,
};

use crate::checkpoint::Event;
use crate::dataflow::alignment;

/// What a worker reports of its tasks with each heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerMetrics {
    pub rows_in: u64,
    pub rows_out: u64,
    pub late_rows: u64,
    /// Per sink subtask (job-wide index) on this worker: its watermark.
    pub sink_watermarks: Vec<(usize, i64)>,
}

/// A worker's latest heartbeat for one attempt: its totals, its operators' figures over the
/// subtasks it runs, and its data plane's flow control.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub totals: WorkerMetrics,
    pub operators: Vec<OperatorMetrics>,
    pub data_plane: Option<DataPlaneMetrics>,
}

/// How an attempt ended on one worker.
#[derive(Debug, Clone)]
pub struct Ended {
    pub failed: bool,
    pub error: String,
}

struct Worker {
    name: String,
    slots: usize,
    data_address: String,
    session: Option<mpsc::UnboundedSender<CoordinatorMessage>>,
    last_seen: Instant,
    metrics: Option<(u64, Report)>,
    /// The data-plane figures last logged: attempt, peak queued frames, credit waits seen.
    logged: (u64, u32, bool),
    ended: HashMap<u64, Ended>,
    /// Its aligned source subtasks' watermarks (group, watermark) last reported, and the
    /// attempt they are of.
    aligned: Option<(u64, Vec<(String, i64)>)>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    workers: BTreeMap<String, Worker>,
    /// Workers that left, and why.
    lost: HashMap<String, String>,
    /// Where task events of the current attempt go (the checkpoint coordinator).
    events: Option<(u64, Sender<Event>)>,
}

pub struct Registry {
    state: Mutex<State>,
    changed: Condvar,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
}

impl Registry {
    pub fn new(heartbeat_interval: Duration, heartbeat_timeout: Duration) -> Arc<Registry> {
        Arc::new(Registry {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            heartbeat_interval,
            heartbeat_timeout,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until something changes (a worker comes, goes, or ends an attempt) or `timeout`.
    pub fn wait_change(&self, timeout: Duration) {
        let state = self.lock();
        let _ = self.changed.wait_timeout(state, timeout);
    }

    /// Workers with an open session and their slots, in registration order.
    pub fn available(&self) -> Vec<(String, usize)> {
        self.lock()
            .workers
            .iter()
            .filter(|(_, w)| w.session.is_some())
            .map(|(id, w)| (id.clone(), w.slots))
            .collect()
    }

    pub fn data_address(&self, worker: &str) -> Option<String> {
        self.lock()
            .workers
            .get(worker)
            .map(|w| w.data_address.clone())
    }

    /// Send a command to a worker; `false` if it is gone.
    pub fn send(&self, worker: &str, message: CoordinatorMessage) -> bool {
        self.lock()
            .workers
            .get(worker)
            .and_then(|w| w.session.as_ref())
            .is_some_and(|s| s.send(message).is_ok())
    }

    /// Task events of `attempt` go to `events` from now on.
    pub fn route_events(&self, attempt: u64, events: Option<Sender<Event>>) {
        self.lock().events = events.map(|e| (attempt, e));
    }

    /// Where `worker` stands in `attempt`: `None` while it runs, else how it ended (a lost
    /// worker ended with a failure).
    pub fn ended(&self, worker: &str, attempt: u64) -> Option<Ended> {
        let state = self.lock();
        if let Some(reason) = state.lost.get(worker) {
            return Some(Ended {
                failed: true,
                error: format!("worker {worker} was lost: {reason}"),
            });
        }
        state
            .workers
            .get(worker)
            .and_then(|w| w.ended.get(&attempt).cloned())
    }

    /// The latest reports of `attempt` from each of `workers`.
    pub fn metrics(&self, workers: &[String], attempt: u64) -> Vec<Report> {
        let state = self.lock();
        workers
            .iter()
            .filter_map(|id| state.workers.get(id))
            .filter_map(|w| match &w.metrics {
                Some((a, m)) if *a == attempt => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn lose(&self, worker: &str, reason: String) {
        let mut state = self.lock();
        if state.workers.remove(worker).is_some() {
            tracing::warn!(worker, %reason, "worker lost");
            state.lost.insert(worker.to_string(), reason);
            self.changed.notify_all();
        }
    }

    /// Drop workers whose heartbeats stopped; run every heartbeat interval.
    pub fn expire(&self) {
        let now = Instant::now();
        let stale: Vec<String> = self
            .lock()
            .workers
            .iter()
            .filter(|(_, w)| {
                w.session.is_some() && now.duration_since(w.last_seen) > self.heartbeat_timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.lose(
                &id,
                format!("no heartbeat for {:?}", self.heartbeat_timeout),
            );
        }
    }

    fn on_message(&self, worker: &str, message: WorkerMessage) {
        let mut state = self.lock();
        let events = state.events.clone();
        let Some(entry) = state.workers.get_mut(worker) else {
            return;
        };
        entry.last_seen = Instant::now();
        match message.kind {
            Some(worker_message::Kind::Heartbeat(h)) => entry.heartbeat(worker, h),
            Some(worker_message::Kind::TaskEvent(e)) => match events {
                Some((attempt, events)) if attempt == e.attempt => {
                    match serde_json::from_slice::<Event>(&e.event_json) {
                        Ok(event) => {
                            let _ = events.send(event);
                        }
                        Err(err) => tracing::warn!(worker, error = %err, "unreadable task event"),
                    }
                }
                _ => tracing::debug!(worker, attempt = e.attempt, "event of an old attempt"),
            },
            Some(worker_message::Kind::AttemptEnded(a)) => {
                entry.ended.insert(
                    a.attempt,
                    Ended {
                        failed: a.failed,
                        error: a.error,
                    },
                );
                self.changed.notify_all();
            }
            Some(worker_message::Kind::Watermarks(report)) => {
                let sources = report.sources.into_iter();
                entry.aligned = Some((
                    report.attempt,
                    sources.map(|s| (s.group, s.watermark)).collect(),
                ));
                // Every worker with aligned sources in the attempt hears of the change at
                // once, not only at its own next report: the minima it holds are half as old.
                for (id, w) in &state.workers {
                    if let (Some((attempt, _)), Some(session)) = (&w.aligned, &w.session)
                        && *attempt == report.attempt
                    {
                        let _ = session.send(group_watermarks(&state.workers, id, *attempt));
                    }
                }
            }
            Some(worker_message::Kind::Hello(_)) | None => {}
        }
    }
}

impl Worker {
    fn heartbeat(&mut self, id: &str, h: Heartbeat) {
        if h.attempt == 0 {
            return;
        }
        let Ok(totals) = serde_json::from_slice::<WorkerMetrics>(&h.metrics_json) else {
            return;
        };
        if let Some(d) = &h.data_plane {
            self.log_data_plane(id, h.attempt, d);
        }
        let report = Report {
            totals,
            operators: h.operators,
            data_plane: h.data_plane,
        };
        self.metrics = Some((h.attempt, report));
    }

    /// Log the worker's data plane when the most frames one channel held grows, or when its
    /// senders first wait for credits: a few lines per attempt, enough to see that flow
    /// control holds what a slow task buffers to the credits.
    fn log_data_plane(&mut self, id: &str, attempt: u64, d: &DataPlaneMetrics) {
        let (peak, waited) = (d.peak_queued_frames_per_channel, d.credit_waits > 0);
        let (last_attempt, last_peak, last_waited) = self.logged;
        let same = last_attempt == attempt;
        if same && peak <= last_peak && waited <= last_waited {
            return;
        }
        self.logged = match same {
            true => (attempt, peak.max(last_peak), waited || last_waited),
            false => (attempt, peak, waited),
        };
        if d.peak_queued_frames_per_channel > d.credits {
            tracing::warn!(
                worker = id,
                attempt,
                peak_queued_frames_per_channel = d.peak_queued_frames_per_channel,
                credits = d.credits,
                "data plane holds more frames on a channel than its credits allow"
            );
        } else {
            tracing::info!(
                worker = id,
                attempt,
                peak_queued_frames_per_channel = d.peak_queued_frames_per_channel,
                credits = d.credits,
                queued_frames = d.queued_frames,
                frames_received = d.frames_received,
                frames_sent = d.frames_sent,
                credit_waits = d.credit_waits,
                "data plane"
            );
        }
    }
}

/// For `worker`: each alignment group's minimum over the other workers' subtasks in
/// `attempt`, and how many they are.
fn group_watermarks(
    workers: &BTreeMap<String, Worker>,
    worker: &str,
    attempt: u64,
) -> CoordinatorMessage {
    let minima = alignment::group_minima(
        workers
            .iter()
            .filter(|(id, _)| id.as_str() != worker)
            .filter_map(|(_, w)| w.aligned.as_ref())
            .filter(|(a, _)| *a == attempt)
            .flat_map(|(_, sources)| sources.iter().map(|(g, w)| (g.as_str(), *w))),
    );
    let groups = minima
        .into_iter()
        .map(|(group, (watermark, subtasks))| {
            let subtasks = subtasks as u32;
            (
                group,
                GroupMinimum {
                    watermark,
                    subtasks,
                },
            )
        })
        .collect();
    CoordinatorMessage {
        kind: Some(coordinator_message::Kind::GroupWatermarks(
            GroupWatermarks { attempt, groups },
        )),
    }
}

/// The `Coordinator` gRPC service over a [`Registry`].
pub struct CoordinatorService {
    pub registry: Arc<Registry>,
}

type CommandStream =
    Pin<Box<dyn Stream<Item = std::result::Result<CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Coordinator for CoordinatorService {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> std::result::Result<Response<RegisterResponse>, Status> {
        let request = request.into_inner();
        if request.slots == 0 {
            return Err(Status::invalid_argument("a worker needs at least one slot"));
        }
        if request.data_address.is_empty() {
            return Err(Status::invalid_argument(
                "a worker must say where its data port is",
            ));
        }
        let registry = &self.registry;
        let mut state = registry.lock();
        state.next_id += 1;
        let id = format!("worker-{}", state.next_id);
        tracing::info!(worker = %id, name = %request.name, slots = request.slots,
            data = %request.data_address, "worker registered");
        state.workers.insert(
            id.clone(),
            Worker {
                name: request.name,
                slots: request.slots as usize,
                data_address: request.data_address,
                session: None,
                last_seen: Instant::now(),
                metrics: None,
                logged: (0, 0, false),
                ended: HashMap::new(),
                aligned: None,
            },
        );
        Ok(Response::new(RegisterResponse {
            worker_id: id,
            heartbeat_interval_ms: registry.heartbeat_interval.as_millis() as u64,
        }))
    }

    type SessionStream = CommandStream;

    async fn session(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> std::result::Result<Response<CommandStream>, Status> {
        let mut incoming = request.into_inner();
        let hello = match incoming.message().await? {
            Some(WorkerMessage {
                kind: Some(worker_message::Kind::Hello(hello)),
            }) => hello,
            _ => return Err(Status::invalid_argument("a session starts with hello")),
        };
        let worker = hello.worker_id;
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut state = self.registry.lock();
            let Some(entry) = state.workers.get_mut(&worker) else {
                return Err(Status::not_found(format!(
                    "{worker} is not registered (lost, or registered with another coordinator)"
                )));
            };
            entry.session = Some(tx);
            entry.last_seen = Instant::now();
            tracing::info!(%worker, name = %entry.name, "worker session open");
            self.registry.changed.notify_all();
        }
        let registry = self.registry.clone();
        tokio::spawn(async move {
            let reason = loop {
                match incoming.message().await {
                    Ok(Some(message)) => registry.on_message(&worker, message),
                    Ok(None) => break "its session ended".to_string(),
                    Err(status) => break format!("its session broke: {}", status.message()),
                }
            };
            registry.lose(&worker, reason);
        });
        let commands =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|m| (Ok(m), rx)) },
            );
        Ok(Response::new(Box::pin(commands)))
    }
}
