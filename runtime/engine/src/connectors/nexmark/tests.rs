use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Int64Type, TimestampMillisecondType};

use super::generator::BASE_TIME_MS;
use super::*;
use crate::connectors::SourceEvent;
use crate::connectors::test_util::{
    assert_restore_is_exact, rows_as_text, run_source, source_context, table,
};
use crate::types::timestamp_type;

/// The table a `CREATE TABLE` statement declares, through Weir's SQL front end.
fn parse_ddl(ddl: &str) -> TableDef {
    let script = crate::sql::parser::parse_script(ddl).expect("the DDL parses");
    assert_eq!(script.tables.len(), 1);
    script.tables[0].clone()
}

fn with_options(def: &TableDef, extra: &[(&str, &str)]) -> TableDef {
    let mut def = def.clone();
    for (key, value) in extra {
        def.options.insert(key.to_string(), value.to_string());
    }
    def
}

fn count_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn all(batches: &[RecordBatch]) -> RecordBatch {
    concat_batches(&batches[0].schema(), batches).expect("same schema")
}

#[test]
fn the_documented_ddl_declares_valid_nexmark_tables() {
    for (ddl, columns) in [(PERSON_DDL, 8), (AUCTION_DDL, 10), (BID_DDL, 7)] {
        let def = parse_ddl(ddl);
        assert_eq!(def.columns.len(), columns, "{}", def.name);
        let watermark = def.watermark.as_ref().expect("a watermark");
        assert_eq!(watermark.column, "dateTime");
        NexmarkConnector
            .validate(&def, true)
            .expect("the documented DDL validates");
        let def = with_options(&def, &[("events.num", "100")]);
        let batch = all(&run_source(&NexmarkConnector, &def, 0, 1, 64).expect("runs"));
        assert_eq!(batch.num_columns(), columns);
        assert_eq!(batch.schema(), def.physical_schema());
    }
}

#[test]
fn nexmark_proportions_over_5000_events_are_100_300_4600() {
    let mut counts = Vec::new();
    for ddl in [PERSON_DDL, AUCTION_DDL, BID_DDL] {
        let def = with_options(&parse_ddl(ddl), &[("events.num", "5000")]);
        counts.push(count_rows(
            &run_source(&NexmarkConnector, &def, 0, 1, 1000).expect("runs"),
        ));
    }
    assert_eq!(counts, [100, 300, 4600]);
}

#[test]
fn nexmark_output_is_deterministic_for_the_same_event_numbers() {
    for ddl in [PERSON_DDL, AUCTION_DDL, BID_DDL] {
        let def = with_options(&parse_ddl(ddl), &[("events.num", "3000")]);
        let first = all(&run_source(&NexmarkConnector, &def, 0, 1, 100).expect("runs"));
        let again = all(&run_source(&NexmarkConnector, &def, 0, 1, 33).expect("runs"));
        assert_eq!(first, again, "{}", def.name);
    }
}

#[test]
fn nexmark_over_3_subtasks_equals_a_single_subtask_as_multisets() {
    for ddl in [PERSON_DDL, AUCTION_DDL, BID_DDL] {
        let def = with_options(&parse_ddl(ddl), &[("events.num", "10007")]);
        let mut single =
            rows_as_text(&run_source(&NexmarkConnector, &def, 0, 1, 256).expect("runs"));
        let mut parallel = Vec::new();
        for subtask in 0..3 {
            let batches = run_source(&NexmarkConnector, &def, subtask, 3, 256).expect("runs");
            parallel.extend(rows_as_text(&batches));
        }
        single.sort_unstable();
        parallel.sort_unstable();
        assert_eq!(single.len(), parallel.len(), "{}", def.name);
        assert!(
            single == parallel,
            "{}: subtasks differ from a single subtask",
            def.name
        );
    }
}

#[test]
fn every_parallel_subtask_emits_each_table_so_none_holds_back_the_watermark() {
    for ddl in [PERSON_DDL, AUCTION_DDL, BID_DDL] {
        let def = with_options(&parse_ddl(ddl), &[("events.num", "5000")]);
        for parallelism in [2, 5] {
            for subtask in 0..parallelism {
                let batches = run_source(&NexmarkConnector, &def, subtask, parallelism, 64);
                let rows = count_rows(&batches.expect("runs"));
                assert!(rows > 0, "{}: subtask {subtask} of {parallelism}", def.name);
            }
        }
    }
}

#[test]
fn declared_columns_may_be_a_subset_in_any_order() {
    let full = with_options(&parse_ddl(BID_DDL), &[("events.num", "2000")]);
    let subset = table(
        "bids",
        &[("DATETIME", timestamp_type()), ("price", DataType::Int64)],
        &[
            ("connector", "nexmark"),
            ("table", "bid"),
            ("events.num", "2000"),
        ],
    );
    NexmarkConnector
        .validate(&subset, true)
        .expect("a subset validates");
    let full = all(&run_source(&NexmarkConnector, &full, 0, 1, 500).expect("runs"));
    let subset = all(&run_source(&NexmarkConnector, &subset, 0, 1, 500).expect("runs"));
    assert_eq!(subset.column(0), full.column(5));
    assert_eq!(subset.column(1), full.column(2));
}

#[test]
fn bids_refer_to_existing_ids_and_advance_in_event_time() {
    let def = with_options(&parse_ddl(BID_DDL), &[("events.num", "50000")]);
    let batch = all(&run_source(&NexmarkConnector, &def, 0, 1, 4096).expect("runs"));
    let auction = batch.column(0).as_primitive::<Int64Type>();
    let bidder = batch.column(1).as_primitive::<Int64Type>();
    let price = batch.column(2).as_primitive::<Int64Type>();
    let time = batch.column(5).as_primitive::<TimestampMillisecondType>();
    // 50000 events hold 1000 persons and 3000 auctions; a few ids lead ahead by up to 10.
    assert!(
        auction
            .values()
            .iter()
            .all(|a| (1000..1000 + 3010).contains(a))
    );
    assert!(
        bidder
            .values()
            .iter()
            .all(|b| (1000..1000 + 1010).contains(b))
    );
    assert!(
        price
            .values()
            .iter()
            .all(|p| (100..=100_000_000).contains(p))
    );
    assert!(time.values().windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(time.value(0), BASE_TIME_MS);
    // 50000 events at 10000 events/s span five seconds.
    assert!(time.value(time.len() - 1) < BASE_TIME_MS + 5_000);
    let extra = batch.column(6).as_string::<i32>();
    let average = extra.values().len() as f64 / extra.len() as f64;
    assert!(
        (60.0..76.0).contains(&average),
        "average extra length {average}"
    );
    let hot = auction.values().iter().filter(|a| **a % 100 == 0).count();
    assert!(hot > batch.num_rows() / 3, "hot auctions: {hot}");
}

#[test]
fn persons_and_auctions_have_plausible_fields() {
    let persons = with_options(&parse_ddl(PERSON_DDL), &[("events.num", "5000")]);
    let batch = all(&run_source(&NexmarkConnector, &persons, 0, 1, 1000).expect("runs"));
    let id = batch.column(0).as_primitive::<Int64Type>();
    assert_eq!(id.values().to_vec(), (1000..1100).collect::<Vec<i64>>());
    let email = batch.column(2).as_string::<i32>();
    assert!(
        email
            .iter()
            .flatten()
            .all(|e| e.contains('@') && e.ends_with(".com"))
    );
    let card = batch.column(3).as_string::<i32>();
    assert!(
        card.iter()
            .flatten()
            .all(|c| c.len() == 19 && c.split(' ').count() == 4)
    );

    let auctions = with_options(&parse_ddl(AUCTION_DDL), &[("events.num", "5000")]);
    let batch = all(&run_source(&NexmarkConnector, &auctions, 0, 1, 1000).expect("runs"));
    let id = batch.column(0).as_primitive::<Int64Type>();
    assert_eq!(id.values().to_vec(), (1000..1300).collect::<Vec<i64>>());
    let initial = batch.column(3).as_primitive::<Int64Type>();
    let reserve = batch.column(4).as_primitive::<Int64Type>();
    assert!(
        initial
            .values()
            .iter()
            .zip(reserve.values())
            .all(|(i, r)| r > i)
    );
    let time = batch.column(5).as_primitive::<TimestampMillisecondType>();
    let expires = batch.column(6).as_primitive::<TimestampMillisecondType>();
    assert!(
        time.values()
            .iter()
            .zip(expires.values())
            .all(|(t, e)| e > t)
    );
    let category = batch.column(8).as_primitive::<Int64Type>();
    assert!(category.values().iter().all(|c| (10..15).contains(c)));
}

#[test]
fn bad_declarations_and_options_name_the_problem() {
    let error = |def: &TableDef| {
        NexmarkConnector
            .validate(def, true)
            .expect_err("invalid table")
            .to_string()
    };
    let bid = parse_ddl(BID_DDL);

    let mut missing = bid.clone();
    missing.options.remove("table");
    assert!(error(&missing).contains("missing required option 'table'"));

    let message = error(&with_options(&bid, &[("table", "bids")]));
    assert!(message.contains("'table' = 'bids'"), "{message}");

    let message = error(&with_options(&bid, &[("events.rates", "5")]));
    assert!(
        message.contains("'events.rates'") && message.contains("events.rate"),
        "{message}"
    );

    let message = error(&with_options(&bid, &[("first-event.rate", "0")]));
    assert!(message.contains("'first-event.rate'"), "{message}");

    let unknown = table(
        "bids",
        &[("itemName", DataType::Utf8)],
        &[("connector", "nexmark"), ("table", "bid")],
    );
    let message = error(&unknown);
    assert!(
        message.contains("'itemName'") && message.contains("auction BIGINT"),
        "{message}"
    );

    let wrong_type = table(
        "bids",
        &[("price", DataType::Int32)],
        &[("connector", "nexmark"), ("table", "bid")],
    );
    let message = error(&wrong_type);
    assert!(
        message.contains("'price'") && message.contains("BIGINT"),
        "{message}"
    );

    assert!(NexmarkConnector.validate(&bid, false).is_err());
}

#[test]
fn events_rate_throttles_the_wall_clock_rate() {
    let def = with_options(&parse_ddl(BID_DDL), &[("events.rate", "1000")]);
    let mut source = NexmarkConnector
        .create_source(source_context(&def, 0, 1, 4096))
        .expect("creates");
    match source.poll_next().expect("polls") {
        // One 50 ms bucket at 1000 events/s: 50 events, 46 of them bids.
        SourceEvent::Batch(batch) => assert!(batch.num_rows() <= 47, "{}", batch.num_rows()),
        other => panic!("expected a batch, got {other:?}"),
    }
}

#[test]
fn nexmark_restored_at_the_same_parallelism_continues_like_a_failure_free_run() {
    for ddl in [PERSON_DDL, AUCTION_DDL, BID_DDL] {
        let def = with_options(&parse_ddl(ddl), &[("events.num", "10007")]);
        for parallelism in [1, 2] {
            assert_restore_is_exact(&NexmarkConnector, &def, parallelism, parallelism, 97, |i| {
                3 + 2 * i
            });
        }
    }
}

#[test]
fn nexmark_rescaled_restore_produces_each_remaining_event_exactly_once() {
    for ddl in [PERSON_DDL, AUCTION_DDL, BID_DDL] {
        let def = with_options(&parse_ddl(ddl), &[("events.num", "10007")]);
        for (old, new) in [(2, 3), (2, 1), (3, 2)] {
            assert_restore_is_exact(&NexmarkConnector, &def, old, new, 61, |i| 2 + 3 * i);
        }
    }
}

#[test]
fn nexmark_split_records_the_next_event_of_the_subtasks_walk() {
    let def = with_options(&parse_ddl(BID_DDL), &[("events.num", "100000")]);
    let mut source = NexmarkConnector
        .create_source(source_context(&def, 1, 2, 46))
        .expect("creates");
    assert_eq!(
        source.snapshot_splits().expect("snapshots"),
        [serde_json::json!({
            "table": "bid", "next": 54, "epoch_stride": 2, "epoch_events": 50, "end": 100000
        })]
    );
    // One poll takes all 46 bids of epoch 1; the walk goes on with epoch 3.
    source.poll_next().expect("polls");
    let splits = source.snapshot_splits().expect("snapshots");
    assert_eq!(splits[0]["next"], 154);

    let unbounded = parse_ddl(BID_DDL);
    let mut source = NexmarkConnector
        .create_source(source_context(&unbounded, 0, 1, 10))
        .expect("creates");
    let splits = source.snapshot_splits().expect("snapshots");
    assert_eq!(splits[0]["end"], serde_json::Value::Null);
}

#[test]
fn nexmark_restore_on_fewer_subtasks_interleaves_the_splits_in_event_time_order() {
    // Unbounded: neither split may starve the other, and event time must not go back.
    let def = parse_ddl(BID_DDL);
    let mut splits = Vec::new();
    for subtask in 0..2 {
        let mut source = NexmarkConnector
            .create_source(source_context(&def, subtask, 2, 100))
            .expect("creates");
        for _ in 0..1 + 4 * subtask {
            source.poll_next().expect("polls");
        }
        splits.extend(source.snapshot_splits().expect("snapshots"));
    }
    let mut ctx = source_context(&def, 0, 1, 100);
    ctx.restored_splits = Some(splits.clone());
    let mut source = NexmarkConnector.create_source(ctx).expect("restores");
    let mut times = Vec::new();
    for _ in 0..20 {
        let SourceEvent::Batch(batch) = source.poll_next().expect("polls") else {
            panic!("an unbounded source yields batches")
        };
        let time = batch.column(5).as_primitive::<TimestampMillisecondType>();
        times.extend(time.values().iter().copied());
    }
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "event time went back"
    );
    let after = source.snapshot_splits().expect("snapshots");
    assert_eq!(after.len(), 2);
    for (old, new) in splits.iter().zip(&after) {
        assert!(
            new["next"].as_u64() > old["next"].as_u64(),
            "{old} did not advance"
        );
    }
}

#[test]
fn finished_nexmark_source_records_no_splits_and_a_restore_without_splits_ends() {
    let def = with_options(&parse_ddl(PERSON_DDL), &[("events.num", "500")]);
    let mut source = NexmarkConnector
        .create_source(source_context(&def, 0, 1, 1000))
        .expect("creates");
    while !matches!(source.poll_next().expect("polls"), SourceEvent::End) {}
    assert!(source.snapshot_splits().expect("snapshots").is_empty());

    let mut ctx = source_context(&def, 0, 1, 1000);
    ctx.restored_splits = Some(Vec::new());
    let mut restored = NexmarkConnector.create_source(ctx).expect("restores");
    assert!(matches!(
        restored.poll_next().expect("polls"),
        SourceEvent::End
    ));
}

#[test]
fn nexmark_split_of_another_table_or_proportion_is_refused_naming_both() {
    let bid = parse_ddl(BID_DDL);
    let mut source = NexmarkConnector
        .create_source(source_context(&bid, 0, 1, 10))
        .expect("creates");
    let splits = source.snapshot_splits().expect("snapshots");

    let restore = |def: &TableDef| {
        let mut ctx = source_context(def, 0, 1, 10);
        ctx.restored_splits = Some(splits.clone());
        match NexmarkConnector.create_source(ctx) {
            Ok(_) => panic!("restored a split of another table"),
            Err(error) => error.to_string(),
        }
    };
    let message = restore(&parse_ddl(PERSON_DDL));
    assert!(
        message.contains("`person`") && message.contains("'bid'"),
        "{message}"
    );
    let message = restore(&with_options(&bid, &[("bid.proportion", "10")]));
    assert!(message.contains("adding up to 50"), "{message}");
}

#[test]
fn throttled_nexmark_restored_on_fewer_subtasks_keeps_the_tables_rate() {
    // At 1000 events/s the first 50 ms bucket holds 46 bids for the whole table.
    let def = with_options(&parse_ddl(BID_DDL), &[("events.rate", "1000")]);
    let first_batch = |source: &mut Box<dyn Source>| match source.poll_next().expect("polls") {
        SourceEvent::Batch(batch) => batch.num_rows(),
        other => panic!("expected a batch, got {other:?}"),
    };
    let mut splits = Vec::new();
    for subtask in 0..2 {
        let mut source = NexmarkConnector
            .create_source(source_context(&def, subtask, 2, 4096))
            .expect("creates");
        let rows = first_batch(&mut source);
        assert!((20..=23).contains(&rows), "half the rate: {rows}");
        splits.extend(source.snapshot_splits().expect("snapshots"));
    }
    let mut ctx = source_context(&def, 0, 1, 4096);
    ctx.restored_splits = Some(splits);
    let mut source = NexmarkConnector.create_source(ctx).expect("restores");
    let rows = first_batch(&mut source);
    assert!((44..=46).contains(&rows), "the whole rate: {rows}");
}

/// Measures single-core throughput; run with `--ignored` on an idle machine.
#[test]
#[ignore = "benchmark"]
fn nexmark_bid_throughput_on_one_core() {
    let def = with_options(&parse_ddl(BID_DDL), &[("events.num", "20000000")]);
    let mut source = NexmarkConnector
        .create_source(source_context(&def, 0, 1, 8192))
        .expect("creates");
    let start = std::time::Instant::now();
    let mut rows = 0;
    while let SourceEvent::Batch(batch) = source.poll_next().expect("polls") {
        rows += batch.num_rows();
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64();
    eprintln!("nexmark: {rows} bids, {:.1} M bids/s", rate / 1e6);
}
