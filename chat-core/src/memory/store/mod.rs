//! [`MemoryStore`]: messages, conversations and accounts in process memory.

mod accounts;
mod conversations;
mod messages;

use parking_lot::RwLock;

/// Messages, conversations and accounts held in memory: implements
/// [`MessageStore`](crate::store::MessageStore),
/// [`ConversationStore`](crate::store::ConversationStore) and
/// [`AccountStore`](crate::store::AccountStore).
///
/// Each of the three has its own lock, so a sign-up never waits for a send.
/// Every operation takes its lock once and finishes under it, which makes
/// each one atomic, including the dedup check of `append` and the username
/// check of `create_account` when callers race.
///
/// Nothing survives a restart. Clone it behind an `Arc` to share it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    messages: RwLock<messages::MessageState>,
    conversations: RwLock<conversations::ConversationState>,
    accounts: RwLock<accounts::AccountState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}
