//! The whole chat-core conformance suite against Cassandra. The tests of
//! this binary share one keyspace (see `support`), as a persistent database
//! is shared: the suite's random ids keep them apart.
//!
//! The message store suite runs twice: with the default bucket size, and
//! with buckets of two entries, so that every promise is also checked
//! across bucket boundaries (history and range walking buckets, purges of
//! whole buckets, targets and seqs in older buckets).

mod support;

use chat_store_cassandra::CassandraConfig;
use support::{store, store_with};

fn two_entry_buckets(config: &mut CassandraConfig) {
    config.bucket_max_entries = 2;
}

mod messages {
    use super::*;
    chat_core::message_store_conformance!(store());
}

mod messages_in_two_entry_buckets {
    use super::*;
    chat_core::message_store_conformance!(store_with(two_entry_buckets));
}

mod conversations {
    use super::*;
    chat_core::conversation_store_conformance!(store());
}

mod accounts {
    use super::*;
    chat_core::account_store_conformance!(store());
}
