//! Creates and upgrades the schema: the numbered [`MIGRATIONS`] that
//! `schema_migrations` does not list yet, in one transaction under a
//! transaction-scoped advisory lock, so that processes starting at once take
//! turns and the later ones find nothing left to do.

use std::time::Duration;

use chat_core::{Error, Result};

use crate::conn::Conn;
use crate::migrations::{LATEST, MIGRATIONS};

/// Brings `schema` up to migration `up_to` on `conn` (tests build old
/// schemas with it, to upgrade them). A schema that some newer build has
/// taken past [`LATEST`] is refused: this build does not know its tables.
/// Each statement may run for `timeout` (a table rewrite takes long).
pub(crate) async fn migrate_to(
    conn: &mut Conn,
    schema: &str,
    up_to: i32,
    timeout: Duration,
) -> Result<()> {
    // Any failure below leaves the transaction open: the connection is then
    // closed rather than pooled, which rolls it back.
    conn.poison_until_done();
    conn.batch_execute(
        "migrate: begin",
        &format!(
            "BEGIN; SET LOCAL statement_timeout = {}",
            timeout.as_millis()
        ),
    )
    .await?;
    let lock = lock_key(schema);
    conn.query(
        "migrate: advisory lock",
        "SELECT pg_advisory_xact_lock($1::int8)",
        &[&lock],
    )
    .await?;
    let exists = conn
        .query(
            "migrate: find schema",
            "SELECT 1 FROM pg_namespace WHERE nspname = $1::text",
            &[&schema],
        )
        .await?;
    // The name was validated (see PostgresConfig::validate): no quoting
    // issue. CREATE SCHEMA only when missing, because it needs the CREATE
    // privilege on the database even with IF NOT EXISTS.
    if exists.is_empty() {
        conn.batch_execute(
            "migrate: create schema",
            &format!("CREATE SCHEMA \"{schema}\""),
        )
        .await?;
    }
    conn.batch_execute(
        "migrate: migrations table",
        &format!(
            "SET LOCAL search_path TO \"{schema}\";
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )"
        ),
    )
    .await?;
    let applied: Vec<i32> = conn
        .query(
            "migrate: applied versions",
            "SELECT version FROM schema_migrations",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if let Some(newest) = applied.iter().copied().max().filter(|v| *v > LATEST) {
        // Let go of the lock and the tables now, rather than when the
        // closed connection is noticed.
        if conn
            .batch_execute("migrate: roll back", "ROLLBACK")
            .await
            .is_ok()
        {
            conn.done();
        }
        return Err(Error::unavailable_msg(format!(
            "postgres: schema {schema} is at version {newest}, newer than this build's {LATEST}: upgrade chat-store-postgres"
        )));
    }
    for migration in MIGRATIONS {
        if migration.version > up_to || applied.contains(&migration.version) {
            continue;
        }
        tracing::info!(
            schema,
            version = migration.version,
            name = migration.name,
            "applying migration"
        );
        conn.batch_execute("migrate: apply", migration.sql).await?;
        conn.query(
            "migrate: record",
            "INSERT INTO schema_migrations (version, name) VALUES ($1::int4, $2::text)",
            &[&migration.version, &migration.name],
        )
        .await?;
    }
    conn.batch_execute("migrate: commit", "COMMIT").await?;
    conn.done();
    Ok(())
}

/// The advisory lock of one schema's migrations: FNV-1a of a fixed prefix
/// and the name, so that migrating two schemas of one database does not
/// serialize, and the same schema always takes the same lock.
fn lock_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "chat-store-postgres:".bytes().chain(schema.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
        assert_eq!(MIGRATIONS[0].version, 1);
    }

    #[test]
    fn lock_keys_differ_by_schema() {
        assert_eq!(lock_key("a"), lock_key("a"));
        assert_ne!(lock_key("a"), lock_key("b"));
    }
}
