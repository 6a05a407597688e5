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
//! "conv" is the shard of the conversation. A direct conversation under
//! `ShardBy::User` whose users live on different shards is *mirrored*: its
//! "first" copy is on the shard of the user that [`ConversationId::direct`]
//! names first, its "second" on the other's; "mine" is the copy of the user
//! asking.
//!
//! | method | one shard | mirrored direct conversation |
//! |---|---|---|
//! | `append`, `append_after` | conv | first, then second (see below) |
//! | `head`, `put_intent`, `clear_intent` | conv | first (`head`: the second if the first fails) |
//! | `entry`, `history`, `range` | conv | both, merged by id, the first's version of an entry winning (either alone if the other fails) |
//! | `cursors` | conv | mine, the other if it fails |
//! | `heads` | conv, grouped | first, grouped |
//! | `user_cursors` | conv, grouped | mine, grouped |
//! | `remove`, `purge`, `ack`, `mark_read`, `start_member` | conv | both |
//! | `conversation_cursors` | conv | both, the newest cursor of each device |
//! | `device_cursors`, `start_device`, `forget_device`, `intents` | every shard | every shard |
//!
//! Writes to both copies answer an error if either fails, having applied to
//! the other. That is safe to retry: cursors never move backwards, purges and
//! removes are idempotent.
//!
//! # A send to two shards
//!
//! The first copy is the commit point of a mirrored conversation: every
//! append goes there first, whoever sends, so its conditional head orders
//! the conversation and the `prev` an append answers is always the first
//! copy's. The second copy follows the first one's chain with
//! [`MessageStore::append_after`]: an entry goes in there only right after
//! its predecessor, so the two copies hold the same entries in the same
//! order, with the same `seq`.
//!
//! A send records an intent on the first copy before it writes, and clears
//! it once the second copy has the entry (`sharded/mirror.rs` has the steps
//! and what a crash after each leaves). A process that dies between the two
//! writes leaves the entry on the first copy, in the chain: every node
//! delivers it, because every later entry links to it. The second copy is
//! completed by whichever comes first: the next send to the conversation
//! (its copy conflicts on the second copy's head and copies what is
//! missing, in order) or [`ShardedStore::reconcile`], which walks the
//! intents (run it at startup and now and then:
//! [`ShardedStore::spawn_reconciler`]). A send whose second write fails is
//! still stored (and answered so): its intent stays for the reconciler.
//!
//! Until then, reads of the conversation's log merge both copies, and the
//! reads that take one copy take the first; what a user reads of its own
//! cursors comes from its own copy, which acks and reads write to both.

mod mirror;
mod repair;
mod route;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::{join, try_join_all};

use crate::error::{Error, Result};
use crate::model::{ConversationId, DeviceId, Head, Message, MessageId, NewMessage, UserId};
use crate::store::{AckMoved, Appended, Cursors, DeviceCursor, Intent, MessageStore};

use self::mirror::FirstWrite;
pub use self::repair::{Reconciled, RepairConfig};
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
    repair: RepairConfig,
}

impl fmt::Debug for ShardedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedStore")
            .field("shards", &self.shards.len())
            .field("by", &self.by)
            .field("repair", &self.repair)
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
        Ok(Self {
            shards,
            by,
            repair: RepairConfig::default(),
        })
    }

    /// When [`ShardedStore::reconcile`] acts on an intent.
    pub fn with_repair(mut self, repair: RepairConfig) -> Self {
        self.repair = repair;
        self
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

    /// The (first, second) copies of a mirrored conversation; `None` when
    /// one shard holds it.
    fn mirror(&self, conversation: &ConversationId) -> Option<(usize, usize)> {
        match placement(self.by, self.shards.len(), conversation) {
            Placement::Mirrored { first, second, .. } => Some((first, second)),
            Placement::One(_) => None,
        }
    }

    /// The copies of `conversation`, `user`'s own first when it has one
    /// (without a user: the first copy first).
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

/// Two pages of one conversation merged: every id once (`a`'s version of an
/// entry both hold: the first copy's), in `order`, at most `limit`.
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
        let conversation = &entry.message.conversation_id;
        match self.mirror(conversation) {
            Some(copies) => {
                self.append_mirrored(copies, entry, FirstWrite::Append(expected_version))
                    .await
            }
            None => {
                let (shard, _) = self.copies(conversation, None);
                self.shard(shard).append(entry, expected_version).await
            }
        }
    }

    async fn append_after(&self, entry: NewMessage, after: Option<MessageId>) -> Result<Appended> {
        let conversation = &entry.message.conversation_id;
        match self.mirror(conversation) {
            Some(copies) => {
                self.append_mirrored(copies, entry, FirstWrite::After(after))
                    .await
            }
            None => {
                let (shard, _) = self.copies(conversation, None);
                self.shard(shard).append_after(entry, after).await
            }
        }
    }

    async fn put_intent(&self, intent: &Intent) -> Result<()> {
        let (shard, _) = self.copies(&intent.conversation_id, None);
        self.shard(shard).put_intent(intent).await
    }

    /// Every shard's, merged by id.
    async fn intents(
        &self,
        after: Option<MessageId>,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<Intent>> {
        let all = self
            .every_shard(|s| s.intents(after, before, limit))
            .await?;
        let mut merged: Vec<Intent> = all.into_iter().flatten().collect();
        merged.sort();
        merged.truncate(limit);
        Ok(merged)
    }

    async fn clear_intent(&self, intent: &Intent) -> Result<()> {
        let (shard, _) = self.copies(&intent.conversation_id, None);
        self.shard(shard).clear_intent(intent).await
    }

    /// The first copy's head (the second's if the first fails): appends
    /// are conditional on it.
    async fn head(&self, conversation: &ConversationId) -> Result<Head> {
        self.read_one(self.copies(conversation, None), "head", |s| {
            s.head(conversation)
        })
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
