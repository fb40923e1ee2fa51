//! The `/scale` subresource: an `autoscaling/v1` `Scale` view of an object whose `spec.replicas`
//! reads and writes the kind's spec replicas path (for FlinkJob, the job's parallelism), and
//! whose `status.replicas` and `status.selector` read the status paths.

use serde_json::{Value, json};

use crate::{
    error::Error,
    meta::{meta_str, set_meta},
    patch::{self, PatchType},
    registry::{KindInfo, ScalePaths},
    store::{ObjectKey, State},
    write::{self, Scope},
};

fn paths(info: &KindInfo) -> Result<&ScalePaths, Error> {
    info.scale.as_ref().ok_or_else(|| {
        Error::NotFound(format!("{} has no scale subresource", info.key.qualified()))
    })
}

/// The `Scale` view of an object.
fn view(info: &KindInfo, object: &Value) -> Result<Value, Error> {
    let paths = paths(info)?;
    let spec = object
        .pointer(&paths.spec_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status = object
        .pointer(&paths.status_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut out = json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {},
        "spec": {"replicas": spec},
        "status": {"replicas": status},
    });
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta_str(object, field) {
            set_meta(&mut out, field, v);
        }
    }
    if let Some(selector) = paths
        .label_selector
        .as_deref()
        .and_then(|p| object.pointer(p))
        .and_then(Value::as_str)
        && let Value::Object(status) = &mut out["status"]
    {
        status.insert("selector".into(), selector.into());
    }
    Ok(out)
}

fn stored(state: &State, info: &KindInfo, key: &ObjectKey) -> Result<Value, Error> {
    state
        .objects
        .get(key)
        .map(|s| s.object.clone())
        .ok_or_else(|| Error::not_found(&info.key.qualified(), &key.name))
}

/// GET `/scale`.
pub(crate) fn get(state: &State, info: &KindInfo, key: &ObjectKey) -> Result<Value, Error> {
    view(info, &stored(state, info, key)?)
}

/// PUT (`patch_type` `None`) or PATCH `/scale`.
pub(crate) fn write(
    state: &mut State,
    info: &KindInfo,
    key: &ObjectKey,
    patch_type: Option<PatchType>,
    body: &[u8],
) -> Result<Value, Error> {
    let object = stored(state, info, key)?;
    let current = view(info, &object)?;
    let desired = match patch_type {
        None => serde_json::from_slice::<Value>(body).map_err(Error::Decode)?,
        Some(PatchType::Apply) => {
            return Err(Error::UnsupportedMediaType(
                "server-side apply on /scale".into(),
            ));
        }
        Some(t) => patch::apply_patch(&current, t, body)?,
    };
    if let Some(rv) = meta_str(&desired, "resourceVersion")
        && Some(rv) != meta_str(&object, "resourceVersion")
    {
        return Err(Error::stale(&info.key.qualified(), &key.name));
    }
    let replicas = desired
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::Invalid("Scale.spec.replicas: Required value".into()))?;
    if replicas < 0 {
        return Err(Error::Invalid(format!(
            "Scale.spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
        )));
    }
    let mut updated = object.clone();
    set_pointer(&mut updated, &paths(info)?.spec_replicas, json!(replicas));
    let managers = state
        .objects
        .get(key)
        .map(|s| s.managers.clone())
        .unwrap_or_default();
    let written = write::commit_update(state, info, key, &object, updated, Scope::Main, managers)?;
    view(info, &written)
}

/// Sets the value at a JSON pointer, creating the maps on the way.
fn set_pointer(target: &mut Value, pointer: &str, value: Value) {
    let mut node = target;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    for part in parents {
        if !node.get(*part).is_some_and(Value::is_object) {
            if let Value::Object(map) = node {
                map.insert((*part).to_owned(), json!({}));
            } else {
                return;
            }
        }
        match node.get_mut(*part) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Value::Object(map) = node {
        map.insert((*last).to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_pointer_creates_missing_maps() {
        let mut v = json!({"spec": {}});
        set_pointer(&mut v, "/spec/job/parallelism", json!(4));
        assert_eq!(v, json!({"spec": {"job": {"parallelism": 4}}}));
    }
}
