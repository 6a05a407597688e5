//! The send path: check, assign an id, store, then fan out in id order.

use super::Inner;
use crate::error::{Error, Result};
use crate::model::{ConversationId, Message, MessageId, Millis, NewMessage, Retention, UserId};
use crate::protocol::{SendFrame, SendTarget};

/// What a successful send answers (the `sent` frame's fields).
pub(crate) struct SentOk {
    pub(crate) message_id: MessageId,
    pub(crate) conversation_id: ConversationId,
    pub(crate) ts: Millis,
}

impl Inner {
    /// Stores one message and fans it out. `Err(Unavailable)` means it was
    /// not stored: the client retries with the same client_msg_id.
    pub(crate) async fn send(
        &self,
        sender: &UserId,
        session: u64,
        frame: SendFrame,
    ) -> Result<SentOk> {
        let max = self.limits.max_body_bytes;
        if frame.body.len() > max {
            return Err(Error::TooLarge {
                what: "message body",
                size: frame.body.len(),
                max,
            });
        }
        if frame.body.trim().is_empty() {
            return Err(Error::invalid("message body is empty"));
        }
        if let Some(key) = &frame.client_msg_id
            && key.len() > 128
        {
            return Err(Error::invalid("client_msg_id is longer than 128 bytes"));
        }
        let (conversation, members) = self.resolve_target(sender, &frame.target).await?;
        let recipients: Vec<UserId> = members.iter().filter(|m| *m != sender).cloned().collect();

        let (id, mut place) = self.mint(&conversation)?;
        let message = Message {
            message_id: id,
            conversation_id: conversation.clone(),
            sender_id: sender.clone(),
            body: frame.body,
            ts: id.unix_ms() as Millis,
        };
        let appended = self
            .messages
            .append(
                NewMessage {
                    message,
                    client_msg_id: frame.client_msg_id,
                },
                &recipients,
            )
            .await?;
        let stored = appended.message;
        if !appended.duplicate {
            place.turn().await;
            self.fan_out_message(&stored, &members, session).await;
            if self.retention == Retention::UntilDelivered && recipients.is_empty() {
                // Nobody to deliver to: every recipient (none) has it already.
                self.messages
                    .purge_delivered(&conversation, &[stored.message_id])
                    .await?;
            }
        }
        drop(place);
        Ok(SentOk {
            message_id: stored.message_id,
            conversation_id: stored.conversation_id,
            ts: stored.ts,
        })
    }

    /// The conversation a send goes to and its members (the sender among them).
    async fn resolve_target(
        &self,
        sender: &UserId,
        target: &SendTarget,
    ) -> Result<(ConversationId, Vec<UserId>)> {
        let conversation = match target {
            SendTarget::User(to) => {
                let id = ConversationId::direct(sender, to);
                self.ensure_direct(sender, to, &id).await?;
                id
            }
            SendTarget::Conversation(id) => {
                // `d:<b>:<a>` would otherwise name a second conversation of
                // the same pair: only the one id `direct` derives is valid.
                if let Some((a, b)) = id.direct_pair()
                    && ConversationId::direct(&a, &b) != *id
                {
                    return Err(Error::invalid(format!(
                        "{id} is not a direct conversation id: send with \"to\", or use {}",
                        ConversationId::direct(&a, &b)
                    )));
                }
                id.clone()
            }
        };
        let members = self.conversations.members(&conversation).await?;
        if members.contains(sender) {
            return Ok((conversation, members));
        }
        // A client may name a direct conversation it has not used yet by its
        // derived id: create it when the sender is one of the pair.
        if let Some((a, b)) = conversation.direct_pair()
            && (a == *sender || b == *sender)
        {
            let other = if a == *sender { b } else { a };
            self.ensure_direct(sender, &other, &conversation).await?;
            let members = self.conversations.members(&conversation).await?;
            return Ok((conversation, members));
        }
        Err(Error::NotMember { conversation })
    }

    /// Creates the direct conversation of `sender` and `other` when missing.
    pub(crate) async fn ensure_direct(
        &self,
        sender: &UserId,
        other: &UserId,
        id: &ConversationId,
    ) -> Result<crate::model::Conversation> {
        if self.accounts.account(other).await?.is_none() {
            return Err(Error::not_found(format!("user {other}")));
        }
        self.conversations
            .ensure_direct(crate::model::Conversation {
                id: id.clone(),
                kind: crate::model::ConversationKind::Direct,
                name: None,
                created_by: sender.clone(),
                created_at: crate::model::now_millis(),
            })
            .await
    }
}
