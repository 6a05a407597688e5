//! The storage traits that adapters implement, and [`ShardedStore`].
//!
//! Three traits, each object-safe and used as `Arc<dyn Trait>`:
//! - [`MessageStore`]: messages, history pages, per-user pending deliveries,
//!   ack and read cursors, and deletion of what every recipient acked.
//! - [`ConversationStore`]: conversations and their members.
//! - [`AccountStore`]: usernames, password hashes and profiles.

pub mod faulty;
pub mod sharded;

pub use faulty::{FaultSwitch, FaultyStore};
pub use sharded::{ShardBy, ShardedStore};

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Account, Conversation, ConversationId, Message, MessageId, NewMessage, UserId};

/// What [`MessageStore::append`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The stored message: the new one, or the first one stored under the
    /// same sender and `client_msg_id`.
    pub message: Message,
    /// True when nothing new was stored because the key was seen before.
    pub duplicate: bool,
}

/// A message removed from a user's pending deliveries by an ack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    /// The message.
    pub message_id: MessageId,
    /// Who sent it (receives the `delivered` receipt).
    pub sender_id: UserId,
}

/// A user's delivered and read cursors in one conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursors {
    /// Every message up to this one reached the user.
    pub delivered: Option<MessageId>,
    /// Every message up to this one was read.
    pub read: Option<MessageId>,
}

/// Messages, deliveries and cursors.
///
/// Promises every implementation keeps (the [`crate::testkit`] suite checks them):
/// - `append` is atomic: the message, its dedup key and one pending delivery
///   per recipient are all stored, or none is.
/// - a second `append` with the same sender and `client_msg_id` stores
///   nothing and returns the first message with `duplicate: true`, also when
///   both race. The key lives as long as its message (`remove` and
///   `purge_delivered` drop it); whether a key used in one conversation also
///   matches in another is left to the store (clients use unique keys, and a
///   store sharded by conversation cannot tell).
/// - `history` pages newest first by message id; `pending` lists oldest first.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `msg` and one pending delivery for each of `recipients`
    /// (the sender is never among them).
    async fn append(&self, msg: NewMessage, recipients: &[UserId]) -> Result<Appended>;

    /// Removes a message that was just appended (used by [`ShardedStore`] to
    /// undo the first half of a two-shard write). Removes its pending
    /// deliveries and dedup key too. Removing a missing message is not an error.
    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()>;

    /// Up to `limit` messages of `conversation` older than `before` (all when
    /// `None`), newest first.
    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>>;

    /// Up to `limit` messages pending for `user` with an id greater than
    /// `after`, oldest first, across all its conversations.
    async fn pending(
        &self,
        user: &UserId,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>>;

    /// `user` received every message of `conversation` up to and including
    /// `up_to`: removes those pending deliveries, advances the delivered
    /// cursor (never backwards) and returns what was removed.
    async fn ack(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<Vec<Acked>>;

    /// `user` read every message of `conversation` up to and including
    /// `up_to`: advances the read cursor (never backwards). Returns whether it moved.
    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<bool>;

    /// `user`'s cursors in `conversation`.
    async fn cursors(&self, user: &UserId, conversation: &ConversationId) -> Result<Cursors>;

    /// Drops every pending delivery of `user` in `conversation` (the user
    /// left) and returns the ids dropped.
    async fn clear_pending(
        &self,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<Vec<MessageId>>;

    /// Until-delivered retention: deletes those of `ids` (all in
    /// `conversation`) that no user has pending any more. Returns the ids deleted.
    async fn purge_delivered(
        &self,
        conversation: &ConversationId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>>;

    /// The newest stored message of `conversation`.
    async fn last_message_id(&self, conversation: &ConversationId) -> Result<Option<MessageId>>;

    /// How many stored messages of `conversation` from others are newer than
    /// `user`'s read cursor.
    async fn unread(&self, user: &UserId, conversation: &ConversationId) -> Result<u64>;

    /// One cheap real round trip to the backend (a read of nothing in
    /// particular), for readiness checks: `Ok` when the store answers now,
    /// [`crate::Error::Unavailable`] otherwise. A store spread over several
    /// backends asks every one.
    async fn ping(&self) -> Result<()>;
}

/// Conversations and membership, both ways.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// Creates a group with `members` (the creator included by the caller).
    /// [`crate::Error::AlreadyExists`] when the id is taken.
    async fn create_group(&self, conversation: Conversation, members: &[UserId]) -> Result<()>;

    /// Creates the direct conversation of its two users if missing; returns it.
    async fn ensure_direct(&self, conversation: Conversation) -> Result<Conversation>;

    /// A conversation by id.
    async fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>>;

    /// The members of a conversation (empty when it does not exist).
    async fn members(&self, id: &ConversationId) -> Result<Vec<UserId>>;

    /// Whether `user` is a member of `id`.
    async fn is_member(&self, id: &ConversationId, user: &UserId) -> Result<bool>;

    /// Adds `user`; returns false when it was a member already.
    async fn add_member(&self, id: &ConversationId, user: &UserId) -> Result<bool>;

    /// Removes `user`; returns false when it was not a member.
    async fn remove_member(&self, id: &ConversationId, user: &UserId) -> Result<bool>;

    /// The conversations `user` is a member of.
    async fn conversations_of(&self, user: &UserId) -> Result<Vec<ConversationId>>;

    /// One cheap real round trip to the backend, as [`MessageStore::ping`].
    async fn ping(&self) -> Result<()>;
}

/// Accounts: unique usernames, password hashes, profiles.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Stores a new account; [`crate::Error::AlreadyExists`] when the
    /// username (or id) is taken, also when two sign-ups race.
    async fn create_account(&self, account: Account) -> Result<()>;

    /// An account by username.
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>>;

    /// An account by id.
    async fn account(&self, id: &UserId) -> Result<Option<Account>>;

    /// Changes the display name; [`crate::Error::NotFound`] when there is no such account.
    async fn set_display_name(&self, id: &UserId, display_name: &str) -> Result<Account>;

    /// One cheap real round trip to the backend, as [`MessageStore::ping`].
    async fn ping(&self) -> Result<()>;
}
