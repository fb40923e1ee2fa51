//! The controller dropped and restarted at every step of a savepoint upgrade: the outcome is
//! the same as without the restart, and no savepoint is taken twice.

use weir_apiserver_standin::{Fault, Verb};
use weir_crds::{FlinkJob, UpgradeStep};

use crate::fake_job::Call;
use crate::harness::{Harness, JobFixture, flink_job};

#[derive(Clone, Copy, Debug)]
enum CrashPoint {
    /// The upgrade is recorded; the savepoint could not be triggered yet.
    BeforeTheTrigger,
    /// The savepoint started but its trigger id never reached the status.
    AfterTheTriggerBeforeItsIdIsRecorded,
    /// The trigger id is recorded; the savepoint is in progress.
    WhileTheSavepointIsTaken,
    /// The savepoint is done; the new children could not be applied yet.
    WhileDeploying,
    /// Deployed; the new job has not started yet.
    WhileVerifying,
}

fn step_of(job: &FlinkJob) -> Option<(UpgradeStep, bool)> {
    let upgrade = job.status.as_ref()?.upgrade.as_ref()?;
    Some((upgrade.step, upgrade.savepoint_trigger_id.is_some()))
}

async fn upgrade_with_a_crash(at: CrashPoint) {
    let mut h = Harness::start().await;
    h.create(flink_job("orders").in_savepoint_mode()).await;
    h.wait_stable("orders", 1).await;
    let job_id = h.coordinator_arg("orders", "--job-id");

    match at {
        CrashPoint::BeforeTheTrigger => h.fake.refuse_triggers(true),
        CrashPoint::AfterTheTriggerBeforeItsIdIsRecorded => {
            h.fake.lose_next_trigger_answer();
            h.fake.hold_savepoints(true);
        }
        CrashPoint::WhileTheSavepointIsTaken => h.fake.hold_savepoints(true),
        CrashPoint::WhileDeploying => {
            h.standin.inject(
                Fault::internal_error()
                    .verb(Verb::Patch)
                    .resource("deployments"),
            );
        }
        CrashPoint::WhileVerifying => h.fake.hold_running(true),
    }
    h.change("orders", |s| s.image = "weir:2".into()).await;
    match at {
        CrashPoint::BeforeTheTrigger => {
            h.wait_until("orders", "stopping", |j| {
                step_of(j) == Some((UpgradeStep::Stopping, false))
                    && h.fake
                        .calls()
                        .iter()
                        .any(|c| matches!(c, Call::Trigger { .. }))
            })
            .await;
        }
        CrashPoint::AfterTheTriggerBeforeItsIdIsRecorded => {
            // The retry after the lost answer may record the id before the kill: either way
            // a trigger with the same request id follows the lost answer.
            h.wait_until("orders", "with its savepoint started", |j| {
                matches!(step_of(j), Some((UpgradeStep::Stopping, _)))
                    && h.fake.savepoints_started().len() == 1
            })
            .await;
        }
        CrashPoint::WhileTheSavepointIsTaken => {
            h.wait_until("orders", "polling its savepoint", |j| {
                step_of(j) == Some((UpgradeStep::Stopping, true))
            })
            .await;
        }
        CrashPoint::WhileDeploying => {
            h.wait_until("orders", "deploying", |j| {
                matches!(
                    step_of(j),
                    Some((UpgradeStep::Verifying | UpgradeStep::Deploying, true))
                ) && j
                    .status
                    .as_ref()
                    .is_some_and(|s| s.last_savepoint.is_some())
            })
            .await;
        }
        CrashPoint::WhileVerifying => {
            h.wait_until("orders", "verifying", |j| {
                matches!(step_of(j), Some((UpgradeStep::Verifying, _)))
            })
            .await;
        }
    }
    h.kill_controller().await;
    h.fake.refuse_triggers(false);
    h.fake.hold_savepoints(false);
    h.fake.hold_running(false);
    h.standin.clear_faults();
    h.start_controller();

    let job = h.wait_stable("orders", 2).await;
    if matches!(at, CrashPoint::AfterTheTriggerBeforeItsIdIsRecorded) {
        let repeated = h
            .fake
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Trigger { started: false, .. }))
            .count();
        assert!(
            repeated >= 1,
            "the lost answer was followed by a deduplicated trigger"
        );
    }
    let started = h.fake.savepoints_started();
    assert_eq!(started.len(), 1, "{at:?}: one savepoint, not {started:?}");
    let savepoint = job.status.unwrap().last_savepoint.unwrap().path;
    assert_eq!(
        h.coordinator_arg("orders", "--restore"),
        Some(savepoint),
        "{at:?}"
    );
    assert_eq!(h.coordinator_arg("orders", "--job-id"), job_id, "{at:?}");
    let image = h
        .coordinator("orders")
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("weir:2"), "{at:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_before_the_trigger_triggers_once() {
    upgrade_with_a_crash(CrashPoint::BeforeTheTrigger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_a_lost_trigger_answer_reuses_the_savepoint() {
    upgrade_with_a_crash(CrashPoint::AfterTheTriggerBeforeItsIdIsRecorded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_the_savepoint_is_taken_polls_it() {
    upgrade_with_a_crash(CrashPoint::WhileTheSavepointIsTaken).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_deploying_deploys_the_same() {
    upgrade_with_a_crash(CrashPoint::WhileDeploying).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_verifying_finishes_the_upgrade() {
    upgrade_with_a_crash(CrashPoint::WhileVerifying).await;
}
