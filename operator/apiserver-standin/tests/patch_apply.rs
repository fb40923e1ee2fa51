//! Merge, JSON and strategic patches, and server-side apply.

mod common;

use common::{api_code, config_map};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use weir_apiserver_standin::{ApiServerStandin, PatchType, Verb};

#[tokio::test]
async fn merge_json_and_strategic_patches_change_the_object() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let pp = PatchParams::default();

    let merged = cms
        .patch(
            "a",
            &pp,
            &Patch::Merge(json!({"data": {"key": null, "other": "x"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data.unwrap().into_iter().collect::<Vec<_>>(),
        [("other".to_owned(), "x".to_owned())]
    );

    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/data/more", "value": "y"}, {"op": "remove", "path": "/data/other"}]))
            .unwrap();
    let patched = cms.patch("a", &pp, &Patch::Json::<()>(ops)).await.unwrap();
    assert_eq!(patched.data.unwrap().keys().collect::<Vec<_>>(), ["more"]);

    let strategic = cms
        .patch(
            "a",
            &pp,
            &Patch::Strategic(json!({"metadata": {"labels": {"s": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(strategic.labels().get("s").map(String::as_str), Some("1"));

    let types: Vec<_> = standin
        .requests()
        .iter()
        .filter(|r| r.verb == Some(Verb::Patch))
        .map(|r| r.patch_type)
        .collect();
    assert_eq!(
        types,
        [
            Some(PatchType::Merge),
            Some(PatchType::Json),
            Some(PatchType::Strategic)
        ]
    );
}

#[tokio::test]
async fn a_failed_json_patch_test_changes_nothing() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let created = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/key", "value": "2"}, {"op": "remove", "path": "/data/key"}]))
            .unwrap();
    let err = cms
        .patch("a", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), 422);
    assert_eq!(cms.get("a").await.unwrap(), created);
}

#[tokio::test]
async fn a_resource_version_in_a_patch_is_a_precondition() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let created = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let rv = created.resource_version().unwrap();
    let pp = PatchParams::default();
    let patch =
        |v: &str| Patch::Merge(json!({"metadata": {"resourceVersion": rv}, "data": {"key": v}}));
    cms.patch("a", &pp, &patch("2")).await.unwrap();
    assert_eq!(
        api_code(&cms.patch("a", &pp, &patch("3")).await.unwrap_err()),
        409
    );
}

#[tokio::test]
async fn applying_the_same_configuration_twice_changes_nothing() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let pp = PatchParams::apply("weir-operator");
    let first = cms
        .patch("a", &pp, &Patch::Apply(config_map("a", "1")))
        .await
        .unwrap();
    let second = cms
        .patch("a", &pp, &Patch::Apply(config_map("a", "1")))
        .await
        .unwrap();
    assert_eq!(first.resource_version(), second.resource_version());
    assert_eq!(standin.write_count::<ConfigMap>(Some("default"), "a"), 1);
    let managers: Vec<_> = standin
        .requests()
        .iter()
        .map(|r| r.field_manager.clone())
        .collect();
    assert_eq!(
        managers,
        [
            Some("weir-operator".to_owned()),
            Some("weir-operator".to_owned())
        ]
    );
}

#[tokio::test]
async fn apply_removes_what_the_manager_stopped_applying_but_not_other_writes() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let pp = PatchParams::apply("op");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}});
    cms.patch("a", &pp, &Patch::Apply(applied)).await.unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"z": "3"}})),
    )
    .await
    .unwrap();
    let reapplied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}});
    let cm = cms.patch("a", &pp, &Patch::Apply(reapplied)).await.unwrap();
    assert_eq!(cm.data.unwrap().keys().collect::<Vec<_>>(), ["x", "z"]);
}

#[tokio::test]
async fn apply_conflicts_with_another_manager_unless_forced() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    cms.patch(
        "a",
        &PatchParams::apply("one"),
        &Patch::Apply(config_map("a", "1")),
    )
    .await
    .unwrap();
    let err = cms
        .patch(
            "a",
            &PatchParams::apply("two"),
            &Patch::Apply(config_map("a", "2")),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error expected")
    };
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("conflict with \"one\": .data.key"),
        "{}",
        status.message
    );
    let forced = cms
        .patch(
            "a",
            &PatchParams::apply("two").force(),
            &Patch::Apply(config_map("a", "2")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["key"], "2");
}
