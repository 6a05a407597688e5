//! `edit`, `delete` and `react`: events about one message, each stored with
//! its own id in the conversation's order and delivered like a message; the
//! store applies each to its target in the same step.

use super::super::Inner;
use super::super::append::Appending;
use super::super::envelope::SessionRef;
use super::super::registry::SessionShared;
use super::Sent;
use crate::error::{Error, Result};
use crate::model::{ConversationKind, MessageKind};
use crate::protocol::EventFrame;

/// Longest reaction, in bytes (an emoji with modifiers fits easily).
pub(crate) const MAX_EMOJI_BYTES: usize = 32;

impl Inner {
    /// Checks and appends an edit, delete or reaction (`kind`).
    pub(crate) async fn message_event(
        &self,
        session: &SessionShared,
        me: SessionRef,
        kind: MessageKind,
        frame: EventFrame,
    ) -> Result<Sent> {
        let user = &session.user;
        let c = &frame.conversation_id;
        self.check_client_msg_id(frame.client_msg_id.as_deref())?;
        if c.is_direct() {
            self.direct_partner(c, user)?;
        }
        let floor = self.require_member(c, user).await?;
        let target = self
            .messages
            .entry(c, frame.message_id)
            .await?
            .filter(|m| m.kind == MessageKind::Text && m.message_id > floor)
            .ok_or_else(|| Error::not_found(format!("message {} in {c}", frame.message_id)))?;
        match kind {
            MessageKind::Edit => {
                self.check_body(&frame.body)?;
                if target.sender_id != *user {
                    return Err(Error::forbidden("only its sender edits a message"));
                }
                if target.deleted {
                    return Err(Error::invalid("the message was deleted"));
                }
            }
            MessageKind::Delete => {
                if target.sender_id != *user {
                    let manages = match self.conversations.conversation(c).await? {
                        Some(conv) if conv.kind == ConversationKind::Group => {
                            self.member_record(c, user).await?.role.manages()
                        }
                        _ => false,
                    };
                    if !manages {
                        return Err(Error::forbidden(
                            "only its sender, or a group owner or admin, deletes a message",
                        ));
                    }
                }
            }
            MessageKind::Reaction => {
                if frame.body.len() > MAX_EMOJI_BYTES {
                    return Err(Error::invalid(format!(
                        "a reaction is at most {MAX_EMOJI_BYTES} bytes"
                    )));
                }
                if frame.body.chars().any(char::is_control) {
                    return Err(Error::invalid(
                        "a reaction may not contain control characters",
                    ));
                }
            }
            _ => return Err(Error::invalid("not a message event")),
        }
        let appended = self
            .append_entry(
                Appending {
                    conversation: c.clone(),
                    sender: user.clone(),
                    device: Some(session.device.clone()),
                    kind,
                    body: frame.body,
                    ref_id: Some(target.message_id),
                    in_reply_to: None,
                    client_msg_id: frame.client_msg_id,
                    check_member: true,
                },
                Some(me),
            )
            .await?;
        Ok(Sent {
            message_id: appended.message.message_id,
            conversation_id: appended.message.conversation_id,
            ts: appended.message.ts,
        })
    }
}
