//! Weir's wire protocols, generated from `runtime/rpc/proto`, and the job control API built
//! on them.
//!
//! The control API (`docs/control-api.md`) serves one job's status, checkpoints, savepoints,
//! cancel, upgrade compatibility checks and savepoint disposal over gRPC
//! (`weir.control.v1.JobControl`) and the same as JSON over HTTP, with
//! Prometheus `/metrics` and the `/healthz` / `/readyz` probes, on one listener:
//!
//! - domain code implements [`JobControl`] (synchronous: the engine is thread-based);
//! - [`ControlServer::start`] serves it from a thread of its own, [`serve`] on a runtime the
//!   caller owns;
//! - [`ControlClient`] (async) and [`BlockingClient`] are its typed clients;
//! - [`Token`], [`RequireToken`] and [`AttachToken`] carry the shared token, for this API and
//!   for the coordinator/worker protocol ([`cluster`]).
//!
//! This crate knows nothing of the engine, so the Kubernetes operator can be a client
//! without depending on it.

pub mod cluster {
    //! The coordinator/worker protocol.
    tonic::include_proto!("weir.cluster.v1");
}

pub mod control {
    //! The generated `weir.control.v1` messages, client and server.
    tonic::include_proto!("weir.control.v1");
}

mod client;
mod convert;
mod error;
mod http;
pub mod metrics;
pub mod model;
mod server;
mod service;
mod tls;
mod token;

#[cfg(test)]
mod tests;

pub use client::{BlockingClient, ClientConfig, ControlClient};
pub use error::{Error, Result};
pub use http::router;
pub use model::{
    Checkpoint, CheckpointKind, CheckpointStatus, Checkpoints, Compatibility, CompatibilityRequest,
    DisposeSavepointRequest, Job, JobState, Operator, Savepoint, SavepointRequest, SavepointStatus,
    SavepointTriggered,
};
pub use server::{ControlServer, ServerConfig, TlsFiles, serve};
pub use service::{GrpcService, JobControl};
pub use tls::{client_tls, server_tls};
pub use token::{AUTHORIZATION, AttachToken, RequireToken, Token};
