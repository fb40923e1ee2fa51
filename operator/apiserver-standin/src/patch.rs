//! The non-apply patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902, through the
//! `json-patch` crate kube already uses), and strategic merge patch, which the stand-in treats as
//! a JSON merge patch (lists are replaced, not merged by key; `$patch` directives are not read).

use json_patch::PatchOperation;
use serde_json::Value;

use crate::error::Error;

/// A patch content type the API server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json` (applied as a merge patch here)
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value.
    pub fn from_content_type(content_type: &str) -> Result<Self, Error> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            other => Err(Error::UnsupportedMediaType(other.to_owned())),
        }
    }
}

/// Applies a merge, strategic or JSON patch body to a copy of `target`.
pub fn apply_patch(target: &Value, patch_type: PatchType, body: &[u8]) -> Result<Value, Error> {
    let mut doc = target.clone();
    match patch_type {
        PatchType::Merge | PatchType::Strategic => {
            let patch: Value = serde_json::from_slice(body).map_err(Error::Decode)?;
            if !patch.is_object() {
                return Err(Error::BadRequest(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            json_patch::merge(&mut doc, &patch);
        }
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body).map_err(Error::Decode)?;
            apply_json_patch(&mut doc, &patch)?;
        }
        PatchType::Apply => {
            return Err(Error::BadRequest(
                "server-side apply is not a plain patch".into(),
            ));
        }
    }
    Ok(doc)
}

/// Applies JSON patch operations one at a time. A `test` against `null` also passes when the
/// path is absent: Go's json-patch (the one the API server runs) behaves so, and kube-runtime's
/// finalizer helper relies on it (`test /metadata/finalizers == null` on an object without any).
fn apply_json_patch(doc: &mut Value, patch: &json_patch::Patch) -> Result<(), Error> {
    for (index, op) in patch.0.iter().enumerate() {
        if let PatchOperation::Test(test) = op
            && test.value.is_null()
        {
            if doc.pointer(test.path.as_str()).is_none_or(Value::is_null) {
                continue;
            }
            return Err(test_failed(index, test.path.as_str()));
        }
        json_patch::patch(doc, std::slice::from_ref(op)).map_err(|e| match op {
            // The API server answers a failed test with 422 Invalid; kube-runtime's finalizer
            // helper treats any error as "retry", so the exact code matters less than the body.
            PatchOperation::Test(t) => test_failed(index, t.path.as_str()),
            _ => Error::Invalid(format!(
                "the server rejected our request due to an error in our request: {e}"
            )),
        })?;
    }
    Ok(())
}

fn test_failed(index: usize, path: &str) -> Error {
    Error::Invalid(format!(
        "the server rejected our request due to an error in our request: testing value {path} failed (operation {index})"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_sets_and_removes_fields() {
        let doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        let out = apply_patch(
            &doc,
            PatchType::Merge,
            br#"{"a": null, "b": {"c": 5}, "l": [3]}"#,
        )
        .unwrap();
        assert_eq!(out, json!({"b": {"c": 5, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_test_against_null_passes_on_absent_paths() {
        let doc = json!({"metadata": {"name": "a"}});
        let body = br#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["f"]}]"#;
        let out = apply_patch(&doc, PatchType::Json, body).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["f"]));
        assert!(apply_patch(&out, PatchType::Json, body).is_err());
    }

    #[test]
    fn json_patch_test_failure_leaves_an_error() {
        let doc = json!({"metadata": {"finalizers": ["x"]}});
        let body = br#"[{"op":"test","path":"/metadata/finalizers/0","value":"y"},{"op":"remove","path":"/metadata/finalizers/0"}]"#;
        assert_eq!(
            apply_patch(&doc, PatchType::Json, body).unwrap_err().code(),
            422
        );
    }

    #[test]
    fn content_types_map_to_patch_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json").unwrap(),
            PatchType::Merge
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml; charset=utf-8").unwrap(),
            PatchType::Apply
        );
        assert_eq!(
            PatchType::from_content_type("text/plain")
                .unwrap_err()
                .code(),
            415
        );
    }
}
