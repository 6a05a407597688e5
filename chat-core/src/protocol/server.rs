//! Frames that the server sends to a client, and their exact JSON encoding.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::error::BadFrame;
use crate::model::{
    ConversationId, GroupEvent, Message, MessageId, Millis, Presence, Receipt, ReceiptStatus,
    UserId,
};

/// A frame from server to client. Serializes as the contract's JSON: the
/// variant is `type` in snake_case, absent `reply_to`s are left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The answer to `send`: the message is stored.
    Sent {
        /// The `send` frame's `id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
        /// The stored message's id (the first one for a retried `client_msg_id`).
        message_id: MessageId,
        /// Its conversation (derived from `to` for a direct send).
        conversation_id: ConversationId,
        /// When the server accepted it.
        ts: Millis,
    },
    /// Every pending message has been sent. The sync the server does by
    /// itself after connect answers no request, so it has no `reply_to`.
    Synced {
        /// The `sync` frame's `id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    /// The answer to `history`: a page of messages, newest first.
    History {
        /// The `history` frame's `id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
        /// The page.
        messages: Vec<Message>,
    },
    /// A message delivered to this user.
    Message {
        /// The message.
        message: Message,
    },
    /// A delivered or read receipt, its fields beside `type`.
    Receipt(Receipt),
    /// Receipts of many readers of a big group, coalesced: every message up
    /// to `message_id` reached (or was read by) `count` receipts' worth of
    /// readers since the last such frame, some of whom `users` names. Sent
    /// instead of one `receipt` per reader in groups bigger than 33 others,
    /// at most one per conversation and status in a short interval.
    Receipts {
        /// The group.
        conversation_id: ConversationId,
        /// The newest message covered.
        message_id: MessageId,
        /// Delivered or read.
        status: ReceiptStatus,
        /// Some of the readers (at most 50).
        users: Vec<UserId>,
        /// How many receipts this frame stands for.
        count: u64,
    },
    /// A user's presence, its fields beside `type`.
    Presence(Presence),
    /// Another member types in a conversation.
    Typing {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who types.
        user_id: UserId,
    },
    /// A membership or settings change of a group, to its members and to
    /// the user it is about.
    GroupEvent {
        /// The group.
        conversation_id: ConversationId,
        /// The event's entry in the group's log: acked like a message id,
        /// so a device that has it is not sent it again.
        message_id: MessageId,
        /// When it happened (ms since the epoch).
        ts: Millis,
        /// What happened, its fields beside `type`.
        #[serde(flatten)]
        event: GroupEvent,
    },
    /// The answer to `ping`.
    Pong {
        /// The `ping` frame's `id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    /// A request failed, or a frame was bad.
    Error {
        /// The failed frame's `id`, when it had one that could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
        /// A stable code: `bad_frame`, `not_member`, `too_large`, …
        code: String,
        /// A message for a human.
        message: String,
    },
}

/// Every server frame `type`, for naming a malformed one in an error.
pub(super) const SERVER_TYPES: [&str; 11] = [
    "sent",
    "synced",
    "history",
    "message",
    "receipt",
    "receipts",
    "presence",
    "typing",
    "group_event",
    "pong",
    "error",
];

impl ServerFrame {
    /// The error frame answering a failed request, coded by [`crate::Error::code`].
    pub fn error_from(reply_to: Option<String>, error: &crate::Error) -> Self {
        Self::Error {
            reply_to,
            code: error.code().to_owned(),
            message: error.to_string(),
        }
    }

    /// The error frame answering a frame that could not be decoded: code
    /// `bad_frame`, echoing the frame's `id` when it could be read.
    pub fn bad_frame(bad: &BadFrame) -> Self {
        Self::Error {
            reply_to: bad.reply_to.clone(),
            code: bad.code().to_owned(),
            message: bad.message(),
        }
    }

    /// The frame's `type`, as on the wire (for logs and metrics).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "sent",
            Self::Synced { .. } => "synced",
            Self::History { .. } => "history",
            Self::Message { .. } => "message",
            Self::Receipt(_) => "receipt",
            Self::Receipts { .. } => "receipts",
            Self::Presence(_) => "presence",
            Self::Typing { .. } => "typing",
            Self::GroupEvent { .. } => "group_event",
            Self::Pong { .. } => "pong",
            Self::Error { .. } => "error",
        }
    }

    /// The frame as the contract's JSON text, in one pre-sized buffer that
    /// every recipient's connection can share.
    pub fn encode(&self) -> Bytes {
        Bytes::from(self.to_vec())
    }

    /// The frame as the contract's JSON text, as a `String`.
    pub fn encode_text(&self) -> String {
        // serde_json writes only valid UTF-8; the fallback cannot be taken.
        String::from_utf8(self.to_vec()).unwrap_or_default()
    }

    fn to_vec(&self) -> Vec<u8> {
        super::json_vec(self, self.size_hint())
    }

    /// A close upper guess of the encoded length (keys, quotes, numbers of
    /// at most 20 digits), so the buffer rarely grows.
    fn size_hint(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() + 16);
        96 + match self {
            Self::Sent {
                reply_to,
                conversation_id,
                ..
            } => opt(reply_to) + conversation_id.as_str().len() + 48,
            Self::Synced { reply_to } | Self::Pong { reply_to } => opt(reply_to),
            Self::History { reply_to, messages } => {
                opt(reply_to) + messages.iter().map(message_hint).sum::<usize>()
            }
            Self::Message { message } => message_hint(message),
            Self::Receipt(r) => r.conversation_id.as_str().len() + r.user_id.as_str().len() + 24,
            Self::Receipts {
                conversation_id,
                users,
                ..
            } => {
                conversation_id.as_str().len()
                    + 64
                    + users.iter().map(|u| u.as_str().len() + 3).sum::<usize>()
            }
            Self::Presence(p) => p.user_id.as_str().len() + 24,
            Self::Typing {
                conversation_id,
                user_id,
            } => conversation_id.as_str().len() + user_id.as_str().len(),
            Self::GroupEvent {
                conversation_id, ..
            } => conversation_id.as_str().len() + 200,
            Self::Error {
                reply_to,
                code,
                message,
            } => opt(reply_to) + code.len() + message.len() + message.len() / 8,
        }
    }
}

/// The encoded length guess of one message object. The body gets an eighth
/// more for escapes (quotes, newlines) that JSON doubles.
fn message_hint(m: &Message) -> usize {
    96 + m.conversation_id.as_str().len()
        + m.sender_id.as_str().len()
        + m.body.len()
        + m.body.len() / 8
}

/// Every server frame `type`, for [`server_frame_type`].
const SERVER_FRAME_TYPES: [&str; 11] = [
    "sent",
    "synced",
    "history",
    "message",
    "receipt",
    "receipts",
    "presence",
    "typing",
    "group_event",
    "pong",
    "error",
];

/// The `type` of an encoded server frame, read from its first bytes
/// without parsing it (for metrics on the write path): serde writes the
/// tag first, so every frame starts `{"type":"…"`. `"other"` for
/// anything else.
pub fn server_frame_type(frame: &[u8]) -> &'static str {
    let Some(rest) = frame.strip_prefix(br#"{"type":""#) else {
        return "other";
    };
    let Some(end) = rest.iter().position(|b| *b == b'"') else {
        return "other";
    };
    let name = &rest[..end];
    SERVER_FRAME_TYPES
        .into_iter()
        .find(|t| t.as_bytes() == name)
        .unwrap_or("other")
}
