//! The kube-runtime `Controller` over FlinkJob: watches FlinkJobs and the children they own,
//! and reconciles each as observe → validate → plan → apply → status (see the crate docs),
//! wrapped in kube-runtime's `finalizer` helper.
//!
//! Deletion: while the on-delete savepoint is under way the reconcile keeps the finalizer and
//! polls; only once the plan releases the FlinkJob does the finalizer helper's cleanup run
//! and remove it. Every step is idempotent and safe to cancel at any await point: dropping the
//! controller anywhere and starting another leaves the status saying which step to take.
//!
//! `error_policy` tells permanent errors (a child that cannot be built from the spec: await a
//! change) from transient ones (API or control-API failures: requeue with backoff).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::Api;
use kube::runtime::controller::Action as ControllerAction;
use kube::runtime::events::Recorder;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use tracing::Instrument;
use weir_crds::FlinkJob;

use crate::apply::{ApplyContext, apply};
use crate::error::{Error, Result};
use crate::events::{Events, reporter};
use crate::job_client::JobClient;
use crate::observe::{PlanSettings, observe};
use crate::plan::{Requeue, plan};
use crate::process::metrics::Metrics;

/// The finalizer the operator puts on every FlinkJob.
pub const FINALIZER: &str = "weir.dev/savepoint-on-delete";

/// Timing knobs of the controller.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Knobs of the plan.
    pub plan: PlanSettings,
    /// How soon a FlinkJob with something in flight is looked at again.
    pub poll: Duration,
    /// Requeue after a transient error.
    pub error_backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            plan: PlanSettings::default(),
            poll: Duration::from_secs(2),
            error_backoff: Duration::from_secs(5),
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The job control API.
    pub jobs: Arc<dyn JobClient>,
    /// Publishes events.
    pub recorder: Recorder,
    /// Timing knobs.
    pub settings: Settings,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Lifecycle state per FlinkJob, for the per-state gauge.
    lifecycles: Mutex<BTreeMap<(String, String), String>>,
}

impl Context {
    /// A context with the given parts.
    pub fn new(
        client: Client,
        jobs: Arc<dyn JobClient>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Context {
            recorder: Recorder::new(client.clone(), reporter()),
            client,
            jobs,
            settings,
            metrics,
            lifecycles: Mutex::new(BTreeMap::new()),
        }
    }

    fn track_lifecycle(&self, job: &FlinkJob, lifecycle: Option<&str>) {
        let key = (job.namespace().unwrap_or_default(), job.name_any());
        let mut lifecycles = self.lifecycles.lock().unwrap_or_else(|p| p.into_inner());
        match lifecycle {
            Some(state) => lifecycles.insert(key, state.to_owned()),
            None => lifecycles.remove(&key),
        };
        let mut counts = BTreeMap::new();
        for state in lifecycles.values() {
            *counts.entry(state.clone()).or_insert(0u64) += 1;
        }
        self.metrics.set_lifecycle_counts(&counts);
    }
}

/// Runs the controller for FlinkJobs in `namespace` (all namespaces when `None`) until the
/// returned future is dropped.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let jobs: Api<FlinkJob> = scoped(&client, namespace);
    let config = watcher::Config::default();
    // Children are matched to their FlinkJob by owner reference; only ours carry the label.
    let children = watcher::Config::default().labels(crate::children::MANAGED_BY_SELECTOR);
    Controller::new(jobs, config)
        .owns(scoped::<Deployment>(&client, namespace), children.clone())
        .owns(scoped::<StatefulSet>(&client, namespace), children.clone())
        .owns(scoped::<Service>(&client, namespace), children.clone())
        .owns(scoped::<ConfigMap>(&client, namespace), children)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile failed");
            }
        })
        .await;
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reconciles one FlinkJob.
pub async fn reconcile(job: Arc<FlinkJob>, ctx: Arc<Context>) -> Result<ControllerAction> {
    // Every log line of this reconcile names the resource (JSON logs carry span fields).
    let span = tracing::info_span!(
        "reconcile",
        flinkjob = %job.name_any(),
        namespace = %job.namespace().unwrap_or_default()
    );
    let result = reconcile_inner(job.clone(), ctx.clone())
        .instrument(span)
        .await;
    ctx.metrics
        .reconciled(if result.is_ok() { "ok" } else { "error" });
    result
}

async fn reconcile_inner(job: Arc<FlinkJob>, ctx: Arc<Context>) -> Result<ControllerAction> {
    let namespace = job.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let api: Api<FlinkJob> = Api::namespaced(ctx.client.clone(), &namespace);
    let deleting = job.metadata.deletion_timestamp.is_some();
    let ours = job.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && ours {
        // The on-delete savepoint runs before the finalizer helper's cleanup; once the plan
        // releases the job, the helper removes the finalizer.
        let step = step(&job, &ctx).await?;
        if !step.release {
            return Ok(step.action);
        }
    }
    finalizer(&api, FINALIZER, job, |event| async {
        match event {
            FinalizerEvent::Apply(job) => step(&job, &ctx).await.map(|s| s.action),
            FinalizerEvent::Cleanup(job) => {
                ctx.track_lifecycle(&job, None);
                Ok(ControllerAction::await_change())
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer {
        source: Box::new(e),
    })
}

struct Step {
    action: ControllerAction,
    release: bool,
}

/// observe → plan → apply, once.
async fn step(job: &FlinkJob, ctx: &Context) -> Result<Step> {
    let Some((fresh, observed, target)) =
        observe(&ctx.client, ctx.jobs.as_ref(), job, ctx.settings.plan).await?
    else {
        return Ok(Step {
            action: ControllerAction::await_change(),
            release: true,
        });
    };
    let planned = plan(&observed);
    tracing::debug!(
        lifecycle = %planned.status.lifecycle_state,
        step = ?planned.status.upgrade.as_ref().map(|u| u.step),
        actions = planned.actions.len(),
        "planned"
    );
    let events = Events::new(ctx.recorder.clone(), &fresh);
    let cx = ApplyContext {
        client: &ctx.client,
        jobs: ctx.jobs.as_ref(),
        events: &events,
        job: &fresh,
        target: target.as_ref(),
        now: &observed.now,
    };
    apply(&cx, &observed.status, &planned).await?;
    ctx.track_lifecycle(&fresh, Some(planned.status.lifecycle_state.as_str()));
    if let Some(took) = planned.upgrade_finished {
        ctx.metrics.upgrade_finished(took);
    }
    let action = match planned.requeue {
        Requeue::Soon => ControllerAction::requeue(ctx.settings.poll),
        Requeue::After(after) => ControllerAction::requeue(after.max(ctx.settings.poll)),
        Requeue::AwaitChange => ControllerAction::await_change(),
    };
    Ok(Step {
        action,
        release: planned.release,
    })
}

/// Permanent errors await a change (retrying cannot help); transient ones are retried.
pub fn error_policy(job: Arc<FlinkJob>, error: &Error, ctx: Arc<Context>) -> ControllerAction {
    ctx.metrics.error(error.reason());
    if error.is_permanent() {
        tracing::error!(flinkjob = %job.name_any(), error = %error_chain(error), "reconcile failed; waiting for a change");
        ControllerAction::await_change()
    } else {
        tracing::warn!(flinkjob = %job.name_any(), error = %error_chain(error), "reconcile failed; retrying");
        ControllerAction::requeue(ctx.settings.error_backoff)
    }
}

/// An error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    parts.join(": ")
}
