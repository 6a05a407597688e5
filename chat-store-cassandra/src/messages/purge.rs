//! `purge` (until-delivered retention) and `remove` (the undo of one
//! append): deletes that leave as few tombstones as the log allows, and
//! that no reader ever walks through (see the crate docs, "Tombstones").

use chat_core::{ConversationId, MessageId, Result, UserId};
use futures::FutureExt;
use futures::future::try_join_all;

use crate::codec::{delete_time, id_from_cql, id_to_cql, write_time};
use crate::store::CassandraStore;

/// Buckets read per page of the bucket index while purging.
const BUCKET_PAGE: usize = 64;

/// A row of `statements::purge_scan`: message_id, sender_id,
/// client_msg_id, seq.
type ScanRow = (i64, Option<String>, Option<String>, Option<i64>);

/// What purge found in the purged range: how many entries, their dedup
/// keys, the newest seq and the newest id.
#[derive(Default)]
struct Found {
    entries: u64,
    keys: Vec<(UserId, String, MessageId)>,
    seq: u64,
    newest: Option<MessageId>,
}

impl CassandraStore {
    /// See [`chat_core::store::MessageStore::purge`]. In order:
    /// 1. read the head: the low-water mark `P` and the newest id; the
    ///    bound is clamped to the newest id (nothing above it is stored);
    /// 2. read the ids, keys and seqs of the entries in `(P, up_to]`,
    ///    bucket by bucket (bounded by that range: never through older
    ///    purges' tombstones);
    /// 3. delete their dedup keys, then each bucket: a partition tombstone
    ///    (and its index row) for a bucket wholly at or below the bound, a
    ///    range tombstone `message_id <= up_to` for the one it ends in;
    /// 4. move the low-water mark, which readers bound every read by.
    ///
    /// A failure part-way leaves some entries deleted and the mark where it
    /// was; calling again finishes (the rows already deleted read as
    /// nothing). The count is of entries this call found.
    pub(crate) async fn purge_up_to(
        &self,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<u64> {
        let state = self.state(conversation).await?;
        let Some(last) = state.head.last_id else {
            return Ok(0);
        };
        let up_to = up_to.min(last);
        if state.is_purged(up_to) {
            return Ok(0);
        }
        let lo = match state.purged {
            Some(p) => MessageId(p.0 + 1),
            None => MessageId(0),
        };
        let buckets = self.buckets_between(conversation, lo, up_to).await?;
        let mut found = Found::default();
        for bucket in &buckets {
            self.scan(conversation, *bucket, (lo, up_to), &mut found)
                .await?;
        }
        if let Some(p) = state.visible_pending() {
            let id = p.message.message_id;
            // The newest id overall: if its row is written, the scan ended
            // with it.
            if (lo..=up_to).contains(&id) && found.newest != Some(id) {
                // Not written out yet: it counts all the same, and its rows,
                // if they are written later, are older than the tombstones.
                found.entries += 1;
                if let Some(key) = &p.client_msg_id {
                    found
                        .keys
                        .push((p.message.sender_id.clone(), key.clone(), id));
                }
                found.seq = found.seq.max(p.seq);
            }
        }
        let keys = found.keys.iter().map(|(sender, key, id)| {
            // Dated by the entry's id: it deletes this entry's key and never
            // the same key reused by a later entry.
            self.run(
                &self.st.delete_dedup,
                (write_time(*id), sender.as_str(), key.as_str()),
                "purge dedup keys",
            )
        });
        try_join_all(keys).await?;
        let at = delete_time(up_to);
        let bound = id_to_cql(up_to);
        let deletes = buckets.iter().enumerate().map(|(i, bucket)| {
            let whole = buckets
                .get(i + 1)
                .is_some_and(|next| next.saturating_sub(1) <= bound);
            let key = (at, conversation.as_str(), *bucket);
            async move {
                if whole {
                    self.run(&self.st.purge_bucket, key, "purge bucket").await?;
                    self.run(&self.st.delete_bucket, key, "purge bucket index")
                        .await?;
                } else {
                    self.run(
                        &self.st.purge_range,
                        (key.0, key.1, key.2, bound),
                        "purge range",
                    )
                    .await?;
                }
                Ok::<_, chat_core::Error>(())
            }
            .boxed()
        });
        try_join_all(deletes).await?;
        self.run(
            &self.st.set_purged,
            (
                write_time(up_to),
                bound,
                crate::codec::count_to_cql(found.seq.max(state.purged_seq)),
                conversation.as_str(),
            ),
            "move the low-water mark",
        )
        .await?;
        Ok(found.entries)
    }

    /// The buckets holding ids in `[lo, hi]`, oldest first.
    async fn buckets_between(
        &self,
        conversation: &ConversationId,
        lo: MessageId,
        hi: MessageId,
    ) -> Result<Vec<i64>> {
        let mut buckets: Vec<i64> = self
            .bucket_of(conversation, lo)
            .await?
            .into_iter()
            .collect();
        let mut after = id_to_cql(lo);
        loop {
            let page = self
                .buckets_up(conversation, after, id_to_cql(hi), BUCKET_PAGE)
                .await?;
            let full = page.len() == BUCKET_PAGE;
            if let Some(last) = page.last() {
                after = *last;
            }
            buckets.extend(page);
            if !full {
                return Ok(buckets);
            }
        }
    }

    /// Adds what bucket `bucket` holds in `[lo, hi]` to `found` (paged by
    /// the driver; rows holding only a late change of a purged entry do
    /// not count).
    async fn scan(
        &self,
        conversation: &ConversationId,
        bucket: i64,
        (lo, hi): (MessageId, MessageId),
        found: &mut Found,
    ) -> Result<()> {
        let rows: Vec<ScanRow> = self
            .paged(
                &self.st.purge_scan,
                (conversation.as_str(), bucket, id_to_cql(lo), id_to_cql(hi)),
                usize::MAX,
                "purge scan",
            )
            .await?;
        for (id, sender, key, seq) in rows {
            let Some(sender) = sender else { continue };
            found.entries += 1;
            found.newest = Some(id_from_cql(id));
            found.seq = found.seq.max(seq.map_or(0, crate::codec::count_from_cql));
            if let Some(key) = key {
                found
                    .keys
                    .push((UserId::from(sender), key, id_from_cql(id)));
            }
        }
        Ok(())
    }

    /// See [`chat_core::store::MessageStore::remove`]: marks the entry
    /// removed in the head if it is the newest (so that readers and the
    /// next append skip it), deletes its dedup key (dated by its id), then
    /// its row (dated after its id, so that a late write of it is shadowed).
    pub(crate) async fn remove_entry(
        &self,
        conversation: &ConversationId,
        id: MessageId,
    ) -> Result<()> {
        let state = self.state(conversation).await?;
        if state.is_purged(id) {
            return Ok(());
        }
        let pending = state
            .pending
            .as_ref()
            .filter(|p| p.message.message_id == id && !p.removed);
        if pending.is_some() {
            // If the head moved on meanwhile, the entry is written out and
            // the deletes below are all it takes.
            self.run(
                &self.st.mark_removed,
                (conversation.as_str(), id_to_cql(id)),
                "remove newest entry",
            )
            .await?;
        }
        let stored = self.stored_entry(conversation, id).await?;
        let (sender, key, bucket) = match (&stored, pending) {
            (Some((s, bucket)), _) => (
                s.message.sender_id.clone(),
                s.client_msg_id.clone(),
                Some(*bucket),
            ),
            (None, Some(p)) => (
                p.message.sender_id.clone(),
                p.client_msg_id.clone(),
                Some(p.bucket),
            ),
            (None, None) => return Ok(()),
        };
        if let Some(key) = key {
            self.run(
                &self.st.delete_dedup,
                (write_time(id), sender.as_str(), key.as_str()),
                "remove dedup key",
            )
            .await?;
        }
        if let Some(bucket) = bucket {
            self.run(
                &self.st.delete_entry,
                (
                    delete_time(id),
                    conversation.as_str(),
                    bucket,
                    id_to_cql(id),
                ),
                "remove entry",
            )
            .await?;
        }
        Ok(())
    }
}
