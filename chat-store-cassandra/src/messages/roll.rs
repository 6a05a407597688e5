//! Writing out the newest entry: after the append's transaction stored it
//! in the head, its rows go where readers and other keys find them.
//!
//! The transaction is the commit point; these writes follow it, each
//! idempotent and dated by the entry's id ([`write_time`]), so they can be
//! repeated by anyone in any order:
//! - the change to its target (an edit, delete or reaction),
//! - the sender's read cursor, and its delivered cursor and the sending
//!   device's cursor when the append decided that they move,
//! - its dedup key,
//! - last, its own row in `messages`: once that row is there, all of the
//!   above is too.
//!
//! The appender does them before it answers. If it dies first, the entry
//! stays in the head (`p_*`): readers show it from there, and the next
//! append to the conversation finishes the writes before its own
//! transaction can replace the head ([`CassandraStore::finish_pending`]).
//! So when the head moves past an entry, that entry's rows are written.

use std::collections::HashMap;

use chat_core::{ConversationId, MessageId, MessageKind, Result};
use futures::FutureExt;
use futures::future::try_join_all;
use parking_lot::Mutex;
use scylla::value::MaybeUnset;

use super::head::{Pending, State};
use crate::codec::{count_to_cql, id_to_cql, kind_to_cql, write_time};
use crate::store::CassandraStore;

/// Conversations remembered at most; the map is emptied when it is full
/// (forgetting costs one read per conversation, at its next append).
const REMEMBERED: usize = 100_000;

/// The newest entry of each conversation whose rows this process wrote,
/// so that its next append there skips reading whether they are written.
#[derive(Debug, Default)]
pub(crate) struct RolledForward {
    newest: Mutex<HashMap<ConversationId, MessageId>>,
}

impl RolledForward {
    fn knows(&self, conversation: &ConversationId, id: MessageId) -> bool {
        self.newest.lock().get(conversation) == Some(&id)
    }

    fn remember(&self, conversation: &ConversationId, id: MessageId) {
        let mut newest = self.newest.lock();
        if newest.len() >= REMEMBERED && !newest.contains_key(conversation) {
            newest.clear();
        }
        newest.insert(conversation.clone(), id);
    }
}

impl CassandraStore {
    /// Makes sure the newest entry of `state` is written out before the
    /// head moves past it (see the module docs). True when this call wrote
    /// it (its writer had stopped).
    pub(crate) async fn finish_pending(
        &self,
        conversation: &ConversationId,
        state: &State,
    ) -> Result<bool> {
        let Some(p) = state.visible_pending() else {
            return Ok(false);
        };
        let id = p.message.message_id;
        if self.rolled.knows(conversation, id) {
            return Ok(false);
        }
        let rows: Vec<(Option<String>,)> = self
            .rows(
                &self.st.entry_written,
                (conversation.as_str(), p.bucket, id_to_cql(id)),
                "read newest entry",
            )
            .await?;
        if rows.iter().any(|(sender,)| sender.is_some()) {
            self.rolled.remember(conversation, id);
            return Ok(false);
        }
        tracing::info!(
            %conversation, %id,
            "cassandra: writing out an entry whose appender stopped after committing it"
        );
        self.roll_forward(p).await?;
        Ok(true)
    }

    /// Writes out the newest entry `p` (see the module docs).
    pub(crate) async fn roll_forward(&self, p: &Pending) -> Result<()> {
        let m = &p.message;
        let conversation = m.conversation_id.as_str();
        let sender = m.sender_id.as_str();
        let id = id_to_cql(m.message_id);
        let at = write_time(m.message_id);
        let seq = count_to_cql(p.seq);
        let mut writes = Vec::new();
        if p.apply
            && let (Some(target), Some(bucket)) = (m.ref_id, p.ref_bucket)
        {
            let target = id_to_cql(target);
            let key = (conversation, bucket, target);
            writes.push(match m.kind {
                MessageKind::Edit => self
                    .run(
                        &self.st.apply_edit,
                        (at, m.body.as_str(), key.0, key.1, key.2),
                        "apply edit",
                    )
                    .boxed(),
                MessageKind::Delete => self
                    .run(
                        &self.st.apply_delete,
                        (at, key.0, key.1, key.2),
                        "apply delete",
                    )
                    .boxed(),
                MessageKind::Reaction if m.body.is_empty() => self
                    .run(
                        &self.st.remove_reaction,
                        (sender, at, key.0, key.1, key.2),
                        "remove reaction",
                    )
                    .boxed(),
                _ => self
                    .run(
                        &self.st.set_reaction,
                        (at, sender, m.body.as_str(), key.0, key.1, key.2),
                        "apply reaction",
                    )
                    .boxed(),
            });
        }
        writes.push(
            self.run(
                &self.st.set_user_read,
                (at, id, seq, sender, conversation),
                "move sender's read cursor",
            )
            .boxed(),
        );
        if p.move_delivered {
            writes.push(
                self.run(
                    &self.st.set_user_delivered,
                    (at, id, sender, conversation),
                    "move sender's delivered cursor",
                )
                .boxed(),
            );
            writes.push(
                self.run(
                    &self.st.set_conversation_cursor,
                    (at, id, conversation, sender, ""),
                    "move sender's delivered cursor",
                )
                .boxed(),
            );
        }
        if let Some(device) = p.device.as_ref().filter(|_| p.move_device) {
            writes.push(
                self.run(
                    &self.st.set_device_cursor,
                    (at, sender, id, device.as_str(), conversation),
                    "move device cursor",
                )
                .boxed(),
            );
            writes.push(
                self.run(
                    &self.st.set_conversation_cursor,
                    (at, id, conversation, sender, device.as_str()),
                    "move device cursor",
                )
                .boxed(),
            );
        }
        if let Some(key) = &p.client_msg_id {
            writes.push(
                self.run(
                    &self.st.insert_dedup,
                    (sender, key.as_str(), conversation, id, at),
                    "write dedup key",
                )
                .boxed(),
            );
        }
        try_join_all(writes).await?;
        let optional = |id: Option<MessageId>| match id {
            Some(id) => MaybeUnset::Set(id_to_cql(id)),
            None => MaybeUnset::Unset,
        };
        // Last: the row that says everything above is written.
        self.run(
            &self.st.insert_entry,
            (
                conversation,
                p.bucket,
                id,
                sender,
                kind_to_cql(m.kind),
                m.body.as_str(),
                m.ts,
                optional(m.ref_id),
                optional(m.in_reply_to),
                seq,
                match &p.client_msg_id {
                    Some(key) => MaybeUnset::Set(key.as_str()),
                    None => MaybeUnset::Unset,
                },
                at,
            ),
            "write entry",
        )
        .await?;
        self.rolled.remember(&m.conversation_id, m.message_id);
        Ok(())
    }
}
