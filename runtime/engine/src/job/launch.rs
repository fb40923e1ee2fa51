//! Where an attempt's tasks run: in this process ([`LocalLauncher`], `weir run`) or on
//! worker processes (`crate::cluster::coordinator`, `weir coordinator`).
//!
//! The run loop in [`super::run`] (restarts, the checkpoint coordinator, Ctrl-C, the
//! progress display) is the same for both; it only asks a [`Launcher`] to start the tasks
//! of one attempt and then talks to them through [`RunningTasks`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::PlannedJob;
use crate::checkpoint::restore::Restore;
use crate::checkpoint::upload::{UploadContext, UploadObserver, Uploader};
use crate::checkpoint::{Event, Trigger};
use crate::dataflow::alignment::WatermarkAlignment;
use crate::dataflow::executor::{ExecutionConfig, RunningJob, execute};
use crate::dataflow::metrics::JobMetrics;
use crate::dataflow::remote::Placement;
use crate::dataflow::state::StateProvider;
use crate::error::Result;

/// Threads uploading snapshots: enough to overlap uploads, few enough to leave the cores to
/// the tasks.
pub const UPLOAD_THREADS: usize = 2;

/// What one attempt starts from.
pub struct Launch<'a> {
    pub job: &'a PlannedJob,
    /// The attempt number claimed in the checkpoint dir (fences older attempts off).
    pub attempt: u64,
    pub restore: Option<Arc<Restore>>,
    /// This attempt's local state folder.
    pub state_dir: PathBuf,
    /// Shared with the checkpoint coordinator.
    pub uploads: UploadContext,
    /// Where acknowledgements of snapshots go (the checkpoint coordinator); `None` when the
    /// job takes no snapshots.
    pub events: Option<Sender<Event>>,
    /// The tasks this process runs in a distributed job (`None`: all of them).
    pub placement: Option<Placement>,
}

/// Starts the tasks of an attempt.
pub trait Launcher {
    fn launch(&self, launch: Launch<'_>) -> Result<Box<dyn RunningTasks>>;

    /// Told where checkpoints go and which complete, when uploads happen in other
    /// processes.
    fn upload_observer(&self) -> Option<Arc<dyn UploadObserver>> {
        None
    }

    /// How long launches so far waited for somewhere to run (workers offering slots): not
    /// running time, so the job's elapsed time and rate leave it out.
    fn waited_for_slots(&self) -> Duration {
        Duration::ZERO
    }
}

/// The tasks of a running attempt, wherever they run.
pub trait RunningTasks: Send {
    fn metrics(&self) -> Arc<JobMetrics>;
    /// Per global task index: where barrier triggers for a source task go.
    fn triggers(&self) -> Vec<Option<Sender<Trigger>>>;
    /// The flag that stops every task (shared with the checkpoint coordinator).
    fn cancel_flag(&self) -> Arc<AtomicBool>;
    /// The watermark alignment groups of the source tasks in this process, if it runs them.
    fn alignment(&self) -> Option<Arc<WatermarkAlignment>> {
        None
    }
    fn cancel(&self);
    fn is_finished(&self) -> bool;
    /// Wait for every task; the first failure, if any.
    fn wait(self: Box<Self>) -> Result<()>;
}

/// Every task in this process, one thread each.
pub struct LocalLauncher;

impl Launcher for LocalLauncher {
    fn launch(&self, launch: Launch<'_>) -> Result<Box<dyn RunningTasks>> {
        let settings = &launch.job.settings;
        let uploader = match launch.events {
            Some(events) => Some(Uploader::start(UPLOAD_THREADS, launch.uploads, events)?),
            None => None,
        };
        let config = ExecutionConfig {
            batch_size: settings.batch_size,
            channel_capacity: 16,
            idle_timeout: settings.idle_timeout,
            state: StateProvider::new(settings.state_backend, launch.state_dir)
                .with_restore(launch.restore.clone()),
            uploads: uploader.as_ref().and_then(|u| u.sender()),
            restore: launch.restore,
            placement: launch.placement,
        };
        let running = execute(&launch.job.graph, &config)?;
        Ok(Box::new(LocalTasks { running, uploader }))
    }
}

/// Tasks on threads of this process, and the upload threads their snapshots go to.
pub struct LocalTasks {
    pub running: RunningJob,
    pub uploader: Option<Uploader>,
}

impl RunningTasks for LocalTasks {
    fn metrics(&self) -> Arc<JobMetrics> {
        self.running.metrics.clone()
    }

    fn triggers(&self) -> Vec<Option<Sender<Trigger>>> {
        self.running.triggers.clone()
    }

    fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.running.cancel_flag()
    }

    fn alignment(&self) -> Option<Arc<WatermarkAlignment>> {
        Some(self.running.alignment.clone())
    }

    fn cancel(&self) {
        self.running.cancel()
    }

    fn is_finished(&self) -> bool {
        self.running.is_finished()
    }

    fn wait(self: Box<Self>) -> Result<()> {
        let result = self.running.wait();
        // Every task has handed over its snapshots: let the uploads finish.
        if let Some(uploader) = self.uploader {
            uploader.shutdown();
        }
        result
    }
}
