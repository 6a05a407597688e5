//! `ack`: this device has every entry of a conversation up to an id; the
//! senders of newly delivered messages get a `delivered` receipt, and under
//! until_delivered what everyone has is purged.

use std::collections::BTreeMap;

use super::super::Inner;
use super::super::registry::SessionShared;
use crate::error::{Error, Result};
use crate::model::{ConversationId, MessageId, ReceiptStatus, UserId};

/// Newest entries read to find whose messages an ack or read covered.
pub(crate) const RECEIPT_SCAN: usize = 500;

impl Inner {
    /// Acks `c` up to `up_to` for this session's device, clamped to what
    /// this connection was sent: a cumulative ack never covers an entry the
    /// client did not get (it may still be on its way).
    pub(crate) async fn ack(
        &self,
        session: &SessionShared,
        c: &ConversationId,
        up_to: MessageId,
    ) -> Result<()> {
        let up_to = match self.require_member(c, &session.user).await {
            Ok(_) => up_to,
            // A group the user is out of: its devices ack the end of their
            // membership, up to the event that ended it (see `sync`).
            Err(Error::NotMember { .. }) => match self.departure(&session.user, c).await? {
                Some(left) => up_to.min(left),
                None => {
                    return Err(Error::NotMember {
                        conversation: c.clone(),
                    });
                }
            },
            Err(e) => return Err(e),
        };
        let Some(sent) = session.last_sent(c) else {
            return Ok(());
        };
        let up_to = up_to.min(sent);
        let moved = self
            .messages
            .ack(&session.user, &session.device, c, up_to)
            .await?;
        if moved.user_after > moved.user_before
            && let Some(after) = moved.user_after
        {
            self.delivered_receipts(c, &session.user, moved.user_before, after)
                .await;
        }
        if moved.device_before.is_none_or(|b| b < up_to) {
            self.after_ack(c).await;
        }
        Ok(())
    }

    /// Where `user`'s membership of `c` ended, if it left or was removed.
    async fn departure(&self, user: &UserId, c: &ConversationId) -> Result<Option<MessageId>> {
        Ok(self
            .conversations
            .departures(user)
            .await?
            .into_iter()
            .find(|d| d.conversation_id == *c)
            .map(|d| d.left))
    }

    /// One `delivered` receipt per other sender of the messages in
    /// `(before, after]`, naming its newest one there (coalesced in big groups).
    async fn delivered_receipts(
        &self,
        c: &ConversationId,
        reader: &UserId,
        before: Option<MessageId>,
        after: MessageId,
    ) {
        let big = match self.is_big(c).await {
            Ok(big) => big,
            Err(e) => {
                tracing::warn!(error = %e, "no receipts: members unavailable");
                return;
            }
        };
        for (sender, newest) in self.senders_between(c, reader, before, after).await {
            self.receipt(c, reader, newest, ReceiptStatus::Delivered, &[sender], big)
                .await;
        }
    }

    /// The other senders of the newest messages in `(before, up_to]` (at most
    /// [`RECEIPT_SCAN`] read), with the newest id of each.
    pub(crate) async fn senders_between(
        &self,
        c: &ConversationId,
        reader: &UserId,
        before: Option<MessageId>,
        up_to: MessageId,
    ) -> BTreeMap<UserId, MessageId> {
        let mut senders = BTreeMap::new();
        let page = match self
            .messages
            .history(
                c,
                up_to.0.checked_add(1).map(MessageId),
                before,
                RECEIPT_SCAN,
            )
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, conversation = %c, "no receipts: history unavailable");
                return senders;
            }
        };
        for m in page {
            if m.sender_id != *reader {
                senders.entry(m.sender_id).or_insert(m.message_id);
            }
        }
        senders
    }
}
