//! [`HotQuery`] and [`PostgresStore::explain`]: the plans of the statements
//! that run on every send, sync, page load and sweep, for tests (which
//! assert that each uses its index) and for operators.

use chat_core::{ConversationId, DeviceId, MessageId, Result, UserId};

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
    /// The plan is the generic one (`plan_cache_mode =
    /// force_generic_plan`): the one the store's prepared statements run
    /// once PostgreSQL stops planning them for each call's values.
    pub async fn explain(&self, query: &HotQuery, analyze: bool) -> Result<String> {
        use Arg::{Int, Text, Texts};
        let all = Window::after_up_to(None, None).map_or((i64::MIN, i64::MAX), |w| (w.low, w.high));
        let text = |s: &str| Text(s.to_owned());
        let texts =
            |cs: &[ConversationId]| Texts(cs.iter().map(|c| c.as_str().to_owned()).collect());
        let (sql, args): (&str, Vec<Arg>) = match query {
            HotQuery::History(c) => (
                HISTORY,
                vec![text(c.as_str()), Int(all.0), Int(all.1), Int(50)],
            ),
            HotQuery::Range(c, after) => (
                RANGE,
                vec![
                    text(c.as_str()),
                    Int(to_db(*after).saturating_add(1)),
                    Int(all.1),
                    Int(500),
                ],
            ),
            HotQuery::Heads(cs) => (HEADS, vec![texts(cs)]),
            HotQuery::UserCursors(u, cs) => (USER_CURSORS, vec![text(u.as_str()), texts(cs)]),
            HotQuery::DeviceCursors(d) => (DEVICE_CURSORS, vec![text(d.as_str())]),
            HotQuery::ConversationCursors(c) => (CONVERSATION_CURSORS, vec![text(c.as_str())]),
            HotQuery::ReadSeq(c, id) => (READ_SEQ, vec![text(c.as_str()), Int(to_db(*id))]),
            HotQuery::Purge(c, id) => (PURGE, vec![text(c.as_str()), Int(to_db(*id))]),
            HotQuery::Remove(c, id) => (REMOVE, vec![text(c.as_str()), Int(to_db(*id))]),
            HotQuery::StartDevice(u, d) => (START_DEVICE, vec![text(u.as_str()), text(d.as_str())]),
            HotQuery::ForgetDevice(d) => (FORGET_DEVICE, vec![text(d.as_str())]),
            HotQuery::Members(c) => (MEMBERS, vec![text(c.as_str())]),
            HotQuery::Memberships(u) => (MEMBERSHIPS, vec![text(u.as_str())]),
            HotQuery::RedeemInvite(hash) => (
                REDEEM_INVITE,
                vec![text(hash), Int(chat_core::now_millis())],
            ),
        };
        let args: Vec<String> = args.iter().map(Arg::literal).collect();
        let explain = format!(
            "EXPLAIN {}EXECUTE chat_explain({})",
            if analyze { "(ANALYZE, BUFFERS) " } else { "" },
            args.join(", ")
        );
        let mut conn = self.shared.conn("explain").await?;
        // The generic plan, which the store's prepared statements run once
        // PostgreSQL stops planning them for each call's values: a
        // prepared statement explained with plan_cache_mode =
        // force_generic_plan (the values given to it do not change the
        // plan, only what ANALYZE measures). In a transaction that is
        // rolled back whatever happens (a failure closes the connection,
        // which rolls back, instead of pooling it).
        conn.poison_until_done();
        conn.batch_execute(
            "explain",
            &format!(
                "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; PREPARE chat_explain AS {sql}"
            ),
        )
        .await?;
        let rows = conn.query("explain", &explain, &[]).await?;
        conn.batch_execute("explain", "ROLLBACK; DEALLOCATE chat_explain")
            .await?;
        conn.done();
        Ok(rows
            .iter()
            .map(|r| r.get::<_, &str>(0))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// A value to explain a statement with, written into the `EXECUTE` as a
/// literal (a utility statement takes no parameters).
enum Arg {
    Text(String),
    Int(i64),
    Texts(Vec<String>),
}

impl Arg {
    fn literal(&self) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match self {
            Self::Text(s) => quote(s),
            // Quoted: -9223372036854775808 unquoted is minus an int8 that overflows.
            Self::Int(n) => format!("'{n}'::int8"),
            Self::Texts(items) => {
                let items: Vec<String> = items.iter().map(|s| quote(s)).collect();
                format!("ARRAY[{}]::text[]", items.join(", "))
            }
        }
    }
}
