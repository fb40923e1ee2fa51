//! The leadership a replica holds once [`LeaderElection::acquire`] returns: whether it still
//! leads (a `watch` channel the renewing task turns `false` on loss), and the release on
//! shutdown that empties the Lease's holder so a standby takes over without waiting for expiry.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Error, Inner, LeaderElection, is_conflict};

/// The leadership this replica holds, renewed in the background until lost or released.
/// Dropping it stops renewing (the Lease then expires instead of being released) and turns
/// every [`Leadership::subscribe`] receiver `false`.
pub struct Leadership {
    pub(super) election: LeaderElection,
    pub(super) leading: watch::Sender<bool>,
    pub(super) renewing: JoinHandle<()>,
}

impl Leadership {
    /// Whether the Lease is still held (false once lost; never true again).
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// A receiver that turns `false` when leadership is lost, released or dropped.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Completes when leadership is lost. Cancel-safe; `main` selects on it to stop the
    /// controller.
    pub async fn lost(&self) {
        // `self` holds a sender, so the channel stays open while we wait.
        let _ = self.leading.subscribe().wait_for(|leading| !leading).await;
    }

    /// Stops renewing and empties the Lease's holder, so a standby replica takes over at its
    /// next retry. Call it after the controller has stopped.
    pub async fn release(mut self) -> Result<(), Error> {
        self.renewing.abort();
        self.leading.send_replace(false);
        let _ = (&mut self.renewing).await;
        let inner = &self.election.inner;
        inner
            .release()
            .await
            .map_err(|source| Error::ReleaseLease {
                namespace: inner.namespace.clone(),
                name: inner.name.clone(),
                source: Box::new(source),
            })?;
        tracing::info!(lease = %inner.name, identity = %inner.identity, "released the lease");
        Ok(())
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewing.abort();
        self.leading.send_replace(false);
    }
}

impl Inner {
    /// Empties the holder if it is still this replica, so a follower takes over at once.
    async fn release(&self) -> Result<(), kube::Error> {
        for _ in 0..3 {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else {
                return Ok(());
            };
            let mut spec = lease.spec.take().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            lease.spec = Some(spec);
            match self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
