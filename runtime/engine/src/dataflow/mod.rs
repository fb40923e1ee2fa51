//! The dataflow: messages, the operator trait, key groups, the job graph, and the executor
//! that runs it.

pub mod alignment;
pub mod exchange;
pub mod executor;
pub mod graph;
pub mod key_group;
pub mod message;
pub mod metrics;
pub mod operator;
pub mod remote;
pub mod start_gate;
pub mod state;
pub mod task;
pub mod watermark;
