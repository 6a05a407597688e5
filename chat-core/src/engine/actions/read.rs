//! `read`: the user read a conversation up to an id. Small conversations
//! tell every other member; big groups only the senders of what was read.

use super::super::Inner;
use super::super::registry::SessionShared;
use crate::error::Result;
use crate::model::{ConversationId, MessageId, Receipt, ReceiptStatus};
use crate::protocol::ServerFrame;

impl Inner {
    /// Marks `c` read up to `up_to`, bounded by its newest entry.
    pub(crate) async fn read(
        &self,
        session: &SessionShared,
        c: &ConversationId,
        up_to: MessageId,
    ) -> Result<()> {
        let user = &session.user;
        self.require_member(c, user).await?;
        let newest = match self.caches.head(c).and_then(|h| h.last_id) {
            Some(last) if last >= up_to => Some(last),
            _ => {
                let head = self.messages.head(c).await?;
                self.caches.saw_head(c, head);
                head.last_id
            }
        };
        let Some(newest) = newest else {
            return Ok(());
        };
        let up_to = up_to.min(newest);
        let (before, moved) = self.messages.mark_read(user, c, up_to).await?;
        if !moved {
            return Ok(());
        }
        let frame = ServerFrame::Receipt(Receipt {
            conversation_id: c.clone(),
            message_id: up_to,
            user_id: user.clone(),
            status: ReceiptStatus::Read,
        })
        .encode();
        let members = self.conversations.member_count(c).await?;
        if members as usize <= self.limits.read_receipts_to_all + 1 {
            self.to_members(c, frame, Some(user)).await;
        } else {
            let senders: Vec<_> = self
                .senders_between(c, user, before, up_to)
                .await
                .into_keys()
                .collect();
            self.to_users(&senders, frame).await;
        }
        Ok(())
    }
}
