//! chat-core's engine model property test over the Cassandra store, in both
//! retention modes: the engine, driven by random sends, acks, joins, leaves,
//! connects and syncs, must match the model at every step.
//!
//! Fewer cases than over the in-memory store (each step is a few network
//! round trips); one runtime and one store serve every case.

mod support;

use std::sync::{Arc, LazyLock};

use chat_core::Retention;
use chat_core::testkit::engine_model::{ops, run};
use chat_store_cassandra::CassandraStore;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use tokio::runtime::Runtime;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
});

static STORE: LazyLock<Arc<CassandraStore>> = LazyLock::new(|| RUNTIME.block_on(support::store()));

/// Runs the model's random operations against the engine over the store,
/// 12 cases, shrinking a failure to its smallest case.
fn check(retention: Retention) {
    // The runtime above outlives every test: hold the keyspace's lease
    // for the length of this test instead.
    let _lease = support::hold();
    let mut runner = TestRunner::new(ProptestConfig::with_cases(12));
    let result = runner.run(&ops(), |ops| {
        RUNTIME.block_on(run(STORE.clone(), retention, &ops));
        Ok(())
    });
    if let Err(failure) = result {
        panic!("the engine over Cassandra differs from the model: {failure}");
    }
}

#[test]
fn engine_matches_model_forever() {
    check(Retention::Forever);
}

#[test]
fn engine_matches_model_until_delivered() {
    check(Retention::UntilDelivered);
}
