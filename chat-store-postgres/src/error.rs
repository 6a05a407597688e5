//! PostgreSQL's failures as [`chat_core::Error`] kinds.
//!
//! - A unique violation is [`Error::AlreadyExists`] (a taken username,
//!   conversation id, device id or invite).
//! - Text the database cannot hold (a NUL character) is
//!   [`Error::InvalidInput`].
//! - Everything else the server or the connection reports (refused or lost
//!   connections, a cancelled statement, a full pool, a timeout, and errors
//!   that only a broken database produces, such as a missing table) is
//!   [`Error::Unavailable`] with the driver's error as its source: the
//!   caller cannot fix any of them, and for a send they mean "not stored,
//!   retry with the same client_msg_id".

use chat_core::Error;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// Maps a driver error met while doing `what`.
pub(crate) fn from_pg(what: &str, error: tokio_postgres::Error) -> Error {
    if let Some(db) = error.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            let constraint = db.constraint().unwrap_or("a unique key");
            return Error::already_exists(format!("{what}: {constraint}"));
        }
        // Text the database cannot hold (a NUL character): the caller's input.
        if *db.code() == SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || *db.code() == SqlState::UNTRANSLATABLE_CHARACTER
        {
            return Error::invalid(format!("{what}: {}", db.message()));
        }
    }
    Error::unavailable(format!("postgres: {what}"), error)
}

/// Maps a failure to get a pooled connection.
pub(crate) fn from_pool(what: &str, error: PoolError) -> Error {
    Error::unavailable(format!("postgres: no connection for {what}"), error)
}

/// The client waited longer than the deadline for a reply.
pub(crate) fn no_reply(what: &str) -> Error {
    Error::unavailable_msg(format!("postgres: no reply in time for {what}"))
}

/// Whether retrying the same statement may succeed: the server broke a
/// deadlock or a serialization conflict by failing this statement.
pub(crate) fn is_conflict(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
    })
}
