//! The whole chat-core conformance suite against Cassandra. The tests of
//! this binary share one keyspace (see `support`), as a persistent database
//! is shared: the suite's random ids keep them apart.

mod support;

use support::store;

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
