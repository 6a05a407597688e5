//! [`HotQuery`] and [`PostgresStore::explain`]: the plans of the statements
//! that run on every send, sync, page load and sweep, for tests (which
//! assert that each uses its index) and for operators.

use chat_core::{ConversationId, DeviceId, MessageId, Result, UserId};
use tokio_postgres::types::ToSql;

use crate::conversations::{MEMBERS, MEMBERSHIPS, REDEEM_INVITE};
use crate::cursors::{
    CONVERSATION_CURSORS, DEVICE_CURSORS, FORGET_DEVICE, READ_SEQ, START_DEVICE, USER_CURSORS,
};
use crate::ids::to_db;
use crate::log::{HEADS, HISTORY, PURGE, RANGE, REMOVE, Window};
use crate::store::PostgresStore;

/// A statement the store runs on a hot path, with the arguments to plan it
/// for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HotQuery {
    /// A history page: the 50 newest entries of a conversation (group
    /// events left out).
    History(ConversationId),
    /// Sync and gap filling: up to 500 entries of a conversation after an id.
    Range(ConversationId, MessageId),
    /// The conversations list and sync: the heads of many conversations.
    Heads(Vec<ConversationId>),
    /// The conversations list: one user's cursors in many conversations.
    UserCursors(UserId, Vec<ConversationId>),
    /// Sync: every cursor of one device.
    DeviceCursors(DeviceId),
    /// The low-water mark: every cursor in one conversation.
    ConversationCursors(ConversationId),
    /// `mark_read`: the seq of the newest entry at or below an id.
    ReadSeq(ConversationId, MessageId),
    /// Retention: every entry of a conversation up to an id, deleted.
    Purge(ConversationId, MessageId),
    /// The undo of a half-done send: one entry deleted.
    Remove(ConversationId, MessageId),
    /// A new device's cursors, copied from its user's.
    StartDevice(UserId, DeviceId),
    /// A removed device's cursors, deleted.
    ForgetDevice(DeviceId),
    /// Fan-out: a conversation's members.
    Members(ConversationId),
    /// The conversations list: a user's memberships.
    Memberships(UserId),
    /// Joining by invite: one conditional update of the invite.
    RedeemInvite(String),
}

impl PostgresStore {
    /// PostgreSQL's plan for `query`, in text format: `EXPLAIN`, or with
    /// `analyze`, `EXPLAIN (ANALYZE, BUFFERS)`, which runs the statement
    /// (inside a transaction that is rolled back, so a planned write
    /// changes nothing) and shows the rows, buffers and time of each step.
    pub async fn explain(&self, query: &HotQuery, analyze: bool) -> Result<String> {
        let all = Window::after_up_to(None, None).map_or((i64::MIN, i64::MAX), |w| (w.low, w.high));
        let one = |c: &ConversationId| c.as_str().to_owned();
        let strings = |cs: &[ConversationId]| cs.iter().map(one).collect::<Vec<String>>();
        let (sql, params): (&str, Vec<Box<dyn ToSql + Sync + Send>>) = match query {
            HotQuery::History(c) => (
                HISTORY,
                vec![Box::new(one(c)), Box::new(all.0), Box::new(all.1), Box::new(50_i64)],
            ),
            HotQuery::Range(c, after) => (
                RANGE,
                vec![
                    Box::new(one(c)),
                    Box::new(to_db(*after).saturating_add(1)),
                    Box::new(all.1),
                    Box::new(500_i64),
                ],
            ),
            HotQuery::Heads(cs) => (HEADS, vec![Box::new(strings(cs))]),
            HotQuery::UserCursors(u, cs) => (
                USER_CURSORS,
                vec![Box::new(u.as_str().to_owned()), Box::new(strings(cs))],
            ),
            HotQuery::DeviceCursors(d) => (DEVICE_CURSORS, vec![Box::new(d.as_str().to_owned())]),
            HotQuery::ConversationCursors(c) => (CONVERSATION_CURSORS, vec![Box::new(one(c))]),
            HotQuery::ReadSeq(c, id) => (READ_SEQ, vec![Box::new(one(c)), Box::new(to_db(*id))]),
            HotQuery::Purge(c, id) => (PURGE, vec![Box::new(one(c)), Box::new(to_db(*id))]),
            HotQuery::Remove(c, id) => (REMOVE, vec![Box::new(one(c)), Box::new(to_db(*id))]),
            HotQuery::StartDevice(u, d) => (
                START_DEVICE,
                vec![
                    Box::new(u.as_str().to_owned()),
                    Box::new(d.as_str().to_owned()),
                ],
            ),
            HotQuery::ForgetDevice(d) => (FORGET_DEVICE, vec![Box::new(d.as_str().to_owned())]),
            HotQuery::Members(c) => (MEMBERS, vec![Box::new(one(c))]),
            HotQuery::Memberships(u) => (MEMBERSHIPS, vec![Box::new(u.as_str().to_owned())]),
            HotQuery::RedeemInvite(hash) => (
                REDEEM_INVITE,
                vec![Box::new(hash.clone()), Box::new(chat_core::now_millis())],
            ),
        };
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect();
        let mut conn = self.shared.conn("explain").await?;
        let rows = if analyze {
            // Rolled back whatever happens: a failure closes the connection
            // (which rolls back) instead of pooling it.
            conn.poison_until_done();
            conn.batch_execute("explain", "BEGIN").await?;
            let rows = conn
                .query("explain", &format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &refs)
                .await?;
            conn.batch_execute("explain", "ROLLBACK").await?;
            conn.done();
            rows
        } else {
            conn.query("explain", &format!("EXPLAIN {sql}"), &refs)
                .await?
        };
        Ok(rows
            .iter()
            .map(|r| r.get::<_, &str>(0))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}
