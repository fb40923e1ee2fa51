//! The `FlinkJob` spec: what the user asks for. The `#[kube(...)]` attributes here define the
//! resource itself (names, subresources, printer columns); the `#[x_kube(validation)]` rules
//! become the CRD's CEL `x-kubernetes-validations`, mirrored in Rust by [`crate::validate`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::pods::{CoordinatorSpec, WorkersSpec};
use crate::status::FlinkJobStatus;
use crate::storage::{CheckpointingSpec, RollbackSpec, SavepointsSpec};

/// Default of `job.maxParallelism`: the number of key groups the job's state is split into.
pub const DEFAULT_MAX_PARALLELISM: i32 = 128;
/// The largest `job.maxParallelism` (as in Flink: 2^15 key groups).
pub const MAX_MAX_PARALLELISM: i32 = 32_768;

/// The desired job: what runs (image, SQL), how wide, how its state is kept and carried through
/// changes, and how its pods look. `kubectl explain flinkjob.spec.FIELD` documents each field.
// Several printer columns share a `type_`; clippy takes them for repeated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "weir.dev",
    version = "v1alpha1",
    kind = "FlinkJob",
    plural = "flinkjobs",
    shortname = "fj",
    namespaced,
    status = "FlinkJobStatus",
    derive = "PartialEq",
    doc = "A streaming job run by Weir: a coordinator and workers that execute a SQL job, checkpoint it to object storage, and carry its state through upgrades, rescaling, suspension and restarts.",
    scale(
        spec_replicas_path = ".spec.job.parallelism",
        status_replicas_path = ".status.job.parallelism",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Lifecycle",
        type_ = "string",
        json_path = ".status.lifecycleState",
        description = "Where the job is in its lifecycle"
    ),
    printcolumn(
        name = "Job State",
        type_ = "string",
        json_path = ".status.job.state",
        description = "State of the running job, as its coordinator reports it"
    ),
    printcolumn(
        name = "Parallelism",
        type_ = "integer",
        json_path = ".spec.job.parallelism",
        description = "Desired parallelism"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "The Ready condition",
        priority = 1
    ),
    printcolumn(
        name = "Last Savepoint",
        type_ = "date",
        json_path = ".status.lastSavepoint.time",
        description = "When the last savepoint completed"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("self.job.upgradeMode != 'savepoint' || (has(self.savepoints) && has(self.savepoints.dir))")
        .message("job.upgradeMode savepoint needs savepoints.dir: the upgrade savepoint is written there")
        .field_path(".savepoints.dir")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("self.job.upgradeMode != 'last-state' || (has(self.checkpointing) && has(self.checkpointing.dir))")
        .message("job.upgradeMode last-state needs checkpointing.dir: the upgrade restores the latest checkpoint found there")
        .field_path(".checkpointing.dir")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!has(self.savepoints) || !has(self.savepoints.periodicInterval) || has(self.savepoints.dir)")
        .message("savepoints.periodicInterval needs savepoints.dir")
        .field_path(".savepoints.dir")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!has(self.job.savepointTriggerNonce) || (has(self.savepoints) && has(self.savepoints.dir))")
        .message("job.savepointTriggerNonce needs savepoints.dir: the manual savepoint is written there")
        .field_path(".savepoints.dir")
        .reason(Reason::FieldValueRequired)
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkJobSpec {
    /// Container image of the Weir runtime that runs the coordinator and the workers, e.g.
    /// `ghcr.io/weir-dev/weir:0.1.0`. Changing it is an upgrade (applied with job.upgradeMode).
    #[schemars(length(min = 1))]
    pub image: String,

    /// When the kubelet pulls the image: `Always`, `IfNotPresent` or `Never`. Default: the
    /// Kubernetes default (`Always` for `:latest` tags, `IfNotPresent` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Service account the coordinator and worker pods run as (e.g. one bound to a cloud IAM role
    /// for object-storage access). Default: the namespace's `default` service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,

    /// The job itself: its SQL, parallelism, upgrade mode and desired state.
    pub job: JobSpec,

    /// Change this number (to any other value) to restart the job without changing anything
    /// else. The restart follows job.upgradeMode, like any other change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,

    /// Periodic checkpoints: how often, where to, how many to keep.
    #[serde(default)]
    pub checkpointing: CheckpointingSpec,

    /// Savepoints: where they go, periodic savepoints, their history, and what happens on delete.
    #[serde(default)]
    pub savepoints: SavepointsSpec,

    /// Rollback of upgrades that do not become healthy.
    #[serde(default)]
    pub rollback: RollbackSpec,

    /// The coordinator pod (Flink's JobManager): resources and pod template overrides.
    #[serde(default)]
    pub coordinator: CoordinatorSpec,

    /// The worker pods (Flink's TaskManagers): slots per worker, resources and pod template
    /// overrides. The operator runs ceil(job.parallelism / workers.slots) workers.
    #[serde(default)]
    pub workers: WorkersSpec,

    /// Environment variables for the coordinator and worker containers, e.g. object-store
    /// settings (`AWS_REGION`) or a single credential taken from a Secret with `valueFrom`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub env: Vec<EnvVar>,

    /// Sources of environment variables for the coordinator and worker containers, typically a
    /// Secret holding object-store credentials (`secretRef: {name: s3-credentials}` with keys
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,

    /// Runtime settings with Flink's key names, passed to the coordinator and the workers, e.g.
    /// `execution.checkpointing.timeout: 10m` or `table.exec.state.ttl: 1d`. Settings that have a
    /// field in this spec (parallelism, checkpoint interval and dirs) are taken from the field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// The job: what runs, how wide, how it is upgraded, and whether it should run at all.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("has(self.sql) != has(self.sqlConfigMap)")
        .message("set exactly one of job.sql and job.sqlConfigMap"),
    validation = Rule::new("self.parallelism <= self.maxParallelism")
        .message("job.parallelism must not exceed job.maxParallelism")
        .field_path(".parallelism"),
    validation = Rule::new("self.maxParallelism == oldSelf.maxParallelism || self.upgradeMode == 'stateless'")
        .message("job.maxParallelism fixes how the job's state is split into key groups and cannot change while the state is kept; change it only together with upgradeMode stateless, or create a new FlinkJob")
        .field_path(".maxParallelism")
)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// The job as an inline SQL script in Flink SQL's dialect: `CREATE TABLE ... WITH (...)`
    /// statements followed by `INSERT INTO ... SELECT ...`. Set this or sqlConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub sql: Option<String>,

    /// The job's SQL script read from a key of a ConfigMap in the same namespace, for scripts
    /// managed apart from the manifest. Set this or sql. Editing the ConfigMap does not restart
    /// the job; change restartNonce to pick it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_config_map: Option<ConfigMapKeyRef>,

    /// Number of parallel instances of each operator. Default 1. Changing it rescales the job
    /// through a savepoint (or a checkpoint in last-state mode); the scale subresource
    /// (`kubectl scale fj/NAME --replicas=4`) sets it too.
    #[serde(default = "default_parallelism")]
    #[schemars(range(min = 1))]
    pub parallelism: i32,

    /// Upper bound for parallelism: the number of key groups keyed state is split into. Default
    /// 128. It cannot change while the job's state is kept (only with upgradeMode stateless).
    #[serde(default = "default_max_parallelism")]
    #[schemars(range(min = 1, max = 32768))]
    pub max_parallelism: i32,

    /// How changes to the spec reach the running job. `stateless` (default): cancel and start
    /// fresh, state is dropped. `savepoint`: stop with a savepoint and restore it (needs
    /// savepoints.dir); the safest. `last-state`: cancel and restore the latest completed
    /// checkpoint (needs checkpointing.dir); faster, for jobs whose checkpoints are frequent.
    #[serde(default)]
    pub upgrade_mode: UpgradeMode,

    /// Desired state: `running` (default) or `suspended`. Suspending stops the job (with a
    /// savepoint unless upgradeMode is stateless) and removes its pods; `running` resumes it.
    #[serde(default)]
    pub state: JobState,

    /// Savepoint or checkpoint to start from on the first deployment only, e.g.
    /// `s3://bucket/savepoints/savepoint-42`. Ignored once the job has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub initial_savepoint_path: Option<String>,

    /// Allow restoring a savepoint that holds state for operators the new job no longer has (that
    /// state is dropped). Default false: such an upgrade is refused and the old job keeps running.
    #[serde(default)]
    pub allow_non_restored_state: bool,

    /// Change this number (to any other value) to take a savepoint now (needs savepoints.dir). It
    /// is recorded in status.lastSavepoint.triggerNonce once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_nonce: Option<i64>,
}

/// A key of a ConfigMap in the FlinkJob's namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key in the ConfigMap's data holding the SQL script, e.g. `job.sql`.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// How spec changes are applied to the running job.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    /// Cancel the job and start it without state.
    #[default]
    Stateless,
    /// Stop the job with a savepoint, redeploy, restore the savepoint.
    Savepoint,
    /// Cancel the job, redeploy, restore the latest completed checkpoint.
    LastState,
}

/// Whether the job should run.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// The job runs.
    #[default]
    Running,
    /// The job is stopped (with a savepoint unless stateless) and its pods removed.
    Suspended,
}

/// When the kubelet pulls the container image (as in a Pod's container).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImagePullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the image is not on the node.
    IfNotPresent,
    /// Never pull; the image must be on the node.
    Never,
}

impl ImagePullPolicy {
    /// The value as Kubernetes writes it in a container.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

fn default_parallelism() -> i32 {
    1
}

fn default_max_parallelism() -> i32 {
    DEFAULT_MAX_PARALLELISM
}
