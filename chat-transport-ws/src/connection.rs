//! One upgraded connection, driven by one task: the session's frames to the
//! socket, the client's frames into the session, pings.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use chat_core::auth::Identity;
use chat_core::engine::{ClientInfo, CloseReason, Engine, Outbound, Session};
use chat_core::protocol::ServerFrame;
use futures::future::{BoxFuture, OptionFuture};
use futures::{SinkExt, StreamExt};
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

/// Most queued frames written with one flush: enough to turn a burst into a
/// few large writes, few enough that pings and reads are not held up.
const WRITE_BATCH: usize = 64;

/// What the connection asked the session to do.
enum Work {
    /// The sync that follows every connect.
    Start,
    /// One text frame from the client.
    Text(Utf8Bytes),
}

/// Runs one piece of work on the session (owned meanwhile) and hands it
/// back, with a frame for the client when the work failed in a way only
/// the transport can tell.
async fn work(mut session: Session, work: Work) -> (Session, Option<Message>) {
    match work {
        Work::Start => match session.start().await {
            Ok(()) => (session, None),
            Err(e) => {
                tracing::debug!(error = %e, user = %session.user_id(), "sync after connect failed");
                let frame = ServerFrame::error_from(None, &e).encode_text();
                (session, Some(Message::Text(frame.into())))
            }
        },
        Work::Text(text) => {
            session.handle_text(text.as_str()).await;
            (session, None)
        }
    }
}

/// The session's work in progress, on the heap only while it runs.
type Working = BoxFuture<'static, (Session, Option<Message>)>;

fn boxed(session: Session, what: Work) -> Working {
    Box::pin(work(session, what))
}

/// How the connection loop ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The peer closed or failed.
    PeerGone,
    /// The peer sent a message over the limit (already answered).
    TooLarge,
    /// The engine closed the session (its reason decides the close code).
    EngineClosed,
    /// The peer stopped answering pings (already told).
    PingTimeout,
}

/// Drives one authenticated connection until either side ends it, in this
/// one task: it writes the session's queued frames (several per flush),
/// reads the client's frames one at a time (the next is read only once the
/// session handled the last: a client cannot queue work faster than the
/// server does it), runs the session's work, and pings. One task and no
/// split socket halves keep an idle connection small and a busy one free
/// of lock hand-offs between a reader and a writer task.
pub(crate) async fn run(
    mut socket: WebSocket,
    engine: Engine,
    identity: Identity,
    client: ClientInfo,
    config: WsConfig,
) {
    // Counted until the close frame is out and the linger is over.
    let _open = config.open_sockets.hold();
    let user = &identity.user_id;
    // Boxed: held inline, this future's state would stay in the
    // connection's task for as long as the connection lives.
    let (session, mut outbound) = match Box::pin(engine.connect_with(&identity, client)).await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(error = %e, %user, "cannot open a session");
            let _ = socket
                .send(close(CLOSE_INTERNAL, "server unavailable, retry"))
                .await;
            return;
        }
    };
    // Taken up between frames only: a frame in hand is handled to its
    // answer first, then what is queued goes out and the close follows.
    let drain = session.drain_asked();
    tokio::pin!(drain);
    let mut draining = false;
    // The session lives in `working` while it works, else in `idle`. The
    // work is boxed: held inline, the largest action's future would size
    // every idle connection's task (a heap profile: docs/benchmarks.md).
    let mut idle: Option<Session> = None;
    let mut working: OptionFuture<Working> = Some(boxed(session, Work::Start)).into();
    let mut ping = Ping::new(&config);
    let end = loop {
        tokio::select! {
            // Queued frames first: the sync and replies wait for room.
            biased;
            frame = outbound.recv() => {
                let Some(frame) = frame else { break End::EngineClosed };
                if write_batch(&mut socket, frame, &mut outbound).await.is_err() {
                    break End::PeerGone;
                }
            }
            Some((session, extra)) = &mut working => {
                // Done: never poll the finished work again.
                working = None.into();
                idle = Some(session);
                if let Some(frame) = extra
                    && socket.send(frame).await.is_err()
                {
                    break End::PeerGone;
                }
            }
            () = &mut drain, if idle.is_some() && !draining => {
                draining = true;
                // The outbound yields what is queued, then ends (Draining).
                if let Some(session) = &idle {
                    session.finish_draining();
                }
            }
            next = socket.next(), if idle.is_some() && !draining => {
                ping.heard();
                match next {
                    Some(Ok(Message::Text(text))) => {
                        let session = idle.take().expect("checked by the branch guard");
                        working = Some(boxed(session, Work::Text(text))).into();
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let frame = error_frame("bad_frame", "binary frames are not supported");
                        if socket.send(frame).await.is_err() {
                            break End::PeerGone;
                        }
                    }
                    // tungstenite answers pings and close frames by itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break End::PeerGone,
                    Some(Err(e)) => {
                        if let Some((size, max)) = too_long(&e) {
                            let message = format!(
                                "a WebSocket message is at most {max} bytes, this one has {size}; closing"
                            );
                            let _ = socket.send(error_frame("too_large", &message)).await;
                            let _ = socket.send(close(CLOSE_TOO_BIG, "message too big")).await;
                            break End::TooLarge;
                        }
                        tracing::debug!(error = %e, "WebSocket read failed");
                        break End::PeerGone;
                    }
                }
            }
            () = sleep_until(ping.deadline) => match ping.due() {
                PingDue::Send => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        break End::PeerGone;
                    }
                }
                PingDue::Nothing => {}
                PingDue::TimedOut => {
                    tracing::debug!("peer stopped answering pings; closing");
                    let _ = socket.send(close(CLOSE_INTERNAL, "ping timeout")).await;
                    break End::PingTimeout;
                }
            },
        }
    };
    // Unregister before the close frame goes out: a client that reconnects
    // at once must not count against its own old session. A session still
    // at work is dropped with its work; its Drop unregisters it.
    match idle {
        Some(session) => session.close().await,
        None => drop(working),
    }
    if end == End::EngineClosed {
        let message = match outbound.close_reason() {
            Some(CloseReason::SlowConsumer) => {
                Some(close(CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON))
            }
            Some(CloseReason::Shutdown) => Some(close(CLOSE_GOING_AWAY, "server shutting down")),
            Some(CloseReason::Draining) => Some(close(
                CLOSE_DRAINING,
                "node draining, reconnect elsewhere and sync",
            )),
            Some(CloseReason::Revoked) => Some(close(CLOSE_REVOKED, "device logged out")),
            Some(CloseReason::Resync) => Some(close(CLOSE_RESYNC, "reconnect and sync")),
            _ => None,
        };
        if let Some(message) = message {
            let _ = socket.send(message).await;
        }
    }
    // After an oversized frame the stream sits inside that frame's payload:
    // reading on would buffer the whole payload, so the socket is dropped.
    if end != End::TooLarge {
        Box::pin(linger(&mut socket, &config)).await;
    }
}

/// Writes `first` and up to [`WRITE_BATCH`] more frames already queued,
/// then flushes once.
async fn write_batch(
    socket: &mut WebSocket,
    first: Bytes,
    outbound: &mut Outbound,
) -> Result<(), axum::Error> {
    socket.feed(text(first)).await?;
    for _ in 1..WRITE_BATCH {
        let Some(more) = outbound.try_recv() else {
            break;
        };
        socket.feed(text(more)).await?;
    }
    socket.flush().await
}

/// An engine frame as a text message (frames are JSON: always UTF-8).
fn text(frame: Bytes) -> Message {
    match Utf8Bytes::try_from(frame) {
        Ok(text) => Message::Text(text),
        Err(_) => {
            tracing::error!("engine produced a frame that is not UTF-8");
            error_frame("internal", "the server produced a frame it cannot send")
        }
    }
}

/// The ping schedule: a ping every `ping_every`, and the connection given up
/// when nothing at all came from the peer within `pong_timeout` of a ping.
struct Ping {
    deadline: Instant,
    awaiting_pong: bool,
    heard: bool,
    every: std::time::Duration,
    timeout: std::time::Duration,
}

/// What a ping deadline asks for.
enum PingDue {
    Send,
    Nothing,
    TimedOut,
}

impl Ping {
    fn new(config: &WsConfig) -> Self {
        Self {
            deadline: Instant::now() + config.ping_every,
            awaiting_pong: false,
            heard: false,
            every: config.ping_every,
            timeout: config.pong_timeout,
        }
    }

    /// The peer sent something: it is alive.
    fn heard(&mut self) {
        self.heard = true;
    }

    /// The deadline passed: what to do, and the next deadline.
    fn due(&mut self) -> PingDue {
        let heard = std::mem::take(&mut self.heard);
        if self.awaiting_pong && !heard {
            return PingDue::TimedOut;
        }
        if self.awaiting_pong {
            self.awaiting_pong = false;
            self.deadline += self.every.saturating_sub(self.timeout);
            self.deadline = self.deadline.max(Instant::now());
            return PingDue::Nothing;
        }
        self.awaiting_pong = true;
        self.deadline = Instant::now() + self.timeout;
        PingDue::Send
    }
}

/// Reads (and drops) what the peer still sends after our close frame, for at
/// most `close_linger`, so the close frame is not lost to a TCP reset.
async fn linger(socket: &mut WebSocket, config: &WsConfig) {
    let until = Instant::now() + config.close_linger;
    loop {
        tokio::select! {
            next = socket.next() => match next {
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
