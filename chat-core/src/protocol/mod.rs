//! The WebSocket frames of the contract (docs/protocol.md): what clients send
//! ([`ClientFrame`]), what the server sends ([`ServerFrame`]), and the
//! conversions between them and JSON text.
//!
//! The server decodes with [`decode_client`], which never panics and names
//! every way a frame is bad in a [`BadFrame`] that can be answered at once
//! with [`ServerFrame::bad_frame`]. It encodes each outgoing frame once with
//! [`ServerFrame::encode`] into shared [`bytes::Bytes`]. The CLI client and
//! the load generator go the other way with [`ClientFrame::encode`] and
//! [`decode_server`].
//!
//! ```
//! use chat_core::protocol::{
//!     ClientFrame, FrameErrorKind, SendTarget, ServerFrame, decode_client, decode_server,
//! };
//! use chat_core::{ConversationId, MessageId};
//!
//! let frame = decode_client(r#"{"type":"send","id":"7","to":"bob","body":"hi"}"#).unwrap();
//! let ClientFrame::Send(send) = &frame else { panic!("a send frame") };
//! assert_eq!(send.target, SendTarget::User("bob".into()));
//! assert_eq!(frame.request_id(), Some("7"));
//!
//! let sent = ServerFrame::Sent {
//!     reply_to: frame.request_id().map(str::to_owned),
//!     message_id: MessageId(42),
//!     conversation_id: ConversationId::from("d:alice:bob"),
//!     ts: 1_700_000_000_000,
//! };
//! let text = sent.encode();
//! assert_eq!(
//!     &text[..],
//!     br#"{"type":"sent","reply_to":"7","message_id":"42","conversation_id":"d:alice:bob","ts":1700000000000}"#
//! );
//! assert_eq!(decode_server(std::str::from_utf8(&text).unwrap()).unwrap(), sent);
//!
//! // A bad frame names what is wrong, and keeps the id to answer it.
//! let bad = decode_client(r#"{"type":"send","id":8,"to":"bob"}"#).unwrap_err();
//! assert_eq!(bad.kind, FrameErrorKind::MissingField { frame: "send", field: "body" });
//! let answer = ServerFrame::bad_frame(&bad);
//! assert_eq!(
//!     answer.encode_text(),
//!     r#"{"type":"error","reply_to":"8","code":"bad_frame","message":"send frame: \"body\" is missing"}"#
//! );
//! ```

mod client;
mod decode;
#[cfg(test)]
mod decode_tests;
#[cfg(test)]
mod encode_tests;
mod error;
mod raw;
mod server;

pub use client::{ClientFrame, EventFrame, SendFrame, SendTarget};
pub use decode::{decode_client, decode_server};
pub use error::{BAD_FRAME, BadFrame, FrameErrorKind};
pub use server::{ServerFrame, server_frame_type};

/// `value` as JSON in a buffer of `size_hint` bytes (so it rarely grows).
/// Frames hold only strings, numbers and string-keyed objects, and writing
/// into a `Vec` cannot fail, so serializing cannot fail either.
fn json_vec<T: serde::Serialize>(value: &T, size_hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint);
    serde_json::to_writer(&mut out, value).expect("frames always serialize");
    out
}
