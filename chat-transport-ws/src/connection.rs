//! One upgraded connection: a writer task forwards the session's frames to
//! the socket and pings; this task reads client frames into the session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use chat_core::auth::Identity;
use chat_core::engine::{ClientInfo, CloseReason, Engine, Outbound, Session};
use chat_core::protocol::ServerFrame;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::Mutex;
use tokio::time::{Instant, sleep_until};

use crate::config::WsConfig;

/// Close code for a client that read too slowly: its queue overflowed.
pub const CLOSE_SLOW_CONSUMER: u16 = 4000;
/// Close reason sent with [`CLOSE_SLOW_CONSUMER`].
pub const SLOW_CONSUMER_REASON: &str = "slow consumer, reconnect and sync";
/// Close code for a connection whose device was logged out (or removed):
/// its token no longer works; do not reconnect with it.
pub const CLOSE_REVOKED: u16 = 4001;
/// Close code for a connection the server could no longer keep in order
/// (a gap in a conversation it could not fill): reconnect and sync.
pub const CLOSE_RESYNC: u16 = 4002;
/// Close code when the server shuts down (RFC 6455 "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code when the node drains (it is taken out of service, e.g. for
/// an upgrade): RFC 6455's registered "service restart". Everything the
/// client sent before was answered; it reconnects (logging in again picks
/// a live node) and syncs.
pub const CLOSE_DRAINING: u16 = 1012;
/// Close code for a message bigger than the configured maximum (RFC 6455).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a peer that stopped answering pings, or a server failure.
pub const CLOSE_INTERNAL: u16 = 1011;

type Sink = Arc<Mutex<SplitSink<WebSocket, Message>>>;

/// What the reader and writer tell each other without a channel.
#[derive(Default)]
struct Shared {
    /// The peer sent something since the last ping.
    heard: AtomicBool,
}

/// Drives one authenticated connection until either side ends it.
pub(crate) async fn run(
    socket: WebSocket,
    engine: Engine,
    identity: Identity,
    client: ClientInfo,
    config: WsConfig,
) {
    let (sink, mut stream) = socket.split();
    let sink: Sink = Arc::new(Mutex::new(sink));
    let user = &identity.user_id;
    let (mut session, outbound) = match engine.connect_with(&identity, client).await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(error = %e, %user, "cannot open a session");
            let mut sink = sink.lock().await;
            let _ = sink
                .send(close(CLOSE_INTERNAL, "server unavailable, retry"))
                .await;
            return;
        }
    };
    let shared = Arc::new(Shared::default());
    let mut writer = tokio::spawn(write_loop(
        sink.clone(),
        outbound,
        shared.clone(),
        config.clone(),
    ));
    // The writer runs first: the sync may queue more than the outbound holds.
    if let Err(e) = session.start().await {
        tracing::debug!(error = %e, %user, "sync after connect failed");
        let frame = ServerFrame::error_from(None, &e).encode_text();
        let _ = sink.lock().await.send(Message::Text(frame.into())).await;
    }
    let (writer_done, end) = tokio::select! {
        _ = &mut writer => (true, ReadEnd::Closed),
        end = read_loop(&mut stream, &sink, &mut session, &shared) => (false, end),
    };
    if end == ReadEnd::Drained && !writer_done {
        // The writer sends what is queued (the answer to the last frame
        // read among it), then the close frame.
        session.finish_draining();
        let _ = (&mut writer).await;
        session.close().await;
    } else {
        session.close().await;
        if !writer_done {
            // The session is closed, so the writer's outbound ends at once.
            let _ = writer.await;
        }
    }
    // After an oversized frame the stream sits inside that frame's payload:
    // reading on would buffer the whole payload, so the socket is dropped.
    if end != ReadEnd::TooLarge {
        linger(&mut stream, &config).await;
    }
}

/// How the read loop ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// The peer closed or failed, or the writer ended first.
    Closed,
    /// The peer sent a message over the limit.
    TooLarge,
    /// The node drains: no more frames are read.
    Drained,
}

/// Reads client frames until the peer closes or fails, or a frame is too big.
async fn read_loop(
    stream: &mut SplitStream<WebSocket>,
    sink: &Sink,
    session: &mut Session,
    shared: &Shared,
) -> ReadEnd {
    loop {
        // Only between frames: a frame in hand is handled to its answer.
        let next = tokio::select! {
            next = stream.next() => next,
            () = session.drain_asked() => return ReadEnd::Drained,
        };
        let Some(next) = next else { break };
        shared.heard.store(true, Ordering::Relaxed);
        match next {
            Ok(Message::Text(text)) => session.handle_text(text.as_str()).await,
            Ok(Message::Binary(_)) => {
                let frame = error_frame("bad_frame", "binary frames are not supported");
                if sink.lock().await.send(frame).await.is_err() {
                    return ReadEnd::Closed;
                }
            }
            // tungstenite answers pings and close frames by itself.
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) => return ReadEnd::Closed,
            Err(e) => {
                if let Some((size, max)) = too_long(&e) {
                    let message = format!(
                        "a WebSocket message is at most {max} bytes, this one has {size}; closing"
                    );
                    let mut sink = sink.lock().await;
                    let _ = sink.send(error_frame("too_large", &message)).await;
                    let _ = sink.send(close(CLOSE_TOO_BIG, "message too big")).await;
                    return ReadEnd::TooLarge;
                }
                tracing::debug!(error = %e, "WebSocket read failed");
                return ReadEnd::Closed;
            }
        }
    }
    ReadEnd::Closed
}

/// Forwards the session's frames, pings on schedule, and closes the socket
/// with a fitting code when the engine ends the session.
async fn write_loop(sink: Sink, mut outbound: Outbound, shared: Arc<Shared>, config: WsConfig) {
    let mut awaiting_pong = false;
    let mut deadline = Instant::now() + config.ping_every;
    loop {
        tokio::select! {
            frame = outbound.recv() => {
                let Some(frame) = frame else { break };
                let Ok(text) = Utf8Bytes::try_from(frame) else {
                    // Frames are encoded by serde_json: always UTF-8.
                    tracing::error!("engine produced a frame that is not UTF-8");
                    continue;
                };
                if sink.lock().await.send(Message::Text(text)).await.is_err() {
                    return;
                }
            }
            () = sleep_until(deadline) => {
                let heard = shared.heard.swap(false, Ordering::Relaxed);
                if awaiting_pong && !heard {
                    tracing::debug!("peer stopped answering pings; closing");
                    let _ = sink.lock().await.send(close(CLOSE_INTERNAL, "ping timeout")).await;
                    return;
                }
                if awaiting_pong {
                    awaiting_pong = false;
                    deadline += config.ping_every.saturating_sub(config.pong_timeout);
                    deadline = deadline.max(Instant::now());
                    continue;
                }
                if sink.lock().await.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                awaiting_pong = true;
                deadline = Instant::now() + config.pong_timeout;
            }
        }
    }
    let message = match outbound.close_reason() {
        Some(CloseReason::SlowConsumer) => Some(close(CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON)),
        Some(CloseReason::Shutdown) => Some(close(CLOSE_GOING_AWAY, "server shutting down")),
        Some(CloseReason::Draining) => Some(close(
            CLOSE_DRAINING,
            "node draining, reconnect elsewhere and sync",
        )),
        Some(CloseReason::Revoked) => Some(close(CLOSE_REVOKED, "device logged out")),
        Some(CloseReason::Resync) => Some(close(CLOSE_RESYNC, "reconnect and sync")),
        // The reader ended the session: the peer closed or failed.
        _ => None,
    };
    if let Some(message) = message {
        let _ = sink.lock().await.send(message).await;
    }
}

/// Reads (and drops) what the peer still sends after our close frame, for at
/// most `close_linger`, so the close frame is not lost to a TCP reset.
async fn linger(stream: &mut SplitStream<WebSocket>, config: &WsConfig) {
    let until = Instant::now() + config.close_linger;
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(Ok(_)) => {}
                _ => return,
            },
            () = sleep_until(until) => return,
        }
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

fn error_frame(code: &str, message: &str) -> Message {
    let frame = ServerFrame::Error {
        reply_to: None,
        code: code.to_owned(),
        message: message.to_owned(),
    };
    Message::Text(frame.encode_text().into())
}

/// The size and limit of a message the library refused as too long.
fn too_long(error: &axum::Error) -> Option<(usize, usize)> {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsLibError};
    let source = std::error::Error::source(error)?;
    match source.downcast_ref::<WsLibError>()? {
        WsLibError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Some((*size, *max_size))
        }
        _ => None,
    }
}
