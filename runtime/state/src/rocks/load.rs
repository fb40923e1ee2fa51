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

/// SST files of sorted entries written by [`RocksDbBackend::write_sorted`], not yet in a
/// database.
#[derive(Debug, Default)]
pub struct SortedFiles {
    pub files: Vec<PathBuf>,
    pub entries: u64,
}

impl SortedFiles {
    fn remove(&self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl RocksDbBackend {
    /// Loads the entries `fill` hands to its sink, which must come in strictly increasing
    /// (key group, state, key) order, as canonical key-group files and
    /// [`crate::StateBackend::for_each_entry`] give them: [`write_sorted`](Self::write_sorted)
    /// then [`ingest`](Self::ingest). Several loads may follow each other when their key ranges
    /// do not overlap; existing keys in the range are overwritten. Returns the number of entries
    /// loaded.
    pub fn load_sorted(
        &mut self,
        scratch: &Path,
        fill: &mut dyn FnMut(&mut LoadSink<'_>) -> Result<()>,
    ) -> Result<u64> {
        let sorted = Self::write_sorted(scratch, fill)?;
        self.ingest(sorted)
    }

    /// Writes the entries `fill` hands to its sink (in strictly increasing order, see
    /// [`load_sorted`](Self::load_sorted)) into uncompressed SST files under `scratch` (created
    /// if missing). Needs no database, so several threads can each write a disjoint key range
    /// into their own `scratch`, and one [`ingest`](Self::ingest) takes all the files. On error
    /// the files written so far are removed.
    pub fn write_sorted(
        scratch: &Path,
        fill: &mut dyn FnMut(&mut LoadSink<'_>) -> Result<()>,
    ) -> Result<SortedFiles> {
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
        let mut out = SortedFiles::default();
        let mut writer: Option<SstFileWriter<'_>> = None;
        let mut key: Vec<u8> = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        let mut in_file = 0u64;
        let mut sink = |key_group: KeyGroup, state: StateId, user_key: &[u8], value: &[u8]| {
            key.clear();
            key.extend_from_slice(&key_prefix(key_group, state));
            key.extend_from_slice(user_key);
            if last.as_ref().is_some_and(|last| key <= *last) {
                return Err(Error::Unsorted {
                    path: scratch.to_owned(),
                    key: key.clone(),
                });
            }
            let w = match &mut writer {
                Some(w) => w,
                None => {
                    let path = scratch.join(format!("load-{:06}.sst", out.files.len()));
                    let w = SstFileWriter::create(&opts);
                    w.open(&path).map_err(write_error)?;
                    out.files.push(path);
                    in_file = 0;
                    writer.insert(w)
                }
            };
            w.put(&key, value).map_err(write_error)?;
            out.entries += 1;
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
        let finished = match (writer.take(), &filled) {
            (Some(mut w), Ok(())) => w.finish().map_err(write_error),
            _ => Ok(()),
        };
        if let Err(e) = filled.and(finished) {
            out.remove();
            return Err(e);
        }
        Ok(out)
    }

    /// Moves the files of one or more [`write_sorted`](Self::write_sorted) calls into the
    /// database in one ingestion; their key ranges must not overlap. Returns their entries.
    pub fn ingest(&mut self, sorted: SortedFiles) -> Result<u64> {
        if !sorted.files.is_empty() {
            let mut ingest = IngestExternalFileOptions::default();
            ingest.set_move_files(true);
            let ingested = self
                .db
                .ingest_external_file_opts(&ingest, sorted.files.clone())
                .map_err(|source| self.write_error(source));
            // Moved into the database (hard link) when possible, copied otherwise.
            sorted.remove();
            ingested?;
        }
        Ok(sorted.entries)
    }
}

/// The files of several [`RocksDbBackend::write_sorted`] calls, for one ingestion.
impl FromIterator<SortedFiles> for SortedFiles {
    fn from_iter<I: IntoIterator<Item = SortedFiles>>(parts: I) -> Self {
        let mut all = SortedFiles::default();
        for part in parts {
            all.files.extend(part.files);
            all.entries += part.entries;
        }
        all
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
    fn disjoint_ranges_written_on_threads_ingest_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut backend = RocksDbBackend::open(&dir.path().join("db")).expect("open");
        let parts: Vec<SortedFiles> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0u16..4)
                .map(|part| {
                    let scratch = dir.path().join(format!("part-{part}"));
                    scope.spawn(move || {
                        RocksDbBackend::write_sorted(&scratch, &mut |sink| {
                            for kg in part * 10..part * 10 + 10 {
                                for i in 0..100u32 {
                                    sink(kg, StateId(2), format!("{i:03}").as_bytes(), b"v")?;
                                }
                            }
                            Ok(())
                        })
                        .expect("write")
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(
            backend.ingest(parts.into_iter().collect()).expect("ingest"),
            4000
        );
        let scanned = backend.scan_state(StateId(2)).expect("scan");
        assert_eq!(scanned.len(), 4000);
        assert!(
            scanned
                .windows(2)
                .all(|w| (w[0].0, &w[0].1) < (w[1].0, &w[1].1))
        );
        assert_eq!(scanned.last().map(|e| e.0), Some(39));
    }

    #[test]
    fn a_failed_fill_leaves_no_files_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scratch = dir.path().join("scratch");
        let err = RocksDbBackend::write_sorted(&scratch, &mut |sink| {
            sink(1, StateId(1), b"a", b"")?;
            Err(Error::Corrupt {
                reason: "the source broke".into(),
            })
        })
        .expect_err("the fill failed");
        assert!(err.to_string().contains("the source broke"), "{err}");
        assert_eq!(std::fs::read_dir(&scratch).expect("scratch").count(), 0);
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
