//! [`MessageStore`] for [`CassandraStore`]: each method is implemented in
//! the file of its part (`append`, `history`, `deliveries`).

use async_trait::async_trait;
use chat_core::store::{Acked, Appended, Cursors, MessageStore};
use chat_core::{ConversationId, Message, MessageId, NewMessage, Result, UserId};

use crate::store::CassandraStore;

#[async_trait]
impl MessageStore for CassandraStore {
    async fn append(&self, msg: NewMessage, recipients: &[UserId]) -> Result<Appended> {
        self.append_message(msg, recipients).await
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        self.remove_message(conversation, id).await
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.history_page(conversation, before, limit).await
    }

    async fn pending(
        &self,
        user: &UserId,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.pending_page(user, after, limit).await
    }

    async fn ack(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<Vec<Acked>> {
        self.ack_up_to(user, conversation, up_to).await
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<bool> {
        self.mark_read_up_to(user, conversation, up_to).await
    }

    async fn cursors(&self, user: &UserId, conversation: &ConversationId) -> Result<Cursors> {
        self.cursor_values(user, conversation).await
    }

    async fn clear_pending(
        &self,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<Vec<MessageId>> {
        self.clear(user, conversation).await
    }

    async fn purge_delivered(
        &self,
        conversation: &ConversationId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>> {
        self.purge(conversation, ids).await
    }

    async fn last_message_id(&self, conversation: &ConversationId) -> Result<Option<MessageId>> {
        let newest = self.history_page(conversation, None, 1).await?;
        Ok(newest.first().map(|m| m.message_id))
    }

    async fn unread(&self, user: &UserId, conversation: &ConversationId) -> Result<u64> {
        self.unread_count(user, conversation).await
    }

    async fn ping(&self) -> Result<()> {
        self.ping_cluster().await
    }
}
