//! chat-transport-ws: an adapter of chat-core; its issue fills it in.
