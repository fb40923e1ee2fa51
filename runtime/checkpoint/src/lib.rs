//! Checkpoint and savepoint storage for Weir.
//!
//! Where a running job's state goes when it is made durable, and where a restore finds it. A
//! [`CheckpointStorage`] is a folder in an object store (a local folder, S3, GCS, Azure, or an
//! in-memory store for tests) with blocking, verified operations; [`JobCheckpoints`] is one
//! job's folder with its attempts (fencing), create-only completed checkpoints and shared
//! files (retention); [`load`] finds a checkpoint or savepoint to restore; [`metadata`] is the
//! `_metadata` format; [`mod@inspect`] and [`render`] are `weir checkpoints list/inspect`;
//! [`fault`] injects upload faults for tests. The design is `docs/checkpoints.md`.
//!
//! The API is blocking because the engine is thread-based: the crate runs `object_store` on
//! its own small tokio runtime (`runtime.rs`). Nothing here deletes or overwrites data except
//! [`CheckpointStorage::delete`], [`CheckpointStorage::put_verified`] (of a name the caller
//! made unique), [`JobCheckpoints::apply_retention`], [`JobCheckpoints::discard_files`] and
//! [`dispose_savepoint`] (a savepoint folder, checked to be one).

mod dispose;
mod error;
pub mod fault;
pub mod inspect;
mod job;
pub mod metadata;
pub mod render;
mod restore;
mod retention;
mod runtime;
mod storage;
mod uri;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod conformance_restore;

pub use dispose::{Disposed, dispose_folder, dispose_savepoint};
pub use error::Error;
pub use inspect::{CheckpointListing, Inspection, inspect, list_checkpoints};
pub use job::{JobCheckpoints, savepoint_folder_name, write_savepoint};
pub use metadata::{
    CheckpointKind, CheckpointMetadata, KeyGroupFile, KeyedStateHandle, OperatorState, RocksFile,
    SubtaskState,
};
pub use restore::{Restorable, load, load_folder, load_with_options};
pub use retention::RetentionReport;
pub use storage::{CheckpointStorage, ObjectInfo};

pub type Result<T, E = Error> = std::result::Result<T, E>;
