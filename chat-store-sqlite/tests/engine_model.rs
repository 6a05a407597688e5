//! chat-core's engine model over SQLite files, both retention modes: the
//! engine driven by random operations through real sessions must match the
//! model with this store underneath.
//!
//! Each case gets a fresh temporary file (`Durability::Normal`: the model
//! checks behaviour, not fsync, and a case is dozens of commits).

use std::sync::Arc;

use chat_core::Retention;
use chat_core::testkit::engine_model::{ops, run};
use chat_store_sqlite::SqliteStore;
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn run_on_file(retention: Retention, ops: &[chat_core::testkit::engine_model::Op]) {
    let store = Arc::new(
        SqliteStore::temporary()
            .await
            .expect("a temporary store opens"),
    );
    run(store, retention, ops).await;
}

proptest! {
    // Fewer cases than over the in-memory store: every step is several
    // transactions on a file.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn engine_matches_model_forever(ops in ops()) {
        runtime().block_on(run_on_file(Retention::Forever, &ops));
    }

    #[test]
    fn engine_matches_model_until_delivered(ops in ops()) {
        runtime().block_on(run_on_file(Retention::UntilDelivered, &ops));
    }
}
