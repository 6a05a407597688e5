//! Pushes that wait until presence can tell whether their recipients are
//! offline: after Redis lost its data, presence answers "offline" for users
//! whose nodes have not re-registered them yet. Pushing them then would
//! notify people who are connected (and got the message live).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::cluster::{PresenceEntry, PresenceStore};
use crate::model::{PresenceStatus, UserId};
use crate::push::{Notifier, PushNotification};

/// How long a push waits for presence to be sure before it goes anyway: a
/// late, possibly needless push beats a lost one.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// Most pushes waiting in this process at once. Past it new ones are
/// dropped with a warning, as a full webhook queue drops them: after a
/// loss of presence data, messages to big groups must not fill memory.
const MAX_WAITING: usize = 100_000;

/// Pushes waiting now, in this process.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Hands one notification to the notifier, logging a refusal.
pub(crate) async fn notify(notifier: &dyn Notifier, notification: PushNotification) {
    if let Err(e) = notifier.notify(notification).await {
        tracing::warn!(error = %e, "push notifier refused a notification");
    }
}

/// Whether the recipient of `notification` is connected, or was after the
/// message was sent (it went offline since: last_seen is later than the
/// message). Either way the message reached it, live or by the sync that
/// follows every connect, so it needs no push. Checks between two samples
/// of presence would miss a short connection; last_seen does not.
fn connected_since(entry: &PresenceEntry, notification: &PushNotification) -> bool {
    let sent_at = notification.message_id.unix_ms();
    entry.presence.status == PresenceStatus::Online
        || entry
            .presence
            .last_seen
            .is_some_and(|seen| u64::try_from(seen).is_ok_and(|seen| seen >= sent_at))
}

/// Checks presence every `every` until it is sure about each recipient of
/// `pending`: those offline since before their message are pushed; those
/// connected, or connected at some point since the message, are not (the
/// message reached them live or by sync). Runs in the background; it ends
/// once every recipient is settled, or after [`GIVE_UP_AFTER`] with a push
/// for whoever is still unsure.
pub(crate) fn when_sure(
    presence: Arc<dyn PresenceStore>,
    notifier: Arc<dyn Notifier>,
    pending: Vec<PushNotification>,
    every: Duration,
) {
    let count = pending.len();
    if WAITING.fetch_add(count, Ordering::AcqRel) + count > MAX_WAITING {
        WAITING.fetch_sub(count, Ordering::AcqRel);
        tracing::warn!(
            dropped = count,
            "too many pushes wait for presence to settle; dropping these"
        );
        return;
    }
    tokio::spawn(async move {
        // Counted out however the task ends (a runtime shutting down too).
        let _waiting = Waiting(count);
        let deadline = tokio::time::Instant::now() + GIVE_UP_AFTER;
        let mut pending = pending;
        while !pending.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(every).await;
            let users: Vec<UserId> = pending.iter().map(|n| n.user_id.clone()).collect();
            let entries = match presence.presence(&users).await {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::debug!(error = %e, "presence still unavailable; pushes wait");
                    continue;
                }
            };
            let mut unsure = Vec::new();
            for (notification, entry) in pending.into_iter().zip(entries) {
                if connected_since(&entry, &notification) {
                    continue;
                }
                if entry.certain {
                    notify(&*notifier, notification).await;
                } else {
                    unsure.push(notification);
                }
            }
            pending = unsure;
        }
        if !pending.is_empty() {
            tracing::warn!(
                users = pending.len(),
                "presence stayed unsure for {GIVE_UP_AFTER:?}; pushing anyway"
            );
        }
        for notification in pending {
            notify(&*notifier, notification).await;
        }
    });
}

/// Counts a task's pushes out of [`WAITING`] when it ends.
struct Waiting(usize);

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(self.0, Ordering::AcqRel);
    }
}
