//! Until-delivered retention: a conversation's entries are deleted up to its
//! low-water mark, the lowest cursor that still holds something back
//! (docs/storage.md, "Retention"):
//! - a device counts when it has connected at least once and within
//!   `device_ttl`; it holds back what it has not acked in the conversation;
//! - a member none of whose devices ever connected holds back at its user
//!   cursor (its messages wait for its first device);
//! - a member whose devices all expired (or were removed) holds nothing back.
//!
//! Small conversations are purged at each ack; bigger ones are marked and
//! purged by the background sweep. A conversation whose purge stopped below
//! its head (someone still has to ack) is kept for the sweep too, so that
//! a device expiring later frees it without another ack. Both sets live in
//! this node's memory: after a restart a conversation is purged again at
//! its next ack.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parking_lot::Mutex;

use super::Inner;
use crate::error::Result;
use crate::model::{ConversationId, DeviceId, Member, MessageId, Retention, UserId, now_millis};

/// Conversations waiting for the background sweep.
#[derive(Default)]
pub(crate) struct Purges {
    pending: Mutex<HashSet<ConversationId>>,
}

impl Inner {
    /// A new entry in `c`: the sweep looks at it (a member whose devices all
    /// went away holds nothing, so nobody may ever ack it).
    pub(crate) fn mark_for_purge(&self, c: &ConversationId) {
        if self.retention == Retention::UntilDelivered {
            self.purges.pending.lock().insert(c.clone());
        }
    }

    /// After an ack: purges `c` now when it is small, or marks it for the sweep.
    pub(crate) async fn after_ack(&self, c: &ConversationId) {
        if self.retention != Retention::UntilDelivered {
            return;
        }
        let members = match self.conversations.member_count(c).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, conversation = %c, "member count unavailable; purge deferred");
                self.purges.pending.lock().insert(c.clone());
                return;
            }
        };
        if members as usize > self.limits.purge_at_ack_members {
            self.purges.pending.lock().insert(c.clone());
            return;
        }
        if let Err(e) = self.purge_delivered(c).await {
            tracing::warn!(error = %e, conversation = %c, "purge failed; the sweep retries it");
            self.purges.pending.lock().insert(c.clone());
        }
    }

    /// Deletes `c`'s entries up to its low-water mark. Safe to repeat.
    pub(crate) async fn purge_delivered(&self, c: &ConversationId) -> Result<u64> {
        let members = self.conversations.members(c).await?;
        let head = self.messages.head(c).await?;
        let Some(last) = head.last_id else {
            return Ok(0);
        };
        let low = self.low_water(c, &members).await?;
        let up_to = low.map_or(last, |l| l.min(last));
        if up_to < last {
            // Someone still holds entries back: look again at the next sweep.
            self.purges.pending.lock().insert(c.clone());
        }
        if up_to.0 == 0 {
            return Ok(0);
        }
        self.messages.purge(c, up_to).await
    }

    /// The lowest cursor that holds entries of `c` back (`None`: nobody holds anything).
    async fn low_water(&self, c: &ConversationId, members: &[Member]) -> Result<Option<MessageId>> {
        let cursors = self.messages.conversation_cursors(c).await?;
        let mut by_device: HashMap<DeviceId, MessageId> = HashMap::new();
        let mut by_user: HashMap<UserId, MessageId> = HashMap::new();
        for cursor in cursors {
            if cursor.device_id.as_str().is_empty() {
                by_user.insert(cursor.user_id, cursor.delivered);
            } else {
                by_device.insert(cursor.device_id, cursor.delivered);
            }
        }
        let fresh_since = now_millis() - self.limits.device_ttl.as_millis() as i64;
        let mut low: Option<MessageId> = None;
        for member in members {
            let devices = self.accounts.devices(&member.user_id).await?;
            let counting: Vec<_> = devices
                .iter()
                .filter(|d| d.last_seen.is_some_and(|seen| seen >= fresh_since))
                .collect();
            let hold = if !counting.is_empty() {
                counting
                    .iter()
                    .map(|d| {
                        by_device
                            .get(&d.device_id)
                            .copied()
                            .unwrap_or(member.joined)
                            .max(member.joined)
                    })
                    .min()
            } else if devices.iter().all(|d| !d.ever_connected()) {
                Some(
                    by_user
                        .get(&member.user_id)
                        .copied()
                        .unwrap_or(member.joined)
                        .max(member.joined),
                )
            } else {
                None
            };
            if let Some(hold) = hold {
                low = Some(low.map_or(hold, |l| l.min(hold)));
            }
        }
        Ok(low)
    }

    /// One pass of the background sweep.
    pub(crate) async fn sweep(&self) {
        let pending: Vec<ConversationId> = self.purges.pending.lock().drain().collect();
        for c in pending {
            if let Err(e) = self.purge_delivered(&c).await {
                tracing::warn!(error = %e, conversation = %c, "sweep purge failed; retried next time");
                self.purges.pending.lock().insert(c);
            }
        }
    }
}

/// How often connected devices are marked seen, so that a device connected
/// for longer than the TTL does not count as gone.
pub(crate) const TOUCH_EVERY: Duration = Duration::from_secs(3600);
