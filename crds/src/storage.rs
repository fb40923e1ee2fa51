//! Where the job's state goes and how long it is kept: checkpoints, savepoints (periodic,
//! history, on delete), and the rollback policy that relies on them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::DurationString;

/// The schema pattern of checkpoint and savepoint directories: a URI with a scheme, e.g.
/// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` or `file:///mnt/state`
/// (a volume every pod mounts at the same path).
pub const STORAGE_URI_PATTERN: &str = "^[a-zA-Z][a-zA-Z0-9+.-]*://.+$";

/// Periodic checkpoints: the job's state written to object storage, restored after a failure.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointingSpec {
    /// Time between the start of two checkpoints, e.g. `10s`, `1m`. Default `30s`. Units: ms, s,
    /// m, h, d. Sinks commit their output when a checkpoint completes, so this is also the
    /// latency of exactly-once output.
    #[serde(default = "default_checkpoint_interval")]
    pub interval: DurationString,

    /// Directory (a URI) the checkpoints are written to, e.g. `s3://my-bucket/weir/checkpoints`.
    /// The job's name and id are appended. Needed by upgradeMode last-state. Unset: checkpoints
    /// stay inside the pods and do not survive a redeploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z][a-zA-Z0-9+.-]*://.+$"))]
    pub dir: Option<String>,

    /// How many completed checkpoints to keep; older ones are deleted. Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub retained: i32,
}

impl Default for CheckpointingSpec {
    fn default() -> Self {
        Self {
            interval: default_checkpoint_interval(),
            dir: None,
            retained: 1,
        }
    }
}

/// Savepoints: self-contained, relocatable snapshots of the job's state, taken for upgrades, on
/// request, periodically and before deletion.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SavepointsSpec {
    /// Directory (a URI) savepoints are written to, e.g. `s3://my-bucket/weir/savepoints`.
    /// Needed by upgradeMode savepoint, periodicInterval and job.savepointTriggerNonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z][a-zA-Z0-9+.-]*://.+$"))]
    pub dir: Option<String>,

    /// Take a savepoint this often while the job runs, e.g. `6h`. Unset (default): no periodic
    /// savepoints. Units: ms, s, m, h, d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic_interval: Option<DurationString>,

    /// How many savepoints status.savepointHistory keeps. Default 10. Older entries are removed
    /// (see disposeOnCleanup); the latest savepoint is always kept.
    #[serde(default = "ten")]
    #[schemars(range(min = 1, max = 100))]
    pub history_max_count: i32,

    /// Remove savepoints older than this from the history, e.g. `7d`. Unset (default): no age
    /// limit. The latest savepoint is always kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_max_age: Option<DurationString>,

    /// Also delete a savepoint's files when it leaves the history. Default true. Set false to
    /// keep every savepoint in storage and only forget it in the status.
    #[serde(default = "yes")]
    pub dispose_on_cleanup: bool,

    /// What deleting the FlinkJob does with the running job's state. `savepoint` (default): stop
    /// the job with a savepoint first (recorded in an Event and kept in storage, never disposed),
    /// when savepoints.dir is set. `none`: cancel the job, keep no state.
    #[serde(default)]
    pub on_delete: OnDeletePolicy,

    /// How long deletion waits for the on-delete savepoint. Default `5m`. After that the
    /// resource is deleted anyway, with a Warning event: deletion never blocks forever.
    #[serde(default = "default_delete_timeout")]
    pub delete_timeout: DurationString,
}

impl Default for SavepointsSpec {
    fn default() -> Self {
        Self {
            dir: None,
            periodic_interval: None,
            history_max_count: 10,
            history_max_age: None,
            dispose_on_cleanup: true,
            on_delete: OnDeletePolicy::default(),
            delete_timeout: default_delete_timeout(),
        }
    }
}

/// What deleting a FlinkJob does with the running job's state.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum OnDeletePolicy {
    /// Stop with a savepoint before letting go.
    #[default]
    Savepoint,
    /// Cancel without a savepoint.
    None,
}

/// Rollback of an upgrade that does not become healthy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackSpec {
    /// Roll back to status.lastStableSpec (restoring the upgrade's savepoint) when an upgraded
    /// job is not stable within readinessTimeout. Default true. A new spec change wins over a
    /// pending rollback.
    #[serde(default = "yes")]
    pub enabled: bool,

    /// How long an upgraded (or newly deployed) job may take to run stably before it counts as
    /// failed, e.g. `5m`. Default `5m`.
    #[serde(default = "default_readiness_timeout")]
    pub readiness_timeout: DurationString,
}

impl Default for RollbackSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            readiness_timeout: default_readiness_timeout(),
        }
    }
}

fn default_checkpoint_interval() -> DurationString {
    DurationString::new("30s")
}

fn default_delete_timeout() -> DurationString {
    DurationString::new("5m")
}

fn default_readiness_timeout() -> DurationString {
    DurationString::new("5m")
}

fn one() -> i32 {
    1
}

fn ten() -> i32 {
    10
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_defaults_match_the_default_impls() {
        let checkpointing: CheckpointingSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(checkpointing, CheckpointingSpec::default());
        let savepoints: SavepointsSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(savepoints, SavepointsSpec::default());
        let rollback: RollbackSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(rollback, RollbackSpec::default());
    }

    #[test]
    fn storage_pattern_constant_matches_the_schema() {
        let schema = serde_json::to_value(
            schemars::SchemaGenerator::default().into_root_schema_for::<SavepointsSpec>(),
        )
        .unwrap();
        assert_eq!(schema["properties"]["dir"]["pattern"], STORAGE_URI_PATTERN);
    }
}
