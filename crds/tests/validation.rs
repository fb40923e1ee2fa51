//! The CRD's validation, evaluated client-side as the API server would: CEL rules with kube-cel
//! (kube's `cel` feature), and the OpenAPI bounds, enums and patterns with a small checker below
//! (patterns evaluated by CEL's `matches`, i.e. RE2 like the API server). Each case states
//! whether the API server must accept the manifest; the Rust mirror `FlinkJobSpec::validate`
//! must agree, so the controller and the CRD never disagree about what is valid.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use kube::core::cel::Validator;
use serde_json::{Value, json};
use weir_crds::{DURATION_PATTERN, FlinkJob, STORAGE_URI_PATTERN, crd, parse_duration};

fn schema() -> Value {
    let crd = crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    serde_json::to_value(schema).unwrap()
}

fn minimal() -> Value {
    json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": "orders", "namespace": "default"},
        "spec": {
            "image": "ghcr.io/weir-dev/weir:0.1.0",
            "job": {"sql": "INSERT INTO sink SELECT * FROM source;"}
        }
    })
}

/// Whether `pattern` (RE2, as the API server evaluates it) matches `text`.
fn pattern_matches(pattern: &str, text: &str) -> bool {
    let rule = format!("self.matches('{}')", pattern.replace('\\', "\\\\"));
    let schema = json!({"type": "string", "x-kubernetes-validations": [{"rule": rule}]});
    Validator::new()
        .validate(&schema, &json!(text), None)
        .is_ok()
}

/// The OpenAPI checks the API server runs before CEL: type of scalars, required, enum, bounds,
/// lengths and patterns (defaults applied first, as the API server does).
fn openapi_errors(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(default) = schema.get("default").filter(|_| value.is_null()) {
        return openapi_errors(schema, default, path, out);
    }
    if value.is_null() {
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!("{path}: {value} not in {allowed:?}"));
    }
    if let Some(n) = value.as_f64() {
        if schema
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|min| n < min)
        {
            out.push(format!("{path}: {n} below minimum"));
        }
        if schema
            .get("maximum")
            .and_then(Value::as_f64)
            .is_some_and(|max| n > max)
        {
            out.push(format!("{path}: {n} above maximum"));
        }
    }
    if let Some(s) = value.as_str() {
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|min| (s.len() as u64) < min)
        {
            out.push(format!("{path}: shorter than minLength"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !pattern_matches(pattern, s)
        {
            out.push(format!("{path}: {s:?} does not match {pattern}"));
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) && schema["properties"][name].get("default").is_none() {
                out.push(format!("{path}.{name}: required"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, child) in properties {
                let field = object.get(name).cloned().unwrap_or(Value::Null);
                openapi_errors(child, &field, &format!("{path}.{name}"), out);
            }
        }
    }
}

/// Whether the API server would accept `object` (as an update of `old` when given).
fn server_accepts(object: &Value, old: Option<&Value>) -> Result<(), String> {
    let schema = schema();
    let mut errors = Vec::new();
    openapi_errors(&schema, object, "", &mut errors);
    if let Err(cel) = Validator::new().validate(&schema, object, old) {
        errors.extend(cel.iter().map(|e| e.to_string()));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn with(patch: Value) -> Value {
    let mut object = minimal();
    merge(&mut object["spec"], patch);
    object
}

fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(map) => {
            for (key, value) in map {
                if value.is_null() {
                    target.as_object_mut().unwrap().remove(&key);
                } else {
                    merge(&mut target[key.as_str()], value);
                }
            }
        }
        other => *target = other,
    }
}

/// (name, spec patch, accepted?)
fn cases() -> Vec<(&'static str, Value, bool)> {
    vec![
        ("minimal", json!({}), true),
        ("no sql at all", json!({"job": {"sql": null}}), false),
        (
            "sql and configmap",
            json!({"job": {"sqlConfigMap": {"name": "m", "key": "k"}}}),
            false,
        ),
        (
            "configmap only",
            json!({"job": {"sql": null, "sqlConfigMap": {"name": "m", "key": "k"}}}),
            true,
        ),
        (
            "configmap with empty key",
            json!({"job": {"sql": null, "sqlConfigMap": {"name": "m", "key": ""}}}),
            false,
        ),
        ("empty image", json!({"image": ""}), false),
        ("parallelism 0", json!({"job": {"parallelism": 0}}), false),
        (
            "parallelism at max",
            json!({"job": {"parallelism": 128}}),
            true,
        ),
        (
            "parallelism above max",
            json!({"job": {"parallelism": 129}}),
            false,
        ),
        (
            "parallelism above lowered max",
            json!({"job": {"parallelism": 8, "maxParallelism": 4}}),
            false,
        ),
        (
            "max parallelism too large",
            json!({"job": {"maxParallelism": 40000}}),
            false,
        ),
        (
            "unknown upgrade mode",
            json!({"job": {"upgradeMode": "hot-swap"}}),
            false,
        ),
        ("unknown state", json!({"job": {"state": "paused"}}), false),
        ("suspended", json!({"job": {"state": "suspended"}}), true),
        (
            "savepoint mode without dir",
            json!({"job": {"upgradeMode": "savepoint"}}),
            false,
        ),
        (
            "savepoint mode with only a checkpoint dir",
            json!({"job": {"upgradeMode": "savepoint"}, "checkpointing": {"dir": "s3://b/c"}}),
            false,
        ),
        (
            "savepoint mode with dir",
            json!({"job": {"upgradeMode": "savepoint"}, "savepoints": {"dir": "s3://b/s"}}),
            true,
        ),
        (
            "last-state without checkpoint dir",
            json!({"job": {"upgradeMode": "last-state"}, "savepoints": {"dir": "s3://b/s"}}),
            false,
        ),
        (
            "last-state with checkpoint dir",
            json!({"job": {"upgradeMode": "last-state"}, "checkpointing": {"dir": "gs://b/c"}}),
            true,
        ),
        (
            "periodic savepoints without dir",
            json!({"savepoints": {"periodicInterval": "1h"}}),
            false,
        ),
        (
            "periodic savepoints with dir",
            json!({"savepoints": {"periodicInterval": "1h", "dir": "s3://b/s"}}),
            true,
        ),
        (
            "trigger nonce without dir",
            json!({"job": {"savepointTriggerNonce": 3}}),
            false,
        ),
        (
            "trigger nonce with dir",
            json!({"job": {"savepointTriggerNonce": 3}, "savepoints": {"dir": "s3://b/s"}}),
            true,
        ),
        (
            "dir without scheme",
            json!({"checkpointing": {"dir": "/tmp/checkpoints"}}),
            false,
        ),
        (
            "file dir",
            json!({"checkpointing": {"dir": "file:///mnt/state"}}),
            true,
        ),
        (
            "interval without unit",
            json!({"checkpointing": {"interval": "10"}}),
            false,
        ),
        (
            "interval with spaces",
            json!({"checkpointing": {"interval": "10 s"}}),
            false,
        ),
        (
            "fractional interval",
            json!({"checkpointing": {"interval": "1.5s"}}),
            false,
        ),
        (
            "compound interval",
            json!({"checkpointing": {"interval": "1m30s"}}),
            true,
        ),
        (
            "history age in days",
            json!({"savepoints": {"historyMaxAge": "30d"}}),
            true,
        ),
        (
            "bad readiness timeout",
            json!({"rollback": {"readinessTimeout": "soon"}}),
            false,
        ),
        (
            "bad delete timeout",
            json!({"savepoints": {"deleteTimeout": "5 minutes"}}),
            false,
        ),
        ("zero slots", json!({"workers": {"slots": 0}}), false),
        ("four slots", json!({"workers": {"slots": 4}}), true),
        (
            "zero retained",
            json!({"checkpointing": {"retained": 0}}),
            false,
        ),
        (
            "zero history",
            json!({"savepoints": {"historyMaxCount": 0}}),
            false,
        ),
        (
            "unknown on-delete",
            json!({"savepoints": {"onDelete": "keep"}}),
            false,
        ),
        (
            "bad pull policy",
            json!({"imagePullPolicy": "Sometimes"}),
            false,
        ),
        (
            "pull policy",
            json!({"imagePullPolicy": "IfNotPresent"}),
            true,
        ),
        (
            "empty initial savepoint",
            json!({"job": {"initialSavepointPath": ""}}),
            false,
        ),
        (
            "free-form pod template",
            json!({"workers": {"podTemplate": {"spec": {"anything": [1, 2]}}}}),
            true,
        ),
    ]
}

#[test]
fn crd_and_rust_validation_agree_on_every_case() {
    let mut failures = Vec::new();
    for (name, patch, accepted) in cases() {
        let object = with(patch);
        let server = server_accepts(&object, None);
        if server.is_ok() != accepted {
            failures.push(format!(
                "{name}: API server accepts = {}, want {accepted} ({server:?})",
                server.is_ok()
            ));
        }
        // What the API server stores (defaults applied) is what the controller deserializes.
        match serde_json::from_value::<FlinkJob>(object) {
            Ok(job) => {
                let rust = job.spec.validate();
                if rust.is_ok() != accepted {
                    failures.push(format!(
                        "{name}: FlinkJobSpec::validate ok = {}, want {accepted} ({rust:?})",
                        rust.is_ok()
                    ));
                }
            }
            // Only a wrong enum value fails to deserialize; the API server rejects those too.
            Err(err) => {
                if accepted {
                    failures.push(format!("{name}: does not deserialize: {err}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "disagreements:\n{}",
        failures.join("\n")
    );
}

#[test]
fn max_parallelism_is_immutable_unless_stateless() {
    let old = with(
        json!({"job": {"upgradeMode": "savepoint", "maxParallelism": 128}, "savepoints": {"dir": "s3://b/s"}}),
    );
    let changed = with(
        json!({"job": {"upgradeMode": "savepoint", "maxParallelism": 256}, "savepoints": {"dir": "s3://b/s"}}),
    );
    let stateless = with(
        json!({"job": {"upgradeMode": "stateless", "maxParallelism": 256}, "savepoints": {"dir": "s3://b/s"}}),
    );
    let rescaled = with(
        json!({"job": {"upgradeMode": "savepoint", "parallelism": 8}, "savepoints": {"dir": "s3://b/s"}}),
    );

    let err = server_accepts(&changed, Some(&old)).unwrap_err();
    assert!(err.contains("maxParallelism"), "{err}");
    server_accepts(&stateless, Some(&old)).unwrap();
    server_accepts(&rescaled, Some(&old)).unwrap();
    server_accepts(&changed, None).expect("creation has no old object");

    let spec = |v: &Value| serde_json::from_value::<FlinkJob>(v.clone()).unwrap().spec;
    let violations = spec(&changed).validate_update(&spec(&old)).unwrap_err();
    assert_eq!(violations[0].field, "spec.job.maxParallelism");
    spec(&stateless).validate_update(&spec(&old)).unwrap();
    spec(&rescaled).validate_update(&spec(&old)).unwrap();
}

#[test]
fn cel_errors_name_the_field_to_fix() {
    let err =
        server_accepts(&with(json!({"job": {"upgradeMode": "savepoint"}})), None).unwrap_err();
    assert!(err.contains("savepoints.dir"), "{err}");
    let violations =
        serde_json::from_value::<FlinkJob>(with(json!({"job": {"upgradeMode": "savepoint"}})))
            .unwrap()
            .spec
            .validate()
            .unwrap_err();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "spec.savepoints.dir");
    assert!(
        violations[0]
            .to_string()
            .starts_with("spec.savepoints.dir: job.upgradeMode savepoint needs")
    );
}

#[test]
fn duration_pattern_and_parser_agree() {
    let samples = [
        "1s",
        "250ms",
        "5m",
        "2h",
        "7d",
        "1h30m",
        "0s",
        "10",
        "",
        "s",
        "1.5s",
        "-1s",
        "10 s",
        "10sec",
        "1w",
        "PT5M",
        "5m ",
        "m5",
        "1d2h3m4s5ms",
        "1h1",
        "ms",
        "01s",
    ];
    for text in samples {
        assert_eq!(
            pattern_matches(DURATION_PATTERN, text),
            parse_duration(text).is_ok(),
            "pattern and parser disagree on {text:?}"
        );
    }
}

#[test]
fn storage_pattern_accepts_object_store_uris_only() {
    for ok in [
        "s3://bucket/prefix",
        "gs://b/p",
        "az://container/p",
        "file:///mnt/state",
        "s3a://b",
    ] {
        assert!(pattern_matches(STORAGE_URI_PATTERN, ok), "{ok}");
    }
    for bad in ["/mnt/state", "bucket/prefix", "s3://", "://x", "3s://b"] {
        assert!(!pattern_matches(STORAGE_URI_PATTERN, bad), "{bad}");
    }
}
