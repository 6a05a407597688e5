//! A session's outbound queue: what the engine has for one client, waiting
//! for its socket.
//!
//! Two kinds of frames wait here:
//! - **Ordered frames** (messages, group events, answers to requests) in a
//!   FIFO whose size counts in bytes. A client that does not read is closed
//!   as too slow when that FIFO passes `Limits::outbound_queue_bytes` (it
//!   resumes by sync, losing nothing): a byte budget, not a frame count, so
//!   a thousand small frames are not worse than one big one.
//! - **State frames** (typing, presence, receipts) in slots keyed by what
//!   they are about: a newer one replaces the older one of the same key in
//!   place instead of queueing behind it, and they never count toward
//!   closing a session. A member of a 2,000-member group where everyone
//!   types holds at most one typing frame per typer; a sender whose
//!   thousand readers ack holds one receipt slot per conversation.

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

use crate::model::{ConversationId, MessageId, ReceiptStatus, UserId};
use crate::protocol::ServerFrame;

/// Most user ids named in one coalesced `receipts` frame (the count says how many in all).
pub(crate) const RECEIPT_USERS_SHOWN: usize = 50;

/// What a state frame is about: a newer frame of the same key replaces it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SlotKey {
    /// `user` types in `conversation`.
    Typing(ConversationId, UserId),
    /// `user`'s presence.
    Presence(UserId),
    /// `user`'s receipt of `status` in `conversation` (small conversations).
    Receipt(ConversationId, UserId, ReceiptStatus),
    /// Every reader's receipts of `status` in a big `conversation`, coalesced.
    Receipts(ConversationId, ReceiptStatus),
}

/// Readers' receipts in a big group, gathered until the client reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Coalesced {
    /// The newest message covered.
    pub(crate) message_id: MessageId,
    /// Some of the readers (at most [`RECEIPT_USERS_SHOWN`]).
    pub(crate) users: BTreeSet<UserId>,
    /// How many receipts were gathered (the same reader may count twice).
    pub(crate) count: u64,
}

impl Coalesced {
    pub(crate) fn merge(&mut self, other: &Coalesced) {
        self.message_id = self.message_id.max(other.message_id);
        for u in &other.users {
            if self.users.len() >= RECEIPT_USERS_SHOWN {
                break;
            }
            self.users.insert(u.clone());
        }
        self.count += other.count;
    }
}

/// A slot's content.
#[derive(Clone, Debug)]
pub(crate) enum Slot {
    Frame(Bytes),
    Receipts(Coalesced),
}

enum Item {
    Frame(Bytes),
    Slot(SlotKey),
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued.
    Queued,
    /// The byte budget is spent: the client reads too slowly.
    Full,
}

/// The queue itself; lives in the session's shared part under a mutex.
pub(crate) struct OutQueue {
    items: VecDeque<Item>,
    slots: HashMap<SlotKey, Slot>,
    bytes: usize,
    max_bytes: usize,
}

impl OutQueue {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            items: VecDeque::new(),
            slots: HashMap::new(),
            bytes: 0,
            max_bytes: max_bytes.max(1),
        }
    }

    /// Whether `len` more bytes of ordered frames fit (an empty queue takes
    /// any one frame, so that one big frame is never refused forever).
    pub(crate) fn fits(&self, len: usize) -> bool {
        self.bytes == 0 || self.bytes + len <= self.max_bytes
    }

    pub(crate) fn push(&mut self, frame: Bytes) -> Pushed {
        if !self.fits(frame.len()) {
            return Pushed::Full;
        }
        self.bytes += frame.len();
        self.items.push_back(Item::Frame(frame));
        Pushed::Queued
    }

    /// A state frame: replaces the waiting one of the same key, in its place.
    pub(crate) fn put(&mut self, key: SlotKey, slot: Slot) {
        match self.slots.get_mut(&key) {
            Some(Slot::Receipts(old)) => {
                if let Slot::Receipts(new) = &slot {
                    old.merge(new);
                }
            }
            Some(old) => *old = slot,
            None => {
                self.items.push_back(Item::Slot(key.clone()));
                self.slots.insert(key, slot);
            }
        }
    }

    /// The next frame, encoded.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        loop {
            match self.items.pop_front()? {
                Item::Frame(frame) => {
                    self.bytes -= frame.len();
                    return Some(frame);
                }
                Item::Slot(key) => {
                    let Some(slot) = self.slots.remove(&key) else {
                        continue;
                    };
                    return Some(match (slot, key) {
                        (Slot::Frame(frame), _) => frame,
                        (Slot::Receipts(c), SlotKey::Receipts(conversation_id, status)) => {
                            ServerFrame::Receipts {
                                conversation_id,
                                message_id: c.message_id,
                                status,
                                users: c.users.into_iter().collect(),
                                count: c.count,
                            }
                            .encode()
                        }
                        (Slot::Receipts(_), _) => continue,
                    });
                }
            }
        }
    }

    /// Bytes of ordered frames waiting.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn ordered_frames_count_bytes_and_state_frames_do_not() {
        let mut q = OutQueue::new(10);
        assert_eq!(q.push(b("123456")), Pushed::Queued);
        assert_eq!(
            q.push(b("12345")),
            Pushed::Full,
            "11 bytes would pass the budget of 10"
        );
        for i in 0..1000 {
            q.put(
                SlotKey::Typing("c".into(), UserId::from(format!("u{}", i % 3))),
                Slot::Frame(b("typing")),
            );
        }
        assert_eq!(q.bytes(), 6, "state frames never count");
        assert_eq!(q.pop(), Some(b("123456")));
        let typing: Vec<Bytes> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(typing.len(), 3, "one per typer, replaced in place");
        assert!(q.is_empty());
        assert_eq!(
            q.push(b("a frame larger than the budget")),
            Pushed::Queued,
            "an empty queue takes one frame"
        );
    }

    #[test]
    fn receipts_of_a_big_group_coalesce_into_one_frame() {
        let mut q = OutQueue::new(1000);
        let key = SlotKey::Receipts("g".into(), ReceiptStatus::Delivered);
        for i in 0..300u64 {
            let mut c = Coalesced {
                message_id: MessageId(100 + i % 7),
                count: 1,
                ..Coalesced::default()
            };
            c.users.insert(UserId::from(format!("u{i:03}")));
            q.put(key.clone(), Slot::Receipts(c));
        }
        let frame = q.pop().expect("one frame");
        assert!(q.pop().is_none());
        let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(v["type"], "receipts");
        assert_eq!(v["message_id"], "106");
        assert_eq!(v["count"], 300);
        assert_eq!(v["users"].as_array().unwrap().len(), RECEIPT_USERS_SHOWN);
    }
}
