//! The status conditions, derived from the planned status at the end of every plan (pure), so
//! `kubectl wait --for=condition=Ready`, Argo CD and Flux read the same story as the lifecycle:
//!
//! - **Ready** — the lifecycle is Stable, no upgrade is in flight, the job runs, and what runs
//!   is the current spec (a refused or pending change makes it False);
//! - **Progressing** — a deployment, upgrade, rollback or deletion is under way;
//! - **Degraded** — the plan found something the user must act on; the reason names it and
//!   the message (also `status.error`) says what to do.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use weir_crds::{
    ConditionType, FlinkJobSpec, FlinkJobStatus, LifecycleState, RuntimeJobState, UpgradeStep,
    new_condition,
};

use crate::plan::for_deployment;

/// Why the job needs attention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Degraded {
    /// CamelCase reason, e.g. `InvalidSpec`, `UpgradeRefused`, `RolledBack`.
    pub reason: &'static str,
    /// What happened and what to do.
    pub message: String,
}

impl Degraded {
    /// A degraded finding.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Degraded {
            reason,
            message: message.into(),
        }
    }
}

/// Sets Ready, Progressing and Degraded on `status` (which the plan has already moved on).
pub fn set_conditions(
    status: &mut FlinkJobStatus,
    spec: &FlinkJobSpec,
    generation: i64,
    degraded: Option<&Degraded>,
    now: &Time,
) {
    let generation_ = Some(generation);
    let lifecycle = status.lifecycle_state;
    let running = status
        .job
        .as_ref()
        .and_then(|j| j.state)
        .is_some_and(|s| s == RuntimeJobState::Running);
    let current = status
        .reconciled_spec()
        .ok()
        .flatten()
        .is_some_and(|r| for_deployment(&r) == for_deployment(spec));
    let ready = lifecycle == LifecycleState::Stable
        && status.upgrade.is_none()
        && running
        && current
        && degraded.is_none();
    let (reason, message) = if ready {
        (
            "Stable",
            format!("the job runs generation {generation} stably"),
        )
    } else if let Some(d) = degraded {
        (d.reason, d.message.clone())
    } else if lifecycle == LifecycleState::Stable && !running {
        (
            "JobNotRunning",
            "the job is not running; see status.job.state".to_owned(),
        )
    } else {
        (lifecycle.as_str(), lifecycle_message(status))
    };
    status.set_condition(new_condition(
        ConditionType::Ready,
        ready,
        reason,
        message,
        generation_,
        now,
    ));

    let progressing = lifecycle.is_progressing() || status.upgrade.is_some();
    let (reason, message) = if progressing {
        (lifecycle.as_str(), lifecycle_message(status))
    } else {
        ("Settled", "no change is in flight".to_owned())
    };
    status.set_condition(new_condition(
        ConditionType::Progressing,
        progressing,
        reason,
        message,
        generation_,
        now,
    ));

    let (is_degraded, reason, message) = match degraded {
        Some(d) => (true, d.reason, d.message.clone()),
        None => (false, "Healthy", "nothing needs attention".to_owned()),
    };
    status.set_condition(new_condition(
        ConditionType::Degraded,
        is_degraded,
        reason,
        message,
        generation_,
        now,
    ));
}

fn lifecycle_message(status: &FlinkJobStatus) -> String {
    if let Some(upgrade) = &status.upgrade {
        let what = if upgrade.rollback {
            "rolling back to the last stable spec"
        } else {
            "applying the spec change"
        };
        let step = match upgrade.step {
            UpgradeStep::Stopping => "stopping the running job",
            UpgradeStep::Deploying => "deploying the coordinator and workers",
            UpgradeStep::Verifying => "waiting for the job to run",
        };
        return format!("{what}: {step}");
    }
    match status.lifecycle_state {
        LifecycleState::Created => "not deployed yet".into(),
        LifecycleState::Deploying => "deploying the coordinator and workers".into(),
        LifecycleState::Running => "the job runs; not yet stable".into(),
        LifecycleState::Stable => "the job runs stably".into(),
        LifecycleState::Upgrading => "applying the spec change".into(),
        LifecycleState::Suspended => "suspended (job.state: suspended); no pods run".into(),
        LifecycleState::RollingBack => "rolling back to the last stable spec".into(),
        LifecycleState::RolledBack => {
            "rolled back to the last stable spec; change the spec to try again".into()
        }
        LifecycleState::Failed => "the job failed; see status.error".into(),
        LifecycleState::Deleting => "taking the on-delete savepoint before deletion".into(),
    }
}
