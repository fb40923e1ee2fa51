//! The `FlinkJob` custom resource (group `weir.dev`, version `v1alpha1`): spec and status types,
//! the generated CRD, and pure helpers the operator uses (effective values, worker count,
//! durations, conditions, savepoint history, spec validation mirroring the CRD's CEL rules).
//!
//! Types only: nothing here talks to a cluster. The committed `crds/flinkjob.yaml` is
//! [`crd_yaml`]'s output; a test fails when it drifts (`WEIR_UPDATE_CRD=1 cargo nextest run -p
//! weir-crds` rewrites it). Users read the same field docs with `kubectl explain flinkjob.spec`.

mod conditions;
mod duration;
mod effective;
mod generate;
mod pods;
mod spec;
mod status;
mod storage;
mod validate;

pub use conditions::{ConditionType, new_condition};
pub use duration::{DURATION_PATTERN, DurationString, parse_duration};
pub use generate::{crd, crd_yaml};
pub use pods::{CoordinatorSpec, MAIN_CONTAINER, WorkersSpec};
pub use spec::{
    ConfigMapKeyRef, DEFAULT_MAX_PARALLELISM, FlinkJob, FlinkJobSpec, ImagePullPolicy, JobSpec,
    JobState, MAX_MAX_PARALLELISM, UpgradeMode,
};
pub use status::{
    CheckpointInfo, DeployedJob, FlinkJobStatus, JobStatus, LifecycleState, PendingSavepoint,
    RuntimeJobState, SavepointInfo, SavepointKind, UpgradeStatus, UpgradeStep,
};
pub use storage::{
    CheckpointingSpec, OnDeletePolicy, RollbackSpec, STORAGE_URI_PATTERN, SavepointsSpec,
};
pub use validate::SpecViolation;

/// Errors of the helpers in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A duration string does not follow the manifest grammar.
    #[error("invalid duration {value:?}: {reason} (write e.g. 30s, 5m, 1h30m, 7d)")]
    InvalidDuration {
        /// The string as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A spec could not be written as a JSON snapshot.
    #[error("cannot serialize the spec snapshot")]
    SerializeSpec {
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// A spec snapshot in the status is not a valid spec (written by another operator version?).
    #[error("cannot parse the spec snapshot in the status")]
    ParseSpecSnapshot {
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The CRD could not be rendered as YAML.
    #[error("cannot render the CRD as YAML")]
    RenderYaml {
        /// The serializer's error.
        source: serde_saphyr::SerializeError,
    },
}
