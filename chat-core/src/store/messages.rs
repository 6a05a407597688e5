//! [`MessageStore`]: each conversation's log with its head, and the cursors
//! that say what each device and user has (docs/storage.md).

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{ConversationId, DeviceId, Head, Message, MessageId, NewMessage, UserId};

/// What [`MessageStore::append`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The stored entry: the new one, or the first one stored under the same
    /// sender and `client_msg_id`.
    pub message: Message,
    /// The conversation's `last_id` before this entry: the link of the
    /// conversation's chain that nodes deliver by. For a duplicate, `None`
    /// (the first append's link is not kept).
    pub prev: Option<MessageId>,
    /// True when nothing new was stored because the key was seen before.
    pub duplicate: bool,
}

/// A user's (and optionally one device's) cursors in one conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursors {
    /// Every entry up to this one reached the device asked about.
    pub device_delivered: Option<MessageId>,
    /// Every entry up to this one reached some device of the user.
    pub delivered: Option<MessageId>,
    /// Every entry up to this one was read by the user.
    pub read: Option<MessageId>,
    /// The `seq` of the newest text entry at or below `read` (0: none), so
    /// that `unread = head.seq - read_seq`.
    pub read_seq: u64,
}

/// What an [`MessageStore::ack`] moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckMoved {
    /// The device's cursor before the ack.
    pub device_before: Option<MessageId>,
    /// The user's delivered cursor before the ack (`delivered` receipts are
    /// due for the other senders' entries in `(user_before, user_after]`).
    pub user_before: Option<MessageId>,
    /// The user's delivered cursor after the ack.
    pub user_after: Option<MessageId>,
}

/// A cursor of one device in one conversation, as the low-water mark of
/// until_delivered retention reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCursor {
    /// Whose device.
    pub user_id: UserId,
    /// The device.
    pub device_id: DeviceId,
    /// What it has.
    pub delivered: MessageId,
}

/// A send to two stores that began: `message_id` of `conversation_id` is
/// (or was about to be) appended to the first copy of a mirrored
/// conversation and still has to reach the second. Written before the first
/// write and cleared after the second, so that a process that died between
/// them leaves a record of what to repair ([`crate::store::ShardedStore`]
/// keeps them, docs/storage.md, "Sharding").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Intent {
    /// The entry's id (a Snowflake: it says when the send began).
    pub message_id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
}

/// Each conversation's log, its head, and the delivery and read cursors.
///
/// Promises every implementation keeps (the [`crate::testkit`] suite checks
/// them; docs/storage.md explains the model):
/// - `append` is atomic and conditional on the head (see its doc).
/// - Entries, once appended, are readable by `range`, `history` and `entry`
///   until purged or removed; the head moves only together with its entry,
///   so a reader that saw `prev == X` in a later entry finds X (unless it
///   was purged or removed since).
/// - Cursors never move backwards.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Appends `entry` to its conversation's log, if and only if its id is
    /// greater than the head's `last_id` and `expected_version` is the
    /// head's `version`; otherwise stores nothing and fails with
    /// [`crate::Error::Conflict`] carrying the head as it is.
    ///
    /// In the same atomic step it:
    /// - moves the head: `last_id` to the entry, `seq` + 1 for a text entry
    ///   (which the entry keeps as its own seq), `version` + 1 for a group
    ///   event;
    /// - stores the dedup key `(sender, client_msg_id)`: a second append
    ///   with the same key (also a racing one) stores nothing and answers
    ///   the first entry with `duplicate: true`, before any head check;
    /// - for an edit, delete or reaction, applies it to its target
    ///   ([`Message::apply`]); [`crate::Error::NotFound`] when the target is
    ///   not in the conversation (nothing stored);
    /// - moves the sender's read cursor (and `read_seq`) to the entry (one
    ///   reads a conversation one writes in), and its delivered cursor and
    ///   the cursor of `entry.device` (when given) to the entry **only if**
    ///   each already covers `prev` (or `prev` is `None`): a device that had
    ///   not received every earlier entry keeps its cursor, so that nothing
    ///   from others is skipped for it; it gets its own entry back at its
    ///   next sync and acks past it then.
    async fn append(&self, entry: NewMessage, expected_version: u64) -> Result<Appended>;

    /// Appends a copy of an entry that another store already put in order
    /// (the second copy of a mirrored conversation follows the first one's
    /// chain): exactly [`MessageStore::append`], dedup first, target,
    /// head, `seq`, `version` and the sender's cursors alike, except for
    /// its condition. The entry is stored if and only if the head's
    /// `last_id` is `after` (and the entry's id is above it); the version is
    /// not checked. Otherwise nothing is stored and
    /// [`crate::Error::Conflict`] carries the head as it is.
    ///
    /// So a copy goes in only right after its predecessor: two writers that
    /// copy one chain at once cannot store it out of order, and a copy that
    /// missed an entry learns so from the conflict.
    async fn append_after(&self, entry: NewMessage, after: Option<MessageId>) -> Result<Appended>;

    /// The head of `conversation` (all zero when it has no entry yet).
    async fn head(&self, conversation: &ConversationId) -> Result<Head>;

    /// The heads of `conversations`, in the same order.
    async fn heads(&self, conversations: &[ConversationId]) -> Result<Vec<Head>>;

    /// One entry, as it is now.
    async fn entry(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>>;

    /// Up to `limit` entries of `conversation` that appear in history (all
    /// but group events), as they are now, with ids in `(floor, before)`
    /// (either bound absent: unbounded), newest first.
    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        floor: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>>;

    /// Up to `limit` entries of `conversation` of every kind, as they are
    /// now, with ids in `(after, up_to]`, oldest first: what sync and
    /// gap-filling read.
    async fn range(
        &self,
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>>;

    /// Removes one entry that was just appended and its dedup key (the undo
    /// of a write to two shards). The head stays. Removing a missing entry
    /// is not an error.
    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()>;

    /// Until-delivered retention: deletes every entry of `conversation` with
    /// an id at or below `up_to`, and their dedup keys. Idempotent; the head
    /// stays. Returns how many were deleted.
    async fn purge(&self, conversation: &ConversationId, up_to: MessageId) -> Result<u64>;

    /// `user`'s cursors in `conversation`, with `device`'s when given.
    async fn cursors(
        &self,
        user: &UserId,
        device: Option<&DeviceId>,
        conversation: &ConversationId,
    ) -> Result<Cursors>;

    /// `user`'s cursors in each of `conversations`, in the same order
    /// (`device_delivered` left `None`): what the conversations list reads.
    async fn user_cursors(
        &self,
        user: &UserId,
        conversations: &[ConversationId],
    ) -> Result<Vec<Cursors>>;

    /// Every cursor of `device`: what its sync starts from.
    async fn device_cursors(&self, device: &DeviceId) -> Result<Vec<(ConversationId, MessageId)>>;

    /// Every device cursor in `conversation`, and every user's delivered
    /// cursor there (`DeviceCursor::device_id` is empty for those): what the
    /// low-water mark of until_delivered retention is computed from.
    async fn conversation_cursors(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<DeviceCursor>>;

    /// `device` of `user` received every entry of `conversation` up to and
    /// including `up_to`: its cursor and the user's delivered cursor move
    /// there (never backwards).
    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<AckMoved>;

    /// `user` read every entry of `conversation` up to and including
    /// `up_to`: the read cursor moves there (never backwards) with the seq
    /// of the newest text entry at or below it. Returns the read cursor
    /// before, and whether it moved.
    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<(Option<MessageId>, bool)>;

    /// `user` (re)joined `conversation` at `head`: its delivered and read
    /// cursors move to `head.last_id` and `read_seq` to `head.seq` (never
    /// backwards), so that unread and receipts start at its join.
    async fn start_member(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        head: Head,
    ) -> Result<()>;

    /// A new `device` of `user` starts at the user's delivered cursors: for
    /// each conversation where the user has one, the device's cursor is set
    /// to it (what the user still had unacked reaches the new device).
    async fn start_device(&self, user: &UserId, device: &DeviceId) -> Result<()>;

    /// Forgets every cursor of a removed `device`.
    async fn forget_device(&self, device: &DeviceId) -> Result<()>;

    /// Records `intent` (idempotent).
    async fn put_intent(&self, intent: &Intent) -> Result<()>;

    /// Up to `limit` recorded intents with ids in `(after, before)`,
    /// by ascending id (then conversation), to page through them.
    async fn intents(
        &self,
        after: Option<MessageId>,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<Intent>>;

    /// Forgets `intent`; forgetting a missing one is not an error.
    async fn clear_intent(&self, intent: &Intent) -> Result<()>;

    /// One cheap real round trip to the backend (a read of nothing in
    /// particular), for readiness checks: `Ok` when the store answers now,
    /// [`crate::Error::Unavailable`] otherwise. A store spread over several
    /// backends asks every one.
    async fn ping(&self) -> Result<()>;
}
