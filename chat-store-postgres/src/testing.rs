//! Helpers for tests against a real server: the URL from the environment
//! and a store in a fresh schema of its own.
//!
//! - `CHAT_TEST_POSTGRES_URL`: the server (`scripts/services up postgres`
//!   prints it; `scripts/test` exports it).
//! - `CHAT_TEST_REQUIRE_SERVICES=1` (set by `scripts/test` under CI): a
//!   missing URL or an unreachable server is a failure (a panic), never a
//!   skip. Without it, the helpers print one line saying what is skipped
//!   and answer `None`.

use std::sync::Arc;

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
/// `schema` is replaced). `None`, after printing why, when there is no
/// server and it is not required.
///
/// # Panics
/// When the server is required but not set or not reachable.
pub async fn fresh_store_with(config: PostgresConfig) -> Option<Arc<PostgresStore>> {
    let url = test_url()?;
    let config = PostgresConfig {
        schema: fresh_schema(),
        ..config
    };
    match PostgresStore::connect_with(&url, config).await {
        Ok(store) => Some(Arc::new(store)),
        Err(e) => {
            let why = format!("PostgreSQL at {url} cannot be used: {e}");
            if services_required() {
                panic!("{REQUIRE_VAR}=1 but {why}");
            }
            skip_line(&why);
            None
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

/// Prints the skip line where `cargo test` shows it even for a passing
/// test: straight to the process's stderr, past the test harness's capture.
fn skip_line(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED (no PostgreSQL): {why}");
}
