//! Getting frames to users: local sessions first, other nodes by the bus,
//! the push notifier for recipients with no connection anywhere.
//!
//! Presence decides who is connected elsewhere, but it is a cache that can
//! be briefly incomplete (Redis lost its data and the nodes are still
//! re-registering) or unreachable. A recipient that presence cannot vouch
//! is offline is published to anyway (the bus reaches it if some node holds
//! it) and its push waits until presence is sure (see [`super::push_later`]),
//! so nobody connected somewhere is pushed because presence lost its data.

use bytes::Bytes;

use super::{Inner, push_later};
use crate::cluster::Topic;
use crate::model::{Message, MessageId, Presence, PresenceStatus, UserId};
use crate::protocol::ServerFrame;
use crate::push::PushNotification;

/// Longest push preview, in characters.
const PREVIEW_CHARS: usize = 100;

/// The recipients of a frame that no local session took and presence did
/// not place on another node.
#[derive(Debug, Default)]
pub(crate) struct Unreached {
    /// Connected nowhere, as presence is sure.
    pub(crate) offline: Vec<UserId>,
    /// Presence could not say (unreachable, or refilling after it lost its
    /// data): the frame was published to them in case a node holds them.
    pub(crate) unsure: Vec<UserId>,
}

impl Inner {
    /// Hands `frame` to every local session of each of `users` (except the
    /// session `skip`); returns the users with no session on this node.
    fn deliver_local(
        &self,
        users: &[UserId],
        frame: &Bytes,
        message: Option<MessageId>,
        skip: Option<u64>,
    ) -> Vec<UserId> {
        let mut elsewhere = Vec::new();
        for user in users {
            let found = self.registry.for_each(user, |session| {
                if Some(session.id) == skip {
                    return;
                }
                match message {
                    Some(id) => session.deliver_message(id, frame),
                    None => session.push(frame.clone()),
                };
            });
            if found == 0 {
                elsewhere.push(user.clone());
            }
        }
        elsewhere
    }

    /// Sends `frame` to `users` wherever they are connected. Returns the
    /// users no connection was found for.
    pub(crate) async fn send_to_users(
        &self,
        users: &[UserId],
        frame: Bytes,
        message: Option<MessageId>,
        skip: Option<u64>,
    ) -> Unreached {
        let elsewhere = self.deliver_local(users, &frame, message, skip);
        if elsewhere.is_empty() {
            return Unreached::default();
        }
        let entries = match self.presence.presence(&elsewhere).await {
            Ok(entries) => entries,
            Err(e) => {
                // Without presence we cannot tell who is online elsewhere:
                // publish to all of them (the bus drops what nobody listens
                // to), and push nobody until presence can tell.
                tracing::warn!(error = %e, "presence unavailable during fanout");
                let topics: Vec<Topic> = elsewhere.iter().cloned().map(Topic::User).collect();
                self.publish(&topics, frame).await;
                return Unreached {
                    offline: Vec::new(),
                    unsure: elsewhere,
                };
            }
        };
        let mut topics = Vec::new();
        let mut unreached = Unreached::default();
        for (user, entry) in elsewhere.into_iter().zip(entries) {
            let remote = entry.nodes.iter().any(|n| *n != self.node);
            if entry.presence.status == PresenceStatus::Online && remote {
                topics.push(Topic::User(user));
            } else if entry.presence.status == PresenceStatus::Online || entry.certain {
                // Offline, or online only here, where it has no session.
                unreached.offline.push(user);
            } else {
                topics.push(Topic::User(user.clone()));
                unreached.unsure.push(user);
            }
        }
        if !topics.is_empty() {
            self.publish(&topics, frame).await;
        }
        unreached
    }

    async fn publish(&self, topics: &[Topic], frame: Bytes) {
        if let Err(e) = self.bus.publish(topics, frame).await {
            // The message is stored either way: those users get it at their next sync.
            tracing::warn!(error = %e, topics = topics.len(), "bus publish failed; recipients will sync");
        }
    }

    /// Fans a stored message out to the conversation's members: the sender's
    /// other sessions too, never the session that sent it.
    pub(crate) async fn fan_out_message(
        &self,
        message: &Message,
        members: &[UserId],
        sender_session: u64,
    ) {
        let frame = ServerFrame::Message {
            message: message.clone(),
        }
        .encode();
        let key = Some(message.message_id);
        let unreached = self
            .send_to_users(members, frame, key, Some(sender_session))
            .await;
        let Some(notifier) = &self.notifier else {
            return;
        };
        let notification = |user: UserId| PushNotification {
            user_id: user,
            conversation_id: message.conversation_id.clone(),
            message_id: message.message_id,
            sender_id: message.sender_id.clone(),
            preview: message.body.chars().take(PREVIEW_CHARS).collect(),
        };
        let not_sender = |user: &UserId| *user != message.sender_id;
        for user in unreached.offline.into_iter().filter(not_sender) {
            push_later::notify(&**notifier, notification(user)).await;
        }
        let unsure: Vec<PushNotification> = unreached
            .unsure
            .into_iter()
            .filter(not_sender)
            .map(notification)
            .collect();
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
        self.publish(&[Topic::Presence(user)], frame).await;
    }
}
