//! Receipts, presence and the retention mode.

use serde::{Deserialize, Serialize};

use super::{ConversationId, MessageId, Millis, UserId};

/// Delivered (reached a device) or read (seen by the user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// The user's device acked it.
    Delivered,
    /// The user read it.
    Read,
}

/// `user_id` has received (or read) every message of the conversation up to
/// and including `message_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The newest message covered.
    pub message_id: MessageId,
    /// Who acked or read.
    pub user_id: UserId,
    /// Delivered or read.
    pub status: ReceiptStatus,
}

/// Online or offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// At least one connection is open on some node.
    Online,
    /// No connection is open.
    Offline,
}

/// A user's presence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Whose.
    pub user_id: UserId,
    /// Online or offline.
    pub status: PresenceStatus,
    /// When the last connection closed (offline users that were ever seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Millis>,
}

/// How long the server keeps messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// Keep every message (Messenger).
    #[default]
    Forever,
    /// Delete a message once every recipient acked it (WhatsApp).
    UntilDelivered,
}

impl std::str::FromStr for Retention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "forever" => Ok(Self::Forever),
            "until_delivered" => Ok(Self::UntilDelivered),
            other => Err(format!(
                "unknown retention {other:?}: expected forever or until_delivered"
            )),
        }
    }
}
