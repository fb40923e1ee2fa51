//! The CustomResourceDefinition generated from the types, and the YAML committed as
//! `crds/flinkjob.yaml` (printed by `weir-operator crd`, installed by the Helm chart).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

use crate::Error;
use crate::spec::FlinkJob;

/// The FlinkJob CRD.
pub fn crd() -> CustomResourceDefinition {
    let crd = FlinkJob::crd();
    // Reflow the `///` paragraphs into single lines: `kubectl explain` wraps them itself, and
    // the hard line breaks of the source would show as ragged text.
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    reflow_descriptions(&mut value);
    serde_json::from_value(value).unwrap_or(crd)
}

/// Joins the lines of each paragraph of every `description`, keeping blank lines and list items.
fn reflow_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(text) if key == "description" => *text = reflow(text),
                    _ => reflow_descriptions(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(reflow_descriptions),
        _ => {}
    }
}

fn reflow(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim_end();
        let starts_block = line.is_empty() || line.starts_with("- ") || line.starts_with("* ");
        if !out.is_empty() {
            let after_blank = out.ends_with('\n');
            out.push(if starts_block || after_blank {
                '\n'
            } else {
                ' '
            });
        }
        out.push_str(line);
    }
    out
}

/// The FlinkJob CRD as a YAML document, exactly as committed in `crds/flinkjob.yaml`.
pub fn crd_yaml() -> Result<String, Error> {
    let body = serde_saphyr::to_string(&crd()).map_err(|source| Error::RenderYaml { source })?;
    Ok(format!(
        "# Generated from the weir-crds types by `weir-operator crd`; do not edit.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn descriptions_are_reflowed_into_paragraphs() {
        assert_eq!(
            reflow("one\ntwo\n\nthree\n- a\n- b"),
            "one two\n\nthree\n- a\n- b"
        );
        let spec = serde_json::to_value(crd()).unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            ["properties"]["spec"]["properties"]["job"]["properties"]["upgradeMode"]["description"]
            .clone();
        assert!(!spec.as_str().unwrap().contains('\n'), "{spec}");
    }

    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/flinkjob.yaml");

    #[test]
    fn committed_crd_matches_the_types() {
        let generated = crd_yaml().unwrap();
        if std::env::var_os("WEIR_UPDATE_CRD").is_some() {
            std::fs::write(COMMITTED, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(Path::new(COMMITTED)).unwrap_or_default();
        assert!(
            committed == generated,
            "crds/flinkjob.yaml is out of date with the weir-crds types; regenerate it with\n  \
             WEIR_UPDATE_CRD=1 cargo nextest run --release -p weir-crds\nor\n  \
             cargo run --release -p weir-operator -- crd > crds/flinkjob.yaml"
        );
    }

    #[test]
    fn committed_yaml_parses_back_into_the_same_crd() {
        let text = crd_yaml().unwrap();
        let parsed: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(parsed, crd());
    }

    fn schema() -> Value {
        let crd = crd();
        let version = &crd.spec.versions[0];
        serde_json::to_value(
            version
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap()
    }

    /// Walks every schema node with its path.
    fn walk<'a>(node: &'a Value, path: String, visit: &mut dyn FnMut(&str, &'a Value)) {
        visit(&path, node);
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                walk(child, format!("{path}.{name}"), visit);
            }
        }
        if let Some(items) = node.get("items") {
            walk(items, format!("{path}[]"), visit);
        }
        if let Some(extra) = node.get("additionalProperties").filter(|v| v.is_object()) {
            walk(extra, format!("{path}{{}}"), visit);
        }
    }

    #[test]
    fn schema_is_structural() {
        let schema = schema();
        let mut problems = Vec::new();
        walk(&schema, String::new(), &mut |path, node| {
            let preserve =
                node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
            if node.get("type").is_none() && !preserve && !int_or_string {
                problems.push(format!("{path}: no type"));
            }
            if node.get("type") == Some(&Value::String("object".into()))
                && node.get("properties").is_none()
                && node.get("additionalProperties").is_none()
                && !preserve
                && path != ".metadata"
            {
                problems.push(format!("{path}: object without properties"));
            }
            for forbidden in [
                "$ref",
                "anyOf",
                "oneOf",
                "allOf",
                "not",
                "definitions",
                "$defs",
            ] {
                if node.get(forbidden).is_some() {
                    problems.push(format!("{path}: uses {forbidden}"));
                }
            }
        });
        assert!(
            problems.is_empty(),
            "not a structural schema:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn every_spec_field_is_documented() {
        let schema = schema();
        let mut missing = Vec::new();
        walk(
            &schema["properties"]["spec"],
            ".spec".into(),
            &mut |path, node| {
                let from_k8s = [".resources.", ".env[].", ".envFrom[]."]
                    .iter()
                    .any(|p| path.contains(p));
                if node.get("description").is_none()
                    && !from_k8s
                    && !path.ends_with("{}")
                    && !path.ends_with("[]")
                {
                    missing.push(path.to_owned());
                }
            },
        );
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:?}"
        );
    }

    #[test]
    fn cel_rules_are_in_the_schema() {
        let schema = schema();
        let rules = |node: &Value| -> Vec<String> {
            node["x-kubernetes-validations"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| r["rule"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let spec = &schema["properties"]["spec"];
        let spec_rules = rules(spec).join("\n");
        for needle in [
            "'savepoint'",
            "'last-state'",
            "periodicInterval",
            "savepointTriggerNonce",
        ] {
            assert!(
                spec_rules.contains(needle),
                "no spec rule mentions {needle}: {spec_rules}"
            );
        }
        let job_rules = rules(&spec["properties"]["job"]).join("\n");
        for needle in [
            "has(self.sql) != has(self.sqlConfigMap)",
            "self.parallelism <= self.maxParallelism",
            "oldSelf.maxParallelism",
        ] {
            assert!(
                job_rules.contains(needle),
                "job rules lack {needle}: {job_rules}"
            );
        }
        assert_eq!(
            spec["properties"]["job"]["properties"]["parallelism"]["minimum"].as_f64(),
            Some(1.0)
        );
        assert_eq!(
            spec["properties"]["workers"]["properties"]["slots"]["minimum"].as_f64(),
            Some(1.0)
        );
        assert_eq!(
            spec["properties"]["checkpointing"]["properties"]["interval"]["pattern"],
            crate::DURATION_PATTERN
        );
    }

    #[test]
    fn resource_names_subresources_and_columns() {
        let crd = crd();
        assert_eq!(crd.metadata.name.as_deref(), Some("flinkjobs.weir.dev"));
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["fj".to_owned()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        let subresources = version.subresources.as_ref().unwrap();
        assert!(subresources.status.is_some());
        let scale = subresources.scale.as_ref().unwrap();
        assert_eq!(scale.spec_replicas_path, ".spec.job.parallelism");
        assert_eq!(scale.status_replicas_path, ".status.job.parallelism");
        assert_eq!(
            scale.label_selector_path.as_deref(),
            Some(".status.selector")
        );
        let columns: Vec<_> = version
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| (c.name.as_str(), c.type_.as_str()))
            .collect();
        assert_eq!(
            columns,
            [
                ("Lifecycle", "string"),
                ("Job State", "string"),
                ("Parallelism", "integer"),
                ("Ready", "string"),
                ("Last Savepoint", "date"),
                ("Age", "date"),
            ]
        );
        // Every column path exists in the schema (a typo would show an empty column forever).
        let schema = schema();
        for column in version.additional_printer_columns.as_ref().unwrap() {
            let path = column.json_path.split('[').next().unwrap();
            let mut node = &schema;
            for part in path.trim_start_matches('.').split('.') {
                node = if part == "metadata" {
                    &Value::Null
                } else {
                    &node["properties"][part]
                };
                if node.is_null() {
                    break;
                }
            }
            assert!(
                path.starts_with(".metadata") || !node.is_null(),
                "column path {path} not in schema"
            );
        }
    }

    #[test]
    fn crd_stays_small() {
        // The Flink operator's FlinkDeployment CRD is ~1 MB with the full PodSpec; ours must stay
        // kubectl-apply-able (annotation limit 256 KiB) with a wide margin.
        let size = crd_yaml().unwrap().len();
        assert!(size < 64 * 1024, "CRD grew to {size} bytes");
    }
}
