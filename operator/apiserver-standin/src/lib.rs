//! An in-process stand-in for the Kubernetes API server, for tests (no cluster runs here).
//!
//! [`ApiServerStandin`] is a tower service behind [`kube::Client`]: operator code using
//! `kube::Api`, `kube::runtime::watcher`, `Controller`, `finalizer`, the events `Recorder` and
//! Lease-based leader election runs against it unchanged, and the test keeps a handle to inspect
//! the stored objects and inject faults.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
//! use kube::{Api, api::PostParams};
//! use weir_apiserver_standin::{ApiServerStandin, Fault, Verb};
//! # let flinkjob_crd = CustomResourceDefinition::default();
//!
//! let standin = ApiServerStandin::new();
//! standin.register_crd(&flinkjob_crd)?; // e.g. `FlinkJob::crd()`
//! let client = standin.client(); // hand this to the code under test
//! let cms: Api<ConfigMap> = Api::namespaced(client, "default");
//!
//! // The next create fails with 409, then requests are served again.
//! let fault = standin.inject(Fault::conflict().verb(Verb::Create).times(1));
//! assert!(cms.create(&PostParams::default(), &ConfigMap::default()).await.is_err());
//! assert_eq!(standin.fault_hits(fault), 1);
//!
//! // Inspect: typed snapshots, the request log, writes per object, waiting for a state.
//! let all: Vec<ConfigMap> = standin.objects()?;
//! let patches = standin.requests().iter().filter(|r| r.verb == Some(Verb::Patch)).count();
//! let writes = standin.write_count::<ConfigMap>(Some("default"), "job");
//! standin.wait_for::<ConfigMap>(Duration::from_secs(5), |cms| cms.len() == 1).await?;
//! # Ok(()) }
//! ```
//!
//! Watch disruption for resumption tests: [`ApiServerStandin::close_watches`] ends open watches
//! (kube's watcher resumes from history), [`ApiServerStandin::expire_watches`] also compacts the
//! history (the watcher gets 410 Gone and relists).
//!
//! Kept from the real API server: a global resourceVersion, 409s on stale versions and existing
//! names, generation bumped only outside metadata (and status), the status and scale
//! subresources, merge/JSON/strategic patches and server-side apply, finalizers and
//! `deletionTimestamp`, ownerReference garbage collection, label and field selectors, watches
//! with resumption and 410 Gone. Simplified (see each module): strategic merge patch is a merge
//! patch; apply ownership is tracked per applying manager only and lists are atomic; garbage
//! collection happens inside the deleting request; no admission, defaulting, validation against
//! schemas, dryRun, paging, conversion between versions, or periodic bookmarks; core `v1` and
//! `events.k8s.io/v1` events are stored apart.

mod apply;
mod delete;
mod error;
mod faults;
mod inspect;
mod meta;
mod patch;
mod read;
mod registry;
mod route;
mod scale;
mod selector;
mod service;
mod store;
mod watch;
mod write;

use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::store::State;
pub use crate::{
    error::Error,
    faults::{Fault, FaultId, FaultKind},
    inspect::RequestRecord,
    patch::PatchType,
    registry::{KindInfo, Registry, ResourceKey, ScalePaths},
    route::Verb,
    service::StandinService,
};

/// The state shared by the handle, the service and the open watches.
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// The state lock. A panic while holding it (only possible in a test's own code) does not
    /// leave the state half-written, so a poisoned lock is still usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The stand-in API server. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct ApiServerStandin {
    shared: Arc<Shared>,
}

impl Default for ApiServerStandin {
    fn default() -> Self {
        Self::new()
    }
}

/// Configures an [`ApiServerStandin`].
#[derive(Clone, Debug)]
pub struct Builder {
    registry: Registry,
    history_limit: usize,
    seed: u64,
}

impl Builder {
    /// How many changes the watch history keeps (default 10 000); resuming from before them
    /// answers 410 Gone.
    pub fn history_limit(mut self, changes: usize) -> Self {
        self.history_limit = changes;
        self
    }

    /// Seeds the random source (uids, generateName suffixes, fault probabilities).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Registers a custom resource from its definition.
    pub fn crd(mut self, crd: &CustomResourceDefinition) -> Result<Self, Error> {
        self.registry.register_crd(crd)?;
        Ok(self)
    }

    /// Builds the stand-in.
    pub fn build(self) -> ApiServerStandin {
        let state = State::new(self.registry, self.history_limit, self.seed);
        ApiServerStandin {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
            }),
        }
    }
}

impl ApiServerStandin {
    /// A stand-in serving the built-in kinds (see [`Registry::with_builtins`]).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder, to set the history size, the seed or CRDs up front.
    pub fn builder() -> Builder {
        Builder {
            registry: Registry::with_builtins(),
            history_limit: 10_000,
            seed: 0,
        }
    }

    /// A kube client talking to this stand-in, with `default` as its default namespace.
    /// Needs a tokio runtime (kube's client spawns its request buffer).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.service(), "default")
    }

    /// The tower service, for `kube::Client::new` with another default namespace or extra layers.
    pub fn service(&self) -> StandinService {
        StandinService {
            shared: self.shared.clone(),
        }
    }

    /// Serves a custom resource (every served version) from its definition, as creating the CRD
    /// on a real cluster does. Creating a CRD object through the API registers it too.
    pub fn register_crd(&self, crd: &CustomResourceDefinition) -> Result<(), Error> {
        self.shared.lock().registry.register_crd(crd)
    }

    /// Serves another kind.
    pub fn register_kind(&self, info: KindInfo) {
        self.shared.lock().registry.register(info);
    }

    /// Makes matching requests fail; see [`Fault`]. Earlier faults win when several match.
    pub fn inject(&self, fault: Fault) -> FaultId {
        let mut state = self.shared.lock();
        let id = FaultId(state.faults.len() as u64 + 1);
        state.faults.push(faults::FaultRule { id, fault, hits: 0 });
        id
    }

    /// How many requests a fault has failed so far.
    pub fn fault_hits(&self, id: FaultId) -> u32 {
        self.shared
            .lock()
            .faults
            .iter()
            .find(|r| r.id == id)
            .map_or(0, |r| r.hits)
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Ends every open watch without a closing bookmark, as a dropped connection would; kube's
    /// watcher resumes from the last resourceVersion it saw.
    pub fn close_watches(&self) {
        self.shared.lock().close_watches();
    }

    /// Forgets the change history (as an etcd compaction does) and ends every open watch: a watch
    /// resuming from any version handed out so far gets 410 Gone, and kube's watcher relists.
    pub fn expire_watches(&self) {
        let mut state = self.shared.lock();
        state.compact();
        state.close_watches();
    }

    /// The latest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().current_rv()
    }
}
