//! [`ConversationStore`] for [`SqliteStore`]: `conversations`, `members`,
//! `bans` and `invites`. Each change is one write on the writer, so checks
//! and changes (an add that must not repeat, an invite's use count) happen
//! in one step: racing calls are applied one after the other.

use async_trait::async_trait;
use chat_core::model::Departure;
use chat_core::store::ConversationStore;
use chat_core::{
    Conversation, ConversationId, ConversationKind, Error, GroupSettings, Invite, Member, Millis,
    Result, Role, UserId,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::SqliteError;
use crate::ids::{from_db, to_db};
use crate::rows::{self, conversation_columns, invite_columns, member_columns};
use crate::store::SqliteStore;

fn load_conversation(
    conn: &Connection,
    id: &ConversationId,
) -> rusqlite::Result<Option<Conversation>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations WHERE conversation_id = ?1"
    ))?
    .query_row([id.as_str()], rows::conversation)
    .optional()
}

/// Stores `conversation`; false (and nothing written) when its id is taken.
fn insert_conversation(conn: &Connection, c: &Conversation) -> rusqlite::Result<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO conversations \
             (conversation_id, kind, name, created_by, created_at, join_policy, history) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (conversation_id) DO NOTHING",
        )?
        .execute(params![
            c.id.as_str(),
            rows::kind_code(c.kind),
            c.name,
            c.created_by.as_str(),
            c.created_at,
            rows::join_code(c.join),
            rows::history_code(c.history),
        ])?;
    Ok(inserted == 1)
}

/// Stores `member` of `id`, replacing a row for the same user.
fn put_member(conn: &Connection, id: &ConversationId, member: &Member) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO members (conversation_id, user_id, role, joined, joined_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id.as_str(),
        member.user_id.as_str(),
        member.role.as_str(),
        to_db(member.joined),
        member.joined_at,
    ])?;
    Ok(())
}

fn load_member(
    conn: &Connection,
    id: &ConversationId,
    user: &UserId,
) -> rusqlite::Result<Option<Member>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        member_columns!(),
        " FROM members WHERE conversation_id = ?1 AND user_id = ?2"
    ))?
    .query_row(params![id.as_str(), user.as_str()], rows::member)
    .optional()
}

fn create_group(
    conn: &Connection,
    conversation: &Conversation,
    members: &[Member],
) -> Result<(), SqliteError> {
    if !insert_conversation(conn, conversation)? {
        return Err(Error::already_exists(format!("conversation {}", conversation.id)).into());
    }
    for member in members {
        put_member(conn, &conversation.id, member)?;
    }
    Ok(())
}

fn ensure_direct(
    conn: &Connection,
    conversation: Conversation,
) -> Result<(Conversation, bool), SqliteError> {
    let Some((a, b)) = conversation.id.direct_pair() else {
        return Err(Error::invalid(format!(
            "{} is not a direct conversation id",
            conversation.id
        ))
        .into());
    };
    if conversation.kind != ConversationKind::Direct {
        return Err(Error::invalid(format!(
            "conversation {} must be of kind direct",
            conversation.id
        ))
        .into());
    }
    if let Some(existing) = load_conversation(conn, &conversation.id)? {
        return Ok((existing, false));
    }
    insert_conversation(conn, &conversation)?;
    for user in [a, b] {
        let member = Member::founding(user, Role::Member, conversation.created_at);
        put_member(conn, &conversation.id, &member)?;
    }
    Ok((conversation, true))
}

fn update_group(
    conn: &Connection,
    id: &ConversationId,
    settings: &GroupSettings,
) -> Result<Conversation, SqliteError> {
    let changed = conn
        .prepare_cached(
            "UPDATE conversations SET name = coalesce(?2, name), \
             join_policy = coalesce(?3, join_policy), history = coalesce(?4, history) \
             WHERE conversation_id = ?1 AND kind = 'group'",
        )?
        .execute(params![
            id.as_str(),
            settings.name,
            settings.join.map(rows::join_code),
            settings.history.map(rows::history_code),
        ])?;
    let group = match load_conversation(conn, id)? {
        Some(group) if changed == 1 => group,
        _ => return Err(Error::not_found(format!("group {id}")).into()),
    };
    Ok(group)
}

fn add_member(
    conn: &Connection,
    id: &ConversationId,
    member: &Member,
) -> Result<bool, SqliteError> {
    if load_conversation(conn, id)?.is_none() {
        return Err(Error::not_found(format!("conversation {id}")).into());
    }
    if load_member(conn, id, &member.user_id)?.is_some() {
        return Ok(false);
    }
    put_member(conn, id, member)?;
    conn.prepare_cached("DELETE FROM bans WHERE conversation_id = ?1 AND user_id = ?2")?
        .execute(params![id.as_str(), member.user_id.as_str()])?;
    Ok(true)
}

fn remove_member(
    conn: &Connection,
    id: &ConversationId,
    user: &UserId,
    ban: bool,
) -> Result<Option<Member>, SqliteError> {
    let Some(member) = load_member(conn, id, user)? else {
        return Ok(None);
    };
    conn.prepare_cached("DELETE FROM members WHERE conversation_id = ?1 AND user_id = ?2")?
        .execute(params![id.as_str(), user.as_str()])?;
    if ban {
        conn.prepare_cached(
            "INSERT INTO bans (conversation_id, user_id) VALUES (?1, ?2) \
             ON CONFLICT (conversation_id, user_id) DO NOTHING",
        )?
        .execute(params![id.as_str(), user.as_str()])?;
    }
    Ok(Some(member))
}

fn create_invite(conn: &Connection, invite: &Invite) -> Result<(), SqliteError> {
    let inserted = conn
        .prepare_cached(concat!(
            "INSERT INTO invites (",
            invite_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (code_hash) DO NOTHING"
        ))?
        .execute(params![
            invite.code_hash,
            invite.conversation_id.as_str(),
            invite.created_by.as_str(),
            invite.created_at,
            invite.max_uses,
            invite.uses,
            invite.expires_at,
            invite.revoked,
        ])?;
    if inserted == 0 {
        return Err(Error::already_exists("invite").into());
    }
    Ok(())
}

fn redeem_invite(
    conn: &Connection,
    code_hash: &str,
    now: Millis,
) -> Result<ConversationId, SqliteError> {
    let invite = conn
        .prepare_cached(concat!(
            "SELECT ",
            invite_columns!(),
            " FROM invites WHERE code_hash = ?1"
        ))?
        .query_row([code_hash], rows::invite)
        .optional()?
        .ok_or_else(|| Error::not_found("invite"))?;
    if invite.revoked {
        return Err(Error::gone("the invite was revoked").into());
    }
    if invite.expires_at.is_some_and(|at| now >= at) {
        return Err(Error::gone("the invite expired").into());
    }
    if invite.max_uses.is_some_and(|max| invite.uses >= max) {
        return Err(Error::gone("the invite is used up").into());
    }
    conn.prepare_cached("UPDATE invites SET uses = uses + 1 WHERE code_hash = ?1")?
        .execute([code_hash])?;
    Ok(invite.conversation_id)
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create_group(&self, conversation: Conversation, members: &[Member]) -> Result<()> {
        let members = members.to_vec();
        Ok(self
            .write(move |c| create_group(c, &conversation, &members))
            .await?)
    }

    async fn ensure_direct(&self, conversation: Conversation) -> Result<(Conversation, bool)> {
        // Most calls find it: read first, and write only when it is missing.
        let id = conversation.id.clone();
        if conversation.id.direct_pair().is_some()
            && conversation.kind == ConversationKind::Direct
            && let Some(existing) = self.read(move |c| Ok(load_conversation(c, &id)?)).await?
        {
            return Ok((existing, false));
        }
        Ok(self.write(move |c| ensure_direct(c, conversation)).await?)
    }

    async fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        let id = id.clone();
        Ok(self.read(move |c| Ok(load_conversation(c, &id)?)).await?)
    }

    async fn update_group(
        &self,
        id: &ConversationId,
        settings: &GroupSettings,
    ) -> Result<Conversation> {
        let (id, settings) = (id.clone(), settings.clone());
        Ok(self.write(move |c| update_group(c, &id, &settings)).await?)
    }

    async fn members(&self, id: &ConversationId) -> Result<Vec<Member>> {
        let id = id.clone();
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached(concat!(
                    "SELECT ",
                    member_columns!(),
                    " FROM members WHERE conversation_id = ?1 ORDER BY user_id"
                ))?;
                let rows = stmt.query_map([id.as_str()], rows::member)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await?)
    }

    async fn member(&self, id: &ConversationId, user: &UserId) -> Result<Option<Member>> {
        let (id, user) = (id.clone(), user.clone());
        Ok(self.read(move |c| Ok(load_member(c, &id, &user)?)).await?)
    }

    async fn member_count(&self, id: &ConversationId) -> Result<u64> {
        let id = id.clone();
        Ok(self
            .read(move |c| {
                let n: i64 = c
                    .prepare_cached("SELECT count(*) FROM members WHERE conversation_id = ?1")?
                    .query_row([id.as_str()], |r| r.get(0))?;
                Ok(n as u64)
            })
            .await?)
    }

    async fn add_member(&self, id: &ConversationId, member: Member) -> Result<bool> {
        let id = id.clone();
        Ok(self.write(move |c| add_member(c, &id, &member)).await?)
    }

    async fn remove_member(
        &self,
        id: &ConversationId,
        user: &UserId,
        ban: bool,
    ) -> Result<Option<Member>> {
        let (id, user) = (id.clone(), user.clone());
        Ok(self
            .write(move |c| remove_member(c, &id, &user, ban))
            .await?)
    }

    async fn set_role(&self, id: &ConversationId, user: &UserId, role: Role) -> Result<bool> {
        let (id, user) = (id.clone(), user.clone());
        Ok(self
            .write(move |c| {
                let changed = c
                    .prepare_cached(
                        "UPDATE members SET role = ?3 WHERE conversation_id = ?1 AND user_id = ?2",
                    )?
                    .execute(params![id.as_str(), user.as_str(), role.as_str()])?;
                Ok(changed == 1)
            })
            .await?)
    }

    async fn is_banned(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let (id, user) = (id.clone(), user.clone());
        Ok(self
            .read(move |c| {
                let found = c
                    .prepare_cached(
                        "SELECT 1 FROM bans WHERE conversation_id = ?1 AND user_id = ?2",
                    )?
                    .exists(params![id.as_str(), user.as_str()])?;
                Ok(found)
            })
            .await?)
    }

    async fn memberships(&self, user: &UserId) -> Result<Vec<(ConversationId, Member)>> {
        let user = user.clone();
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached(concat!(
                    "SELECT ",
                    member_columns!(),
                    ", conversation_id FROM members WHERE user_id = ?1 \
                     ORDER BY conversation_id"
                ))?;
                let rows = stmt.query_map([user.as_str()], |r| {
                    Ok((
                        ConversationId::from(r.get::<_, String>(4)?),
                        rows::member(r)?,
                    ))
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await?)
    }

    async fn record_departure(&self, user: &UserId, departure: Departure) -> Result<()> {
        let user = user.clone();
        Ok(self
            .write(move |c| {
                // Only a later departure replaces the one kept.
                c.prepare_cached(
                    "INSERT INTO departures \
                     (user_id, conversation_id, joined, left_id, by_user, ts, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (user_id, conversation_id) DO UPDATE SET \
                     joined = excluded.joined, left_id = excluded.left_id, \
                     by_user = excluded.by_user, ts = excluded.ts, body = excluded.body \
                     WHERE excluded.left_id > departures.left_id",
                )?
                .execute(params![
                    user.as_str(),
                    departure.conversation_id.as_str(),
                    to_db(departure.joined),
                    to_db(departure.left),
                    departure.by.as_str(),
                    departure.ts,
                    departure.body,
                ])?;
                Ok(())
            })
            .await?)
    }

    async fn departures(&self, user: &UserId) -> Result<Vec<Departure>> {
        let user = user.clone();
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT conversation_id, joined, left_id, by_user, ts, body \
                     FROM departures WHERE user_id = ?1",
                )?;
                let rows = stmt.query_map([user.as_str()], |r| {
                    Ok(Departure {
                        conversation_id: ConversationId::from(r.get::<_, String>(0)?),
                        joined: from_db(r.get(1)?),
                        left: from_db(r.get(2)?),
                        by: UserId::from(r.get::<_, String>(3)?),
                        ts: r.get(4)?,
                        body: r.get(5)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await?)
    }

    async fn create_invite(&self, invite: Invite) -> Result<()> {
        Ok(self.write(move |c| create_invite(c, &invite)).await?)
    }

    async fn redeem_invite(&self, code_hash: &str, now: Millis) -> Result<ConversationId> {
        let code_hash = code_hash.to_owned();
        Ok(self
            .write(move |c| redeem_invite(c, &code_hash, now))
            .await?)
    }

    async fn revoke_invite(&self, id: &ConversationId, code_hash: &str) -> Result<bool> {
        let (id, code_hash) = (id.clone(), code_hash.to_owned());
        Ok(self
            .write(move |c| {
                let changed = c
                    .prepare_cached(
                        "UPDATE invites SET revoked = 1 \
                         WHERE code_hash = ?1 AND conversation_id = ?2 AND revoked = 0",
                    )?
                    .execute(params![code_hash, id.as_str()])?;
                Ok(changed == 1)
            })
            .await?)
    }

    async fn ping(&self) -> Result<()> {
        SqliteStore::ping(self).await
    }
}
