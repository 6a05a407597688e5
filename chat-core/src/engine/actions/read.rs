//! `read`: the user read a conversation up to an id. Small conversations
//! tell every other member; big groups only the senders of what was read.

use super::super::Inner;
use super::super::queue::SlotKey;
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
        if !self.is_big(c).await? {
            let frame = ServerFrame::Receipt(Receipt {
                conversation_id: c.clone(),
                message_id: up_to,
                user_id: user.clone(),
                status: ReceiptStatus::Read,
            })
            .encode();
            let key = SlotKey::Receipt(c.clone(), user.clone(), ReceiptStatus::Read);
            self.to_members(c, frame, Some(user), key).await;
        } else {
            let senders: Vec<_> = self
                .senders_between(c, user, before, up_to)
                .await
                .into_keys()
                .collect();
            self.receipt(c, user, up_to, ReceiptStatus::Read, &senders, true)
                .await;
        }
        Ok(())
    }

    /// Whether `c` is a big group: receipts there go only to senders, coalesced.
    pub(crate) async fn is_big(&self, c: &ConversationId) -> Result<bool> {
        if c.is_direct() {
            return Ok(false);
        }
        let version = self.caches.head(c).map_or(0, |h| h.version);
        let members = self.members_at(c, version).await?;
        Ok(members.len() > self.limits.read_receipts_to_all + 1)
    }
}
