//! Server-side apply, simplified. Per object the stand-in remembers, for each (field manager,
//! main resource or `/status`), the set of leaf field paths that manager last applied. An apply:
//!
//! 1. creates the object from the applied configuration if it does not exist;
//! 2. otherwise reports a 409 conflict for each applied field another *applying* manager owns
//!    with a different live value (unless `force=true`, which moves ownership to the caller);
//! 3. removes fields this manager applied last time, omits now, and no other applier owns;
//! 4. merges the applied configuration into the live object: maps merge key by key, lists and
//!    scalars are replaced whole (every list is treated as `atomic`; the real API server merges
//!    `listType=map` lists such as `containers` by key).
//!
//! Simplified compared with the API server: fields written by plain updates and patches have no
//! owner (so they never conflict with an apply and an apply never removes them); `managedFields`
//! is not written into objects; nulls in the applied configuration mean "not set".

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::{error::Error, meta};

/// A path of object keys from the root (`["spec", "replicas"]`).
pub(crate) type FieldPath = Vec<String>;
/// The fields one manager owns.
pub(crate) type FieldSet = BTreeSet<FieldPath>;
/// Field owners of one object: (manager, applies to `/status`) → fields.
pub(crate) type Managers = BTreeMap<(String, bool), FieldSet>;

/// Decodes an apply body: JSON (what kube sends) or YAML.
pub(crate) fn parse_applied(body: &[u8]) -> Result<Value, Error> {
    let mut value = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        Err(json_err) => serde_saphyr::from_slice::<Value>(body).map_err(|yaml_err| {
            Error::BadRequest(format!(
                "apply body is neither JSON ({json_err}) nor YAML ({yaml_err})"
            ))
        })?,
    };
    if !value.is_object() {
        return Err(Error::BadRequest(
            "an applied configuration must be an object".into(),
        ));
    }
    meta::strip_nulls(&mut value);
    Ok(value)
}

/// The part of an applied configuration that a main-resource or `/status` apply may set.
pub(crate) fn scoped(applied: &Value, status_scope: bool, has_status: bool) -> Value {
    let mut out = applied.clone();
    if let Value::Object(map) = &mut out {
        if status_scope {
            map.retain(|k, _| matches!(k.as_str(), "status" | "metadata" | "apiVersion" | "kind"));
        } else if has_status {
            map.remove("status");
        }
    }
    out
}

/// Leaf paths of an applied configuration that count as owned fields in this scope.
pub(crate) fn owned_fields(applied: &Value, status_scope: bool) -> FieldSet {
    let mut out = FieldSet::new();
    collect_leaves(applied, &mut Vec::new(), &mut out);
    out.retain(|path| {
        let top = path.first().map(String::as_str);
        let in_scope = (top == Some("status")) == status_scope;
        let ownable = match top {
            Some("apiVersion" | "kind") | None => false,
            Some("metadata") => {
                matches!(
                    path.get(1).map(String::as_str),
                    Some("labels" | "annotations" | "ownerReferences" | "finalizers")
                )
            }
            Some(_) => true,
        };
        in_scope && ownable
    });
    out
}

fn collect_leaves(value: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                prefix.push(k.clone());
                collect_leaves(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

fn get<'a>(value: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.get(k))
}

/// Applies `applied` (already scoped) over an existing object; returns the new object and owners.
pub(crate) fn apply_to_live(
    live: &Value,
    managers: &Managers,
    applied: &Value,
    manager: &str,
    status_scope: bool,
    force: bool,
) -> Result<(Value, Managers), Error> {
    let fields = owned_fields(applied, status_scope);
    let mut managers = managers.clone();

    let mut conflicts = Vec::new();
    for ((other, other_scope), owned) in managers.iter_mut() {
        if other == manager || *other_scope != status_scope {
            continue;
        }
        let contested: Vec<FieldPath> = owned
            .iter()
            .filter(|p| fields.contains(*p) && get(live, p) != get(applied, p))
            .cloned()
            .collect();
        for path in contested {
            if force {
                owned.remove(&path);
            } else {
                conflicts.push(format!("conflict with \"{other}\": .{}", path.join(".")));
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflict(format!(
            "Apply failed with {} conflict{}: {}",
            conflicts.len(),
            if conflicts.len() == 1 { "" } else { "s" },
            conflicts.join(", ")
        )));
    }

    let key = (manager.to_owned(), status_scope);
    let previous = managers.get(&key).cloned().unwrap_or_default();
    let mut merged = live.clone();
    for path in previous.difference(&fields) {
        let owned_elsewhere = managers
            .iter()
            .any(|(k, set)| *k != key && set.contains(path));
        if !owned_elsewhere {
            remove_path(&mut merged, path);
        }
    }
    deep_merge(&mut merged, applied);
    managers.insert(key, fields);
    managers.retain(|_, set| !set.is_empty());
    Ok((merged, managers))
}

/// Removes a field, and the maps it leaves empty below the top level.
fn remove_path(value: &mut Value, path: &[String]) {
    remove_below(value, path, true);
}

fn remove_below(value: &mut Value, path: &[String], root: bool) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Value::Object(map) = value else { return };
    if rest.is_empty() {
        map.remove(first);
        return;
    }
    if let Some(child) = map.get_mut(first) {
        remove_below(child, rest, false);
        if !root && child.as_object().is_some_and(Map::is_empty) {
            map.remove(first);
        }
    }
}

/// Merges maps key by key; anything else in `patch` replaces what is in `target`.
pub(crate) fn deep_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        deep_merge(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reapplying_without_a_field_removes_it_but_keeps_other_writers_fields() {
        let first = json!({"spec": {"a": 1, "b": 2}});
        let (live, managers) = apply_to_live(
            &json!({"spec": {"c": 3}}),
            &Managers::new(),
            &first,
            "m",
            false,
            false,
        )
        .unwrap();
        assert_eq!(live, json!({"spec": {"a": 1, "b": 2, "c": 3}}));
        let second = json!({"spec": {"a": 1}});
        let (live, _) = apply_to_live(&live, &managers, &second, "m", false, false).unwrap();
        assert_eq!(live, json!({"spec": {"a": 1, "c": 3}}));
    }

    #[test]
    fn another_appliers_field_conflicts_unless_forced() {
        let (live, managers) = apply_to_live(
            &json!({}),
            &Managers::new(),
            &json!({"spec": {"r": 1}}),
            "one",
            false,
            false,
        )
        .unwrap();
        let err = apply_to_live(
            &live,
            &managers,
            &json!({"spec": {"r": 2}}),
            "two",
            false,
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"one\": .spec.r"
        );
        let (live, managers) = apply_to_live(
            &live,
            &managers,
            &json!({"spec": {"r": 2}}),
            "two",
            false,
            true,
        )
        .unwrap();
        assert_eq!(live["spec"]["r"], 2);
        assert!(!managers.contains_key(&("one".to_owned(), false)));
        // Same value: shared ownership, no conflict.
        assert!(
            apply_to_live(
                &live,
                &managers,
                &json!({"spec": {"r": 2}}),
                "three",
                false,
                false
            )
            .is_ok()
        );
    }

    #[test]
    fn identity_metadata_is_not_owned() {
        let applied = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "n", "labels": {"a": "b"}}, "status": {"s": 1}});
        let fields = owned_fields(&applied, false);
        let expected: FieldSet = [vec![
            "metadata".to_owned(),
            "labels".to_owned(),
            "a".to_owned(),
        ]]
        .into_iter()
        .collect();
        assert_eq!(fields, expected);
    }

    #[test]
    fn yaml_apply_bodies_decode() {
        let v = parse_applied(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n",
        )
        .unwrap();
        assert_eq!(v["data"]["k"], "v");
    }
}
