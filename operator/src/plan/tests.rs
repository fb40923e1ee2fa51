//! Table tests of the pure plan: one per lifecycle transition, built with fixtures that read as
//! sentences (`a_job().in_savepoint_mode()`, `observed(&spec).running_stably()`).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use weir_crds::{
    ConditionType, DeployedJob, FlinkJobSpec, FlinkJobStatus, LifecycleState, PendingSavepoint,
    RuntimeJobState, SavepointInfo, SavepointKind, UpgradeMode, UpgradeStatus, UpgradeStep,
};

use super::*;
use crate::job_client::{Compatibility, RuntimeJob, SavepointProgress};
use crate::observe::{Observed, PlanSettings, Runtime, SavepointObservation};

const NOW: i64 = 1_000_000_000;
const UID: &str = "0123abcd-0000-0000-0000-000000000000";

fn at(ms: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_millisecond(ms).unwrap())
}

fn a_job() -> FlinkJobSpec {
    serde_json::from_value(serde_json::json!({
        "image": "weir:1",
        "job": {"sql": "INSERT INTO out SELECT * FROM src;", "parallelism": 2},
        "checkpointing": {"dir": "s3://b/chk"},
        "savepoints": {"dir": "s3://b/sp"}
    }))
    .unwrap()
}

trait SpecFixture: Sized {
    fn with(self, f: impl FnOnce(&mut FlinkJobSpec)) -> FlinkJobSpec;
    fn in_savepoint_mode(self) -> FlinkJobSpec {
        self.with(|s| s.job.upgrade_mode = UpgradeMode::Savepoint)
    }
    fn in_last_state_mode(self) -> FlinkJobSpec {
        self.with(|s| s.job.upgrade_mode = UpgradeMode::LastState)
    }
    fn with_image(self, image: &str) -> FlinkJobSpec {
        self.with(|s| s.image = image.into())
    }
    fn with_parallelism(self, p: i32) -> FlinkJobSpec {
        self.with(|s| s.job.parallelism = p)
    }
    fn suspended(self) -> FlinkJobSpec {
        self.with(|s| s.job.state = weir_crds::JobState::Suspended)
    }
    fn with_nonce(self, n: i64) -> FlinkJobSpec {
        self.with(|s| s.job.savepoint_trigger_nonce = Some(n))
    }
}

impl SpecFixture for FlinkJobSpec {
    fn with(mut self, f: impl FnOnce(&mut FlinkJobSpec)) -> FlinkJobSpec {
        f(&mut self);
        self
    }
}

/// An observation of `spec` at generation 1, nothing deployed yet.
fn observed(spec: &FlinkJobSpec) -> Observed {
    Observed {
        name: "orders".into(),
        namespace: "default".into(),
        uid: UID.into(),
        generation: 1,
        spec: spec.clone(),
        status: FlinkJobStatus::default(),
        deletion: None,
        coordinator_exists: false,
        job_config_map_exists: false,
        sql_config_maps: BTreeMap::new(),
        runtime: Runtime::NotDeployed,
        checkpoint: None,
        savepoint: None,
        compatibility: None,
        now: at(NOW),
        settings: PlanSettings {
            stable_after: Duration::from_secs(10),
            resync: Duration::from_secs(30),
        },
    }
}

fn job(id: &str, state: RuntimeJobState, parallelism: i32) -> RuntimeJob {
    RuntimeJob {
        id: id.into(),
        state,
        start_time_ms: NOW - 60_000,
        parallelism,
        last_error: None,
    }
}

impl Observed {
    /// `spec` deployed at generation 1 and running stably as job `orders-1`.
    fn stable_with(mut self, deployed: &FlinkJobSpec) -> Self {
        self.status.lifecycle_state = LifecycleState::Stable;
        self.status.reconciled_spec = Some(deployed.to_snapshot().unwrap());
        self.status.last_stable_spec = Some(deployed.to_snapshot().unwrap());
        self.status.deployment = Some(DeployedJob {
            job_id: "orders-1".into(),
            restore_path: None,
        });
        self.coordinator_exists = true;
        self.job_config_map_exists = true;
        self.runtime = Runtime::Job(job(
            "orders-1",
            RuntimeJobState::Running,
            deployed.job.parallelism,
        ));
        self
    }
    fn running_stably(self) -> Self {
        let spec = self.spec.clone();
        self.stable_with(&spec)
    }
    fn at_generation(mut self, generation: i64) -> Self {
        self.generation = generation;
        self
    }
    fn with_upgrade(mut self, upgrade: UpgradeStatus) -> Self {
        self.status.lifecycle_state = if upgrade.rollback {
            LifecycleState::RollingBack
        } else {
            LifecycleState::Upgrading
        };
        self.status.upgrade = Some(upgrade);
        self
    }
    fn with_runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }
    fn savepoint_is(mut self, progress: SavepointProgress) -> Self {
        self.savepoint = Some(SavepointObservation::Progress(progress));
        self
    }
    /// Applies a plan's status as the next observation's.
    fn after(mut self, plan: &Plan) -> Self {
        self.status = plan.status.clone();
        self
    }
}

fn upgrade_to(spec: &FlinkJobSpec, step: UpgradeStep, mode: UpgradeMode) -> UpgradeStatus {
    UpgradeStatus {
        target_spec: spec.to_snapshot().unwrap(),
        target_generation: Some(2),
        mode,
        step,
        rollback: false,
        savepoint_request_id: Some(format!("{UID}-g2-upgrade")),
        savepoint_trigger_id: None,
        restore_path: None,
        started_at: at(NOW - 1_000),
        deployed_at: None,
    }
}

fn triggers(plan: &Plan) -> Vec<&SavepointTrigger> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::TriggerSavepoint(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn children(plan: &Plan) -> Option<&ChildSet> {
    plan.actions.iter().find_map(|a| match a {
        Action::ApplyChildren(set) => Some(set.as_ref()),
        _ => None,
    })
}

fn event_reasons(plan: &Plan) -> Vec<&str> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(n) => Some(n.reason),
            _ => None,
        })
        .collect()
}

fn condition(plan: &Plan, type_: ConditionType) -> (String, String) {
    let c = plan.status.condition(type_).unwrap();
    (c.status.clone(), c.reason.clone())
}

#[test]
fn changes_are_classified_like_the_flink_operator() {
    let base = a_job();
    let cases = [
        (base.clone(), Change::None),
        (base.clone().with_nonce(3), Change::Ignored),
        (
            base.clone().with(|s| s.savepoints.history_max_count = 3),
            Change::Ignored,
        ),
        (
            base.clone()
                .with(|s| s.job.initial_savepoint_path = Some("s3://x".into())),
            Change::Ignored,
        ),
        (base.clone().with_parallelism(4), Change::Rescale),
        (base.clone().with(|s| s.workers.slots = 2), Change::Rescale),
        (base.clone().with_image("weir:2"), Change::Upgrade),
        (
            base.clone().with(|s| s.restart_nonce = Some(1)),
            Change::Upgrade,
        ),
        (
            base.clone().with_parallelism(4).with_image("weir:2"),
            Change::Upgrade,
        ),
        (base.clone().suspended(), Change::Suspend),
        (
            base.clone().suspended().with_image("weir:2"),
            Change::Suspend,
        ),
    ];
    for (desired, expected) in cases {
        assert_eq!(classify(&base, &desired), expected, "{desired:?}");
    }
    assert_eq!(classify(&base.clone().suspended(), &base), Change::Resume);
    assert_eq!(
        classify(
            &base.clone().suspended(),
            &base.clone().suspended().with_image("weir:2")
        ),
        Change::Ignored
    );
}

#[test]
fn a_new_job_is_deployed_with_a_fresh_job_id() {
    let plan = plan(&observed(&a_job()));
    assert_eq!(plan.status.lifecycle_state, LifecycleState::Deploying);
    let upgrade = plan.status.upgrade.as_ref().unwrap();
    assert_eq!(upgrade.step, UpgradeStep::Deploying);
    assert_eq!(
        plan.status.deployment.as_ref().unwrap().job_id,
        "orders-0123abcd-g1"
    );
    assert!(
        triggers(&plan).is_empty() && children(&plan).is_none(),
        "write-ahead only"
    );
    assert_eq!(condition(&plan, ConditionType::Progressing).0, "True");
    assert_eq!(condition(&plan, ConditionType::Ready).0, "False");
}

#[test]
fn the_first_deployment_restores_the_initial_savepoint() {
    let spec = a_job().with(|s| s.job.initial_savepoint_path = Some("s3://old/sp-9".into()));
    let first = plan(&observed(&spec));
    let deploying = plan(&observed(&spec).after(&first));
    let set = children(&deploying).unwrap();
    assert_eq!(set.restore_path.as_deref(), Some("s3://old/sp-9"));
    assert_eq!(set.sql.as_deref(), spec.job.sql.as_deref());
    assert_eq!(
        deploying.status.upgrade.as_ref().unwrap().step,
        UpgradeStep::Verifying
    );
    assert!(deploying.status.reconciled_spec.is_some());
}

#[test]
fn a_job_becomes_stable_once_it_has_run_for_stable_after() {
    let spec = a_job();
    let first = plan(&observed(&spec));
    let deploying = plan(&observed(&spec).after(&first));
    let job_id = deploying.status.deployment.as_ref().unwrap().job_id.clone();
    let mut running = job(&job_id, RuntimeJobState::Running, 2);
    // Deployed at NOW; running since then: not yet stable.
    running.start_time_ms = NOW;
    let verifying = observed(&spec)
        .after(&deploying)
        .with_runtime(Runtime::Job(running.clone()));
    let young = plan(&verifying);
    assert_eq!(young.status.lifecycle_state, LifecycleState::Running);
    assert!(young.status.upgrade.is_some());
    let mut later = verifying.clone();
    later.now = at(NOW + 10_000);
    let stable = plan(&later);
    assert_eq!(stable.status.lifecycle_state, LifecycleState::Stable);
    assert!(stable.status.upgrade.is_none());
    assert_eq!(
        stable.status.last_stable_spec,
        Some(spec.to_snapshot().unwrap())
    );
    assert_eq!(
        condition(&stable, ConditionType::Ready),
        ("True".into(), "Stable".into())
    );
    assert_eq!(condition(&stable, ConditionType::Progressing).0, "False");
    assert!(stable.upgrade_finished.is_some());
    assert!(event_reasons(&stable).contains(&"JobStable"));
}

#[test]
fn a_stable_job_is_kept_as_it_is() {
    let plan = plan(&observed(&a_job()).running_stably());
    assert_eq!(plan.status.lifecycle_state, LifecycleState::Stable);
    assert!(triggers(&plan).is_empty());
    let set = children(&plan).unwrap();
    assert_eq!(set.job_id, "orders-1");
    assert_eq!(set.sql.as_deref(), a_job().job.sql.as_deref());
    assert_eq!(plan.requeue, Requeue::After(Duration::from_secs(30)));
    assert_eq!(
        plan.status.selector.as_deref(),
        Some(
            "app.kubernetes.io/component=workers,app.kubernetes.io/instance=orders,app.kubernetes.io/name=weir"
        )
    );
}

#[test]
fn a_savepoint_upgrade_stops_with_a_savepoint_then_restores_it() {
    let old = a_job().in_savepoint_mode();
    let new = old.clone().with_image("weir:2");
    let o = observed(&new).stable_with(&old).at_generation(2);
    // 1. Write-ahead: the upgrade is recorded before anything is done.
    let started = plan(&o);
    let upgrade = started.status.upgrade.clone().unwrap();
    assert_eq!(
        (upgrade.step, upgrade.mode),
        (UpgradeStep::Stopping, UpgradeMode::Savepoint)
    );
    assert_eq!(started.status.lifecycle_state, LifecycleState::Upgrading);
    assert!(triggers(&started).is_empty() && children(&started).is_none());
    // 2. The stop-with-savepoint, with a request id fixed by the status.
    let stopping = plan(&o.clone().after(&started));
    let trigger = triggers(&stopping)[0].clone();
    assert!(trigger.stop);
    assert_eq!(trigger.request_id, format!("{UID}-g2-upgrade"));
    assert_eq!(
        upgrade.savepoint_request_id.as_deref(),
        Some(trigger.request_id.as_str())
    );
    assert_eq!(
        plan(&o.clone().after(&started)),
        stopping,
        "the same status plans the same trigger"
    );
    let mut recorded = stopping.status.clone();
    record_trigger(&mut recorded, &trigger, "t-1".into(), &at(NOW));
    assert_eq!(
        recorded
            .upgrade
            .as_ref()
            .unwrap()
            .savepoint_trigger_id
            .as_deref(),
        Some("t-1")
    );
    // 3. While it is in progress nothing else happens.
    let mut polling = o.clone();
    polling.status = recorded;
    let waiting = plan(&polling.clone().savepoint_is(SavepointProgress::InProgress));
    assert!(triggers(&waiting).is_empty() && children(&waiting).is_none());
    assert_eq!(waiting.requeue, Requeue::Soon);
    // 4. Completed: recorded, and the deployment is chosen (same job id, restoring it).
    let done = plan(&polling.savepoint_is(SavepointProgress::Completed("s3://b/sp/sp-1".into())));
    let upgrade = done.status.upgrade.as_ref().unwrap();
    assert_eq!(upgrade.step, UpgradeStep::Deploying);
    assert_eq!(upgrade.restore_path.as_deref(), Some("s3://b/sp/sp-1"));
    assert_eq!(
        done.status.deployment,
        Some(DeployedJob {
            job_id: "orders-1".into(),
            restore_path: Some("s3://b/sp/sp-1".into())
        })
    );
    assert_eq!(
        done.status.last_savepoint.as_ref().unwrap().kind,
        SavepointKind::Upgrade
    );
    assert!(children(&done).is_none(), "children wait for the next step");
    // 5. Deploying applies the new spec.
    let deploying = plan(&o.clone().after(&done).with_runtime(Runtime::Job(job(
        "orders-1",
        RuntimeJobState::Finished,
        2,
    ))));
    let set = children(&deploying).unwrap();
    assert_eq!(set.spec.image, "weir:2");
    assert_eq!(set.restore_path.as_deref(), Some("s3://b/sp/sp-1"));
    assert_eq!(
        deploying.status.upgrade.as_ref().unwrap().step,
        UpgradeStep::Verifying
    );
}

#[test]
fn a_failed_upgrade_savepoint_keeps_the_old_job_and_is_not_retried() {
    let old = a_job().in_savepoint_mode();
    let new = old.clone().with_image("weir:2");
    let mut upgrade = upgrade_to(&new, UpgradeStep::Stopping, UpgradeMode::Savepoint);
    upgrade.savepoint_trigger_id = Some("t-1".into());
    let o = observed(&new)
        .stable_with(&old)
        .at_generation(2)
        .with_upgrade(upgrade);
    let failed = plan(
        &o.clone()
            .savepoint_is(SavepointProgress::Failed("disk full".into())),
    );
    assert!(failed.status.upgrade.is_none());
    assert_eq!(failed.status.lifecycle_state, LifecycleState::Stable);
    assert_eq!(
        condition(&failed, ConditionType::Degraded),
        ("True".into(), "UpgradeSavepointFailed".into())
    );
    assert!(failed.status.error.as_ref().unwrap().contains("disk full"));
    let again = plan(
        &observed(&new)
            .stable_with(&old)
            .at_generation(2)
            .after(&failed),
    );
    assert!(
        again.status.upgrade.is_none(),
        "same generation: not retried"
    );
    assert_eq!(
        children(&again).unwrap().spec.image,
        "weir:1",
        "the old job is kept"
    );
    let changed = plan(
        &observed(&new.with_image("weir:3"))
            .stable_with(&old)
            .at_generation(3)
            .after(&failed),
    );
    assert!(
        changed.status.upgrade.is_some(),
        "a new generation tries again"
    );
}

#[test]
fn a_last_state_upgrade_cancels_and_keeps_the_job_id() {
    let old = a_job().in_last_state_mode();
    let new = old.clone().with_image("weir:2");
    let o = observed(&new).stable_with(&old).at_generation(2);
    let started = plan(&o);
    assert_eq!(
        started.status.upgrade.as_ref().unwrap().mode,
        UpgradeMode::LastState
    );
    let cancelling = plan(&o.clone().after(&started));
    assert!(cancelling.actions.contains(&Action::Cancel));
    assert!(triggers(&cancelling).is_empty());
    let cancelled = plan(&o.clone().after(&started).with_runtime(Runtime::Job(job(
        "orders-1",
        RuntimeJobState::Canceled,
        2,
    ))));
    assert_eq!(
        cancelled.status.upgrade.as_ref().unwrap().step,
        UpgradeStep::Deploying
    );
    assert_eq!(
        cancelled.status.deployment.as_ref().unwrap().job_id,
        "orders-1"
    );
    assert_eq!(
        cancelled.status.deployment.as_ref().unwrap().restore_path,
        None
    );
}

#[test]
fn a_stateless_upgrade_starts_a_new_job_id() {
    let old = a_job();
    let new = old.clone().with_image("weir:2");
    let o = observed(&new).stable_with(&old).at_generation(2);
    let started = plan(&o);
    let cancelled = plan(&o.after(&started).with_runtime(Runtime::Job(job(
        "orders-1",
        RuntimeJobState::Canceled,
        2,
    ))));
    assert_eq!(
        cancelled.status.deployment.as_ref().unwrap().job_id,
        "orders-0123abcd-g2"
    );
    assert_eq!(
        cancelled.status.deployment.as_ref().unwrap().restore_path,
        None
    );
}

#[test]
fn a_rescale_in_last_state_mode_goes_through_a_savepoint_when_it_can() {
    let old = a_job().in_last_state_mode();
    let started = plan(
        &observed(&old.clone().with_parallelism(4))
            .stable_with(&old)
            .at_generation(2),
    );
    assert_eq!(
        started.status.upgrade.as_ref().unwrap().mode,
        UpgradeMode::Savepoint
    );
    let no_dir = old.clone().with(|s| s.savepoints.dir = None);
    let started = plan(
        &observed(&no_dir.clone().with_parallelism(4))
            .stable_with(&no_dir)
            .at_generation(2),
    );
    assert_eq!(
        started.status.upgrade.as_ref().unwrap().mode,
        UpgradeMode::LastState
    );
}

#[test]
fn a_savepoint_upgrade_of_a_job_that_is_not_running_resumes_its_checkpoints() {
    let old = a_job().in_savepoint_mode();
    let new = old.clone().with_image("weir:2");
    let o = observed(&new)
        .stable_with(&old)
        .at_generation(2)
        .with_runtime(Runtime::Job(job("orders-1", RuntimeJobState::Failed, 2)));
    let started = plan(&o);
    let upgrade = started.status.upgrade.as_ref().unwrap();
    assert_eq!(
        (upgrade.step, upgrade.mode),
        (UpgradeStep::Deploying, UpgradeMode::LastState)
    );
    assert_eq!(
        started.status.deployment.as_ref().unwrap().job_id,
        "orders-1"
    );
    assert!(event_reasons(&started).contains(&"SavepointUnavailable"));
}

#[test]
fn suspend_takes_a_savepoint_and_removes_the_pods_and_resume_restores_it() {
    let running = a_job().in_savepoint_mode();
    let suspended = running.clone().suspended();
    let o = observed(&suspended).stable_with(&running).at_generation(2);
    let started = plan(&o);
    let mut status = started.status.clone();
    status.upgrade.as_mut().unwrap().savepoint_trigger_id = Some("t-1".into());
    let mut stopping = o.clone();
    stopping.status = status;
    let done = plan(&stopping.savepoint_is(SavepointProgress::Completed("s3://b/sp/sp-s".into())));
    let deploying = plan(&o.clone().after(&done).with_runtime(Runtime::Job(job(
        "orders-1",
        RuntimeJobState::Finished,
        2,
    ))));
    assert!(
        !children(&deploying).unwrap().running,
        "no pods while suspended"
    );
    let verifying = plan(
        &o.clone()
            .after(&deploying)
            .with_runtime(Runtime::NotDeployed),
    );
    assert_eq!(verifying.status.lifecycle_state, LifecycleState::Suspended);
    assert!(verifying.status.upgrade.is_none());
    assert!(event_reasons(&verifying).contains(&"Suspended"));

    // Resume: nothing to stop; deploy at once, restoring the suspend savepoint.
    let mut resumed = observed(&running)
        .at_generation(3)
        .with_runtime(Runtime::NotDeployed)
        .after(&verifying);
    resumed.coordinator_exists = false;
    let started = plan(&resumed);
    assert_eq!(
        started.status.upgrade.as_ref().unwrap().step,
        UpgradeStep::Deploying
    );
    let deploying = plan(&resumed.after(&started));
    let set = children(&deploying).unwrap();
    assert!(set.running);
    assert_eq!(set.restore_path.as_deref(), Some("s3://b/sp/sp-s"));
    assert_eq!(set.job_id, "orders-1");
}

#[test]
fn a_trigger_nonce_takes_one_manual_savepoint() {
    let old = a_job();
    let new = old.clone().with_nonce(7);
    let o = observed(&new).stable_with(&old).at_generation(2);
    let planned = plan(&o);
    assert!(planned.status.upgrade.is_none(), "no redeploy");
    let trigger = triggers(&planned)[0].clone();
    assert_eq!(trigger.request_id, format!("{UID}-nonce-7-g2"));
    assert!(!trigger.stop);
    assert_eq!(
        planned.status.reconciled_spec, o.status.reconciled_spec,
        "handled only once triggered"
    );
    let mut status = planned.status.clone();
    record_trigger(&mut status, &trigger, "t-7".into(), &at(NOW));
    assert_eq!(status.reconciled_spec().unwrap(), Some(new.clone()));
    let mut next = o.clone();
    next.status = status;
    let pending = plan(&next.clone());
    assert!(triggers(&pending).is_empty(), "not twice");
    let done = plan(&next.savepoint_is(SavepointProgress::Completed("s3://b/sp/m-7".into())));
    let last = done.status.last_savepoint.as_ref().unwrap();
    assert_eq!(
        (last.kind, last.trigger_nonce),
        (SavepointKind::Manual, Some(7))
    );
    assert!(done.status.pending_savepoint.is_none());
}

#[test]
fn periodic_savepoints_are_taken_when_due_and_the_history_is_trimmed() {
    let spec = a_job().with(|s| {
        s.savepoints.periodic_interval = Some("1h".into());
        s.savepoints.history_max_count = 2;
    });
    let mut o = observed(&spec).running_stably();
    // Newer than the job's start (NOW - 60 s): the interval counts from it.
    o.status.last_savepoint = Some(SavepointInfo {
        path: "s3://b/sp/p-2".into(),
        time: at(NOW - 30_000),
        kind: SavepointKind::Periodic,
        trigger_nonce: None,
    });
    o.status.savepoint_history = vec![
        SavepointInfo {
            path: "s3://b/sp/p-1".into(),
            time: at(NOW - 5_400_000),
            kind: SavepointKind::Periodic,
            trigger_nonce: None,
        },
        o.status.last_savepoint.clone().unwrap(),
    ];
    let not_due = plan(&o);
    assert!(triggers(&not_due).is_empty());
    assert_eq!(
        not_due.requeue,
        Requeue::After(Duration::from_secs(30)),
        "resync before the due time"
    );
    let mut due = o.clone();
    due.now = at(NOW + 3_570_000);
    let planned = plan(&due);
    let trigger = triggers(&planned)[0];
    assert!(trigger.request_id.starts_with(&format!("{UID}-periodic-")));
    let mut after_another = due.clone();
    after_another.status.last_savepoint.as_mut().unwrap().path = "s3://b/sp/p-2b".into();
    assert_ne!(
        triggers(&plan(&after_another))[0].request_id,
        trigger.request_id,
        "a new id after each savepoint"
    );
    assert_eq!(
        trigger.purpose,
        TriggerPurpose::Pending {
            kind: SavepointKind::Periodic,
            nonce: None,
            reconciled_spec: None
        }
    );

    due.status.pending_savepoint = Some(PendingSavepoint {
        trigger_id: "t-p".into(),
        kind: SavepointKind::Periodic,
        trigger_nonce: None,
        triggered_at: at(NOW),
    });
    let done = plan(&due.savepoint_is(SavepointProgress::Completed("s3://b/sp/p-3".into())));
    let history: Vec<_> = done
        .status
        .savepoint_history
        .iter()
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(history, ["s3://b/sp/p-2", "s3://b/sp/p-3"]);
    assert!(done.actions.contains(&Action::DisposeSavepoint {
        path: "s3://b/sp/p-1".into()
    }));
}

#[test]
fn an_upgrade_that_does_not_run_in_time_is_rolled_back_from_its_savepoint() {
    let good = a_job().in_savepoint_mode();
    let bad = good.clone().with_image("weir:broken");
    let mut upgrade = upgrade_to(&bad, UpgradeStep::Verifying, UpgradeMode::Savepoint);
    upgrade.restore_path = Some("s3://b/sp/sp-u".into());
    upgrade.deployed_at = Some(at(NOW - 301_000));
    let mut o = observed(&bad)
        .stable_with(&good)
        .at_generation(2)
        .with_upgrade(upgrade)
        .with_runtime(Runtime::Unreachable("connection refused".into()));
    o.status.reconciled_spec = Some(bad.to_snapshot().unwrap());
    o.status.deployment = Some(DeployedJob {
        job_id: "orders-1".into(),
        restore_path: Some("s3://b/sp/sp-u".into()),
    });
    let rolling = plan(&o);
    let upgrade = rolling.status.upgrade.as_ref().unwrap();
    assert!(upgrade.rollback);
    assert_eq!(upgrade.step, UpgradeStep::Stopping);
    assert_eq!(upgrade.target_spec, good.to_snapshot().unwrap());
    assert_eq!(rolling.status.lifecycle_state, LifecycleState::RollingBack);
    assert!(event_reasons(&rolling).contains(&"RollingBack"));

    // The bad job is unreachable: nothing to cancel, deploy the last stable spec at once.
    let deploying = plan(&o.clone().after(&rolling));
    let deployment = deploying.status.deployment.clone().unwrap();
    assert_eq!(
        deployment.job_id, "orders-0123abcd-g2-rollback",
        "never resume the bad job's checkpoints"
    );
    assert_eq!(deployment.restore_path.as_deref(), Some("s3://b/sp/sp-u"));
    let applied = plan(&o.clone().after(&deploying));
    assert_eq!(children(&applied).unwrap().spec.image, "weir:1");
    let verifying = o.clone().after(&applied).with_runtime(Runtime::Job(job(
        "orders-0123abcd-g2-rollback",
        RuntimeJobState::Running,
        2,
    )));
    let mut later = verifying;
    later.now = at(NOW + 20_000);
    let rolled_back = plan(&later);
    assert_eq!(
        rolled_back.status.lifecycle_state,
        LifecycleState::RolledBack
    );
    assert_eq!(
        rolled_back.status.reconciled_spec,
        Some(bad.to_snapshot().unwrap()),
        "the failed spec stays reconciled"
    );
    assert_eq!(
        condition(&rolled_back, ConditionType::Degraded),
        ("True".into(), "RolledBack".into())
    );
    // Holds while the spec is unchanged, running the last stable spec.
    let holding = plan(&later.clone().after(&rolled_back));
    assert_eq!(holding.status.lifecycle_state, LifecycleState::RolledBack);
    assert_eq!(children(&holding).unwrap().spec.image, "weir:1");
    // A new change wins.
    let fixed = good.clone().with_image("weir:3");
    let mut next = later.after(&rolled_back).at_generation(3);
    next.spec = fixed;
    let upgrading = plan(&next);
    assert_eq!(upgrading.status.lifecycle_state, LifecycleState::Upgrading);
    assert!(!upgrading.status.upgrade.as_ref().unwrap().rollback);
}

#[test]
fn a_new_spec_change_wins_over_a_rollback_in_flight() {
    let good = a_job();
    let mut rollback = upgrade_to(&good, UpgradeStep::Verifying, UpgradeMode::Stateless);
    rollback.rollback = true;
    let newer = good.clone().with_image("weir:3");
    let o = observed(&newer)
        .stable_with(&good)
        .at_generation(3)
        .with_upgrade(rollback);
    let planned = plan(&o);
    let upgrade = planned.status.upgrade.as_ref().unwrap();
    assert!(!upgrade.rollback);
    assert_eq!(upgrade.target_generation, Some(3));
    assert!(event_reasons(&planned).contains(&"UpgradeSuperseded"));
}

#[test]
fn an_invalid_spec_is_reported_and_nothing_is_touched() {
    let spec = a_job().with(|s| s.job.parallelism = 0);
    let planned = plan(&observed(&spec));
    assert!(
        planned
            .actions
            .iter()
            .all(|a| matches!(a, Action::Event(_)))
    );
    assert_eq!(event_reasons(&planned), ["InvalidSpec"]);
    assert_eq!(planned.requeue, Requeue::AwaitChange);
    assert_eq!(
        condition(&planned, ConditionType::Degraded),
        ("True".into(), "InvalidSpec".into())
    );
    assert!(
        planned
            .status
            .error
            .as_ref()
            .unwrap()
            .contains("spec.job.parallelism")
    );
    let again = plan(&observed(&spec).after(&planned));
    assert!(event_reasons(&again).is_empty(), "one event per generation");
}

#[test]
fn an_upgrade_whose_job_cannot_restore_the_state_is_refused() {
    let old = a_job().in_savepoint_mode();
    let new = old
        .clone()
        .with(|s| s.job.sql = Some("INSERT INTO other SELECT 1;".into()));
    let mut o = observed(&new).stable_with(&old).at_generation(2);
    assert!(needs_compatibility_check(&o));
    o.compatibility = Some(Compatibility {
        compatible: false,
        problems: vec!["operator 'Sink out' has state and no match".into()],
    });
    let refused = plan(&o);
    assert!(refused.status.upgrade.is_none());
    assert_eq!(
        condition(&refused, ConditionType::Degraded),
        ("True".into(), "UpgradeRefused".into())
    );
    assert_eq!(condition(&refused, ConditionType::Ready).0, "False");
    assert_eq!(
        children(&refused).unwrap().spec.job.sql,
        old.job.sql,
        "the old job keeps running"
    );
    let allowed = new.clone().with(|s| s.job.allow_non_restored_state = true);
    let o = observed(&allowed).stable_with(&old).at_generation(3);
    assert!(!needs_compatibility_check(&o));
}

#[test]
fn deletion_stops_with_a_savepoint_then_releases() {
    let spec = a_job();
    let mut o = observed(&spec).running_stably();
    o.deletion = Some(at(NOW - 1_000));
    let planned = plan(&o);
    assert!(!planned.release);
    let trigger = triggers(&planned)[0];
    assert_eq!(trigger.request_id, format!("{UID}-delete"));
    assert!(trigger.stop);
    o.status.pending_savepoint = Some(PendingSavepoint {
        trigger_id: "t-d".into(),
        kind: SavepointKind::Delete,
        trigger_nonce: None,
        triggered_at: at(NOW),
    });
    let done = plan(
        &o.clone()
            .savepoint_is(SavepointProgress::Completed("s3://b/sp/d".into())),
    );
    assert!(done.release);
    assert!(event_reasons(&done).contains(&"DeleteSavepoint"));
    assert_eq!(
        done.status.last_savepoint.as_ref().unwrap().kind,
        SavepointKind::Delete
    );
    let mut late = o.savepoint_is(SavepointProgress::InProgress);
    late.now = at(NOW + 300_000);
    let timed_out = plan(&late);
    assert!(timed_out.release);
    assert_eq!(event_reasons(&timed_out), ["DeleteTimeout"]);
}

#[test]
fn deletion_without_a_savepoint_policy_cancels_and_releases() {
    let spec = a_job().with(|s| s.savepoints.on_delete = weir_crds::OnDeletePolicy::None);
    let mut o = observed(&spec).running_stably();
    o.deletion = Some(at(NOW));
    let planned = plan(&o);
    assert!(planned.release);
    assert!(planned.actions.contains(&Action::Cancel));
    assert!(triggers(&planned).is_empty());
}
