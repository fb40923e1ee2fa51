//! The crate's one error type: what a [`crate::JobControl`] implementation answers when it
//! cannot (mapped to HTTP statuses and gRPC codes at the edge), and what the server, the
//! clients and the token helpers report. Every message names the place: the URL, the file,
//! the address.

use std::net::SocketAddr;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the request names does not exist (an unknown savepoint trigger id).
    /// HTTP 404, gRPC `NOT_FOUND`.
    #[error("{0}")]
    NotFound(String),
    /// The job cannot do this now (a savepoint without a savepoint directory, cancelling a
    /// finished job). Retrying the same request will not help. HTTP 409, gRPC
    /// `FAILED_PRECONDITION`.
    #[error("{0}")]
    Rejected(String),
    /// The job is not in a state to answer (between attempts, shutting down); a retry later
    /// can help. HTTP 503, gRPC `UNAVAILABLE`.
    #[error("{0}")]
    Unavailable(String),
    /// The request itself is malformed (a JSON body that does not parse). HTTP 400, gRPC
    /// `INVALID_ARGUMENT`.
    #[error("{0}")]
    InvalidRequest(String),
    /// This job does not offer the operation (an implementation that leaves a defaulted
    /// [`crate::JobControl`] method alone). HTTP 501, gRPC `UNIMPLEMENTED`.
    #[error("{0}")]
    Unimplemented(String),

    #[error("cannot read the token file {path}")]
    ReadTokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {path} is empty")]
    EmptyTokenFile { path: PathBuf },
    #[error("the token {0}")]
    InvalidToken(String),
    #[error("cannot read the TLS file {path}")]
    ReadTlsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid TLS configuration: {0}")]
    Tls(String),

    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the control API's runtime")]
    Runtime { source: std::io::Error },
    #[error("the control API server failed: {0}")]
    Serve(String),

    #[error("'{url}' is not a valid control API URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("{url} refused the request: {message} (401 Unauthenticated)")]
    Unauthenticated { url: String, message: String },
    #[error("{url}: {message} (404 Not Found)")]
    RemoteNotFound { url: String, message: String },
    #[error("{url} answered {code}: {message}")]
    Remote {
        url: String,
        code: String,
        message: String,
    },
    #[error("{url} sent an answer this client does not understand: {reason}")]
    Protocol { url: String, reason: String },
}

impl Error {
    /// The gRPC status a server-side error becomes.
    pub(crate) fn to_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            Error::NotFound(_) => tonic::Status::not_found(message),
            Error::Rejected(_) => tonic::Status::failed_precondition(message),
            Error::Unavailable(_) => tonic::Status::unavailable(message),
            Error::InvalidRequest(_) => tonic::Status::invalid_argument(message),
            Error::Unimplemented(_) => tonic::Status::unimplemented(message),
            _ => tonic::Status::internal(message),
        }
    }

    /// The HTTP status a server-side error becomes.
    pub(crate) fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Rejected(_) => StatusCode::CONFLICT,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unimplemented(_) => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A client-side error for a call to `url` that ended with `status`.
    pub(crate) fn from_status(url: &str, status: tonic::Status) -> Error {
        let url = url.to_string();
        let message = status.message().to_string();
        match status.code() {
            tonic::Code::Unauthenticated => Error::Unauthenticated { url, message },
            tonic::Code::NotFound => Error::RemoteNotFound { url, message },
            tonic::Code::Unavailable if message.is_empty() || is_transport(&status) => {
                Error::Connect {
                    url,
                    detail: error_chain(&status),
                }
            }
            code => Error::Remote {
                url,
                code: format!("{code:?}"),
                message,
            },
        }
    }
}

fn is_transport(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some()
}

/// An error and its causes on one line ("transport error: … : Connection refused"), so the
/// reason a connection failed reaches the user.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}
