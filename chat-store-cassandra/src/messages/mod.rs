//! [`MessageStore`] for [`CassandraStore`]: each conversation's log
//! (`heads` and `messages`), dedup keys and cursors. The crate docs tell
//! the design; each part lives in its own file:
//! - `head`: the head partition's statics, and the append's transaction values;
//! - `append`: the conditional append, the commit point of the chain;
//! - `roll`: writing out an entry after its transaction;
//! - `log`: buckets, and the readers of entries;
//! - `purge`: until-delivered purges and `remove`;
//! - `cursors`: user and device cursors;
//! - `intents`: the intents of sends to two shards.

mod append;
mod cursors;
mod head;
mod intents;
mod log;
mod purge;
mod roll;

use async_trait::async_trait;
use chat_core::store::{AckMoved, Appended, Cursors, DeviceCursor, Intent, MessageStore};
use chat_core::{ConversationId, DeviceId, Head, Message, MessageId, NewMessage, Result, UserId};

pub(crate) use head::BucketLimits;
pub(crate) use roll::RolledForward;

use crate::store::CassandraStore;

#[async_trait]
impl MessageStore for CassandraStore {
    async fn append(&self, entry: NewMessage, expected_version: u64) -> Result<Appended> {
        self.append_entry(entry, append::Condition::Above(expected_version))
            .await
    }

    async fn append_after(&self, entry: NewMessage, after: Option<MessageId>) -> Result<Appended> {
        self.append_entry(entry, append::Condition::After(after))
            .await
    }

    async fn put_intent(&self, intent: &Intent) -> Result<()> {
        self.put_intent_row(intent).await
    }

    async fn intents(
        &self,
        after: Option<MessageId>,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<Intent>> {
        self.intent_rows(after, before, limit).await
    }

    async fn clear_intent(&self, intent: &Intent) -> Result<()> {
        self.clear_intent_row(intent).await
    }

    async fn head(&self, conversation: &ConversationId) -> Result<Head> {
        let heads = self.read_heads(std::slice::from_ref(conversation)).await?;
        Ok(heads.into_iter().next().unwrap_or_default())
    }

    async fn heads(&self, conversations: &[ConversationId]) -> Result<Vec<Head>> {
        self.read_heads(conversations).await
    }

    async fn entry(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>> {
        self.read_entry(conversation, id).await
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        floor: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.read_history(conversation, before, floor, limit).await
    }

    async fn range(
        &self,
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.read_range(conversation, after, up_to, limit).await
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        self.remove_entry(conversation, id).await
    }

    async fn purge(&self, conversation: &ConversationId, up_to: MessageId) -> Result<u64> {
        self.purge_up_to(conversation, up_to).await
    }

    async fn cursors(
        &self,
        user: &UserId,
        device: Option<&DeviceId>,
        conversation: &ConversationId,
    ) -> Result<Cursors> {
        self.read_cursors(user, device, conversation).await
    }

    async fn user_cursors(
        &self,
        user: &UserId,
        conversations: &[ConversationId],
    ) -> Result<Vec<Cursors>> {
        self.read_user_cursors(user, conversations).await
    }

    async fn device_cursors(&self, device: &DeviceId) -> Result<Vec<(ConversationId, MessageId)>> {
        self.read_device_cursors(device).await
    }

    async fn conversation_cursors(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<DeviceCursor>> {
        self.read_conversation_cursors(conversation).await
    }

    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<AckMoved> {
        self.ack_up_to(user, device, conversation, up_to).await
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<(Option<MessageId>, bool)> {
        self.mark_read_up_to(user, conversation, up_to).await
    }

    async fn start_member(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        head: Head,
    ) -> Result<()> {
        self.start_member_at(user, conversation, head).await
    }

    async fn start_device(&self, user: &UserId, device: &DeviceId) -> Result<()> {
        self.start_device_at(user, device).await
    }

    async fn forget_device(&self, device: &DeviceId) -> Result<()> {
        self.forget_device_cursors(device).await
    }

    async fn ping(&self) -> Result<()> {
        self.ping_cluster().await
    }
}
