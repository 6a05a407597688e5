//! Every action of the engine, a file each. Session frames and the
//! embedder's calls (the HTTP API among them) end up here.

pub(crate) mod accounts;
mod ack;
mod blocks;
mod conversations;
pub(crate) mod devices;
mod events;
pub(crate) mod groups;
mod history;
mod invites;
mod presence;
mod read;
mod rules;
mod send;
mod typing;

use crate::model::{ConversationId, MessageId, Millis};
use crate::protocol::ServerFrame;

/// What a stored send or message event answers (the `sent` frame's fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The stored entry's id (the first one for a retried `client_msg_id`).
    pub message_id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// When the server accepted it.
    pub ts: Millis,
}

impl Sent {
    pub(crate) fn frame(self, reply_to: Option<String>) -> ServerFrame {
        ServerFrame::Sent {
            reply_to,
            message_id: self.message_id,
            conversation_id: self.conversation_id,
            ts: self.ts,
        }
    }
}
