//! The kinds the stand-in serves: for each (group, version, plural) the kind name, whether it is
//! namespaced, and which subresources it has. Built-in kinds the operator touches are registered up
//! front; custom resources are registered from their `CustomResourceDefinition`, as the real API
//! server does when a CRD is created.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::error::Error;

/// Identifies a resource collection: `(group, version, plural)`; the core group is `""`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    /// API group, `""` for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `configmaps`.
    pub plural: String,
}

impl ResourceKey {
    /// Builds a key from its parts.
    pub fn new(group: &str, version: &str, plural: &str) -> Self {
        ResourceKey {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
        }
    }

    /// The key of a kube resource type (`ConfigMap`, a derived custom resource...).
    pub fn of<K: kube::Resource<DynamicType = ()>>() -> Self {
        ResourceKey::new(&K::group(&()), &K::version(&()), &K::plural(&()))
    }

    /// `deployments.apps`, as the API server names a resource in its messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Where the scale subresource reads and writes replica counts, as JSON pointers
/// (converted from the CRD's `.spec.replicas` style paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// Pointer to the desired replica count (`/spec/replicas`).
    pub spec_replicas: String,
    /// Pointer to the observed replica count (`/status/replicas`).
    pub status_replicas: String,
    /// Pointer to the label selector string reported in `Scale.status.selector`, if any.
    pub label_selector: Option<String>,
}

/// One served kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// The collection this kind lives in.
    pub key: ResourceKey,
    /// The kind name, e.g. `ConfigMap`.
    pub kind: String,
    /// Namespaced (true) or cluster-scoped (false).
    pub namespaced: bool,
    /// Has a `/status` subresource: main-resource writes ignore `.status`, `/status` writes change
    /// only `.status`.
    pub status: bool,
    /// Has a `/scale` subresource.
    pub scale: Option<ScalePaths>,
}

impl KindInfo {
    /// A kind without subresources.
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        KindInfo {
            key: ResourceKey::new(group, version, plural),
            kind: kind.to_owned(),
            namespaced,
            status: false,
            scale: None,
        }
    }

    /// Adds the status subresource.
    pub fn with_status(mut self) -> Self {
        self.status = true;
        self
    }

    /// Adds the scale subresource at `.spec.replicas` / `.status.replicas`.
    pub fn with_replicas_scale(mut self) -> Self {
        self.scale = Some(ScalePaths {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            label_selector: None,
        });
        self
    }
}

/// All kinds the stand-in serves.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    kinds: BTreeMap<ResourceKey, KindInfo>,
}

impl Registry {
    /// The built-in kinds the operator and kube-runtime use.
    pub fn with_builtins() -> Self {
        let mut registry = Registry::default();
        for info in [
            KindInfo::new("", "v1", "configmaps", "ConfigMap", true),
            KindInfo::new("", "v1", "secrets", "Secret", true),
            KindInfo::new("", "v1", "services", "Service", true).with_status(),
            KindInfo::new("", "v1", "pods", "Pod", true).with_status(),
            KindInfo::new("", "v1", "events", "Event", true),
            KindInfo::new("", "v1", "serviceaccounts", "ServiceAccount", true),
            KindInfo::new("", "v1", "namespaces", "Namespace", false).with_status(),
            KindInfo::new("apps", "v1", "deployments", "Deployment", true)
                .with_status()
                .with_replicas_scale(),
            KindInfo::new("apps", "v1", "statefulsets", "StatefulSet", true)
                .with_status()
                .with_replicas_scale(),
            KindInfo::new("events.k8s.io", "v1", "events", "Event", true),
            KindInfo::new("coordination.k8s.io", "v1", "leases", "Lease", true),
            KindInfo::new(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
            )
            .with_status(),
        ] {
            registry.register(info);
        }
        registry
    }

    /// Adds or replaces a kind.
    pub fn register(&mut self, info: KindInfo) {
        self.kinds.insert(info.key.clone(), info);
    }

    /// Registers every served version of a custom resource.
    pub fn register_crd(&mut self, crd: &CustomResourceDefinition) -> Result<(), Error> {
        for info in kinds_of_crd(crd)? {
            self.register(info);
        }
        Ok(())
    }

    /// The kind served at this collection, if any.
    pub fn get(&self, key: &ResourceKey) -> Option<&KindInfo> {
        self.kinds.get(key)
    }

    /// Every registered kind.
    pub fn kinds(&self) -> impl Iterator<Item = &KindInfo> {
        self.kinds.values()
    }
}

/// The kinds a CRD defines, one per served version.
pub(crate) fn kinds_of_crd(crd: &CustomResourceDefinition) -> Result<Vec<KindInfo>, Error> {
    let spec = &crd.spec;
    let namespaced = match spec.scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return Err(Error::InvalidCrd(format!(
                "scope must be Namespaced or Cluster, not {other:?}"
            )));
        }
    };
    if spec.names.plural.is_empty() || spec.names.kind.is_empty() {
        return Err(Error::InvalidCrd(
            "names.plural and names.kind are required".into(),
        ));
    }
    let mut kinds = Vec::new();
    for version in spec.versions.iter().filter(|v| v.served) {
        let mut info = KindInfo::new(
            &spec.group,
            &version.name,
            &spec.names.plural,
            &spec.names.kind,
            namespaced,
        );
        if let Some(sub) = &version.subresources {
            info.status = sub.status.is_some();
            if let Some(scale) = &sub.scale {
                info.scale = Some(ScalePaths {
                    spec_replicas: json_path_to_pointer(&scale.spec_replicas_path)?,
                    status_replicas: json_path_to_pointer(&scale.status_replicas_path)?,
                    label_selector: scale
                        .label_selector_path
                        .as_deref()
                        .map(json_path_to_pointer)
                        .transpose()?,
                });
            }
        }
        kinds.push(info);
    }
    if kinds.is_empty() {
        return Err(Error::InvalidCrd(format!(
            "{} serves no version",
            spec.names.plural
        )));
    }
    Ok(kinds)
}

/// `.spec.job.parallelism` → `/spec/job/parallelism` (CRD scale paths allow no array notation).
fn json_path_to_pointer(path: &str) -> Result<String, Error> {
    let rest = path
        .strip_prefix('.')
        .ok_or_else(|| Error::InvalidCrd(format!("scale path {path:?} must start with '.'")))?;
    if rest.is_empty() || rest.contains('[') {
        return Err(Error::InvalidCrd(format!(
            "scale path {path:?} must name a field without array notation"
        )));
    }
    Ok(rest
        .split('.')
        .fold(String::new(), |acc, part| format!("{acc}/{part}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_scale_paths_become_json_pointers() {
        assert_eq!(
            json_path_to_pointer(".spec.job.parallelism").unwrap(),
            "/spec/job/parallelism"
        );
        assert!(json_path_to_pointer("spec.replicas").is_err());
        assert!(json_path_to_pointer(".spec.items[0]").is_err());
    }

    #[test]
    fn qualified_names_follow_the_api_server() {
        assert_eq!(
            ResourceKey::new("", "v1", "configmaps").qualified(),
            "configmaps"
        );
        assert_eq!(
            ResourceKey::new("apps", "v1", "deployments").qualified(),
            "deployments.apps"
        );
    }
}
