//! [`ShardedStore`]: one [`MessageStore`] spread over several.
//!
//! Each id is placed by a stable hash (FNV-1a with murmur3's finalizer,
//! written out in `sharded/route.rs`) modulo the number of shards, so every
//! process computes the same shard for the same id, before and after a
//! restart. Changing the number of shards moves data; this type does not
//! reshard.
//!
//! # Two ways to shard
//!
//! [`ShardBy::Conversation`] keeps each conversation whole on the shard of
//! its id: one write per message, one place for its history, cursors and
//! pending deliveries. It suits group-heavy chat.
//!
//! [`ShardBy::User`] places a direct conversation on the shards of its two
//! users, the way the design notes put it for one-to-one-heavy chat: each
//! of the two shards holds a full copy (message, pending delivery, cursors),
//! so either user's shard answers for the whole conversation. When both
//! users hash to the same shard, everything is written once. Groups under
//! `ShardBy::User` are placed by conversation, like `ShardBy::Conversation`:
//! copying a group message to every member's shard would cost a write per
//! member shard (up to N) and make the all-or-nothing undo below span that
//! many shards, for no gain, since a group's history is read as one thing.
//!
//! The two copies of a direct conversation are mirrors, pending deliveries
//! included, rather than "the recipient's shard holds the delivery": because
//! [`MessageStore::purge_delivered`] deletes what no user has pending *on
//! that shard*, a shard without the delivery would delete the message
//! before the recipient acked it.
//!
//! # Routing table
//!
//! "conv" is the shard of the conversation id; for a direct conversation
//! under `ShardBy::User`, "A" and "B" are the shards of the users that
//! [`ConversationId::direct`] names first and second (when A = B, every row
//! reads "A, once"). "user" is the shard of the `user` argument when it is A
//! or B's user, else A.
//!
//! | method            | `Conversation`; `User` groups | `User`, direct conversation, A ≠ B |
//! |-------------------|-------------------------------|------------------------------------|
//! | `append`          | conv                          | sender's shard, then the other; undo on failure |
//! | `remove`          | conv                          | A and B                            |
//! | `history`         | conv                          | A; B if A fails                    |
//! | `last_message_id` | conv                          | A; B if A fails                    |
//! | `pending`         | every shard, merged by id     | every shard, merged by id, one per id |
//! | `ack`             | conv                          | A and B; union of what was removed |
//! | `mark_read`       | conv                          | A and B; moved if it moved on either |
//! | `cursors`         | conv                          | user; the other if it fails        |
//! | `unread`          | conv                          | user; the other if it fails        |
//! | `clear_pending`   | conv                          | A and B; union of the ids          |
//! | `purge_delivered` | conv                          | A and B; union of the ids          |
//!
//! `pending` reads every shard in both modes: the trait asks for a user's
//! deliveries across all its conversations, and this layer does not know
//! which those are. Under `ShardBy::Conversation` they are spread by
//! conversation; under `ShardBy::User` a user's direct deliveries are on its
//! own shard but its group deliveries are on the groups' shards. The shards
//! are asked at once, each for `limit` after the same cursor, and their
//! pages merged (see `sharded/merge.rs` for why that pages correctly). If any
//! shard fails, `pending` fails: answering with the others could move the
//! caller's cursor past deliveries still waiting on the failed shard. So a
//! shard that is down stops sync for every user, while sends and reads of
//! conversations on other shards go on.
//!
//! Writes to both A and B answer an error if either fails, having applied
//! to the other. That is safe to retry because each of them is idempotent:
//! cursors never move backwards, and removing what is gone removes nothing.
//! Acks are cumulative, so the next ack also finishes an earlier one. Until
//! then the shard that missed an ack still lists the delivery, and the user
//! may get that message again (delivery is at least once; clients drop
//! repeats by id). Reads that fall back to the other shard may see such a
//! lag.
//!
//! # A send to two shards
//!
//! Under `ShardBy::User` a direct message is appended to the sender's shard,
//! then the same message (same id) to the other shard. If the second write
//! fails, the message is removed from both with [`MessageStore::remove`]
//! (which takes its dedup key too) and the send answers
//! [`Error::Unavailable`] with the failure as source: "not stored, retry
//! with the same client_msg_id". The undo removes only the id this call
//! assigned, which can name no other message; removing it from the second
//! shard as well covers a write that landed before its reply was lost.
//!
//! If the undo fails too, it is logged with `tracing::error` and the answer
//! is still `Unavailable`, but the sender's shard keeps the message, with a
//! pending delivery for the recipient. What that residue does:
//! - The sender was never told `sent`, and the client retries with the same
//!   `client_msg_id`. The retry dedups on the sender's shard to the residue
//!   and writes that message (its original id) to the other shard: the send
//!   completes once, with the id of the first attempt, and is answered as
//!   new so the caller delivers it.
//! - Until a retry, the recipient can receive it through `pending`, which
//!   reads the sender's shard too. That is what a single store does when
//!   its reply is lost after it committed, and what happens when the first
//!   write here loses its reply (which is why that case is not undone).
//! - A send without a `client_msg_id` cannot be matched by its retry: the
//!   residue then stays as a message the sender believes failed, and its
//!   resend is a second message.
//! - Cancelling the send between the two writes leaves the same residue as
//!   a failed undo.
//!
//! If the second write landed but its reply was lost and its undo failed,
//! the residue is on the other shard. The retry then writes a new id on the
//! sender's shard and meets the residue as a duplicate with another id on
//! the other shard; neither was ever acknowledged, so the sender's shard
//! drops its copy and takes the other's, and the send answers with it.
//!
//! Within one process, two-shard sends that share a dedup key run one after
//! the other (`KeyLocks` in `sharded/mirror.rs`), so a retry cannot finish
//! the send whose undo is about to remove it. A retry sent to another node
//! while the first attempt is still in flight can still meet that race.
//!
//! Dedup keys are per shard: under `ShardBy::Conversation` (and for groups)
//! a sender reusing one `client_msg_id` in two conversations on different
//! shards gets two messages. Clients make a fresh key per message, so only
//! a retry reuses one, and a retry goes to the same conversation.

mod merge;
mod mirror;
mod route;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::try_join_all;

use crate::error::{Error, Result};
use crate::model::{ConversationId, Message, MessageId, NewMessage, UserId};
use crate::store::{Acked, Appended, Cursors, MessageStore};

use self::mirror::{KeyLocks, Shard};
use self::route::{Placement, placement, shard_index};

/// How [`ShardedStore`] places conversations on shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShardBy {
    /// Each conversation on the shard of its id.
    Conversation,
    /// A direct conversation on the shards of both its users (a full copy
    /// on each); a group on the shard of its id.
    User,
}

/// A [`MessageStore`] spread over several, by user or by conversation (see
/// the [module docs](self) for the routing table and failure handling).
pub struct ShardedStore {
    shards: Vec<Arc<dyn MessageStore>>,
    by: ShardBy,
    send_locks: KeyLocks,
}

impl fmt::Debug for ShardedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedStore")
            .field("shards", &self.shards.len())
            .field("by", &self.by)
            .finish()
    }
}

/// Which shards one call goes to.
enum Target {
    One(usize),
    /// Both copies of a mirrored direct conversation; reads go to `primary`
    /// and fall back to `secondary`.
    Both {
        primary: usize,
        secondary: usize,
    },
}

impl ShardedStore {
    /// Spreads messages over `shards` by `by`. The order of `shards` is part
    /// of the data layout: always open them in the same order.
    /// [`Error::InvalidInput`] when `shards` is empty.
    pub fn new(shards: Vec<Arc<dyn MessageStore>>, by: ShardBy) -> Result<Self> {
        if shards.is_empty() {
            return Err(Error::invalid("a sharded store needs at least one shard"));
        }
        Ok(Self {
            shards,
            by,
            send_locks: KeyLocks::new(),
        })
    }

    /// How conversations are placed.
    pub fn shard_by(&self) -> ShardBy {
        self.by
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The index of the shard that `user` hashes to (under
    /// [`ShardBy::User`], the shard holding its direct conversations).
    pub fn shard_of_user(&self, user: &UserId) -> usize {
        shard_index(user.as_str(), self.shards.len())
    }

    /// The index of the shard that `conversation`'s id hashes to (every
    /// conversation under [`ShardBy::Conversation`], groups under
    /// [`ShardBy::User`]).
    pub fn shard_of_conversation(&self, conversation: &ConversationId) -> usize {
        shard_index(conversation.as_str(), self.shards.len())
    }

    fn placement(&self, conversation: &ConversationId) -> Placement {
        placement(self.by, self.shards.len(), conversation)
    }

    /// Where a call without a user goes; reads prefer the first user's shard.
    fn target(&self, conversation: &ConversationId) -> Target {
        match self.placement(conversation) {
            Placement::One(shard) => Target::One(shard),
            Placement::Mirrored { first, second, .. } => Target::Both {
                primary: first,
                secondary: second,
            },
        }
    }

    /// Where a call about `user` goes; reads prefer `user`'s own shard.
    fn user_target(&self, user: &UserId, conversation: &ConversationId) -> Target {
        match self.placement(conversation) {
            Placement::One(shard) => Target::One(shard),
            Placement::Mirrored {
                first,
                second,
                first_user,
            } => {
                let mine = self.shard_of_user(user);
                if mine == second && *user != first_user {
                    Target::Both {
                        primary: second,
                        secondary: first,
                    }
                } else {
                    Target::Both {
                        primary: first,
                        secondary: second,
                    }
                }
            }
        }
    }

    fn shard(&self, index: usize) -> &Arc<dyn MessageStore> {
        &self.shards[index]
    }

    /// Runs the read `op` on `target`, falling back to the secondary copy
    /// when the primary fails.
    async fn read<'a, T, F, Fut>(&'a self, target: Target, what: &str, op: F) -> Result<T>
    where
        F: Fn(&'a Arc<dyn MessageStore>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match target {
            Target::One(shard) => op(self.shard(shard)).await,
            Target::Both { primary, secondary } => match op(self.shard(primary)).await {
                Ok(value) => Ok(value),
                Err(error) => {
                    tracing::warn!(
                        shard = primary,
                        fallback = secondary,
                        %error,
                        "{what} failed on one copy of a direct conversation; reading the other"
                    );
                    op(self.shard(secondary)).await
                }
            },
        }
    }

    /// Runs the write `op` on every copy in `target` at once and combines the
    /// answers with `join`; fails when any copy fails (the others keep the
    /// write: every such write is idempotent, see the module docs).
    async fn write<'a, T, F, Fut>(
        &'a self,
        target: Target,
        op: F,
        join: impl FnOnce(T, T) -> T,
    ) -> Result<T>
    where
        F: Fn(&'a Arc<dyn MessageStore>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match target {
            Target::One(shard) => op(self.shard(shard)).await,
            Target::Both { primary, secondary } => {
                let (a, b) = tokio::join!(op(self.shard(primary)), op(self.shard(secondary)));
                Ok(join(a?, b?))
            }
        }
    }
}

/// `a` and `b` as one ascending list without repeats.
fn union_ids(mut a: Vec<MessageId>, b: Vec<MessageId>) -> Vec<MessageId> {
    a.extend(b);
    a.sort_unstable();
    a.dedup();
    a
}

#[async_trait]
impl MessageStore for ShardedStore {
    async fn append(&self, msg: NewMessage, recipients: &[UserId]) -> Result<Appended> {
        match self.placement(&msg.message.conversation_id) {
            Placement::One(shard) => self.shard(shard).append(msg, recipients).await,
            Placement::Mirrored {
                first,
                second,
                first_user,
            } => {
                let (senders, other) = if msg.message.sender_id == first_user {
                    (first, second)
                } else {
                    (second, first)
                };
                let senders = Shard {
                    index: senders,
                    store: self.shard(senders),
                };
                let other = Shard {
                    index: other,
                    store: self.shard(other),
                };
                mirror::append_mirrored(&self.send_locks, senders, other, msg, recipients).await
            }
        }
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        let target = self.target(conversation);
        self.write(target, |s| s.remove(conversation, id), |(), ()| ())
            .await
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let target = self.target(conversation);
        self.read(target, "history", |s| {
            s.history(conversation, before, limit)
        })
        .await
    }

    async fn pending(
        &self,
        user: &UserId,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        if let [only] = self.shards.as_slice() {
            return only.pending(user, after, limit).await;
        }
        let pages = try_join_all(self.shards.iter().map(|s| s.pending(user, after, limit))).await?;
        Ok(merge::merge_pages(pages, limit))
    }

    async fn ack(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<Vec<Acked>> {
        let target = self.user_target(user, conversation);
        self.write(
            target,
            |s| s.ack(user, conversation, up_to),
            |mut a, b| {
                // Both copies hold the same deliveries; keep one of each.
                a.extend(b);
                a.sort_unstable_by_key(|acked| acked.message_id);
                a.dedup_by_key(|acked| acked.message_id);
                a
            },
        )
        .await
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<bool> {
        let target = self.user_target(user, conversation);
        self.write(
            target,
            |s| s.mark_read(user, conversation, up_to),
            |a, b| a || b,
        )
        .await
    }

    async fn cursors(&self, user: &UserId, conversation: &ConversationId) -> Result<Cursors> {
        let target = self.user_target(user, conversation);
        self.read(target, "cursors", |s| s.cursors(user, conversation))
            .await
    }

    async fn clear_pending(
        &self,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<Vec<MessageId>> {
        let target = self.user_target(user, conversation);
        self.write(target, |s| s.clear_pending(user, conversation), union_ids)
            .await
    }

    async fn purge_delivered(
        &self,
        conversation: &ConversationId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>> {
        let target = self.target(conversation);
        self.write(target, |s| s.purge_delivered(conversation, ids), union_ids)
            .await
    }

    async fn last_message_id(&self, conversation: &ConversationId) -> Result<Option<MessageId>> {
        let target = self.target(conversation);
        self.read(target, "last_message_id", |s| {
            s.last_message_id(conversation)
        })
        .await
    }

    async fn unread(&self, user: &UserId, conversation: &ConversationId) -> Result<u64> {
        let target = self.user_target(user, conversation);
        self.read(target, "unread", |s| s.unread(user, conversation))
            .await
    }

    /// Every shard at once; the first that fails is named.
    async fn ping(&self) -> Result<()> {
        let answers = futures::future::join_all(self.shards.iter().map(|s| s.ping())).await;
        for (index, answer) in answers.into_iter().enumerate() {
            if let Err(error) = answer {
                let reason = match &error {
                    Error::Unavailable { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                return Err(Error::unavailable(
                    format!("shard {index}: {reason}"),
                    error,
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_at_least_one_shard() {
        let err = ShardedStore::new(Vec::new(), ShardBy::User).unwrap_err();
        assert_eq!(err.code(), "invalid_input");
    }

    #[tokio::test]
    async fn ping_asks_every_shard_and_names_the_one_down() {
        use crate::memory::MemoryStore;
        use crate::store::{FaultSwitch, FaultyStore};
        let second = FaultSwitch::new();
        let shards: Vec<Arc<dyn MessageStore>> = vec![
            Arc::new(MemoryStore::default()),
            Arc::new(FaultyStore::new(
                Arc::new(MemoryStore::default()),
                second.clone(),
            )),
        ];
        let store = ShardedStore::new(shards, ShardBy::Conversation).unwrap();
        store.ping().await.expect("both shards answer");
        second.fail_all(true);
        let err = store.ping().await.unwrap_err();
        assert_eq!(err.code(), "unavailable");
        assert_eq!(
            err.to_string(),
            "unavailable: shard 1: injected fault in ping"
        );
        second.fail_all(false);
        store.ping().await.expect("the shard is back");
    }
}
