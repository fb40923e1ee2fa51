//! Injected faults answer matching requests instead of the store.

mod common;

use std::time::{Duration, Instant};

use common::{api_code, config_map};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use weir_apiserver_standin::{ApiServerStandin, Fault, Verb};

#[tokio::test]
async fn an_injected_conflict_fails_the_next_matching_write_only() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let fault = standin.inject(
        Fault::conflict()
            .verb(Verb::Patch)
            .resource("configmaps")
            .name("a")
            .times(1),
    );
    let patch = Patch::Merge(json!({"data": {"key": "2"}}));
    let err = cms
        .patch("a", &PatchParams::default(), &patch)
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), 409);
    assert_eq!(
        cms.get("a").await.unwrap().data.unwrap()["key"],
        "1",
        "the faulted write did not happen"
    );
    cms.patch("a", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(standin.fault_hits(fault), 1);
}

#[tokio::test]
async fn injected_server_errors_and_throttling_carry_their_codes() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    standin.inject(Fault::internal_error().verb(Verb::Get).times(1));
    standin.inject(Fault::too_many_requests().verb(Verb::Get).times(1));
    assert_eq!(api_code(&cms.get("a").await.unwrap_err()), 500);
    assert_eq!(api_code(&cms.get("a").await.unwrap_err()), 429);
    cms.get("a").await.unwrap();
}

#[tokio::test]
async fn subresource_faults_leave_the_main_resource_alone() {
    let standin = ApiServerStandin::new();
    let deploys: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(standin.client());
    let mut d = k8s_openapi::api::apps::v1::Deployment::default();
    d.metadata.name = Some("d".into());
    deploys.create(&PostParams::default(), &d).await.unwrap();
    standin.inject(Fault::internal_error().subresource("status"));
    let pp = PatchParams::default();
    deploys
        .patch(
            "d",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    let err = deploys
        .patch_status("d", &pp, &Patch::Merge(json!({"status": {"replicas": 1}})))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), 500);
}

#[tokio::test]
async fn a_timeout_fault_answers_late_and_a_hang_fails_the_transport() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    standin.inject(
        Fault::timeout(Duration::from_millis(200))
            .verb(Verb::Create)
            .times(1),
    );
    standin.inject(
        Fault::hang(Duration::from_millis(200))
            .verb(Verb::Create)
            .times(1),
    );
    let started = Instant::now();
    let err = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), 504);
    let err = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Service(_)), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn probabilistic_faults_hit_some_requests() {
    let standin = ApiServerStandin::builder().seed(7).build();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let fault = standin.inject(Fault::internal_error().verb(Verb::Get).probability(0.5));
    let mut failures = 0;
    for _ in 0..100 {
        if cms.get("a").await.is_err() {
            failures += 1;
        }
    }
    assert_eq!(standin.fault_hits(fault), failures);
    assert!((20..80).contains(&failures), "{failures} of 100");
}

#[tokio::test]
async fn a_retrying_writer_gets_through_transient_faults() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    standin.inject(Fault::internal_error().verb(Verb::Patch).times(2));
    let pp = PatchParams::apply("op");
    let mut attempts = 0;
    let applied = loop {
        attempts += 1;
        match cms
            .patch("a", &pp, &Patch::Apply(config_map("a", "1")))
            .await
        {
            Ok(cm) => break cm,
            Err(e) if attempts < 5 => assert_eq!(api_code(&e), 500),
            Err(e) => panic!("gave up: {e}"),
        }
    };
    assert_eq!(attempts, 3);
    assert_eq!(applied.data.unwrap()["key"], "1");
}
