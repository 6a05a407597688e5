//! Messages and the other entries of a conversation's log: edits, deletes,
//! reactions and group events, each with its own id in the conversation's order.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ConversationId, DeviceId, MessageId, Millis, UserId};

/// What an entry of a conversation's log is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A plain message (a missing `kind` on the wire means this).
    #[default]
    Text,
    /// The sender replaced the body of `ref_id`.
    Edit,
    /// The sender (or a group owner or admin) deleted `ref_id`.
    Delete,
    /// A member reacted to `ref_id` with the emoji in `body` (empty: removed
    /// its reaction).
    Reaction,
    /// A membership or settings change of a group; `body` holds the
    /// [`GroupEvent`](super::GroupEvent) as JSON. Delivered to clients as a
    /// `group_event` frame, never shown in history.
    GroupEvent,
}

impl MessageKind {
    /// Every kind, for stores that keep it as a small integer or a string.
    pub const ALL: [MessageKind; 5] = [
        Self::Text,
        Self::Edit,
        Self::Delete,
        Self::Reaction,
        Self::GroupEvent,
    ];

    /// The kind as the wire spells it (`text`, `edit`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Edit => "edit",
            Self::Delete => "delete",
            Self::Reaction => "reaction",
            Self::GroupEvent => "group_event",
        }
    }

    /// The kind a wire name spells, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether entries of this kind change another entry (`ref_id`).
    pub fn has_target(self) -> bool {
        matches!(self, Self::Edit | Self::Delete | Self::Reaction)
    }

    /// Whether entries of this kind appear in history (group events do not).
    pub fn in_history(self) -> bool {
        self != Self::GroupEvent
    }

    /// Whether entries of this kind count toward unread (text only).
    pub fn counts_unread(self) -> bool {
        self == Self::Text
    }
}

/// The reactions to one message: at most one emoji per user. Stored as
/// user → emoji; on the wire as emoji → the users who chose it (sorted), as
/// the contract's `"reactions":{"<emoji>":[user_id]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reactions(pub BTreeMap<UserId, String>);

impl Reactions {
    /// Whether nobody reacted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `user`'s reaction to `emoji`, or removes it when `emoji` is empty.
    pub fn set(&mut self, user: &UserId, emoji: &str) {
        if emoji.is_empty() {
            self.0.remove(user);
        } else {
            self.0.insert(user.clone(), emoji.to_owned());
        }
    }

    /// The wire form: emoji → users, each list sorted.
    pub fn by_emoji(&self) -> BTreeMap<&str, Vec<&UserId>> {
        let mut out: BTreeMap<&str, Vec<&UserId>> = BTreeMap::new();
        for (user, emoji) in &self.0 {
            out.entry(emoji.as_str()).or_default().push(user);
        }
        out
    }
}

impl Serialize for Reactions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.by_emoji().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Reactions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let by_emoji = BTreeMap::<String, Vec<UserId>>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (emoji, users) in by_emoji {
            for user in users {
                out.insert(user, emoji.clone());
            }
        }
        Ok(Self(out))
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An entry of a conversation's log as clients see it: a message, or an
/// event about one (edit, delete, reaction), or a group event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its Snowflake id: its place in the conversation's order.
    pub message_id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Who sent it.
    pub sender_id: UserId,
    /// The text (an edit's new text; a reaction's emoji; empty for a delete
    /// and for a deleted message).
    pub body: String,
    /// When the server accepted it, in ms since the Unix epoch.
    pub ts: Millis,
    /// What it is.
    #[serde(default)]
    pub kind: MessageKind,
    /// The message an edit, delete or reaction is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_id: Option<MessageId>,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<MessageId>,
    /// The body was edited (history shows the latest one).
    #[serde(default, skip_serializing_if = "is_false")]
    pub edited: bool,
    /// The message was deleted (its body is empty).
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// Who reacted with what.
    #[serde(default, skip_serializing_if = "Reactions::is_empty")]
    pub reactions: Reactions,
}

impl Message {
    /// A plain text message with no reply, edits or reactions.
    pub fn text(
        message_id: MessageId,
        conversation_id: ConversationId,
        sender_id: UserId,
        body: impl Into<String>,
        ts: Millis,
    ) -> Self {
        Self {
            message_id,
            conversation_id,
            sender_id,
            body: body.into(),
            ts,
            kind: MessageKind::Text,
            ref_id: None,
            in_reply_to: None,
            edited: false,
            deleted: false,
            reactions: Reactions::default(),
        }
    }

    /// Applies an edit, delete or reaction `event` (whose `ref_id` is this
    /// message) to this message: what every store does to the target in
    /// the same step as it appends the event. Other kinds change nothing.
    pub fn apply(&mut self, event: &Message) {
        match event.kind {
            MessageKind::Edit if !self.deleted => {
                self.body.clone_from(&event.body);
                self.edited = true;
            }
            MessageKind::Delete => {
                self.body.clear();
                self.deleted = true;
                self.edited = false;
                self.reactions = Reactions::default();
            }
            MessageKind::Reaction if !self.deleted => {
                self.reactions.set(&event.sender_id, &event.body);
            }
            _ => {}
        }
    }
}

/// An entry about to be appended: the [`Message`] plus what the store needs
/// beyond it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// The entry, with the id the engine assigned. For an edit, delete or
    /// reaction, `ref_id` names the target, which the store changes in the
    /// same step ([`Message::apply`]).
    pub message: Message,
    /// The sender's idempotency key: a second append with the same sender and
    /// key stores nothing and returns the first entry.
    pub client_msg_id: Option<String>,
    /// The sender's device, whose cursor moves to the entry (its own
    /// message is delivered to it). `None` for entries the server makes.
    pub device: Option<DeviceId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u64, kind: MessageKind, sender: &str, body: &str) -> Message {
        Message {
            kind,
            ref_id: Some(MessageId(1)),
            ..Message::text(MessageId(id), "g".into(), sender.into(), body, 0)
        }
    }

    #[test]
    fn events_change_their_target() {
        let mut m = Message::text(MessageId(1), "g".into(), "a".into(), "hi", 0);
        m.apply(&msg(2, MessageKind::Edit, "a", "hello"));
        assert_eq!((m.body.as_str(), m.edited), ("hello", true));
        m.apply(&msg(3, MessageKind::Reaction, "b", "👍"));
        m.apply(&msg(4, MessageKind::Reaction, "c", "👍"));
        m.apply(&msg(5, MessageKind::Reaction, "c", "❤"));
        m.apply(&msg(6, MessageKind::Reaction, "b", ""));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["reactions"], serde_json::json!({"❤": ["c"]}));
        assert_eq!(json["kind"], "text");
        m.apply(&msg(7, MessageKind::Delete, "a", ""));
        assert!(m.deleted && m.body.is_empty() && m.reactions.is_empty() && !m.edited);
        m.apply(&msg(8, MessageKind::Edit, "a", "back"));
        assert!(m.body.is_empty(), "a deleted message cannot be edited back");
    }

    #[test]
    fn plain_messages_keep_the_v1_shape_plus_kind() {
        let m = Message::text(MessageId(9), "g".into(), "a".into(), "hi", 5);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"message_id":"9","conversation_id":"g","sender_id":"a","body":"hi","ts":5,"kind":"text"}"#
        );
        let back: Message = serde_json::from_str(
            r#"{"message_id":"9","conversation_id":"g","sender_id":"a","body":"hi","ts":5}"#,
        )
        .unwrap();
        assert_eq!(back, m, "a missing kind is text");
        for k in MessageKind::ALL {
            assert_eq!(MessageKind::parse(k.as_str()), Some(k));
        }
    }
}
