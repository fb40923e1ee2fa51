//! [`load`]: find, read and check a checkpoint or savepoint to restore from.
//!
//! `--restore` takes a `chk-<n>` folder, a savepoint folder, or either's `_metadata`. The
//! metadata's file paths are relative to the job folder (the `chk-<n>` folder's parent) for
//! checkpoints and to the savepoint folder itself for savepoints; [`Restorable::root`] is that
//! folder. Before handing it over, `load` lists the files and checks that every referenced one
//! is there with its recorded size, so a damaged or half-copied checkpoint fails the start with
//! a clear message instead of failing one task later.

use std::collections::BTreeMap;

use crate::metadata::{CheckpointKind, CheckpointMetadata, METADATA_FILE};
use crate::{CheckpointStorage, Error, Result};

/// A checkpoint or savepoint ready to restore from.
#[derive(Debug, Clone)]
pub struct Restorable {
    pub metadata: CheckpointMetadata,
    /// The folder the metadata's relative file paths resolve against.
    pub root: CheckpointStorage,
    /// The `chk-<n>` or savepoint folder, for messages and logs.
    pub location: String,
}

/// Loads the checkpoint or savepoint at `uri` (a folder or its `_metadata`), with credentials
/// and endpoints from the environment.
pub fn load(uri: &str) -> Result<Restorable> {
    load_with_options(uri, &[])
}

/// [`load`] with `object_store` options overriding the environment (see
/// [`CheckpointStorage::open_with_options`]).
pub fn load_with_options(uri: &str, options: &[(&str, &str)]) -> Result<Restorable> {
    let folder = CheckpointStorage::open_with_options(folder_of(uri), options)?;
    load_folder(&folder)
}

/// The folder a restore or inspect `uri` names: `uri` without a trailing `/_metadata`.
pub(crate) fn folder_of(uri: &str) -> &str {
    let trimmed = uri.trim().trim_end_matches('/');
    match trimmed.strip_suffix(METADATA_FILE) {
        Some("") => ".",
        Some(folder) if folder.ends_with('/') => folder.trim_end_matches('/'),
        _ => trimmed,
    }
}

/// Loads the checkpoint or savepoint in `folder`.
pub fn load_folder(folder: &CheckpointStorage) -> Result<Restorable> {
    let restorable = read_folder(folder)?;
    restorable.check_files()?;
    Ok(restorable)
}

/// Reads the metadata of `folder` without checking the files (inspection shows what is wrong
/// rather than failing).
pub(crate) fn read_folder(folder: &CheckpointStorage) -> Result<Restorable> {
    let bytes = match folder.get(METADATA_FILE) {
        Ok(bytes) => bytes,
        Err(Error::NotFound { .. }) => {
            return Err(Error::NoCheckpoint {
                uri: folder.uri().to_owned(),
            });
        }
        Err(err) => return Err(err),
    };
    let metadata = CheckpointMetadata::from_json(&bytes, &folder.uri_of(METADATA_FILE))?;
    let root = match metadata.kind {
        CheckpointKind::Savepoint => folder.clone(),
        CheckpointKind::Checkpoint => folder.parent().ok_or_else(|| Error::NotACheckpoint {
            uri: folder.uri().to_owned(),
            reason: "a checkpoint's chk-<n> folder must be inside its job folder".to_owned(),
        })?,
    };
    Ok(Restorable {
        metadata,
        root,
        location: folder.uri().to_owned(),
    })
}

impl Restorable {
    /// Checks that every referenced file exists under [`root`](Self::root) with its recorded
    /// size (one listing per top-level folder the files are in).
    pub fn check_files(&self) -> Result<()> {
        let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
        for subtask in self.metadata.operators.iter().flat_map(|op| &op.subtasks) {
            expected.extend(subtask.files());
        }
        let folders: std::collections::BTreeSet<&str> = expected
            .keys()
            .map(|file| file.split_once('/').map_or("", |(folder, _)| folder))
            .collect();
        let mut stored = BTreeMap::new();
        for folder in folders {
            for object in self.root.list(folder)? {
                stored.insert(object.rel, object.size);
            }
        }
        let bad: Vec<String> = expected
            .iter()
            .filter(|(file, size)| stored.get(**file) != Some(*size))
            .map(|(file, size)| match stored.get(*file) {
                None => format!("{file} (missing)"),
                Some(actual) => format!("{file} ({actual} bytes, expected {size})"),
            })
            .collect();
        match bad.first() {
            None => Ok(()),
            Some(first) => Err(Error::Incomplete {
                uri: self.location.clone(),
                reason: format!(
                    "{} of {} referenced files are missing or damaged, e.g. {first} under {}{}",
                    bad.len(),
                    expected.len(),
                    self.root.uri(),
                    match self.metadata.kind {
                        CheckpointKind::Checkpoint =>
                            " (checkpoints cannot be moved out of their job folder; savepoints can)",
                        CheckpointKind::Savepoint => "",
                    }
                ),
            }),
        }
    }
}
