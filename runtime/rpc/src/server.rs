//! Serving the control API: [`serve`] for callers with a tokio runtime, and [`ControlServer`]
//! for the thread-based engine, which starts its own runtime thread and hands back the bound
//! address and a shutdown handle.
//!
//! One listener serves gRPC (HTTP/2) and the JSON routes (HTTP/1.1 or HTTP/2) through tonic's
//! server, with TLS when a certificate and key are given.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::ServerTlsConfig;
use tonic::transport::server::TcpIncoming;

use crate::error::{Error, Result, error_chain};
use crate::http::router;
use crate::service::JobControl;
use crate::token::Token;

/// `--tls-cert` and `--tls-key`: PEM files of the server's certificate chain and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How to serve the control API.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `--api`: where to listen (port 0 picks a free port; see [`ControlServer::local_addr`]).
    pub addr: SocketAddr,
    /// Requests other than the probes need this token when it is set.
    pub token: Option<Token>,
    pub tls: Option<TlsFiles>,
}

impl ServerConfig {
    pub fn new(addr: SocketAddr) -> Self {
        ServerConfig {
            addr,
            token: None,
            tls: None,
        }
    }
}

fn tls_config(files: &TlsFiles) -> Result<ServerTlsConfig> {
    crate::tls::server_tls(files)
}

/// Serve the control API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: &ServerConfig,
    control: Arc<dyn JobControl>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let mut builder = tonic::transport::Server::builder().accept_http1(true);
    if let Some(files) = &config.tls {
        builder = builder
            .tls_config(tls_config(files)?)
            .map_err(|e| Error::Tls(error_chain(&e)))?;
    }
    let routes = tonic::service::Routes::from(router(control, config.token.clone()));
    builder
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
        .map_err(|e| Error::Serve(error_chain(&e)))
}

/// The control API served from its own thread and tokio runtime. Dropping it shuts the
/// server down.
pub struct ControlServer {
    addr: SocketAddr,
    tls: bool,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl ControlServer {
    /// Bind `config.addr` (errors come back here, not from the thread) and serve `control`
    /// on a new thread until [`ControlServer::shutdown`].
    pub fn start(config: ServerConfig, control: Arc<dyn JobControl>) -> Result<ControlServer> {
        if let Some(files) = &config.tls {
            // Read the files now, so a wrong path fails the command instead of the thread.
            tls_config(files)?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("control-api")
            .enable_all()
            .build()
            .map_err(|source| Error::Runtime { source })?;
        let listener = runtime
            .block_on(TcpListener::bind(config.addr))
            .map_err(|source| Error::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.addr,
            source,
        })?;
        let (shutdown, signal) = oneshot::channel::<()>();
        let tls = config.tls.is_some();
        let thread = std::thread::Builder::new()
            .name("control-api".into())
            .spawn(move || {
                let result = runtime.block_on(serve(listener, &config, control, async {
                    let _ = signal.await;
                }));
                if let Err(e) = &result {
                    tracing::error!(error = %e, "the control API stopped");
                }
                result
            })
            .map_err(|source| Error::Runtime { source })?;
        Ok(ControlServer {
            addr,
            tls,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address the server listens on (the real port when `--api` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port` or `https://host:port`, for `weir job --api`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stop serving and wait for the server thread.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(Error::Serve("the server thread panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl std::fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlServer")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish()
    }
}
