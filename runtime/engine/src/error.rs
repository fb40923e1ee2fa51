//! The one error type of the runtime crate.
//!
//! Every error that reaches a user names the place: the SQL line and column, the table and
//! connector option, the file and line, or the operator that failed.

use std::path::PathBuf;

/// Where in the SQL script something is, 1-based like editors count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SqlLocation {
    pub line: u64,
    pub column: u64,
}

impl std::fmt::Display for SqlLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The script does not parse, or names something that does not exist.
    #[error("SQL error at {location}: {message}")]
    Sql {
        location: SqlLocation,
        message: String,
    },

    /// The script is valid Flink SQL but uses something Weir does not run (yet).
    #[error("not supported at {location}: {message}")]
    Unsupported {
        location: SqlLocation,
        message: String,
    },

    /// A table's `WITH (...)` options are wrong: unknown connector, unknown or missing option.
    #[error("table `{table}`: {message}")]
    TableOptions { table: String, message: String },

    /// A connector failed while the job ran.
    #[error("connector `{connector}` of table `{table}`: {message}")]
    Connector {
        connector: String,
        table: String,
        message: String,
    },

    /// A malformed row in an input file.
    #[error("{}:{line}: {message}", path.display())]
    Format {
        path: PathBuf,
        line: u64,
        message: String,
    },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An operator failed while the job ran; `retryable` says whether running again can help.
    #[error("operator `{operator}` failed: {message}")]
    Execution {
        operator: String,
        message: String,
        retryable: bool,
    },

    #[error("invalid setting `{key}`: {message}")]
    Config { key: String, message: String },

    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    #[error(transparent)]
    DataFusion(#[from] datafusion_common::DataFusionError),

    #[error("state backend: {0}")]
    State(#[from] weir_state::Error),

    /// Checkpoint storage failed (the message names the URI).
    #[error(transparent)]
    Checkpoint(#[from] weir_checkpoint::Error),

    /// A checkpoint or savepoint cannot be restored into this job.
    #[error("cannot restore {location}: {message}")]
    Restore { location: String, message: String },

    /// The processes of a distributed job lost each other, or disagree (the message names the
    /// worker or address). The job restarts from its latest checkpoint.
    #[error("cluster: {0}")]
    Cluster(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn sql(location: SqlLocation, message: impl Into<String>) -> Self {
        Error::Sql {
            location,
            message: message.into(),
        }
    }

    pub fn unsupported(location: SqlLocation, message: impl Into<String>) -> Self {
        Error::Unsupported {
            location,
            message: message.into(),
        }
    }

    pub fn table_options(table: impl Into<String>, message: impl Into<String>) -> Self {
        Error::TableOptions {
            table: table.into(),
            message: message.into(),
        }
    }

    pub fn execution(operator: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Execution {
            operator: operator.into(),
            message: message.into(),
            retryable: false,
        }
    }
}
