//! [`CliError`]: every way a command fails, worded for the person at the terminal.

use std::path::PathBuf;

/// A failed command. The server's own code and message are kept as they came.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The HTTP API answered with an error body (or a bare error status).
    #[error("{message} (server said {code}, HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The contract's error code, e.g. `unauthorized`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The WebSocket answered a request with an `error` frame.
    #[error("{message} (server said {code})")]
    Chat {
        /// The contract's error code, e.g. `not_member`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The HTTP request did not get an answer.
    #[error("cannot reach the server: {0}")]
    Http(#[from] reqwest::Error),
    /// The WebSocket failed or could not be opened.
    #[error("chat connection failed: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server closed the WebSocket while an answer was awaited.
    #[error("the server closed the chat connection")]
    Closed,
    /// The server answered something the contract does not allow.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// No token: neither a session file nor `--token`/`CHAT_TOKEN`.
    #[error("not logged in: run `chat-cli login USER PASS`, or pass --token / CHAT_TOKEN")]
    NotLoggedIn,
    /// Neither a username nor a user id the server knows.
    #[error("no user {0:?}")]
    UnknownUser(String),
    /// A URL that cannot be used.
    #[error("bad URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Bad input on the command line or in the REPL.
    #[error("{0}")]
    Usage(String),
    /// The session file could not be read or written.
    #[error("session file {}: {source}", path.display())]
    Session {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The session file is not the JSON this client writes.
    #[error("session file {} is damaged ({source}): log in again", path.display())]
    SessionFormat {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The terminal (stdin or stdout) failed.
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    /// Whether the chat connection is gone, so an interactive session cannot go on.
    pub(crate) fn is_connection_lost(&self) -> bool {
        matches!(self, Self::WebSocket(_) | Self::Closed | Self::Io(_))
    }
}

/// The crate's result.
pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;
