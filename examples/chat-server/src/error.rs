//! [`ServerError`]: why the server could not start or stopped.

/// Why the server could not start, or failed while serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The store URL is not one the server knows.
    #[error("unknown store {0:?}: expected memory, postgres://… or cassandra://HOST:PORT/KEYSPACE")]
    UnknownStore(String),
    /// `--cluster` names something other than `redis://…`.
    #[error("unknown cluster {0:?}: expected redis://…")]
    UnknownCluster(String),
    /// The cluster's Redis could not be used (bad URL, unreachable).
    #[error("cluster: {0}")]
    Cluster(#[source] chat_core::Error),
    /// The engine could not be built (for example the store is unreachable).
    #[error("engine: {0}")]
    Engine(#[from] chat_core::Error),
    /// Binding or serving the listen address failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
