//! Watches through kube-runtime's watcher and kube's raw `Api::watch`: events, resumption after
//! the stand-in ends a watch, relisting after 410 Gone, selectors, streaming lists.

mod common;

use std::time::Duration;

use common::{config_map, labelled};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
    core::PartialObjectMeta,
    runtime::watcher::{self, Config, Event},
};
use serde_json::json;
use weir_apiserver_standin::{ApiServerStandin, Verb};

async fn next<T>(stream: &mut (impl Stream<Item = T> + Unpin)) -> T {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10s")
        .expect("the stream goes on")
}

/// The next event, skipping the initial-list bookkeeping, as "Apply name" / "Delete name" / ...
async fn next_change<K: kube::Resource>(
    stream: &mut (impl Stream<Item = watcher::Result<Event<K>>> + Unpin),
) -> String {
    loop {
        match next(stream).await {
            Ok(Event::Apply(o)) => return format!("Apply {}", o.name_any()),
            Ok(Event::Delete(o)) => return format!("Delete {}", o.name_any()),
            Ok(Event::InitApply(o)) => return format!("InitApply {}", o.name_any()),
            Ok(Event::Init | Event::InitDone) => {}
            Err(e) => return format!("Err {e}"),
        }
    }
}

fn count(standin: &ApiServerStandin, verb: Verb) -> usize {
    standin
        .requests()
        .iter()
        .filter(|r| r.verb == Some(verb))
        .count()
}

#[tokio::test]
async fn the_watcher_sees_create_modify_and_delete() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let mut events = watcher::watcher(cms.clone(), Config::default()).boxed();
    assert!(matches!(next(&mut events).await, Ok(Event::Init)));
    assert!(matches!(next(&mut events).await, Ok(Event::InitDone)));

    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    assert_eq!(next_change(&mut events).await, "Apply a");
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"key": "2"}})),
    )
    .await
    .unwrap();
    match next(&mut events).await {
        Ok(Event::Apply(cm)) => assert_eq!(cm.data.unwrap()["key"], "2"),
        other => panic!("expected the modification, got {other:?}"),
    }
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(next_change(&mut events).await, "Delete a");
}

#[tokio::test]
async fn the_watcher_resumes_without_relisting_when_the_watch_times_out() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let mut events = watcher::watcher(cms.clone(), Config::default().timeout(1)).boxed();
    assert!(matches!(next(&mut events).await, Ok(Event::Init)));
    assert!(matches!(next(&mut events).await, Ok(Event::InitDone)));
    // Another kind's writes move the resourceVersion on while this watch is quiet.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::default_namespaced(standin.client());
    let mut s = k8s_openapi::api::core::v1::Secret::default();
    s.metadata.name = Some("s".into());
    secrets.create(&PostParams::default(), &s).await.unwrap();

    // Keep polling through the server-side timeout: the watch ends, the watcher reopens it.
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), events.next())
            .await
            .is_err(),
        "nothing to see"
    );
    cms.create(&PostParams::default(), &config_map("late", "1"))
        .await
        .unwrap();
    assert_eq!(next_change(&mut events).await, "Apply late");
    assert_eq!(count(&standin, Verb::List), 1, "no relist");
    assert!(count(&standin, Verb::Watch) >= 2, "the watch was reopened");
    let resumed = standin
        .requests()
        .into_iter()
        .filter(|r| r.verb == Some(Verb::Watch))
        .nth(1)
        .unwrap();
    assert!(
        resumed.query.contains("resourceVersion=2"),
        "resumed from the closing bookmark: {}",
        resumed.query
    );
}

#[tokio::test]
async fn the_watcher_replays_changes_missed_while_its_watch_was_closed() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let mut events = watcher::watcher(cms.clone(), Config::default()).boxed();
    assert_eq!(next_change(&mut events).await, "InitApply a");
    assert!(matches!(next(&mut events).await, Ok(Event::InitDone)));

    standin.close_watches();
    cms.create(&PostParams::default(), &config_map("b", "1"))
        .await
        .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(next_change(&mut events).await, "Apply b");
    assert_eq!(next_change(&mut events).await, "Delete a");
    assert_eq!(
        count(&standin, Verb::List),
        1,
        "resumed from history, no relist"
    );
}

#[tokio::test]
async fn the_watcher_relists_after_410_gone() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let mut events = watcher::watcher(cms.clone(), Config::default()).boxed();
    assert_eq!(next_change(&mut events).await, "InitApply a");
    assert!(matches!(next(&mut events).await, Ok(Event::InitDone)));

    standin.expire_watches();
    let err = next_change(&mut events).await;
    assert!(
        err.starts_with("Err") && err.contains("too old resource version"),
        "{err}"
    );
    assert_eq!(next_change(&mut events).await, "InitApply a", "relisted");
    cms.create(&PostParams::default(), &config_map("b", "1"))
        .await
        .unwrap();
    assert_eq!(next_change(&mut events).await, "Apply b");
    assert_eq!(count(&standin, Verb::List), 2);
}

#[tokio::test]
async fn a_label_selected_watch_sees_objects_enter_and_leave_the_selection() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    let start = standin.resource_version().to_string();
    let mut events = cms
        .watch(&WatchParams::default().labels("app=web").timeout(5), &start)
        .await
        .unwrap()
        .boxed();
    let pp = PatchParams::default();
    cms.create(&PostParams::default(), &config_map("other", "1"))
        .await
        .unwrap();
    cms.create(
        &PostParams::default(),
        &labelled(config_map("a", "1"), &[("app", "web")]),
    )
    .await
    .unwrap();
    cms.patch(
        "a",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "other",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(match next(&mut events).await.unwrap() {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["ADDED a", "DELETED a", "ADDED other"]);
}

#[tokio::test]
async fn streaming_lists_send_initial_events_and_their_end_bookmark() {
    let standin = ApiServerStandin::new();
    let cms: Api<ConfigMap> = Api::default_namespaced(standin.client());
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let mut events = watcher::watcher(cms.clone(), Config::default().streaming_lists()).boxed();
    assert!(matches!(next(&mut events).await, Ok(Event::Init)));
    assert_eq!(next_change(&mut events).await, "InitApply a");
    assert!(matches!(next(&mut events).await, Ok(Event::InitDone)));
    cms.create(&PostParams::default(), &config_map("b", "1"))
        .await
        .unwrap();
    assert_eq!(next_change(&mut events).await, "Apply b");
    assert_eq!(count(&standin, Verb::List), 0);
}

#[tokio::test]
async fn metadata_watches_carry_partial_objects() {
    let standin = ApiServerStandin::new();
    let client = standin.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let metas: Api<PartialObjectMeta<ConfigMap>> = Api::all(client);
    let mut events = watcher::watcher(metas, Config::default()).boxed();
    assert_eq!(next_change(&mut events).await, "InitApply a");
    assert!(matches!(next(&mut events).await, Ok(Event::InitDone)));
    cms.create(&PostParams::default(), &config_map("b", "1"))
        .await
        .unwrap();
    assert_eq!(next_change(&mut events).await, "Apply b");
}
