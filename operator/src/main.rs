//! `weir-operator`: the kube-runtime controller for `FlinkJob` (`run`), and the CRD it serves
//! (`crd`). `main` only wires the process together: logs, the health/metrics endpoint, leader
//! election, graceful shutdown ([`weir_operator::process`]) around the controller
//! ([`weir_operator::controller`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use futures::future::join_all;
use weir_operator::controller::{self, Context, Settings};
use weir_operator::job_client::ControlApiClient;
use weir_operator::process::leader::{self, LeaderElection, LeaseTimings};
use weir_operator::process::logging::{self, LogFormat};
use weir_operator::process::metrics::Metrics;
use weir_operator::process::{health, shutdown::Shutdown};

/// The Kubernetes operator that runs FlinkJob resources.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the FlinkJob CustomResourceDefinition as YAML (`weir-operator crd | kubectl apply -f -`).
    Crd,
    /// Run the controller (in a pod, or against the current kubeconfig).
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Namespaces to watch, comma-separated (default: all namespaces).
    #[arg(long, value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    health_addr: SocketAddr,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Namespace of the leader election Lease (default: POD_NAMESPACE, else the client's).
    #[arg(long)]
    lease_namespace: Option<String>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => print!("{}", weir_crds::crd_yaml()?),
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(run(args))?,
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    logging::init(args.log_format)?;
    let shutdown = Shutdown::install()?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let endpoint = tokio::spawn(health::serve(
        args.health_addr,
        metrics.clone(),
        ready.clone(),
    ));

    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster config or KUBECONFIG)")?;
    let lease_namespace = args
        .lease_namespace
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let election = LeaderElection::new(
        client.clone(),
        &lease_namespace,
        "weir-operator",
        leader::default_identity(),
        LeaseTimings::default(),
    )?;
    // A standby replica is ready too: it serves probes and takes over when the leader goes.
    ready.store(true, Ordering::SeqCst);
    let leadership = tokio::select! {
        leadership = election.acquire() => leadership?,
        () = shutdown.wait() => return Ok(()),
    };
    metrics.set_leader(true);
    tracing::info!(
        identity = election.identity(),
        "leading; starting the controller"
    );

    let ctx = Arc::new(Context::new(
        client,
        Arc::new(ControlApiClient::new()),
        Settings::default(),
        metrics.clone(),
    ));
    let controllers = if args.watch_namespaces.is_empty() {
        vec![controller::run(ctx.clone(), None)]
    } else {
        args.watch_namespaces
            .iter()
            .map(|ns| controller::run(ctx.clone(), Some(ns)))
            .collect()
    };
    let outcome = tokio::select! {
        _ = join_all(controllers) => Ok(()),
        () = leadership.lost() => Err(anyhow::anyhow!("lost the lease; exiting so a new pod stands by")),
        () = shutdown.wait() => Ok(()),
        ended = endpoint => match ended {
            Ok(Err(e)) => Err(e.into()),
            _ => Err(anyhow::anyhow!("the health endpoint stopped")),
        },
    };
    metrics.set_leader(false);
    if outcome.is_ok() {
        // The standby takes over at once instead of waiting out the lease.
        leadership.release().await?;
    }
    outcome
}
