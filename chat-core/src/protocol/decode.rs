//! Text to frames: [`decode_client`], which names every way a client frame can
//! be bad and never panics, and [`decode_server`] for clients of the server.

use serde::de::IgnoredAny;
use serde_json::Value;

use super::client::{ClientFrame, EventFrame, SendFrame, SendTarget};
use super::error::{BadFrame, FrameErrorKind};
use super::raw::RawFrame;
use super::server::{SERVER_TYPES, ServerFrame};
use crate::model::{ConversationId, MessageId, UserId};

/// Why a field's value does not fit (the field is named by the caller).
type Reason = String;

/// Builds one frame type from its raw fields. The request id is taken out of
/// its slot only once everything else has been checked, so that a failed
/// build leaves it there to be echoed as `reply_to`.
type Build =
    fn(&'static str, &mut RawFrame, &mut Option<String>) -> Result<ClientFrame, FrameErrorKind>;

/// Decodes a client frame from a WebSocket text frame.
///
/// Unknown keys are ignored, so that newer clients can add optional fields.
/// `id` may be a JSON string or number (kept as its decimal text); a JSON
/// `null` counts as absent for every optional field. On failure the
/// [`BadFrame`] carries the frame's `id` when it could be read.
pub fn decode_client(text: &str) -> Result<ClientFrame, BadFrame> {
    let mut raw: RawFrame =
        serde_json::from_str(text).map_err(|e| BadFrame::new(not_a_frame(text, e)))?;

    // Read leniently first: even a frame with a bad type can have its error echoed.
    let (mut id, id_error) = match raw.id.take() {
        None | Some(Value::Null) => (None, None),
        Some(value) => match to_request_id(value) {
            Ok(id) => (Some(id), None),
            Err(reason) => (None, Some(reason)),
        },
    };
    let fail = |kind, id: Option<String>| BadFrame { reply_to: id, kind };

    if let Some(field) = raw.duplicate {
        let frame = match &raw.ty {
            Some(Value::String(t)) => frame_type(t).map_or("unknown", |(name, _, _)| name),
            _ => "unknown",
        };
        return Err(fail(FrameErrorKind::DuplicateField { frame, field }, id));
    }
    let (frame, carries_id, build) = match &raw.ty {
        None => return Err(fail(FrameErrorKind::MissingType, id)),
        Some(Value::String(t)) => match frame_type(t) {
            Some(found) => found,
            None => return Err(fail(FrameErrorKind::unknown_type(t), id)),
        },
        Some(_) => return Err(fail(FrameErrorKind::TypeNotString, id)),
    };
    // Frames without an id ignore a bad one, as they ignore any unknown key.
    if let (true, Some(reason)) = (carries_id, id_error) {
        return Err(fail(invalid(frame, "id", reason), id));
    }
    build(frame, &mut raw, &mut id).map_err(|kind| fail(kind, id))
}

/// Decodes a server frame (for the CLI client and the load generator).
/// Unknown keys are ignored; a frame of a known type whose fields do not fit
/// is [`FrameErrorKind::Malformed`], with serde's explanation.
pub fn decode_server(text: &str) -> Result<ServerFrame, BadFrame> {
    serde_json::from_str(text).map_err(|e| BadFrame::new(classify_server(text, &e)))
}

/// The wire name of a client frame type, whether it carries an `id`, and its builder.
fn frame_type(ty: &str) -> Option<(&'static str, bool, Build)> {
    Some(match ty {
        "send" => ("send", true, send as Build),
        "ack" => ("ack", false, ack),
        "read" => ("read", false, read),
        "sync" => ("sync", true, sync),
        "history" => ("history", true, history),
        "typing" => ("typing", false, typing),
        "presence_subscribe" => ("presence_subscribe", true, presence_subscribe),
        "ping" => ("ping", true, ping),
        "edit" => ("edit", true, edit),
        "delete" => ("delete", true, delete),
        "react" => ("react", true, react),
        _ => return None,
    })
}

fn send(
    frame: &'static str,
    raw: &mut RawFrame,
    id: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    let conversation = optional(
        frame,
        "conversation_id",
        raw.conversation_id.take(),
        to_string,
    )?;
    let to = optional(frame, "to", raw.to.take(), to_string)?;
    let target = match (conversation, to) {
        (Some(c), None) => SendTarget::Conversation(ConversationId::from(c)),
        (None, Some(u)) => SendTarget::User(UserId::from(u)),
        (Some(_), Some(_)) => return Err(FrameErrorKind::BothTargets),
        (None, None) => return Err(FrameErrorKind::NoTarget),
    };
    let body = required(frame, "body", raw.body.take(), to_string)?;
    let client_msg_id = optional(frame, "client_msg_id", raw.client_msg_id.take(), to_string)?;
    let in_reply_to = optional(frame, "in_reply_to", raw.in_reply_to.take(), to_message_id)?;
    Ok(ClientFrame::Send(SendFrame {
        id: id.take(),
        target,
        body,
        client_msg_id,
        in_reply_to,
    }))
}

/// The fields that `edit`, `delete` and `react` share; `text` is the field
/// that carries the new body or emoji (none for `delete`).
fn event_frame(
    frame: &'static str,
    raw: &mut RawFrame,
    id: &mut Option<String>,
    text: Option<&'static str>,
) -> Result<EventFrame, FrameErrorKind> {
    let (conversation_id, message_id) = cursor(frame, raw)?;
    let body = match text {
        Some("body") => required(frame, "body", raw.body.take(), to_string)?,
        Some(field) => required(frame, field, raw.emoji.take(), to_string)?,
        None => String::new(),
    };
    let client_msg_id = optional(frame, "client_msg_id", raw.client_msg_id.take(), to_string)?;
    Ok(EventFrame {
        id: id.take(),
        conversation_id,
        message_id,
        body,
        client_msg_id,
    })
}

fn edit(
    frame: &'static str,
    raw: &mut RawFrame,
    id: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    event_frame(frame, raw, id, Some("body")).map(ClientFrame::Edit)
}

fn delete(
    frame: &'static str,
    raw: &mut RawFrame,
    id: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    event_frame(frame, raw, id, None).map(ClientFrame::Delete)
}

fn react(
    frame: &'static str,
    raw: &mut RawFrame,
    id: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    event_frame(frame, raw, id, Some("emoji")).map(ClientFrame::React)
}

fn ack(
    frame: &'static str,
    raw: &mut RawFrame,
    _: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    let (conversation_id, message_id) = cursor(frame, raw)?;
    Ok(ClientFrame::Ack {
        conversation_id,
        message_id,
    })
}

fn read(
    frame: &'static str,
    raw: &mut RawFrame,
    _: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    let (conversation_id, message_id) = cursor(frame, raw)?;
    Ok(ClientFrame::Read {
        conversation_id,
        message_id,
    })
}

/// The `conversation_id` and `message_id` that `ack` and `read` share.
fn cursor(
    frame: &'static str,
    raw: &mut RawFrame,
) -> Result<(ConversationId, MessageId), FrameErrorKind> {
    let conversation_id = conversation(frame, raw)?;
    let message_id = required(frame, "message_id", raw.message_id.take(), to_message_id)?;
    Ok((conversation_id, message_id))
}

fn sync(
    _: &'static str,
    _: &mut RawFrame,
    id: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    Ok(ClientFrame::Sync { id: id.take() })
}

fn history(
    frame: &'static str,
    raw: &mut RawFrame,
    id: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    let conversation_id = conversation(frame, raw)?;
    let before = optional(frame, "before", raw.before.take(), to_message_id)?;
    let limit = optional(frame, "limit", raw.limit.take(), to_u32)?;
    Ok(ClientFrame::History {
        id: id.take(),
        conversation_id,
        before,
        limit,
    })
}

fn typing(
    frame: &'static str,
    raw: &mut RawFrame,
    _: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    Ok(ClientFrame::Typing {
        conversation_id: conversation(frame, raw)?,
    })
}

fn presence_subscribe(
    frame: &'static str,
    raw: &mut RawFrame,
    id: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    let user_ids = required(frame, "user_ids", raw.user_ids.take(), to_user_ids)?;
    Ok(ClientFrame::PresenceSubscribe {
        id: id.take(),
        user_ids,
    })
}

fn ping(
    _: &'static str,
    _: &mut RawFrame,
    id: &mut Option<String>,
) -> Result<ClientFrame, FrameErrorKind> {
    Ok(ClientFrame::Ping { id: id.take() })
}

fn conversation(frame: &'static str, raw: &mut RawFrame) -> Result<ConversationId, FrameErrorKind> {
    required(
        frame,
        "conversation_id",
        raw.conversation_id.take(),
        to_string,
    )
    .map(ConversationId::from)
}

/// A field the frame needs: absent is [`FrameErrorKind::MissingField`], and
/// `null` is a value of the wrong type.
fn required<T>(
    frame: &'static str,
    field: &'static str,
    value: Option<Value>,
    convert: fn(Value) -> Result<T, Reason>,
) -> Result<T, FrameErrorKind> {
    let value = value.ok_or(FrameErrorKind::MissingField { frame, field })?;
    convert(value).map_err(|reason| invalid(frame, field, reason))
}

/// A field the frame may leave out; `null` counts as left out.
fn optional<T>(
    frame: &'static str,
    field: &'static str,
    value: Option<Value>,
    convert: fn(Value) -> Result<T, Reason>,
) -> Result<Option<T>, FrameErrorKind> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => convert(value)
            .map(Some)
            .map_err(|reason| invalid(frame, field, reason)),
    }
}

fn invalid(frame: &'static str, field: &'static str, reason: Reason) -> FrameErrorKind {
    FrameErrorKind::InvalidField {
        frame,
        field,
        reason,
    }
}

fn to_string(value: Value) -> Result<String, Reason> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!("expected a string, found {}", json_kind(&other))),
    }
}

/// A request id: any string, or a number kept as its decimal text.
fn to_request_id(value: Value) -> Result<String, Reason> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!(
            "expected a string or a number, found {}",
            json_kind(&other)
        )),
    }
}

/// A message id: the contract's decimal string, or a plain number as a
/// courtesy (as [`MessageId`]'s own serde does).
fn to_message_id(value: Value) -> Result<MessageId, Reason> {
    let parsed = match &value {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    parsed.map(MessageId).ok_or_else(|| {
        format!(
            "expected a message id (a decimal string of a 64-bit unsigned integer), found {}",
            json_kind(&value)
        )
    })
}

fn to_u32(value: Value) -> Result<u32, Reason> {
    match &value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "expected a whole number from 0 to {}, found {}",
            u32::MAX,
            json_kind(&value)
        )
    })
}

fn to_user_ids(value: Value) -> Result<Vec<UserId>, Reason> {
    let Value::Array(items) = value else {
        return Err(format!(
            "expected an array of user ids, found {}",
            json_kind(&value)
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(UserId::from(s)),
            other => Err(format!(
                "element {i} is {}, expected a string",
                json_kind(&other)
            )),
        })
        .collect()
}

/// How a value is named in an error: its JSON type, and for a string or a
/// number its text when short (the reader wants to see what was wrong).
fn json_kind(value: &Value) -> String {
    const SHOWN: usize = 24;
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.len() <= SHOWN => format!("the string {s:?}"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Why text that did not parse as an object is not a frame: it is JSON of
/// another kind, or not JSON. Only the error path pays this second pass.
fn not_a_frame(text: &str, err: serde_json::Error) -> FrameErrorKind {
    if err.is_data() && serde_json::from_str::<IgnoredAny>(text).is_ok() {
        // The one data error our object reader raises is "not a map".
        FrameErrorKind::NotAnObject
    } else {
        FrameErrorKind::NotJson(err.to_string())
    }
}

/// Names what is wrong with a server frame that serde refused.
fn classify_server(text: &str, err: &serde_json::Error) -> FrameErrorKind {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return FrameErrorKind::NotJson(e.to_string()),
    };
    let Value::Object(map) = value else {
        return FrameErrorKind::NotAnObject;
    };
    match map.get("type") {
        None => FrameErrorKind::MissingType,
        Some(Value::String(t)) => match SERVER_TYPES.iter().find(|name| **name == t.as_str()) {
            Some(&frame) => FrameErrorKind::Malformed {
                frame,
                reason: err.to_string(),
            },
            None => FrameErrorKind::unknown_type(t),
        },
        Some(_) => FrameErrorKind::TypeNotString,
    }
}
