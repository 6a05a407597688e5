//! The chat connection: the contract's WebSocket, spoken with chat-core's
//! [`ClientFrame`] and [`ServerFrame`].
//!
//! Frames that arrive while an answer is awaited (messages, receipts) are
//! kept in order in a backlog, so that [`Chat::next_frame`] still yields them.

use std::collections::VecDeque;
use std::time::Duration;

use chat_core::protocol::{
    ClientFrame, EventFrame, FrameErrorKind, SendFrame, SendTarget, ServerFrame, decode_server,
};
use chat_core::{ConversationId, Message, MessageId, Millis};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{CliError, Result};
use crate::http::api_error;

/// How many times a `send` answered `unavailable` is tried in all.
const SEND_ATTEMPTS: u32 = 5;
/// The wait before the first retry; it doubles at each one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// An open chat connection.
pub(crate) struct Chat {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    backlog: VecDeque<ServerFrame>,
    requests: u64,
}

/// A stored message, as `sent` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Its id.
    pub(crate) message_id: MessageId,
    /// Its conversation.
    pub(crate) conversation_id: ConversationId,
    /// When the server accepted it.
    pub(crate) ts: Millis,
}

/// What the server stores for this user: a message (maybe a reply), or an
/// event about a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outgoing {
    /// A message, maybe answering another of its conversation.
    Message {
        /// Where it goes.
        target: SendTarget,
        /// The text.
        body: String,
        /// The message it answers.
        in_reply_to: Option<MessageId>,
    },
    /// The sender's new text for its message.
    Edit {
        /// The message.
        target: (ConversationId, MessageId),
        /// The new text.
        body: String,
    },
    /// The message is deleted.
    Delete {
        /// The message.
        target: (ConversationId, MessageId),
    },
    /// This user's reaction to the message ("" takes it back).
    React {
        /// The message.
        target: (ConversationId, MessageId),
        /// The emoji.
        emoji: String,
    },
}

impl Outgoing {
    /// The frame that asks for it, with request id `id` and retry key `client_msg_id`.
    fn frame(&self, id: String, client_msg_id: String) -> ClientFrame {
        let event =
            |(conversation_id, message_id): &(ConversationId, MessageId), body: &str| EventFrame {
                id: Some(id.clone()),
                conversation_id: conversation_id.clone(),
                message_id: *message_id,
                body: body.to_owned(),
                client_msg_id: Some(client_msg_id.clone()),
            };
        match self {
            Self::Message {
                target,
                body,
                in_reply_to,
            } => ClientFrame::Send(SendFrame {
                id: Some(id.clone()),
                target: target.clone(),
                body: body.clone(),
                client_msg_id: Some(client_msg_id.clone()),
                in_reply_to: *in_reply_to,
            }),
            Self::Edit { target, body } => ClientFrame::Edit(event(target, body)),
            Self::Delete { target } => ClientFrame::Delete(event(target, "")),
            Self::React { target, emoji } => ClientFrame::React(event(target, emoji)),
        }
    }
}

impl Chat {
    /// Opens the WebSocket at `url` with the token in the `Authorization`
    /// header. A refused token comes back as the server's [`CliError::Api`].
    pub(crate) async fn connect(url: &str, token: &str) -> Result<Self> {
        let bad_url = |reason: String| CliError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let mut req = url
            .into_client_request()
            .map_err(|e| bad_url(e.to_string()))?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| CliError::Usage("the token holds characters a header cannot".into()))?;
        req.headers_mut().insert("authorization", auth);
        let socket = match tokio_tungstenite::connect_async(req).await {
            Ok((socket, _)) => socket,
            Err(tungstenite::Error::Http(res)) => {
                let body = res.body().as_deref().unwrap_or_default();
                return Err(api_error(res.status(), &String::from_utf8_lossy(body)));
            }
            Err(tungstenite::Error::Url(e)) => return Err(bad_url(e.to_string())),
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            socket,
            backlog: VecDeque::new(),
            requests: 0,
        })
    }

    /// The next frame: the backlog's oldest, else the next from the server.
    pub(crate) async fn next_frame(&mut self) -> Result<ServerFrame> {
        match self.backlog.pop_front() {
            Some(frame) => Ok(frame),
            None => self.read().await,
        }
    }

    /// Waits for the `synced` that ends the server's own sync after connect;
    /// the messages before it stay in the backlog.
    pub(crate) async fn wait_synced(&mut self) -> Result<()> {
        loop {
            match self.read().await? {
                ServerFrame::Synced { reply_to: None } => return Ok(()),
                other => self.backlog.push_back(other),
            }
        }
    }

    /// Sends `body` and waits until it is stored (see [`Chat::store`]).
    pub(crate) async fn send_message(&mut self, target: SendTarget, body: String) -> Result<Sent> {
        self.store(Outgoing::Message {
            target,
            body,
            in_reply_to: None,
        })
        .await
    }

    /// Sends a message or event and waits until it is stored. An
    /// `unavailable` answer means nothing was stored, so the same
    /// `client_msg_id` is sent again (the server stores a repeat only once)
    /// after a growing pause. Any other error is the server's code and message.
    pub(crate) async fn store(&mut self, outgoing: Outgoing) -> Result<Sent> {
        let client_msg_id = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=SEND_ATTEMPTS {
            let frame = outgoing.frame(self.request_id(), client_msg_id.clone());
            let kind = frame.type_name();
            match self.request(frame).await? {
                ServerFrame::Sent {
                    message_id,
                    conversation_id,
                    ts,
                    ..
                } => {
                    return Ok(Sent {
                        message_id,
                        conversation_id,
                        ts,
                    });
                }
                ServerFrame::Error { code, .. }
                    if code == "unavailable" && attempt < SEND_ATTEMPTS =>
                {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                ServerFrame::Error { code, message, .. } => {
                    return Err(CliError::Chat { code, message });
                }
                other => return Err(unexpected(kind, &other)),
            }
        }
        unreachable!("the last attempt returns whatever it is answered")
    }

    /// Tells the server that `message` (and everything before it in its
    /// conversation) has reached this user.
    pub(crate) async fn ack(&mut self, message: &Message) -> Result<()> {
        self.ack_entry(&message.conversation_id, message.message_id)
            .await
    }

    /// Acks the entry `message_id` of `conversation_id` (a message or a
    /// group event) and everything before it there.
    pub(crate) async fn ack_entry(
        &mut self,
        conversation_id: &ConversationId,
        message_id: MessageId,
    ) -> Result<()> {
        self.write(&ClientFrame::Ack {
            conversation_id: conversation_id.clone(),
            message_id,
        })
        .await
    }

    /// Waits until the server has handled every frame sent so far: it
    /// handles a connection's frames in order, so its `pong` comes after.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        let ping = ClientFrame::Ping {
            id: Some(self.request_id()),
        };
        match self.request(ping).await? {
            ServerFrame::Pong { .. } => Ok(()),
            ServerFrame::Error { code, message, .. } => Err(CliError::Chat { code, message }),
            other => Err(unexpected("ping", &other)),
        }
    }

    /// Closes the connection politely; a server already gone is no error.
    pub(crate) async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }

    /// A fresh request id for a frame's `id`.
    fn request_id(&mut self) -> String {
        self.requests += 1;
        format!("cli-{}", self.requests)
    }

    /// Sends a frame that carries an `id` and returns the frame whose
    /// `reply_to` echoes it; everything else arriving meanwhile is kept.
    async fn request(&mut self, frame: ClientFrame) -> Result<ServerFrame> {
        let id = frame.request_id().expect("requests carry an id").to_owned();
        self.write(&frame).await?;
        loop {
            let answer = self.read().await?;
            if reply_to(&answer) == Some(id.as_str()) {
                return Ok(answer);
            }
            self.backlog.push_back(answer);
        }
    }

    async fn write(&mut self, frame: &ClientFrame) -> Result<()> {
        let text = frame.encode_text();
        self.socket.send(WsMessage::Text(text.into())).await?;
        Ok(())
    }

    /// The next frame from the server. Frame types newer than this client
    /// are skipped, as the contract lets the server add them.
    async fn read(&mut self) -> Result<ServerFrame> {
        loop {
            let text = match self.socket.next().await {
                None | Some(Ok(WsMessage::Close(_))) => return Err(CliError::Closed),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(WsMessage::Text(text))) => text,
                // tungstenite answers pings itself; the contract sends no binary frames.
                Some(Ok(_)) => continue,
            };
            match decode_server(text.as_str()) {
                Ok(frame) => return Ok(frame),
                Err(bad) if matches!(bad.kind, FrameErrorKind::UnknownType(_)) => continue,
                Err(bad) => return Err(CliError::Protocol(bad.message())),
            }
        }
    }
}

/// The `reply_to` of the frames that answer a request.
fn reply_to(frame: &ServerFrame) -> Option<&str> {
    match frame {
        ServerFrame::Sent { reply_to, .. }
        | ServerFrame::Synced { reply_to }
        | ServerFrame::History { reply_to, .. }
        | ServerFrame::Pong { reply_to }
        | ServerFrame::Error { reply_to, .. } => reply_to.as_deref(),
        ServerFrame::Message { .. }
        | ServerFrame::Receipt(_)
        | ServerFrame::Receipts { .. }
        | ServerFrame::Presence(_)
        | ServerFrame::Typing { .. }
        | ServerFrame::GroupEvent { .. } => None,
    }
}

fn unexpected(request: &str, frame: &ServerFrame) -> CliError {
    CliError::Protocol(format!("a {} frame answered {request}", frame.type_name()))
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;
