//! The `weir` command: run, explain and benchmark Flink SQL jobs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};
use weir_runtime::job::{self, Progress};

#[derive(Parser)]
#[command(name = "weir", version, about = "Run Flink SQL streaming jobs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a SQL job until its bounded sources end, or until Ctrl-C.
    Run {
        #[command(flatten)]
        job: JobArgs,
        /// No progress line or summary, just the job's own output.
        #[arg(long)]
        quiet: bool,
        /// Write the run's figures (rows, seconds, peak memory) as JSON to this file.
        #[arg(long, hide = true)]
        stats_json: Option<PathBuf>,
    },
    /// Print the job graph: operators, parallelism, chaining and exchanges.
    Explain {
        #[command(flatten)]
        job: JobArgs,
    },
    /// Run the Nexmark and windowed benchmark jobs and print events/s and peak memory.
    Bench(weir_runtime::bench::BenchArgs),
}

#[derive(Args)]
struct JobArgs {
    /// The SQL script.
    file: PathBuf,
    /// Parallelism of every operator (`parallelism.default`).
    #[arg(long, short = 'p')]
    parallelism: Option<usize>,
    /// Number of key groups (`pipeline.max-parallelism`, default 128).
    #[arg(long)]
    max_parallelism: Option<usize>,
    /// Directory for RocksDB state (default: a temporary directory).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// A setting as `key=value`, like `SET 'key' = 'value';` in the script (wins over it).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

impl JobArgs {
    fn overrides(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for s in &self.settings {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--set expects KEY=VALUE, got '{s}'"))?;
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
        if let Some(p) = self.parallelism {
            out.push(("parallelism.default".into(), p.to_string()));
        }
        if let Some(m) = self.max_parallelism {
            out.push(("pipeline.max-parallelism".into(), m.to_string()));
        }
        Ok(out)
    }

    fn plan(&self) -> anyhow::Result<job::PlannedJob> {
        let sql = job::read_script(&self.file)?;
        let mut planned = job::plan_sql(&sql, &self.overrides()?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.file.display()))?;
        if let Some(dir) = &self.state_dir {
            planned.settings.state_dir = Some(dir.clone());
        }
        Ok(planned)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            job,
            quiet,
            stats_json,
        } => {
            let planned = job.plan()?;
            let stop = Arc::new(AtomicBool::new(false));
            let handler_stop = stop.clone();
            ctrlc::set_handler(move || handler_stop.store(true, Ordering::SeqCst))?;
            let progress = if quiet {
                Progress::Quiet
            } else {
                Progress::Auto
            };
            let summary = job::run(&planned, progress, stop)?;
            if let Some(path) = stats_json {
                let json = format!(
                    "{{\"rows_in\":{},\"rows_out\":{},\"seconds\":{},\"peak_rss_bytes\":{}}}\n",
                    summary.rows_in,
                    summary.rows_out,
                    summary.elapsed.as_secs_f64(),
                    job::peak_rss_bytes().unwrap_or(0)
                );
                std::fs::write(&path, json)?;
            }
            if !quiet {
                eprintln!(
                    "{}: {} rows in, {} rows out, {} late rows dropped, {:.2} s ({} rows/s){}",
                    if summary.cancelled {
                        "cancelled"
                    } else {
                        "finished"
                    },
                    summary.rows_in,
                    summary.rows_out,
                    summary.late_rows_dropped,
                    summary.elapsed.as_secs_f64(),
                    job::human(summary.rows_per_second()),
                    job::peak_rss_bytes()
                        .map(|b| format!(", peak memory {} MB", b / (1024 * 1024)))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Explain { job } => {
            let planned = job.plan()?;
            print!("{}", planned.graph.explain());
            Ok(())
        }
        Command::Bench(args) => weir_runtime::bench::run(&args),
    }
}
