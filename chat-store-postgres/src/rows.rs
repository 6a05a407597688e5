//! Domain values in and out of columns: entries, kinds, roles, policies.

use std::collections::BTreeMap;

use chat_core::{
    ConversationId, Error, HistoryVisibility, JoinPolicy, Message, MessageKind, Reactions, Result,
    Role, UserId,
};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use crate::ids::from_db;

/// The columns of an entry as every read selects them, from `entries e`,
/// with its reactions as one JSON object (user → emoji; NULL without any),
/// read from the reactions' primary key. A macro so that statements can be
/// built with `concat!`.
macro_rules! entry_columns {
    () => {
        "e.conversation_id, e.message_id, e.kind, e.sender_id, e.body, e.ts, e.ref_id, \
         e.in_reply_to, e.edited, e.deleted, \
         (SELECT jsonb_object_agg(r.user_id, r.emoji) FROM reactions r \
          WHERE r.conversation_id = e.conversation_id AND r.message_id = e.message_id)"
    };
}
pub(crate) use entry_columns;

/// The `kind` column of each kind (the append function in
/// `migrations/0002_log_heads_cursors.sql` uses the same numbers).
pub(crate) fn kind_to_db(kind: MessageKind) -> i16 {
    match kind {
        MessageKind::Text => 0,
        MessageKind::Edit => 1,
        MessageKind::Delete => 2,
        MessageKind::Reaction => 3,
        MessageKind::GroupEvent => 4,
    }
}

/// The kind of a `kind` column value.
pub(crate) fn kind_from_db(value: i16) -> Result<MessageKind> {
    MessageKind::ALL
        .into_iter()
        .find(|k| kind_to_db(*k) == value)
        .ok_or_else(|| broken(format!("entry kind {value}")))
}

/// An entry from the [`entry_columns!`] starting at `at`.
pub(crate) fn entry(row: &Row, at: usize) -> Result<Message> {
    let reactions: Option<Json<BTreeMap<String, String>>> = row
        .try_get(at + 10)
        .map_err(|e| Error::unavailable("postgres: reading an entry's reactions", e))?;
    Ok(Message {
        conversation_id: ConversationId::from(row.get::<_, &str>(at)),
        message_id: from_db(row.get(at + 1)),
        kind: kind_from_db(row.get(at + 2))?,
        sender_id: UserId::from(row.get::<_, &str>(at + 3)),
        body: row.get(at + 4),
        ts: row.get(at + 5),
        ref_id: row.get::<_, Option<i64>>(at + 6).map(from_db),
        in_reply_to: row.get::<_, Option<i64>>(at + 7).map(from_db),
        edited: row.get(at + 8),
        deleted: row.get(at + 9),
        reactions: Reactions(
            reactions
                .map(|Json(map)| map.into_iter().map(|(u, e)| (UserId::from(u), e)).collect())
                .unwrap_or_default(),
        ),
    })
}

/// Every entry of `rows`, each from column 0.
pub(crate) fn entries(rows: &[Row]) -> Result<Vec<Message>> {
    rows.iter().map(|r| entry(r, 0)).collect()
}

/// A role as its column spells it (the wire's spelling).
pub(crate) fn role_to_db(role: Role) -> &'static str {
    role.as_str()
}

/// The role a column holds.
pub(crate) fn role_from_db(value: &str) -> Result<Role> {
    Role::parse(value).ok_or_else(|| broken(format!("role {value:?}")))
}

/// A join policy as its column spells it.
pub(crate) fn join_to_db(join: JoinPolicy) -> &'static str {
    match join {
        JoinPolicy::Invite => "invite",
        JoinPolicy::Open => "open",
    }
}

/// The join policy a column holds.
pub(crate) fn join_from_db(value: &str) -> Result<JoinPolicy> {
    match value {
        "invite" => Ok(JoinPolicy::Invite),
        "open" => Ok(JoinPolicy::Open),
        other => Err(broken(format!("join policy {other:?}"))),
    }
}

/// A history visibility as its column spells it.
pub(crate) fn history_to_db(history: HistoryVisibility) -> &'static str {
    match history {
        HistoryVisibility::SinceJoin => "since_join",
        HistoryVisibility::All => "all",
    }
}

/// The history visibility a column holds.
pub(crate) fn history_from_db(value: &str) -> Result<HistoryVisibility> {
    match value {
        "since_join" => Ok(HistoryVisibility::SinceJoin),
        "all" => Ok(HistoryVisibility::All),
        other => Err(broken(format!("history visibility {other:?}"))),
    }
}

/// A value the schema's CHECK constraints rule out: only a broken schema
/// (or one written by a newer build) holds it.
fn broken(what: String) -> Error {
    Error::unavailable_msg(format!("postgres: the schema holds an unknown {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_with_the_numbers_of_the_schema() {
        let numbers: Vec<i16> = MessageKind::ALL.into_iter().map(kind_to_db).collect();
        assert_eq!(numbers, vec![0, 1, 2, 3, 4]);
        for kind in MessageKind::ALL {
            assert_eq!(kind_from_db(kind_to_db(kind)).ok(), Some(kind));
        }
        assert!(kind_from_db(5).is_err());
    }

    #[test]
    fn policies_and_roles_round_trip() {
        for join in [JoinPolicy::Invite, JoinPolicy::Open] {
            assert_eq!(join_from_db(join_to_db(join)).ok(), Some(join));
        }
        for history in [HistoryVisibility::SinceJoin, HistoryVisibility::All] {
            assert_eq!(history_from_db(history_to_db(history)).ok(), Some(history));
        }
        for role in [Role::Member, Role::Admin, Role::Owner] {
            assert_eq!(role_from_db(role_to_db(role)).ok(), Some(role));
        }
        assert!(role_from_db("king").is_err());
    }
}
