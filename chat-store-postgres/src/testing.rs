//! Helpers for tests against a real server: the URL from the environment,
//! a store in a fresh schema of its own, and the schema dropped again when
//! the test is done with it.
//!
//! - `CHAT_TEST_POSTGRES_URL`: the server (`scripts/services up postgres`
//!   prints it; `scripts/test` exports it).
//! - `CHAT_TEST_REQUIRE_SERVICES=1` (set by `scripts/test` under CI): a
//!   missing URL is a failure (a panic), never a skip. Without it, the
//!   helpers print one line saying what is skipped and answer `None`.
//! - A URL that is set but unusable is always a failure: the tests were
//!   meant to run, and a skip decided mid-run would hide the failures of
//!   the binary's other tests.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Shared;
use crate::{PostgresConfig, PostgresStore};

/// The environment variable with the test server's URL.
pub const URL_VAR: &str = "CHAT_TEST_POSTGRES_URL";
/// The environment variable that turns a skip into a failure.
pub const REQUIRE_VAR: &str = "CHAT_TEST_REQUIRE_SERVICES";

/// Whether tests must fail rather than skip without their server.
pub fn services_required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// The test server's URL; `None` (after printing why) when it is not set
/// and not required.
///
/// # Panics
/// When it is not set and [`services_required`].
pub fn test_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let why = format!("{URL_VAR} is not set (run `scripts/services up postgres`)");
            if services_required() {
                panic!("{REQUIRE_VAR}=1 but {why}");
            }
            skip_line(&why);
            None
        }
    }
}

/// A schema name no other call produces: `t_` and 64 random bits in hex.
pub fn fresh_schema() -> String {
    format!("t_{:016x}", rand::random::<u64>())
}

/// A store on the test server in a fresh schema, with `config` (its
/// `schema` is replaced). The schema is dropped when the store is (also
/// when the test panics: unwinding drops it). `None`, after printing why,
/// when there is no server and it is not required.
///
/// # Panics
/// When the server is required but not set or not reachable.
pub async fn fresh_store_with(config: PostgresConfig) -> Option<Arc<PostgresStore>> {
    let url = test_url()?;
    let schema = fresh_schema();
    let guard = SchemaGuard::new(&url, &schema);
    let config = PostgresConfig { schema, ..config };
    match PostgresStore::connect_with(&url, config).await {
        Ok(mut store) => {
            store.schema_guard = Some(guard);
            Some(Arc::new(store))
        }
        Err(e) => {
            // The URL was given: the tests were meant to run. A skip here
            // could fire in the middle of a binary's run and hide the
            // failures of its other tests behind a success.
            panic!("{URL_VAR} is set but PostgreSQL at {url} cannot be used: {e}")
        }
    }
}

/// [`fresh_store_with`] the default configuration.
///
/// # Panics
/// As [`fresh_store_with`].
pub async fn fresh_store() -> Option<Arc<PostgresStore>> {
    fresh_store_with(PostgresConfig::default()).await
}

/// A fresh schema on the test server, created and migrated to the newest
/// version, for processes that connect to it by name (chat-server nodes of
/// one test): the guard names it and drops it when the test drops the
/// guard. `None`, after printing why, when there is no server and it is not
/// required. (A store from [`fresh_store`] drops its schema with the store,
/// so it cannot lend its schema to others beyond its own life.)
///
/// # Panics
/// As [`fresh_store_with`].
pub async fn fresh_migrated_schema() -> Option<SchemaGuard> {
    let url = test_url()?;
    let guard = SchemaGuard::new(&url, &fresh_schema());
    let config = PostgresConfig {
        schema: guard.schema().to_owned(),
        ..PostgresConfig::default()
    };
    let migrated = match Shared::open(&url, config) {
        Ok(shared) => shared.migrate_to(crate::migrations::LATEST).await,
        Err(e) => Err(e),
    };
    match migrated {
        Ok(()) => Some(guard),
        Err(e) => {
            // The URL was given: the tests were meant to run. A skip here
            // could fire in the middle of a binary's run and hide the
            // failures of its other tests behind a success.
            panic!("{URL_VAR} is set but PostgreSQL at {url} cannot be used: {e}")
        }
    }
}

/// Creates `schema` at `url` holding the tables of migration `version`
/// only (not the newest): for tests that fill an old schema and then let
/// [`PostgresStore::connect_with`] upgrade it.
///
/// # Errors
/// As [`PostgresStore::connect_with`].
pub async fn create_schema_at(url: &str, schema: &str, version: i32) -> chat_core::Result<()> {
    let config = PostgresConfig {
        schema: schema.to_owned(),
        ..PostgresConfig::default()
    };
    Shared::open(url, config)?.migrate_to(version).await
}

/// Drops a schema (`DROP SCHEMA … CASCADE`) when dropped itself: a test
/// holds one for every schema it creates, so the schema goes at the end of
/// the test, whether it passed or panicked.
///
/// The drop runs on a thread of its own with its own connection (so it
/// works from within the test's runtime, and after it), waits at most ten
/// seconds for locks, and only prints when it fails. Tests that hold one
/// should run on a multi-threaded runtime: on a single thread, the drop
/// blocks the store's connection tasks, and a connection closed with a
/// transaction open (after a failure) keeps its locks until the drop
/// gives up.
#[derive(Debug)]
pub struct SchemaGuard {
    url: String,
    schema: String,
}

impl SchemaGuard {
    /// A guard for `schema` on the server at `url`.
    pub fn new(url: &str, schema: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }

    /// The schema it drops.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(drop_schema(&url, &schema))
        });
        // On a multi-threaded runtime, the other tasks of this worker
        // (the store's connections among them) move elsewhere meanwhile.
        let on_multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let joined = if on_multi_thread {
            tokio::task::block_in_place(|| dropper.join())
        } else {
            dropper.join()
        };
        let failure = match joined {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(_) => "the thread dropping it panicked".to_owned(),
        };
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "test schema {} was not dropped: {failure}",
            self.schema
        );
    }
}

async fn drop_schema(url: &str, schema: &str) -> Result<(), String> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    config.connect_timeout(Duration::from_secs(5));
    let connect = config.connect(tokio_postgres::NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| "no connection in time".to_owned())?
        .map_err(|e| format!("{e}"))?;
    tokio::spawn(connection);
    let quoted = schema.replace('"', "\"\"");
    let sql = format!(
        "SET lock_timeout = '10s'; SET statement_timeout = '20s'; DROP SCHEMA IF EXISTS \"{quoted}\" CASCADE"
    );
    tokio::time::timeout(Duration::from_secs(30), client.batch_execute(&sql))
        .await
        .map_err(|_| "no reply in time".to_owned())?
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        })
}

/// Prints the skip line where `cargo test` shows it even for a passing
/// test: straight to the process's stderr, past the test harness's capture.
fn skip_line(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED (no PostgreSQL): {why}");
}
