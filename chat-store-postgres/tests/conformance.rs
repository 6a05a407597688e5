//! The whole chat-core conformance suite against PostgreSQL, each test in a
//! store of its own (a fresh schema), so the tests run in parallel.
//!
//! Without `CHAT_TEST_POSTGRES_URL` (and without
//! `CHAT_TEST_REQUIRE_SERVICES=1`, which makes that a failure) the binary
//! prints one line and exits successfully: the suite's macros have no way
//! to skip one test, and every test here needs the server.

use std::sync::Arc;

use chat_store_postgres::{PostgresStore, testing};

async fn store() -> Arc<PostgresStore> {
    match testing::fresh_store().await {
        Some(store) => store,
        // fresh_store printed why; nothing in this binary can run.
        None => std::process::exit(0),
    }
}

mod messages {
    use super::*;
    chat_core::message_store_conformance!(store());
}

mod conversations {
    use super::*;
    chat_core::conversation_store_conformance!(store());
}

mod accounts {
    use super::*;
    chat_core::account_store_conformance!(store());
}
