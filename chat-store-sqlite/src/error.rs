//! [`SqliteError`]: what opening or using the database file can meet, and
//! how each maps onto a [`chat_core::Error`] kind.

use std::path::PathBuf;

use chat_core::Error;
use rusqlite::ErrorCode;

/// What went wrong in the SQLite store.
///
/// [`SqliteStore::connect`](crate::SqliteStore::connect) answers it as is,
/// so that a program can tell a wrong file from a full disk; the trait
/// methods answer the [`chat_core::Error`] it maps onto (`From`):
/// - a bad configuration, a file that is not a SQLite database, a database
///   of another program or of a newer schema: [`Error::InvalidInput`] (the
///   operator must change something; retrying does not help);
/// - a unique key taken: [`Error::AlreadyExists`];
/// - everything else (the file cannot be opened or written, the disk is
///   full, another process holds the lock past the busy timeout, the writer
///   stopped): [`Error::Unavailable`] with this error as its source. For a
///   send this means "not stored": retry with the same `client_msg_id`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// A configuration value that cannot work.
    #[error("invalid SQLite store configuration: {0}")]
    Config(String),
    /// The database's directory is missing and cannot be created.
    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite cannot open (or create) the file.
    #[error("cannot open the SQLite database {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's answer.
        source: rusqlite::Error,
    },
    /// The file exists but is not a SQLite database.
    #[error("{path} is not a SQLite database (nothing was changed in it)")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file is a SQLite database of another program: it has tables, or
    /// an application id, and they are not this store's.
    #[error(
        "{path} is a SQLite database of another program (application_id {application_id:#x}, \
         not chat-store-sqlite's {expected:#x}); nothing was changed in it"
    )]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
        /// Its `PRAGMA application_id`.
        application_id: i32,
        /// This store's.
        expected: i32,
    },
    /// The database was written by a newer version of this store, whose
    /// schema this one does not know.
    #[error(
        "{path} has schema version {found}, newer than version {supported} that this \
         chat-store-sqlite knows: open it with the newer version that wrote it"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its `PRAGMA user_version`.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// SQLite refused or failed a statement.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The write was applied, but the transaction of its batch did not
    /// commit (a full disk, an I/O error, a lock held past the busy
    /// timeout): nothing of it was stored.
    #[error("not stored: the SQLite transaction did not commit: {0}")]
    NotCommitted(String),
    /// The store cannot take the call: it is closing, its runtime is
    /// shutting down, or the call panicked.
    #[error("the SQLite store stopped: {0}")]
    Stopped(&'static str),
    /// The store's answer in chat-core's terms (a conflict with the head, a
    /// missing target, a taken name): passed through unchanged.
    #[error(transparent)]
    Refused(#[from] Error),
}

impl SqliteError {
    /// The SQLite error code, if SQLite produced this error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Open { source, .. } | Self::Sqlite(source) => source.sqlite_error_code(),
            _ => None,
        }
    }
}

impl From<SqliteError> for Error {
    fn from(e: SqliteError) -> Self {
        match e {
            SqliteError::Refused(e) => e,
            SqliteError::Config(_)
            | SqliteError::NotADatabase { .. }
            | SqliteError::ForeignDatabase { .. }
            | SqliteError::NewerSchema { .. } => Error::invalid(e.to_string()),
            SqliteError::Sqlite(ref s) if s.sqlite_error_code() == Some(ErrorCode::TooBig) => {
                Error::invalid(e.to_string())
            }
            SqliteError::Sqlite(ref s) if is_unique_violation(s) => {
                Error::already_exists(e.to_string())
            }
            other => Error::unavailable("sqlite", other),
        }
    }
}

/// A unique or primary key taken (not any other constraint, which would be
/// this crate's bug and stays `Unavailable`).
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_what_the_caller_can_do() {
        let refused = SqliteError::from(Error::not_found("message 1"));
        assert_eq!(Error::from(refused).code(), "not_found");
        let newer = SqliteError::NewerSchema {
            path: "x.db".into(),
            found: 9,
            supported: 1,
        };
        assert_eq!(Error::from(newer).code(), "invalid_input");
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL); INSERT INTO t VALUES ('a', 'x')",
        )
        .unwrap();
        let taken = conn
            .execute("INSERT INTO t VALUES ('a', 'y')", [])
            .unwrap_err();
        assert_eq!(
            Error::from(SqliteError::from(taken)).code(),
            "already_exists"
        );
        let null = conn
            .execute("INSERT INTO t VALUES ('b', NULL)", [])
            .unwrap_err();
        assert_eq!(Error::from(SqliteError::from(null)).code(), "unavailable");
        let gone = Error::from(SqliteError::Stopped("closing"));
        assert_eq!(gone.code(), "unavailable");
        assert!(std::error::Error::source(&gone).is_some());
    }
}
