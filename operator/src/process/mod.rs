//! Process concerns of `weir-operator`, kept out of reconcile (as kubert does): the log format
//! ([`logging`]), Prometheus metrics ([`metrics`]), the liveness, readiness and metrics endpoints
//! ([`health`]), leader election with a `coordination.k8s.io/v1` Lease ([`leader`]) and graceful
//! shutdown on SIGTERM/SIGINT ([`shutdown`]).
//!
//! Reconcile only ever touches a shared [`metrics::Metrics`] (counting results and errors); the
//! rest is wired once in `main`:
//!
//! ```text
//! logging::init(cli.log_format)?;
//! let shutdown = shutdown::Shutdown::install()?;          // before anything slow
//! let metrics = Arc::new(Metrics::new());
//! let ready = Arc::new(AtomicBool::new(false));
//! tokio::spawn(health::serve(cli.health_addr, metrics.clone(), ready.clone()));
//! let election = LeaderElection::new(client.clone(), &ns, "weir-operator",
//!                                    leader::default_identity(), LeaseTimings::default())?;
//! ready.store(true, SeqCst);                              // a standby replica is ready too
//! let leadership = tokio::select! {
//!     l = election.acquire() => l?,
//!     () = shutdown.wait() => return Ok(()),
//! };
//! metrics.set_leader(true);
//! tokio::select! {
//!     () = controller.run(...) => {}
//!     () = leadership.lost() => anyhow::bail!("lost the lease; exiting so a new pod stands by"),
//!     () = shutdown.wait() => {}                          // the controller future is dropped
//! }
//! leadership.release().await?;                            // the standby takes over at once
//! ```

pub mod health;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod shutdown;

use std::net::SocketAddr;

/// What can fail in the process plumbing. Each variant names the step; none of them is
/// retried by the caller: they end the process with a message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `WEIR_LOG` or `RUST_LOG` holds a filter tracing cannot parse.
    #[error("invalid log filter {value:?} in {var} (write e.g. `info,weir_operator=debug`)")]
    LogFilter {
        /// The variable the filter came from.
        var: &'static str,
        /// The filter as written.
        value: String,
        /// The parser's error.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global tracing subscriber was already installed.
    #[error("cannot install the log subscriber")]
    LogInit {
        /// tracing's error.
        source: tracing_subscriber::util::TryInitError,
    },
    /// The health and metrics endpoint could not listen.
    #[error("cannot listen on {addr} for /healthz, /readyz and /metrics")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The health and metrics endpoint stopped with an I/O error.
    #[error("the health and metrics endpoint failed")]
    Serve {
        /// The I/O error.
        source: std::io::Error,
    },
    /// A signal handler could not be installed.
    #[error("cannot install the {signal} handler")]
    Signal {
        /// SIGTERM or SIGINT.
        signal: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Lease timings that could elect two leaders at once.
    #[error("invalid leader election timings: {reason}")]
    LeaseTimings {
        /// Which inequality is broken.
        reason: &'static str,
    },
    /// The API server refused access to the Lease: retrying cannot help.
    #[error(
        "not allowed to {verb} lease {namespace}/{name} (the operator's role needs get, create \
         and update on coordination.k8s.io leases)"
    )]
    LeaseForbidden {
        /// The request that was refused.
        verb: &'static str,
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The API error (boxed: kube's error is large).
        source: Box<kube::Error>,
    },
    /// Releasing the Lease on shutdown failed; the standby takes over once it expires.
    #[error("cannot release lease {namespace}/{name}")]
    ReleaseLease {
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The API error (boxed: kube's error is large).
        source: Box<kube::Error>,
    },
}
