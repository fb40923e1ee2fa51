//! `weir job status|checkpoints|savepoint|cancel|check-compatibility|dispose-savepoint --api
//! URL`: the command-line client of a running job's control API (served by `weir run --api` and `weir coordinator --api`),
//! over gRPC with `weir_rpc::BlockingClient`. `--json` prints what `GET /v1/job…` answers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use weir_rpc::{BlockingClient, ClientConfig, Job, SavepointRequest, SavepointStatus, Token};

use super::{format_watermark, human};

/// How to reach the control API.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// The control API: `http://host:port` (or `https://…` with --tls-ca).
    #[arg(long, value_name = "URL")]
    pub api: String,
    /// A file holding the job's token (sent as `authorization: Bearer …`).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// The PEM certificate of the authority that signed the server's certificate (https).
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
}

impl ApiArgs {
    pub fn connect(&self) -> weir_rpc::Result<BlockingClient> {
        let mut config = ClientConfig::new(self.api.trim_end_matches('/'))
            .with_token(Token::from_optional_file(self.token_file.as_deref())?);
        config.tls_ca = self.tls_ca.clone();
        BlockingClient::connect(&config)
    }
}

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// The job's state, times and per-operator rows, back-pressure and watermarks.
    Status {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the JSON of `GET /v1/job` instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Checkpoint counts and the latest completed checkpoint.
    Checkpoints {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the JSON of `GET /v1/job/checkpoints` instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Take a savepoint, wait for it, and print its path.
    Savepoint {
        #[command(flatten)]
        api: ApiArgs,
        /// Stop the job once the savepoint is complete.
        #[arg(long)]
        stop: bool,
        /// Where the savepoint goes (default: the job's --savepoint-dir).
        #[arg(long, value_name = "DIR")]
        dir: Option<String>,
        /// An id for this request: repeating it (after a lost answer) waits for the first
        /// trigger's savepoint instead of taking another.
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// Cancel the job (no savepoint).
    Cancel {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Check whether a new SQL script (with --set settings) could restore the running job's
    /// state; exits with 1 and names the operators when it could not.
    CheckCompatibility {
        #[command(flatten)]
        api: ApiArgs,
        /// The new job's SQL script.
        file: PathBuf,
        /// A setting of the new job as `key=value` (as `weir run --set`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Print the JSON of `POST /v1/job/compatibility`.
        #[arg(long)]
        json: bool,
    },
    /// Delete a savepoint (its folder); refuses anything that is not a savepoint.
    DisposeSavepoint {
        #[command(flatten)]
        api: ApiArgs,
        /// The savepoint folder, as `weir job savepoint` printed it.
        path: String,
    },
}

impl JobCommand {
    pub fn run(&self) -> weir_rpc::Result<()> {
        match self {
            JobCommand::Status { api, json } => {
                let mut client = api.connect()?;
                let job = client.job()?;
                if *json {
                    print_json(client.url(), &job)
                } else {
                    print!("{}", status_table(&job));
                    Ok(())
                }
            }
            JobCommand::Checkpoints { api, json } => {
                let mut client = api.connect()?;
                let checkpoints = client.checkpoints()?;
                if *json {
                    return print_json(client.url(), &checkpoints);
                }
                println!(
                    "completed {}, failed {}, in progress {}",
                    checkpoints.number_of_completed_checkpoints,
                    checkpoints.number_of_failed_checkpoints,
                    checkpoints.number_of_in_progress_checkpoints
                );
                println!(
                    "{:>6}  {:<10}  {:<11}  {:>10}  {:>10}  PATH",
                    "ID", "KIND", "STATUS", "DURATION", "SIZE"
                );
                for c in &checkpoints.history {
                    println!(
                        "{:>6}  {:<10}  {:<11}  {:>10}  {:>10}  {}",
                        c.id,
                        format!("{:?}", c.kind).to_uppercase(),
                        format!("{:?}", c.status).to_uppercase(),
                        c.duration_ms.map_or("-".into(), |d| format!("{d} ms")),
                        c.size_bytes
                            .map_or("-".into(), |b| format!("{} B", human(b as f64))),
                        c.path.as_deref().or(c.failure.as_deref()).unwrap_or("-")
                    );
                }
                Ok(())
            }
            JobCommand::Savepoint {
                api,
                stop,
                dir,
                request_id,
            } => {
                let mut client = api.connect()?;
                let request = SavepointRequest {
                    dir: dir.clone(),
                    stop: *stop,
                    request_id: request_id.clone(),
                };
                let trigger_id = client.trigger_savepoint(request)?;
                eprintln!("savepoint triggered (trigger id {trigger_id}); waiting for it");
                loop {
                    let savepoint = client.savepoint(&trigger_id)?;
                    match savepoint.status {
                        SavepointStatus::InProgress => {
                            std::thread::sleep(Duration::from_millis(200))
                        }
                        SavepointStatus::Completed => {
                            println!(
                                "Savepoint completed. Path: {}",
                                savepoint.path.as_deref().unwrap_or("")
                            );
                            return Ok(());
                        }
                        SavepointStatus::Failed => {
                            return Err(weir_rpc::Error::Remote {
                                url: client.url().to_string(),
                                code: "savepoint FAILED".into(),
                                message: savepoint.failure.unwrap_or_default(),
                            });
                        }
                    }
                }
            }
            JobCommand::Cancel { api } => {
                let mut client = api.connect()?;
                let job = client.cancel()?;
                println!("cancelling job {} (state {})", job.job_id, job.state);
                Ok(())
            }
            JobCommand::CheckCompatibility {
                api,
                file,
                settings,
                json,
            } => {
                let sql = std::fs::read_to_string(file).map_err(|e| {
                    weir_rpc::Error::InvalidRequest(format!("cannot read {}: {e}", file.display()))
                })?;
                let settings = parse_settings(settings)?;
                let mut client = api.connect()?;
                let answer = client.check_compatibility(&sql, &settings)?;
                if *json {
                    print_json(client.url(), &answer)?;
                } else if answer.compatible {
                    println!("compatible: the new job restores the running job's state");
                } else {
                    println!("not compatible:");
                    for problem in &answer.problems {
                        println!("  - {problem}");
                    }
                }
                if answer.compatible {
                    Ok(())
                } else {
                    Err(weir_rpc::Error::Rejected(format!(
                        "{} cannot restore the state of the job at {}",
                        file.display(),
                        client.url()
                    )))
                }
            }
            JobCommand::DisposeSavepoint { api, path } => {
                let mut client = api.connect()?;
                client.dispose_savepoint(path)?;
                println!("Savepoint disposed: {path}");
                Ok(())
            }
        }
    }
}

/// `--set key=value` flags as a map.
fn parse_settings(settings: &[String]) -> weir_rpc::Result<BTreeMap<String, String>> {
    settings
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| {
                    weir_rpc::Error::InvalidRequest(format!("--set expects KEY=VALUE, got '{s}'"))
                })
        })
        .collect()
}

fn print_json<T: Serialize>(url: &str, value: &T) -> weir_rpc::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| weir_rpc::Error::Protocol {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    println!("{text}");
    Ok(())
}

/// The readable form of `weir job status`.
pub fn status_table(job: &Job) -> String {
    let watermark = |w: Option<i64>| w.map_or("-".into(), format_watermark);
    let mut out = format!(
        "job {} {}  attempt {}  restarts {}  up {:.1} s  parallelism {} (max {})\n\
         rows in {}  out {}  watermark {}\n",
        job.job_id,
        job.state,
        job.attempt,
        job.restarts,
        job.uptime_ms as f64 / 1000.0,
        job.parallelism,
        job.max_parallelism,
        job.num_records_in,
        job.num_records_out,
        watermark(job.watermark_ms),
    );
    if let Some(error) = &job.last_error {
        out.push_str(&format!("last error: {error}\n"));
    }
    if let Some(n) = &job.network {
        out.push_str(&format!(
            "network: frames sent {}  received {}  queued {}  peak per channel {} of {} credits  \
             credit waits {}\n",
            n.frames_sent,
            n.frames_received,
            n.queued_frames,
            n.peak_queued_frames_per_channel,
            n.credits_per_channel,
            n.credit_waits,
        ));
    }
    out.push_str(&format!(
        "\n{:<48} {:>4} {:>14} {:>14} {:>9}  WATERMARK\n",
        "OPERATOR", "PAR", "RECORDS IN", "RECORDS OUT", "BP ms/s"
    ));
    for o in &job.operators {
        let name: String = if o.name.chars().count() > 48 {
            o.name.chars().take(45).chain("...".chars()).collect()
        } else {
            o.name.clone()
        };
        out.push_str(&format!(
            "{name:<48} {:>4} {:>14} {:>14} {:>9.1}  {}\n",
            o.parallelism,
            o.num_records_in,
            o.num_records_out,
            o.back_pressured_time_ms_per_second,
            watermark(o.current_output_watermark_ms),
        ));
    }
    out
}

/// `weir run --api ADDR [--token-file PATH] [--tls-cert PATH --tls-key PATH]`: serve the
/// job's control API while it runs.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Serve the control API (gRPC, JSON, /metrics, /healthz, /readyz) on this address,
    /// e.g. `127.0.0.1:8081` (port 0 picks a free port; the address is printed on stderr).
    #[arg(long = "api", value_name = "ADDR")]
    pub addr: Option<std::net::SocketAddr>,
    /// Require this token (a file holding it) on every control API request but the probes.
    #[arg(long, value_name = "PATH", requires = "addr")]
    pub token_file: Option<PathBuf>,
    /// Serve over TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PATH", requires_all = ["addr", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// Start the server when `--api` is given, and say where it listens on stderr:
    /// `control API listening on http://127.0.0.1:8081`.
    pub fn start(
        &self,
        control: std::sync::Arc<dyn weir_rpc::JobControl>,
    ) -> weir_rpc::Result<Option<weir_rpc::ControlServer>> {
        let Some(addr) = self.addr else {
            return Ok(None);
        };
        let mut config = weir_rpc::ServerConfig::new(addr);
        config.token = Token::from_optional_file(self.token_file.as_deref())?;
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(weir_rpc::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        let server = weir_rpc::ControlServer::start(config, control)?;
        eprintln!("control API listening on {}", server.url());
        Ok(Some(server))
    }
}
