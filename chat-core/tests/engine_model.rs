//! The engine over the in-memory store against the model, both retention modes.

use std::sync::Arc;

use chat_core::Retention;
use chat_core::memory::MemoryStore;
use chat_core::testkit::engine_model::{ops, run};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn engine_matches_model_forever(ops in ops()) {
        runtime().block_on(run(Arc::new(MemoryStore::new()), Retention::Forever, &ops));
    }

    #[test]
    fn engine_matches_model_until_delivered(ops in ops()) {
        runtime().block_on(run(Arc::new(MemoryStore::new()), Retention::UntilDelivered, &ops));
    }
}
