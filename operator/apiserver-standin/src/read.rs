//! GET and LIST. Lists filter by namespace (or span all namespaces), label and field selectors,
//! and carry the current resourceVersion, which a watch can resume from. Lists always answer from
//! the latest state in one page: `resourceVersion`/`resourceVersionMatch` asking for an older
//! snapshot and `limit`/`continue` paging are accepted and ignored (everything fits in one page).

use serde_json::{Value, json};

use crate::{
    error::Error,
    registry::KindInfo,
    selector::{FieldSelector, LabelSelector},
    store::{ObjectKey, State},
};

/// GET of one object.
pub(crate) fn get(state: &State, info: &KindInfo, key: &ObjectKey) -> Result<Value, Error> {
    state
        .objects
        .get(key)
        .map(|s| s.object.clone())
        .ok_or_else(|| Error::not_found(&info.key.qualified(), &key.name))
}

/// LIST of a collection.
pub(crate) fn list(
    state: &State,
    info: &KindInfo,
    namespace: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> Value {
    let items: Vec<Value> = state
        .list(&info.key, namespace)
        .filter(|(_, o)| labels.matches(o) && fields.matches(o))
        .map(|(_, o)| o.clone())
        .collect();
    json!({
        "apiVersion": info.key.api_version(),
        "kind": format!("{}List", info.kind),
        "metadata": {"resourceVersion": state.current_rv().to_string()},
        "items": items,
    })
}

/// The `Accept` header asked for `meta.k8s.io/v1` `PartialObjectMetadata` (kube's metadata
/// watchers and `get_metadata`): answers carry only `metadata`.
pub(crate) fn wants_metadata_only(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("as=PartialObjectMetadata"))
}

/// An object (or a list, or a `Status`) as `PartialObjectMetadata(List)`.
pub(crate) fn to_metadata_only(value: &Value) -> Value {
    let partial = |o: &Value| {
        json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })
    };
    match (
        value.get("kind").and_then(Value::as_str),
        value.get("items").and_then(Value::as_array),
    ) {
        (Some("Status"), _) => value.clone(),
        (_, Some(items)) => json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadataList",
            "metadata": value.get("metadata").cloned().unwrap_or_else(|| json!({})),
            "items": items.iter().map(partial).collect::<Vec<_>>(),
        }),
        _ => partial(value),
    }
}
