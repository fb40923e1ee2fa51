//! Create → Stable, suspend/resume, delete with a savepoint, invalid specs.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::ResourceExt;
use weir_crds::{ConditionType, LifecycleState, SavepointKind};

use crate::harness::{Harness, JobFixture, flink_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_flinkjob_becomes_stable_with_its_children_owned() {
    let h = Harness::start().await;
    h.create(flink_job("orders").with_parallelism(3).with_slots(2))
        .await;
    let job = h.wait_stable("orders", 1).await;
    let status = job.status.clone().unwrap();
    assert_eq!(job.finalizers(), ["weir.dev/savepoint-on-delete"]);
    let job_id = status.deployment.as_ref().unwrap().job_id.clone();
    assert!(
        job_id.starts_with("orders-") && job_id.ends_with("-g1"),
        "{job_id}"
    );
    assert_eq!(
        status.job.as_ref().unwrap().id.as_deref(),
        Some(job_id.as_str())
    );
    assert!(status.last_checkpoint.is_some());
    assert_eq!(
        status.selector.as_deref(),
        Some(
            "app.kubernetes.io/component=workers,app.kubernetes.io/instance=orders,app.kubernetes.io/name=weir"
        )
    );

    assert_eq!(h.coordinator_arg("orders", "--job-id"), Some(job_id));
    assert_eq!(
        h.coordinator_arg("orders", "--parallelism").as_deref(),
        Some("3")
    );
    assert_eq!(h.coordinator_arg("orders", "--restore"), None);
    // An ended job's coordinator stays up (a restarted container would resume the old job),
    // and stays reachable through its Service while the job is not RUNNING.
    assert!(
        h.coordinator_args("orders")
            .contains(&"--keep-alive".to_owned())
    );
    let pod = h
        .coordinator("orders")
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let probe = pod.containers[0].readiness_probe.clone().unwrap();
    assert_eq!(probe.http_get.unwrap().path.as_deref(), Some("/healthz"));
    assert_eq!(h.workers_replicas("orders"), Some(2), "ceil(3 / 2)");
    let config_maps: Vec<ConfigMap> = h.standin.objects().unwrap();
    assert_eq!(
        config_maps[0].data.as_ref().unwrap()["job.sql"],
        "INSERT INTO out SELECT * FROM src;"
    );
    let secrets: Vec<Secret> = h.standin.objects().unwrap();
    assert_eq!(secrets.len(), 1);
    let services: Vec<Service> = h.standin.objects().unwrap();
    assert_eq!(services.len(), 2);
    let uid = job.uid().unwrap();
    let owned = |refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
        refs.iter()
            .any(|r| r.uid == uid && r.controller == Some(true))
    };
    assert!(config_maps.iter().all(|c| owned(c.owner_references())));
    assert!(secrets.iter().all(|c| owned(c.owner_references())));
    assert!(services.iter().all(|c| owned(c.owner_references())));
    assert!(owned(h.coordinator("orders").unwrap().owner_references()));
    assert!(owned(h.workers("orders").unwrap().owner_references()));
    let managers: Vec<_> = h
        .standin
        .requests()
        .into_iter()
        .filter_map(|r| r.field_manager)
        .collect();
    assert!(
        !managers.is_empty() && managers.iter().all(|m| m == "weir-operator"),
        "{managers:?}"
    );
    for reason in ["Deploying", "Deployed", "JobStable"] {
        h.wait_event(reason).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_with_a_savepoint_and_resume_restores_it() {
    let h = Harness::start().await;
    h.create(flink_job("orders").in_savepoint_mode()).await;
    h.wait_stable("orders", 1).await;
    let job_id = h.coordinator_arg("orders", "--job-id");

    h.change("orders", |s| s.job.state = weir_crds::JobState::Suspended)
        .await;
    let job = h.wait_lifecycle("orders", LifecycleState::Suspended).await;
    h.standin
        .wait_for::<Deployment>(crate::harness::WAIT, |d| d.is_empty())
        .await
        .unwrap();
    h.standin
        .wait_for::<StatefulSet>(crate::harness::WAIT, |s| s.is_empty())
        .await
        .unwrap();
    let savepoint = job.status.unwrap().last_savepoint.unwrap();
    assert_eq!(savepoint.kind, SavepointKind::Upgrade);
    assert_eq!(h.fake.savepoints_started().len(), 1);
    assert!(h.fake.savepoints_started()[0].1, "a stop-with-savepoint");

    h.change("orders", |s| s.job.state = weir_crds::JobState::Running)
        .await;
    h.wait_stable("orders", 3).await;
    assert_eq!(
        h.coordinator_arg("orders", "--restore"),
        Some(savepoint.path)
    );
    assert_eq!(h.coordinator_arg("orders", "--job-id"), job_id);
    assert_eq!(
        h.fake.savepoints_started().len(),
        1,
        "resuming takes no savepoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_stops_the_job_with_a_savepoint_first() {
    let h = Harness::start().await;
    h.create(flink_job("orders")).await;
    h.wait_stable("orders", 1).await;
    h.delete("orders").await;
    h.standin
        .wait_for::<weir_crds::FlinkJob>(crate::harness::WAIT, |jobs| jobs.is_empty())
        .await
        .unwrap();
    let started = h.fake.savepoints_started();
    assert_eq!(started.len(), 1);
    assert!(
        started[0].0.ends_with("-delete") && started[0].1,
        "{started:?}"
    );
    h.wait_event("DeleteSavepoint").await;
    // Garbage collection follows the owner references.
    assert!(h.standin.objects::<Deployment>().unwrap().is_empty());
    assert!(h.standin.objects::<ConfigMap>().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_does_not_wait_forever_for_its_savepoint() {
    let h = Harness::start().await;
    h.create(flink_job("orders")).await;
    h.wait_stable("orders", 1).await;
    h.change("orders", |s| s.savepoints.delete_timeout = "300ms".into())
        .await;
    h.wait_until("orders", "reconciled", |j| {
        j.status.as_ref().and_then(|s| s.observed_generation) == Some(2)
    })
    .await;
    h.fake.hold_savepoints(true);
    h.delete("orders").await;
    h.standin
        .wait_for::<weir_crds::FlinkJob>(crate::harness::WAIT, |jobs| jobs.is_empty())
        .await
        .unwrap();
    h.wait_event("DeleteTimeout").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_is_reported_once_and_deploys_nothing() {
    let h = Harness::start().await;
    // The stand-in does not run the CRD's CEL rules, as an old CRD would not either.
    h.create(flink_job("orders").with_parallelism(0)).await;
    let job = h
        .wait_until("orders", "Degraded", |j| {
            j.status
                .as_ref()
                .is_some_and(|s| s.is_condition_true(ConditionType::Degraded))
        })
        .await;
    let status = job.status.unwrap();
    assert_eq!(
        status.condition(ConditionType::Degraded).unwrap().reason,
        "InvalidSpec"
    );
    assert!(status.error.unwrap().contains("spec.job.parallelism"));
    h.wait_event("InvalidSpec").await;
    let writes = h
        .standin
        .write_count::<weir_crds::FlinkJob>(Some("default"), "orders");
    // No crash loop: left alone, the controller writes nothing more and emits no more events.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        h.standin
            .write_count::<weir_crds::FlinkJob>(Some("default"), "orders"),
        writes
    );
    assert_eq!(
        h.event_reasons()
            .iter()
            .filter(|r| *r == "InvalidSpec")
            .count(),
        1
    );
    assert!(h.standin.objects::<Deployment>().unwrap().is_empty());

    h.change("orders", |s| s.job.parallelism = 1).await;
    h.wait_stable("orders", 2).await;
}
