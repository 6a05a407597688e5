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
    /// The store URL is not one the server knows, or this build leaves
    /// out (shown without its password).
    #[error(
        "unknown store {0:?}: expected memory, sqlite://PATH, postgres://… or \
         cassandra://HOST:PORT/KEYSPACE (each as far as this build includes it)"
    )]
    UnknownStore(String),
    /// The SQLite file could not be opened or used.
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] chat_store_sqlite::SqliteError),
    /// `--cluster` names something other than `redis://…` (shown without its password).
    #[error("unknown cluster {0:?}: expected redis://…")]
    UnknownCluster(String),
    /// The cluster's Redis could not be used (bad URL, unreachable).
    #[error("cluster: {0}")]
    Cluster(#[source] chat_core::Error),
    /// `--node-id` names an id that another live node of the cluster holds.
    #[error(
        "--node-id: {0}: another live node of this cluster holds it. Start this node with \
         another --node-id, or without --node-id to take a free one"
    )]
    NodeIdInUse(#[source] chat_core::Error),
    /// Another node took this node's id while it could not renew its claim
    /// (cut off from Redis, or paused, for longer than the lease).
    #[error(
        "another node took this node's id ({0}) while it could not renew its claim; it stopped \
         so that no two nodes mint message ids with one worker id. Start it again to claim an id"
    )]
    NodeIdLost(chat_core::NodeId),
    /// The engine could not be built (for example the store is unreachable).
    #[error("engine: {0}")]
    Engine(#[from] chat_core::Error),
    /// A TLS certificate, key or CA file could not be used.
    #[error("tls: {0}")]
    Tls(String),
    /// The command line or the environment holds a bad flag or value (or
    /// asked for `--help` or `--version`: print it and exit).
    #[error("{0}")]
    Args(#[from] clap::Error),
    /// `--log-filter` does not parse.
    #[error("{0}")]
    LogFilter(String),
    /// `--jwt-secret-file` could not be read.
    #[error("--jwt-secret-file {}: {source}", path.display())]
    SecretFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The config file could not be read or holds a bad key or value.
    #[error("config file: {0}")]
    ConfigFile(String),
    /// Binding or serving the listen address failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
