//! Getting frames to users: local sessions first, other nodes by the bus,
//! the push notifier for recipients with no connection anywhere.

use bytes::Bytes;

use super::Inner;
use crate::cluster::Topic;
use crate::model::{Message, MessageId, Presence, PresenceStatus, UserId};
use crate::protocol::ServerFrame;
use crate::push::PushNotification;

/// Longest push preview, in characters.
const PREVIEW_CHARS: usize = 100;

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
    /// users connected nowhere (as far as presence knows).
    pub(crate) async fn send_to_users(
        &self,
        users: &[UserId],
        frame: Bytes,
        message: Option<MessageId>,
        skip: Option<u64>,
    ) -> Vec<UserId> {
        let elsewhere = self.deliver_local(users, &frame, message, skip);
        if elsewhere.is_empty() {
            return elsewhere;
        }
        let entries = match self.presence.presence(&elsewhere).await {
            Ok(entries) => entries,
            Err(e) => {
                // Without presence we cannot tell who is online elsewhere:
                // publish to all of them (the bus drops what nobody listens
                // to) and report nobody offline rather than push wrongly.
                tracing::warn!(error = %e, "presence unavailable during fanout");
                let topics: Vec<Topic> = elsewhere.iter().cloned().map(Topic::User).collect();
                self.publish(&topics, frame).await;
                return Vec::new();
            }
        };
        let mut topics = Vec::new();
        let mut offline = Vec::new();
        for (user, entry) in elsewhere.into_iter().zip(entries) {
            let remote = entry.nodes.iter().any(|n| *n != self.node);
            if entry.presence.status == PresenceStatus::Online && remote {
                topics.push(Topic::User(user));
            } else {
                offline.push(user);
            }
        }
        if !topics.is_empty() {
            self.publish(&topics, frame).await;
        }
        offline
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
        let offline = self
            .send_to_users(members, frame, key, Some(sender_session))
            .await;
        let Some(notifier) = &self.notifier else {
            return;
        };
        for user in offline {
            if user == message.sender_id {
                continue;
            }
            let notification = PushNotification {
                user_id: user,
                conversation_id: message.conversation_id.clone(),
                message_id: message.message_id,
                sender_id: message.sender_id.clone(),
                preview: message.body.chars().take(PREVIEW_CHARS).collect(),
            };
            if let Err(e) = notifier.notify(notification).await {
                tracing::warn!(error = %e, "push notifier refused a notification");
            }
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
