//! RocksDB native checkpoints: the snapshots of [`RocksDbBackend`], and reading them back.
//!
//! A checkpoint is a folder of hard links to the database's live SST files plus a fresh
//! MANIFEST, CURRENT and OPTIONS. SST files are immutable and their numbers never repeat within
//! a database, so two checkpoints of the same backend share every SST file that no flush or
//! compaction replaced in between: the engine uploads each SST name once and later checkpoints
//! refer to the earlier upload (incremental checkpoints). The hard links also keep the
//! snapshot's files alive while the live database compacts them away, so the snapshot stays a
//! point-in-time view until the caller deletes the folder.

use std::io;
use std::path::Path;

use rocksdb::DB;
use rocksdb::checkpoint::Checkpoint;

use super::{RocksDbBackend, db_options};
use crate::{Error, LocalSnapshot, Result};

impl RocksDbBackend {
    /// Opens a checkpoint folder read-only (one made by [`StateBackend::snapshot`] and
    /// downloaded, for example), to read the key groups a rescaled task takes over.
    ///
    /// Writes, flushes and snapshots of a read-only backend fail with RocksDB's "not supported
    /// in read only mode".
    ///
    /// [`StateBackend::snapshot`]: crate::StateBackend::snapshot
    pub fn open_read_only(dir: &Path) -> Result<Self> {
        // RocksDB would create a missing folder for its info log before failing; a restore
        // pointed at the wrong place should leave nothing behind.
        if !dir.join("CURRENT").is_file() {
            return Err(Error::NoCheckpoint {
                path: dir.to_owned(),
            });
        }
        let db =
            DB::open_for_read_only(&db_options(), dir, false).map_err(|source| Error::Open {
                path: dir.to_owned(),
                source,
            })?;
        Ok(Self::with_db(db, dir))
    }
}

/// Makes a checkpoint of `db` (at `db_path`) in `scratch`, which must be empty or missing.
///
/// The caller flushes first: the backend writes without a WAL, so unflushed writes would be
/// missing from the checkpoint.
pub(super) fn create(db: &DB, db_path: &Path, scratch: &Path) -> Result<LocalSnapshot> {
    prepare_scratch(scratch)?;
    let snapshot_error = |source| Error::Snapshot {
        path: db_path.to_owned(),
        scratch: scratch.to_owned(),
        source,
    };
    Checkpoint::new(db)
        .and_then(|checkpoint| checkpoint.create_checkpoint(scratch))
        .map_err(snapshot_error)?;

    let scratch_error = |source| Error::Scratch {
        path: scratch.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for dir_entry in std::fs::read_dir(scratch).map_err(scratch_error)? {
        let dir_entry = dir_entry.map_err(scratch_error)?;
        if dir_entry.file_type().map_err(scratch_error)?.is_file() {
            files.push(dir_entry.file_name().to_string_lossy().into_owned());
        }
    }
    files.sort();
    Ok(LocalSnapshot::RocksDb {
        dir: scratch.to_owned(),
        files,
    })
}

/// RocksDB creates the checkpoint folder itself and refuses an existing one, so an existing
/// empty `scratch` is removed; its parent is created so RocksDB can create `scratch` in it.
fn prepare_scratch(scratch: &Path) -> Result<()> {
    let scratch_error = |source| Error::Scratch {
        path: scratch.to_owned(),
        source,
    };
    match std::fs::read_dir(scratch) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::ScratchNotEmpty {
                    path: scratch.to_owned(),
                });
            }
            std::fs::remove_dir(scratch).map_err(scratch_error)?;
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(scratch_error(err)),
    }
    if let Some(parent) = scratch.parent() {
        std::fs::create_dir_all(parent).map_err(scratch_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{StateBackend, StateId};

    const STATE: StateId = StateId(1);

    fn rocks_files(snapshot: &LocalSnapshot) -> (&Path, &[String]) {
        match snapshot {
            LocalSnapshot::RocksDb { dir, files } => (dir, files),
            LocalSnapshot::Entries(_) => panic!("rocksdb backend made an in-memory snapshot"),
        }
    }

    fn ssts(snapshot: &LocalSnapshot) -> BTreeSet<String> {
        snapshot.sst_files().map(str::to_owned).collect()
    }

    fn write_batch_of(backend: &mut RocksDbBackend, batch: u32, count: u32) {
        for i in 0..count {
            let key = format!("key-{batch}-{i:05}");
            backend
                .put(STATE, (i % 64) as u16, key.as_bytes(), &[batch as u8; 100])
                .expect("put");
        }
    }

    #[test]
    fn snapshot_folder_holds_ssts_and_manifest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut backend = RocksDbBackend::open(&dir.path().join("db")).expect("open");
        write_batch_of(&mut backend, 0, 100);
        let scratch = dir.path().join("snapshots").join("chk-1");
        let snapshot = backend.snapshot(&scratch).expect("snapshot");
        let (snapshot_dir, files) = rocks_files(&snapshot);
        assert_eq!(snapshot_dir, scratch);
        assert!(files.iter().any(|f| f == "CURRENT"), "{files:?}");
        assert!(
            files.iter().any(|f| f.starts_with("MANIFEST-")),
            "{files:?}"
        );
        assert_eq!(ssts(&snapshot).len(), 1, "one flush, one SST: {files:?}");
        for file in files {
            assert!(scratch.join(file).is_file(), "{file} listed but missing");
        }
    }

    #[test]
    fn second_snapshot_after_a_small_write_reuses_the_first_snapshots_ssts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut backend = RocksDbBackend::open(&dir.path().join("db")).expect("open");
        // Two flushed batches: two L0 files, below RocksDB's compaction trigger of four, so no
        // background compaction can rewrite them between the snapshots.
        write_batch_of(&mut backend, 0, 2_000);
        backend.flush().expect("flush");
        write_batch_of(&mut backend, 1, 2_000);
        let first = backend
            .snapshot(&dir.path().join("chk-1"))
            .expect("snapshot 1");

        backend.put(STATE, 3, b"small", b"write").expect("put");
        let second = backend
            .snapshot(&dir.path().join("chk-2"))
            .expect("snapshot 2");

        let (first_ssts, second_ssts) = (ssts(&first), ssts(&second));
        assert_eq!(first_ssts.len(), 2, "{first_ssts:?}");
        assert!(
            first_ssts.is_subset(&second_ssts),
            "every SST of the first snapshot is shared: {first_ssts:?} vs {second_ssts:?}"
        );
        assert_eq!(second_ssts.difference(&first_ssts).count(), 1);
    }

    #[test]
    fn read_only_open_of_a_copied_snapshot_sees_exactly_the_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut backend = RocksDbBackend::open(&dir.path().join("db")).expect("open");
        backend.put(STATE, 1, b"kept", b"old").expect("put");
        backend.put(STATE, 2, b"deleted-later", b"v").expect("put");
        let snapshot = backend
            .snapshot(&dir.path().join("chk-1"))
            .expect("snapshot");

        // The live database moves on, compacts, and even drops the snapshot's keys.
        backend.put(STATE, 1, b"kept", b"new").expect("put");
        backend.delete(STATE, 2, b"deleted-later").expect("delete");
        backend.put(STATE, 9, b"added-later", b"v").expect("put");
        backend.flush().expect("flush");
        backend.db.compact_range(None::<&[u8]>, None::<&[u8]>);

        // Copy the files the way a download would: plain copies, no hard links.
        let (snapshot_dir, files) = rocks_files(&snapshot);
        let copy = dir.path().join("downloaded");
        std::fs::create_dir(&copy).expect("mkdir");
        for file in files {
            std::fs::copy(snapshot_dir.join(file), copy.join(file)).expect("copy");
        }
        std::fs::remove_dir_all(snapshot_dir).expect("caller removes the snapshot dir");

        let restored = RocksDbBackend::open_read_only(&copy).expect("open read-only");
        assert_eq!(
            restored.scan_state(STATE).expect("scan"),
            vec![
                (1, b"kept".to_vec(), b"old".to_vec()),
                (2, b"deleted-later".to_vec(), b"v".to_vec()),
            ]
        );
        let mut restored = restored;
        let err = restored.put(STATE, 1, b"k", b"v").expect_err("read-only");
        assert!(matches!(err, Error::Write { .. }), "{err:?}");
    }

    #[test]
    fn a_non_empty_scratch_directory_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut backend = RocksDbBackend::open(&dir.path().join("db")).expect("open");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).expect("mkdir");
        std::fs::write(scratch.join("precious"), b"x").expect("write");
        let err = backend.snapshot(&scratch).expect_err("not empty");
        assert!(matches!(err, Error::ScratchNotEmpty { .. }), "{err:?}");
        assert!(err.to_string().contains("scratch"), "{err}");
        assert!(scratch.join("precious").is_file());

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        backend
            .snapshot(&empty)
            .expect("an existing empty directory is fine");
    }

    #[test]
    fn opening_a_missing_folder_read_only_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("never-downloaded");
        let err = RocksDbBackend::open_read_only(&missing).expect_err("missing");
        assert!(matches!(err, Error::NoCheckpoint { .. }), "{err:?}");
        assert!(err.to_string().contains("never-downloaded"), "{err}");
        assert!(
            !missing.exists(),
            "read-only open must not create the folder"
        );
    }
}
