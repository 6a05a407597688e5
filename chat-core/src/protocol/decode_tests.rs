//! Hand-written client frames, each malformed one checked for its exact error.

use super::*;
use crate::model::{ConversationId, MessageId, UserId};

fn kind_of(text: &str) -> FrameErrorKind {
    decode_client(text).expect_err(text).kind
}

fn missing(frame: &'static str, field: &'static str) -> FrameErrorKind {
    FrameErrorKind::MissingField { frame, field }
}

/// The frame and field an InvalidField names (its reason is for humans).
fn invalid_field(text: &str) -> (&'static str, &'static str) {
    match kind_of(text) {
        FrameErrorKind::InvalidField { frame, field, .. } => (frame, field),
        other => panic!("{text}: expected InvalidField, got {other:?}"),
    }
}

#[test]
fn protocol_not_json_is_named() {
    for text in [
        "",
        "   ",
        "{",
        "{\"type\":\"ping\"",
        "nope",
        "{\"type\":\"ping\"} x",
        "{'type':'ping'}",
    ] {
        assert!(
            matches!(kind_of(text), FrameErrorKind::NotJson(_)),
            "{text:?}"
        );
    }
}

#[test]
fn protocol_json_that_is_not_an_object_is_named() {
    for text in [
        "[]",
        "[\"ping\"]",
        "\"ping\"",
        "42",
        "null",
        "true",
        " [1, {\"type\":\"ping\"}] ",
    ] {
        assert_eq!(kind_of(text), FrameErrorKind::NotAnObject, "{text:?}");
    }
    // An unfinished array is not JSON, though it does not start like an object.
    assert!(matches!(kind_of("[1,"), FrameErrorKind::NotJson(_)));
}

#[test]
fn protocol_type_errors_are_named_and_keep_the_id() {
    let bad = decode_client(r#"{"id":"r1"}"#).unwrap_err();
    assert_eq!(bad.kind, FrameErrorKind::MissingType);
    assert_eq!(bad.reply_to.as_deref(), Some("r1"));

    assert_eq!(kind_of(r#"{"type":7}"#), FrameErrorKind::TypeNotString);
    assert_eq!(kind_of(r#"{"type":null}"#), FrameErrorKind::TypeNotString);
    let bad = decode_client(r#"{"type":"shout","id":12}"#).unwrap_err();
    assert_eq!(bad.kind, FrameErrorKind::UnknownType("shout".into()));
    assert_eq!(bad.reply_to.as_deref(), Some("12"));
    // Types are case-sensitive, as JSON keys and values are.
    assert_eq!(
        kind_of(r#"{"type":"PING"}"#),
        FrameErrorKind::UnknownType("PING".into())
    );
    // A huge type is clipped in the error.
    let huge = format!(r#"{{"type":"{}"}}"#, "x".repeat(10_000));
    assert_eq!(kind_of(&huge), FrameErrorKind::UnknownType("x".repeat(64)));
}

#[test]
fn protocol_send_needs_exactly_one_target_and_a_body() {
    assert_eq!(
        kind_of(r#"{"type":"send","body":"hi"}"#),
        FrameErrorKind::NoTarget
    );
    assert_eq!(
        kind_of(r#"{"type":"send","conversation_id":null,"to":null,"body":"hi"}"#),
        FrameErrorKind::NoTarget
    );
    assert_eq!(
        kind_of(r#"{"type":"send","conversation_id":"g:1","to":"bob","body":"hi"}"#),
        FrameErrorKind::BothTargets
    );
    assert_eq!(
        kind_of(r#"{"type":"send","to":"bob"}"#),
        missing("send", "body")
    );
    assert_eq!(
        invalid_field(r#"{"type":"send","to":"bob","body":null}"#),
        ("send", "body")
    );
    assert_eq!(
        invalid_field(r#"{"type":"send","to":"bob","body":["hi"]}"#),
        ("send", "body")
    );
    assert_eq!(
        invalid_field(r#"{"type":"send","to":7,"body":"hi"}"#),
        ("send", "to")
    );
    assert_eq!(
        invalid_field(r#"{"type":"send","conversation_id":{},"body":"hi"}"#),
        ("send", "conversation_id")
    );
    assert_eq!(
        invalid_field(r#"{"type":"send","to":"bob","body":"hi","client_msg_id":1}"#),
        ("send", "client_msg_id")
    );
    let bad =
        decode_client(r#"{"type":"send","id":"s1","to":"bob","body":"hi","id":"s2"}"#).unwrap_err();
    assert_eq!(
        bad.kind,
        FrameErrorKind::DuplicateField {
            frame: "send",
            field: "id"
        }
    );
    assert_eq!(bad.reply_to.as_deref(), Some("s1"));
}

#[test]
fn protocol_bad_ids_are_named_but_not_echoed() {
    let bad = decode_client(r#"{"type":"ping","id":{"a":1}}"#).unwrap_err();
    assert_eq!(bad.reply_to, None);
    assert!(matches!(
        bad.kind,
        FrameErrorKind::InvalidField {
            frame: "ping",
            field: "id",
            ..
        }
    ));
    let bad = decode_client(r#"{"type":"send","id":true,"to":"bob","body":"hi"}"#).unwrap_err();
    assert!(matches!(
        bad.kind,
        FrameErrorKind::InvalidField {
            frame: "send",
            field: "id",
            ..
        }
    ));
    // Frames that carry no id ignore one, like any unknown key.
    assert!(decode_client(r#"{"type":"typing","id":[],"conversation_id":"g:1"}"#).is_ok());
}

#[test]
fn protocol_field_errors_name_frame_and_field() {
    assert_eq!(
        kind_of(r#"{"type":"ack","message_id":"1"}"#),
        missing("ack", "conversation_id")
    );
    assert_eq!(
        kind_of(r#"{"type":"read","conversation_id":"g:1"}"#),
        missing("read", "message_id")
    );
    assert_eq!(
        invalid_field(r#"{"type":"ack","conversation_id":"g:1","message_id":"x1"}"#),
        ("ack", "message_id")
    );
    assert_eq!(
        invalid_field(r#"{"type":"ack","conversation_id":"g:1","message_id":-1}"#),
        ("ack", "message_id")
    );
    assert_eq!(
        invalid_field(r#"{"type":"ack","conversation_id":"g:1","message_id":1.5}"#),
        ("ack", "message_id")
    );
    assert_eq!(
        invalid_field(
            r#"{"type":"read","conversation_id":"g:1","message_id":"18446744073709551616"}"#
        ),
        ("read", "message_id")
    );
    assert_eq!(
        kind_of(r#"{"type":"history","id":"h"}"#),
        missing("history", "conversation_id")
    );
    assert_eq!(
        invalid_field(r#"{"type":"history","conversation_id":"g:1","before":true}"#),
        ("history", "before")
    );
    assert_eq!(
        invalid_field(r#"{"type":"history","conversation_id":"g:1","limit":-1}"#),
        ("history", "limit")
    );
    assert_eq!(
        invalid_field(r#"{"type":"history","conversation_id":"g:1","limit":"50"}"#),
        ("history", "limit")
    );
    assert_eq!(
        invalid_field(r#"{"type":"history","conversation_id":"g:1","limit":4294967296}"#),
        ("history", "limit")
    );
    assert_eq!(
        kind_of(r#"{"type":"typing"}"#),
        missing("typing", "conversation_id")
    );
    assert_eq!(
        kind_of(r#"{"type":"presence_subscribe","id":"p"}"#),
        missing("presence_subscribe", "user_ids")
    );
    assert_eq!(
        invalid_field(r#"{"type":"presence_subscribe","user_ids":"bob"}"#),
        ("presence_subscribe", "user_ids")
    );
    let bad =
        decode_client(r#"{"type":"presence_subscribe","id":"p","user_ids":["a",2]}"#).unwrap_err();
    assert_eq!(bad.reply_to.as_deref(), Some("p"));
    let FrameErrorKind::InvalidField { reason, .. } = bad.kind else {
        panic!("{:?}", bad.kind)
    };
    assert_eq!(reason, "element 1 is the number 2, expected a string");
}

#[test]
fn protocol_errors_read_well() {
    let bad =
        decode_client(r#"{"type":"history","conversation_id":"g:1","limit":"50"}"#).unwrap_err();
    assert_eq!(
        bad.message(),
        "history frame: \"limit\" is invalid: expected a whole number from 0 to 4294967295, found the string \"50\""
    );
    assert_eq!(
        FrameErrorKind::BothTargets.to_string(),
        "send frame: give exactly one of \"conversation_id\" and \"to\", not both"
    );
}

#[test]
fn protocol_decodes_every_client_frame_type() {
    let cases: Vec<(&str, ClientFrame)> = vec![
        (
            r#"{"type":"send","id":"1","conversation_id":"g:1","body":"hi","client_msg_id":"c1"}"#,
            ClientFrame::Send(SendFrame {
                id: Some("1".into()),
                target: SendTarget::Conversation(ConversationId::from("g:1")),
                body: "hi".into(),
                client_msg_id: Some("c1".into()),
                in_reply_to: None,
            }),
        ),
        (
            r#"{"type":"send","to":"bob","body":""}"#,
            ClientFrame::Send(SendFrame {
                id: None,
                target: SendTarget::User(UserId::from("bob")),
                body: String::new(),
                client_msg_id: None,
                in_reply_to: None,
            }),
        ),
        (
            r#"{"type":"ack","conversation_id":"g:1","message_id":"18446744073709551615"}"#,
            ClientFrame::Ack {
                conversation_id: "g:1".into(),
                message_id: MessageId(u64::MAX),
            },
        ),
        (
            r#"{"type":"read","conversation_id":"g:1","message_id":9}"#,
            ClientFrame::Read {
                conversation_id: "g:1".into(),
                message_id: MessageId(9),
            },
        ),
        (
            r#"{"type":"sync","id":"s"}"#,
            ClientFrame::Sync {
                id: Some("s".into()),
            },
        ),
        (r#"{"type":"sync"}"#, ClientFrame::Sync { id: None }),
        (
            r#"{"type":"history","id":"h","conversation_id":"g:1","before":"100","limit":50}"#,
            ClientFrame::History {
                id: Some("h".into()),
                conversation_id: "g:1".into(),
                before: Some(MessageId(100)),
                limit: Some(50),
            },
        ),
        (
            r#"{"type":"history","conversation_id":"g:1","before":null,"limit":null}"#,
            ClientFrame::History {
                id: None,
                conversation_id: "g:1".into(),
                before: None,
                limit: None,
            },
        ),
        (
            r#"{"type":"typing","conversation_id":"g:1"}"#,
            ClientFrame::Typing {
                conversation_id: "g:1".into(),
            },
        ),
        (
            r#"{"type":"presence_subscribe","id":"p","user_ids":["a","b"]}"#,
            ClientFrame::PresenceSubscribe {
                id: Some("p".into()),
                user_ids: vec!["a".into(), "b".into()],
            },
        ),
        (
            r#"{"type":"ping","id":"x"}"#,
            ClientFrame::Ping {
                id: Some("x".into()),
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(decode_client(text).expect(text), want, "{text}");
    }
}

#[test]
fn protocol_ids_may_be_numbers_and_unknown_keys_are_ignored() {
    let frame =
        decode_client(r#"{"id":-3,"future":{"deep":[1,2,{"x":null}]},"type":"ping","id2":1}"#)
            .unwrap();
    assert_eq!(
        frame,
        ClientFrame::Ping {
            id: Some("-3".into())
        }
    );
    assert_eq!(frame.request_id(), Some("-3"));
    let frame = decode_client(r#"{"type":"ping","id":1.5}"#).unwrap();
    assert_eq!(frame.request_id(), Some("1.5"));
    let frame = decode_client(r#"{"type":"ping","id":null}"#).unwrap();
    assert_eq!(frame.request_id(), None);
    // Escaped keys are still the keys they spell.
    let frame = decode_client(r#"{"\u0074ype":"ping","\u0069d":"e"}"#).unwrap();
    assert_eq!(frame.request_id(), Some("e"));
}

#[test]
fn protocol_copes_with_deep_and_huge_input() {
    let deep_ignored = format!(
        r#"{{"type":"ping","x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(decode_client(&deep_ignored).is_ok());
    let deep_kept = format!(
        r#"{{"type":"ping","id":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(matches!(kind_of(&deep_kept), FrameErrorKind::NotJson(_)));
    let deep_array = "[".repeat(100_000);
    assert!(matches!(kind_of(&deep_array), FrameErrorKind::NotJson(_)));
    let body = "é\"\n".repeat(1 << 18);
    let text = ClientFrame::Send(SendFrame {
        id: None,
        target: SendTarget::User("bob".into()),
        body: body.clone(),
        client_msg_id: None,
        in_reply_to: None,
    })
    .encode_text();
    let ClientFrame::Send(send) = decode_client(&text).unwrap() else {
        panic!("send")
    };
    assert_eq!(send.body, body);
}
