//! Every line of the contract against PostgreSQL, in both retention modes,
//! and data that survive a server restart.
//!
//! The scenarios sign up fixed usernames ("alice", "bob"), so each test runs
//! in a fresh schema, which the server creates (`--store
//! postgres://…?schema=NAME`). Schemas are left behind, as in
//! chat-store-postgres's own tests: the server from `scripts/services` is a
//! throwaway one.
//!
//! - `CHAT_TEST_POSTGRES_URL`: the server (`scripts/services up postgres`
//!   prints it; `scripts/test` exports it).
//! - `CHAT_TEST_REQUIRE_SERVICES=1` (set by `scripts/test` under CI): a
//!   missing URL or an unreachable server fails the tests, never skips
//!   them. Without it, the binary prints one line saying what it skips and
//!   exits successfully.

mod common;

use chat_store_postgres::testing;
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

/// The test server's URL, checked usable once per binary. Without one (and
/// not required), the whole binary ends here, successfully, after
/// chat_store_postgres::testing printed the skip line.
async fn server_url() -> &'static str {
    static URL: OnceCell<String> = OnceCell::const_new();
    URL.get_or_init(|| async {
        // A store in a schema of its own proves the server answers and lets
        // us create schemas; it panics instead under REQUIRE_SERVICES.
        if testing::fresh_store().await.is_none() {
            std::process::exit(0);
        }
        testing::test_url().expect("checked above")
    })
    .await
}

/// A store URL on a schema of its own.
async fn fresh_store_url() -> String {
    let url = server_url().await;
    let join = if url.contains('?') { '&' } else { '?' };
    format!("{url}{join}schema={}", testing::fresh_schema())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_groups_history_and_pending_survive_a_restart() {
    common::restart::data_survives_a_restart(&fresh_store_url().await).await;
}
