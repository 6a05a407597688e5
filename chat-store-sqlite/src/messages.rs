//! [`MessageStore`] for [`SqliteStore`]: each conversation's log and head
//! (`entries`, `heads`), with the cursor work in `cursors.rs`. Writes run
//! on the writer (one batch, one transaction), reads on the readers.

use async_trait::async_trait;
use chat_core::store::{AckMoved, Appended, Cursors, DeviceCursor, Intent, MessageStore};
use chat_core::{
    ConversationId, DeviceId, Error, Head, Message, MessageId, MessageKind, NewMessage, Result,
    UserId,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::cursors;
use crate::error::SqliteError;
use crate::ids::{Window, limit, opt_from_db, opt_to_db, to_db};
use crate::rows::{self, entry_columns};
use crate::store::SqliteStore;

/// A head as stored, with how far retention purged.
#[derive(Clone, Copy, Debug, Default)]
struct LogHead {
    head: Head,
    purged_up_to: Option<MessageId>,
    purged_seq: u64,
}

fn load_head(conn: &Connection, conversation: &ConversationId) -> rusqlite::Result<LogHead> {
    Ok(conn
        .prepare_cached(
            "SELECT last_id, seq, version, purged_up_to, purged_seq FROM heads \
             WHERE conversation_id = ?1",
        )?
        .query_row([conversation.as_str()], |r| {
            Ok(LogHead {
                head: Head {
                    last_id: opt_from_db(r.get(0)?),
                    seq: r.get::<_, i64>(1)? as u64,
                    version: r.get::<_, i64>(2)? as u64,
                },
                purged_up_to: opt_from_db(r.get(3)?),
                purged_seq: r.get::<_, i64>(4)? as u64,
            })
        })
        .optional()?
        .unwrap_or_default())
}

fn load_entry(
    conn: &Connection,
    conversation: &ConversationId,
    id: MessageId,
) -> rusqlite::Result<Option<Message>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        entry_columns!(),
        " FROM entries WHERE conversation_id = ?1 AND message_id = ?2"
    ))?
    .query_row(params![conversation.as_str(), to_db(id)], rows::message)
    .optional()
}

/// The seq of the newest text entry at or below `up_to` (what a read
/// cursor there has read): the head's when `up_to` is at or past it, else
/// the `seq` column of the newest entry at or below it (every entry keeps
/// the count of text entries up to it), or what retention purged when that
/// is more.
pub(crate) fn seq_at(
    conn: &Connection,
    conversation: &ConversationId,
    up_to: MessageId,
) -> rusqlite::Result<u64> {
    let log = load_head(conn, conversation)?;
    if log.head.last_id.is_some_and(|last| up_to >= last) {
        return Ok(log.head.seq);
    }
    let stored: Option<i64> = conn
        .prepare_cached(
            "SELECT seq FROM entries WHERE conversation_id = ?1 AND message_id <= ?2 \
             ORDER BY message_id DESC LIMIT 1",
        )?
        .query_row(params![conversation.as_str(), to_db(up_to)], |r| r.get(0))
        .optional()?;
    let purged = if log.purged_up_to.is_some() {
        log.purged_seq
    } else {
        0
    };
    Ok((stored.unwrap_or(0) as u64).max(purged))
}

/// What an append is conditional on.
#[derive(Clone, Copy, Debug)]
enum Condition {
    /// `MessageStore::append`: an id above the head, at this version.
    Above(u64),
    /// `MessageStore::append_after`: the head's last id is this one.
    After(Option<MessageId>),
}

impl Condition {
    fn refuses(self, head: &Head, id: MessageId) -> bool {
        match self {
            Condition::Above(version) => {
                head.last_id.is_some_and(|last| id <= last) || head.version != version
            }
            Condition::After(after) => head.last_id != after || after.is_some_and(|a| id <= a),
        }
    }
}

/// `MessageStore::append` and `append_after`, on the writer: the dedup
/// lookup, the head check, the target, the entry, the head and the
/// sender's cursors, all in the write's savepoint (any error undoes all
/// of it).
fn append(
    conn: &Connection,
    entry: NewMessage,
    condition: Condition,
) -> Result<Appended, SqliteError> {
    let NewMessage {
        message,
        client_msg_id,
        device,
    } = entry;
    let conversation = &message.conversation_id;
    if let Some(key) = &client_msg_id {
        let first = conn
            .prepare_cached(concat!(
                "SELECT ",
                entry_columns!(),
                " FROM entries WHERE sender_id = ?1 AND client_msg_id = ?2"
            ))?
            .query_row(params![message.sender_id.as_str(), key], rows::message)
            .optional()?;
        if let Some(first) = first {
            return Ok(Appended {
                message: first,
                prev: None,
                duplicate: true,
            });
        }
    }
    let id = message.message_id;
    let LogHead { head, .. } = load_head(conn, conversation)?;
    if condition.refuses(&head, id) {
        return Err(Error::Conflict { head }.into());
    }
    if message.kind.has_target() {
        let target = match message.ref_id {
            Some(t) => load_entry(conn, conversation, t)?,
            None => None,
        };
        let Some(mut target) = target else {
            return Err(Error::not_found(format!(
                "message {:?} in {conversation}",
                message.ref_id
            ))
            .into());
        };
        target.apply(&message);
        conn.prepare_cached(
            "UPDATE entries SET body = ?3, edited = ?4, deleted = ?5, reactions = ?6 \
             WHERE conversation_id = ?1 AND message_id = ?2",
        )?
        .execute(params![
            conversation.as_str(),
            to_db(target.message_id),
            target.body,
            target.edited,
            target.deleted,
            rows::encode_reactions(&target.reactions),
        ])?;
    }
    let prev = head.last_id;
    let mut next = head;
    next.last_id = Some(id);
    if message.kind.counts_unread() {
        next.seq += 1;
    }
    if message.kind == MessageKind::GroupEvent {
        next.version += 1;
    }
    conn.prepare_cached(
        "INSERT INTO heads (conversation_id, last_id, seq, version) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (conversation_id) DO UPDATE SET \
         last_id = excluded.last_id, seq = excluded.seq, version = excluded.version",
    )?
    .execute(params![
        conversation.as_str(),
        to_db(id),
        next.seq as i64,
        next.version as i64
    ])?;
    conn.prepare_cached(
        "INSERT INTO entries (conversation_id, message_id, sender_id, kind, body, ts, ref_id, \
         in_reply_to, edited, deleted, reactions, seq, client_msg_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        conversation.as_str(),
        to_db(id),
        message.sender_id.as_str(),
        message.kind.as_str(),
        message.body,
        message.ts,
        opt_to_db(message.ref_id),
        opt_to_db(message.in_reply_to),
        message.edited,
        message.deleted,
        rows::encode_reactions(&message.reactions),
        next.seq as i64,
        client_msg_id,
    ])?;
    cursors::on_append(
        conn,
        &message.sender_id,
        device.as_ref(),
        conversation,
        prev,
        id,
        next.seq,
    )?;
    Ok(Appended {
        message,
        prev,
        duplicate: false,
    })
}

/// History (`(floor, before)`, newest first, no group events) or range
/// (`(after, up_to]`, oldest first, every kind), on a reader.
fn page(
    conn: &Connection,
    conversation: &ConversationId,
    window: Window,
    limit_: usize,
    history: bool,
) -> Result<Vec<Message>, SqliteError> {
    let sql = if history {
        concat!(
            "SELECT ",
            entry_columns!(),
            " FROM entries WHERE conversation_id = ?1 \
             AND message_id BETWEEN ?2 AND ?3 AND kind <> 'group_event' \
             ORDER BY message_id DESC LIMIT ?4"
        )
    } else {
        concat!(
            "SELECT ",
            entry_columns!(),
            " FROM entries WHERE conversation_id = ?1 \
             AND message_id BETWEEN ?2 AND ?3 ORDER BY message_id LIMIT ?4"
        )
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![
            conversation.as_str(),
            window.low,
            window.high,
            limit(limit_)
        ],
        rows::message,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `MessageStore::purge`, on the writer: one range delete, and the purged
/// seq kept in the head for read cursors below it.
fn purge(
    conn: &Connection,
    conversation: &ConversationId,
    up_to: MessageId,
) -> Result<u64, SqliteError> {
    // The newest entry at or below the bound carries the count of text
    // entries up to it: the seq everything purged here reaches.
    let seq: Option<i64> = conn
        .prepare_cached(
            "SELECT seq FROM entries WHERE conversation_id = ?1 AND message_id <= ?2 \
             ORDER BY message_id DESC LIMIT 1",
        )?
        .query_row(params![conversation.as_str(), to_db(up_to)], |r| r.get(0))
        .optional()?;
    let deleted = conn
        .prepare_cached("DELETE FROM entries WHERE conversation_id = ?1 AND message_id <= ?2")?
        .execute(params![conversation.as_str(), to_db(up_to)])?;
    conn.prepare_cached(
        "UPDATE heads SET purged_up_to = max(coalesce(purged_up_to, ?2), ?2), \
         purged_seq = max(purged_seq, ?3) WHERE conversation_id = ?1",
    )?
    .execute(params![
        conversation.as_str(),
        to_db(up_to),
        seq.unwrap_or(0)
    ])?;
    Ok(deleted as u64)
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append(&self, entry: NewMessage, expected_version: u64) -> Result<Appended> {
        Ok(self
            .write(move |c| append(c, entry, Condition::Above(expected_version)))
            .await?)
    }

    async fn append_after(&self, entry: NewMessage, after: Option<MessageId>) -> Result<Appended> {
        Ok(self
            .write(move |c| append(c, entry, Condition::After(after)))
            .await?)
    }

    async fn put_intent(&self, intent: &Intent) -> Result<()> {
        let intent = intent.clone();
        Ok(self
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO intents (message_id, conversation_id) VALUES (?1, ?2) \
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    to_db(intent.message_id),
                    intent.conversation_id.as_str()
                ])?;
                Ok(())
            })
            .await?)
    }

    async fn intents(
        &self,
        after: Option<MessageId>,
        before: MessageId,
        limit_: usize,
    ) -> Result<Vec<Intent>> {
        let Some(window) = Window::between(after, Some(before)) else {
            return Ok(Vec::new());
        };
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT message_id, conversation_id FROM intents \
                     WHERE message_id BETWEEN ?1 AND ?2 \
                     ORDER BY message_id, conversation_id LIMIT ?3",
                )?;
                let rows =
                    stmt.query_map(params![window.low, window.high, limit(limit_)], |r| {
                        Ok(Intent {
                            message_id: crate::ids::from_db(r.get(0)?),
                            conversation_id: ConversationId::from(r.get::<_, String>(1)?),
                        })
                    })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await?)
    }

    async fn clear_intent(&self, intent: &Intent) -> Result<()> {
        let intent = intent.clone();
        Ok(self
            .write(move |c| {
                c.prepare_cached(
                    "DELETE FROM intents WHERE message_id = ?1 AND conversation_id = ?2",
                )?
                .execute(params![
                    to_db(intent.message_id),
                    intent.conversation_id.as_str()
                ])?;
                Ok(())
            })
            .await?)
    }

    async fn head(&self, conversation: &ConversationId) -> Result<Head> {
        let conversation = conversation.clone();
        Ok(self
            .read(move |c| Ok(load_head(c, &conversation)?.head))
            .await?)
    }

    async fn heads(&self, conversations: &[ConversationId]) -> Result<Vec<Head>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let conversations = conversations.to_vec();
        Ok(self
            .read(move |c| {
                // One snapshot for the whole list.
                let tx = c.unchecked_transaction()?;
                let heads = conversations
                    .iter()
                    .map(|id| Ok(load_head(&tx, id)?.head))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(heads)
            })
            .await?)
    }

    async fn entry(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>> {
        let conversation = conversation.clone();
        Ok(self
            .read(move |c| Ok(load_entry(c, &conversation, id)?))
            .await?)
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        floor: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let Some(window) = Window::between(floor, before) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conversation = conversation.clone();
        Ok(self
            .read(move |c| page(c, &conversation, window, limit, true))
            .await?)
    }

    async fn range(
        &self,
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let Some(window) = Window::after_up_to(after, up_to) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conversation = conversation.clone();
        Ok(self
            .read(move |c| page(c, &conversation, window, limit, false))
            .await?)
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        let conversation = conversation.clone();
        Ok(self
            .write(move |c| {
                c.prepare_cached(
                    "DELETE FROM entries WHERE conversation_id = ?1 AND message_id = ?2",
                )?
                .execute(params![conversation.as_str(), to_db(id)])?;
                Ok(())
            })
            .await?)
    }

    async fn purge(&self, conversation: &ConversationId, up_to: MessageId) -> Result<u64> {
        let conversation = conversation.clone();
        Ok(self.write(move |c| purge(c, &conversation, up_to)).await?)
    }

    async fn cursors(
        &self,
        user: &UserId,
        device: Option<&DeviceId>,
        conversation: &ConversationId,
    ) -> Result<Cursors> {
        let (user, device, conversation) = (user.clone(), device.cloned(), conversation.clone());
        Ok(self
            .read(move |c| cursors::cursors(c, &user, device.as_ref(), &conversation))
            .await?)
    }

    async fn user_cursors(
        &self,
        user: &UserId,
        conversations: &[ConversationId],
    ) -> Result<Vec<Cursors>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let (user, conversations) = (user.clone(), conversations.to_vec());
        Ok(self
            .read(move |c| cursors::user_cursors(c, &user, &conversations))
            .await?)
    }

    async fn device_cursors(&self, device: &DeviceId) -> Result<Vec<(ConversationId, MessageId)>> {
        let device = device.clone();
        Ok(self
            .read(move |c| cursors::device_cursors(c, &device))
            .await?)
    }

    async fn conversation_cursors(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<DeviceCursor>> {
        let conversation = conversation.clone();
        Ok(self
            .read(move |c| cursors::conversation_cursors(c, &conversation))
            .await?)
    }

    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<AckMoved> {
        let (user, device, conversation) = (user.clone(), device.clone(), conversation.clone());
        Ok(self
            .write(move |c| cursors::ack(c, &user, &device, &conversation, up_to))
            .await?)
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<(Option<MessageId>, bool)> {
        let (user, conversation) = (user.clone(), conversation.clone());
        Ok(self
            .write(move |c| cursors::mark_read(c, &user, &conversation, up_to))
            .await?)
    }

    async fn start_member(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        head: Head,
    ) -> Result<()> {
        let (user, conversation) = (user.clone(), conversation.clone());
        Ok(self
            .write(move |c| cursors::start_member(c, &user, &conversation, head))
            .await?)
    }

    async fn start_device(&self, user: &UserId, device: &DeviceId) -> Result<()> {
        let (user, device) = (user.clone(), device.clone());
        Ok(self
            .write(move |c| cursors::start_device(c, &user, &device))
            .await?)
    }

    async fn forget_device(&self, device: &DeviceId) -> Result<()> {
        let device = device.clone();
        Ok(self
            .write(move |c| cursors::forget_device(c, &device))
            .await?)
    }

    async fn ping(&self) -> Result<()> {
        SqliteStore::ping(self).await
    }
}
