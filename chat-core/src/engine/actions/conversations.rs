//! The conversations list: each of the user's conversations with its newest
//! entry and unread count, most recent first. Bounded by how many
//! conversations the user has, never by how long their histories are:
//! unread is the head's text count minus the user's read count.

use futures::future::try_join_all;

use super::super::Engine;
use crate::error::Result;
use crate::model::{ConversationId, ConversationKind, ConversationSummary, UserId};

impl Engine {
    /// `user`'s conversations, most recent activity first.
    pub async fn conversations(&self, user: &UserId) -> Result<Vec<ConversationSummary>> {
        let inner = &self.inner;
        let ids: Vec<ConversationId> = inner
            .conversations
            .memberships(user)
            .await?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        let (heads, cursors) = futures::try_join!(
            inner.messages.heads(&ids),
            inner.messages.user_cursors(user, &ids)
        )?;
        // Direct conversations need no record; groups are read for their name.
        let names = try_join_all(ids.iter().map(|c| async move {
            if c.is_direct() {
                Ok(None)
            } else {
                inner
                    .conversations
                    .conversation(c)
                    .await
                    .map(|conv| conv.and_then(|g| g.name))
            }
        }))
        .await?;
        let mut out: Vec<ConversationSummary> = ids
            .into_iter()
            .zip(heads)
            .zip(cursors)
            .zip(names)
            .map(|(((c, head), cursor), name)| ConversationSummary {
                kind: if c.is_direct() {
                    ConversationKind::Direct
                } else {
                    ConversationKind::Group
                },
                conversation_id: c,
                name,
                last_message_id: head.last_id,
                unread: head.seq.saturating_sub(cursor.read_seq),
            })
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.last_message_id));
        Ok(out)
    }
}
