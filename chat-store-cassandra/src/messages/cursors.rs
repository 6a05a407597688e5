//! Cursors of users and devices, without lightweight transactions: every
//! write is dated by the id it moves the cursor to ([`write_time`]), so
//! Cassandra's own rule (the newest write time wins, and between equal
//! ones the greater value) keeps the highest id, in whatever order racing
//! writes arrive. "Never backwards" holds with no read before the write;
//! the reads below only serve the answers that the trait asks for.

use std::collections::HashMap;

use chat_core::store::{AckMoved, Cursors, DeviceCursor};
use chat_core::{ConversationId, DeviceId, Head, MessageId, Result, UserId};
use futures::{StreamExt, TryStreamExt, stream};

use crate::codec::{count_from_cql, count_to_cql, delete_time, id_from_cql, id_to_cql, write_time};
use crate::store::CassandraStore;

/// Conversations read with `IN` from one user's cursors at most; more are
/// picked from a read of the user's whole partition.
const IN_AT_MOST: usize = 50;

/// Writes in flight at once when a device starts or is forgotten.
const WRITES_IN_FLIGHT: usize = 32;

/// A `user_cursors` row: delivered, read, read_seq.
type UserRow = (Option<i64>, Option<i64>, Option<i64>);

fn user_cursors(row: Option<UserRow>) -> Cursors {
    let (delivered, read, read_seq) = row.unwrap_or_default();
    Cursors {
        device_delivered: None,
        delivered: delivered.map(id_from_cql),
        read: read.map(id_from_cql),
        read_seq: read_seq.map_or(0, count_from_cql),
    }
}

impl CassandraStore {
    async fn user_row(&self, user: &UserId, conversation: &ConversationId) -> Result<Cursors> {
        let rows: Vec<UserRow> = self
            .rows(
                &self.st.user_cursor,
                (user.as_str(), conversation.as_str()),
                "read user cursors",
            )
            .await?;
        Ok(user_cursors(rows.into_iter().next()))
    }

    async fn device_row(
        &self,
        device: &DeviceId,
        conversation: &ConversationId,
    ) -> Result<Option<MessageId>> {
        let rows: Vec<(Option<i64>,)> = self
            .rows(
                &self.st.device_cursor,
                (device.as_str(), conversation.as_str()),
                "read device cursor",
            )
            .await?;
        Ok(rows.into_iter().next().and_then(|(d,)| d.map(id_from_cql)))
    }

    /// Moves `device`'s cursor in `conversation` (both copies) to `to`.
    async fn move_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        conversation: &ConversationId,
        to: MessageId,
    ) -> Result<()> {
        let (at, id) = (write_time(to), id_to_cql(to));
        futures::try_join!(
            self.run(
                &self.st.set_device_cursor,
                (
                    at,
                    user.as_str(),
                    id,
                    device.as_str(),
                    conversation.as_str()
                ),
                "move device cursor",
            ),
            self.run(
                &self.st.set_conversation_cursor,
                (
                    at,
                    id,
                    conversation.as_str(),
                    user.as_str(),
                    device.as_str()
                ),
                "move device cursor",
            ),
        )?;
        Ok(())
    }

    /// See [`chat_core::store::MessageStore::cursors`].
    pub(crate) async fn read_cursors(
        &self,
        user: &UserId,
        device: Option<&DeviceId>,
        conversation: &ConversationId,
    ) -> Result<Cursors> {
        let device_read = async {
            match device {
                Some(d) => self.device_row(d, conversation).await,
                None => Ok(None),
            }
        };
        let (cursors, device_delivered) =
            futures::try_join!(self.user_row(user, conversation), device_read)?;
        Ok(Cursors {
            device_delivered,
            ..cursors
        })
    }

    /// See [`chat_core::store::MessageStore::user_cursors`]: one `IN` read
    /// of the user's partition for a few conversations; for more, the whole
    /// partition (one row per conversation the user has cursors in, so
    /// bounded by its conversations), read in pages, which measured three
    /// times faster than `IN` reads for a list of 1,000.
    pub(crate) async fn read_user_cursors(
        &self,
        user: &UserId,
        conversations: &[ConversationId],
    ) -> Result<Vec<Cursors>> {
        type Row = (String, Option<i64>, Option<i64>, Option<i64>);
        let rows: Vec<Row> = if conversations.len() <= IN_AT_MOST {
            let keys: Vec<&str> = conversations.iter().map(|c| c.as_str()).collect();
            self.rows(
                &self.st.user_cursors_in,
                (user.as_str(), keys),
                "read user cursors",
            )
            .await?
        } else {
            self.paged(
                &self.st.user_cursors_all,
                (user.as_str(),),
                usize::MAX,
                "read user cursors",
            )
            .await?
        };
        let by_conversation: HashMap<String, UserRow> = rows
            .into_iter()
            .map(|(c, delivered, read, read_seq)| (c, (delivered, read, read_seq)))
            .collect();
        Ok(conversations
            .iter()
            .map(|c| user_cursors(by_conversation.get(c.as_str()).copied()))
            .collect())
    }

    /// See [`chat_core::store::MessageStore::device_cursors`].
    pub(crate) async fn read_device_cursors(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<(ConversationId, MessageId)>> {
        let rows: Vec<(String, Option<String>, Option<i64>)> = self
            .paged(
                &self.st.device_cursors_all,
                (device.as_str(),),
                usize::MAX,
                "read device cursors",
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(c, _, d)| Some((ConversationId::from(c), id_from_cql(d?))))
            .collect())
    }

    /// See [`chat_core::store::MessageStore::conversation_cursors`].
    pub(crate) async fn read_conversation_cursors(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<DeviceCursor>> {
        let rows: Vec<(String, String, Option<i64>)> = self
            .paged(
                &self.st.conversation_cursors_all,
                (conversation.as_str(),),
                usize::MAX,
                "read conversation cursors",
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(user, device, d)| {
                Some(DeviceCursor {
                    user_id: UserId::from(user),
                    device_id: DeviceId::from(device),
                    delivered: id_from_cql(d?),
                })
            })
            .collect())
    }

    /// See [`chat_core::store::MessageStore::ack`]: reads the two cursors
    /// before (for the answer), then writes the ones that move.
    pub(crate) async fn ack_up_to(
        &self,
        user: &UserId,
        device: &DeviceId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<AckMoved> {
        let (device_before, user_cursors) = futures::try_join!(
            self.device_row(device, conversation),
            self.user_row(user, conversation),
        )?;
        let user_before = user_cursors.delivered;
        let device_moves = async {
            if device_before.is_none_or(|d| d < up_to) {
                self.move_device(user, device, conversation, up_to).await?;
            }
            Ok::<_, chat_core::Error>(())
        };
        let user_moves = async {
            if user_before.is_none_or(|d| d < up_to) {
                let (at, id) = (write_time(up_to), id_to_cql(up_to));
                futures::try_join!(
                    self.run(
                        &self.st.set_user_delivered,
                        (at, id, user.as_str(), conversation.as_str()),
                        "move delivered cursor",
                    ),
                    self.run(
                        &self.st.set_conversation_cursor,
                        (at, id, conversation.as_str(), user.as_str(), ""),
                        "move delivered cursor",
                    ),
                )?;
            }
            Ok::<_, chat_core::Error>(())
        };
        futures::try_join!(device_moves, user_moves)?;
        Ok(AckMoved {
            device_before,
            user_before,
            user_after: user_before.max(Some(up_to)),
        })
    }

    /// See [`chat_core::store::MessageStore::mark_read`].
    pub(crate) async fn mark_read_up_to(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<(Option<MessageId>, bool)> {
        let (before, seq) = futures::try_join!(
            self.user_row(user, conversation),
            self.seq_at(conversation, up_to),
        )?;
        if before.read.is_some_and(|r| r >= up_to) {
            return Ok((before.read, false));
        }
        self.run(
            &self.st.set_user_read,
            (
                write_time(up_to),
                id_to_cql(up_to),
                count_to_cql(seq.max(before.read_seq)),
                user.as_str(),
                conversation.as_str(),
            ),
            "move read cursor",
        )
        .await?;
        Ok((before.read, true))
    }

    /// See [`chat_core::store::MessageStore::start_member`].
    pub(crate) async fn start_member_at(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        head: Head,
    ) -> Result<()> {
        // With nothing appended there is nothing to start from: the cursors
        // stay unset, which reads as "before everything".
        let Some(last) = head.last_id else {
            return Ok(());
        };
        let (at, id) = (write_time(last), id_to_cql(last));
        futures::try_join!(
            self.run(
                &self.st.set_user_all,
                (
                    at,
                    id,
                    id,
                    count_to_cql(head.seq),
                    user.as_str(),
                    conversation.as_str()
                ),
                "start member",
            ),
            self.run(
                &self.st.set_conversation_cursor,
                (at, id, conversation.as_str(), user.as_str(), ""),
                "start member",
            ),
        )?;
        Ok(())
    }

    /// See [`chat_core::store::MessageStore::start_device`]: the user's
    /// partition of cursors, copied to the device.
    pub(crate) async fn start_device_at(&self, user: &UserId, device: &DeviceId) -> Result<()> {
        let rows: Vec<(String, Option<i64>)> = self
            .paged(
                &self.st.user_delivered_all,
                (user.as_str(),),
                usize::MAX,
                "read user cursors",
            )
            .await?;
        stream::iter(rows.into_iter().filter_map(|(c, d)| Some((c, d?))))
            .map(|(c, d)| async move {
                self.move_device(user, device, &ConversationId::from(c), id_from_cql(d))
                    .await
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// See [`chat_core::store::MessageStore::forget_device`]: each row of
    /// the device in `conversation_cursors`, then its own partition, deleted
    /// after the newest write time they can hold.
    pub(crate) async fn forget_device_cursors(&self, device: &DeviceId) -> Result<()> {
        let rows: Vec<(String, Option<String>, Option<i64>)> = self
            .paged(
                &self.st.device_cursors_all,
                (device.as_str(),),
                usize::MAX,
                "read device cursors",
            )
            .await?;
        let newest = rows
            .iter()
            .filter_map(|(_, _, d)| d.map(id_from_cql))
            .max()
            .unwrap_or(MessageId(0));
        stream::iter(rows)
            .map(|(c, user, d)| async move {
                let at = delete_time(d.map_or(MessageId(0), id_from_cql));
                self.run(
                    &self.st.delete_conversation_cursor,
                    (at, c.as_str(), user.unwrap_or_default(), device.as_str()),
                    "forget device",
                )
                .await
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?;
        self.run(
            &self.st.delete_device_cursors,
            (delete_time(newest), device.as_str()),
            "forget device",
        )
        .await?;
        Ok(())
    }
}
