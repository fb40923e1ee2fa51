//! Object metadata as the API server maintains it: uid, creationTimestamp, resourceVersion,
//! generation, deletionTimestamp, and the normalisation a Go round-trip would do (empty
//! `finalizers`/`labels`/... and `null` fields disappear). kube-runtime's finalizer helper relies on
//! the latter: it tests `/metadata/finalizers` against `null` once the list is empty.

use rand::Rng;
use serde_json::{Map, Value};

/// A string field of `metadata`.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// Sets a metadata field, creating `metadata` if missing.
pub fn set_meta(object: &mut Value, field: &str, value: impl Into<Value>) {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    if let Value::Object(map) = object {
        let meta = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Value::Object(meta) = meta {
            meta.insert(field.to_owned(), value.into());
        }
    }
}

/// Removes a metadata field.
pub fn remove_meta(object: &mut Value, field: &str) {
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.remove(field);
    }
}

/// The finalizers of an object.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The owner uids of an object.
pub fn owner_uids(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid")?.as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The current time as the API server writes it (RFC 3339, seconds, `Z`).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A random UUID (version 4 layout).
pub fn new_uid(rng: &mut impl Rng) -> String {
    let n: u128 = rng.random();
    let h = format!("{n:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The 5-character suffix `generateName` appends (the API server's alphabet: no vowels, no
/// look-alike digits).
pub fn name_suffix(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Removes `null` fields everywhere, empty metadata collections, and `managedFields` (the
/// stand-in tracks server-side-apply ownership beside the object instead).
pub fn normalize(object: &mut Value) {
    strip_nulls(object);
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.remove("managedFields");
        for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
            let empty = match meta.get(field) {
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                _ => false,
            };
            if empty {
                meta.remove(field);
            }
        }
    }
}

/// Removes `null` object fields recursively (as decoding into Go structs or pruning CRs does).
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Whether anything that counts for `metadata.generation` differs: everything but `metadata`,
/// and but `status` when the kind has a status subresource.
pub fn spec_changed(old: &Value, new: &Value, has_status: bool) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            m.remove("metadata");
            if has_status {
                m.remove("status");
            }
        }
        v
    };
    strip(old) != strip(new)
}

/// Equal apart from `resourceVersion`: a write that changes nothing else is a no-op and, as on the
/// real API server, does not bump the resourceVersion.
pub fn same_content(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(Value::Object(m)) = v.get_mut("metadata") {
            m.remove("resourceVersion");
        }
        v
    };
    strip(old) == strip(new)
}

/// Copies the metadata fields clients cannot change on update from the stored object.
pub fn keep_server_fields(old: &Value, new: &mut Value) {
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "name",
        "namespace",
    ] {
        match old.pointer(&format!("/metadata/{field}")) {
            Some(v) => {
                let v = v.clone();
                set_meta(new, field, v);
            }
            None => {
                remove_meta(new, field);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use serde_json::json;

    use super::*;

    #[test]
    fn normalisation_drops_empty_metadata_lists_and_nulls() {
        let mut o = json!({"metadata": {"name": "a", "finalizers": [], "labels": {}, "annotations": null}, "spec": {"x": null, "y": 1}});
        normalize(&mut o);
        assert_eq!(o, json!({"metadata": {"name": "a"}, "spec": {"y": 1}}));
    }

    #[test]
    fn generation_ignores_metadata_and_status_when_status_is_a_subresource() {
        let a = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"r": 1}, "status": {"s": 1}});
        let b = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"r": 1}, "status": {"s": 2}});
        assert!(!spec_changed(&a, &b, true));
        assert!(spec_changed(&a, &b, false));
    }

    #[test]
    fn uids_and_suffixes_have_the_api_server_shape() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let uid = new_uid(&mut rng);
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.matches('-').count(), 4);
        assert_eq!(name_suffix(&mut rng).len(), 5);
    }
}
