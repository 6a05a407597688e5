//! Version 2 of the contract, checked from outside: groups with roles,
//! invites, blocking and presence privacy, devices and message events, and
//! the limits a store or a second node could break (look-alike names,
//! history pages, readiness), spoken over HTTP and WebSocket only (no
//! engine call), on every store and across two nodes, plus the
//! authorization matrix of docs/security.md.
//!
//! The stores are one table ([`targets!`] below): each row becomes a module
//! with one test per retention mode. Each test starts one server (two nodes
//! for `cluster`) and runs every scenario of [`scenarios::ALL`] against it
//! at once, each with users of its own; a failure names the scenario and
//! the store. Scenarios about groups, invites and blocks run under
//! `forever`; those about devices, message events and retention run in both
//! modes.
//!
//! - memory, sqlite (a temporary file): always.
//! - postgres: `CHAT_TEST_POSTGRES_URL`, a fresh schema, dropped after.
//! - cassandra: `CHAT_TEST_CASSANDRA_URL`, a fresh keyspace, dropped after.
//! - cluster: two chat-server processes on `CHAT_TEST_REDIS_URL` (a fresh
//!   prefix) and a fresh PostgreSQL schema; a scenario's users alternate
//!   between the nodes, so every rule is also checked across them.
//!
//! Without a server's URL the test says what it skips and passes; under
//! `CHAT_TEST_REQUIRE_SERVICES=1` it fails instead.

// The modules of this binary share their items with `pub`.
#![allow(unreachable_pub)]

#[path = "../cluster_harness/mod.rs"]
mod cluster_harness;
#[path = "../common/mod.rs"]
mod common;

mod authz;
mod client;
mod scenarios;
mod target;

use chat_core::Retention;
use target::Store;

/// Every store, once: a module per row with a test per retention mode.
macro_rules! targets {
    ($($name:ident => $store:expr),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn forever() {
                    scenarios::run($store, Retention::Forever).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn until_delivered() {
                    scenarios::run($store, Retention::UntilDelivered).await;
                }
            }
        )*
    };
}

targets! {
    memory => Store::Memory,
    sqlite => Store::Sqlite,
    postgres => Store::Postgres,
    cassandra => Store::Cassandra,
    cluster => Store::Cluster,
}

/// The authorization matrix on the in-memory store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_on_memory() {
    authz::run(Store::Memory).await;
}

/// The authorization matrix on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_on_postgres() {
    authz::run(Store::Postgres).await;
}

/// docs/security.md prints the matrix these tests check.
#[test]
fn authorization_matrix_is_the_one_in_security_md() {
    authz::check_docs();
}
