//! Every line of the contract against the in-memory store, in both retention modes.

mod common;

chat_server_e2e!(forever, "memory", chat_core::Retention::Forever);
chat_server_e2e!(
    until_delivered,
    "memory",
    chat_core::Retention::UntilDelivered
);
