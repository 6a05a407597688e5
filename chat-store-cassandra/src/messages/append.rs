//! `append`: one lightweight transaction on the conversation's head
//! partition is the commit point of the chain (see the crate docs,
//! "Append").

use chat_core::store::Appended;
use chat_core::{
    ConversationId, Error, Message, MessageId, MessageKind, NewMessage, Result, UserId,
};

use super::head::{AppendValues, Pending, State, next_state};
use crate::codec::Lwt;
use crate::store::{CassandraStore, row};

/// Transactions one append may lose to others (each loss means another
/// entry was appended meanwhile) before it gives up with `Unavailable`.
const MAX_ATTEMPTS: usize = 32;

/// Whether `entry` (an edit, delete or reaction) changes `target`, as
/// [`Message::apply`] decides: an edit or reaction of a deleted message
/// does not. Decided when the entry is appended, in chain order, and
/// stored with it, so that writing it out later cannot decide otherwise.
fn changes(entry: &Message, target: &Message) -> bool {
    match entry.kind {
        MessageKind::Delete => true,
        MessageKind::Edit | MessageKind::Reaction => !target.deleted,
        MessageKind::Text | MessageKind::GroupEvent => false,
    }
}

/// What an append is conditional on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Condition {
    /// `MessageStore::append`: an id above the head, at this version.
    Above(u64),
    /// `MessageStore::append_after`: the head's last id is this one.
    After(Option<MessageId>),
}

impl CassandraStore {
    /// See [`chat_core::store::MessageStore::append`] and
    /// [`chat_core::store::MessageStore::append_after`].
    pub(crate) async fn append_entry(
        &self,
        entry: NewMessage,
        condition: Condition,
    ) -> Result<Appended> {
        let NewMessage {
            message,
            client_msg_id,
            device,
        } = entry;
        let conversation = message.conversation_id.clone();
        let id = message.message_id;
        let conflicts = |s: &State| match condition {
            Condition::Above(version) => {
                s.head.last_id.is_some_and(|last| id <= last) || s.head.version != version
            }
            Condition::After(after) => s.head.last_id != after || after.is_some_and(|a| id <= a),
        };
        let sender = &message.sender_id;
        for _ in 0..MAX_ATTEMPTS {
            let (state, mut cursors) = futures::try_join!(
                self.state(&conversation),
                self.read_cursors(sender, device.as_ref(), &conversation),
            )?;
            // The head may only move past an entry whose rows are written;
            // that also makes the dedup keys of every older entry readable.
            if self.finish_pending(&conversation, &state).await? {
                // Writing it out may have moved the sender's cursors.
                cursors = self
                    .read_cursors(sender, device.as_ref(), &conversation)
                    .await?;
            }
            if let Some(key) = &client_msg_id
                && let Some(first) = self.duplicate_of(&state, &message.sender_id, key).await?
            {
                return Ok(Appended {
                    message: first,
                    prev: None,
                    duplicate: true,
                });
            }
            if conflicts(&state) {
                // A plain read may lag a transaction in flight: answer a
                // conflict only with a head read at the serial level.
                let confirmed = self.state_serial(&conversation).await?;
                if conflicts(&confirmed) {
                    return Err(Error::Conflict {
                        head: confirmed.head,
                    });
                }
                continue;
            }
            let (ref_bucket, apply) = match message.ref_id {
                _ if !message.kind.has_target() => (None, false),
                None => return Err(Error::not_found("an event without its target")),
                Some(target) => match self.entry_in(&conversation, target, &state).await? {
                    Some((stored, bucket)) => (Some(bucket), changes(&message, &stored.message)),
                    None => {
                        return Err(Error::not_found(format!(
                            "message {target} in {conversation}"
                        )));
                    }
                },
            };
            // A delivered cursor moves to the entry only if it covered the
            // entry before (`prev`): one behind on others' entries must not
            // skip them. Cursors never move back, so what was read holds.
            let prev = state.head.last_id;
            let covers = |cursor: Option<chat_core::MessageId>| {
                prev.is_none_or(|p| cursor.is_some_and(|c| c >= p))
            };
            let pending = Pending {
                message: message.clone(),
                seq: 0,
                client_msg_id: client_msg_id.clone(),
                device: device.clone(),
                bucket: 0,
                ref_bucket,
                apply,
                move_delivered: covers(cursors.delivered),
                move_device: device.is_some() && covers(cursors.device_delivered),
                removed: false,
            };
            let (next, new_bucket) = next_state(&state, &self.buckets, pending);
            let values = AppendValues::new(&state, &next);
            let result = if new_bucket {
                let start = next.open.map(|b| b.start);
                self.conditional_batch(
                    vec![
                        (&self.st.append, row(values)),
                        (
                            &self.st.insert_bucket,
                            row((conversation.to_string(), start)),
                        ),
                    ],
                    "append",
                )
                .await?
            } else {
                self.run(&self.st.append, values, "append").await?
            };
            if !Lwt::from_result(result, "append")?.applied {
                // Another entry went first: read the head again.
                continue;
            }
            if let Some(p) = &next.pending {
                self.roll_forward(p).await?;
            }
            return Ok(Appended {
                message,
                prev: state.head.last_id,
                duplicate: false,
            });
        }
        Err(Error::unavailable_msg(format!(
            "cassandra: append to {conversation} lost {MAX_ATTEMPTS} times to other appends"
        )))
    }

    /// The entry that `sender` already appended with `key`, as it is now:
    /// the conversation's newest entry (not written out yet, or just), or
    /// the one the dedup table names, if it is still stored.
    async fn duplicate_of(
        &self,
        state: &State,
        sender: &UserId,
        key: &str,
    ) -> Result<Option<Message>> {
        if let Some(p) = state.visible_pending()
            && p.message.sender_id == *sender
            && p.client_msg_id.as_deref() == Some(key)
        {
            return Ok(Some(p.message.clone()));
        }
        let rows: Vec<(String, i64)> = self
            .rows(&self.st.dedup, (sender.as_str(), key), "read dedup key")
            .await?;
        let Some((conversation, id)) = rows.into_iter().next() else {
            return Ok(None);
        };
        let conversation = ConversationId::from(conversation);
        let id = crate::codec::id_from_cql(id);
        let first = if state
            .pending
            .as_ref()
            .is_some_and(|p| p.message.conversation_id == conversation)
        {
            self.entry_in(&conversation, id, state).await?
        } else {
            let other = self.state(&conversation).await?;
            self.entry_in(&conversation, id, &other).await?
        };
        // A key whose entry was removed or purged is free again.
        Ok(first
            .filter(|(stored, _)| stored.message.sender_id == *sender)
            .map(|(stored, _)| stored.message))
    }
}
