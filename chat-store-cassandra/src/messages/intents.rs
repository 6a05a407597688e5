//! Intents of sends to two shards ([`chat_core::store::Intent`]): one
//! partition per UTC day of the entry's id (see the `intents` table).
//!
//! A listing reads the days from `after`'s (or, without it,
//! [`LOOKBACK_DAYS`] before `before`'s) up to `before`'s: an intent older
//! than that is not listed any more. The sharded store's reconciler acts
//! on intents within minutes; one that a shard down for a week kept from
//! completing leaves its conversation's second copy behind, which the next
//! send to that conversation completes (and reads merge both copies
//! meanwhile).

use chat_core::store::Intent;
use chat_core::{ConversationId, MessageId, Result};

use crate::codec::{id_from_cql, id_to_cql, limit_to_cql};
use crate::store::CassandraStore;

/// How many days back a listing without a lower bound reads.
pub(crate) const LOOKBACK_DAYS: u64 = 7;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// The partition of an entry id.
fn day_of(id: MessageId) -> i64 {
    i64::try_from(id.unix_ms() / DAY_MS).unwrap_or(i64::MAX)
}

impl CassandraStore {
    pub(crate) async fn put_intent_row(&self, intent: &Intent) -> Result<()> {
        self.run(
            &self.st.put_intent,
            (
                day_of(intent.message_id),
                id_to_cql(intent.message_id),
                intent.conversation_id.as_str(),
            ),
            "put intent",
        )
        .await
        .map(drop)
    }

    pub(crate) async fn intent_rows(
        &self,
        after: Option<MessageId>,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<Intent>> {
        let last = day_of(before);
        let lookback = i64::try_from(LOOKBACK_DAYS).unwrap_or(0);
        let first = after.map_or(last - lookback, |a| day_of(a).max(last - lookback));
        // Below every id / above it: `message_id > low` and `< high`.
        let low = after.map_or(i64::MIN, id_to_cql);
        let high = id_to_cql(before);
        let mut out = Vec::new();
        for day in first..=last {
            if out.len() >= limit {
                break;
            }
            let want = limit_to_cql(limit - out.len());
            let rows: Vec<(i64, String)> = self
                .rows(&self.st.intents, (day, low, high, want), "read intents")
                .await?;
            out.extend(rows.into_iter().map(|(id, c)| Intent {
                message_id: id_from_cql(id),
                conversation_id: ConversationId::from(c),
            }));
        }
        // Several rows of one id (one per conversation) come in
        // conversation order within a day; days come in order.
        Ok(out)
    }

    pub(crate) async fn clear_intent_row(&self, intent: &Intent) -> Result<()> {
        self.run(
            &self.st.clear_intent,
            (
                day_of(intent.message_id),
                id_to_cql(intent.message_id),
                intent.conversation_id.as_str(),
            ),
            "clear intent",
        )
        .await
        .map(drop)
    }
}
