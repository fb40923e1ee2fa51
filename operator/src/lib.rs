//! `weir-operator`: the Kubernetes operator for `FlinkJob` resources (crate `weir-crds`).
//!
//! A kube-runtime controller ([`controller`]) reconciles each FlinkJob into the children it
//! owns ([`children`]: the job's SQL ConfigMap, a token Secret, the coordinator Deployment and
//! Service, the workers StatefulSet and headless Service) and drives the job through its
//! lifecycle over the coordinator's control API ([`job_client`]). Reconcile is a pipeline with
//! the I/O at the edges:
//!
//! ```text
//! observe (FlinkJob afresh, children, job status)  →  validate + plan (pure)  →  apply
//!   (write-ahead status, SSA children, job calls, events)  →  status (trigger ids)
//! ```
//!
//! [`plan`] is a pure function of what [`observe`] read, so every transition is a table test;
//! the status records each step before it is taken, so an operator restarted at any point
//! carries on and takes no savepoint twice. Process concerns (logs, metrics, health, leader
//! election, shutdown) live in [`process`], outside reconcile.

pub mod apply;
pub mod children;
pub mod controller;
pub mod error;
pub mod events;
pub mod job_client;
pub mod observe;
pub mod plan;
pub mod process;
pub mod status;

pub use error::{Error, Result};
