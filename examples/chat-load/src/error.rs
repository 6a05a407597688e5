//! [`LoadError`]: every way a load run fails before it can report.

/// A run that cannot go on. Failures of single connections or sends during
/// the run are not errors: they are counted in the report.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The command line asks for something this tool refuses.
    #[error("{0}")]
    Usage(String),
    /// An HTTP call of the setup got no answer.
    #[error("cannot reach the server: {0}")]
    Http(#[from] reqwest::Error),
    /// An HTTP call of the setup was refused.
    #[error("{call} failed: HTTP {status}: {body}")]
    Api {
        /// What was asked, e.g. `signup of load1_7`.
        call: String,
        /// The HTTP status.
        status: u16,
        /// The server's error body.
        body: String,
    },
    /// The server answered something the contract does not allow.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// Too few connections opened to run the workload.
    #[error("only {opened} of {users} connections opened (first failure: {first_failure})")]
    TooFewConnections {
        /// How many opened.
        opened: usize,
        /// How many were tried.
        users: usize,
        /// Why the first failed one failed.
        first_failure: String,
    },
    /// The scheduler thread could not start.
    #[error("cannot start the scheduler thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The crate's result.
pub(crate) type Result<T, E = LoadError> = std::result::Result<T, E>;
