//! History pages, the last message and unread counts: walks of a
//! conversation's buckets, newest first, that skip buckets never written.

use chat_core::{ConversationId, Message, MessageId, Result, UserId};
use futures::TryStreamExt;

use crate::codec::{above, backend, below, bucket_to_cql, id_from_cql, id_to_cql, limit_to_cql};
use crate::store::CassandraStore;

impl CassandraStore {
    /// The buckets of `conversation` at or below `from`, newest first, as a
    /// stream paged by the driver (a conversation has one per bucket width
    /// of activity: a few dozen a year with 10-day buckets).
    async fn buckets(
        &self,
        conversation: &ConversationId,
        from: u64,
    ) -> Result<impl futures::Stream<Item = Result<u64>> + use<>> {
        let pager = self
            .session()
            .execute_iter(
                self.st.select_buckets.clone(),
                (conversation.to_string(), bucket_to_cql(from)),
            )
            .await
            .map_err(backend("list buckets"))?;
        let stream = pager
            .rows_stream::<(i64,)>()
            .map_err(backend("list buckets"))?;
        Ok(stream
            .map_err(backend("list buckets"))
            // Buckets are written from u64 values, so they are never negative.
            .map_ok(|(b,)| u64::try_from(b).unwrap_or(0)))
    }

    /// See [`chat_core::store::MessageStore::history`]: the resumable
    /// cursor is `before`, the oldest id of the previous page.
    pub(crate) async fn history_page(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let upper = match before {
            None => id_to_cql(MessageId(u64::MAX)),
            Some(before) => match below(before) {
                Some(upper) => upper,
                None => return Ok(Vec::new()),
            },
        };
        let mut page = Vec::new();
        if limit == 0 {
            return Ok(page);
        }
        let start = id_from_cql(upper).bucket(self.bucket_ms);
        let mut buckets = std::pin::pin!(self.buckets(conversation, start).await?);
        while let Some(bucket) = buckets.try_next().await? {
            let remaining = limit - page.len();
            let rows: Vec<(i64, String, Option<String>, i64)> = self
                .paged(
                    &self.st.history_page,
                    (
                        conversation.as_str(),
                        bucket_to_cql(bucket),
                        upper,
                        limit_to_cql(remaining),
                    ),
                    remaining,
                    "read history",
                )
                .await?;
            page.extend(rows.into_iter().map(|(id, sender, body, ts)| Message {
                message_id: id_from_cql(id),
                conversation_id: conversation.clone(),
                sender_id: UserId::from(sender),
                body: body.unwrap_or_default(),
                ts,
            }));
            if page.len() >= limit {
                break;
            }
        }
        Ok(page)
    }

    /// See [`chat_core::store::MessageStore::unread`]: counts the messages
    /// above the read cursor, bucket by bucket, reading only their senders.
    pub(crate) async fn unread_count(
        &self,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<u64> {
        let lower = match self.cursor_values(user, conversation).await?.read {
            None => i64::MIN,
            Some(read) => match above(read) {
                Some(lower) => lower,
                None => return Ok(0),
            },
        };
        let lowest_bucket = id_from_cql(lower).bucket(self.bucket_ms);
        let mut count = 0u64;
        let mut buckets = std::pin::pin!(self.buckets(conversation, u64::MAX >> 1).await?);
        while let Some(bucket) = buckets.try_next().await? {
            if bucket < lowest_bucket {
                break;
            }
            let senders: Vec<(String,)> = self
                .paged(
                    &self.st.senders_since,
                    (conversation.as_str(), bucket_to_cql(bucket), lower),
                    usize::MAX,
                    "count unread",
                )
                .await?;
            count += senders
                .iter()
                .filter(|(sender,)| sender != user.as_str())
                .count() as u64;
        }
        Ok(count)
    }
}
