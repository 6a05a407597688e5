//! `send`: a text message, optionally a reply, into a direct conversation
//! (created on first use) or a group.

use super::super::Inner;
use super::super::append::Appending;
use super::super::envelope::SessionRef;
use super::super::registry::SessionShared;
use super::Sent;
use crate::error::{Error, Result};
use crate::model::{ConversationId, MessageKind, UserId};
use crate::protocol::{SendFrame, SendTarget};

impl Inner {
    /// Stores one message and hands it out. `Err(Unavailable)` means it was
    /// not stored: the client retries with the same client_msg_id.
    pub(crate) async fn send(
        &self,
        session: &SessionShared,
        me: SessionRef,
        frame: SendFrame,
    ) -> Result<Sent> {
        self.send_as(&session.user, Some(&session.device), Some(me), frame)
            .await
    }

    /// A send by `sender` (a session's, or the embedder's on its behalf).
    pub(crate) async fn send_as(
        &self,
        sender: &UserId,
        device: Option<&crate::model::DeviceId>,
        me: Option<SessionRef>,
        frame: SendFrame,
    ) -> Result<Sent> {
        self.check_body(&frame.body)?;
        self.check_client_msg_id(frame.client_msg_id.as_deref())?;
        let conversation = self.send_target(sender, &frame.target).await?;
        if let Some(reply) = frame.in_reply_to {
            match self.messages.entry(&conversation, reply).await? {
                Some(m) if m.kind == MessageKind::Text => {}
                _ => {
                    return Err(Error::not_found(format!(
                        "message {reply} in {conversation} (in_reply_to)"
                    )));
                }
            }
        }
        let appended = self
            .append_entry(
                Appending {
                    conversation: conversation.clone(),
                    sender: sender.clone(),
                    device: device.cloned(),
                    kind: MessageKind::Text,
                    body: frame.body,
                    ref_id: None,
                    in_reply_to: frame.in_reply_to,
                    client_msg_id: frame.client_msg_id,
                    check_member: true,
                },
                me,
            )
            .await?;
        let stored = appended.message;
        self.mark_for_purge(&stored.conversation_id);
        if !appended.duplicate && self.notifier.is_some() {
            self.spawn_push(stored.clone());
        }
        Ok(Sent {
            message_id: stored.message_id,
            conversation_id: stored.conversation_id,
            ts: stored.ts,
        })
    }

    /// The conversation a send goes to, checked: the caller is a member (a
    /// direct one is created on first use, unless the other user blocked
    /// the caller).
    async fn send_target(&self, sender: &UserId, target: &SendTarget) -> Result<ConversationId> {
        match target {
            SendTarget::User(to) => self.open_direct(sender, to).await,
            SendTarget::Conversation(c) if c.is_direct() => {
                let other = self.direct_partner(c, sender)?;
                self.open_direct(sender, &other).await
            }
            SendTarget::Conversation(c) => {
                self.require_member(c, sender).await?;
                Ok(c.clone())
            }
        }
    }

    /// Pushes to members connected nowhere, after the send answered.
    fn spawn_push(&self, entry: crate::model::Message) {
        let Some(inner) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let c = &entry.conversation_id;
            let version = inner.caches.head(c).map_or(0, |h| h.version);
            match inner.members_at(c, version).await {
                Ok(members) if members.len() <= inner.limits.push_max_members => {
                    inner.push_offline(&entry, &members).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "members unavailable; no push for this message")
                }
            }
        });
    }
}
