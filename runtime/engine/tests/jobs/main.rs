//! End-to-end tests of `weir run`: the real binary, real files, real connectors.
//!
//! - `differential`: every SQL feature against a reference computation written here,
//!   independently of the engine, following Flink's documented semantics (watermark
//!   generation, window assignment, lateness, changelog rules), at parallelism 1 and 4;
//! - `bad_input`: wrong scripts, options and files fail with a clear message and a non-zero
//!   exit code, never a panic;
//! - `checkpoints`: kills, savepoints, rescaled and changed-plan restores, compared with a
//!   failure-free run;
//! - `interval_join_checkpoints`: the same for a job with an interval join (its caches and
//!   timers restored, also at another parallelism);
//! - `cluster`: `weir coordinator` and `weir worker` processes on loopback: a worker and the
//!   coordinator killed and replaced, a savepoint through the API restored on other workers,
//!   a worker with a wrong token refused;
//! - `control_api`: `weir run --api` driven by `weir job …`: status, metrics, token, cancel,
//!   stop with savepoint and restore;
//! - `watermark_alignment`: a fast source waits for the slow one of its alignment group.

mod bad_input;
mod checkpoints;
mod cluster;
mod control_api;
mod differential;
mod interval_join_checkpoints;
mod support;
mod watermark_alignment;
