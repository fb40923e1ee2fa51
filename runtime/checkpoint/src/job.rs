//! [`JobCheckpoints`]: one job's folder of checkpoints, attempts and shared files.
//!
//! ```text
//! <checkpoint-dir>/<job-id>/attempts/<attempt>    one empty object per run, created create-only
//! <checkpoint-dir>/<job-id>/chk-<id>/_metadata    written last, create-only: the checkpoint is complete
//! <checkpoint-dir>/<job-id>/shared/<file>         every state file of every checkpoint
//! ```
//!
//! Attempts fence old runs: a run claims the next attempt number at start, and completing a
//! checkpoint is refused once a newer attempt exists, so a zombie of an earlier run cannot
//! complete checkpoints behind the new run's back. The check and the create-only write are two
//! requests, so a run can start between them; the attempts are checked again after the write,
//! and completing then fails as fenced too. The checkpoint is complete on storage (the new run
//! may or may not have seen it when it chose what to restore), but the old run, told it is
//! fenced, neither publishes its sinks' output nor deletes old checkpoints: the new run
//! publishes that output if it restores from this checkpoint, and redoes it otherwise.
//! Retention is in `retention.rs`.

use bytes::Bytes;

use crate::metadata::{CheckpointKind, CheckpointMetadata, METADATA_FILE};
use crate::restore::Restorable;
use crate::{CheckpointStorage, Error, Result};

const ATTEMPTS: &str = "attempts";
const CHECKPOINT_PREFIX: &str = "chk-";
/// Claiming gives up after this many lost races (each means another run claimed a number).
const MAX_CLAIM_RACES: usize = 100;

/// The folder `<checkpoint-dir>/<job-id>` of one job.
#[derive(Debug, Clone)]
pub struct JobCheckpoints {
    storage: CheckpointStorage,
    job_id: String,
}

impl JobCheckpoints {
    pub fn new(checkpoint_dir: &CheckpointStorage, job_id: &str) -> Self {
        Self {
            storage: checkpoint_dir.child(job_id),
            job_id: job_id.to_owned(),
        }
    }

    /// A job whose folder is `storage` itself.
    pub(crate) fn in_folder(storage: CheckpointStorage, job_id: &str) -> Self {
        Self {
            storage,
            job_id: job_id.to_owned(),
        }
    }

    /// The job folder; the `shared/...` paths of checkpoint metadata resolve against it.
    pub fn storage(&self) -> &CheckpointStorage {
        &self.storage
    }

    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The relative path of checkpoint `id`'s `_metadata`.
    pub fn metadata_path(checkpoint_id: u64) -> String {
        format!("{CHECKPOINT_PREFIX}{checkpoint_id}/{METADATA_FILE}")
    }

    /// Claims the next attempt number: creates `attempts/<n>` create-only with n one above the
    /// highest existing (1 for a new job), retrying if another run took n first.
    pub fn claim_attempt(&self) -> Result<u64> {
        for _ in 0..MAX_CLAIM_RACES {
            let next = self.highest_attempt()?.map_or(1, |highest| highest + 1);
            if self
                .storage
                .put_create_only(&format!("{ATTEMPTS}/{next}"), Bytes::new())?
            {
                return Ok(next);
            }
        }
        Err(Error::AlreadyExists {
            uri: self.storage.uri_of(ATTEMPTS),
        })
    }

    /// The newest attempt above `attempt`, if one was claimed since.
    pub fn newer_attempt(&self, attempt: u64) -> Result<Option<u64>> {
        Ok(self.highest_attempt()?.filter(|&highest| highest > attempt))
    }

    fn highest_attempt(&self) -> Result<Option<u64>> {
        Ok(self
            .storage
            .list(ATTEMPTS)?
            .iter()
            .filter_map(|object| object.rel.strip_prefix("attempts/")?.parse::<u64>().ok())
            .max())
    }

    /// The ids of every `chk-<n>` folder, complete or not, ascending.
    fn checkpoint_ids(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = self
            .storage
            .list_dirs("")?
            .iter()
            .filter_map(|name| name.strip_prefix(CHECKPOINT_PREFIX)?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// One above the highest `chk-<n>` folder seen (complete or not), at least 1.
    pub fn next_checkpoint_id(&self) -> Result<u64> {
        Ok(self
            .checkpoint_ids()?
            .last()
            .map_or(1, |highest| highest + 1))
    }

    /// Completes a checkpoint: writes `chk-<id>/_metadata` create-only and verified, last.
    ///
    /// Refused with [`Error::Fenced`] if a newer attempt than `metadata.attempt` exists before
    /// or right after the write (then the checkpoint is complete, but the caller must act as
    /// fenced off: see the module documentation), with
    /// [`Error::AlreadyExists`] if another writer completed that id. If the written
    /// `_metadata` does not verify, it is removed again (it was this call's own, and unreadable)
    /// and [`Error::Verify`] returned: the checkpoint did not complete.
    pub fn complete(&self, metadata: &CheckpointMetadata) -> Result<()> {
        let path = Self::metadata_path(metadata.checkpoint_id);
        if metadata.kind != CheckpointKind::Checkpoint {
            // Restores resolve a chk-<n> folder's files against the job folder; a savepoint's
            // are inside its own folder, so it must not pose as a checkpoint.
            return Err(Error::NotACheckpoint {
                uri: self.storage.uri_of(&path),
                reason: "a savepoint is completed in its own folder (write_savepoint)".to_owned(),
            });
        }
        if let Some(newer) = self.newer_attempt(metadata.attempt)? {
            return Err(Error::Fenced {
                uri: self.storage.uri().to_owned(),
                attempt: metadata.attempt,
                newer,
            });
        }
        match self
            .storage
            .put_create_only(&path, Bytes::from(metadata.to_json()))
        {
            Ok(true) => match self.newer_attempt(metadata.attempt)? {
                Some(newer) => Err(Error::Fenced {
                    uri: self.storage.uri().to_owned(),
                    attempt: metadata.attempt,
                    newer,
                }),
                None => Ok(()),
            },
            Ok(false) => Err(Error::AlreadyExists {
                uri: self.storage.uri_of(&path),
            }),
            Err(err @ Error::Verify { .. }) => {
                if let Err(cleanup) = self.storage.delete(&path) {
                    tracing::warn!(uri = %self.storage.uri_of(&path), error = %cleanup,
                        "failed to remove a _metadata that did not verify");
                }
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Every complete checkpoint, ascending by id. Folders without a readable `_metadata`
    /// (in progress, failed, damaged, another job's) are skipped; damaged ones are logged.
    pub fn complete_checkpoints(&self) -> Result<Vec<CheckpointMetadata>> {
        let mut out = Vec::new();
        for id in self.checkpoint_ids()? {
            if let Some(metadata) = self.read_checkpoint(id)? {
                out.push(metadata);
            }
        }
        Ok(out)
    }

    /// The newest complete checkpoint: reads `_metadata` files from the newest folder down.
    pub fn latest_complete(&self) -> Result<Option<CheckpointMetadata>> {
        for id in self.checkpoint_ids()?.into_iter().rev() {
            if let Some(metadata) = self.read_checkpoint(id)? {
                return Ok(Some(metadata));
            }
        }
        Ok(None)
    }

    /// The newest complete checkpoint, ready to restore (`--restore latest`), its files
    /// checked like [`crate::load`] checks them.
    pub fn latest_restorable(&self) -> Result<Option<Restorable>> {
        let Some(metadata) = self.latest_complete()? else {
            return Ok(None);
        };
        let restorable = Restorable {
            location: self
                .storage
                .uri_of(&format!("{CHECKPOINT_PREFIX}{}", metadata.checkpoint_id)),
            metadata,
            root: self.storage.clone(),
        };
        restorable.check_files()?;
        Ok(Some(restorable))
    }

    /// Checkpoint `id`'s metadata, or `None` when it is missing or unreadable.
    pub(crate) fn read_checkpoint(&self, id: u64) -> Result<Option<CheckpointMetadata>> {
        let path = Self::metadata_path(id);
        let bytes = match self.storage.get(&path) {
            Ok(bytes) => bytes,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        match CheckpointMetadata::from_json(&bytes, &self.storage.uri_of(&path)) {
            Ok(metadata)
                if metadata.checkpoint_id == id && metadata.kind == CheckpointKind::Checkpoint =>
            {
                Ok(Some(metadata))
            }
            Ok(metadata) => {
                tracing::warn!(uri = %self.storage.uri_of(&path), id = metadata.checkpoint_id,
                    "skipping a _metadata that describes another checkpoint");
                Ok(None)
            }
            Err(err) => {
                tracing::warn!(error = %err, "skipping an unreadable checkpoint");
                Ok(None)
            }
        }
    }

    /// Deletes files of a checkpoint that failed, best effort: failures are logged, not
    /// returned, because a leftover file costs only space.
    pub fn discard_files(&self, files: &[String]) {
        for file in files {
            if let Err(err) = self.storage.delete(file) {
                tracing::warn!(uri = %self.storage.uri_of(file), error = %err,
                    "failed to discard a file of a failed checkpoint");
            }
        }
    }
}

/// `savepoint-<job>-<id>-<6 random hex>`: the folder name of a new savepoint, random so two
/// savepoints of the same checkpoint id never collide.
pub fn savepoint_folder_name(job_id: &str, checkpoint_id: u64) -> String {
    let suffix: u32 = rand::random::<u32>() & 0x00ff_ffff;
    format!("savepoint-{job_id}-{checkpoint_id}-{suffix:06x}")
}

/// Completes a savepoint: writes `_metadata` into the savepoint `folder` create-only and
/// verified, after all its files. [`Error::AlreadyExists`] if the folder already holds one.
pub fn write_savepoint(folder: &CheckpointStorage, metadata: &CheckpointMetadata) -> Result<()> {
    if folder.put_create_only(METADATA_FILE, Bytes::from(metadata.to_json()))? {
        Ok(())
    } else {
        Err(Error::AlreadyExists {
            uri: folder.uri_of(METADATA_FILE),
        })
    }
}
