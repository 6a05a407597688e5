//! [`ConversationStore`] for [`MemoryStore`].

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::model::{Conversation, ConversationId, ConversationKind, UserId};
use crate::store::ConversationStore;

/// Conversations and membership, indexed both ways.
#[derive(Debug, Default)]
pub(super) struct ConversationState {
    conversations: HashMap<ConversationId, Conversation>,
    /// Members per conversation; sorted so `members` answers in a stable order.
    members: HashMap<ConversationId, BTreeSet<UserId>>,
    /// Conversations per user.
    of_user: HashMap<UserId, BTreeSet<ConversationId>>,
}

impl ConversationState {
    fn insert(&mut self, conversation: Conversation, members: impl IntoIterator<Item = UserId>) {
        let id = conversation.id.clone();
        let members: BTreeSet<UserId> = members.into_iter().collect();
        for user in &members {
            self.of_user
                .entry(user.clone())
                .or_default()
                .insert(id.clone());
        }
        self.members.insert(id.clone(), members);
        self.conversations.insert(id, conversation);
    }
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn create_group(&self, conversation: Conversation, members: &[UserId]) -> Result<()> {
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

    async fn ensure_direct(&self, conversation: Conversation) -> Result<Conversation> {
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
            return Ok(existing.clone());
        }
        state.insert(conversation.clone(), [a, b]);
        Ok(conversation)
    }

    async fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        Ok(self.conversations.read().conversations.get(id).cloned())
    }

    async fn members(&self, id: &ConversationId) -> Result<Vec<UserId>> {
        let state = self.conversations.read();
        Ok(state
            .members
            .get(id)
            .map(|members| members.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn is_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let state = self.conversations.read();
        Ok(state.members.get(id).is_some_and(|m| m.contains(user)))
    }

    async fn add_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let mut state = self.conversations.write();
        let added = match state.members.entry(id.clone()) {
            Entry::Occupied(mut members) => members.get_mut().insert(user.clone()),
            Entry::Vacant(_) => return Err(Error::not_found(format!("conversation {id}"))),
        };
        if added {
            state
                .of_user
                .entry(user.clone())
                .or_default()
                .insert(id.clone());
        }
        Ok(added)
    }

    async fn remove_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let mut state = self.conversations.write();
        let removed = state
            .members
            .get_mut(id)
            .is_some_and(|members| members.remove(user));
        if removed && let Some(conversations) = state.of_user.get_mut(user) {
            conversations.remove(id);
            if conversations.is_empty() {
                state.of_user.remove(user);
            }
        }
        Ok(removed)
    }

    async fn conversations_of(&self, user: &UserId) -> Result<Vec<ConversationId>> {
        let state = self.conversations.read();
        Ok(state
            .of_user
            .get(user)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// In-process: it answers whenever it is asked.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
