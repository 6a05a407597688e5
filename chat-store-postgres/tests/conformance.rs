//! The whole chat-core conformance suite against PostgreSQL, each test in a
//! store of its own (a fresh schema), so the tests run in parallel. The
//! MessageStore part runs twice: with the default set-based batch writes,
//! and with every append written by `append_entries`, one by one.
//!
//! Without `CHAT_TEST_POSTGRES_URL` (and without
//! `CHAT_TEST_REQUIRE_SERVICES=1`, which makes that a failure) the binary
//! prints one line and exits successfully: the suite's macros have no way
//! to skip one test, and every test here needs the server.

use std::sync::Arc;

use chat_store_postgres::{PostgresConfig, PostgresStore, testing};

async fn store() -> Arc<PostgresStore> {
    store_with(PostgresConfig::default()).await
}

async fn store_with(config: PostgresConfig) -> Arc<PostgresStore> {
    match testing::fresh_store_with(config).await {
        Some(store) => store,
        // fresh_store_with printed why; nothing in this binary can run.
        None => std::process::exit(0),
    }
}

/// Every append through `append_entries`, one by one: the path that
/// otherwise only takes batches the set-based statement refused.
async fn one_by_one_store() -> Arc<PostgresStore> {
    store_with(PostgresConfig {
        set_based_appends: false,
        ..PostgresConfig::default()
    })
    .await
}

mod messages {
    use super::*;
    chat_core::message_store_conformance!(store());
}

mod messages_one_by_one {
    use super::*;
    chat_core::message_store_conformance!(one_by_one_store());
}

mod conversations {
    use super::*;
    chat_core::conversation_store_conformance!(store());
}

mod accounts {
    use super::*;
    chat_core::account_store_conformance!(store());
}
