//! Appending one entry to a conversation's chain: an id above the head, the
//! head version the caller's checks were made at, and a new try when another
//! entry (from this node or another) took the head first.

use super::Inner;
use super::envelope::SessionRef;
use super::local::Item;
use crate::error::{Error, Result};
use crate::model::{
    ConversationId, DeviceId, Message, MessageId, MessageKind, Millis, NewMessage, Reactions,
    UserId,
};
use crate::observe::Event;
use crate::store::Appended;

/// How often an append may lose the race for the head before the send
/// answers `unavailable` (each loss means another entry went in first).
const ATTEMPTS: usize = 32;

/// An entry to append.
pub(crate) struct Appending {
    pub(crate) conversation: ConversationId,
    pub(crate) sender: UserId,
    /// The sending device (its cursor moves past its own entry).
    pub(crate) device: Option<DeviceId>,
    pub(crate) kind: MessageKind,
    pub(crate) body: String,
    pub(crate) ref_id: Option<MessageId>,
    pub(crate) in_reply_to: Option<MessageId>,
    pub(crate) client_msg_id: Option<String>,
    /// After a membership change the sender must still be a member (a send
    /// that raced its removal is refused); the engine's own group events
    /// skip the check.
    pub(crate) check_member: bool,
}

impl Inner {
    /// Appends `a` (see the module docs) and hands the stored entry to this
    /// node's chain and to the other nodes. `skip` is the session that sent
    /// it (it gets `sent`, not the entry).
    pub(crate) async fn append_entry(
        &self,
        a: Appending,
        skip: Option<SessionRef>,
    ) -> Result<Appended> {
        let started = std::time::Instant::now();
        let mut head = self.head_hint(&a.conversation).await?;
        for _ in 0..ATTEMPTS {
            // The one place the engine mints ids: only under a held id lease.
            self.membership.check_mint()?;
            let id = self.ids.try_next_id_after(head.last_id)?;
            let entry = NewMessage {
                message: Message {
                    message_id: id,
                    conversation_id: a.conversation.clone(),
                    sender_id: a.sender.clone(),
                    body: a.body.clone(),
                    ts: id.unix_ms() as Millis,
                    kind: a.kind,
                    ref_id: a.ref_id,
                    in_reply_to: a.in_reply_to,
                    edited: false,
                    deleted: false,
                    reactions: Reactions::default(),
                },
                client_msg_id: a.client_msg_id.clone(),
                device: a.device.clone(),
            };
            match self.messages.append(entry, head.version).await {
                Ok(appended) => {
                    self.observer.event(&Event::Stored {
                        kind: a.kind,
                        latency: started.elapsed(),
                        duplicate: appended.duplicate,
                    });
                    if !appended.duplicate {
                        let mut next = head;
                        next.last_id = Some(appended.message.message_id);
                        if a.kind.counts_unread() {
                            next.seq += 1;
                        }
                        if a.kind == MessageKind::GroupEvent {
                            next.version += 1;
                        }
                        self.caches.saw_head(&a.conversation, next);
                    }
                    self.hand_out(&appended, skip).await;
                    return Ok(appended);
                }
                Err(Error::Conflict { head: now }) => {
                    let membership_changed = now.version != head.version;
                    self.caches.saw_head(&a.conversation, now);
                    head = now;
                    if membership_changed && a.check_member {
                        self.forget_members(&a.conversation);
                        if self
                            .conversations
                            .member(&a.conversation, &a.sender)
                            .await?
                            .is_none()
                        {
                            return Err(Error::NotMember {
                                conversation: a.conversation,
                            });
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::unavailable_msg(format!(
            "conversation {} is too busy: the append lost the race for its head {ATTEMPTS} times",
            a.conversation
        )))
    }

    /// A stored entry goes to this node's chain and, once, to the other
    /// nodes. A duplicate (a retried send that was stored before) goes out
    /// again outside the chain: sessions that had it drop it, one whose
    /// node died before delivering it gets it now.
    async fn hand_out(&self, appended: &Appended, skip: Option<SessionRef>) {
        let entry = &appended.message;
        let item = Item::from_entry(entry, skip.clone());
        let frame = item.frame.clone();
        let event = item.event.as_ref().map(|e| e.body());
        if appended.duplicate {
            self.redeliver(&entry.conversation_id, item);
            self.publish_redeliver(entry, frame, skip).await;
        } else {
            self.offer(&entry.conversation_id, appended.prev, item);
            self.publish_entry(entry, appended.prev, frame, skip, event)
                .await;
        }
    }
}
