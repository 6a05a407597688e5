//! The delivery and read cursors: `user_cursors` (per user and
//! conversation) and `device_cursors` (per device and conversation).
//!
//! Every change runs on the writer, one statement to read the cursor and one
//! to write it back, which is atomic because the writer is the only one and
//! runs each write inside its batch's transaction. Cursors only move
//! forward: the new value is computed in Rust, exactly as chat-core's
//! reference store does.

use chat_core::store::{AckMoved, Cursors, DeviceCursor};
use chat_core::{ConversationId, DeviceId, Head, MessageId, UserId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::SqliteError;
use crate::ids::{from_db, opt_from_db, opt_to_db, to_db};
use crate::messages::seq_at;

/// One user's cursors in one conversation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UserCursor {
    pub(crate) delivered: Option<MessageId>,
    pub(crate) read: Option<MessageId>,
    pub(crate) read_seq: u64,
}

/// Moves `cursor` to `to` unless it is there or beyond.
pub(crate) fn forward(cursor: &mut Option<MessageId>, to: MessageId) {
    if cursor.is_none_or(|c| c < to) {
        *cursor = Some(to);
    }
}

pub(crate) fn load_user(
    conn: &Connection,
    user: &UserId,
    conversation: &ConversationId,
) -> rusqlite::Result<UserCursor> {
    Ok(conn
        .prepare_cached(
            "SELECT delivered, read, read_seq FROM user_cursors \
             WHERE user_id = ?1 AND conversation_id = ?2",
        )?
        .query_row(params![user.as_str(), conversation.as_str()], |r| {
            Ok(UserCursor {
                delivered: opt_from_db(r.get(0)?),
                read: opt_from_db(r.get(1)?),
                read_seq: r.get::<_, i64>(2)? as u64,
            })
        })
        .optional()?
        .unwrap_or_default())
}

pub(crate) fn save_user(
    conn: &Connection,
    user: &UserId,
    conversation: &ConversationId,
    cursor: UserCursor,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO user_cursors (user_id, conversation_id, delivered, read, read_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (user_id, conversation_id) DO UPDATE SET \
         delivered = excluded.delivered, read = excluded.read, read_seq = excluded.read_seq",
    )?
    .execute(params![
        user.as_str(),
        conversation.as_str(),
        opt_to_db(cursor.delivered),
        opt_to_db(cursor.read),
        cursor.read_seq as i64,
    ])?;
    Ok(())
}

pub(crate) fn load_device(
    conn: &Connection,
    device: &DeviceId,
    conversation: &ConversationId,
) -> rusqlite::Result<Option<MessageId>> {
    Ok(conn
        .prepare_cached(
            "SELECT delivered FROM device_cursors WHERE device_id = ?1 AND conversation_id = ?2",
        )?
        .query_row(params![device.as_str(), conversation.as_str()], |r| {
            r.get(0)
        })
        .optional()?
        .map(from_db))
}

/// Moves `device`'s cursor to `to` (never backwards), creating it there.
pub(crate) fn advance_device(
    conn: &Connection,
    user: &UserId,
    device: &DeviceId,
    conversation: &ConversationId,
    to: MessageId,
) -> rusqlite::Result<()> {
    // Ids are stored order-preserving (ids.rs), so max() compares them right.
    conn.prepare_cached(
        "INSERT INTO device_cursors (device_id, conversation_id, user_id, delivered) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (device_id, conversation_id) DO UPDATE SET \
         user_id = excluded.user_id, delivered = max(delivered, excluded.delivered)",
    )?
    .execute(params![
        device.as_str(),
        conversation.as_str(),
        user.as_str(),
        to_db(to)
    ])?;
    Ok(())
}

/// What an append moves for its sender (see `MessageStore::append`): the
/// read cursor to the entry with the head's new seq; the delivered cursors
/// (the user's, the sending device's) only when they covered `prev`.
pub(crate) fn on_append(
    conn: &Connection,
    sender: &UserId,
    device: Option<&DeviceId>,
    conversation: &ConversationId,
    prev: Option<MessageId>,
    id: MessageId,
    seq: u64,
) -> rusqlite::Result<()> {
    let covers = |cursor: Option<MessageId>| prev.is_none_or(|p| cursor.is_some_and(|c| c >= p));
    let mut user = load_user(conn, sender, conversation)?;
    if covers(user.delivered) {
        forward(&mut user.delivered, id);
    }
    forward(&mut user.read, id);
    user.read_seq = user.read_seq.max(seq);
    save_user(conn, sender, conversation, user)?;
    if let Some(device) = device
        && covers(load_device(conn, device, conversation)?)
    {
        advance_device(conn, sender, device, conversation, id)?;
    }
    Ok(())
}

/// `MessageStore::cursors`, on a reader.
pub(crate) fn cursors(
    conn: &Connection,
    user: &UserId,
    device: Option<&DeviceId>,
    conversation: &ConversationId,
) -> Result<Cursors, SqliteError> {
    let tx = conn.unchecked_transaction()?;
    let u = load_user(&tx, user, conversation)?;
    let device_delivered = match device {
        Some(d) => load_device(&tx, d, conversation)?,
        None => None,
    };
    Ok(Cursors {
        device_delivered,
        delivered: u.delivered,
        read: u.read,
        read_seq: u.read_seq,
    })
}

/// `MessageStore::user_cursors`, on a reader.
pub(crate) fn user_cursors(
    conn: &Connection,
    user: &UserId,
    conversations: &[ConversationId],
) -> Result<Vec<Cursors>, SqliteError> {
    let tx = conn.unchecked_transaction()?;
    conversations
        .iter()
        .map(|c| {
            let u = load_user(&tx, user, c)?;
            Ok(Cursors {
                device_delivered: None,
                delivered: u.delivered,
                read: u.read,
                read_seq: u.read_seq,
            })
        })
        .collect()
}

/// `MessageStore::device_cursors`, on a reader: the primary key's prefix.
pub(crate) fn device_cursors(
    conn: &Connection,
    device: &DeviceId,
) -> Result<Vec<(ConversationId, MessageId)>, SqliteError> {
    let mut stmt = conn.prepare_cached(
        "SELECT conversation_id, delivered FROM device_cursors \
         WHERE device_id = ?1 ORDER BY conversation_id",
    )?;
    let rows = stmt.query_map([device.as_str()], |r| {
        Ok((
            ConversationId::from(r.get::<_, String>(0)?),
            from_db(r.get(1)?),
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `MessageStore::conversation_cursors`, on a reader: both
/// `*_by_conversation` indexes.
pub(crate) fn conversation_cursors(
    conn: &Connection,
    conversation: &ConversationId,
) -> Result<Vec<DeviceCursor>, SqliteError> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, device_id, delivered FROM device_cursors WHERE conversation_id = ?1 \
         UNION ALL \
         SELECT user_id, '', delivered FROM user_cursors \
         WHERE conversation_id = ?1 AND delivered IS NOT NULL \
         ORDER BY 1, 2",
    )?;
    let rows = stmt.query_map([conversation.as_str()], |r| {
        Ok(DeviceCursor {
            user_id: r.get::<_, String>(0)?.into(),
            device_id: r.get::<_, String>(1)?.into(),
            delivered: from_db(r.get(2)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `MessageStore::ack`, on the writer.
pub(crate) fn ack(
    conn: &Connection,
    user: &UserId,
    device: &DeviceId,
    conversation: &ConversationId,
    up_to: MessageId,
) -> Result<AckMoved, SqliteError> {
    let device_before = load_device(conn, device, conversation)?;
    advance_device(conn, user, device, conversation, up_to)?;
    let mut cursor = load_user(conn, user, conversation)?;
    let user_before = cursor.delivered;
    forward(&mut cursor.delivered, up_to);
    if cursor.delivered != user_before {
        save_user(conn, user, conversation, cursor)?;
    }
    Ok(AckMoved {
        device_before,
        user_before,
        user_after: cursor.delivered,
    })
}

/// `MessageStore::mark_read`, on the writer.
pub(crate) fn mark_read(
    conn: &Connection,
    user: &UserId,
    conversation: &ConversationId,
    up_to: MessageId,
) -> Result<(Option<MessageId>, bool), SqliteError> {
    let mut cursor = load_user(conn, user, conversation)?;
    let before = cursor.read;
    if before.is_some_and(|r| r >= up_to) {
        return Ok((before, false));
    }
    let seq = seq_at(conn, conversation, up_to)?;
    cursor.read = Some(up_to);
    cursor.read_seq = cursor.read_seq.max(seq);
    save_user(conn, user, conversation, cursor)?;
    Ok((before, true))
}

/// `MessageStore::start_member`, on the writer.
pub(crate) fn start_member(
    conn: &Connection,
    user: &UserId,
    conversation: &ConversationId,
    head: Head,
) -> Result<(), SqliteError> {
    let mut cursor = load_user(conn, user, conversation)?;
    if let Some(last) = head.last_id {
        forward(&mut cursor.delivered, last);
        forward(&mut cursor.read, last);
    }
    cursor.read_seq = cursor.read_seq.max(head.seq);
    save_user(conn, user, conversation, cursor)?;
    Ok(())
}

/// `MessageStore::start_device`, on the writer: one statement copies the
/// user's delivered cursors to the device.
pub(crate) fn start_device(
    conn: &Connection,
    user: &UserId,
    device: &DeviceId,
) -> Result<(), SqliteError> {
    // `WHERE true` lets SQLite parse the upsert after a SELECT.
    conn.prepare_cached(
        "INSERT INTO device_cursors (device_id, conversation_id, user_id, delivered) \
         SELECT ?2, conversation_id, user_id, delivered FROM user_cursors \
         WHERE user_id = ?1 AND delivered IS NOT NULL AND true \
         ON CONFLICT (device_id, conversation_id) DO UPDATE SET \
         user_id = excluded.user_id, delivered = max(delivered, excluded.delivered)",
    )?
    .execute(params![user.as_str(), device.as_str()])?;
    Ok(())
}

/// `MessageStore::forget_device`, on the writer.
pub(crate) fn forget_device(conn: &Connection, device: &DeviceId) -> Result<(), SqliteError> {
    conn.prepare_cached("DELETE FROM device_cursors WHERE device_id = ?1")?
        .execute([device.as_str()])?;
    Ok(())
}
