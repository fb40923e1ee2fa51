//! Unit tests of [`super::LiveJob`]: savepoint triggers answered later by the coordinator,
//! request ids that deduplicate triggers, cancel across attempts, the checkpoint history as
//! the API shows it, the upgrade compatibility check and savepoint disposal.

use weir_rpc::JobControl;

use super::*;

fn live() -> (
    Arc<LiveJob>,
    crossbeam_channel::Receiver<Command>,
    Arc<AtomicBool>,
) {
    let sql = "CREATE TABLE src (x BIGINT) WITH ('connector' = 'datagen');
        CREATE TABLE out (x BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO out SELECT x + 1 FROM src;";
    let job = crate::job::plan_sql(sql, &[]).unwrap();
    let live = LiveJob::new(&job);
    let (tx, rx) = crossbeam_channel::unbounded();
    let cancel = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(CheckpointStats::default()));
    let metrics = Arc::new(JobMetrics::new(1));
    live.attempt_started(1, metrics, cancel.clone(), Some(tx), &stats);
    (live, rx, cancel)
}

#[test]
fn a_savepoint_reply_arriving_later_completes_its_trigger_and_the_job_finishes() {
    let (live, commands, _) = live();
    assert_eq!(live.job().unwrap().state, JobState::Running);
    assert!(live.job().unwrap().operators.len() >= 2);
    let request = SavepointRequest {
        dir: Some("file:///sp".into()),
        stop: true,
        request_id: None,
    };
    let id = live.trigger_savepoint(request).unwrap();
    assert_eq!(
        live.savepoint(&id).unwrap().status,
        SavepointStatus::InProgress
    );
    let Ok(Command::Savepoint { dir, stop, reply }) = commands.try_recv() else {
        panic!("no savepoint command");
    };
    assert_eq!((dir.as_deref(), stop), (Some("file:///sp"), true));
    reply.send(Ok("file:///sp/savepoint-1".into())).unwrap();
    let done = live.savepoint(&id).unwrap();
    assert_eq!(done.status, SavepointStatus::Completed);
    assert_eq!(done.path.as_deref(), Some("file:///sp/savepoint-1"));
    live.wait_for_savepoint_readers(Duration::from_secs(5));
    let summary = JobSummary {
        rows_in: 0,
        rows_out: 0,
        late_rows_dropped: 0,
        elapsed: Duration::ZERO,
        cancelled: true,
        savepoint: None,
        last_checkpoint: None,
        checkpoints_completed: 0,
        checkpoints_failed: 0,
        restarts: 0,
    };
    live.finished(&Ok(summary));
    assert_eq!(live.job().unwrap().state, JobState::Finished);
    assert!(matches!(
        live.savepoint("other"),
        Err(weir_rpc::Error::NotFound(_))
    ));
}

#[test]
fn cancel_stops_the_attempt_and_later_ones_and_a_lost_reply_fails_the_savepoint() {
    let (live, commands, cancel) = live();
    let id = live.trigger_savepoint(SavepointRequest::default()).unwrap();
    drop(commands);
    assert_eq!(live.cancel().unwrap().state, JobState::Cancelling);
    assert!(cancel.load(Ordering::SeqCst) && live.cancel_requested());
    let failed = live.savepoint(&id).unwrap();
    assert_eq!(failed.status, SavepointStatus::Failed);
    assert!(failed.failure.unwrap().contains("stopped"));
    live.attempt_ended();
    let next = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(CheckpointStats::default()));
    live.attempt_started(2, Arc::new(JobMetrics::new(1)), next.clone(), None, &stats);
    assert!(
        next.load(Ordering::SeqCst),
        "a new attempt after cancel is cancelled at once"
    );
    let refused = live
        .trigger_savepoint(SavepointRequest::default())
        .unwrap_err();
    assert!(refused.to_string().contains("--savepoint-dir"), "{refused}");
}

#[test]
fn checkpoint_history_is_listed_most_recent_first_with_the_latest_completed() {
    use crate::checkpoint::coordinator::{CheckpointRecord, CheckpointStatus as RecordStatus};
    let (live, _commands, _) = live();
    let record = |id, status| CheckpointRecord {
        id,
        savepoint: id == 2,
        status,
        path: format!("file:///cp/job/chk-{id}"),
        triggered_ms: 1_000 * id as i64,
        duration: Duration::from_millis(30),
        size_bytes: 4096,
        alignment: Duration::from_millis(3),
        sync: Duration::ZERO,
        acknowledged: 2,
    };
    let stats = Arc::new(Mutex::new(CheckpointStats::default()));
    {
        let mut s = stats.lock().unwrap();
        s.history.push_back(record(1, RecordStatus::Completed));
        s.history.push_back(record(2, RecordStatus::Completed));
        let failed = RecordStatus::Failed {
            reason: "timeout".into(),
        };
        s.history.push_back(record(3, failed));
        (s.completed, s.failed, s.last_id) = (2, 1, Some(2));
    }
    let cancel = Arc::new(AtomicBool::new(false));
    live.attempt_started(2, Arc::new(JobMetrics::new(1)), cancel, None, &stats);
    let checkpoints = live.checkpoints().unwrap();
    let ids: Vec<u64> = checkpoints.history.iter().map(|c| c.id).collect();
    assert_eq!(ids, [3, 2, 1]);
    assert_eq!(
        checkpoints.history[0].status,
        weir_rpc::CheckpointStatus::Failed
    );
    assert_eq!(checkpoints.history[0].failure.as_deref(), Some("timeout"));
    assert_eq!(checkpoints.history[0].path, None);
    let latest = checkpoints.latest_completed.unwrap();
    assert_eq!((latest.id, latest.kind), (2, CheckpointKind::Savepoint));
    assert_eq!(
        (latest.alignment_ms, latest.size_bytes),
        (Some(3), Some(4096))
    );
    assert_eq!(checkpoints.number_of_failed_checkpoints, 1);
}

#[test]
fn a_repeated_request_id_answers_the_first_trigger_and_starts_nothing() {
    let (live, commands, _) = live();
    let request = SavepointRequest {
        dir: Some("file:///sp".into()),
        stop: true,
        request_id: Some("upgrade-3".into()),
    };
    let first = live.trigger_savepoint(request.clone()).unwrap();
    assert_eq!(live.trigger_savepoint(request.clone()).unwrap(), first);
    let Ok(Command::Savepoint { reply, .. }) = commands.try_recv() else {
        panic!("no savepoint command");
    };
    assert!(
        commands.try_recv().is_err(),
        "a second savepoint was started"
    );
    reply.send(Ok("file:///sp/savepoint-1".into())).unwrap();
    assert_eq!(
        live.savepoint(&first).unwrap().status,
        SavepointStatus::Completed
    );
    live.finished(&Ok(summary(true)));
    assert_eq!(live.job().unwrap().state, JobState::Finished);
    // The job stopped; a retry of the same request still gets its trigger id.
    assert_eq!(live.trigger_savepoint(request).unwrap(), first);
    let other = SavepointRequest {
        request_id: Some("upgrade-4".into()),
        ..SavepointRequest::default()
    };
    assert!(matches!(
        live.trigger_savepoint(other),
        Err(weir_rpc::Error::Rejected(_))
    ));
}

fn summary(cancelled: bool) -> JobSummary {
    JobSummary {
        rows_in: 0,
        rows_out: 0,
        late_rows_dropped: 0,
        elapsed: Duration::ZERO,
        cancelled,
        savepoint: None,
        last_checkpoint: None,
        checkpoints_completed: 0,
        checkpoints_failed: 0,
        restarts: 0,
    }
}

const COUNTS: &str = "CREATE TABLE src (k BIGINT, x BIGINT) WITH ('connector' = 'datagen');
    CREATE TABLE out (k BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
    INSERT INTO out SELECT k, COUNT(*) FROM src GROUP BY k;";

/// A job counting per key, and a savepoint of it (in `dir`) where the source and the
/// aggregate hold state, recorded as its latest completed checkpoint when `checkpointed`.
fn counting_job(dir: &std::path::Path, checkpointed: bool) -> (Arc<LiveJob>, String) {
    use weir_checkpoint::{CheckpointMetadata, CheckpointStorage, OperatorState, SubtaskState};
    let job = crate::job::plan_sql(COUNTS, &[]).unwrap();
    let live = LiveJob::new(&job);
    let operators = job
        .graph
        .nodes
        .iter()
        .map(|n| {
            let stateful = matches!(n.kind, NodeKind::Source { .. }) || n.name.contains("Agg");
            OperatorState {
                uid: n.uid.clone(),
                name: n.name.clone(),
                parallelism: 1,
                subtasks: vec![SubtaskState {
                    subtask: 0,
                    keyed: None,
                    operator_state: if stateful {
                        vec![serde_json::json!({"count": 1})]
                    } else {
                        Vec::new()
                    },
                    splits: Vec::new(),
                    committable: None,
                }],
            }
        })
        .collect();
    let metadata = CheckpointMetadata {
        format_version: 1,
        job_id: "counts".into(),
        checkpoint_id: 4,
        attempt: 1,
        kind: weir_checkpoint::CheckpointKind::Savepoint,
        timestamp_ms: 1_000,
        max_parallelism: job.graph.max_parallelism as u32,
        operators,
    };
    let path = dir.join("savepoint-counts-4").display().to_string();
    weir_checkpoint::write_savepoint(&CheckpointStorage::open(&path).unwrap(), &metadata).unwrap();
    let stats = Arc::new(Mutex::new(CheckpointStats::default()));
    if checkpointed {
        let mut s = stats.lock().unwrap();
        (s.completed, s.last_id, s.last_location) = (1, Some(4), Some(path.clone()));
    }
    let cancel = Arc::new(AtomicBool::new(false));
    live.attempt_started(1, Arc::new(JobMetrics::new(1)), cancel, None, &stats);
    (live, path)
}

#[test]
fn a_changed_aggregation_is_incompatible_and_names_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let (live, path) = counting_job(dir.path(), true);
    let none = BTreeMap::new();
    let same = live.check_compatibility(COUNTS, &none).unwrap();
    assert!(same.compatible && same.problems.is_empty(), "{same:?}");

    let changed = COUNTS.replace("COUNT(*)", "SUM(x)");
    let answer = live.check_compatibility(&changed, &none).unwrap();
    assert!(!answer.compatible);
    let aggregate = live
        .running
        .iter()
        .find(|n| n.name.contains("Agg"))
        .unwrap();
    assert_eq!(answer.problems.len(), 1, "{answer:?}");
    let problem = &answer.problems[0];
    assert!(problem.contains(&aggregate.uid), "{problem}");
    assert!(problem.contains(&path), "{problem}");
    assert!(problem.contains("--allow-non-restored-state"), "{problem}");

    let rescaled = BTreeMap::from([("pipeline.max-parallelism".into(), "256".into())]);
    let answer = live.check_compatibility(COUNTS, &rescaled).unwrap();
    assert!(!answer.compatible);
    assert!(
        answer.problems[0].contains("max parallelism 128"),
        "{answer:?}"
    );
    // Parallelism is free to change.
    let wider = BTreeMap::from([("parallelism.default".into(), "4".into())]);
    assert!(live.check_compatibility(COUNTS, &wider).unwrap().compatible);
}

#[test]
fn sql_that_does_not_plan_is_an_incompatible_answer_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let (live, _) = counting_job(dir.path(), true);
    let broken = COUNTS.replace("GROUP BY k", "GROUP BY");
    let answer = live.check_compatibility(&broken, &BTreeMap::new()).unwrap();
    assert!(!answer.compatible);
    assert!(answer.problems[0].contains("line"), "{answer:?}");
}

#[test]
fn without_a_checkpoint_every_missing_source_or_operator_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (live, _) = counting_job(dir.path(), false);
    let none = BTreeMap::new();
    assert!(live.check_compatibility(COUNTS, &none).unwrap().compatible);
    let changed = COUNTS.replace("COUNT(*)", "SUM(x)");
    let answer = live.check_compatibility(&changed, &none).unwrap();
    assert!(!answer.compatible);
    assert!(
        answer
            .problems
            .iter()
            .all(|p| p.contains("no completed checkpoint")),
        "{answer:?}"
    );
}

#[test]
fn disposing_deletes_a_savepoint_once_and_refuses_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (live, path) = counting_job(dir.path(), true);
    live.dispose_savepoint(&path).unwrap();
    assert!(!std::path::Path::new(&path).exists());
    live.dispose_savepoint(&path).unwrap();

    let checkpoint = dir.path().join("counts/chk-1");
    std::fs::create_dir_all(&checkpoint).unwrap();
    std::fs::write(
        checkpoint.join("_metadata"),
        r#"{"format_version": 1, "job_id": "counts", "checkpoint_id": 1, "attempt": 1,
            "kind": "checkpoint", "timestamp_ms": 1, "max_parallelism": 128, "operators": []}"#,
    )
    .unwrap();
    let refused = live
        .dispose_savepoint(checkpoint.to_str().unwrap())
        .unwrap_err();
    assert!(
        matches!(&refused, weir_rpc::Error::InvalidRequest(m) if m.contains("not a savepoint")),
        "{refused}"
    );
    assert!(checkpoint.join("_metadata").exists());
}
