//! chat-store-postgres: an adapter of chat-core; its issue fills it in.
