//! [`ConversationStore`] for [`CassandraStore`]: the conversation row
//! (claimed with `INSERT … IF NOT EXISTS`), members both ways with the count
//! moved in the same lightweight transaction as each add and remove, bans,
//! and invites used by compare-and-set.

use async_trait::async_trait;
use chat_core::model::Departure;
use chat_core::store::ConversationStore;
use chat_core::{
    Conversation, ConversationId, ConversationKind, Error, GroupSettings, Invite, Member, Millis,
    Result, Role, UserId,
};
use futures::{StreamExt, TryStreamExt, stream};
use scylla::value::MaybeUnset;

use crate::codec::{
    Lwt, conversation_kind_from_cql, conversation_kind_to_cql, history_from_cql, history_to_cql,
    id_from_cql, id_to_cql, join_from_cql, join_to_cql, role_from_cql, write_time,
};
use crate::store::{BoxedRow, CassandraStore, row};

/// Member rows per unlogged batch when a conversation is created (one
/// partition, so one mutation).
const MEMBERS_PER_BATCH: usize = 100;

/// Writes in flight at once for the by-user rows of a new conversation.
const WRITES_IN_FLIGHT: usize = 32;

/// Transactions an add or remove may lose to others on the same
/// conversation (each loss is another member change) before it gives up.
const MAX_ATTEMPTS: usize = 64;

/// A `conversations` row: kind, name, created_by, created_at, join, history.
type ConversationRow = (
    String,
    Option<String>,
    String,
    i64,
    Option<String>,
    Option<String>,
);

fn conversation_from_row(id: &ConversationId, row: ConversationRow) -> Result<Conversation> {
    let (kind, name, created_by, created_at, join, history) = row;
    Ok(Conversation {
        id: id.clone(),
        kind: conversation_kind_from_cql(&kind)?,
        name,
        created_by: UserId::from(created_by),
        created_at,
        join: join
            .as_deref()
            .map_or(Ok(Default::default()), join_from_cql)?,
        history: history
            .as_deref()
            .map_or(Ok(Default::default()), history_from_cql)?,
    })
}

/// A `members` row as `statements::member` reads it: role, joined,
/// joined_at, member_count.
type MemberRow = (Option<String>, Option<i64>, Option<i64>, Option<i64>);

/// A member's values as stored: role, joined, joined_at.
fn member_values(m: &Member) -> (&'static str, i64, i64) {
    (m.role.as_str(), id_to_cql(m.joined), m.joined_at)
}

fn member_from_row(
    user: UserId,
    role: Option<String>,
    joined: Option<i64>,
    joined_at: Option<i64>,
) -> Result<Option<Member>> {
    // A row without its join point holds only a late role change of a
    // member removed meanwhile (an UPDATE creates the row it changes).
    let (Some(role), Some(joined), Some(joined_at)) = (role, joined, joined_at) else {
        return Ok(None);
    };
    Ok(Some(Member {
        user_id: user,
        role: role_from_cql(&role)?,
        joined: id_from_cql(joined),
        joined_at,
    }))
}

impl CassandraStore {
    /// Claims the conversation row; `None` when this call created it, else
    /// the conversation that holds the id.
    async fn claim_conversation(&self, c: &Conversation) -> Result<Option<Conversation>> {
        let name = match &c.name {
            Some(name) => MaybeUnset::Set(name.as_str()),
            None => MaybeUnset::Unset,
        };
        let result = self
            .run(
                &self.st.claim_conversation,
                (
                    c.id.as_str(),
                    conversation_kind_to_cql(c.kind),
                    name,
                    c.created_by.as_str(),
                    c.created_at,
                    join_to_cql(c.join),
                    history_to_cql(c.history),
                ),
                "create conversation",
            )
            .await?;
        if Lwt::from_result(result, "create conversation")?.applied {
            return Ok(None);
        }
        // The transaction's answer holds the row; read it whole instead of
        // decoding its untyped columns.
        self.conversation(&c.id)
            .await?
            .map(Some)
            .ok_or_else(|| Error::unavailable_msg("cassandra: a claimed conversation vanished"))
    }

    /// The member rows and count of a conversation being created (one
    /// partition: unlogged batches are single mutations), then the by-user
    /// rows.
    async fn write_members(&self, id: &ConversationId, members: &[Member]) -> Result<()> {
        let mut unique: Vec<&Member> = Vec::with_capacity(members.len());
        for m in members {
            if !unique.iter().any(|u| u.user_id == m.user_id) {
                unique.push(m);
            }
        }
        let chunks: Vec<&[&Member]> = unique.chunks(MEMBERS_PER_BATCH).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut statements: Vec<(_, BoxedRow)> = chunk
                .iter()
                .map(|m| {
                    let (role, joined, joined_at) = member_values(m);
                    (
                        &self.st.insert_member,
                        row((
                            id.to_string(),
                            m.user_id.to_string(),
                            role,
                            joined,
                            joined_at,
                        )),
                    )
                })
                .collect();
            if i + 1 == chunks.len() {
                // With the last rows: a count is only there once every row is.
                let count = i64::try_from(unique.len()).unwrap_or(i64::MAX);
                statements.push((&self.st.set_member_count, row((count, id.to_string()))));
            }
            self.partition_batch(statements, "write members").await?;
        }
        // Owned members: see `read_heads` on streams of borrowed items.
        let owned: Vec<Member> = unique.into_iter().cloned().collect();
        stream::iter(owned)
            .map(|m| async move { self.write_membership(id, &m).await })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn write_membership(&self, id: &ConversationId, m: &Member) -> Result<()> {
        let (role, joined, joined_at) = member_values(m);
        self.run(
            &self.st.insert_membership,
            (m.user_id.as_str(), id.as_str(), role, joined, joined_at),
            "write membership",
        )
        .await?;
        Ok(())
    }

    /// One member row with the conversation's count (`None` for the count
    /// when the partition has none), and the member if there is one.
    async fn member_and_count(
        &self,
        id: &ConversationId,
        user: &UserId,
    ) -> Result<(Option<Member>, Option<i64>)> {
        let rows: Vec<MemberRow> = self
            .rows(&self.st.member, (id.as_str(), user.as_str()), "read member")
            .await?;
        match rows.into_iter().next() {
            Some((role, joined, joined_at, count)) => Ok((
                member_from_row(user.clone(), role, joined, joined_at)?,
                count,
            )),
            None => Ok((None, self.stored_count(id).await?)),
        }
    }

    /// The count static column, if set.
    async fn stored_count(&self, id: &ConversationId) -> Result<Option<i64>> {
        let rows: Vec<(String, Option<i64>)> = self
            .rows(&self.st.member_count, (id.as_str(),), "read member count")
            .await?;
        Ok(rows.into_iter().next().and_then(|(_, n)| n))
    }

    /// The count, counted from the rows when a crash during the
    /// conversation's creation left it unset.
    async fn counted(&self, id: &ConversationId, stored: Option<i64>) -> Result<i64> {
        if let Some(n) = stored {
            return Ok(n);
        }
        let rows: Vec<(i64,)> = self
            .rows(&self.st.count_members, (id.as_str(),), "count members")
            .await?;
        Ok(rows.into_iter().next().map_or(0, |(n,)| n))
    }

    async fn is_banned_row(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let rows: Vec<(String,)> = self
            .rows(&self.st.ban, (id.as_str(), user.as_str()), "read ban")
            .await?;
        Ok(!rows.is_empty())
    }
}

#[async_trait]
impl ConversationStore for CassandraStore {
    /// The row is claimed first, so that a taken id never gains members. A
    /// crash before the members are written leaves a group nobody belongs
    /// to (unreachable: group ids are fresh).
    async fn create_group(&self, conversation: Conversation, members: &[Member]) -> Result<()> {
        if conversation.kind != ConversationKind::Group {
            return Err(Error::invalid(format!(
                "conversation {} must be of kind group",
                conversation.id
            )));
        }
        if self.claim_conversation(&conversation).await?.is_some() {
            return Err(Error::already_exists(format!(
                "conversation {}",
                conversation.id
            )));
        }
        self.write_members(&conversation.id, members).await
    }

    /// The row is claimed first; its two members follow. A call that finds
    /// the conversation without a member count (its creator stopped in
    /// between) writes them again from the stored row.
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
        let members =
            |at: Millis| [a.clone(), b.clone()].map(|u| Member::founding(u, Role::Member, at));
        let (existing, count) = futures::try_join!(
            self.conversation(&conversation.id),
            self.stored_count(&conversation.id),
        )?;
        if let Some(existing) = existing {
            if count.is_none() {
                self.write_members(&existing.id, &members(existing.created_at))
                    .await?;
            }
            return Ok((existing, false));
        }
        match self.claim_conversation(&conversation).await? {
            None => {
                self.write_members(&conversation.id, &members(conversation.created_at))
                    .await?;
                Ok((conversation, true))
            }
            Some(existing) => Ok((existing, false)),
        }
    }

    async fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        let rows: Vec<ConversationRow> = self
            .rows(&self.st.conversation, (id.as_str(),), "read conversation")
            .await?;
        rows.into_iter()
            .next()
            .map(|row| conversation_from_row(id, row))
            .transpose()
    }

    /// `UPDATE … IF kind = 'group'`: settings left `None` are bound unset,
    /// so they keep their value.
    async fn update_group(
        &self,
        id: &ConversationId,
        settings: &GroupSettings,
    ) -> Result<Conversation> {
        fn set(v: Option<&str>) -> MaybeUnset<&str> {
            v.map_or(MaybeUnset::Unset, MaybeUnset::Set)
        }
        let result = self
            .run(
                &self.st.update_group,
                (
                    set(settings.name.as_deref()),
                    set(settings.join.map(join_to_cql)),
                    set(settings.history.map(history_to_cql)),
                    id.as_str(),
                ),
                "update group",
            )
            .await?;
        if !Lwt::from_result(result, "update group")?.applied {
            return Err(Error::not_found(format!("group {id}")));
        }
        self.conversation(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("group {id}")))
    }

    async fn members(&self, id: &ConversationId) -> Result<Vec<Member>> {
        // A partition whose members all left still holds its static count,
        // which Cassandra answers as one row without a user: skipped.
        let rows: Vec<(Option<String>, Option<String>, Option<i64>, Option<i64>)> = self
            .paged(&self.st.members, (id.as_str(),), usize::MAX, "read members")
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (user, role, joined, joined_at) in rows {
            let Some(user) = user else { continue };
            out.extend(member_from_row(
                UserId::from(user),
                role,
                joined,
                joined_at,
            )?);
        }
        Ok(out)
    }

    async fn member(&self, id: &ConversationId, user: &UserId) -> Result<Option<Member>> {
        let rows: Vec<MemberRow> = self
            .rows(&self.st.member, (id.as_str(), user.as_str()), "read member")
            .await?;
        match rows.into_iter().next() {
            Some((role, joined, joined_at, _)) => {
                member_from_row(user.clone(), role, joined, joined_at)
            }
            None => Ok(None),
        }
    }

    async fn member_count(&self, id: &ConversationId) -> Result<u64> {
        let stored = self.stored_count(id).await?;
        Ok(u64::try_from(self.counted(id, stored).await?).unwrap_or(0))
    }

    /// One transaction on the members partition inserts the row if missing
    /// and moves the count from the value read (`IF member_count = n`), so
    /// racing adds add once and keep the count exact; then the by-user row
    /// and the ban (if any) follow. A repeated add (answering false) writes
    /// the by-user row again, which repairs one that a crash lost.
    async fn add_member(&self, id: &ConversationId, member: Member) -> Result<bool> {
        let user = member.user_id.clone();
        for _ in 0..MAX_ATTEMPTS {
            let (conversation, (existing, count), banned) = futures::try_join!(
                self.conversation(id),
                self.member_and_count(id, &user),
                self.is_banned_row(id, &user),
            )?;
            if conversation.is_none() {
                return Err(Error::not_found(format!("conversation {id}")));
            }
            if let Some(existing) = existing {
                self.write_membership(id, &existing).await?;
                return Ok(false);
            }
            let n = self.counted(id, count).await?;
            let (role, joined, joined_at) = member_values(&member);
            let result = self
                .conditional_batch(
                    vec![
                        (
                            &self.st.claim_member,
                            row((id.to_string(), user.to_string(), role, joined, joined_at)),
                        ),
                        (
                            &self.st.move_member_count,
                            row((n + 1, id.to_string(), count)),
                        ),
                    ],
                    "add member",
                )
                .await?;
            if !Lwt::from_result(result, "add member")?.applied {
                continue;
            }
            self.write_membership(id, &member).await?;
            if banned {
                self.run(
                    &self.st.delete_ban,
                    (id.as_str(), user.as_str()),
                    "clear ban",
                )
                .await?;
            }
            return Ok(true);
        }
        Err(Error::unavailable_msg(format!(
            "cassandra: adding {user} to {id} lost {MAX_ATTEMPTS} times to other changes"
        )))
    }

    /// As `add_member`: one transaction deletes the row if present and
    /// moves the count; the by-user row and the ban follow.
    async fn remove_member(
        &self,
        id: &ConversationId,
        user: &UserId,
        ban: bool,
    ) -> Result<Option<Member>> {
        for _ in 0..MAX_ATTEMPTS {
            let (existing, count) = self.member_and_count(id, user).await?;
            let Some(existing) = existing else {
                return Ok(None);
            };
            let n = self.counted(id, count).await?;
            let result = self
                .conditional_batch(
                    vec![
                        (
                            &self.st.release_member,
                            row((id.to_string(), user.to_string())),
                        ),
                        (
                            &self.st.move_member_count,
                            row(((n - 1).max(0), id.to_string(), count)),
                        ),
                    ],
                    "remove member",
                )
                .await?;
            if !Lwt::from_result(result, "remove member")?.applied {
                continue;
            }
            let by_user = self.run(
                &self.st.delete_membership,
                (user.as_str(), id.as_str()),
                "remove membership",
            );
            let ban_row = async {
                if ban {
                    self.run(
                        &self.st.insert_ban,
                        (id.as_str(), user.as_str()),
                        "ban member",
                    )
                    .await?;
                }
                Ok(())
            };
            futures::try_join!(by_user, ban_row)?;
            return Ok(Some(existing));
        }
        Err(Error::unavailable_msg(format!(
            "cassandra: removing {user} from {id} lost {MAX_ATTEMPTS} times to other changes"
        )))
    }

    /// `UPDATE … IF EXISTS` on the member row, then the by-user row.
    async fn set_role(&self, id: &ConversationId, user: &UserId, role: Role) -> Result<bool> {
        let result = self
            .run(
                &self.st.set_role,
                (role.as_str(), id.as_str(), user.as_str()),
                "set role",
            )
            .await?;
        if !Lwt::from_result(result, "set role")?.applied {
            return Ok(false);
        }
        self.run(
            &self.st.set_membership_role,
            (role.as_str(), user.as_str(), id.as_str()),
            "set role",
        )
        .await?;
        Ok(true)
    }

    async fn is_banned(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        self.is_banned_row(id, user).await
    }

    async fn memberships(&self, user: &UserId) -> Result<Vec<(ConversationId, Member)>> {
        let rows: Vec<(String, Option<String>, Option<i64>, Option<i64>)> = self
            .paged(
                &self.st.memberships,
                (user.as_str(),),
                usize::MAX,
                "read memberships",
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (c, role, joined, joined_at) in rows {
            if let Some(m) = member_from_row(user.clone(), role, joined, joined_at)? {
                out.push((ConversationId::from(c), m));
            }
        }
        Ok(out)
    }

    /// Written at the write time of the event that ended the membership
    /// (see `codec::write_time`), so that the latest departure wins in
    /// whatever order the writes arrive. Two departures of one user from one
    /// group are a re-add and a removal (each a lightweight transaction)
    /// apart, so they never share a write time.
    async fn record_departure(&self, user: &UserId, departure: Departure) -> Result<()> {
        self.run(
            &self.st.record_departure,
            (
                user.as_str(),
                departure.conversation_id.as_str(),
                id_to_cql(departure.joined),
                id_to_cql(departure.left),
                departure.by.as_str(),
                departure.ts,
                departure.body.as_str(),
                write_time(departure.left),
            ),
            "record a departure",
        )
        .await?;
        Ok(())
    }

    async fn departures(&self, user: &UserId) -> Result<Vec<Departure>> {
        let rows: Vec<(String, i64, i64, String, i64, String)> = self
            .paged(
                &self.st.departures,
                (user.as_str(),),
                usize::MAX,
                "read departures",
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(c, joined, left, by, ts, body)| Departure {
                conversation_id: ConversationId::from(c),
                joined: id_from_cql(joined),
                left: id_from_cql(left),
                by: UserId::from(by),
                ts,
                body,
            })
            .collect())
    }

    async fn create_invite(&self, invite: Invite) -> Result<()> {
        let max_uses = invite
            .max_uses
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        let result = self
            .run(
                &self.st.claim_invite,
                (
                    invite.code_hash.as_str(),
                    invite.conversation_id.as_str(),
                    invite.created_by.as_str(),
                    invite.created_at,
                    max_uses.map_or(MaybeUnset::Unset, MaybeUnset::Set),
                    i32::try_from(invite.uses).unwrap_or(i32::MAX),
                    invite.expires_at.map_or(MaybeUnset::Unset, MaybeUnset::Set),
                    invite.revoked,
                ),
                "create invite",
            )
            .await?;
        if !Lwt::from_result(result, "create invite")?.applied {
            return Err(Error::already_exists("invite"));
        }
        Ok(())
    }

    /// Reads the invite, checks it, then counts the use with
    /// `UPDATE … IF uses = <read> AND revoked = false`: of racing redeems,
    /// one wins each count, so never more than `max_uses` get through.
    async fn redeem_invite(&self, code_hash: &str, now: Millis) -> Result<ConversationId> {
        for _ in 0..MAX_ATTEMPTS {
            let rows: Vec<(String, Option<i32>, Option<i32>, Option<i64>, Option<bool>)> = self
                .rows(&self.st.invite, (code_hash,), "read invite")
                .await?;
            let Some((conversation, max_uses, uses, expires_at, revoked)) = rows.into_iter().next()
            else {
                return Err(Error::not_found("invite"));
            };
            if revoked.unwrap_or(false) {
                return Err(Error::gone("the invite was revoked"));
            }
            if expires_at.is_some_and(|at| now >= at) {
                return Err(Error::gone("the invite expired"));
            }
            let uses = uses.unwrap_or(0);
            if max_uses.is_some_and(|max| uses >= max) {
                return Err(Error::gone("the invite is used up"));
            }
            let result = self
                .run(
                    &self.st.use_invite,
                    (uses.saturating_add(1), code_hash, uses),
                    "redeem invite",
                )
                .await?;
            if Lwt::from_result(result, "redeem invite")?.applied {
                return Ok(ConversationId::from(conversation));
            }
        }
        Err(Error::unavailable_msg(format!(
            "cassandra: redeeming an invite lost {MAX_ATTEMPTS} times to other redeems"
        )))
    }

    async fn revoke_invite(&self, id: &ConversationId, code_hash: &str) -> Result<bool> {
        let result = self
            .run(
                &self.st.revoke_invite,
                (code_hash, id.as_str()),
                "revoke invite",
            )
            .await?;
        Ok(Lwt::from_result(result, "revoke invite")?.applied)
    }

    async fn ping(&self) -> Result<()> {
        self.ping_cluster().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::MessageId;

    #[test]
    fn member_rows_without_a_join_point_are_not_members() {
        let u = UserId::from("u");
        assert_eq!(
            member_from_row(u.clone(), Some("admin".into()), None, None).unwrap(),
            None
        );
        let m = member_from_row(
            u.clone(),
            Some("owner".into()),
            Some(id_to_cql(MessageId(0))),
            Some(5),
        )
        .unwrap()
        .unwrap();
        assert_eq!(m, Member::founding(u, Role::Owner, 5));
    }
}
