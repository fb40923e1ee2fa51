//! A kube-runtime Controller with a finalizer, reconciling ConfigMaps into owned Secrets, runs
//! against the stand-in end to end: create, update, retry through faults, delete with cleanup
//! and garbage collection.

mod common;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::config_map;
use futures::StreamExt;
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    runtime::{
        Controller,
        controller::Action,
        finalizer::{self, Event},
        watcher,
    },
};
use serde_json::json;
use weir_apiserver_standin::{ApiServerStandin, Fault, Verb};

struct Context {
    client: Client,
    cleanups: AtomicUsize,
}

const FINALIZER: &str = "weir.dev/test-cleanup";

async fn reconcile(
    cm: Arc<ConfigMap>,
    ctx: Arc<Context>,
) -> Result<Action, finalizer::Error<kube::Error>> {
    let namespace = cm.namespace().unwrap_or_default();
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer::finalizer(&cms, FINALIZER, cm, |event| async {
        match event {
            Event::Apply(cm) => {
                let secret = Secret {
                    metadata: kube::api::ObjectMeta {
                        name: Some(format!("{}-secret", cm.name_any())),
                        namespace: cm.namespace(),
                        owner_references: cm.controller_owner_ref(&()).map(|r| vec![r]),
                        ..Default::default()
                    },
                    data: cm.data.as_ref().map(|d| {
                        d.iter()
                            .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
                            .collect::<BTreeMap<_, _>>()
                    }),
                    ..Default::default()
                };
                let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
                let name = secret.name_any();
                secrets
                    .patch(
                        &name,
                        &PatchParams::apply("test-controller").force(),
                        &Patch::Apply(&secret),
                    )
                    .await?;
                Ok(Action::await_change())
            }
            Event::Cleanup(_) => {
                ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn error_policy(_: Arc<ConfigMap>, _: &finalizer::Error<kube::Error>, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_millis(50))
}

fn secret_value(secrets: &[Secret]) -> Option<String> {
    let data = secrets.first()?.data.as_ref()?;
    Some(String::from_utf8_lossy(&data.get("key")?.0).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_reconciles_config_maps_into_owned_secrets() {
    let standin = ApiServerStandin::new();
    let client = standin.client();
    let ctx = Arc::new(Context {
        client: client.clone(),
        cleanups: AtomicUsize::new(0),
    });
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let controller = Controller::new(cms.clone(), watcher::Config::default())
        .owns(secrets, watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let running = tokio::spawn(controller);
    let wait = Duration::from_secs(10);

    cms.create(&PostParams::default(), &config_map("job", "1"))
        .await
        .unwrap();
    let secrets = standin
        .wait_for::<Secret>(wait, |s| secret_value(s).as_deref() == Some("1"))
        .await
        .unwrap();
    assert_eq!(secrets[0].owner_references()[0].name, "job");
    let cm = cms.get("job").await.unwrap();
    assert_eq!(cm.finalizers(), [FINALIZER]);

    // Two failed applies are retried by the error policy.
    let fault = standin.inject(
        Fault::internal_error()
            .verb(Verb::Patch)
            .resource("secrets")
            .times(2),
    );
    cms.patch(
        "job",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"key": "2"}})),
    )
    .await
    .unwrap();
    standin
        .wait_for::<Secret>(wait, |s| secret_value(s).as_deref() == Some("2"))
        .await
        .unwrap();
    assert_eq!(standin.fault_hits(fault), 2);

    cms.delete("job", &DeleteParams::default()).await.unwrap();
    standin
        .wait_for::<ConfigMap>(wait, |c| c.is_empty())
        .await
        .unwrap();
    standin
        .wait_for::<Secret>(wait, |s| s.is_empty())
        .await
        .unwrap();
    assert_eq!(ctx.cleanups.load(Ordering::SeqCst), 1);
    running.abort();
}
