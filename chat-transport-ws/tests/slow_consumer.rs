//! A client that stops reading is closed with 4000 once its outbound queue
//! overflows; its sender is never held up, and sync after reconnecting hands
//! it every message.

mod common;

use chat_transport_ws::{CLOSE_SLOW_CONSUMER, WsConfig};
use common::{Server, id_of, next_frame, next_message, send, until};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Messages B sends to A. A's socket buffers are shrunk to 32 KiB on both
/// ends, so a handful of 15 KiB messages fill them and the 4-frame queue; 300
/// (4.5 MiB) overflow it even if the kernel ignored the smaller buffers.
const COUNT: usize = 300;
/// Under the engine's 16 KiB body limit.
const BODY_BYTES: usize = 15 * 1024;
const SMALL_BUFFER: u32 = 32 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_with_4000_and_sync_loses_nothing() {
    let server = Server::start(WsConfig::default(), Some(SMALL_BUFFER)).await;
    let alice = server.signup("alice").await;
    let bob = server.signup("bob").await;

    // Alice is live (her first sync is over), then stops reading.
    let mut slow = server.connect(&alice.token, Some(SMALL_BUFFER)).await;
    let (_, before) = until(&mut slow, "synced").await;
    assert!(before.is_empty(), "nothing to sync yet: {before:?}");
    let mut sender = server.connect(&bob.token, None).await;
    until(&mut sender, "synced").await;

    // Bob is never blocked: every send is answered `sent` while Alice reads nothing.
    let body = "x".repeat(BODY_BYTES);
    let mut sent_ids = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        let id = i.to_string();
        send(
            &mut sender,
            json!({"type": "send", "id": id, "to": alice.id, "body": body}),
        )
        .await;
        let sent = next_frame(&mut sender).await;
        assert_eq!(sent["type"], "sent", "send {i}: {sent}");
        assert_eq!(sent["reply_to"], id);
        sent_ids.push(id_of(&sent));
    }
    assert!(sent_ids.is_sorted(), "one sender's ids ascend");

    // Alice reads again: what reached her socket before the overflow, then 4000.
    let mut received = Vec::new();
    let close = loop {
        match next_message(&mut slow).await {
            Some(Message::Text(text)) => {
                let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(frame["type"], "message", "{frame}");
                assert_eq!(frame["message"]["sender_id"], bob.id.as_str());
                received.push(id_of(&frame["message"]));
            }
            Some(Message::Close(close)) => break close.expect("a close frame with a code"),
            other => panic!("expected messages then a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), CLOSE_SLOW_CONSUMER);
    let reason = close.reason.as_str();
    assert!(
        reason.contains("reconnect") && reason.contains("sync"),
        "{reason:?}"
    );
    assert!(
        !received.is_empty() && received.len() < COUNT,
        "some but not all messages came before the close: {}",
        received.len()
    );
    assert_eq!(
        received,
        sent_ids[..received.len()],
        "the first messages, in order"
    );
    drop(slow);
    server.wait_for_connections(1).await;

    // Nothing was lost: her sync hands her every message, oldest first.
    let mut again = server.connect(&alice.token, None).await;
    let (_, synced) = until(&mut again, "synced").await;
    let synced_ids: Vec<u64> = synced
        .iter()
        .map(|frame| {
            assert_eq!(frame["type"], "message", "{frame}");
            assert_eq!(
                frame["message"]["body"].as_str().map(str::len),
                Some(BODY_BYTES)
            );
            id_of(&frame["message"])
        })
        .collect();
    assert_eq!(synced_ids.len(), COUNT);
    assert_eq!(synced_ids, sent_ids);

    // Bob's connection is still fine.
    send(&mut sender, json!({"type": "ping", "id": "p"})).await;
    let pong = next_frame(&mut sender).await;
    assert_eq!(pong["type"], "pong", "{pong}");
}
