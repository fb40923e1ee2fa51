//! The crate's one error type. Variants are named for the step that failed; [`Error::is_permanent`]
//! tells the controller's error policy whether retrying can help (an invalid spec cannot: it
//! awaits a change), and [`Error::reason`] is the low-cardinality word counted in the metrics.

/// How a call to a job's control API failed, as far as the controller cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobControlFailure {
    /// The coordinator could not be reached (not started yet, restarting, network).
    Unreachable,
    /// The coordinator does not know what was named (a savepoint trigger id after it restarted).
    NotFound,
    /// The job cannot do it in its state (cancelling a finished job); retrying will not help.
    Rejected,
    /// The coordinator does not offer this operation (an older runtime image).
    Unsupported,
    /// Anything else (token refused, malformed answer, internal error).
    Other,
}

/// Everything reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The FlinkJob has no namespace, name or uid (never true of a stored object).
    #[error("the FlinkJob has no {0}")]
    MissingMetadata(&'static str),

    /// Reading the FlinkJob afresh (observe reads past the watch cache) failed.
    #[error("cannot read FlinkJob {name}")]
    GetFlinkJob { name: String, source: kube::Error },

    /// Writing the FlinkJob's status failed (also: it changed since it was read; retried).
    #[error("cannot write the status of FlinkJob {name}")]
    PatchStatus { name: String, source: kube::Error },

    /// Reading the ConfigMap named by job.sqlConfigMap failed.
    #[error("cannot read ConfigMap {name} (job.sqlConfigMap)")]
    ReadSqlConfigMap { name: String, source: kube::Error },

    /// Reading one of the FlinkJob's own children failed.
    #[error("cannot read {kind} {name}")]
    ReadChild {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },

    /// Server-side apply of a child failed.
    #[error("cannot apply {kind} {name}")]
    ApplyChild {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },

    /// Deleting a child (suspended job, orphan) failed.
    #[error("cannot delete {kind} {name}")]
    DeleteChild {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },

    /// A child could not be built (a pod template override that is not a partial Pod).
    #[error("cannot build {kind} {name}: {reason}")]
    BuildChild {
        kind: &'static str,
        name: String,
        reason: String,
    },

    /// The token Secret exists but holds no token.
    #[error("Secret {name} has no 'token' key; delete it and the operator creates a new one")]
    EmptyToken { name: String },

    /// A spec snapshot in the status cannot be read or written.
    #[error("spec snapshot")]
    Snapshot { source: weir_crds::Error },

    /// A call to the job's control API failed.
    #[error("{operation} on {url} failed: {message}")]
    JobControl {
        operation: &'static str,
        url: String,
        failure: JobControlFailure,
        message: String,
    },

    /// The finalizer helper could not add or remove the finalizer.
    #[error("finalizer")]
    Finalizer {
        #[source]
        source: Box<kube::runtime::finalizer::Error<Error>>,
    },
}

impl Error {
    /// Whether retrying the same reconcile cannot help until something changes. Invalid specs
    /// never reach here as errors (the plan reports them in the status and awaits a change);
    /// what is left permanent is a broken object the operator cannot fix by itself.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::MissingMetadata(_) | Error::BuildChild { .. } | Error::Snapshot { .. } => true,
            Error::Finalizer { source } => match source.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.is_permanent(),
                _ => false,
            },
            _ => false,
        }
    }

    /// A stable word for the metrics' `reason` label (never a message).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::MissingMetadata(_) => "missing_metadata",
            Error::GetFlinkJob { .. } => "get_flinkjob",
            Error::PatchStatus { .. } => "patch_status",
            Error::ReadSqlConfigMap { .. } => "read_sql_configmap",
            Error::ReadChild { .. } => "read_child",
            Error::ApplyChild { .. } => "apply_child",
            Error::DeleteChild { .. } => "delete_child",
            Error::BuildChild { .. } => "build_child",
            Error::EmptyToken { .. } => "empty_token",
            Error::Snapshot { .. } => "spec_snapshot",
            Error::JobControl { .. } => "job_control",
            Error::Finalizer { source } => match source.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.reason(),
                _ => "finalizer",
            },
        }
    }

    /// The control-API failure kind, when this is a control-API error.
    pub fn job_control_failure(&self) -> Option<JobControlFailure> {
        match self {
            Error::JobControl { failure, .. } => Some(*failure),
            _ => None,
        }
    }
}

impl From<weir_crds::Error> for Error {
    fn from(source: weir_crds::Error) -> Self {
        Error::Snapshot { source }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
