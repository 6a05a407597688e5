//! Shared by the test binaries: the server's URL from the environment, and
//! one keyspace per test binary, created lazily by the first test.
//!
//! - `CHAT_TEST_CASSANDRA_URL`: the server (`scripts/services up cassandra`
//!   prints it; `scripts/test` exports it).
//! - `CHAT_TEST_REQUIRE_SERVICES=1` (set by `scripts/test` under CI): a
//!   missing URL or an unreachable server fails the test, never skips it.
//!   Without it, the binary prints one line saying what it skips and exits
//!   successfully (the conformance macros cannot skip one test).

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chat_store_cassandra::{CassandraConfig, CassandraStore};
use tokio::sync::OnceCell;

const URL_VAR: &str = "CHAT_TEST_CASSANDRA_URL";
const REQUIRE_VAR: &str = "CHAT_TEST_REQUIRE_SERVICES";

fn services_required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// Skips the whole binary (or fails under CI) with one clear line.
fn skip(why: &str) -> ! {
    if services_required() {
        panic!("{REQUIRE_VAR}=1 but {why}");
    }
    // Straight to stderr: libtest captures eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED chat-store-cassandra tests: {why}"
    );
    std::process::exit(0)
}

/// The contact points of the test server.
pub fn contact_points() -> Vec<String> {
    let url = match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => skip(&format!(
            "{URL_VAR} is not set (run `scripts/services up cassandra`)"
        )),
    };
    CassandraConfig::contact_points_from_url(&url)
        .unwrap_or_else(|e| panic!("{URL_VAR}={url:?} is not a cassandra:// URL: {e}"))
}

/// A config for `keyspace` on the test server, replication factor 1.
pub fn config(contact_points: Vec<String>, keyspace: &str) -> CassandraConfig {
    let mut config = CassandraConfig::new(contact_points, keyspace);
    config.request_timeout = Duration::from_secs(10);
    config
}

/// This binary's keyspace: `chat_test_<random>`, created with its tables by
/// the first caller. Schema changes take about a second per table, so the
/// binary's tests share it; the suite's random ids keep them apart.
pub async fn keyspace() -> &'static str {
    static KEYSPACE: OnceCell<String> = OnceCell::const_new();
    KEYSPACE
        .get_or_init(|| async {
            let name = format!("chat_test_{:016x}", rand::random::<u64>());
            // This store only creates the schema; dropping it closes its
            // session, which lives on this first test's runtime.
            if let Err(e) = CassandraStore::connect(config(contact_points(), &name)).await {
                skip(&format!("cannot create keyspace {name}: {e}"));
            }
            name
        })
        .await
}

/// A store on this binary's keyspace. Each test gets its own session
/// because each `#[tokio::test]` has its own runtime, and a session's
/// connections live on the runtime that opened them.
pub async fn store() -> Arc<CassandraStore> {
    let keyspace = keyspace().await;
    match CassandraStore::connect(config(contact_points(), keyspace)).await {
        Ok(store) => Arc::new(store),
        Err(e) => skip(&format!("cannot connect to keyspace {keyspace}: {e}")),
    }
}
