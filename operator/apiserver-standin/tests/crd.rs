//! A custom resource registered from its CustomResourceDefinition: CRUD, status and scale.

mod common;

use common::api_code;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, CustomResource, CustomResourceExt, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use weir_apiserver_standin::ApiServerStandin;

/// A cut-down FlinkJob, enough to exercise the subresources.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "weir.dev",
    version = "v1alpha1",
    kind = "FlinkJob",
    namespaced,
    status = "FlinkJobStatus",
    shortname = "fj",
    scale(
        spec_replicas_path = ".spec.parallelism",
        status_replicas_path = ".status.parallelism"
    )
)]
pub struct FlinkJobSpec {
    parallelism: i32,
    image: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct FlinkJobStatus {
    parallelism: Option<i32>,
    state: Option<String>,
}

fn job(name: &str, parallelism: i32) -> FlinkJob {
    FlinkJob::new(
        name,
        FlinkJobSpec {
            parallelism,
            image: "weir:1".into(),
        },
    )
}

#[tokio::test]
async fn a_registered_crd_serves_its_kind_with_status_and_scale() {
    let standin = ApiServerStandin::new();
    standin.register_crd(&FlinkJob::crd()).unwrap();
    let jobs: Api<FlinkJob> = Api::default_namespaced(standin.client());
    let created = jobs
        .create(&PostParams::default(), &job("j", 2))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let pp = PatchParams::default();

    let status = json!({"status": {"parallelism": 2, "state": "RUNNING"}});
    let with_status = jobs
        .patch_status("j", &pp, &Patch::Merge(status))
        .await
        .unwrap();
    assert_eq!(
        with_status.status.as_ref().unwrap().state.as_deref(),
        Some("RUNNING")
    );
    assert_eq!(
        with_status.metadata.generation,
        Some(1),
        "status writes never bump generation"
    );

    let scale = jobs.get_scale("j").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(scale.status.unwrap().replicas, 2);

    let rescaled = jobs
        .patch_scale("j", &pp, &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .unwrap();
    assert_eq!(rescaled.spec.unwrap().replicas, Some(4));
    let after = jobs.get("j").await.unwrap();
    assert_eq!(after.spec.parallelism, 4);
    assert_eq!(
        after.metadata.generation,
        Some(2),
        "a scale write is a spec change"
    );

    let mut stale = jobs.get_scale("j").await.unwrap();
    stale.metadata.resource_version = created.metadata.resource_version.clone();
    stale.spec.as_mut().unwrap().replicas = Some(1);
    assert_eq!(
        api_code(
            &jobs
                .replace_scale("j", &PostParams::default(), &stale)
                .await
                .unwrap_err()
        ),
        409
    );
}

#[tokio::test]
async fn server_side_apply_of_a_custom_resource_keeps_spec_and_status_apart() {
    let standin = ApiServerStandin::builder()
        .crd(&FlinkJob::crd())
        .unwrap()
        .build();
    let jobs: Api<FlinkJob> = Api::default_namespaced(standin.client());
    let apply = PatchParams::apply("weir-operator");
    let first = jobs
        .patch("j", &apply, &Patch::Apply(job("j", 2)))
        .await
        .unwrap();
    let again = jobs
        .patch("j", &apply, &Patch::Apply(job("j", 2)))
        .await
        .unwrap();
    assert_eq!(first.resource_version(), again.resource_version());

    let status = json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "FlinkJob",
        "status": {"state": "DEPLOYING"},
    });
    let with_status = jobs
        .patch_status("j", &apply, &Patch::Apply(status))
        .await
        .unwrap();
    assert_eq!(
        with_status.status.unwrap().state.as_deref(),
        Some("DEPLOYING")
    );
    assert_eq!(with_status.metadata.generation, Some(1));

    // The main-resource apply (which has no status) neither removes nor changes status.
    let upgraded = jobs
        .patch("j", &apply, &Patch::Apply(job("j", 3)))
        .await
        .unwrap();
    assert_eq!(upgraded.spec.parallelism, 3);
    assert_eq!(upgraded.metadata.generation, Some(2));
    assert_eq!(upgraded.status.unwrap().state.as_deref(), Some("DEPLOYING"));
}

#[tokio::test]
async fn creating_the_crd_object_through_the_api_registers_the_kind() {
    let standin = ApiServerStandin::new();
    let client = standin.client();
    let jobs: Api<FlinkJob> = Api::default_namespaced(client.clone());
    assert_eq!(
        api_code(
            &jobs
                .create(&PostParams::default(), &job("j", 1))
                .await
                .unwrap_err()
        ),
        404
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    crds.create(&PostParams::default(), &FlinkJob::crd())
        .await
        .unwrap();
    jobs.create(&PostParams::default(), &job("j", 1))
        .await
        .unwrap();
    assert_eq!(standin.objects::<FlinkJob>().unwrap().len(), 1);
}
