//! Plan: the pure middle of reconcile. [`plan`] maps what was observed ([`Observed`]) to the
//! next status and the actions that get there ([`Plan`]); it reads no clock and does no I/O, so
//! every transition is a table test (`plan/tests.rs`).
//!
//! The lifecycle is an explicit state machine over the recorded status:
//!
//! - no upgrade in flight ([`steady`]): compare the spec with the reconciled one
//!   ([`classify`]); a change that needs a redeploy starts an upgrade, anything else is
//!   handled in place (manual and periodic savepoints, the job's state);
//! - an upgrade in flight ([`upgrade`]): `Stopping` (stop with savepoint, or cancel) →
//!   `Deploying` (apply the target's children) → `Verifying` (until Stable, or roll back);
//! - deletion ([`delete`]): the on-delete savepoint, bounded by a timeout.
//!
//! The returned status is written *before* the actions run (write-ahead), so an operator
//! killed anywhere finds the step it was taking in the status and takes it again; every step
//! is idempotent (children by server-side apply, savepoints by request id).

mod delete;
mod steady;
mod upgrade;

#[cfg(test)]
mod tests;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use weir_crds::{
    CheckpointInfo, DeployedJob, FlinkJobSpec, FlinkJobStatus, JobStatus, LifecycleState,
    RuntimeJobState, SavepointKind, SpecViolation,
};

use crate::children::{ChildSet, stable_hash, workers_selector};
use crate::observe::{Observed, Runtime};
use crate::status::{Degraded, set_conditions};

pub use steady::needs_compatibility_check;

/// The next status and the actions that get there.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status to write before acting.
    pub status: FlinkJobStatus,
    /// What to do, in order (apply sorts them into its stated order).
    pub actions: Vec<Action>,
    /// When to look again.
    pub requeue: Requeue,
    /// Deleting: the finalizer may be removed.
    pub release: bool,
    /// An upgrade finished in this step, after this long (for the metrics).
    pub upgrade_finished: Option<Duration>,
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the token Secret unless it exists.
    EnsureToken,
    /// Apply the children for this deployment (and remove the pods when it is not running).
    ApplyChildren(Box<ChildSet>),
    /// Cancel the job.
    Cancel,
    /// Trigger a savepoint; its trigger id is recorded in the status afterwards.
    TriggerSavepoint(SavepointTrigger),
    /// Delete a savepoint's files (it left the history).
    DisposeSavepoint {
        /// Where it is stored.
        path: String,
    },
    /// Publish an event on the FlinkJob.
    Event(Note),
}

/// A savepoint to trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct SavepointTrigger {
    /// Deterministic id: the same request after a restart returns the same trigger.
    pub request_id: String,
    /// Target directory.
    pub dir: Option<String>,
    /// Stop the job once it completes.
    pub stop: bool,
    /// Where its trigger id goes.
    pub purpose: TriggerPurpose,
}

/// Where a trigger id is recorded.
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerPurpose {
    /// `status.upgrade.savepointTriggerId`.
    Upgrade,
    /// `status.pendingSavepoint`; the reconciled spec snapshot, if given, is recorded with it
    /// (a handled savepointTriggerNonce).
    Pending {
        /// Why it is taken.
        kind: SavepointKind,
        /// The nonce that asked for it.
        nonce: Option<i64>,
        /// Spec snapshot to record as reconciled once triggered.
        reconciled_spec: Option<String>,
    },
}

/// An event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// The sentence a user reads.
    pub message: String,
}

/// When to reconcile again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requeue {
    /// Something is in flight: poll again shortly.
    Soon,
    /// After this long.
    After(Duration),
    /// Only on a change.
    AwaitChange,
}

/// Records a trigger id returned by the control API where `purpose` says.
pub fn record_trigger(
    status: &mut FlinkJobStatus,
    trigger: &SavepointTrigger,
    trigger_id: String,
    now: &Time,
) {
    match &trigger.purpose {
        TriggerPurpose::Upgrade => {
            if let Some(upgrade) = status.upgrade.as_mut() {
                upgrade.savepoint_trigger_id = Some(trigger_id);
            }
        }
        TriggerPurpose::Pending {
            kind,
            nonce,
            reconciled_spec,
        } => {
            status.pending_savepoint = Some(weir_crds::PendingSavepoint {
                trigger_id,
                kind: *kind,
                trigger_nonce: *nonce,
                triggered_at: now.clone(),
            });
            if let Some(spec) = reconciled_spec {
                status.reconciled_spec = Some(spec.clone());
            }
        }
    }
}

/// Plans the next step for `o`.
pub fn plan(o: &Observed) -> Plan {
    let mut p = Planner::new(o);
    p.record_runtime();
    if o.deletion.is_some() {
        p.delete();
    } else if o.status.upgrade.is_some() {
        p.continue_upgrade();
    } else if let Err(violations) = validate(o) {
        p.invalid(&violations);
    } else {
        p.steady();
    }
    p.finish()
}

/// The spec's own rules, and the update rules against the reconciled spec.
fn validate(o: &Observed) -> Result<(), Vec<SpecViolation>> {
    match o.status.reconciled_spec() {
        Ok(Some(old)) => o.spec.validate_update(&old),
        _ => o.spec.validate(),
    }
}

/// How a spec change reaches the running job (the Flink operator's classification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing changed.
    None,
    /// Only fields that need no redeploy (savepoint history, periodic interval, rollback
    /// policy, the trigger nonce, initialSavepointPath after the first deploy), or a change
    /// while suspended (the resume deploys it).
    Ignored,
    /// job.state running → suspended.
    Suspend,
    /// job.state suspended → running (with whatever else changed).
    Resume,
    /// Only the parallelism (or slots per worker): the state is redistributed.
    Rescale,
    /// Anything else: redeploy with the upgrade mode.
    Upgrade,
}

/// Classifies the change from `deployed` to `desired`.
pub fn classify(deployed: &FlinkJobSpec, desired: &FlinkJobSpec) -> Change {
    let old = for_deployment(deployed);
    let new = for_deployment(desired);
    if old == new {
        return if deployed == desired {
            Change::None
        } else {
            Change::Ignored
        };
    }
    match (deployed.is_suspended(), desired.is_suspended()) {
        (false, true) => Change::Suspend,
        (true, false) => Change::Resume,
        (true, true) => Change::Ignored,
        (false, false) => {
            let mut rescaled = old;
            rescaled.job.parallelism = new.job.parallelism;
            rescaled.workers.slots = new.workers.slots;
            if rescaled == new {
                Change::Rescale
            } else {
                Change::Upgrade
            }
        }
    }
}

/// The spec without the fields that need no redeploy: what the pods are built from.
pub fn for_deployment(spec: &FlinkJobSpec) -> FlinkJobSpec {
    let mut spec = spec.clone();
    spec.job.savepoint_trigger_nonce = None;
    spec.job.initial_savepoint_path = None;
    spec.savepoints.periodic_interval = None;
    spec.savepoints.history_max_count = 10;
    spec.savepoints.history_max_age = None;
    spec.savepoints.dispose_on_cleanup = true;
    spec.savepoints.on_delete = Default::default();
    spec.savepoints.delete_timeout = "5m".into();
    spec.rollback = Default::default();
    spec
}

/// The SQL a spec deploys: inline, or read from its ConfigMap.
pub fn sql_of(o: &Observed, spec: &FlinkJobSpec) -> Result<String, String> {
    if let Some(sql) = &spec.job.sql {
        return Ok(sql.clone());
    }
    let Some(reference) = &spec.job.sql_config_map else {
        return Err("set job.sql or job.sqlConfigMap".into());
    };
    o.sql_config_maps
        .get(&(reference.name.clone(), reference.key.clone()))
        .cloned()
        .unwrap_or_else(|| Err(format!("ConfigMap {} was not read", reference.name)))
}

/// The working state of one plan.
pub(crate) struct Planner<'a> {
    o: &'a Observed,
    status: FlinkJobStatus,
    actions: Vec<Action>,
    requeue: Requeue,
    release: bool,
    upgrade_finished: Option<Duration>,
    degraded: Option<Degraded>,
    error: Option<String>,
}

impl<'a> Planner<'a> {
    fn new(o: &'a Observed) -> Self {
        Planner {
            o,
            status: o.status.clone(),
            actions: Vec::new(),
            requeue: Requeue::AwaitChange,
            release: false,
            upgrade_finished: None,
            degraded: None,
            error: None,
        }
    }

    fn finish(mut self) -> Plan {
        self.status.observed_generation = Some(self.o.generation);
        self.status.error = self
            .degraded
            .as_ref()
            .map(|d| d.message.clone())
            .or(self.error.take());
        set_conditions(
            &mut self.status,
            &self.o.spec,
            self.o.generation,
            self.degraded.as_ref(),
            &self.o.now,
        );
        Plan {
            status: self.status,
            actions: self.actions,
            requeue: self.requeue,
            release: self.release,
            upgrade_finished: self.upgrade_finished,
        }
    }

    /// Copies what the coordinator reported into the status.
    fn record_runtime(&mut self) {
        self.status.selector = Some(workers_selector(&self.o.name));
        let deployed_id = self.status.deployment.as_ref().map(|d| d.job_id.clone());
        self.status.job = match &self.o.runtime {
            Runtime::NotDeployed => None,
            Runtime::Unreachable(_) => Some(JobStatus {
                state: Some(RuntimeJobState::Unknown),
                id: deployed_id,
                ..JobStatus::default()
            }),
            Runtime::Job(job) => Some(JobStatus {
                state: Some(job.state),
                id: Some(job.id.clone()),
                start_time: time_from_ms(job.start_time_ms),
                parallelism: Some(job.parallelism),
            }),
        };
        if let Some(checkpoint) = &self.o.checkpoint {
            self.status.last_checkpoint = Some(CheckpointInfo {
                id: checkpoint.id,
                path: checkpoint.path.clone(),
                time: time_from_ms(checkpoint.time_ms).unwrap_or_else(|| self.o.now.clone()),
            });
        }
    }

    /// A spec is invalid: say so in the status and an event, touch nothing, await a change.
    fn invalid(&mut self, violations: &[SpecViolation]) {
        let message = format!(
            "the spec is invalid; fix it and apply again: {}",
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
        if !self.already_degraded("InvalidSpec") {
            self.event(true, "InvalidSpec", message.clone());
        }
        self.degraded = Some(Degraded::new("InvalidSpec", message));
        self.requeue = Requeue::AwaitChange;
    }

    /// Whether the Degraded condition already says `reason` for this generation (so events
    /// and refusals are not repeated on every reconcile).
    fn already_degraded(&self, reason: &str) -> bool {
        self.o
            .status
            .condition(weir_crds::ConditionType::Degraded)
            .is_some_and(|c| {
                c.status == "True"
                    && c.reason == reason
                    && c.observed_generation == Some(self.o.generation)
            })
    }

    fn event(&mut self, warning: bool, reason: &'static str, message: String) {
        self.actions.push(Action::Event(Note {
            warning,
            reason,
            message,
        }));
    }

    fn requeue(&mut self, requeue: Requeue) {
        self.requeue = self.requeue.min(requeue);
    }

    fn now_ms(&self) -> i64 {
        self.o.now.0.as_millisecond()
    }

    /// A job id for a fresh start: nothing stored under it, so the coordinator resumes
    /// nothing but what `--restore` names.
    fn new_job_id(&self, generation: i64, suffix: &str) -> String {
        let uid: String = self.o.uid.chars().filter(|c| *c != '-').take(8).collect();
        format!("{}-{uid}-g{generation}{suffix}", self.o.name)
    }

    /// The children of a deployment. `deploying` copies ConfigMap-sourced SQL afresh.
    fn child_set(
        &self,
        spec: &FlinkJobSpec,
        deployment: &DeployedJob,
        deploying: bool,
    ) -> Result<ChildSet, String> {
        let sql = if spec.job.sql.is_some() || deploying || !self.o.job_config_map_exists {
            Some(sql_of(self.o, spec)?)
        } else {
            None
        };
        let snapshot = serde_json::to_string(&for_deployment(spec)).unwrap_or_default();
        let hash = stable_hash(&[
            &snapshot,
            &deployment.job_id,
            deployment.restore_path.as_deref().unwrap_or(""),
        ]);
        Ok(ChildSet {
            spec: spec.clone(),
            job_id: deployment.job_id.clone(),
            restore_path: deployment.restore_path.clone(),
            running: !spec.is_suspended(),
            sql,
            hash,
        })
    }

    /// Queues the children of a deployment; a missing SQL ConfigMap is reported instead.
    fn apply_children(
        &mut self,
        spec: &FlinkJobSpec,
        deployment: &DeployedJob,
        deploying: bool,
    ) -> bool {
        self.actions.push(Action::EnsureToken);
        match self.child_set(spec, deployment, deploying) {
            Ok(set) => {
                self.actions.push(Action::ApplyChildren(Box::new(set)));
                true
            }
            Err(reason) => {
                self.degraded = Some(Degraded::new(
                    "SqlNotFound",
                    format!("{reason}; create it (or fix job.sqlConfigMap)"),
                ));
                // The operator does not watch foreign ConfigMaps: look again later.
                self.requeue(Requeue::After(self.o.settings.resync));
                false
            }
        }
    }

    fn set_lifecycle(&mut self, state: LifecycleState) {
        self.status.lifecycle_state = state;
    }
}

/// A time from milliseconds since the epoch (None for 0 or out of range).
pub fn time_from_ms(ms: i64) -> Option<Time> {
    (ms > 0)
        .then(|| k8s_openapi::jiff::Timestamp::from_millisecond(ms).ok())
        .flatten()
        .map(Time)
}

/// Milliseconds since the epoch of a time.
pub fn ms_of(time: &Time) -> i64 {
    time.0.as_millisecond()
}
