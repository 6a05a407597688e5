//! [`ConversationStore`] for [`PostgresStore`]: one statement per call.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chat_core::store::ConversationStore;
use chat_core::{Conversation, ConversationId, ConversationKind, Error, Result, UserId};
use tokio_postgres::Row;

use crate::store::PostgresStore;

/// Creates a conversation with its members unless the id is taken; the
/// count says whether it was created.
const CREATE: &str = r#"
WITH conv AS (
    INSERT INTO conversations (id, kind, name, created_by, created_at)
    VALUES ($1::text, $2::text, $3::text, $4::text, $5::int8)
    ON CONFLICT DO NOTHING
    RETURNING id
), joined AS (
    INSERT INTO members (conversation_id, user_id)
    SELECT conv.id, u FROM conv, unnest($6::text[]) AS u
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM conv
"#;

const CONVERSATION: &str =
    "SELECT id, kind, name, created_by, created_at FROM conversations WHERE id = $1::text";

pub(crate) const MEMBERS: &str =
    "SELECT user_id FROM members WHERE conversation_id = $1::text ORDER BY user_id";

const IS_MEMBER: &str =
    "SELECT EXISTS (SELECT 1 FROM members WHERE conversation_id = $1::text AND user_id = $2::text)";

/// Adds a member to an existing conversation: (conversation exists, added).
const ADD_MEMBER: &str = r#"
WITH conv AS (
    SELECT id FROM conversations WHERE id = $1::text
), added AS (
    INSERT INTO members (conversation_id, user_id)
    SELECT id, $2::text FROM conv
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM conv), (SELECT count(*) FROM added)
"#;

const REMOVE_MEMBER: &str =
    "DELETE FROM members WHERE conversation_id = $1::text AND user_id = $2::text RETURNING 1";

pub(crate) const CONVERSATIONS_OF: &str =
    "SELECT conversation_id FROM members WHERE user_id = $1::text ORDER BY conversation_id";

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
    })
}

impl PostgresStore {
    /// Inserts `conversation` with `members` unless its id is taken;
    /// returns whether it did.
    async fn create(&self, conversation: &Conversation, members: &[UserId]) -> Result<bool> {
        let members: BTreeSet<&str> = members.iter().map(UserId::as_str).collect();
        let members: Vec<&str> = members.into_iter().collect();
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
                    &members,
                ],
            )
            .await?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0) > 0)
    }
}

#[async_trait]
impl ConversationStore for PostgresStore {
    async fn create_group(&self, conversation: Conversation, members: &[UserId]) -> Result<()> {
        if self.create(&conversation, members).await? {
            Ok(())
        } else {
            Err(Error::already_exists(format!(
                "conversation {}",
                conversation.id
            )))
        }
    }

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
        if self.create(&conversation, &[a, b]).await? {
            return Ok(conversation);
        }
        // Taken: by an earlier call, or a racing one that has committed by
        // now (the insert waited for it).
        self.conversation(&conversation.id).await?.ok_or_else(|| {
            Error::unavailable_msg(format!(
                "postgres: conversation {} was taken but cannot be read",
                conversation.id
            ))
        })
    }

    async fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        let mut conn = self.shared.conn("conversation").await?;
        let rows = conn
            .query("conversation", CONVERSATION, &[&id.as_str()])
            .await?;
        rows.first().map(conversation).transpose()
    }

    async fn members(&self, id: &ConversationId) -> Result<Vec<UserId>> {
        let mut conn = self.shared.conn("members").await?;
        let rows = conn.query("members", MEMBERS, &[&id.as_str()]).await?;
        Ok(rows
            .iter()
            .map(|r| UserId::from(r.get::<_, &str>(0)))
            .collect())
    }

    async fn is_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let mut conn = self.shared.conn("is_member").await?;
        let rows = conn
            .query("is_member", IS_MEMBER, &[&id.as_str(), &user.as_str()])
            .await?;
        Ok(rows.first().is_some_and(|r| r.get(0)))
    }

    async fn add_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let mut conn = self.shared.conn("add_member").await?;
        let rows = conn
            .query("add_member", ADD_MEMBER, &[&id.as_str(), &user.as_str()])
            .await?;
        let (exists, added) = rows
            .first()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
            .unwrap_or((0, 0));
        if exists == 0 {
            return Err(Error::not_found(format!("conversation {id}")));
        }
        Ok(added > 0)
    }

    async fn remove_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let mut conn = self.shared.conn("remove_member").await?;
        let rows = conn
            .query(
                "remove_member",
                REMOVE_MEMBER,
                &[&id.as_str(), &user.as_str()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn conversations_of(&self, user: &UserId) -> Result<Vec<ConversationId>> {
        let mut conn = self.shared.conn("conversations_of").await?;
        let rows = conn
            .query("conversations_of", CONVERSATIONS_OF, &[&user.as_str()])
            .await?;
        Ok(rows
            .iter()
            .map(|r| ConversationId::from(r.get::<_, &str>(0)))
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        self.shared.ping().await
    }
}
