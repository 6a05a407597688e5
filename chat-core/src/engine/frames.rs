//! Entries to frames: a text entry or message event becomes a `message`
//! frame, a group event a `group_event` frame; and the group event's stored
//! body, which the nodes apply to what they know of the members.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::{GroupEvent, Message, MessageId, MessageKind, Role, UserId};
use crate::protocol::ServerFrame;

/// The body of a stored group-event entry: the event as clients see it,
/// plus the join point of an added member (so that nodes know from which
/// entry on it receives the conversation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredEvent {
    #[serde(flatten)]
    pub(crate) event: GroupEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) joined: Option<MessageId>,
}

impl StoredEvent {
    pub(crate) fn body(&self) -> String {
        serde_json::to_string(self).expect("group events always serialize")
    }

    pub(crate) fn parse(body: &str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }

    /// The user it is about, and its role when it has one.
    pub(crate) fn subject(&self) -> Option<(&UserId, Option<Role>)> {
        self.event.user_id.as_ref().map(|u| (u, self.event.role))
    }
}

/// The frame clients get for an entry, and the parsed group event if it is one.
pub(crate) fn entry_frame(entry: &Message) -> (Bytes, Option<StoredEvent>) {
    if entry.kind == MessageKind::GroupEvent
        && let Some(stored) = StoredEvent::parse(&entry.body)
    {
        let frame = ServerFrame::GroupEvent {
            conversation_id: entry.conversation_id.clone(),
            message_id: entry.message_id,
            ts: entry.ts,
            event: stored.event.clone(),
        }
        .encode();
        return (frame, Some(stored));
    }
    let frame = ServerFrame::Message {
        message: entry.clone(),
    }
    .encode();
    (frame, None)
}
