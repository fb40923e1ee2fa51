//! Weir's streaming runtime: Flink SQL in, a parallel dataflow of Arrow batches out.
//!
//! - [`sql`] parses a Flink SQL script and plans it into a [`dataflow::graph::JobGraph`];
//! - [`dataflow`] runs the graph: tasks on threads, keyed exchanges, watermarks;
//! - [`operators`] are the stream operators (projection, filter, windows, aggregates);
//! - [`checkpoint`] takes checkpoints and savepoints of a running job and restores them;
//! - [`connectors`] are the sources and sinks;
//! - [`job`] ties them together for `weir run`.

pub mod bench;
pub mod catalog;
pub mod checkpoint;
pub mod cluster;
pub mod connectors;
pub mod dataflow;
pub mod error;
pub mod job;
pub mod operators;
pub mod sql;
pub mod types;

pub use error::{Error, Result};
