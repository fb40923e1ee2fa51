//! Which operators the planner chooses for windowed SQL, and what it refuses, checked on the
//! job graph's node names (what `weir explain` shows).

use std::time::Duration;

use super::{PlanOptions, plan_script};
use crate::dataflow::graph::JobGraph;
use crate::error::{Error, Result};
use crate::sql::parser::parse_script;

const TABLES: &str = "
CREATE TABLE a (k STRING, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE b (k STRING, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE plain (k STRING, v INT, ts TIMESTAMP(3))
  WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE out4 (c1 STRING, c2 STRING, c3 INT, c4 INT) WITH ('connector' = 'blackhole');
CREATE TABLE out2 (c1 STRING, c2 BIGINT) WITH ('connector' = 'print');
";

fn plan(sql: &str) -> Result<JobGraph> {
    let script = parse_script(&format!("{TABLES}{sql}"))?;
    plan_script(
        &script,
        &PlanOptions {
            parallelism: 4,
            max_parallelism: 128,
            watermark_interval: Duration::from_millis(200),
        },
    )
}

fn names(graph: &JobGraph) -> Vec<String> {
    graph.nodes.iter().map(|n| n.name.clone()).collect()
}

/// The one node whose name starts with `prefix` (panics otherwise).
fn node(graph: &JobGraph, prefix: &str) -> String {
    let found: Vec<String> = names(graph)
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "nodes starting with {prefix}: {:#?}",
        names(graph)
    );
    found[0].clone()
}

fn has(graph: &JobGraph, prefix: &str) -> bool {
    names(graph).iter().any(|n| n.starts_with(prefix))
}

fn refusal(sql: &str) -> String {
    match plan(sql) {
        Err(e @ (Error::Sql { .. } | Error::Unsupported { .. })) => e.to_string(),
        Err(other) => panic!("expected a planning error with a location, got {other}"),
        Ok(graph) => panic!("expected a planning error, got {:#?}", names(&graph)),
    }
}

const TUMBLE_JOIN: &str = "
INSERT INTO out4 SELECT L.k, R.k, L.v, R.v
FROM (SELECT * FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '5' SECOND))) L
{JOIN} (SELECT * FROM TABLE(TUMBLE(TABLE b, DESCRIPTOR(ts), INTERVAL '5' SECOND))) R
ON L.window_start = R.window_start AND L.window_end = R.window_end AND L.k = R.k {MORE};";

fn tumble_join(join: &str, more: &str) -> String {
    TUMBLE_JOIN.replace("{JOIN}", join).replace("{MORE}", more)
}

#[test]
fn a_join_of_two_window_tvfs_on_both_window_bounds_is_a_window_join() {
    let graph = plan(&tumble_join("JOIN", "AND L.v < R.v")).unwrap();
    let join = node(&graph, "WindowJoin");
    assert!(join.contains("joinType=[InnerJoin]"), "{join}");
    assert!(join.contains("TUMBLE(size=5000 ms)"), "{join}");
    assert!(
        !has(&graph, "Join("),
        "no regular join: {:#?}",
        names(&graph)
    );
    // Both inputs are hash-partitioned on the window bounds and the key.
    let id = graph
        .nodes
        .iter()
        .position(|n| n.name.starts_with("WindowJoin"))
        .unwrap();
    let inputs: Vec<_> = graph.edges.iter().filter(|e| e.to == id).collect();
    assert_eq!(inputs.len(), 2);
    for e in inputs {
        assert!(
            matches!(&e.partitioning, crate::dataflow::graph::Partitioning::Hash(k) if k.len() == 3),
            "{:?}",
            e.partitioning
        );
    }
}

#[test]
fn outer_window_joins_are_planned_with_their_join_type() {
    for (sql, name) in [
        ("LEFT JOIN", "LeftOuterJoin"),
        ("RIGHT JOIN", "RightOuterJoin"),
        ("FULL OUTER JOIN", "FullOuterJoin"),
    ] {
        let graph = plan(&tumble_join(sql, "")).unwrap();
        assert!(node(&graph, "WindowJoin").contains(name), "{sql}");
    }
}

#[test]
fn a_join_missing_the_window_end_equality_stays_a_regular_join() {
    let sql = "
INSERT INTO out4 SELECT L.k, R.k, L.v, R.v
FROM (SELECT * FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '5' SECOND))) L
JOIN (SELECT * FROM TABLE(TUMBLE(TABLE b, DESCRIPTOR(ts), INTERVAL '5' SECOND))) R
ON L.window_start = R.window_start AND L.k = R.k;";
    let graph = plan(sql).unwrap();
    assert!(has(&graph, "Join(joinType=[InnerJoin]"));
    assert!(!has(&graph, "WindowJoin"));
    let outer = sql.replace("\nJOIN", "\nLEFT JOIN");
    assert!(refusal(&outer).contains("supported only as window joins"));
}

#[test]
fn a_window_join_of_different_windows_is_regular_when_inner_and_refused_when_outer() {
    let sql = tumble_join("JOIN", "").replacen("INTERVAL '5' SECOND", "INTERVAL '10' SECOND", 1);
    let graph = plan(&sql).unwrap();
    assert!(has(&graph, "Join(joinType=[InnerJoin]") && !has(&graph, "WindowJoin"));
    let outer =
        tumble_join("LEFT JOIN", "").replacen("INTERVAL '5' SECOND", "INTERVAL '10' SECOND", 1);
    let message = refusal(&outer);
    assert!(message.contains("same window on both inputs"), "{message}");
}

const INTERVAL_JOIN: &str = "
INSERT INTO out4 SELECT a.k, b.k, a.v, b.v FROM a JOIN b ON a.k = b.k AND {COND};";

#[test]
fn time_bounds_between_two_time_attributes_make_an_interval_join() {
    let cases = [
        (
            "a.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts + INTERVAL '5' SECOND",
            "leftLowerBound=-5000, leftUpperBound=5000",
        ),
        (
            "a.ts >= b.ts - INTERVAL '1' SECOND AND a.ts < b.ts + INTERVAL '2' SECOND",
            "leftLowerBound=-1000, leftUpperBound=1999",
        ),
        (
            "b.ts > a.ts AND b.ts <= a.ts + INTERVAL '1' MINUTE",
            "leftLowerBound=-60000, leftUpperBound=-1",
        ),
        (
            "a.ts - INTERVAL '3' SECOND <= b.ts AND a.ts + INTERVAL '3' SECOND > b.ts AND a.v > b.v",
            "leftLowerBound=-2999, leftUpperBound=3000",
        ),
    ];
    for (condition, bounds) in cases {
        let graph = plan(&INTERVAL_JOIN.replace("{COND}", condition)).unwrap();
        let join = node(&graph, "IntervalJoin");
        assert!(join.contains(bounds), "{condition}: {join}");
    }
    let graph = plan(&INTERVAL_JOIN.replace(
        "{COND}",
        "a.v > b.v AND a.ts BETWEEN b.ts AND b.ts + INTERVAL '1' SECOND",
    ))
    .unwrap();
    assert!(node(&graph, "IntervalJoin").contains("where=[a.k = b.k AND a.v > b.v]"));
}

#[test]
fn a_join_with_one_time_bound_or_without_time_attributes_stays_regular() {
    for condition in [
        "a.ts >= b.ts",
        "a.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts + INTERVAL '5' SECOND AND a.ts > b.ts",
        "CAST(a.ts AS TIMESTAMP(3)) >= b.ts AND a.ts <= b.ts",
    ] {
        let graph = plan(&INTERVAL_JOIN.replace("{COND}", condition)).unwrap();
        assert!(!has(&graph, "IntervalJoin"), "{condition}");
        assert!(has(&graph, "Join(joinType=[InnerJoin]"), "{condition}");
    }
    let sql = "INSERT INTO out4 SELECT plain.k, b.k, plain.v, b.v FROM plain JOIN b ON plain.k = b.k \
               AND plain.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts;";
    assert!(!has(&plan(sql).unwrap(), "IntervalJoin"));
}

#[test]
fn outer_interval_joins_are_refused_with_a_location() {
    let sql = INTERVAL_JOIN
        .replace("{COND}", "a.ts BETWEEN b.ts AND b.ts + INTERVAL '1' SECOND")
        .replace(" JOIN b", " LEFT JOIN b");
    let message = refusal(&sql);
    assert!(
        message.contains("LEFT interval joins are not supported"),
        "{message}"
    );
    assert!(message.contains("line "), "{message}");
}

#[test]
fn a_regular_join_output_has_no_time_attribute_for_a_window() {
    let sql = "
CREATE VIEW joined AS SELECT a.k, a.ts FROM a JOIN b ON a.k = b.k;
INSERT INTO out2 SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE joined, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY k, window_start, window_end;";
    let message = refusal(sql);
    assert!(message.contains("to be a time attribute"), "{message}");
}

const Q5: &str = "
CREATE VIEW counts AS SELECT k, COUNT(*) AS num, window_start AS starttime, window_end AS endtime
  FROM TABLE(HOP(TABLE a, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
  GROUP BY k, window_start, window_end;
INSERT INTO out2 SELECT C.k, C.num FROM counts C
JOIN (SELECT MAX(num) AS maxn, starttime, endtime FROM counts GROUP BY starttime, endtime) M
ON C.starttime = M.starttime AND C.endtime = M.endtime AND C.num >= M.maxn;";

#[test]
fn nexmark_q5_is_window_aggregates_over_window_columns_and_a_window_join() {
    let graph = plan(Q5).unwrap();
    let over_columns = node(
        &graph,
        "WindowAggregate(window=[HOP(slide=2000 ms, size=10000 ms), win_start=[starttime]",
    );
    assert!(over_columns.contains("win_end=[endtime]"), "{over_columns}");
    assert!(node(&graph, "WindowJoin").contains("HOP(slide=2000 ms, size=10000 ms)"));
    assert!(!has(&graph, "GroupAggregate") && !has(&graph, "Join("));
    assert!(
        graph.nodes.iter().all(|n| !n.updating),
        "{:#?}",
        names(&graph)
    );
}

#[test]
fn a_window_aggregate_over_a_projected_window_tvf_reads_the_window_columns() {
    let sql = "
INSERT INTO out2 SELECT k, COUNT(*) FROM
  (SELECT k, window_start AS ws, window_end AS we FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '5' SECOND)))
GROUP BY k, ws, we;";
    let graph = plan(sql).unwrap();
    assert!(node(&graph, "WindowAggregate").contains("win_start=[ws]"));
    assert!(!has(&graph, "GroupAggregate"));
}

#[test]
fn grouping_by_only_one_window_bound_stays_an_updating_aggregate() {
    let sql = "
CREATE VIEW counts AS SELECT k, COUNT(*) AS num, window_start, window_end
  FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY k, window_start, window_end;
INSERT INTO out2 SELECT k, MAX(num) FROM counts GROUP BY k, window_start;";
    let graph = plan(sql).unwrap();
    assert!(has(&graph, "GroupAggregate"));
}
