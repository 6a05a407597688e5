//! Rules several actions share: who may write to a conversation, what a
//! direct conversation id must look like, and the limits on bodies.

use super::super::Inner;
use crate::error::{Error, Result};
use crate::model::{Conversation, ConversationId, Member, MessageId, UserId, now_millis};

/// Longest `client_msg_id`, in bytes.
pub(crate) const MAX_CLIENT_MSG_ID: usize = 128;

impl Inner {
    /// The caller's membership of `c` and its join point: from what this
    /// node knows when the caller is connected here, else from the store.
    /// [`Error::NotMember`] otherwise (also for a conversation that does not
    /// exist, so outsiders cannot probe which ids do).
    pub(crate) async fn require_member(
        &self,
        c: &ConversationId,
        user: &UserId,
    ) -> Result<MessageId> {
        if let Some(floor) = self.local.member_floor(c, user) {
            return Ok(floor);
        }
        match self.conversations.member(c, user).await? {
            Some(member) => Ok(member.joined),
            None => Err(Error::NotMember {
                conversation: c.clone(),
            }),
        }
    }

    /// The caller's member record of `c` (role included), from the store.
    pub(crate) async fn member_record(&self, c: &ConversationId, user: &UserId) -> Result<Member> {
        self.conversations
            .member(c, user)
            .await?
            .ok_or_else(|| Error::NotMember {
                conversation: c.clone(),
            })
    }

    /// Checks a message body.
    pub(crate) fn check_body(&self, body: &str) -> Result<()> {
        let max = self.limits.max_body_bytes;
        if body.len() > max {
            return Err(Error::TooLarge {
                what: "message body",
                size: body.len(),
                max,
            });
        }
        if body.trim().is_empty() {
            return Err(Error::invalid("message body is empty"));
        }
        Ok(())
    }

    /// Checks a retry key.
    pub(crate) fn check_client_msg_id(&self, key: Option<&str>) -> Result<()> {
        match key {
            Some(k) if k.len() > MAX_CLIENT_MSG_ID => Err(Error::invalid(format!(
                "client_msg_id is longer than {MAX_CLIENT_MSG_ID} bytes"
            ))),
            Some("") => Err(Error::invalid("client_msg_id is empty")),
            _ => Ok(()),
        }
    }

    /// The direct conversation of `sender` and `other`, ready to write to:
    /// refused when `other` blocked `sender` (or does not exist); created
    /// when missing, and then made known to both users' nodes.
    pub(crate) async fn open_direct(
        &self,
        sender: &UserId,
        other: &UserId,
    ) -> Result<ConversationId> {
        let c = ConversationId::direct(sender, other);
        if self.blocks(other, sender).await? {
            return Err(Error::blocked(format!("{other} blocked you")));
        }
        if self.local.member_floor(&c, sender).is_some() {
            return Ok(c);
        }
        if self.accounts.account(other).await?.is_none() {
            return Err(Error::not_found(format!("user {other}")));
        }
        let (_, created) = self
            .conversations
            .ensure_direct(Conversation::direct(sender, other, now_millis()))
            .await?;
        if created {
            for u in [sender, other] {
                self.notice_user(u, super::super::envelope::Header::Attach { c: c.clone() })
                    .await;
            }
        }
        for u in [sender, other] {
            self.attach_joined(u, &c).await;
        }
        Ok(c)
    }

    /// A direct conversation id named by a client: it must be the canonical
    /// id of a pair the caller belongs to (`d:<lo>:<hi>`); answers the other user.
    pub(crate) fn direct_partner(&self, c: &ConversationId, user: &UserId) -> Result<UserId> {
        let not_member = || Error::NotMember {
            conversation: c.clone(),
        };
        let (a, b) = c.direct_pair().ok_or_else(not_member)?;
        if ConversationId::direct(&a, &b) != *c {
            return Err(Error::invalid(format!(
                "{c} is not a direct conversation id: the pair must be in order"
            )));
        }
        if a == *user {
            Ok(b)
        } else if b == *user {
            Ok(a)
        } else {
            Err(not_member())
        }
    }
}
