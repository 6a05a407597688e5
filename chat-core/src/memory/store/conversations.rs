//! [`ConversationStore`] for [`MemoryStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::model::{
    Conversation, ConversationId, ConversationKind, Departure, GroupSettings, Invite, Member,
    Millis, Role, UserId,
};
use crate::store::ConversationStore;

/// Conversations, membership indexed both ways, bans and invites.
#[derive(Debug, Default)]
pub(super) struct ConversationState {
    conversations: HashMap<ConversationId, Conversation>,
    /// Members per conversation; sorted so `members` answers in a stable order.
    members: HashMap<ConversationId, BTreeMap<UserId, Member>>,
    /// Conversations per user.
    of_user: HashMap<UserId, BTreeSet<ConversationId>>,
    /// Users an owner or admin removed, per conversation.
    bans: HashMap<ConversationId, HashSet<UserId>>,
    /// Invites by code hash.
    invites: HashMap<String, Invite>,
    /// Ended memberships per user, one per group.
    departures: HashMap<UserId, HashMap<ConversationId, Departure>>,
}

impl ConversationState {
    fn insert(&mut self, conversation: Conversation, members: impl IntoIterator<Item = Member>) {
        let id = conversation.id.clone();
        let members: BTreeMap<UserId, Member> = members
            .into_iter()
            .map(|m| (m.user_id.clone(), m))
            .collect();
        for user in members.keys() {
            self.of_user
                .entry(user.clone())
                .or_default()
                .insert(id.clone());
        }
        self.members.insert(id.clone(), members);
        self.conversations.insert(id, conversation);
    }

    fn group_mut(&mut self, id: &ConversationId) -> Result<&mut Conversation> {
        match self.conversations.get_mut(id) {
            Some(c) if c.kind == ConversationKind::Group => Ok(c),
            _ => Err(Error::not_found(format!("group {id}"))),
        }
    }
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn create_group(&self, conversation: Conversation, members: &[Member]) -> Result<()> {
        let mut state = self.conversations.write();
        if state.conversations.contains_key(&conversation.id) {
            return Err(Error::already_exists(format!(
                "conversation {}",
                conversation.id
            )));
        }
        state.insert(conversation, members.iter().cloned());
        Ok(())
    }

    async fn ensure_direct(&self, conversation: Conversation) -> Result<(Conversation, bool)> {
        let Some((a, b)) = conversation.id.direct_pair() else {
            return Err(Error::invalid(format!(
                "{} is not a direct conversation id",
                conversation.id
            )));
        };
        if conversation.kind != ConversationKind::Direct {
            return Err(Error::invalid(format!(
                "conversation {} must be of kind direct",
                conversation.id
            )));
        }
        let mut state = self.conversations.write();
        if let Some(existing) = state.conversations.get(&conversation.id) {
            return Ok((existing.clone(), false));
        }
        let at = conversation.created_at;
        let members = [a, b].map(|u| Member::founding(u, Role::Member, at));
        state.insert(conversation.clone(), members);
        Ok((conversation, true))
    }

    async fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        Ok(self.conversations.read().conversations.get(id).cloned())
    }

    async fn update_group(
        &self,
        id: &ConversationId,
        settings: &GroupSettings,
    ) -> Result<Conversation> {
        let mut state = self.conversations.write();
        let group = state.group_mut(id)?;
        if let Some(name) = &settings.name {
            group.name = Some(name.clone());
        }
        if let Some(join) = settings.join {
            group.join = join;
        }
        if let Some(history) = settings.history {
            group.history = history;
        }
        Ok(group.clone())
    }

    async fn members(&self, id: &ConversationId) -> Result<Vec<Member>> {
        let state = self.conversations.read();
        Ok(state
            .members
            .get(id)
            .map(|members| members.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn member(&self, id: &ConversationId, user: &UserId) -> Result<Option<Member>> {
        let state = self.conversations.read();
        Ok(state.members.get(id).and_then(|m| m.get(user)).cloned())
    }

    async fn member_count(&self, id: &ConversationId) -> Result<u64> {
        let state = self.conversations.read();
        Ok(state.members.get(id).map_or(0, |m| m.len() as u64))
    }

    async fn add_member(&self, id: &ConversationId, member: Member) -> Result<bool> {
        let mut state = self.conversations.write();
        let user = member.user_id.clone();
        let Some(members) = state.members.get_mut(id) else {
            return Err(Error::not_found(format!("conversation {id}")));
        };
        if members.contains_key(&user) {
            return Ok(false);
        }
        members.insert(user.clone(), member);
        state
            .of_user
            .entry(user.clone())
            .or_default()
            .insert(id.clone());
        if let Some(bans) = state.bans.get_mut(id) {
            bans.remove(&user);
        }
        Ok(true)
    }

    async fn remove_member(
        &self,
        id: &ConversationId,
        user: &UserId,
        ban: bool,
    ) -> Result<Option<Member>> {
        let mut state = self.conversations.write();
        let removed = state.members.get_mut(id).and_then(|m| m.remove(user));
        if removed.is_none() {
            return Ok(None);
        }
        if let Some(conversations) = state.of_user.get_mut(user) {
            conversations.remove(id);
            if conversations.is_empty() {
                state.of_user.remove(user);
            }
        }
        if ban {
            state
                .bans
                .entry(id.clone())
                .or_default()
                .insert(user.clone());
        }
        Ok(removed)
    }

    async fn set_role(&self, id: &ConversationId, user: &UserId, role: Role) -> Result<bool> {
        let mut state = self.conversations.write();
        match state.members.get_mut(id).and_then(|m| m.get_mut(user)) {
            Some(member) => {
                member.role = role;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn is_banned(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let state = self.conversations.read();
        Ok(state.bans.get(id).is_some_and(|b| b.contains(user)))
    }

    async fn memberships(&self, user: &UserId) -> Result<Vec<(ConversationId, Member)>> {
        let state = self.conversations.read();
        Ok(state
            .of_user
            .get(user)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| {
                        let member = state.members.get(id)?.get(user)?;
                        Some((id.clone(), member.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn record_departure(&self, user: &UserId, departure: Departure) -> Result<()> {
        let mut state = self.conversations.write();
        let kept = state.departures.entry(user.clone()).or_default();
        match kept.get(&departure.conversation_id) {
            Some(old) if old.left >= departure.left => {}
            _ => {
                kept.insert(departure.conversation_id.clone(), departure);
            }
        }
        Ok(())
    }

    async fn departures(&self, user: &UserId) -> Result<Vec<Departure>> {
        let state = self.conversations.read();
        Ok(state
            .departures
            .get(user)
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn create_invite(&self, invite: Invite) -> Result<()> {
        let mut state = self.conversations.write();
        if state.invites.contains_key(&invite.code_hash) {
            return Err(Error::already_exists("invite"));
        }
        state.invites.insert(invite.code_hash.clone(), invite);
        Ok(())
    }

    async fn redeem_invite(&self, code_hash: &str, now: Millis) -> Result<ConversationId> {
        let mut state = self.conversations.write();
        let invite = state
            .invites
            .get_mut(code_hash)
            .ok_or_else(|| Error::not_found("invite"))?;
        if invite.revoked {
            return Err(Error::gone("the invite was revoked"));
        }
        if invite.expires_at.is_some_and(|at| now >= at) {
            return Err(Error::gone("the invite expired"));
        }
        if invite.max_uses.is_some_and(|max| invite.uses >= max) {
            return Err(Error::gone("the invite is used up"));
        }
        invite.uses += 1;
        Ok(invite.conversation_id.clone())
    }

    async fn revoke_invite(&self, id: &ConversationId, code_hash: &str) -> Result<bool> {
        let mut state = self.conversations.write();
        match state.invites.get_mut(code_hash) {
            Some(invite) if invite.conversation_id == *id && !invite.revoked => {
                invite.revoked = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// In-process: it answers whenever it is asked.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
