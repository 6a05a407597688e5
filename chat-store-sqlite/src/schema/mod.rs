//! The schema and its numbered migrations.
//!
//! The database's `PRAGMA user_version` is the number of migrations applied;
//! `PRAGMA application_id` marks the file as this store's. At connect, a
//! file is first read (never written) to check that it is a SQLite
//! database, that it is this store's or empty, and that its version is one
//! this build knows. Then the missing migrations run in one transaction
//! together with the new `user_version`: a crash midway leaves the old
//! version whole, and two processes that open a new file at once apply each
//! migration once (the second waits for the first's write lock, then finds
//! the version up to date).

use std::path::Path;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::error::SqliteError;

/// `PRAGMA application_id` of this store's files: "CHAT" in ASCII.
pub(crate) const APPLICATION_ID: i32 = 0x4348_4154;

/// The migrations, in order: migration `n` (from 1) is `MIGRATIONS[n - 1]`.
/// Append only; never change one that has shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("0001_initial.sql"),
    include_str!("0002_departures.sql"),
    include_str!("0003_intents.sql"),
];

/// The schema version this build writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// What a file holds before the store touches it.
struct Found {
    application_id: i32,
    version: i64,
    /// Tables, indexes, views and triggers.
    objects: i64,
}

fn inspect(conn: &Connection) -> rusqlite::Result<Found> {
    Ok(Found {
        application_id: conn.query_row("PRAGMA application_id", [], |r| r.get(0))?,
        version: conn.query_row("PRAGMA user_version", [], |r| r.get(0))?,
        objects: conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?,
    })
}

/// Maps SQLite's "file is not a database" onto [`SqliteError::NotADatabase`].
pub(crate) fn classify(e: rusqlite::Error, path: &Path) -> SqliteError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => SqliteError::NotADatabase {
            path: path.to_owned(),
        },
        _ => SqliteError::Sqlite(e),
    }
}

fn judge(found: &Found, path: &Path) -> Result<(), SqliteError> {
    let ours = found.application_id == APPLICATION_ID;
    let empty = found.application_id == 0 && found.version == 0 && found.objects == 0;
    if !ours && !empty {
        return Err(SqliteError::ForeignDatabase {
            path: path.to_owned(),
            application_id: found.application_id,
            expected: APPLICATION_ID,
        });
    }
    if found.version > LATEST {
        return Err(SqliteError::NewerSchema {
            path: path.to_owned(),
            found: found.version,
            supported: LATEST,
        });
    }
    Ok(())
}

/// Checks, without writing, that the file at `path` (open on `conn`) is a
/// SQLite database that is empty or this store's, at a version this build
/// knows.
pub(crate) fn check(conn: &Connection, path: &Path) -> Result<(), SqliteError> {
    let found = inspect(conn).map_err(|e| classify(e, path))?;
    judge(&found, path)
}

/// Applies the missing migrations (creating the schema in a new file).
/// Returns the version found before.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<i64, SqliteError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Again under the write lock: another process may have migrated since.
    let found = inspect(&tx).map_err(|e| classify(e, path))?;
    judge(&found, path)?;
    if found.version == LATEST {
        return Ok(found.version);
    }
    if found.application_id != APPLICATION_ID {
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    for sql in MIGRATIONS.iter().skip(found.version as usize) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", LATEST)?;
    tx.commit()?;
    tracing::info!(
        path = %path.display(),
        from = found.version,
        to = LATEST,
        "sqlite schema migrated"
    );
    Ok(found.version)
}
