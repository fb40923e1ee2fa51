//! The whole `--api` listener as one axum router: the gRPC service on
//! `/weir.control.v1.JobControl/*`, the same operations as JSON under `/v1/job`, Prometheus
//! text on `/metrics`, all behind the token, and the two probes `/healthz` and `/readyz`,
//! which need no token and say nothing about the job beyond "ready or not".

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::metrics;
use crate::model::{
    CompatibilityRequest, DisposeSavepointRequest, JobState, SavepointRequest, SavepointTriggered,
};
use crate::service::{GrpcService, JobControl, call};
use crate::token::{AUTHORIZATION, Token, refusal};

type Control = Arc<dyn JobControl>;

/// Every route of the control API. Requests other than the probes need the token when one
/// is given.
pub fn router(control: Control, token: Option<Token>) -> Router {
    let grpc = tonic::service::Routes::new(GrpcService::new(control.clone()).into_server())
        .prepare()
        .into_axum_router();
    let api = Router::new()
        .route("/v1/job", get(get_job))
        .route("/v1/job/checkpoints", get(get_checkpoints))
        .route("/v1/job/savepoints", post(trigger_savepoint))
        .route("/v1/job/savepoints/{trigger_id}", get(get_savepoint))
        .route("/v1/job/cancel", post(cancel))
        .route("/v1/job/compatibility", post(check_compatibility))
        .route("/v1/savepoint-disposal", post(dispose_savepoint))
        .route("/metrics", get(get_metrics))
        .with_state(control.clone())
        .merge(grpc)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(token, require_token));
    let probes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(control);
    api.merge(probes)
}

fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

async fn require_token(
    State(token): State<Option<Token>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if token.verify_header(header) {
        return next.run(request).await;
    }
    let reason = refusal(header);
    tracing::debug!(path = %request.uri().path(), reason, "control API request refused");
    if is_grpc(&request) {
        return tonic::Status::unauthenticated(reason).into_http();
    }
    let mut response = error_body(StatusCode::UNAUTHORIZED, reason);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn not_found(request: Request) -> Response {
    if is_grpc(&request) {
        return tonic::Status::unimplemented("").into_http();
    }
    let message = format!(
        "no such endpoint: {} {}",
        request.method(),
        request.uri().path()
    );
    error_body(StatusCode::NOT_FOUND, &message)
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error_body(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    respond(status, "application/json", body)
}

fn json<T: Serialize>(status: StatusCode, result: Result<T>) -> Response {
    match result.and_then(|value| {
        serde_json::to_string(&value)
            .map_err(|e| Error::Unavailable(format!("cannot encode the answer: {e}")))
    }) {
        Ok(body) => respond(status, "application/json", body),
        Err(e) => error_body(e.http_status(), &e.to_string()),
    }
}

async fn get_job(State(control): State<Control>) -> Response {
    json(StatusCode::OK, call(&control, |c| c.job()).await)
}

async fn get_checkpoints(State(control): State<Control>) -> Response {
    json(StatusCode::OK, call(&control, |c| c.checkpoints()).await)
}

async fn trigger_savepoint(State(control): State<Control>, body: Bytes) -> Response {
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(SavepointRequest::default())
    } else {
        serde_json::from_slice::<SavepointRequest>(&body).map_err(|e| {
            Error::InvalidRequest(format!(
                "the body must be {{\"dir\": string or null, \"stop\": bool, \
                 \"requestId\": string or null}}: {e}"
            ))
        })
    };
    let result = match request {
        Ok(request) => call(&control, move |c| c.trigger_savepoint(request))
            .await
            .map(|trigger_id| SavepointTriggered { trigger_id }),
        Err(e) => Err(e),
    };
    json(StatusCode::ACCEPTED, result)
}

async fn get_savepoint(State(control): State<Control>, Path(trigger_id): Path<String>) -> Response {
    json(
        StatusCode::OK,
        call(&control, move |c| c.savepoint(&trigger_id)).await,
    )
}

async fn cancel(State(control): State<Control>) -> Response {
    json(StatusCode::ACCEPTED, call(&control, |c| c.cancel()).await)
}

async fn check_compatibility(State(control): State<Control>, body: Bytes) -> Response {
    let request = serde_json::from_slice::<CompatibilityRequest>(&body).map_err(|e| {
        Error::InvalidRequest(format!(
            "the body must be {{\"sql\": string, \"settings\": {{string: string}}}}: {e}"
        ))
    });
    let result = match request {
        Ok(r) => {
            call(&control, move |c| {
                c.check_compatibility(&r.sql, &r.settings)
            })
            .await
        }
        Err(e) => Err(e),
    };
    json(StatusCode::OK, result)
}

async fn dispose_savepoint(State(control): State<Control>, body: Bytes) -> Response {
    let request = serde_json::from_slice::<DisposeSavepointRequest>(&body)
        .map_err(|e| Error::InvalidRequest(format!("the body must be {{\"path\": string}}: {e}")));
    let result = match request {
        Ok(r) => call(&control, move |c| c.dispose_savepoint(&r.path))
            .await
            .map(|()| serde_json::json!({})),
        Err(e) => Err(e),
    };
    json(StatusCode::OK, result)
}

async fn get_metrics(State(control): State<Control>) -> Response {
    let figures = call(&control, |c| Ok((c.job()?, c.checkpoints()?))).await;
    match figures {
        Ok((job, checkpoints)) => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::render(&job, &checkpoints),
        ),
        Err(e) => error_body(e.http_status(), &e.to_string()),
    }
}

/// Liveness: the process serves requests.
async fn healthz() -> Response {
    respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")
}

/// Readiness: the job is `RUNNING`. The body is only "ready" or "not ready".
async fn readyz(State(control): State<Control>) -> Response {
    let running = matches!(
        call(&control, |c| c.job()).await,
        Ok(job) if job.state == JobState::Running
    );
    if running {
        respond(StatusCode::OK, "text/plain; charset=utf-8", "ready\n")
    } else {
        respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "not ready\n",
        )
    }
}
