//! The MessageStore conformance suite run against a ShardedStore of three
//! in-memory shards, in both modes: sharding must keep every promise one
//! store keeps.
//!
//! The suite's conversations are groups, so under `ShardBy::User` this
//! checks group routing and the pending merge; the two-shard path of direct
//! conversations is held to one store's answers by `tests/sharded_model.rs`.

use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::store::{MessageStore, ShardBy, ShardedStore};

fn sharded(by: ShardBy) -> Arc<ShardedStore> {
    let shards: Vec<Arc<dyn MessageStore>> = (0..3)
        .map(|_| Arc::new(MemoryStore::new()) as Arc<dyn MessageStore>)
        .collect();
    Arc::new(ShardedStore::new(shards, by).expect("three shards"))
}

mod by_user {
    use super::*;
    chat_core::message_store_conformance!(async { sharded(ShardBy::User) });
}

mod by_conversation {
    use super::*;
    chat_core::message_store_conformance!(async { sharded(ShardBy::Conversation) });
}
