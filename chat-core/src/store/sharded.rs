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
//! its id: its log, head and cursors in one place. It suits group-heavy chat.
//!
//! [`ShardBy::User`] places a direct conversation on the shards of its two
//! users, the way the design notes put it for one-to-one-heavy chat: each of
//! the two shards holds a full copy (log, head, cursors), so either user's
//! shard answers for the whole conversation. When both users hash to the
//! same shard, everything is written once. Groups under `ShardBy::User` are
//! placed by conversation: copying a group's log to every member's shard
//! would cost a write per member shard for no gain.
//!
//! # Routing
//!
//! "conv" is the shard of the conversation; for a direct conversation under
//! `ShardBy::User` whose users live on different shards, "mine" is the
//! shard of the user asking (or of the sender) and "other" the other one.
//!
//! | method | one shard | mirrored direct conversation |
//! |---|---|---|
//! | `append` | conv | mine, then other; mine undone when other fails |
//! | `head` | conv | both, the newer head (either alone if the other fails) |
//! | `entry`, `cursors` | conv | first user's shard, the other if it fails |
//! | `history`, `range` | conv | both, merged by id (either alone if the other fails) |
//! | `heads`, `user_cursors` | conv, grouped | the asking user's shard, grouped |
//! | `remove`, `purge`, `ack`, `mark_read`, `start_member` | conv | both |
//! | `conversation_cursors` | conv | both, the newest cursor of each device |
//! | `device_cursors`, `start_device`, `forget_device` | every shard | every shard |
//!
//! Writes to both copies answer an error if either fails, having applied to
//! the other. That is safe to retry: cursors never move backwards, purges and
//! removes are idempotent. Reads of both copies merge, so an entry that only
//! one copy holds (a half-done send, see below) is still read.
//!
//! # A send to two shards
//!
//! A mirrored append writes the sender's shard, then the same entry (same id)
//! to the other. If the second write fails, the first is removed again with
//! [`MessageStore::remove`] and the send fails: not stored, retry with the
//! same `client_msg_id`. If that undo fails too, the sender's copy keeps the
//! entry: the retry then dedups to it on the sender's shard and this layer
//! writes the same entry to the other shard, completing the send with the
//! first attempt's id. Until then the entry is read through the merged
//! reads; the sender was never told `sent`.

mod route;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::{join, try_join_all};

use crate::error::{Error, Result};
use crate::model::{ConversationId, DeviceId, Head, Message, MessageId, NewMessage, UserId};
use crate::store::{AckMoved, Appended, Cursors, DeviceCursor, MessageStore};

use self::route::{Placement, placement, shard_index};

/// How [`ShardedStore`] places conversations on shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShardBy {
    /// Every conversation on the shard of its id.
    Conversation,
    /// Direct conversations on both users' shards (mirrored); groups by id.
    User,
}

/// A [`MessageStore`] over several shards (see the module docs).
pub struct ShardedStore {
    shards: Vec<Arc<dyn MessageStore>>,
    by: ShardBy,
}

impl fmt::Debug for ShardedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedStore")
            .field("shards", &self.shards.len())
            .field("by", &self.by)
            .finish()
    }
}

/// The copies a call touches: (mine, the other copy if mirrored).
type Copies = (usize, Option<usize>);

impl ShardedStore {
    /// Spreads over `shards` (at least one) as `by` says.
    pub fn new(shards: Vec<Arc<dyn MessageStore>>, by: ShardBy) -> Result<Self> {
        if shards.is_empty() {
            return Err(Error::invalid("a sharded store needs at least one shard"));
        }
        Ok(Self { shards, by })
    }

    /// How it shards.
    pub fn shard_by(&self) -> ShardBy {
        self.by
    }

    /// How many shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard of `user` (where its copies of direct conversations live
    /// under [`ShardBy::User`]).
    pub fn shard_of_user(&self, user: &UserId) -> usize {
        shard_index(user.as_str(), self.shards.len())
    }

    /// The shard of a conversation placed by id.
    pub fn shard_of_conversation(&self, conversation: &ConversationId) -> usize {
        shard_index(conversation.as_str(), self.shards.len())
    }

    /// The copies of `conversation`, `user`'s own first when it has one.
    fn copies(&self, conversation: &ConversationId, user: Option<&UserId>) -> Copies {
        match placement(self.by, self.shards.len(), conversation) {
            Placement::One(shard) => (shard, None),
            Placement::Mirrored {
                first,
                second,
                first_user,
            } => match user {
                Some(u) if *u != first_user && self.shard_of_user(u) == second => {
                    (second, Some(first))
                }
                _ => (first, Some(second)),
            },
        }
    }

    fn shard(&self, index: usize) -> &Arc<dyn MessageStore> {
        &self.shards[index]
    }

    /// Reads one copy, the other when it fails.
    async fn read_one<'a, T, F, Fut>(
        &'a self,
        (mine, other): Copies,
        what: &str,
        op: F,
    ) -> Result<T>
    where
        F: Fn(&'a Arc<dyn MessageStore>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match op(self.shard(mine)).await {
            Ok(value) => Ok(value),
            Err(error) => match other {
                Some(other) => {
                    tracing::warn!(shard = mine, %error, "{what} failed on one copy; reading the other");
                    op(self.shard(other)).await
                }
                None => Err(error),
            },
        }
    }

    /// Reads both copies and merges them; either alone when the other fails.
    async fn read_both<'a, T, F, Fut>(
        &'a self,
        (mine, other): Copies,
        op: F,
        merge: impl FnOnce(T, T) -> T,
    ) -> Result<T>
    where
        F: Fn(&'a Arc<dyn MessageStore>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let Some(other) = other else {
            return op(self.shard(mine)).await;
        };
        match join(op(self.shard(mine)), op(self.shard(other))).await {
            (Ok(a), Ok(b)) => Ok(merge(a, b)),
            (Ok(v), Err(e)) | (Err(e), Ok(v)) => {
                tracing::warn!(error = %e, "one copy of a direct conversation failed a read");
                Ok(v)
            }
            (Err(e), Err(_)) => Err(e),
        }
    }

    /// Writes every copy; fails if any failed (after applying to the others).
    async fn write_all<'a, T, F, Fut>(&'a self, (mine, other): Copies, op: F) -> Result<T>
    where
        F: Fn(&'a Arc<dyn MessageStore>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let Some(other) = other else {
            return op(self.shard(mine)).await;
        };
        let (a, b) = join(op(self.shard(mine)), op(self.shard(other))).await;
        b?;
        a
    }

    async fn every_shard<'a, T, F, Fut>(&'a self, op: F) -> Result<Vec<T>>
    where
        F: Fn(&'a Arc<dyn MessageStore>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        try_join_all(self.shards.iter().map(op)).await
    }

    /// Runs `op` per shard on the conversations that shard answers for
    /// (`user`'s copy first), and puts the answers back in input order.
    async fn grouped<T: Default + Clone, F, Fut>(
        &self,
        conversations: &[ConversationId],
        user: Option<&UserId>,
        op: F,
    ) -> Result<Vec<T>>
    where
        F: Fn(Arc<dyn MessageStore>, Vec<ConversationId>) -> Fut,
        Fut: Future<Output = Result<Vec<T>>>,
    {
        let mut by_shard: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, c) in conversations.iter().enumerate() {
            by_shard.entry(self.copies(c, user).0).or_default().push(i);
        }
        let calls = by_shard.iter().map(|(shard, idx)| {
            let ids: Vec<ConversationId> = idx.iter().map(|&i| conversations[i].clone()).collect();
            op(self.shard(*shard).clone(), ids)
        });
        let answers = try_join_all(calls).await?;
        let mut out = vec![T::default(); conversations.len()];
        for ((_, idx), answer) in by_shard.iter().zip(answers) {
            for (&i, value) in idx.iter().zip(answer) {
                out[i] = value;
            }
        }
        Ok(out)
    }
}

/// Two pages of one conversation merged: every id once, in `order`, at most `limit`.
fn merge_pages(a: Vec<Message>, b: Vec<Message>, newest_first: bool, limit: usize) -> Vec<Message> {
    let mut by_id: BTreeMap<MessageId, Message> = BTreeMap::new();
    for m in a.into_iter().chain(b) {
        by_id.entry(m.message_id).or_insert(m);
    }
    if newest_first {
        by_id.into_values().rev().take(limit).collect()
    } else {
        by_id.into_values().take(limit).collect()
    }
}

#[async_trait]
impl MessageStore for ShardedStore {
    async fn append(&self, entry: NewMessage, expected_version: u64) -> Result<Appended> {
        let conversation = entry.message.conversation_id.clone();
        let (mine, other) = self.copies(&conversation, Some(&entry.message.sender_id));
        let first = self
            .shard(mine)
            .append(entry.clone(), expected_version)
            .await?;
        let Some(other) = other else {
            return Ok(first);
        };
        // The other copy gets the same entry (the first one's, for a retry
        // that met its own earlier attempt).
        let copy = NewMessage {
            message: first.message.clone(),
            ..entry
        };
        let id = copy.message.message_id;
        if first.duplicate {
            // Complete a send whose second write may have failed before.
            if self.shard(other).entry(&conversation, id).await?.is_none() {
                match self.shard(other).append(copy, expected_version).await {
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, %conversation, "could not complete a half-done mirrored send")
                    }
                }
            }
            return Ok(first);
        }
        match self.shard(other).append(copy, expected_version).await {
            Ok(_) => Ok(first),
            Err(error) => {
                if let Err(undo) = self.shard(mine).remove(&conversation, id).await {
                    tracing::error!(%conversation, %id, error = %undo, "undo of a half-done mirrored send failed; the retry completes it");
                }
                Err(error)
            }
        }
    }

    /// For a mirrored conversation, the newer of the two copies' heads: an
    /// undone half of a send leaves its head on one copy, and an append
    /// must take an id above both.
    async fn head(&self, conversation: &ConversationId) -> Result<Head> {
        self.read_both(
            self.copies(conversation, None),
            |s| s.head(conversation),
            |a, b| {
                if (b.version, b.last_id) > (a.version, a.last_id) {
                    b
                } else {
                    a
                }
            },
        )
        .await
    }

    async fn heads(&self, conversations: &[ConversationId]) -> Result<Vec<Head>> {
        self.grouped(
            conversations,
            None,
            |s, ids| async move { s.heads(&ids).await },
        )
        .await
    }

    async fn entry(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>> {
        self.read_both(
            self.copies(conversation, None),
            |s| s.entry(conversation, id),
            |a, b| a.or(b),
        )
        .await
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        floor: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.read_both(
            self.copies(conversation, None),
            |s| s.history(conversation, before, floor, limit),
            |a, b| merge_pages(a, b, true, limit),
        )
        .await
    }

    async fn range(
        &self,
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.read_both(
            self.copies(conversation, None),
            |s| s.range(conversation, after, up_to, limit),
            |a, b| merge_pages(a, b, false, limit),
        )
        .await
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        self.write_all(self.copies(conversation, None), |s| {
            s.remove(conversation, id)
        })
        .await
    }

    async fn purge(&self, conversation: &ConversationId, up_to: MessageId) -> Result<u64> {
        self.write_all(self.copies(conversation, None), |s| {
            s.purge(conversation, up_to)
        })
        .await
    }

    async fn cursors(
        &self,
        user: &UserId,
        device: Option<&DeviceId>,
        conversation: &ConversationId,
    ) -> Result<Cursors> {
        self.read_one(self.copies(conversation, Some(user)), "cursors", |s| {
            s.cursors(user, device, conversation)
        })
        .await
    }

    async fn user_cursors(
        &self,
        user: &UserId,
        conversations: &[ConversationId],
    ) -> Result<Vec<Cursors>> {
        self.grouped(conversations, Some(user), |s, ids| async move {
            s.user_cursors(user, &ids).await
        })
        .await
    }

    async fn device_cursors(&self, device: &DeviceId) -> Result<Vec<(ConversationId, MessageId)>> {
        let all = self.every_shard(|s| s.device_cursors(device)).await?;
        let mut newest: BTreeMap<ConversationId, MessageId> = BTreeMap::new();
        for (c, id) in all.into_iter().flatten() {
            let e = newest.entry(c).or_insert(id);
            *e = (*e).max(id);
        }
        Ok(newest.into_iter().collect())
    }

    async fn conversation_cursors(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<DeviceCursor>> {
        self.read_both(
            self.copies(conversation, None),
            |s| s.conversation_cursors(conversation),
            |a, b| {
                let mut newest: HashMap<(UserId, DeviceId), MessageId> = HashMap::new();
                for c in a.into_iter().chain(b) {
                    let e = newest
                        .entry((c.user_id, c.device_id))
                        .or_insert(c.delivered);
                    *e = (*e).max(c.delivered);
                }
                let mut out: Vec<DeviceCursor> = newest
                    .into_iter()
                    .map(|((user_id, device_id), delivered)| DeviceCursor {
                        user_id,
                        device_id,
                        delivered,
                    })
                    .collect();
                out.sort_by(|a, b| (&a.user_id, &a.device_id).cmp(&(&b.user_id, &b.device_id)));
                out
            },
        )
        .await
    }

    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<AckMoved> {
        self.write_all(self.copies(conversation, Some(user)), |s| {
            s.ack(user, device, conversation, up_to)
        })
        .await
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<(Option<MessageId>, bool)> {
        self.write_all(self.copies(conversation, Some(user)), |s| {
            s.mark_read(user, conversation, up_to)
        })
        .await
    }

    async fn start_member(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        head: Head,
    ) -> Result<()> {
        self.write_all(self.copies(conversation, Some(user)), |s| {
            s.start_member(user, conversation, head)
        })
        .await
    }

    async fn start_device(&self, user: &UserId, device: &DeviceId) -> Result<()> {
        self.every_shard(|s| s.start_device(user, device)).await?;
        Ok(())
    }

    async fn forget_device(&self, device: &DeviceId) -> Result<()> {
        self.every_shard(|s| s.forget_device(device)).await?;
        Ok(())
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
