//! The storage and job-folder contract, checked on every kind of store: a local folder, the
//! in-memory store, and S3 (a moto server).
//!
//! Each `check_*` states one part of the contract against a [`Target`]; each test runs it on
//! all three. The S3 runs need moto (`scripts/setup.sh`) and fail without it.

use std::sync::Arc;

use bytes::Bytes;

use crate::metadata::tests::sample;
use crate::test_support::MotoServer;
use crate::{CheckpointStorage, Error, JobCheckpoints, Restorable};

/// A checkpoint directory on one kind of store, and how to open URIs on it.
pub(crate) struct Target {
    pub storage: CheckpointStorage,
    pub options: Vec<(&'static str, String)>,
    pub kind: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    pub fn local() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let uri = format!("file://{}/checkpoints", dir.path().display());
        Self {
            storage: CheckpointStorage::open(&uri).expect("open local"),
            options: Vec::new(),
            kind: "local",
            _dir: Some(dir),
        }
    }

    pub fn memory(name: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let uri = format!("memory://{name}-{n}/checkpoints");
        Self {
            storage: CheckpointStorage::open(&uri).expect("open memory"),
            options: Vec::new(),
            kind: "memory",
            _dir: None,
        }
    }

    pub fn s3(name: &str) -> Self {
        let moto = MotoServer::shared();
        Self {
            storage: moto.fresh_storage(name),
            options: moto.options(),
            kind: "s3",
            _dir: None,
        }
    }

    /// [`crate::load_with_options`] with this target's options.
    pub fn load(&self, uri: &str) -> crate::Result<Restorable> {
        crate::load_with_options(uri, &MotoServer::option_refs(&self.options))
    }

    pub fn job(&self, job_id: &str) -> JobCheckpoints {
        JobCheckpoints::new(&self.storage, job_id)
    }
}

/// Runs `check` on a local folder, an in-memory store and S3.
pub(crate) fn on_every_store(name: &str, check: impl Fn(&Target)) {
    for target in [Target::local(), Target::memory(name), Target::s3(name)] {
        eprintln!("checking {name} on {}", target.kind);
        check(&target);
    }
}

fn check_objects_round_trip_and_list_relative_to_the_folder(target: &Target) {
    let storage = &target.storage;
    assert!(storage.list("").expect("list an empty folder").is_empty());
    assert!(
        storage
            .list_dirs("nothing-here")
            .expect("list dirs")
            .is_empty()
    );
    assert_eq!(
        storage
            .put_verified("a/one", Bytes::from_static(b"1"))
            .expect("put"),
        1
    );
    storage
        .put_verified("a/b/two", Bytes::from_static(b"22"))
        .expect("put");
    storage
        .put_verified("c/with space~", Bytes::from_static(b"333"))
        .expect("put");
    storage
        .put_verified("empty", Bytes::new())
        .expect("put an empty object");

    let listed: Vec<(String, u64)> = storage
        .list("")
        .expect("list")
        .into_iter()
        .map(|o| (o.rel, o.size))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("a/b/two".to_owned(), 2),
            ("a/one".to_owned(), 1),
            ("c/with space~".to_owned(), 3),
            ("empty".to_owned(), 0),
        ]
    );
    assert_eq!(storage.list("a").expect("list").len(), 2);
    assert_eq!(storage.list_dirs("").expect("dirs"), vec!["a", "c"]);
    assert_eq!(storage.list_dirs("a").expect("dirs"), vec!["b"]);
    assert_eq!(
        storage.get("c/with space~").expect("get"),
        Bytes::from_static(b"333")
    );
    assert_eq!(
        storage.child("a").get("b/two").expect("child get"),
        Bytes::from_static(b"22")
    );
    assert!(storage.exists("a/one").expect("exists"));
    assert!(!storage.exists("a/none").expect("exists"));

    storage.delete("a/one").expect("delete");
    storage
        .delete("a/one")
        .expect("deleting a missing object is fine");
    assert!(!storage.exists("a/one").expect("exists"));
    let err = storage.get("a/one").expect_err("deleted");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("a/one"), "{err}");
}

fn check_create_only_puts_never_overwrite(target: &Target) {
    let storage = &target.storage;
    assert!(
        storage
            .put_create_only("x", Bytes::from_static(b"first"))
            .expect("create")
    );
    assert!(
        !storage
            .put_create_only("x", Bytes::from_static(b"second"))
            .expect("second create")
    );
    assert_eq!(storage.get("x").expect("get"), Bytes::from_static(b"first"));
}

fn check_files_upload_and_download_in_parts(target: &Target) {
    let dir = tempfile::tempdir().expect("tempdir");
    // Above the 8 MiB multipart threshold, not a multiple of the part size.
    let big: Vec<u8> = (0..(17 * 1024 * 1024 + 123))
        .map(|i: u32| (i % 251) as u8)
        .collect();
    let small = b"small file".to_vec();
    for (name, content) in [("big.sst", &big), ("small.sst", &small)] {
        let local = dir.path().join(name);
        std::fs::write(&local, content).expect("write");
        let rel = format!("shared/{name}");
        assert_eq!(
            target.storage.upload_file(&rel, &local).expect("upload"),
            content.len() as u64
        );
        let back = dir.path().join("downloads").join(name);
        assert_eq!(
            target.storage.download_file(&rel, &back).expect("download"),
            content.len() as u64
        );
        assert!(
            std::fs::read(&back).expect("read") == *content,
            "{name} differs"
        );
    }
    let err = target
        .storage
        .download_file("shared/missing", &dir.path().join("m"))
        .expect_err("missing");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(!dir.path().join("m").exists());
}

fn check_attempts_are_claimed_in_order_even_when_racing(target: &Target) {
    let job = target.job("racing");
    assert_eq!(job.newer_attempt(0).expect("newer"), None);
    assert_eq!(job.claim_attempt().expect("claim"), 1);
    assert_eq!(job.claim_attempt().expect("claim"), 2);
    let job = Arc::new(job);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let job = Arc::clone(&job);
            std::thread::spawn(move || job.claim_attempt().expect("claim"))
        })
        .collect();
    let mut claimed: Vec<u64> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    claimed.sort_unstable();
    assert_eq!(claimed, vec![3, 4, 5, 6], "every racer got its own number");
    assert_eq!(job.newer_attempt(2).expect("newer"), Some(6));
    assert_eq!(job.newer_attempt(6).expect("newer"), None);
}

fn check_completion_is_create_only_and_fenced(target: &Target) {
    let job = target.job("job");
    assert_eq!(job.next_checkpoint_id().expect("next"), 1);
    let attempt = job.claim_attempt().expect("claim");
    job.complete(&sample(1, attempt, &["shared/a"]))
        .expect("complete");
    assert_eq!(job.next_checkpoint_id().expect("next"), 2);

    let mut rival = sample(1, attempt, &["shared/other"]);
    rival.timestamp_ms += 1;
    let err = job.complete(&rival).expect_err("a second writer");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("chk-1/_metadata"), "{err}");
    assert_eq!(
        job.latest_complete().expect("latest"),
        Some(sample(1, attempt, &["shared/a"])),
        "the first writer's metadata stays"
    );

    let newer = job.claim_attempt().expect("a new run");
    let err = job
        .complete(&sample(2, attempt, &[]))
        .expect_err("the old run is fenced");
    match &err {
        Error::Fenced {
            attempt: a,
            newer: n,
            ..
        } => assert_eq!((*a, *n), (attempt, newer)),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert!(!job.storage().exists("chk-2/_metadata").expect("exists"));
    job.complete(&sample(2, newer, &[]))
        .expect("the new run completes");

    let mut savepoint = sample(3, newer, &[]);
    savepoint.kind = crate::CheckpointKind::Savepoint;
    let err = job.complete(&savepoint).expect_err("not a checkpoint");
    assert!(matches!(err, Error::NotACheckpoint { .. }), "{err:?}");
}

fn check_incomplete_and_damaged_checkpoints_are_skipped(target: &Target) {
    let job = target.job("job");
    job.complete(&sample(1, 0, &[])).expect("complete");
    job.complete(&sample(10, 0, &[])).expect("complete");
    // In progress: files but no _metadata (an object store has no empty folders).
    job.storage()
        .put_verified("chk-12/partial", Bytes::from_static(b"x"))
        .expect("put");
    job.storage()
        .put_verified("chk-11/_metadata", Bytes::from_static(b"{ not json"))
        .expect("put");
    job.storage()
        .put_verified("not-a-checkpoint/_metadata", Bytes::from_static(b"{}"))
        .expect("put");

    let ids: Vec<u64> = job
        .complete_checkpoints()
        .expect("complete checkpoints")
        .iter()
        .map(|m| m.checkpoint_id)
        .collect();
    assert_eq!(
        ids,
        vec![1, 10],
        "numeric order, damaged and partial skipped"
    );
    assert_eq!(
        job.latest_complete()
            .expect("latest")
            .map(|m| m.checkpoint_id),
        Some(10)
    );
    assert_eq!(job.next_checkpoint_id().expect("next"), 13);
    assert_eq!(
        target.job("other-job").latest_complete().expect("latest"),
        None
    );
}

#[test]
fn objects_round_trip_and_list_relative_to_the_folder() {
    on_every_store(
        "objects",
        check_objects_round_trip_and_list_relative_to_the_folder,
    );
}

#[test]
fn create_only_puts_never_overwrite() {
    on_every_store("create-only", check_create_only_puts_never_overwrite);
}

#[test]
fn files_upload_and_download_in_parts() {
    on_every_store("files", check_files_upload_and_download_in_parts);
}

#[test]
fn attempts_are_claimed_in_order_even_when_racing() {
    on_every_store(
        "attempts",
        check_attempts_are_claimed_in_order_even_when_racing,
    );
}

#[test]
fn completion_is_create_only_and_fenced() {
    on_every_store("complete", check_completion_is_create_only_and_fenced);
}

#[test]
fn incomplete_and_damaged_checkpoints_are_skipped() {
    on_every_store(
        "skipped",
        check_incomplete_and_damaged_checkpoints_are_skipped,
    );
}
