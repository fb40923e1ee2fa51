//! `weir bench`: the Nexmark queries and three reference jobs, unthrottled, each in its own
//! `weir run` process so that its peak memory is its own. Prints events/s and peak RSS.
//!
//! With `--checkpoint-interval`, every job also runs with checkpoints to a fresh `file://`
//! directory, alternating with the run without, and the cost of checkpointing is printed.
//! With `--cluster-workers N`, every job also runs on a coordinator and N worker processes on
//! loopback, alternating with the embedded run, and the cost of the network path is printed.
//! `--only savepoint-1gb` (never part of the default set) builds about `--state-bytes` of keyed
//! state, stops the job with a savepoint and restores it at `--restore-parallelism` (see
//! [`savepoint`]).
//!
//! Figures are recorded in `docs/benchmarks.md` with the command that produced them.

mod savepoint;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Events per Nexmark query.
    #[arg(long, default_value_t = 10_000_000)]
    pub nexmark_events: u64,
    /// Rows per datagen job.
    #[arg(long, default_value_t = 50_000_000)]
    pub datagen_rows: u64,
    /// Parallelism of every job.
    #[arg(long, short = 'p', default_value_t = 1)]
    pub parallelism: usize,
    /// Only these jobs (e.g. q0,q5,interval-join,stateless,window); all when empty.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Runs of each job; the best is reported.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Also run every job with checkpoints every this long (e.g. `1s`) to a fresh `file://`
    /// directory, alternating with the run without, and print the cost.
    #[arg(long)]
    pub checkpoint_interval: Option<String>,
    /// Also run every job on a coordinator and this many worker processes on loopback
    /// (`weir coordinator`, `weir worker`), alternating with the embedded run, and print the
    /// cost of the network path.
    #[arg(long)]
    pub cluster_workers: Option<usize>,
    /// `savepoint-1gb`: bytes of keyed state to build before the savepoint.
    #[arg(long, default_value_t = 1 << 30)]
    pub state_bytes: u64,
    /// `savepoint-1gb`: the parallelism the savepoint is restored at.
    #[arg(long, default_value_t = 2)]
    pub restore_parallelism: usize,
}

/// One benchmark job: its SQL, and how many events it processes.
pub struct BenchJob {
    pub name: &'static str,
    pub sql: String,
    pub events: u64,
}

pub fn nexmark_tables(events: u64) -> String {
    nexmark_tables_at(events, 10_000_000)
}

/// The Nexmark tables with `rate` events per second of event time.
fn nexmark_tables_at(events: u64, rate: u64) -> String {
    let with = |table: &str| {
        format!(
            "'connector' = 'nexmark', 'table' = '{table}', 'events.num' = '{events}', 'first-event.rate' = '{rate}', 'next-event.rate' = '{rate}'"
        )
    };
    format!(
        "CREATE TABLE person (id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING, state STRING, dateTime TIMESTAMP(3), extra STRING, WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND) WITH ({});\n\
         CREATE TABLE auction (id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT, dateTime TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING, WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND) WITH ({});\n\
         CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, dateTime TIMESTAMP(3), extra STRING, WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND) WITH ({});\n",
        with("person"),
        with("auction"),
        with("bid")
    )
}

pub fn datagen_bids(rows: u64) -> String {
    datagen_bids_with(rows, "")
}

/// The bids table with more `WITH` options (each starting with a comma).
fn datagen_bids_with(rows: u64, options: &str) -> String {
    format!(
        "CREATE TABLE bids (seq BIGINT, auction INT, bidder INT, price INT, ts AS TO_TIMESTAMP_LTZ(seq / 10, 3), WATERMARK FOR ts AS ts - INTERVAL '4' SECOND) WITH (\
         'connector' = 'datagen', 'rows-per-second' = '1000000000', \
         'fields.seq.kind' = 'sequence', 'fields.seq.start' = '1', 'fields.seq.end' = '{rows}', \
         'fields.auction.min' = '0', 'fields.auction.max' = '9999', \
         'fields.price.min' = '1', 'fields.price.max' = '1000'{options});\n"
    )
}

/// The windowed job's source subtasks stay within a minute of event time of each other. At
/// parallelism 2 and above they otherwise drift apart by up to 40 minutes of event time (one
/// runs steadily faster), every window in between stays open in the aggregate, and the run
/// spills to RocksDB or not by chance. The interval is short because the job goes through
/// its event time 2,000 times as fast as real time (see `dataflow::alignment`).
const WINDOW_ALIGNMENT: &str = ", 'scan.watermark.alignment.group' = 'bids', \
    'scan.watermark.alignment.max-drift' = '1 min', \
    'scan.watermark.alignment.update-interval' = '10 ms'";

/// Every benchmark job, in the order they run.
pub fn jobs(args: &BenchArgs) -> Vec<BenchJob> {
    let n = args.nexmark_events;
    let nexmark = |name: &'static str, query: &str| BenchJob {
        name,
        sql: format!("{}{query}", nexmark_tables(n)),
        events: n,
    };
    let rows = args.datagen_rows;
    vec![
        nexmark(
            "q0",
            "CREATE TABLE sink (auction BIGINT, bidder BIGINT, price BIGINT, dateTime TIMESTAMP(3), extra STRING) WITH ('connector' = 'blackhole');\n\
             INSERT INTO sink SELECT auction, bidder, price, dateTime, extra FROM bid;",
        ),
        nexmark(
            "q1",
            "CREATE TABLE sink (auction BIGINT, bidder BIGINT, price DECIMAL(23, 3), dateTime TIMESTAMP(3), extra STRING) WITH ('connector' = 'blackhole');\n\
             INSERT INTO sink SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid;",
        ),
        nexmark(
            "q2",
            "CREATE TABLE sink (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');\n\
             INSERT INTO sink SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;",
        ),
        nexmark(
            "q5",
            "CREATE TABLE sink (auction BIGINT, num BIGINT) WITH ('connector' = 'blackhole');\n\
             INSERT INTO sink SELECT AuctionBids.auction, AuctionBids.num FROM (\n\
               SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime\n\
               FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))\n\
               GROUP BY auction, window_start, window_end\n\
             ) AS AuctionBids JOIN (\n\
               SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime FROM (\n\
                 SELECT count(*) AS num, window_start AS starttime, window_end AS endtime\n\
                 FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))\n\
                 GROUP BY auction, window_start, window_end\n\
               ) AS CountBids GROUP BY CountBids.starttime, CountBids.endtime\n\
             ) AS MaxBids\n\
             ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime AND AuctionBids.num >= MaxBids.maxn;",
        ),
        nexmark(
            "q7",
            "CREATE TABLE sink (auction BIGINT, price BIGINT, bidder BIGINT, dateTime TIMESTAMP(3), extra STRING) WITH ('connector' = 'blackhole');\n\
             INSERT INTO sink SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra FROM bid B JOIN (\n\
               SELECT MAX(price) AS maxprice, window_end AS dateTime\n\
               FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))\n\
               GROUP BY window_start, window_end\n\
             ) B1 ON B.price = B1.maxprice\n\
             WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime;",
        ),
        nexmark(
            "q8",
            "CREATE TABLE sink (id BIGINT, name STRING, stime TIMESTAMP(3)) WITH ('connector' = 'blackhole');\n\
             INSERT INTO sink SELECT P.id, P.name, P.starttime FROM (\n\
               SELECT id, name, window_start AS starttime, window_end AS endtime\n\
               FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))\n\
               GROUP BY id, name, window_start, window_end\n\
             ) P JOIN (\n\
               SELECT seller, window_start AS starttime, window_end AS endtime\n\
               FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))\n\
               GROUP BY seller, window_start, window_end\n\
             ) A ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime;",
        ),
        // Not a Nexmark query: bids within 10 s of their auction's creation, an interval join.
        // At 100,000 events per second of event time, 10 M events cover 100 s, so a tenth of
        // the rows is cached at a time (at Nexmark's usual 10 M/s nothing would expire).
        BenchJob {
            name: "interval-join",
            sql: format!(
                "{}CREATE TABLE sink (auction BIGINT, bidder BIGINT, price BIGINT, seller BIGINT) WITH ('connector' = 'blackhole');\n\
                 INSERT INTO sink SELECT B.auction, B.bidder, B.price, A.seller FROM bid B JOIN auction A\n\
                 ON B.auction = A.id AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '10' SECOND;",
                nexmark_tables_at(n, 100_000)
            ),
            events: n,
        },
        BenchJob {
            name: "stateless",
            sql: format!(
                "{}CREATE TABLE sink (auction INT, bidder INT, price DECIMAL(38, 3), ts TIMESTAMP_LTZ(3)) WITH ('connector' = 'blackhole');\n\
                 INSERT INTO sink SELECT auction, bidder, price * 0.908, ts FROM bids WHERE price > 100;",
                datagen_bids(rows)
            ),
            events: rows,
        },
        BenchJob {
            name: "window",
            sql: format!(
                "{}CREATE TABLE sink (auction INT, window_start TIMESTAMP(3), window_end TIMESTAMP(3), bids BIGINT, max_price INT) WITH ('connector' = 'blackhole');\n\
                 INSERT INTO sink SELECT auction, window_start, window_end, COUNT(*), MAX(price)\n\
                 FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))\n\
                 GROUP BY auction, window_start, window_end;",
                datagen_bids_with(rows, WINDOW_ALIGNMENT)
            ),
            events: rows,
        },
    ]
}

struct Figures {
    seconds: f64,
    peak_rss_bytes: u64,
}

/// How a job is run: embedded, with checkpoints, or on worker processes.
#[derive(Debug, Clone, Copy)]
enum Variant<'a> {
    Embedded,
    Checkpointed(&'a str),
    Cluster { workers: usize },
}

impl Variant<'_> {
    fn label(&self, job: &str) -> String {
        match self {
            Variant::Embedded => job.to_string(),
            Variant::Checkpointed(_) => format!("{job}+ckpt"),
            Variant::Cluster { workers } => format!("{job}+{workers}w"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Variant::Embedded => "embedded".into(),
            Variant::Checkpointed(interval) => format!("checkpoints every {interval}"),
            Variant::Cluster { workers } => format!("coordinator + {workers} workers"),
        }
    }
}

/// Kills the worker processes of a cluster run when dropped, whatever happened.
struct Workers(Vec<std::process::Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn run_one(
    job: &BenchJob,
    parallelism: usize,
    dir: &std::path::Path,
    variant: Variant<'_>,
) -> anyhow::Result<Figures> {
    let sql_path = dir.join(format!("{}.sql", job.name));
    let stats_path = dir.join(format!("{}.json", job.name));
    let _ = std::fs::remove_file(&stats_path);
    std::fs::write(&sql_path, &job.sql)?;
    let exe = std::env::current_exe().context("cannot find the weir executable")?;
    let mut command = Command::new(&exe);
    let mut workers = Workers(Vec::new());
    match variant {
        Variant::Cluster { workers: n } => {
            let n = n.max(1);
            let port = free_port()?;
            let slots = parallelism.div_ceil(n).max(1);
            for i in 0..n {
                let log = std::fs::File::create(dir.join(format!("worker-{i}.log")))?;
                let child = Command::new(&exe)
                    .arg("worker")
                    .arg("--coordinator")
                    .arg(format!("http://127.0.0.1:{port}"))
                    .arg("--slots")
                    .arg(slots.to_string())
                    .arg("--data-port")
                    .arg("0")
                    .arg("--name")
                    .arg(format!("bench-{i}"))
                    .arg("--state-dir")
                    .arg(dir.join(format!("worker-{i}-state")))
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(log)
                    .spawn()
                    .context("cannot start weir worker")?;
                workers.0.push(child);
            }
            command
                .arg("coordinator")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"));
        }
        _ => {
            command.arg("run");
        }
    }
    command
        .arg("--quiet")
        .arg("--parallelism")
        .arg(parallelism.to_string())
        .arg("--stats-json")
        .arg(&stats_path);
    let checkpoints = dir.join(format!("ckpt-{}", job.name));
    if let Variant::Checkpointed(interval) = variant {
        let _ = std::fs::remove_dir_all(&checkpoints);
        command
            .arg("--checkpoint-dir")
            .arg(format!("file://{}", checkpoints.display()))
            .arg("--checkpoint-interval")
            .arg(interval);
    }
    let started = Instant::now();
    let output = command.arg(&sql_path).output()?;
    let _ = std::fs::remove_dir_all(&checkpoints);
    drop(workers);
    let wall = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "{} ({}) failed: {}",
            job.name,
            variant.describe(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stats = std::fs::read_to_string(&stats_path)?;
    let field = |name: &str| -> Option<f64> {
        let start = stats.find(&format!("\"{name}\":"))? + name.len() + 3;
        let rest = &stats[start..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    Ok(Figures {
        // The job's own time, from the first task start to the end; not process start-up.
        seconds: field("seconds").unwrap_or(wall),
        // For a cluster run: the coordinator's, the workers' are not measured.
        peak_rss_bytes: field("peak_rss_bytes").unwrap_or(0.0) as u64,
    })
}

fn print_figures(name: &str, events: u64, f: &Figures) {
    println!(
        "{:<15} {:>12} {:>10.2} {:>14.0} {:>12.1}",
        name,
        events,
        f.seconds,
        events as f64 / f.seconds,
        f.peak_rss_bytes as f64 / (1024.0 * 1024.0)
    );
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let dir: PathBuf = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut failures = Vec::new();
    if args.only.iter().any(|o| o == savepoint::NAME)
        && let Err(e) = savepoint::run(args, &dir)
    {
        failures.push(format!("{e:#}"));
    }
    let selected: Vec<BenchJob> = jobs(args)
        .into_iter()
        .filter(|job| args.only.is_empty() || args.only.iter().any(|o| o == job.name))
        .collect();
    if !selected.is_empty() {
        println!(
            "{:<15} {:>12} {:>10} {:>14} {:>12}",
            "job", "events", "seconds", "events/s", "peak RSS MB"
        );
    }
    // Embedded, and with checkpoints and on workers when asked; runs alternate between them.
    let mut variants = vec![Variant::Embedded];
    if let Some(interval) = &args.checkpoint_interval {
        variants.push(Variant::Checkpointed(interval));
    }
    if let Some(workers) = args.cluster_workers {
        variants.push(Variant::Cluster { workers });
    }
    for job in selected {
        let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut best: Vec<Option<Figures>> = variants.iter().map(|_| None).collect();
        'runs: for _ in 0..args.runs.max(1) {
            for (v, variant) in variants.iter().enumerate() {
                match run_one(&job, args.parallelism, &dir, *variant) {
                    Ok(f) => {
                        seconds[v].push(f.seconds);
                        if best[v].as_ref().is_none_or(|b| f.seconds < b.seconds) {
                            best[v] = Some(f);
                        }
                    }
                    Err(e) => {
                        failures.push(format!("{e:#}"));
                        break 'runs;
                    }
                }
            }
        }
        for (v, variant) in variants.iter().enumerate() {
            let name = variant.label(job.name);
            match &best[v] {
                Some(f) => print_figures(&name, job.events, f),
                None => println!("{name:<15} failed"),
            }
        }
        let range = |v: &[f64]| {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(0.0, f64::max);
            (min, max)
        };
        // On a shared or virtual machine single runs vary by ±10 %; the median of several
        // alternating runs is the steadier comparison, the best the optimistic one.
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        };
        for (v, variant) in variants.iter().enumerate().skip(1) {
            let (without, with) = (&seconds[0], &seconds[v]);
            if without.is_empty() || with.is_empty() {
                continue;
            }
            let ((a, b), (c, d)) = (range(without), range(with));
            let (m, n) = (median(without), median(with));
            println!(
                "{:<15} {}: best {:+.1} % time, median {:+.1} % ({a:.2}-{b:.2} s, median \
                 {m:.2} s embedded; {c:.2}-{d:.2} s, median {n:.2} s; {} runs each)",
                job.name,
                variant.describe(),
                (c / a - 1.0) * 100.0,
                (n / m - 1.0) * 100.0,
                without.len().min(with.len())
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    for f in &failures {
        eprintln!("{f}");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("{} benchmark job(s) failed", failures.len())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    /// A benchmark job whose SQL no longer plans would only fail when someone runs the bench.
    #[test]
    fn every_benchmark_job_plans_at_parallelism_2() {
        let args = Cli::parse_from(["bench"]).bench;
        let jobs = jobs(&args);
        assert!(jobs.iter().any(|j| j.name == "interval-join"));
        for job in jobs {
            let overrides = [("parallelism.default".to_string(), "2".to_string())];
            if let Err(e) = crate::job::plan_sql(&job.sql, &overrides) {
                panic!("{}: {e}", job.name);
            }
        }
    }
}
