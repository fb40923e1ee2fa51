//! The stand-in's one error type. Every variant maps to the HTTP status code and `metav1.Status`
//! body a real API server would send, so kube surfaces it as `kube::Error::Api` with the same
//! `code` and `reason` the operator's error handling matches on.

use serde_json::{Value, json};

/// What went wrong while serving a request, or while using the test handle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path names no registered resource, or the object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A create found an object with the same name.
    #[error("{0}")]
    AlreadyExists(String),
    /// A resourceVersion precondition failed, or server-side apply found a field owned by another
    /// manager.
    #[error("{0}")]
    Conflict(String),
    /// The request was malformed (bad query, bad body, unsupported patch type...).
    #[error("{0}")]
    BadRequest(String),
    /// The object fails validation (missing name, mismatched namespace...).
    #[error("{0}")]
    Invalid(String),
    /// The verb is not served on this path (for example PUT on a collection).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The patch content type is not one the API server accepts.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json: {0}"
    )]
    UnsupportedMediaType(String),
    /// A fault injected by the test: answered with this code, reason and message.
    #[error("{message}")]
    Injected {
        /// HTTP status code.
        code: u16,
        /// `Status.reason` (`Conflict`, `InternalError`, `TooManyRequests`, `Timeout`...).
        reason: String,
        /// `Status.message`.
        message: String,
    },
    /// A fault injected by the test that fails the transport instead of answering (as a dropped
    /// connection would): kube reports it as `kube::Error::Service`.
    #[error("injected transport failure: {0}")]
    Transport(String),
    /// The request body could not be read.
    #[error("reading the request body")]
    ReadBody(#[source] kube::Error),
    /// A JSON (or YAML) body could not be decoded.
    #[error("decoding the request body")]
    Decode(#[source] serde_json::Error),
    /// An object handed to an inspection helper could not be converted to or from JSON.
    #[error("converting {what} to or from JSON")]
    Convert {
        /// What was being converted.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// `wait_for` ran out of time before the predicate held.
    #[error("timed out after {0:?} waiting for the stand-in's objects to satisfy the predicate")]
    WaitTimeout(std::time::Duration),
    /// A CustomResourceDefinition could not be registered.
    #[error("invalid CustomResourceDefinition: {0}")]
    InvalidCrd(String),
}

impl Error {
    /// The HTTP status code a real API server answers with.
    pub fn code(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::AlreadyExists(_) | Error::Conflict(_) => 409,
            Error::BadRequest(_) | Error::Decode(_) | Error::ReadBody(_) => 400,
            Error::Invalid(_) | Error::InvalidCrd(_) => 422,
            Error::MethodNotAllowed(_) => 405,
            Error::UnsupportedMediaType(_) => 415,
            Error::Injected { code, .. } => *code,
            Error::Transport(_) | Error::Convert { .. } | Error::WaitTimeout(_) => 500,
        }
    }

    /// The `Status.reason` a real API server answers with.
    pub fn reason(&self) -> &str {
        match self {
            Error::NotFound(_) => "NotFound",
            Error::AlreadyExists(_) => "AlreadyExists",
            Error::Conflict(_) => "Conflict",
            Error::BadRequest(_) | Error::Decode(_) | Error::ReadBody(_) => "BadRequest",
            Error::Invalid(_) | Error::InvalidCrd(_) => "Invalid",
            Error::MethodNotAllowed(_) => "MethodNotAllowed",
            Error::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Error::Injected { reason, .. } => reason,
            Error::Transport(_) | Error::Convert { .. } | Error::WaitTimeout(_) => "InternalError",
        }
    }

    /// The `metav1.Status` body for this error.
    pub fn to_status(&self) -> Value {
        let mut message = self.to_string();
        if let Some(source) = std::error::Error::source(self) {
            message = format!("{message}: {source}");
        }
        status_body(self.code(), self.reason(), &message)
    }

    /// `configmaps "name" not found` — the message the API server uses.
    pub(crate) fn not_found(resource: &str, name: &str) -> Self {
        Error::NotFound(format!("{resource} \"{name}\" not found"))
    }

    /// The optimistic-concurrency message kube users see on a stale resourceVersion.
    pub(crate) fn stale(resource: &str, name: &str) -> Self {
        Error::Conflict(format!(
            "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again"
        ))
    }
}

/// A `metav1.Status` failure body.
pub(crate) fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}
