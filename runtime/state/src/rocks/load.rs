//! Bulk loading: entries that arrive in key order (a restore reading canonical key-group files
//! or another RocksDB snapshot's key-group range) are written straight into SST files with
//! RocksDB's `SstFileWriter` and ingested, instead of going through the memtable, flushes and
//! compactions one write batch at a time. Ingested files land in the lowest level their key
//! range allows, so an empty database takes them without any compaction.

use std::path::{Path, PathBuf};

use rocksdb::{DBCompressionType, IngestExternalFileOptions, SstFileWriter};

use super::{RocksDbBackend, db_options};
use crate::key::key_prefix;
use crate::{Error, KeyGroup, Result, StateId};

/// Where [`RocksDbBackend::load_sorted`]'s caller puts entries: key group, state id, key, value.
pub type LoadSink<'a> = dyn FnMut(KeyGroup, StateId, &[u8], &[u8]) -> Result<()> + 'a;

/// Close an SST file once it is about this large.
const TARGET_FILE_BYTES: u64 = 64 << 20;

/// How often (in entries) the size of the open file is checked.
const SIZE_CHECK_EVERY: u64 = 4096;

impl RocksDbBackend {
    /// Loads the entries `fill` hands to its sink, which must come in strictly increasing
    /// (key group, state, key) order, as canonical key-group files and
    /// [`crate::StateBackend::for_each_entry`] give them. The SST files are not compressed. SST files are written under
    /// `scratch` (created if missing, left empty) and moved into the database. Several loads
    /// may follow each other when their key ranges do not overlap; existing keys in the range
    /// are overwritten. Returns the number of entries loaded.
    pub fn load_sorted(
        &mut self,
        scratch: &Path,
        fill: &mut dyn FnMut(&mut LoadSink<'_>) -> Result<()>,
    ) -> Result<u64> {
        std::fs::create_dir_all(scratch).map_err(|source| Error::CreateDir {
            path: scratch.to_owned(),
            source,
        })?;
        // Uncompressed: the restore is bound by the CPU, and LZ4 took a fifth of it. The files
        // are compressed when a later compaction rewrites them.
        let mut opts = db_options();
        opts.set_compression_type(DBCompressionType::None);
        let write_error = |source| Error::Write {
            path: scratch.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = Vec::new();
        let mut writer: Option<SstFileWriter<'_>> = None;
        let mut key: Vec<u8> = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        let mut count = 0u64;
        let mut in_file = 0u64;
        let mut sink = |key_group: KeyGroup, state: StateId, user_key: &[u8], value: &[u8]| {
            key.clear();
            key.extend_from_slice(&key_prefix(key_group, state));
            key.extend_from_slice(user_key);
            if last.as_ref().is_some_and(|last| key <= *last) {
                return Err(Error::Unsorted {
                    path: self.path.clone(),
                    key: key.clone(),
                });
            }
            let w = match &mut writer {
                Some(w) => w,
                None => {
                    let path = scratch.join(format!("load-{:06}.sst", files.len()));
                    let w = SstFileWriter::create(&opts);
                    w.open(&path).map_err(write_error)?;
                    files.push(path);
                    in_file = 0;
                    writer.insert(w)
                }
            };
            w.put(&key, value).map_err(write_error)?;
            count += 1;
            in_file += 1;
            if in_file.is_multiple_of(SIZE_CHECK_EVERY) && w.file_size() >= TARGET_FILE_BYTES {
                w.finish().map_err(write_error)?;
                writer = None;
            }
            match &mut last {
                Some(last) => {
                    last.clear();
                    last.extend_from_slice(&key);
                }
                None => last = Some(key.clone()),
            }
            Ok(())
        };
        let filled = fill(&mut sink);
        if let Some(mut w) = writer.take()
            && filled.is_ok()
        {
            w.finish().map_err(write_error)?;
        }
        if let Err(e) = filled {
            for file in &files {
                let _ = std::fs::remove_file(file);
            }
            return Err(e);
        }
        if !files.is_empty() {
            let mut ingest = IngestExternalFileOptions::default();
            ingest.set_move_files(true);
            self.db
                .ingest_external_file_opts(&ingest, files.clone())
                .map_err(|source| self.write_error(source))?;
        }
        for file in &files {
            // Moved into the database (hard link) when possible, copied otherwise.
            let _ = std::fs::remove_file(file);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, StateBackend};

    fn entry(state: u16, key: &[u8], value: &[u8]) -> Entry {
        Entry {
            state: StateId(state),
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn sorted_entries_load_and_read_back_like_written_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut backend = RocksDbBackend::open(&dir.path().join("db")).expect("open");
        backend
            .put(StateId(1), 9, b"outside", b"kept")
            .expect("put");
        let input: Vec<(KeyGroup, Entry)> = (0u16..3)
            .flat_map(|kg| {
                (0..1000u32).map(move |i| (kg, entry(1, format!("k{i:05}").as_bytes(), b"v")))
            })
            .collect();
        let loaded = backend
            .load_sorted(&dir.path().join("scratch"), &mut |sink| {
                for (kg, e) in &input {
                    sink(*kg, e.state, &e.key, &e.value)?;
                }
                Ok(())
            })
            .expect("load");
        assert_eq!(loaded, 3000);
        let mut expected: Vec<_> = input
            .iter()
            .map(|(kg, e)| (*kg, e.key.clone(), e.value.clone()))
            .collect();
        expected.push((9, b"outside".to_vec(), b"kept".to_vec()));
        assert_eq!(backend.scan_state(StateId(1)).expect("scan"), expected);
        assert_eq!(
            std::fs::read_dir(dir.path().join("scratch"))
                .expect("scratch")
                .count(),
            0,
            "the SST files were moved into the database"
        );
        // The loaded state is ordinary state: it snapshots, deletes and survives a flush.
        backend.delete(StateId(1), 0, b"k00000").expect("delete");
        backend.flush().expect("flush");
        assert_eq!(backend.get(StateId(1), 0, b"k00000").expect("get"), None);
        assert_eq!(
            backend.get(StateId(1), 2, b"k00999").expect("get"),
            Some(b"v".to_vec())
        );
    }

    #[test]
    fn an_empty_load_is_fine_and_unsorted_input_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut backend = RocksDbBackend::open(&dir.path().join("db")).expect("open");
        let scratch = dir.path().join("scratch");
        assert_eq!(
            backend
                .load_sorted(&scratch, &mut |_| Ok(()))
                .expect("empty"),
            0
        );
        let err = backend
            .load_sorted(&scratch, &mut |sink| {
                sink(1, StateId(1), b"b", b"")?;
                sink(1, StateId(1), b"a", b"")
            })
            .expect_err("out of order");
        assert!(matches!(err, Error::Unsorted { .. }), "{err:?}");
        assert!(backend.scan_state(StateId(1)).expect("scan").is_empty());
    }
}
