//! Leader election with a `coordination.k8s.io/v1` Lease, so several operator replicas can run
//! and exactly one reconciles. kube-runtime 5 has no leader election of its own, and the
//! crates that offer one pin older kube versions, so this follows client-go's `leaderelection`
//! with a `LeaseLock`:
//!
//! - A candidate reads the Lease; it takes it when nobody holds it (none yet, or released with
//!   an empty holder) or when the holder's record has not changed for `leaseDurationSeconds` as
//!   measured on the candidate's own clock since it first saw that record (no trust in other
//!   machines' clocks). Taking and renewing are `PUT`s carrying the resourceVersion read, so of
//!   two candidates racing for the same version one gets 409 Conflict and stays a follower.
//! - The leader renews every `retry_period`. If no renewal succeeds within `renew_deadline` of
//!   the last one, or the Lease names another holder, it reports the loss and stops renewing.
//!   `renew_deadline < lease_duration` ensures it stops acting before anyone may take over.
//! - On shutdown [`Leadership::release`] empties the holder, so the standby takes over at its
//!   next retry instead of waiting for expiry.
//!
//! Everything here is cancel-safe: dropping [`LeaderElection::acquire`] leaves at most a Lease
//! naming this replica, which expires; dropping a [`Leadership`] stops renewing.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Error;

mod leadership;
#[cfg(test)]
mod tests;

pub use leadership::Leadership;

/// How long a Lease lasts and how often it is renewed (client-go's defaults: 15 s, 10 s, 2 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long followers wait after the Lease stopped changing before taking it over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before giving leadership up.
    pub renew_deadline: Duration,
    /// The pause between attempts, to acquire or to renew.
    pub retry_period: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        LeaseTimings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseTimings {
    /// Checks the inequalities that keep two leaders from overlapping.
    pub fn validate(&self) -> Result<(), Error> {
        let reason = if self.lease_duration <= self.renew_deadline {
            "the lease duration must be longer than the renew deadline"
        } else if self.renew_deadline <= self.retry_period {
            "the renew deadline must be longer than the retry period"
        } else if self.lease_duration.as_secs() == 0 {
            "the lease duration must be at least one second (the Lease counts whole seconds)"
        } else {
            return Ok(());
        };
        Err(Error::LeaseTimings { reason })
    }
}

/// This replica's identity in the Lease: `POD_NAME` (set from the downward API by the chart),
/// else the host name, else a name made from the process id.
pub fn default_identity() -> String {
    let non_empty = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    std::env::var("POD_NAME")
        .ok()
        .and_then(non_empty)
        .or_else(|| std::env::var("HOSTNAME").ok().and_then(non_empty))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .and_then(non_empty)
        })
        .unwrap_or_else(|| format!("weir-operator-{}", std::process::id()))
}

/// A candidate for the leadership of one Lease. Cheap to clone.
#[derive(Clone)]
pub struct LeaderElection {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    timings: LeaseTimings,
    /// The Lease record last seen and when it was first seen (for expiry on our own clock).
    observed: Mutex<Option<(Record, Instant)>>,
}

/// The outcome of one attempt to take or renew the Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    /// This replica holds the Lease now.
    Held,
    /// Another live replica holds it.
    HeldByOther,
    /// Someone else wrote the Lease between our read and our write (409): try again.
    Conflict,
}

/// The parts of a Lease whose change shows the holder is alive.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    transitions: Option<i32>,
    duration_seconds: Option<i32>,
}

impl Record {
    fn of(spec: &LeaseSpec) -> Self {
        Record {
            holder: spec.holder_identity.clone().filter(|h| !h.is_empty()),
            renew_time: spec.renew_time.clone(),
            transitions: spec.lease_transitions,
            duration_seconds: spec.lease_duration_seconds,
        }
    }
}

impl LeaderElection {
    /// A candidate for Lease `namespace/name` under `identity`, which must be unique per replica.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: impl Into<String>,
        timings: LeaseTimings,
    ) -> Result<Self, Error> {
        timings.validate()?;
        Ok(LeaderElection {
            inner: Arc::new(Inner {
                api: Api::namespaced(client, namespace),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                identity: identity.into(),
                timings,
                observed: Mutex::new(None),
            }),
        })
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// Waits until this replica holds the Lease, then keeps renewing it in a background task.
    /// Transient API errors are logged and retried; only a refusal (401/403) is returned.
    pub async fn acquire(&self) -> Result<Leadership, Error> {
        let inner = &self.inner;
        tracing::info!(lease = %inner.name, identity = %inner.identity, "waiting for leadership");
        loop {
            match inner.try_acquire_or_renew().await {
                Ok(Attempt::Held) => break,
                Ok(Attempt::HeldByOther | Attempt::Conflict) => {}
                Err(e) => inner.fatal_or_log(e, "acquire")?,
            }
            tokio::time::sleep(jittered(inner.timings.retry_period)).await;
        }
        tracing::info!(lease = %inner.name, identity = %inner.identity, "became the leader");
        let leading = watch::Sender::new(true);
        let renewing = tokio::spawn(inner.clone().renew(leading.clone()));
        Ok(Leadership {
            election: self.clone(),
            leading,
            renewing,
        })
    }
}

impl Inner {
    /// One attempt: create the Lease, renew it, or take it over when free or expired.
    async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let duration_seconds =
            i32::try_from(self.timings.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => Ok(self.observe(&created)),
                Err(e) if is_conflict(&e) => Ok(Attempt::Conflict),
                Err(e) => Err(e),
            };
        };
        let expired = self.observe_expired(&lease);
        let mut spec = lease.spec.take().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        let ours = holder == Some(self.identity.as_str());
        if !ours && holder.is_some() && !expired {
            return Ok(Attempt::HeldByOther);
        }
        if !ours {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            spec.holder_identity = Some(self.identity.clone());
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(duration_seconds);
        lease.spec = Some(spec);
        // The resourceVersion read above rides along: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => Ok(self.observe(&updated)),
            Err(e) if is_conflict(&e) => Ok(Attempt::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Records a Lease this replica just wrote.
    fn observe(&self, lease: &Lease) -> Attempt {
        let record = Record::of(lease.spec.as_ref().unwrap_or(&LeaseSpec::default()));
        let ours = record.holder.as_deref() == Some(self.identity.as_str());
        *self.lock_observed() = Some((record, Instant::now()));
        if ours {
            Attempt::Held
        } else {
            Attempt::HeldByOther
        }
    }

    /// Whether `lease` has stood unchanged for its duration on this replica's clock.
    fn observe_expired(&self, lease: &Lease) -> bool {
        let record = Record::of(lease.spec.as_ref().unwrap_or(&LeaseSpec::default()));
        let seconds = record.duration_seconds.and_then(|s| u64::try_from(s).ok());
        let duration = seconds.map_or(self.timings.lease_duration, Duration::from_secs);
        let mut observed = self.lock_observed();
        match &*observed {
            Some((seen, since)) if *seen == record => since.elapsed() >= duration,
            _ => {
                *observed = Some((record, Instant::now()));
                false
            }
        }
    }

    fn lock_observed(&self) -> MutexGuard<'_, Option<(Record, Instant)>> {
        self.observed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns refusals as errors (retrying cannot help); logs anything else.
    fn fatal_or_log(&self, error: kube::Error, verb: &'static str) -> Result<(), Error> {
        if let kube::Error::Api(status) = &error
            && (status.code == 401 || status.code == 403)
        {
            return Err(Error::LeaseForbidden {
                verb,
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                source: Box::new(error),
            });
        }
        tracing::warn!(lease = %self.name, %error, "cannot {verb} the lease; retrying");
        Ok(())
    }

    /// Renews until a renewal fails to succeed within the deadline or another holder shows up,
    /// then sends `false` once and returns.
    async fn renew(self: Arc<Self>, leading: watch::Sender<bool>) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.timings.retry_period).await;
            let deadline = last_renewal + self.timings.renew_deadline;
            // Counted from before the write, so never later than when followers saw it.
            let started = Instant::now();
            let outcome = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
            match outcome {
                Ok(Ok(Attempt::Held)) => last_renewal = started,
                Ok(Ok(Attempt::HeldByOther)) => {
                    tracing::warn!(lease = %self.name, "another replica holds the lease");
                    break;
                }
                Ok(Ok(Attempt::Conflict)) => {
                    tracing::debug!(lease = %self.name, "renewal conflicted; retrying");
                }
                Ok(Err(error)) => {
                    tracing::warn!(lease = %self.name, %error, "cannot renew the lease")
                }
                Err(_elapsed) => {}
            }
            if Instant::now() >= deadline {
                tracing::warn!(lease = %self.name, "no renewal within the renew deadline");
                break;
            }
        }
        tracing::error!(lease = %self.name, identity = %self.identity, "lost leadership");
        leading.send_replace(false);
    }
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// `period` plus up to 20 % (client-go's jitter factor), so candidates do not retry in step.
fn jittered(period: Duration) -> Duration {
    period + period.mul_f64(rand::random::<f64>() * 0.2)
}
