//! Wrong scripts, options and files: a clear message that says what and where, a non-zero
//! exit code, no panic.

use crate::support::weir_run;

fn fails_with(sql: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("in.csv"), "a,1\nb,oops\n").expect("write input");
    let run = weir_run(dir.path(), sql, &[]);
    assert!(
        !run.success,
        "expected a failure, got success:\n{}",
        run.stdout
    );
    for e in expected {
        assert!(
            run.stderr.contains(e),
            "expected `{e}` in the error:\n{}",
            run.stderr
        );
    }
}

const SINK: &str = "CREATE TABLE out (name STRING, n INT) WITH ('connector' = 'blackhole');\n";

#[test]
fn an_unknown_connector_lists_the_available_ones() {
    fails_with(
        &format!(
            "CREATE TABLE t (name STRING, n INT) WITH ('connector' = 'kafkaa');\n{SINK}INSERT INTO out SELECT name, n FROM t;"
        ),
        &["unknown connector 'kafkaa'", "datagen", "filesystem"],
    );
}

#[test]
fn an_unknown_option_lists_the_valid_ones() {
    fails_with(
        &format!(
            "CREATE TABLE t (name STRING, n INT) WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv', 'csv.delimiter' = ';');\n{SINK}INSERT INTO out SELECT name, n FROM t;"
        ),
        &["'csv.delimiter'", "csv.field-delimiter"],
    );
}

#[test]
fn a_missing_required_option_is_named() {
    fails_with(
        &format!(
            "CREATE TABLE t (name STRING, n INT) WITH ('connector' = 'filesystem', 'format' = 'csv');\n{SINK}INSERT INTO out SELECT name, n FROM t;"
        ),
        &["'path'"],
    );
}

#[test]
fn an_unknown_column_is_reported_with_line_and_column() {
    fails_with(
        &format!(
            "CREATE TABLE t (name STRING, n INT) WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv');\n{SINK}INSERT INTO out\nSELECT name, nope FROM t;"
        ),
        &["line 4", "nope"],
    );
}

#[test]
fn unsupported_sql_names_the_construct_and_its_place() {
    fails_with(
        &format!(
            "CREATE TABLE t (name STRING, n INT) WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv');\n{SINK}INSERT INTO out SELECT name, n FROM t\nORDER BY n;"
        ),
        &["ORDER BY", "line 4"],
    );
}

#[test]
fn a_syntax_error_has_line_and_column() {
    fails_with(
        "CREATE TABLE t (name STRING,, n INT) WITH ('connector' = 'blackhole');",
        &["line 1, column"],
    );
}

#[test]
fn a_missing_input_file_is_named() {
    fails_with(
        &format!(
            "CREATE TABLE t (name STRING, n INT) WITH ('connector' = 'filesystem', 'path' = 'no/such/file.csv', 'format' = 'csv');\n{SINK}INSERT INTO out SELECT name, n FROM t;"
        ),
        &["no/such/file.csv"],
    );
}

#[test]
fn a_malformed_csv_row_names_the_file_and_line() {
    fails_with(
        &format!(
            "CREATE TABLE t (name STRING, n INT) WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv');\n{SINK}INSERT INTO out SELECT name, n FROM t;"
        ),
        &["in.csv:2", "oops"],
    );
}

#[test]
fn a_type_mismatch_with_the_sink_names_the_column() {
    fails_with(
        "CREATE TABLE t (name STRING, n INT) WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv');\n\
         CREATE TABLE out (name INT, n INT) WITH ('connector' = 'blackhole');\n\
         INSERT INTO out SELECT name, n FROM t;",
        &["`name`", "STRING", "INT"],
    );
}

#[test]
fn parallelism_above_max_parallelism_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = weir_run(
        dir.path(),
        "CREATE TABLE t (n INT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\n\
         CREATE TABLE out (n INT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT n FROM t;",
        &["--parallelism", "8", "--max-parallelism", "4"],
    );
    assert!(!run.success);
    assert!(run.stderr.contains("max parallelism"), "{}", run.stderr);
}
