//! What the control API says about a job, as plain Rust types: a [`crate::JobControl`]
//! implementation returns them, the server sends them as JSON (camelCase field names, enum
//! values in SCREAMING_SNAKE_CASE, absent values as `null`) or as the protobuf messages of
//! `weir.control.v1`, and the clients give them back. `docs/control-api.md` documents every
//! field; names only ever get added.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A job's lifecycle state, with Flink's `JobStatus` names where they mean the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Planned, tasks not started yet.
    Created,
    Running,
    /// A task failed; waiting for the restart delay, then restoring the latest checkpoint.
    Restarting,
    /// Cancel or stop-with-savepoint requested; tasks are stopping.
    Cancelling,
    Canceled,
    /// Every bounded source ended and the output is committed.
    Finished,
    /// A task failed and no restart is left; tasks are stopping.
    Failing,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 8] = [
        JobState::Created,
        JobState::Running,
        JobState::Restarting,
        JobState::Cancelling,
        JobState::Canceled,
        JobState::Finished,
        JobState::Failing,
        JobState::Failed,
    ];

    /// The name on the wire and in the docs, e.g. `RUNNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Created => "CREATED",
            JobState::Running => "RUNNING",
            JobState::Restarting => "RESTARTING",
            JobState::Cancelling => "CANCELLING",
            JobState::Canceled => "CANCELED",
            JobState::Finished => "FINISHED",
            JobState::Failing => "FAILING",
            JobState::Failed => "FAILED",
        }
    }

    /// No further change will happen (Flink's globally terminal states).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Canceled | JobState::Finished | JobState::Failed
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /v1/job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub job_id: String,
    pub name: String,
    pub state: JobState,
    /// Milliseconds since the Unix epoch.
    pub start_time_ms: i64,
    pub uptime_ms: u64,
    pub parallelism: u32,
    pub max_parallelism: u32,
    /// The current execution attempt (1-based; the fencing number in the checkpoint folder).
    pub attempt: u64,
    pub restarts: u32,
    /// Rows the sources read in the current attempt.
    pub num_records_in: u64,
    /// Rows the sinks wrote in the current attempt.
    pub num_records_out: u64,
    /// The minimum watermark over the sinks (ms since the epoch), `null` before every sink
    /// has seen one.
    pub watermark_ms: Option<i64>,
    pub last_error: Option<String>,
    pub operators: Vec<Operator>,
    /// The data plane between workers, summed over them; `null` for a job in one process.
    #[serde(default)]
    pub network: Option<Network>,
}

/// Flow control of the data plane between workers (`docs/cluster.md`), summed over workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Frames received and not yet taken by their task.
    pub queued_frames: u64,
    /// The most frames one receiving channel held at once; never above the credits.
    pub peak_queued_frames_per_channel: u32,
    pub credits_per_channel: u32,
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Sends that found no credit and waited for one (back-pressure across workers).
    pub credit_waits: u64,
}

/// One node of the job graph, over all its parallel subtasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operator {
    /// The stable id of its state in checkpoints.
    pub uid: String,
    pub name: String,
    pub parallelism: u32,
    pub num_records_in: u64,
    pub num_records_out: u64,
    /// Milliseconds per second its task spent blocked on a full downstream channel (average
    /// over subtasks, 0–1000).
    pub back_pressured_time_ms_per_second: f64,
    /// The minimum over subtasks of the last watermark it emitted (ms since the epoch).
    pub current_output_watermark_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckpointKind {
    Checkpoint,
    Savepoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckpointStatus {
    InProgress,
    Completed,
    Failed,
}

/// One checkpoint or savepoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub id: u64,
    pub kind: CheckpointKind,
    pub status: CheckpointStatus,
    /// Milliseconds since the Unix epoch, `null` when unknown.
    pub trigger_time_ms: Option<i64>,
    pub duration_ms: Option<u64>,
    pub size_bytes: Option<u64>,
    /// Time the slowest task spent aligning barriers.
    pub alignment_ms: Option<u64>,
    /// Where it is (`file:///…/chk-7`, `s3://…/savepoint-…`), once completed.
    pub path: Option<String>,
    pub failure: Option<String>,
}

/// `GET /v1/job/checkpoints`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoints {
    pub number_of_completed_checkpoints: u64,
    pub number_of_failed_checkpoints: u64,
    pub number_of_in_progress_checkpoints: u64,
    pub latest_completed: Option<Checkpoint>,
    /// Most recent first.
    pub history: Vec<Checkpoint>,
}

/// `POST /v1/job/savepoints`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SavepointRequest {
    /// Where the savepoint goes; the job's savepoint directory when `null`.
    pub dir: Option<String>,
    /// Stop the job once the savepoint is complete.
    pub stop: bool,
    /// The caller's id for this request: a trigger with an id the job has already seen starts
    /// nothing and answers the first trigger's id.
    pub request_id: Option<String>,
}

/// The answer to `POST /v1/job/savepoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavepointTriggered {
    pub trigger_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SavepointStatus {
    InProgress,
    Completed,
    Failed,
}

/// `GET /v1/job/savepoints/{triggerId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Savepoint {
    pub trigger_id: String,
    pub status: SavepointStatus,
    pub stop: bool,
    /// Where the savepoint is, once `COMPLETED`.
    pub path: Option<String>,
    /// Why it failed, once `FAILED`.
    pub failure: Option<String>,
}

/// `POST /v1/job/compatibility`: a new job to check against the running one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CompatibilityRequest {
    /// The new job's SQL script.
    pub sql: String,
    /// Settings as `weir run --set KEY=VALUE` gives them (they win over the script's `SET`s).
    pub settings: BTreeMap<String, String>,
}

/// Whether a new job could restore the running job's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compatibility {
    /// True when every operator with state in the running job has a match in the new plan.
    pub compatible: bool,
    /// What does not match, one sentence each naming the operator; the SQL error (with its
    /// line and column) when the new script does not plan.
    pub problems: Vec<String>,
}

/// `POST /v1/savepoint-disposal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisposeSavepointRequest {
    /// The savepoint folder (or its `_metadata`).
    pub path: String,
}
