//! Watermark alignment (`scan.watermark.alignment.*`): a fast source waits for the slow one
//! of its group, so it never gets more than the drift ahead in event time, and the job's
//! output is the same.
//!
//! The fast table covers 20 s of event time in well under a tenth of a second; the slow one
//! is throttled to cover it in one second. Both feed one sink task at parallelism 1, whose
//! input is one queue in arrival order, and the sink writes rows in the order they come: so
//! the part file shows how far ahead the fast source was when each of its rows was sent.

use std::path::Path;

use crate::support::{assert_same_rows, read_lines, sorted, weir_run, weir_run_ok};

/// Event time each fast row adds: 1 ms, 20,000 rows.
const FAST_ROWS: i64 = 20_000;
/// The slow table: one row per 100 ms of event time, 200 rows, at 200 rows a second.
const SLOW_ROWS: i64 = 200;
const SLOW_STEP_MS: i64 = 100;

fn job(out: &Path, alignment: &str) -> String {
    format!(
        "SET 'parallelism.default' = '1';
        SET 'weir.batch-size' = '50';
        CREATE TABLE fast (seq BIGINT, ts AS TO_TIMESTAMP_LTZ(seq, 3), WATERMARK FOR ts AS ts)
        WITH ('connector' = 'datagen', 'rows-per-second' = '1000000000',
              'fields.seq.kind' = 'sequence', 'fields.seq.start' = '1', 'fields.seq.end' = '{FAST_ROWS}'{alignment});
        CREATE TABLE slow (seq BIGINT, ts AS TO_TIMESTAMP_LTZ(seq * {SLOW_STEP_MS}, 3), WATERMARK FOR ts AS ts)
        WITH ('connector' = 'datagen', 'rows-per-second' = '{SLOW_ROWS}',
              'fields.seq.kind' = 'sequence', 'fields.seq.start' = '1', 'fields.seq.end' = '{SLOW_ROWS}'{alignment});
        CREATE TABLE out (src STRING, t BIGINT)
        WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
        INSERT INTO out
        SELECT 'fast', seq FROM fast
        UNION ALL
        SELECT 'slow', seq * {SLOW_STEP_MS} FROM slow;",
        out = out.display(),
    )
}

/// The most event time a fast row was ahead of the slow rows written before it.
fn largest_lead(lines: &[String]) -> i64 {
    let mut slow = 0;
    let mut lead = 0;
    for line in lines {
        let (src, t) = line.split_once(',').expect("a src,t line");
        let t: i64 = t.parse().expect("a time");
        match src {
            "slow" => slow = slow.max(t),
            _ => lead = lead.max(t - slow),
        }
    }
    lead
}

fn every_row() -> Vec<String> {
    let fast = (1..=FAST_ROWS).map(|s| format!("fast,{s}"));
    let slow = (1..=SLOW_ROWS).map(|s| format!("slow,{}", s * SLOW_STEP_MS));
    sorted(fast.chain(slow).collect())
}

#[test]
fn a_fast_source_waits_for_the_slow_one_in_its_alignment_group() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let aligned = ", 'scan.watermark.alignment.group' = 'g', \
                   'scan.watermark.alignment.max-drift' = '1 s'";
    for (name, alignment) in [("aligned", aligned), ("free", "")] {
        let out = dir.path().join(name);
        weir_run_ok(dir.path(), &job(&out, alignment), &["--quiet"]);
        let lines = read_lines(&out);
        assert_same_rows(sorted(lines.clone()), every_row(), name);
        let lead = largest_lead(&lines);
        if alignment.is_empty() {
            // Without alignment the fast source runs through its 20 s at once: the check
            // below can tell the difference.
            assert!(lead > 10_000, "the fast source was only {lead} ms ahead");
        } else {
            // 1 s of drift, plus a batch (50 ms) and the watermark's 200 ms emit interval.
            assert!(
                lead <= 1_000 + 50 + 200 + SLOW_STEP_MS,
                "the fast source got {lead} ms ahead of the slow one"
            );
        }
    }
}

#[test]
fn alignment_options_that_do_not_go_together_are_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("out");
    let bad = |alignment: &str, expected: &[&str]| {
        let run = weir_run(dir.path(), &job(&out, alignment), &[]);
        assert!(!run.success, "accepted {alignment}");
        for e in expected {
            assert!(run.stderr.contains(e), "expected `{e}` in:\n{}", run.stderr);
        }
    };
    bad(
        ", 'scan.watermark.alignment.group' = 'g'",
        &[
            "table `fast`",
            "'scan.watermark.alignment.max-drift' is missing",
        ],
    );
    bad(
        ", 'scan.watermark.alignment.max-drift' = '1 s'",
        &["'scan.watermark.alignment.group' is missing"],
    );
    bad(
        ", 'scan.watermark.alignment.group' = 'g', 'scan.watermark.alignment.max-drift' = 'soon'",
        &["'scan.watermark.alignment.max-drift' = 'soon' is not a duration"],
    );
    let no_watermark = "CREATE TABLE t (seq BIGINT) WITH ('connector' = 'datagen', \
        'number-of-rows' = '5', 'scan.watermark.alignment.group' = 'g', \
        'scan.watermark.alignment.max-drift' = '1 s');
        CREATE TABLE o (seq BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO o SELECT seq FROM t;";
    let run = weir_run(dir.path(), no_watermark, &[]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("needs a WATERMARK declaration"),
        "{}",
        run.stderr
    );
}
