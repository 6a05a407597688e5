//! What the engine puts on the bus: an [`Envelope`], a small JSON header
//! line and, for the kinds that carry one, the encoded client frame after it,
//! shared as is with every local session that gets it.
//!
//! The header is JSON because it is tiny next to the frame and easy to read
//! in `redis-cli monitor`; the frame is never parsed again on the way.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::model::{ConversationId, DeviceId, MessageId, NodeId, ReceiptStatus, UserId};

/// One session anywhere in the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct SessionRef {
    pub(crate) node: NodeId,
    pub(crate) session: u64,
}

/// The header of a bus message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Header {
    /// An entry of a conversation's chain (on its conversation topic).
    Entry {
        c: ConversationId,
        id: MessageId,
        /// The entry before it in the chain; `None` for the first entry.
        prev: Option<MessageId>,
        /// The session that sent it, which gets `sent` instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skip: Option<SessionRef>,
        /// A group event: the body of the stored entry (the change to apply
        /// to the local member index), the frame being what clients see.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
    /// An entry sent again outside the chain (a retried send that was
    /// already stored): sessions take it only if they have not had it.
    Redeliver {
        c: ConversationId,
        id: MessageId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skip: Option<SessionRef>,
    },
    /// A frame for the members of a conversation that is not an entry
    /// (typing, read receipts): no order, no storage.
    Ephemeral {
        c: ConversationId,
        /// The user whose own sessions do not get it (the typer, the reader).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not: Option<UserId>,
    },
    /// A frame for every session of one user (on its user topic).
    ToUser,
    /// On a user topic: the user is a member of `c` now (added, joined,
    /// or a direct conversation was created): its nodes start delivering it.
    Attach { c: ConversationId },
    /// On the cluster topic: `device` was removed; its sessions close and
    /// its tokens stop working. With `ack`, the origin waits for an
    /// [`Header::Applied`] from every node (see `confirm`).
    DeviceRemoved {
        user: UserId,
        device: DeviceId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<u64>,
    },
    /// On the cluster topic: `user`'s blocks changed (`ack` as above).
    BlocksChanged {
        user: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<u64>,
    },
    /// On the cluster topic: the publisher applied notice `ack` of node `to`.
    Applied { to: NodeId, ack: u64 },
    /// On a user topic: readers' receipts of a big group, coalesced on
    /// their node for this user (a sender) over a short interval.
    Receipts {
        c: ConversationId,
        status: ReceiptStatus,
        message_id: MessageId,
        users: Vec<UserId>,
        count: u64,
    },
}

/// A decoded bus message: its header and the frame after it (maybe empty).
#[derive(Clone, Debug)]
pub(crate) struct Envelope {
    pub(crate) header: Header,
    pub(crate) frame: Bytes,
}

impl Envelope {
    pub(crate) fn new(header: Header, frame: Bytes) -> Self {
        Self { header, frame }
    }

    /// The header line, a newline, the frame.
    pub(crate) fn encode(&self) -> Bytes {
        let head = serde_json::to_vec(&self.header).expect("headers always serialize");
        let mut out = BytesMut::with_capacity(head.len() + 1 + self.frame.len());
        out.put_slice(&head);
        out.put_u8(b'\n');
        out.put_slice(&self.frame);
        out.freeze()
    }

    /// Splits a bus payload; `None` for one this version cannot read
    /// (logged and dropped by the caller).
    pub(crate) fn decode(payload: &Bytes) -> Option<Self> {
        let split = payload.iter().position(|b| *b == b'\n')?;
        let header = serde_json::from_slice(&payload[..split]).ok()?;
        Some(Self {
            header,
            frame: payload.slice(split + 1..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_share_the_frame() {
        let frame = Bytes::from_static(br#"{"type":"message"}"#);
        let e = Envelope::new(
            Header::Entry {
                c: "g1".into(),
                id: MessageId(7),
                prev: Some(MessageId(5)),
                skip: Some(SessionRef {
                    node: "n".into(),
                    session: 3,
                }),
                event: None,
            },
            frame.clone(),
        );
        let back = Envelope::decode(&e.encode()).expect("decodes");
        assert_eq!(back.header, e.header);
        assert_eq!(back.frame, frame);
        assert!(Envelope::decode(&Bytes::from_static(b"no newline")).is_none());
        assert!(Envelope::decode(&Bytes::from_static(b"{\"t\":\"nope\"}\n")).is_none());
    }
}
