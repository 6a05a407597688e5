//! Properties of the WebSocket frames: decoding never panics, whatever the
//! input; every frame survives encode then decode in both directions; unknown
//! keys change nothing; and a missing or mistyped field is named.

use chat_core::protocol::{
    BadFrame, ClientFrame, EventFrame, FrameErrorKind, SendFrame, SendTarget, ServerFrame,
    decode_client, decode_server,
};
use chat_core::{
    ConversationId, Message, MessageId, Presence, PresenceStatus, Receipt, ReceiptStatus, UserId,
};
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Every key some client frame uses, so that random objects hit them often.
const KNOWN_KEYS: [&str; 10] = [
    "type",
    "id",
    "conversation_id",
    "to",
    "body",
    "client_msg_id",
    "message_id",
    "before",
    "limit",
    "user_ids",
];

const CLIENT_TYPES: [&str; 8] = [
    "send",
    "ack",
    "read",
    "sync",
    "history",
    "typing",
    "presence_subscribe",
    "ping",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KNOWN_KEYS.as_slice()).prop_map(str::to_owned),
        ".{0,8}",
    ]
}

/// Any JSON value, a few levels deep, with keys that are often known ones.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any::<String>().prop_map(Value::String),
        "[0-9]{1,21}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with a known client `type` and random values for known and unknown keys.
fn frame_like_object() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::sample::select(CLIENT_TYPES.as_slice()),
        prop::collection::btree_map(key(), json(), 0..8),
    )
        .prop_map(|(ty, fields)| {
            let mut map: Map<String, Value> = fields.into_iter().collect();
            map.insert("type".into(), Value::from(ty));
            map
        })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z0-9:_-]{0,12}"]
}

fn conversation() -> impl Strategy<Value = ConversationId> {
    text().prop_map(ConversationId::from)
}

fn user() -> impl Strategy<Value = UserId> {
    text().prop_map(UserId::from)
}

fn message_id() -> impl Strategy<Value = MessageId> {
    any::<u64>().prop_map(MessageId)
}

fn request_id() -> impl Strategy<Value = Option<String>> {
    option::of(text())
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    let target = prop_oneof![
        conversation().prop_map(SendTarget::Conversation),
        user().prop_map(SendTarget::User),
    ];
    prop_oneof![
        (
            request_id(),
            target,
            any::<String>(),
            option::of(text()),
            option::of(message_id())
        )
            .prop_map(
                |(id, target, body, client_msg_id, in_reply_to)| ClientFrame::Send(SendFrame {
                    id,
                    target,
                    body,
                    client_msg_id,
                    in_reply_to,
                })
            ),
        (
            0..3u8,
            request_id(),
            conversation(),
            message_id(),
            any::<String>(),
            option::of(text())
        )
            .prop_map(
                |(kind, id, conversation_id, message_id, body, client_msg_id)| {
                    let mut e = EventFrame {
                        id,
                        conversation_id,
                        message_id,
                        body,
                        client_msg_id,
                    };
                    match kind {
                        0 => ClientFrame::Edit(e),
                        1 => {
                            e.body.clear();
                            ClientFrame::Delete(e)
                        }
                        _ => ClientFrame::React(e),
                    }
                }
            ),
        (conversation(), message_id()).prop_map(|(conversation_id, message_id)| {
            ClientFrame::Ack {
                conversation_id,
                message_id,
            }
        }),
        (conversation(), message_id()).prop_map(|(conversation_id, message_id)| {
            ClientFrame::Read {
                conversation_id,
                message_id,
            }
        }),
        request_id().prop_map(|id| ClientFrame::Sync { id }),
        (
            request_id(),
            conversation(),
            option::of(message_id()),
            option::of(any::<u32>())
        )
            .prop_map(
                |(id, conversation_id, before, limit)| ClientFrame::History {
                    id,
                    conversation_id,
                    before,
                    limit,
                }
            ),
        conversation().prop_map(|conversation_id| ClientFrame::Typing { conversation_id }),
        (request_id(), prop::collection::vec(user(), 0..5))
            .prop_map(|(id, user_ids)| ClientFrame::PresenceSubscribe { id, user_ids }),
        request_id().prop_map(|id| ClientFrame::Ping { id }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        message_id(),
        conversation(),
        user(),
        any::<String>(),
        any::<i64>(),
    )
        .prop_map(|(message_id, conversation_id, sender_id, body, ts)| {
            Message::text(message_id, conversation_id, sender_id, body, ts)
        })
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (request_id(), message_id(), conversation(), any::<i64>()).prop_map(
            |(reply_to, message_id, conversation_id, ts)| ServerFrame::Sent {
                reply_to,
                message_id,
                conversation_id,
                ts,
            }
        ),
        request_id().prop_map(|reply_to| ServerFrame::Synced { reply_to }),
        (request_id(), prop::collection::vec(message(), 0..4))
            .prop_map(|(reply_to, messages)| ServerFrame::History { reply_to, messages }),
        message().prop_map(|message| ServerFrame::Message { message }),
        (conversation(), message_id(), user(), any::<bool>()).prop_map(
            |(conversation_id, message_id, user_id, read)| ServerFrame::Receipt(Receipt {
                conversation_id,
                message_id,
                user_id,
                status: if read {
                    ReceiptStatus::Read
                } else {
                    ReceiptStatus::Delivered
                },
            })
        ),
        (user(), any::<bool>(), option::of(any::<i64>())).prop_map(
            |(user_id, online, last_seen)| ServerFrame::Presence(Presence {
                user_id,
                status: if online {
                    PresenceStatus::Online
                } else {
                    PresenceStatus::Offline
                },
                last_seen,
            })
        ),
        (conversation(), user()).prop_map(|(conversation_id, user_id)| ServerFrame::Typing {
            conversation_id,
            user_id,
        }),
        request_id().prop_map(|reply_to| ServerFrame::Pong { reply_to }),
        (request_id(), text(), any::<String>()).prop_map(|(reply_to, code, message)| {
            ServerFrame::Error {
                reply_to,
                code,
                message,
            }
        }),
    ]
}

/// The keys a frame type cannot do without, and the error that leaving each
/// out must give.
fn required_keys(frame: &ClientFrame) -> Vec<(&'static str, FrameErrorKind)> {
    let missing = |frame, field| (field, FrameErrorKind::MissingField { frame, field });
    match frame {
        ClientFrame::Send(send) => {
            let target = match send.target {
                SendTarget::Conversation(_) => "conversation_id",
                SendTarget::User(_) => "to",
            };
            vec![missing("send", "body"), (target, FrameErrorKind::NoTarget)]
        }
        ClientFrame::Ack { .. } => vec![
            missing("ack", "conversation_id"),
            missing("ack", "message_id"),
        ],
        ClientFrame::Read { .. } => vec![
            missing("read", "conversation_id"),
            missing("read", "message_id"),
        ],
        ClientFrame::History { .. } => vec![missing("history", "conversation_id")],
        ClientFrame::Typing { .. } => vec![missing("typing", "conversation_id")],
        ClientFrame::PresenceSubscribe { .. } => vec![missing("presence_subscribe", "user_ids")],
        ClientFrame::Sync { .. } | ClientFrame::Ping { .. } => vec![],
        ClientFrame::Edit(_) => vec![
            missing("edit", "conversation_id"),
            missing("edit", "message_id"),
            missing("edit", "body"),
        ],
        ClientFrame::Delete(_) => vec![
            missing("delete", "conversation_id"),
            missing("delete", "message_id"),
        ],
        ClientFrame::React(_) => vec![
            missing("react", "conversation_id"),
            missing("react", "message_id"),
            missing("react", "emoji"),
        ],
    }
}

fn to_object(frame: &ClientFrame) -> Map<String, Value> {
    match serde_json::from_slice(&frame.encode()) {
        Ok(Value::Object(map)) => map,
        other => panic!("a client frame encodes as an object, got {other:?}"),
    }
}

fn decode_value(value: &Value) -> Result<ClientFrame, BadFrame> {
    decode_client(&value.to_string())
}

proptest! {
    #[test]
    fn decoding_any_string_never_panics(text in any::<String>()) {
        let _ = decode_client(&text);
        let _ = decode_server(&text);
    }

    #[test]
    fn decoding_json_looking_text_never_panics(
        text in r#"[ \{\[]{0,3}("(type|id|to|body|limit|user_ids)"[:,]?|"[a-z_]{0,8}"|[0-9.eE+-]{1,8}|null|true|[,:\{\}\[\] ]){0,16}"#
    ) {
        let _ = decode_client(&text);
        let _ = decode_server(&text);
    }

    #[test]
    fn decoding_any_json_names_the_shape_error(value in json()) {
        let decoded = decode_value(&value);
        let _ = decode_server(&value.to_string());
        match &value {
            Value::Object(map) => match map.get("type") {
                None => prop_assert_eq!(decoded.unwrap_err().kind, FrameErrorKind::MissingType),
                Some(Value::String(t)) if !CLIENT_TYPES.contains(&t.as_str()) => {
                    prop_assert!(matches!(decoded.unwrap_err().kind, FrameErrorKind::UnknownType(_)));
                }
                Some(Value::String(_)) => {}
                Some(_) => prop_assert_eq!(decoded.unwrap_err().kind, FrameErrorKind::TypeNotString),
            },
            _ => prop_assert_eq!(decoded.unwrap_err().kind, FrameErrorKind::NotAnObject),
        }
    }

    #[test]
    fn a_frame_like_object_decodes_to_a_frame_that_round_trips(map in frame_like_object()) {
        let text = Value::Object(map).to_string();
        // The id as the decoder reads it (float text need not survive a round trip).
        let reread: Value = serde_json::from_str(&text).unwrap();
        let id = reread.get("id").cloned();
        match decode_client(&text) {
            Ok(frame) => {
                prop_assert_eq!(decode_client(&frame.encode_text()).unwrap(), frame);
            }
            Err(bad) => {
                // The id is echoed exactly when it is a string or a number.
                let echo = match id {
                    Some(Value::String(s)) => Some(s),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                prop_assert_eq!(&bad.reply_to, &echo);
                prop_assert!(!bad.message().is_empty());
            }
        }
    }

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let text = frame.encode_text();
        prop_assert_eq!(&frame.encode()[..], text.as_bytes());
        prop_assert_eq!(decode_client(&text).unwrap(), frame);
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        let bytes = frame.encode();
        let text = std::str::from_utf8(&bytes).unwrap();
        prop_assert_eq!(decode_server(text).unwrap(), frame);
    }

    #[test]
    fn unknown_keys_change_nothing(frame in client_frame(), extra in prop::collection::btree_map("x_[a-z]{1,8}", json(), 1..4)) {
        let mut map = to_object(&frame);
        map.extend(extra);
        prop_assert_eq!(decode_value(&Value::Object(map)).unwrap(), frame);
    }

    #[test]
    fn a_missing_required_key_is_named(frame in client_frame()) {
        for (key, want) in required_keys(&frame) {
            let mut map = to_object(&frame);
            map.remove(key);
            let bad = decode_value(&Value::Object(map)).unwrap_err();
            prop_assert_eq!(bad.kind, want);
            prop_assert_eq!(bad.reply_to.as_deref(), frame.request_id());
        }
    }

    #[test]
    fn a_mistyped_field_is_named(frame in client_frame(), junk in prop_oneof![Just(Value::Bool(true)), Just(Value::Array(vec![])), Just(Value::Object(Map::new()))]) {
        let map = to_object(&frame);
        for key in map.keys().filter(|k| *k != "type") {
            // user_ids takes an array: an empty one is a valid list, so skip that case.
            if key == "user_ids" && junk.is_array() {
                continue;
            }
            let mut broken = map.clone();
            broken.insert(key.clone(), junk.clone());
            let bad = decode_value(&Value::Object(broken)).unwrap_err();
            let named = matches!(&bad.kind, FrameErrorKind::InvalidField { field, .. } if field == key);
            prop_assert!(named, "{} set to {} gave {:?}", key, junk, bad.kind);
        }
    }
}
