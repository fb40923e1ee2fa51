//! Create, read, replace, delete and list with k8s-openapi types through a real kube client.

mod common;

use std::collections::BTreeMap;

use common::{api_code, config_map, labelled};
use k8s_openapi::{
    api::{
        apps::v1::{
            Deployment, DeploymentSpec, DeploymentStatus, StatefulSet, StatefulSetSpec,
            StatefulSetStatus,
        },
        coordination::v1::{Lease, LeaseSpec},
        core::v1::ConfigMap,
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use weir_apiserver_standin::ApiServerStandin;

fn deployment(name: &str, replicas: i32) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector::default(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn config_map_round_trips_with_server_metadata() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let created = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    assert!(created.uid().is_some());
    assert!(created.creation_timestamp().is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let rv1: u64 = created.resource_version().unwrap().parse().unwrap();

    let mut changed = cms.get("a").await.unwrap();
    assert_eq!(changed, created);
    changed.data = Some(BTreeMap::from([("key".to_owned(), "2".to_owned())]));
    let replaced = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    let rv2: u64 = replaced.resource_version().unwrap().parse().unwrap();
    assert!(rv2 > rv1);
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_eq!(replaced.uid(), created.uid());

    let deleted = cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_right(), "removed at once without finalizers");
    assert_eq!(api_code(&cms.get("a").await.unwrap_err()), 404);
}

#[tokio::test]
async fn creating_an_existing_name_is_409_already_exists() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let err = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error expected")
    };
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
}

#[tokio::test]
async fn generate_name_appends_a_suffix() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let mut cm = config_map("", "1");
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("job-".into());
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.name_any().starts_with("job-"));
    assert_eq!(created.name_any().len(), "job-".len() + 5);
}

#[tokio::test]
async fn replace_with_a_stale_resource_version_conflicts() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let stale = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    cms.replace(
        "a",
        &PostParams::default(),
        &config_map_with_rv(&stale, "2"),
    )
    .await
    .unwrap();
    let err = cms
        .replace(
            "a",
            &PostParams::default(),
            &config_map_with_rv(&stale, "3"),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error expected")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

fn config_map_with_rv(base: &ConfigMap, value: &str) -> ConfigMap {
    let mut cm = base.clone();
    cm.data = Some(BTreeMap::from([("key".to_owned(), value.to_owned())]));
    cm
}

#[tokio::test]
async fn a_write_that_changes_nothing_keeps_the_resource_version() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let created = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let same = cms
        .replace("a", &PostParams::default(), &created)
        .await
        .unwrap();
    assert_eq!(same.resource_version(), created.resource_version());
    assert_eq!(standin.write_count::<ConfigMap>(Some("default"), "a"), 1);
}

#[tokio::test]
async fn deployment_generation_counts_spec_changes_only() {
    let standin = ApiServerStandin::new();
    let deploys: Api<Deployment> = Api::default_namespaced(standin.client());
    deploys
        .create(&PostParams::default(), &deployment("d", 1))
        .await
        .unwrap();
    let pp = PatchParams::default();

    let labelled = deploys
        .patch(
            "d",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));

    let status = deploys
        .patch_status("d", &pp, &Patch::Merge(json!({"status": {"replicas": 1}})))
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(1));
    assert_eq!(status.status.as_ref().and_then(|s| s.replicas), Some(1));

    let scaled = deploys
        .patch("d", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    assert!(scaled.resource_version() > status.resource_version());
}

#[tokio::test]
async fn status_is_only_written_through_the_status_subresource() {
    let standin = ApiServerStandin::new();
    let sts: Api<StatefulSet> = Api::default_namespaced(standin.client());
    let mut set = StatefulSet {
        metadata: ObjectMeta {
            name: Some("w".into()),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(2),
            ..Default::default()
        }),
        status: Some(StatefulSetStatus {
            replicas: 7,
            ..Default::default()
        }),
    };
    let created = sts.create(&PostParams::default(), &set).await.unwrap();
    assert_eq!(created.status, None, "create drops status");

    // A main-resource write keeps the stored status.
    set = created.clone();
    set.status = Some(StatefulSetStatus {
        replicas: 5,
        ..Default::default()
    });
    let replaced = sts
        .replace("w", &PostParams::default(), &set)
        .await
        .unwrap();
    assert_eq!(replaced.status, None);
    assert_eq!(
        replaced.resource_version(),
        created.resource_version(),
        "nothing else changed"
    );

    // A status write keeps the stored spec.
    set = replaced.clone();
    set.spec.as_mut().unwrap().replicas = Some(9);
    set.status = Some(StatefulSetStatus {
        replicas: 2,
        ..Default::default()
    });
    let status = sts
        .replace_status("w", &PostParams::default(), &set)
        .await
        .unwrap();
    assert_eq!(status.spec.unwrap().replicas, Some(2));
    assert_eq!(status.status.unwrap().replicas, 2);
    assert_eq!(status.metadata.generation, Some(1));

    let ignored = sts
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(ignored.status.unwrap().replicas, 2);
    let _: DeploymentStatus = DeploymentStatus::default();
}

#[tokio::test]
async fn lists_filter_by_namespace_labels_and_fields() {
    let standin = ApiServerStandin::new();
    let client = standin.client();
    let default: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "other");
    let pp = PostParams::default();
    default
        .create(
            &pp,
            &labelled(config_map("web", "1"), &[("app", "web"), ("tier", "front")]),
        )
        .await
        .unwrap();
    default
        .create(
            &pp,
            &labelled(config_map("db", "1"), &[("app", "db"), ("tier", "back")]),
        )
        .await
        .unwrap();
    default
        .create(&pp, &config_map("plain", "1"))
        .await
        .unwrap();
    let mut elsewhere = labelled(config_map("web", "1"), &[("app", "web")]);
    elsewhere.metadata.namespace = Some("other".into());
    other.create(&pp, &elsewhere).await.unwrap();

    let names = |list: kube::core::ObjectList<ConfigMap>| {
        list.items.iter().map(|c| c.name_any()).collect::<Vec<_>>()
    };
    let lp = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(default.list(&lp("app=web")).await.unwrap()), ["web"]);
    assert_eq!(
        names(default.list(&lp("app!=web")).await.unwrap()),
        ["db", "plain"]
    );
    assert_eq!(
        names(default.list(&lp("tier in (front,back)")).await.unwrap()),
        ["db", "web"]
    );
    assert_eq!(
        names(default.list(&lp("tier notin (front)")).await.unwrap()),
        ["db", "plain"]
    );
    assert_eq!(
        names(default.list(&lp("app")).await.unwrap()),
        ["db", "web"]
    );
    assert_eq!(names(default.list(&lp("!app")).await.unwrap()), ["plain"]);
    let by_name = ListParams::default().fields("metadata.name=db");
    assert_eq!(names(default.list(&by_name).await.unwrap()), ["db"]);

    let all: Api<ConfigMap> = Api::all(client);
    let everywhere = all.list(&lp("app=web")).await.unwrap();
    let namespaces: Vec<_> = everywhere
        .items
        .iter()
        .map(|c| c.namespace().unwrap())
        .collect();
    assert_eq!(namespaces, ["default", "other"]);
    assert!(everywhere.metadata.resource_version.is_some());
}

#[tokio::test]
async fn lease_replace_races_lose_with_a_conflict() {
    let standin = ApiServerStandin::new();
    let leases: Api<Lease> = Api::default_namespaced(standin.client());
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("weir-operator".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("a".into()),
            ..Default::default()
        }),
    };
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let take = |holder: &str| {
        let mut l = created.clone();
        l.spec.as_mut().unwrap().holder_identity = Some(holder.into());
        l
    };
    leases
        .replace("weir-operator", &PostParams::default(), &take("b"))
        .await
        .unwrap();
    let err = leases
        .replace("weir-operator", &PostParams::default(), &take("c"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), 409);
    let held = leases.get("weir-operator").await.unwrap();
    assert_eq!(held.spec.unwrap().holder_identity.as_deref(), Some("b"));
}

#[tokio::test]
async fn unknown_resources_are_404_with_a_status() {
    let standin = ApiServerStandin::new();
    let client = standin.client();
    let request = http::Request::get("/apis/example.com/v1/namespaces/default/widgets")
        .body(Vec::new())
        .unwrap();
    let err = client
        .request::<serde_json::Value>(request)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error expected")
    };
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
}
