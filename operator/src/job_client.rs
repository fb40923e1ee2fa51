//! The controller's view of a job's control API: the [`JobClient`] trait (what the controller
//! asks a running job) and [`ControlApiClient`], its implementation over `weir_rpc`'s gRPC
//! client. Tests substitute a simulated job; the trait is the seam.
//!
//! Every call names its [`JobTarget`]: where the coordinator's API is and the token from the
//! FlinkJob's Secret. Savepoint triggers carry a request id the controller derives from its
//! status, so a trigger repeated after an operator restart is answered with the first trigger's
//! id instead of taking a second savepoint.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use tokio::sync::Mutex;
use weir_crds::RuntimeJobState;
use weir_rpc::{ClientConfig, ControlClient, SavepointRequest, Token};

use crate::error::{Error, JobControlFailure, Result};

/// Where one FlinkJob's coordinator serves its control API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobTarget {
    /// Namespace of the FlinkJob.
    pub namespace: String,
    /// Name of the FlinkJob.
    pub name: String,
    /// `http://<coordinator service>.<namespace>.svc:8081`.
    pub url: String,
    /// The shared token from the FlinkJob's Secret.
    pub token: String,
}

/// The job as its coordinator reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeJob {
    /// The coordinator's `--job-id`.
    pub id: String,
    /// Its state.
    pub state: RuntimeJobState,
    /// When the process started the job (ms since the epoch).
    pub start_time_ms: i64,
    /// The parallelism it runs with.
    pub parallelism: i32,
    /// The failure behind the last restart or the failed state.
    pub last_error: Option<String>,
}

/// The latest completed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeCheckpoint {
    /// Checkpoint id.
    pub id: i64,
    /// Where it is stored.
    pub path: String,
    /// When it completed (ms since the epoch).
    pub time_ms: i64,
}

/// Progress of a triggered savepoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SavepointProgress {
    /// Still being taken.
    InProgress,
    /// Done, stored at this path.
    Completed(String),
    /// Failed for this reason.
    Failed(String),
}

/// Whether a new job (SQL and settings) can restore the running job's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compatibility {
    /// True when every operator with state in the running job has a match in the new plan.
    pub compatible: bool,
    /// What does not match, one sentence each (operator ids, changed key types).
    pub problems: Vec<String>,
}

/// What the controller asks a running job. Implementations must be safe to call again after
/// any failure: the controller retries every call on its next reconcile.
#[async_trait]
pub trait JobClient: Send + Sync {
    /// The job's status.
    async fn job(&self, target: &JobTarget) -> Result<RuntimeJob>;

    /// The latest completed checkpoint, if any.
    async fn latest_checkpoint(&self, target: &JobTarget) -> Result<Option<RuntimeCheckpoint>>;

    /// Starts a savepoint into `dir` (stopping the job after it when `stop`); returns its
    /// trigger id. A repeated call with the same `request_id` returns the same trigger id and
    /// starts nothing.
    async fn trigger_savepoint(
        &self,
        target: &JobTarget,
        dir: Option<&str>,
        stop: bool,
        request_id: &str,
    ) -> Result<String>;

    /// Progress of a triggered savepoint.
    async fn savepoint(&self, target: &JobTarget, trigger_id: &str) -> Result<SavepointProgress>;

    /// Cancels the job (no savepoint).
    async fn cancel(&self, target: &JobTarget) -> Result<()>;

    /// Whether `sql` with `settings` can restore the running job's state.
    async fn check_compatibility(
        &self,
        target: &JobTarget,
        sql: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<Compatibility>;

    /// Deletes a savepoint's files (the coordinator reaches the object store; the operator
    /// holds no storage credentials).
    async fn dispose_savepoint(&self, target: &JobTarget, path: &str) -> Result<()>;
}

/// [`JobClient`] over the coordinator's gRPC control API (`weir_rpc::ControlClient`).
/// Connections are kept per URL and token and dropped after a transport error.
#[derive(Default)]
pub struct ControlApiClient {
    connections: Mutex<HashMap<(String, String), ControlClient>>,
}

impl ControlApiClient {
    /// A client with no connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    async fn connect(&self, target: &JobTarget, operation: &'static str) -> Result<ControlClient> {
        let key = (target.url.clone(), target.token.clone());
        if let Some(client) = self.connections.lock().await.get(&key) {
            return Ok(client.clone());
        }
        let token = Token::new(&target.token).map_err(|e| rpc_error(operation, target, e))?;
        let config = ClientConfig::new(target.url.clone()).with_token(Some(token));
        let client = ControlClient::connect(&config)
            .await
            .map_err(|e| rpc_error(operation, target, e))?;
        self.connections.lock().await.insert(key, client.clone());
        Ok(client)
    }

    /// Forgets a connection after a transport failure, so the next call reconnects (the
    /// coordinator pod may have been replaced behind the same Service).
    async fn forget_on_failure<T>(&self, target: &JobTarget, result: &Result<T>) {
        if let Err(err) = result
            && err.job_control_failure() == Some(JobControlFailure::Unreachable)
        {
            let key = (target.url.clone(), target.token.clone());
            self.connections.lock().await.remove(&key);
        }
    }
}

#[async_trait]
impl JobClient for ControlApiClient {
    async fn job(&self, target: &JobTarget) -> Result<RuntimeJob> {
        let mut client = self.connect(target, "get job").await?;
        let result = client
            .job()
            .await
            .map_err(|e| rpc_error("get job", target, e))
            .map(|job| RuntimeJob {
                id: job.job_id,
                state: job_state(job.state),
                start_time_ms: job.start_time_ms,
                parallelism: i32::try_from(job.parallelism).unwrap_or(i32::MAX),
                last_error: job.last_error,
            });
        self.forget_on_failure(target, &result).await;
        result
    }

    async fn latest_checkpoint(&self, target: &JobTarget) -> Result<Option<RuntimeCheckpoint>> {
        let mut client = self.connect(target, "list checkpoints").await?;
        let result = client
            .checkpoints()
            .await
            .map_err(|e| rpc_error("list checkpoints", target, e))
            .map(|checkpoints| {
                checkpoints.latest_completed.and_then(|c| {
                    Some(RuntimeCheckpoint {
                        id: i64::try_from(c.id).unwrap_or(i64::MAX),
                        path: c.path?,
                        time_ms: c
                            .trigger_time_ms
                            .map(|t| t + c.duration_ms.map_or(0, |d| i64::try_from(d).unwrap_or(0)))
                            .unwrap_or_default(),
                    })
                })
            });
        self.forget_on_failure(target, &result).await;
        result
    }

    async fn trigger_savepoint(
        &self,
        target: &JobTarget,
        dir: Option<&str>,
        stop: bool,
        request_id: &str,
    ) -> Result<String> {
        let mut client = self.connect(target, "trigger savepoint").await?;
        let request = SavepointRequest {
            dir: dir.map(str::to_owned),
            stop,
            request_id: Some(request_id.to_owned()),
        };
        let result = client
            .trigger_savepoint(request)
            .await
            .map_err(|e| rpc_error("trigger savepoint", target, e));
        self.forget_on_failure(target, &result).await;
        result
    }

    async fn savepoint(&self, target: &JobTarget, trigger_id: &str) -> Result<SavepointProgress> {
        let mut client = self.connect(target, "get savepoint").await?;
        let result = client
            .savepoint(trigger_id)
            .await
            .map_err(|e| rpc_error("get savepoint", target, e))
            .map(|sp| match sp.status {
                weir_rpc::SavepointStatus::InProgress => SavepointProgress::InProgress,
                weir_rpc::SavepointStatus::Completed => match sp.path {
                    Some(path) => SavepointProgress::Completed(path),
                    None => SavepointProgress::Failed("completed without a path".into()),
                },
                weir_rpc::SavepointStatus::Failed => SavepointProgress::Failed(
                    sp.failure.unwrap_or_else(|| "no reason given".into()),
                ),
            });
        self.forget_on_failure(target, &result).await;
        result
    }

    async fn cancel(&self, target: &JobTarget) -> Result<()> {
        let mut client = self.connect(target, "cancel").await?;
        let result = client
            .cancel()
            .await
            .map(drop)
            .map_err(|e| rpc_error("cancel", target, e));
        self.forget_on_failure(target, &result).await;
        result
    }

    async fn check_compatibility(
        &self,
        target: &JobTarget,
        sql: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<Compatibility> {
        let mut client = self.connect(target, "check compatibility").await?;
        let result = client
            .check_compatibility(sql, settings)
            .await
            .map_err(|e| rpc_error("check compatibility", target, e))
            .map(|answer| Compatibility {
                compatible: answer.compatible,
                problems: answer.problems,
            });
        self.forget_on_failure(target, &result).await;
        result
    }

    /// The coordinator deletes the folder; a savepoint already gone counts as disposed, a
    /// path that is not a savepoint is refused (`Rejected`).
    async fn dispose_savepoint(&self, target: &JobTarget, path: &str) -> Result<()> {
        let mut client = self.connect(target, "dispose savepoint").await?;
        let result = client
            .dispose_savepoint(path)
            .await
            .map_err(|e| rpc_error("dispose savepoint", target, e));
        self.forget_on_failure(target, &result).await;
        result
    }
}

fn job_state(state: weir_rpc::JobState) -> RuntimeJobState {
    match state {
        weir_rpc::JobState::Created => RuntimeJobState::Created,
        weir_rpc::JobState::Running => RuntimeJobState::Running,
        weir_rpc::JobState::Restarting => RuntimeJobState::Restarting,
        weir_rpc::JobState::Cancelling => RuntimeJobState::Cancelling,
        weir_rpc::JobState::Canceled => RuntimeJobState::Canceled,
        weir_rpc::JobState::Finished => RuntimeJobState::Finished,
        weir_rpc::JobState::Failing => RuntimeJobState::Failing,
        weir_rpc::JobState::Failed => RuntimeJobState::Failed,
    }
}

fn rpc_error(operation: &'static str, target: &JobTarget, error: weir_rpc::Error) -> Error {
    let failure = match &error {
        weir_rpc::Error::Connect { .. } | weir_rpc::Error::Unavailable(_) => {
            JobControlFailure::Unreachable
        }
        weir_rpc::Error::RemoteNotFound { .. } | weir_rpc::Error::NotFound(_) => {
            JobControlFailure::NotFound
        }
        weir_rpc::Error::Rejected(_) => JobControlFailure::Rejected,
        weir_rpc::Error::Remote { code, .. }
            if code == "FailedPrecondition" || code == "InvalidArgument" =>
        {
            JobControlFailure::Rejected
        }
        weir_rpc::Error::Remote { code, .. } if code == "Unavailable" => {
            JobControlFailure::Unreachable
        }
        weir_rpc::Error::Remote { code, .. } if code == "Unimplemented" => {
            JobControlFailure::Unsupported
        }
        _ => JobControlFailure::Other,
    };
    Error::JobControl {
        operation,
        url: target.url.clone(),
        failure,
        message: error.to_string(),
    }
}
