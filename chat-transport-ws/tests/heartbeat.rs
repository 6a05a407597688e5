//! Server pings: a peer that never answers is closed (1011) and its session
//! ends; a peer that answers stays connected; a server shutting down closes
//! every connection with 1001.
//!
//! Timing: the mute peer's 300 ms pong timeout can only make it close
//! sooner, which is what that test waits for. The answering peer gets a
//! pong timeout of 2 s: on a loaded machine its reads may lag a ping by far
//! more than 300 ms, which must not close it (it is not what it tests). The
//! next ping follows a pong timeout after the last, so four pings take
//! about 6 s.

mod common;

use std::time::Duration;

use chat_transport_ws::{CLOSE_GOING_AWAY, CLOSE_INTERNAL, WsConfig};
use common::{HANG, Server, next_frame, send, until};
use futures::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// A heartbeat short enough for a test: a ping every 200 ms, 300 ms to answer.
fn fast_heartbeat() -> WsConfig {
    WsConfig {
        ping_every: Duration::from_millis(200),
        pong_timeout: Duration::from_millis(300),
        ..WsConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_pings_is_closed() {
    let server = Server::start(fast_heartbeat(), None).await;
    let user = server.signup("mute").await;

    // The handshake completes, then the client is never polled: tungstenite
    // answers pings only while it reads, so this peer sends nothing at all.
    let mut mute = server.connect(&user.token, None).await;
    server.wait_for_connections(1).await;
    server.wait_for_connections(0).await;

    // What the server wrote before giving up: the sync's end, its pings, then
    // a close frame 1011. The peer never wrote, so the server's socket has
    // nothing unread and closes with a FIN, not a reset: the frame is there
    // to read.
    let mut pings = 0;
    let close = loop {
        let next = tokio::time::timeout(HANG, mute.next())
            .await
            .expect("the stream ends within the hang guard");
        match next {
            Some(Ok(Message::Text(text))) => assert!(text.as_str().contains("synced"), "{text}"),
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(frame))) => break frame.expect("a close frame with a code"),
            Some(Ok(other)) => panic!("unexpected {other:?}"),
            Some(Err(e)) => panic!("the stream failed before a close frame: {e}"),
            None => panic!("the stream ended without a close frame"),
        }
    };
    assert_eq!(u16::from(close.code), CLOSE_INTERNAL, "{close:?}");
    assert!(pings >= 1, "the server pinged before closing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_answers_pings_stays_connected() {
    let config = WsConfig {
        pong_timeout: Duration::from_secs(2),
        ..fast_heartbeat()
    };
    let server = Server::start(config, None).await;
    let user = server.signup("chatty").await;
    let mut ws = server.connect(&user.token, None).await;
    until(&mut ws, "synced").await;

    // Keep reading (tungstenite answers each ping with a pong as it reads)
    // through several ping intervals, counted by the pings themselves.
    let mut pings = 0;
    while pings < 4 {
        let next = tokio::time::timeout(HANG, ws.next())
            .await
            .expect("a ping within the hang guard");
        match next {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected only pings on an idle connection, got {other:?}"),
        }
    }

    assert_eq!(server.engine.connection_count(), 1);
    send(&mut ws, json!({"type": "ping", "id": "still-here"})).await;
    let pong = next_frame(&mut ws).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    assert_eq!(pong["reply_to"], "still-here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_shutting_down_closes_connections_with_1001() {
    let server = Server::start(WsConfig::default(), None).await;
    let user = server.signup("leaving").await;
    let mut ws = server.connect(&user.token, None).await;
    until(&mut ws, "synced").await;
    server.engine.shutdown().await;
    let close = loop {
        let next = tokio::time::timeout(HANG, ws.next())
            .await
            .expect("a close frame within the hang guard");
        match next {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close frame with a code"),
            Some(Ok(Message::Ping(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), CLOSE_GOING_AWAY, "{close:?}");
}
