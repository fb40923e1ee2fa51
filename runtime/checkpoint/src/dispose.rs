//! [`dispose_savepoint`]: delete a savepoint folder, and nothing else.
//!
//! The folder must hold a `_metadata` whose kind is `savepoint` (a savepoint's files all live
//! in its own folder, so deleting the folder cannot break another snapshot); a checkpoint's
//! `chk-<n>` folder, a job folder, or a folder of other data is refused before anything is
//! deleted. The files go first and `_metadata` last, so a disposal cut short leaves a folder
//! that is still recognisably a savepoint and can be disposed again. A folder that is already
//! empty (disposed before) is a success: disposal is idempotent.

use crate::metadata::{CheckpointKind, CheckpointMetadata, METADATA_FILE};
use crate::restore::folder_of;
use crate::{CheckpointStorage, Error, Result};

/// What [`dispose_savepoint`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposed {
    /// The savepoint's objects were deleted, `_metadata` included.
    Deleted { objects: usize },
    /// Nothing was there: disposed before (or never written).
    AlreadyGone,
}

/// Deletes the savepoint at `uri` (its folder or its `_metadata`), with credentials and
/// endpoints from the environment. Refuses ([`Error::NotASavepoint`]) anything that is not a
/// savepoint folder.
pub fn dispose_savepoint(uri: &str) -> Result<Disposed> {
    let folder = CheckpointStorage::open(folder_of(uri))?;
    dispose_folder(&folder)
}

/// [`dispose_savepoint`] of an opened folder.
pub fn dispose_folder(folder: &CheckpointStorage) -> Result<Disposed> {
    let refuse = |reason: &str| Error::NotASavepoint {
        uri: folder.uri().to_owned(),
        reason: reason.to_owned(),
    };
    let objects = folder.list("")?;
    let bytes = match folder.get(METADATA_FILE) {
        Ok(bytes) => bytes,
        Err(Error::NotFound { .. }) if objects.is_empty() => {
            remove_empty_local_folders(folder);
            return Ok(Disposed::AlreadyGone);
        }
        Err(Error::NotFound { .. }) => return Err(refuse("it has no _metadata")),
        Err(err) => return Err(err),
    };
    let metadata = CheckpointMetadata::from_json(&bytes, &folder.uri_of(METADATA_FILE))
        .map_err(|e| refuse(&format!("its _metadata cannot be read ({e})")))?;
    if metadata.kind != CheckpointKind::Savepoint {
        return Err(refuse(
            "its _metadata is a checkpoint's (checkpoints are removed by retention)",
        ));
    }
    if let Some(nested) = objects
        .iter()
        .find(|o| o.rel != METADATA_FILE && o.rel.ends_with(&format!("/{METADATA_FILE}")))
    {
        return Err(refuse(&format!(
            "it holds another snapshot ({})",
            folder.uri_of(&nested.rel)
        )));
    }
    let mut deleted = 0;
    for object in objects.iter().filter(|o| o.rel != METADATA_FILE) {
        folder.delete(&object.rel)?;
        deleted += 1;
    }
    folder.delete(METADATA_FILE)?;
    remove_empty_local_folders(folder);
    Ok(Disposed::Deleted {
        objects: deleted + 1,
    })
}

/// On a local disk, deleting the objects leaves empty folders (object stores have none);
/// remove them, the savepoint folder included. Best effort; `remove_dir` only removes empty
/// folders, so nothing else can be lost.
fn remove_empty_local_folders(folder: &CheckpointStorage) {
    fn remove(dir: &std::path::Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&entry.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    if let Some(root) = folder.local_root() {
        remove(root);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn snapshot(kind: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"format_version": 1, "job_id": "j", "checkpoint_id": 3, "attempt": 1, "kind": "{kind}",
                "timestamp_ms": 1763780000000, "max_parallelism": 128, "operators": []}}"#
        ))
    }

    fn folder(dir: &std::path::Path, name: &str, kind: Option<&str>) -> CheckpointStorage {
        let folder = CheckpointStorage::open(dir.join(name).to_str().unwrap()).unwrap();
        folder
            .put_verified("op/0/state.sst", Bytes::from_static(b"x"))
            .unwrap();
        if let Some(kind) = kind {
            folder.put_verified(METADATA_FILE, snapshot(kind)).unwrap();
        }
        folder
    }

    #[test]
    fn a_savepoint_folder_is_deleted_and_disposing_it_again_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        folder(dir.path(), "savepoint-j-3", Some("savepoint"));
        let uri = format!("file://{}/savepoint-j-3", dir.path().display());
        assert_eq!(
            dispose_savepoint(&uri).unwrap(),
            Disposed::Deleted { objects: 2 }
        );
        assert!(!dir.path().join("savepoint-j-3").exists());
        assert_eq!(dispose_savepoint(&uri).unwrap(), Disposed::AlreadyGone);
        let metadata = format!("{uri}/_metadata");
        assert_eq!(dispose_savepoint(&metadata).unwrap(), Disposed::AlreadyGone);
    }

    #[test]
    fn a_checkpoint_or_a_folder_without_metadata_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        folder(dir.path(), "j/chk-3", Some("checkpoint"));
        folder(dir.path(), "data", None);
        for name in ["j/chk-3", "data", "j"] {
            let path = dir.path().join(name);
            let err = dispose_savepoint(path.to_str().unwrap()).unwrap_err();
            assert!(matches!(err, Error::NotASavepoint { .. }), "{name}: {err}");
            assert!(err.to_string().contains("not a savepoint"), "{err}");
        }
        assert!(dir.path().join("j/chk-3/op/0/state.sst").exists());
        assert!(dir.path().join("data/op/0/state.sst").exists());
    }
}
