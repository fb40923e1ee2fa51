//! `weir run`: execute a planned job with a progress display, checkpoints, restarts after
//! failures, and Ctrl-C (stop with a savepoint, or after a final checkpoint, or cancel).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use weir_checkpoint::fault::{FaultConfig, FaultInjectingStore};
use weir_checkpoint::{CheckpointStorage, JobCheckpoints, Restorable};

use super::{JobSummary, PlannedJob, Progress, format_watermark, human, unique_suffix};
use crate::checkpoint::coordinator::{
    CheckpointStats, Command, Coordinator, SinkTables, TaskTriggers, commit_all,
};
use crate::checkpoint::restore::Restore;
use crate::checkpoint::upload::{Destination, UploadContext};
use crate::dataflow::graph::NodeKind;
use crate::error::{Error, Result};

use super::control::LiveJob;
use super::launch::{Launch, Launcher, LocalLauncher};

/// Run a planned job in this process to the end (bounded sources) or until `stop` is set
/// (Ctrl-C).
pub fn run(job: &PlannedJob, progress: Progress, stop: Arc<AtomicBool>) -> Result<JobSummary> {
    run_with(job, progress, stop, &LocalLauncher)
}

/// Run a planned job with its tasks wherever `launcher` starts them.
pub fn run_with(
    job: &PlannedJob,
    progress: Progress,
    stop: Arc<AtomicBool>,
    launcher: &dyn Launcher,
) -> Result<JobSummary> {
    run_controlled(job, progress, stop, launcher, &LiveJob::new(job))
}

/// [`run_with`], keeping `live` (what the control API serves) up to date: attempts,
/// restarts, the end; a cancel through it stops the job and its restarts.
pub fn run_controlled(
    job: &PlannedJob,
    progress: Progress,
    stop: Arc<AtomicBool>,
    launcher: &dyn Launcher,
    live: &LiveJob,
) -> Result<JobSummary> {
    let result = run_attempts(job, progress, stop, launcher, live);
    live.finished(&result);
    result
}

fn run_attempts(
    job: &PlannedJob,
    progress: Progress,
    stop: Arc<AtomicBool>,
    launcher: &dyn Launcher,
    live: &LiveJob,
) -> Result<JobSummary> {
    let settings = &job.settings;
    let started = Instant::now();
    let checkpoints = match &settings.checkpoint.dir {
        Some(dir) => Some(JobCheckpoints::new(
            &open_checkpoint_dir(dir)?,
            &settings.checkpoint.job_id,
        )),
        None => None,
    };
    // Find what to restore before writing anything.
    let mut restorable = resolve_restore(settings.restore.as_deref(), checkpoints.as_ref())?;
    let mut attempt = match &checkpoints {
        Some(c) => c.claim_attempt()?,
        None => 1,
    };
    let mut next_id = checkpoints
        .as_ref()
        .map(|c| c.next_checkpoint_id())
        .transpose()?
        .unwrap_or(1);
    let stats = Arc::new(Mutex::new(CheckpointStats::default()));
    let mut restarts = 0u32;
    loop {
        if let Some(r) = &restorable {
            next_id = next_id.max(r.metadata.checkpoint_id + 1);
        }
        let attempt_run = Attempt {
            job,
            launcher,
            live,
            checkpoints: checkpoints.as_ref(),
            attempt,
            progress,
            stop: &stop,
            stats: &stats,
            started,
        };
        match attempt_run.run(restorable.take(), &mut next_id) {
            Ok(mut summary) => {
                summary.restarts = restarts;
                summary.elapsed = started
                    .elapsed()
                    .saturating_sub(launcher.waited_for_slots());
                if let Ok(stats) = stats.lock() {
                    summary.checkpoints_completed = stats.completed;
                    summary.checkpoints_failed = stats.failed;
                    summary.last_checkpoint = stats.last_id.zip(stats.last_location.clone());
                }
                return Ok(summary);
            }
            Err(e)
                if !stop.load(Ordering::SeqCst) && !live.cancel_requested() && restartable(&e) =>
            {
                let Some(delay) = settings.restart.delay(restarts + 1, checkpoints.is_some())
                else {
                    return Err(e);
                };
                restarts += 1;
                live.restarting(restarts, &e);
                tracing::warn!(error = %e, ?delay, restarts, "job failed; restarting from the latest checkpoint");
                if progress == Progress::Auto {
                    eprintln!("\njob failed: {e}; restart {restarts} in {delay:?}");
                }
                sleep_unless(&stop, delay);
                // The newest complete checkpoint, else what the job was started from.
                restorable = match &checkpoints {
                    Some(c) => match c.latest_restorable()? {
                        Some(latest) => Some(latest),
                        None => resolve_restore(settings.restore.as_deref(), Some(c))?,
                    },
                    None => resolve_restore(settings.restore.as_deref(), None)?,
                };
                if let Some(c) = &checkpoints {
                    attempt = c.claim_attempt()?;
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Environment variable that turns on fault injection for a local checkpoint directory:
/// `fail=0.2,truncate=0.1,seed=7` fails or silently truncates that share of uploads. For
/// chaos tests of the checkpoint protocol (see docs/checkpoints.md), never for production.
const FAULTS_ENV: &str = "WEIR_CHECKPOINT_FAULTS";

fn open_checkpoint_dir(dir: &str) -> Result<CheckpointStorage> {
    let Ok(spec) = std::env::var(FAULTS_ENV) else {
        return Ok(CheckpointStorage::open(dir)?);
    };
    let bad = |message: String| Error::Config {
        key: FAULTS_ENV.into(),
        message,
    };
    let mut config = FaultConfig::new(0);
    for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("expected key=value, got '{part}'")))?;
        let number = |v: &str| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| bad(format!("'{v}' is not a number")))
        };
        match key.trim() {
            "fail" => config = config.failing_puts(number(value)?),
            "truncate" => config = config.truncating_puts(number(value)?),
            "seed" => config.seed = number(value)? as u64,
            other => {
                return Err(bad(format!(
                    "unknown key '{other}'; valid: fail, truncate, seed"
                )));
            }
        }
    }
    // Faults go into what tasks upload (shared/), so completed checkpoints must survive them.
    config = config.only_paths_containing("shared/");
    let path = dir.strip_prefix("file://").unwrap_or(dir);
    std::fs::create_dir_all(path).map_err(|source| Error::Io {
        path: PathBuf::from(path),
        source,
    })?;
    let local = object_store::local::LocalFileSystem::new_with_prefix(path)
        .map_err(|e| bad(format!("fault injection needs a local directory: {e}")))?;
    let store = FaultInjectingStore::new(Arc::new(local), config);
    tracing::warn!(dir, spec, "checkpoint fault injection is on");
    Ok(CheckpointStorage::from_store(Arc::new(store), dir))
}

/// `--restore`: `latest` (the newest complete checkpoint of this job, or a fresh start when
/// there is none yet), or a checkpoint or savepoint path.
fn resolve_restore(
    restore: Option<&str>,
    checkpoints: Option<&JobCheckpoints>,
) -> Result<Option<Restorable>> {
    match restore {
        None => Ok(None),
        Some("latest") => {
            let checkpoints = checkpoints.ok_or_else(|| Error::Config {
                key: "execution.savepoint.path".into(),
                message: "'latest' needs a checkpoint directory (--checkpoint-dir)".into(),
            })?;
            match checkpoints.latest_restorable()? {
                Some(latest) => Ok(Some(latest)),
                None => {
                    tracing::info!(
                        dir = %checkpoints.storage().uri(),
                        "no complete checkpoint yet; starting from the beginning"
                    );
                    Ok(None)
                }
            }
        }
        Some(path) => Ok(Some(weir_checkpoint::load(path)?)),
    }
}

/// Failures another run would meet again are not retried: the SQL, the options, the input.
fn restartable(e: &Error) -> bool {
    !matches!(
        e,
        Error::Sql { .. }
            | Error::Unsupported { .. }
            | Error::TableOptions { .. }
            | Error::Format { .. }
            | Error::Config { .. }
            | Error::Restore { .. }
    )
}

fn sleep_unless(stop: &AtomicBool, delay: Duration) {
    let until = Instant::now() + delay;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sink nodes' tables by uid, for commits.
fn sink_tables(job: &PlannedJob) -> SinkTables {
    job.graph
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Sink { table, .. } => Some((n.uid.clone(), table.clone())),
            _ => None,
        })
        .collect()
}

/// One execution of the job, from a restore (or the start) to its end or failure.
struct Attempt<'a> {
    job: &'a PlannedJob,
    launcher: &'a dyn Launcher,
    live: &'a LiveJob,
    checkpoints: Option<&'a JobCheckpoints>,
    attempt: u64,
    progress: Progress,
    stop: &'a AtomicBool,
    stats: &'a Arc<Mutex<CheckpointStats>>,
    started: Instant,
}

impl Attempt<'_> {
    fn run(&self, restorable: Option<Restorable>, next_id: &mut u64) -> Result<JobSummary> {
        let settings = &self.job.settings;
        let run_dir = format!("weir-{}-{}", std::process::id(), unique_suffix());
        let state_dir: PathBuf = match &settings.state_dir {
            Some(dir) => dir.join(run_dir),
            None => std::env::temp_dir().join(run_dir),
        };
        let result = self.run_in(restorable, next_id, &state_dir);
        // The state that matters is in the checkpoints; the local copy has no further use.
        if state_dir.exists() {
            let _ = std::fs::remove_dir_all(&state_dir);
        }
        result
    }

    fn run_in(
        &self,
        restorable: Option<Restorable>,
        next_id: &mut u64,
        state_dir: &std::path::Path,
    ) -> Result<JobSummary> {
        let settings = &self.job.settings;
        let restore = restorable
            .map(|r| {
                Restore::new(
                    r,
                    &self.job.graph,
                    settings.allow_non_restored_state,
                    state_dir.join("restore"),
                )
            })
            .transpose()?
            .map(Arc::new);
        let sinks = sink_tables(self.job);
        if let Some(restore) = &restore {
            // Output the checkpoint covered but that may not have been published before the
            // previous run stopped.
            commit_all(&restore.metadata, &sinks)?;
            tracing::info!(location = %restore.location, "restoring");
        }
        let snapshots =
            settings.checkpoint.dir.is_some() || settings.checkpoint.savepoint_dir.is_some();
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let (commands_tx, commands_rx) = crossbeam_channel::unbounded();
        let uploads = UploadContext {
            destinations: Default::default(),
            observer: self.launcher.upload_observer(),
            final_destination: self.checkpoints.map(|c| Destination {
                root: c.storage().clone(),
                prefix: "shared/".into(),
                canonical: false,
            }),
            confirmed: Default::default(),
            attempt: self.attempt,
            max_parallelism: self.job.graph.max_parallelism,
        };
        if let (Some(restore), Some(c)) = (&restore, self.checkpoints) {
            restore.seed_confirmed(c.storage(), &uploads.confirmed);
        }
        let running = self.launcher.launch(Launch {
            job: self.job,
            attempt: self.attempt,
            restore,
            state_dir: state_dir.to_path_buf(),
            uploads: uploads.clone(),
            events: snapshots.then_some(events_tx),
            placement: None,
        })?;
        let tasks_gone = Arc::new(AtomicBool::new(false));
        let coordinator = if snapshots {
            let coordinator = Coordinator {
                settings: settings.checkpoint.clone(),
                job: self.checkpoints.cloned(),
                attempt: self.attempt,
                max_parallelism: self.job.graph.max_parallelism,
                tasks: TaskTriggers {
                    triggers: running.triggers(),
                },
                sinks,
                uploads,
                events: events_rx,
                commands: commands_rx,
                next_id: *next_id,
                cancel: running.cancel_flag(),
                tasks_gone: tasks_gone.clone(),
                stats: self.stats.clone(),
                carried: Default::default(),
            };
            Some(
                std::thread::Builder::new()
                    .name("checkpoints".into())
                    .spawn(move || coordinator.run())
                    .map_err(|e| {
                        Error::execution("checkpoint", format!("cannot start thread: {e}"))
                    })?,
            )
        } else {
            None
        };

        let commands = coordinator.as_ref().map(|_| commands_tx.clone());
        let (metrics, cancel) = (running.metrics(), running.cancel_flag());
        self.live
            .attempt_started(self.attempt, metrics, cancel, commands, self.stats);
        let mut display = Display::new(self.progress, self.started);
        let mut stopping: Option<(Receiver<Result<String>>, bool)> = None;
        let mut savepoint = None;
        let mut cancelled = false;
        while !running.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            if self.stop.load(Ordering::SeqCst) && !cancelled && stopping.is_none() {
                match self.stop_command(coordinator.is_some(), &commands_tx) {
                    Some(reply) => stopping = Some(reply),
                    None => {
                        cancelled = true;
                        running.cancel();
                    }
                }
            }
            if let Some((reply, is_savepoint)) = &stopping
                && let Ok(result) = reply.try_recv()
            {
                let is_savepoint = *is_savepoint;
                stopping = None;
                cancelled = true;
                match result {
                    Ok(location) if is_savepoint => savepoint = Some(location),
                    Ok(location) => tracing::info!(%location, "stopped after a final checkpoint"),
                    Err(e) => {
                        eprintln!("\ncould not stop with a savepoint: {e}; cancelling");
                        running.cancel();
                    }
                }
            }
            display.tick(&running.metrics(), self.stats);
        }
        display.end();
        let metrics = running.metrics();
        let was_cancelled = running.cancel_flag().load(Ordering::SeqCst);
        let result = running.wait();
        self.live.attempt_ended();
        if result.is_err() || was_cancelled {
            tasks_gone.store(true, Ordering::SeqCst);
        }
        let coordinated = match coordinator {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(Error::execution("checkpoint", "coordinator panicked"))),
            None => Ok(()),
        };
        if let Ok(stats) = self.stats.lock()
            && let Some(id) = stats.last_id
        {
            *next_id = (*next_id).max(id + 1);
        }
        result?;
        coordinated?;
        Ok(JobSummary {
            rows_in: metrics.rows_in(),
            rows_out: metrics.rows_out(),
            late_rows_dropped: metrics.late_rows(),
            elapsed: self.started.elapsed(),
            cancelled: cancelled || was_cancelled,
            savepoint,
            last_checkpoint: None,
            checkpoints_completed: 0,
            checkpoints_failed: 0,
            restarts: 0,
        })
    }

    /// Ctrl-C: stop with a savepoint when a savepoint dir is set, after a final checkpoint
    /// when only a checkpoint dir is; `None` means cancel right away.
    fn stop_command(
        &self,
        coordinated: bool,
        commands: &Sender<Command>,
    ) -> Option<(Receiver<Result<String>>, bool)> {
        if !coordinated {
            return None;
        }
        let (reply, rx) = crossbeam_channel::bounded(1);
        let savepoint = self.job.settings.checkpoint.savepoint_dir.is_some();
        let command = if savepoint {
            Command::Savepoint {
                dir: None,
                stop: true,
                reply,
            }
        } else if self.checkpoints.is_some() {
            Command::StopWithCheckpoint { reply }
        } else {
            return None;
        };
        if self.progress == Progress::Auto {
            eprintln!("\nstopping: taking a final snapshot (Ctrl-C again does not interrupt it)");
        }
        commands.send(command).ok().map(|()| (rx, savepoint))
    }
}

/// The live progress line on a terminal, or a log line every 10 s otherwise.
struct Display {
    progress: Progress,
    terminal: bool,
    started: Instant,
    last_report: Instant,
    last_rows: (u64, u64),
}

impl Display {
    fn new(progress: Progress, started: Instant) -> Self {
        Display {
            progress,
            terminal: std::io::stderr().is_terminal(),
            started,
            last_report: Instant::now(),
            last_rows: (0, 0),
        }
    }

    fn tick(&mut self, m: &crate::dataflow::metrics::JobMetrics, stats: &Mutex<CheckpointStats>) {
        let every = if self.terminal {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        if self.progress != Progress::Auto || self.last_report.elapsed() < every {
            return;
        }
        let secs = self.last_report.elapsed().as_secs_f64();
        let (rows_in, rows_out) = (m.rows_in(), m.rows_out());
        let checkpoint = stats
            .lock()
            .ok()
            .and_then(|s| s.last_id)
            .map(|id| format!("  checkpoint {id}"))
            .unwrap_or_default();
        let line = format!(
            "{:>7.1}s  in {:>10}/s  out {:>10}/s  watermark {}  late {}{checkpoint}",
            self.started.elapsed().as_secs_f64(),
            human(rows_in.saturating_sub(self.last_rows.0) as f64 / secs),
            human(rows_out.saturating_sub(self.last_rows.1) as f64 / secs),
            m.watermark()
                .map(format_watermark)
                .unwrap_or_else(|| "-".into()),
            m.late_rows(),
        );
        if self.terminal {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else {
            tracing::info!("{line}");
        }
        self.last_rows = (rows_in, rows_out);
        self.last_report = Instant::now();
    }

    fn end(&self) {
        if self.terminal && self.progress == Progress::Auto {
            eprintln!();
        }
    }
}
