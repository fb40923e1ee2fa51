//! The Flink SQL front end: script parsing, window TVFs, functions, and planning.

pub mod context;
pub mod planner;

pub mod functions;
pub mod parser;
pub mod window_tvf;
