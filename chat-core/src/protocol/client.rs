//! Frames that a client sends to the server, and their exact JSON encoding.
//!
//! Decoding lives in [`super::decode_client`], which names every way a frame
//! can be bad; encoding (for the CLI client and the load generator) is here.

use bytes::Bytes;
use serde::{Serialize, Serializer};

use crate::model::{ConversationId, MessageId, UserId};

/// A frame from client to server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFrame {
    /// `send`: store a message and deliver it; answered by `sent`.
    Send(SendFrame),
    /// `ack`: every message of the conversation up to and including
    /// `message_id` has reached this user.
    Ack {
        /// The conversation.
        conversation_id: ConversationId,
        /// The newest message delivered.
        message_id: MessageId,
    },
    /// `read`: every message of the conversation up to and including
    /// `message_id` has been read by this user.
    Read {
        /// The conversation.
        conversation_id: ConversationId,
        /// The newest message read.
        message_id: MessageId,
    },
    /// `sync`: send every message not acked yet, then `synced`.
    Sync {
        /// The request id, echoed as `reply_to`.
        id: Option<String>,
    },
    /// `history`: a page of a conversation's messages, newest first.
    History {
        /// The request id, echoed as `reply_to`.
        id: Option<String>,
        /// The conversation.
        conversation_id: ConversationId,
        /// Only messages older than this one.
        before: Option<MessageId>,
        /// At most this many messages (the server caps it).
        limit: Option<u32>,
    },
    /// `typing`: tell the other members online that this user types.
    Typing {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// `presence_subscribe`: presence of these users now and at every change.
    PresenceSubscribe {
        /// The request id, echoed as `reply_to`.
        id: Option<String>,
        /// Whose presence to follow.
        user_ids: Vec<UserId>,
    },
    /// `ping`: answered by `pong`.
    Ping {
        /// The request id, echoed as `reply_to`.
        id: Option<String>,
    },
    /// `edit`: the sender replaces a message's body; answered by `sent`.
    Edit(EventFrame),
    /// `delete`: the sender (or a group owner or admin) deletes a message;
    /// answered by `sent`. Its `body` is empty.
    Delete(EventFrame),
    /// `react`: a member sets (or, with an empty emoji, removes) its
    /// reaction to a message; answered by `sent`. `body` is the emoji.
    React(EventFrame),
}

/// The body of an `edit`, `delete` or `react` frame: an event about one
/// message, stored with its own id like a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFrame {
    /// The request id, echoed as `reply_to` in `sent` (or `error`).
    pub id: Option<String>,
    /// The conversation of the message.
    pub conversation_id: ConversationId,
    /// The message the event is about.
    pub message_id: MessageId,
    /// The new body (`edit`), the emoji (`react`), empty (`delete`).
    pub body: String,
    /// The sender's retry key, as for `send`.
    pub client_msg_id: Option<String>,
}

/// The body of a `send` frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendFrame {
    /// The request id, echoed as `reply_to` in `sent` (or `error`).
    pub id: Option<String>,
    /// Where the message goes.
    pub target: SendTarget,
    /// The text.
    pub body: String,
    /// The sender's retry key: a repeat stores nothing new and is answered
    /// with the first `message_id`.
    pub client_msg_id: Option<String>,
    /// The message this one answers (of the same conversation).
    pub in_reply_to: Option<MessageId>,
}

/// Where a `send` goes: exactly one of `conversation_id` and `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendTarget {
    /// `conversation_id`: a group or direct conversation by its id.
    Conversation(ConversationId),
    /// `to`: the direct conversation with this user.
    User(UserId),
}

impl ClientFrame {
    /// The frame's `id` (the answer's `reply_to`), for the frames that carry one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Send(SendFrame { id, .. })
            | Self::Sync { id }
            | Self::History { id, .. }
            | Self::PresenceSubscribe { id, .. }
            | Self::Ping { id } => id.as_deref(),
            Self::Edit(e) | Self::Delete(e) | Self::React(e) => e.id.as_deref(),
            Self::Ack { .. } | Self::Read { .. } | Self::Typing { .. } => None,
        }
    }

    /// The frame's `type`, as on the wire (for logs and metrics).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Send(_) => "send",
            Self::Ack { .. } => "ack",
            Self::Read { .. } => "read",
            Self::Sync { .. } => "sync",
            Self::History { .. } => "history",
            Self::Typing { .. } => "typing",
            Self::PresenceSubscribe { .. } => "presence_subscribe",
            Self::Ping { .. } => "ping",
            Self::Edit(_) => "edit",
            Self::Delete(_) => "delete",
            Self::React(_) => "react",
        }
    }

    /// The frame as the contract's JSON text, in one pre-sized buffer.
    pub fn encode(&self) -> Bytes {
        Bytes::from(self.to_vec())
    }

    /// The frame as the contract's JSON text, as a `String` (what WebSocket
    /// libraries take for a text frame).
    pub fn encode_text(&self) -> String {
        // serde_json writes only valid UTF-8; the fallback cannot be taken.
        String::from_utf8(self.to_vec()).unwrap_or_default()
    }

    fn to_vec(&self) -> Vec<u8> {
        super::json_vec(self, self.size_hint())
    }

    /// A close upper guess of the encoded length, so the buffer rarely grows.
    fn size_hint(&self) -> usize {
        let id_len = |id: &Option<String>| id.as_ref().map_or(0, |s| s.len() + 8);
        96 + match self {
            Self::Send(s) => {
                let target = match &s.target {
                    SendTarget::Conversation(c) => c.as_str().len(),
                    SendTarget::User(u) => u.as_str().len(),
                };
                id_len(&s.id) + target + s.body.len() + id_len(&s.client_msg_id) + 16
            }
            Self::Ack {
                conversation_id, ..
            }
            | Self::Read {
                conversation_id, ..
            }
            | Self::Typing { conversation_id } => conversation_id.as_str().len(),
            Self::Sync { id } | Self::Ping { id } => id_len(id),
            Self::History {
                id,
                conversation_id,
                ..
            } => id_len(id) + conversation_id.as_str().len(),
            Self::PresenceSubscribe { id, user_ids } => {
                id_len(id) + user_ids.iter().map(|u| u.as_str().len() + 3).sum::<usize>()
            }
            Self::Edit(e) | Self::Delete(e) | Self::React(e) => {
                id_len(&e.id) + e.conversation_id.as_str().len() + e.body.len() + 48
            }
        }
    }
}

/// The wire shape of a client frame, borrowed from a [`ClientFrame`]: serde's
/// internally tagged derive writes exactly the contract's keys, and absent
/// options are left out.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire<'a> {
    Send {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<&'a ConversationId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<&'a UserId>,
        body: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        in_reply_to: Option<MessageId>,
    },
    Ack {
        conversation_id: &'a ConversationId,
        message_id: MessageId,
    },
    Read {
        conversation_id: &'a ConversationId,
        message_id: MessageId,
    },
    Sync {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
    },
    History {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        conversation_id: &'a ConversationId,
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<MessageId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    Typing {
        conversation_id: &'a ConversationId,
    },
    PresenceSubscribe {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        user_ids: &'a [UserId],
    },
    Ping {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
    },
    Edit {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        conversation_id: &'a ConversationId,
        message_id: MessageId,
        body: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
    },
    Delete {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        conversation_id: &'a ConversationId,
        message_id: MessageId,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
    },
    React {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        conversation_id: &'a ConversationId,
        message_id: MessageId,
        emoji: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
    },
}

impl<'a> From<&'a ClientFrame> for Wire<'a> {
    fn from(frame: &'a ClientFrame) -> Self {
        match frame {
            ClientFrame::Send(s) => {
                let (conversation_id, to) = match &s.target {
                    SendTarget::Conversation(c) => (Some(c), None),
                    SendTarget::User(u) => (None, Some(u)),
                };
                Wire::Send {
                    id: s.id.as_deref(),
                    conversation_id,
                    to,
                    body: &s.body,
                    client_msg_id: s.client_msg_id.as_deref(),
                    in_reply_to: s.in_reply_to,
                }
            }
            ClientFrame::Ack {
                conversation_id,
                message_id,
            } => Wire::Ack {
                conversation_id,
                message_id: *message_id,
            },
            ClientFrame::Read {
                conversation_id,
                message_id,
            } => Wire::Read {
                conversation_id,
                message_id: *message_id,
            },
            ClientFrame::Sync { id } => Wire::Sync { id: id.as_deref() },
            ClientFrame::History {
                id,
                conversation_id,
                before,
                limit,
            } => Wire::History {
                id: id.as_deref(),
                conversation_id,
                before: *before,
                limit: *limit,
            },
            ClientFrame::Typing { conversation_id } => Wire::Typing { conversation_id },
            ClientFrame::PresenceSubscribe { id, user_ids } => Wire::PresenceSubscribe {
                id: id.as_deref(),
                user_ids,
            },
            ClientFrame::Ping { id } => Wire::Ping { id: id.as_deref() },
            ClientFrame::Edit(e) => Wire::Edit {
                id: e.id.as_deref(),
                conversation_id: &e.conversation_id,
                message_id: e.message_id,
                body: &e.body,
                client_msg_id: e.client_msg_id.as_deref(),
            },
            ClientFrame::Delete(e) => Wire::Delete {
                id: e.id.as_deref(),
                conversation_id: &e.conversation_id,
                message_id: e.message_id,
                client_msg_id: e.client_msg_id.as_deref(),
            },
            ClientFrame::React(e) => Wire::React {
                id: e.id.as_deref(),
                conversation_id: &e.conversation_id,
                message_id: e.message_id,
                emoji: &e.body,
                client_msg_id: e.client_msg_id.as_deref(),
            },
        }
    }
}

impl Serialize for ClientFrame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire::from(self).serialize(s)
    }
}
