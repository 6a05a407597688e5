//! [`WebhookNotifier`]: posts push notifications to a webhook from a bounded
//! queue, so a slow or failing webhook never slows chat.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::Result;
use chat_core::push::{Notifier, PushNotification};
use tokio::sync::{Mutex, mpsc};

/// How the webhook is posted to.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    /// Notifications waiting to be posted; when full, the NEWEST one (the one
    /// being queued) is dropped with a warning, so those already waiting keep
    /// their order. Default 10,000.
    pub queue: usize,
    /// Posts in flight at once. Default 4.
    pub workers: usize,
    /// Tries per notification, the first included. Default 5.
    pub attempts: u32,
    /// Wait before the first retry; doubled for each next one. Default 200 ms.
    pub backoff: Duration,
    /// Longest wait between retries. Default 10 s.
    pub max_backoff: Duration,
    /// Timeout of one post. Default 10 s.
    pub timeout: Duration,
    /// Where each outcome is counted (the server's `/metrics`); `None`:
    /// only the log says.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// What became of one webhook post (a label of `chat_push_webhook`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The webhook answered 2xx.
    Delivered,
    /// A try failed; another follows.
    Retried,
    /// The last try failed: the notification is given up.
    Failed,
    /// The queue was full: the notification was never posted.
    Dropped,
}

impl PushOutcome {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retried => "retried",
            Self::Failed => "failed",
            Self::Dropped => "dropped",
        }
    }
}

impl WebhookOptions {
    fn count(&self, outcome: PushOutcome) {
        if let Some(metrics) = &self.metrics {
            metrics.push_outcome(outcome);
        }
    }
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            queue: 10_000,
            workers: 4,
            attempts: 5,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            metrics: None,
        }
    }
}

/// A [`Notifier`] that posts each notification as JSON
/// (`{"user_id","conversation_id","message_id","sender_id","preview"}`, the
/// message id as a decimal string) to a webhook URL, retrying with backoff.
pub struct WebhookNotifier {
    tx: mpsc::Sender<PushNotification>,
    options: WebhookOptions,
}

impl WebhookNotifier {
    /// Starts the workers that post to `url`. Needs a Tokio runtime; the
    /// workers stop when the notifier is dropped and the queue is empty.
    pub fn start(url: String, options: WebhookOptions) -> Self {
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .unwrap_or_default();
        let url: Arc<str> = url.into();
        for _ in 0..options.workers.max(1) {
            tokio::spawn(work(
                rx.clone(),
                client.clone(),
                url.clone(),
                options.clone(),
            ));
        }
        Self { tx, options }
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, notification: PushNotification) -> Result<()> {
        match self.tx.try_send(notification) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(n)) => {
                self.options.count(PushOutcome::Dropped);
                tracing::warn!(user = %n.user_id, message = %n.message_id,
                    "push queue full: dropping this (newest) notification");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.options.count(PushOutcome::Dropped);
                tracing::warn!("push workers are gone: dropping a notification");
            }
        }
        Ok(())
    }
}

async fn work(
    rx: Arc<Mutex<mpsc::Receiver<PushNotification>>>,
    client: reqwest::Client,
    url: Arc<str>,
    options: WebhookOptions,
) {
    loop {
        let next = rx.lock().await.recv().await;
        let Some(notification) = next else { return };
        post_with_retries(&client, &url, &notification, &options).await;
    }
}

async fn post_with_retries(
    client: &reqwest::Client,
    url: &str,
    notification: &PushNotification,
    options: &WebhookOptions,
) {
    let mut wait = options.backoff;
    for attempt in 1..=options.attempts.max(1) {
        let result = client.post(url).json(notification).send().await;
        let failure = match result {
            Ok(r) if r.status().is_success() => {
                options.count(PushOutcome::Delivered);
                return;
            }
            Ok(r) => format!("status {}", r.status()),
            // reqwest names the URL in its errors: the webhook's may carry a token.
            Err(e) => e.without_url().to_string(),
        };
        if attempt == options.attempts.max(1) {
            options.count(PushOutcome::Failed);
            tracing::warn!(%failure, attempt, user = %notification.user_id,
                "push webhook failed; giving up on this notification");
            return;
        }
        options.count(PushOutcome::Retried);
        tracing::debug!(%failure, attempt, "push webhook failed; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(options.max_backoff);
    }
}
