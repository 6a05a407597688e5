//! Reading a conversation's log: its buckets (the clustering rows of its
//! `heads` partition), the entries of one bucket, and the readers built on
//! them (`range`, `history`, `entry`, the seq below an id). Every read is
//! bounded: by `LIMIT`, by the caller's window, and below by the low-water
//! mark of purges, so no reader walks through purged (tombstoned) rows.

use std::collections::BTreeMap;

use chat_core::{ConversationId, Message, MessageId, Reactions, Result, UserId};
use scylla::DeserializeRow;

use super::head::State;
use crate::codec::{count_from_cql, id_from_cql, id_to_cql, kind_from_cql, limit_to_cql};
use crate::store::CassandraStore;

/// Buckets read per page of the bucket index.
const BUCKET_PAGE: usize = 16;

/// An entry row of `messages`, as `statements::entry_columns` selects it.
#[derive(DeserializeRow)]
pub(crate) struct EntryRow {
    message_id: i64,
    sender_id: Option<String>,
    kind: Option<i8>,
    body: Option<String>,
    ts: Option<i64>,
    ref_id: Option<i64>,
    in_reply_to: Option<i64>,
    client_msg_id: Option<String>,
    edited: Option<bool>,
    deleted: Option<bool>,
    reactions: Option<BTreeMap<String, String>>,
}

/// An entry as stored, with its dedup key.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) message: Message,
    pub(crate) client_msg_id: Option<String>,
}

impl EntryRow {
    /// The entry, or `None` for a row that holds only the late change of a
    /// purged or removed entry (no sender: the entry's own cells are gone).
    fn decode(self, conversation: &ConversationId) -> Result<Option<Stored>> {
        let (Some(sender), Some(kind), Some(ts)) = (self.sender_id, self.kind, self.ts) else {
            return Ok(None);
        };
        let deleted = self.deleted.unwrap_or(false);
        let reactions = if deleted {
            Reactions::default()
        } else {
            Reactions(
                self.reactions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(user, emoji)| (UserId::from(user), emoji))
                    .collect(),
            )
        };
        Ok(Some(Stored {
            message: Message {
                message_id: id_from_cql(self.message_id),
                conversation_id: conversation.clone(),
                sender_id: UserId::from(sender),
                body: if deleted {
                    String::new()
                } else {
                    self.body.unwrap_or_default()
                },
                ts,
                kind: kind_from_cql(kind)?,
                ref_id: self.ref_id.map(id_from_cql),
                in_reply_to: self.in_reply_to.map(id_from_cql),
                edited: self.edited.unwrap_or(false) && !deleted,
                deleted,
                reactions,
            },
            client_msg_id: self.client_msg_id,
        }))
    }
}

/// `id + 1`, or `None` past the last id.
fn next(id: MessageId) -> Option<MessageId> {
    id.0.checked_add(1).map(MessageId)
}

impl CassandraStore {
    /// The bucket that holds (or would hold) `id`: the newest one starting
    /// at or below it.
    pub(crate) async fn bucket_of(
        &self,
        conversation: &ConversationId,
        id: MessageId,
    ) -> Result<Option<i64>> {
        Ok(self
            .buckets_down(conversation, id_to_cql(id), 1)
            .await?
            .into_iter()
            .next())
    }

    /// Up to `n` buckets starting at or below `from` (stored form), newest first.
    pub(crate) async fn buckets_down(
        &self,
        conversation: &ConversationId,
        from: i64,
        n: usize,
    ) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = self
            .rows(
                &self.st.buckets_down,
                (conversation.as_str(), from, limit_to_cql(n)),
                "read buckets",
            )
            .await?;
        Ok(rows.into_iter().map(|(b,)| b).collect())
    }

    /// Up to `n` buckets starting in `(after, to]` (stored form), oldest first.
    pub(crate) async fn buckets_up(
        &self,
        conversation: &ConversationId,
        after: i64,
        to: i64,
        n: usize,
    ) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = self
            .rows(
                &self.st.buckets_up,
                (conversation.as_str(), after, to, limit_to_cql(n)),
                "read buckets",
            )
            .await?;
        Ok(rows.into_iter().map(|(b,)| b).collect())
    }

    /// The entries of bucket `bucket` with ids in `[lo, hi]`, oldest first,
    /// appended to `out` until it holds `want` (rows left by purged entries'
    /// late changes are skipped and the read goes on past them).
    async fn read_up(
        &self,
        conversation: &ConversationId,
        bucket: i64,
        (lo, hi): (MessageId, MessageId),
        want: usize,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let mut from = lo;
        while out.len() < want && from <= hi {
            let need = want - out.len();
            let rows: Vec<EntryRow> = self
                .rows(
                    &self.st.entries_up,
                    (
                        conversation.as_str(),
                        bucket,
                        id_to_cql(from),
                        id_to_cql(hi),
                        limit_to_cql(need),
                    ),
                    "read range",
                )
                .await?;
            let n = rows.len();
            for row in rows {
                let id = id_from_cql(row.message_id);
                if let Some(stored) = row.decode(conversation)? {
                    out.push(stored.message);
                }
                match next(id) {
                    Some(after) => from = after,
                    None => return Ok(()),
                }
            }
            if n < need {
                break;
            }
        }
        Ok(())
    }

    /// The history entries (all but group events) of bucket `bucket` with
    /// ids in `[lo, hi]`, newest first, appended to `out` until it holds
    /// `want`.
    async fn read_down(
        &self,
        conversation: &ConversationId,
        bucket: i64,
        (lo, hi): (MessageId, MessageId),
        want: usize,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let mut to = hi;
        while out.len() < want && lo <= to {
            let need = want - out.len();
            let rows: Vec<EntryRow> = self
                .rows(
                    &self.st.entries_down,
                    (
                        conversation.as_str(),
                        bucket,
                        id_to_cql(lo),
                        id_to_cql(to),
                        limit_to_cql(need),
                    ),
                    "read history",
                )
                .await?;
            let n = rows.len();
            for row in rows {
                let id = id_from_cql(row.message_id);
                if let Some(stored) = row.decode(conversation)?
                    && stored.message.kind.in_history()
                {
                    out.push(stored.message);
                }
                match id.0.checked_sub(1) {
                    Some(before) => to = MessageId(before),
                    None => return Ok(()),
                }
            }
            if n < need {
                break;
            }
        }
        Ok(())
    }

    /// One stored entry and its bucket, as written (the newest entry may
    /// not be written yet: see [`State::visible_pending`]).
    pub(crate) async fn stored_entry(
        &self,
        conversation: &ConversationId,
        id: MessageId,
    ) -> Result<Option<(Stored, i64)>> {
        let Some(bucket) = self.bucket_of(conversation, id).await? else {
            return Ok(None);
        };
        let rows: Vec<EntryRow> = self
            .rows(
                &self.st.entry,
                (conversation.as_str(), bucket, id_to_cql(id)),
                "read entry",
            )
            .await?;
        match rows.into_iter().next() {
            Some(row) => Ok(row.decode(conversation)?.map(|s| (s, bucket))),
            None => Ok(None),
        }
    }

    /// One entry as it is now, given the conversation's head partition.
    pub(crate) async fn entry_in(
        &self,
        conversation: &ConversationId,
        id: MessageId,
        state: &State,
    ) -> Result<Option<(Stored, i64)>> {
        if state.is_purged(id) {
            return Ok(None);
        }
        if let Some((mut stored, bucket)) = self.stored_entry(conversation, id).await? {
            state.apply_pending(&mut stored.message);
            return Ok(Some((stored, bucket)));
        }
        Ok(state
            .visible_pending()
            .filter(|p| p.message.message_id == id)
            .map(|p| {
                (
                    Stored {
                        message: p.message.clone(),
                        client_msg_id: p.client_msg_id.clone(),
                    },
                    p.bucket,
                )
            }))
    }

    /// See [`chat_core::store::MessageStore::entry`].
    pub(crate) async fn read_entry(
        &self,
        conversation: &ConversationId,
        id: MessageId,
    ) -> Result<Option<Message>> {
        let state = self.state(conversation).await?;
        Ok(self
            .entry_in(conversation, id, &state)
            .await?
            .map(|(s, _)| s.message))
    }

    /// See [`chat_core::store::MessageStore::range`]: the buckets from the
    /// one holding the first wanted id upwards, each read oldest first.
    pub(crate) async fn read_range(
        &self,
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let first = match after {
            None => MessageId(0),
            Some(a) => match next(a) {
                Some(first) => first,
                None => return Ok(Vec::new()),
            },
        };
        let hi = up_to.unwrap_or(MessageId(u64::MAX));
        if limit == 0 || first > hi {
            return Ok(Vec::new());
        }
        // The head and the first buckets at once; read again below the
        // low-water mark only when the window starts below it.
        let (state, mut b0, mut ups) = futures::try_join!(
            self.state(conversation),
            self.bucket_of(conversation, first),
            self.buckets_up(conversation, id_to_cql(first), id_to_cql(hi), BUCKET_PAGE),
        )?;
        let Some(last) = state.head.last_id else {
            return Ok(Vec::new());
        };
        let hi = hi.min(last);
        let mut lo = first;
        if state.is_purged(lo) {
            lo = match state.purged.and_then(next) {
                Some(lo) => lo,
                None => return Ok(Vec::new()),
            };
            (b0, ups) = futures::try_join!(
                self.bucket_of(conversation, lo),
                self.buckets_up(conversation, id_to_cql(lo), id_to_cql(hi), BUCKET_PAGE),
            )?;
        }
        let mut out = Vec::new();
        if lo <= hi {
            let mut more = ups.len() == BUCKET_PAGE;
            let mut buckets: std::collections::VecDeque<i64> = b0.into_iter().chain(ups).collect();
            while let Some(bucket) = buckets.pop_front() {
                self.read_up(conversation, bucket, (lo, hi), limit, &mut out)
                    .await?;
                if out.len() >= limit {
                    break;
                }
                if buckets.is_empty() && more {
                    let page = self
                        .buckets_up(conversation, bucket, id_to_cql(hi), BUCKET_PAGE)
                        .await?;
                    more = page.len() == BUCKET_PAGE;
                    buckets.extend(page);
                }
            }
        }
        // The newest entry if its writer has not written it yet: it is the
        // highest id, so it goes last, and only if the page is not full.
        if let Some(p) = state.visible_pending() {
            let id = p.message.message_id;
            if (lo..=hi).contains(&id)
                && out.len() < limit
                && out.last().is_none_or(|m| m.message_id < id)
            {
                out.push(p.message.clone());
            }
        }
        for m in &mut out {
            state.apply_pending(m);
        }
        Ok(out)
    }

    /// See [`chat_core::store::MessageStore::history`]: the buckets from the
    /// one holding the newest wanted id downwards, each read newest first,
    /// down to the floor or the low-water mark.
    pub(crate) async fn read_history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        floor: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let hi = match before {
            None => MessageId(u64::MAX),
            Some(b) => match b.0.checked_sub(1) {
                Some(hi) => MessageId(hi),
                None => return Ok(Vec::new()),
            },
        };
        let first = match floor {
            None => MessageId(0),
            Some(f) => match next(f) {
                Some(first) => first,
                None => return Ok(Vec::new()),
            },
        };
        if limit == 0 || first > hi {
            return Ok(Vec::new());
        }
        let (state, mut buckets) = futures::try_join!(
            self.state(conversation),
            self.buckets_down(conversation, id_to_cql(hi), BUCKET_PAGE),
        )?;
        let Some(last) = state.head.last_id else {
            return Ok(Vec::new());
        };
        let hi = hi.min(last);
        let lo = match state.purged {
            Some(p) if p >= first => match next(p) {
                Some(lo) => lo,
                None => return Ok(Vec::new()),
            },
            _ => first,
        };
        let mut out = Vec::new();
        if lo <= hi {
            let lowest = id_to_cql(lo);
            'walk: loop {
                let full = buckets.len() == BUCKET_PAGE;
                let mut oldest = None;
                for bucket in buckets {
                    self.read_down(conversation, bucket, (lo, hi), limit, &mut out)
                        .await?;
                    if out.len() >= limit || bucket <= lowest {
                        break 'walk;
                    }
                    oldest = Some(bucket);
                }
                match oldest.and_then(|b| b.checked_sub(1)) {
                    Some(from) if full => {
                        buckets = self.buckets_down(conversation, from, BUCKET_PAGE).await?;
                    }
                    _ => break,
                }
            }
        }
        if let Some(p) = state.visible_pending() {
            let id = p.message.message_id;
            if (lo..=hi).contains(&id)
                && p.message.kind.in_history()
                && out.first().is_none_or(|m| m.message_id < id)
            {
                out.insert(0, p.message.clone());
                out.truncate(limit);
            }
        }
        for m in &mut out {
            state.apply_pending(m);
        }
        Ok(out)
    }

    /// The seq of the newest text entry at or below `up_to` (0: none): the
    /// head's when `up_to` reaches it, else the `seq` of the newest stored
    /// entry at or below it, never below the purged entries' seq.
    pub(crate) async fn seq_at(
        &self,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<u64> {
        let (state, bucket) = futures::try_join!(
            self.state(conversation),
            self.bucket_of(conversation, up_to),
        )?;
        let Some(last) = state.head.last_id else {
            return Ok(0);
        };
        if up_to >= last {
            return Ok(state.head.seq);
        }
        if state.is_purged(up_to) {
            return Ok(state.purged_seq);
        }
        let lo = state.purged.and_then(next).unwrap_or(MessageId(0));
        let lowest = id_to_cql(lo);
        let (mut bucket, mut to) = (bucket, up_to);
        while let Some(b) = bucket {
            let rows: Vec<(Option<String>, Option<i64>, i64)> = self
                .rows(
                    &self.st.seqs_down,
                    (
                        conversation.as_str(),
                        b,
                        lowest,
                        id_to_cql(to),
                        limit_to_cql(BUCKET_PAGE),
                    ),
                    "read seq",
                )
                .await?;
            // Rows without a sender hold only a purged entry's late change.
            if let Some(seq) = rows
                .iter()
                .find_map(|(sender, seq, _)| sender.as_ref().and(*seq))
            {
                return Ok(count_from_cql(seq).max(state.purged_seq));
            }
            if rows.len() == BUCKET_PAGE {
                // A page of such rows only: go on below them in this bucket.
                let oldest = id_from_cql(rows[BUCKET_PAGE - 1].2);
                match oldest.0.checked_sub(1) {
                    Some(t) => to = MessageId(t),
                    None => break,
                }
                continue;
            }
            if b <= lowest {
                break;
            }
            bucket = match b.checked_sub(1) {
                Some(from) => self
                    .buckets_down(conversation, from, 1)
                    .await?
                    .into_iter()
                    .next(),
                None => None,
            };
        }
        Ok(state.purged_seq)
    }
}
