//! The `weir` command: run, explain and benchmark Flink SQL jobs.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};
use weir_rpc::Token;
use weir_runtime::cluster::{
    self, connect::Auth, coordinator::CoordinatorOptions, spec::JobSpec, worker::WorkerOptions,
};
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
        #[command(flatten)]
        api: job::client::ServeArgs,
    },
    /// Print the job graph: operators, parallelism, chaining and exchanges.
    Explain {
        #[command(flatten)]
        job: JobArgs,
    },
    /// Run a job on worker processes (`weir worker`): wait until they offer enough slots,
    /// deploy, checkpoint, and restart from the latest checkpoint when a worker is lost.
    Coordinator {
        #[command(flatten)]
        job: JobArgs,
        /// Where workers connect.
        #[arg(long, default_value = "127.0.0.1:6123")]
        listen: std::net::SocketAddr,
        /// Serve --listen over TLS with this PEM certificate chain (needs --cluster-tls-key;
        /// workers then connect with --tls-ca).
        #[arg(long, value_name = "PATH", requires = "cluster_tls_key")]
        cluster_tls_cert: Option<PathBuf>,
        /// The PEM private key of --cluster-tls-cert.
        #[arg(long, value_name = "PATH", requires = "cluster_tls_cert")]
        cluster_tls_key: Option<PathBuf>,
        /// How often workers report (`heartbeat.interval`).
        #[arg(long, default_value = "1s")]
        heartbeat_interval: String,
        /// A worker silent this long is lost and the job restarts (`heartbeat.timeout`).
        #[arg(long, default_value = "10s")]
        heartbeat_timeout: String,
        /// No progress line or summary.
        #[arg(long)]
        quiet: bool,
        /// Write the run's figures as JSON to this file.
        #[arg(long, hide = true)]
        stats_json: Option<PathBuf>,
        /// The control API; its --token-file also guards the workers' connections.
        #[command(flatten)]
        api: job::client::ServeArgs,
        /// When the job ends (finished, stopped with a savepoint, cancelled, failed), keep
        /// serving the control API and the probes until SIGTERM or Ctrl-C instead of exiting,
        /// so a supervisor that restarts exited processes (a Kubernetes Deployment) does not
        /// start the old job again.
        #[arg(long)]
        keep_alive: bool,
    },
    /// Offer slots to a coordinator and run the tasks it deploys, until Ctrl-C.
    Worker(WorkerArgs),
    /// Run the Nexmark and windowed benchmark jobs and print events/s and peak memory.
    Bench(weir_runtime::bench::BenchArgs),
    /// Ask a running job (`weir run --api`, `weir coordinator --api`) for its status and
    /// checkpoints, take a savepoint, or cancel it.
    Job {
        #[command(subcommand)]
        command: job::client::JobCommand,
    },
    /// List and inspect checkpoints and savepoints.
    Checkpoints {
        #[command(subcommand)]
        command: CheckpointsCommand,
    },
}

#[derive(Subcommand)]
enum CheckpointsCommand {
    /// Every job under a checkpoint directory with its complete checkpoints: ids, times,
    /// sizes, state per operator.
    List {
        /// The checkpoint directory (`file:///…`, `s3://bucket/prefix`, a path, …).
        dir: String,
    },
    /// One checkpoint or savepoint: operators, subtasks, key groups, files and sizes.
    Inspect {
        /// A `chk-<n>` folder, a savepoint folder, or either's `_metadata`.
        path: String,
    },
}

#[derive(Args)]
struct WorkerArgs {
    /// The coordinator's `--listen` address, e.g. `http://coordinator:6123`.
    #[arg(long)]
    coordinator: String,
    /// Tasks this worker runs at once (one subtask of every operator chain per slot).
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// Port of the data plane other workers send batches to (0: any free port).
    #[arg(long, default_value_t = 6124)]
    data_port: u16,
    /// Address the data plane binds to.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Host name other workers reach this one on (default: the bind address).
    #[arg(long)]
    advertise_host: Option<String>,
    /// A name for the coordinator's logs (default: $HOSTNAME).
    #[arg(long)]
    name: Option<String>,
    /// The shared token (a file holding it) the coordinator and the workers require.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Directory for RocksDB state (default: a temporary directory).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Serve the data plane over TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Connect to the coordinator and to other workers over TLS, trusting the certificate
    /// authority in this PEM file (and nothing else).
    #[arg(long, value_name = "PATH")]
    tls_ca: Option<PathBuf>,
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
    /// Where checkpoints go (`execution.checkpointing.dir`): `file:///…`, `s3://…`, `gs://…`,
    /// `az://…` or a local path. Turns on exactly-once output.
    #[arg(long)]
    checkpoint_dir: Option<String>,
    /// Time between checkpoints (`execution.checkpointing.interval`), e.g. `10s`.
    #[arg(long)]
    checkpoint_interval: Option<String>,
    /// Where savepoints go (`state.savepoints.dir`); Ctrl-C then stops with a savepoint.
    #[arg(long)]
    savepoint_dir: Option<String>,
    /// Start from a checkpoint or savepoint path, or `latest` (the newest complete checkpoint
    /// of this job under --checkpoint-dir; a fresh start when there is none).
    #[arg(long)]
    restore: Option<String>,
    /// Drop state in the checkpoint that matches no operator of the job instead of failing.
    #[arg(long)]
    allow_non_restored_state: bool,
    /// The job's name, which names its folder under --checkpoint-dir (`pipeline.name`;
    /// default: the SQL file's name without `.sql`).
    #[arg(long)]
    job_id: Option<String>,
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
        let flags = [
            ("execution.checkpointing.dir", &self.checkpoint_dir),
            (
                "execution.checkpointing.interval",
                &self.checkpoint_interval,
            ),
            ("state.savepoints.dir", &self.savepoint_dir),
            ("execution.savepoint.path", &self.restore),
            ("pipeline.name", &self.job_id),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                out.push((key.into(), value.clone()));
            }
        }
        if self.allow_non_restored_state {
            out.push((
                "execution.savepoint.ignore-unclaimed-state".into(),
                "true".into(),
            ));
        }
        Ok(out)
    }

    /// The job as workers receive it: the script and the settings around it.
    fn spec(&self) -> anyhow::Result<JobSpec> {
        Ok(JobSpec {
            sql: job::read_script(&self.file)?,
            defaults: self.defaults(),
            overrides: self.overrides()?,
        })
    }

    fn defaults(&self) -> Vec<(String, String)> {
        // The job id defaults to the file's name, so a rerun finds its checkpoints; the
        // script's `SET 'pipeline.name'` and --job-id come later and win.
        let mut defaults = Vec::new();
        if let Some(stem) = self.file.file_stem().and_then(|s| s.to_str())
            && let Ok(id) = job::job_id_from(stem)
        {
            defaults.push(("pipeline.name".to_string(), id));
        }
        defaults
    }

    fn plan(&self) -> anyhow::Result<job::PlannedJob> {
        let sql = job::read_script(&self.file)?;
        let mut planned = job::plan_sql_with_defaults(&sql, &self.defaults(), &self.overrides()?)
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
        // Colours only on a terminal: pod logs, files and pipes get plain `key=value` text.
        .with_ansi(std::io::stderr().is_terminal())
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
            api,
        } => run_and_report(
            &job.plan()?,
            quiet,
            stats_json,
            &api,
            false,
            |planned, progress, stop, live| {
                job::run_controlled(planned, progress, stop, &job::launch::LocalLauncher, live)
            },
        ),
        Command::Coordinator {
            job,
            listen,
            cluster_tls_cert,
            cluster_tls_key,
            heartbeat_interval,
            heartbeat_timeout,
            quiet,
            stats_json,
            api,
            keep_alive,
        } => {
            let planned = job.plan()?;
            let spec = job.spec()?;
            let duration = |flag: &str, value: &str| {
                weir_runtime::connectors::options::parse_duration(value).ok_or_else(|| {
                    anyhow::anyhow!("{flag}: '{value}' is not a duration like '10s'")
                })
            };
            let options = CoordinatorOptions {
                listen,
                auth: Auth {
                    token: Token::from_optional_file(api.token_file.as_deref())?,
                    tls: tls_files(cluster_tls_cert, cluster_tls_key),
                    tls_ca: None,
                },
                heartbeat_interval: duration("--heartbeat-interval", &heartbeat_interval)?,
                heartbeat_timeout: duration("--heartbeat-timeout", &heartbeat_timeout)?,
            };
            run_and_report(
                &planned,
                quiet,
                stats_json,
                &api,
                keep_alive,
                |planned, progress, stop, live| {
                    cluster::coordinator::run(planned.clone(), spec, &options, progress, stop, live)
                },
            )
        }
        Command::Worker(args) => {
            let stop = Arc::new(AtomicBool::new(false));
            let handler_stop = stop.clone();
            ctrlc::set_handler(move || handler_stop.store(true, Ordering::SeqCst))?;
            let name = args.name.clone().unwrap_or_else(|| {
                std::env::var("HOSTNAME")
                    .unwrap_or_else(|_| format!("worker-{}", std::process::id()))
            });
            let options = WorkerOptions {
                coordinator: args.coordinator,
                slots: args.slots,
                data_listen: std::net::SocketAddr::new(args.bind, args.data_port),
                advertise_host: args.advertise_host,
                name,
                auth: Auth {
                    token: Token::from_optional_file(args.token_file.as_deref())?,
                    tls: tls_files(args.tls_cert, args.tls_key),
                    tls_ca: args.tls_ca,
                },
                state_dir: args.state_dir,
            };
            cluster::worker::run(options, stop)?;
            Ok(())
        }
        Command::Explain { job } => {
            let planned = job.plan()?;
            print!("{}", planned.graph.explain());
            Ok(())
        }
        Command::Bench(args) => weir_runtime::bench::run(&args),
        Command::Job { command } => Ok(command.run()?),
        Command::Checkpoints { command } => match command {
            CheckpointsCommand::List { dir } => {
                print!("{}", weir_checkpoint::list_checkpoints(&dir)?);
                Ok(())
            }
            CheckpointsCommand::Inspect { path } => {
                print!("{}", weir_checkpoint::inspect(&path)?);
                Ok(())
            }
        },
    }
}

/// A certificate and its key, when both are given (clap requires one with the other).
fn tls_files(cert: Option<PathBuf>, key: Option<PathBuf>) -> Option<weir_rpc::TlsFiles> {
    Some(weir_rpc::TlsFiles {
        cert: cert?,
        key: key?,
    })
}

/// `--keep-alive`: the job ended; wait for SIGTERM or Ctrl-C (at once when one already
/// stopped the job) while the control API answers with the final state.
fn keep_serving(
    live: &job::LiveJob,
    result: &weir_runtime::error::Result<job::JobSummary>,
    stop: &AtomicBool,
) {
    use weir_rpc::JobControl;
    let state = live.job().map(|j| j.state);
    if !state.as_ref().is_ok_and(|s| s.is_terminal()) {
        // The job failed before its run loop started (no attempt to report on).
        live.finished(result);
    }
    if stop.load(Ordering::SeqCst) {
        return;
    }
    let state = live
        .job()
        .map_or_else(|_| "ended".to_string(), |j| j.state.to_string());
    eprintln!("job {state}; serving the control API until SIGTERM (--keep-alive)");
    tracing::info!(%state, "job ended; kept alive until a signal");
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Run a planned job (in this process or on workers, as `run` does it) with the control API,
/// then print its summary. With `keep_alive`, a job that ended leaves the process serving
/// the control API until a signal.
fn run_and_report(
    planned: &job::PlannedJob,
    quiet: bool,
    stats_json: Option<PathBuf>,
    api: &job::client::ServeArgs,
    keep_alive: bool,
    run: impl FnOnce(
        &job::PlannedJob,
        Progress,
        Arc<AtomicBool>,
        &job::LiveJob,
    ) -> weir_runtime::error::Result<job::JobSummary>,
) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_stop = stop.clone();
    ctrlc::set_handler(move || handler_stop.store(true, Ordering::SeqCst))?;
    let progress = if quiet {
        Progress::Quiet
    } else {
        Progress::Auto
    };
    let live = job::LiveJob::new(planned);
    let server = api.start(live.clone())?;
    let result = run(planned, progress, stop.clone(), &live);
    if keep_alive {
        keep_serving(&live, &result, &stop);
    }
    if let Some(server) = server {
        // A client polling a stop-with-savepoint gets its answer before we exit.
        live.wait_for_savepoint_readers(std::time::Duration::from_secs(10));
        server.shutdown()?;
    }
    let summary = result?;
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
        if summary.checkpoints_completed + summary.checkpoints_failed > 0 {
            eprintln!(
                "checkpoints: {} complete, {} failed{}{}",
                summary.checkpoints_completed,
                summary.checkpoints_failed,
                summary
                    .last_checkpoint
                    .as_ref()
                    .map(|(id, at)| format!(", last {id} at {at}"))
                    .unwrap_or_default(),
                if summary.restarts > 0 {
                    format!(", {} restarts", summary.restarts)
                } else {
                    String::new()
                }
            );
        }
    }
    if let Some(savepoint) = &summary.savepoint {
        println!("Savepoint completed. Path: {savepoint}");
    }
    Ok(())
}
