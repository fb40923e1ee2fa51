use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::Tokenizer;

use super::*;

fn rewrite(sql: &str) -> Result<(String, Vec<WindowTvfDef>)> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .expect("tokenizes");
    let (tokens, windows) = rewrite_window_tvfs(tokens)?;
    let text: Vec<String> = tokens.iter().map(|t| t.token.to_string()).collect();
    Ok((text.join(" "), windows))
}

fn window(sql: &str) -> WindowTvfDef {
    match rewrite(sql) {
        Ok((_, mut windows)) if windows.len() == 1 => windows.remove(0),
        Ok((_, windows)) => panic!("expected one window in {sql:?}, got {windows:?}"),
        Err(e) => panic!("{sql:?} should rewrite: {e}"),
    }
}

fn sql_error(sql: &str) -> (SqlLocation, String) {
    match rewrite(sql) {
        Err(Error::Sql { location, message }) => (location, message),
        Err(other) => panic!("expected Error::Sql for {sql:?}, got {other}"),
        Ok(_) => panic!("expected Error::Sql for {sql:?}, but it rewrote"),
    }
}

fn at(line: u64, column: u64) -> SqlLocation {
    SqlLocation { line, column }
}

const MINUTE: i64 = 60_000;

#[test]
fn tumble_call_is_replaced_by_a_synthetic_table() {
    let (text, windows) = rewrite(
        "SELECT * FROM TABLE(\n  TUMBLE(TABLE bids, DESCRIPTOR(bid_time), INTERVAL '10' MINUTES)) AS w",
    )
    .expect("rewrites");
    assert_eq!(text, "SELECT * FROM __weir_window_0 AS w");
    assert_eq!(
        windows,
        vec![WindowTvfDef {
            name: "__weir_window_0".into(),
            function: WindowFunction::Tumble {
                size: 10 * MINUTE,
                offset: 0
            },
            input: "bids".into(),
            time_column: "bid_time".into(),
            partition_by: vec![],
            location: at(2, 3),
        }]
    );
}

#[test]
fn each_window_function_reads_positional_arguments() {
    let cases = [
        (
            "TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '2' SECONDS)",
            WindowFunction::Tumble {
                size: 10_000,
                offset: 2_000,
            },
        ),
        (
            "HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '5' MINUTES, INTERVAL '10' MINUTES)",
            WindowFunction::Hop {
                slide: 5 * MINUTE,
                size: 10 * MINUTE,
                offset: 0,
            },
        ),
        (
            "CUMULATE(TABLE t, DESCRIPTOR(ts), INTERVAL '2' MINUTES, INTERVAL '1' HOUR, \
             INTERVAL '-1' MINUTE)",
            WindowFunction::Cumulate {
                step: 2 * MINUTE,
                max_size: 60 * MINUTE,
                offset: -MINUTE,
            },
        ),
        (
            "SESSION(TABLE t, DESCRIPTOR(ts), INTERVAL '1' DAY)",
            WindowFunction::Session {
                gap: 1_440 * MINUTE,
            },
        ),
    ];
    for (call, function) in cases {
        let def = window(&format!("SELECT * FROM TABLE({call})"));
        assert_eq!(def.function, function, "{call}");
        assert_eq!(
            (def.input.as_str(), def.time_column.as_str()),
            ("t", "ts"),
            "{call}"
        );
        assert_eq!(def.location, at(1, 21), "{call}");
    }
}

#[test]
fn each_window_function_reads_named_arguments_in_any_order() {
    let cases = [
        (
            "TUMBLE(DATA => TABLE t, TIMECOL => DESCRIPTOR(ts), SIZE => INTERVAL '10' SECONDS)",
            WindowFunction::Tumble {
                size: 10_000,
                offset: 0,
            },
        ),
        (
            "HOP(TIMECOL => DESCRIPTOR(ts), SIZE => INTERVAL '10' MINUTES, \
             DATA => TABLE t, SLIDE => INTERVAL '2' MINUTES)",
            WindowFunction::Hop {
                slide: 2 * MINUTE,
                size: 10 * MINUTE,
                offset: 0,
            },
        ),
        (
            "cumulate(data => table t, timecol => descriptor(ts), step => interval '1' minute, \
             size => interval '3' minutes, offset => interval '30' seconds)",
            WindowFunction::Cumulate {
                step: MINUTE,
                max_size: 3 * MINUTE,
                offset: 30_000,
            },
        ),
        (
            "SESSION(DATA => TABLE t, TIMECOL => DESCRIPTOR(ts), GAP => INTERVAL '30' SECONDS)",
            WindowFunction::Session { gap: 30_000 },
        ),
    ];
    for (call, function) in cases {
        let def = window(&format!("SELECT * FROM TABLE({call})"));
        assert_eq!(def.function, function, "{call}");
        assert_eq!(
            (def.input.as_str(), def.time_column.as_str()),
            ("t", "ts"),
            "{call}"
        );
    }
}

#[test]
fn session_reads_partition_keys_positionally_named_and_parenthesised() {
    for call in [
        "SESSION(TABLE bids PARTITION BY item, bidder, DESCRIPTOR(ts), INTERVAL '5' MINUTES)",
        "SESSION(TABLE bids PARTITION BY (item, bidder), DESCRIPTOR(ts), INTERVAL '5' MINUTES)",
        "SESSION(DATA => TABLE bids PARTITION BY item, bidder, TIMECOL => DESCRIPTOR(ts), \
         GAP => INTERVAL '5' MINUTES)",
    ] {
        let def = window(&format!("SELECT * FROM TABLE({call})"));
        assert_eq!(def.partition_by, ["item", "bidder"], "{call}");
        assert_eq!(
            def.function,
            WindowFunction::Session { gap: 5 * MINUTE },
            "{call}"
        );
    }
}

#[test]
fn calls_are_numbered_in_order_of_appearance() {
    let (text, windows) = rewrite(
        "SELECT * FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '1' SECOND)) x \
         JOIN TABLE(HOP(TABLE b, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '2' SECOND)) y \
         ON x.k = y.k",
    )
    .expect("rewrites");
    assert_eq!(
        text,
        "SELECT * FROM __weir_window_0 x JOIN __weir_window_1 y ON x . k = y . k"
    );
    let names: Vec<(&str, &str)> = windows
        .iter()
        .map(|w| (w.name.as_str(), w.input.as_str()))
        .collect();
    assert_eq!(names, [("__weir_window_0", "a"), ("__weir_window_1", "b")]);
}

#[test]
fn interval_literals_convert_to_milliseconds() {
    let cases = [
        ("INTERVAL '2.5' SECOND", 2_500),
        ("INTERVAL '1:30' MINUTE TO SECOND", 90_000),
        ("INTERVAL '1 02:00' DAY TO MINUTE", 26 * 60 * MINUTE),
        ("INTERVAL '1' DAYS", 1_440 * MINUTE),
        ("INTERVAL '2' HOURS", 120 * MINUTE),
        ("INTERVAL '500' MILLISECOND", 500),
        ("INTERVAL '10' SECOND(3)", 10_000),
    ];
    for (interval, millis) in cases {
        let def = window(&format!(
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), {interval}))"
        ));
        assert_eq!(
            def.function,
            WindowFunction::Tumble {
                size: millis,
                offset: 0
            },
            "{interval}"
        );
    }
}

#[test]
fn hop_size_must_be_a_multiple_of_the_slide() {
    let (location, message) = sql_error(
        "SELECT * FROM\nTABLE(HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '4' MINUTE, INTERVAL '10' MINUTE))",
    );
    assert_eq!(location, at(2, 7));
    assert_eq!(
        message,
        "HOP table function based aggregate requires size must be an integral multiple of \
         slide, but got size 600000 ms and slide 240000 ms"
    );
}

#[test]
fn malformed_calls_are_refused_at_the_offending_token() {
    let cases: &[(&str, SqlLocation, &str)] = &[
        (
            "SELECT * FROM TABLE(CUMULATE(TABLE t, DESCRIPTOR(ts), INTERVAL '3' MINUTE, INTERVAL '10' MINUTE))",
            at(1, 21),
            "maxSize must be an integral multiple of step",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '0' SECOND))",
            at(1, 21),
            "size > 0",
        ),
        (
            "SELECT * FROM TABLE(WINDOW(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))",
            at(1, 21),
            "unknown window function `WINDOW`",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts)))",
            at(1, 21),
            "missing its SIZE argument",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' SECOND))",
            at(1, 36),
            "only allowed in SESSION",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t, INTERVAL '1' SECOND, DESCRIPTOR(ts)))",
            at(1, 37),
            "TIMECOL expects DESCRIPTOR",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), SIZE => INTERVAL '1' SECOND, t))",
            at(1, 82),
            "expected TABLE <name>, DESCRIPTOR",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(DATA => TABLE t, WIDTH => INTERVAL '1' SECOND))",
            at(1, 45),
            "no parameter `WIDTH`",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MONTH))",
            at(1, 66),
            "day-time intervals",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL 'x' SECOND))",
            at(1, 62),
            "invalid seconds value",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)",
            at(1, 73),
            "expected `)` to close TABLE(TUMBLE(...))",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts)",
            at(1, 27),
            "never closed",
        ),
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
