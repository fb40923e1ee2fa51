//! [`FaultInjectingStore`]: an `ObjectStore` wrapper that makes uploads fail, loudly or
//! silently, for tests of the checkpoint path.
//!
//! With configured probabilities and a seed it fails a put with an error, or stores only half
//! the bytes and reports success (what a broken proxy or a disk that lies would do: only
//! [`CheckpointStorage::put_verified`](crate::CheckpointStorage::put_verified)'s read-back
//! catches it). Multipart uploads get the same treatment per upload: a failing one errors on
//! its second part, a truncating one silently drops its first part. Reads, listings and
//! deletes pass through untouched. Faults can be switched off and on, so a test can let a
//! checkpoint fail and then recover.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const STORE_NAME: &str = "FaultInjectingStore";

/// What to inject, and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Probability that a put (or a whole multipart upload) fails with an error.
    pub fail_put: f64,
    /// Probability that a put (or multipart upload) silently stores fewer bytes.
    pub truncate_put: f64,
    pub seed: u64,
    /// Only objects whose path contains this string are affected (e.g. `"shared/"`).
    pub path_filter: Option<String>,
    /// After a put whose path contains the first string succeeds, an empty object is created
    /// at the second path: another process acting right between two requests of the writer
    /// (a new run claiming an attempt while a checkpoint completes).
    pub create_after: Option<(String, String)>,
}

impl FaultConfig {
    /// No faults yet; add them with the builder methods.
    pub fn new(seed: u64) -> Self {
        Self {
            fail_put: 0.0,
            truncate_put: 0.0,
            seed,
            path_filter: None,
            create_after: None,
        }
    }

    pub fn failing_puts(mut self, probability: f64) -> Self {
        self.fail_put = probability;
        self
    }

    pub fn truncating_puts(mut self, probability: f64) -> Self {
        self.truncate_put = probability;
        self
    }

    pub fn only_paths_containing(mut self, needle: &str) -> Self {
        self.path_filter = Some(needle.to_owned());
        self
    }

    /// Once a put to a path containing `trigger` succeeded, create the empty object `object`.
    pub fn creating_after(mut self, trigger: &str, object: &str) -> Self {
        self.create_after = Some((trigger.to_owned(), object.to_owned()));
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Fail,
    Truncate,
}

/// Wraps a store and injects put faults as configured.
#[derive(Debug)]
pub struct FaultInjectingStore {
    inner: Arc<dyn ObjectStore>,
    config: FaultConfig,
    rng: Mutex<SmallRng>,
    enabled: AtomicBool,
    failures: AtomicU64,
    truncations: AtomicU64,
}

impl FaultInjectingStore {
    pub fn new(inner: Arc<dyn ObjectStore>, config: FaultConfig) -> Self {
        Self {
            inner,
            rng: Mutex::new(SmallRng::seed_from_u64(config.seed)),
            config,
            enabled: AtomicBool::new(true),
            failures: AtomicU64::new(0),
            truncations: AtomicU64::new(0),
        }
    }

    /// Switches injection on or off (on after `new`).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Puts failed so far.
    pub fn injected_failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// Puts truncated so far.
    pub fn injected_truncations(&self) -> u64 {
        self.truncations.load(Ordering::SeqCst)
    }

    fn decide(&self, location: &Path) -> Fault {
        if !self.enabled.load(Ordering::SeqCst) {
            return Fault::None;
        }
        if let Some(needle) = &self.config.path_filter
            && !location.as_ref().contains(needle.as_str())
        {
            return Fault::None;
        }
        // A poisoned lock only means a panicking test thread held it; the generator is fine.
        let roll: f64 = self
            .rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .random();
        if roll < self.config.fail_put {
            self.failures.fetch_add(1, Ordering::SeqCst);
            Fault::Fail
        } else if roll < self.config.fail_put + self.config.truncate_put {
            self.truncations.fetch_add(1, Ordering::SeqCst);
            Fault::Truncate
        } else {
            Fault::None
        }
    }
}

fn injected(what: &str, location: &Path) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE_NAME,
        source: format!("injected {what} failure at {location}").into(),
    }
}

impl fmt::Display for FaultInjectingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STORE_NAME}({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultInjectingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let result = match self.decide(location) {
            Fault::None => self.inner.put_opts(location, payload, opts).await,
            Fault::Fail => Err(injected("put", location)),
            Fault::Truncate => {
                let bytes = bytes::Bytes::from(payload);
                let kept = bytes.slice(..bytes.len() / 2);
                self.inner
                    .put_opts(location, PutPayload::from(kept), opts)
                    .await
            }
        }?;
        if let Some((trigger, object)) = &self.config.create_after
            && location.as_ref().contains(trigger.as_str())
        {
            let object = Path::from(object.as_str());
            self.inner
                .put_opts(&object, PutPayload::new(), PutOptions::default())
                .await?;
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let fault = self.decide(location);
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            fault,
            location: location.clone(),
            parts: 0,
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A multipart upload carrying the fault decided when it started.
#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    fault: Fault,
    location: Path,
    parts: usize,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.parts += 1;
        match (self.fault, self.parts) {
            (Fault::Truncate, 1) => Box::pin(async { Ok(()) }),
            (Fault::Fail, 2) => {
                let err = injected("multipart part", &self.location);
                Box::pin(async move { Err(err) })
            }
            _ => self.inner.put_part(data),
        }
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        if self.fault == Fault::Fail && self.parts < 2 {
            return Err(injected("multipart complete", &self.location));
        }
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;
    use crate::metadata::tests::sample;
    use crate::{CheckpointStorage, Error, JobCheckpoints};

    fn faulty(config: FaultConfig) -> (Arc<FaultInjectingStore>, CheckpointStorage) {
        let store = Arc::new(FaultInjectingStore::new(Arc::new(InMemory::new()), config));
        let storage = CheckpointStorage::from_store(store.clone(), "memory://faulty");
        (store, storage)
    }

    #[test]
    fn a_truncated_put_is_caught_by_put_verified() {
        let (store, storage) = faulty(FaultConfig::new(1).truncating_puts(1.0));
        let err = storage
            .put_verified("shared/f", bytes::Bytes::from_static(b"0123456789"))
            .expect_err("truncated");
        match &err {
            Error::Verify {
                uri,
                expected,
                actual,
            } => {
                assert_eq!((*expected, *actual), (10, 5));
                assert_eq!(uri, "memory://faulty/shared/f");
            }
            other => panic!("expected a verify error, got {other:?}"),
        }
        assert!(err.is_transient());
        assert_eq!(store.injected_truncations(), 1);

        store.set_enabled(false);
        assert_eq!(
            storage
                .put_verified("shared/f", bytes::Bytes::from_static(b"0123456789"))
                .expect("healed"),
            10
        );
    }

    #[test]
    fn a_truncated_metadata_does_not_complete_the_checkpoint() {
        let config = FaultConfig::new(4)
            .truncating_puts(1.0)
            .only_paths_containing("_metadata");
        let (store, storage) = faulty(config);
        let job = JobCheckpoints::new(&storage, "job");
        let attempt = job
            .claim_attempt()
            .expect("attempts are outside the filter");
        let metadata = sample(1, attempt, &[]);
        let err = job.complete(&metadata).expect_err("truncated");
        assert!(matches!(err, Error::Verify { .. }), "{err:?}");
        assert_eq!(job.latest_complete().expect("latest"), None);
        assert!(!storage.exists("job/chk-1/_metadata").expect("exists"));

        store.set_enabled(false);
        job.complete(&metadata).expect("a retry completes it");
        assert_eq!(job.latest_complete().expect("latest"), Some(metadata));
    }

    #[test]
    fn a_run_that_starts_while_a_checkpoint_completes_fences_the_old_one_off() {
        // The new run claims attempt 2 right after attempt 1's `_metadata` is written, so the
        // check before the write saw nothing; the check after it must.
        let config = FaultConfig::new(5).creating_after("chk-1/_metadata", "job/attempts/2");
        let (_store, storage) = faulty(config);
        let job = JobCheckpoints::new(&storage, "job");
        let attempt = job.claim_attempt().expect("claim");
        let metadata = sample(1, attempt, &[]);
        let err = job.complete(&metadata).expect_err("fenced after the write");
        match &err {
            Error::Fenced { attempt, newer, .. } => assert_eq!((*attempt, *newer), (1, 2)),
            other => panic!("expected Fenced, got {other:?}"),
        }
        // The checkpoint is complete on storage: the new run may restore from it.
        assert_eq!(job.latest_complete().expect("latest"), Some(metadata));
    }

    #[test]
    fn a_failing_put_is_an_error_and_stores_nothing() {
        let (store, storage) = faulty(FaultConfig::new(2).failing_puts(1.0));
        let err = storage
            .put_verified("shared/f", bytes::Bytes::from_static(b"x"))
            .expect_err("injected");
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        assert!(!storage.exists("shared/f").expect("exists"));
        assert_eq!(store.injected_failures(), 1);
    }

    #[test]
    fn a_truncated_multipart_upload_is_caught_by_upload_file() {
        let (_store, storage) = faulty(FaultConfig::new(3).truncating_puts(1.0));
        let dir = tempfile::tempdir().expect("tempdir");
        let local = dir.path().join("big.sst");
        std::fs::write(&local, vec![7u8; 20 * 1024 * 1024]).expect("write");
        let err = storage
            .upload_file("shared/big.sst", &local)
            .expect_err("truncated");
        assert!(matches!(err, Error::Verify { .. }), "{err:?}");
    }

    #[test]
    fn faults_follow_the_seed_and_the_path_filter() {
        let config = FaultConfig::new(42)
            .failing_puts(0.3)
            .truncating_puts(0.3)
            .only_paths_containing("shared/");
        let outcomes = |config: FaultConfig| {
            let store = FaultInjectingStore::new(Arc::new(InMemory::new()), config);
            (0..40)
                .map(|i| store.decide(&Path::from(format!("job/shared/{i}"))))
                .collect::<Vec<_>>()
        };
        let first = outcomes(config.clone());
        assert_eq!(first, outcomes(config.clone()), "same seed, same faults");
        assert!(first.contains(&Fault::Fail) && first.contains(&Fault::Truncate));

        let store = FaultInjectingStore::new(Arc::new(InMemory::new()), config.failing_puts(1.0));
        let path = Path::from("job/chk-1/_metadata");
        crate::runtime::block_on(store.put(&path, PutPayload::from_static(b"{}")))
            .expect("runtime")
            .expect("metadata is outside the filter");
    }
}
