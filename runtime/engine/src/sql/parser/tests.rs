use arrow::datatypes::DataType;

use super::*;
use crate::catalog::{ColumnDef, ColumnKind, TableDef, WindowFunction};
use crate::types;

const SCRIPT: &str = "\
-- Bids from Kafka, totals to stdout.
SET 'pipeline.name' = 'bids';
SET parallelism.default = 4;

CREATE TEMPORARY TABLE bids (
    bidder BIGINT NOT NULL,
    price DECIMAL(10, 2),
    `comment` STRING COMMENT 'free text',
    bid_time TIMESTAMP(3),
    proc AS PROCTIME(),
    WATERMARK FOR bid_time AS bid_time - INTERVAL '5' SECOND,
    PRIMARY KEY (bidder) NOT ENFORCED
) COMMENT 'all bids' WITH (
    'connector' = 'kafka',
    'topic' = 'bids'
);

CREATE TABLE totals (bidder BIGINT, total DECIMAL(38, 2), ends TIMESTAMP_LTZ(3))
WITH ('connector' = 'print');

/* big bids,
   renamed */
CREATE VIEW big (b, p) AS SELECT bidder, price FROM bids WHERE price > 10;

EXECUTE STATEMENT SET BEGIN
  INSERT INTO totals SELECT b, SUM(p), CAST(NULL AS TIMESTAMP_LTZ(3)) FROM big GROUP BY b;
  INSERT INTO totals (bidder, total)
    SELECT bidder, SUM(price)
    FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bid_time), INTERVAL '1' MINUTE))
    GROUP BY bidder, window_start, window_end;
END;
";

fn parse(sql: &str) -> Script {
    match parse_script(sql) {
        Ok(script) => script,
        Err(e) => panic!("script should parse: {e}"),
    }
}

fn physical(column: &ColumnDef) -> (&DataType, bool, &str) {
    match &column.kind {
        ColumnKind::Physical {
            data_type,
            nullable,
            sql_type,
        } => (data_type, *nullable, sql_type),
        ColumnKind::Computed { .. } => panic!("`{}` should be physical", column.name),
    }
}

fn at(line: u64, column: u64) -> SqlLocation {
    SqlLocation { line, column }
}

#[test]
fn a_full_script_parses_into_tables_views_settings_and_inserts() {
    let script = parse(SCRIPT);

    assert_eq!(
        script.settings,
        vec![
            ("pipeline.name".to_string(), "bids".to_string()),
            ("parallelism.default".to_string(), "4".to_string()),
        ]
    );

    assert_eq!(script.tables.len(), 2);
    let bids = script.table("bids").expect("bids table");
    assert_eq!(bids.location, at(5, 24));
    let names: Vec<&str> = bids.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["bidder", "price", "comment", "bid_time", "proc"]);
    assert_eq!(
        physical(&bids.columns[0]),
        (&DataType::Int64, false, "BIGINT")
    );
    assert_eq!(
        physical(&bids.columns[1]),
        (&DataType::Decimal128(10, 2), true, "DECIMAL(10, 2)")
    );
    assert_eq!(
        physical(&bids.columns[2]),
        (&DataType::Utf8, true, "STRING")
    );
    assert_eq!(
        physical(&bids.columns[3]),
        (&types::timestamp_type(), true, "TIMESTAMP(3)")
    );
    assert!(matches!(
        &bids.columns[4].kind,
        ColumnKind::Computed { expr } if expr.to_string() == "PROCTIME()"
    ));
    assert_eq!(bids.columns[4].location, at(10, 5));
    let watermark = bids.watermark.as_ref().expect("watermark");
    assert_eq!(watermark.column, "bid_time");
    assert_eq!(watermark.expr.to_string(), "bid_time - INTERVAL '5' SECOND");
    assert_eq!(watermark.location, at(11, 5));
    assert_eq!(bids.connector(), Some("kafka"));
    assert_eq!(bids.options.get("topic").map(String::as_str), Some("bids"));
    assert_eq!(bids.physical_schema().fields().len(), 4);

    let totals = script.table("totals").expect("totals table");
    assert_eq!(
        physical(&totals.columns[2]),
        (&types::timestamp_ltz_type(), true, "TIMESTAMP_LTZ(3)")
    );
    assert!(totals.watermark.is_none());

    let big = script.view("big").expect("big view");
    assert_eq!(big.columns, ["b", "p"]);
    assert_eq!(
        big.query.to_string(),
        "SELECT bidder, price FROM bids WHERE price > 10"
    );
    assert_eq!(big.location, at(23, 13));

    assert_eq!(script.inserts.len(), 2);
    assert_eq!(script.inserts[0].table, "totals");
    assert!(script.inserts[0].columns.is_empty());
    assert_eq!(script.inserts[0].location, at(26, 15));
    assert_eq!(script.inserts[1].columns, ["bidder", "total"]);
    assert!(
        script.inserts[1]
            .query
            .to_string()
            .contains("FROM __weir_window_0 GROUP BY"),
        "{}",
        script.inserts[1].query
    );

    assert_eq!(script.windows.len(), 1);
    assert_eq!(script.windows[0].input, "bids");
    assert_eq!(
        script.windows[0].function,
        WindowFunction::Tumble {
            size: 60_000,
            offset: 0
        }
    );
}

#[test]
fn the_older_begin_statement_set_and_execute_insert_forms_parse() {
    let script = parse(
        "BEGIN STATEMENT SET;\n\
         INSERT INTO a SELECT * FROM b;\n\
         INSERT INTO c SELECT * FROM d;\n\
         END;\n\
         EXECUTE INSERT INTO e VALUES (1, 'x')",
    );
    let tables: Vec<&str> = script.inserts.iter().map(|i| i.table.as_str()).collect();
    assert_eq!(tables, ["a", "c", "e"]);
}

#[test]
fn types_map_to_arrow_types() {
    let script = parse(
        "CREATE TABLE t (a BOOLEAN, b TINYINT, c SMALLINT, d INTEGER, e FLOAT, \
         f DOUBLE PRECISION, g DECIMAL, h NUMERIC(5), i VARCHAR(10), j CHAR(2), k BYTES, \
         l VARBINARY(3), m DATE, n TIMESTAMP WITHOUT TIME ZONE, \
         o TIMESTAMP(3) WITH LOCAL TIME ZONE, p TIMESTAMP_LTZ, q timestamp(0))",
    );
    let types: Vec<DataType> = script.tables[0]
        .columns
        .iter()
        .map(|c| physical(c).0.clone())
        .collect();
    assert_eq!(
        types,
        vec![
            DataType::Boolean,
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal128(10, 0),
            DataType::Decimal128(5, 0),
            DataType::Utf8,
            DataType::Utf8,
            DataType::Binary,
            DataType::Binary,
            DataType::Date32,
            types::timestamp_type(),
            types::timestamp_ltz_type(),
            types::timestamp_ltz_type(),
            types::timestamp_type(),
        ]
    );
}

#[test]
fn primary_key_columns_become_not_null() {
    let script = parse(
        "CREATE TABLE t (a INT PRIMARY KEY NOT ENFORCED, b INT);\n\
         CREATE TABLE u (a INT, b INT, CONSTRAINT pk PRIMARY KEY (b, a) NOT ENFORCED)",
    );
    let nullable =
        |table: &TableDef| -> Vec<bool> { table.columns.iter().map(|c| physical(c).1).collect() };
    assert_eq!(nullable(&script.tables[0]), [false, true]);
    assert_eq!(nullable(&script.tables[1]), [false, false]);
}

#[test]
fn if_not_exists_skips_an_existing_table() {
    let script = parse(
        "CREATE TABLE t (a INT) WITH ('connector' = 'x');\n\
         CREATE TABLE IF NOT EXISTS t (b INT) WITH ('connector' = 'y')",
    );
    assert_eq!(script.tables.len(), 1);
    assert_eq!(script.tables[0].connector(), Some("x"));
}

fn unsupported(sql: &str) -> (SqlLocation, String) {
    match parse_script(sql) {
        Err(Error::Unsupported { location, message }) => (location, message),
        Err(other) => panic!("expected Unsupported for {sql:?}, got {other}"),
        Ok(_) => panic!("expected Unsupported for {sql:?}, but it parsed"),
    }
}

fn sql_error(sql: &str) -> (SqlLocation, String) {
    match parse_script(sql) {
        Err(Error::Sql { location, message }) => (location, message),
        Err(other) => panic!("expected Error::Sql for {sql:?}, got {other}"),
        Ok(_) => panic!("expected Error::Sql for {sql:?}, but it parsed"),
    }
}

#[test]
fn each_unsupported_query_construct_is_refused_at_its_keyword() {
    // (query on line 2 of an INSERT, line, column, words the message contains)
    let cases: &[(&str, u64, u64, &str)] = &[
        ("SELECT a FROM t ORDER BY a", 2, 17, "ORDER BY"),
        ("SELECT a FROM t LIMIT 10", 2, 17, "LIMIT"),
        ("SELECT a FROM t OFFSET 5", 2, 17, "OFFSET"),
        ("SELECT a FROM t FETCH FIRST 5 ROWS ONLY", 2, 17, "FETCH"),
        (
            "SELECT a, ROW_NUMBER() OVER (ORDER BY a) FROM t",
            2,
            11,
            "OVER",
        ),
        ("SELECT DISTINCT a FROM t", 2, 8, "SELECT DISTINCT"),
        ("SELECT a FROM t UNION SELECT a FROM u", 2, 17, "UNION ALL"),
        (
            "SELECT a FROM t INTERSECT SELECT a FROM u",
            2,
            17,
            "INTERSECT",
        ),
        ("SELECT a FROM t EXCEPT SELECT a FROM u", 2, 17, "EXCEPT"),
        (
            "SELECT a FROM t WHERE a IN (SELECT b FROM u)",
            2,
            25,
            "IN (SELECT",
        ),
        (
            "SELECT a FROM t WHERE EXISTS (SELECT b FROM u)",
            2,
            23,
            "EXISTS",
        ),
        ("SELECT (SELECT 1) FROM t", 2, 9, "scalar subqueries"),
        (
            "SELECT a FROM t JOIN LATERAL (SELECT b FROM u) x ON true",
            2,
            22,
            "LATERAL",
        ),
        ("SELECT v FROM UNNEST(ARRAY[1, 2]) AS x(v)", 2, 15, "UNNEST"),
        (
            "SELECT * FROM t MATCH_RECOGNIZE (PARTITION BY a ORDER BY ts MEASURES A.x AS x \
             PATTERN (A) DEFINE A AS A.x > 0)",
            2,
            17,
            "MATCH_RECOGNIZE",
        ),
        (
            "SELECT a, COUNT(*) FROM t GROUP BY GROUPING SETS ((a), (b))",
            2,
            36,
            "GROUPING SETS",
        ),
        (
            "SELECT a, COUNT(*) FROM t GROUP BY ROLLUP (a, b)",
            2,
            36,
            "ROLLUP",
        ),
        (
            "SELECT a, COUNT(*) FROM t GROUP BY CUBE (a, b)",
            2,
            36,
            "CUBE",
        ),
        // LEFT/RIGHT/FULL OUTER JOIN … ON parse: the planner runs them as window joins and
        // refuses the rest (see `sql::planner::tests`).
        ("SELECT a FROM t CROSS JOIN u", 2, 17, "CROSS JOIN"),
        ("SELECT a FROM t NATURAL JOIN u", 2, 17, "NATURAL JOIN"),
        ("SELECT a FROM t JOIN u USING (a)", 2, 24, "USING"),
        ("SELECT a FROM t, u", 2, 18, "comma-separated"),
        (
            "SELECT a FROM (SELECT a FROM t ORDER BY a)",
            2,
            32,
            "ORDER BY",
        ),
    ];
    for (query, line, column, words) in cases {
        let (location, message) = unsupported(&format!("INSERT INTO s\n{query}"));
        assert_eq!(
            location,
            at(*line, *column),
            "location for {query:?}: {message}"
        );
        assert!(
            message.contains(words),
            "message for {query:?} should mention {words:?}: {message}"
        );
    }
}

#[test]
fn inner_joins_union_all_and_aggregates_are_accepted() {
    parse(
        "INSERT INTO s\n\
         SELECT t.a, COUNT(DISTINCT u.b) FROM t INNER JOIN u ON t.a = u.a JOIN v ON v.a = t.a\n\
         WHERE t.a > 0 GROUP BY t.a HAVING COUNT(*) > 1\n\
         UNION ALL SELECT a, b FROM w",
    );
}

#[test]
fn views_are_checked_like_inserts() {
    let (location, message) = unsupported("CREATE VIEW v AS\nSELECT a FROM t ORDER BY a");
    assert_eq!(location, at(2, 17));
    assert!(message.contains("ORDER BY"), "{message}");
}

#[test]
fn each_unsupported_statement_is_refused_at_its_first_token() {
    let cases: &[(&str, SqlLocation, &str)] = &[
        (
            "SELECT 1",
            at(1, 1),
            "no sink; write INSERT INTO <table> SELECT",
        ),
        (
            "SET 'a' = 'b';\n  WITH x AS (SELECT 1) SELECT * FROM x",
            at(2, 3),
            "no sink",
        ),
        ("DROP TABLE t", at(1, 1), "DROP TABLE"),
        ("ALTER TABLE t RENAME TO u", at(1, 1), "ALTER TABLE"),
        ("USE CATALOG c", at(1, 1), "USE"),
        ("SHOW TABLES", at(1, 1), "SHOW TABLES"),
        (
            "CREATE FUNCTION f AS 'com.x.F'",
            at(1, 1),
            "CREATE FUNCTION",
        ),
        (
            "CREATE TEMPORARY SYSTEM FUNCTION f AS 'x'",
            at(1, 1),
            "CREATE FUNCTION",
        ),
        (
            "CREATE CATALOG c WITH ('type' = 'x')",
            at(1, 1),
            "CREATE CATALOG",
        ),
        ("CREATE DATABASE d", at(1, 1), "CREATE DATABASE"),
        ("RESET 'a'", at(1, 1), "RESET"),
        ("INSERT OVERWRITE t SELECT 1", at(1, 8), "INSERT OVERWRITE"),
        (
            "CREATE TABLE t (a BIGINT METADATA FROM 'offset')",
            at(1, 26),
            "METADATA",
        ),
        (
            "CREATE TABLE t (a INT) PARTITIONED BY (a) WITH ()",
            at(1, 24),
            "PARTITIONED BY",
        ),
        ("CREATE TABLE t (a INT) WITH () LIKE s", at(1, 32), "LIKE"),
        ("CREATE TABLE t AS SELECT 1", at(1, 16), "AS SELECT"),
        ("CREATE TABLE t (a TIMESTAMP(6))", at(1, 19), "TIMESTAMP(6)"),
        ("CREATE TABLE t (a ARRAY<INT>)", at(1, 19), "ARRAY"),
        (
            "INSERT INTO s SELECT /*+ OPTIONS('a'='b') */ a FROM t",
            at(1, 22),
            "hints",
        ),
        (
            "SELECT * FROM LATERAL TABLE(f(x))",
            at(1, 15),
            "LATERAL TABLE",
        ),
    ];
    for (sql, location, words) in cases {
        let (actual, message) = unsupported(sql);
        assert_eq!(actual, *location, "location for {sql:?}: {message}");
        assert!(
            message.contains(words),
            "message for {sql:?} should mention {words:?}: {message}"
        );
    }
}

#[test]
fn type_and_declaration_errors_name_line_and_column() {
    let cases: &[(&str, SqlLocation, &str)] = &[
        (
            "CREATE TABLE t (\n  a BIGINT,\n  b BLOB\n)",
            at(3, 5),
            "unknown type `BLOB`",
        ),
        (
            "CREATE TABLE t (a DECIMAL(40, 2))",
            at(1, 27),
            "DECIMAL precision",
        ),
        (
            "CREATE TABLE t (a DECIMAL(4, 6))",
            at(1, 30),
            "DECIMAL scale",
        ),
        (
            "CREATE TABLE t (a TIMESTAMP(12))",
            at(1, 29),
            "TIMESTAMP precision",
        ),
        (
            "CREATE TABLE t (a INT, b STRING, a BIGINT)",
            at(1, 34),
            "declared twice",
        ),
        (
            "CREATE TABLE t (a INT);\nCREATE VIEW t AS SELECT 1",
            at(2, 13),
            "already exists",
        ),
        (
            "CREATE TABLE t (\n  ts BIGINT,\n  WATERMARK FOR ts AS ts\n)",
            at(3, 17),
            "the time field type is BIGINT",
        ),
        (
            "CREATE TABLE t (a INT, WATERMARK FOR ts AS ts)",
            at(1, 38),
            "`ts` is not a column",
        ),
        (
            "CREATE TABLE t (a INT, PRIMARY KEY (a))",
            at(1, 24),
            "NOT ENFORCED",
        ),
        (
            "CREATE TABLE t (a INT, PRIMARY KEY (b) NOT ENFORCED)",
            at(1, 24),
            "`b` is not a column",
        ),
        (
            "CREATE TABLE t (a INT) WITH ('k' = 'v', 'k' = 'w')",
            at(1, 41),
            "given twice",
        ),
        (
            "CREATE TABLE t (a INT) WITH (k = 'v')",
            at(1, 30),
            "quoted option key",
        ),
        (
            "INSERT INTO s SELECT a FROM t WHERE )",
            at(1, 37),
            "Expected: an expression",
        ),
        ("SET 'a' = 'b' SET 'c' = 'd'", at(1, 15), "expected `;`"),
        ("INSERT INTO s SELECT 1 FROM", at(1, 28), "EOF"),
        (
            "EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;\n",
            at(1, 1),
            "never closed",
        ),
        (
            "EXECUTE STATEMENT SET BEGIN\nCREATE TABLE t (a INT);\nEND",
            at(2, 1),
            "only INSERT",
        ),
        ("SELECT 'unterminated", at(1, 8), "Unterminated string"),
    ];
    for (sql, location, words) in cases {
        let (actual, message) = sql_error(sql);
        assert_eq!(actual, *location, "location for {sql:?}: {message}");
        assert!(
            message.contains(words),
            "message for {sql:?} should mention {words:?}: {message}"
        );
    }
}

#[test]
fn a_watermark_on_a_computed_column_is_left_to_the_planner() {
    let script = parse(
        "CREATE TABLE t (ms BIGINT, ts AS TO_TIMESTAMP_LTZ(ms, 3), \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)",
    );
    assert_eq!(
        script.tables[0]
            .watermark
            .as_ref()
            .map(|w| w.column.as_str()),
        Some("ts")
    );
}

#[test]
fn check_supported_works_on_a_bare_query_ast() {
    let mut parser = Parser::new(&DIALECT)
        .try_with_sql("SELECT a FROM t\nORDER BY a")
        .expect("tokenizes");
    let query = parser.parse_query().expect("parses");
    match check_supported(&query) {
        Err(Error::Unsupported { location, .. }) => assert_eq!(location, at(2, 10)),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
