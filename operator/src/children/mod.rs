//! The Kubernetes objects a FlinkJob owns, one builder per file: the job's SQL ConfigMap
//! ([`configmap`]), the token Secret ([`secret`]), the coordinator Deployment ([`coordinator`]),
//! the workers StatefulSet ([`workers`]) and their Services ([`service`]), with the pod parts
//! they share ([`pod`]).
//!
//! Builders are pure: they turn a [`ChildSet`] (what the plan decided to deploy) and the
//! [`Owner`] into objects; `apply` sends them with server-side apply. Every object carries the
//! common labels and a controller owner reference, so deleting the FlinkJob garbage-collects
//! them and the controller's watches map them back to it.

pub mod configmap;
pub mod coordinator;
pub mod pod;
pub mod secret;
pub mod service;
pub mod workers;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use weir_crds::FlinkJobSpec;

/// Port of the coordinator/worker protocol.
pub const RPC_PORT: i32 = 6123;
/// Port of the control API (and the probes).
pub const API_PORT: i32 = 8081;
/// Port of the workers' data exchange.
pub const DATA_PORT: i32 = 6124;
/// Where the job's SQL is mounted.
pub const JOB_DIR: &str = "/etc/weir/job";
/// The SQL file name inside [`JOB_DIR`] (and the ConfigMap key).
pub const JOB_FILE: &str = "job.sql";
/// Where the token Secret is mounted.
pub const TOKEN_DIR: &str = "/var/run/weir/token";
/// The token's key in the Secret (and its file name in [`TOKEN_DIR`]).
pub const TOKEN_KEY: &str = "token";
/// Pod template annotation whose change rolls the pods: a hash of what was deployed.
pub const DEPLOYMENT_HASH_ANNOTATION: &str = "weir.dev/deployment-hash";

/// What the plan decided to deploy: the spec, the job id and restore path, and whether pods
/// run at all.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildSet {
    /// The spec being deployed (the reconciled spec, an upgrade's target, or the last stable
    /// spec after a rollback).
    pub spec: FlinkJobSpec,
    /// The coordinator's `--job-id`.
    pub job_id: String,
    /// The coordinator's `--restore`, if any.
    pub restore_path: Option<String>,
    /// False when suspended: the coordinator and workers are removed.
    pub running: bool,
    /// The SQL to write into the job ConfigMap; `None` leaves the ConfigMap as it is (SQL read
    /// from job.sqlConfigMap is copied only when deploying, so editing that ConfigMap does not
    /// change a running job behind the user's back).
    pub sql: Option<String>,
    /// Hash of the deployment-relevant spec, job id and restore path: pods roll when it changes.
    pub hash: String,
}

/// The FlinkJob that owns the children.
#[derive(Clone, Debug)]
pub struct Owner {
    /// The FlinkJob's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The controller owner reference to put on every child.
    pub reference: OwnerReference,
}

/// Names of a FlinkJob's children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The job SQL ConfigMap.
    pub config_map: String,
    /// The token Secret.
    pub secret: String,
    /// The coordinator Deployment and its Service.
    pub coordinator: String,
    /// The workers StatefulSet and its headless Service.
    pub workers: String,
}

impl Names {
    /// The names for FlinkJob `name`.
    pub fn of(name: &str) -> Self {
        Names {
            config_map: format!("{name}-job"),
            secret: format!("{name}-token"),
            coordinator: format!("{name}-coordinator"),
            workers: format!("{name}-workers"),
        }
    }
}

/// The component label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// The SQL ConfigMap and token Secret.
    Job,
    /// The coordinator Deployment, its pod and Service.
    Coordinator,
    /// The workers StatefulSet, its pods and headless Service.
    Workers,
}

impl Component {
    fn as_str(self) -> &'static str {
        match self {
            Component::Job => "job",
            Component::Coordinator => "coordinator",
            Component::Workers => "workers",
        }
    }
}

/// Label naming the owning FlinkJob (what the operator lists its children by).
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label naming the component.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Label naming the manager.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The field manager of every server-side apply, and the managed-by label value.
pub const FIELD_MANAGER: &str = "weir-operator";
/// Selects every object the operator manages (the controller's watches of children).
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=weir-operator";

/// The labels that select a component's pods (also the Services' selectors).
pub fn selector_labels(name: &str, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "weir".to_owned()),
        (INSTANCE_LABEL.to_owned(), name.to_owned()),
        (COMPONENT_LABEL.to_owned(), component.as_str().to_owned()),
    ])
}

/// Selector labels plus the managed-by label: what every child carries.
pub fn labels(name: &str, component: Component) -> BTreeMap<String, String> {
    let mut labels = selector_labels(name, component);
    labels.insert(MANAGED_BY_LABEL.to_owned(), FIELD_MANAGER.to_owned());
    labels
}

/// The worker pods' selector as a string (status.selector, for the scale subresource).
pub fn workers_selector(name: &str) -> String {
    selector_labels(name, Component::Workers)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The label selector listing every child of a FlinkJob.
pub fn children_selector(name: &str) -> String {
    format!("{INSTANCE_LABEL}={name},{MANAGED_BY_LABEL}={FIELD_MANAGER}")
}

/// Metadata of a child: name, namespace, labels, owner reference.
pub fn metadata(owner: &Owner, name: &str, component: Component) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(owner.namespace.clone()),
        labels: Some(labels(&owner.name, component)),
        owner_references: Some(vec![owner.reference.clone()]),
        ..ObjectMeta::default()
    }
}

/// The control API's URL inside the cluster.
pub fn api_url(name: &str, namespace: &str) -> String {
    format!(
        "http://{}.{namespace}.svc:{API_PORT}",
        Names::of(name).coordinator
    )
}

/// A stable 64-bit FNV-1a hash, hex: the same input gives the same annotation in every
/// operator build (std's hasher is randomly seeded per process).
pub fn stable_hash(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}
