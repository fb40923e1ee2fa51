//! The coordinator and worker pods: resources, slots and free-form pod template overrides.
//!
//! Pod templates are deliberately free-form (`x-kubernetes-preserve-unknown-fields`) rather than
//! the full PodSpec schema, which would add several hundred kilobytes to the CRD (the complaint
//! Flink Kubernetes Operator users have about `FlinkDeployment`). The API server still checks
//! the Pods the operator builds from them.

use k8s_openapi::api::core::v1::ResourceRequirements;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Name of the main container in the coordinator and worker pods; a pod template's container of
/// this name is merged into it, other containers are added as sidecars.
pub const MAIN_CONTAINER: &str = "weir";

/// The coordinator pod (Flink's JobManager).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CoordinatorSpec {
    /// CPU and memory of the coordinator container, e.g. `requests: {cpu: 500m, memory: 1Gi}`.
    /// Default: none set (the namespace's defaults apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Overrides of the coordinator pod: a partial Pod (`metadata` and `spec`) merged over the
    /// one the operator builds. See workers.podTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub pod_template: Option<serde_json::Value>,
}

/// The worker pods (Flink's TaskManagers).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkersSpec {
    /// Task slots per worker: how many parallel task instances one worker pod runs. Default 1.
    /// The operator runs ceil(job.parallelism / slots) workers.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1024))]
    pub slots: i32,

    /// CPU and memory of each worker container, e.g. `requests: {cpu: "2", memory: 4Gi}`.
    /// Default: none set (the namespace's defaults apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Overrides of the worker pods: a partial Pod (`metadata` and `spec`) merged over the one the
    /// operator builds. Maps merge key by key, the container named `weir` is merged into the main
    /// container, other containers and volumes are added. Example: `{spec: {nodeSelector:
    /// {pool: streaming}, tolerations: [...]}}`. Not checked until the Pod is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub pod_template: Option<serde_json::Value>,
}

impl Default for WorkersSpec {
    fn default() -> Self {
        Self {
            slots: 1,
            resources: None,
            pod_template: None,
        }
    }
}

fn one() -> i32 {
    1
}

/// An object whose fields the API server keeps as they are (no schema, no pruning).
fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_template_keeps_arbitrary_fields() {
        let workers: WorkersSpec = serde_json::from_value(serde_json::json!({
            "podTemplate": {"spec": {"nodeSelector": {"pool": "streaming"}}}
        }))
        .unwrap();
        assert_eq!(workers.slots, 1);
        assert_eq!(
            workers.pod_template.unwrap()["spec"]["nodeSelector"]["pool"],
            "streaming"
        );
    }
}
