//! Running an attempt on the workers: the [`Launcher`] of `weir coordinator`.
//!
//! `launch` waits until the registered workers offer enough slots, places the tasks, sends
//! each worker its deployment, and returns [`RemoteTasks`], through which the run loop and
//! the checkpoint coordinator reach the tasks: barrier triggers go to the worker of each
//! source task, acknowledgements come back through the registry, and a failed or lost worker
//! fails the attempt (the others are cancelled), so the run loop restarts the job from its
//! latest checkpoint.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use weir_checkpoint::metadata::CheckpointMetadata;
use weir_rpc::cluster::{
    CancelAttempt, CheckpointComplete, CoordinatorMessage, Deploy, SnapshotDestination,
    TriggerBarrier, coordinator_message,
};
use weir_rpc::model::Network;

use super::data_plane::CREDITS;
use super::registry::{Registry, Report};
use super::spec::{JobSpec, place, plan_digest, slots_needed, tasks};
use crate::checkpoint::Trigger;
use crate::checkpoint::upload::{Destination, UploadObserver};
use crate::dataflow::metrics::{JobMetrics, NodeReport};
use crate::error::{Error, Result};
use crate::job::launch::{Launch, Launcher, RunningTasks};

/// How long cancelled workers get to report their tasks ended before the attempt is given
/// up on anyway (a hung worker must not block the restart).
const CANCEL_GRACE: Duration = Duration::from_secs(30);

pub struct RemoteLauncher {
    pub registry: Arc<Registry>,
    pub spec: JobSpec,
    /// Set on Ctrl-C / SIGTERM: stop waiting for slots.
    pub stop: Arc<AtomicBool>,
    /// The workers of the current attempt, for checkpoint notifications.
    current: Arc<Mutex<(u64, Vec<String>)>>,
    /// Time launches spent waiting for slots, summed.
    waited: Mutex<Duration>,
}

impl RemoteLauncher {
    pub fn new(registry: Arc<Registry>, spec: JobSpec, stop: Arc<AtomicBool>) -> Self {
        RemoteLauncher {
            registry,
            spec,
            stop,
            current: Arc::new(Mutex::new((0, Vec::new()))),
            waited: Mutex::new(Duration::ZERO),
        }
    }

    /// Wait until the registered workers can host the job; the task placement.
    fn wait_for_slots(&self, launch: &Launch<'_>) -> Result<Vec<String>> {
        let needed = slots_needed(&launch.job.graph);
        let mut last_report = None::<Instant>;
        loop {
            let workers = self.registry.available();
            if let Some(placement) = place(&launch.job.graph, &workers) {
                return Ok(placement);
            }
            if self.stop.load(Ordering::SeqCst) {
                return Err(Error::Cluster(
                    "stopped while waiting for workers to offer slots".into(),
                ));
            }
            if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                let have: usize = workers.iter().map(|(_, s)| s).sum();
                tracing::info!(
                    needed,
                    have,
                    workers = workers.len(),
                    "waiting for workers to offer enough slots"
                );
                last_report = Some(Instant::now());
            }
            self.registry.wait_change(Duration::from_millis(500));
        }
    }
}

impl Launcher for RemoteLauncher {
    fn launch(&self, launch: Launch<'_>) -> Result<Box<dyn RunningTasks>> {
        let waiting = Instant::now();
        let placement = self.wait_for_slots(&launch);
        if let Ok(mut waited) = self.waited.lock() {
            *waited += waiting.elapsed();
        }
        let placement = placement?;
        let attempt = launch.attempt;
        let workers: Vec<String> = placement
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut data_addresses = HashMap::new();
        for w in &workers {
            let address = self
                .registry
                .data_address(w)
                .ok_or_else(|| Error::Cluster(format!("worker {w} left before deployment")))?;
            data_addresses.insert(w.clone(), address);
        }
        self.registry.route_events(attempt, launch.events.clone());
        if let Ok(mut current) = self.current.lock() {
            *current = (attempt, workers.clone());
        }
        let job_json = self.spec.to_json()?;
        let digest = plan_digest(&launch.job.graph);
        let restore = launch
            .restore
            .as_ref()
            .map(|r| r.location.clone())
            .unwrap_or_default();
        for w in &workers {
            let deploy = Deploy {
                attempt,
                job_json: job_json.clone().into(),
                tasks: (0..placement.len())
                    .filter(|t| &placement[*t] == w)
                    .map(|t| t as u32)
                    .collect(),
                task_workers: placement.clone(),
                data_addresses: data_addresses.clone(),
                restore: restore.clone(),
                credits: CREDITS,
                plan_digest: digest.clone(),
            };
            if !self
                .registry
                .send(w, command(coordinator_message::Kind::Deploy(deploy)))
            {
                return Err(Error::Cluster(format!("worker {w} left before deployment")));
            }
        }
        tracing::info!(attempt, workers = ?workers, tasks = placement.len(), "deployed");

        // A thread per source task forwards the checkpoint coordinator's triggers.
        let mut triggers = Vec::new();
        for (index, task) in tasks(&launch.job.graph).iter().enumerate() {
            if !task.is_source {
                triggers.push(None);
                continue;
            }
            let (tx, rx) = crossbeam_channel::unbounded::<Trigger>();
            let registry = self.registry.clone();
            let worker = placement[index].clone();
            std::thread::Builder::new()
                .name(format!("trigger-{index}"))
                .spawn(move || {
                    for t in rx {
                        let message = TriggerBarrier {
                            attempt,
                            task: index as u32,
                            checkpoint_id: t.barrier.id,
                            savepoint: t.barrier.is_savepoint(),
                            stop: t.stop,
                        };
                        registry.send(
                            &worker,
                            command(coordinator_message::Kind::Trigger(message)),
                        );
                    }
                })
                .map_err(|e| Error::Cluster(format!("cannot start a thread: {e}")))?;
            triggers.push(Some(tx));
        }
        let sink_subtasks = launch
            .job
            .graph
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, crate::dataflow::graph::NodeKind::Sink { .. }))
            .map(|n| n.parallelism)
            .sum();
        let tasks = RemoteTasks {
            registry: self.registry.clone(),
            attempt,
            workers,
            triggers,
            metrics: Arc::new(JobMetrics::new(sink_subtasks)),
            parallelism: launch
                .job
                .graph
                .nodes
                .iter()
                .map(|n| (n.uid.clone(), n.parallelism))
                .collect(),
            seen: Mutex::new(Default::default()),
            cancel: Arc::new(AtomicBool::new(false)),
            cancel_sent: Mutex::new(None),
        };
        Ok(Box::new(tasks))
    }

    fn waited_for_slots(&self) -> Duration {
        self.waited.lock().map(|w| *w).unwrap_or_default()
    }

    fn upload_observer(&self) -> Option<Arc<dyn UploadObserver>> {
        Some(Arc::new(Notifier {
            registry: self.registry.clone(),
            current: self.current.clone(),
        }))
    }
}

fn command(kind: coordinator_message::Kind) -> CoordinatorMessage {
    CoordinatorMessage { kind: Some(kind) }
}

/// Tells the workers of the current attempt where checkpoints go and which completed.
struct Notifier {
    registry: Arc<Registry>,
    current: Arc<Mutex<(u64, Vec<String>)>>,
}

impl Notifier {
    fn broadcast(&self, kind: impl Fn(u64) -> coordinator_message::Kind) {
        let (attempt, workers) = match self.current.lock() {
            Ok(c) => c.clone(),
            Err(_) => return,
        };
        for w in &workers {
            self.registry.send(w, command(kind(attempt)));
        }
    }
}

impl UploadObserver for Notifier {
    fn destination(&self, id: u64, destination: Option<&Destination>) {
        self.broadcast(|attempt| {
            coordinator_message::Kind::Destination(match destination {
                Some(d) => SnapshotDestination {
                    attempt,
                    checkpoint_id: id,
                    root: d.root.uri().to_string(),
                    prefix: d.prefix.clone(),
                    canonical: d.canonical,
                },
                None => SnapshotDestination {
                    attempt,
                    checkpoint_id: id,
                    ..Default::default()
                },
            })
        });
    }

    fn confirmed(&self, metadata: &CheckpointMetadata) {
        let Ok(json) = serde_json::to_vec(metadata) else {
            return;
        };
        self.broadcast(|attempt| {
            coordinator_message::Kind::CheckpointComplete(CheckpointComplete {
                attempt,
                checkpoint_id: metadata.checkpoint_id,
                metadata_json: json.clone().into(),
            })
        });
    }
}

/// An attempt running on workers.
pub struct RemoteTasks {
    registry: Arc<Registry>,
    attempt: u64,
    workers: Vec<String>,
    triggers: Vec<Option<Sender<Trigger>>>,
    metrics: Arc<JobMetrics>,
    /// Per node uid, its parallelism.
    parallelism: HashMap<String, usize>,
    /// Totals already added to `metrics` (worker heartbeats carry running totals).
    seen: Mutex<(u64, u64, u64)>,
    cancel: Arc<AtomicBool>,
    /// When cancellation was sent to the workers.
    cancel_sent: Mutex<Option<Instant>>,
}

impl RemoteTasks {
    fn send_cancel(&self) {
        let Ok(mut sent) = self.cancel_sent.lock() else {
            return;
        };
        if sent.is_some() {
            return;
        }
        *sent = Some(Instant::now());
        for w in &self.workers {
            self.registry.send(
                w,
                command(coordinator_message::Kind::Cancel(CancelAttempt {
                    attempt: self.attempt,
                })),
            );
        }
    }

    /// `Some` once the attempt is over everywhere: `Err` with the first failure.
    fn outcome(&self) -> Option<Result<()>> {
        if self.cancel.load(Ordering::SeqCst) {
            self.send_cancel();
        }
        let ended: Vec<_> = self
            .workers
            .iter()
            .map(|w| self.registry.ended(w, self.attempt))
            .collect();
        let failure = ended.iter().flatten().find(|e| e.failed).cloned();
        if failure.is_some() {
            // One worker failed: the others must stop too.
            self.cancel.store(true, Ordering::SeqCst);
            self.send_cancel();
        }
        let all_ended = ended.iter().all(Option::is_some);
        let grace_over = self
            .cancel_sent
            .lock()
            .ok()
            .and_then(|s| *s)
            .is_some_and(|t| t.elapsed() > CANCEL_GRACE);
        if !all_ended && !grace_over {
            return None;
        }
        Some(match failure {
            Some(f) => Err(Error::Cluster(f.error)),
            None if !all_ended => Err(Error::Cluster(
                "workers did not confirm the cancellation in time".into(),
            )),
            None => Ok(()),
        })
    }

    /// Fold the workers' latest running totals into the job's metrics.
    fn refresh_metrics(&self) {
        let reports = self.registry.metrics(&self.workers, self.attempt);
        let (rows_in, rows_out, late) =
            reports.iter().map(|r| &r.totals).fold((0, 0, 0), |acc, m| {
                (acc.0 + m.rows_in, acc.1 + m.rows_out, acc.2 + m.late_rows)
            });
        if let Ok(mut seen) = self.seen.lock() {
            self.metrics.add_rows_in(rows_in.saturating_sub(seen.0));
            self.metrics.add_rows_out(rows_out.saturating_sub(seen.1));
            self.metrics.add_late_rows(late.saturating_sub(seen.2));
            *seen = (seen.0.max(rows_in), seen.1.max(rows_out), seen.2.max(late));
        }
        for r in &reports {
            for (index, watermark) in &r.totals.sink_watermarks {
                self.metrics.set_sink_watermark(*index, *watermark);
            }
        }
        if let Some(network) = network_totals(&reports) {
            self.metrics.set_network(network);
        }
        for node in operator_totals(&reports) {
            let parallelism = self.parallelism.get(&node.uid).copied().unwrap_or(1);
            self.metrics.merge_node(&node, parallelism);
        }
    }
}

/// The workers' data planes together: queues and counters summed, the largest per-channel
/// peak; `None` before any worker reported one.
fn network_totals(reports: &[Report]) -> Option<Network> {
    let mut planes = reports
        .iter()
        .filter_map(|r| r.data_plane.as_ref())
        .peekable();
    planes.peek()?;
    Some(planes.fold(Network::default(), |mut n, d| {
        n.queued_frames += d.queued_frames;
        n.peak_queued_frames_per_channel = n
            .peak_queued_frames_per_channel
            .max(d.peak_queued_frames_per_channel);
        n.credits_per_channel = n.credits_per_channel.max(d.credits);
        n.frames_sent += d.frames_sent;
        n.frames_received += d.frames_received;
        n.credit_waits += d.credit_waits;
        n
    }))
}

/// Per operator, its figures summed over the workers' reports, with every subtask's
/// watermark: what [`JobMetrics::merge_node`] takes. The control API then reports, as for a
/// local run, the sum of records, back-pressure averaged over subtasks and the minimum
/// watermark.
fn operator_totals(reports: &[Report]) -> Vec<NodeReport> {
    let mut nodes: BTreeMap<&str, NodeReport> = BTreeMap::new();
    for op in reports.iter().flat_map(|r| &r.operators) {
        let node = nodes.entry(&op.uid).or_insert_with(|| NodeReport {
            uid: op.uid.clone(),
            ..Default::default()
        });
        node.records_in += op.records_in;
        node.records_out += op.records_out;
        node.back_pressured_nanos += op.back_pressured_nanos;
        node.watermarks.extend(
            op.watermarks
                .iter()
                .map(|w| (w.subtask as usize, w.watermark)),
        );
    }
    nodes.into_values().collect()
}

impl RunningTasks for RemoteTasks {
    fn metrics(&self) -> Arc<JobMetrics> {
        self.refresh_metrics();
        self.metrics.clone()
    }

    fn triggers(&self) -> Vec<Option<Sender<Trigger>>> {
        self.triggers.clone()
    }

    fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.send_cancel();
    }

    fn is_finished(&self) -> bool {
        self.outcome().is_some()
    }

    fn wait(self: Box<Self>) -> Result<()> {
        loop {
            if let Some(outcome) = self.outcome() {
                self.refresh_metrics();
                self.registry.route_events(self.attempt, None);
                return outcome;
            }
            self.registry.wait_change(Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_rpc::cluster::{OperatorMetrics, SubtaskWatermark};

    use super::*;

    fn report(records: u64, nanos: u64, watermarks: &[(u32, i64)]) -> Report {
        Report {
            operators: vec![OperatorMetrics {
                uid: "calc".into(),
                records_in: records,
                records_out: records / 2,
                back_pressured_nanos: nanos,
                watermarks: watermarks
                    .iter()
                    .map(|(subtask, watermark)| SubtaskWatermark {
                        subtask: *subtask,
                        watermark: *watermark,
                    })
                    .collect(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn operator_figures_are_summed_over_workers_with_the_minimum_watermark() {
        let reports = [
            report(10, 7, &[(0, 500)]),
            report(4, 3, &[(1, 200), (2, 900)]),
        ];
        let totals = operator_totals(&reports);
        assert_eq!(totals.len(), 1);
        let calc = &totals[0];
        assert_eq!((calc.records_in, calc.records_out), (14, 7));
        assert_eq!(calc.back_pressured_nanos, 10);
        let metrics = JobMetrics::new(0);
        metrics.merge_node(calc, 3);
        let figures = metrics.node("calc").expect("merged");
        assert_eq!(figures.output_watermark, Some(200));
        // A subtask without a watermark yet leaves the operator without one.
        let metrics = JobMetrics::new(0);
        metrics.merge_node(&operator_totals(&reports[..1])[0], 3);
        assert_eq!(metrics.node("calc").expect("merged").output_watermark, None);
    }
}
