//! `history`: a page of a conversation as it is now, newest first, from the
//! caller's join on when the group shows history since join.

use super::super::{Engine, Inner};
use crate::error::Result;
use crate::model::{
    ConversationId, ConversationKind, HistoryVisibility, Message, MessageId, UserId,
};

impl Inner {
    pub(crate) async fn history(
        &self,
        actor: &UserId,
        c: &ConversationId,
        before: Option<MessageId>,
        limit: Option<usize>,
    ) -> Result<Vec<Message>> {
        if c.is_direct() {
            self.direct_partner(c, actor)?;
        }
        let member = self.member_record(c, actor).await?;
        let floor = match self.conversations.conversation(c).await? {
            Some(conv)
                if conv.kind == ConversationKind::Group
                    && conv.history == HistoryVisibility::SinceJoin =>
            {
                Some(member.joined).filter(|j| j.0 > 0)
            }
            _ => None,
        };
        let limits = &self.limits;
        let limit = limit
            .unwrap_or(limits.history_default)
            .clamp(1, limits.history_max);
        let mut page = self.messages.history(c, before, floor, limit).await?;
        self.redact_edits(c, &mut page).await?;
        Ok(page)
    }
}

impl Engine {
    /// A history page of `conversation`, newest first, each message as it
    /// is now (edits, deletes, reactions applied) with the events listed
    /// too; only members may read, from their join on under `since_join`.
    pub async fn history(
        &self,
        actor: &UserId,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: Option<usize>,
    ) -> Result<Vec<Message>> {
        self.inner.history(actor, conversation, before, limit).await
    }
}
