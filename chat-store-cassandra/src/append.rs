//! `append` and `remove`: the message, its dedup key and its pending
//! deliveries, written so that a reader never sees half of them.

use std::collections::BTreeSet;
use std::time::Duration;

use chat_core::store::Appended;
use chat_core::{ConversationId, Message, MessageId, NewMessage, Result, UserId};
use scylla::value::{CqlValue, MaybeUnset};

use crate::codec::{Lwt, backend, bucket_to_cql, id_from_cql, id_to_cql};
use crate::store::{BoxedRow, CassandraStore, row};

/// How long a retry that lost the dedup race waits for the winner's
/// message to appear before it writes that message itself: the delays
/// between successive reads.
const WINNER_WAITS_MS: [u64; 6] = [5, 10, 20, 40, 80, 160];

/// The dedup row that a racing or retried append found.
struct Claimed {
    message: Message,
    recipients: BTreeSet<UserId>,
}

impl Claimed {
    fn from_lwt(lwt: &Lwt, sender: &UserId) -> Result<Self> {
        let missing = |c: &str| {
            chat_core::Error::unavailable_msg(format!("cassandra: dedup row without {c}"))
        };
        let recipients = match lwt.existing.get("recipients").and_then(CqlValue::as_set) {
            Some(set) => set
                .iter()
                .filter_map(|v| v.as_text().map(|s| UserId::from(s.as_str())))
                .collect(),
            None => BTreeSet::new(),
        };
        Ok(Self {
            message: Message {
                message_id: id_from_cql(
                    lwt.bigint("message_id")
                        .ok_or_else(|| missing("message_id"))?,
                ),
                conversation_id: ConversationId::from(
                    lwt.text("conversation_id")
                        .ok_or_else(|| missing("conversation_id"))?,
                ),
                sender_id: sender.clone(),
                // An empty body is stored as an empty value, read back as "".
                body: lwt.text("body").unwrap_or_default(),
                ts: lwt.bigint("ts").ok_or_else(|| missing("ts"))?,
            },
            recipients,
        })
    }
}

impl CassandraStore {
    /// See [`chat_core::store::MessageStore::append`] and the crate docs
    /// ("Append").
    pub(crate) async fn append_message(
        &self,
        msg: NewMessage,
        recipients: &[UserId],
    ) -> Result<Appended> {
        let NewMessage {
            message,
            client_msg_id,
        } = msg;
        let recipients: BTreeSet<UserId> = recipients
            .iter()
            .filter(|u| **u != message.sender_id)
            .cloned()
            .collect();
        if let Some(key) = &client_msg_id {
            let set: Vec<String> = recipients.iter().map(|u| u.to_string()).collect();
            // An empty set would be written as a collection tombstone.
            let set = if set.is_empty() {
                MaybeUnset::Unset
            } else {
                MaybeUnset::Set(set)
            };
            let result = self
                .run(
                    &self.st.claim_dedup,
                    (
                        message.sender_id.as_str(),
                        key.as_str(),
                        message.conversation_id.as_str(),
                        id_to_cql(message.message_id),
                        message.body.as_str(),
                        message.ts,
                        set,
                    ),
                    "claim dedup key",
                )
                .await?;
            let lwt = Lwt::from_result(result, "claim dedup key")?;
            if !lwt.applied {
                let claimed = Claimed::from_lwt(&lwt, &message.sender_id)?;
                let first = self.finish_claimed(claimed, key).await?;
                return Ok(Appended {
                    message: first,
                    duplicate: true,
                });
            }
        }
        self.write_message(&message, client_msg_id.as_deref(), &recipients)
            .await?;
        Ok(Appended {
            message,
            duplicate: false,
        })
    }

    /// A retry met a dedup row: returns its message, first waiting for the
    /// winner's write, and writing it itself when the winner never did
    /// (it died or timed out between the claim and the batch). The batch is
    /// made of upserts of the same values, so a late winner and the retry
    /// writing both leave one message.
    async fn finish_claimed(&self, claimed: Claimed, key: &str) -> Result<Message> {
        let (conversation, id) = (&claimed.message.conversation_id, claimed.message.message_id);
        if self.message_exists(conversation, id).await? {
            return Ok(claimed.message);
        }
        for wait in WINNER_WAITS_MS {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            if self.message_exists(conversation, id).await? {
                return Ok(claimed.message);
            }
        }
        tracing::warn!(
            %conversation, %id,
            "finishing an append whose writer stopped after claiming its dedup key"
        );
        self.write_message(&claimed.message, Some(key), &claimed.recipients)
            .await?;
        Ok(claimed.message)
    }

    async fn message_exists(&self, conversation: &ConversationId, id: MessageId) -> Result<bool> {
        Ok(self.stored(conversation, id).await?.is_some())
    }

    /// The message row of `id` with its dedup key, if stored.
    pub(crate) async fn stored(
        &self,
        conversation: &ConversationId,
        id: MessageId,
    ) -> Result<Option<(Message, Option<String>)>> {
        let rows: Vec<(String, Option<String>, i64, Option<String>)> = self
            .rows(
                &self.st.select_message,
                (
                    conversation.as_str(),
                    bucket_to_cql(id.bucket(self.bucket_ms)),
                    id_to_cql(id),
                ),
                "read message",
            )
            .await?;
        Ok(rows.into_iter().next().map(|(sender, body, ts, key)| {
            (
                Message {
                    message_id: id,
                    conversation_id: conversation.clone(),
                    sender_id: UserId::from(sender),
                    body: body.unwrap_or_default(),
                    ts,
                },
                key,
            )
        }))
    }

    /// The message, its bucket and its pending deliveries in one logged
    /// batch. Optional columns are left unset, never written as null.
    async fn write_message(
        &self,
        message: &Message,
        key: Option<&str>,
        recipients: &BTreeSet<UserId>,
    ) -> Result<()> {
        let conversation = message.conversation_id.to_string();
        let bucket = bucket_to_cql(message.message_id.bucket(self.bucket_ms));
        let id = id_to_cql(message.message_id);
        let sender = message.sender_id.to_string();
        let key = match key {
            Some(k) => MaybeUnset::Set(k.to_owned()),
            None => MaybeUnset::Unset,
        };
        let ttl = self.pending_ttl;
        let mut statements: Vec<(_, BoxedRow)> = Vec::with_capacity(2 + 3 * recipients.len());
        statements.push((
            &self.st.insert_message,
            row((
                conversation.clone(),
                bucket,
                id,
                sender.clone(),
                message.body.clone(),
                message.ts,
                key,
            )),
        ));
        statements.push((&self.st.insert_bucket, row((conversation.clone(), bucket))));
        for user in recipients {
            let user = user.to_string();
            statements.push((
                &self.st.insert_pending_user,
                row((user.clone(), id, conversation.clone(), ttl)),
            ));
            statements.push((
                &self.st.insert_pending_conversation,
                row((user.clone(), conversation.clone(), id, sender.clone(), ttl)),
            ));
            statements.push((
                &self.st.insert_pending_message,
                row((conversation.clone(), id, user, ttl)),
            ));
        }
        self.logged_batch(statements, "append").await
    }

    /// See [`chat_core::store::MessageStore::remove`].
    pub(crate) async fn remove_message(
        &self,
        conversation: &ConversationId,
        id: MessageId,
    ) -> Result<()> {
        let Some((message, key)) = self.stored(conversation, id).await? else {
            return Ok(());
        };
        let users = self.pending_users(conversation, id).await?;
        self.delete_stored(&message, key.as_deref(), &users).await
    }

    /// Who still has `id` pending.
    pub(crate) async fn pending_users(
        &self,
        conversation: &ConversationId,
        id: MessageId,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = self
            .rows(
                &self.st.pending_users,
                (conversation.as_str(), id_to_cql(id)),
                "read pending users",
            )
            .await?;
        Ok(rows.into_iter().map(|(u,)| u).collect())
    }

    /// Deletes a stored message: its dedup key first, then the message and
    /// the pending deliveries of `users` in one logged batch. A failure
    /// between the two leaves the message without its key (a retry with the
    /// key stores a second copy) rather than a key without its message
    /// (which a retry would bring back to life, see `finish_claimed`).
    pub(crate) async fn delete_stored(
        &self,
        message: &Message,
        key: Option<&str>,
        users: &[String],
    ) -> Result<()> {
        if let Some(key) = key {
            self.session
                .execute_unpaged(&self.st.delete_dedup, (message.sender_id.as_str(), key))
                .await
                .map_err(backend("delete dedup key"))?;
        }
        let conversation = message.conversation_id.to_string();
        let id = id_to_cql(message.message_id);
        let bucket = bucket_to_cql(message.message_id.bucket(self.bucket_ms));
        let mut statements: Vec<(_, BoxedRow)> = Vec::with_capacity(1 + 3 * users.len());
        statements.push((
            &self.st.delete_message,
            row((conversation.clone(), bucket, id)),
        ));
        for user in users {
            statements.push((
                &self.st.delete_pending_user,
                row((user.clone(), id, conversation.clone())),
            ));
            statements.push((
                &self.st.delete_pending_conversation,
                row((user.clone(), conversation.clone(), id)),
            ));
            statements.push((
                &self.st.delete_pending_message,
                row((conversation.clone(), id, user.clone())),
            ));
        }
        self.logged_batch(statements, "delete message").await
    }
}
