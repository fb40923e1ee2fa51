//! API faults (409 conflicts, 500s) during an upgrade are retried without harm.

use weir_apiserver_standin::{Fault, Verb};

use crate::harness::{Harness, JobFixture, flink_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_server_errors_during_an_upgrade_are_retried_without_harm() {
    let h = Harness::start().await;
    h.create(flink_job("orders").in_savepoint_mode()).await;
    h.wait_stable("orders", 1).await;
    let faults = [
        h.standin.inject(
            Fault::conflict()
                .verb(Verb::Patch)
                .resource("flinkjobs")
                .subresource("status")
                .probability(0.3),
        ),
        h.standin.inject(
            Fault::internal_error()
                .verb(Verb::Patch)
                .resource("deployments")
                .probability(0.3),
        ),
        h.standin.inject(
            Fault::internal_error()
                .verb(Verb::Get)
                .resource("flinkjobs")
                .probability(0.2),
        ),
        h.standin.inject(
            Fault::internal_error()
                .verb(Verb::Patch)
                .resource("statefulsets")
                .times(2),
        ),
    ];
    h.change("orders", |s| {
        s.image = "weir:2".into();
        s.job.parallelism = 3;
    })
    .await;
    let job = h.wait_stable("orders", 2).await;
    assert!(
        faults.iter().map(|f| h.standin.fault_hits(*f)).sum::<u32>() > 0,
        "faults were hit"
    );
    h.standin.clear_faults();
    assert_eq!(h.fake.savepoints_started().len(), 1);
    assert_eq!(h.workers_replicas("orders"), Some(3));
    assert_eq!(
        h.coordinator_arg("orders", "--restore"),
        Some(job.status.unwrap().last_savepoint.unwrap().path)
    );
}
