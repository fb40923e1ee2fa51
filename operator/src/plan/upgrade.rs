//! An upgrade in flight — any redeploy: a spec change, rescale, suspend, resume, restart, the
//! first deployment, a rollback. Steps, each recorded before it is taken:
//!
//! 1. `Stopping`: stop with a savepoint (mode `savepoint`, and rescales or suspends that can
//!    take one) or cancel (`last-state`, `stateless`, rollbacks); skipped when no job runs.
//! 2. `Deploying`: the children of the target spec are applied, with the job id and restore
//!    path chosen when `Stopping` ended (kept in `status.deployment`).
//! 3. `Verifying`: until the job has run for `stable_after` (then Stable), or until
//!    rollback.readinessTimeout has passed without it running (then a rollback to the last
//!    stable spec from the upgrade's savepoint, or Failed).
//!
//! A spec change while `Stopping` retargets the upgrade (the savepoint under way serves it);
//! a change while `Deploying`, `Verifying` or rolling back starts a new upgrade from there: a
//! new spec change wins over a rollback.

use std::time::Duration;

use weir_crds::{
    DeployedJob, FlinkJobSpec, LifecycleState, RuntimeJobState, SavepointKind, UpgradeMode,
    UpgradeStatus, UpgradeStep,
};

use super::{Action, Change, Planner, Requeue, SavepointTrigger, TriggerPurpose, classify, ms_of};
use crate::job_client::SavepointProgress;
use crate::observe::SavepointObservation;
use crate::status::Degraded;

impl Planner<'_> {
    /// Starts an upgrade from the deployed spec to the current one.
    pub(super) fn start_upgrade(&mut self, deployed: &FlinkJobSpec, change: Change) {
        let o = self.o;
        let target = &o.spec;
        let running = o.runtime.is_running();
        let can_savepoint = running && target.savepoints.dir.is_some();
        let mode = match target.job.upgrade_mode {
            UpgradeMode::Savepoint if can_savepoint => UpgradeMode::Savepoint,
            // A savepoint needs a running job; without one the coordinator resumes its latest
            // checkpoint (the job id is kept), as Flink's last-state fallback does.
            UpgradeMode::Savepoint => UpgradeMode::LastState,
            UpgradeMode::LastState
                if can_savepoint && matches!(change, Change::Rescale | Change::Suspend) =>
            {
                UpgradeMode::Savepoint
            }
            mode => mode,
        };
        let step = if mode == UpgradeMode::Savepoint || o.runtime.is_alive() {
            UpgradeStep::Stopping
        } else {
            UpgradeStep::Deploying
        };
        self.status.upgrade = Some(UpgradeStatus {
            target_spec: target.to_snapshot().unwrap_or_default(),
            target_generation: Some(o.generation),
            mode,
            step,
            rollback: false,
            savepoint_request_id: Some(format!("{}-g{}-upgrade", o.uid, o.generation)),
            savepoint_trigger_id: None,
            restore_path: None,
            started_at: o.now.clone(),
            deployed_at: None,
        });
        if step == UpgradeStep::Deploying {
            self.choose_deployment();
        }
        let what = match change {
            Change::Suspend => "suspending",
            Change::Resume => "resuming",
            Change::Rescale => "rescaling",
            _ => "upgrading",
        };
        self.set_lifecycle(LifecycleState::Upgrading);
        let how = match (step, mode) {
            (UpgradeStep::Stopping, UpgradeMode::Savepoint) => "stopping the job with a savepoint",
            (UpgradeStep::Stopping, _) => "cancelling the job",
            _ => "no job is running; deploying",
        };
        let rescale = if deployed.job.parallelism == target.job.parallelism {
            String::new()
        } else {
            format!(
                " (parallelism {} -> {})",
                deployed.job.parallelism, target.job.parallelism
            )
        };
        let message = format!("{what} to generation {}{rescale}: {how}", o.generation);
        self.event(false, "UpgradeStarted", message);
        if target.job.upgrade_mode == UpgradeMode::Savepoint && mode == UpgradeMode::LastState {
            self.event(
                true,
                "SavepointUnavailable",
                "the job is not running, so no savepoint can be taken; the new deployment \
                 resumes the latest checkpoint instead"
                    .into(),
            );
        }
        self.requeue(Requeue::Soon);
    }

    pub(super) fn continue_upgrade(&mut self) {
        let Some(upgrade) = self.status.upgrade.clone() else {
            return;
        };
        let target = match FlinkJobSpec::from_snapshot(&upgrade.target_spec) {
            Ok(spec) => spec,
            Err(e) => {
                // Unreadable (another operator version): drop it; steady state starts over.
                self.status.upgrade = None;
                self.error = Some(format!("dropped an upgrade record: {e}"));
                self.requeue(Requeue::Soon);
                return;
            }
        };
        if self.newer_change_wins(&upgrade, &target) {
            return;
        }
        self.set_lifecycle(if upgrade.rollback {
            LifecycleState::RollingBack
        } else if self.status.reconciled_spec.is_none()
            || self.o.status.lifecycle_state == LifecycleState::Deploying
        {
            LifecycleState::Deploying
        } else {
            LifecycleState::Upgrading
        });
        match upgrade.step {
            UpgradeStep::Stopping => self.stopping(&upgrade),
            UpgradeStep::Deploying => self.deploying(&upgrade, &target),
            UpgradeStep::Verifying => self.verifying(&upgrade, &target),
        }
    }

    /// Handles a spec change made while the upgrade is under way. Returns true when it took
    /// over this reconcile.
    fn newer_change_wins(&mut self, upgrade: &UpgradeStatus, target: &FlinkJobSpec) -> bool {
        let o = self.o;
        let newer = upgrade.target_generation.is_some_and(|g| o.generation > g);
        if !newer || o.spec.validate().is_err() {
            return false;
        }
        let change = classify(target, &o.spec);
        if matches!(change, Change::None | Change::Ignored) && !upgrade.rollback {
            return false;
        }
        match upgrade.step {
            UpgradeStep::Stopping if !upgrade.rollback => {
                // The stop under way serves the newer spec as well.
                if let Some(u) = self.status.upgrade.as_mut() {
                    u.target_spec = o.spec.to_snapshot().unwrap_or_default();
                    u.target_generation = Some(o.generation);
                }
                false
            }
            _ => {
                self.event(
                    false,
                    "UpgradeSuperseded",
                    format!(
                        "generation {} supersedes the {} to generation {}",
                        o.generation,
                        if upgrade.rollback {
                            "rollback"
                        } else {
                            "upgrade"
                        },
                        upgrade.target_generation.unwrap_or_default()
                    ),
                );
                self.status.upgrade = None;
                self.status.reconciled_spec = Some(upgrade.target_spec.clone());
                let change = if change == Change::None {
                    Change::Upgrade
                } else {
                    change
                };
                self.start_upgrade(target, change);
                true
            }
        }
    }

    fn stopping(&mut self, upgrade: &UpgradeStatus) {
        let o = self.o;
        if upgrade.mode != UpgradeMode::Savepoint || upgrade.rollback {
            // Cancel; once the job has ended (or its coordinator is gone or unreachable: the
            // Recreate strategy replaces it anyway) move on.
            if o.runtime.is_alive() {
                if o.runtime
                    .job()
                    .is_some_and(|j| j.state != RuntimeJobState::Cancelling)
                {
                    self.actions.push(Action::Cancel);
                }
                self.requeue(Requeue::Soon);
            } else {
                self.choose_deployment();
            }
            return;
        }
        let Some(trigger_id) = &upgrade.savepoint_trigger_id else {
            if o.runtime.is_running() {
                self.actions
                    .push(Action::TriggerSavepoint(SavepointTrigger {
                        request_id: upgrade_request_id(&o.uid, upgrade),
                        dir: o.spec.savepoints.dir.clone(),
                        stop: true,
                        purpose: TriggerPurpose::Upgrade,
                    }));
            } else if !o.coordinator_exists
                || o.runtime.job().is_some_and(|j| j.state.is_terminal())
            {
                // The job ended before its savepoint was asked for: resume its checkpoints.
                self.event(
                    true,
                    "SavepointUnavailable",
                    "the job ended before the upgrade savepoint; the new deployment resumes the \
                     latest checkpoint instead"
                        .into(),
                );
                if let Some(u) = self.status.upgrade.as_mut() {
                    u.mode = UpgradeMode::LastState;
                }
                self.choose_deployment();
                return;
            }
            self.requeue(Requeue::Soon);
            return;
        };
        match &o.savepoint {
            Some(SavepointObservation::Progress(SavepointProgress::Completed(path))) => {
                if let Some(u) = self.status.upgrade.as_mut() {
                    u.restore_path = Some(path.clone());
                }
                self.record_savepoint(path, SavepointKind::Upgrade, None);
                self.choose_deployment();
            }
            Some(SavepointObservation::Progress(SavepointProgress::Failed(reason))) => {
                let message = format!(
                    "the upgrade to generation {} was not applied: its savepoint failed ({reason}); \
                     the old job keeps running. Fix the cause and change the spec (e.g. \
                     restartNonce) to try again",
                    upgrade.target_generation.unwrap_or_default()
                );
                self.event(true, "UpgradeSavepointFailed", message.clone());
                self.degraded = Some(Degraded::new("UpgradeSavepointFailed", message));
                self.status.upgrade = None;
                self.set_lifecycle(o.status.lifecycle_state.min_settled());
                self.requeue(Requeue::After(o.settings.resync));
            }
            Some(SavepointObservation::Unknown) => {
                // The coordinator restarted and forgot the trigger: ask again.
                self.event(
                    true,
                    "SavepointLost",
                    format!("the coordinator lost savepoint {trigger_id}; triggering it again"),
                );
                if let Some(u) = self.status.upgrade.as_mut() {
                    u.savepoint_trigger_id = None;
                }
                self.requeue(Requeue::Soon);
            }
            _ => self.requeue(Requeue::Soon),
        }
    }

    /// Ends `Stopping`: chooses the job id and restore path of the new deployment and records
    /// them (write-ahead) with the `Deploying` step.
    pub(super) fn choose_deployment(&mut self) {
        let Some(upgrade) = self.status.upgrade.clone() else {
            return;
        };
        let generation = upgrade.target_generation.unwrap_or(self.o.generation);
        let current = self.status.deployment.clone();
        let deployment = if upgrade.rollback {
            match &upgrade.restore_path {
                // The failed job's checkpoints are newer than the savepoint: a fresh job id
                // keeps the coordinator from resuming them.
                Some(path) => DeployedJob {
                    job_id: self.new_job_id(generation, "-rollback"),
                    restore_path: Some(path.clone()),
                },
                None => current.unwrap_or_else(|| DeployedJob {
                    job_id: self.new_job_id(generation, "-rollback"),
                    restore_path: None,
                }),
            }
        } else {
            match (upgrade.mode, current) {
                (UpgradeMode::Stateless, _) | (_, None) => DeployedJob {
                    job_id: self.new_job_id(generation, ""),
                    restore_path: None,
                },
                // Same job id: the coordinator resumes the newer of its own checkpoints and
                // the restore path (a fresh upgrade savepoint is the newer one).
                (_, Some(current)) => DeployedJob {
                    job_id: current.job_id,
                    restore_path: upgrade.restore_path.clone().or(current.restore_path),
                },
            }
        };
        self.status.deployment = Some(deployment);
        if let Some(u) = self.status.upgrade.as_mut() {
            u.step = UpgradeStep::Deploying;
        }
        self.requeue(Requeue::Soon);
    }

    fn deploying(&mut self, upgrade: &UpgradeStatus, target: &FlinkJobSpec) {
        let Some(deployment) = self.status.deployment.clone() else {
            return self.choose_deployment();
        };
        if !self.apply_children(target, &deployment, true) {
            return;
        }
        if let Some(u) = self.status.upgrade.as_mut() {
            u.step = UpgradeStep::Verifying;
            u.deployed_at = Some(self.o.now.clone());
        }
        if !upgrade.rollback {
            self.status.reconciled_spec = Some(upgrade.target_spec.clone());
        }
        self.event(
            false,
            "Deployed",
            format!(
                "deployed {} with job id {}{}",
                if target.is_suspended() {
                    "no pods (suspended)".to_owned()
                } else {
                    format!("parallelism {}", target.job.parallelism)
                },
                deployment.job_id,
                deployment
                    .restore_path
                    .as_ref()
                    .map(|p| format!(", restoring {p}"))
                    .unwrap_or_default()
            ),
        );
        self.requeue(Requeue::Soon);
    }

    fn verifying(&mut self, upgrade: &UpgradeStatus, target: &FlinkJobSpec) {
        let o = self.o;
        let Some(deployment) = self.status.deployment.clone() else {
            return self.choose_deployment();
        };
        // Re-applied every time: the Deploying step's apply may not have finished.
        if !self.apply_children(target, &deployment, true) {
            return;
        }
        if target.is_suspended() {
            self.status.upgrade = None;
            self.status.job = None;
            self.set_lifecycle(LifecycleState::Suspended);
            self.finish_upgrade(upgrade, "Suspended", "suspended: no pods run".into());
            return;
        }
        let deployed_at = upgrade.deployed_at.as_ref().map_or(self.now_ms(), ms_of);
        let readiness = target
            .readiness_timeout()
            .unwrap_or(Duration::from_secs(300));
        let readiness_ms = i64::try_from(readiness.as_millis()).unwrap_or(i64::MAX);
        let stable_ms =
            i64::try_from(o.settings.stable_after.min(readiness).as_millis()).unwrap_or(i64::MAX);
        let job = o
            .runtime
            .job()
            .filter(|j| j.id == deployment.job_id && j.parallelism == target.job.parallelism);
        let running_since = job
            .filter(|j| j.state == RuntimeJobState::Running)
            .map(|j| j.start_time_ms.max(deployed_at));
        if let Some(since) = running_since {
            if self.now_ms() - since >= stable_ms {
                self.status.upgrade = None;
                if upgrade.rollback {
                    self.set_lifecycle(LifecycleState::RolledBack);
                    let message = format!(
                        "generation {} did not run within {}; rolled back to the last stable \
                         spec, which runs again. Fix the spec and apply it again",
                        upgrade.target_generation.unwrap_or_default(),
                        target.rollback.readiness_timeout
                    );
                    self.degraded = Some(Degraded::new("RolledBack", message.clone()));
                    self.finish_upgrade(upgrade, "RolledBack", message);
                } else {
                    self.set_lifecycle(LifecycleState::Stable);
                    self.status.last_stable_spec = Some(upgrade.target_spec.clone());
                    self.finish_upgrade(
                        upgrade,
                        "JobStable",
                        format!(
                            "generation {} runs stably",
                            upgrade.target_generation.unwrap_or_default()
                        ),
                    );
                }
                self.requeue(Requeue::After(o.settings.resync));
            } else {
                if !upgrade.rollback {
                    self.set_lifecycle(LifecycleState::Running);
                }
                let wait = u64::try_from(stable_ms - (self.now_ms() - since)).unwrap_or(0);
                self.requeue(Requeue::After(Duration::from_millis(wait)));
                self.requeue(Requeue::Soon);
            }
            return;
        }
        let failed = job.is_some_and(|j| j.state == RuntimeJobState::Failed);
        if failed || self.now_ms() - deployed_at >= readiness_ms {
            let why = match job.and_then(|j| j.last_error.clone()) {
                Some(error) => format!("the job failed: {error}"),
                None if failed => "the job failed".to_owned(),
                None => format!(
                    "the job was not running within {}",
                    target.rollback.readiness_timeout
                ),
            };
            self.upgrade_failed(upgrade, target, &why);
            return;
        }
        self.requeue(Requeue::Soon);
    }

    /// The deployed upgrade did not become ready: roll back, or report it.
    fn upgrade_failed(&mut self, upgrade: &UpgradeStatus, target: &FlinkJobSpec, why: &str) {
        let o = self.o;
        let generation = upgrade.target_generation.unwrap_or_default();
        let stable = o.status.last_stable_spec.clone();
        let can_roll_back = !upgrade.rollback
            && target.rollback.enabled
            && stable.as_ref().is_some_and(|s| *s != upgrade.target_spec);
        if let (true, Some(stable)) = (can_roll_back, stable) {
            let mode = FlinkJobSpec::from_snapshot(&stable)
                .map(|s| s.job.upgrade_mode)
                .unwrap_or_default();
            self.status.upgrade = Some(UpgradeStatus {
                target_spec: stable,
                target_generation: Some(generation),
                mode,
                step: UpgradeStep::Stopping,
                rollback: true,
                savepoint_request_id: None,
                savepoint_trigger_id: None,
                restore_path: upgrade.restore_path.clone(),
                started_at: o.now.clone(),
                deployed_at: None,
            });
            self.set_lifecycle(LifecycleState::RollingBack);
            let message = format!(
                "generation {generation} is not ready ({why}); rolling back to the last stable \
                 spec{}",
                upgrade
                    .restore_path
                    .as_ref()
                    .map(|p| format!(" from savepoint {p}"))
                    .unwrap_or_default()
            );
            self.event(true, "RollingBack", message.clone());
            self.degraded = Some(Degraded::new("RollingBack", message));
            self.requeue(Requeue::Soon);
            return;
        }
        self.status.upgrade = None;
        self.set_lifecycle(LifecycleState::Failed);
        let message = format!(
            "generation {generation} is not ready: {why}. Fix the spec (or the cause) and apply \
             it again"
        );
        self.event(true, "UpgradeFailed", message.clone());
        self.degraded = Some(Degraded::new("UpgradeFailed", message));
        self.requeue(Requeue::After(o.settings.resync));
    }

    fn finish_upgrade(&mut self, upgrade: &UpgradeStatus, reason: &'static str, message: String) {
        let took = self.now_ms() - ms_of(&upgrade.started_at);
        self.upgrade_finished = Some(Duration::from_millis(u64::try_from(took).unwrap_or(0)));
        self.event(reason == "RolledBack", reason, message);
    }
}

/// The upgrade savepoint's request id: the one recorded with the upgrade (write-ahead), so a
/// trigger repeated after a restart is recognised. Upgrade records written before the field
/// existed fall back to one derived from what they hold.
pub fn upgrade_request_id(uid: &str, upgrade: &UpgradeStatus) -> String {
    upgrade.savepoint_request_id.clone().unwrap_or_else(|| {
        format!(
            "{uid}-g{}-upgrade-{}",
            upgrade.target_generation.unwrap_or_default(),
            ms_of(&upgrade.started_at)
        )
    })
}

/// The lifecycle to return to when an upgrade is abandoned with the old job running.
trait Settled {
    fn min_settled(self) -> LifecycleState;
}

impl Settled for LifecycleState {
    fn min_settled(self) -> LifecycleState {
        match self {
            LifecycleState::Upgrading | LifecycleState::Deploying | LifecycleState::Running => {
                LifecycleState::Stable
            }
            other => other,
        }
    }
}
