//! Checkpoints and savepoints of a job with an interval join, through the real binary: killed
//! with SIGKILL at random moments and resumed from its latest checkpoint, and stopped with a
//! savepoint at parallelism 2 and restored at 3. The committed output must equal the
//! failure-free output, computed here: every pair within the bounds exactly once.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::checkpoints::{finish, spawn, stop_with_savepoint};
use crate::support::{Rng, assert_same_rows, read_lines, weir_run_ok};

/// Rows per side; `seq` 0.., the left 100 ms of event time apart, the right 70 ms (so the
/// right side's watermark lags and the join holds a few thousand left rows at any time).
const ROWS: i64 = 10_000;
const KEYS: i64 = 11;
const LEFT_STEP: i64 = 100;
const RIGHT_STEP: i64 = 70;
/// `R.ts - L.ts` within `[LOWER, UPPER]` ms.
const LOWER: i64 = -1_000;
const UPPER: i64 = 2_000;

/// Two throttled datagen sequences joined on `seq % 11` when `R.ts` is within `[L.ts - 1 s,
/// L.ts + 2 s]`, into a filesystem sink. `rate` is each source's rows per second.
fn interval_job(out: &Path, rate: i64) -> String {
    let source = |name: &str, step: i64| {
        format!(
            "CREATE TABLE {name} (
                seq BIGINT,
                k AS MOD(seq, {KEYS}),
                ts AS TO_TIMESTAMP_LTZ(seq * {step}, 3),
                WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
            ) WITH (
                'connector' = 'datagen',
                'rows-per-second' = '{rate}',
                'number-of-rows' = '{ROWS}',
                'fields.seq.kind' = 'sequence',
                'fields.seq.start' = '0',
                'fields.seq.end' = '{end}'
            );",
            end = ROWS - 1,
        )
    };
    format!(
        "{}{}
        CREATE TABLE out (l BIGINT, r BIGINT)
        WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
        INSERT INTO out
        SELECT L.seq, R.seq FROM lefts L JOIN rights R
        ON L.k = R.k
        AND R.ts BETWEEN L.ts - INTERVAL '1' SECOND AND L.ts + INTERVAL '2' SECOND;",
        source("lefts", LEFT_STEP),
        source("rights", RIGHT_STEP),
        out = out.display(),
    )
}

/// Every pair `(l, r)` with equal keys and `LOWER <= r * 70 - l * 100 <= UPPER`.
fn expected() -> Vec<String> {
    let mut lines = Vec::new();
    for l in 0..ROWS {
        let lt = l * LEFT_STEP;
        let first = (lt + LOWER).max(0) / RIGHT_STEP;
        let last = ((lt + UPPER) / RIGHT_STEP).min(ROWS - 1);
        for r in first..=last {
            let d = r * RIGHT_STEP - lt;
            if l % KEYS == r % KEYS && (LOWER..=UPPER).contains(&d) {
                lines.push(format!("{l},{r}"));
            }
        }
    }
    lines
}

#[test]
fn an_interval_join_killed_at_random_moments_and_restored_each_time_writes_each_pair_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("out");
    let checkpoints = format!("file://{}", dir.path().join("ckpt").display());
    // Three runs of at most `MAX_RUN_MS` advance the job at most 3.9 s of rows; at 2,000 rows/s
    // each side lasts 5 s, so the job cannot end before the third kill however fast it restores.
    const MAX_RUN_MS: i64 = 1_300;
    const RATE: i64 = 2_000;
    const _: () = assert!(ROWS * 1_000 / RATE > 3 * MAX_RUN_MS);
    std::fs::write(dir.path().join("job.sql"), interval_job(&out, RATE)).expect("test file I/O");
    let args = [
        "--parallelism",
        "2",
        "--checkpoint-dir",
        &checkpoints,
        "--checkpoint-interval",
        "500ms",
        "--restore",
        "latest",
    ];
    let kills = 3;
    let mut rng = Rng::new(13);
    let mut killed = 0;
    loop {
        let mut child = spawn(dir.path(), &args, &[]);
        let deadline = Instant::now() + Duration::from_millis(rng.range(500, MAX_RUN_MS) as u64);
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
        killed == kills,
        "the job ended before it could be killed often enough"
    );
    assert_same_rows(
        read_lines(&out),
        expected(),
        "committed output after the kills",
    );
}

#[test]
fn an_interval_join_savepoint_taken_at_parallelism_2_restores_at_3() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("out");
    let savepoints = dir.path().join("sp").display().to_string();
    let sql = interval_job(&out, 4_000);
    std::fs::write(dir.path().join("job.sql"), &sql).expect("test file I/O");
    let savepoint = stop_with_savepoint(dir.path(), "2", &savepoints);
    let partial = read_lines(&out).len();
    assert!(partial > 0, "nothing was committed by the savepoint");
    assert!(
        partial < expected().len(),
        "the savepoint was taken before the end"
    );
    weir_run_ok(
        dir.path(),
        &sql,
        &["--parallelism", "3", "--restore", &savepoint],
    );
    assert_same_rows(read_lines(&out), expected(), "2 -> 3");
}
