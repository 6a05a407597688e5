//! chat-cluster-redis: an adapter of chat-core; its issue fills it in.
