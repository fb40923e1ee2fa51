//! Finalizers and deletionTimestamp, ownerReference garbage collection, and Events.

mod common;

use common::{api_code, config_map, owner_ref};
use k8s_openapi::api::{
    core::v1::{ConfigMap, ObjectReference, Secret},
    events::v1::Event,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy},
    runtime::events::{Event as RecordedEvent, EventType, Recorder, Reporter},
};
use serde_json::json;
use weir_apiserver_standin::ApiServerStandin;

fn secret_owned_by(name: &str, owner: &ConfigMap) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.owner_references = Some(vec![owner_ref(owner)]);
    secret
}

#[tokio::test]
async fn a_finalizer_holds_a_deleted_object_until_it_is_removed() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let mut cm = config_map("a", "1");
    cm.metadata.finalizers = Some(vec!["weir.dev/savepoint".into()]);
    cms.create(&PostParams::default(), &cm).await.unwrap();

    let pending = cms.delete("a", &DeleteParams::default()).await.unwrap();
    let pending = pending.left().expect("held by its finalizer");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(
        pending.metadata.generation,
        Some(2),
        "marking for deletion bumps generation"
    );
    let again = cms
        .delete("a", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        again.resource_version(),
        pending.resource_version(),
        "a second delete changes nothing"
    );

    // kube-runtime's finalizer helper removes its finalizer with a test-and-remove JSON patch.
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "weir.dev/savepoint"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]))
    .unwrap();
    cms.patch("a", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .unwrap();
    assert_eq!(api_code(&cms.get("a").await.unwrap_err()), 404);
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents_recursively() {
    let standin = ApiServerStandin::new();
    let client = standin.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let owner = cms
        .create(&PostParams::default(), &config_map("owner", "1"))
        .await
        .unwrap();
    let mut child = config_map("child", "1");
    child.metadata.owner_references = Some(vec![owner_ref(&owner)]);
    let child = cms.create(&PostParams::default(), &child).await.unwrap();
    secrets
        .create(
            &PostParams::default(),
            &secret_owned_by("grandchild", &child),
        )
        .await
        .unwrap();
    let mut held = secret_owned_by("held", &owner);
    held.metadata.finalizers = Some(vec!["keep".into()]);
    secrets.create(&PostParams::default(), &held).await.unwrap();
    cms.create(&PostParams::default(), &config_map("unrelated", "1"))
        .await
        .unwrap();

    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    let left: Vec<String> = standin
        .objects::<ConfigMap>()
        .unwrap()
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(left, ["unrelated"]);
    let secrets_left = standin.objects::<Secret>().unwrap();
    assert_eq!(secrets_left.len(), 1);
    assert_eq!(secrets_left[0].name_any(), "held");
    assert!(
        secrets_left[0].metadata.deletion_timestamp.is_some(),
        "a dependent with a finalizer is marked"
    );
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents() {
    let standin = ApiServerStandin::new();
    let client = standin.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let owner = cms
        .create(&PostParams::default(), &config_map("owner", "1"))
        .await
        .unwrap();
    let mut held = secret_owned_by("held", &owner);
    held.metadata.finalizers = Some(vec!["keep".into()]);
    secrets.create(&PostParams::default(), &held).await.unwrap();

    let pending = cms
        .delete("owner", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(pending.finalizers(), ["foregroundDeletion"]);
    secrets
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert!(standin.objects::<Secret>().unwrap().is_empty());
    assert!(
        standin.objects::<ConfigMap>().unwrap().is_empty(),
        "owner released once its dependents are gone"
    );
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_reference() {
    let standin = ApiServerStandin::new();
    let client = standin.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let owner = cms
        .create(&PostParams::default(), &config_map("owner", "1"))
        .await
        .unwrap();
    secrets
        .create(&PostParams::default(), &secret_owned_by("s", &owner))
        .await
        .unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..Default::default()
    };
    cms.delete("owner", &dp).await.unwrap();
    let s = secrets.get("s").await.unwrap();
    assert!(s.owner_references().is_empty());
}

#[tokio::test]
async fn the_event_recorder_stores_events() {
    let standin = ApiServerStandin::new();
    let client = standin.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let reference: ObjectReference = cm.object_ref(&());
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "weir-operator".into(),
            instance: None,
        },
    );
    let event = RecordedEvent {
        type_: EventType::Normal,
        reason: "Deployed".into(),
        note: Some("coordinator deployed".into()),
        action: "Deploy".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let events = standin.objects::<Event>().unwrap();
    assert_eq!(events.len(), 1, "a repeated event is patched into a series");
    assert_eq!(events[0].reason.as_deref(), Some("Deployed"));
    assert_eq!(
        events[0].regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("a")
    );
}
