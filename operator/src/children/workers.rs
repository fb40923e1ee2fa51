//! The workers StatefulSet (Flink's TaskManagers): ceil(parallelism / slots) pods running
//! `weir worker`, each reachable at `<pod>.<headless service>` for the data exchange. Pods start
//! in parallel (no ordinal ordering is needed) and carry their own name from the downward API.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ContainerPort, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::pod::{annotations, main_container, merge_override, volumes};
use super::{
    ChildSet, Component, DATA_PORT, Names, Owner, RPC_PORT, TOKEN_DIR, TOKEN_KEY, labels, metadata,
    selector_labels,
};
use crate::error::Result;

/// A worker's command line after `weir`.
pub fn args(owner_name: &str, set: &ChildSet) -> Vec<String> {
    let names = Names::of(owner_name);
    vec![
        "worker".to_owned(),
        "--coordinator".to_owned(),
        format!("http://{}:{RPC_PORT}", names.coordinator),
        "--slots".to_owned(),
        set.spec.slots_per_worker().to_string(),
        "--data-port".to_owned(),
        DATA_PORT.to_string(),
        "--bind".to_owned(),
        "0.0.0.0".to_owned(),
        "--advertise-host".to_owned(),
        format!("$(POD_NAME).{}", names.workers),
        "--token-file".to_owned(),
        format!("{TOKEN_DIR}/{TOKEN_KEY}"),
    ]
}

/// The workers StatefulSet.
pub fn stateful_set(owner: &Owner, set: &ChildSet) -> Result<StatefulSet> {
    let name = Names::of(&owner.name).workers;
    let pod_name = EnvVar {
        name: "POD_NAME".to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let mut container = main_container(
        &set.spec,
        args(&owner.name, set),
        vec![pod_name],
        set.spec.workers.resources.clone(),
    );
    container.ports = Some(vec![ContainerPort {
        name: Some("data".to_owned()),
        container_port: DATA_PORT,
        ..ContainerPort::default()
    }]);
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&owner.name, Component::Workers)),
            annotations: Some(annotations(set)),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: Some(volumes(&owner.name)),
            service_account_name: set.spec.service_account.clone(),
            ..PodSpec::default()
        }),
    };
    let template = merge_override(
        template,
        set.spec.workers.pod_template.as_ref(),
        "StatefulSet",
        &name,
    )?;
    Ok(StatefulSet {
        metadata: metadata(owner, &name, Component::Workers),
        spec: Some(StatefulSetSpec {
            replicas: Some(set.spec.workers_replicas()),
            service_name: Some(name.clone()),
            pod_management_policy: Some("Parallel".to_owned()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&owner.name, Component::Workers)),
                ..LabelSelector::default()
            },
            template,
            ..StatefulSetSpec::default()
        }),
        status: None,
    })
}
