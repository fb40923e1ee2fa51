//! Checkpoints, savepoints and restores through the real binary: a job killed with SIGKILL at
//! random moments and resumed from its latest checkpoint, a job stopped with a savepoint and
//! restored at other parallelisms, and plan changes on restore. In every case the committed
//! output must equal a failure-free run: no row lost, none duplicated.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Rng, assert_same_rows, read_lines, sorted, ts, weir_run, weir_run_ok};

/// Rows the windowed job reads: `seq` 0.., 10 ms of event time apart.
const ROWS: i64 = 40_000;
const KEYS: i64 = 7;

/// A throttled, deterministic windowed job into a filesystem sink: 1-second tumbling windows
/// per key (`seq % 7`), count and sum. `aggregate` changes the aggregation for the plan-change
/// test; `extra` adds a projection after it.
pub(crate) fn window_job(out: &Path, rate: i64, aggregate: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE src (
            seq BIGINT,
            k AS MOD(seq, {KEYS}),
            ts AS TO_TIMESTAMP_LTZ(seq * 10, 3),
            WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
        ) WITH (
            'connector' = 'datagen',
            'rows-per-second' = '{rate}',
            'number-of-rows' = '{ROWS}',
            'fields.seq.kind' = 'sequence',
            'fields.seq.start' = '0',
            'fields.seq.end' = '{end}'
        );
        CREATE TABLE out (k BIGINT, window_start TIMESTAMP(3), window_end TIMESTAMP(3), c BIGINT, s BIGINT{extra_col})
        WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
        INSERT INTO out
        SELECT k, window_start, window_end, c, s{extra}
        FROM (
            SELECT k, window_start, window_end, COUNT(*) AS c, {aggregate}(seq) AS s
            FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
            GROUP BY k, window_start, window_end
        );",
        end = ROWS - 1,
        out = out.display(),
        extra_col = if extra.is_empty() { "" } else { ", d BIGINT" },
    )
}

/// What a failure-free run writes, computed here: per 1-second window and key, the count and
/// sum of `seq`.
pub(crate) fn expected() -> Vec<String> {
    let mut lines = Vec::new();
    let per_window = 100; // 1 s / 10 ms
    for w in 0..ROWS / per_window {
        for k in 0..KEYS {
            let seqs: Vec<i64> = (w * per_window..(w + 1) * per_window)
                .filter(|s| s % KEYS == k)
                .collect();
            if seqs.is_empty() {
                continue;
            }
            let sum: i64 = seqs.iter().sum();
            // The CSV format writes whole-second timestamps without a fraction, as Flink's.
            let second = |ms: i64| ts(ms).trim_end_matches(".000").to_string();
            lines.push(format!(
                "{k},{},{},{},{sum}",
                second(w * 1000),
                second((w + 1) * 1000),
                seqs.len()
            ));
        }
    }
    sorted(lines)
}

pub(crate) fn spawn(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(dir.join("job.sql"))
        .args(args)
        .arg("--quiet")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir")
}

pub(crate) fn finish(child: Child) -> (bool, String, String) {
    let output = child.wait_with_output().expect("wait for weir");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "weir panicked:\n{stderr}");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    )
}

/// Run the windowed job at parallelism 2 with checkpoints every 500 ms into `checkpoints`,
/// SIGKILL it at random moments `kills` times, resuming from the latest checkpoint each time,
/// then let it finish; the committed output must be the failure-free one.
fn crash_loop(checkpoints: &str, env: &[(&str, String)], kills: usize, seed: u64) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("out");
    // A run lives at most `MAX_RUN_MS` before its kill, so three kills advance the job at most
    // 7.5 s of rows; the job must hold more than that or it can end before the third kill,
    // however fast restores get. 4,000 rows/s makes the 40,000 rows last 10 s.
    const MAX_RUN_MS: i64 = 2_500;
    const RATE: i64 = 4_000;
    const _: () = assert!(ROWS * 1_000 / RATE > 3 * MAX_RUN_MS);
    std::fs::write(
        dir.path().join("job.sql"),
        window_job(&out, RATE, "SUM", ""),
    )
    .expect("test file I/O");
    let args = [
        "--parallelism",
        "2",
        "--checkpoint-dir",
        checkpoints,
        "--checkpoint-interval",
        "500ms",
        "--restore",
        "latest",
    ];
    let mut rng = Rng::new(seed);
    let mut killed = 0;
    loop {
        let mut child = spawn(dir.path(), &args, env);
        let deadline = Instant::now() + Duration::from_millis(rng.range(700, MAX_RUN_MS) as u64);
        while Instant::now() < deadline && child.try_wait().expect("poll weir").is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        if killed < kills && child.try_wait().expect("poll weir").is_none() {
            child.kill().expect("kill weir"); // SIGKILL
            let _ = child.wait();
            killed += 1;
            continue;
        }
        let (ok, _, stderr) = finish(child);
        assert!(ok, "the last run failed:\n{stderr}");
        break;
    }
    assert!(
        killed >= kills.min(3),
        "the job ended before it could be killed often enough"
    );
    assert_same_rows(
        read_lines(&out),
        expected(),
        "committed output after the kills",
    );
}

#[test]
fn a_job_killed_at_random_moments_and_restored_each_time_writes_each_row_exactly_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let checkpoints = format!("file://{}", dir.path().join("ckpt").display());
    crash_loop(&checkpoints, &[], 8, 7);
}

#[test]
fn uploads_that_fail_or_are_truncated_never_complete_a_checkpoint_that_cannot_be_restored() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let checkpoints = format!("file://{}", dir.path().join("ckpt").display());
    let faults = [(
        "WEIR_CHECKPOINT_FAULTS",
        "fail=0.15,truncate=0.15,seed=11".to_string(),
    )];
    crash_loop(&checkpoints, &faults, 5, 11);
}

#[test]
fn checkpoints_in_a_real_s3_server_survive_kills() {
    let server = weir_checkpoint::test_support::MotoServer::shared();
    let bucket = server.unique_bucket("crash");
    let env = server.env();
    crash_loop(&format!("s3://{bucket}/checkpoints"), &env, 3, 5);
    let listing = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["checkpoints", "list", &format!("s3://{bucket}/checkpoints")])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("test file I/O");
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    assert!(
        text.contains("checkpoint") && text.contains("WindowAggregate"),
        "{text}"
    );
}

/// Start the job, let it run a while, stop it with a savepoint (SIGTERM) and return the
/// savepoint's path.
pub(crate) fn stop_with_savepoint(dir: &Path, parallelism: &str, savepoints: &str) -> String {
    let mut child = spawn(
        dir,
        &["--parallelism", parallelism, "--savepoint-dir", savepoints],
        &[],
    );
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(
        child.try_wait().expect("poll weir").is_none(),
        "the job ended too soon"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("test file I/O");
    assert!(status.success());
    let (ok, stdout, stderr) = finish(child);
    assert!(ok, "stop with savepoint failed:\n{stderr}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Savepoint completed. Path: "))
        .unwrap_or_else(|| panic!("no savepoint path in:\n{stdout}\n{stderr}"))
        .to_string()
}

fn rescale(from: &str, to: &str) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("out");
    let savepoints = dir.path().join("sp").display().to_string();
    std::fs::write(
        dir.path().join("job.sql"),
        window_job(&out, 10_000, "SUM", ""),
    )
    .expect("test file I/O");
    let savepoint = stop_with_savepoint(dir.path(), from, &savepoints);
    let partial = read_lines(&out).len();
    assert!(partial > 0, "nothing was committed by the savepoint");
    let sql = std::fs::read_to_string(dir.path().join("job.sql")).expect("test file I/O");
    weir_run_ok(
        dir.path(),
        &sql,
        &["--parallelism", to, "--restore", &savepoint],
    );
    assert_same_rows(read_lines(&out), expected(), &format!("{from} -> {to}"));
}

#[test]
fn a_savepoint_taken_at_parallelism_2_restores_at_1() {
    rescale("2", "1");
}

#[test]
fn a_savepoint_taken_at_parallelism_2_restores_at_4() {
    rescale("2", "4");
}

#[test]
fn a_savepoint_taken_at_parallelism_2_restores_at_3() {
    rescale("2", "3");
}

#[test]
fn a_restore_with_an_extra_projection_keeps_the_state_and_a_changed_aggregation_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("out");
    let savepoints = dir.path().join("sp").display().to_string();
    std::fs::write(
        dir.path().join("job.sql"),
        window_job(&out, 10_000, "SUM", ""),
    )
    .expect("test file I/O");
    let savepoint = stop_with_savepoint(dir.path(), "1", &savepoints);

    let changed = window_job(&dir.path().join("out2"), 10_000, "MAX", "");
    let refused = weir_run(dir.path(), &changed, &["--restore", &savepoint]);
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("WindowAggregate")
            && refused.stderr.to_lowercase().contains("sum("),
        "the refusal must name the operator whose state has no place:\n{}",
        refused.stderr
    );

    let projected = window_job(&out, 10_000, "SUM", ", c * 2");
    weir_run_ok(dir.path(), &projected, &["--restore", &savepoint]);
    let lines = read_lines(&out);
    // Rows written after the restore carry the extra column; together with the rows the
    // first run committed they are the failure-free output.
    let trimmed: Vec<String> = lines
        .iter()
        .map(|l| {
            let parts: Vec<&str> = l.split(',').collect();
            parts[..5].join(",")
        })
        .collect();
    assert_eq!(sorted(trimmed), expected());
}

#[test]
fn restoring_from_a_path_that_is_not_a_checkpoint_fails_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("out");
    let sql = window_job(&out, 100_000, "SUM", "");
    let missing = dir.path().join("no-such-savepoint").display().to_string();
    let run = weir_run(dir.path(), &sql, &["--restore", &missing]);
    assert!(!run.success);
    assert!(run.stderr.contains("no-such-savepoint"), "{}", run.stderr);
    assert!(!out.exists() || read_lines(&out).is_empty());
}
