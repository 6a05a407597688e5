//! The chat connection against a scripted WebSocket peer: the retry of a
//! `send` answered `unavailable`, and frames kept while an answer is awaited.

use chat_core::protocol::{ClientFrame, SendTarget, ServerFrame, decode_client};
use chat_core::{ConversationId, Message, MessageId, UserId};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::*;

type Peer = WebSocketStream<TcpStream>;

/// A one-connection WebSocket server running `script`; returns its URL.
async fn peer<F, Fut>(script: F) -> (String, tokio::task::JoinHandle<()>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        script(ws).await;
    });
    (url, task)
}

async fn receive(ws: &mut Peer) -> ClientFrame {
    loop {
        match ws.next().await.expect("the client sends").unwrap() {
            WsMessage::Text(text) => return decode_client(text.as_str()).unwrap(),
            _ => continue,
        }
    }
}

async fn answer(ws: &mut Peer, frame: ServerFrame) {
    ws.send(WsMessage::Text(frame.encode_text().into()))
        .await
        .unwrap();
}

fn message(id: u64) -> Message {
    Message::text(
        MessageId(id),
        ConversationId::from("g1"),
        UserId::from("bob"),
        format!("m{id}"),
        1,
    )
}

#[tokio::test]
async fn an_unavailable_send_is_retried_with_the_same_client_msg_id() {
    let (url, server) = peer(|mut ws| async move {
        let ClientFrame::Send(first) = receive(&mut ws).await else {
            panic!("a send")
        };
        answer(
            &mut ws,
            ServerFrame::Error {
                reply_to: first.id.clone(),
                code: "unavailable".into(),
                message: "store down".into(),
            },
        )
        .await;
        let ClientFrame::Send(second) = receive(&mut ws).await else {
            panic!("a send")
        };
        assert!(first.client_msg_id.is_some());
        assert_eq!(second.client_msg_id, first.client_msg_id);
        assert_eq!(second.body, "hi");
        assert_eq!(second.target, SendTarget::User(UserId::from("bob")));
        answer(
            &mut ws,
            ServerFrame::Sent {
                reply_to: second.id,
                message_id: MessageId(77),
                conversation_id: ConversationId::from("d:alice:bob"),
                ts: 5,
            },
        )
        .await;
    })
    .await;
    let mut chat = Chat::connect(&url, "token").await.unwrap();
    let sent = chat
        .send_message(SendTarget::User(UserId::from("bob")), "hi".into())
        .await
        .unwrap();
    assert_eq!(sent.message_id, MessageId(77));
    assert_eq!(sent.conversation_id, ConversationId::from("d:alice:bob"));
    server.await.unwrap();
}

#[tokio::test]
async fn another_send_error_is_the_servers_code_and_message() {
    let (url, server) = peer(|mut ws| async move {
        let ClientFrame::Send(send) = receive(&mut ws).await else {
            panic!("a send")
        };
        answer(
            &mut ws,
            ServerFrame::Error {
                reply_to: send.id,
                code: "not_member".into(),
                message: "you are not a member of g1".into(),
            },
        )
        .await;
    })
    .await;
    let mut chat = Chat::connect(&url, "token").await.unwrap();
    let err = chat
        .send_message(SendTarget::Conversation("g1".into()), "hi".into())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "you are not a member of g1 (server said not_member)"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn frames_that_arrive_before_an_answer_are_kept_in_order() {
    let (url, server) = peer(|mut ws| async move {
        answer(
            &mut ws,
            ServerFrame::Message {
                message: message(1),
            },
        )
        .await;
        answer(&mut ws, ServerFrame::Synced { reply_to: None }).await;
        let ping = receive(&mut ws).await;
        answer(
            &mut ws,
            ServerFrame::Message {
                message: message(2),
            },
        )
        .await;
        // A frame type newer than the client is skipped, not an error.
        ws.send(WsMessage::Text(r#"{"type":"future_thing"}"#.into()))
            .await
            .unwrap();
        answer(
            &mut ws,
            ServerFrame::Pong {
                reply_to: ping.request_id().map(str::to_owned),
            },
        )
        .await;
        ws.close(None).await.unwrap();
    })
    .await;
    let mut chat = Chat::connect(&url, "token").await.unwrap();
    chat.wait_synced().await.unwrap();
    chat.flush().await.unwrap();
    for id in [1, 2] {
        match chat.next_frame().await.unwrap() {
            ServerFrame::Message { message: m } => assert_eq!(m, message(id)),
            other => panic!("expected message {id}, got {other:?}"),
        }
    }
    server.await.unwrap();
    assert!(matches!(chat.next_frame().await, Err(CliError::Closed)));
}

#[test]
fn events_go_out_as_the_contracts_frames() {
    let target = (ConversationId::from("g1"), MessageId(7));
    let text = |o: Outgoing| o.frame("r1".into(), "k1".into()).encode_text();
    assert_eq!(
        text(Outgoing::Edit {
            target: target.clone(),
            body: "new".into()
        }),
        r#"{"type":"edit","id":"r1","conversation_id":"g1","message_id":"7","body":"new","client_msg_id":"k1"}"#
    );
    assert_eq!(
        text(Outgoing::Delete {
            target: target.clone()
        }),
        r#"{"type":"delete","id":"r1","conversation_id":"g1","message_id":"7","client_msg_id":"k1"}"#
    );
    assert_eq!(
        text(Outgoing::React {
            target,
            emoji: "👍".into()
        }),
        r#"{"type":"react","id":"r1","conversation_id":"g1","message_id":"7","emoji":"👍","client_msg_id":"k1"}"#
    );
    assert_eq!(
        text(Outgoing::Message {
            target: SendTarget::Conversation("g1".into()),
            body: "re".into(),
            in_reply_to: Some(MessageId(7)),
        }),
        r#"{"type":"send","id":"r1","conversation_id":"g1","body":"re","client_msg_id":"k1","in_reply_to":"7"}"#
    );
}
