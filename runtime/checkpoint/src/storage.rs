//! [`CheckpointStorage`]: a folder in an object store, with blocking, verified operations.
//!
//! Every path given to a method is relative to the folder (`"chk-3/_metadata"`,
//! `"shared/x.sst"`); segments are escaped the way `object_store` escapes them, so a relative
//! path can never climb out of the folder. Each method blocks the calling thread on the crate's
//! runtime (see `runtime.rs`), so any number of engine threads may use clones of one
//! storage at once.
//!
//! Uploads are verified: after the put, the object's size is read back and compared, so a
//! store that silently kept fewer bytes (a proxy, a bug, a [`crate::fault`] test store) is
//! caught before the checkpoint that needs the file completes.

mod transfer;

use std::fmt;
use std::path::{Path as LocalPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use percent_encoding::percent_decode_str;

use crate::error::store_error;
use crate::runtime::block_on;
use crate::uri::resolve;
use crate::{Error, Result};

/// One object found by [`CheckpointStorage::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The path relative to the storage folder the listing was made on.
    pub rel: String,
    pub size: u64,
    pub last_modified_ms: i64,
}

/// A folder in an object store. Cheap to clone.
#[derive(Clone)]
pub struct CheckpointStorage {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    uri: String,
    local_root: Option<PathBuf>,
}

impl fmt::Debug for CheckpointStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointStorage")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl CheckpointStorage {
    /// Opens a folder: `"file:///abs/dir"`, `"/abs/dir"`, `"rel/dir"` (against the current
    /// directory), `"s3://bucket/prefix"`, `"gs://bucket/prefix"`, `"az://container/prefix"`
    /// (also `azure://`, `abfs://`, `abfss://`), or `"memory://name"` (an in-process store
    /// shared by every open of the same name, for tests).
    ///
    /// Credentials and endpoints come from the environment as `object_store`'s builders read
    /// them (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `AWS_REGION`,
    /// `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`...). S3 requests are path-style
    /// when an endpoint is set. Opening does no I/O: use [`check`](Self::check) to probe.
    pub fn open(uri: &str) -> Result<Self> {
        Self::open_with_options(uri, &[])
    }

    /// Like [`open`](Self::open), with `object_store` config keys (`aws_endpoint`,
    /// `aws_allow_http`, `aws_access_key_id`, `google_service_account`...) that override the
    /// environment: for settings from the job's configuration, and for hermetic tests.
    pub fn open_with_options(uri: &str, options: &[(&str, &str)]) -> Result<Self> {
        let resolved = resolve(uri, options)?;
        Ok(Self {
            store: resolved.store,
            prefix: resolved.prefix,
            uri: resolved.uri,
            local_root: resolved.local_root,
        })
    }

    /// A storage over `store`, whose root is the folder; `uri` only names it in messages
    /// (wrap a store in a [`crate::fault::FaultInjectingStore`], for instance).
    pub fn from_store(store: Arc<dyn ObjectStore>, uri: &str) -> Self {
        Self {
            store,
            prefix: Path::default(),
            uri: uri.trim_end_matches('/').to_owned(),
            local_root: None,
        }
    }

    /// The folder's URI (local folders as absolute paths).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The underlying object store (the folder is a prefix in it).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The sub-folder `rel`.
    pub fn child(&self, rel: &str) -> CheckpointStorage {
        let rel = rel.trim_matches('/');
        Self {
            store: Arc::clone(&self.store),
            prefix: self.path(rel),
            uri: self.uri_of(rel),
            local_root: self.local_root.as_ref().map(|root| root.join(rel)),
        }
    }

    /// The enclosing folder, or `None` at the root of the store.
    pub fn parent(&self) -> Option<CheckpointStorage> {
        let mut parts: Vec<PathPart<'static>> = self
            .prefix
            .parts()
            .map(|part| PathPart::from(part.as_ref().to_owned()))
            .collect();
        parts.pop()?;
        let uri = match self.uri.rsplit_once('/') {
            Some(("", _)) => "/".to_owned(),
            Some((parent, _)) => parent.to_owned(),
            None => self.uri.clone(),
        };
        Some(Self {
            store: Arc::clone(&self.store),
            prefix: Path::from_iter(parts),
            uri,
            local_root: self
                .local_root
                .as_ref()
                .and_then(|root| root.parent().map(LocalPath::to_owned)),
        })
    }

    /// The folder on local disk, for `file://` and plain-path storages.
    pub(crate) fn local_root(&self) -> Option<&LocalPath> {
        self.local_root.as_deref()
    }

    /// The URI of `rel` inside this folder, for messages.
    pub fn uri_of(&self, rel: &str) -> String {
        let rel = rel.trim_matches('/');
        if rel.is_empty() {
            self.uri.clone()
        } else {
            format!("{}/{rel}", self.uri)
        }
    }

    fn path(&self, rel: &str) -> Path {
        let parts = self.prefix.parts().chain(
            rel.split('/')
                .filter(|segment| !segment.is_empty())
                .map(PathPart::from),
        );
        Path::from_iter(parts)
    }

    /// `location` relative to this folder, unescaped: the inverse of `path`.
    fn rel_of(&self, location: &Path) -> Option<String> {
        let parts = location.prefix_match(&self.prefix)?;
        let decoded: Vec<String> = parts
            .map(|part| {
                percent_decode_str(part.as_ref())
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        Some(decoded.join("/"))
    }

    fn fail(&self, rel: &str) -> impl Fn(object_store::Error) -> Error + '_ {
        let uri = self.uri_of(rel);
        move |err| store_error(&uri, err)
    }

    /// Probes the folder with one listing request: the endpoint answers, the bucket exists and
    /// the credentials are accepted.
    pub fn check(&self) -> Result<()> {
        block_on(async {
            self.store
                .list_with_delimiter(Some(&self.prefix))
                .await
                .map(drop)
                .map_err(self.fail(""))
        })?
    }

    /// Writes `bytes` to `rel` (replacing any object there), then reads the stored size back:
    /// a mismatch is [`Error::Verify`]. Returns the size.
    pub fn put_verified(&self, rel: &str, bytes: Bytes) -> Result<u64> {
        let expected = bytes.len() as u64;
        let location = self.path(rel);
        block_on(async {
            self.store
                .put(&location, PutPayload::from(bytes))
                .await
                .map_err(self.fail(rel))?;
            self.verify(rel, &location, expected).await
        })?
    }

    async fn verify(&self, rel: &str, location: &Path, expected: u64) -> Result<u64> {
        let meta = self.store.head(location).await.map_err(self.fail(rel))?;
        if meta.size != expected {
            return Err(Error::Verify {
                uri: self.uri_of(rel),
                expected,
                actual: meta.size,
            });
        }
        Ok(expected)
    }

    /// Writes `bytes` to `rel` only if nothing is there yet (`PutMode::Create`): `Ok(false)`
    /// when it already existed. A created object is verified like
    /// [`put_verified`](Self::put_verified).
    pub fn put_create_only(&self, rel: &str, bytes: Bytes) -> Result<bool> {
        let expected = bytes.len() as u64;
        let location = self.path(rel);
        block_on(async {
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&location, PutPayload::from(bytes), options)
                .await
            {
                Ok(_) => {}
                Err(object_store::Error::AlreadyExists { .. }) => return Ok(false),
                // S3 answers a failed `If-None-Match` with 412 rather than 409.
                Err(object_store::Error::Precondition { .. }) => return Ok(false),
                Err(err) => return Err(self.fail(rel)(err)),
            }
            self.verify(rel, &location, expected).await.map(|_| true)
        })?
    }

    /// The whole object at `rel`.
    pub fn get(&self, rel: &str) -> Result<Bytes> {
        let location = self.path(rel);
        block_on(async {
            let result = self.store.get(&location).await.map_err(self.fail(rel))?;
            result.bytes().await.map_err(self.fail(rel))
        })?
    }

    /// Every object under the folder `rel_prefix` (recursively), sorted by path; `rel` is
    /// relative to this storage (`list("shared")` gives `"shared/..."`). A missing folder is
    /// empty.
    pub fn list(&self, rel_prefix: &str) -> Result<Vec<ObjectInfo>> {
        let location = self.path(rel_prefix);
        let metas: Vec<_> = block_on(async {
            self.store
                .list(Some(&location))
                .try_collect::<Vec<_>>()
                .await
                .map_err(self.fail(rel_prefix))
        })??;
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .filter_map(|meta| {
                let rel = self.rel_of(&meta.location)?;
                Some(ObjectInfo {
                    rel,
                    size: meta.size,
                    last_modified_ms: meta.last_modified.timestamp_millis(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// The names of the immediate sub-folders of `rel_prefix`, sorted.
    pub fn list_dirs(&self, rel_prefix: &str) -> Result<Vec<String>> {
        let location = self.path(rel_prefix);
        let listing = block_on(async {
            self.store
                .list_with_delimiter(Some(&location))
                .await
                .map_err(self.fail(rel_prefix))
        })??;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|dir| dir.filename())
            .map(|name| percent_decode_str(name).decode_utf8_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Whether an object exists at `rel`.
    pub fn exists(&self, rel: &str) -> Result<bool> {
        let location = self.path(rel);
        block_on(async {
            match self.store.head(&location).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(err) => Err(self.fail(rel)(err)),
            }
        })?
    }

    /// Deletes the object at `rel`; a missing object is fine.
    pub fn delete(&self, rel: &str) -> Result<()> {
        let location = self.path(rel);
        block_on(async {
            match self.store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(self.fail(rel)(err)),
            }
        })?
    }
}
