//! The operator's HTTP endpoint for the kubelet and Prometheus: `/healthz` (liveness: 200 while
//! the process serves at all), `/readyz` (readiness: 200 once `main` sets the ready flag, i.e.
//! the caches synced on the leader, or the replica stands by for the Lease; 503 before) and
//! `/metrics` (see [`super::metrics`]). Plain HTTP/1.1 with axum, already in the tree through
//! tonic; nothing here touches the Kubernetes API, so a slow API server cannot fail liveness.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use super::Error;
use super::metrics::{CONTENT_TYPE, Metrics};

/// What the handlers read.
#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

/// The routes, for serving on a listener of the caller's choice.
pub fn router(metrics: Arc<Metrics>, ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Shared { metrics, ready })
}

/// Listens on `addr` and serves the endpoints until the task is dropped or the socket fails.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<(), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    serve_on(listener, metrics, ready, std::future::pending()).await
}

/// Serves the endpoints on a bound listener until `shutdown` completes (then finishes the
/// requests in flight).
pub async fn serve_on(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    }
    axum::serve(listener, router(metrics, ready))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| Error::Serve { source })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(shared): State<Shared>) -> (StatusCode, &'static str) {
    if shared.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics_text(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        shared.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    use super::*;

    /// A parsed HTTP/1.1 response: status code, headers (lowercase names) and body.
    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    /// A GET over a fresh TCP connection, read until the server closes it.
    async fn get(addr: SocketAddr, path: &str) -> Response {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut raw))
            .await
            .expect("answer within 5 s")
            .expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
        let mut lines = head.lines();
        let status_line = lines.next().expect("a status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .expect("a code")
            .parse()
            .expect("numeric");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    struct Running {
        addr: SocketAddr,
        metrics: Arc<Metrics>,
        ready: Arc<AtomicBool>,
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<Result<(), Error>>,
    }

    async fn start() -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics = Arc::new(Metrics::new());
        let ready = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = oneshot::channel();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_on(listener, metrics.clone(), ready.clone(), shutdown));
        Running {
            addr,
            metrics,
            ready,
            stop,
            task,
        }
    }

    #[tokio::test]
    async fn healthz_answers_while_readyz_waits_for_the_flag() {
        let server = start().await;
        assert_eq!(get(server.addr, "/healthz").await.status, 200);
        let not_ready = get(server.addr, "/readyz").await;
        assert_eq!(not_ready.status, 503);
        assert_eq!(not_ready.body, "not ready\n");
        server.ready.store(true, Ordering::SeqCst);
        assert_eq!(get(server.addr, "/readyz").await.status, 200);
        assert_eq!(get(server.addr, "/nope").await.status, 404);
    }

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text() {
        let server = start().await;
        server.metrics.reconciled("ok");
        let response = get(server.addr, "/metrics").await;
        assert_eq!(response.status, 200);
        let content_type = response
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.as_str());
        assert_eq!(content_type, Some(CONTENT_TYPE));
        assert!(
            response
                .body
                .contains("weir_operator_reconciliations_total{result=\"ok\"} 1\n")
        );
        assert_eq!(response.body, server.metrics.render());
    }

    #[tokio::test]
    async fn shutdown_stops_the_server_and_closes_the_port() {
        let server = start().await;
        assert_eq!(get(server.addr, "/healthz").await.status, 200);
        server.stop.send(()).expect("server running");
        let result = tokio::time::timeout(Duration::from_secs(5), server.task)
            .await
            .expect("stops within 5 s")
            .expect("task not panicked");
        assert!(result.is_ok());
        assert!(
            TcpStream::connect(server.addr).await.is_err(),
            "the port is closed"
        );
    }

    #[tokio::test]
    async fn binding_a_used_port_names_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = serve(
            addr,
            Arc::new(Metrics::new()),
            Arc::new(AtomicBool::new(true)),
        )
        .await
        .expect_err("the port is in use");
        assert!(matches!(err, Error::Bind { .. }));
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
