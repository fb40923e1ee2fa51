//! Spec changes in each upgrade mode, rescaling, refused upgrades and rollback.

use weir_crds::{ConditionType, LifecycleState, SavepointKind};

use crate::harness::{Harness, JobFixture, flink_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_upgrade_restores_the_savepoint_it_took() {
    let h = Harness::start().await;
    h.create(flink_job("orders").in_savepoint_mode()).await;
    h.wait_stable("orders", 1).await;
    let job_id = h.coordinator_arg("orders", "--job-id");
    h.change("orders", |s| s.image = "weir:2".into()).await;
    let job = h.wait_stable("orders", 2).await;
    let status = job.status.unwrap();
    let savepoint = status.last_savepoint.unwrap();
    assert_eq!(savepoint.kind, SavepointKind::Upgrade);
    assert_eq!(
        h.coordinator_arg("orders", "--restore"),
        Some(savepoint.path)
    );
    assert_eq!(
        h.coordinator_arg("orders", "--job-id"),
        job_id,
        "the coordinator resumes its own job"
    );
    let started = h.fake.savepoints_started();
    assert_eq!(started.len(), 1, "{started:?}");
    assert!(started[0].1, "stop with savepoint");
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
    assert_eq!(image.as_deref(), Some("weir:2"));
    assert_eq!(status.last_stable_spec, status.reconciled_spec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_state_upgrade_cancels_and_resumes_the_same_job() {
    let h = Harness::start().await;
    h.create(flink_job("orders").in_last_state_mode()).await;
    h.wait_stable("orders", 1).await;
    let job_id = h.coordinator_arg("orders", "--job-id");
    h.change("orders", |s| s.image = "weir:2".into()).await;
    h.wait_stable("orders", 2).await;
    assert!(h.fake.savepoints_started().is_empty());
    assert!(h.fake.calls().contains(&crate::fake_job::Call::Cancel));
    assert_eq!(h.coordinator_arg("orders", "--job-id"), job_id);
    assert_eq!(h.coordinator_arg("orders", "--restore"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_upgrade_starts_a_new_job() {
    let h = Harness::start().await;
    h.create(flink_job("orders")).await;
    h.wait_stable("orders", 1).await;
    let job_id = h.coordinator_arg("orders", "--job-id");
    h.change("orders", |s| s.image = "weir:2".into()).await;
    h.wait_stable("orders", 2).await;
    assert!(h.fake.savepoints_started().is_empty());
    let new_id = h.coordinator_arg("orders", "--job-id");
    assert_ne!(new_id, job_id);
    assert!(new_id.unwrap().ends_with("-g2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescaling_2_4_1_goes_through_a_savepoint_each_time() {
    let h = Harness::start().await;
    h.create(flink_job("orders").in_savepoint_mode().with_parallelism(2))
        .await;
    h.wait_stable("orders", 1).await;
    assert_eq!(h.workers_replicas("orders"), Some(2));
    for (generation, parallelism) in [(2, 4), (3, 1)] {
        h.change("orders", |s| s.job.parallelism = parallelism)
            .await;
        let job = h.wait_stable("orders", generation).await;
        assert_eq!(h.workers_replicas("orders"), Some(parallelism));
        assert_eq!(
            h.coordinator_arg("orders", "--parallelism"),
            Some(parallelism.to_string())
        );
        let status = job.status.unwrap();
        assert_eq!(status.job.unwrap().parallelism, Some(parallelism));
        assert_eq!(
            h.coordinator_arg("orders", "--restore"),
            Some(status.last_savepoint.unwrap().path)
        );
    }
    assert_eq!(h.fake.savepoints_started().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_cannot_restore_the_state_is_refused_and_the_old_job_keeps_running() {
    let h = Harness::start().await;
    h.create(flink_job("orders").in_savepoint_mode()).await;
    h.wait_stable("orders", 1).await;
    h.fake
        .report_incompatible(&["operator 'Sink out' has state the new job does not"]);
    h.change("orders", |s| {
        s.job.sql = Some("INSERT INTO other SELECT 1;".into())
    })
    .await;
    let job = h
        .wait_until("orders", "refused", |j| {
            j.status.as_ref().is_some_and(|s| {
                s.observed_generation == Some(2)
                    && s.condition(ConditionType::Degraded)
                        .is_some_and(|c| c.reason == "UpgradeRefused")
            })
        })
        .await;
    let status = job.status.unwrap();
    assert!(!status.is_condition_true(ConditionType::Ready));
    assert!(status.error.unwrap().contains("Sink out"));
    assert!(
        h.fake.savepoints_started().is_empty(),
        "the old job was not stopped"
    );
    h.wait_event("UpgradeRefused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_does_not_run_is_rolled_back_and_a_new_change_wins() {
    let h = Harness::start().await;
    h.create(
        flink_job("orders")
            .in_savepoint_mode()
            .with_readiness_timeout("500ms"),
    )
    .await;
    h.wait_stable("orders", 1).await;
    h.fake.fail_image("weir:broken");
    h.change("orders", |s| s.image = "weir:broken".into()).await;
    let job = h.wait_lifecycle("orders", LifecycleState::RolledBack).await;
    let status = job.status.unwrap();
    let upgrade_savepoint = status.last_savepoint.clone().unwrap().path;
    assert_eq!(
        h.coordinator_arg("orders", "--restore"),
        Some(upgrade_savepoint)
    );
    assert!(
        h.coordinator_arg("orders", "--job-id")
            .unwrap()
            .ends_with("-rollback")
    );
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
    assert_eq!(image.as_deref(), Some("weir:1"));
    assert_eq!(
        status.condition(ConditionType::Degraded).unwrap().reason,
        "RolledBack"
    );
    h.wait_event("RollingBack").await;
    assert_eq!(
        h.fake.savepoints_started().len(),
        1,
        "the rollback restores the upgrade's savepoint"
    );

    h.change("orders", |s| s.image = "weir:2".into()).await;
    h.wait_stable("orders", 3).await;
}
