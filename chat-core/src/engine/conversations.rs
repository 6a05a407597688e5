//! Groups, membership, conversation lists and history: the engine calls
//! behind the HTTP API (and the WebSocket's `history`).

use super::Engine;
use crate::error::{Error, Result};
use crate::model::{
    Conversation, ConversationId, ConversationKind, ConversationSummary, Message, MessageId,
    Retention, UserId, now_millis,
};

/// Longest group name, in characters.
pub(crate) const MAX_GROUP_NAME_CHARS: usize = 100;

fn new_group_id() -> ConversationId {
    use rand::Rng;
    let bytes: [u8; 12] = rand::rng().random();
    let mut s = String::with_capacity(26);
    s.push_str("g_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    ConversationId::from(s)
}

impl Engine {
    /// Creates a group named `name` with `creator` and `members`; returns its id.
    /// Every member must be an existing user ([`Error::NotFound`] otherwise).
    pub async fn create_group(
        &self,
        creator: &UserId,
        name: &str,
        members: &[UserId],
    ) -> Result<ConversationId> {
        let name = crate::names::check_display_text(name, "group name", MAX_GROUP_NAME_CHARS)?;
        let mut all: Vec<UserId> = Vec::with_capacity(members.len() + 1);
        all.push(creator.clone());
        for m in members {
            if !all.contains(m) {
                all.push(m.clone());
            }
        }
        if all.len() > self.inner.limits.max_group_members {
            return Err(Error::invalid(format!(
                "a group has at most {} members",
                self.inner.limits.max_group_members
            )));
        }
        for m in &all {
            self.require_user(m).await?;
        }
        let conversation = Conversation {
            id: new_group_id(),
            kind: ConversationKind::Group,
            name: Some(name.to_owned()),
            created_by: creator.clone(),
            created_at: now_millis(),
        };
        let id = conversation.id.clone();
        self.inner
            .conversations
            .create_group(conversation, &all)
            .await?;
        Ok(id)
    }

    /// Adds `user` to group `group`. Allowed to a member adding someone, and
    /// to anyone adding itself (join).
    pub async fn add_member(
        &self,
        actor: &UserId,
        group: &ConversationId,
        user: &UserId,
    ) -> Result<()> {
        let conv = self.require_group(group).await?;
        if actor != user && !self.inner.conversations.is_member(&conv.id, actor).await? {
            return Err(Error::NotMember {
                conversation: conv.id,
            });
        }
        self.require_user(user).await?;
        let count = self.inner.conversations.members(group).await?.len();
        if count >= self.inner.limits.max_group_members {
            return Err(Error::invalid(format!(
                "a group has at most {} members",
                self.inner.limits.max_group_members
            )));
        }
        self.inner.conversations.add_member(group, user).await?;
        Ok(())
    }

    /// Removes `user` from group `group` (a member leaving, or removing
    /// another member). Delivery to it stops at once: its pending deliveries
    /// in the group are dropped.
    pub async fn remove_member(
        &self,
        actor: &UserId,
        group: &ConversationId,
        user: &UserId,
    ) -> Result<()> {
        let conv = self.require_group(group).await?;
        if !self.inner.conversations.is_member(&conv.id, actor).await? {
            return Err(Error::NotMember {
                conversation: conv.id,
            });
        }
        if !self.inner.conversations.remove_member(group, user).await? {
            return Err(Error::not_found(format!("member {user} of {group}")));
        }
        let dropped = self.inner.messages.clear_pending(user, group).await?;
        if self.inner.retention == Retention::UntilDelivered && !dropped.is_empty() {
            self.inner.messages.purge_delivered(group, &dropped).await?;
        }
        Ok(())
    }

    /// The members of `conversation`; only members may ask.
    pub async fn members(
        &self,
        actor: &UserId,
        conversation: &ConversationId,
    ) -> Result<Vec<UserId>> {
        let members = self.inner.conversations.members(conversation).await?;
        if !members.contains(actor) {
            return Err(self.not_member_or_missing(conversation));
        }
        Ok(members)
    }

    /// `user`'s conversations with their newest message id and unread count.
    pub async fn conversations(&self, user: &UserId) -> Result<Vec<ConversationSummary>> {
        let ids = self.inner.conversations.conversations_of(user).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(conv) = self.inner.conversations.conversation(&id).await? else {
                continue;
            };
            out.push(ConversationSummary {
                last_message_id: self.inner.messages.last_message_id(&id).await?,
                unread: self.inner.messages.unread(user, &id).await?,
                conversation_id: id,
                kind: conv.kind,
                name: conv.name,
            });
        }
        // Most recent activity first, like every chat app's list.
        out.sort_by_key(|c| std::cmp::Reverse(c.last_message_id));
        Ok(out)
    }

    /// A history page of `conversation`, newest first; only members may read.
    pub async fn history(
        &self,
        actor: &UserId,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: Option<usize>,
    ) -> Result<Vec<Message>> {
        if !self
            .inner
            .conversations
            .is_member(conversation, actor)
            .await?
        {
            return Err(self.not_member_or_missing(conversation));
        }
        let limits = &self.inner.limits;
        let limit = limit
            .unwrap_or(limits.history_default)
            .clamp(1, limits.history_max);
        self.inner
            .messages
            .history(conversation, before, limit)
            .await
    }

    /// The direct conversation of `user` and `other`, created when missing.
    pub async fn direct_conversation(&self, user: &UserId, other: &UserId) -> Result<Conversation> {
        let id = ConversationId::direct(user, other);
        self.inner.ensure_direct(user, other, &id).await
    }

    pub(crate) async fn require_user(&self, user: &UserId) -> Result<()> {
        match self.inner.accounts.account(user).await? {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!("user {user}"))),
        }
    }

    async fn require_group(&self, group: &ConversationId) -> Result<Conversation> {
        match self.inner.conversations.conversation(group).await? {
            Some(c) if c.kind == ConversationKind::Group => Ok(c),
            // A direct conversation answers as a missing group does: a 400
            // here told outsiders which pairs of users have talked.
            _ => Err(Error::not_found(format!("group {group}"))),
        }
    }

    /// Not-member for an existing conversation; the same for a missing one,
    /// so outsiders cannot probe which ids exist.
    fn not_member_or_missing(&self, conversation: &ConversationId) -> Error {
        Error::NotMember {
            conversation: conversation.clone(),
        }
    }
}
