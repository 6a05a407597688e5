//! chat-core's engine model property test over PostgreSQL, both retention
//! modes: the engine driven by random operations through real sessions
//! must match the model with this store underneath.
//!
//! One store (one fresh schema) serves every case: the model's users and
//! groups have random names, and the store's batcher lives on the one
//! runtime that runs all cases.
//!
//! Compiled out while chat-core's engine is being rewritten (on this branch
//! chat-core has its `engine` module, and the testkit its engine model,
//! under `#[cfg(any())]`): enable it together with them.

#[cfg(any())]
mod engine_model {
    use std::sync::{Arc, LazyLock};

    use chat_core::Retention;
    use chat_core::testkit::engine_model::{ops, run};
    use chat_store_postgres::{PostgresStore, testing};
    use proptest::prelude::*;

    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    });

    static STORE: LazyLock<Option<Arc<PostgresStore>>> =
        LazyLock::new(|| RUNTIME.block_on(testing::fresh_store()));

    proptest! {
        // Fewer cases than over the in-memory store: each step is several
        // round trips to the server.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn engine_matches_model_forever(ops in ops()) {
            let Some(store) = STORE.clone() else { return Ok(()) };
            RUNTIME.block_on(run(store, Retention::Forever, &ops));
        }

        #[test]
        fn engine_matches_model_until_delivered(ops in ops()) {
            let Some(store) = STORE.clone() else { return Ok(()) };
            RUNTIME.block_on(run(store, Retention::UntilDelivered, &ops));
        }
    }
}
