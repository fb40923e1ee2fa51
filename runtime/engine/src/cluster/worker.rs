//! `weir worker`: offers slots to a coordinator and runs the tasks it deploys.
//!
//! The worker serves its data plane, registers, and holds a session with the coordinator.
//! A deployment plans the job's SQL here (refusing a plan whose digest differs from the
//! coordinator's), builds this worker's tasks with the network to the other workers, and
//! starts upload threads whose acknowledgements go back over the session. When the session
//! breaks (the coordinator died or declared this worker lost), the worker cancels what it
//! runs and registers again, with the same coordinator address — so a restarted coordinator
//! finds its workers again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tokio::sync::mpsc;
use tonic::transport::server::TcpIncoming;
use weir_checkpoint::metadata::CheckpointMetadata;
use weir_checkpoint::{CheckpointStorage, JobCheckpoints};
use weir_rpc::RequireToken;
use weir_rpc::cluster::coordinator_client::CoordinatorClient;
use weir_rpc::cluster::data_plane_server::DataPlaneServer;
use weir_rpc::cluster::{
    AttemptEnded, CoordinatorMessage, Deploy, Heartbeat, Hello, OperatorMetrics, RegisterRequest,
    SourceWatermark, SubtaskWatermark, TaskEvent, WatermarkReport, WorkerMessage,
    coordinator_message, worker_message,
};

use super::connect::Auth;
use super::data_plane::{AttemptNetwork, DataPlaneService, FlowStats, Inboxes, MAX_FRAME_BYTES};
use super::registry::WorkerMetrics;
use super::spec::{JobSpec, plan_digest};
use crate::checkpoint::restore::Restore;
use crate::checkpoint::upload::{Destination, UploadContext};
use crate::checkpoint::{Event, Trigger};
use crate::dataflow::alignment::WatermarkAlignment;
use crate::dataflow::message::{Barrier, BarrierKind};
use crate::dataflow::metrics::JobMetrics;
use crate::dataflow::remote::Placement;
use crate::error::{Error, Result};
use crate::job::launch::{Launch, Launcher, LocalLauncher};

/// The first wait before registering again, and the longest.
const REGISTER_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const REGISTER_BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct WorkerOptions {
    /// The coordinator's address (`http://host:port` or `host:port`).
    pub coordinator: String,
    pub slots: u32,
    /// Where the data plane listens (port 0: any free port).
    pub data_listen: SocketAddr,
    /// The host other workers reach this one on (default: the listen address's host).
    pub advertise_host: Option<String>,
    /// A name for the coordinator's logs.
    pub name: String,
    pub auth: Auth,
    /// Where RocksDB state lives (default: a temporary directory).
    pub state_dir: Option<PathBuf>,
}

/// The attempt this worker runs now.
struct Current {
    attempt: u64,
    triggers: Vec<Option<Sender<Trigger>>>,
    uploads: UploadContext,
    cancel: Arc<AtomicBool>,
    metrics: Arc<JobMetrics>,
    /// Job-wide index of each sink subtask that runs here.
    sinks: Vec<usize>,
    /// The data plane's counters in this attempt, and its credits per channel.
    flow: Arc<FlowStats>,
    credits: u32,
    /// The watermark alignment groups of the source tasks here.
    alignment: Option<Arc<WatermarkAlignment>>,
}

struct Worker {
    options: WorkerOptions,
    runtime: tokio::runtime::Handle,
    inboxes: Arc<Inboxes>,
    current: Mutex<Option<Current>>,
    /// The session's outgoing messages (replaced when the worker registers again).
    outgoing: Mutex<Option<mpsc::UnboundedSender<WorkerMessage>>>,
}

/// Run a worker until `stop` is set.
pub fn run(options: WorkerOptions, stop: Arc<AtomicBool>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("worker-net")
        .enable_all()
        .build()
        .map_err(|e| Error::Cluster(format!("cannot start the network runtime: {e}")))?;
    let inboxes = Arc::new(Inboxes::default());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.data_listen))
        .map_err(|e| Error::Cluster(format!("cannot listen on {}: {e}", options.data_listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Cluster(format!("data port: {e}")))?;
    let host = options
        .advertise_host
        .clone()
        .unwrap_or_else(|| bound.ip().to_string());
    let data_address = format!("{host}:{}", bound.port());
    let service = tonic::service::interceptor::InterceptedService::new(
        DataPlaneServer::new(DataPlaneService {
            inboxes: inboxes.clone(),
        })
        .max_decoding_message_size(MAX_FRAME_BYTES)
        .max_encoding_message_size(MAX_FRAME_BYTES),
        RequireToken::new(options.auth.token.clone()),
    );
    let mut server = options.auth.server()?;
    runtime.spawn(
        server
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    eprintln!("worker data plane listening on {data_address}");
    let worker = Arc::new(Worker {
        options,
        runtime: runtime.handle().clone(),
        inboxes,
        current: Mutex::new(None),
        outgoing: Mutex::new(None),
    });
    // Pods start together, so the coordinator is often not up yet: retry soon, then back
    // off (as Flink's task managers do, 100 ms doubling), and start over after a session.
    let mut backoff = REGISTER_BACKOFF_FIRST;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let session = runtime.block_on(worker.clone().session(&data_address, stop.clone()));
        worker.cancel_current();
        match session {
            Ok(()) => tracing::warn!("the coordinator closed the session; registering again"),
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "no session with the coordinator; retrying")
            }
        }
        if started.elapsed() > REGISTER_BACKOFF_MAX {
            backoff = REGISTER_BACKOFF_FIRST;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(REGISTER_BACKOFF_MAX);
    }
    worker.cancel_current();
    Ok(())
}

impl Worker {
    /// Register, then serve one session until it ends.
    async fn session(self: Arc<Self>, data_address: &str, stop: Arc<AtomicBool>) -> Result<()> {
        let coordinator = &self.options.coordinator;
        let interceptor = self.options.auth.interceptor()?;
        let mut client = CoordinatorClient::with_interceptor(
            self.options.auth.channel_to(coordinator)?,
            interceptor,
        )
        .max_decoding_message_size(MAX_FRAME_BYTES)
        .max_encoding_message_size(MAX_FRAME_BYTES);
        let registered = client
            .register(RegisterRequest {
                slots: self.options.slots,
                data_address: data_address.to_string(),
                name: self.options.name.clone(),
            })
            .await
            .map_err(|s| {
                Error::Cluster(format!("registering with {coordinator}: {}", s.message()))
            })?
            .into_inner();
        let id = registered.worker_id;
        tracing::info!(worker = %id, %coordinator, "registered");
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(message(worker_message::Kind::Hello(Hello {
            worker_id: id.clone(),
        })));
        if let Ok(mut outgoing) = self.outgoing.lock() {
            *outgoing = Some(tx.clone());
        }
        let outbound =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let mut commands = client
            .session(outbound)
            .await
            .map_err(|s| Error::Cluster(format!("session with {coordinator}: {}", s.message())))?
            .into_inner();
        let interval = Duration::from_millis(registered.heartbeat_interval_ms.max(50));
        let heartbeats = {
            let worker = self.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                loop {
                    ticker.tick().await;
                    if tx.send(worker.heartbeat()).is_err() {
                        break;
                    }
                }
            })
        };
        let result = loop {
            if stop.load(Ordering::SeqCst) {
                break Ok(());
            }
            let next = tokio::time::timeout(Duration::from_millis(200), commands.message()).await;
            match next {
                Err(_) => continue,
                Ok(Ok(Some(command))) => self.clone().handle(command),
                Ok(Ok(None)) => break Ok(()),
                Ok(Err(status)) => {
                    break Err(Error::Cluster(format!(
                        "session with {coordinator} broke: {}",
                        status.message()
                    )));
                }
            }
        };
        heartbeats.abort();
        if let Ok(mut outgoing) = self.outgoing.lock() {
            *outgoing = None;
        }
        result
    }

    fn send(&self, kind: worker_message::Kind) {
        self.send_message(message(kind));
    }

    fn send_message(&self, message: WorkerMessage) {
        if let Ok(outgoing) = self.outgoing.lock()
            && let Some(tx) = outgoing.as_ref()
        {
            let _ = tx.send(message);
        }
    }

    fn heartbeat(&self) -> WorkerMessage {
        let current = self.current.lock().ok();
        let Some(c) = current.as_ref().and_then(|c| c.as_ref()) else {
            return message(worker_message::Kind::Heartbeat(Heartbeat {
                attempt: 0,
                metrics_json: serde_json::to_vec(&WorkerMetrics::default())
                    .unwrap_or_default()
                    .into(),
                ..Default::default()
            }));
        };
        let totals = WorkerMetrics {
            rows_in: c.metrics.rows_in(),
            rows_out: c.metrics.rows_out(),
            late_rows: c.metrics.late_rows(),
            sink_watermarks: c
                .sinks
                .iter()
                .filter_map(|i| c.metrics.sink_watermark(*i).map(|w| (*i, w)))
                .collect(),
        };
        let operators = c
            .metrics
            .node_reports()
            .into_iter()
            .map(|n| OperatorMetrics {
                uid: n.uid,
                records_in: n.records_in,
                records_out: n.records_out,
                back_pressured_nanos: n.back_pressured_nanos,
                watermarks: n
                    .watermarks
                    .into_iter()
                    .map(|(subtask, watermark)| SubtaskWatermark {
                        subtask: subtask as u32,
                        watermark,
                    })
                    .collect(),
            })
            .collect();
        message(worker_message::Kind::Heartbeat(Heartbeat {
            attempt: c.attempt,
            metrics_json: serde_json::to_vec(&totals).unwrap_or_default().into(),
            operators,
            data_plane: Some(c.flow.snapshot(c.credits)),
        }))
    }

    fn handle(self: Arc<Self>, command: CoordinatorMessage) {
        let Some(kind) = command.kind else {
            return;
        };
        match kind {
            coordinator_message::Kind::Deploy(deploy) => {
                // Planning and restoring take a while: off the session's thread.
                let worker = self.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("attempt-{}", deploy.attempt))
                    .spawn(move || worker.run_attempt(deploy));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start the attempt thread");
                }
            }
            coordinator_message::Kind::Trigger(t) => {
                let current = self.current.lock().ok();
                if let Some(c) = current.as_ref().and_then(|c| c.as_ref())
                    && c.attempt == t.attempt
                    && let Some(Some(tx)) = c.triggers.get(t.task as usize)
                {
                    let kind = if t.savepoint {
                        BarrierKind::Savepoint
                    } else {
                        BarrierKind::Checkpoint
                    };
                    let _ = tx.send(Trigger {
                        barrier: Barrier {
                            id: t.checkpoint_id,
                            kind,
                        },
                        stop: t.stop,
                    });
                }
            }
            coordinator_message::Kind::Destination(d) => {
                let current = self.current.lock().ok();
                if let Some(c) = current.as_ref().and_then(|c| c.as_ref())
                    && c.attempt == d.attempt
                {
                    let destination = if d.root.is_empty() {
                        None
                    } else {
                        match CheckpointStorage::open(&d.root) {
                            Ok(root) => Some(Destination {
                                root,
                                prefix: d.prefix,
                                canonical: d.canonical,
                            }),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot open a checkpoint destination");
                                None
                            }
                        }
                    };
                    c.uploads.set_destination(d.checkpoint_id, destination);
                }
            }
            coordinator_message::Kind::CheckpointComplete(done) => {
                let current = self.current.lock().ok();
                if let Some(c) = current.as_ref().and_then(|c| c.as_ref())
                    && c.attempt == done.attempt
                    && let Ok(metadata) =
                        serde_json::from_slice::<CheckpointMetadata>(&done.metadata_json)
                {
                    c.uploads.confirm(&metadata);
                }
            }
            coordinator_message::Kind::GroupWatermarks(g) => {
                let current = self.current.lock().ok();
                if let Some(c) = current.as_ref().and_then(|c| c.as_ref())
                    && c.attempt == g.attempt
                    && let Some(alignment) = &c.alignment
                {
                    let minima = g
                        .groups
                        .into_iter()
                        .map(|(group, m)| (group, (m.watermark, m.subtasks as usize)))
                        .collect();
                    alignment.set_remote_minima(&minima);
                }
            }
            coordinator_message::Kind::Cancel(cancel) => {
                let current = self.current.lock().ok();
                if let Some(c) = current.as_ref().and_then(|c| c.as_ref())
                    && c.attempt == cancel.attempt
                {
                    c.cancel.store(true, Ordering::SeqCst);
                }
            }
        }
    }

    fn cancel_current(&self) {
        if let Ok(current) = self.current.lock()
            && let Some(c) = current.as_ref()
        {
            c.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// Run this worker's share of one attempt, reporting how it ended.
    fn run_attempt(self: Arc<Self>, deploy: Deploy) {
        let attempt = deploy.attempt;
        // A newer deployment replaces what runs; the old tasks see their cancel flag.
        self.cancel_current();
        let outcome = self.clone().execute(deploy);
        let (failed, error) = match &outcome {
            Ok(()) => (false, String::new()),
            Err(e) => (true, e.to_string()),
        };
        if failed {
            tracing::warn!(attempt, %error, "attempt failed here");
        }
        // The last figures go out before the end, on the same ordered stream: a heartbeat
        // only carries what was counted at its tick, and the job's summary and status must
        // count every row.
        let last = self.heartbeat();
        self.send_message(last);
        if let Ok(mut current) = self.current.lock()
            && current.as_ref().is_some_and(|c| c.attempt == attempt)
        {
            *current = None;
        }
        self.send(worker_message::Kind::AttemptEnded(AttemptEnded {
            attempt,
            failed,
            error,
        }));
    }

    fn execute(self: Arc<Self>, deploy: Deploy) -> Result<()> {
        let attempt = deploy.attempt;
        let spec = JobSpec::from_json(&deploy.job_json)?;
        let mut job = spec.plan()?;
        let digest = plan_digest(&job.graph);
        if digest != deploy.plan_digest {
            return Err(Error::Cluster(format!(
                "this worker plans the job differently from the coordinator (plan digest \
                 {digest}, coordinator {}): are both the same weir version?",
                deploy.plan_digest
            )));
        }
        let run_dir = format!("weir-worker-{}-{attempt}", std::process::id());
        let state_dir = match &self.options.state_dir {
            Some(dir) => dir.join(run_dir),
            None => std::env::temp_dir().join(run_dir),
        };
        job.settings.state_dir = Some(state_dir.clone());
        let result = self.execute_in(deploy, &job, &state_dir);
        let _ = std::fs::remove_dir_all(&state_dir);
        result
    }

    fn execute_in(
        &self,
        deploy: Deploy,
        job: &crate::job::PlannedJob,
        state_dir: &std::path::Path,
    ) -> Result<()> {
        let attempt = deploy.attempt;
        let settings = &job.settings;
        let checkpoints = match &settings.checkpoint.dir {
            Some(dir) => Some(JobCheckpoints::new(
                &CheckpointStorage::open(dir)?,
                &settings.checkpoint.job_id,
            )),
            None => None,
        };
        let restore = if deploy.restore.is_empty() {
            None
        } else {
            let restorable = weir_checkpoint::load(&deploy.restore)?;
            Some(Arc::new(Restore::new(
                restorable,
                &job.graph,
                settings.allow_non_restored_state,
                state_dir.join("restore"),
            )?))
        };
        let uploads = UploadContext {
            destinations: Default::default(),
            observer: None,
            final_destination: checkpoints.as_ref().map(|c| Destination {
                root: c.storage().clone(),
                prefix: "shared/".into(),
                canonical: false,
            }),
            confirmed: Default::default(),
            attempt,
            max_parallelism: job.graph.max_parallelism,
        };
        if let (Some(restore), Some(c)) = (&restore, &checkpoints) {
            restore.seed_confirmed(c.storage(), &uploads.confirmed);
        }
        let snapshots =
            settings.checkpoint.dir.is_some() || settings.checkpoint.savepoint_dir.is_some();
        let (events, forwarder) = match snapshots {
            true => {
                let (tx, handle) = self.forward_events(attempt)?;
                (Some(tx), Some(handle))
            }
            false => (None, None),
        };
        let local_tasks: Vec<u32> = deploy.tasks.clone();
        let mut local = vec![false; deploy.task_workers.len()];
        for t in &local_tasks {
            if let Some(slot) = local.get_mut(*t as usize) {
                *slot = true;
            }
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (receivers, flow) = self.inboxes.open(attempt, &local_tasks);
        let credits = deploy.credits.max(1);
        let network = AttemptNetwork::new(
            attempt,
            deploy.task_workers.clone(),
            deploy.data_addresses.clone(),
            credits,
            self.runtime.clone(),
            self.options.auth.clone(),
            cancel.clone(),
            (receivers, flow.clone()),
        );
        let running = LocalLauncher.launch(Launch {
            job,
            attempt,
            restore,
            state_dir: state_dir.to_path_buf(),
            uploads: uploads.clone(),
            events,
            placement: Some(Placement {
                local,
                network: Arc::new(network),
            }),
        })?;
        // The executor's own cancel flag stops the tasks; ours stops senders waiting for
        // credits. Cancellation from the coordinator sets both.
        let task_cancel = running.cancel_flag();
        let alignment = running.alignment();
        if let Ok(mut current) = self.current.lock() {
            *current = Some(Current {
                attempt,
                triggers: running.triggers(),
                uploads,
                cancel: cancel.clone(),
                metrics: running.metrics(),
                sinks: sink_indices(job, &deploy.tasks),
                flow,
                credits,
                alignment: alignment.clone(),
            });
        }
        tracing::info!(attempt, tasks = deploy.tasks.len(), "tasks running");
        // Aligned sources here: their watermarks go to the coordinator every update interval.
        let update_interval = alignment.as_ref().and_then(|a| a.update_interval());
        let report_watermarks = || {
            if let Some(alignment) = &alignment {
                let report = watermark_report(attempt, alignment);
                self.send(worker_message::Kind::Watermarks(report));
            }
        };
        let mut next_report = Instant::now();
        while !running.is_finished() {
            if cancel.load(Ordering::SeqCst) {
                task_cancel.store(true, Ordering::SeqCst);
            }
            if task_cancel.load(Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            }
            let mut pause = Duration::from_millis(20);
            if let Some(interval) = update_interval {
                if Instant::now() >= next_report {
                    report_watermarks();
                    next_report = Instant::now() + interval;
                }
                pause = pause.min(next_report.saturating_duration_since(Instant::now()));
            }
            std::thread::sleep(pause);
        }
        // The sources here ended: the others must not wait on their last report.
        if update_interval.is_some() {
            report_watermarks();
        }
        let result = running.wait();
        // The upload threads are done; their last acknowledgements must reach the
        // coordinator before this worker says the attempt ended.
        if let Some(forwarder) = forwarder {
            let _ = forwarder.join();
        }
        result
    }

    /// A channel for the upload threads' acknowledgements, forwarded over the session.
    fn forward_events(&self, attempt: u64) -> Result<(Sender<Event>, std::thread::JoinHandle<()>)> {
        let (tx, rx) = crossbeam_channel::unbounded::<Event>();
        let outgoing = self.outgoing.lock().ok().and_then(|o| o.clone());
        let handle = std::thread::Builder::new()
            .name(format!("events-{attempt}"))
            .spawn(move || {
                for event in rx {
                    let Ok(json) = serde_json::to_vec(&event) else {
                        continue;
                    };
                    if let Some(out) = &outgoing {
                        let _ = out.send(message(worker_message::Kind::TaskEvent(TaskEvent {
                            attempt,
                            event_json: json.into(),
                        })));
                    }
                }
            })
            .map_err(|e| Error::Cluster(format!("cannot start a thread: {e}")))?;
        Ok((tx, handle))
    }
}

/// The watermarks of the aligned source subtasks here, for the coordinator.
fn watermark_report(attempt: u64, alignment: &WatermarkAlignment) -> WatermarkReport {
    WatermarkReport {
        attempt,
        sources: alignment
            .local_watermarks()
            .into_iter()
            .map(|(group, source, watermark)| SourceWatermark {
                group,
                uid: source.uid,
                subtask: source.subtask as u32,
                watermark,
            })
            .collect(),
    }
}

fn message(kind: worker_message::Kind) -> WorkerMessage {
    WorkerMessage { kind: Some(kind) }
}

/// Job-wide metric indices of the sink subtasks among `tasks` (global task indices).
fn sink_indices(job: &crate::job::PlannedJob, tasks: &[u32]) -> Vec<usize> {
    use crate::dataflow::graph::NodeKind;
    let graph = &job.graph;
    let mut offsets = HashMap::new();
    let mut offset = 0;
    for node in &graph.nodes {
        if matches!(node.kind, NodeKind::Sink { .. }) {
            offsets.insert(node.id, offset);
            offset += node.parallelism;
        }
    }
    let mut out = Vec::new();
    let mut index = 0usize;
    for chain in graph.chains() {
        let tail = *chain.last().unwrap_or(&chain[0]);
        let parallelism = graph.nodes[chain[0]].parallelism;
        for subtask in 0..parallelism {
            if tasks.contains(&(index as u32))
                && let Some(base) = offsets.get(&tail)
            {
                out.push(base + subtask);
            }
            index += 1;
        }
    }
    out
}
