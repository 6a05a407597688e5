//! The reconciler: completes the sends to mirrored direct conversations
//! that a process left half-done (see `mirror.rs` for the steps), from the
//! intents they recorded on their first copy.
//!
//! A pass pages through every shard's intents older than
//! [`RepairConfig::grace`] and, for each, fills the conversation's second
//! copy up to the intent's entry: if the first copy holds the entry, the
//! second gets it (and anything else it missed, in order) and the intent
//! goes. If the first copy does not hold it, the send never stored it (or
//! has not yet: its process may still be running, on a clock behind ours),
//! and the intent goes only once it is older than
//! [`RepairConfig::abandon_after`].

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::{MessageId, now_millis};
use crate::store::Intent;

use super::ShardedStore;
use super::mirror::Filled;
use super::route::{Placement, placement};

/// When the reconciler acts on an intent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepairConfig {
    /// Intents younger than this are left alone: their send is most
    /// likely still running and completes them itself. Default 10 s.
    pub grace: Duration,
    /// An intent whose entry is not on the first copy is forgotten once
    /// older than this: by then its send has surely failed (or its entry
    /// was purged). It must exceed the longest time an append can take
    /// plus the clock skew between nodes. Default 10 minutes.
    pub abandon_after: Duration,
    /// Intents read per page. Default 256.
    pub page: usize,
}

impl Default for RepairConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(10),
            abandon_after: Duration::from_secs(600),
            page: 256,
        }
    }
}

/// What one [`ShardedStore::reconcile`] pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Intents whose entry is now on both copies (completed by this pass,
    /// or before it by someone else).
    pub completed: u64,
    /// Intents forgotten because their entry never reached the first copy.
    pub abandoned: u64,
    /// Intents left for a later pass: too young to abandon, or a copy
    /// failed.
    pub left: u64,
    /// Shards whose intents could not be read.
    pub unreadable_shards: u64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ShardedStore {
    /// One pass of the reconciler over every shard (see the module docs of
    /// `sharded`, "A send to two shards"). Run it at startup and now and
    /// then ([`ShardedStore::spawn_reconciler`]); passes may overlap, on
    /// one node or several: every step is conditional or idempotent.
    pub async fn reconcile(&self) -> Reconciled {
        let now = u64::try_from(now_millis()).unwrap_or(0);
        let before = MessageId::first_at(now.saturating_sub(millis(self.repair.grace)));
        let abandon_before = now.saturating_sub(millis(self.repair.abandon_after));
        let mut done = Reconciled::default();
        for shard in 0..self.shard_count() {
            if let Err(error) = self
                .reconcile_shard(shard, before, abandon_before, &mut done)
                .await
            {
                tracing::warn!(shard, %error, "could not read a shard's intents");
                done.unreadable_shards += 1;
            }
        }
        done
    }

    async fn reconcile_shard(
        &self,
        shard: usize,
        before: MessageId,
        abandon_before: u64,
        done: &mut Reconciled,
    ) -> Result<()> {
        let page = self.repair.page.max(1);
        let mut after = None;
        loop {
            let intents = self.shard(shard).intents(after, before, page).await?;
            for intent in &intents {
                self.repair_one(shard, intent, abandon_before, done).await;
            }
            match intents.last() {
                Some(last) if intents.len() == page => after = Some(last.message_id),
                _ => return Ok(()),
            }
        }
    }

    async fn repair_one(
        &self,
        shard: usize,
        intent: &Intent,
        abandon_before: u64,
        done: &mut Reconciled,
    ) {
        let conversation = &intent.conversation_id;
        let second = match placement(self.by, self.shard_count(), conversation) {
            Placement::Mirrored { first, second, .. } if first == shard => second,
            // Kept in one place (or placed elsewhere since the shards were
            // counted differently): no second copy to complete here.
            _ => {
                tracing::warn!(%conversation, shard, "an intent of a conversation this shard is not the first copy of; forgotten");
                self.forget(shard, intent).await;
                done.abandoned += 1;
                return;
            }
        };
        match self
            .fill((shard, second), conversation, intent.message_id, None)
            .await
        {
            Ok(Filled::Done) => {
                self.forget(shard, intent).await;
                done.completed += 1;
            }
            Ok(Filled::Absent) if intent.message_id.unix_ms() < abandon_before => {
                self.forget(shard, intent).await;
                done.abandoned += 1;
            }
            Ok(Filled::Absent) => done.left += 1,
            Err(error) => {
                log_left(intent, &error);
                done.left += 1;
            }
        }
    }

    /// Reconciles at once (the intents a crashed process left), then every
    /// `every`, until the store is dropped or the task aborted. Needs a
    /// Tokio runtime.
    pub fn spawn_reconciler(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(store) = store.upgrade() else { return };
                let pass = store.reconcile().await;
                if pass != Reconciled::default() {
                    tracing::info!(?pass, "sharded store reconciled");
                }
            }
        })
    }
}

fn log_left(intent: &Intent, error: &Error) {
    tracing::warn!(conversation = %intent.conversation_id, id = %intent.message_id, %error,
        "could not complete a half-done direct send; left for the next pass");
}
