//! [`ConversationStore`] for [`CassandraStore`]: the conversation row,
//! claimed with `INSERT … IF NOT EXISTS`, and membership kept both ways.

use async_trait::async_trait;
use chat_core::store::ConversationStore;
use chat_core::{Conversation, ConversationId, ConversationKind, Error, Result, UserId};
use scylla::value::MaybeUnset;

use crate::codec::{Lwt, required_bigint, required_text};
use crate::store::{BoxedRow, CassandraStore, row};

/// Members written per logged batch (two rows each).
const MEMBERS_PER_BATCH: usize = 100;

fn kind_to_cql(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Direct => "direct",
        ConversationKind::Group => "group",
    }
}

fn kind_from_cql(kind: &str) -> Result<ConversationKind> {
    match kind {
        "direct" => Ok(ConversationKind::Direct),
        "group" => Ok(ConversationKind::Group),
        other => Err(Error::unavailable_msg(format!(
            "cassandra: unknown conversation kind {other:?}"
        ))),
    }
}

impl CassandraStore {
    /// Claims the conversation row; `None` when it was created, else the
    /// conversation that holds the id.
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
                    kind_to_cql(c.kind),
                    name,
                    c.created_by.as_str(),
                    c.created_at,
                ),
                "create conversation",
            )
            .await?;
        let lwt = Lwt::from_result(result, "create conversation")?;
        if lwt.applied {
            return Ok(None);
        }
        let what = "existing conversation";
        Ok(Some(Conversation {
            id: c.id.clone(),
            kind: kind_from_cql(&required_text(&lwt.existing, "kind", what)?)?,
            name: lwt.text("name"),
            created_by: UserId::from(required_text(&lwt.existing, "created_by", what)?),
            created_at: required_bigint(&lwt.existing, "created_at", what)?,
        }))
    }

    /// Membership rows both ways, in logged batches.
    async fn write_members(&self, id: &ConversationId, members: &[UserId]) -> Result<()> {
        for chunk in members.chunks(MEMBERS_PER_BATCH) {
            let mut statements: Vec<(_, BoxedRow)> = Vec::with_capacity(2 * chunk.len());
            for user in chunk {
                statements.push((
                    &self.st.insert_member,
                    row((id.to_string(), user.to_string())),
                ));
                statements.push((
                    &self.st.insert_conversation_of_user,
                    row((user.to_string(), id.to_string())),
                ));
            }
            self.logged_batch(statements, "write members").await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ConversationStore for CassandraStore {
    /// The row is claimed first so that a taken id never gains members; a
    /// crash before the members are written leaves a group nobody belongs
    /// to (unreachable: group ids are fresh).
    async fn create_group(&self, conversation: Conversation, members: &[UserId]) -> Result<()> {
        if self.claim_conversation(&conversation).await?.is_some() {
            return Err(Error::already_exists(format!(
                "conversation {}",
                conversation.id
            )));
        }
        self.write_members(&conversation.id, members).await
    }

    /// The two members are written before the row is claimed, so a crash in
    /// between is finished by the next call instead of leaving a direct
    /// conversation without members.
    async fn ensure_direct(&self, conversation: Conversation) -> Result<Conversation> {
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
        if let Some(existing) = self.conversation(&conversation.id).await? {
            return Ok(existing);
        }
        self.write_members(&conversation.id, &[a, b]).await?;
        Ok(self
            .claim_conversation(&conversation)
            .await?
            .unwrap_or(conversation))
    }

    async fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        let rows: Vec<(String, Option<String>, String, i64)> = self
            .rows(
                &self.st.select_conversation,
                (id.as_str(),),
                "read conversation",
            )
            .await?;
        rows.into_iter()
            .next()
            .map(|(kind, name, created_by, created_at)| {
                Ok(Conversation {
                    id: id.clone(),
                    kind: kind_from_cql(&kind)?,
                    name,
                    created_by: UserId::from(created_by),
                    created_at,
                })
            })
            .transpose()
    }

    async fn members(&self, id: &ConversationId) -> Result<Vec<UserId>> {
        let rows: Vec<(String,)> = self
            .paged(
                &self.st.select_members,
                (id.as_str(),),
                usize::MAX,
                "read members",
            )
            .await?;
        Ok(rows.into_iter().map(|(u,)| UserId::from(u)).collect())
    }

    async fn is_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let rows: Vec<(String,)> = self
            .rows(
                &self.st.select_member,
                (id.as_str(), user.as_str()),
                "read member",
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// `INSERT … IF NOT EXISTS` decides who added the member; the reverse
    /// row is written in both cases, which also repairs one a crash lost.
    async fn add_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        if self.conversation(id).await?.is_none() {
            return Err(Error::not_found(format!("conversation {id}")));
        }
        let result = self
            .run(
                &self.st.claim_member,
                (id.as_str(), user.as_str()),
                "add member",
            )
            .await?;
        let added = Lwt::from_result(result, "add member")?.applied;
        self.run(
            &self.st.insert_conversation_of_user,
            (user.as_str(), id.as_str()),
            "add conversation of user",
        )
        .await?;
        Ok(added)
    }

    /// `DELETE … IF EXISTS` decides who removed the member; the reverse row
    /// is deleted in both cases.
    async fn remove_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let result = self
            .run(
                &self.st.release_member,
                (id.as_str(), user.as_str()),
                "remove member",
            )
            .await?;
        let removed = Lwt::from_result(result, "remove member")?.applied;
        self.run(
            &self.st.delete_conversation_of_user,
            (user.as_str(), id.as_str()),
            "remove conversation of user",
        )
        .await?;
        Ok(removed)
    }

    async fn conversations_of(&self, user: &UserId) -> Result<Vec<ConversationId>> {
        let rows: Vec<(String,)> = self
            .paged(
                &self.st.select_conversations_of_user,
                (user.as_str(),),
                usize::MAX,
                "read conversations of user",
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(c,)| ConversationId::from(c))
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        self.ping_cluster().await
    }
}
