//! The conformance suite run against the in-memory adapters: the reference
//! every other adapter is held to.

use std::sync::Arc;

use chat_core::memory::{
    MemoryAuthenticator, MemoryBusHub, MemoryDiscovery, MemoryNodeIds, MemoryPresence, MemoryStore,
};
use chat_core::testkit::bus::BusNode;

mod messages {
    use super::*;
    chat_core::message_store_conformance!(async { Arc::new(MemoryStore::new()) });
}

mod conversations {
    use super::*;
    chat_core::conversation_store_conformance!(async { Arc::new(MemoryStore::new()) });
}

mod accounts {
    use super::*;
    chat_core::account_store_conformance!(async { Arc::new(MemoryStore::new()) });
}

/// One store shared by every test of the three groups at once, as a
/// persistent database is: the suite's random names must keep them apart.
mod shared_store {
    use super::*;
    use std::sync::LazyLock;

    static STORE: LazyLock<Arc<MemoryStore>> = LazyLock::new(|| Arc::new(MemoryStore::new()));

    chat_core::message_store_conformance!(async { STORE.clone() });
    chat_core::conversation_store_conformance!(async { STORE.clone() });
    chat_core::account_store_conformance!(async { STORE.clone() });
}

mod presence {
    use super::*;
    chat_core::presence_conformance!(async { Arc::new(MemoryPresence::new()) });
}

mod bus {
    use super::*;
    chat_core::bus_conformance!(async {
        let hub = MemoryBusHub::new();
        (
            BusNode::new("a", hub.node("a")),
            BusNode::new("b", hub.node("b")),
        )
    });
}

mod discovery {
    use super::*;
    chat_core::discovery_conformance!(async { Arc::new(MemoryDiscovery::new()) });
}

mod node_ids {
    use super::*;
    chat_core::node_ids_conformance!(async { Arc::new(MemoryNodeIds::new()) });
}

mod auth {
    use super::*;
    chat_core::authenticator_conformance!(async { Arc::new(MemoryAuthenticator::new()) });
}
