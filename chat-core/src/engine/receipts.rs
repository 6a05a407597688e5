//! Receipts that scale: one `receipt` frame per reader in direct
//! conversations and small groups; in big groups, readers' receipts for one
//! sender are gathered on the readers' node for `Limits::receipt_every` and
//! go out as one coalesced `receipts` frame (newest id, some readers, a
//! count), which the sender's session keeps in a slot that merges whatever
//! arrives before its client reads it. A thousand acking readers cost the
//! sender a few frames a second, never a closed connection.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::Inner;
use super::envelope::{Envelope, Header};
use super::queue::{Coalesced, RECEIPT_USERS_SHOWN, Slot, SlotKey};
use crate::cluster::Topic;
use crate::model::{ConversationId, MessageId, Receipt, ReceiptStatus, UserId};
use crate::protocol::ServerFrame;

type Key = (UserId, ConversationId, ReceiptStatus);

/// Receipts waiting for the next flush, per sender, conversation and status.
#[derive(Default)]
pub(crate) struct ReceiptBatch {
    pending: Mutex<HashMap<Key, Coalesced>>,
}

impl Inner {
    /// `reader` has (read) every message of `c` up to `message_id`: tells
    /// `targets` (the senders, or every other member in a small group).
    pub(crate) async fn receipt(
        &self,
        c: &ConversationId,
        reader: &UserId,
        message_id: MessageId,
        status: ReceiptStatus,
        targets: &[UserId],
        big: bool,
    ) {
        if !big {
            let frame = ServerFrame::Receipt(Receipt {
                conversation_id: c.clone(),
                message_id,
                user_id: reader.clone(),
                status,
            })
            .encode();
            let key = SlotKey::Receipt(c.clone(), reader.clone(), status);
            self.to_users_state(targets, frame, key).await;
            return;
        }
        let mut pending = self.receipts.pending.lock();
        for target in targets {
            let entry = pending
                .entry((target.clone(), c.clone(), status))
                .or_default();
            entry.message_id = entry.message_id.max(message_id);
            entry.count += 1;
            if entry.users.len() < RECEIPT_USERS_SHOWN {
                entry.users.insert(reader.clone());
            }
        }
    }

    /// Sends what was gathered: to local sessions directly, and once per
    /// sender to its user topic for its other nodes.
    pub(crate) async fn flush_receipts(&self) {
        let pending: Vec<(Key, Coalesced)> = self.receipts.pending.lock().drain().collect();
        for ((target, c, status), coalesced) in pending {
            self.registry.for_each(&target, |s| {
                s.put(
                    SlotKey::Receipts(c.clone(), status),
                    Slot::Receipts(coalesced.clone()),
                );
            });
            let header = Header::Receipts {
                c,
                status,
                message_id: coalesced.message_id,
                users: coalesced.users.into_iter().collect(),
                count: coalesced.count,
            };
            let envelope = Envelope::new(header, bytes::Bytes::new());
            if let Err(e) = self
                .bus
                .publish(&[Topic::User(target)], envelope.encode())
                .await
            {
                tracing::warn!(error = %e, "bus publish of receipts failed");
            }
        }
    }
}
