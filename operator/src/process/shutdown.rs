//! Graceful shutdown: SIGTERM (what the kubelet sends before killing the pod) or SIGINT (Ctrl-C)
//! becomes one [`Shutdown`] signal that every part of the process can wait on. `main` then stops
//! the controller, releases the leader Lease so the standby takes over at once, and exits 0.
//!
//! The handlers are installed synchronously by [`Shutdown::install`], so a signal arriving
//! while the operator is still starting is not lost (nor does it kill the process abruptly).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::Error;

/// Which signal asked the process to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// SIGTERM, e.g. the pod is being deleted or rolled.
    Terminate,
    /// SIGINT, e.g. Ctrl-C in a terminal.
    Interrupt,
    /// [`Shutdown::trigger`], e.g. a fatal error elsewhere in the process.
    Requested,
}

/// A shutdown signal shared by the whole process. Cheap to clone; clones see the same signal.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<Option<Reason>>,
}

impl Shutdown {
    /// A signal that only [`Shutdown::trigger`] fires; for tests and embedding.
    pub fn manual() -> Self {
        Shutdown {
            tx: watch::Sender::new(None),
        }
    }

    /// Installs the SIGTERM and SIGINT handlers now and returns the signal they fire. Needs a
    /// tokio runtime with I/O enabled (as `#[tokio::main]` builds).
    pub fn install() -> Result<Self, Error> {
        let mut terminate = signal(SignalKind::terminate()).map_err(|source| Error::Signal {
            signal: "SIGTERM",
            source,
        })?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(|source| Error::Signal {
            signal: "SIGINT",
            source,
        })?;
        let shutdown = Self::manual();
        let handle = shutdown.clone();
        tokio::spawn(async move {
            let reason = tokio::select! {
                Some(()) = terminate.recv() => Reason::Terminate,
                Some(()) = interrupt.recv() => Reason::Interrupt,
                else => return,
            };
            tracing::info!(?reason, "shutting down");
            handle.fire(reason);
        });
        Ok(shutdown)
    }

    /// Fires the signal, as a SIGTERM would.
    pub fn trigger(&self) {
        self.fire(Reason::Requested);
    }

    /// Records the first reason; later ones do not overwrite it.
    fn fire(&self, reason: Reason) {
        self.tx.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
    }

    /// Why the process is stopping, once it is.
    pub fn reason(&self) -> Option<Reason> {
        *self.tx.borrow()
    }

    /// Completes once shutdown is asked for (at once if it already was). Cancel-safe.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(Option::is_some).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn within_5s(shutdown: &Shutdown) {
        tokio::time::timeout(Duration::from_secs(5), shutdown.wait())
            .await
            .expect("shutdown signalled within 5 s");
    }

    #[tokio::test]
    async fn waiters_wake_on_trigger_and_later_waiters_return_at_once() {
        let shutdown = Shutdown::manual();
        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "nothing asked for shutdown yet");
        assert_eq!(shutdown.reason(), None);
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("not panicked");
        within_5s(&shutdown).await;
        assert_eq!(shutdown.reason(), Some(Reason::Requested));
    }

    /// Sends a real SIGTERM to this test process: the handler turns it into the signal instead
    /// of the default action (terminating the process, which would fail the test).
    #[tokio::test]
    async fn sigterm_fires_the_signal_instead_of_killing_the_process() {
        let shutdown = Shutdown::install().expect("handlers installed");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        within_5s(&shutdown).await;
        assert_eq!(shutdown.reason(), Some(Reason::Terminate));
        shutdown.trigger();
        assert_eq!(
            shutdown.reason(),
            Some(Reason::Terminate),
            "the first reason stays"
        );
    }
}
