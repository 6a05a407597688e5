//! [`ConversationStore`] for [`PostgresStore`]: one statement per call,
//! hence atomic on its own. A conversation's `member_count` is kept by the
//! statements that add and remove members, in the same statement.

use async_trait::async_trait;
use chat_core::model::Departure;
use chat_core::store::ConversationStore;
use chat_core::{
    Conversation, ConversationId, ConversationKind, Error, GroupSettings, Invite, Member, Millis,
    Result, Role, UserId,
};
use tokio_postgres::Row;

use crate::append::count;
use crate::ids::{from_db, to_db};
use crate::rows::{
    history_from_db, history_to_db, join_from_db, join_to_db, role_from_db, role_to_db,
};
use crate::store::PostgresStore;

/// The columns of a conversation, in the order [`conversation`] reads them.
macro_rules! conversation_columns {
    () => {
        "id, kind, name, created_by, created_at, join_policy, history"
    };
}

/// Creates a conversation with its members unless the id is taken; the
/// count says whether it was created.
const CREATE: &str = r#"
WITH conv AS (
    INSERT INTO conversations (id, kind, name, created_by, created_at, join_policy, history, member_count)
    VALUES ($1::text, $2::text, $3::text, $4::text, $5::int8, $6::text, $7::text, cardinality($8::text[]))
    ON CONFLICT DO NOTHING
    RETURNING id
), joined AS (
    INSERT INTO members (conversation_id, user_id, role, joined, joined_at)
    SELECT conv.id, m.user_id, m.role, m.joined, m.joined_at
    FROM conv, unnest($8::text[], $9::text[], $10::int8[], $11::int8[])
        AS m(user_id, role, joined, joined_at)
)
SELECT count(*) FROM conv
"#;

const CONVERSATION: &str = concat!(
    "SELECT ",
    conversation_columns!(),
    " FROM conversations WHERE id = $1::text"
);

/// Changes the settings given (NULL: unchanged) of a group.
const UPDATE_GROUP: &str = concat!(
    "UPDATE conversations SET name = COALESCE($2::text, name), \
     join_policy = COALESCE($3::text, join_policy), history = COALESCE($4::text, history) \
     WHERE id = $1::text AND kind = 'group' RETURNING ",
    conversation_columns!()
);

/// The columns of a member, in the order [`member`] reads them.
macro_rules! member_columns {
    () => {
        "user_id, role, joined, joined_at"
    };
}

/// A conversation's members, along its primary key.
pub(crate) const MEMBERS: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM members WHERE conversation_id = $1::text ORDER BY user_id"
);

const MEMBER: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM members WHERE conversation_id = $1::text AND user_id = $2::text"
);

const MEMBER_COUNT: &str = "SELECT member_count FROM conversations WHERE id = $1::text";

/// Adds a member to an existing conversation, clears its ban and counts
/// it: (conversation exists, added).
const ADD_MEMBER: &str = r#"
WITH conv AS (
    SELECT id FROM conversations WHERE id = $1::text
), added AS (
    INSERT INTO members (conversation_id, user_id, role, joined, joined_at)
    SELECT id, $2::text, $3::text, $4::int8, $5::int8 FROM conv
    ON CONFLICT DO NOTHING
    RETURNING 1
), unbanned AS (
    DELETE FROM bans WHERE conversation_id = $1::text AND user_id = $2::text
      AND EXISTS (SELECT 1 FROM added)
), counted AS (
    UPDATE conversations SET member_count = member_count + 1
    WHERE id = $1::text AND EXISTS (SELECT 1 FROM added)
)
SELECT EXISTS (SELECT 1 FROM conv), EXISTS (SELECT 1 FROM added)
"#;

/// Removes a member (banning it when `$3`) and counts it; answers the
/// member it was.
const REMOVE_MEMBER: &str = r#"
WITH gone AS (
    DELETE FROM members WHERE conversation_id = $1::text AND user_id = $2::text
    RETURNING user_id, role, joined, joined_at
), banned AS (
    INSERT INTO bans (conversation_id, user_id)
    SELECT $1::text, user_id FROM gone WHERE $3::bool
    ON CONFLICT DO NOTHING
), counted AS (
    UPDATE conversations SET member_count = member_count - 1
    WHERE id = $1::text AND EXISTS (SELECT 1 FROM gone)
)
SELECT user_id, role, joined, joined_at FROM gone
"#;

const SET_ROLE: &str = "UPDATE members SET role = $3::text \
     WHERE conversation_id = $1::text AND user_id = $2::text RETURNING 1";

const IS_BANNED: &str =
    "SELECT EXISTS (SELECT 1 FROM bans WHERE conversation_id = $1::text AND user_id = $2::text)";

/// A user's memberships, from `members_by_user` alone (an index-only scan).
/// Keeps a departure: only a later one replaces the one kept.
const RECORD_DEPARTURE: &str = r#"
INSERT INTO departures (user_id, conversation_id, joined, left_id, by_user, ts, body)
VALUES ($1::text, $2::text, $3::int8, $4::int8, $5::text, $6::int8, $7::text)
ON CONFLICT (user_id, conversation_id) DO UPDATE SET
    joined = excluded.joined, left_id = excluded.left_id, by_user = excluded.by_user,
    ts = excluded.ts, body = excluded.body
WHERE excluded.left_id > departures.left_id
"#;

const DEPARTURES: &str = "SELECT conversation_id, joined, left_id, by_user, ts, body \
     FROM departures WHERE user_id = $1::text";

pub(crate) const MEMBERSHIPS: &str = concat!(
    "SELECT conversation_id, ",
    member_columns!(),
    " FROM members WHERE user_id = $1::text ORDER BY conversation_id"
);

const CREATE_INVITE: &str = "INSERT INTO invites (code_hash, conversation_id, created_by, \
     created_at, max_uses, uses, expires_at, revoked) \
     VALUES ($1::text, $2::text, $3::text, $4::int8, $5::int4, $6::int4, $7::int8, $8::bool)";

/// Uses an invite once if it is usable at `$2`: one conditional update, so
/// racing redeems take turns on the row and each re-checks the count the
/// one before left (at most `max_uses` get through).
pub(crate) const REDEEM_INVITE: &str = "UPDATE invites SET uses = uses + 1 \
     WHERE code_hash = $1::text AND NOT revoked \
       AND (expires_at IS NULL OR $2::int8 < expires_at) \
       AND (max_uses IS NULL OR uses < max_uses) \
     RETURNING conversation_id";

/// Why an invite did not redeem (read only after it did not).
const INVITE_STATE: &str =
    "SELECT revoked, expires_at, max_uses, uses FROM invites WHERE code_hash = $1::text";

const REVOKE_INVITE: &str = "UPDATE invites SET revoked = true \
     WHERE code_hash = $1::text AND conversation_id = $2::text AND NOT revoked RETURNING 1";

fn kind_name(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Direct => "direct",
        ConversationKind::Group => "group",
    }
}

fn conversation(row: &Row) -> Result<Conversation> {
    let kind = match row.get::<_, &str>(1) {
        "direct" => ConversationKind::Direct,
        "group" => ConversationKind::Group,
        other => {
            // The CHECK constraint makes this unreachable short of a broken schema.
            return Err(Error::unavailable_msg(format!(
                "postgres: conversation has unknown kind {other:?}"
            )));
        }
    };
    Ok(Conversation {
        id: ConversationId::from(row.get::<_, &str>(0)),
        kind,
        name: row.get(2),
        created_by: UserId::from(row.get::<_, &str>(3)),
        created_at: row.get(4),
        join: join_from_db(row.get(5))?,
        history: history_from_db(row.get(6))?,
    })
}

/// A member from the `member_columns!` starting at `at`.
fn member(row: &Row, at: usize) -> Result<Member> {
    Ok(Member {
        user_id: UserId::from(row.get::<_, &str>(at)),
        role: role_from_db(row.get(at + 1))?,
        joined: from_db(row.get(at + 2)),
        joined_at: row.get(at + 3),
    })
}

impl PostgresStore {
    /// Inserts `conversation` with `members` unless its id is taken;
    /// returns whether it did.
    async fn create(&self, conversation: &Conversation, members: &[Member]) -> Result<bool> {
        // One row per user: the last record given for a user wins.
        let mut unique: Vec<&Member> = Vec::with_capacity(members.len());
        for m in members.iter().rev() {
            if !unique.iter().any(|u| u.user_id == m.user_id) {
                unique.push(m);
            }
        }
        let users: Vec<&str> = unique.iter().map(|m| m.user_id.as_str()).collect();
        let roles: Vec<&str> = unique.iter().map(|m| role_to_db(m.role)).collect();
        let joined: Vec<i64> = unique.iter().map(|m| to_db(m.joined)).collect();
        let joined_at: Vec<i64> = unique.iter().map(|m| m.joined_at).collect();
        let mut conn = self.shared.conn("create conversation").await?;
        let rows = conn
            .query(
                "create conversation",
                CREATE,
                &[
                    &conversation.id.as_str(),
                    &kind_name(conversation.kind),
                    &conversation.name,
                    &conversation.created_by.as_str(),
                    &conversation.created_at,
                    &join_to_db(conversation.join),
                    &history_to_db(conversation.history),
                    &users,
                    &roles,
                    &joined,
                    &joined_at,
                ],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) > 0)
    }
}

#[async_trait]
impl ConversationStore for PostgresStore {
    async fn create_group(&self, conversation: Conversation, members: &[Member]) -> Result<()> {
        if self.create(&conversation, members).await? {
            Ok(())
        } else {
            Err(Error::already_exists(format!(
                "conversation {}",
                conversation.id
            )))
        }
    }

    async fn ensure_direct(&self, conversation: Conversation) -> Result<(Conversation, bool)> {
        let Some((a, b)) = conversation.id.direct_pair() else {
            return Err(Error::invalid(format!(
                "{} is not a direct conversation id",
                conversation.id
            )));
        };
        if conversation.kind != ConversationKind::Direct {
            return Err(Error::invalid(format!(
                "conversation {} must be of kind direct",
                conversation.id
            )));
        }
        let at = conversation.created_at;
        let members = [a, b].map(|u| Member::founding(u, Role::Member, at));
        if self.create(&conversation, &members).await? {
            return Ok((conversation, true));
        }
        // Taken: by an earlier call, or a racing one that has committed by
        // now (the insert waited for it).
        let existing = self.conversation(&conversation.id).await?.ok_or_else(|| {
            Error::unavailable_msg(format!(
                "postgres: conversation {} was taken but cannot be read",
                conversation.id
            ))
        })?;
        Ok((existing, false))
    }

    async fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        let mut conn = self.shared.conn("conversation").await?;
        let rows = conn
            .query("conversation", CONVERSATION, &[&id.as_str()])
            .await?;
        rows.first().map(conversation).transpose()
    }

    async fn update_group(
        &self,
        id: &ConversationId,
        settings: &GroupSettings,
    ) -> Result<Conversation> {
        let mut conn = self.shared.conn("update_group").await?;
        let rows = conn
            .query(
                "update_group",
                UPDATE_GROUP,
                &[
                    &id.as_str(),
                    &settings.name,
                    &settings.join.map(join_to_db),
                    &settings.history.map(history_to_db),
                ],
            )
            .await?;
        match rows.first() {
            Some(row) => conversation(row),
            None => Err(Error::not_found(format!("group {id}"))),
        }
    }

    async fn members(&self, id: &ConversationId) -> Result<Vec<Member>> {
        let mut conn = self.shared.conn("members").await?;
        let rows = conn.query("members", MEMBERS, &[&id.as_str()]).await?;
        rows.iter().map(|r| member(r, 0)).collect()
    }

    async fn member(&self, id: &ConversationId, user: &UserId) -> Result<Option<Member>> {
        let mut conn = self.shared.conn("member").await?;
        let rows = conn
            .query("member", MEMBER, &[&id.as_str(), &user.as_str()])
            .await?;
        rows.first().map(|r| member(r, 0)).transpose()
    }

    async fn member_count(&self, id: &ConversationId) -> Result<u64> {
        let mut conn = self.shared.conn("member_count").await?;
        let rows = conn
            .query("member_count", MEMBER_COUNT, &[&id.as_str()])
            .await?;
        Ok(rows.first().map_or(0, |r| count(r.get(0))))
    }

    async fn add_member(&self, id: &ConversationId, member: Member) -> Result<bool> {
        let mut conn = self.shared.conn("add_member").await?;
        let rows = conn
            .query(
                "add_member",
                ADD_MEMBER,
                &[
                    &id.as_str(),
                    &member.user_id.as_str(),
                    &role_to_db(member.role),
                    &to_db(member.joined),
                    &member.joined_at,
                ],
            )
            .await?;
        let (exists, added) = rows
            .first()
            .map_or((false, false), |r| (r.get(0), r.get(1)));
        if !exists {
            return Err(Error::not_found(format!("conversation {id}")));
        }
        Ok(added)
    }

    async fn remove_member(
        &self,
        id: &ConversationId,
        user: &UserId,
        ban: bool,
    ) -> Result<Option<Member>> {
        let mut conn = self.shared.conn("remove_member").await?;
        let rows = conn
            .query(
                "remove_member",
                REMOVE_MEMBER,
                &[&id.as_str(), &user.as_str(), &ban],
            )
            .await?;
        rows.first().map(|r| member(r, 0)).transpose()
    }

    async fn set_role(&self, id: &ConversationId, user: &UserId, role: Role) -> Result<bool> {
        let mut conn = self.shared.conn("set_role").await?;
        let rows = conn
            .query(
                "set_role",
                SET_ROLE,
                &[&id.as_str(), &user.as_str(), &role_to_db(role)],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn is_banned(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let mut conn = self.shared.conn("is_banned").await?;
        let rows = conn
            .query("is_banned", IS_BANNED, &[&id.as_str(), &user.as_str()])
            .await?;
        Ok(rows.first().is_some_and(|r| r.get(0)))
    }

    async fn memberships(&self, user: &UserId) -> Result<Vec<(ConversationId, Member)>> {
        let mut conn = self.shared.conn("memberships").await?;
        let rows = conn
            .query("memberships", MEMBERSHIPS, &[&user.as_str()])
            .await?;
        rows.iter()
            .map(|r| Ok((ConversationId::from(r.get::<_, &str>(0)), member(r, 1)?)))
            .collect()
    }

    async fn record_departure(&self, user: &UserId, departure: Departure) -> Result<()> {
        let mut conn = self.shared.conn("record_departure").await?;
        conn.query(
            "record_departure",
            RECORD_DEPARTURE,
            &[
                &user.as_str(),
                &departure.conversation_id.as_str(),
                &to_db(departure.joined),
                &to_db(departure.left),
                &departure.by.as_str(),
                &departure.ts,
                &departure.body,
            ],
        )
        .await?;
        Ok(())
    }

    async fn departures(&self, user: &UserId) -> Result<Vec<Departure>> {
        let mut conn = self.shared.conn("departures").await?;
        let rows = conn
            .query("departures", DEPARTURES, &[&user.as_str()])
            .await?;
        Ok(rows
            .iter()
            .map(|r| Departure {
                conversation_id: ConversationId::from(r.get::<_, &str>(0)),
                joined: from_db(r.get(1)),
                left: from_db(r.get(2)),
                by: UserId::from(r.get::<_, &str>(3)),
                ts: r.get(4),
                body: r.get(5),
            })
            .collect())
    }

    async fn create_invite(&self, invite: Invite) -> Result<()> {
        let max_uses = invite
            .max_uses
            .map(i32::try_from)
            .transpose()
            .map_err(|_| Error::invalid(format!("max_uses {:?} is too large", invite.max_uses)))?;
        let uses = i32::try_from(invite.uses)
            .map_err(|_| Error::invalid(format!("uses {} is too large", invite.uses)))?;
        let mut conn = self.shared.conn("create_invite").await?;
        conn.query(
            "create_invite",
            CREATE_INVITE,
            &[
                &invite.code_hash,
                &invite.conversation_id.as_str(),
                &invite.created_by.as_str(),
                &invite.created_at,
                &max_uses,
                &uses,
                &invite.expires_at,
                &invite.revoked,
            ],
        )
        .await
        .map_err(|e| match e {
            Error::AlreadyExists { .. } => Error::already_exists("invite"),
            other => other,
        })?;
        Ok(())
    }

    async fn redeem_invite(&self, code_hash: &str, now: Millis) -> Result<ConversationId> {
        let mut conn = self.shared.conn("redeem_invite").await?;
        let rows = conn
            .query("redeem_invite", REDEEM_INVITE, &[&code_hash, &now])
            .await?;
        if let Some(row) = rows.first() {
            return Ok(ConversationId::from(row.get::<_, &str>(0)));
        }
        // Not redeemed: say why. The state may have moved since the update
        // (another redeem, a revoke), but only ever towards unusable.
        let rows = conn
            .query("redeem_invite", INVITE_STATE, &[&code_hash])
            .await?;
        let Some(row) = rows.first() else {
            return Err(Error::not_found("invite"));
        };
        let (revoked, expires_at, max_uses, uses): (bool, Option<i64>, Option<i32>, i32) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        Err(if revoked {
            Error::gone("the invite was revoked")
        } else if expires_at.is_some_and(|at| now >= at) {
            Error::gone("the invite expired")
        } else if max_uses.is_some_and(|max| uses >= max) {
            Error::gone("the invite is used up")
        } else {
            Error::gone("the invite cannot be used now")
        })
    }

    async fn revoke_invite(&self, id: &ConversationId, code_hash: &str) -> Result<bool> {
        let mut conn = self.shared.conn("revoke_invite").await?;
        let rows = conn
            .query("revoke_invite", REVOKE_INVITE, &[&code_hash, &id.as_str()])
            .await?;
        Ok(!rows.is_empty())
    }

    async fn ping(&self) -> Result<()> {
        self.shared.ping().await
    }
}
