//! chat-core's engine model property test over the Cassandra store, in both
//! retention modes: the engine, driven by random sends, acks, joins, leaves,
//! connects and syncs, must match the model at every step.
//!
//! Fewer cases than over the in-memory store (each step is a few network
//! round trips); one runtime and one store serve every case.
//!
//! Compiled out while chat-core's engine (and with it
//! `testkit::engine_model`) is being rewritten for the new storage model:
//! remove this `cfg` when `chat_core::testkit::engine_model` is back.
#![cfg(any())]

mod support;

use std::sync::{Arc, LazyLock};

use chat_core::Retention;
use chat_core::testkit::engine_model::{ops, run};
use chat_store_cassandra::CassandraStore;
use proptest::prelude::*;
use tokio::runtime::Runtime;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
});

static STORE: LazyLock<Arc<CassandraStore>> = LazyLock::new(|| RUNTIME.block_on(support::store()));

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn engine_matches_model_forever(ops in ops()) {
        RUNTIME.block_on(run(STORE.clone(), Retention::Forever, &ops));
    }

    #[test]
    fn engine_matches_model_until_delivered(ops in ops()) {
        RUNTIME.block_on(run(STORE.clone(), Retention::UntilDelivered, &ops));
    }
}
