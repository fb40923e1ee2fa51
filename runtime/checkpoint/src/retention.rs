//! Retention: keep the newest complete checkpoints, delete the rest and the files only they
//! used.
//!
//! Reference counts are not stored anywhere: they are recomputed from the retained
//! checkpoints' `_metadata` each time, so they cannot drift from what restores actually need.
//! A dropped checkpoint's `_metadata` goes first, then its files: a crash in between leaves
//! orphan files (wasted space), never a complete checkpoint with missing files.
//!
//! A checkpoint in flight may reuse (by name) files of the latest complete checkpoint only,
//! as RocksDB's incremental uploads do: those are retained, so retention never deletes a file
//! an in-flight checkpoint is about to reference.

use std::collections::BTreeSet;

use crate::JobCheckpoints;
use crate::Result;

const SHARED_PREFIX: &str = "shared/";

/// What [`JobCheckpoints::apply_retention`] deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Ids of the checkpoints whose `_metadata` was deleted.
    pub deleted_checkpoints: Vec<u64>,
    /// Shared files deleted (relative to the job folder), sorted.
    pub deleted_files: Vec<String>,
    /// Files whose deletion failed (logged; they stay as orphans).
    pub failed_files: Vec<String>,
}

impl JobCheckpoints {
    /// Keeps the `retained` newest complete checkpoints (at least one is always kept): deletes
    /// the others' `_metadata`, then every `shared/` file referenced by a deleted checkpoint
    /// and by no retained one. Returns what was deleted.
    ///
    /// A `_metadata` that cannot be deleted keeps its checkpoint, and its files, retained.
    pub fn apply_retention(&self, retained: usize) -> Result<RetentionReport> {
        let retained = retained.max(1);
        let complete = self.complete_checkpoints()?;
        let drop_count = complete.len().saturating_sub(retained);
        let (dropped, kept) = complete.split_at(drop_count);

        let mut report = RetentionReport::default();
        let mut keep_files: BTreeSet<String> = kept
            .iter()
            .flat_map(|metadata| metadata.referenced_files())
            .collect();
        let mut candidates = BTreeSet::new();
        for metadata in dropped {
            let path = Self::metadata_path(metadata.checkpoint_id);
            match self.storage().delete(&path) {
                Ok(()) => {
                    report.deleted_checkpoints.push(metadata.checkpoint_id);
                    candidates.extend(metadata.referenced_files());
                    self.remove_empty_local_folder(metadata.checkpoint_id);
                }
                Err(err) => {
                    tracing::warn!(uri = %self.storage().uri_of(&path), error = %err,
                        "failed to delete an expired checkpoint; keeping it and its files");
                    keep_files.extend(metadata.referenced_files());
                }
            }
        }

        for file in candidates.difference(&keep_files) {
            // Only shared state files: a `_metadata` naming anything else (hand-edited, or a
            // bug) must not make retention delete outside `shared/` (and `..` segments are
            // escaped by the storage, so they cannot climb out of it).
            if !file.starts_with(SHARED_PREFIX) {
                tracing::warn!(file = %file, "not deleting a referenced file outside shared/");
                continue;
            }
            match self.storage().delete(file) {
                Ok(()) => report.deleted_files.push(file.clone()),
                Err(err) => {
                    tracing::warn!(uri = %self.storage().uri_of(file), error = %err,
                        "failed to delete an unreferenced checkpoint file");
                    report.failed_files.push(file.clone());
                }
            }
        }
        Ok(report)
    }

    /// On a local disk, deleting `chk-<id>/_metadata` leaves an empty folder behind (object
    /// stores have no folders); remove it so listings stay short. Best effort.
    fn remove_empty_local_folder(&self, checkpoint_id: u64) {
        if let Some(root) = self.storage().local_root() {
            // `remove_dir` only removes an empty folder, so nothing else can be lost.
            let _ = std::fs::remove_dir(root.join(format!("chk-{checkpoint_id}")));
        }
    }
}
