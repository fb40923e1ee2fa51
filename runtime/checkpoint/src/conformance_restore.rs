//! Retention, restore loading, listing and the errors a user sees, on every kind of store
//! (see [`crate::conformance`]), plus the S3-only failures: a dead endpoint, a missing bucket.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::conformance::{Target, on_every_store};
use crate::metadata::tests::sample;
use crate::metadata::{CheckpointKind, CheckpointMetadata};
use crate::test_support::MotoServer;
use crate::{CheckpointStorage, Error, JobCheckpoints, write_savepoint};

/// Uploads every file `metadata` references (10 bytes each, as `sample` records) and completes it.
fn complete_with_files(job: &JobCheckpoints, metadata: &CheckpointMetadata) {
    for file in metadata.referenced_files() {
        job.storage()
            .put_verified(&file, Bytes::from_static(b"0123456789"))
            .expect("upload");
    }
    job.complete(metadata).expect("complete");
}

fn shared_files(job: &JobCheckpoints) -> Vec<String> {
    job.storage()
        .list("shared")
        .expect("list")
        .into_iter()
        .map(|o| o.rel)
        .collect()
}

fn check_retention_keeps_n_and_deletes_exactly_the_unreferenced_files(target: &Target) {
    let job = target.job("job");
    let files = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("shared/{n}"))
            .collect::<Vec<_>>()
    };
    let refs = [
        files(&["a", "b"]),
        files(&["b", "c"]),
        files(&["c", "d"]),
        files(&["d", "e"]),
    ];
    for (i, refs) in refs.iter().enumerate() {
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        complete_with_files(&job, &sample(i as u64 + 1, 1, &refs));
    }
    // Not referenced by any checkpoint (say, an upload in flight): retention leaves it alone.
    job.storage()
        .put_verified("shared/in-flight", Bytes::from_static(b"x"))
        .expect("put");

    let report = job.apply_retention(2).expect("retention");
    assert_eq!(report.deleted_checkpoints, vec![1, 2]);
    assert_eq!(
        report.deleted_files,
        files(&["a", "b"]),
        "c is still used by 3"
    );
    assert!(report.failed_files.is_empty());
    assert_eq!(shared_files(&job), files(&["c", "d", "e", "in-flight"]));
    let ids: Vec<u64> = job
        .complete_checkpoints()
        .expect("complete")
        .iter()
        .map(|m| m.checkpoint_id)
        .collect();
    assert_eq!(ids, vec![3, 4]);
    assert_eq!(job.next_checkpoint_id().expect("next"), 5);

    let again = job.apply_retention(2).expect("retention is idempotent");
    assert!(again.deleted_checkpoints.is_empty() && again.deleted_files.is_empty());
    job.apply_retention(0).expect("retention");
    assert_eq!(
        job.latest_complete()
            .expect("latest")
            .map(|m| m.checkpoint_id),
        Some(4),
        "the newest checkpoint is always kept"
    );
    assert_eq!(shared_files(&job), files(&["d", "e", "in-flight"]));

    job.discard_files(&files(&["in-flight", "never-uploaded"]));
    assert_eq!(shared_files(&job), files(&["d", "e"]));
}

fn check_load_finds_checkpoints_and_savepoints_by_folder_or_metadata(target: &Target) {
    let job = target.job("job");
    let checkpoint = sample(7, 2, &["shared/agg-2-0-a2-c7-000009.sst"]);
    complete_with_files(&job, &checkpoint);

    let chk_uri = job.storage().uri_of("chk-7");
    for uri in [
        chk_uri.clone(),
        format!("{chk_uri}/"),
        format!("{chk_uri}/_metadata"),
    ] {
        let restorable = target.load(&uri).expect("load checkpoint");
        assert_eq!(restorable.metadata, checkpoint, "{uri}");
        assert_eq!(restorable.root.uri(), job.storage().uri(), "{uri}");
        assert_eq!(restorable.location, chk_uri);
        assert_eq!(
            restorable
                .root
                .get("shared/agg-2-0-a2-c7-000009.sst")
                .expect("file"),
            Bytes::from_static(b"0123456789")
        );
    }
    let latest = job.latest_restorable().expect("latest").expect("one");
    assert_eq!(latest.metadata, checkpoint);
    assert_eq!(latest.location, chk_uri);

    // A savepoint: self-contained, and still restorable once copied elsewhere.
    let mut savepoint = sample(8, 2, &["agg-2-0-000009.sst"]);
    savepoint.kind = CheckpointKind::Savepoint;
    let name = crate::savepoint_folder_name("job", 8);
    assert!(name.starts_with("savepoint-job-8-") && name.len() == "savepoint-job-8-".len() + 6);
    let folder = target.storage.child(&name);
    folder
        .put_verified("agg-2-0-000009.sst", Bytes::from_static(b"0123456789"))
        .expect("upload");
    write_savepoint(&folder, &savepoint).expect("write savepoint");
    let err = write_savepoint(&folder, &savepoint).expect_err("create-only");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");

    let copy = target.storage.child("copied/elsewhere");
    for object in folder.list("").expect("list") {
        let bytes = folder.get(&object.rel).expect("get");
        copy.put_verified(&object.rel, bytes).expect("copy");
    }
    for location in [folder.uri().to_owned(), copy.uri_of("_metadata")] {
        let restorable = target.load(&location).expect("load savepoint");
        assert_eq!(restorable.metadata, savepoint);
        assert_eq!(
            restorable.root.get("agg-2-0-000009.sst").expect("file"),
            Bytes::from_static(b"0123456789"),
            "{location}"
        );
    }
}

fn check_load_errors_name_the_place_and_the_problem(target: &Target) {
    let missing = target.storage.uri_of("no/such/folder");
    let err = target.load(&missing).expect_err("missing");
    assert!(matches!(err, Error::NoCheckpoint { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("no checkpoint or savepoint at {missing}: no _metadata")
    );

    let other = target.storage.child("some-data");
    other
        .put_verified("part-0.parquet", Bytes::from_static(b"x"))
        .expect("put");
    let err = target
        .load(other.uri())
        .expect_err("not a checkpoint folder");
    assert!(matches!(err, Error::NoCheckpoint { .. }), "{err:?}");

    other
        .put_verified("_metadata", Bytes::from_static(b"<xml/>"))
        .expect("put");
    let err = target.load(other.uri()).expect_err("foreign _metadata");
    assert!(matches!(err, Error::NotACheckpoint { .. }), "{err:?}");
    assert!(err.to_string().contains("some-data/_metadata"), "{err}");

    let job = target.job("job");
    job.complete(&sample(3, 1, &["shared/never-uploaded"]))
        .expect("complete");
    let err = target
        .load(&job.storage().uri_of("chk-3"))
        .expect_err("missing file");
    assert!(
        err.to_string().contains("shared/never-uploaded (missing)"),
        "{err}"
    );
}

fn check_listing_and_inspection_show_what_is_stored(target: &Target) {
    if target.kind == "s3" {
        // `list_checkpoints` opens its URI from the environment, which these tests never set.
        return;
    }
    let job = target.job("nexmark_q5");
    job.claim_attempt().expect("claim");
    complete_with_files(&job, &sample(1, 1, &["shared/x-000001.sst"]));
    complete_with_files(
        &job,
        &sample(2, 1, &["shared/x-000001.sst", "shared/x-000002.sst"]),
    );
    target
        .job("never-checkpointed")
        .claim_attempt()
        .expect("claim");

    let listing = crate::list_checkpoints(target.storage.uri()).expect("list");
    let jobs: Vec<(&str, usize)> = listing
        .jobs
        .iter()
        .map(|j| (j.job_id.as_str(), j.checkpoints.len()))
        .collect();
    assert_eq!(jobs, vec![("never-checkpointed", 0), ("nexmark_q5", 2)]);
    assert_eq!(listing.jobs[1].checkpoints[1].size, 20);
    let text = listing.to_string();
    assert!(
        text.contains("job nexmark_q5 (2 complete checkpoints)"),
        "{text}"
    );
    assert!(text.contains("agg-2"), "{text}");

    let inspection = crate::inspect(&job.storage().uri_of("chk-2/_metadata")).expect("inspect");
    assert_eq!(inspection.problem, None);
    assert_eq!(
        inspection.operators[1].subtasks[0].key_groups,
        vec![(0, 63)]
    );
    assert_eq!(inspection.operators[1].subtasks[0].files.len(), 2);
    let text = inspection.to_string();
    assert!(text.contains("checkpoint 2 of job job"), "{text}");
    assert!(text.contains("shared/x-000002.sst"), "{text}");
}

#[test]
fn retention_keeps_n_and_deletes_exactly_the_unreferenced_files() {
    on_every_store(
        "retention",
        check_retention_keeps_n_and_deletes_exactly_the_unreferenced_files,
    );
}

#[test]
fn load_finds_checkpoints_and_savepoints_by_folder_or_metadata() {
    on_every_store(
        "load",
        check_load_finds_checkpoints_and_savepoints_by_folder_or_metadata,
    );
}

#[test]
fn load_errors_name_the_place_and_the_problem() {
    on_every_store(
        "load-errors",
        check_load_errors_name_the_place_and_the_problem,
    );
}

#[test]
fn listing_and_inspection_show_what_is_stored() {
    on_every_store("listing", check_listing_and_inspection_show_what_is_stored);
}

/// A port nothing listens on: bound once by the OS, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn an_unreachable_endpoint_fails_in_seconds_naming_the_uri() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let options = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_allow_http", "true"),
        ("aws_region", "us-east-1"),
        ("aws_access_key_id", "k"),
        ("aws_secret_access_key", "s"),
    ];
    let storage = CheckpointStorage::open_with_options("s3://bucket/ckpt", &options)
        .expect("open does no I/O");
    let started = Instant::now();
    let err = JobCheckpoints::new(&storage, "job")
        .claim_attempt()
        .expect_err("nothing listens");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("s3://bucket/ckpt/job"), "{err}");
    assert!(err.is_transient());

    let err = crate::load_with_options("s3://bucket/ckpt/job/chk-1", &options).expect_err("load");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let err = storage.check().expect_err("check");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
}

#[test]
fn a_missing_bucket_is_named_as_such() {
    let moto = MotoServer::shared();
    let storage = moto.storage("no-such-bucket", "ckpt");
    let err = storage.check().expect_err("no bucket");
    assert!(matches!(err, Error::BucketNotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("s3://no-such-bucket/ckpt"),
        "{err}"
    );
    let err = JobCheckpoints::new(&storage, "job")
        .claim_attempt()
        .expect_err("no bucket");
    assert!(matches!(err, Error::BucketNotFound { .. }), "{err:?}");

    let options = moto.options();
    let err = crate::load_with_options(
        "s3://no-such-bucket/ckpt/job/chk-1",
        &MotoServer::option_refs(&options),
    )
    .expect_err("no bucket");
    assert!(matches!(err, Error::BucketNotFound { .. }), "{err:?}");

    let fine = moto.fresh_storage("exists");
    fine.check().expect("an existing bucket answers");
}
