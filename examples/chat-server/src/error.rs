//! [`ServerError`]: why the server could not start or stopped.

/// Why the server could not start, or failed while serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// `--jwt-secret` is too short to keep tokens from being forged.
    #[error(
        "--jwt-secret (CHAT_JWT_SECRET) has {bytes} bytes; at least {min} are needed \
         (for example: openssl rand -base64 48)"
    )]
    WeakJwtSecret {
        /// Its length in bytes.
        bytes: usize,
        /// The shortest allowed.
        min: usize,
    },
    /// `--cluster` without `--jwt-secret`: a token from one node would not
    /// verify on another.
    #[error(
        "--cluster needs --jwt-secret (CHAT_JWT_SECRET): every node must share one secret, \
         or a login on one node fails on the others"
    )]
    ClusterWithoutJwtSecret,
    /// The store URL is not one the server knows (shown without its password).
    #[error("unknown store {0:?}: expected memory, postgres://… or cassandra://HOST:PORT/KEYSPACE")]
    UnknownStore(String),
    /// `--cluster` names something other than `redis://…` (shown without its password).
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
