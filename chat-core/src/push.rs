//! Push notifications for recipients with no open connection.

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;
use crate::model::{ConversationId, MessageId, UserId};

/// What the server tells a push service about one message for one offline user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushNotification {
    /// The recipient.
    pub user_id: UserId,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The message.
    pub message_id: MessageId,
    /// Who sent it.
    pub sender_id: UserId,
    /// The start of the body.
    pub preview: String,
}

/// Hands notifications to a push service. Implementations must return fast
/// (queue and deliver in the background): the engine calls this on the send path.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Queues one notification.
    async fn notify(&self, notification: PushNotification) -> Result<()>;
}
