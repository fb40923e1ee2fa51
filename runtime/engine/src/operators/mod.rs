//! Stream operators, one per file.

pub mod aggregate;
pub mod calc;
pub mod group_aggregate;
pub mod interval_join;
pub mod join;
pub mod regular_join;
pub mod union;
pub mod watermark_assigner;
pub mod window_aggregate;
pub mod window_assign;
pub mod window_join;
