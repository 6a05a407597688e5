//! [`MessageStore`] for [`PostgresStore`]. Every call is one statement, so
//! each is atomic on its own; `append` goes through the group-commit
//! batcher (see `batcher.rs` and `append.rs`).

use async_trait::async_trait;
use chat_core::store::{Acked, Appended, Cursors, MessageStore};
use chat_core::{ConversationId, Message, MessageId, NewMessage, Result, UserId};

use crate::ids::{from_db, limit, to_db};
use crate::rows;
use crate::store::PostgresStore;

/// Deletes a message with its dedup key (only if the key still names it)
/// and its pending deliveries.
const REMOVE: &str = r#"
WITH gone AS (
    DELETE FROM messages WHERE conversation_id = $1::text AND message_id = $2::int8
    RETURNING sender_id, client_msg_id
), key AS (
    DELETE FROM dedup d USING gone g
    WHERE d.sender_id = g.sender_id AND d.client_msg_id = g.client_msg_id
      AND d.conversation_id = $1::text AND d.message_id = $2::int8
), deliveries AS (
    DELETE FROM pending WHERE conversation_id = $1::text AND message_id = $2::int8
)
SELECT count(*) FROM gone
"#;

/// The history page queries, with and without `before` (two statements so
/// that each has one plan that uses the primary key).
pub(crate) const HISTORY: &str = "SELECT m.conversation_id, m.message_id, m.sender_id, m.body, m.ts \
     FROM messages m WHERE m.conversation_id = $1::text \
     ORDER BY m.message_id DESC LIMIT $2::int8";
pub(crate) const HISTORY_BEFORE: &str = "SELECT m.conversation_id, m.message_id, m.sender_id, m.body, m.ts \
     FROM messages m WHERE m.conversation_id = $1::text AND m.message_id < $2::int8 \
     ORDER BY m.message_id DESC LIMIT $3::int8";

/// A user's pending messages after a cursor, oldest first (as the reference
/// store: by id, then conversation).
pub(crate) const PENDING: &str = "SELECT m.conversation_id, m.message_id, m.sender_id, m.body, m.ts \
     FROM pending p JOIN messages m \
       ON m.conversation_id = p.conversation_id AND m.message_id = p.message_id \
     WHERE p.user_id = $1::text AND p.message_id >= $2::int8 \
     ORDER BY p.message_id, p.conversation_id LIMIT $3::int8";

/// Moves the delivered cursor (never back) and drops the deliveries it covers.
const ACK: &str = r#"
WITH cursor AS (
    INSERT INTO cursors (user_id, conversation_id, delivered) VALUES ($1::text, $2::text, $3::int8)
    ON CONFLICT (user_id, conversation_id)
    DO UPDATE SET delivered = GREATEST(cursors.delivered, EXCLUDED.delivered)
), gone AS (
    DELETE FROM pending
    WHERE user_id = $1::text AND conversation_id = $2::text AND message_id <= $3::int8
    RETURNING message_id, sender_id
)
SELECT message_id, sender_id FROM gone ORDER BY message_id
"#;

/// Moves the read cursor forward; a row comes back only when it moved.
const MARK_READ: &str = r#"
INSERT INTO cursors (user_id, conversation_id, read) VALUES ($1::text, $2::text, $3::int8)
ON CONFLICT (user_id, conversation_id)
DO UPDATE SET read = EXCLUDED.read
WHERE cursors.read IS NULL OR cursors.read < EXCLUDED.read
RETURNING 1
"#;

const CURSORS: &str =
    "SELECT delivered, read FROM cursors WHERE user_id = $1::text AND conversation_id = $2::text";

const CLEAR_PENDING: &str = "DELETE FROM pending WHERE user_id = $1::text AND conversation_id = $2::text \
     RETURNING message_id";

/// Deletes those of the ids that nobody has pending, with their dedup keys.
const PURGE: &str = r#"
WITH gone AS (
    DELETE FROM messages m
    WHERE m.conversation_id = $1::text AND m.message_id = ANY($2::int8[])
      AND NOT EXISTS (
          SELECT 1 FROM pending p
          WHERE p.conversation_id = $1::text AND p.message_id = m.message_id
      )
    RETURNING message_id, sender_id, client_msg_id
), keys AS (
    DELETE FROM dedup d USING gone g
    WHERE d.sender_id = g.sender_id AND d.client_msg_id = g.client_msg_id
      AND d.conversation_id = $1::text AND d.message_id = g.message_id
)
SELECT message_id FROM gone ORDER BY message_id
"#;

const LAST_MESSAGE: &str = "SELECT message_id FROM messages WHERE conversation_id = $1::text \
     ORDER BY message_id DESC LIMIT 1";

/// Messages from others after the read cursor (all of them without one).
const UNREAD: &str = r#"
SELECT count(*) FROM messages m
LEFT JOIN cursors c ON c.user_id = $1::text AND c.conversation_id = $2::text
WHERE m.conversation_id = $2::text AND m.sender_id <> $1::text
  AND (c.read IS NULL OR m.message_id > c.read)
"#;

#[async_trait]
impl MessageStore for PostgresStore {
    async fn append(&self, msg: NewMessage, recipients: &[UserId]) -> Result<Appended> {
        self.batcher.append(msg, recipients).await
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        let mut conn = self.shared.conn("remove").await?;
        conn.query("remove", REMOVE, &[&conversation.as_str(), &to_db(id)])
            .await?;
        Ok(())
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit_: usize,
    ) -> Result<Vec<Message>> {
        let mut conn = self.shared.conn("history").await?;
        let rows = match before {
            Some(before) => {
                conn.query(
                    "history",
                    HISTORY_BEFORE,
                    &[&conversation.as_str(), &to_db(before), &limit(limit_)],
                )
                .await?
            }
            None => {
                conn.query(
                    "history",
                    HISTORY,
                    &[&conversation.as_str(), &limit(limit_)],
                )
                .await?
            }
        };
        Ok(rows.iter().map(|r| rows::message(r, 0)).collect())
    }

    async fn pending(
        &self,
        user: &UserId,
        after: Option<MessageId>,
        limit_: usize,
    ) -> Result<Vec<Message>> {
        // `>= after + 1` rather than `> after`, so one statement covers
        // "no cursor" (from id 0) too.
        let from = match after {
            Some(after) => match after.get().checked_add(1) {
                Some(next) => MessageId(next),
                None => return Ok(Vec::new()),
            },
            None => MessageId(0),
        };
        let mut conn = self.shared.conn("pending").await?;
        let rows = conn
            .query(
                "pending",
                PENDING,
                &[&user.as_str(), &to_db(from), &limit(limit_)],
            )
            .await?;
        Ok(rows.iter().map(|r| rows::message(r, 0)).collect())
    }

    async fn ack(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<Vec<Acked>> {
        let mut conn = self.shared.conn("ack").await?;
        let rows = conn
            .query(
                "ack",
                ACK,
                &[&user.as_str(), &conversation.as_str(), &to_db(up_to)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Acked {
                message_id: from_db(r.get(0)),
                sender_id: UserId::from(r.get::<_, &str>(1)),
            })
            .collect())
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<bool> {
        let mut conn = self.shared.conn("mark_read").await?;
        let rows = conn
            .query(
                "mark_read",
                MARK_READ,
                &[&user.as_str(), &conversation.as_str(), &to_db(up_to)],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn cursors(&self, user: &UserId, conversation: &ConversationId) -> Result<Cursors> {
        let mut conn = self.shared.conn("cursors").await?;
        let rows = conn
            .query(
                "cursors",
                CURSORS,
                &[&user.as_str(), &conversation.as_str()],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| Cursors {
                delivered: r.get::<_, Option<i64>>(0).map(from_db),
                read: r.get::<_, Option<i64>>(1).map(from_db),
            })
            .unwrap_or_default())
    }

    async fn clear_pending(
        &self,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<Vec<MessageId>> {
        let mut conn = self.shared.conn("clear_pending").await?;
        let rows = conn
            .query(
                "clear_pending",
                CLEAR_PENDING,
                &[&user.as_str(), &conversation.as_str()],
            )
            .await?;
        let mut ids: Vec<MessageId> = rows.iter().map(|r| from_db(r.get(0))).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn purge_delivered(
        &self,
        conversation: &ConversationId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let db_ids: Vec<i64> = ids.iter().copied().map(to_db).collect();
        let mut conn = self.shared.conn("purge_delivered").await?;
        let rows = conn
            .query("purge_delivered", PURGE, &[&conversation.as_str(), &db_ids])
            .await?;
        Ok(rows.iter().map(|r| from_db(r.get(0))).collect())
    }

    async fn last_message_id(&self, conversation: &ConversationId) -> Result<Option<MessageId>> {
        let mut conn = self.shared.conn("last_message_id").await?;
        let rows = conn
            .query("last_message_id", LAST_MESSAGE, &[&conversation.as_str()])
            .await?;
        Ok(rows.first().map(|r| from_db(r.get(0))))
    }

    async fn unread(&self, user: &UserId, conversation: &ConversationId) -> Result<u64> {
        let mut conn = self.shared.conn("unread").await?;
        let rows = conn
            .query("unread", UNREAD, &[&user.as_str(), &conversation.as_str()])
            .await?;
        let count: i64 = rows.first().map(|r| r.get(0)).unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn ping(&self) -> Result<()> {
        self.shared.ping().await
    }
}
