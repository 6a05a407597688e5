//! Every line of the contract against Cassandra, in both retention modes,
//! and data that survive a server restart.
//!
//! The scenarios sign up fixed usernames ("alice", "bob"), so each test runs
//! on a fresh keyspace, which the server creates (`--store
//! cassandra://HOST:PORT/KEYSPACE`) and the test's runtime drops when it
//! shuts down (see [`DropAtShutdown`]).
//!
//! - `CHAT_TEST_CASSANDRA_URL`: the node (`scripts/services up cassandra`
//!   prints it; `scripts/test` exports it).
//! - `CHAT_TEST_REQUIRE_SERVICES=1` (set by `scripts/test` under CI): a
//!   missing URL or an unreachable node fails the tests, never skips them.
//!   Without it, the binary prints one line saying what it skips and exits
//!   successfully.

mod common;

use std::io::Write;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tokio::sync::OnceCell;

chat_server_e2e!(
    forever,
    &crate::fresh_store_url().await,
    chat_core::Retention::Forever
);
chat_server_e2e!(
    until_delivered,
    &crate::fresh_store_url().await,
    chat_core::Retention::UntilDelivered
);

const URL_VAR: &str = "CHAT_TEST_CASSANDRA_URL";
const REQUIRE_VAR: &str = "CHAT_TEST_REQUIRE_SERVICES";

/// Skips the whole binary (or fails under CI) with one clear line.
fn skip(why: &str) -> ! {
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
        panic!("{REQUIRE_VAR}=1 but {why}");
    }
    // Straight to stderr: libtest captures eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED chat-server Cassandra e2e tests: {why}"
    );
    std::process::exit(0)
}

/// The test node's contact points (`host:port,…`), checked reachable once
/// per binary.
async fn contact_points() -> &'static str {
    static POINTS: OnceCell<String> = OnceCell::const_new();
    POINTS
        .get_or_init(|| async {
            let url = match std::env::var(URL_VAR) {
                Ok(url) if !url.is_empty() => url,
                _ => skip(&format!(
                    "{URL_VAR} is not set (run `scripts/services up cassandra`)"
                )),
            };
            let points = url
                .strip_prefix("cassandra://")
                .map(|rest| rest.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| panic!("{URL_VAR}={url:?} is not a cassandra:// URL"));
            if let Err(e) = session(&points).await {
                // The URL is set: the tests were meant to run.
                panic!("{URL_VAR} is set but Cassandra at {url} cannot be reached: {e}");
            }
            points
        })
        .await
}

async fn session(points: &str) -> Result<Session, String> {
    SessionBuilder::new()
        .known_nodes(points.split(','))
        .build()
        .await
        .map_err(|e| e.to_string())
}

/// A store URL on a keyspace of its own, dropped when the calling test's
/// runtime shuts down.
async fn fresh_store_url() -> String {
    let points = contact_points().await;
    let keyspace = format!("chat_e2e_{:016x}", rand::random::<u64>());
    let guard = DropAtShutdown {
        points: points.to_owned(),
        keyspace: keyspace.clone(),
    };
    // A task that never ends holds the guard: the runtime drops it at
    // shutdown, after the test passed or panicked.
    tokio::spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    format!("cassandra://{points}/{keyspace}")
}

/// Drops its keyspace when dropped: each e2e test makes one, and a node
/// with hundreds of leftover tables runs out of heap.
struct DropAtShutdown {
    points: String,
    keyspace: String,
}

impl Drop for DropAtShutdown {
    fn drop(&mut self) {
        let (points, keyspace) = (self.points.clone(), self.keyspace.clone());
        // Dropped while the test's runtime shuts down: a runtime of its
        // own, on a thread of its own, does the drop.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                session(&points)
                    .await?
                    .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), &[])
                    .await
                    .map_err(|e| e.to_string())
            })?;
            Ok::<_, String>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop keyspace {}: {dropped:?}",
                self.keyspace
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_groups_history_and_pending_survive_a_restart() {
    common::restart::data_survives_a_restart(&fresh_store_url().await).await;
}
