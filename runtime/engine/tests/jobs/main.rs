//! End-to-end tests of `weir run`: the real binary, real files, real connectors.
//!
//! - `differential`: every SQL feature against a reference computation written here,
//!   independently of the engine, following Flink's documented semantics (watermark
//!   generation, window assignment, lateness, changelog rules), at parallelism 1 and 4;
//! - `bad_input`: wrong scripts, options and files fail with a clear message and a non-zero
//!   exit code, never a panic;
//! - `checkpoints`: kills, savepoints, rescaled and changed-plan restores, compared with a
//!   failure-free run.

mod bad_input;
mod checkpoints;
mod differential;
mod support;
