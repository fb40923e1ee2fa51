//! DELETE and the garbage collector. An object with finalizers gets a `deletionTimestamp` (and a
//! generation bump) and stays until updates empty its finalizers; one without is removed. Removal
//! cascades to dependents whose ownerReferences now all point at missing objects (Background
//! propagation, the default). Foreground parks the owner behind a `foregroundDeletion` finalizer
//! until its dependents are gone; Orphan strips the dependents' ownerReferences instead.
//!
//! Unlike the real garbage collector, which runs asynchronously, the stand-in collects within the
//! request that removed the owner, so tests observe the outcome as soon as the request returns.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::Error,
    meta::{self, meta_str, set_meta},
    registry::KindInfo,
    route::Query,
    selector::{FieldSelector, LabelSelector},
    store::{ObjectKey, State},
    write::{self, Scope},
};

const FOREGROUND: &str = "foregroundDeletion";

/// How dependents are treated when their owner goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) enum Propagation {
    /// Delete the owner now, its dependents after.
    #[default]
    Background,
    /// Delete the dependents first, then the owner.
    Foreground,
    /// Keep the dependents, without the ownerReference.
    Orphan,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// The `DeleteOptions` body (and query) fields the stand-in reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteOptions {
    propagation_policy: Option<Propagation>,
    preconditions: Option<Preconditions>,
}

impl DeleteOptions {
    /// Reads the body (kube sends `DeleteParams` there) and the `propagationPolicy` query.
    pub fn parse(body: &[u8], query: &Query) -> Result<Self, Error> {
        let mut options: DeleteOptions = if body.is_empty() {
            DeleteOptions::default()
        } else {
            serde_json::from_slice(body).map_err(Error::Decode)?
        };
        if let Some(policy) = query.get("propagationPolicy") {
            options.propagation_policy =
                Some(serde_json::from_value(json!(policy)).map_err(|_| {
                    Error::BadRequest(format!("unknown propagationPolicy {policy:?}"))
                })?);
        }
        Ok(options)
    }
}

/// DELETE of one object: 200 with the object while finalizers hold it, or a `Success` Status
/// once it is gone.
pub(crate) fn delete(
    state: &mut State,
    info: &KindInfo,
    key: &ObjectKey,
    options: &DeleteOptions,
) -> Result<Value, Error> {
    let stored = state
        .objects
        .get(key)
        .ok_or_else(|| Error::not_found(&info.key.qualified(), &key.name))?;
    let object = stored.object.clone();
    if let Some(pre) = &options.preconditions {
        for (label, wanted, actual) in [
            ("UID", &pre.uid, meta_str(&object, "uid")),
            (
                "ResourceVersion",
                &pre.resource_version,
                meta_str(&object, "resourceVersion"),
            ),
        ] {
            if let Some(wanted) = wanted
                && Some(wanted.as_str()) != actual
            {
                return Err(Error::Conflict(format!(
                    "Operation cannot be fulfilled on {} \"{}\": Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {}",
                    info.key.qualified(),
                    key.name,
                    actual.unwrap_or_default()
                )));
            }
        }
    }
    let propagation = options.propagation_policy.unwrap_or_default();
    delete_with(state, key, propagation);
    sweep_foreground(state);
    Ok(match state.objects.get(key) {
        Some(stored) => stored.object.clone(),
        None => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": key.name, "group": info.key.group, "kind": info.key.plural, "uid": meta_str(&object, "uid")},
        }),
    })
}

/// DELETE of a collection: deletes every matching object, answers with the list of them.
pub(crate) fn delete_collection(
    state: &mut State,
    info: &KindInfo,
    namespace: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
    options: &DeleteOptions,
) -> Result<Value, Error> {
    let keys: Vec<ObjectKey> = state
        .list(&info.key, namespace)
        .filter(|(_, o)| labels.matches(o) && fields.matches(o))
        .map(|(k, _)| k.clone())
        .collect();
    let mut items = Vec::new();
    for key in keys {
        let mut outcome = delete(state, info, &key, options)?;
        if outcome.get("kind").and_then(Value::as_str) == Some("Status") {
            outcome = json!({"metadata": {"name": key.name, "namespace": key.namespace}});
        }
        items.push(outcome);
    }
    Ok(json!({
        "apiVersion": info.key.api_version(),
        "kind": format!("{}List", info.kind),
        "metadata": {"resourceVersion": state.current_rv().to_string()},
        "items": items,
    }))
}

fn delete_with(state: &mut State, key: &ObjectKey, propagation: Propagation) {
    let Some(stored) = state.objects.get(key) else {
        return;
    };
    let object = stored.object.clone();
    let uid = meta_str(&object, "uid").unwrap_or_default().to_owned();
    match propagation {
        Propagation::Orphan => {
            for dependent in state.dependents_of(&uid) {
                strip_owner(state, &dependent, &uid);
            }
            mark_or_remove(state, key, &object, None);
        }
        Propagation::Foreground if !state.dependents_of(&uid).is_empty() => {
            mark_or_remove(state, key, &object, Some(FOREGROUND));
            for dependent in state.dependents_of(&uid) {
                delete_with(state, &dependent, Propagation::Foreground);
            }
        }
        Propagation::Foreground | Propagation::Background => {
            mark_or_remove(state, key, &object, None)
        }
    }
}

/// Sets `deletionTimestamp` when finalizers (or `add_finalizer`) hold the object, else removes it.
fn mark_or_remove(state: &mut State, key: &ObjectKey, object: &Value, add_finalizer: Option<&str>) {
    let mut finalizers = meta::finalizers(object);
    if let Some(f) = add_finalizer
        && !finalizers.iter().any(|x| x == f)
    {
        finalizers.push(f.to_owned());
    }
    if finalizers.is_empty() {
        remove_and_collect(state, key, None);
        return;
    }
    let mut marked = object.clone();
    if meta_str(object, "deletionTimestamp").is_none() {
        set_meta(&mut marked, "deletionTimestamp", meta::now());
        set_meta(&mut marked, "deletionGracePeriodSeconds", 0);
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        set_meta(&mut marked, "generation", generation + 1);
    }
    set_meta(&mut marked, "finalizers", finalizers);
    if marked != *object {
        let managers = state
            .objects
            .get(key)
            .map(|s| s.managers.clone())
            .unwrap_or_default();
        state.put(key.clone(), marked, managers);
    }
}

/// Removes an object, then (Background) deletes dependents left without any existing owner.
pub(crate) fn remove_and_collect(
    state: &mut State,
    key: &ObjectKey,
    last: Option<Value>,
) -> Option<Value> {
    let removed = state.remove(key, last)?;
    if let Some(uid) = meta_str(&removed, "uid") {
        for dependent in state.dependents_of(uid) {
            let orphaned = state.objects.get(&dependent).is_some_and(|s| {
                meta::owner_uids(&s.object)
                    .iter()
                    .all(|owner| !state.uid_exists(owner))
            });
            if orphaned {
                delete_with(state, &dependent, Propagation::Background);
            }
        }
    }
    Some(removed)
}

fn strip_owner(state: &mut State, key: &ObjectKey, owner_uid: &str) {
    let Some(stored) = state.objects.get(key) else {
        return;
    };
    let mut object = stored.object.clone();
    let managers = stored.managers.clone();
    if let Some(Value::Array(refs)) = object.pointer_mut("/metadata/ownerReferences") {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
    }
    meta::normalize(&mut object);
    state.put(key.clone(), object, managers);
}

/// Lets go of owners parked by Foreground deletion once their dependents are gone.
pub(crate) fn sweep_foreground(state: &mut State) {
    loop {
        let ready: Vec<(ObjectKey, Value)> = state
            .objects
            .iter()
            .filter(|(_, s)| meta::finalizers(&s.object).iter().any(|f| f == FOREGROUND))
            .filter(|(_, s)| {
                state
                    .dependents_of(meta_str(&s.object, "uid").unwrap_or_default())
                    .is_empty()
            })
            .map(|(k, s)| (k.clone(), s.object.clone()))
            .collect();
        let mut progressed = false;
        for (key, object) in ready {
            let Some(info) = state.registry.get(&key.resource).cloned() else {
                continue;
            };
            let mut released = object.clone();
            let rest: Vec<String> = meta::finalizers(&object)
                .into_iter()
                .filter(|f| f != FOREGROUND)
                .collect();
            set_meta(&mut released, "finalizers", rest);
            let managers = state
                .objects
                .get(&key)
                .map(|s| s.managers.clone())
                .unwrap_or_default();
            progressed |=
                write::commit_update(state, &info, &key, &object, released, Scope::Main, managers)
                    .is_ok();
        }
        if !progressed {
            return;
        }
    }
}
