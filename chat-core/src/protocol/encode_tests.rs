//! Every frame type, both directions, checked against the contract's exact
//! JSON; and server frames that do not decode, checked for their exact error.

use super::*;
use crate::model::{
    ConversationId, Message, MessageId, Presence, PresenceStatus, Receipt, ReceiptStatus,
};

fn message() -> Message {
    Message::text(
        MessageId(7),
        "g:1".into(),
        "alice".into(),
        "hi \"you\"",
        1_700_000_000_000,
    )
}

#[test]
fn protocol_server_frames_encode_as_the_contract() {
    let msg = r#"{"message_id":"7","conversation_id":"g:1","sender_id":"alice","body":"hi \"you\"","ts":1700000000000,"kind":"text"}"#;
    let cases: Vec<(ServerFrame, String)> = vec![
        (
            ServerFrame::Sent { reply_to: Some("1".into()), message_id: MessageId(7), conversation_id: "g:1".into(), ts: 5 },
            r#"{"type":"sent","reply_to":"1","message_id":"7","conversation_id":"g:1","ts":5}"#.into(),
        ),
        (ServerFrame::Synced { reply_to: None }, r#"{"type":"synced"}"#.into()),
        (ServerFrame::Synced { reply_to: Some("s".into()) }, r#"{"type":"synced","reply_to":"s"}"#.into()),
        (
            ServerFrame::History { reply_to: Some("h".into()), messages: vec![message()] },
            format!(r#"{{"type":"history","reply_to":"h","messages":[{msg}]}}"#),
        ),
        (ServerFrame::Message { message: message() }, format!(r#"{{"type":"message","message":{msg}}}"#)),
        (
            ServerFrame::Receipt(Receipt {
                conversation_id: "g:1".into(),
                message_id: MessageId(7),
                user_id: "bob".into(),
                status: ReceiptStatus::Delivered,
            }),
            r#"{"type":"receipt","conversation_id":"g:1","message_id":"7","user_id":"bob","status":"delivered"}"#.into(),
        ),
        (
            ServerFrame::Presence(Presence { user_id: "bob".into(), status: PresenceStatus::Offline, last_seen: Some(9) }),
            r#"{"type":"presence","user_id":"bob","status":"offline","last_seen":9}"#.into(),
        ),
        (
            ServerFrame::Presence(Presence { user_id: "bob".into(), status: PresenceStatus::Online, last_seen: None }),
            r#"{"type":"presence","user_id":"bob","status":"online"}"#.into(),
        ),
        (
            ServerFrame::Typing { conversation_id: "g:1".into(), user_id: "bob".into() },
            r#"{"type":"typing","conversation_id":"g:1","user_id":"bob"}"#.into(),
        ),
        (ServerFrame::Pong { reply_to: Some("p".into()) }, r#"{"type":"pong","reply_to":"p"}"#.into()),
        (
            ServerFrame::error_from(None, &crate::Error::RateLimited {
                    retry_after: std::time::Duration::from_secs(1),
                }),
            r#"{"type":"error","code":"rate_limited","message":"rate limited: retry in 1.0 s"}"#.into(),
        ),
    ];
    for (frame, want) in cases {
        assert_eq!(frame.encode_text(), want);
        assert_eq!(&frame.encode()[..], want.as_bytes());
        assert_eq!(decode_server(&want).unwrap(), frame, "{want}");
    }
}

#[test]
fn protocol_error_frames_carry_codes() {
    let e = crate::Error::NotMember {
        conversation: ConversationId::from("g:1"),
    };
    let frame = ServerFrame::error_from(Some("r".into()), &e);
    assert_eq!(
        frame,
        ServerFrame::Error {
            reply_to: Some("r".into()),
            code: "not_member".into(),
            message: "not a member of conversation g:1".into(),
        }
    );
    let bad = decode_client(r#"{"type":"send","id":"q","body":"x"}"#).unwrap_err();
    let ServerFrame::Error { reply_to, code, .. } = ServerFrame::bad_frame(&bad) else {
        panic!("error frame")
    };
    assert_eq!((reply_to.as_deref(), code.as_str()), (Some("q"), BAD_FRAME));
}

#[test]
fn protocol_client_frames_encode_as_the_contract() {
    let cases: Vec<(ClientFrame, &str)> = vec![
        (
            ClientFrame::Send(SendFrame {
                id: Some("1".into()),
                target: SendTarget::User("bob".into()),
                body: "hi".into(),
                client_msg_id: Some("c".into()),
                in_reply_to: None,
            }),
            r#"{"type":"send","id":"1","to":"bob","body":"hi","client_msg_id":"c"}"#,
        ),
        (
            ClientFrame::Send(SendFrame {
                id: None,
                target: SendTarget::Conversation("g:1".into()),
                body: "hi".into(),
                client_msg_id: None,
                in_reply_to: None,
            }),
            r#"{"type":"send","conversation_id":"g:1","body":"hi"}"#,
        ),
        (
            ClientFrame::Ack {
                conversation_id: "g:1".into(),
                message_id: MessageId(3),
            },
            r#"{"type":"ack","conversation_id":"g:1","message_id":"3"}"#,
        ),
        (
            ClientFrame::Read {
                conversation_id: "g:1".into(),
                message_id: MessageId(3),
            },
            r#"{"type":"read","conversation_id":"g:1","message_id":"3"}"#,
        ),
        (
            ClientFrame::Sync {
                id: Some("s".into()),
            },
            r#"{"type":"sync","id":"s"}"#,
        ),
        (
            ClientFrame::History {
                id: Some("h".into()),
                conversation_id: "g:1".into(),
                before: Some(MessageId(9)),
                limit: Some(20),
            },
            r#"{"type":"history","id":"h","conversation_id":"g:1","before":"9","limit":20}"#,
        ),
        (
            ClientFrame::Typing {
                conversation_id: "g:1".into(),
            },
            r#"{"type":"typing","conversation_id":"g:1"}"#,
        ),
        (
            ClientFrame::PresenceSubscribe {
                id: Some("p".into()),
                user_ids: vec!["a".into()],
            },
            r#"{"type":"presence_subscribe","id":"p","user_ids":["a"]}"#,
        ),
        (ClientFrame::Ping { id: None }, r#"{"type":"ping"}"#),
    ];
    for (frame, want) in cases {
        assert_eq!(frame.encode_text(), want);
        assert_eq!(&frame.encode()[..], want.as_bytes());
        assert_eq!(decode_client(want).unwrap(), frame, "{want}");
    }
}

#[test]
fn protocol_bad_server_frames_are_named() {
    let kind = |text: &str| decode_server(text).expect_err(text).kind;
    assert!(matches!(kind("{"), FrameErrorKind::NotJson(_)));
    assert_eq!(kind("[]"), FrameErrorKind::NotAnObject);
    assert_eq!(kind(r#"{"reply_to":"x"}"#), FrameErrorKind::MissingType);
    assert_eq!(kind(r#"{"type":1}"#), FrameErrorKind::TypeNotString);
    assert_eq!(
        kind(r#"{"type":"send"}"#),
        FrameErrorKind::UnknownType("send".into())
    );
    assert!(matches!(
        kind(r#"{"type":"sent","reply_to":"1"}"#),
        FrameErrorKind::Malformed { frame: "sent", .. }
    ));
    assert!(matches!(
        kind(
            r#"{"type":"receipt","conversation_id":"g","message_id":"1","user_id":"u","status":"seen"}"#
        ),
        FrameErrorKind::Malformed {
            frame: "receipt",
            ..
        }
    ));
    // Unknown keys are ignored here too.
    assert_eq!(
        decode_server(r#"{"type":"pong","reply_to":"p","node":"n1"}"#).unwrap(),
        ServerFrame::Pong {
            reply_to: Some("p".into())
        }
    );
}

#[test]
fn protocol_type_names_match_the_wire() {
    let frames = [
        ClientFrame::Sync { id: None },
        ClientFrame::Typing {
            conversation_id: "g".into(),
        },
        ClientFrame::PresenceSubscribe {
            id: None,
            user_ids: vec![],
        },
    ];
    for frame in frames {
        let text = frame.encode_text();
        assert!(
            text.starts_with(&format!(r#"{{"type":"{}""#, frame.type_name())),
            "{text}"
        );
    }
    let frame = ServerFrame::Receipt(Receipt {
        conversation_id: "g".into(),
        message_id: MessageId(1),
        user_id: "u".into(),
        status: ReceiptStatus::Read,
    });
    assert!(frame.encode_text().starts_with(r#"{"type":"receipt""#));
    assert_eq!(frame.type_name(), "receipt");
}

#[test]
fn server_frame_types_are_read_from_the_encoded_bytes() {
    let frames = [
        ServerFrame::Pong {
            reply_to: Some("1".into()),
        },
        ServerFrame::Synced { reply_to: None },
        ServerFrame::Typing {
            conversation_id: "g".into(),
            user_id: "u".into(),
        },
    ];
    for frame in frames {
        assert_eq!(super::server_frame_type(&frame.encode()), frame.type_name());
    }
    assert_eq!(super::server_frame_type(br#"{"type":"nonsense"}"#), "other");
    assert_eq!(super::server_frame_type(b"not json"), "other");
    assert_eq!(super::server_frame_type(br#"{"type":"sent"#), "other");
}
