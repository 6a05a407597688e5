//! `append` and `remove`: the message, its dedup key and its pending
//! deliveries, written so that a reader never sees half of them: the
//! deliveries first, the message row last as the commit point.

use std::collections::BTreeSet;
use std::time::Duration;

use chat_core::store::Appended;
use chat_core::{ConversationId, Error, Message, MessageId, NewMessage, Result, UserId};
use futures::{StreamExt, TryStreamExt, stream};
use scylla::value::{CqlValue, MaybeUnset};

use crate::codec::{Lwt, bucket_to_cql, id_from_cql, id_to_cql};
use crate::residue;
use crate::store::{CassandraStore, row};

/// How long a retry that lost the dedup race waits for the winner's
/// message to appear before it writes that message itself: the delays
/// between successive reads.
const WINNER_WAITS_MS: [u64; 6] = [5, 10, 20, 40, 80, 160];

/// Writes of one append in flight at once: enough to hide round trips for
/// a big group, few enough not to flood the coordinator.
const WRITES_IN_FLIGHT: usize = 64;

/// `pending_by_message` rows per unlogged batch (all in one partition).
const ROWS_PER_BATCH: usize = 100;

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
    /// (it died or timed out between the claim and its message row). The
    /// writes are upserts of the same values, so a late winner and the
    /// retry writing both leave one message.
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

    /// Writes the pending deliveries and the bucket row, then the message
    /// row: the commit point. Nothing reads a delivery whose message is
    /// missing (see `residue`), so a failure before the commit leaves
    /// only invisible rows, which a retry with the same key writes again.
    /// Optional columns are left unset, never written as null.
    async fn write_message(
        &self,
        message: &Message,
        key: Option<&str>,
        recipients: &BTreeSet<UserId>,
    ) -> Result<()> {
        let started = residue::now_ms();
        self.write_deliveries(message, recipients).await?;
        if !residue::commit_in_time(message.message_id, started, residue::now_ms()) {
            return Err(Error::unavailable_msg(format!(
                "cassandra: append of {} ran past its residue cutoff; retry",
                message.message_id
            )));
        }
        let key = match key {
            Some(k) => MaybeUnset::Set(k),
            None => MaybeUnset::Unset,
        };
        self.run(
            &self.st.insert_message,
            (
                message.conversation_id.as_str(),
                bucket_to_cql(message.message_id.bucket(self.bucket_ms)),
                id_to_cql(message.message_id),
                message.sender_id.as_str(),
                message.body.as_str(),
                message.ts,
                key,
            ),
            "append",
        )
        .await?;
        Ok(())
    }

    /// The bucket row and the three pending rows per recipient, as
    /// idempotent writes at most [`WRITES_IN_FLIGHT`] at a time: one per
    /// row of the per-user tables (each its own partition), and unlogged
    /// batches of [`ROWS_PER_BATCH`] for `pending_by_message` (one
    /// partition). Cost grows linearly with the recipients, and no
    /// request grows with them.
    async fn write_deliveries(
        &self,
        message: &Message,
        recipients: &BTreeSet<UserId>,
    ) -> Result<()> {
        // Owned items: a stream of borrowed ones trips the `Send` check of
        // the trait's boxed future (a higher-ranked lifetime error).
        let recipients: Vec<UserId> = recipients.iter().cloned().collect();
        let mut writes = vec![Write::Bucket];
        writes.extend(
            recipients
                .chunks(ROWS_PER_BATCH)
                .map(|users| Write::ByMessage(users.to_vec())),
        );
        for user in recipients {
            writes.push(Write::ByUser(user.clone()));
            writes.push(Write::ByConversation(user));
        }
        stream::iter(writes)
            .map(|write| self.write_one(message, write))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    async fn write_one(&self, message: &Message, write: Write) -> Result<()> {
        let conversation = message.conversation_id.as_str();
        let id = id_to_cql(message.message_id);
        let ttl = self.pending_ttl;
        match write {
            Write::Bucket => {
                let bucket = bucket_to_cql(message.message_id.bucket(self.bucket_ms));
                self.run(
                    &self.st.insert_bucket,
                    (conversation, bucket),
                    "append bucket",
                )
                .await?;
            }
            Write::ByUser(user) => {
                self.run(
                    &self.st.insert_pending_user,
                    (user.as_str(), id, conversation, ttl),
                    "append pending",
                )
                .await?;
            }
            Write::ByConversation(user) => {
                self.run(
                    &self.st.insert_pending_conversation,
                    (
                        user.as_str(),
                        conversation,
                        id,
                        message.sender_id.as_str(),
                        ttl,
                    ),
                    "append pending",
                )
                .await?;
            }
            Write::ByMessage(users) => {
                let statements = users
                    .iter()
                    .map(|user| {
                        let values = (conversation.to_owned(), id, user.to_string(), ttl);
                        (&self.st.insert_pending_message, row(values))
                    })
                    .collect();
                self.partition_batch(statements, "append pending").await?;
            }
        }
        Ok(())
    }

    /// See [`chat_core::store::MessageStore::remove`]: the dedup key,
    /// then the message (after which its deliveries are invisible), then
    /// the deliveries. A failure part-way leaves invisible residue; a
    /// repeated `remove` finishes it.
    pub(crate) async fn remove_message(
        &self,
        conversation: &ConversationId,
        id: MessageId,
    ) -> Result<()> {
        if let Some((message, key)) = self.stored(conversation, id).await? {
            self.delete_stored(&message, key.as_deref()).await?;
        }
        let users = self.pending_users(conversation, id).await?;
        let (conversation_s, stored_id) = (conversation.as_str(), id_to_cql(id));
        stream::iter(users)
            .map(|user| async move {
                futures::try_join!(
                    self.run(
                        &self.st.delete_pending_user,
                        (user.as_str(), stored_id, conversation_s),
                        "remove pending",
                    ),
                    self.run(
                        &self.st.delete_pending_conversation,
                        (user.as_str(), conversation_s, stored_id),
                        "remove pending",
                    ),
                )
            })
            .buffer_unordered(WRITES_IN_FLIGHT / 2)
            .try_collect::<Vec<_>>()
            .await?;
        // Last: it lists the users whose rows a repeated remove must find.
        self.run(
            &self.st.delete_pending_of_message,
            (conversation_s, stored_id),
            "remove pending",
        )
        .await?;
        Ok(())
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

    /// Deletes a stored message: its dedup key first, then the message
    /// row. A failure between the two leaves the message without its key
    /// (a retry with the key stores a second copy) rather than a key
    /// without its message (which a retry would bring back to life, see
    /// `finish_claimed`).
    pub(crate) async fn delete_stored(&self, message: &Message, key: Option<&str>) -> Result<()> {
        if let Some(key) = key {
            self.run(
                &self.st.delete_dedup,
                (message.sender_id.as_str(), key),
                "delete dedup key",
            )
            .await?;
        }
        self.run(
            &self.st.delete_message,
            (
                message.conversation_id.as_str(),
                bucket_to_cql(message.message_id.bucket(self.bucket_ms)),
                id_to_cql(message.message_id),
            ),
            "delete message",
        )
        .await?;
        Ok(())
    }
}

/// One write of an append's deliveries (see `write_deliveries`).
enum Write {
    Bucket,
    ByUser(UserId),
    ByConversation(UserId),
    ByMessage(Vec<UserId>),
}
