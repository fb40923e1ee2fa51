//! Pod parts the coordinator and workers share: the main container (image, env, volume
//! mounts), the job and token volumes, and the merge of the user's free-form `podTemplate`
//! override over the generated pod.
//!
//! Merge rules (documented on the CRD field): maps merge key by key, the override winning;
//! `containers` and `initContainers` merge by name (the one named `weir` into the main
//! container), `volumes` by name, other lists are replaced. `env`, `volumeMounts` and `ports`
//! inside a container merge by name (mountPath for mounts), so an override can add a variable
//! without repeating the generated ones.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EnvVar, PodTemplateSpec, ResourceRequirements,
    SecretVolumeSource, Volume, VolumeMount,
};
use serde_json::Value;
use weir_crds::{FlinkJobSpec, MAIN_CONTAINER};

use super::{ChildSet, DEPLOYMENT_HASH_ANNOTATION, JOB_DIR, Names, TOKEN_DIR};
use crate::error::{Error, Result};

/// The main container: image, pull policy, command, env and the job and token mounts.
pub fn main_container(
    spec: &FlinkJobSpec,
    args: Vec<String>,
    extra_env: Vec<EnvVar>,
    resources: Option<ResourceRequirements>,
) -> Container {
    let mut env = extra_env;
    env.extend(spec.env.iter().cloned());
    Container {
        name: MAIN_CONTAINER.to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_owned()),
        command: Some(vec!["weir".to_owned()]),
        args: Some(args),
        env: (!env.is_empty()).then_some(env),
        env_from: (!spec.env_from.is_empty()).then(|| spec.env_from.clone()),
        resources,
        volume_mounts: Some(vec![
            VolumeMount {
                name: "job".to_owned(),
                mount_path: JOB_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "token".to_owned(),
                mount_path: TOKEN_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}

/// The job ConfigMap and token Secret volumes.
pub fn volumes(owner_name: &str) -> Vec<Volume> {
    let names = Names::of(owner_name);
    vec![
        Volume {
            name: "job".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: names.config_map,
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "token".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(names.secret),
                default_mode: Some(0o400),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
    ]
}

/// Pod template annotations: the deployment hash rolls the pods when what runs changes.
pub fn annotations(set: &ChildSet) -> BTreeMap<String, String> {
    BTreeMap::from([(DEPLOYMENT_HASH_ANNOTATION.to_owned(), set.hash.clone())])
}

/// Merges the user's override (a partial Pod: `metadata`, `spec`) over `template`.
pub fn merge_override(
    template: PodTemplateSpec,
    override_: Option<&Value>,
    kind: &'static str,
    name: &str,
) -> Result<PodTemplateSpec> {
    let Some(override_) = override_ else {
        return Ok(template);
    };
    let bad = |reason: String| Error::BuildChild {
        kind,
        name: name.to_owned(),
        reason,
    };
    let mut base = serde_json::to_value(&template).map_err(|e| bad(e.to_string()))?;
    let override_ = match override_ {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| matches!(k.as_str(), "metadata" | "spec"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        Value::Null => return Ok(template),
        _ => {
            return Err(bad(
                "podTemplate must be an object with metadata and spec".into()
            ));
        }
    };
    merge(&mut base, &override_, "");
    serde_json::from_value(base)
        .map_err(|e| bad(format!("podTemplate is not a valid partial Pod: {e}")))
}

/// The key lists of objects merge by, per field name.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "volumes" | "env" | "ports" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        _ => None,
    }
}

fn merge(base: &mut Value, over: &Value, field: &str) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(existing) => merge(existing, value, key),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(over)) if merge_key(field).is_some() => {
            let key = merge_key(field).unwrap_or("name");
            for item in over {
                let id = item.get(key);
                match base.iter_mut().find(|b| id.is_some() && b.get(key) == id) {
                    Some(existing) => merge(existing, item, ""),
                    None => base.push(item.clone()),
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSpec;
    use serde_json::json;

    use super::*;

    fn template() -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "weir".into(),
                    image: Some("weir:1".into()),
                    env: Some(vec![EnvVar {
                        name: "A".into(),
                        value: Some("1".into()),
                        ..EnvVar::default()
                    }]),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        }
    }

    #[test]
    fn override_merges_the_main_container_by_name_and_adds_sidecars() {
        let over = json!({
            "metadata": {"labels": {"team": "data"}},
            "spec": {
                "nodeSelector": {"pool": "streaming"},
                "containers": [
                    {"name": "weir", "env": [{"name": "B", "value": "2"}]},
                    {"name": "proxy", "image": "envoy"}
                ]
            }
        });
        let merged = merge_override(template(), Some(&over), "Deployment", "x").unwrap();
        let spec = merged.spec.unwrap();
        assert_eq!(spec.node_selector.unwrap()["pool"], "streaming");
        assert_eq!(spec.containers.len(), 2);
        let env: Vec<_> = spec.containers[0]
            .env
            .iter()
            .flatten()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(env, ["A", "B"]);
        assert_eq!(spec.containers[0].image.as_deref(), Some("weir:1"));
        assert_eq!(merged.metadata.unwrap().labels.unwrap()["team"], "data");
    }

    #[test]
    fn an_override_that_is_not_a_pod_is_a_build_error() {
        let over = json!({"spec": {"containers": "nope"}});
        let err = merge_override(template(), Some(&over), "Deployment", "x").unwrap_err();
        assert!(err.to_string().contains("not a valid partial Pod"), "{err}");
    }
}
