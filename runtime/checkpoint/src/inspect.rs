//! `weir checkpoints list <dir>` and `weir checkpoints inspect <path>`: plain data about what
//! is stored, gathered here and rendered as text tables by [`crate::render`].
//!
//! Listing reads every `_metadata` under the folder (one request each) but no state file;
//! inspecting one checkpoint also lists its files to report any that are missing.

use crate::metadata::{CheckpointKind, CheckpointMetadata, KeyedStateHandle};
use crate::restore::{folder_of, read_folder};
use crate::{CheckpointStorage, Error, JobCheckpoints, Result};

/// Everything under a checkpoint or savepoint directory.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointListing {
    pub uri: String,
    pub jobs: Vec<JobListing>,
    /// Savepoint folders found directly under the directory.
    pub savepoints: Vec<CheckpointSummary>,
}

/// One job folder and its complete checkpoints, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct JobListing {
    pub job_id: String,
    pub checkpoints: Vec<CheckpointSummary>,
}

/// One complete checkpoint or savepoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSummary {
    pub id: u64,
    pub kind: CheckpointKind,
    pub job_id: String,
    /// The `chk-<n>` or savepoint folder.
    pub location: String,
    pub attempt: u64,
    pub timestamp_ms: i64,
    pub size: u64,
    pub operators: Vec<OperatorSize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSize {
    pub uid: String,
    pub name: String,
    pub parallelism: u32,
    pub size: u64,
}

/// One checkpoint or savepoint in detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub summary: CheckpointSummary,
    pub max_parallelism: u32,
    /// The folder the file paths are relative to.
    pub root: String,
    pub operators: Vec<OperatorInspection>,
    /// Why the checkpoint could not be restored as it is (missing or damaged files), if so.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OperatorInspection {
    pub uid: String,
    pub name: String,
    pub parallelism: u32,
    pub size: u64,
    pub subtasks: Vec<SubtaskInspection>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubtaskInspection {
    pub subtask: u32,
    /// `"rocksdb"`, `"canonical"`, or `"-"` without keyed state.
    pub keyed: &'static str,
    /// The key groups held, as inclusive ranges.
    pub key_groups: Vec<(u16, u16)>,
    /// `(path relative to the root, size)`.
    pub files: Vec<(String, u64)>,
    pub size: u64,
    pub operator_state_items: usize,
    pub splits: usize,
    pub has_committable: bool,
}

/// Lists every job folder under `dir` with its complete checkpoints, and the savepoint folders
/// there. `dir` may also be a job folder itself.
pub fn list_checkpoints(dir: &str) -> Result<CheckpointListing> {
    let storage = CheckpointStorage::open(dir)?;
    let mut listing = CheckpointListing {
        uri: storage.uri().to_owned(),
        jobs: Vec::new(),
        savepoints: Vec::new(),
    };
    let folders = storage.list_dirs("")?;
    if folders
        .iter()
        .any(|name| name == "attempts" || name.starts_with("chk-"))
    {
        let job_id = storage.uri().rsplit('/').next().unwrap_or_default();
        let job = JobCheckpoints::in_folder(storage.clone(), job_id);
        listing.jobs.push(job_listing(&job)?);
        return Ok(listing);
    }
    for name in folders {
        if name.starts_with("savepoint-") {
            match read_folder(&storage.child(&name)) {
                Ok(savepoint) => listing
                    .savepoints
                    .push(summary(&savepoint.metadata, savepoint.location)),
                Err(Error::NoCheckpoint { .. } | Error::NotACheckpoint { .. }) => {}
                Err(err) => return Err(err),
            }
            continue;
        }
        let job = JobCheckpoints::new(&storage, &name);
        let job_listing = job_listing(&job)?;
        let is_job = !job_listing.checkpoints.is_empty()
            || job.storage().list_dirs("")?.iter().any(|d| d == "attempts");
        if is_job {
            listing.jobs.push(job_listing);
        }
    }
    Ok(listing)
}

fn job_listing(job: &JobCheckpoints) -> Result<JobListing> {
    let checkpoints = job
        .complete_checkpoints()?
        .iter()
        .map(|metadata| {
            let location = job
                .storage()
                .uri_of(&format!("chk-{}", metadata.checkpoint_id));
            summary(metadata, location)
        })
        .collect();
    Ok(JobListing {
        job_id: job.job_id().to_owned(),
        checkpoints,
    })
}

fn summary(metadata: &CheckpointMetadata, location: String) -> CheckpointSummary {
    CheckpointSummary {
        id: metadata.checkpoint_id,
        kind: metadata.kind,
        job_id: metadata.job_id.clone(),
        location,
        attempt: metadata.attempt,
        timestamp_ms: metadata.timestamp_ms,
        size: metadata.total_size(),
        operators: metadata
            .operators
            .iter()
            .map(|op| OperatorSize {
                uid: op.uid.clone(),
                name: op.name.clone(),
                parallelism: op.parallelism,
                size: op.total_size(),
            })
            .collect(),
    }
}

/// Inspects the checkpoint or savepoint at `uri` (a folder or its `_metadata`).
pub fn inspect(uri: &str) -> Result<Inspection> {
    let restorable = read_folder(&CheckpointStorage::open(folder_of(uri))?)?;
    let problem = match restorable.check_files() {
        Ok(()) => None,
        Err(Error::Incomplete { reason, .. }) => Some(reason),
        Err(err) => return Err(err),
    };
    let metadata = &restorable.metadata;
    let operators = metadata
        .operators
        .iter()
        .map(|op| OperatorInspection {
            uid: op.uid.clone(),
            name: op.name.clone(),
            parallelism: op.parallelism,
            size: op.total_size(),
            subtasks: op
                .subtasks
                .iter()
                .map(|subtask| {
                    let (keyed, key_groups) = match &subtask.keyed {
                        None => ("-", Vec::new()),
                        Some(KeyedStateHandle::RocksDb {
                            key_group_start,
                            key_group_end,
                            ..
                        }) => ("rocksdb", vec![(*key_group_start, *key_group_end)]),
                        Some(KeyedStateHandle::Canonical { key_groups }) => (
                            "canonical",
                            ranges(key_groups.iter().map(|kg| kg.key_group)),
                        ),
                    };
                    SubtaskInspection {
                        subtask: subtask.subtask,
                        keyed,
                        key_groups,
                        files: subtask
                            .files()
                            .into_iter()
                            .map(|(file, size)| (file.to_owned(), size))
                            .collect(),
                        size: subtask.total_size(),
                        operator_state_items: subtask.operator_state.len(),
                        splits: subtask.splits.len(),
                        has_committable: subtask
                            .committable
                            .as_ref()
                            .is_some_and(|value| !value.is_null()),
                    }
                })
                .collect(),
        })
        .collect();
    Ok(Inspection {
        summary: summary(metadata, restorable.location.clone()),
        max_parallelism: metadata.max_parallelism,
        root: restorable.root.uri().to_owned(),
        operators,
        problem,
    })
}

/// Groups key groups into inclusive ranges of consecutive values.
fn ranges(key_groups: impl Iterator<Item = u16>) -> Vec<(u16, u16)> {
    let mut sorted: Vec<u16> = key_groups.collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for key_group in sorted {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(key_group) => *end = key_group,
            _ => out.push((key_group, key_group)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_groups_are_grouped_into_ranges() {
        assert_eq!(
            ranges([9, 0, 1, 2, 5, 6, u16::MAX, 2].into_iter()),
            vec![(0, 2), (5, 6), (9, 9), (u16::MAX, u16::MAX)]
        );
        assert_eq!(ranges(std::iter::empty()), vec![]);
    }
}
