//! Reading domain values out of rows.

use chat_core::{ConversationId, Message, UserId};
use tokio_postgres::Row;

use crate::ids::from_db;

/// A message from five columns starting at `at`, in the order every
/// message query selects them: conversation_id, message_id, sender_id,
/// body, ts.
pub(crate) fn message(row: &Row, at: usize) -> Message {
    Message {
        conversation_id: ConversationId::from(row.get::<_, &str>(at)),
        message_id: from_db(row.get(at + 1)),
        sender_id: UserId::from(row.get::<_, &str>(at + 2)),
        body: row.get(at + 3),
        ts: row.get(at + 4),
    }
}
