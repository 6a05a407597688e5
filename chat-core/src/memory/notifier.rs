//! [`RecordingNotifier`] (keeps what it is told, for tests) and [`NoopNotifier`].

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::error::Result;
use crate::push::{Notifier, PushNotification};

/// A [`Notifier`] that drops every notification: the default when no push
/// service is configured.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopNotifier;

#[async_trait]
impl Notifier for NoopNotifier {
    async fn notify(&self, _notification: PushNotification) -> Result<()> {
        Ok(())
    }
}

/// A [`Notifier`] that keeps every notification in order, for tests to read.
#[derive(Debug)]
pub struct RecordingNotifier {
    notifications: Mutex<Vec<PushNotification>>,
    /// How many were recorded, for [`RecordingNotifier::wait_for`]; a watch
    /// channel keeps the latest count, so no wake-up is ever lost.
    count: watch::Sender<usize>,
}

impl Default for RecordingNotifier {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingNotifier {
    /// A notifier that has recorded nothing yet.
    pub fn new() -> Self {
        Self {
            notifications: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
        }
    }

    /// Every notification recorded so far, oldest first.
    pub fn notifications(&self) -> Vec<PushNotification> {
        self.notifications.lock().clone()
    }

    /// How many notifications were recorded.
    pub fn len(&self) -> usize {
        self.notifications.lock().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until at least `n` notifications were recorded and returns all
    /// of them. Waits forever if they never come: wrap it in a timeout.
    pub async fn wait_for(&self, n: usize) -> Vec<PushNotification> {
        let mut count = self.count.subscribe();
        // The sender lives in self, so the channel cannot close while we wait.
        let _ = count.wait_for(|c| *c >= n).await;
        self.notifications()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: PushNotification) -> Result<()> {
        let len = {
            let mut notifications = self.notifications.lock();
            notifications.push(notification);
            notifications.len()
        };
        self.count.send_replace(len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversationId, MessageId, UserId};
    use std::sync::Arc;

    fn notification(n: u64) -> PushNotification {
        PushNotification {
            user_id: UserId::from("u"),
            conversation_id: ConversationId::from("g:1"),
            message_id: MessageId(n),
            sender_id: UserId::from("s"),
            preview: format!("hello {n}"),
        }
    }

    #[tokio::test]
    async fn wait_for_returns_once_enough_were_recorded() {
        let notifier = Arc::new(RecordingNotifier::new());
        let waiter = tokio::spawn({
            let notifier = notifier.clone();
            async move { notifier.wait_for(3).await }
        });
        for n in 0..3 {
            notifier.notify(notification(n)).await.unwrap();
        }
        let got = waiter.await.unwrap();
        assert_eq!(got, (0..3).map(notification).collect::<Vec<_>>());
        assert_eq!(notifier.len(), 3);
    }
}
