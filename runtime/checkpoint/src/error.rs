//! The one error type of `weir-checkpoint`, and how `object_store` errors map onto it.
//!
//! Every variant names the URI it is about, so a message reaching a user says which bucket,
//! folder or file is wrong. Store errors are sorted into what a user can act on (unreachable
//! endpoint, credentials, missing bucket, missing object) by [`store_error`]; the rest keep the
//! `object_store` error as their source.

use std::error::Error as StdError;
use std::path::PathBuf;

use object_store::client::{HttpError, HttpErrorKind};

/// Why a checkpoint storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage URI cannot be used: unknown scheme, missing bucket, `..` in the path...
    #[error("invalid storage uri {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: String },

    /// The object store client could not be built from the URI, options and environment.
    #[error("cannot configure the object store for {uri}")]
    Configure {
        uri: String,
        source: object_store::Error,
    },

    /// No answer from the endpoint (connection refused, DNS, timeout), after retries.
    #[error("cannot reach the object store for {uri}: check the endpoint and that it is up")]
    Unreachable {
        uri: String,
        source: object_store::Error,
    },

    /// The store refused the request, or no credentials could be found.
    #[error(
        "access to {uri} refused: missing or invalid credentials (set e.g. AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, GOOGLE_SERVICE_ACCOUNT, or AZURE_STORAGE_ACCOUNT_KEY)"
    )]
    Credentials {
        uri: String,
        source: object_store::Error,
    },

    /// The bucket (or Azure container) of the URI does not exist.
    #[error("the bucket or container of {uri} does not exist")]
    BucketNotFound {
        uri: String,
        source: object_store::Error,
    },

    /// A restore was pointed at a folder without a `_metadata`.
    #[error("no checkpoint or savepoint at {uri}: no _metadata")]
    NoCheckpoint { uri: String },

    /// A disposal was pointed at something that is not a savepoint folder; nothing was deleted.
    #[error("{uri} is not a savepoint: {reason}; nothing was deleted")]
    NotASavepoint { uri: String, reason: String },

    /// An object that was expected to exist does not.
    #[error("no object at {uri}")]
    NotFound { uri: String },

    /// A `_metadata` that is not Weir's: bad JSON, another format version.
    #[error("{uri} is not a weir checkpoint: {reason}")]
    NotACheckpoint { uri: String, reason: String },

    /// A checkpoint or savepoint whose referenced files are missing or damaged.
    #[error("the checkpoint at {uri} cannot be restored: {reason}")]
    Incomplete { uri: String, reason: String },

    /// A newer attempt of the job exists, so this one must not complete checkpoints.
    #[error("attempt {attempt} of the job at {uri} is fenced: attempt {newer} started since")]
    Fenced {
        uri: String,
        attempt: u64,
        newer: u64,
    },

    /// A create-only write found the object already there (another writer completed it).
    #[error("{uri} already exists: another writer completed it first")]
    AlreadyExists { uri: String },

    /// The size read back after an upload is not the size that was written.
    #[error("upload to {uri} did not verify: {actual} bytes stored, {expected} written")]
    Verify {
        uri: String,
        expected: u64,
        actual: u64,
    },

    /// Any other object store failure.
    #[error("object store request for {uri} failed")]
    Store {
        uri: String,
        source: object_store::Error,
    },

    /// Reading or writing a local file of an upload or download failed.
    #[error("local file {} for {uri} failed", path.display())]
    Io {
        uri: String,
        path: PathBuf,
        source: std::io::Error,
    },

    /// The crate's I/O runtime could not start (out of threads or file descriptors).
    #[error("cannot start the checkpoint i/o runtime: {reason}")]
    Runtime { reason: String },
}

impl Error {
    /// Whether trying the same operation again may succeed (a flaky network, a damaged upload),
    /// as opposed to a configuration or data problem that needs a person.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Store { .. } | Self::Verify { .. }
        )
    }
}

/// Sorts an `object_store` error about `uri` into the variant a user can act on.
pub(crate) fn store_error(uri: &str, err: object_store::Error) -> Error {
    use object_store::Error as E;
    let uri = uri.to_owned();
    if chain_mentions(
        &err,
        &["NoSuchBucket", "ContainerNotFound", "bucket does not exist"],
    ) {
        return Error::BucketNotFound { uri, source: err };
    }
    // Instance-metadata credentials that cannot be fetched (no credentials configured, not on a
    // cloud VM) surface as a connect error to the metadata endpoint, not to the store.
    if chain_mentions(
        &err,
        &[
            "169.254.169.254",
            "metadata.google.internal",
            "fd00:ec2::254",
        ],
    ) {
        return Error::Credentials { uri, source: err };
    }
    match err {
        E::NotFound { .. } => Error::NotFound { uri },
        E::AlreadyExists { .. } => Error::AlreadyExists { uri },
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            Error::Credentials { uri, source: err }
        }
        err if is_unreachable(&err) => Error::Unreachable { uri, source: err },
        err => Error::Store { uri, source: err },
    }
}

/// Whether the error chain holds an HTTP connect or timeout failure.
fn is_unreachable(err: &object_store::Error) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = next {
        if let Some(http) = current.downcast_ref::<HttpError>()
            && matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout)
        {
            return true;
        }
        next = current.source();
    }
    false
}

/// Whether any error message in the chain contains one of `needles`.
fn chain_mentions(err: &object_store::Error, needles: &[&str]) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = next {
        let message = current.to_string();
        if needles.iter().any(|needle| message.contains(needle)) {
            return true;
        }
        next = current.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(message: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: message.to_owned().into(),
        }
    }

    #[test]
    fn store_errors_are_sorted_into_what_a_user_can_act_on() {
        let uri = "s3://bucket/job";
        let not_found = object_store::Error::NotFound {
            path: "job/x".into(),
            source: "404".into(),
        };
        assert!(matches!(
            store_error(uri, not_found),
            Error::NotFound { .. }
        ));
        let no_bucket = object_store::Error::NotFound {
            path: "job/x".into(),
            source: "<Code>NoSuchBucket</Code>".into(),
        };
        assert!(matches!(
            store_error(uri, no_bucket),
            Error::BucketNotFound { .. }
        ));
        let denied = object_store::Error::PermissionDenied {
            path: "job/x".into(),
            source: "403".into(),
        };
        assert!(matches!(
            store_error(uri, denied),
            Error::Credentials { .. }
        ));
        let imds = generic("Error performing PUT http://169.254.169.254/latest/api/token");
        let err = store_error(uri, imds);
        assert!(matches!(err, Error::Credentials { .. }), "{err:?}");
        assert!(err.to_string().contains(uri), "{err}");
        assert!(matches!(
            store_error(uri, generic("500 internal error")),
            Error::Store { .. }
        ));
    }

    #[test]
    fn only_network_and_damage_errors_are_transient() {
        let uri = "s3://b/p".to_owned();
        assert!(
            Error::Verify {
                uri: uri.clone(),
                expected: 2,
                actual: 1
            }
            .is_transient()
        );
        assert!(!Error::NoCheckpoint { uri: uri.clone() }.is_transient());
        assert!(
            !Error::Fenced {
                uri,
                attempt: 1,
                newer: 2
            }
            .is_transient()
        );
    }
}
