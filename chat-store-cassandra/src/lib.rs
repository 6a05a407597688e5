//! chat-store-cassandra: an adapter of chat-core; its issue fills it in.
