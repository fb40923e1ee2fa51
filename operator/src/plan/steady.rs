//! No upgrade in flight: the first deployment, starting an upgrade when the spec changed in a
//! way that needs one, and otherwise keeping the job as it is — its lifecycle from the job's
//! state, manual (nonce) and periodic savepoints, the savepoint history and its disposal.

use std::time::Duration;

use weir_crds::{
    DeployedJob, FlinkJobSpec, LifecycleState, RuntimeJobState, SavepointInfo, SavepointKind,
    UpgradeMode,
};

use super::{Action, Change, Planner, Requeue, SavepointTrigger, TriggerPurpose, classify, ms_of};
use crate::children::stable_hash;
use crate::job_client::SavepointProgress;
use crate::observe::{Observed, SavepointObservation};
use crate::status::Degraded;

/// Reasons of a Degraded condition that hold back the same generation's upgrade until the
/// spec changes again (retrying would fail the same way).
const BLOCKING_REASONS: [&str; 2] = ["UpgradeRefused", "UpgradeSavepointFailed"];

/// Whether observe should ask the coordinator if the changed spec can restore the running
/// job's state: an upgrade (not a rescale, suspend or resume) that keeps state is about to
/// start from a running job, and non-restored state is not allowed.
pub fn needs_compatibility_check(o: &Observed) -> bool {
    if o.status.upgrade.is_some()
        || o.deletion.is_some()
        || o.spec.job.upgrade_mode == UpgradeMode::Stateless
        || o.spec.job.allow_non_restored_state
        || !o.runtime.is_running()
    {
        return false;
    }
    let Ok(Some(reconciled)) = o.status.reconciled_spec() else {
        return false;
    };
    classify(&reconciled, &o.spec) == Change::Upgrade
}

impl Planner<'_> {
    pub(super) fn steady(&mut self) {
        let o = self.o;
        let reconciled = match o.status.reconciled_spec() {
            Ok(Some(spec)) => spec,
            Ok(None) => return self.first_deploy(),
            Err(e) => {
                // A snapshot this operator cannot read (another version wrote it): start over
                // from the current spec rather than stall.
                self.error = Some(format!("{e}; redeploying from the current spec"));
                return self.first_deploy();
            }
        };
        let rolled_back = o.status.lifecycle_state == LifecycleState::RolledBack;
        let deployed = match (rolled_back, o.status.last_stable_spec()) {
            (true, Ok(Some(stable))) => stable,
            _ => reconciled.clone(),
        };
        let change_since_reconciled = classify(&reconciled, &o.spec);
        let change = classify(&deployed, &o.spec);
        let redeploy = !matches!(change, Change::None | Change::Ignored);
        // Rolled back: the failed spec stays reconciled; only a new change redeploys.
        let unchanged_since_rollback =
            rolled_back && matches!(change_since_reconciled, Change::None | Change::Ignored);
        let needs_upgrade = redeploy && !unchanged_since_rollback;
        if needs_upgrade {
            if let Some(reason) = BLOCKING_REASONS.iter().find(|r| self.already_degraded(r)) {
                // Keep the finding; the old job keeps running until the spec changes again.
                let message = o
                    .status
                    .condition(weir_crds::ConditionType::Degraded)
                    .map(|c| c.message.clone())
                    .unwrap_or_default();
                self.degraded = Some(Degraded::new(reason, message));
            } else if o.status.pending_savepoint.is_some() {
                // Let the savepoint in flight finish first: a stop-with-savepoint next to it
                // would be refused by the coordinator.
                self.requeue(Requeue::Soon);
            } else if self.refuse_incompatible(change) {
                // Refused: fall through to keep the running job.
            } else {
                return self.start_upgrade(&deployed, change);
            }
        } else if rolled_back && change == Change::None {
            // The spec was set back to the last stable one: nothing to roll anymore.
            self.set_lifecycle(LifecycleState::Stable);
        } else if rolled_back {
            self.degraded = Some(Degraded::new(
                "RolledBack",
                o.status
                    .condition(weir_crds::ConditionType::Degraded)
                    .map(|c| c.message.clone())
                    .unwrap_or_else(|| {
                        "rolled back to the last stable spec; change the spec to try again".into()
                    }),
            ));
        }
        if change_since_reconciled == Change::Ignored && !needs_upgrade && !rolled_back {
            self.accept_ignored(&reconciled);
        }
        self.keep_running(&deployed);
    }

    /// Takes a spec change that needs no redeploy. A new savepointTriggerNonce is recorded as
    /// reconciled only once its savepoint is triggered (see [`Self::manual_savepoint`]).
    fn accept_ignored(&mut self, reconciled: &FlinkJobSpec) {
        let nonce_changed =
            self.o.spec.job.savepoint_trigger_nonce != reconciled.job.savepoint_trigger_nonce;
        if nonce_changed && self.o.spec.job.savepoint_trigger_nonce.is_some() {
            self.manual_savepoint();
        } else {
            self.status.reconciled_spec = self.o.spec.to_snapshot().ok();
        }
    }

    /// The first deployment: a fresh job id, restoring job.initialSavepointPath if set.
    fn first_deploy(&mut self) {
        let o = self.o;
        let deployment = DeployedJob {
            job_id: self.new_job_id(o.generation, ""),
            restore_path: o.spec.job.initial_savepoint_path.clone(),
        };
        self.status.deployment = Some(deployment);
        self.status.upgrade = Some(weir_crds::UpgradeStatus {
            target_spec: o.spec.to_snapshot().unwrap_or_default(),
            target_generation: Some(o.generation),
            mode: o.spec.job.upgrade_mode,
            step: weir_crds::UpgradeStep::Deploying,
            rollback: false,
            savepoint_request_id: None,
            savepoint_trigger_id: None,
            restore_path: o.spec.job.initial_savepoint_path.clone(),
            started_at: o.now.clone(),
            deployed_at: None,
        });
        self.set_lifecycle(LifecycleState::Deploying);
        let message = match &o.spec.job.initial_savepoint_path {
            Some(path) => format!("deploying generation {}, restoring {path}", o.generation),
            None => format!("deploying generation {}", o.generation),
        };
        self.event(false, "Deploying", message);
        self.requeue(Requeue::Soon);
    }

    /// Refuses an upgrade whose new job cannot restore the running job's state.
    fn refuse_incompatible(&mut self, change: Change) -> bool {
        let Some(compat) = &self.o.compatibility else {
            return false;
        };
        if change != Change::Upgrade || compat.compatible {
            return false;
        }
        let message = format!(
            "the change of generation {} was not applied: the new job cannot restore the \
             running job's state ({}); the old job keeps running. Keep the operators' state \
             compatible, or set job.allowNonRestoredState: true to drop that state",
            self.o.generation,
            compat.problems.join("; ")
        );
        self.event(true, "UpgradeRefused", message.clone());
        self.degraded = Some(Degraded::new("UpgradeRefused", message));
        true
    }

    /// Keeps the deployed job as it is: its lifecycle, savepoints and children.
    fn keep_running(&mut self, deployed: &FlinkJobSpec) {
        let o = self.o;
        let lifecycle = o.status.lifecycle_state;
        if deployed.is_suspended() {
            self.set_lifecycle(LifecycleState::Suspended);
        } else if let Some(job) = o.runtime.job() {
            match job.state {
                RuntimeJobState::Running if lifecycle != LifecycleState::RolledBack => {
                    self.set_lifecycle(LifecycleState::Stable);
                }
                RuntimeJobState::Failed => {
                    self.set_lifecycle(LifecycleState::Failed);
                    self.degraded = Some(Degraded::new(
                        "JobFailed",
                        format!(
                            "the job failed and is not restarting: {}; fix the cause and change \
                             restartNonce (or the spec) to start it again",
                            job.last_error.as_deref().unwrap_or("no reason reported")
                        ),
                    ));
                }
                _ => {}
            }
        }
        self.pending_savepoint();
        self.periodic_savepoint(deployed);
        let deployment = self
            .status
            .deployment
            .clone()
            .unwrap_or_else(|| DeployedJob {
                job_id: self.new_job_id(o.generation, ""),
                restore_path: None,
            });
        self.status.deployment = Some(deployment.clone());
        self.apply_children(deployed, &deployment, false);
        self.requeue(Requeue::After(o.settings.resync));
    }

    /// Follows a manual or periodic savepoint in flight.
    pub(super) fn pending_savepoint(&mut self) {
        let Some(pending) = self.o.status.pending_savepoint.clone() else {
            return;
        };
        match &self.o.savepoint {
            Some(SavepointObservation::Progress(SavepointProgress::Completed(path))) => {
                self.status.pending_savepoint = None;
                self.record_savepoint(path, pending.kind, pending.trigger_nonce);
            }
            Some(SavepointObservation::Progress(SavepointProgress::Failed(reason))) => {
                self.status.pending_savepoint = None;
                let message = format!("the {:?} savepoint failed: {reason}", pending.kind);
                self.event(true, "SavepointFailed", message.clone());
                self.error = Some(message);
            }
            Some(SavepointObservation::Unknown) => {
                self.status.pending_savepoint = None;
                let message = format!(
                    "the coordinator lost the {:?} savepoint {} (it restarted); trigger it \
                     again if it is still wanted",
                    pending.kind, pending.trigger_id
                );
                self.event(true, "SavepointLost", message.clone());
                self.error = Some(message);
            }
            _ => self.requeue(Requeue::Soon),
        }
    }

    /// Records a completed savepoint in the history; savepoints that leave it are disposed
    /// (unless disposeOnCleanup is off, they were taken on delete, or a deployment restores
    /// from them).
    pub(super) fn record_savepoint(&mut self, path: &str, kind: SavepointKind, nonce: Option<i64>) {
        if self
            .status
            .last_savepoint
            .as_ref()
            .is_some_and(|s| s.path == path)
        {
            // Already recorded (a trigger answered twice): keep the history free of duplicates.
            return;
        }
        let spec = &self.o.spec;
        let info = SavepointInfo {
            path: path.to_owned(),
            time: self.o.now.clone(),
            kind,
            trigger_nonce: nonce,
        };
        let max_age = spec.savepoint_history_max_age().ok().flatten();
        let removed = self.status.record_savepoint(
            info,
            spec.savepoint_history_max_count(),
            max_age,
            &self.o.now,
        );
        self.event(
            false,
            "SavepointCompleted",
            format!("{kind:?} savepoint completed: {path}"),
        );
        if !spec.savepoints.dispose_on_cleanup {
            return;
        }
        let in_use: Vec<Option<&str>> = vec![
            self.status
                .deployment
                .as_ref()
                .and_then(|d| d.restore_path.as_deref()),
            self.status
                .upgrade
                .as_ref()
                .and_then(|u| u.restore_path.as_deref()),
        ];
        for old in removed {
            if old.kind != SavepointKind::Delete && !in_use.contains(&Some(old.path.as_str())) {
                self.actions
                    .push(Action::DisposeSavepoint { path: old.path });
            }
        }
    }

    /// A savepoint for a new job.savepointTriggerNonce.
    fn manual_savepoint(&mut self) {
        let o = self.o;
        let nonce = o.spec.job.savepoint_trigger_nonce;
        if o.status.pending_savepoint.is_some() {
            self.requeue(Requeue::Soon);
            return;
        }
        if !o.runtime.is_running() {
            if o.spec.is_suspended() || !o.coordinator_exists {
                // Nothing runs to take it from: consume the nonce and say so.
                self.status.reconciled_spec = o.spec.to_snapshot().ok();
                self.event(
                    true,
                    "SavepointSkipped",
                    format!("savepointTriggerNonce {nonce:?}: no job runs to take a savepoint of"),
                );
            } else {
                self.requeue(Requeue::Soon);
            }
            return;
        }
        self.actions
            .push(Action::TriggerSavepoint(SavepointTrigger {
                // With the generation: setting a nonce back to an earlier value asks again.
                request_id: format!(
                    "{}-nonce-{}-g{}",
                    o.uid,
                    nonce.unwrap_or_default(),
                    o.generation
                ),
                dir: o.spec.savepoints.dir.clone(),
                stop: false,
                purpose: TriggerPurpose::Pending {
                    kind: SavepointKind::Manual,
                    nonce,
                    reconciled_spec: o.spec.to_snapshot().ok(),
                },
            }));
        self.event(
            false,
            "SavepointTriggered",
            format!("manual savepoint for savepointTriggerNonce {nonce:?}"),
        );
        self.requeue(Requeue::Soon);
    }

    /// A savepoint every savepoints.periodicInterval while the job runs.
    fn periodic_savepoint(&mut self, deployed: &FlinkJobSpec) {
        let o = self.o;
        let Ok(Some(interval)) = o.spec.periodic_savepoint_interval() else {
            return;
        };
        let already_triggering = self
            .actions
            .iter()
            .any(|a| matches!(a, Action::TriggerSavepoint(_)));
        if deployed.is_suspended()
            || !o.runtime.is_running()
            || self.status.pending_savepoint.is_some()
            || o.status.pending_savepoint.is_some()
            || already_triggering
        {
            return;
        }
        let last = self.status.last_savepoint.as_ref().map(|s| ms_of(&s.time));
        let started = self
            .status
            .job
            .as_ref()
            .and_then(|j| j.start_time.as_ref())
            .map(ms_of);
        let base = last
            .into_iter()
            .chain(started)
            .max()
            .unwrap_or(self.now_ms());
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let due = base.saturating_add(interval_ms);
        if self.now_ms() < due {
            let wait = u64::try_from(due - self.now_ms()).unwrap_or_default();
            self.requeue(Requeue::After(Duration::from_millis(wait)));
            return;
        }
        // From the status the trigger is decided on (the same after a restart) and new after
        // each completed savepoint (times in the status have whole seconds only, so the
        // previous savepoint's path tells periodic savepoints apart, not its time).
        let previous = self
            .status
            .last_savepoint
            .as_ref()
            .map_or("", |s| s.path.as_str());
        let job_id = self
            .status
            .deployment
            .as_ref()
            .map_or("", |d| d.job_id.as_str());
        self.actions
            .push(Action::TriggerSavepoint(SavepointTrigger {
                request_id: format!("{}-periodic-{}", o.uid, stable_hash(&[previous, job_id])),
                dir: o.spec.savepoints.dir.clone(),
                stop: false,
                purpose: TriggerPurpose::Pending {
                    kind: SavepointKind::Periodic,
                    nonce: None,
                    reconciled_spec: None,
                },
            }));
        self.requeue(Requeue::Soon);
    }
}
