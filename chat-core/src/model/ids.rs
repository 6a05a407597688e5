//! Ids: small newtypes so that a user id can never be passed where a
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
string_id!(
    /// The id of one device of a user: each sign-up or login creates one,
    /// and its tokens belong to it.
    DeviceId
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
