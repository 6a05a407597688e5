//! [`MessageStore`] for [`MemoryStore`]: each conversation's log and head,
//! dedup keys, and the user and device cursors (docs/storage.md).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::model::{ConversationId, DeviceId, Head, Message, MessageId, NewMessage, UserId};
use crate::store::{AckMoved, Appended, Cursors, DeviceCursor, Intent, MessageStore};

/// Everything [`MessageStore`] keeps, under one lock so that `append` (the
/// entry, its head, its dedup key, its target and the sender's cursors) is
/// a single step.
#[derive(Debug, Default)]
pub(super) struct MessageState {
    logs: HashMap<ConversationId, Log>,
    /// Dedup keys: (sender, client_msg_id) to the stored entry. A key lives
    /// exactly as long as its entry (removed or purged together).
    dedup: HashMap<(UserId, String), (ConversationId, MessageId)>,
    /// Delivered and read cursors per user and conversation.
    users: HashMap<UserId, HashMap<ConversationId, UserCursor>>,
    /// The users' delivered cursors again, by conversation (for the
    /// low-water mark).
    delivered_in: HashMap<ConversationId, HashMap<UserId, MessageId>>,
    /// Device cursors, by device and by conversation (the second for the
    /// low-water mark, so it does not scan every device).
    devices: HashMap<DeviceId, HashMap<ConversationId, MessageId>>,
    by_conversation: HashMap<ConversationId, HashMap<DeviceId, (UserId, MessageId)>>,
    /// Sends to two stores that began (`MessageStore::put_intent`).
    intents: BTreeSet<Intent>,
}

/// What an append is conditional on.
#[derive(Clone, Copy, Debug)]
enum Condition {
    /// `append`: an id above the head, at this version.
    Above(u64),
    /// `append_after`: the head's last id is this one.
    After(Option<MessageId>),
}

#[derive(Debug, Default)]
struct Log {
    head: Head,
    entries: BTreeMap<MessageId, Stored>,
    /// The seq of the newest text entry purged so far, so that a read
    /// cursor over purged entries still gets its seq.
    purged_seq: u64,
    purged_up_to: Option<MessageId>,
}

#[derive(Debug)]
struct Stored {
    message: Message,
    client_msg_id: Option<String>,
    /// The text entry's seq (0 for events).
    seq: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct UserCursor {
    delivered: Option<MessageId>,
    read: Option<MessageId>,
    read_seq: u64,
}

fn forward(cursor: &mut Option<MessageId>, to: MessageId) {
    if cursor.is_none_or(|c| c < to) {
        *cursor = Some(to);
    }
}

fn bounds(
    after: Option<MessageId>,
    up_to: Option<MessageId>,
) -> (Bound<MessageId>, Bound<MessageId>) {
    (
        after.map_or(Bound::Unbounded, Bound::Excluded),
        up_to.map_or(Bound::Unbounded, Bound::Included),
    )
}

impl Log {
    /// The seq of the newest text entry at or below `up_to`.
    fn seq_at(&self, up_to: MessageId) -> u64 {
        if self.head.last_id.is_some_and(|last| up_to >= last) {
            return self.head.seq;
        }
        let stored = self
            .entries
            .range(..=up_to)
            .rev()
            .find(|(_, s)| s.seq > 0)
            .map_or(0, |(_, s)| s.seq);
        let purged = if self.purged_up_to.is_some() {
            self.purged_seq
        } else {
            0
        };
        stored.max(purged)
    }
}

impl MessageState {
    fn user(&self, user: &UserId, c: &ConversationId) -> UserCursor {
        self.users
            .get(user)
            .and_then(|m| m.get(c))
            .copied()
            .unwrap_or_default()
    }

    /// Changes one user cursor with `f`, keeping the by-conversation index in step.
    fn update_user(
        &mut self,
        user: &UserId,
        c: &ConversationId,
        f: impl FnOnce(&mut UserCursor),
    ) -> UserCursor {
        let cursor = self
            .users
            .entry(user.clone())
            .or_default()
            .entry(c.clone())
            .or_default();
        f(cursor);
        let cursor = *cursor;
        if let Some(delivered) = cursor.delivered {
            self.delivered_in
                .entry(c.clone())
                .or_default()
                .insert(user.clone(), delivered);
        }
        cursor
    }

    fn set_device(&mut self, user: &UserId, device: &DeviceId, c: &ConversationId, to: MessageId) {
        let cursor = self
            .devices
            .entry(device.clone())
            .or_default()
            .entry(c.clone())
            .or_insert(to);
        *cursor = (*cursor).max(to);
        let to = *cursor;
        self.by_conversation
            .entry(c.clone())
            .or_default()
            .insert(device.clone(), (user.clone(), to));
    }

    fn delete_entry(&mut self, conversation: &ConversationId, id: MessageId) -> Option<Stored> {
        let stored = self.logs.get_mut(conversation)?.entries.remove(&id)?;
        if let Some(key) = &stored.client_msg_id {
            let k = (stored.message.sender_id.clone(), key.clone());
            // Only drop the key if it still names this entry.
            if self.dedup.get(&k) == Some(&(conversation.clone(), id)) {
                self.dedup.remove(&k);
            }
        }
        Some(stored)
    }
}

impl MemoryStore {
    /// `append` and `append_after`: one step under the lock (see the trait).
    fn append_if(&self, entry: NewMessage, condition: Condition) -> Result<Appended> {
        let NewMessage {
            message,
            client_msg_id,
            device,
        } = entry;
        let mut state = self.messages.write();
        let sender = message.sender_id.clone();
        if let Some(key) = &client_msg_id {
            let first = state
                .dedup
                .get(&(sender.clone(), key.clone()))
                .and_then(|(c, id)| state.logs.get(c)?.entries.get(id));
            if let Some(first) = first {
                return Ok(Appended {
                    message: first.message.clone(),
                    prev: None,
                    duplicate: true,
                });
            }
        }
        let conversation = message.conversation_id.clone();
        let id = message.message_id;
        let log = state.logs.entry(conversation.clone()).or_default();
        let refused = match condition {
            Condition::Above(version) => {
                log.head.last_id.is_some_and(|last| id <= last) || log.head.version != version
            }
            Condition::After(after) => log.head.last_id != after || after.is_some_and(|a| id <= a),
        };
        if refused {
            return Err(Error::Conflict { head: log.head });
        }
        if message.kind.has_target() {
            let target = message
                .ref_id
                .and_then(|t| log.entries.get_mut(&t))
                .ok_or_else(|| {
                    Error::not_found(format!("message {:?} in {conversation}", message.ref_id))
                })?;
            target.message.apply(&message);
        }
        let prev = log.head.last_id;
        log.head.last_id = Some(id);
        let mut seq = 0;
        if message.kind.counts_unread() {
            log.head.seq += 1;
            seq = log.head.seq;
        }
        if message.kind == crate::model::MessageKind::GroupEvent {
            log.head.version += 1;
        }
        let read_seq = log.seq_at(id);
        log.entries.insert(
            id,
            Stored {
                message: message.clone(),
                client_msg_id: client_msg_id.clone(),
                seq,
            },
        );
        if let Some(key) = client_msg_id {
            state
                .dedup
                .insert((sender.clone(), key), (conversation.clone(), id));
        }
        // Delivered cursors move only when they lose nothing (see the trait).
        let covers =
            |cursor: Option<MessageId>| prev.is_none_or(|p| cursor.is_some_and(|c| c >= p));
        state.update_user(&sender, &conversation, |cursor| {
            if covers(cursor.delivered) {
                forward(&mut cursor.delivered, id);
            }
            forward(&mut cursor.read, id);
            cursor.read_seq = cursor.read_seq.max(read_seq);
        });
        if let Some(device) = &device {
            let had = state
                .devices
                .get(device)
                .and_then(|m| m.get(&conversation))
                .copied();
            if covers(had) {
                state.set_device(&sender, device, &conversation, id);
            }
        }
        Ok(Appended {
            message,
            prev,
            duplicate: false,
        })
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn append(&self, entry: NewMessage, expected_version: u64) -> Result<Appended> {
        self.append_if(entry, Condition::Above(expected_version))
    }

    async fn append_after(&self, entry: NewMessage, after: Option<MessageId>) -> Result<Appended> {
        self.append_if(entry, Condition::After(after))
    }

    async fn put_intent(&self, intent: &Intent) -> Result<()> {
        self.messages.write().intents.insert(intent.clone());
        Ok(())
    }

    async fn intents(
        &self,
        after: Option<MessageId>,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<Intent>> {
        let state = self.messages.read();
        Ok(state
            .intents
            .iter()
            .filter(|i| after.is_none_or(|a| i.message_id > a) && i.message_id < before)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn clear_intent(&self, intent: &Intent) -> Result<()> {
        self.messages.write().intents.remove(intent);
        Ok(())
    }

    async fn head(&self, conversation: &ConversationId) -> Result<Head> {
        Ok(self
            .messages
            .read()
            .logs
            .get(conversation)
            .map(|l| l.head)
            .unwrap_or_default())
    }

    async fn heads(&self, conversations: &[ConversationId]) -> Result<Vec<Head>> {
        let state = self.messages.read();
        Ok(conversations
            .iter()
            .map(|c| state.logs.get(c).map(|l| l.head).unwrap_or_default())
            .collect())
    }

    async fn entry(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>> {
        let state = self.messages.read();
        Ok(state
            .logs
            .get(conversation)
            .and_then(|l| l.entries.get(&id))
            .map(|s| s.message.clone()))
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        floor: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let state = self.messages.read();
        let Some(log) = state.logs.get(conversation) else {
            return Ok(Vec::new());
        };
        let range = (
            floor.map_or(Bound::Unbounded, Bound::Excluded),
            before.map_or(Bound::Unbounded, Bound::Excluded),
        );
        if let (Bound::Excluded(lo), Bound::Excluded(hi)) = range
            && lo >= hi
        {
            return Ok(Vec::new());
        }
        Ok(log
            .entries
            .range(range)
            .rev()
            .filter(|(_, s)| s.message.kind.in_history())
            .take(limit)
            .map(|(_, s)| s.message.clone())
            .collect())
    }

    async fn range(
        &self,
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let state = self.messages.read();
        let Some(log) = state.logs.get(conversation) else {
            return Ok(Vec::new());
        };
        if let (Some(a), Some(u)) = (after, up_to)
            && a >= u
        {
            return Ok(Vec::new());
        }
        Ok(log
            .entries
            .range(bounds(after, up_to))
            .take(limit)
            .map(|(_, s)| s.message.clone())
            .collect())
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        self.messages.write().delete_entry(conversation, id);
        Ok(())
    }

    async fn purge(&self, conversation: &ConversationId, up_to: MessageId) -> Result<u64> {
        let mut state = self.messages.write();
        let Some(log) = state.logs.get_mut(conversation) else {
            return Ok(0);
        };
        let ids: Vec<MessageId> = log.entries.range(..=up_to).map(|(id, _)| *id).collect();
        let mut seq = log.purged_seq;
        for stored in ids.iter().filter_map(|id| log.entries.get(id)) {
            seq = seq.max(stored.seq);
        }
        log.purged_seq = seq;
        forward(&mut log.purged_up_to, up_to);
        for id in &ids {
            state.delete_entry(conversation, *id);
        }
        Ok(ids.len() as u64)
    }

    async fn cursors(
        &self,
        user: &UserId,
        device: Option<&DeviceId>,
        conversation: &ConversationId,
    ) -> Result<Cursors> {
        let state = self.messages.read();
        let u = state.user(user, conversation);
        Ok(Cursors {
            device_delivered: device
                .and_then(|d| state.devices.get(d))
                .and_then(|m| m.get(conversation))
                .copied(),
            delivered: u.delivered,
            read: u.read,
            read_seq: u.read_seq,
        })
    }

    async fn user_cursors(
        &self,
        user: &UserId,
        conversations: &[ConversationId],
    ) -> Result<Vec<Cursors>> {
        let state = self.messages.read();
        Ok(conversations
            .iter()
            .map(|c| {
                let u = state.user(user, c);
                Cursors {
                    device_delivered: None,
                    delivered: u.delivered,
                    read: u.read,
                    read_seq: u.read_seq,
                }
            })
            .collect())
    }

    async fn device_cursors(&self, device: &DeviceId) -> Result<Vec<(ConversationId, MessageId)>> {
        let state = self.messages.read();
        let mut out: Vec<(ConversationId, MessageId)> = state
            .devices
            .get(device)
            .map(|m| m.iter().map(|(c, id)| (c.clone(), *id)).collect())
            .unwrap_or_default();
        out.sort();
        Ok(out)
    }

    async fn conversation_cursors(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<DeviceCursor>> {
        let state = self.messages.read();
        let mut out: Vec<DeviceCursor> = state
            .by_conversation
            .get(conversation)
            .map(|m| {
                m.iter()
                    .map(|(d, (u, id))| DeviceCursor {
                        user_id: u.clone(),
                        device_id: d.clone(),
                        delivered: *id,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(users) = state.delivered_in.get(conversation) {
            out.extend(users.iter().map(|(user, delivered)| DeviceCursor {
                user_id: user.clone(),
                device_id: DeviceId::from(""),
                delivered: *delivered,
            }));
        }
        out.sort_by(|a, b| (&a.user_id, &a.device_id).cmp(&(&b.user_id, &b.device_id)));
        Ok(out)
    }

    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<AckMoved> {
        let mut state = self.messages.write();
        let device_before = state
            .devices
            .get(device)
            .and_then(|m| m.get(conversation))
            .copied();
        state.set_device(user, device, conversation, up_to);
        let user_before = state.user(user, conversation).delivered;
        let after = state.update_user(user, conversation, |c| forward(&mut c.delivered, up_to));
        Ok(AckMoved {
            device_before,
            user_before,
            user_after: after.delivered,
        })
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<(Option<MessageId>, bool)> {
        let mut state = self.messages.write();
        let seq = state
            .logs
            .get(conversation)
            .map_or(0, |log| log.seq_at(up_to));
        let before = state.user(user, conversation).read;
        if before.is_some_and(|r| r >= up_to) {
            return Ok((before, false));
        }
        state.update_user(user, conversation, |c| {
            c.read = Some(up_to);
            c.read_seq = c.read_seq.max(seq);
        });
        Ok((before, true))
    }

    async fn start_member(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        head: Head,
    ) -> Result<()> {
        self.messages
            .write()
            .update_user(user, conversation, |cursor| {
                if let Some(last) = head.last_id {
                    forward(&mut cursor.delivered, last);
                    forward(&mut cursor.read, last);
                }
                cursor.read_seq = cursor.read_seq.max(head.seq);
            });
        Ok(())
    }

    async fn start_device(&self, user: &UserId, device: &DeviceId) -> Result<()> {
        let mut state = self.messages.write();
        let starts: Vec<(ConversationId, MessageId)> = state
            .users
            .get(user)
            .map(|m| {
                m.iter()
                    .filter_map(|(c, cursor)| Some((c.clone(), cursor.delivered?)))
                    .collect()
            })
            .unwrap_or_default();
        for (c, at) in starts {
            state.set_device(user, device, &c, at);
        }
        Ok(())
    }

    async fn forget_device(&self, device: &DeviceId) -> Result<()> {
        let mut state = self.messages.write();
        if let Some(cursors) = state.devices.remove(device) {
            for c in cursors.keys() {
                if let Some(m) = state.by_conversation.get_mut(c) {
                    m.remove(device);
                    if m.is_empty() {
                        state.by_conversation.remove(c);
                    }
                }
            }
        }
        Ok(())
    }

    /// In-process: it answers whenever it is asked.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
