//! [`MessageStore`] for [`MemoryStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::model::{ConversationId, Message, MessageId, NewMessage, UserId};
use crate::store::{Acked, Appended, Cursors, MessageStore};

/// Everything [`MessageStore`] keeps, under one lock so that `append` (the
/// message, its dedup key and its pending deliveries) is a single step.
#[derive(Debug, Default)]
pub(super) struct MessageState {
    /// Messages by conversation, ordered by id.
    conversations: HashMap<ConversationId, BTreeMap<MessageId, Stored>>,
    /// Dedup keys: sender, then client_msg_id, to the stored message. A key
    /// lives exactly as long as its message (removed or purged together).
    dedup: HashMap<UserId, HashMap<String, (ConversationId, MessageId)>>,
    /// Pending deliveries per user.
    pending: HashMap<UserId, UserPending>,
    /// Delivered and read cursors per user and conversation.
    cursors: HashMap<(UserId, ConversationId), Cursors>,
}

/// A stored message and what is needed to undo or purge it.
#[derive(Debug)]
struct Stored {
    message: Message,
    client_msg_id: Option<String>,
    /// Recipients that have not acked it yet.
    pending_for: HashSet<UserId>,
}

/// One user's pending deliveries, indexed twice: all of them in id order for
/// `pending`, and per conversation for `ack` and `clear_pending`, so that an
/// ack does not scan the user's other conversations.
#[derive(Debug, Default)]
struct UserPending {
    all: BTreeSet<(MessageId, ConversationId)>,
    by_conversation: HashMap<ConversationId, BTreeSet<MessageId>>,
}

impl UserPending {
    fn insert(&mut self, conversation: &ConversationId, id: MessageId) {
        self.all.insert((id, conversation.clone()));
        self.by_conversation
            .entry(conversation.clone())
            .or_default()
            .insert(id);
    }

    fn remove(&mut self, conversation: &ConversationId, id: MessageId) {
        self.all.remove(&(id, conversation.clone()));
        if let Some(ids) = self.by_conversation.get_mut(conversation) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_conversation.remove(conversation);
            }
        }
    }

    /// Removes and returns the pending ids of `conversation` up to and
    /// including `up_to` (all of them when `None`), oldest first.
    fn take(&mut self, conversation: &ConversationId, up_to: Option<MessageId>) -> Vec<MessageId> {
        let Some(ids) = self.by_conversation.get_mut(conversation) else {
            return Vec::new();
        };
        let taken: Vec<MessageId> = match up_to {
            Some(up_to) => {
                let rest = up_to
                    .0
                    .checked_add(1)
                    .map(|next| ids.split_off(&MessageId(next)));
                let taken = std::mem::replace(ids, rest.unwrap_or_default());
                taken.into_iter().collect()
            }
            None => std::mem::take(ids).into_iter().collect(),
        };
        if ids.is_empty() {
            self.by_conversation.remove(conversation);
        }
        for id in &taken {
            self.all.remove(&(*id, conversation.clone()));
        }
        taken
    }

    fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

impl MessageState {
    fn stored(&self, conversation: &ConversationId, id: MessageId) -> Option<&Stored> {
        self.conversations.get(conversation)?.get(&id)
    }

    /// Drops a stored message with its dedup key and pending deliveries.
    fn delete(&mut self, conversation: &ConversationId, id: MessageId) -> Option<Stored> {
        let messages = self.conversations.get_mut(conversation)?;
        let stored = messages.remove(&id)?;
        if messages.is_empty() {
            self.conversations.remove(conversation);
        }
        let sender = &stored.message.sender_id;
        if let Some(key) = &stored.client_msg_id
            && let Some(keys) = self.dedup.get_mut(sender)
        {
            // Only drop the key if it still names this message.
            if keys.get(key) == Some(&(conversation.clone(), id)) {
                keys.remove(key);
            }
            if keys.is_empty() {
                self.dedup.remove(sender);
            }
        }
        for user in &stored.pending_for {
            self.remove_pending(user, conversation, id);
        }
        Some(stored)
    }

    fn remove_pending(&mut self, user: &UserId, conversation: &ConversationId, id: MessageId) {
        if let Some(pending) = self.pending.get_mut(user) {
            pending.remove(conversation, id);
            if pending.is_empty() {
                self.pending.remove(user);
            }
        }
    }

    /// Forgets that `users` still wait for `ids` of `conversation`.
    fn settle(&mut self, conversation: &ConversationId, user: &UserId, ids: &[MessageId]) {
        if let Some(messages) = self.conversations.get_mut(conversation) {
            for id in ids {
                if let Some(stored) = messages.get_mut(id) {
                    stored.pending_for.remove(user);
                }
            }
        }
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn append(&self, msg: NewMessage, recipients: &[UserId]) -> Result<Appended> {
        let NewMessage {
            message,
            client_msg_id,
        } = msg;
        let mut state = self.messages.write();
        if let Some(key) = &client_msg_id {
            let first = state
                .dedup
                .get(&message.sender_id)
                .and_then(|keys| keys.get(key))
                .and_then(|(conversation, id)| state.stored(conversation, *id));
            if let Some(first) = first {
                return Ok(Appended {
                    message: first.message.clone(),
                    duplicate: true,
                });
            }
        }
        let conversation = message.conversation_id.clone();
        let id = message.message_id;
        if state.stored(&conversation, id).is_some() {
            return Err(Error::already_exists(format!(
                "message {id} in conversation {conversation}"
            )));
        }
        let pending_for: HashSet<UserId> = recipients
            .iter()
            .filter(|user| **user != message.sender_id)
            .cloned()
            .collect();
        for user in &pending_for {
            state
                .pending
                .entry(user.clone())
                .or_default()
                .insert(&conversation, id);
        }
        if let Some(key) = &client_msg_id {
            state
                .dedup
                .entry(message.sender_id.clone())
                .or_default()
                .insert(key.clone(), (conversation.clone(), id));
        }
        state.conversations.entry(conversation).or_default().insert(
            id,
            Stored {
                message: message.clone(),
                client_msg_id,
                pending_for,
            },
        );
        Ok(Appended {
            message,
            duplicate: false,
        })
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        self.messages.write().delete(conversation, id);
        Ok(())
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let state = self.messages.read();
        let Some(messages) = state.conversations.get(conversation) else {
            return Ok(Vec::new());
        };
        let page = match before {
            Some(before) => messages
                .range(..before)
                .rev()
                .take(limit)
                .map(|(_, s)| s.message.clone())
                .collect(),
            None => messages
                .values()
                .rev()
                .take(limit)
                .map(|s| s.message.clone())
                .collect(),
        };
        Ok(page)
    }

    async fn pending(
        &self,
        user: &UserId,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let state = self.messages.read();
        let Some(pending) = state.pending.get(user) else {
            return Ok(Vec::new());
        };
        let start = match after {
            // The empty string is the smallest conversation id, so this is
            // the first entry with an id above `after`.
            Some(after) => match after.0.checked_add(1) {
                Some(next) => (MessageId(next), ConversationId::from("")),
                None => return Ok(Vec::new()),
            },
            None => (MessageId(0), ConversationId::from("")),
        };
        Ok(pending
            .all
            .range(start..)
            .filter_map(|(id, conversation)| state.stored(conversation, *id))
            .take(limit)
            .map(|s| s.message.clone())
            .collect())
    }

    async fn ack(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<Vec<Acked>> {
        let mut state = self.messages.write();
        let cursors = state
            .cursors
            .entry((user.clone(), conversation.clone()))
            .or_default();
        cursors.delivered = cursors.delivered.max(Some(up_to));
        let ids = match state.pending.get_mut(user) {
            Some(pending) => {
                let ids = pending.take(conversation, Some(up_to));
                if pending.is_empty() {
                    state.pending.remove(user);
                }
                ids
            }
            None => return Ok(Vec::new()),
        };
        state.settle(conversation, user, &ids);
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                let stored = state.stored(conversation, id)?;
                Some(Acked {
                    message_id: id,
                    sender_id: stored.message.sender_id.clone(),
                })
            })
            .collect())
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<bool> {
        let mut state = self.messages.write();
        let cursors = state
            .cursors
            .entry((user.clone(), conversation.clone()))
            .or_default();
        if cursors.read >= Some(up_to) {
            return Ok(false);
        }
        cursors.read = Some(up_to);
        Ok(true)
    }

    async fn cursors(&self, user: &UserId, conversation: &ConversationId) -> Result<Cursors> {
        let state = self.messages.read();
        Ok(state
            .cursors
            .get(&(user.clone(), conversation.clone()))
            .copied()
            .unwrap_or_default())
    }

    async fn clear_pending(
        &self,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<Vec<MessageId>> {
        let mut state = self.messages.write();
        let ids = match state.pending.get_mut(user) {
            Some(pending) => {
                let ids = pending.take(conversation, None);
                if pending.is_empty() {
                    state.pending.remove(user);
                }
                ids
            }
            None => return Ok(Vec::new()),
        };
        state.settle(conversation, user, &ids);
        Ok(ids)
    }

    async fn purge_delivered(
        &self,
        conversation: &ConversationId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>> {
        let mut state = self.messages.write();
        let mut deleted = Vec::new();
        for &id in ids {
            let settled = state
                .stored(conversation, id)
                .is_some_and(|s| s.pending_for.is_empty());
            // A repeated id is no longer stored the second time round.
            if settled {
                state.delete(conversation, id);
                deleted.push(id);
            }
        }
        Ok(deleted)
    }

    async fn last_message_id(&self, conversation: &ConversationId) -> Result<Option<MessageId>> {
        let state = self.messages.read();
        Ok(state
            .conversations
            .get(conversation)
            .and_then(|messages| messages.keys().next_back().copied()))
    }

    async fn unread(&self, user: &UserId, conversation: &ConversationId) -> Result<u64> {
        let state = self.messages.read();
        let Some(messages) = state.conversations.get(conversation) else {
            return Ok(0);
        };
        let read = state
            .cursors
            .get(&(user.clone(), conversation.clone()))
            .and_then(|c| c.read);
        let from = match read {
            Some(read) => Bound::Excluded(read),
            None => Bound::Unbounded,
        };
        Ok(messages
            .range((from, Bound::Unbounded))
            .filter(|(_, s)| s.message.sender_id != *user)
            .count() as u64)
    }

    /// In-process: it answers whenever it is asked.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
