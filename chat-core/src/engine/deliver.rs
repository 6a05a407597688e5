//! Getting frames to people: entries to a conversation's bus topic (each
//! node passes them through its chain), frames that are not entries to the
//! members of a conversation (typing, read receipts) or to one user
//! (delivered receipts, notices), presence to watchers, and pushes to
//! members connected nowhere.

use bytes::Bytes;

use super::envelope::{Envelope, Header, SessionRef};
use super::queue::{Slot, SlotKey};
use super::{Inner, push_later};
use crate::cluster::Topic;
use crate::model::{ConversationId, Member, Message, MessageId, Presence, PresenceStatus, UserId};
use crate::observe::Event;
use crate::protocol::ServerFrame;
use crate::push::PushNotification;

/// Longest push preview, in characters.
const PREVIEW_CHARS: usize = 100;

impl Inner {
    async fn publish(&self, topic: Topic, envelope: Envelope) {
        let published = self.bus.publish(&[topic], envelope.encode()).await;
        self.observer.event(&Event::BusPublished {
            ok: published.is_ok(),
        });
        if let Err(e) = published {
            // Stored either way: other nodes' sessions get it at their next
            // sync, or when a later entry's link makes their chain read it.
            tracing::warn!(error = %e, "bus publish failed; other nodes catch up from the store");
        }
    }

    /// A new entry of the chain, for the other nodes.
    pub(crate) async fn publish_entry(
        &self,
        entry: &Message,
        prev: Option<MessageId>,
        frame: Bytes,
        skip: Option<SessionRef>,
        event: Option<String>,
    ) {
        let c = entry.conversation_id.clone();
        let header = Header::Entry {
            c: c.clone(),
            id: entry.message_id,
            prev,
            skip,
            event,
        };
        self.publish(Topic::Conversation(c), Envelope::new(header, frame))
            .await;
    }

    /// A stored entry sent again outside the chain, for the other nodes.
    pub(crate) async fn publish_redeliver(
        &self,
        entry: &Message,
        frame: Bytes,
        skip: Option<SessionRef>,
    ) {
        let c = entry.conversation_id.clone();
        let header = Header::Redeliver {
            c: c.clone(),
            id: entry.message_id,
            skip,
        };
        self.publish(Topic::Conversation(c), Envelope::new(header, frame))
            .await;
    }

    /// A state frame (typing, a receipt) for the connected members of `c`,
    /// except the sessions of `not`: no order, no storage, and a newer one
    /// of the same `key` replaces it in each session's queue.
    pub(crate) async fn to_members(
        &self,
        c: &ConversationId,
        frame: Bytes,
        not: Option<&UserId>,
        key: SlotKey,
    ) {
        self.to_local_members(c, &frame, not, &key);
        let header = Header::Ephemeral {
            c: c.clone(),
            not: not.cloned(),
        };
        self.publish(Topic::Conversation(c.clone()), Envelope::new(header, frame))
            .await;
    }

    /// The local half of [`Inner::to_members`].
    pub(crate) fn to_local_members(
        &self,
        c: &ConversationId,
        frame: &Bytes,
        not: Option<&UserId>,
        key: &SlotKey,
    ) {
        for user in self.local.members_of(c) {
            if Some(&user) == not {
                continue;
            }
            self.registry.for_each(&user, |s| {
                s.put(key.clone(), Slot::Frame(frame.clone()));
            });
        }
    }

    /// A state frame for every session of each of `users`, wherever they are.
    pub(crate) async fn to_users_state(&self, users: &[UserId], frame: Bytes, key: SlotKey) {
        for user in users {
            self.registry.for_each(user, |s| {
                s.put(key.clone(), Slot::Frame(frame.clone()));
            });
            self.publish(
                Topic::User(user.clone()),
                Envelope::new(Header::ToUser, frame.clone()),
            )
            .await;
        }
    }

    /// A notice for the nodes of `user` (no frame).
    pub(crate) async fn notice_user(&self, user: &UserId, header: Header) {
        self.publish(
            Topic::User(user.clone()),
            Envelope::new(header, Bytes::new()),
        )
        .await;
    }

    /// A notice for every node (no frame).
    pub(crate) async fn notice_cluster(&self, header: Header) {
        self.publish(Topic::Cluster, Envelope::new(header, Bytes::new()))
            .await;
    }

    /// Hands `entry` to the push notifier for each of `members` (not its
    /// sender) connected nowhere. Runs after the send answered. A member
    /// presence cannot vouch for (it is unreachable, or refilling after it
    /// lost its data) is not pushed now: its push waits until presence is
    /// sure it is offline (see `push_later`), so nobody connected somewhere
    /// is pushed because presence lost its data.
    pub(crate) async fn push_offline(&self, entry: &Message, members: &[Member]) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        let elsewhere: Vec<UserId> = members
            .iter()
            .map(|m| &m.user_id)
            .filter(|u| **u != entry.sender_id && !self.registry.has_user(u))
            .cloned()
            .collect();
        if elsewhere.is_empty() {
            return;
        }
        let notification = |user: UserId| PushNotification {
            user_id: user,
            conversation_id: entry.conversation_id.clone(),
            message_id: entry.message_id,
            sender_id: entry.sender_id.clone(),
            preview: entry.body.chars().take(PREVIEW_CHARS).collect(),
        };
        let entries = match self.presence.presence(&elsewhere).await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "presence unavailable; pushes wait until it answers");
                let unsure: Vec<PushNotification> =
                    elsewhere.into_iter().map(notification).collect();
                push_later::when_sure(
                    self.presence.clone(),
                    notifier.clone(),
                    unsure,
                    self.limits.heartbeat_every,
                );
                return;
            }
        };
        let mut unsure = Vec::new();
        for (user, found) in elsewhere.into_iter().zip(entries) {
            // Online now, or online at some point since the message was sent
            // (this runs after the send answered): it got it live.
            let seen_since = found
                .presence
                .last_seen
                .is_some_and(|seen| seen >= entry.ts);
            if found.presence.status == PresenceStatus::Online || seen_since {
                continue;
            }
            if found.certain {
                push_later::notify(&**notifier, notification(user)).await;
            } else {
                unsure.push(notification(user));
            }
        }
        if !unsure.is_empty() {
            push_later::when_sure(
                self.presence.clone(),
                notifier.clone(),
                unsure,
                self.limits.heartbeat_every,
            );
        }
    }

    /// Tells local watchers and other nodes that `presence` changed.
    pub(crate) async fn announce_presence(&self, presence: Presence) {
        let user = presence.user_id.clone();
        let frame = ServerFrame::Presence(presence).encode();
        self.watchers.notify(&user, &frame);
        let published = self.bus.publish(&[Topic::Presence(user)], frame).await;
        self.observer.event(&Event::BusPublished {
            ok: published.is_ok(),
        });
        if let Err(e) = published {
            tracing::warn!(error = %e, "bus publish of presence failed");
        }
    }
}

/// The slot a state frame from another node goes to; `None` for an ordered frame.
pub(crate) fn slot_of(frame: &Bytes) -> Option<SlotKey> {
    let text = std::str::from_utf8(frame).ok()?;
    match crate::protocol::decode_server(text).ok()? {
        ServerFrame::Typing {
            conversation_id,
            user_id,
        } => Some(SlotKey::Typing(conversation_id, user_id)),
        ServerFrame::Receipt(r) => Some(SlotKey::Receipt(r.conversation_id, r.user_id, r.status)),
        ServerFrame::Presence(p) => Some(SlotKey::Presence(p.user_id)),
        _ => None,
    }
}
