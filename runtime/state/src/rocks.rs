//! [`RocksDbBackend`]: keyed state in one RocksDB instance per task.
//!
//! Keys are the encoded `[key group][state id][user key]` bytes of [`crate::encode_key`] in the
//! default column family, so a key-group range is one contiguous key range on disk. Operators
//! write through to it in batches from their in-memory state, so the tuning is for a
//! write-through cache: RocksDB's default write buffers, lz4 compression and no write-ahead log.
//! Snapshots are RocksDB native checkpoints (the `checkpoint` submodule).

mod checkpoint;
mod load;

pub use load::{LoadSink, SortedFiles};

use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use rocksdb::{
    DB, DBCompressionType, DBRawIterator, Options, ReadOptions, WriteBatch, WriteOptions,
};

use crate::key::{key_group_bounds, key_prefix, prefix_successor, user_key_bounds};
use crate::{
    Entry, Error, KeyGroup, LocalSnapshot, Result, StateBackend, StateId, WriteOp, decode_key,
    encode_key,
};

/// Keyed state in a RocksDB database owned by one task.
pub struct RocksDbBackend {
    db: DB,
    path: PathBuf,
    write_opts: WriteOptions,
}

impl RocksDbBackend {
    /// Opens the database in `path`, creating the directory and the database if missing.
    ///
    /// Reopening a directory sees everything written before the last [`StateBackend::flush`]
    /// (and, after a clean close, everything written at all).
    pub fn open(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(|source| Error::CreateDir {
            path: path.to_owned(),
            source,
        })?;

        let mut opts = db_options();
        opts.create_if_missing(true);
        let db = DB::open(&opts, path).map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::with_db(db, path))
    }

    fn with_db(db: DB, path: &Path) -> Self {
        // No write-ahead log: state becomes durable through checkpoints, which snapshot the
        // database after a flush, not through RocksDB's own crash recovery. After a crash the task
        // restores from the last checkpoint and discards this directory, so logging every write
        // would only cost I/O.
        let mut write_opts = WriteOptions::default();
        write_opts.disable_wal(true);
        Self {
            db,
            path: path.to_owned(),
            write_opts,
        }
    }

    /// The directory holding this database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_error(&self, source: rocksdb::Error) -> Error {
        Error::Read {
            path: self.path.clone(),
            source,
        }
    }

    fn write_error(&self, source: rocksdb::Error) -> Error {
        Error::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// The iterator's status once it is no longer valid: the end of the range, or a read error.
    fn finish(&self, iter: &DBRawIterator<'_>) -> Result<()> {
        iter.status().map_err(|source| self.read_error(source))
    }
}

/// The options every database of this backend is opened with.
fn db_options() -> Options {
    let mut opts = Options::default();
    opts.set_compression_type(DBCompressionType::Lz4);
    opts
}

impl fmt::Debug for RocksDbBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksDbBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StateBackend for RocksDbBackend {
    fn get(&self, state: StateId, key_group: KeyGroup, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let value = self
            .db
            .get_pinned(encode_key(key_group, state, key))
            .map_err(|source| self.read_error(source))?;
        Ok(value.map(|slice| slice.to_vec()))
    }

    fn put(&mut self, state: StateId, key_group: KeyGroup, key: &[u8], value: &[u8]) -> Result<()> {
        self.db
            .put_opt(encode_key(key_group, state, key), value, &self.write_opts)
            .map_err(|source| self.write_error(source))
    }

    fn delete(&mut self, state: StateId, key_group: KeyGroup, key: &[u8]) -> Result<()> {
        self.db
            .delete_opt(encode_key(key_group, state, key), &self.write_opts)
            .map_err(|source| self.write_error(source))
    }

    /// Applies `ops` as one atomic RocksDB write batch.
    fn write_batch(&mut self, ops: Vec<WriteOp>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                WriteOp::Put {
                    state,
                    key_group,
                    key,
                    value,
                } => batch.put(encode_key(key_group, state, &key), value),
                WriteOp::Delete {
                    state,
                    key_group,
                    key,
                } => batch.delete(encode_key(key_group, state, &key)),
            }
        }
        self.db
            .write_opt(batch, &self.write_opts)
            .map_err(|source| self.write_error(source))
    }

    /// One range tombstone (`DeleteRange`), written without the WAL like every other write.
    fn delete_range(
        &mut self,
        state: StateId,
        key_group: KeyGroup,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<()> {
        let (lower, upper) = user_key_bounds(key_group, state, start, end);
        let Some(upper) = upper else {
            // The last state of the last key group has no encoded upper bound: delete the
            // entries one by one (never reached with key groups below `u16::MAX`).
            let keys: Vec<Vec<u8>> = self
                .scan_prefix(state, key_group, b"")?
                .into_iter()
                .map(|(key, _)| key)
                .filter(|key| key.as_slice() >= start)
                .collect();
            let ops = keys
                .into_iter()
                .map(|key| WriteOp::Delete {
                    state,
                    key_group,
                    key,
                })
                .collect();
            return self.write_batch(ops);
        };
        if upper <= lower {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        batch.delete_range(lower, upper);
        self.db
            .write_opt(batch, &self.write_opts)
            .map_err(|source| self.write_error(source))
    }

    fn scan_prefix(
        &self,
        state: StateId,
        key_group: KeyGroup,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let lower = encode_key(key_group, state, prefix);
        let mut read_opts = ReadOptions::default();
        if let Some(upper) = prefix_successor(&lower) {
            read_opts.set_iterate_upper_bound(upper);
        }
        let mut iter = self.db.raw_iterator_opt(read_opts);
        iter.seek(&lower);

        let mut out = Vec::new();
        // The upper bound ends the scan; `starts_with` covers the one prefix (all 0xff) that has
        // no upper bound.
        while let Some((key, value)) = iter.item().filter(|(key, _)| key.starts_with(&lower)) {
            let (_, _, user_key) = decode_key(key)?;
            out.push((user_key.to_vec(), value.to_vec()));
            iter.next();
        }
        self.finish(&iter)?;
        Ok(out)
    }

    /// Skip-scans the database: reads the run of `state` in one key group, then seeks straight to
    /// `state` in the next key group that holds any key, so the cost is the entries of `state`
    /// plus one seek per populated key group, not a pass over every other state's entries.
    fn scan_state(&self, state: StateId) -> Result<Vec<(KeyGroup, Vec<u8>, Vec<u8>)>> {
        let mut read_opts = ReadOptions::default();
        // A full scan (snapshot, rescale) should not evict the hot blocks of point reads.
        read_opts.fill_cache(false);
        let mut iter = self.db.raw_iterator_opt(read_opts);
        iter.seek(key_prefix(KeyGroup::MIN, state));

        let mut out = Vec::new();
        while let Some((key, value)) = iter.item() {
            let (key_group, entry_state, user_key) = decode_key(key)?;
            if entry_state == state {
                out.push((key_group, user_key.to_vec(), value.to_vec()));
                iter.next();
                continue;
            }
            // Every seek target is past the current key, so the scan always moves forward.
            let next_group = if entry_state < state {
                Some(key_group)
            } else {
                key_group.checked_add(1)
            };
            match next_group {
                Some(group) => iter.seek(key_prefix(group, state)),
                None => break,
            }
        }
        self.finish(&iter)?;
        Ok(out)
    }

    fn flush(&mut self) -> Result<()> {
        self.db.flush().map_err(|source| Error::Flush {
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes, then makes a RocksDB native checkpoint in `scratch` (see `rocks/checkpoint.rs`).
    fn snapshot(&mut self, scratch: &Path) -> Result<LocalSnapshot> {
        self.flush()?;
        checkpoint::create(&self.db, &self.path, scratch)
    }

    /// One bounded iterator over the key range of `key_groups`, reusing one [`Entry`]'s buffers.
    fn for_each_entry(
        &self,
        key_groups: RangeInclusive<KeyGroup>,
        f: &mut dyn FnMut(KeyGroup, &Entry) -> Result<()>,
    ) -> Result<()> {
        let Some((lower, upper)) = key_group_bounds(&key_groups) else {
            return Ok(());
        };
        let mut read_opts = ReadOptions::default();
        // A full pass (savepoint, rescale) should not evict the hot blocks of point reads.
        read_opts.fill_cache(false);
        if let Some(upper) = upper {
            read_opts.set_iterate_upper_bound(upper);
        }
        let mut iter = self.db.raw_iterator_opt(read_opts);
        iter.seek(&lower);

        let mut entry = Entry {
            state: StateId(0),
            key: Vec::new(),
            value: Vec::new(),
        };
        while let Some((key, value)) = iter.item() {
            let (key_group, state, user_key) = decode_key(key)?;
            entry.state = state;
            entry.key.clear();
            entry.key.extend_from_slice(user_key);
            entry.value.clear();
            entry.value.extend_from_slice(value);
            f(key_group, &entry)?;
            iter.next();
        }
        self.finish(&iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushed_state_survives_close_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut backend = RocksDbBackend::open(dir.path()).expect("open");
            backend.put(StateId(1), 4, b"kept", b"v1").expect("put");
            backend.put(StateId(1), 4, b"gone", b"v2").expect("put");
            backend
                .write_batch(vec![
                    WriteOp::Delete {
                        state: StateId(1),
                        key_group: 4,
                        key: b"gone".to_vec(),
                    },
                    WriteOp::Put {
                        state: StateId(2),
                        key_group: 9,
                        key: b"other".to_vec(),
                        value: b"v3".to_vec(),
                    },
                ])
                .expect("write batch");
            backend.flush().expect("flush");
        }

        let reopened = RocksDbBackend::open(dir.path()).expect("reopen");
        assert_eq!(
            reopened.scan_state(StateId(1)).expect("scan"),
            vec![(4, b"kept".to_vec(), b"v1".to_vec())]
        );
        assert_eq!(
            reopened.get(StateId(2), 9, b"other").expect("get"),
            Some(b"v3".to_vec())
        );
    }

    #[test]
    fn open_creates_missing_parent_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("job").join("task-3");
        let backend = RocksDbBackend::open(&path).expect("open");
        assert_eq!(backend.path(), path);
        assert!(path.join("CURRENT").is_file());
    }

    #[test]
    fn open_error_names_the_state_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"").expect("write file");
        let err = RocksDbBackend::open(&file.join("state")).expect_err("parent is a file");
        assert!(matches!(err, Error::CreateDir { .. }), "{err:?}");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    #[test]
    fn a_second_open_of_the_same_directory_fails_with_open_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = RocksDbBackend::open(dir.path()).expect("open");
        let err = RocksDbBackend::open(dir.path()).expect_err("locked by the first instance");
        assert!(matches!(err, Error::Open { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&*dir.path().to_string_lossy()),
            "{err}"
        );
    }
}
