//! Inspection helpers for tests: typed snapshots of stored objects, the request log, write counts
//! per object, and `wait_for`, which waits (under a tokio timeout) until the objects of a kind
//! satisfy a predicate.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    ApiServerStandin, error::Error, patch::PatchType, registry::ResourceKey, route::Verb,
    store::ObjectKey, write,
};

/// One request the stand-in received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// The verb, when the path named a resource.
    pub verb: Option<Verb>,
    /// `status` or `scale`, when the path named a subresource.
    pub subresource: Option<String>,
    /// The patch type of a PATCH.
    pub patch_type: Option<PatchType>,
    /// The `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// The HTTP status code answered (200 for watches).
    pub code: u16,
}

impl ApiServerStandin {
    /// Every stored object of a kind, in all namespaces, ordered by namespace and name.
    pub fn objects<K>(&self) -> Result<Vec<K>, Error>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.objects_raw(&ResourceKey::of::<K>())
            .into_iter()
            .map(from_json)
            .collect()
    }

    /// Every stored object of a collection as JSON.
    pub fn objects_raw(&self, resource: &ResourceKey) -> Vec<Value> {
        self.shared
            .lock()
            .list(resource, None)
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// One stored object, if it exists.
    pub fn get<K>(&self, namespace: Option<&str>, name: &str) -> Result<Option<K>, Error>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let key = object_key::<K>(namespace, name);
        let found = self
            .shared
            .lock()
            .objects
            .get(&key)
            .map(|s| s.object.clone());
        found.map(from_json).transpose()
    }

    /// Stores an object as a create request would (bypassing faults and the request log), to set
    /// up a test's starting state. Returns it as stored.
    pub fn insert<K>(&self, object: &K) -> Result<K, Error>
    where
        K: kube::Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let value = serde_json::to_value(object).map_err(|source| Error::Convert {
            what: K::kind(&()).into_owned(),
            source,
        })?;
        let mut state = self.shared.lock();
        let info = state
            .registry
            .get(&ResourceKey::of::<K>())
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("{} is not registered", K::plural(&()))))?;
        let namespace = value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let stored = write::create(
            &mut state,
            &info,
            namespace.as_deref(),
            value,
            Default::default(),
        )?;
        drop(state);
        from_json(stored)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// How many committed writes (create, changing update or patch, deletion mark, removal) an
    /// object has had. No-op writes do not count.
    pub fn write_count<K>(&self, namespace: Option<&str>, name: &str) -> u64
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let key = object_key::<K>(namespace, name);
        self.shared.lock().writes.get(&key).copied().unwrap_or(0)
    }

    /// Waits until the stored objects of kind `K` satisfy `predicate`, re-checking after every
    /// commit; returns them, or [`Error::WaitTimeout`].
    pub async fn wait_for<K>(
        &self,
        timeout: Duration,
        mut predicate: impl FnMut(&[K]) -> bool,
    ) -> Result<Vec<K>, Error>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let mut changes = self.shared.lock().changes();
        let wait = async {
            loop {
                changes.borrow_and_update();
                let objects = self.objects::<K>()?;
                if predicate(&objects) {
                    return Ok(objects);
                }
                if changes.changed().await.is_err() {
                    return Err(Error::WaitTimeout(timeout));
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::WaitTimeout(timeout))?
    }
}

fn object_key<K: kube::Resource<DynamicType = ()>>(
    namespace: Option<&str>,
    name: &str,
) -> ObjectKey {
    ObjectKey {
        resource: ResourceKey::of::<K>(),
        namespace: namespace.unwrap_or_default().to_owned(),
        name: name.to_owned(),
    }
}

fn from_json<K: DeserializeOwned>(value: Value) -> Result<K, Error> {
    let what = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object")
        .to_owned();
    serde_json::from_value(value).map_err(|source| Error::Convert { what, source })
}
