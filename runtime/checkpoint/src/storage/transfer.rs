//! File transfers of [`CheckpointStorage`]: uploads and downloads that stream between a local
//! file and the store, so state of any size never sits in memory whole.
//!
//! Uploads above [`MULTIPART_THRESHOLD`] go up as a multipart upload with at most
//! [`PARTS_IN_FLIGHT`] parts in flight, aborted on any failure so no half-written object is
//! left behind; downloads go to a temporary sibling renamed once complete. Both check the size
//! that arrived against the size that was sent.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path as LocalPath;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use tokio::task::JoinSet;

use super::CheckpointStorage;
use crate::runtime::block_on;
use crate::{Error, Result};

/// Files above this size are uploaded in parts, so large state never sits in memory whole.
const MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
/// The size of one part (S3 needs at least 5 MiB for every part but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once: bounds memory to about (this + 1) parts per upload.
const PARTS_IN_FLIGHT: usize = 2;

impl CheckpointStorage {
    /// Uploads the local file to `rel` and verifies it; files above 8 MiB go up as a streamed
    /// multipart upload (two parts in flight), so memory stays bounded whatever the size.
    pub fn upload_file(&self, rel: &str, local: &LocalPath) -> Result<u64> {
        let io_error = |source| Error::Io {
            uri: self.uri_of(rel),
            path: local.to_owned(),
            source,
        };
        let len = std::fs::metadata(local).map_err(io_error)?.len();
        if len <= MULTIPART_THRESHOLD {
            let bytes = std::fs::read(local).map_err(io_error)?;
            return self.put_verified(rel, Bytes::from(bytes));
        }
        let location = self.path(rel);
        block_on(async {
            let mut file = File::open(local).map_err(io_error)?;
            let mut upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(self.fail(rel))?;
            let mut parts = JoinSet::new();
            let result = async {
                let mut sent = 0u64;
                loop {
                    // Reading blocks this thread, which is the caller's own, not a runtime
                    // worker: the parts already sent keep uploading meanwhile.
                    let chunk = read_chunk(&mut file, PART_SIZE).map_err(io_error)?;
                    if chunk.is_empty() {
                        break;
                    }
                    sent += chunk.len() as u64;
                    parts.spawn(upload.put_part(PutPayload::from(chunk)));
                    while parts.len() >= PARTS_IN_FLIGHT {
                        join_part(&mut parts).await.map_err(self.fail(rel))?;
                    }
                }
                while !parts.is_empty() {
                    join_part(&mut parts).await.map_err(self.fail(rel))?;
                }
                upload.complete().await.map_err(self.fail(rel))?;
                Ok(sent)
            }
            .await;
            let sent = match result {
                Ok(sent) => sent,
                Err(err) => {
                    parts.shutdown().await;
                    if let Err(abort) = upload.abort().await {
                        tracing::warn!(uri = %self.uri_of(rel), error = %abort, "failed to abort a multipart upload");
                    }
                    return Err(err);
                }
            };
            self.verify(rel, &location, sent).await
        })?
    }

    /// Streams the object at `rel` into the local file (via a temporary sibling, renamed when
    /// complete and of the stored size). Creates missing parent folders. Returns the size.
    pub fn download_file(&self, rel: &str, local: &LocalPath) -> Result<u64> {
        let io_error = |source| Error::Io {
            uri: self.uri_of(rel),
            path: local.to_owned(),
            source,
        };
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(io_error)?;
        }
        let file_name = local
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        let partial = local.with_file_name(format!(".{}.download", file_name.unwrap_or_default()));
        let location = self.path(rel);
        let written = block_on(async {
            let result = self.store.get(&location).await.map_err(self.fail(rel))?;
            let expected = result.meta.size;
            let mut file = File::create(&partial).map_err(io_error)?;
            let mut stream = result.into_stream();
            let mut written = 0u64;
            while let Some(chunk) = stream.try_next().await.map_err(self.fail(rel))? {
                file.write_all(&chunk).map_err(io_error)?;
                written += chunk.len() as u64;
            }
            file.flush().map_err(io_error)?;
            if written != expected {
                return Err(Error::Verify {
                    uri: self.uri_of(rel),
                    expected,
                    actual: written,
                });
            }
            Ok(written)
        })?;
        match written {
            Ok(written) => {
                std::fs::rename(&partial, local).map_err(io_error)?;
                Ok(written)
            }
            Err(err) => {
                // Best effort: the partial file is ours and useless.
                let _ = std::fs::remove_file(&partial);
                Err(err)
            }
        }
    }
}

/// Reads up to `size` bytes, fewer only at the end of the file.
fn read_chunk(file: &mut File, size: usize) -> io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(size);
    Read::by_ref(file)
        .take(size as u64)
        .read_to_end(&mut chunk)?;
    Ok(chunk)
}

async fn join_part(parts: &mut JoinSet<object_store::Result<()>>) -> object_store::Result<()> {
    match parts.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(join_error)) => Err(object_store::Error::JoinError { source: join_error }),
        None => Ok(()),
    }
}
