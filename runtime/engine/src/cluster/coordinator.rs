//! `weir coordinator`: serves the workers' `Coordinator` service and runs the job on them
//! through the same run loop as `weir run` (restarts, checkpoints, savepoints, Ctrl-C).
//!
//! A coordinator resumes its job: when the checkpoint dir holds a complete checkpoint of this
//! job id that is newer than what `--restore` names (or there is no `--restore`), it starts
//! from that checkpoint. So a coordinator that crashed and was started again with the same
//! arguments carries on from the latest checkpoint (what the operator's last-state mode
//! relies on), while a fresh `--restore` savepoint taken after the last checkpoint still
//! wins. Claiming a new attempt fences the old coordinator off: it can no longer complete a
//! checkpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tonic::transport::server::TcpIncoming;
use weir_checkpoint::{CheckpointStorage, JobCheckpoints};
use weir_rpc::RequireToken;
use weir_rpc::cluster::coordinator_server::CoordinatorServer;

use super::connect::Auth;
use super::data_plane::MAX_FRAME_BYTES;
use super::registry::{CoordinatorService, Registry};
use super::remote::RemoteLauncher;
use super::spec::JobSpec;
use crate::error::{Error, Result};
use crate::job::{JobSummary, LiveJob, PlannedJob, Progress, run_controlled};

pub struct CoordinatorOptions {
    /// Where workers reach the coordinator (`--listen`).
    pub listen: SocketAddr,
    pub auth: Auth,
    /// `heartbeat.interval`: how often workers report.
    pub heartbeat_interval: Duration,
    /// `heartbeat.timeout`: a worker silent this long is lost.
    pub heartbeat_timeout: Duration,
}

/// The coordinator's server side, running on its own runtime.
pub struct ClusterService {
    _runtime: tokio::runtime::Runtime,
    pub registry: Arc<Registry>,
    pub address: SocketAddr,
}

/// Bind `--listen` and serve the workers.
pub fn start(options: &CoordinatorOptions) -> Result<ClusterService> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("coordinator")
        .enable_all()
        .build()
        .map_err(|e| Error::Cluster(format!("cannot start the network runtime: {e}")))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.listen))
        .map_err(|e| Error::Cluster(format!("cannot listen on {}: {e}", options.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::Cluster(format!("listen address: {e}")))?;
    let registry = Registry::new(options.heartbeat_interval, options.heartbeat_timeout);
    let service = tonic::service::interceptor::InterceptedService::new(
        CoordinatorServer::new(CoordinatorService {
            registry: registry.clone(),
        })
        .max_decoding_message_size(MAX_FRAME_BYTES)
        .max_encoding_message_size(MAX_FRAME_BYTES),
        RequireToken::new(options.auth.token.clone()),
    );
    runtime.spawn(
        options
            .auth
            .server()?
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let expiring = registry.clone();
    let interval = options.heartbeat_interval;
    runtime.spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            expiring.expire();
        }
    });
    Ok(ClusterService {
        _runtime: runtime,
        registry,
        address,
    })
}

/// Run `job` on the workers that register with this coordinator.
pub fn run(
    mut job: PlannedJob,
    spec: JobSpec,
    options: &CoordinatorOptions,
    progress: Progress,
    stop: Arc<AtomicBool>,
    live: &LiveJob,
) -> Result<JobSummary> {
    job.settings.restore = resume_point(&job)?;
    let service = start(options)?;
    eprintln!("coordinator listening on {}", service.address);
    let launcher = RemoteLauncher::new(service.registry.clone(), spec, stop.clone());
    run_controlled(&job, progress, stop, &launcher, live)
}

/// What the job starts from: its latest complete checkpoint when that is newer than what
/// `--restore` names.
fn resume_point(job: &PlannedJob) -> Result<Option<String>> {
    let settings = &job.settings;
    let requested = settings.restore.clone();
    let Some(dir) = &settings.checkpoint.dir else {
        return Ok(requested);
    };
    let checkpoints =
        JobCheckpoints::new(&CheckpointStorage::open(dir)?, &settings.checkpoint.job_id);
    let Some(latest) = checkpoints.latest_restorable()? else {
        return Ok(requested);
    };
    let requested_time = match requested.as_deref() {
        None => None,
        Some("latest") => return Ok(requested),
        Some(path) => Some(weir_checkpoint::load(path)?.metadata.timestamp_ms),
    };
    if requested_time.is_none_or(|t| latest.metadata.timestamp_ms > t) {
        tracing::info!(location = %latest.location, "resuming from the job's latest checkpoint");
        return Ok(Some(latest.location));
    }
    Ok(requested)
}
