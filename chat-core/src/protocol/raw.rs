//! One pass over a client frame's JSON object that keeps the values of the
//! keys any client frame uses, whatever their JSON type, and skips the rest
//! without allocating. Typed checks come after, in [`super::decode`], so that
//! each error can name its field; a serde derive would stop at the first
//! mismatch with a message that names no field structurally.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// The keys that some client frame uses; every other key is skipped.
#[derive(Clone, Copy, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Type,
    Id,
    ConversationId,
    To,
    Body,
    ClientMsgId,
    MessageId,
    Before,
    Limit,
    UserIds,
    InReplyTo,
    Emoji,
    #[serde(other)]
    Unknown,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Type => "type",
            Key::Id => "id",
            Key::ConversationId => "conversation_id",
            Key::To => "to",
            Key::Body => "body",
            Key::ClientMsgId => "client_msg_id",
            Key::MessageId => "message_id",
            Key::Before => "before",
            Key::Limit => "limit",
            Key::UserIds => "user_ids",
            Key::InReplyTo => "in_reply_to",
            Key::Emoji => "emoji",
            Key::Unknown => "",
        }
    }
}

/// A client frame's known keys, each with its value as it came (a JSON
/// `null` is kept as [`Value::Null`], an absent key is `None`).
#[derive(Debug, Default)]
pub(super) struct RawFrame {
    pub(super) ty: Option<Value>,
    pub(super) id: Option<Value>,
    pub(super) conversation_id: Option<Value>,
    pub(super) to: Option<Value>,
    pub(super) body: Option<Value>,
    pub(super) client_msg_id: Option<Value>,
    pub(super) message_id: Option<Value>,
    pub(super) before: Option<Value>,
    pub(super) limit: Option<Value>,
    pub(super) user_ids: Option<Value>,
    pub(super) in_reply_to: Option<Value>,
    pub(super) emoji: Option<Value>,
    /// The first known key that appeared twice (its first value is kept).
    pub(super) duplicate: Option<&'static str>,
}

impl RawFrame {
    fn slot(&mut self, key: Key) -> Option<&mut Option<Value>> {
        Some(match key {
            Key::Type => &mut self.ty,
            Key::Id => &mut self.id,
            Key::ConversationId => &mut self.conversation_id,
            Key::To => &mut self.to,
            Key::Body => &mut self.body,
            Key::ClientMsgId => &mut self.client_msg_id,
            Key::MessageId => &mut self.message_id,
            Key::Before => &mut self.before,
            Key::Limit => &mut self.limit,
            Key::UserIds => &mut self.user_ids,
            Key::InReplyTo => &mut self.in_reply_to,
            Key::Emoji => &mut self.emoji,
            Key::Unknown => return None,
        })
    }
}

impl<'de> Deserialize<'de> for RawFrame {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only a map: a derive would also take a JSON array, by position.
        d.deserialize_map(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawFrame;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFrame, A::Error> {
        let mut raw = RawFrame::default();
        while let Some(key) = map.next_key::<Key>()? {
            match raw.slot(key) {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(slot @ None) => *slot = Some(map.next_value::<Value>()?),
                Some(Some(_)) => {
                    map.next_value::<IgnoredAny>()?;
                    raw.duplicate.get_or_insert(key.name());
                }
            }
        }
        Ok(raw)
    }
}
