//! Turns an HTTP method, path and query into what the API server would understand from them: the
//! verb, the resource collection, namespace, name, subresource and the query parameters kube sends.

use std::collections::BTreeMap;

use crate::{error::Error, registry::ResourceKey};

/// The Kubernetes verb of a request (as in RBAC and audit logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST to a collection.
    Create,
    /// PUT of one object.
    Update,
    /// PATCH of one object.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

/// A parsed resource path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The collection.
    pub key: ResourceKey,
    /// The namespace in the path, if the path is namespaced.
    pub namespace: Option<String>,
    /// The object name, if the path names one.
    pub name: Option<String>,
    /// `status` or `scale`, if the path names a subresource.
    pub subresource: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/{group}/{version}/...` paths; `None` for anything else.
pub fn parse_path(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    // `/api/v1/namespaces/{ns}/{plural}...` is namespaced; `/api/v1/namespaces/{name}` is the
    // Namespace object itself, which the generic form below handles.
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..] => (Some((*ns).to_owned()), {
            let mut v = vec![*plural];
            v.extend_from_slice(more);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return None,
    };
    Some(Route {
        key: ResourceKey::new(group, version, plural),
        namespace,
        name: name.map(decode),
        subresource: subresource.map(str::to_owned),
    })
}

/// Names are DNS labels, so decoding rarely matters; it keeps odd names round-tripping.
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The query parameters of a request.
#[derive(Clone, Debug, Default)]
pub struct Query(BTreeMap<String, String>);

impl Query {
    /// Parses a query string (`a=b&c=d`).
    pub fn parse(query: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A parameter, if present and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// A numeric parameter.
    pub fn number(&self, key: &str) -> Result<Option<u64>, Error> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| Error::BadRequest(format!("{key}={v:?} is not a number")))
            })
            .transpose()
    }
}

/// The verb of a request from its method and whether it names an object.
pub fn verb_of(method: &http::Method, route: &Route, query: &Query) -> Result<Verb, Error> {
    let named = route.name.is_some();
    Ok(match (method.as_str(), named) {
        ("GET", true) => Verb::Get,
        ("GET", false) if query.flag("watch") => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", false) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        (method, _) => {
            return Err(Error::MethodNotAllowed(format!(
                "the server does not allow {method} on this path"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_core_paths_parse() {
        let r = parse_path("/api/v1/namespaces/default/configmaps/cm").unwrap();
        assert_eq!(r.key, ResourceKey::new("", "v1", "configmaps"));
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("cm"));
        assert_eq!(r.subresource, None);
    }

    #[test]
    fn group_paths_with_subresources_parse() {
        let r = parse_path("/apis/weir.dev/v1alpha1/namespaces/ns/flinkjobs/j/status").unwrap();
        assert_eq!(r.key, ResourceKey::new("weir.dev", "v1alpha1", "flinkjobs"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn all_namespace_and_namespace_object_paths_parse() {
        let all = parse_path("/apis/apps/v1/deployments").unwrap();
        assert_eq!((all.namespace, all.name), (None, None));
        let ns = parse_path("/api/v1/namespaces/default").unwrap();
        assert_eq!(ns.key.plural, "namespaces");
        assert_eq!(ns.name.as_deref(), Some("default"));
        assert!(parse_path("/healthz").is_none());
    }

    #[test]
    fn queries_decode() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=true&timeoutSeconds=5",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.number("timeoutSeconds").unwrap(), Some(5));
    }
}
