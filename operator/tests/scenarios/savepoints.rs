//! Manual (nonce) and periodic savepoints, the bounded history and disposal.

use weir_crds::SavepointKind;

use crate::harness::{Harness, flink_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_trigger_nonce_takes_one_savepoint_without_a_redeploy() {
    let h = Harness::start().await;
    h.create(flink_job("orders")).await;
    h.wait_stable("orders", 1).await;
    let template = h.coordinator("orders").unwrap().spec.unwrap().template;
    h.change("orders", |s| s.job.savepoint_trigger_nonce = Some(42))
        .await;
    let job = h
        .wait_until("orders", "holding the manual savepoint", |j| {
            j.status
                .as_ref()
                .and_then(|s| s.last_savepoint.as_ref())
                .is_some_and(|s| s.trigger_nonce == Some(42))
        })
        .await;
    assert_eq!(
        job.status.unwrap().last_savepoint.unwrap().kind,
        SavepointKind::Manual
    );
    h.wait_stable("orders", 2).await;
    let started = h.fake.savepoints_started();
    assert_eq!(started.len(), 1);
    assert!(!started[0].1, "the job keeps running");
    assert_eq!(
        h.coordinator("orders").unwrap().spec.unwrap().template,
        template,
        "no redeploy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_savepoints_keep_a_bounded_history_and_dispose_the_rest() {
    let h = Harness::start().await;
    let mut job = flink_job("orders");
    job.spec.savepoints.periodic_interval = Some("100ms".into());
    job.spec.savepoints.history_max_count = 2;
    h.create(job).await;
    h.wait_stable("orders", 1).await;
    h.wait_until("orders", "with disposed savepoints", |_| {
        h.fake.disposed().len() >= 2
    })
    .await;
    h.change("orders", |s| s.savepoints.periodic_interval = None)
        .await;
    let job = h.wait_stable("orders", 2).await;
    // Let a savepoint still in flight land in the history.
    let job = h
        .wait_until("orders", "without a pending savepoint", |j| {
            j.status
                .as_ref()
                .is_some_and(|s| s.pending_savepoint.is_none())
        })
        .await
        .status
        .map_or(job.status.clone(), Some)
        .unwrap();
    let history: Vec<_> = job
        .savepoint_history
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(
        job.savepoint_history
            .iter()
            .all(|s| s.kind == SavepointKind::Periodic)
    );
    let disposed = h.fake.disposed();
    assert!(
        disposed.iter().all(|d| !history.contains(d)),
        "{disposed:?} vs {history:?}"
    );
    let started = h.fake.savepoints_started();
    let unique: std::collections::BTreeSet<_> = started.iter().map(|s| &s.0).collect();
    assert_eq!(unique.len(), started.len(), "each periodic savepoint once");
}
