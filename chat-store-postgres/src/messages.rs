//! [`MessageStore`] for [`PostgresStore`]: `append` goes through the
//! group-commit batcher (`batcher.rs`, `append.rs`); every other call is
//! one statement (`log.rs`, `cursors.rs`), hence atomic on its own.

use async_trait::async_trait;
use chat_core::store::{AckMoved, Appended, Cursors, DeviceCursor, Intent, MessageStore};
use chat_core::{ConversationId, DeviceId, Head, Message, MessageId, NewMessage, Result, UserId};

use crate::append::count;
use crate::cursors::{
    ACK, CONVERSATION_CURSORS, CURSORS, DEVICE_CURSORS, FORGET_DEVICE, MARK_READ, START_DEVICE,
    START_MEMBER, USER_CURSORS,
};
use crate::ids::{from_db, limit, to_db};
use crate::log::{self, ENTRY, HEAD, HEADS, HISTORY, PURGE, RANGE, REMOVE, Window};
use crate::rows;
use crate::store::PostgresStore;

/// Records an intent (idempotent).
const PUT_INTENT: &str = "INSERT INTO intents (message_id, conversation_id) \
     VALUES ($1::int8, $2::text) ON CONFLICT DO NOTHING";

/// A page of intents by id, within `[$1, $2]`: one range of the primary key.
const INTENTS: &str = "SELECT message_id, conversation_id FROM intents \
     WHERE message_id BETWEEN $1::int8 AND $2::int8 \
     ORDER BY message_id, conversation_id LIMIT $3::int8";

/// Forgets an intent.
const CLEAR_INTENT: &str =
    "DELETE FROM intents WHERE message_id = $1::int8 AND conversation_id = $2::text";

/// A cursor column.
fn id(value: Option<i64>) -> Option<MessageId> {
    value.map(from_db)
}

/// The index of a list element from its (1-based) ordinality.
fn position(n: i64) -> Option<usize> {
    usize::try_from(n.checked_sub(1)?).ok()
}

impl PostgresStore {
    /// Runs [`HISTORY`] or [`RANGE`] over `window`.
    async fn page(
        &self,
        what: &str,
        sql: &str,
        conversation: &ConversationId,
        window: Option<Window>,
        limit_: usize,
    ) -> Result<Vec<Message>> {
        let Some(w) = window else {
            return Ok(Vec::new());
        };
        if limit_ == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.shared.conn(what).await?;
        let rows = conn
            .query(
                what,
                sql,
                &[&conversation.as_str(), &w.low, &w.high, &limit(limit_)],
            )
            .await?;
        rows::entries(&rows)
    }
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn append(&self, entry: NewMessage, expected_version: u64) -> Result<Appended> {
        self.batcher.append(entry, expected_version).await
    }

    async fn append_after(&self, entry: NewMessage, after: Option<MessageId>) -> Result<Appended> {
        crate::append::append_after(&self.shared, entry, after).await
    }

    async fn put_intent(&self, intent: &Intent) -> Result<()> {
        let mut conn = self.shared.conn("put_intent").await?;
        conn.query(
            "put_intent",
            PUT_INTENT,
            &[&to_db(intent.message_id), &intent.conversation_id.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn intents(
        &self,
        after: Option<MessageId>,
        before: MessageId,
        limit_: usize,
    ) -> Result<Vec<Intent>> {
        let Some(w) = Window::between(after, Some(before)) else {
            return Ok(Vec::new());
        };
        let mut conn = self.shared.conn("intents").await?;
        let rows = conn
            .query("intents", INTENTS, &[&w.low, &w.high, &limit(limit_)])
            .await?;
        Ok(rows
            .iter()
            .map(|r| Intent {
                message_id: from_db(r.get(0)),
                conversation_id: ConversationId::from(r.get::<_, &str>(1)),
            })
            .collect())
    }

    async fn clear_intent(&self, intent: &Intent) -> Result<()> {
        let mut conn = self.shared.conn("clear_intent").await?;
        conn.query(
            "clear_intent",
            CLEAR_INTENT,
            &[&to_db(intent.message_id), &intent.conversation_id.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn head(&self, conversation: &ConversationId) -> Result<Head> {
        let mut conn = self.shared.conn("head").await?;
        let rows = conn.query("head", HEAD, &[&conversation.as_str()]).await?;
        Ok(rows.first().map(|r| log::head(r, 0)).unwrap_or_default())
    }

    async fn heads(&self, conversations: &[ConversationId]) -> Result<Vec<Head>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = conversations.iter().map(ConversationId::as_str).collect();
        let mut conn = self.shared.conn("heads").await?;
        let rows = conn.query("heads", HEADS, &[&ids]).await?;
        let mut heads = vec![Head::default(); ids.len()];
        for row in &rows {
            if let Some(slot) = position(row.get(0)).and_then(|i| heads.get_mut(i)) {
                *slot = log::head(row, 1);
            }
        }
        Ok(heads)
    }

    async fn entry(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>> {
        let mut conn = self.shared.conn("entry").await?;
        let rows = conn
            .query("entry", ENTRY, &[&conversation.as_str(), &to_db(id)])
            .await?;
        rows.first().map(|r| rows::entry(r, 0)).transpose()
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        floor: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let window = Window::between(floor, before);
        self.page("history", HISTORY, conversation, window, limit)
            .await
    }

    async fn range(
        &self,
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let window = Window::after_up_to(after, up_to);
        self.page("range", RANGE, conversation, window, limit).await
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        let mut conn = self.shared.conn("remove").await?;
        conn.query("remove", REMOVE, &[&conversation.as_str(), &to_db(id)])
            .await?;
        Ok(())
    }

    async fn purge(&self, conversation: &ConversationId, up_to: MessageId) -> Result<u64> {
        let mut conn = self.shared.conn("purge").await?;
        let rows = conn
            .query("purge", PURGE, &[&conversation.as_str(), &to_db(up_to)])
            .await?;
        Ok(rows.first().map_or(0, |r| count(r.get(0))))
    }

    async fn cursors(
        &self,
        user: &UserId,
        device: Option<&DeviceId>,
        conversation: &ConversationId,
    ) -> Result<Cursors> {
        let mut conn = self.shared.conn("cursors").await?;
        let device = device.map(DeviceId::as_str);
        let rows = conn
            .query(
                "cursors",
                CURSORS,
                &[&user.as_str(), &conversation.as_str(), &device],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| Cursors {
                delivered: id(r.get(0)),
                read: id(r.get(1)),
                read_seq: r.get::<_, Option<i64>>(2).map_or(0, count),
                device_delivered: id(r.get(3)),
            })
            .unwrap_or_default())
    }

    async fn user_cursors(
        &self,
        user: &UserId,
        conversations: &[ConversationId],
    ) -> Result<Vec<Cursors>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = conversations.iter().map(ConversationId::as_str).collect();
        let mut conn = self.shared.conn("user_cursors").await?;
        let rows = conn
            .query("user_cursors", USER_CURSORS, &[&user.as_str(), &ids])
            .await?;
        let mut cursors = vec![Cursors::default(); ids.len()];
        for row in &rows {
            if let Some(slot) = position(row.get(0)).and_then(|i| cursors.get_mut(i)) {
                *slot = Cursors {
                    device_delivered: None,
                    delivered: id(row.get(1)),
                    read: id(row.get(2)),
                    read_seq: count(row.get(3)),
                };
            }
        }
        Ok(cursors)
    }

    async fn device_cursors(&self, device: &DeviceId) -> Result<Vec<(ConversationId, MessageId)>> {
        let mut conn = self.shared.conn("device_cursors").await?;
        let rows = conn
            .query("device_cursors", DEVICE_CURSORS, &[&device.as_str()])
            .await?;
        Ok(rows
            .iter()
            .map(|r| (ConversationId::from(r.get::<_, &str>(0)), from_db(r.get(1))))
            .collect())
    }

    async fn conversation_cursors(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<DeviceCursor>> {
        let mut conn = self.shared.conn("conversation_cursors").await?;
        let rows = conn
            .query(
                "conversation_cursors",
                CONVERSATION_CURSORS,
                &[&conversation.as_str()],
            )
            .await?;
        let mut out: Vec<DeviceCursor> = rows
            .iter()
            .map(|r| DeviceCursor {
                user_id: UserId::from(r.get::<_, &str>(0)),
                device_id: DeviceId::from(r.get::<_, &str>(1)),
                delivered: from_db(r.get(2)),
            })
            .collect();
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
        let mut conn = self.shared.conn("ack").await?;
        let rows = conn
            .query(
                "ack",
                ACK,
                &[
                    &user.as_str(),
                    &device.as_str(),
                    &conversation.as_str(),
                    &to_db(up_to),
                ],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| AckMoved {
                device_before: id(r.get(0)),
                user_before: id(r.get(1)),
                user_after: id(r.get(2)),
            })
            .unwrap_or_default())
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<(Option<MessageId>, bool)> {
        let mut conn = self.shared.conn("mark_read").await?;
        let rows = conn
            .query(
                "mark_read",
                MARK_READ,
                &[&user.as_str(), &conversation.as_str(), &to_db(up_to)],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| (id(r.get(0)), r.get(1)))
            .unwrap_or((None, false)))
    }

    async fn start_member(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        head: Head,
    ) -> Result<()> {
        let seq = i64::try_from(head.seq).unwrap_or(i64::MAX);
        let mut conn = self.shared.conn("start_member").await?;
        conn.query(
            "start_member",
            START_MEMBER,
            &[
                &user.as_str(),
                &conversation.as_str(),
                &head.last_id.map(to_db),
                &seq,
            ],
        )
        .await?;
        Ok(())
    }

    async fn start_device(&self, user: &UserId, device: &DeviceId) -> Result<()> {
        let mut conn = self.shared.conn("start_device").await?;
        conn.query(
            "start_device",
            START_DEVICE,
            &[&user.as_str(), &device.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn forget_device(&self, device: &DeviceId) -> Result<()> {
        let mut conn = self.shared.conn("forget_device").await?;
        conn.query("forget_device", FORGET_DEVICE, &[&device.as_str()])
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.shared.ping().await
    }
}
