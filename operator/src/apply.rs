//! Apply: carries out a [`Plan`] in a stated order, every step idempotent and safe to cancel:
//!
//! 1. the planned status is written first (write-ahead), as a JSON patch that tests the
//!    resourceVersion observe read — so a plan made from a stale status is never acted on;
//! 2. the token Secret is created if missing (never rewritten);
//! 3. children by server-side apply under the field manager `weir-operator`: job ConfigMap,
//!    Services, coordinator Deployment, workers StatefulSet — or, for a suspended job, the
//!    Deployment and StatefulSet are deleted; children of ours not in the desired set
//!    (orphans) are deleted;
//! 4. calls to the job: cancel, savepoint triggers, savepoint disposal;
//! 5. events;
//! 6. trigger ids returned in step 4 are written to the status.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use weir_crds::{FlinkJob, FlinkJobStatus};

use crate::children::{
    ChildSet, FIELD_MANAGER, Names, Owner, children_selector, configmap, coordinator, secret,
    service, workers,
};
use crate::error::{Error, JobControlFailure, Result};
use crate::events::Events;
use crate::job_client::{JobClient, JobTarget};
use crate::plan::{Action, Plan, record_trigger};

/// What apply needs besides the plan.
pub struct ApplyContext<'a> {
    /// The API client.
    pub client: &'a Client,
    /// The job's control API.
    pub jobs: &'a dyn JobClient,
    /// The event publisher for this FlinkJob.
    pub events: &'a Events,
    /// The FlinkJob as observe read it (its resourceVersion guards the status write).
    pub job: &'a FlinkJob,
    /// The coordinator's control API, when the token exists.
    pub target: Option<&'a JobTarget>,
    /// The time of this reconcile.
    pub now: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
}

/// Carries out `plan` for the FlinkJob whose observed status was `observed_status`.
pub async fn apply(
    cx: &ApplyContext<'_>,
    observed_status: &FlinkJobStatus,
    plan: &Plan,
) -> Result<()> {
    let job = cx.job;
    let namespace = job.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let name = job.name_any();
    let api: Api<FlinkJob> = Api::namespaced(cx.client.clone(), &namespace);
    let mut version = job.resource_version();
    if &plan.status != observed_status {
        version = write_status(&api, &name, version.as_deref(), &plan.status).await?;
    }
    let owner = Owner {
        name: name.clone(),
        namespace: namespace.clone(),
        reference: job
            .controller_owner_ref(&())
            .ok_or(Error::MissingMetadata("uid"))?,
    };
    let mut status = plan.status.clone();
    let mut triggered = false;
    for action in &plan.actions {
        match action {
            Action::EnsureToken => ensure_token(cx.client, &owner).await?,
            Action::ApplyChildren(set) => apply_children(cx.client, &owner, set).await?,
            Action::Cancel => cancel(cx).await?,
            Action::TriggerSavepoint(trigger) => {
                let target = require_target(cx, "trigger savepoint")?;
                let trigger_id = cx
                    .jobs
                    .trigger_savepoint(
                        target,
                        trigger.dir.as_deref(),
                        trigger.stop,
                        &trigger.request_id,
                    )
                    .await?;
                tracing::info!(%trigger_id, request_id = %trigger.request_id, stop = trigger.stop, "savepoint triggered");
                record_trigger(&mut status, trigger, trigger_id, cx.now);
                triggered = true;
            }
            Action::DisposeSavepoint { path } => dispose(cx, path).await,
            Action::Event(note) => cx.events.publish(note).await,
        }
    }
    if triggered {
        write_status(&api, &name, version.as_deref(), &status).await?;
    }
    Ok(())
}

/// Replaces the status, if the object is still at `version`; returns the new version.
async fn write_status(
    api: &Api<FlinkJob>,
    name: &str,
    version: Option<&str>,
    status: &FlinkJobStatus,
) -> Result<Option<String>> {
    let mut operations = Vec::new();
    if let Some(version) = version {
        operations
            .push(json!({"op": "test", "path": "/metadata/resourceVersion", "value": version}));
    }
    operations.push(json!({"op": "add", "path": "/status", "value": status}));
    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(operations))
        .map_err(|e| Error::BuildChild {
            kind: "status patch",
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
    let written = api
        .patch_status(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .map_err(|source| Error::PatchStatus {
            name: name.to_owned(),
            source,
        })?;
    Ok(written.resource_version())
}

fn require_target<'a>(cx: &'a ApplyContext<'_>, operation: &'static str) -> Result<&'a JobTarget> {
    cx.target.ok_or_else(|| Error::JobControl {
        operation,
        url: String::new(),
        failure: JobControlFailure::Unreachable,
        message: "the token Secret does not exist yet".into(),
    })
}

async fn cancel(cx: &ApplyContext<'_>) -> Result<()> {
    let target = require_target(cx, "cancel")?;
    match cx.jobs.cancel(target).await {
        // Already ended: what cancel was for.
        Err(e) if e.job_control_failure() == Some(JobControlFailure::Rejected) => Ok(()),
        other => other,
    }
}

/// Disposal is best effort: a savepoint that cannot be deleted stays in storage and an event
/// names it, but the job carries on.
async fn dispose(cx: &ApplyContext<'_>, path: &str) {
    let result = match cx.target {
        Some(target) => cx.jobs.dispose_savepoint(target, path).await,
        None => return,
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, path, "savepoint not disposed");
        cx.events
            .publish(&crate::plan::Note {
                warning: true,
                reason: "SavepointNotDisposed",
                message: format!(
                    "{path} left the savepoint history but was not deleted: {e}; delete it by hand"
                ),
            })
            .await;
    }
}

async fn ensure_token(client: &Client, owner: &Owner) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &owner.namespace);
    let name = Names::of(&owner.name).secret;
    let exists = api
        .get_opt(&name)
        .await
        .map_err(|source| Error::ReadChild {
            kind: "Secret",
            name: name.clone(),
            source,
        })?;
    match exists {
        Some(found) if secret::token_of(&found).is_some() => Ok(()),
        Some(_) => Err(Error::EmptyToken { name }),
        None => {
            let created = api
                .create(
                    &PostParams::default(),
                    &secret::secret(owner, &secret::new_token()),
                )
                .await;
            match created {
                // Created by a concurrent reconcile: the first token stays.
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                other => other.map(drop).map_err(|source| Error::ApplyChild {
                    kind: "Secret",
                    name,
                    source,
                }),
            }
        }
    }
}

async fn apply_children(client: &Client, owner: &Owner, set: &ChildSet) -> Result<()> {
    let names = Names::of(&owner.name);
    let mut keep: Vec<(&'static str, String)> = vec![
        ("ConfigMap", names.config_map.clone()),
        ("Service", names.coordinator.clone()),
        ("Service", names.workers.clone()),
    ];
    if let Some(sql) = &set.sql {
        server_side_apply(
            client,
            owner,
            "ConfigMap",
            &configmap::config_map(owner, sql),
        )
        .await?;
    }
    server_side_apply(client, owner, "Service", &service::coordinator(owner)).await?;
    server_side_apply(client, owner, "Service", &service::workers(owner)).await?;
    if set.running {
        let deployment = coordinator::deployment(owner, set)?;
        server_side_apply(client, owner, "Deployment", &deployment).await?;
        let stateful_set = workers::stateful_set(owner, set)?;
        server_side_apply(client, owner, "StatefulSet", &stateful_set).await?;
        keep.push(("Deployment", names.coordinator.clone()));
        keep.push(("StatefulSet", names.workers.clone()));
    }
    remove_orphans::<Deployment>(client, owner, "Deployment", &keep).await?;
    remove_orphans::<StatefulSet>(client, owner, "StatefulSet", &keep).await?;
    remove_orphans::<Service>(client, owner, "Service", &keep).await?;
    remove_orphans::<ConfigMap>(client, owner, "ConfigMap", &keep).await?;
    Ok(())
}

async fn server_side_apply<K>(
    client: &Client,
    owner: &Owner,
    kind: &'static str,
    object: &K,
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &owner.namespace);
    let name = object.meta().name.clone().unwrap_or_default();
    // Apply bodies need apiVersion and kind, which k8s-openapi's Serialize writes.
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map(drop)
    .map_err(|source| Error::ApplyChild { kind, name, source })
}

/// Deletes children of this FlinkJob (by label and owner) that are not in `keep`.
async fn remove_orphans<K>(
    client: &Client,
    owner: &Owner,
    kind: &'static str,
    keep: &[(&'static str, String)],
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &owner.namespace);
    let listed = api
        .list(&ListParams::default().labels(&children_selector(&owner.name)))
        .await
        .map_err(|source| Error::ReadChild {
            kind,
            name: children_selector(&owner.name),
            source,
        })?;
    for child in listed {
        let name = child.name_any();
        let ours = child
            .owner_references()
            .iter()
            .any(|r| r.uid == owner.reference.uid);
        if !ours || keep.iter().any(|(k, n)| *k == kind && *n == name) {
            continue;
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => tracing::info!(kind, %name, "removed"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => return Err(Error::DeleteChild { kind, name, source }),
        }
    }
    Ok(())
}
