//! Pending deliveries, acks, cursors, `clear_pending` and until-delivered
//! purges.

use std::collections::{BTreeMap, HashSet};

use chat_core::store::{Acked, Cursors};
use chat_core::{ConversationId, Error, Message, MessageId, Result, UserId};
use futures::{StreamExt, TryStreamExt, stream};

use crate::codec::{Lwt, above, bucket_to_cql, id_from_cql, id_to_cql, limit_to_cql};
use crate::residue;
use crate::store::{BoxedRow, CassandraStore, row};

/// Point reads or purges run at once for one call: enough to hide round
/// trips, few enough not to flood the coordinator.
const PARALLEL: usize = 16;

/// Pending deliveries deleted per logged batch (three rows each).
const DELETES_PER_BATCH: usize = 100;

/// Compare-and-set rounds before a cursor update gives up: each lost round
/// means another writer moved the cursor meanwhile.
const CURSOR_ROUNDS: usize = 16;

/// The two cursors of a (user, conversation).
#[derive(Clone, Copy)]
enum Cursor {
    Delivered,
    Read,
}

impl CassandraStore {
    /// See [`chat_core::store::MessageStore::pending`]. Each pending row
    /// points at its message, read by partition key (token-aware, in
    /// parallel). Rows whose message is missing are skipped: an append in
    /// flight (its message row comes last) or the residue of one that
    /// failed, which is deleted here (see `residue`).
    pub(crate) async fn pending_page(
        &self,
        user: &UserId,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let mut lower = match after {
            None => i64::MIN,
            Some(after) => match above(after) {
                Some(lower) => lower,
                None => return Ok(Vec::new()),
            },
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let want = limit - out.len();
            let rows: Vec<(i64, String)> = self
                .paged(
                    &self.st.pending_page,
                    (user.as_str(), lower, limit_to_cql(want)),
                    want,
                    "read pending",
                )
                .await?;
            let Some(&(last, _)) = rows.last() else { break };
            let full = rows.len() == want;
            let now = residue::now_ms();
            let found: Vec<Option<Message>> = stream::iter(rows)
                .map(|(id, conversation)| async move {
                    let (conversation, id) = (ConversationId::from(conversation), id_from_cql(id));
                    let stored = self.stored(&conversation, id).await?;
                    if stored.is_none() && residue::is_residue(id, now) {
                        self.clean_residue(user, &conversation, id).await;
                    }
                    Ok::<_, Error>(stored.map(|(m, _)| m))
                })
                .buffered(PARALLEL)
                .try_collect()
                .await?;
            out.extend(found.into_iter().flatten());
            match (full, above(id_from_cql(last))) {
                (true, Some(next)) => lower = next,
                _ => break,
            }
        }
        Ok(out)
    }

    /// See [`chat_core::store::MessageStore::ack`].
    pub(crate) async fn ack_up_to(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<Vec<Acked>> {
        let taken = self.take_pending(user, conversation, up_to).await?;
        self.advance(Cursor::Delivered, user, conversation, up_to)
            .await?;
        Ok(taken
            .into_iter()
            .map(|(message_id, sender)| Acked {
                message_id,
                sender_id: UserId::from(sender),
            })
            .collect())
    }

    /// See [`chat_core::store::MessageStore::clear_pending`].
    pub(crate) async fn clear(
        &self,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<Vec<MessageId>> {
        let taken = self
            .take_pending(user, conversation, MessageId(u64::MAX))
            .await?;
        Ok(taken.into_iter().map(|(id, _)| id).collect())
    }

    /// Deletes `user`'s pending deliveries in `conversation` up to `up_to`
    /// and returns them with their senders. Exactly the rows read are
    /// deleted (no range delete), so a delivery written meanwhile with a
    /// lower id stays pending in all three tables alike. Each message's
    /// three rows go in the same logged batch. Rows whose message is not
    /// stored are not taken: those of an append in flight stay pending
    /// (the user cannot have received that message yet), residue is
    /// cleaned (see `residue`).
    async fn take_pending(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<Vec<(MessageId, String)>> {
        let mut rows: Vec<(i64, String)> = self
            .paged(
                &self.st.pending_in_conversation,
                (user.as_str(), conversation.as_str(), id_to_cql(up_to)),
                usize::MAX,
                "read pending of a conversation",
            )
            .await?;
        let stored = self
            .existing(conversation, rows.iter().map(|&(id, _)| id_from_cql(id)))
            .await?;
        let now = residue::now_ms();
        let mut missing = Vec::new();
        rows.retain(|(id, _)| {
            let id = id_from_cql(*id);
            let keep = stored.contains(&id);
            if !keep && residue::is_residue(id, now) {
                missing.push(id);
            }
            keep
        });
        for id in missing {
            self.clean_residue(user, conversation, id).await;
        }
        let (user_s, conversation_s) = (user.to_string(), conversation.to_string());
        for chunk in rows.chunks(DELETES_PER_BATCH) {
            let mut statements: Vec<(_, BoxedRow)> = Vec::with_capacity(3 * chunk.len());
            for &(id, _) in chunk {
                statements.push((
                    &self.st.delete_pending_user,
                    row((user_s.clone(), id, conversation_s.clone())),
                ));
                statements.push((
                    &self.st.delete_pending_conversation,
                    row((user_s.clone(), conversation_s.clone(), id)),
                ));
                statements.push((
                    &self.st.delete_pending_message,
                    row((conversation_s.clone(), id, user_s.clone())),
                ));
            }
            self.logged_batch(statements, "delete pending").await?;
        }
        Ok(rows
            .into_iter()
            .map(|(id, sender)| (id_from_cql(id), sender))
            .collect())
    }

    /// Which of `ids` (of `conversation`) have their message stored: one
    /// `IN` read per bucket and [`DELETES_PER_BATCH`] ids.
    async fn existing(
        &self,
        conversation: &ConversationId,
        ids: impl Iterator<Item = MessageId>,
    ) -> Result<HashSet<MessageId>> {
        let mut by_bucket: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
        for id in ids {
            by_bucket
                .entry(id.bucket(self.bucket_ms))
                .or_default()
                .push(id_to_cql(id));
        }
        let mut found = HashSet::new();
        for (bucket, ids) in by_bucket {
            for chunk in ids.chunks(DELETES_PER_BATCH) {
                let rows: Vec<(i64,)> = self
                    .rows(
                        &self.st.existing_messages,
                        (conversation.as_str(), bucket_to_cql(bucket), chunk),
                        "read messages of pending rows",
                    )
                    .await?;
                found.extend(rows.into_iter().map(|(id,)| id_from_cql(id)));
            }
        }
        Ok(found)
    }

    /// See [`chat_core::store::MessageStore::cursors`].
    pub(crate) async fn cursor_values(
        &self,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<Cursors> {
        let rows: Vec<(Option<i64>, Option<i64>)> = self
            .rows(
                &self.st.select_cursors,
                (user.as_str(), conversation.as_str()),
                "read cursors",
            )
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .map(|(delivered, read)| Cursors {
                delivered: delivered.map(id_from_cql),
                read: read.map(id_from_cql),
            })
            .unwrap_or_default())
    }

    /// See [`chat_core::store::MessageStore::mark_read`].
    pub(crate) async fn mark_read_up_to(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<bool> {
        self.advance(Cursor::Read, user, conversation, up_to).await
    }

    /// Raises a cursor to `to` unless it is there or beyond already, with
    /// compare-and-set (Paxos): two racing acks cannot move it backwards.
    /// Returns whether it moved.
    async fn advance(
        &self,
        cursor: Cursor,
        user: &UserId,
        conversation: &ConversationId,
        to: MessageId,
    ) -> Result<bool> {
        let (raise, start, column) = match cursor {
            Cursor::Delivered => (
                &self.st.raise_delivered,
                &self.st.start_delivered,
                "delivered",
            ),
            Cursor::Read => (&self.st.raise_read, &self.st.start_read, "read"),
        };
        let to = id_to_cql(to);
        let key = (user.as_str(), conversation.as_str());
        for _ in 0..CURSOR_ROUNDS {
            let raised = self
                .run(raise, (to, key.0, key.1, to), "raise cursor")
                .await?;
            let raised = Lwt::from_result(raised, "raise cursor")?;
            if raised.applied {
                return Ok(true);
            }
            if let Some(current) = raised.bigint(column) {
                if current >= to {
                    return Ok(false);
                }
                // Lowered in between? Cursors never go down: try again.
                continue;
            }
            // No cursor yet: set the first one, unless a racer just did.
            let started = self.run(start, (to, key.0, key.1), "start cursor").await?;
            if Lwt::from_result(started, "start cursor")?.applied {
                return Ok(true);
            }
        }
        Err(Error::unavailable_msg(format!(
            "cassandra: {column} cursor of {user} in {conversation} kept changing"
        )))
    }

    /// See [`chat_core::store::MessageStore::purge_delivered`]: each id is
    /// deleted only if its `pending_by_message` partition is empty. The
    /// message is read first: a stored message has all its pending rows
    /// written (they precede it), so an empty partition then means
    /// delivered, not "not written yet".
    pub(crate) async fn purge(
        &self,
        conversation: &ConversationId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>> {
        let mut seen = HashSet::new();
        let unique: Vec<MessageId> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        let purged: Vec<Option<MessageId>> = stream::iter(unique)
            .map(|id| async move {
                let Some((message, key)) = self.stored(conversation, id).await? else {
                    return Ok(None);
                };
                if !self.pending_users(conversation, id).await?.is_empty() {
                    return Ok(None);
                }
                self.delete_stored(&message, key.as_deref()).await?;
                Ok::<_, Error>(Some(id))
            })
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        Ok(purged.into_iter().flatten().collect())
    }
}
