//! The `FlinkJob` status: what the operator observed and decided, written so that a restarted
//! operator carries on where it stopped (the in-flight upgrade is recorded before each step) and
//! so that GitOps tools and `kubectl wait --for=condition=Ready` can read it.
//!
//! `reconciledSpec`, `lastStableSpec` and `upgrade.targetSpec` hold the spec as a JSON string (as
//! the Flink Kubernetes Operator does): the CRD then carries no second copy of the spec schema,
//! the API server neither prunes nor defaults the snapshot, and the controller compares typed
//! specs after [`FlinkJobStatus::reconciled_spec`] parses them back.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::spec::{FlinkJobSpec, UpgradeMode};

/// What the operator observed and decided about a FlinkJob.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlinkJobStatus {
    /// Where the job is in its lifecycle: Created, Deploying, Running, Stable, Upgrading,
    /// Suspended, RollingBack, RolledBack, Failed or Deleting.
    #[serde(default)]
    pub lifecycle_state: LifecycleState,

    /// The running job as its coordinator reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobStatus>,

    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The spec last applied to the cluster, as JSON. Compared with the current spec to find
    /// what changed (and which nonces were already handled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_spec: Option<String>,

    /// The last spec whose job ran stably, as JSON: the target of a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stable_spec: Option<String>,

    /// The upgrade in flight (including suspend, resume, restart and rollback), recorded before
    /// each step is taken. Unset when none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeStatus>,

    /// What the operator deployed: the job id the coordinator runs under and the savepoint it
    /// restores at start. Kept after the upgrade, so re-applied pods start the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeployedJob>,

    /// A manual or periodic savepoint that was triggered and has not completed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_savepoint: Option<PendingSavepoint>,

    /// The latest completed checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<CheckpointInfo>,

    /// The latest completed savepoint, of any kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint: Option<SavepointInfo>,

    /// Completed savepoints, oldest first, bounded by spec.savepoints.historyMaxCount and
    /// historyMaxAge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub savepoint_history: Vec<SavepointInfo>,

    /// Ready (the job runs the current spec stably), Progressing (a deployment, upgrade or
    /// rollback is under way) and Degraded (something needs attention; see the message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The last error, in words a user can act on. Unset once resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,

    /// Label selector of the worker pods (string form), for the scale subresource and so for
    /// HorizontalPodAutoscalers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// Where a FlinkJob is in its lifecycle.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LifecycleState {
    /// Accepted, nothing deployed yet.
    #[default]
    Created,
    /// The coordinator and workers are being deployed.
    Deploying,
    /// The job runs; not yet for as long as rollback.readinessTimeout.
    Running,
    /// The job runs the current spec stably.
    Stable,
    /// A spec change is being applied.
    Upgrading,
    /// Stopped on request (job.state suspended); no pods.
    Suspended,
    /// An unhealthy upgrade is being rolled back to the last stable spec.
    RollingBack,
    /// Rolled back: the last stable spec runs, the current spec does not. Change the spec to
    /// try again.
    RolledBack,
    /// The job failed and is not restarting; see status.error.
    Failed,
    /// The FlinkJob is being deleted (taking the on-delete savepoint).
    Deleting,
}

impl LifecycleState {
    /// The name as written in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Deploying => "Deploying",
            Self::Running => "Running",
            Self::Stable => "Stable",
            Self::Upgrading => "Upgrading",
            Self::Suspended => "Suspended",
            Self::RollingBack => "RollingBack",
            Self::RolledBack => "RolledBack",
            Self::Failed => "Failed",
            Self::Deleting => "Deleting",
        }
    }

    /// Whether the operator is in the middle of changing the deployment.
    pub fn is_progressing(self) -> bool {
        matches!(
            self,
            Self::Deploying | Self::Upgrading | Self::RollingBack | Self::Deleting
        )
    }
}

impl std::fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The running job as its coordinator reports it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// The job's state in the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RuntimeJobState>,
    /// The job's id in the runtime (changes on every deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the current run of the job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// The parallelism the job runs with (the scale subresource's status.replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
}

/// A job's state in the runtime, exactly as the coordinator's control API reports it (Flink's
/// `JobStatus` names), plus `UNKNOWN` when the coordinator cannot be reached.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuntimeJobState {
    /// Planned, tasks not started yet.
    Created,
    /// Tasks are running.
    Running,
    /// A task failed; the job restarts from the latest checkpoint.
    Restarting,
    /// Cancel requested; tasks are stopping.
    Cancelling,
    /// Cancelled (terminal).
    Canceled,
    /// Bounded sources ended, or stopped with a savepoint (terminal).
    Finished,
    /// A failed job's tasks are stopping.
    Failing,
    /// A task failed and no restart is left (terminal).
    Failed,
    /// The coordinator could not be reached (set by the operator).
    Unknown,
}

impl RuntimeJobState {
    /// Whether the job has ended and will not run again by itself.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Canceled | Self::Finished | Self::Failed)
    }
}

/// An upgrade in flight: written before each step so a restarted operator continues it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStatus {
    /// The spec being deployed, as JSON (for a rollback: the last stable spec).
    pub target_spec: String,
    /// The metadata.generation of the spec being deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_generation: Option<i64>,
    /// How the running job's state is carried over.
    pub mode: UpgradeMode,
    /// The step under way.
    pub step: UpgradeStep,
    /// Whether this is a rollback to the last stable spec.
    #[serde(default)]
    pub rollback: bool,
    /// Idempotency key of the upgrade's savepoint request, fixed when the upgrade is recorded:
    /// a trigger repeated after an operator restart carries the same key, and the coordinator
    /// answers with the first trigger's id instead of taking a second savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_request_id: Option<String>,
    /// Id the coordinator returned for the stop-with-savepoint request, recorded as soon as it
    /// is known; a restarted operator polls it instead of triggering again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_id: Option<String>,
    /// The savepoint or checkpoint the new deployment restores, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_path: Option<String>,
    /// When the upgrade started (for upgrade durations; also part of its savepoint request id).
    pub started_at: Time,
    /// When the new deployment was applied: rollback.readinessTimeout counts from here, so a
    /// long savepoint does not eat into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<Time>,
}

/// What the operator deployed, so every later apply renders the same pods.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeployedJob {
    /// The coordinator's `--job-id`: kept across savepoint and last-state upgrades (the
    /// coordinator resumes the newest of its own checkpoints and restorePath), new for
    /// stateless deployments and rollbacks (nothing newer than restorePath may be resumed).
    pub job_id: String,
    /// The savepoint (or checkpoint) the coordinator restores at start (`--restore`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_path: Option<String>,
}

/// Steps of an upgrade, in order.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpgradeStep {
    /// Stopping the old job: stop with savepoint (savepoint mode) or cancel.
    Stopping,
    /// The old job is gone; the new spec's resources are being applied, restoring restorePath.
    Deploying,
    /// Deployed; waiting for the job to run stably within rollback.readinessTimeout.
    Verifying,
}

/// A manual or periodic savepoint that was triggered and has not completed yet.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PendingSavepoint {
    /// Id the coordinator returned for the savepoint request.
    pub trigger_id: String,
    /// Why it was taken.
    pub kind: SavepointKind,
    /// The job.savepointTriggerNonce that asked for it (manual savepoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_nonce: Option<i64>,
    /// When it was triggered.
    pub triggered_at: Time,
}

/// A completed checkpoint.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    /// The checkpoint's id (increasing within a job).
    pub id: i64,
    /// Where it is stored, e.g. `s3://bucket/weir/checkpoints/orders/chk-42`.
    pub path: String,
    /// When it completed.
    pub time: Time,
}

/// A completed savepoint.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SavepointInfo {
    /// Where it is stored; usable as job.initialSavepointPath of another FlinkJob.
    pub path: String,
    /// When it completed.
    pub time: Time,
    /// Why it was taken.
    pub kind: SavepointKind,
    /// The job.savepointTriggerNonce that asked for it (manual savepoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_nonce: Option<i64>,
}

/// Why a savepoint was taken.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SavepointKind {
    /// For an upgrade, rescale, suspend or rollback.
    Upgrade,
    /// Requested with job.savepointTriggerNonce.
    Manual,
    /// Taken every savepoints.periodicInterval.
    Periodic,
    /// Taken before the FlinkJob was deleted.
    Delete,
}

impl FlinkJobStatus {
    /// The spec last applied ([`FlinkJobStatus::reconciled_spec`]), parsed; `None` before the
    /// first deployment.
    pub fn reconciled_spec(&self) -> Result<Option<FlinkJobSpec>, Error> {
        self.reconciled_spec
            .as_deref()
            .map(FlinkJobSpec::from_snapshot)
            .transpose()
    }

    /// The last stable spec, parsed; `None` until a job has run stably.
    pub fn last_stable_spec(&self) -> Result<Option<FlinkJobSpec>, Error> {
        self.last_stable_spec
            .as_deref()
            .map(FlinkJobSpec::from_snapshot)
            .transpose()
    }

    /// Records a completed savepoint: it becomes `lastSavepoint` and the newest history entry;
    /// entries beyond `max_count`, or older than `max_age` at `now`, are removed from the history
    /// and returned (for disposal when spec.savepoints.disposeOnCleanup). The newest entry is
    /// never removed.
    pub fn record_savepoint(
        &mut self,
        savepoint: SavepointInfo,
        max_count: usize,
        max_age: Option<std::time::Duration>,
        now: &Time,
    ) -> Vec<SavepointInfo> {
        self.last_savepoint = Some(savepoint.clone());
        self.savepoint_history.push(savepoint);
        let keep_from_count = self
            .savepoint_history
            .len()
            .saturating_sub(max_count.max(1));
        let newest = self.savepoint_history.len() - 1;
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        for (index, entry) in std::mem::take(&mut self.savepoint_history)
            .into_iter()
            .enumerate()
        {
            let too_many = index < keep_from_count;
            let too_old = max_age.is_some_and(|age| is_older_than(&entry.time, now, age));
            if index != newest && (too_many || too_old) {
                removed.push(entry);
            } else {
                kept.push(entry);
            }
        }
        self.savepoint_history = kept;
        removed
    }
}

fn is_older_than(time: &Time, now: &Time, age: std::time::Duration) -> bool {
    let elapsed = now
        .0
        .as_millisecond()
        .saturating_sub(time.0.as_millisecond());
    elapsed > i64::try_from(age.as_millis()).unwrap_or(i64::MAX)
}

impl FlinkJobSpec {
    /// The spec as the JSON string kept in `reconciledSpec`, `lastStableSpec` and
    /// `upgrade.targetSpec`.
    pub fn to_snapshot(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(|source| Error::SerializeSpec { source })
    }

    /// Parses a spec snapshot written by [`FlinkJobSpec::to_snapshot`].
    pub fn from_snapshot(json: &str) -> Result<Self, Error> {
        serde_json::from_str(json).map_err(|source| Error::ParseSpecSnapshot { source })
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn savepoint(n: i64) -> SavepointInfo {
        SavepointInfo {
            path: format!("s3://b/sp-{n}"),
            time: at(n * 3_600),
            kind: SavepointKind::Periodic,
            trigger_nonce: None,
        }
    }

    fn paths(list: &[SavepointInfo]) -> Vec<&str> {
        list.iter().map(|s| s.path.as_str()).collect()
    }

    #[test]
    fn history_keeps_the_newest_max_count_entries() {
        let mut status = FlinkJobStatus::default();
        let mut removed = Vec::new();
        for n in 1..=5 {
            removed.extend(status.record_savepoint(savepoint(n), 3, None, &at(n * 3_600)));
        }
        assert_eq!(
            paths(&status.savepoint_history),
            ["s3://b/sp-3", "s3://b/sp-4", "s3://b/sp-5"]
        );
        assert_eq!(paths(&removed), ["s3://b/sp-1", "s3://b/sp-2"]);
        assert_eq!(status.last_savepoint.unwrap().path, "s3://b/sp-5");
    }

    #[test]
    fn history_drops_old_entries_but_never_the_newest() {
        let mut status = FlinkJobStatus::default();
        status.record_savepoint(savepoint(1), 10, None, &at(3_600));
        status.record_savepoint(savepoint(2), 10, None, &at(7_200));
        // Two hours max age, evaluated 10 hours later: both old; the newest stays anyway.
        let removed = status.record_savepoint(
            savepoint(3),
            10,
            Some(std::time::Duration::from_secs(7_200)),
            &at(36_000),
        );
        assert_eq!(paths(&removed), ["s3://b/sp-1", "s3://b/sp-2"]);
        assert_eq!(paths(&status.savepoint_history), ["s3://b/sp-3"]);
        let removed = status.record_savepoint(
            SavepointInfo {
                time: at(0),
                ..savepoint(4)
            },
            10,
            Some(std::time::Duration::from_secs(60)),
            &at(36_000),
        );
        assert_eq!(paths(&removed), ["s3://b/sp-3"]);
        assert_eq!(
            paths(&status.savepoint_history),
            ["s3://b/sp-4"],
            "newest kept although old"
        );
    }

    #[test]
    fn spec_snapshots_round_trip_through_the_status() {
        let spec: FlinkJobSpec = serde_json::from_value(serde_json::json!({
            "image": "weir:1",
            "job": {"sql": "INSERT INTO a SELECT * FROM b;", "parallelism": 3}
        }))
        .unwrap();
        let status = FlinkJobStatus {
            reconciled_spec: Some(spec.to_snapshot().unwrap()),
            ..FlinkJobStatus::default()
        };
        assert_eq!(status.reconciled_spec().unwrap(), Some(spec));
        assert_eq!(status.last_stable_spec().unwrap(), None);
        let broken = FlinkJobStatus {
            last_stable_spec: Some("{\"image\": 1}".into()),
            ..FlinkJobStatus::default()
        };
        assert!(matches!(
            broken.last_stable_spec(),
            Err(Error::ParseSpecSnapshot { .. })
        ));
    }

    #[test]
    fn status_serializes_in_camel_case_with_kubernetes_enum_names() {
        let status = FlinkJobStatus {
            lifecycle_state: LifecycleState::RollingBack,
            observed_generation: Some(4),
            job: Some(JobStatus {
                state: Some(RuntimeJobState::Running),
                parallelism: Some(2),
                ..JobStatus::default()
            }),
            ..FlinkJobStatus::default()
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["lifecycleState"], "RollingBack");
        assert_eq!(json["observedGeneration"], 4);
        assert_eq!(json["job"]["state"], "RUNNING");
        assert!(
            RuntimeJobState::Finished.is_terminal() && !RuntimeJobState::Restarting.is_terminal()
        );
        assert_eq!(json["job"]["parallelism"], 2);
        assert_eq!(LifecycleState::RollingBack.to_string(), "RollingBack");
    }
}
