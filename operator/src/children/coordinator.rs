//! The coordinator Deployment (Flink's JobManager): one replica running `weir coordinator`,
//! replaced with the `Recreate` strategy so two coordinators of one job never run at once (a
//! rolling update would start the new one while the old still writes checkpoints).
//!
//! The coordinator runs with `--keep-alive`: when its job ends (stopped with a savepoint for
//! an upgrade, cancelled, finished, failed) it keeps serving the control API instead of
//! exiting, because the Deployment would restart an exited container with its old arguments
//! and resume the old job from its latest checkpoint, duplicating output after an upgrade's
//! stop-with-savepoint. Both probes use `/healthz` (the process serves), so the Service keeps
//! routing the operator's calls (and the workers' registrations) to a coordinator whose job
//! is not `RUNNING`: starting, restarting, or ended.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{ContainerPort, HTTPGetAction, PodSpec, PodTemplateSpec, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{annotations, main_container, merge_override, volumes};
use super::{
    API_PORT, ChildSet, Component, JOB_DIR, JOB_FILE, Names, Owner, RPC_PORT, TOKEN_DIR, TOKEN_KEY,
    labels, metadata, selector_labels,
};
use crate::error::Result;

/// The coordinator's command line after `weir`.
pub fn args(set: &ChildSet) -> Vec<String> {
    let spec = &set.spec;
    let mut args = vec![
        "coordinator".to_owned(),
        format!("{JOB_DIR}/{JOB_FILE}"),
        "--parallelism".to_owned(),
        spec.job.parallelism.to_string(),
        "--max-parallelism".to_owned(),
        spec.job.max_parallelism.to_string(),
        "--listen".to_owned(),
        format!("0.0.0.0:{RPC_PORT}"),
        "--api".to_owned(),
        format!("0.0.0.0:{API_PORT}"),
        "--job-id".to_owned(),
        set.job_id.clone(),
    ];
    if let Some(dir) = &spec.checkpointing.dir {
        args.extend(["--checkpoint-dir".to_owned(), dir.clone()]);
    }
    args.extend([
        "--checkpoint-interval".to_owned(),
        spec.checkpointing.interval.to_string(),
    ]);
    if let Some(dir) = &spec.savepoints.dir {
        args.extend(["--savepoint-dir".to_owned(), dir.clone()]);
    }
    if let Some(path) = &set.restore_path {
        args.extend(["--restore".to_owned(), path.clone()]);
    }
    if spec.job.allow_non_restored_state {
        args.push("--allow-non-restored-state".to_owned());
    }
    let mut settings = spec.config.clone();
    // A spec field wins over the same setting in `config` (as the CRD documents).
    settings.insert(
        "state.checkpoints.num-retained".to_owned(),
        spec.checkpointing.retained.to_string(),
    );
    for (key, value) in settings {
        args.extend(["--set".to_owned(), format!("{key}={value}")]);
    }
    args.extend([
        "--token-file".to_owned(),
        format!("{TOKEN_DIR}/{TOKEN_KEY}"),
        "--heartbeat-timeout".to_owned(),
        "30s".to_owned(),
        "--keep-alive".to_owned(),
    ]);
    args
}

fn probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(API_PORT),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// The coordinator Deployment.
pub fn deployment(owner: &Owner, set: &ChildSet) -> Result<Deployment> {
    let name = Names::of(&owner.name).coordinator;
    let mut container = main_container(
        &set.spec,
        args(set),
        Vec::new(),
        set.spec.coordinator.resources.clone(),
    );
    container.ports = Some(vec![
        ContainerPort {
            name: Some("rpc".to_owned()),
            container_port: RPC_PORT,
            ..ContainerPort::default()
        },
        ContainerPort {
            name: Some("api".to_owned()),
            container_port: API_PORT,
            ..ContainerPort::default()
        },
    ]);
    container.liveness_probe = Some(probe("/healthz"));
    container.readiness_probe = Some(probe("/healthz"));
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&owner.name, Component::Coordinator)),
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
        set.spec.coordinator.pod_template.as_ref(),
        "Deployment",
        &name,
    )?;
    Ok(Deployment {
        metadata: metadata(owner, &name, Component::Coordinator),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&owner.name, Component::Coordinator)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            template,
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}
