//! Rows to chat-core's types and back: the column lists the statements
//! select, and the text codes of kinds, roles and policies.

use std::collections::BTreeMap;

use chat_core::{
    Account, Conversation, ConversationKind, Device, HistoryVisibility, Invite, JoinPolicy, Member,
    Message, MessageKind, Reactions, Role, UserId,
};
use rusqlite::Row;
use rusqlite::types::Type;

use crate::ids::{from_db, opt_from_db};

/// A stored value this build cannot read, as rusqlite reports a column it
/// cannot convert.
fn unreadable(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, what.into())
}

/// A text column decoded by `parse`.
fn coded<T>(row: &Row<'_>, column: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    parse(&text).ok_or_else(|| unreadable(column, format!("unknown code {text:?}")))
}

/// The columns [`message`] reads, in its order.
macro_rules! entry_columns {
    () => {
        "message_id, conversation_id, sender_id, body, ts, kind, ref_id, \
     in_reply_to, edited, deleted, reactions"
    };
}
pub(crate) use entry_columns;

/// An entry as it is now (from the `entry_columns!()` columns).
pub(crate) fn message(row: &Row<'_>) -> rusqlite::Result<Message> {
    let reactions: Option<String> = row.get(10)?;
    Ok(Message {
        message_id: from_db(row.get(0)?),
        conversation_id: row.get::<_, String>(1)?.into(),
        sender_id: row.get::<_, String>(2)?.into(),
        body: row.get(3)?,
        ts: row.get(4)?,
        kind: coded(row, 5, MessageKind::parse)?,
        ref_id: opt_from_db(row.get(6)?),
        in_reply_to: opt_from_db(row.get(7)?),
        edited: row.get(8)?,
        deleted: row.get(9)?,
        reactions: match reactions {
            Some(json) => decode_reactions(&json).map_err(|e| unreadable(10, e))?,
            None => Reactions::default(),
        },
    })
}

/// Reactions as stored: JSON `{user_id: emoji}`, `None` when there are none.
pub(crate) fn encode_reactions(reactions: &Reactions) -> Option<String> {
    if reactions.is_empty() {
        return None;
    }
    let map: BTreeMap<&str, &str> = reactions
        .0
        .iter()
        .map(|(user, emoji)| (user.as_str(), emoji.as_str()))
        .collect();
    Some(serde_json::to_string(&map).expect("a map of strings serializes"))
}

fn decode_reactions(json: &str) -> Result<Reactions, String> {
    let map: BTreeMap<String, String> =
        serde_json::from_str(json).map_err(|e| format!("reactions {json:?}: {e}"))?;
    Ok(Reactions(
        map.into_iter()
            .map(|(user, emoji)| (UserId::from(user), emoji))
            .collect(),
    ))
}

/// The code of a conversation kind.
pub(crate) fn kind_code(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Direct => "direct",
        ConversationKind::Group => "group",
    }
}

fn parse_kind(s: &str) -> Option<ConversationKind> {
    [ConversationKind::Direct, ConversationKind::Group]
        .into_iter()
        .find(|k| kind_code(*k) == s)
}

/// The code of a join policy.
pub(crate) fn join_code(join: JoinPolicy) -> &'static str {
    match join {
        JoinPolicy::Invite => "invite",
        JoinPolicy::Open => "open",
    }
}

fn parse_join(s: &str) -> Option<JoinPolicy> {
    [JoinPolicy::Invite, JoinPolicy::Open]
        .into_iter()
        .find(|j| join_code(*j) == s)
}

/// The code of a history visibility.
pub(crate) fn history_code(history: HistoryVisibility) -> &'static str {
    match history {
        HistoryVisibility::SinceJoin => "since_join",
        HistoryVisibility::All => "all",
    }
}

fn parse_history(s: &str) -> Option<HistoryVisibility> {
    [HistoryVisibility::SinceJoin, HistoryVisibility::All]
        .into_iter()
        .find(|h| history_code(*h) == s)
}

/// The columns [`conversation`] reads, in its order.
macro_rules! conversation_columns {
    () => {
        "conversation_id, kind, name, created_by, created_at, join_policy, history"
    };
}
pub(crate) use conversation_columns;

/// A conversation (from the `conversation_columns!()` columns).
pub(crate) fn conversation(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: row.get::<_, String>(0)?.into(),
        kind: coded(row, 1, parse_kind)?,
        name: row.get(2)?,
        created_by: row.get::<_, String>(3)?.into(),
        created_at: row.get(4)?,
        join: coded(row, 5, parse_join)?,
        history: coded(row, 6, parse_history)?,
    })
}

/// The columns [`member`] reads, in its order.
macro_rules! member_columns {
    () => {
        "user_id, role, joined, joined_at"
    };
}
pub(crate) use member_columns;

/// A member (from the `member_columns!()` columns).
pub(crate) fn member(row: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        user_id: row.get::<_, String>(0)?.into(),
        role: coded(row, 1, Role::parse)?,
        joined: from_db(row.get(2)?),
        joined_at: row.get(3)?,
    })
}

/// The columns [`invite`] reads, in its order.
macro_rules! invite_columns {
    () => {
        "code_hash, conversation_id, created_by, created_at, max_uses, uses, expires_at, revoked"
    };
}
pub(crate) use invite_columns;

/// An invite (from the `invite_columns!()` columns).
pub(crate) fn invite(row: &Row<'_>) -> rusqlite::Result<Invite> {
    Ok(Invite {
        code_hash: row.get(0)?,
        conversation_id: row.get::<_, String>(1)?.into(),
        created_by: row.get::<_, String>(2)?.into(),
        created_at: row.get(3)?,
        max_uses: row.get(4)?,
        uses: row.get(5)?,
        expires_at: row.get(6)?,
        revoked: row.get(7)?,
    })
}

/// The columns [`account`] reads, in its order.
macro_rules! account_columns {
    () => {
        "user_id, username, password_hash, display_name, created_at"
    };
}
pub(crate) use account_columns;

/// An account (from the `account_columns!()` columns).
pub(crate) fn account(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        user_id: row.get::<_, String>(0)?.into(),
        username: row.get(1)?,
        password_hash: row.get(2)?,
        display_name: row.get(3)?,
        created_at: row.get(4)?,
    })
}

/// The columns [`device`] reads, in its order.
macro_rules! device_columns {
    () => {
        "device_id, user_id, name, created_at, last_seen"
    };
}
pub(crate) use device_columns;

/// A device (from the `device_columns!()` columns).
pub(crate) fn device(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        device_id: row.get::<_, String>(0)?.into(),
        user_id: row.get::<_, String>(1)?.into(),
        name: row.get(2)?,
        created_at: row.get(3)?,
        last_seen: row.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for k in [ConversationKind::Direct, ConversationKind::Group] {
            assert_eq!(parse_kind(kind_code(k)), Some(k));
        }
        for j in [JoinPolicy::Invite, JoinPolicy::Open] {
            assert_eq!(parse_join(join_code(j)), Some(j));
        }
        for h in [HistoryVisibility::SinceJoin, HistoryVisibility::All] {
            assert_eq!(parse_history(history_code(h)), Some(h));
        }
        let mut r = Reactions::default();
        assert_eq!(encode_reactions(&r), None);
        r.set(&UserId::from("u1"), "👍");
        r.set(&UserId::from("u\"2"), "🎉");
        let json = encode_reactions(&r).unwrap();
        assert_eq!(decode_reactions(&json).unwrap(), r);
        assert!(decode_reactions("[1]").is_err());
    }
}
