//! Reading a session's entries from the store: the sync after every connect
//! (and on request), and the catch-up of one conversation after the user
//! joined it while connected.
//!
//! A sync starts each conversation of the user at the later of its device's
//! cursor and its join point, reads up to the head, and sends the entries
//! of all conversations merged oldest first. Groups the user left or was
//! removed from (its departures) are read the same way, but only up to the
//! group event that ended its membership, which comes last: a device that
//! was away then gets what it missed while a member, and learns it is out.
//! Live entries wait in the session's gate meanwhile and go out after,
//! minus repeats.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use super::Inner;
use super::frames::entry_frame;
use super::registry::SessionShared;
use crate::error::Result;
use crate::model::{ConversationId, Message, MessageId};
use crate::observe::Event;
use crate::protocol::ServerFrame;

/// One conversation's stretch still to send.
struct Stretch {
    conversation: ConversationId,
    /// The last entry read (the next page starts after it).
    after: Option<MessageId>,
    up_to: MessageId,
    page: VecDeque<Message>,
    done: bool,
    /// Sent after the stretch: the event that ended a departed membership
    /// (from its record, so that it comes even if the log lost it).
    tail: Option<Message>,
}

impl Inner {
    /// Sends every entry this device has not acked, oldest first, then
    /// `synced`. The session's live entries wait meanwhile.
    pub(crate) async fn sync_session(
        &self,
        session: &Arc<SessionShared>,
        reply_to: Option<String>,
        initial: bool,
    ) -> Result<()> {
        if !initial {
            session.hold_all();
        }
        let result = self.send_unacked(session, !initial).await;
        session.release_hold(None).await;
        result?;
        session
            .push_wait(ServerFrame::Synced { reply_to }.encode())
            .await;
        Ok(())
    }

    async fn send_unacked(&self, session: &Arc<SessionShared>, again: bool) -> Result<()> {
        let memberships = self.conversations.memberships(&session.user).await?;
        let departures = self.conversations.departures(&session.user).await?;
        if memberships.is_empty() && departures.is_empty() {
            return Ok(());
        }
        let cursors: HashMap<ConversationId, MessageId> = self
            .messages
            .device_cursors(&session.device)
            .await?
            .into_iter()
            .collect();
        let ids: Vec<ConversationId> = memberships.iter().map(|(c, _)| c.clone()).collect();
        let heads = self.messages.heads(&ids).await?;
        let mut stretches = Vec::new();
        for ((c, member), head) in memberships.into_iter().zip(heads) {
            let Some(up_to) = head.last_id else { continue };
            let floor = cursors.get(&c).copied().max(Some(member.joined));
            if floor.is_some_and(|f| f >= up_to) {
                continue;
            }
            stretches.push(Stretch {
                conversation: c,
                after: floor,
                up_to,
                page: VecDeque::new(),
                done: false,
                tail: None,
            });
        }
        for departure in departures {
            let c = &departure.conversation_id;
            let floor = cursors.get(c).copied().max(Some(departure.joined));
            if floor.is_some_and(|f| f >= departure.left) {
                continue; // this device had it all
            }
            // The entries before the event from the log, then the event.
            let up_to = MessageId(departure.left.0.saturating_sub(1));
            let nothing_before = floor.is_some_and(|f| f >= up_to);
            stretches.push(Stretch {
                conversation: c.clone(),
                after: floor,
                up_to,
                page: if nothing_before {
                    VecDeque::from([departure.event()])
                } else {
                    VecDeque::new()
                },
                done: nothing_before,
                tail: (!nothing_before).then(|| departure.event()),
            });
        }
        self.send_merged(session, stretches, again).await
    }

    /// Sends the stretches' entries merged by id, reading a page of each at
    /// a time (`again`: also those this connection had, see `send_stored`).
    async fn send_merged(
        &self,
        session: &Arc<SessionShared>,
        mut stretches: Vec<Stretch>,
        again: bool,
    ) -> Result<()> {
        let page = self.limits.sync_page.max(1);
        let mut entries_sent = 0;
        let report = |entries| {
            if entries > 0 {
                self.observer.event(&Event::Synced { entries });
            }
        };
        loop {
            for s in stretches
                .iter_mut()
                .filter(|s| s.page.is_empty() && !s.done)
            {
                let mut entries = self
                    .messages
                    .range(&s.conversation, s.after, Some(s.up_to), page)
                    .await?;
                self.redact_edits(&s.conversation, &mut entries).await?;
                s.done = entries.len() < page;
                if let Some(last) = entries.last() {
                    s.after = Some(last.message_id);
                }
                s.page.extend(entries);
                if s.done
                    && let Some(tail) = s.tail.take()
                {
                    s.page.push_back(tail);
                }
            }
            // The oldest head of a page goes next.
            let mut oldest: BTreeMap<MessageId, usize> = BTreeMap::new();
            for (i, s) in stretches.iter().enumerate() {
                if let Some(front) = s.page.front() {
                    oldest.insert(front.message_id, i);
                }
            }
            let Some((_, i)) = oldest.into_iter().next() else {
                report(entries_sent);
                return Ok(());
            };
            let entry = stretches[i].page.pop_front().expect("the page has a front");
            let (frame, _) = entry_frame(&entry);
            if !session
                .send_stored(&entry.conversation_id, entry.message_id, frame, again)
                .await
            {
                report(entries_sent);
                return Ok(()); // the session closed
            }
            entries_sent += 1;
        }
    }

    /// Sends `c`'s entries after the later of `floor` and the device's
    /// cursor (the caller holds `c` in the session's gate).
    pub(crate) async fn catch_up(
        &self,
        session: &Arc<SessionShared>,
        c: &ConversationId,
        floor: Option<MessageId>,
    ) -> Result<()> {
        let cursor = self
            .messages
            .cursors(&session.user, Some(&session.device), c)
            .await?
            .device_delivered;
        let head = self.messages.head(c).await?;
        let Some(up_to) = head.last_id else {
            return Ok(());
        };
        let stretch = Stretch {
            conversation: c.clone(),
            after: floor.max(cursor),
            up_to,
            page: VecDeque::new(),
            done: false,
            tail: None,
        };
        self.send_merged(session, vec![stretch], false).await
    }
}
