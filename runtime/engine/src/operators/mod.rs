//! Stream operators, one per file.

pub mod calc;
pub mod union;
pub mod watermark_assigner;
pub mod window_assign;
pub mod join;
pub mod regular_join;
pub mod interval_join;
pub mod window_join;
pub mod aggregate;
pub mod window_aggregate;
pub mod group_aggregate;
