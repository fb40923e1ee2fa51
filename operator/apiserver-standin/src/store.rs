//! The stand-in's etcd: objects as JSON keyed by (group, version, plural, namespace, name), one
//! global resourceVersion counter, a bounded history of changes for watch resumption, and the live
//! watch subscriptions. Every commit happens under the one state lock and is pushed to the
//! subscribers under that lock, so a watch never misses or reorders an event.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rand::{SeedableRng, rngs::SmallRng};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::{
    apply::Managers,
    faults::FaultRule,
    inspect::RequestRecord,
    meta::{self, set_meta},
    registry::{Registry, ResourceKey},
    selector::{FieldSelector, LabelSelector},
};

/// Identifies one stored object. `namespace` is `""` for cluster-scoped kinds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The collection.
    pub resource: ResourceKey,
    /// The namespace, `""` when cluster-scoped.
    pub namespace: String,
    /// The object name.
    pub name: String,
}

/// One stored object and its server-side-apply field owners.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub object: Value,
    pub managers: Managers,
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `ADDED`
    Added,
    /// `MODIFIED`
    Modified,
    /// `DELETED`
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change, kept in the history for watch resumption.
#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    key: ObjectKey,
    kind: EventType,
    object: Value,
    previous: Option<Value>,
}

/// What a watch wants to see.
#[derive(Clone, Debug)]
pub(crate) struct WatchFilter {
    pub resource: ResourceKey,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl WatchFilter {
    pub fn matches(&self, key: &ObjectKey, object: &Value) -> bool {
        key.resource == self.resource
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == key.namespace)
            && self.labels.matches(object)
            && self.fields.matches(object)
    }

    /// The event this watch sees for a change. As on the API server, an object that moves into
    /// the selector is `ADDED` and one that moves out of it is `DELETED`.
    fn event_for(&self, change: &Change) -> Option<WatchMessage> {
        let now = self.matches(&change.key, &change.object);
        let before = change
            .previous
            .as_ref()
            .is_some_and(|p| self.matches(&change.key, p));
        let kind = match (change.kind, before, now) {
            (EventType::Deleted, _, true) => EventType::Deleted,
            (EventType::Deleted, _, false) => return None,
            (_, true, true) => EventType::Modified,
            (_, false, true) => EventType::Added,
            (_, true, false) => EventType::Deleted,
            (_, false, false) => return None,
        };
        Some(WatchMessage::Event(kind, change.object.clone()))
    }
}

/// A message to a watch stream.
#[derive(Clone, Debug)]
pub(crate) enum WatchMessage {
    /// An event for the client.
    Event(EventType, Value),
    /// The initial events of a streaming list are all queued; resourceVersion they are at.
    InitialEventsEnd(u64),
}

struct Subscriber {
    id: u64,
    filter: WatchFilter,
    tx: mpsc::UnboundedSender<WatchMessage>,
}

/// Where a watch starts.
pub(crate) enum WatchStart {
    /// No resourceVersion or `0`: synthetic `ADDED` events for the current objects, then changes;
    /// `true` marks the end of the synthetic events (`sendInitialEvents=true`).
    Current(bool),
    /// Changes after this resourceVersion.
    After(u64),
}

/// The whole mutable state of the stand-in.
pub(crate) struct State {
    pub registry: Registry,
    pub objects: BTreeMap<ObjectKey, Stored>,
    pub writes: HashMap<ObjectKey, u64>,
    pub requests: Vec<RequestRecord>,
    pub faults: Vec<FaultRule>,
    pub rng: SmallRng,
    rv: u64,
    history: VecDeque<Change>,
    history_limit: usize,
    compacted: u64,
    subscribers: Vec<Subscriber>,
    next_subscriber: u64,
    changed: watch::Sender<u64>,
}

impl State {
    pub fn new(registry: Registry, history_limit: usize, seed: u64) -> Self {
        State {
            registry,
            objects: BTreeMap::new(),
            writes: HashMap::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            rng: SmallRng::seed_from_u64(seed),
            // Never 0: to the API server `resourceVersion=0` means "any version", so a list at 0
            // would make kube's watcher start its watch with synthetic ADDED events.
            rv: 1,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            subscribers: Vec::new(),
            next_subscriber: 0,
            changed: watch::Sender::new(0),
        }
    }

    /// The latest resourceVersion handed out.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// A receiver that sees every commit, for `wait_for`.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Stores an object (created or updated) under a fresh resourceVersion and tells the watches.
    pub fn put(&mut self, key: ObjectKey, mut object: Value, managers: Managers) -> Value {
        self.rv += 1;
        set_meta(&mut object, "resourceVersion", self.rv.to_string());
        let previous = self.objects.insert(
            key.clone(),
            Stored {
                object: object.clone(),
                managers,
            },
        );
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Change {
            rv: self.rv,
            key,
            kind,
            object: object.clone(),
            previous: previous.map(|p| p.object),
        });
        object
    }

    /// Replaces only the field owners of an object (no resourceVersion bump: not a change).
    pub fn set_managers(&mut self, key: &ObjectKey, managers: Managers) {
        if let Some(stored) = self.objects.get_mut(key) {
            stored.managers = managers;
        }
    }

    /// Removes an object; the `DELETED` event carries its last state (or `last`, when the removal
    /// is the outcome of an update, such as the last finalizer going) under a fresh resourceVersion.
    pub fn remove(&mut self, key: &ObjectKey, last: Option<Value>) -> Option<Value> {
        let stored = self.objects.remove(key)?.object;
        let mut object = last.unwrap_or_else(|| stored.clone());
        self.rv += 1;
        set_meta(&mut object, "resourceVersion", self.rv.to_string());
        let change = Change {
            rv: self.rv,
            key: key.clone(),
            kind: EventType::Deleted,
            object: object.clone(),
            previous: Some(stored),
        };
        self.record(change);
        Some(object)
    }

    fn record(&mut self, change: Change) {
        *self.writes.entry(change.key.clone()).or_default() += 1;
        self.subscribers
            .retain(|s| match s.filter.event_for(&change) {
                Some(message) => s.tx.send(message).is_ok(),
                None => !s.tx.is_closed(),
            });
        self.history.push_back(change);
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        self.changed.send_replace(self.rv);
    }

    /// Opens a watch: queues the initial or replayed events, then every later matching change.
    /// `None` when `After(rv)` reaches behind the history (the caller answers 410 Gone).
    pub fn subscribe(
        &mut self,
        filter: WatchFilter,
        start: WatchStart,
    ) -> Option<(u64, mpsc::UnboundedReceiver<WatchMessage>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        match start {
            WatchStart::Current(mark_end) => {
                for (key, stored) in &self.objects {
                    if filter.matches(key, &stored.object) {
                        let _ =
                            tx.send(WatchMessage::Event(EventType::Added, stored.object.clone()));
                    }
                }
                if mark_end {
                    let _ = tx.send(WatchMessage::InitialEventsEnd(self.rv));
                }
            }
            WatchStart::After(rv) => {
                if rv < self.compacted {
                    return None;
                }
                for change in self.history.iter().filter(|c| c.rv > rv) {
                    if let Some(message) = filter.event_for(change) {
                        let _ = tx.send(message);
                    }
                }
            }
        }
        self.next_subscriber += 1;
        let id = self.next_subscriber;
        self.subscribers.push(Subscriber { id, filter, tx });
        Some((id, rx))
    }

    /// Stops feeding a watch (its queued events stay readable); returns the resourceVersion every
    /// queued event is at or below, for the closing bookmark.
    pub fn unsubscribe(&mut self, id: u64) -> u64 {
        self.subscribers.retain(|s| s.id != id);
        self.rv
    }

    /// Ends every open watch, as a dropped connection or an API server restart would.
    pub fn close_watches(&mut self) {
        self.subscribers.clear();
    }

    /// Forgets the change history up to now, so resuming from any resourceVersion handed out so
    /// far answers 410 Gone (as after an etcd compaction).
    pub fn compact(&mut self) {
        // A gap in resourceVersions is allowed (etcd's counter is shared by all resources); it
        // makes even the latest handed-out version too old.
        self.rv += 1;
        self.compacted = self.rv;
        self.history.clear();
        self.changed.send_replace(self.rv);
    }

    /// Objects of one collection (optionally one namespace), in key order.
    pub fn list(
        &self,
        resource: &ResourceKey,
        namespace: Option<&str>,
    ) -> impl Iterator<Item = (&ObjectKey, &Value)> {
        self.objects
            .iter()
            .filter(move |(k, _)| {
                k.resource == *resource && namespace.is_none_or(|ns| ns == k.namespace)
            })
            .map(|(k, s)| (k, &s.object))
    }

    /// Keys of every object whose ownerReferences name this uid.
    pub fn dependents_of(&self, uid: &str) -> Vec<ObjectKey> {
        self.objects
            .iter()
            .filter(|(_, s)| meta::owner_uids(&s.object).iter().any(|u| u == uid))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether any stored object has this uid.
    pub fn uid_exists(&self, uid: &str) -> bool {
        self.objects
            .values()
            .any(|s| meta::meta_str(&s.object, "uid") == Some(uid))
    }
}
