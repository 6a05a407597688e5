//! The domain: users, conversations, messages, receipts, presence and retention.
//!
//! Ids are small newtypes so that a user id can never be passed where a
//! conversation id belongs. They serialize as plain JSON strings; a
//! [`MessageId`] serializes as a decimal string because JavaScript numbers
//! lose precision past 2^53.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Current wall-clock time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a string as this id (no validation: ids are opaque).
            pub fn new(s: impl Into<Arc<str>>) -> Self {
                Self(s.into())
            }
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.into())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s.into())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self(s.as_ref().into()))
            }
        }
    };
}

string_id!(
    /// An opaque user id, issued by the server at sign-up.
    UserId
);
string_id!(
    /// An opaque conversation id. Direct conversations derive theirs from
    /// the pair of users ([`ConversationId::direct`]); groups get a fresh one.
    ConversationId
);
string_id!(
    /// The id of one chat server node (used by presence, bus and discovery).
    NodeId
);

impl ConversationId {
    /// The one id of the direct conversation between `a` and `b`: the same
    /// whichever side asks, because the pair is ordered before joining.
    pub fn direct(a: &UserId, b: &UserId) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        Self::from(format!("d:{lo}:{hi}"))
    }

    /// Whether this id names a direct (one-to-one) conversation.
    pub fn is_direct(&self) -> bool {
        self.0.starts_with("d:")
    }

    /// The two users of a direct conversation id, or `None` for a group.
    pub fn direct_pair(&self) -> Option<(UserId, UserId)> {
        let rest = self.0.strip_prefix("d:")?;
        // User ids issued by this project never contain ':', so the split is exact.
        let (a, b) = rest.split_once(':')?;
        Some((UserId::from(a), UserId::from(b)))
    }
}

/// A Snowflake-style 64-bit message id (see [`crate::id`]): sorts by creation
/// time; within a conversation ascending id is the display order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageId(pub u64);

impl MessageId {
    /// The raw 64-bit value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for MessageId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(MessageId)
    }
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // collect_str formats straight into the output: no String per id.
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Accept the contract's decimal string, and a plain JSON number as a courtesy.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = MessageId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message id as a decimal string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MessageId, E> {
                v.parse()
                    .map_err(|_| E::custom(format!("invalid message id {v:?}")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<MessageId, E> {
                Ok(MessageId(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<MessageId, E> {
                u64::try_from(v)
                    .map(MessageId)
                    .map_err(|_| E::custom("negative message id"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A stored chat message, as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its Snowflake id.
    pub message_id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Who sent it.
    pub sender_id: UserId,
    /// The text.
    pub body: String,
    /// When the server accepted it, in ms since the Unix epoch.
    pub ts: Millis,
}

/// A message about to be stored: the [`Message`] plus the sender's retry key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// The message itself, with the id the engine assigned.
    pub message: Message,
    /// The sender's idempotency key: a second append with the same sender and
    /// key stores nothing and returns the first message.
    pub client_msg_id: Option<String>,
}

/// One-to-one or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    /// Exactly two users; the id is derived from the pair.
    Direct,
    /// Any number of members who join and leave.
    Group,
}

/// A conversation's stored facts (members are kept apart, see
/// [`crate::store::ConversationStore`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// A group's name; `None` for direct conversations.
    pub name: Option<String>,
    /// Who created it.
    pub created_by: UserId,
    /// When it was created.
    pub created_at: Millis,
}

/// What one user sees of one conversation in its list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// A group's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The newest message still stored, if any.
    pub last_message_id: Option<MessageId>,
    /// Messages from others newer than this user's read cursor.
    pub unread: u64,
}

/// Delivered (reached a device) or read (seen by the user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// The user's device acked it.
    Delivered,
    /// The user read it.
    Read,
}

/// `user_id` has received (or read) every message of the conversation up to
/// and including `message_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The newest message covered.
    pub message_id: MessageId,
    /// Who acked or read.
    pub user_id: UserId,
    /// Delivered or read.
    pub status: ReceiptStatus,
}

/// Online or offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// At least one connection is open on some node.
    Online,
    /// No connection is open.
    Offline,
}

/// A user's presence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Whose.
    pub user_id: UserId,
    /// Online or offline.
    pub status: PresenceStatus,
    /// When the last connection closed (offline users that were ever seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Millis>,
}

/// How long the server keeps messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// Keep every message (Messenger).
    #[default]
    Forever,
    /// Delete a message once every recipient acked it (WhatsApp).
    UntilDelivered,
}

impl std::str::FromStr for Retention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "forever" => Ok(Self::Forever),
            "until_delivered" => Ok(Self::UntilDelivered),
            other => Err(format!(
                "unknown retention {other:?}: expected forever or until_delivered"
            )),
        }
    }
}

/// A stored account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub user_id: UserId,
    /// The unique login name.
    pub username: String,
    /// A PHC-format password hash (argon2id by default).
    pub password_hash: String,
    /// The name shown to others.
    pub display_name: String,
    /// When it signed up.
    pub created_at: Millis,
}

/// What others may see of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Its id.
    pub user_id: UserId,
    /// The unique login name.
    pub username: String,
    /// The name shown to others.
    pub display_name: String,
}

impl From<&Account> for Profile {
    fn from(a: &Account) -> Self {
        Profile {
            user_id: a.user_id.clone(),
            username: a.username.clone(),
            display_name: a.display_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_id_is_the_same_from_both_sides() {
        let a = UserId::from("alice");
        let b = UserId::from("bob");
        assert_eq!(
            ConversationId::direct(&a, &b),
            ConversationId::direct(&b, &a)
        );
        let c = ConversationId::direct(&a, &b);
        assert!(c.is_direct());
        assert_eq!(c.direct_pair(), Some((a, b)));
        assert_eq!(ConversationId::from("g:1").direct_pair(), None);
    }

    #[test]
    fn message_id_travels_as_decimal_string() {
        let id = MessageId(u64::MAX);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"18446744073709551615\"");
        assert_eq!(serde_json::from_str::<MessageId>(&json).unwrap(), id);
        assert_eq!(
            serde_json::from_str::<MessageId>("42").unwrap(),
            MessageId(42)
        );
        assert!(serde_json::from_str::<MessageId>("\"x1\"").is_err());
        assert!(serde_json::from_str::<MessageId>("-1").is_err());
    }
}
